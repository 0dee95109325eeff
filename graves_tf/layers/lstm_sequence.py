"""A whole sequence of one peephole LSTM layer, with a hand-written backward pass.

The forward pass is eqs. 7-11 step by step (:func:`peephole_lstm_step`, which
:meth:`PeepholeLSTMCell.activate` also runs). The backward pass is backpropagation
through time written out, as in the paper's section 2.1:

* each step does one matmul (``dz_t @ W_hh^T``) and the elementwise
  derivatives of eqs. 7-11; the derivatives with respect to the
  pre-activations ``dz_t`` are clipped to ``[-clip, clip]`` there, exactly
  where :func:`clip_gradient` clips them in the step-by-step graph;
* the weight derivatives, ``dW_hh = sum_t h_{t-1}^T dz_t`` and the peephole
  sums, are computed once after the loop as one large matmul over all
  timesteps instead of one small matmul per step.

:func:`windowed_lstm_sequence` does the same for the first layer of the
synthesis network together with the soft window it feeds (eqs. 46-52), the
window's derivatives (eqs. 56-60) written out likewise.

Automatic differentiation of the step-by-step graph computes the same
numbers (``tests/test_fast_paths.py`` checks outputs and gradients); this
version spends far fewer operations per timestep.
"""

from keras import ops

from graves_tf.layers import backend_ops
from graves_tf.layers.custom_gradient import custom_gradient
from graves_tf.layers.gaussian_window import soft_window
from graves_tf.layers.gradient_clipping import clip_gradient
from graves_tf.layers.precision import current as matmul_dtype
from graves_tf.layers.precision import for_matmul, matmul
from graves_tf.layers.scan import scan


def peephole_lstm_step(z, c_prev, weights, clip=None):
    """Eqs. 7-11 from the gate pre-activations, for one timestep.

    Args:
        z: ``(batch, 4 * units)``: input terms + recurrent term + bias (no
            peephole terms), gate order ``[i, f, c, o]``.
        c_prev: ``(batch, units)``.
        weights: ``peephole_input``, ``peephole_forget``, ``peephole_output`` ``(units,)``.
        clip: if set, the derivatives with respect to the four
            pre-activations are clipped by :func:`clip_gradient` (identity forward).

    Returns:
        ``(i, f, g, o, c, tanh_c, h)``: the gates (g = tanh of the cell
        input), c_t, tanh(c_t) and h_t.
    """
    z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
    i = ops.sigmoid(clip_gradient(z_i + weights["peephole_input"] * c_prev, clip))  # (7)
    f = ops.sigmoid(clip_gradient(z_f + weights["peephole_forget"] * c_prev, clip))  # (8)
    g = backend_ops.tanh(clip_gradient(z_c, clip))
    c = f * c_prev + i * g  # (9)
    o = ops.sigmoid(clip_gradient(z_o + weights["peephole_output"] * c, clip))  # (10)
    tanh_c = backend_ops.tanh(c)
    return i, f, g, o, c, tanh_c, o * tanh_c  # (11)


def _clip(x, limit):
    return x if limit is None else backend_ops.clip(x, limit)


def _select(mask, new, old):
    return mask * new + (1.0 - mask) * old


def _or_zeros(gradient, like):
    return ops.zeros_like(like) if gradient is None else gradient


def _lstm_step_backward(dh, dc_in, gates, c_prev, tanh_c, peepholes, clip):
    """Backward of eqs. 7-11 for one step: ``(dz, dc_prev)``, dz clipped like :func:`clip_gradient` clips."""
    p_i, p_f, p_o = peepholes
    i, f, g, o = ops.split(gates, 4, axis=-1)
    da_o = _clip(dh * tanh_c * o * (1.0 - o), clip)
    dc = dc_in + dh * o * (1.0 - tanh_c * tanh_c) + da_o * p_o
    da_c = _clip(dc * i * (1.0 - g * g), clip)
    da_i = _clip(dc * g * i * (1.0 - i), clip)
    da_f = _clip(dc * c_prev * f * (1.0 - f), clip)
    dz = ops.concatenate([da_i, da_f, da_c, da_o], axis=-1)
    return dz, dc * f + da_i * p_i + da_f * p_f


def _flat(x):
    return ops.reshape(x, (-1, ops.shape(x)[-1]))


def _weight_gradients(recurrent_inputs_seq, dz_seq, c_prev_seq, c_new_seq, dtype=None):
    """After the loop: d(stacked kernel) as one matmul over all steps (in ``dtype``), and the peephole sums."""
    d_kernel = matmul(ops.transpose(_flat(recurrent_inputs_seq)), _flat(dz_seq), dtype)
    da_i, da_f, _, da_o = ops.split(dz_seq, 4, axis=-1)
    sum_steps = lambda x: ops.sum(_flat(x), axis=0)  # noqa: E731
    return d_kernel, sum_steps(da_i * c_prev_seq), sum_steps(da_f * c_prev_seq), sum_steps(da_o * c_new_seq)


def _forward_lstm(z, c_prev, peepholes):
    weights = dict(zip(("peephole_input", "peephole_forget", "peephole_output"), peepholes))
    i, f, g, o, c, tanh_c, h = peephole_lstm_step(z, c_prev, weights)
    return h, c, tanh_c, ops.concatenate([i, f, g, o], axis=-1)


PEEPHOLES = ("peephole_input", "peephole_forget", "peephole_output")


def lstm_sequence(z_seq, mask_seq, h0, c0, weights, clip=None):
    """Runs one LSTM layer over a time-major sequence.

    Args:
        z_seq: ``(T, batch, 4 * units)``: the input terms of every step
            (everything but ``W_hh h_{t-1}`` and the peepholes), bias included.
        mask_seq: ``(T, batch, 1)``: 1 for real steps; at 0 the state is
            carried unchanged.
        h0, c0: ``(batch, units)`` initial state.
        weights: ``recurrent_kernel`` ``(units, 4 * units)`` and the three
            peephole vectors, as tensors (``PeepholeLSTMCell.recurrent_weights()``).
        clip: the derivative clip of the pre-activations, or None.

    Returns:
        ``(h_seq, h_T, c_T)``: ``(T, batch, units)`` hidden vectors (the new
        h of each step, also at masked steps) and the final carried state.
    """
    peepholes = [weights[n] for n in PEEPHOLES]
    return _cached(_lstm_sequence, clip)(z_seq, mask_seq, h0, c0, weights["recurrent_kernel"], *peepholes)


# The matmul precision of a sequence function is the one in force when it is called (layers/precision.py);
# its backward pass, traced later, keeps it.


_CACHE = {}


def _cached(make, clip):
    key = (make, clip, matmul_dtype())
    if key not in _CACHE:
        _CACHE[key] = make(clip, key[2])
    return _CACHE[key]


def _lstm_sequence(clip, dtype=None):
    @custom_gradient
    def run(z_seq, mask_seq, h0, c0, kernel, p_i, p_f, p_o):
        peepholes = (p_i, p_f, p_o)
        kernel_mm = for_matmul(kernel, dtype)  # cast once, outside the loop (bfloat16 only)

        def forward(carry, xs):
            h_prev, c_prev = carry
            z_x, m = xs
            h, c, tanh_c, gates = _forward_lstm(z_x + matmul(h_prev, kernel_mm, dtype), c_prev, peepholes)
            h_next, c_next = _select(m, h, h_prev), _select(m, c, c_prev)
            return (h_next, c_next), (h, gates, c, tanh_c, h_prev, c_prev)

        (h_last, c_last), (h_seq, gates_seq, c_new_seq, tanh_c_seq, h_prev_seq, c_prev_seq) = scan(
            forward, (h0, c0), (z_seq, mask_seq)
        )

        def grad(dh_seq, dh_last, dc_last):
            kernel_t = for_matmul(ops.transpose(kernel), dtype)

            def backward(carry, xs):
                dh_carry, dc_carry = carry
                dy, m, gates, c_prev, tanh_c = xs
                dz, dc_prev = _lstm_step_backward(
                    dy + m * dh_carry, m * dc_carry, gates, c_prev, tanh_c, peepholes, clip
                )
                dh_prev = matmul(dz, kernel_t, dtype) + (1.0 - m) * dh_carry
                return (dh_prev, dc_prev + (1.0 - m) * dc_carry), dz

            (dh0, dc0), dz_seq = scan(
                backward,
                (_or_zeros(dh_last, h0), _or_zeros(dc_last, c0)),
                (_or_zeros(dh_seq, h_seq), mask_seq, gates_seq, c_prev_seq, tanh_c_seq),
                reverse=True,
            )
            weight_grads = _weight_gradients(h_prev_seq, dz_seq, c_prev_seq, c_new_seq, dtype)
            return (dz_seq, ops.zeros_like(mask_seq), dh0, dc0, *weight_grads)

        return (h_seq, h_last, c_last), grad

    return run


def windowed_lstm_sequence(z_seq, mask_seq, lstm_state, window_state, weights, context, clip=None):
    """The first layer of the synthesis network and its soft window over a time-major sequence.

    Per step (eqs. 52, 7-11, 48, 46-51): ``z = z_x + [w_{t-1}, h_{t-1}] @ K``,
    the LSTM step, then the window from the new h.

    Args:
        z_seq: ``(T, batch, 4 * units)``: the x terms with the bias.
        mask_seq: ``(T, batch, 1)``.
        lstm_state: ``[h0, c0]``.
        window_state: ``{"kappa": (batch, K), "w": (batch, V)}``.
        weights: ``stacked_kernel`` ``(V + units, 4 * units)`` (the w rows of
            the layer's kernel stacked on its recurrent kernel), the three
            peephole vectors, and ``window_kernel``, ``window_bias`` (eq. 48).
        context: ``{"text_onehot": (batch, U, V), "text_mask": (batch, U)}``.
        clip: the derivative clip of the LSTM pre-activations, or None.

    Returns:
        ``(outputs, lstm_state, window_state)``: outputs ``(h, w, phi,
        phi_end)`` per step (time-major) and the final carried states.
    """
    h0, c0 = lstm_state
    args = [z_seq, mask_seq, h0, c0, window_state["kappa"], window_state["w"], weights["stacked_kernel"]]
    args += [weights[n] for n in PEEPHOLES] + [weights["window_kernel"], weights["window_bias"]]
    args += [context["text_onehot"], context["text_mask"]]
    h_seq, w_seq, phi_seq, phi_end_seq, h_last, c_last, kappa_last, w_last = _cached(
        _windowed_lstm_sequence, clip
    )(*args)
    return (h_seq, w_seq, phi_seq, phi_end_seq), [h_last, c_last], {"kappa": kappa_last, "w": w_last}


def _soft_window_backward(window_params, kappa, dw, dphi, dphi_end, dkappa, text_onehot, text_mask):
    """Derivatives of eqs. 46-51 (the paper's 56-60) for one step.

    Returns ``(d window_params, d kappa_{t-1})`` given the derivatives with
    respect to w_t, phi_t, phi_end_t and kappa_t (from later steps).
    """
    alpha_hat, beta_hat, kappa_hat = ops.split(window_params, 3, axis=-1)
    alpha, beta = ops.expand_dims(ops.exp(alpha_hat), 1), ops.expand_dims(ops.exp(beta_hat), 1)
    num_chars = ops.shape(text_mask)[1]
    positions = ops.cast(ops.arange(1, num_chars + 1), kappa.dtype)
    length = ops.sum(text_mask, axis=-1)
    dphi_total = (dphi + ops.einsum("bv,buv->bu", dw, text_onehot)) * text_mask
    # Every u = 1..U and u = U + 1 (phi_end) in one (batch, U + 1, K) block.
    u = ops.concatenate([ops.broadcast_to(positions, ops.shape(text_mask)), ops.expand_dims(length + 1.0, -1)], axis=1)
    weight = ops.concatenate([dphi_total, ops.expand_dims(dphi_end, -1)], axis=1)
    distance = ops.expand_dims(kappa, 1) - ops.expand_dims(u, -1)
    terms = ops.expand_dims(weight, -1) * alpha * ops.exp(-beta * distance**2)
    d_alpha_hat = ops.sum(terms, axis=1)
    d_beta_hat = ops.sum(terms * -beta * distance**2, axis=1)
    d_kappa = dkappa + ops.sum(terms * -2.0 * beta * distance, axis=1)
    d_params = ops.concatenate([d_alpha_hat, d_beta_hat, d_kappa * ops.exp(kappa_hat)], axis=-1)
    return d_params, d_kappa


def _windowed_lstm_sequence(clip, dtype=None):
    @custom_gradient
    def run(z_seq, mask_seq, h0, c0, kappa0, w0, kernel, p_i, p_f, p_o, window_kernel, window_bias, onehot, text_mask):
        peepholes = (p_i, p_f, p_o)
        kernel_mm = for_matmul(kernel, dtype)  # the window's own matmuls stay float32

        def forward(carry, xs):
            h_prev, c_prev, kappa_prev, w_prev = carry
            z_x, m = xs
            recurrent_inputs = ops.concatenate([w_prev, h_prev], axis=-1)
            z = z_x + matmul(recurrent_inputs, kernel_mm, dtype)
            h, c, tanh_c, gates = _forward_lstm(z, c_prev, peepholes)
            params = backend_ops.matmul(h, window_kernel) + window_bias
            window = soft_window(params, kappa_prev, onehot, text_mask)
            new = (h, c, window["kappa"], window["w"])
            carry_next = tuple(_select(m, a, b) for a, b in zip(new, carry))
            saved = (gates, c, tanh_c, params, window["kappa"], c_prev, recurrent_inputs)
            return carry_next, (h, window["w"], window["phi"], window["phi_end"]) + saved

        carry_last, ys = scan(forward, (h0, c0, kappa0, w0), (z_seq, mask_seq))
        h_seq, w_seq, phi_seq, phi_end_seq = ys[:4]
        gates_seq, c_new_seq, tanh_c_seq, params_seq, kappa_new_seq = ys[4:9]
        c_prev_seq, recurrent_inputs_seq = ys[9:]

        def grad(*upstream):
            dh_seq, dw_seq, dphi_seq, dphi_end_seq = (
                _or_zeros(g, like) for g, like in zip(upstream[:4], (h_seq, w_seq, phi_seq, phi_end_seq))
            )
            d_carry_last = tuple(_or_zeros(g, like) for g, like in zip(upstream[4:], (h0, c0, kappa0, w0)))
            kernel_t = for_matmul(ops.transpose(kernel), dtype)
            window_kernel_t = ops.transpose(window_kernel)
            w_dim = ops.shape(w0)[-1]

            def backward(carry, xs):
                dh_carry, dc_carry, dkappa_carry, dw_carry = carry
                dy_h, dy_w, dy_phi, dy_phi_end, m, gates, c_prev, tanh_c, params, kappa = xs
                d_params, dkappa_prev = _soft_window_backward(
                    params, kappa, dy_w + m * dw_carry, dy_phi, dy_phi_end, m * dkappa_carry, onehot, text_mask
                )
                dh = dy_h + m * dh_carry + backend_ops.matmul(d_params, window_kernel_t)
                dz, dc_prev = _lstm_step_backward(dh, m * dc_carry, gates, c_prev, tanh_c, peepholes, clip)
                d_inputs = matmul(dz, kernel_t, dtype)
                keep = 1.0 - m
                new_carry = (
                    d_inputs[:, w_dim:] + keep * dh_carry,
                    dc_prev + keep * dc_carry,
                    dkappa_prev + keep * dkappa_carry,
                    d_inputs[:, :w_dim] + keep * dw_carry,
                )
                return new_carry, (dz, d_params)

            xs = (dh_seq, dw_seq, dphi_seq, dphi_end_seq, mask_seq, gates_seq, c_prev_seq, tanh_c_seq, params_seq, kappa_new_seq)
            (dh0, dc0, dkappa0, dw0), (dz_seq, d_params_seq) = scan(backward, d_carry_last, xs, reverse=True)
            weight_grads = _weight_gradients(recurrent_inputs_seq, dz_seq, c_prev_seq, c_new_seq, dtype)
            d_window_kernel = backend_ops.matmul(ops.transpose(_flat(h_seq)), _flat(d_params_seq))
            d_window_bias = ops.sum(_flat(d_params_seq), axis=0)
            return (
                dz_seq, ops.zeros_like(mask_seq), dh0, dc0, dkappa0, dw0, *weight_grads,
                d_window_kernel, d_window_bias, ops.zeros_like(onehot), ops.zeros_like(text_mask),
            )

        return (h_seq, w_seq, phi_seq, phi_end_seq) + tuple(carry_last), grad

    return run
