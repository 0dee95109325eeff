"""Tests of the soft window of handwriting synthesis (Graves 2013, section 5.1, eqs. 46-60).

Expected values are computed independently in NumPy float64 from the paper's
equations; characters are indexed u = 1..U.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf.layers import GaussianWindow, soft_window  # noqa: E402

B, U, V, K = 3, 7, 5, 2
LENGTHS = np.array([7, 4, 1])
PAD_ID = 3  # a real alphabet entry, so a missing mask would visibly leak into w


# --------------------------------------------------------------------------
# NumPy float64 reference
# --------------------------------------------------------------------------


def np_window(params, kappa_prev, onehot, mask):
    """Eqs. 46-47 and 49-51; phi_end = phi(t, U_b + 1) with U_b = sum of the mask."""
    k = params.shape[-1] // 3
    alpha_hat, beta_hat, kappa_hat = params[:, :k], params[:, k : 2 * k], params[:, 2 * k :]
    alpha = np.exp(alpha_hat)  # (49)
    beta = np.exp(beta_hat)  # (50)
    kappa = kappa_prev + np.exp(kappa_hat)  # (51)
    u = np.arange(1, onehot.shape[1] + 1, dtype=np.float64)

    def phi_at(pos):  # pos (B, n) -> (B, n), eq. 46
        return np.sum(
            alpha[:, None, :] * np.exp(-beta[:, None, :] * (kappa[:, None, :] - pos[:, :, None]) ** 2),
            axis=-1,
        )

    phi = phi_at(np.broadcast_to(u, (params.shape[0], len(u)))) * mask
    w = np.einsum("bu,buv->bv", phi, onehot)  # (47)
    lengths = mask.sum(axis=-1)
    phi_end = phi_at((lengths + 1.0)[:, None])[:, 0]
    return {"w": w, "kappa": kappa, "phi": phi, "phi_end": phi_end,
            "alpha": alpha, "beta": beta, "u": u}


def np_window_grads(params, kappa_prev, onehot, mask, g_w, g_kappa_next):
    """Eqs. 56-60: dL/d(alpha_hat, beta_hat, kappa_hat) and dL/dkappa_t."""
    ref = np_window(params, kappa_prev, onehot, mask)
    alpha, beta, kappa, u = ref["alpha"], ref["beta"], ref["kappa"], ref["u"]
    k = params.shape[-1] // 3
    kappa_hat = params[:, 2 * k :]
    # (56): eps(k,t,u) = alpha exp(-beta (kappa - u)^2) sum_j dL/dw_j c_u^j  (padded c_u masked out)
    dl_dw_c = np.einsum("bv,buv->bu", g_w, onehot) * mask  # (B, U)
    gauss = alpha[:, :, None] * np.exp(-beta[:, :, None] * (kappa[:, :, None] - u) ** 2)  # (B, K, U)
    eps = gauss * dl_dw_c[:, None, :]
    d_alpha_hat = eps.sum(-1)  # (57)
    d_beta_hat = -beta * np.sum(eps * (kappa[:, :, None] - u) ** 2, axis=-1)  # (58)
    d_kappa = g_kappa_next + 2.0 * beta * np.sum(eps * (u - kappa[:, :, None]), axis=-1)  # (59)
    d_kappa_hat = np.exp(kappa_hat) * d_kappa  # (60)
    return d_alpha_hat, d_beta_hat, d_kappa_hat, d_kappa


def make_text(rng, pad_id=PAD_ID):
    ids = rng.integers(0, V, size=(B, U))
    mask = (np.arange(U)[None, :] < LENGTHS[:, None]).astype(np.float64)
    ids = np.where(mask > 0, ids, pad_id)
    onehot = np.eye(V)[ids]
    return ids, onehot, mask


def make_params(rng):
    alpha_hat = rng.normal(0.0, 0.5, (B, K))
    beta_hat = rng.normal(-0.7, 0.4, (B, K))  # widths of a few characters
    kappa_hat = rng.normal(0.0, 0.5, (B, K))
    kappa_prev = rng.uniform(0.0, 4.0, (B, K))
    return np.concatenate([alpha_hat, beta_hat, kappa_hat], axis=-1), kappa_prev


def relative_error(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


# --------------------------------------------------------------------------
# soft_window forward
# --------------------------------------------------------------------------


def test_soft_window_matches_eqs_46_47_49_51():
    """w (47), kappa (51), phi (46, with alpha, beta per 49-50) and phi_end = phi(t, U_b + 1)."""
    rng = np.random.default_rng(0)
    _, onehot, mask = make_text(rng)
    params, kappa_prev = make_params(rng)
    out = soft_window(tf.constant(params), tf.constant(kappa_prev), tf.constant(onehot), tf.constant(mask))
    ref = np_window(params, kappa_prev, onehot, mask)
    assert out["w"].shape == (B, V) and out["phi"].shape == (B, U) and out["phi_end"].shape == (B,)
    for key in ("w", "kappa", "phi", "phi_end"):
        np.testing.assert_allclose(out[key].numpy(), ref[key], rtol=1e-12, atol=1e-15, err_msg=key)
    assert np.any(ref["w"] > 1e-2)  # the window actually covers characters


def test_soft_window_masks_padding_and_uses_own_length_for_phi_end():
    """Eqs. 46-47 on padded text: phi = 0 on padding, padding never enters w, and phi_end is
    phi(t, U_b + 1) for each sequence's own length U_b (not the padded length U + 1)."""
    rng = np.random.default_rng(1)
    _, onehot, mask = make_text(rng)
    params, kappa_prev = make_params(rng)
    # Put every window right over the padding so that leaks would be large.
    kappa_prev[:] = LENGTHS[:, None] + 1.0
    params[:, 2 * K :] = -30.0  # kappa_t ~ kappa_{t-1}
    params[:, K : 2 * K] = np.log(0.3)
    out = soft_window(tf.constant(params), tf.constant(kappa_prev), tf.constant(onehot), tf.constant(mask))
    phi = out["phi"].numpy()
    np.testing.assert_array_equal(phi[mask == 0], 0.0)
    assert np.all(phi[mask == 1] > 0)
    # Changing the padded characters does not change w.
    _, onehot_other, _ = make_text(np.random.default_rng(1), pad_id=0)
    out_other = soft_window(tf.constant(params), tf.constant(kappa_prev), tf.constant(onehot_other), tf.constant(mask))
    np.testing.assert_array_equal(out["w"].numpy(), out_other["w"].numpy())
    # w equals the sum over the real characters only.
    w_ref = np.stack([phi[b, : LENGTHS[b]] @ onehot[b, : LENGTHS[b]] for b in range(B)])
    np.testing.assert_allclose(out["w"].numpy(), w_ref, rtol=1e-12)
    # phi_end at U_b + 1 with U_b = 7, 4, 1.
    alpha = np.exp(params[:, :K])
    beta = np.exp(params[:, K : 2 * K])
    kappa = out["kappa"].numpy()
    phi_end = np.sum(alpha * np.exp(-beta * (kappa - (LENGTHS[:, None] + 1.0)) ** 2), axis=-1)
    np.testing.assert_allclose(out["phi_end"].numpy(), phi_end, rtol=1e-12)
    assert np.all(out["phi_end"].numpy() > 0.5)  # kappa sits at U_b + 1, so phi_end ~ sum(alpha)


# --------------------------------------------------------------------------
# soft_window gradients, eqs. 56-60
# --------------------------------------------------------------------------


def test_soft_window_gradients_match_eqs_56_to_60():
    """Autodiff of L = sum(G_w w_t) + sum(G_k kappa_t) equals eqs. 57 (alpha_hat), 58 (beta_hat),
    60 (kappa_hat) with 59 (dL/dkappa_t = G_k + 2 beta sum_u eps (u - kappa)) and eps per 56."""
    rng = np.random.default_rng(2)
    _, onehot, mask = make_text(rng)
    params, kappa_prev = make_params(rng)
    g_w = rng.normal(size=(B, V))
    g_k = rng.normal(size=(B, K))
    p_var, k_var = tf.constant(params), tf.constant(kappa_prev)
    with tf.GradientTape() as tape:
        tape.watch([p_var, k_var])
        out = soft_window(p_var, k_var, tf.constant(onehot), tf.constant(mask))
        loss = tf.reduce_sum(g_w * out["w"]) + tf.reduce_sum(g_k * out["kappa"])
    d_params, d_kappa_prev = (g.numpy() for g in tape.gradient(loss, [p_var, k_var]))
    d_alpha_hat, d_beta_hat, d_kappa_hat, d_kappa = np_window_grads(params, kappa_prev, onehot, mask, g_w, g_k)
    for name, got, exp in (
        ("alpha_hat (57)", d_params[:, :K], d_alpha_hat),
        ("beta_hat (58)", d_params[:, K : 2 * K], d_beta_hat),
        ("kappa_hat (60)", d_params[:, 2 * K :], d_kappa_hat),
        ("kappa_{t-1} (59)", d_kappa_prev, d_kappa),
    ):
        err = relative_error(got, exp)
        assert err < 1e-6, f"{name}: relative error {err:.3g}"
    # The window term of eq. 59 is non-trivial here (not just G_k).
    assert relative_error(d_kappa, g_k) > 1e-2


def test_two_step_kappa_gradient_follows_eq59_recursion():
    """Two chained soft_window steps: dL/dkappa_1 = dL/dkappa_2 + 2 beta_1 sum_u eps_1 (u - kappa_1)
    (eq. 59), and dL/dkappa_hat_1 = exp(kappa_hat_1) dL/dkappa_1 (eq. 60)."""
    rng = np.random.default_rng(3)
    _, onehot, mask = make_text(rng)
    params1, kappa0 = make_params(rng)
    params2, _ = make_params(rng)
    g_w1, g_w2 = rng.normal(size=(B, V)), rng.normal(size=(B, V))
    g_k = rng.normal(size=(B, K))
    p1, p2, k0 = tf.constant(params1), tf.constant(params2), tf.constant(kappa0)
    oh, mk = tf.constant(onehot), tf.constant(mask)
    with tf.GradientTape() as tape:
        tape.watch([p1, p2, k0])
        s1 = soft_window(p1, k0, oh, mk)
        s2 = soft_window(p2, s1["kappa"], oh, mk)
        loss = (
            tf.reduce_sum(g_w1 * s1["w"]) + tf.reduce_sum(g_w2 * s2["w"]) + tf.reduce_sum(g_k * s2["kappa"])
        )
    d_p1, d_p2, d_k0 = (g.numpy() for g in tape.gradient(loss, [p1, p2, k0]))
    kappa1 = np_window(params1, kappa0, onehot, mask)["kappa"]
    # Step 2 first: its dL/dkappa_2 (eq. 59 with dL/dkappa_3 = G_k).
    a2, b2, kh2, dk2 = np_window_grads(params2, kappa1, onehot, mask, g_w2, g_k)
    # Step 1 receives dL/dkappa_2 as its "next" derivative.
    a1, b1, kh1, dk1 = np_window_grads(params1, kappa0, onehot, mask, g_w1, dk2)
    np.testing.assert_allclose(d_p2, np.concatenate([a2, b2, kh2], -1), rtol=1e-6, atol=1e-12)
    assert relative_error(d_p1[:, 2 * K :], kh1) < 1e-6
    assert relative_error(d_p1[:, :K], a1) < 1e-6
    assert relative_error(d_p1[:, K : 2 * K], b1) < 1e-6
    assert relative_error(d_k0, dk1) < 1e-6
    # The recursion matters: ignoring dL/dkappa_2 gives a different answer.
    _, _, kh1_wrong, _ = np_window_grads(params1, kappa0, onehot, mask, g_w1, np.zeros_like(g_k))
    assert relative_error(kh1_wrong, kh1) > 1e-2


# --------------------------------------------------------------------------
# GaussianWindow layer
# --------------------------------------------------------------------------


def _built_layer(hidden_dim, seed):
    layer = GaussianWindow(K, V, dtype="float64")
    layer.build((None, hidden_dim))
    rng = np.random.default_rng(seed)
    layer.kernel.assign(rng.normal(0.0, 0.3, (hidden_dim, 3 * K)))
    layer.bias.assign(np.concatenate([np.zeros(K), np.full(K, -1.0), np.full(K, -1.0)]))
    return layer


def test_layer_steps_match_eqs_46_to_51():
    """GaussianWindow.step: eq. 48 (p = h W + b) then eqs. 46-51 per step; kappa is nondecreasing
    (eq. 51); the state carries kappa_t and w_t; context one-hot encodes ids and keeps the mask."""
    rng = np.random.default_rng(4)
    hidden_dim, steps = 6, 8
    layer = _built_layer(hidden_dim, seed=5)
    ids, onehot, mask = make_text(rng)
    context = layer.context(tf.constant(ids), tf.constant(mask.astype(np.int32)))
    np.testing.assert_array_equal(context["text_onehot"].numpy(), onehot)
    np.testing.assert_array_equal(context["text_mask"].numpy(), mask)
    state = layer.initial_state(B)
    np.testing.assert_array_equal(state["kappa"].numpy(), np.zeros((B, K)))
    np.testing.assert_array_equal(state["w"].numpy(), np.zeros((B, V)))
    assert layer.output_dim == V
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    kappa_ref = np.zeros((B, K))
    kappas = [kappa_ref]
    for _ in range(steps):
        hidden = rng.normal(size=(B, hidden_dim))
        w, state, extra = layer.step(tf.constant(hidden), state, context)
        ref = np_window(hidden @ kernel + bias, kappa_ref, onehot, mask)
        np.testing.assert_allclose(w.numpy(), ref["w"], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(state["kappa"].numpy(), ref["kappa"], rtol=1e-12)
        np.testing.assert_array_equal(state["w"].numpy(), w.numpy())
        np.testing.assert_allclose(extra["phi"].numpy(), ref["phi"], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(extra["phi_end"].numpy(), ref["phi_end"], rtol=1e-12, atol=1e-15)
        kappa_ref = ref["kappa"]
        kappas.append(state["kappa"].numpy())
    assert np.all(np.diff(np.stack(kappas), axis=0) > 0)  # offsets exp(kappa_hat) > 0


def test_layer_kappa_nondecreasing_with_default_initialisation():
    """Eq. 51 with the layer's own initial weights, called through __call__ (which builds it)."""
    keras.utils.set_random_seed(0)
    layer = GaussianWindow(4, V)
    rng = np.random.default_rng(6)
    ids, _, mask = make_text(rng)
    context = layer.context(tf.constant(ids), tf.constant(mask))
    state = layer.initial_state(B)
    previous = state["kappa"].numpy()
    for _ in range(5):
        hidden = tf.constant(rng.normal(0.0, 3.0, size=(B, 9)), tf.float32)
        w, state, extra = layer(hidden, state, context)
        kappa = state["kappa"].numpy()
        assert np.all(kappa >= previous) and np.all(np.isfinite(w.numpy()))
        previous = kappa
    assert w.shape == (B, V) and extra["phi"].shape == (B, U)


def test_layer_config_round_trip():
    """get_config / from_config (and Keras serialisation) rebuild an equivalent layer."""
    layer = _built_layer(6, seed=7)
    config = layer.get_config()
    assert config["num_gaussians"] == K and config["alphabet_size"] == V
    clone = GaussianWindow.from_config(config)
    assert clone.num_gaussians == K and clone.alphabet_size == V and clone.output_dim == V
    assert clone.get_config() == config
    clone.build((None, 6))
    clone.set_weights(layer.get_weights())
    rng = np.random.default_rng(8)
    ids, _, mask = make_text(rng)
    hidden = tf.constant(rng.normal(size=(B, 6)))
    a = layer.step(hidden, layer.initial_state(B), layer.context(tf.constant(ids), tf.constant(mask)))
    b = clone.step(hidden, clone.initial_state(B), clone.context(tf.constant(ids), tf.constant(mask)))
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, GaussianWindow) and restored.get_config() == config


@pytest.mark.parametrize("args", [(0, 5), (2, 0), (1.5, 5)])
def test_layer_rejects_invalid_arguments(args):
    """K and V must be positive integers."""
    with pytest.raises(ValueError, match="num_gaussians|alphabet_size"):
        GaussianWindow(*args)
