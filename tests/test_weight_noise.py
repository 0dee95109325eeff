"""Fixed and adaptive weight noise against NumPy formulas (Graves 2013 sec. 3.1; Graves 2011)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf.weight_noise import AdaptiveWeightNoise, FixedWeightNoise  # noqa: E402


def _awkward_values(rng, shape):
    """Float32 values of very different magnitudes: w + n - n != w for many of them."""
    values = rng.randn(*shape) * 10.0 ** rng.uniform(-9, 1, size=shape)
    return values.astype(np.float32)


# ---------------------------------------------------------------------------
# Fixed weight noise
# ---------------------------------------------------------------------------


def test_fixed_noise_has_the_right_std():
    var = tf.Variable(tf.zeros((200, 500), tf.float32))
    noise = FixedWeightNoise(0.075, seed=1)
    saved = noise.perturb([var])
    drawn = var.numpy().astype(np.float64).ravel()
    n = drawn.size
    # std of a sample std is ~ std / sqrt(2n) = 0.2%; allow 2%.
    assert drawn.std() == pytest.approx(0.075, rel=0.02)
    assert abs(drawn.mean()) < 5 * 0.075 / np.sqrt(n)
    # Gaussian: 4th standardised moment 3 (not e.g. uniform's 1.8).
    assert np.mean(drawn**4) / np.mean(drawn**2) ** 2 == pytest.approx(3.0, abs=0.1)
    np.testing.assert_array_equal(saved.noises[0].numpy(), var.numpy())


def test_fixed_noise_restore_is_exact_in_tf_function():
    rng = np.random.RandomState(0)
    originals = [_awkward_values(rng, s) for s in [(30, 20), (20,), (5, 4, 3)]]
    variables = [tf.Variable(v) for v in originals]
    noise = FixedWeightNoise(0.075, seed=3)

    @tf.function
    def noisy_gradients():
        saved = noise.perturb(variables)
        with tf.GradientTape() as tape:
            loss = tf.add_n([0.5 * tf.reduce_sum(tf.square(v)) for v in variables])
        grads = tape.gradient(loss, variables)
        noise.restore(variables, saved)
        return grads, saved.noises

    grads, noises = noisy_gradients()
    inexact = 0
    for v, w, g, n in zip(variables, originals, grads, noises):
        np.testing.assert_array_equal(v.numpy(), w)  # bit-exact
        # The gradient was taken at the noisy weights: d(w^2/2)/dw = w + n (float32 add).
        np.testing.assert_array_equal(g.numpy(), w + n.numpy())
        inexact += np.sum((w + n.numpy()) - n.numpy() != w)
    # The test is not vacuous: subtracting the noise would not have been exact.
    assert inexact > 0


def test_fixed_noise_draws_differ_between_calls_and_seed_reproduces():
    def draws(seed, calls=2):
        var = tf.Variable(tf.zeros((50,), tf.float32))
        noise = FixedWeightNoise(0.075, seed=seed)
        step = tf.function(lambda: noise.perturb([var]))
        out = []
        for _ in range(calls):
            saved = step()
            out.append(saved.noises[0].numpy())
            noise.restore([var], saved)
            np.testing.assert_array_equal(var.numpy(), np.zeros(50, np.float32))
        return out

    a = draws(seed=11)
    b = draws(seed=11)
    c = draws(seed=12)
    assert not np.array_equal(a[0], a[1])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_fixed_noise_on_keras_variables():
    keras.utils.set_random_seed(0)
    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    before = [v.numpy() for v in layer.trainable_variables]
    noise = FixedWeightNoise(0.5, seed=0)
    saved = noise.perturb(layer.trainable_variables)
    for v, b, n in zip(layer.trainable_variables, before, saved.noises):
        np.testing.assert_allclose(v.numpy(), b + n.numpy(), rtol=1e-6)
        assert not np.array_equal(v.numpy(), b)
    noise.restore(layer.trainable_variables, saved)
    for v, b in zip(layer.trainable_variables, before):
        np.testing.assert_array_equal(v.numpy(), b)


# ---------------------------------------------------------------------------
# Adaptive weight noise: NumPy references
# ---------------------------------------------------------------------------


def np_kl_diag_gaussians(mu_q, sigma_q, mu_p, sigma_p):
    """KL(N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2)), elementwise, in nats."""
    return np.log(sigma_p / sigma_q) + (sigma_q**2 + (mu_q - mu_p) ** 2) / (2 * sigma_p**2) - 0.5


def np_optimal_prior(mus, sigmas):
    mu = np.concatenate([m.ravel() for m in mus])
    sigma = np.concatenate([s.ravel() for s in sigmas])
    mu_p = mu.mean()
    sigma_p = np.sqrt(np.mean(sigma**2 + (mu - mu_p) ** 2))
    return mu_p, sigma_p


def np_kl_total(mus, sigmas, mu_p, sigma_p):
    return sum(np_kl_diag_gaussians(m, s, mu_p, sigma_p).sum() for m, s in zip(mus, sigmas))


SHAPES = [(7, 5), (5,), (3, 2, 4)]


def _adaptive_setup(seed, num_sequences=13, dtype=tf.float64):
    rng = np.random.RandomState(seed)
    mus = [rng.randn(*s) * 0.7 + 0.2 for s in SHAPES]
    sigmas = [np.exp(rng.uniform(np.log(0.02), np.log(0.4), size=s)) for s in SHAPES]
    variables = [tf.Variable(m, dtype=dtype) for m in mus]
    noise = AdaptiveWeightNoise(variables, init_std=0.075, num_sequences=num_sequences, seed=seed)
    for rho, s in zip(noise.trainable_variables, sigmas):
        rho.assign(np.log(s))
    return mus, sigmas, variables, noise


def test_adaptive_initialisation_and_variables():
    variables = [tf.Variable(np.ones(s), dtype=tf.float32) for s in SHAPES]
    noise = AdaptiveWeightNoise(variables, init_std=0.075, num_sequences=10)
    params = noise.trainable_variables
    assert len(params) == len(variables)
    model_ids = {id(v) for v in variables}
    assert not any(id(p) in model_ids for p in params)
    for p, v in zip(params, variables):
        assert tuple(p.shape) == tuple(v.shape) and p.dtype == v.dtype and p.trainable
    for s in noise.sigmas():
        np.testing.assert_allclose(s.numpy(), 0.075, rtol=1e-6)
    assert float(noise.mean_sigma()) == pytest.approx(0.075, rel=1e-6)
    with pytest.raises(ValueError):
        AdaptiveWeightNoise(variables, init_std=0.075)  # num_sequences missing


def test_adaptive_mean_sigma_and_prior_match_numpy():
    mus, sigmas, variables, noise = _adaptive_setup(seed=1)
    all_sigmas = np.concatenate([s.ravel() for s in sigmas])
    assert float(noise.mean_sigma()) == pytest.approx(all_sigmas.mean(), rel=1e-6)
    mu_p, sigma_p = noise.prior()
    ref_mu_p, ref_sigma_p = np_optimal_prior(mus, sigmas)
    assert float(mu_p) == pytest.approx(ref_mu_p, rel=1e-12)
    assert float(sigma_p) == pytest.approx(ref_sigma_p, rel=1e-12)


def test_complexity_loss_matches_numpy_kl():
    mus, sigmas, variables, noise = _adaptive_setup(seed=2)
    mu_p, sigma_p = np_optimal_prior(mus, sigmas)
    expected = np_kl_total(mus, sigmas, mu_p, sigma_p)
    got = noise.complexity_loss()
    assert got.dtype == tf.float64
    assert float(got) == pytest.approx(expected, rel=1e-11)
    # Same with the variables passed explicitly and inside a tf.function.
    assert float(tf.function(noise.complexity_loss)(variables)) == pytest.approx(expected, rel=1e-11)
    # Closed form at the optimum: W log(sigma_p) - sum log(sigma_i).
    w = sum(m.size for m in mus)
    closed = w * np.log(sigma_p) - sum(np.log(s).sum() for s in sigmas)
    assert expected == pytest.approx(closed, rel=1e-10)
    assert expected > 1.0


@pytest.mark.parametrize("delta", [1e-3, 1e-2, 1e-1])
def test_prior_is_the_kl_minimiser(delta):
    mus, sigmas, variables, noise = _adaptive_setup(seed=4)
    mu_p, sigma_p = (float(x) for x in noise.prior())
    at_optimum = np_kl_total(mus, sigmas, mu_p, sigma_p)
    assert float(noise.complexity_loss()) == pytest.approx(at_optimum, rel=1e-11)
    for other in [
        (mu_p + delta, sigma_p),
        (mu_p - delta, sigma_p),
        (mu_p, sigma_p * (1 + delta)),
        (mu_p, sigma_p * (1 - delta)),
        (mu_p + delta, sigma_p * (1 + delta)),
    ]:
        assert np_kl_total(mus, sigmas, *other) > at_optimum


def _quadratic_loss(ws, targets, curvatures):
    """A small quadratic L_data with a cross term coupling the first two variables."""
    loss = tf.add_n([0.5 * tf.reduce_sum(c * tf.square(w - t)) for w, t, c in zip(ws, targets, curvatures)])
    return loss + 0.3 * tf.reduce_sum(ws[0][0, :]) * tf.reduce_sum(ws[1])


def _reference_kl(mus, log_sigmas):
    """KL(q || p) with the optimal prior, written out in TF ops (fully differentiable)."""
    mu_all = tf.concat([tf.reshape(m, [-1]) for m in mus], 0)
    sigma_all = tf.exp(tf.concat([tf.reshape(r, [-1]) for r in log_sigmas], 0))
    mu_p = tf.reduce_mean(mu_all)
    var_p = tf.reduce_mean(tf.square(sigma_all) + tf.square(mu_all - mu_p))
    return tf.reduce_sum(
        0.5 * tf.math.log(var_p) - tf.math.log(sigma_all)
        + (tf.square(sigma_all) + tf.square(mu_all - mu_p)) / (2 * var_p) - 0.5
    )


@pytest.mark.parametrize("use_tf_function", [False, True])
def test_gradients_equal_autodiff_of_reparameterised_mdl_loss(use_tf_function):
    num_sequences = 13
    mus, sigmas, variables, noise = _adaptive_setup(seed=5, num_sequences=num_sequences)
    rng = np.random.RandomState(9)
    targets = [tf.constant(rng.randn(*s)) for s in SHAPES]
    curvatures = [tf.constant(rng.uniform(0.5, 2.0, size=s)) for s in SHAPES]

    def module_gradients():
        saved = noise.perturb(variables)
        with tf.GradientTape() as tape:
            loss = _quadratic_loss(variables, targets, curvatures)
        data_grads = tape.gradient(loss, variables)
        noisy = [tf.identity(v) for v in variables]
        noise.restore(variables, saved)
        mu_grads, rho_grads = noise.gradients(data_grads, saved, variables)
        return mu_grads, rho_grads, saved.eps, noisy

    if use_tf_function:
        module_gradients = tf.function(module_gradients)
    mu_grads, rho_grads, eps, noisy = module_gradients()
    eps = [e.numpy() for e in eps]

    # perturb set w = mu + sigma * eps, and restore put mu back exactly.
    for w, m, s, e, v in zip(noisy, mus, sigmas, eps, variables):
        np.testing.assert_allclose(w.numpy(), m + s * e, rtol=1e-13, atol=1e-15)
        np.testing.assert_array_equal(v.numpy(), m)

    # Reference: autodiff of L_data(mu + sigma * eps) + KL / N in fresh variables.
    mu_ref = [tf.Variable(m) for m in mus]
    rho_ref = [tf.Variable(np.log(s)) for s in sigmas]
    with tf.GradientTape() as tape:
        ws = [m + tf.exp(r) * e for m, r, e in zip(mu_ref, rho_ref, eps)]
        mdl = _quadratic_loss(ws, targets, curvatures) + _reference_kl(mu_ref, rho_ref) / num_sequences
    ref_mu, ref_rho = tape.gradient(mdl, [mu_ref, rho_ref])
    for got, ref in zip(list(mu_grads) + list(rho_grads), ref_mu + ref_rho):
        np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)

    # The KL part is not negligible here (the test would notice if it were dropped).
    with tf.GradientTape() as tape:
        kl_only = _reference_kl(mu_ref, rho_ref) / num_sequences
    kl_rho = tape.gradient(kl_only, rho_ref)
    assert max(np.abs(g.numpy()).max() for g in kl_rho) > 1e-2


def test_gradients_treat_missing_data_gradients_as_zero():
    mus, sigmas, variables, noise = _adaptive_setup(seed=6, num_sequences=4)
    saved = noise.perturb(variables)
    noise.restore(variables, saved)
    mu_grads, rho_grads = noise.gradients([None] * len(variables), saved, variables)
    mu_ref = [tf.Variable(m) for m in mus]
    rho_ref = [tf.Variable(np.log(s)) for s in sigmas]
    with tf.GradientTape() as tape:
        kl = _reference_kl(mu_ref, rho_ref) / 4
    ref = tape.gradient(kl, mu_ref + rho_ref)
    for got, r in zip(list(mu_grads) + list(rho_grads), ref):
        np.testing.assert_allclose(got.numpy(), r.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_with_zero_data_the_posterior_shrinks_to_the_prior(optimizer):
    rng = np.random.RandomState(7)
    shapes = [(10, 8), (8,), (4, 6)]
    mus = [rng.randn(*s) + 0.5 for s in shapes]
    sigmas = [rng.uniform(0.2, 0.6, size=s) for s in shapes]
    variables = [tf.Variable(m) for m in mus]
    noise = AdaptiveWeightNoise(variables, init_std=0.075, num_sequences=1, seed=0)
    for rho, s in zip(noise.trainable_variables, sigmas):
        rho.assign(np.log(s))
    params = list(variables) + list(noise.trainable_variables)
    if optimizer == "sgd":
        opt, steps = keras.optimizers.SGD(learning_rate=0.02), 400
    else:
        opt, steps = keras.optimizers.Adam(learning_rate=0.02), 400

    @tf.function
    def step():
        saved = noise.perturb(variables)
        noise.restore(variables, saved)
        zero = [tf.zeros_like(v) for v in variables]
        mu_grads, rho_grads = noise.gradients(zero, saved, variables)
        opt.apply_gradients(zip(list(mu_grads) + list(rho_grads), params))
        return noise.complexity_loss()

    kl0 = float(noise.complexity_loss())
    spread0 = np.concatenate([m.ravel() for m in mus]).std()
    sigma_dev0 = np.abs(np.log(np.concatenate([s.ravel() for s in sigmas]))).max()
    kls = np.array([kl0] + [float(step()) for _ in range(steps)])

    mu_now = np.concatenate([v.numpy().ravel() for v in variables])
    sigma_now = np.concatenate([s.numpy().ravel() for s in noise.sigmas()])
    mu_p, sigma_p = np_optimal_prior([mu_now], [sigma_now])
    assert mu_now.std() < 0.05 * spread0  # the means collapse onto mu_p
    assert np.abs(np.log(sigma_now / sigma_p)).max() < 0.05 * sigma_dev0  # sigmas -> sigma_p
    assert kls[-1] < 1e-3 * kl0  # KL -> 0
    assert float(noise.complexity_loss()) == pytest.approx(
        np_kl_total([mu_now], [sigma_now], mu_p, sigma_p), rel=1e-9, abs=1e-12
    )
    increases = np.sum(np.diff(kls) > 1e-12 * kl0)
    if optimizer == "sgd":
        assert increases == 0  # plain gradient descent with a small step: monotone
    else:
        assert increases < 0.1 * steps  # Adam: monotone-ish
        assert np.all(kls[50:] < 0.5 * kl0)


def test_adaptive_perturb_restore_exact_and_draws_fresh_noise():
    rng = np.random.RandomState(8)
    originals = [_awkward_values(rng, s) for s in SHAPES]
    variables = [tf.Variable(v) for v in originals]
    noise = AdaptiveWeightNoise(variables, init_std=0.075, num_sequences=5, seed=21)

    @tf.function
    def sample():
        saved = noise.perturb(variables)
        noisy = [tf.identity(v) for v in variables]
        noise.restore(variables, saved)
        return saved.eps, noisy

    eps1, noisy1 = sample()
    for v, w in zip(variables, originals):
        np.testing.assert_array_equal(v.numpy(), w)
    eps2, _ = sample()
    assert not np.array_equal(eps1[0].numpy(), eps2[0].numpy())
    all_eps = np.concatenate([e.numpy().ravel() for e in eps1 + eps2])
    assert abs(all_eps.std() - 1.0) < 0.2 and abs(all_eps.mean()) < 0.25
    for w, m, e in zip(noisy1, originals, eps1):
        np.testing.assert_allclose(w.numpy(), m + np.float32(0.075) * e.numpy(), rtol=1e-5, atol=1e-7)

    # A seed reproduces the draws.
    twin_vars = [tf.Variable(v) for v in originals]
    twin = AdaptiveWeightNoise(twin_vars, init_std=0.075, num_sequences=5, seed=21)
    saved = twin.perturb(twin_vars)
    twin.restore(twin_vars, saved)
    for a, b in zip(saved.eps, eps1):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_adaptive_checkpoint_saves_sigmas_not_model_variables(tmp_path):
    mus, sigmas, variables, noise = _adaptive_setup(seed=10)
    path = tf.train.Checkpoint(noise=noise).save(str(tmp_path / "noise"))
    saved = dict(tf.train.list_variables(path))
    noise_entries = sorted(n for n in saved if n.startswith("noise/") and n.endswith("VARIABLE_VALUE"))
    # Only the sigma parameters and the generator state: no copies of the model variables.
    sigma_entries = [n for n in noise_entries if "log_sigma" in n]
    assert len(sigma_entries) == len(SHAPES)
    assert len(noise_entries) == len(SHAPES) + 1 and any("_generator" in n for n in noise_entries)
    assert sorted(tuple(saved[n]) for n in sigma_entries) == sorted(SHAPES)

    fresh_vars = [tf.Variable(np.zeros(s)) for s in SHAPES]
    fresh = AdaptiveWeightNoise(fresh_vars, init_std=0.075, num_sequences=13)
    tf.train.Checkpoint(noise=fresh).restore(path).assert_existing_objects_matched()
    for s, s_ref in zip(fresh.sigmas(), sigmas):
        np.testing.assert_allclose(s.numpy(), s_ref, rtol=1e-14)
    for v in fresh_vars:
        np.testing.assert_array_equal(v.numpy(), 0.0)


def test_adaptive_noise_trains_with_graves_rmsprop_on_keras_model():
    from graves_tf.optimizers import GravesRMSprop

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(1)])
    noise = AdaptiveWeightNoise(model.trainable_variables, init_std=0.075, num_sequences=100, seed=1)
    opt = GravesRMSprop(learning_rate=1e-2)
    x = tf.constant(np.random.RandomState(0).randn(32, 4), tf.float32)
    y = tf.reduce_sum(x, axis=1, keepdims=True)
    params = list(model.trainable_variables) + list(noise.trainable_variables)

    @tf.function
    def step():
        mv = model.trainable_variables
        saved = noise.perturb(mv)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x) - y))
        grads = tape.gradient(loss, mv)
        noise.restore(mv, saved)
        mu_grads, rho_grads = noise.gradients(grads, saved, mv)
        opt.apply_gradients(zip(list(mu_grads) + list(rho_grads), params))
        return loss

    before = [v.numpy() for v in params]
    losses = [float(step()) for _ in range(30)]
    assert all(np.isfinite(losses))
    assert all(not np.array_equal(b, v.numpy()) for b, v in zip(before, params))
    assert abs(float(noise.mean_sigma()) - 0.075) > 1e-4  # the sigmas are being learned
