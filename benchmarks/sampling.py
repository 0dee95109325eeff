r"""Sampling speed of the paper's synthesis network: steps per second, in process and from a SavedModel.

    python -m benchmarks.sampling [--sampling_steps=300]

The weights are random, with the window's step size set near zero so every
sample runs the full number of steps (the speed does not depend on the
weights' values). Rows: batch 1 and 32, the compiled in-process sampler and
the exported SavedModel's ``serving_default`` signature.
"""

import os
import tempfile
import time
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("sampling_steps", 300, "Sampling steps per call.")
flags.DEFINE_integer("sampling_repeats", 2, "Timed calls per row (after one warm-up call).")


def main(argv):
    del argv
    import numpy as np
    import tensorflow as tf

    from export.saved_model import export_run
    from graves_tf import alphabet, experiment, run_dir, sampling

    spec = experiment.spec_from_config("iam_synthesis")
    model = experiment.build_model(spec)
    k = model.window.num_gaussians
    bias = model.window.bias.numpy()
    bias[2 * k :] = -12.0  # kappa barely moves: no sample stops early
    model.window.bias.assign(bias)
    text = "the quick brown fox jumps over the lazy dog"
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        stats = types.SimpleNamespace(offset_mean=[0.0, 0.0], offset_std=[1.0, 1.0], vocabulary=None)
        run_dir.save_run_config(folder, spec, stats)
        tf.train.Checkpoint(model=model).save(os.path.join(folder, "checkpoints", "ckpt"))
        loaded_model, config = run_dir.load_run(folder)
        export_run(loaded_model, config, os.path.join(folder, "saved"))
        saved = tf.saved_model.load(os.path.join(folder, "saved"))
        sampler = sampling.compiled_sampler(model)
        for batch in (1, 32):
            ids = tf.constant([alphabet.PAPER.encode(text)] * batch, tf.int32)
            context = model.window.context(ids, tf.ones_like(ids, dtype=tf.float32))

            def in_process():
                return sampler(batch, FLAGS.sampling_steps, 0.5, 0, context)[1]

            def from_saved_model():
                return saved.signatures["serving_default"](
                    text=tf.constant([text] * batch), bias=tf.fill([batch], 0.5),
                    seed=tf.constant(0, tf.int64), max_steps=tf.constant(FLAGS.sampling_steps))["lengths"]

            for name, fn in (("in process", in_process), ("SavedModel", from_saved_model)):
                lengths = fn()  # warm-up: tracing
                assert int(np.min(lengths)) == FLAGS.sampling_steps, lengths
                start = time.perf_counter()
                for _ in range(FLAGS.sampling_repeats):
                    fn().numpy()
                seconds = (time.perf_counter() - start) / FLAGS.sampling_repeats
                rows.append((name, batch, FLAGS.sampling_steps / seconds, batch * FLAGS.sampling_steps / seconds))
    print(f"{'sampler':<12}{'batch':>6}{'steps/s':>10}{'points/s':>11}")
    for name, batch, steps, points in rows:
        print(f"{name:<12}{batch:>6}{steps:>10.0f}{points:>11.0f}")
    print(f"batch1_steps_per_second: {rows[0][2]:.0f}")


if __name__ == "__main__":
    app.run(main)
