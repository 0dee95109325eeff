"""Softmax output for text prediction (paper section 3, eqs. 12-13)."""

import keras
from keras import ops

from graves_tf.layers.gradient_clipping import clip_gradient, validate_clip
from graves_tf.layers.precision import matmul


@keras.saving.register_keras_serializable(package="graves_tf")
class SoftmaxHead(keras.layers.Layer):
    """Pr(x_{t+1} = k | y_t) = softmax(y_hat_t)_k (eq. 12), y_hat_t = b_y + sum_n W_{hn y} h^n_t (eq. 3).

    :meth:`loss` is eq. 13, -sum_t log y_t^{x_{t+1}} over each sequence's
    unmasked steps, in nats. With ``clip`` set, dL/dy_hat is clipped to
    ``[-clip, clip]`` (the paper clips only the LSTM derivatives for text).

    Args:
        num_classes: K, the number of text classes.
        clip: output derivative clipping limit, or None.
    """

    def __init__(self, num_classes, clip=None, **kwargs):
        super().__init__(**kwargs)
        if int(num_classes) != num_classes or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.clip = validate_clip("clip", clip)

    @property
    def output_dim(self):
        return self.num_classes

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.num_classes), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.num_classes,), initializer="zeros")

    def call(self, hidden):
        """``(..., hidden_dim) -> (..., K)`` logits y_hat."""
        return clip_gradient(matmul(hidden, self.kernel) + self.bias, self.clip)

    def loss(self, logits, targets, mask=None):
        """Eq. 13 per sequence: ``(batch, T, K), (batch, T) ids -> (batch,)`` nats."""
        # In the logits' dtype: JAX with 64-bit types on computes float32 logits' loss in float64.
        nll = ops.cast(ops.sparse_categorical_crossentropy(targets, logits, from_logits=True), logits.dtype)
        if mask is not None:
            nll = nll * ops.cast(mask, nll.dtype)
        return ops.sum(nll, axis=-1)

    def sample(self, logits, temperature=1.0, seed=None):
        """Draws class ids ``(batch,)`` from softmax(logits / temperature)."""
        return keras.random.categorical(logits / temperature, 1, seed=seed)[:, 0]

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, clip=self.clip)
        return config
