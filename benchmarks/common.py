"""What the benchmarks share: synthetic batches and timing of a Keras training step."""

import time

import numpy as np


def synthetic_batch(model, batch_size, num_steps, text_length=40, seed=0):
    """A full (unpadded) random batch in the layout the input pipelines produce."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    if hasattr(model, "vocab_size"):
        ids = rng.integers(0, model.vocab_size, (batch_size, num_steps + 1)).astype("int32")
        return {"inputs": tf.constant(ids[:, :-1]), "targets": tf.constant(ids[:, 1:]), "mask": tf.ones((batch_size, num_steps))}
    offsets = rng.normal(size=(batch_size, num_steps, 2))
    end_of_stroke = rng.random((batch_size, num_steps, 1)) < 0.05
    targets = np.concatenate([offsets, end_of_stroke], -1).astype("float32")
    inputs = np.concatenate([np.zeros((batch_size, 1, 3), "float32"), targets[:, :-1]], 1)
    batch = {"inputs": tf.constant(inputs), "targets": tf.constant(targets), "mask": tf.ones((batch_size, num_steps))}
    if hasattr(model, "window"):
        batch["text"] = tf.constant(rng.integers(1, model.alphabet_size, (batch_size, text_length)).astype("int32"))
        batch["text_mask"] = tf.ones((batch_size, text_length))
    return batch


def time_call(fn, repeats):
    """Seconds per call of ``fn`` (after one untimed warm-up call)."""
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def time_train_step(loss_fn, variables, repeats, jit_compile=False):
    """Seconds of one update (forward, backward, Adam) of ``loss_fn()`` over ``variables``."""
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.Adam(1e-4)

    @tf.function(jit_compile=jit_compile)
    def train_step():
        with tf.GradientTape() as tape:
            loss = loss_fn()
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    return time_call(lambda: float(train_step()), repeats)


def time_model_train_step(model, batch, repeats, jit_compile=False):
    """:func:`time_train_step` of a graves_tf model's mean per-sequence loss on ``batch``."""
    import tensorflow as tf

    def loss_fn():
        return tf.reduce_mean(model(batch))

    return time_train_step(loss_fn, model.trainable_variables, repeats, jit_compile)
