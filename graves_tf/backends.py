"""Training the models on any Keras backend: TensorFlow, JAX or PyTorch.

``python -m graves_tf.train`` is TensorFlow's (``tf.distribute``, checkpoints,
validation, weight noise). This module is the short path for the other two
backends (and TensorFlow too), a loop over batches of NumPy arrays, e.g. the
input pipeline's ``bundle.make_epoch(0)`` through :func:`numpy_batches`::

    KERAS_BACKEND=jax python - <<'EOF'
    from graves_tf import backends, experiment, optimizers
    spec = experiment.spec_from_config("tiny_text")
    model = experiment.build_model(spec)
    trainer = backends.Trainer(model, optimizers.GravesRMSprop(1e-4))
    for batch in batches:                      # dicts of NumPy arrays
        print(trainer.train_step(batch))       # {"loss": ..., "applied": ...}
    backends.save_run(model, "runs/jax_text", spec)
    EOF

One update is the one of ``graves_tf.train``: the gradient of the *sum* of
the per-sequence losses (so the derivative clipping of section 2.1 sees each
sequence's own dL(x)/d(.)), scaled by 1 / the sequences in the batch, applied
only if the loss and every gradient are finite. :func:`save_run` writes a
folder that is a ``--model_dir`` for ``graves_tf.evaluate``, ``graves_tf.write``,
``python -m export`` and ``graves_tf.pretrained.release`` on TensorFlow:
``model_config.json`` and ``weights.npz`` (float32, by Keras path).
"""

import os

import keras
import numpy as np
from keras import ops

__all__ = ["Trainer", "numpy_batches", "save_run"]


def numpy_batches(dataset, max_batches=None):
    """The batches of a ``tf.data.Dataset`` of dicts (the input pipelines') as dicts of NumPy arrays."""
    for i, batch in enumerate(dataset.as_numpy_iterator()):
        if max_batches is not None and i >= max_batches:
            return
        yield batch


# What the models read of a batch (graves_tf.models.sequence_model); the pipelines' other keys
# (a text stream's "reset" and "segment") are bookkeeping for graves_tf.train.
MODEL_KEYS = ("inputs", "targets", "mask", "lengths", "text", "text_mask", "text_lengths")


def _as_model_inputs(model, batch):
    """The model's keys of ``batch``: floats in the model's dtype, integers as int32."""
    if "inputs" not in batch or "targets" not in batch:
        raise ValueError(f"a batch needs 'inputs' and 'targets', got keys {sorted(batch)}")
    dtype = model.compute_dtype
    arrays = {key: np.asarray(batch[key]) for key in MODEL_KEYS if key in batch}
    return {key: value.astype(dtype if value.dtype.kind == "f" else "int32") for key, value in arrays.items()}


class Trainer:
    """Updates ``model`` with ``optimizer`` one batch at a time, on the backend Keras runs.

    Args:
        model: a :class:`~graves_tf.models.SequenceModel` (``model(batch)`` is
            the loss of each sequence).
        optimizer: a Keras optimizer, e.g. ``keras.optimizers.Adam`` or
            :class:`graves_tf.optimizers.GravesRMSprop`.

    On JAX the update is one jitted function of the weights and the
    optimizer's variables, kept as arrays between updates; :meth:`sync`
    writes them into the model's and the optimizer's variables (done by
    :func:`save_run` and whenever :attr:`model` is read through :meth:`synced_model`).
    """

    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer
        self.backend = keras.backend.backend()
        optimizer.build(model.trainable_variables)
        self._state = None
        if self.backend == "jax":
            self._jax_step = self._make_jax_step()
        elif self.backend == "tensorflow":
            self._tf_step = self._make_tf_step()
        elif self.backend != "torch":
            raise ValueError(f"Keras backend {self.backend!r} is not supported; use tensorflow, jax or torch")

    def train_step(self, batch):
        """One update on ``batch`` (a dict of arrays). Returns ``{"loss", "applied"}``, loss in nats per sequence."""
        batch = _as_model_inputs(self.model, batch)
        step = {"jax": self._jax_train_step, "torch": self._torch_train_step, "tensorflow": self._tf_train_step}
        loss_sum, count, applied = step[self.backend](batch)
        return {"loss": float(loss_sum) / count, "applied": bool(applied)}

    def synced_model(self):
        """The model with every update written into its variables."""
        self.sync()
        return self.model

    def sync(self):
        """Writes the weights and optimizer state held as JAX arrays into the variables."""
        if self._state is None:
            return
        trainable, non_trainable, optimizer_values = self._state
        for variable, value in zip(self.model.trainable_variables, trainable):
            variable.assign(value)
        for variable, value in zip(self.model.non_trainable_variables, non_trainable):
            variable.assign(value)
        for variable, value in zip(self.optimizer.variables, optimizer_values):
            variable.assign(value)

    # -- JAX ---------------------------------------------------------------

    def _make_jax_step(self):
        import jax
        import jax.numpy as jnp

        model, optimizer = self.model, self.optimizer

        def loss_sum(trainable, non_trainable, batch):
            losses, non_trainable = model.stateless_call(trainable, non_trainable, batch, training=True)
            return jnp.sum(losses), (losses.shape[0], non_trainable)

        gradient = jax.value_and_grad(loss_sum, has_aux=True)

        @jax.jit
        def step(trainable, non_trainable, optimizer_values, batch):
            (total, (count, non_trainable)), grads = gradient(trainable, non_trainable, batch)
            grads = [g / count for g in grads]
            finite = jnp.isfinite(total)
            for g in grads:
                finite = finite & jnp.all(jnp.isfinite(g))
            new_trainable, new_optimizer = optimizer.stateless_apply(optimizer_values, grads, trainable)
            keep = lambda new, old: [jnp.where(finite, a, b) for a, b in zip(new, old)]  # noqa: E731
            return keep(new_trainable, trainable), non_trainable, keep(new_optimizer, optimizer_values), total, finite

        return step

    def _jax_train_step(self, batch):
        if self._state is None:
            self._state = (
                [v.value for v in self.model.trainable_variables],
                [v.value for v in self.model.non_trainable_variables],
                [v.value for v in self.optimizer.variables],
            )
        trainable, non_trainable, optimizer_values, total, finite = self._jax_step(*self._state, batch)
        self._state = (trainable, non_trainable, optimizer_values)
        return total, len(next(iter(batch.values()))), finite

    # -- PyTorch -------------------------------------------------------------

    def _torch_train_step(self, batch):
        import torch

        variables = self.model.trainable_variables
        for variable in variables:
            variable.value.grad = None
        losses = self.model(batch, training=True)
        total = ops.sum(losses)
        total.backward()
        count = int(losses.shape[0])
        grads = [variable.value.grad / count for variable in variables]
        finite = bool(torch.isfinite(total)) and all(bool(torch.isfinite(g).all()) for g in grads)
        if finite:
            with torch.no_grad():
                self.optimizer.apply(grads, variables)
        for variable in variables:
            variable.value.grad = None
        return float(total.detach()), count, finite

    # -- TensorFlow ------------------------------------------------------------

    def _make_tf_step(self):
        import tensorflow as tf

        model, optimizer = self.model, self.optimizer

        @tf.function(reduce_retracing=True)
        def step(batch):
            with tf.GradientTape() as tape:
                losses = model(batch, training=True)
                total = tf.reduce_sum(losses)
            count = tf.cast(tf.shape(losses)[0], total.dtype)
            grads = [g / count for g in tape.gradient(total, model.trainable_variables)]
            finite = tf.math.is_finite(total) & tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])

            def apply():
                optimizer.apply(grads, model.trainable_variables)
                return tf.constant(True)

            return total, tf.cond(finite, apply, lambda: tf.constant(False))

        return step

    def _tf_train_step(self, batch):
        total, applied = self._tf_step(batch)
        return total, len(next(iter(batch.values()))), applied


def save_run(model, model_dir, spec, bundle=None):
    """Writes ``model_dir`` as a released model: ``model_config.json`` (``spec``, the bundle's
    statistics and vocabulary) and ``weights.npz`` (float32), readable by ``run_dir.load_run``.

    ``model`` may also be a :class:`Trainer` (its latest weights are written).
    """
    from graves_tf import pretrained, run_dir

    if isinstance(model, Trainer):
        model = model.synced_model()
    run_dir.save_run_config(model_dir, spec, bundle)
    path = os.path.join(model_dir, run_dir.RELEASED_WEIGHTS)
    pretrained.save_weights(model, path, dtype=np.float32)
    return path
