"""Mixture density output for pen offsets (paper section 4.1, eqs. 17-26, 61-62)."""

import math

import keras
from keras import ops

from graves_tf.layers import backend_ops
from graves_tf.layers.gradient_clipping import clip_gradient, validate_clip
from graves_tf.layers.precision import matmul

_LOG_2PI = math.log(2.0 * math.pi)


def split_outputs(y_hat):
    """Splits ``(..., 1 + 6M)`` network outputs into their named parts (eq. 17).

    Layout along the last axis: ``[e_hat, pi_hat (M), mu1 (M), mu2 (M),
    sigma1_hat (M), sigma2_hat (M), rho_hat (M)]``.
    """
    e_hat = y_hat[..., 0]
    pi_hat, mu1, mu2, s1_hat, s2_hat, rho_hat = ops.split(y_hat[..., 1:], 6, axis=-1)
    return {
        "e_hat": e_hat,
        "pi_hat": pi_hat,
        "mu1": mu1,
        "mu2": mu2,
        "sigma1_hat": s1_hat,
        "sigma2_hat": s2_hat,
        "rho_hat": rho_hat,
    }


def _log_one_minus_tanh_squared(x):
    """log(1 - tanh(x)^2) = 2 log sech(x), finite for every x."""
    ax = ops.abs(x)
    return 2.0 * (math.log(2.0) - ax - ops.softplus(-2.0 * ax))


def mixture_parameters(y_hat, bias=0.0):
    """Eqs. 18-22, with the probability bias b of eqs. 61-62.

    Returns a dict with ``e`` (end-of-stroke probability, eq. 18:
    ``1 / (1 + exp(e_hat))``), ``log_pi`` (log of eq. 19 or 62), ``mu1``,
    ``mu2`` (eq. 20), ``log_sigma1``, ``log_sigma2`` (logs of eq. 21 or 61),
    ``rho`` (eq. 22) and ``log_one_minus_rho2``. ``bias`` = 0 gives the
    unbiased distribution.
    """
    parts = split_outputs(y_hat)
    rho_hat = parts["rho_hat"]
    return {
        "e": ops.sigmoid(-parts["e_hat"]),
        "log_pi": ops.log_softmax(parts["pi_hat"] * (1.0 + bias), axis=-1),
        "mu1": parts["mu1"],
        "mu2": parts["mu2"],
        "log_sigma1": parts["sigma1_hat"] - bias,
        "log_sigma2": parts["sigma2_hat"] - bias,
        "rho": backend_ops.tanh(rho_hat),
        "log_one_minus_rho2": _log_one_minus_tanh_squared(rho_hat),
    }


def bivariate_log_density(x1, x2, params):
    """log N(x | mu, sigma, rho) of eqs. 24-25 for every component ``(..., M)``."""
    z1 = (ops.expand_dims(x1, -1) - params["mu1"]) * ops.exp(-params["log_sigma1"])
    z2 = (ops.expand_dims(x2, -1) - params["mu2"]) * ops.exp(-params["log_sigma2"])
    rho = params["rho"]
    z = z1**2 + z2**2 - 2.0 * rho * z1 * z2  # (25)
    log_1mr2 = params["log_one_minus_rho2"]
    return (
        -_LOG_2PI
        - params["log_sigma1"]
        - params["log_sigma2"]
        - 0.5 * log_1mr2
        - 0.5 * z * ops.exp(-log_1mr2)
    )


def mixture_negative_log_likelihood(y_hat, targets):
    """The per-step terms of the sequence loss, eq. 26, computed stably.

    Args:
        y_hat: ``(..., 1 + 6M)`` raw outputs y_hat_t.
        targets: ``(..., 3)`` next inputs x_{t+1} = (dx, dy, end_of_stroke).

    Returns:
        ``(...)``: -log sum_j pi_j N(x_{t+1} | ...) - log(e or 1 - e), in nats.
        The mixture sum is a log-sum-exp over log pi + log N; the Bernoulli term
        uses softplus (-log e = softplus(e_hat), -log(1 - e) = softplus(-e_hat)).
    """
    params = mixture_parameters(y_hat)
    log_density = bivariate_log_density(targets[..., 0], targets[..., 1], params)
    log_mixture = ops.logsumexp(params["log_pi"] + log_density, axis=-1)
    e_hat = y_hat[..., 0]
    end_of_stroke = targets[..., 2]
    bernoulli = end_of_stroke * ops.softplus(e_hat) + (1.0 - end_of_stroke) * ops.softplus(-e_hat)
    return -log_mixture + bernoulli


def sample_mixture_from_noise(y_hat, component_uniform, normal, end_uniform, bias=0.0):
    """Eq. 23 sampled with given noise, the probability bias b of eqs. 61-62 applied.

    Deterministic given its noise, so a caller with its own random source
    (a stateless one in an exported graph, say) gets reproducible samples.

    Args:
        y_hat: ``(batch, 1 + 6M)`` raw outputs.
        component_uniform: ``(batch,)`` U(0, 1) draws choosing the component
            (inverse CDF of pi).
        normal: ``(batch, 2)`` N(0, 1) draws for the bivariate Gaussian.
        end_uniform: ``(batch,)`` U(0, 1) draws for the end-of-stroke Bernoulli.
        bias: b >= 0, a float or ``(batch,)``.

    Returns:
        ``(batch, 3)`` = (dx, dy, end_of_stroke), end_of_stroke in {0, 1}.
    """
    dtype = y_hat.dtype
    batch = ops.shape(y_hat)[0]
    bias = ops.reshape(ops.broadcast_to(ops.cast(bias, dtype), (batch,)), (batch, 1))
    params = mixture_parameters(y_hat, bias)
    cdf = ops.cumsum(ops.exp(params["log_pi"]), axis=-1)
    num_components = cdf.shape[-1]
    below = ops.cast(cdf < ops.expand_dims(ops.cast(component_uniform, dtype), -1), "int32")
    component = ops.minimum(ops.sum(below, axis=-1), num_components - 1)
    pick = ops.one_hot(component, num_components, dtype=dtype)

    def chosen(x):
        return ops.sum(x * pick, axis=-1)

    normal = ops.cast(normal, dtype)
    mu1, mu2 = chosen(params["mu1"]), chosen(params["mu2"])
    s1, s2 = ops.exp(chosen(params["log_sigma1"])), ops.exp(chosen(params["log_sigma2"]))
    rho = chosen(params["rho"])
    x1 = mu1 + s1 * normal[:, 0]
    x2 = mu2 + s2 * (rho * normal[:, 0] + ops.sqrt(ops.maximum(1.0 - rho**2, 0.0)) * normal[:, 1])
    end_of_stroke = ops.cast(ops.cast(end_uniform, dtype) < params["e"], dtype)
    return ops.stack([x1, x2, end_of_stroke], axis=-1)


def sample_mixture(y_hat, bias=0.0, seed=None):
    """Draws x_{t+1} ~ Pr(x_{t+1} | y_t) (eq. 23) with probability bias b (eqs. 61-62).

    Args:
        y_hat: ``(batch, 1 + 6M)`` raw outputs.
        bias: b >= 0 (a float or a ``(batch,)`` tensor); 0 is unbiased sampling,
            large b approaches the mode of the most probable component.
        seed: a ``keras.random.SeedGenerator`` or an int, for reproducible draws.

    Returns:
        ``(batch, 3)`` = (dx, dy, end_of_stroke), end_of_stroke in {0, 1}.
    """
    dtype = y_hat.dtype
    batch = ops.shape(y_hat)[0]
    component_seed, normal_seed, bernoulli_seed = _split_seed(seed)
    return sample_mixture_from_noise(
        y_hat,
        keras.random.uniform((batch,), dtype=dtype, seed=component_seed),
        keras.random.normal((batch, 2), dtype=dtype, seed=normal_seed),
        keras.random.uniform((batch,), dtype=dtype, seed=bernoulli_seed),
        bias,
    )


def _split_seed(seed):
    """Three seeds for three draws: an int s gives s, s+1, s+2; a SeedGenerator advances."""
    if isinstance(seed, int):
        return seed, seed + 1, seed + 2
    return seed, seed, seed


@keras.saving.register_keras_serializable(package="graves_tf")
class MixtureDensityHead(keras.layers.Layer):
    """Output layer: an end-of-stroke Bernoulli plus M bivariate Gaussians.

        y_hat_t = b_y + sum_n W_{hn y} h^n_t       (17, on the concatenated hidden vectors)
        e = 1 / (1 + exp(e_hat))                   (18)
        pi = softmax(pi_hat)                       (19)
        mu = mu_hat, sigma = exp(sigma_hat)        (20, 21)
        rho = tanh(rho_hat)                        (22)

    The output size is 1 + 6M (121 for M = 20). :meth:`loss` is eq. 26 summed
    over each sequence's unmasked steps; :meth:`sample` draws with the
    probability bias of eqs. 61-62. With ``clip`` set, the derivative of the
    loss with respect to y_hat is clipped to ``[-clip, clip]`` (paper: 100).

    Args:
        num_components: M (paper: 20).
        clip: output derivative clipping limit, or None.
    """

    def __init__(self, num_components, clip=None, **kwargs):
        super().__init__(**kwargs)
        if int(num_components) != num_components or num_components < 1:
            raise ValueError(f"num_components must be a positive integer, got {num_components!r}")
        self.num_components = int(num_components)
        self.clip = validate_clip("clip", clip)

    @property
    def output_dim(self):
        return 1 + 6 * self.num_components

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_shape[-1], self.output_dim),
            initializer=keras.initializers.TruncatedNormal(stddev=0.075),
        )
        self.bias = self.add_weight(name="bias", shape=(self.output_dim,), initializer="zeros")

    def call(self, hidden):
        """``(..., hidden_dim) -> (..., 1 + 6M)`` raw outputs y_hat."""
        return clip_gradient(matmul(hidden, self.kernel) + self.bias, self.clip)

    def loss(self, y_hat, targets, mask=None):
        """Eq. 26 per sequence: ``(batch, T, 1+6M), (batch, T, 3) -> (batch,)`` nats."""
        nll = mixture_negative_log_likelihood(y_hat, ops.cast(targets, y_hat.dtype))
        if mask is not None:
            nll = nll * ops.cast(mask, nll.dtype)
        return ops.sum(nll, axis=-1)

    def sample(self, y_hat, bias=0.0, seed=None):
        return sample_mixture(y_hat, bias=bias, seed=seed)

    def get_config(self):
        config = super().get_config()
        config.update(num_components=self.num_components, clip=self.clip)
        return config
