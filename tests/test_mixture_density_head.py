"""Tests of the mixture density output layer (Graves 2013, section 4.1, eqs. 17-37, 61-62).

Every expected value is computed independently in NumPy float64 from the
paper's equations; the library is only ever the system under test.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf.layers import (  # noqa: E402
    MixtureDensityHead,
    clip_gradient,
    mixture_negative_log_likelihood,
    mixture_parameters,
    sample_mixture,
)

M = 3  # mixture components used throughout


# --------------------------------------------------------------------------
# Independent NumPy (float64) reference implementations of the paper's equations
# --------------------------------------------------------------------------


def np_split(y_hat, m=M):
    """Eq. 17 layout: [e_hat, pi_hat, mu1, mu2, sigma1_hat, sigma2_hat, rho_hat]."""
    y = np.asarray(y_hat, np.float64)
    e_hat = y[..., 0]
    blocks = [y[..., 1 + k * m : 1 + (k + 1) * m] for k in range(6)]
    return (e_hat, *blocks)


def np_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    ex = np.exp(x)
    return ex / ex.sum(axis=-1, keepdims=True)


def np_params(y_hat, bias=0.0, m=M):
    """Eqs. 18-22 with the sampling bias of eqs. 61-62."""
    e_hat, pi_hat, mu1, mu2, s1_hat, s2_hat, rho_hat = np_split(y_hat, m)
    return {
        "e": 1.0 / (1.0 + np.exp(e_hat)),  # (18)
        "pi": np_softmax(pi_hat * (1.0 + bias)),  # (19) / (62)
        "mu1": mu1,  # (20)
        "mu2": mu2,
        "sigma1": np.exp(s1_hat - bias),  # (21) / (61)
        "sigma2": np.exp(s2_hat - bias),
        "rho": np.tanh(rho_hat),  # (22)
    }


def np_gaussian(x1, x2, p):
    """Eqs. 24-25 written out (a density, not its log)."""
    d1 = x1[..., None] - p["mu1"]
    d2 = x2[..., None] - p["mu2"]
    s1, s2, rho = p["sigma1"], p["sigma2"], p["rho"]
    z = d1**2 / s1**2 + d2**2 / s2**2 - 2.0 * rho * d1 * d2 / (s1 * s2)  # (25)
    norm = 1.0 / (2.0 * np.pi * s1 * s2 * np.sqrt(1.0 - rho**2))
    return norm * np.exp(-z / (2.0 * (1.0 - rho**2))), z  # (24)


def np_loss(y_hat, targets, m=M):
    """Eq. 26 per step (direct, non-log-space evaluation; fine for moderate values)."""
    p = np_params(y_hat, m=m)
    t = np.asarray(targets, np.float64)
    dens, _ = np_gaussian(t[..., 0], t[..., 1], p)
    mix = np.sum(p["pi"] * dens, axis=-1)
    eos = t[..., 2]
    bern = np.where(eos == 1.0, np.log(p["e"]), np.log(1.0 - p["e"]))
    return -np.log(mix) - bern


def np_loss_logspace(y_hat, targets, m=M):
    """Eq. 26 in log space, float64, for extreme parameters (log(1-rho^2) = -2 log cosh)."""
    e_hat, pi_hat, mu1, mu2, s1_hat, s2_hat, rho_hat = np_split(y_hat, m)
    t = np.asarray(targets, np.float64)
    log_pi = pi_hat - np.logaddexp.reduce(pi_hat, axis=-1, keepdims=True)
    s1, s2, rho = np.exp(s1_hat), np.exp(s2_hat), np.tanh(rho_hat)
    log_1mr2 = -2.0 * np.log(np.cosh(rho_hat))
    z1 = (t[..., :1] - mu1) / s1
    z2 = (t[..., 1:2] - mu2) / s2
    z = z1**2 + z2**2 - 2.0 * rho * z1 * z2
    log_n = -np.log(2 * np.pi) - s1_hat - s2_hat - 0.5 * log_1mr2 - 0.5 * z / np.exp(log_1mr2)
    log_mix = np.logaddexp.reduce(log_pi + log_n, axis=-1)
    # -log e = log(1 + exp(e_hat)); -log(1 - e) = log(1 + exp(-e_hat))
    bern = np.where(t[..., 2] == 1.0, np.logaddexp(0.0, e_hat), np.logaddexp(0.0, -e_hat))
    return -log_mix + bern


def np_loss_gradient(y_hat, targets, m=M):
    """dL/dy_hat from eqs. 27-37, in the eq. 17 layout."""
    p = np_params(y_hat, m=m)
    t = np.asarray(targets, np.float64)
    x1, x2, x3 = t[..., 0:1], t[..., 1:2], t[..., 2]
    dens, z = np_gaussian(t[..., 0], t[..., 1], p)
    gamma_hat = p["pi"] * dens  # (28)
    gamma = gamma_hat / gamma_hat.sum(axis=-1, keepdims=True)  # (29)
    mu1, mu2, s1, s2, rho = p["mu1"], p["mu2"], p["sigma1"], p["sigma2"], p["rho"]
    c = 1.0 / (1.0 - rho**2)  # (37)
    d1, d2 = x1 - mu1, x2 - mu2
    dlogn_mu1 = c / s1 * (d1 / s1 - rho * d2 / s2)  # (32)
    dlogn_mu2 = c / s2 * (d2 / s2 - rho * d1 / s1)  # (33)
    dlogn_s1 = c * d1 / s1 * (d1 / s1 - rho * d2 / s2) - 1.0  # (34)
    dlogn_s2 = c * d2 / s2 * (d2 / s2 - rho * d1 / s1) - 1.0  # (35)
    dlogn_rho = d1 * d2 / (s1 * s2) + rho * (1.0 - c * z)  # (36)
    de_hat = x3 - p["e"]  # (27)
    dpi_hat = p["pi"] - gamma  # (30)
    parts = [-gamma * g for g in (dlogn_mu1, dlogn_mu2, dlogn_s1, dlogn_s2, dlogn_rho)]  # (31)
    return np.concatenate([de_hat[..., None], dpi_hat, *parts], axis=-1)


def random_outputs(rng, shape, m=M):
    """Moderate random y_hat (..., 1+6M) and targets (..., 3) with both eos values."""
    y = np.empty(shape + (1 + 6 * m,))
    y[..., 0] = rng.normal(0.0, 1.5, shape)
    y[..., 1 : 1 + m] = rng.normal(0.0, 1.0, shape + (m,))
    y[..., 1 + m : 1 + 3 * m] = rng.normal(0.0, 1.0, shape + (2 * m,))
    y[..., 1 + 3 * m : 1 + 5 * m] = rng.normal(0.0, 0.4, shape + (2 * m,))
    y[..., 1 + 5 * m :] = rng.normal(0.0, 0.8, shape + (m,))
    t = np.empty(shape + (3,))
    t[..., :2] = rng.normal(0.0, 1.2, shape + (2,))
    t[..., 2] = (rng.uniform(size=shape) < 0.5).astype(np.float64)
    t.reshape(-1, 3)[0, 2] = 1.0
    t.reshape(-1, 3)[1, 2] = 0.0
    return y, t


def relative_error(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b)))


# --------------------------------------------------------------------------
# Loss value and gradients
# --------------------------------------------------------------------------


def test_loss_value_matches_eq26():
    """Eq. 26 (with eqs. 18-25) evaluated directly in NumPy equals the library's per-step loss."""
    rng = np.random.default_rng(0)
    y, t = random_outputs(rng, (4, 5))
    got = mixture_negative_log_likelihood(tf.constant(y), tf.constant(t)).numpy()
    assert got.shape == (4, 5)
    np.testing.assert_allclose(got, np_loss(y, t), rtol=1e-12, atol=1e-12)


def test_loss_gradients_match_eqs_27_to_37():
    """Autodiff of eq. 26 equals eq. 27 (e_hat), eq. 30 (pi_hat) and eqs. 31-37 (mu, sigma, rho)."""
    rng = np.random.default_rng(1)
    y, t = random_outputs(rng, (4, 5))
    assert set(np.unique(t[..., 2])) == {0.0, 1.0}
    y_var = tf.constant(y)
    with tf.GradientTape() as tape:
        tape.watch(y_var)
        loss = tf.reduce_sum(mixture_negative_log_likelihood(y_var, tf.constant(t)))
    got = tape.gradient(loss, y_var).numpy()
    expected = np_loss_gradient(y, t)
    names = ["e_hat", "pi_hat", "mu1", "mu2", "sigma1_hat", "sigma2_hat", "rho_hat"]
    slices = [slice(0, 1)] + [slice(1 + k * M, 1 + (k + 1) * M) for k in range(6)]
    for name, sl in zip(names, slices):
        err = relative_error(got[..., sl], expected[..., sl])
        assert err < 1e-6, f"{name}: relative error {err:.3g}"
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-10)


def test_e_hat_gradient_sign_convention_eq18():
    """Eq. 18/27: e = 1/(1+exp(e_hat)), so dL/de_hat = x3 - e (positive when eos = 1 and e < 1)."""
    y = np.zeros((2, 1 + 6 * M))
    y[:, 0] = 2.0
    t = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    y_var = tf.constant(y)
    with tf.GradientTape() as tape:
        tape.watch(y_var)
        loss = tf.reduce_sum(mixture_negative_log_likelihood(y_var, tf.constant(t)))
    g = tape.gradient(loss, y_var).numpy()[:, 0]
    e = 1.0 / (1.0 + np.exp(2.0))
    np.testing.assert_allclose(g, [1.0 - e, -e], rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stability_with_extreme_logits(dtype):
    """Eq. 26 stays finite (and accurate) with pi_hat spread +-1e3, e_hat = +-100, rho_hat = +-20."""
    m = 3
    y = np.zeros((4, 1 + 6 * m))
    y[:, 0] = [100.0, -100.0, 100.0, -100.0]
    y[:, 1 : 1 + m] = [-1e3, 0.0, 1e3]
    y[:, 1 + m : 1 + 3 * m] = np.random.default_rng(2).normal(0, 0.5, (4, 2 * m))
    y[:, 1 + 3 * m : 1 + 5 * m] = [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]] * 4
    y[:, 1 + 5 * m :] = [[20.0, -20.0, 0.0], [-20.0, 20.0, 20.0], [0.0, 20.0, -20.0], [20.0, 0.0, -20.0]]
    # Targets exactly at the dominant component's mean (component 2, pi ~ 1) so the
    # degenerate (|rho| ~ 1) Gaussians have moderate Mahalanobis terms; both eos values,
    # and eos chosen so that the Bernoulli term is both ~0 and ~100 nats.
    t = np.stack([y[:, 1 + m + 2], y[:, 1 + 2 * m + 2], np.array([0.0, 0.0, 1.0, 1.0])], axis=-1)
    y_var = tf.constant(y, dtype=dtype)
    with tf.GradientTape() as tape:
        tape.watch(y_var)
        loss = mixture_negative_log_likelihood(y_var, tf.constant(t, dtype=dtype))
        total = tf.reduce_sum(loss)
    grad = tape.gradient(total, y_var).numpy()
    assert np.all(np.isfinite(loss.numpy())), loss.numpy()
    assert np.all(np.isfinite(grad)), grad
    ref = np_loss_logspace(y, t, m)
    np.testing.assert_allclose(loss.numpy(), ref, rtol=1e-4, atol=1e-3)
    # Eq. 27 in the saturated regime: dL/de_hat = x3 - e with e in {0, 1}.
    e = 1.0 / (1.0 + np.exp(y[:, 0]))
    np.testing.assert_allclose(grad[:, 0], t[:, 2] - e, atol=1e-6)
    # Eq. 30: gamma = pi = one-hot(2) here, so dL/dpi_hat ~ 0.
    np.testing.assert_allclose(grad[:, 1 : 1 + m], 0.0, atol=1e-4)


def test_stability_far_target_float32():
    """Eqs. 26/30 with a target far from every component: finite loss; dL/dpi_hat = pi - gamma."""
    y = np.zeros((1, 1 + 6 * M))
    y[0, 1 : 1 + M] = [-1e3, 0.0, 1e3]
    y[0, 1 + M : 1 + 2 * M] = [50.0, 0.0, -50.0]  # mu1
    t = np.array([[60.0, 0.0, 1.0]])  # far from the dominant component (mu1 = -50)
    y_var = tf.constant(y, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(y_var)
        loss = tf.reduce_sum(mixture_negative_log_likelihood(y_var, tf.constant(t, tf.float32)))
    g = tape.gradient(loss, y_var).numpy()
    ref = np_loss_logspace(y, t)
    assert np.isfinite(loss.numpy()) and np.all(np.isfinite(g))
    np.testing.assert_allclose(loss.numpy(), ref.sum(), rtol=1e-5)
    # gamma is one-hot on component 0 (the only one near the target), pi one-hot on 2.
    np.testing.assert_allclose(g[0, 1 : 1 + M], [-1.0, 0.0, 1.0], atol=1e-5)


# --------------------------------------------------------------------------
# Output parameters with bias (eqs. 18-22, 61-62)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [0.0, 0.5, 3.0])
def test_mixture_parameters_eqs_18_to_22_and_61_62(bias):
    """mixture_parameters: e (18), pi = softmax(pi_hat (1+b)) (19/62), sigma = exp(sigma_hat - b) (21/61), rho (22)."""
    rng = np.random.default_rng(3)
    y, _ = random_outputs(rng, (6,))
    y[0, 1 + 5 * M :] = [20.0, -20.0, 0.5]  # saturated rho: log(1 - rho^2) must stay accurate
    got = {k: v.numpy() for k, v in mixture_parameters(tf.constant(y), bias=bias).items()}
    ref = np_params(y, bias)
    np.testing.assert_allclose(got["e"], ref["e"], rtol=1e-12)
    np.testing.assert_allclose(np.exp(got["log_pi"]), ref["pi"], rtol=1e-12)
    np.testing.assert_allclose(got["mu1"], ref["mu1"], rtol=0, atol=0)
    np.testing.assert_allclose(got["mu2"], ref["mu2"], rtol=0, atol=0)
    np.testing.assert_allclose(np.exp(got["log_sigma1"]), ref["sigma1"], rtol=1e-12)
    np.testing.assert_allclose(np.exp(got["log_sigma2"]), ref["sigma2"], rtol=1e-12)
    np.testing.assert_allclose(got["rho"], ref["rho"], rtol=1e-12)
    rho_hat = np_split(y)[6]
    np.testing.assert_allclose(got["log_one_minus_rho2"], -2.0 * np.log(np.cosh(rho_hat)), rtol=1e-12)


# --------------------------------------------------------------------------
# Sampling (eq. 23 with eqs. 61-62)
# --------------------------------------------------------------------------


def _row(e_hat, pi_hat, mu1, mu2, s1_hat, s2_hat, rho_hat):
    return np.concatenate([[e_hat], pi_hat, mu1, mu2, s1_hat, s2_hat, rho_hat]).astype(np.float64)


def test_sample_mixture_reproducible_with_int_seed():
    """sample_mixture(seed=int) is deterministic; another seed gives other draws."""
    rng = np.random.default_rng(4)
    y = tf.constant(random_outputs(rng, (16,))[0])
    a = sample_mixture(y, 0.0, seed=7).numpy()
    b = sample_mixture(y, 0.0, seed=7).numpy()
    c = sample_mixture(y, 0.0, seed=8).numpy()
    assert a.shape == (16, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[:, :2], c[:, :2])


def test_sample_moments_match_mixture_unbiased():
    """Eq. 23 with b = 0: sample mean, variance, covariance and correlation match the mixture's (5 SE)."""
    n = 20000
    row = _row(
        0.3,
        [0.2, -0.4, 0.6],
        [-1.0, 0.5, 2.0],
        [-1.2, 0.3, 1.5],
        [-0.3, 0.1, -0.6],
        [0.2, -0.5, 0.0],
        [0.9, -0.6, 0.2],
    )
    p = np_params(row[None])
    pi, mu1, mu2, s1, s2, rho = (p[k][0] for k in ("pi", "mu1", "mu2", "sigma1", "sigma2", "rho"))
    m1, m2 = pi @ mu1, pi @ mu2
    v1 = pi @ (s1**2 + mu1**2) - m1**2
    v2 = pi @ (s2**2 + mu2**2) - m2**2
    cov = pi @ (rho * s1 * s2 + mu1 * mu2) - m1 * m2
    corr = cov / np.sqrt(v1 * v2)

    x = sample_mixture(tf.constant(np.tile(row, (n, 1))), 0.0, seed=123).numpy()
    x1, x2 = x[:, 0], x[:, 1]
    d1, d2 = x1 - x1.mean(), x2 - x2.mean()
    k = 5.0  # standard errors
    # Means: SE = sqrt(var / n).
    assert abs(x1.mean() - m1) < k * np.sqrt(v1 / n)
    assert abs(x2.mean() - m2) < k * np.sqrt(v2 / n)
    # Variances / covariance: SE = std of the per-sample terms / sqrt(n).
    se_v1 = np.std(d1**2) / np.sqrt(n)
    se_v2 = np.std(d2**2) / np.sqrt(n)
    se_cov = np.std(d1 * d2) / np.sqrt(n)
    assert abs(np.mean(d1**2) - v1) < k * se_v1
    assert abs(np.mean(d2**2) - v2) < k * se_v2
    assert abs(np.mean(d1 * d2) - cov) < k * se_cov
    # Correlation: first-order error propagation of the three bounds above.
    tol_corr = abs(corr) * (k * se_cov / abs(cov) + 0.5 * k * se_v1 / v1 + 0.5 * k * se_v2 / v2)
    assert abs(np.corrcoef(x1, x2)[0, 1] - corr) < tol_corr
    assert abs(corr) > 5 * tol_corr  # the check is informative (the mixture is correlated)


@pytest.mark.parametrize("bias", [0.0, 1.0])
def test_sample_components_weights_widths_and_correlations(bias):
    """Eqs. 61-62 via sampling: component frequencies = softmax(pi_hat (1+b)); per-component
    standard deviations = exp(sigma_hat - b); per-component correlations = tanh(rho_hat)."""
    n = 20000
    row = _row(
        0.0,
        [0.3, -0.5, 0.1],
        [-20.0, 0.0, 20.0],
        [0.0, 20.0, 0.0],
        [0.2, -0.3, 0.0],
        [-0.2, 0.4, 0.1],
        [1.2, -0.7, 0.0],
    )
    p = np_params(row[None], bias)
    x = sample_mixture(tf.constant(np.tile(row, (n, 1))), bias, seed=99).numpy()
    centres = np.stack([p["mu1"][0], p["mu2"][0]], axis=-1)  # (M, 2), >= 20 apart
    dist = np.linalg.norm(x[:, None, :2] - centres[None], axis=-1)
    comp = np.argmin(dist, axis=-1)
    assert np.all(dist[np.arange(n), comp] < 8.0)  # every draw belongs clearly to one component
    for j in range(M):
        pj = p["pi"][0, j]
        freq = np.mean(comp == j)
        assert abs(freq - pj) < 5 * np.sqrt(pj * (1 - pj) / n), (j, freq, pj)
        xj = x[comp == j, :2]
        nj = len(xj)
        sd = xj.std(axis=0)
        ref_sd = np.array([p["sigma1"][0, j], p["sigma2"][0, j]])
        # SE of a normal sample's standard deviation: sd / sqrt(2 n).
        np.testing.assert_array_less(np.abs(sd - ref_sd), 5 * ref_sd / np.sqrt(2 * nj))
        r = np.corrcoef(xj[:, 0], xj[:, 1])[0, 1]
        rho = p["rho"][0, j]
        assert abs(r - rho) < 5 * (1 - rho**2) / np.sqrt(nj) + 1e-9, (j, r, rho)


def test_sample_large_bias_collapses_to_most_probable_mean():
    """Eqs. 61-62 with b -> infinity: draws collapse to the mean of the most probable component;
    a per-row bias vector applies to its own row only."""
    rng = np.random.default_rng(5)
    n = 64
    y, _ = random_outputs(rng, (n,))
    bias = np.where(np.arange(n) % 2 == 0, 50.0, 0.0)
    x = sample_mixture(tf.constant(y), tf.constant(bias), seed=3).numpy()
    _, pi_hat, mu1, mu2, s1_hat, s2_hat, _ = np_split(y)
    best = np.argmax(pi_hat, axis=-1)
    rows = np.arange(n)
    biased = bias > 0
    np.testing.assert_allclose(x[biased, 0], mu1[rows, best][biased], rtol=0, atol=1e-12)
    np.testing.assert_allclose(x[biased, 1], mu2[rows, best][biased], rtol=0, atol=1e-12)
    # Unbiased rows still spread: their distance from that mean is of the order of sigma.
    spread = np.abs(x[~biased, 0] - mu1[rows, best][~biased])
    assert np.median(spread) > 0.05
    # Scalar bias works the same way.
    xs = sample_mixture(tf.constant(y), 50.0, seed=3).numpy()
    np.testing.assert_allclose(xs[:, 0], mu1[rows, best], rtol=0, atol=1e-12)
    np.testing.assert_allclose(xs[:, 1], mu2[rows, best], rtol=0, atol=1e-12)


def test_sample_end_of_stroke_frequency_matches_e():
    """Eq. 18/23: eos ~ Bernoulli(e), e = 1/(1+exp(e_hat)), in {0, 1}, independent of the pen
    offsets (the density of eq. 23 factorises); bias does not change e."""
    n = 20000
    e_hat = np.where(np.arange(n) < n // 2, 0.8, -1.5)
    y = np.zeros((n, 1 + 6 * M))  # every component: mu = 0, sigma = 1, rho = 0
    y[:, 0] = e_hat
    for bias in (0.0, 2.0):
        x = sample_mixture(tf.constant(y), bias, seed=11).numpy()
        eos = x[:, 2]
        assert set(np.unique(eos)) <= {0.0, 1.0}
        # Independence of eos, x1 and x2: sample correlations within 5 SE (SE ~ 1/sqrt(n)) of 0.
        corr = np.corrcoef(x[: n // 2].T)
        assert np.all(np.abs(corr[np.triu_indices(3, 1)]) < 5 / np.sqrt(n // 2)), corr
        for half in (slice(0, n // 2), slice(n // 2, n)):
            e = 1.0 / (1.0 + np.exp(e_hat[half][0]))
            nh = n // 2
            assert abs(eos[half].mean() - e) < 5 * np.sqrt(e * (1 - e) / nh), (bias, e, eos[half].mean())


# --------------------------------------------------------------------------
# MixtureDensityHead layer and derivative clipping
# --------------------------------------------------------------------------


def _built_head(clip, hidden_dim, seed, m=M):
    head = MixtureDensityHead(m, clip=clip, dtype="float64")
    head.build((None, None, hidden_dim))
    rng = np.random.default_rng(seed)
    head.kernel.assign(rng.normal(0.0, 0.3, (hidden_dim, 1 + 6 * m)))
    head.bias.assign(rng.normal(0.0, 0.3, (1 + 6 * m,)))
    return head


def test_clip_gradient_function_clips_upstream_only():
    """Section 4.2 derivative clipping: identity forward; the derivative is clipped to [-100, 100]."""
    rng = np.random.default_rng(6)
    x = tf.constant(rng.normal(size=(3, 7)))
    upstream = rng.normal(0.0, 150.0, (3, 7))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = clip_gradient(x, 100.0)
        loss = tf.reduce_sum(upstream * y)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    g = tape.gradient(loss, x).numpy()
    np.testing.assert_array_equal(g, np.clip(upstream, -100.0, 100.0))
    assert np.any(np.abs(upstream) > 100) and np.any(np.abs(upstream) < 100)


def test_head_forward_is_eq17_and_unaffected_by_clip():
    """Eq. 17: y_hat = h W + b; with clip=100 the forward output equals the unclipped one."""
    rng = np.random.default_rng(7)
    hidden = rng.normal(size=(2, 4, 5))
    clipped = _built_head(100.0, 5, seed=8)
    plain = _built_head(None, 5, seed=8)
    out_c = clipped(tf.constant(hidden)).numpy()
    out_p = plain(tf.constant(hidden)).numpy()
    assert out_c.shape == (2, 4, 1 + 6 * M)
    assert clipped.output_dim == 1 + 6 * M
    np.testing.assert_array_equal(out_c, out_p)
    ref = hidden @ clipped.kernel.numpy() + clipped.bias.numpy()
    np.testing.assert_allclose(out_c, ref, rtol=1e-12, atol=1e-12)


def test_head_clips_output_derivative_to_100():
    """Section 4.2: dL/dy_hat (eqs. 27-37) is clipped to [-100, 100] before reaching the layer's
    weights and inputs: dL/dh = clip(dL/dy_hat) W^T, dL/dW = h^T clip(dL/dy_hat)."""
    rng = np.random.default_rng(9)
    hidden_dim = 5
    hidden = rng.normal(size=(2, 4, hidden_dim))
    _, targets = random_outputs(rng, (2, 4))
    scale = 300.0  # amplify the loss so that some output derivatives exceed 100
    results = {}
    for clip in (100.0, None):
        head = _built_head(clip, hidden_dim, seed=10)
        h = tf.constant(hidden)
        with tf.GradientTape() as tape:
            tape.watch(h)
            y_hat = head(h)
            loss = scale * tf.reduce_sum(head.loss(y_hat, tf.constant(targets)))
        dh, dk, db = tape.gradient(loss, [h, head.kernel, head.bias])
        results[clip] = (y_hat.numpy(), dh.numpy(), dk.numpy(), db.numpy(), head.kernel.numpy())
    y_hat, dh, dk, db, kernel = results[100.0]
    g = scale * np_loss_gradient(y_hat, targets)  # the unclipped dL/dy_hat, eqs. 27-37
    assert np.any(np.abs(g) > 100.0) and np.any(np.abs(g) < 100.0)  # both regimes present
    gc = np.clip(g, -100.0, 100.0)
    np.testing.assert_allclose(dh, gc @ kernel.T, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dk, np.einsum("bth,bto->ho", hidden, gc), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(db, gc.sum(axis=(0, 1)), rtol=1e-9, atol=1e-9)
    # Without clipping the full derivative flows back.
    _, dh_u, dk_u, _, _ = results[None]
    np.testing.assert_allclose(dh_u, g @ kernel.T, rtol=1e-9, atol=1e-9)
    assert not np.allclose(dh_u, dh)


def test_head_loss_sums_unmasked_steps():
    """head.loss: eq. 26 summed over each sequence's unmasked steps only."""
    rng = np.random.default_rng(12)
    y, t = random_outputs(rng, (3, 6))
    lengths = np.array([6, 2, 4])
    mask = (np.arange(6)[None, :] < lengths[:, None]).astype(np.float64)
    y_masked = y.copy()
    y_masked[mask == 0] += 5.0  # garbage on padded steps must not matter
    head = MixtureDensityHead(M, clip=100.0, dtype="float64")
    per_step = np_loss(y, t)
    got = head.loss(tf.constant(y_masked), tf.constant(t), tf.constant(mask)).numpy()
    expected = np.array([per_step[b, : lengths[b]].sum() for b in range(3)])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    full = head.loss(tf.constant(y), tf.constant(t)).numpy()
    np.testing.assert_allclose(full, per_step.sum(axis=-1), rtol=1e-12)
    # Boolean masks work too.
    got_bool = head.loss(tf.constant(y_masked), tf.constant(t), tf.constant(mask > 0)).numpy()
    np.testing.assert_allclose(got_bool, expected, rtol=1e-12)


def test_head_config_round_trip():
    """get_config / from_config (and Keras serialisation) preserve M and the clip limit."""
    head = MixtureDensityHead(20, clip=100.0, name="mdn", dtype="float64")
    config = head.get_config()
    assert config["num_components"] == 20 and config["clip"] == 100.0
    clone = MixtureDensityHead.from_config(config)
    assert clone.num_components == 20 and clone.clip == 100.0
    assert clone.output_dim == 121 and clone.name == "mdn"
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(head))
    assert isinstance(restored, MixtureDensityHead)
    assert restored.get_config() == config
    none_clip = MixtureDensityHead.from_config(MixtureDensityHead(2).get_config())
    assert none_clip.clip is None


@pytest.mark.parametrize("kwargs", [{"num_components": 0}, {"num_components": 2.5}, {"num_components": 2, "clip": -1}])
def test_head_rejects_invalid_arguments(kwargs):
    """Invalid M or clip limit raise ValueError with a clear message."""
    with pytest.raises(ValueError, match="num_components|clip"):
        MixtureDensityHead(**kwargs)
