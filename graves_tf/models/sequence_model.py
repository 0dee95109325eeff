"""What the three models of the paper share: a SkipStack, an output head, a loss."""

import keras
from keras import ops

from graves_tf.layers import precision

# Keys of a batch dict (the input pipelines produce these):
#   inputs      (B, T, 3) floats or (B, T) int ids: x_1..x_T, x_1 the null input
#               (zeros, or id -1) at the start of a sequence (section 2)
#   targets     (B, T, 3) or (B, T): x_2..x_{T+1}
#   mask        (B, T) 1 for real steps, 0 for padding (or give lengths)
#   lengths     (B,) number of real steps, used when mask is absent
#   text        (B, U) character ids (synthesis only)
#   text_mask   (B, U) (or text_lengths (B,))


def sequence_mask(batch, mask_key, lengths_key, max_length, dtype):
    """The mask of a batch: given directly, from lengths, or all ones."""
    if batch.get(mask_key) is not None:
        return ops.cast(batch[mask_key], dtype)
    if batch.get(lengths_key) is not None:
        positions = ops.arange(max_length, dtype="int32")
        lengths = ops.cast(batch[lengths_key], "int32")
        return ops.cast(positions[None, :] < ops.expand_dims(lengths, -1), dtype)
    return None


class SequenceModel(keras.Model):
    """Base of the three models: ``self.stack`` (a SkipStack) and ``self.head``.

    * ``model(batch)`` runs the teacher-forced sequence and returns the
      per-sequence loss ``(B,)`` in nats (eq. 6 / 13 / 26 / 54).
    * :meth:`forward` returns everything: ``loss``, ``outputs`` (y_hat),
      ``final_state`` and, for synthesis, the window's ``phi``.
    * :meth:`step` advances one timestep from an explicit state, running the
      same cell, window and head code as the sequence call.
    * :meth:`initial_state` is the all-zero state of a batch.

    ``matmul_precision``: None (or "float32"), or "bfloat16" for bfloat16
    matmuls with float32 state, window and loss (:mod:`graves_tf.layers.precision`;
    set it before the first call that traces a graph). Not saved with the model.
    """

    matmul_precision = None

    def _build_layers(self):
        self.stack.build()
        self.head.build((None, self.stack.output_dim))
        self.built = True

    def context(self, batch):
        """The conditioning context of a batch (synthesis: the text); None otherwise."""
        return None

    def initial_state(self, batch_size):
        return self.stack.initial_state(batch_size)

    def __call__(self, *args, **kwargs):
        if keras.backend.backend() != "torch":
            return super().__call__(*args, **kwargs)
        # On PyTorch, Layer.__call__ runs torch.nn.Module.__call__, which
        # calls self.forward: that one call must be Keras's dispatch to call().
        object.__setattr__(self, "_dispatching", True)
        try:
            return super().__call__(*args, **kwargs)
        finally:
            object.__setattr__(self, "_dispatching", False)

    def forward(self, batch, initial_state=None, training=None):
        if getattr(self, "_dispatching", False):  # torch.nn.Module.__call__, see __call__
            object.__setattr__(self, "_dispatching", False)
            return self.call(batch, initial_state=initial_state, training=training)
        inputs = batch["inputs"]
        mask = sequence_mask(batch, "mask", "lengths", ops.shape(inputs)[1], self.compute_dtype)
        with precision.matmul_precision(self.matmul_precision):
            out = self.stack(
                inputs, initial_state=initial_state, step_mask=mask, context=self.context(batch)
            )
            outputs = self.head(ops.concatenate(out.pop("hidden"), axis=-1))
        out["outputs"] = outputs
        out["loss"] = self.head.loss(outputs, batch["targets"], mask)
        return out

    def call(self, batch, initial_state=None, training=None):
        return self.forward(batch, initial_state=initial_state, training=training)["loss"]

    def step_weights(self):
        """The recurrent weights as tensors, to read once before a loop of :meth:`step` calls.

        With bfloat16 matmuls the stacked kernels are cast here, once: the loop reads half the bytes.
        """
        weights = self.stack.step_weights()
        if precision.check_precision(self.matmul_precision):
            weights["stacked_kernels"] = [
                precision.for_matmul(k, self.matmul_precision) for k in weights["stacked_kernels"]
            ]
        return weights

    def step(self, inputs, state, context=None, weights=None):
        """One timestep: ``(x_t, state[, context, weights]) -> (y_hat_t, new_state, extras)``.

        ``weights``: :meth:`step_weights`, read once outside the loop; None reads them now.
        """
        with precision.matmul_precision(self.matmul_precision):
            hidden, new_state, extras = self.stack.step(inputs, state, context, weights)
            return self.head(ops.concatenate(hidden, axis=-1)), new_state, extras


def count_weights(model):
    """Number of trainable weights."""
    return int(sum(int(ops.size(v)) for v in model.trainable_weights))
