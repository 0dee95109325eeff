"""Each speed optimisation computes what the straightforward path computes.

* ``lstm_sequence`` (hand-written backward pass, weight gradients as one
  matmul after the loop) against automatic differentiation of
  ``PeepholeLSTMCell.step`` in a loop: outputs, final state and every
  gradient, with derivative clipping active, padding and a non-zero initial
  state, in float64 to 1e-10.
* ``windowed_lstm_sequence`` (the first synthesis layer and its window)
  against the step-by-step ``SkipStack`` graph: derivatives through every
  output (h, w, phi, phi(U+1), final states) to 1e-9.
* The whole models with ``fused_backward`` on and off (which also exercises
  the stacked-kernel step and the time-major input projections): losses and
  gradients in float64 to 1e-10.
* The forward passes against NumPy written from the paper: eqs. 7-11 for
  ``lstm_sequence``, and the skip-stack wiring of eqs. 1-2 and 52-53 (the layer
  below at the same step, the window one step late for layer 1 only) with the
  window of eqs. 46-51, fused and step-by-step.
* The sampler compiled by XLA against the plain graph: a seed reproduces its
  sample, and on a forced window the stop rule ends every sample at the same
  step as the plain sampler and the NumPy reference.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf.layers import GaussianWindow, SkipStack  # noqa: E402
from graves_tf.layers.lstm_sequence import lstm_sequence  # noqa: E402
from graves_tf.layers.peephole_lstm_cell import PeepholeLSTMCell  # noqa: E402
from graves_tf.layers.scan import scan  # noqa: E402
from graves_tf.sampling import compiled_sampler  # noqa: E402
from model_helpers import as_tensors, randomize, tiny_models  # noqa: E402
from sampling_helpers import context_for, expected_stop_length, force_window, synthesizer  # noqa: E402

TOLERANCE = 1e-10  # float64


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_lstm_step(z, h, c, cell):
    """Eqs. 7-11 in NumPy, written from the paper: ``z`` is the gates' input terms and bias, blocks [i, f, c, o]."""
    n = h.shape[-1]
    z = z + h @ cell["recurrent_kernel"]
    i = sigmoid(z[:, :n] + cell["peephole_input"] * c)  # (7)
    f = sigmoid(z[:, n : 2 * n] + cell["peephole_forget"] * c)  # (8)
    c = f * c + i * np.tanh(z[:, 2 * n : 3 * n])  # (9)
    o = sigmoid(z[:, 3 * n :] + cell["peephole_output"] * c)  # (10)
    return o * np.tanh(c), c  # (11)


def cell_weights(cell):
    names = ("kernel", "recurrent_kernel", "bias", "peephole_input", "peephole_forget", "peephole_output")
    return {name: getattr(cell, name).numpy() for name in names}


def numpy_lstm_sequence(cell, z_seq, mask, h0, c0):
    """Time-major ``z_seq``; every step's h_t, the state carried unchanged through masked steps."""
    h, c, h_seq = h0, c0, []
    for z, m in zip(z_seq, mask):
        h_new, c_new = numpy_lstm_step(z, h, c, cell)
        h_seq.append(h_new)
        h, c = m * h_new + (1 - m) * h, m * c_new + (1 - m) * c
    return np.stack(h_seq), h, c


def reference_sequence(cell, z_seq, mask_seq, h0, c0, weights):
    """Autodiff path: the cell's own step in a loop, state kept at masked steps."""

    def body(carry, xs):
        z, m = xs
        h, (h_new, c_new) = cell.step(z, carry, weights)
        return [m * h_new + (1 - m) * carry[0], m * c_new + (1 - m) * carry[1]], h

    (h_last, c_last), h_seq = scan(body, [h0, c0], (z_seq, mask_seq))
    return h_seq, h_last, c_last


@pytest.mark.parametrize("clip", [None, 0.05])
def test_lstm_sequence_matches_autodiff_of_the_step(clip):
    rng = np.random.default_rng(0)
    steps, batch, units = 7, 3, 5
    cell = PeepholeLSTMCell(units, clip=clip, dtype="float64")
    cell.build((None, 4))
    for variable in cell.trainable_variables:
        variable.assign(rng.normal(scale=0.7, size=variable.shape))
    z_seq = tf.constant(rng.normal(size=(steps, batch, 4 * units)))
    lengths = np.array([7, 4, 1])
    mask = (np.arange(steps)[:, None] < lengths[None, :]).astype(np.float64)[..., None]
    mask_seq = tf.constant(mask)
    h0 = tf.constant(rng.normal(size=(batch, units)))
    c0 = tf.constant(rng.normal(size=(batch, units)))
    # Upstream derivatives large enough that clip=0.05 is active.
    g_seq = tf.constant(rng.normal(scale=3.0, size=(steps, batch, units)))
    g_h, g_c = tf.constant(rng.normal(size=(batch, units))), tf.constant(rng.normal(size=(batch, units)))

    def run(function):
        with tf.GradientTape() as tape:
            tape.watch([z_seq, h0, c0])
            weights = cell.recurrent_weights()
            h_seq, h_last, c_last = function(cell, z_seq, mask_seq, h0, c0, weights)
            loss = tf.reduce_sum(g_seq * h_seq) + tf.reduce_sum(g_h * h_last) + tf.reduce_sum(g_c * c_last)
        grads = tape.gradient(loss, [z_seq, h0, c0] + cell.trainable_variables)
        return [h_seq, h_last, c_last], grads

    fused_out, fused_grads = run(lambda cell, *args: lstm_sequence(*args, clip=clip))
    ref_out, ref_grads = run(reference_sequence)
    # The forward pass against eqs. 7-11 in NumPy (both paths share peephole_lstm_step).
    numpy_out = numpy_lstm_sequence(cell_weights(cell), z_seq.numpy(), mask, h0.numpy(), c0.numpy())
    for got, want in zip(fused_out, numpy_out):
        np.testing.assert_allclose(got.numpy(), want, rtol=TOLERANCE, atol=TOLERANCE)
    for got, want in zip(fused_out, ref_out):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=TOLERANCE, atol=TOLERANCE)
    names = ["z", "h0", "c0"] + [v.name for v in cell.trainable_variables]
    for name, got, want in zip(names, fused_grads, ref_grads):
        if want is None:  # the input kernel and bias are not used here
            assert got is None, name
            continue
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=TOLERANCE, atol=TOLERANCE, err_msg=name)
    if clip is not None:  # the clip did act: without it the z gradient differs
        unclipped_out, unclipped = run(lambda cell, *args: lstm_sequence(*args, clip=None))
        assert not np.allclose(unclipped[0].numpy(), fused_grads[0].numpy())


@pytest.mark.parametrize("name", ["text", "prediction", "synthesis"])
def test_models_give_the_same_loss_and_gradients_with_and_without_the_fused_backward(name):
    rng = np.random.default_rng(1)
    model, make_batch = tiny_models("float64")[name]
    randomize(model, rng)
    batch = as_tensors(make_batch(rng), "float64")

    def loss_and_grads():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(batch))
        return loss, tape.gradient(loss, model.trainable_variables)

    model.stack.fused_backward = True
    fused_loss, fused_grads = loss_and_grads()
    model.stack.fused_backward = False
    ref_loss, ref_grads = loss_and_grads()
    np.testing.assert_allclose(fused_loss.numpy(), ref_loss.numpy(), rtol=TOLERANCE)
    for variable, got, want in zip(model.trainable_variables, fused_grads, ref_grads):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-9, atol=TOLERANCE, err_msg=variable.path)


def test_the_xla_sampler_reproduces_itself_and_stops_where_the_plain_sampler_stops():
    model = synthesizer()
    context = context_for(model, [5, 3])
    xla = compiled_sampler(model, jit_compile=True)
    a, la = xla(2, 60, 0.3, 11, context)
    b, lb = xla(2, 60, 0.3, 11, context)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(la.numpy(), lb.numpy())
    assert np.all(np.isfinite(a.numpy()))

    forced = synthesizer()
    force_window(forced, kappa_step=0.25)
    lengths = [5, 2]
    context = context_for(forced, lengths)
    expected = [expected_stop_length(u, 0.25) for u in lengths]
    _, plain_counts = compiled_sampler(forced)(2, 200, 0.0, 0, context)
    _, xla_counts = compiled_sampler(forced, jit_compile=True)(2, 200, 0.0, 0, context)
    np.testing.assert_array_equal(plain_counts.numpy(), expected)
    np.testing.assert_array_equal(xla_counts.numpy(), expected)


def test_the_fused_backward_is_kept_in_the_config():
    model, _ = tiny_models()["prediction"]
    model.stack.fused_backward = False
    restored = keras.layers.deserialize(keras.layers.serialize(model.stack))
    assert restored.fused_backward is False


@pytest.mark.parametrize("clip", [None, 0.05])
def test_the_windowed_first_layer_matches_autodiff_for_every_output(clip):
    """h, w, phi, phi(U+1) and the final states all carry derivatives (padding in both time and text)."""
    rng = np.random.default_rng(2)
    window = GaussianWindow(2, 5, dtype="float64")
    stack = SkipStack(3, 6, 2, clip=clip, conditioning=window, dtype="float64")
    stack.build()
    for variable in stack.weights:
        variable.assign(rng.normal(scale=0.5, size=variable.shape))
    steps, batch, chars = 8, 3, 4
    inputs = tf.constant(rng.normal(size=(batch, steps, 3)))
    step_mask = tf.constant((np.arange(steps)[None] < np.array([[8], [5], [2]])).astype(np.float64))
    text = tf.constant(rng.integers(0, 5, (batch, chars)).astype(np.int32))
    text_mask = tf.constant((np.arange(chars)[None] < np.array([[4], [2], [3]])).astype(np.float64))
    context = window.context(text, text_mask)
    state = stack.initial_state(batch)
    state = tf.nest.map_structure(lambda x: x + tf.constant(rng.normal(scale=0.3, size=x.shape)), state)
    state["window"]["kappa"] = tf.abs(state["window"]["kappa"])
    probes = {}

    def probe(name, x):
        if name not in probes:
            probes[name] = tf.constant(rng.normal(scale=4.0, size=x.shape))
        return tf.reduce_sum(probes[name] * x)

    def run(fused):
        stack.fused_backward = fused
        with tf.GradientTape() as tape:
            tape.watch([inputs, state])
            out = stack(inputs, initial_state=state, step_mask=step_mask, context=context)
            loss = probe("h1", out["hidden"][0]) + probe("h2", out["hidden"][1]) + probe("w", out["window"])
            loss += probe("phi", out["phi"]) + probe("phi_end", out["phi_end"])
            for i, x in enumerate(tf.nest.flatten(out["final_state"])):
                loss += probe(f"final{i}", x)
        sources = [inputs, state, stack.trainable_variables]
        return loss, tf.nest.flatten(tape.gradient(loss, sources))

    fused_loss, fused_grads = run(True)
    ref_loss, ref_grads = run(False)
    np.testing.assert_allclose(fused_loss.numpy(), ref_loss.numpy(), rtol=TOLERANCE)
    assert len(fused_grads) == len(ref_grads)
    for i, (got, want) in enumerate(zip(fused_grads, ref_grads)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-9, atol=1e-9, err_msg=str(i))


def numpy_skip_stack(stack, x, text_onehot=None, text_mask=None, delay_every_layer=False):
    """Eqs. 1-2, or 52-53 with the window of eqs. 46-51, step by step in NumPy from the stack's weights.

    Layer n reads x_t, h^{n-1}_t (the layer below at the same step) and its own h^n_{t-1}; with a window,
    layer 1 reads w_{t-1} (one step of delay, eq. 52) and layers 2..N read w_t, computed from h^1_t (eq. 53).
    Only the kernel's row layout, ``[x_t, h^{n-1}_t, w]``, is taken from the code. ``delay_every_layer``
    wires it wrongly (layers 2..N read w_{t-1} too), to show the comparison can tell.
    """
    batch, steps, _ = x.shape
    cells = [cell_weights(cell) for cell in stack.cells]
    h = [np.zeros((batch, stack.units)) for _ in cells]
    c = [np.zeros((batch, stack.units)) for _ in cells]
    window = stack.conditioning
    out = {"hidden": [[] for _ in cells], "window": [], "phi": []}
    w = None
    if window is not None:
        kernel, bias, k = window.kernel.numpy(), window.bias.numpy(), window.num_gaussians
        kappa, w = np.zeros((batch, k)), np.zeros((batch, window.alphabet_size))
        u = np.arange(1, text_onehot.shape[1] + 1)
    for t in range(steps):
        w_before = w
        for n, cell in enumerate(cells):
            w_read = w_before if (n == 0 or delay_every_layer) else w
            parts = [x[:, t]] + ([h[n - 1]] if n else []) + ([w_read] if window is not None else [])
            z = np.concatenate(parts, axis=-1) @ cell["kernel"] + cell["bias"]
            h[n], c[n] = numpy_lstm_step(z, h[n], c[n], cell)
            if n == 0 and window is not None:  # w_t from h^1_t: layer 1 used w_{t-1} above
                params = h[0] @ kernel + bias  # (48)
                alpha, beta = np.exp(params[:, :k]), np.exp(params[:, k : 2 * k])  # (49, 50)
                kappa = kappa + np.exp(params[:, 2 * k :])  # (51)
                phi = np.sum(alpha[:, None] * np.exp(-beta[:, None] * (kappa[:, None] - u[None, :, None]) ** 2), -1)
                phi = phi * text_mask  # (46), padding out
                w = np.einsum("bu,buv->bv", phi, text_onehot)  # (47)
                out["window"].append(w)
                out["phi"].append(phi)
            out["hidden"][n].append(h[n])
    return {key: np.stack(v, 1) if key != "hidden" else [np.stack(s, 1) for s in v] for key, v in out.items() if v}


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("windowed", [False, True])
def test_the_skip_stack_wiring_matches_a_numpy_reference_of_the_papers_equations(windowed, fused):
    rng = np.random.default_rng(3)
    window = GaussianWindow(2, 5, dtype="float64") if windowed else None
    stack = SkipStack(3, 6, 3, conditioning=window, dtype="float64")
    stack.build()
    for variable in stack.weights:
        variable.assign(rng.normal(scale=0.5, size=variable.shape))
    stack.fused_backward = fused
    x = rng.normal(size=(2, 7, 3))
    text = rng.integers(0, 5, (2, 4)).astype(np.int32)
    text_mask = (np.arange(4)[None] < np.array([[4], [2]])).astype(np.float64)
    context = window.context(tf.constant(text), tf.constant(text_mask)) if windowed else None
    out = stack(tf.constant(x), context=context)
    want = numpy_skip_stack(stack, x, np.eye(5)[text], text_mask)
    for n in range(3):
        np.testing.assert_allclose(out["hidden"][n].numpy(), want["hidden"][n], rtol=1e-10, atol=1e-12, err_msg=f"h{n + 1}")
    if windowed:
        np.testing.assert_allclose(out["window"].numpy(), want["window"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out["phi"].numpy(), want["phi"], rtol=1e-10, atol=1e-12)
        # the comparison can tell a wrong delay
        wrong = numpy_skip_stack(stack, x, np.eye(5)[text], text_mask, delay_every_layer=True)
        assert np.max(np.abs(out["hidden"][1].numpy() - wrong["hidden"][1])) > 1e-3


@pytest.mark.parametrize("length", [1, 5])
def test_scan_in_reverse_is_scanning_the_reversed_sequence(length):
    """``scan(..., reverse=True)`` (the fused backward passes' loop) against flipping xs and ys around a forward scan."""
    rng = np.random.default_rng(0)
    xs = (tf.constant(rng.normal(size=(length, 3, 2))), tf.constant(rng.normal(size=(length, 3))))

    def running(carry, x):
        a, b = x
        carry = 0.5 * carry + a * b[:, None]
        return carry, (carry, tf.reduce_sum(carry, axis=-1))

    init = tf.zeros((3, 2), tf.float64)
    last, (seq, sums) = scan(running, init, xs, reverse=True)
    flipped_last, (flipped_seq, flipped_sums) = scan(running, init, tuple(tf.reverse(x, [0]) for x in xs))
    np.testing.assert_allclose(last.numpy(), flipped_last.numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(seq.numpy(), tf.reverse(flipped_seq, [0]).numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(sums.numpy(), tf.reverse(flipped_sums, [0]).numpy(), rtol=0, atol=0)
    if length > 1:  # the order matters: a forward scan gives another final carry
        forward_last, _ = scan(running, init, xs)
        assert not np.allclose(forward_last.numpy(), last.numpy())
