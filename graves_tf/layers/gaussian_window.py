"""The soft window of handwriting synthesis (paper section 5.1, eqs. 46-51)."""

import math

import keras
from keras import ops

from graves_tf.layers import backend_ops
from graves_tf.layers.scan import snapshot


def soft_window(window_params, kappa_prev, text_onehot, text_mask):
    """Eqs. 46-47 and 49-51 for one timestep, as a pure function.

    Args:
        window_params: ``(batch, 3K)`` = ``(alpha_hat, beta_hat, kappa_hat)`` of eq. 48.
        kappa_prev: ``(batch, K)`` window locations kappa_{t-1}.
        text_onehot: ``(batch, U, V)`` one-hot characters c_u.
        text_mask: ``(batch, U)``, 1 for real characters, 0 for padding.

    Returns:
        A dict with ``w`` ``(batch, V)`` (eq. 47), ``kappa`` ``(batch, K)``
        (eq. 51), ``phi`` ``(batch, U)`` the window weights phi(t, u) of eq. 46
        for u = 1..U (0 on padding), and ``phi_end`` ``(batch,)``, phi(t, U+1)
        at the first position past each sequence's own length U, used by the
        end-of-sequence rule of section 5.3.
    """
    alpha_hat, beta_hat, kappa_hat = ops.split(window_params, 3, axis=-1)
    alpha = ops.exp(alpha_hat)  # (49)
    beta = ops.exp(beta_hat)  # (50)
    kappa = kappa_prev + ops.exp(kappa_hat)  # (51)
    dtype = kappa.dtype
    num_chars = ops.shape(text_onehot)[1]
    positions = ops.cast(ops.arange(1, num_chars + 1), dtype)  # u = 1..U
    text_mask = ops.cast(text_mask, dtype)
    length = ops.sum(text_mask, axis=-1)

    def phi_at(u):  # u: (batch, n) positions -> (batch, n), eq. 46
        distance = ops.expand_dims(kappa, 1) - ops.expand_dims(u, -1)
        terms = ops.expand_dims(alpha, 1) * ops.exp(-ops.expand_dims(beta, 1) * distance**2)
        return ops.sum(terms, axis=-1)

    batch = ops.shape(kappa)[0]
    phi = phi_at(ops.broadcast_to(positions, (batch, num_chars))) * text_mask
    phi_end = phi_at(ops.expand_dims(length + 1.0, -1))[:, 0]
    w = ops.einsum("bu,buv->bv", phi, ops.cast(text_onehot, dtype))  # (47)
    return {"w": w, "kappa": kappa, "phi": phi, "phi_end": phi_end}


@keras.saving.register_keras_serializable(package="graves_tf")
class GaussianWindow(keras.layers.Layer):
    """A mixture of K Gaussian functions sliding over a character sequence.

        phi(t, u) = sum_k alpha_t^k exp(-beta_t^k (kappa_t^k - u)^2)   (46)
        w_t = sum_u phi(t, u) c_u                                      (47)
        (alpha_hat, beta_hat, kappa_hat) = W_{h1 p} h1_t + b_p          (48)
        alpha = exp(alpha_hat), beta = exp(beta_hat)                   (49, 50)
        kappa_t = kappa_{t-1} + exp(kappa_hat)                          (51)

    Characters are indexed u = 1..U; kappa starts at 0. Padded characters are
    masked out of phi and w. The window's state is ``{"kappa", "w"}`` (w_{t-1} is
    fed to the first hidden layer at the next step, eq. 52).

    This layer is the conditioning input of :class:`SkipStack`: it implements
    ``initial_state(batch_size)``, ``step(h1, state, context)`` and ``output_dim``.

    Args:
        num_gaussians: K, the number of window components (paper: 10).
        alphabet_size: V, the size of the one-hot character vectors (paper: 57).
        initial_kappa_step: where the window starts its stride: the bias of
            kappa_hat is set to ``log(initial_kappa_step)``, so an untrained
            window advances about this many characters per pen point (eq. 51).
            The paper does not say; None keeps a bias of -1 (0.37 characters
            per point). Handwriting has ~22 points per character (~11 at
            ``point_stride=2``), so ~1/22 starts the window near the pen.
    """

    def __init__(self, num_gaussians, alphabet_size, initial_kappa_step=None, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("num_gaussians", num_gaussians), ("alphabet_size", alphabet_size)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.num_gaussians = int(num_gaussians)
        self.alphabet_size = int(alphabet_size)
        if initial_kappa_step is not None and not initial_kappa_step > 0:
            raise ValueError(f"initial_kappa_step must be > 0, got {initial_kappa_step!r}")
        self.initial_kappa_step = None if initial_kappa_step is None else float(initial_kappa_step)

    @property
    def output_dim(self):
        return self.alphabet_size

    def build(self, input_shape):
        hidden_dim = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(hidden_dim, 3 * self.num_gaussians),
            initializer=keras.initializers.TruncatedNormal(stddev=0.01),
        )
        self.bias = self.add_weight(
            name="bias",
            shape=(3 * self.num_gaussians,),
            initializer=self._bias_initializer,
        )

    def _bias_initializer(self, shape, dtype=None):
        kappa_bias = -1.0 if self.initial_kappa_step is None else math.log(self.initial_kappa_step)
        values = [-1.0] * (2 * self.num_gaussians) + [kappa_bias] * self.num_gaussians
        return ops.cast(ops.convert_to_tensor(values), dtype or "float32")

    def step_weights(self):
        """The weights :meth:`step` uses, read once as tensors (see ``PeepholeLSTMCell.recurrent_weights``)."""
        return {"kernel": snapshot(self.kernel), "bias": snapshot(self.bias)}

    def window_parameters(self, hidden, weights=None):
        """Eq. 48: ``(batch, 3K)`` raw window parameters from the first hidden layer."""
        weights = weights or self.step_weights()
        return backend_ops.matmul(hidden, weights["kernel"]) + weights["bias"]

    def context(self, text, text_mask):
        """Turns character ids ``(batch, U)`` and their mask into the step's context."""
        return {
            "text_onehot": ops.one_hot(text, self.alphabet_size, dtype=self.compute_dtype),
            "text_mask": ops.cast(text_mask, self.compute_dtype),
        }

    def initial_state(self, batch_size):
        return {
            "kappa": ops.zeros((batch_size, self.num_gaussians), dtype=self.compute_dtype),
            "w": ops.zeros((batch_size, self.alphabet_size), dtype=self.compute_dtype),
        }

    def step(self, hidden, state, context, weights=None):
        """One timestep: returns ``(w_t, new_state, {"phi", "phi_end"})``."""
        out = soft_window(
            self.window_parameters(hidden, weights),
            state["kappa"],
            context["text_onehot"],
            context["text_mask"],
        )
        return out["w"], {"kappa": out["kappa"], "w": out["w"]}, {
            "phi": out["phi"],
            "phi_end": out["phi_end"],
        }

    def call(self, hidden, state, context):
        return self.step(hidden, state, context)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_gaussians=self.num_gaussians,
            alphabet_size=self.alphabet_size,
            initial_kappa_step=self.initial_kappa_step,
        )
        return config
