"""What the benchmarks share: synthetic batches, timing of a Keras training step, the machine line."""

import time

from graves_tf.train_path import synthetic_batch  # noqa: F401  (the probe's batches are the benchmarks')


def machine_line():
    """``machine: CPU, N cores, flags ...; TensorFlow threads``: printed above every table of timings."""
    from graves_tf import machine

    return machine.describe()


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


def load_model_of_flags():
    """``write.load_model`` of ``--model_dir`` and ``--checkpoint`` (the shipped model without ``--model_dir``),
    its model flags checked against the model's configuration (``experiment.spec_of_run``): a benchmark
    given a run folder reads the run's model_config.json, and a flag that contradicts it, a missing run or
    an unreadable checkpoint is a one-line exit."""
    import sys

    from absl import flags

    from graves_tf import experiment, write

    FLAGS = flags.FLAGS
    try:
        model, config, where = write.load_model(FLAGS.model_dir, FLAGS.checkpoint)
        experiment.spec_of_run(config["spec"], where)
    except (FileNotFoundError, ValueError) as error:  # an unreadable checkpoint included
        sys.exit(str(error))
    return model, config, where
