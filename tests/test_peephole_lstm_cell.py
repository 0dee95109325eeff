"""Tests of the peephole LSTM cell (Graves 2013, section 2.1, eqs. 7-11) and its
pre-activation derivative clipping.

The reference forward and backward passes are written out in NumPy float64.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf.layers import PeepholeLSTMCell  # noqa: E402

BATCH, IN, UNITS = 3, 4, 5
WEIGHT_NAMES = ("kernel", "recurrent_kernel", "bias", "peephole_input", "peephole_forget", "peephole_output")


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def random_weights(rng, in_dim=IN, units=UNITS, scale=0.5):
    return {
        "kernel": rng.normal(0.0, scale, (in_dim, 4 * units)),
        "recurrent_kernel": rng.normal(0.0, scale, (units, 4 * units)),
        "bias": rng.normal(0.0, scale, (4 * units,)),
        "peephole_input": rng.normal(0.0, scale, (units,)),
        "peephole_forget": rng.normal(0.0, scale, (units,)),
        "peephole_output": rng.normal(0.0, scale, (units,)),
    }


def make_cell(weights, clip=None, in_dim=IN, units=UNITS):
    cell = PeepholeLSTMCell(units, clip=clip, dtype="float64")
    cell.build((None, in_dim))
    for name in WEIGHT_NAMES:
        getattr(cell, name).assign(weights[name])
    return cell


def np_forward(weights, xs, h0, c0):
    """Eqs. 7-11 over a sequence; returns the per-step caches."""
    k, r, b = weights["kernel"], weights["recurrent_kernel"], weights["bias"]
    w_ci, w_cf, w_co = weights["peephole_input"], weights["peephole_forget"], weights["peephole_output"]
    u = r.shape[0]
    h, c = h0, c0
    caches = []
    for x in xs:
        z = x @ k + h @ r + b
        zi, zf, zc, zo = z[:, :u], z[:, u : 2 * u], z[:, 2 * u : 3 * u], z[:, 3 * u :]
        i = sigmoid(zi + w_ci * c)  # (7): input gate peeks at c_{t-1}
        f = sigmoid(zf + w_cf * c)  # (8): forget gate peeks at c_{t-1}
        g = np.tanh(zc)
        c_new = f * c + i * g  # (9)
        o = sigmoid(zo + w_co * c_new)  # (10): output gate peeks at c_t
        h_new = o * np.tanh(c_new)  # (11)
        caches.append(dict(x=x, h_prev=h, c_prev=c, i=i, f=f, g=g, c=c_new, o=o, h=h_new))
        h, c = h_new, c_new
    return caches


def np_backward(weights, caches, dh_upstream, clip):
    """Backpropagation through time of eqs. 7-11, clipping dL/d(pre-activation) of every gate
    to [-clip, clip] (section 2.1); the cell-state path (dL/dc) is not clipped."""
    k, r = weights["kernel"], weights["recurrent_kernel"]
    w_ci, w_cf, w_co = weights["peephole_input"], weights["peephole_forget"], weights["peephole_output"]
    clipf = (lambda a: a) if clip is None else (lambda a: np.clip(a, -clip, clip))
    grads = {name: np.zeros_like(weights[name]) for name in WEIGHT_NAMES}
    dxs = [None] * len(caches)
    dh_next = np.zeros_like(caches[0]["h"])
    dc_next = np.zeros_like(caches[0]["c"])
    for t in reversed(range(len(caches))):
        s = caches[t]
        dh = dh_upstream[t] + dh_next
        tc = np.tanh(s["c"])
        d_pre_o = clipf(dh * tc * s["o"] * (1 - s["o"]))
        dc = dc_next + dh * s["o"] * (1 - tc**2) + d_pre_o * w_co
        d_pre_i = clipf(dc * s["g"] * s["i"] * (1 - s["i"]))
        d_pre_f = clipf(dc * s["c_prev"] * s["f"] * (1 - s["f"]))
        d_pre_c = clipf(dc * s["i"] * (1 - s["g"] ** 2))
        dz = np.concatenate([d_pre_i, d_pre_f, d_pre_c, d_pre_o], axis=-1)
        dxs[t] = dz @ k.T
        grads["kernel"] += s["x"].T @ dz
        grads["recurrent_kernel"] += s["h_prev"].T @ dz
        grads["bias"] += dz.sum(0)
        grads["peephole_input"] += np.sum(d_pre_i * s["c_prev"], 0)
        grads["peephole_forget"] += np.sum(d_pre_f * s["c_prev"], 0)
        grads["peephole_output"] += np.sum(d_pre_o * s["c"], 0)
        dh_next = dz @ r.T
        dc_next = dc * s["f"] + d_pre_i * w_ci + d_pre_f * w_cf
        s["dz"] = dz
    return dxs, dh_next, dc_next, grads


def tf_sequence_grads(cell, xs, h0, c0, g_h):
    """Runs the cell through __call__ on all steps; L = sum_t sum(G_t * h_t)."""
    xs_t = [tf.constant(x) for x in xs]
    h0_t, c0_t = tf.constant(h0), tf.constant(c0)
    weights = [getattr(cell, n) for n in WEIGHT_NAMES]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xs_t + [h0_t, c0_t])
        h, c = h0_t, c0_t
        hs = []
        for x in xs_t:
            out, (h, c) = cell(x, [h, c])
            hs.append(out)
        loss = tf.add_n([tf.reduce_sum(g * ht) for g, ht in zip(g_h, hs)])
    dxs = [g.numpy() for g in tape.gradient(loss, xs_t)]
    dh0, dc0 = (g.numpy() for g in tape.gradient(loss, [h0_t, c0_t]))
    dws = {n: g.numpy() for n, g in zip(WEIGHT_NAMES, tape.gradient(loss, weights))}
    del tape
    return [h.numpy() for h in hs], c.numpy(), dxs, dh0, dc0, dws


def sequence_data(rng, steps=4):
    xs = [rng.normal(size=(BATCH, IN)) for _ in range(steps)]
    h0 = rng.normal(0.0, 0.5, (BATCH, UNITS))
    c0 = rng.normal(0.0, 0.5, (BATCH, UNITS))
    return xs, h0, c0


# --------------------------------------------------------------------------
# Forward pass
# --------------------------------------------------------------------------


def test_forward_matches_eqs_7_to_11():
    """Several steps of cell(x_t, [h, c]) equal eqs. 7-11 (gate order i, f, c, o; input and forget
    peepholes on c_{t-1}, output peephole on c_t) to 1e-12."""
    rng = np.random.default_rng(0)
    weights = random_weights(rng, scale=0.8)
    cell = make_cell(weights)
    xs, h0, c0 = sequence_data(rng, steps=5)
    caches = np_forward(weights, xs, h0, c0)
    h, c = tf.constant(h0), tf.constant(c0)
    for x, ref in zip(xs, caches):
        out, (h, c) = cell(tf.constant(x), [h, c])
        assert out.dtype == tf.float64
        np.testing.assert_allclose(out.numpy(), ref["h"], rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(h.numpy(), out.numpy())
        np.testing.assert_allclose(c.numpy(), ref["c"], rtol=1e-12, atol=1e-12)
    # The peepholes are really used: zeroing them changes the result.
    no_peep = dict(weights, peephole_input=0 * weights["peephole_input"],
                   peephole_forget=0 * weights["peephole_forget"], peephole_output=0 * weights["peephole_output"])
    assert not np.allclose(np_forward(no_peep, xs, h0, c0)[-1]["h"], caches[-1]["h"])


def test_default_initialisation_and_state_shapes():
    """Initial bias is [0, forget_bias, 0, 0] (gate order i, f, c, o), peepholes start at 0,
    state_size = [units, units], get_initial_state gives zeros."""
    cell = PeepholeLSTMCell(UNITS, forget_bias=1.5)
    cell.build((None, IN))
    bias = cell.bias.numpy()
    np.testing.assert_array_equal(bias, np.concatenate([np.zeros(UNITS), np.full(UNITS, 1.5), np.zeros(2 * UNITS)]))
    for name in ("peephole_input", "peephole_forget", "peephole_output"):
        np.testing.assert_array_equal(getattr(cell, name).numpy(), np.zeros(UNITS))
    assert cell.kernel.shape == (IN, 4 * UNITS) and cell.recurrent_kernel.shape == (UNITS, 4 * UNITS)
    assert list(cell.state_size) == [UNITS, UNITS] and cell.output_size == UNITS
    h0, c0 = cell.get_initial_state(batch_size=2)
    np.testing.assert_array_equal(h0.numpy(), np.zeros((2, UNITS)))
    np.testing.assert_array_equal(c0.numpy(), np.zeros((2, UNITS)))


def test_keras_rnn_wrapper_matches_eqs_7_to_11():
    """keras.layers.RNN(cell) over a sequence (zero initial state) equals eqs. 7-11."""
    rng = np.random.default_rng(1)
    weights = random_weights(rng)
    cell = make_cell(weights)
    xs, _, _ = sequence_data(rng, steps=3)
    rnn = keras.layers.RNN(cell, return_sequences=True, dtype="float64")
    out = rnn(tf.constant(np.stack(xs, axis=1))).numpy()
    zeros = np.zeros((BATCH, UNITS))
    ref = np.stack([s["h"] for s in np_forward(weights, xs, zeros, zeros)], axis=1)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# Integer inputs
# --------------------------------------------------------------------------


def test_integer_inputs_are_one_hot_rows_and_minus_one_is_null():
    """project_inputs(ids) = one_hot(ids) W_x + b (the x_t terms of eqs. 7-10); id -1 is the
    all-zero null input (bias only); stepping with ids equals stepping with the one-hot floats."""
    rng = np.random.default_rng(2)
    vocab = 6
    weights = random_weights(rng, in_dim=vocab)
    cell = make_cell(weights, in_dim=vocab)
    ids = np.array([0, 3, -1, 5])
    onehot = np.zeros((4, vocab))
    onehot[ids >= 0, ids[ids >= 0]] = 1.0
    got = cell.project_inputs(tf.constant(ids)).numpy()
    np.testing.assert_allclose(got, onehot @ weights["kernel"] + weights["bias"], rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(got[2], weights["bias"])
    # Sequences of ids (batch, time) work too.
    ids2 = np.array([[1, -1, 2], [-1, -1, 4]])
    got2 = cell.project_inputs(tf.constant(ids2, tf.int64)).numpy()
    ref2 = np.eye(vocab + 1)[ids2][..., :vocab]  # id -1 -> last row -> dropped -> zeros
    ref2[ids2 < 0] = 0.0
    np.testing.assert_allclose(got2, ref2 @ weights["kernel"] + weights["bias"], rtol=1e-14, atol=1e-14)
    # Through the cell: ids and the equivalent floats give the same step.
    states = [tf.constant(rng.normal(size=(4, UNITS))), tf.constant(rng.normal(size=(4, UNITS)))]
    h_ids, _ = cell(tf.constant(ids), states)
    h_float, _ = cell(tf.constant(onehot), states)
    np.testing.assert_allclose(h_ids.numpy(), h_float.numpy(), rtol=1e-14, atol=1e-14)
    ref = np_forward(weights, [onehot], states[0].numpy(), states[1].numpy())[0]["h"]
    np.testing.assert_allclose(h_ids.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_project_inputs_rows_for_concatenated_inputs():
    """Concatenated inputs [one_hot(ids), features]: project_inputs(ids, rows) + features @ W_x[rows]
    equals [one_hot, features] W_x + b."""
    rng = np.random.default_rng(3)
    vocab, extra = 4, 3
    weights = random_weights(rng, in_dim=vocab + extra)
    cell = make_cell(weights, in_dim=vocab + extra)
    ids = np.array([2, -1, 0])
    features = rng.normal(size=(3, extra))
    onehot = np.zeros((3, vocab))
    onehot[[0, 2], [2, 0]] = 1.0
    got = (
        cell.project_inputs(tf.constant(ids), rows=(0, vocab))
        + tf.constant(features) @ cell.kernel[vocab:]
    ).numpy()
    ref = np.concatenate([onehot, features], -1) @ weights["kernel"] + weights["bias"]
    np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-13)


# --------------------------------------------------------------------------
# Derivative clipping (section 2.1)
# --------------------------------------------------------------------------


def _step_grads(cell, x, h_prev, c_prev, g_h):
    """Gradients of L = sum(g_h * h_t) for one cell.step(cell.project_inputs(x_t), [h, c]),
    including dL/d(projected_inputs)."""
    x, h0, c0 = tf.constant(x), tf.constant(h_prev), tf.constant(c_prev)
    weights = [getattr(cell, n) for n in WEIGHT_NAMES]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, h0, c0])
        projected = cell.project_inputs(x)
        h, (_, c) = cell.step(projected, [h0, c0])
        loss = tf.reduce_sum(g_h * h)
    dp, dh0, dc0 = (g.numpy() for g in tape.gradient(loss, [projected, h0, c0]))
    dws = {n: g.numpy() for n, g in zip(WEIGHT_NAMES, tape.gradient(loss, weights))}
    del tape
    return h.numpy(), c.numpy(), dp, dh0, dc0, dws


def test_clipping_leaves_forward_pass_unchanged():
    """Section 2.1: clipping acts on derivatives only; the forward pass (eqs. 7-11) is identical."""
    rng = np.random.default_rng(4)
    weights = random_weights(rng, scale=1.0)
    xs, h0, c0 = sequence_data(rng)
    g_h = [np.ones((BATCH, UNITS))] * len(xs)
    hs_c, c_c, *_ = tf_sequence_grads(make_cell(weights, clip=0.01), xs, h0, c0, g_h)
    hs_n, c_n, *_ = tf_sequence_grads(make_cell(weights, clip=None), xs, h0, c0, g_h)
    for a, b in zip(hs_c, hs_n):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(c_c, c_n)


def test_preactivation_derivatives_clipped_for_large_upstream():
    """With loss = 1e4 sum(h_t), dL/d(projected inputs) = dL/d(pre-activations of i, f, c, o) is
    bounded by clip and reaches it; all gradients equal the clipped NumPy backprop of eqs. 7-11."""
    rng = np.random.default_rng(5)
    clip = 1.0
    weights = random_weights(rng)
    cell = make_cell(weights, clip=clip)
    x = rng.normal(size=(BATCH, IN))
    h_prev = rng.normal(0.0, 0.5, (BATCH, UNITS))
    c_prev = rng.normal(0.0, 1.0, (BATCH, UNITS))
    g_h = np.full((BATCH, UNITS), 1e4)
    h, c, dp, dh0, dc0, dws = _step_grads(cell, x, h_prev, c_prev, g_h)
    assert np.max(np.abs(dp)) <= clip
    np.testing.assert_allclose(np.max(np.abs(dp)), clip, rtol=0, atol=0)
    for gate in range(4):  # every gate's derivative is clipped somewhere
        assert np.any(np.abs(dp[:, gate * UNITS : (gate + 1) * UNITS]) == clip), gate
    caches = np_forward(weights, [x], h_prev, c_prev)
    np.testing.assert_allclose(h, caches[0]["h"], rtol=1e-12, atol=1e-12)
    _, dh_ref, dc_ref, dw_ref = np_backward(weights, caches, [g_h], clip)
    np.testing.assert_allclose(dp, caches[0]["dz"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dh0, dh_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dc0, dc_ref, rtol=1e-10, atol=1e-10)
    for name in WEIGHT_NAMES:
        np.testing.assert_allclose(dws[name], dw_ref[name], rtol=1e-10, atol=1e-10, err_msg=name)
    # Derivatives that are not pre-activation derivatives are not clipped: the cell-state path
    # (dL/dc_{t-1} = dL/dc_t f + ...) and sums over gates/batch can exceed the limit.
    assert np.max(np.abs(dc0)) > 100 * clip
    assert np.max(np.abs(dh0)) > clip
    assert np.max(np.abs(dws["recurrent_kernel"])) > clip
    # And without clipping the pre-activation derivatives are far larger.
    _, _, dp_none, *_ = _step_grads(make_cell(weights), x, h_prev, c_prev, g_h)
    assert np.max(np.abs(dp_none)) > 100 * clip


def test_clipping_through_time_matches_numpy_bptt():
    """Over several steps, every step's pre-activation derivative is clipped (section 2.1) and all
    gradients (inputs, h_0, c_0, every weight) match a NumPy BPTT of eqs. 7-11 with the same clipping."""
    rng = np.random.default_rng(6)
    clip = 0.5
    weights = random_weights(rng)
    xs, h0, c0 = sequence_data(rng, steps=4)
    g_h = [rng.normal(0.0, 20.0, (BATCH, UNITS)) for _ in xs]
    caches = np_forward(weights, xs, h0, c0)
    dx_ref, dh_ref, dc_ref, dw_ref = np_backward(weights, caches, g_h, clip)
    assert all(np.max(np.abs(s["dz"])) == clip for s in caches)  # clipping is active at each step
    _, _, dxs, dh0, dc0, dws = tf_sequence_grads(make_cell(weights, clip=clip), xs, h0, c0, g_h)
    for t in range(len(xs)):
        np.testing.assert_allclose(dxs[t], dx_ref[t], rtol=1e-10, atol=1e-10, err_msg=f"dx_{t}")
    np.testing.assert_allclose(dh0, dh_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dc0, dc_ref, rtol=1e-10, atol=1e-10)
    for name in WEIGHT_NAMES:
        np.testing.assert_allclose(dws[name], dw_ref[name], rtol=1e-10, atol=1e-10, err_msg=name)
    # Sanity: the unclipped reference differs, so the comparison discriminates.
    _, _, _, dw_unclipped = np_backward(weights, np_forward(weights, xs, h0, c0), g_h, None)
    assert not np.allclose(dw_unclipped["kernel"], dw_ref["kernel"], rtol=1e-3)


def test_small_upstream_gradients_identical_to_unclipped():
    """When every pre-activation derivative is inside [-clip, clip], clipping changes nothing: all
    gradients equal the unclipped ones exactly, and both equal the NumPy BPTT of eqs. 7-11."""
    rng = np.random.default_rng(7)
    clip = 10.0
    weights = random_weights(rng)
    xs, h0, c0 = sequence_data(rng, steps=3)
    g_h = [rng.normal(0.0, 0.1, (BATCH, UNITS)) for _ in xs]
    caches = np_forward(weights, xs, h0, c0)
    dx_ref, dh_ref, dc_ref, dw_ref = np_backward(weights, caches, g_h, None)
    assert max(np.max(np.abs(s["dz"])) for s in caches) < 0.1 * clip  # well inside the limit
    clipped = tf_sequence_grads(make_cell(weights, clip=clip), xs, h0, c0, g_h)
    plain = tf_sequence_grads(make_cell(weights, clip=None), xs, h0, c0, g_h)
    _, _, dxs_c, dh0_c, dc0_c, dws_c = clipped
    _, _, dxs_n, dh0_n, dc0_n, dws_n = plain
    for a, b in zip(dxs_c, dxs_n):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(dh0_c, dh0_n)
    np.testing.assert_array_equal(dc0_c, dc0_n)
    for name in WEIGHT_NAMES:
        np.testing.assert_array_equal(dws_c[name], dws_n[name], err_msg=name)
    for t in range(len(xs)):
        np.testing.assert_allclose(dxs_n[t], dx_ref[t], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh0_n, dh_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dc0_n, dc_ref, rtol=1e-10, atol=1e-12)
    for name in WEIGHT_NAMES:
        np.testing.assert_allclose(dws_n[name], dw_ref[name], rtol=1e-10, atol=1e-12, err_msg=name)


# --------------------------------------------------------------------------
# Configuration and argument validation
# --------------------------------------------------------------------------


def test_config_round_trip():
    """get_config / from_config (and Keras serialisation) preserve units, clip and forget_bias."""
    cell = PeepholeLSTMCell(7, clip=10.0, forget_bias=2.0, name="lstm_cell", dtype="float64")
    config = cell.get_config()
    assert config["units"] == 7 and config["clip"] == 10.0 and config["forget_bias"] == 2.0
    clone = PeepholeLSTMCell.from_config(config)
    assert (clone.units, clone.clip, clone.forget_bias, clone.name) == (7, 10.0, 2.0, "lstm_cell")
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cell))
    assert isinstance(restored, PeepholeLSTMCell) and restored.get_config() == config
    assert PeepholeLSTMCell.from_config(PeepholeLSTMCell(3).get_config()).clip is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"units": 0}, "units must be a positive integer"),
        ({"units": -3}, "units must be a positive integer"),
        ({"units": 2.5}, "units must be a positive integer"),
        ({"units": 4, "clip": -1}, "clip must be a positive number or None"),
        ({"units": 4, "clip": 0}, "clip must be a positive number or None"),
        ({"units": 4, "clip": "big"}, "clip must be a positive number or None"),
    ],
)
def test_invalid_arguments_raise_value_error(kwargs, message):
    """Invalid units or clip raise ValueError with a clear message."""
    with pytest.raises(ValueError, match=message):
        PeepholeLSTMCell(**kwargs)
