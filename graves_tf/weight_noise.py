"""Weight noise regularisation: fixed (Graves 2013, sec. 3.1) and adaptive (Graves 2011).

Graves (2013) regularises the Penn Treebank networks (section 3.1) with

* fixed-variance weight noise: "weight noise [18] with a std. deviation of
  0.075 applied to the network weights at the start of each training
  sequence" -- :class:`FixedWeightNoise`;
* adaptive weight noise [8] (Graves 2011, "Practical Variational Inference for
  Neural Networks", NIPS 2011), "where the variance of the noise is learned
  along with the weights using a Minimum description Length (or equivalently,
  variational inference) loss function" -- :class:`AdaptiveWeightNoise`. It is
  also used for the three-layer handwriting prediction network (section 4.2,
  "all std. devs. initialised to 0.075") and the synthesis network (section 5).

Both classes are used the same way inside a ``tf.function`` training step on
a list of model variables (``model.trainable_variables``)::

    saved = noise.perturb(variables)        # weights <- noisy weights, in place
    with tf.GradientTape() as tape:
        loss = ...                          # forward pass at the noisy weights
    grads = tape.gradient(loss, variables)  # dL/dw at the noisy weights
    noise.restore(variables, saved)         # weights <- clean weights, exactly
    # fixed noise: apply ``grads`` to ``variables``;
    # adaptive noise: mu_grads, sigma_grads = noise.gradients(grads, saved, variables)
    #   and apply them to ``variables + noise.trainable_variables``.

Choices made here:

* **One draw per training update.** The paper draws noise "at the start of each
  training sequence"; with mini-batches the weights are shared by every
  sequence of the batch, so one draw is made per batch (= per update) and all
  sequences of a batch see the same noisy weights. With batch size 1 this is
  exactly the paper's per-sequence noise.
* **Exact restore.** ``w + n - n`` is not ``w`` in floating point (e.g. when
  ``|n| >> |w|`` low bits of ``w`` are lost), so ``perturb`` keeps a copy of the
  clean values and ``restore`` re-assigns them: the weights come back
  bit-exactly. The copies cost one extra set of weights in memory.
* **Random numbers** come from a ``tf.random.Generator`` owned by the object
  (seeded with ``seed``, or non-deterministically when ``seed`` is None), so
  every call, also inside a ``tf.function``, draws fresh noise and a seed
  reproduces the sequence of draws.
* **Under a tf.distribute strategy** the variables are mirrored and cannot
  hold a different value per replica, so :meth:`sample` gives the noisy
  weights as tensors instead of assigning them (the trainer runs the forward
  pass on them through ``keras.StatelessScope``). The trainer draws once per
  update, in cross-replica context, and every replica (every worker, whose
  generators hold the same state) computes its share of the batch at the same
  noisy weights: the one-draw-per-update noise of one device, so the update
  has the same expectation as on one device and, with a seed, the same value.
  The adaptive noise's gradients are formed once from the summed data
  gradient (:meth:`AdaptiveWeightNoise.gradients`), so its complexity term is
  counted once, not once per replica.
"""

import math
from typing import List, NamedTuple

import tensorflow as tf

__all__ = [
    "AdaptiveNoiseSample",
    "AdaptiveWeightNoise",
    "FixedNoiseSample",
    "FixedWeightNoise",
]


def _dtype(variable):
    return tf.as_dtype(variable.dtype)


def _shape(variable):
    return tf.TensorShape(variable.shape)


def _read(variable):
    """The current value of a tf or Keras variable, as a tensor."""
    return tf.convert_to_tensor(variable)


def _make_generator(seed):
    if seed is None:
        return tf.random.Generator.from_non_deterministic_state()
    return tf.random.Generator.from_seed(int(seed))


def _dense(gradient, variable):
    """A dense gradient tensor: IndexedSlices densified, None -> zeros."""
    if gradient is None:
        return tf.zeros(_shape(variable), _dtype(variable))
    if isinstance(gradient, tf.IndexedSlices):
        gradient = tf.convert_to_tensor(gradient)
    return tf.cast(gradient, _dtype(variable))


class FixedNoiseSample(NamedTuple):
    """What :meth:`FixedWeightNoise.perturb` returns.

    Attributes:
        noises: the Gaussian draws added to the variables (one tensor each).
        originals: the clean values, re-assigned by ``restore``.
    """

    noises: List[tf.Tensor]
    originals: List[tf.Tensor]


class AdaptiveNoiseSample(NamedTuple):
    """What :meth:`AdaptiveWeightNoise.perturb` returns.

    Attributes:
        means: the posterior means mu (the clean variable values).
        eps: the standard normal draws; the noisy weights were ``mu + sigma * eps``.
    """

    means: List[tf.Tensor]
    eps: List[tf.Tensor]


class FixedWeightNoise(tf.Module):
    """Fixed-variance Gaussian weight noise (Graves 2013, sec. 3.1; Jim et al. [18]).

    At every training update each weight gets an independent N(0, std^2)
    perturbation; the gradient is computed at the noisy weights and applied to
    the clean ones. All sequences of one batch share one draw (one draw per
    training update; the paper's "at the start of each training sequence" with
    batch size 1). The paper uses ``std = 0.075``.

    Args:
        std: the noise standard deviation.
        seed: seed of the random generator; None for a non-deterministic one.
    """

    def __init__(self, std, seed=None, name="fixed_weight_noise"):
        super().__init__(name=name)
        if std < 0:
            raise ValueError(f"weight noise std must be >= 0, got {std}")
        self.std = float(std)
        self._generator = _make_generator(seed)

    def sample(self, variables):
        """A fresh N(0, std^2) draw for every variable, without touching the variables.

        Returns:
            ``(noisy_values, sample)``: the noisy weights (one tensor per
            variable) and a :class:`FixedNoiseSample`.
        """
        noises, originals, noisy = [], [], []
        for variable in variables:
            clean = _read(variable)
            noise = self._generator.normal(_shape(variable), stddev=self.std, dtype=_dtype(variable))
            noisy.append(clean + noise)
            noises.append(noise)
            originals.append(clean)
        return noisy, FixedNoiseSample(noises, originals)

    def perturb(self, variables):
        """Adds a fresh N(0, std^2) draw to every variable, in place.

        Returns:
            A :class:`FixedNoiseSample` ``(noises, originals)``: the draws and
            the clean values that :meth:`restore` puts back.
        """
        variables = list(variables)
        noisy, sample = self.sample(variables)
        for variable, value in zip(variables, noisy):
            variable.assign(value)
        return sample

    def restore(self, variables, noises):
        """Undoes :meth:`perturb` exactly by re-assigning the clean values."""
        variables = list(variables)
        if len(variables) != len(noises.originals):
            raise ValueError("restore needs the variables that were perturbed")
        for variable, clean in zip(variables, noises.originals):
            variable.assign(clean)


class _Untracked:
    """Holds references that tf.Module must neither checkpoint nor list as its own."""

    def __init__(self, value):
        self.value = value


class AdaptiveWeightNoise(tf.Module):
    r"""Adaptive weight noise: the MDL / variational loss of Graves (2011).

    Each network weight :math:`w_i` gets a diagonal Gaussian posterior
    :math:`q(w_i) = N(\mu_i, \sigma_i^2)`. :math:`\mu_i` is the model's own
    variable; :math:`\sigma_i = \exp(\rho_i)` with a new trainable variable
    :math:`\rho_i = \log \sigma_i` per weight (``trainable_variables``),
    initialised to ``log(init_std)`` (the paper initialises all std. devs. to
    0.075, sec. 4.2). The exponential keeps sigma positive for any value of
    rho, and makes the optimiser's steps relative changes of sigma.

    The prior is one Gaussian :math:`N(\mu_p, \sigma_p^2)` shared by all
    :math:`W` weights, at its closed-form optimum (Graves 2011, sec. 4)::

        mu_p      = (1/W) sum_i mu_i
        sigma_p^2 = (1/W) sum_i [sigma_i^2 + (mu_i - mu_p)^2]

    The complexity (description length of the weights) is, in nats::

        L_C = KL(q || p) = sum_i [ log(sigma_p / sigma_i)
                                   + (sigma_i^2 + (mu_i - mu_p)^2) / (2 sigma_p^2) - 1/2 ]

    and the per-sequence loss minimised is
    ``E_q[L_data] + L_C / num_sequences`` (the MDL loss of Graves 2011 divided
    by the number of training sequences N, so that it adds to the usual
    per-sequence data loss).

    Choices:

    * the expectation ``E_q[L_data]`` is estimated with **one sample per
      batch** (per training update): :meth:`perturb` draws
      :math:`\epsilon \sim N(0, 1)` per weight and sets
      :math:`w = \mu + \sigma \epsilon` in place;
    * the gradients are the **reparameterised** ones of that sample
      (:meth:`gradients`): :math:`\partial/\partial\mu = g` and
      :math:`\partial/\partial\rho = g\,\epsilon\,\sigma`, with ``g`` the data
      gradient at the noisy weights, plus the exact gradient of ``L_C / N``.
      (Graves 2011 uses a Gauss-Newton approximation of the variance gradient
      instead; the reparameterised estimate is unbiased.) Because the prior is
      optimal, the derivatives of ``L_C`` through mu_p and sigma_p vanish and
      ``dL_C/dmu_i = (mu_i - mu_p) / sigma_p^2``,
      ``dL_C/drho_i = sigma_i^2 / sigma_p^2 - 1``;
    * the complexity and the prior are accumulated in float64.

    The object is a ``tf.Module``: ``tf.train.Checkpoint(noise=obj)`` saves the
    rho variables (and the random generator's state) but not the model
    variables, which the model checkpoints itself.

    Args:
        variables: the model variables (the posterior means), e.g.
            ``model.trainable_variables``; the same list, in the same order,
            must be passed to :meth:`perturb`, :meth:`restore` and
            :meth:`gradients`.
        init_std: the initial sigma of every weight.
        num_sequences: N, the number of training sequences (the complexity
            loss is spread over them).
        seed: seed of the random generator; None for a non-deterministic one.
    """

    def __init__(self, variables, init_std=0.075, num_sequences=None, seed=None, name="adaptive_weight_noise"):
        super().__init__(name=name)
        if num_sequences is None or num_sequences < 1:
            raise ValueError(f"num_sequences must be a positive integer, got {num_sequences}")
        if init_std <= 0:
            raise ValueError(f"init_std must be > 0, got {init_std}")
        variables = list(variables)
        if not variables:
            raise ValueError("AdaptiveWeightNoise needs at least one variable")
        self.init_std = float(init_std)
        self.num_sequences = int(num_sequences)
        self._means = _Untracked(variables)
        self._num_weights = sum(int(_shape(v).num_elements()) for v in variables)
        log_std = math.log(self.init_std)
        self.log_sigmas = [
            tf.Variable(
                tf.fill(_shape(v), tf.constant(log_std, _dtype(v))),
                trainable=True,
                name=f"log_sigma_{i}",
            )
            for i, v in enumerate(variables)
        ]
        self._generator = _make_generator(seed)

    # -- variables -----------------------------------------------------------

    @property
    def trainable_variables(self):
        """The sigma parameters rho = log(sigma), one per model variable, in order."""
        return tuple(self.log_sigmas)

    @property
    def num_weights(self):
        return self._num_weights

    def _check(self, variables):
        variables = list(self._means.value if variables is None else variables)
        if len(variables) != len(self.log_sigmas):
            raise ValueError(
                f"expected the {len(self.log_sigmas)} variables given at construction, got {len(variables)}"
            )
        return variables

    def sigmas(self):
        """sigma = exp(rho) for every model variable."""
        return [tf.exp(rho) for rho in self.log_sigmas]

    def mean_sigma(self):
        """The mean sigma over all weights (for logging), float32."""
        total = tf.add_n([tf.reduce_sum(tf.exp(tf.cast(rho, tf.float64))) for rho in self.log_sigmas])
        return tf.cast(total / self._num_weights, tf.float32)

    # -- prior and complexity ------------------------------------------------

    def _prior64(self, mus, log_sigmas):
        count = tf.constant(float(self._num_weights), tf.float64)
        mu_p = tf.add_n([tf.reduce_sum(m) for m in mus]) / count
        var_p = (
            tf.add_n(
                [tf.reduce_sum(tf.exp(2.0 * ls) + tf.square(m - mu_p)) for m, ls in zip(mus, log_sigmas)]
            )
            / count
        )
        return mu_p, var_p

    def _as64(self, variables):
        mus = [tf.cast(_read(v), tf.float64) for v in variables]
        log_sigmas = [tf.cast(rho, tf.float64) for rho in self.log_sigmas]
        return mus, log_sigmas

    def prior(self, variables=None):
        """The optimal prior ``(mu_p, sigma_p)`` (float64 scalars) for the current q."""
        mus, log_sigmas = self._as64(self._check(variables))
        mu_p, var_p = self._prior64(mus, log_sigmas)
        return mu_p, tf.sqrt(var_p)

    def complexity_loss(self, variables=None):
        """KL(q || p) summed over all weights, in nats (float64), with the optimal prior.

        Differentiable with respect to the model variables and the sigma
        parameters. ``variables`` defaults to those given at construction;
        they must hold mu (call it outside perturb/restore).
        """
        mus, log_sigmas = self._as64(self._check(variables))
        mu_p, var_p = self._prior64(mus, log_sigmas)
        log_sigma_p = 0.5 * tf.math.log(var_p)
        terms = [
            tf.reduce_sum(log_sigma_p - ls + (tf.exp(2.0 * ls) + tf.square(m - mu_p)) / (2.0 * var_p) - 0.5)
            for m, ls in zip(mus, log_sigmas)
        ]
        return tf.add_n(terms)

    # -- noise ---------------------------------------------------------------

    def sample(self, variables):
        """Draws w = mu + sigma * eps, eps ~ N(0, 1), without touching the variables.

        Returns:
            ``(noisy_values, sample)``: the noisy weights (one tensor per
            variable) and an :class:`AdaptiveNoiseSample` ``(means, eps)`` for
            :meth:`gradients`.
        """
        variables = self._check(variables)
        means, eps, noisy = [], [], []
        for variable, rho in zip(variables, self.log_sigmas):
            mu = _read(variable)
            e = self._generator.normal(_shape(variable), dtype=_dtype(variable))
            noisy.append(mu + tf.exp(tf.cast(rho, _dtype(variable))) * e)
            means.append(mu)
            eps.append(e)
        return noisy, AdaptiveNoiseSample(means, eps)

    def perturb(self, variables):
        """Samples w = mu + sigma * eps, eps ~ N(0, 1), into the variables in place.

        Returns:
            An :class:`AdaptiveNoiseSample` ``(means, eps)`` for :meth:`restore`
            and :meth:`gradients`.
        """
        variables = self._check(variables)
        noisy, sample = self.sample(variables)
        for variable, value in zip(variables, noisy):
            variable.assign(value)
        return sample

    def restore(self, variables, saved):
        """Puts mu back into the variables exactly (re-assigns the saved values)."""
        variables = self._check(variables)
        for variable, mu in zip(variables, saved.means):
            variable.assign(mu)

    def gradients(self, data_gradients, saved, variables):
        """Gradients of the per-sequence MDL loss ``E_q[L_data] + L_C / N``.

        Args:
            data_gradients: dL_data/dw at the perturbed weights (one per
                variable; None counts as zero, IndexedSlices are densified).
            saved: what :meth:`perturb` returned.
            variables: the model variables, holding mu again (after
                :meth:`restore`).

        Returns:
            ``(mu_gradients, sigma_param_gradients)``: lists matching
            ``variables`` and ``trainable_variables``. With ``g`` the data
            gradient and ``eps`` the sample: ``g + dL_C/dmu / N`` and
            ``g * eps * sigma + dL_C/drho / N`` (as sigma = exp(rho),
            dsigma/drho = sigma).
        """
        variables = self._check(variables)
        mus, log_sigmas = self._as64(variables)
        mu_p, var_p = self._prior64(mus, log_sigmas)
        inv_n = 1.0 / self.num_sequences
        mu_grads, rho_grads = [], []
        for variable, rho, g, e, m, ls in zip(variables, self.log_sigmas, data_gradients, saved.eps, mus, log_sigmas):
            dtype = _dtype(variable)
            g = _dense(g, variable)
            sigma = tf.exp(tf.cast(rho, dtype))
            kl_mu = (m - mu_p) / var_p * inv_n
            kl_rho = (tf.exp(2.0 * ls) / var_p - 1.0) * inv_n
            mu_grads.append(g + tf.cast(kl_mu, dtype))
            rho_grads.append(g * tf.cast(e, dtype) * sigma + tf.cast(kl_rho, dtype))
        return mu_grads, rho_grads
