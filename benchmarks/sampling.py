r"""Sampling speed of the paper's synthesis network: steps per second, in process and from a SavedModel.

    python -m benchmarks.sampling [--sampling_steps=300]

The weights are random, with the window's step size set near zero so every
sample runs the full number of steps (the speed does not depend on the
weights' values). Rows: batch 1 and 32; the compiled in-process sampler,
the same compiled by XLA (and with bfloat16 matmuls, on CPUs that have
them), the exported SavedModel's ``serving_default`` signature, and the same
exported with ``--xla`` (``SavedModel, XLA``: the loop compiled by XLA inside
the SavedModel); then the batch-1 bound that memory bandwidth sets (see
:func:`bandwidth_bound`). The machine line comes first. `python -m
benchmarks.speed` prints these rows too.
"""

import os
import tempfile
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from benchmarks.common import machine_line, time_call  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("sampling_steps", 300, "Sampling steps per call.")
flags.DEFINE_integer("sampling_repeats", 2, "Timed calls per row (after one warm-up call).")

TEXT = "the quick brown fox jumps over the lazy dog"


def sampling_rows(num_steps, repeats, batch_sizes=(1, 32)):
    """``[(sampler, batch, steps/s, points/s)]`` for the paper's synthesis network."""
    import numpy as np
    import tensorflow as tf

    from graves_tf.export.saved_model import export_run
    from graves_tf import alphabet, experiment, machine, run_dir, sampling

    spec = experiment.spec_from_config("iam_synthesis")
    model = experiment.build_model(spec)
    k = model.window.num_gaussians
    bias = model.window.bias.numpy()
    bias[2 * k :] = -12.0  # kappa barely moves: no sample stops early
    model.window.bias.assign(bias)
    bound, megabytes = bandwidth_bound(model)  # first, while no TensorFlow thread pool is busy
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        stats = types.SimpleNamespace(offset_mean=[0.0, 0.0], offset_std=[1.0, 1.0], vocabulary=None)
        run_dir.save_run_config(folder, spec, stats)
        tf.train.Checkpoint(model=model).save(os.path.join(folder, "checkpoints", "ckpt"))
        loaded_model, config = run_dir.load_run(folder)
        export_run(loaded_model, config, os.path.join(folder, "saved"))
        export_run(loaded_model, config, os.path.join(folder, "saved_xla"), jit_compile=True)
        exports = {name: tf.saved_model.load(os.path.join(folder, name)) for name in ("saved", "saved_xla")}
        for batch in batch_sizes:
            ids = tf.constant([alphabet.PAPER.encode(TEXT)] * batch, tf.int32)
            context = model.window.context(ids, tf.ones_like(ids, dtype=tf.float32))

            def in_process(jit_compile, precision=None):
                model.matmul_precision = precision
                sampler = sampling.compiled_sampler(model, jit_compile=jit_compile)

                def run():
                    model.matmul_precision = precision  # read when the sampler is traced (its first call)
                    try:
                        return sampler(batch, num_steps, 0.5, 0, context)[1].numpy()
                    finally:
                        model.matmul_precision = None

                return run

            def from_saved_model(name):
                signature = exports[name].signatures["serving_default"]
                return lambda: signature(
                    text=tf.constant([TEXT] * batch), bias=tf.fill([batch], 0.5),
                    seed=tf.constant(0, tf.int64), max_steps=tf.constant(num_steps))["lengths"].numpy()

            samplers = [("in process", in_process(False)), ("in process, XLA", in_process(True))]
            if machine.has_bfloat16():
                samplers.append(("in process, bfloat16", in_process(False, "bfloat16")))
                samplers.append(("in process, XLA, bfloat16", in_process(True, "bfloat16")))
            samplers += [("SavedModel", from_saved_model("saved")), ("SavedModel, XLA", from_saved_model("saved_xla"))]
            for name, fn in samplers:
                assert int(np.min(fn())) == num_steps  # no sample stopped early
                seconds = time_call(fn, repeats)
                rows.append((name, batch, num_steps / seconds, batch * num_steps / seconds))
    rows.append((f"memory bound ({megabytes:.1f} MB)", 1, bound, bound))
    return rows


def bandwidth_bound(model, repeats=500):
    """Steps per second if a step did nothing but read every weight once; and the weights' size in MB.

    A batch-1 sampling step multiplies one vector by every weight matrix.
    Once the weights outgrow the CPU's last-level cache they stream from
    memory each step, so one vector-matrix product over a matrix holding as
    many floats as the whole network bounds the step rate from above,
    whatever the framework does around it. It is timed with NumPy's BLAS in
    both layouts (``vector @ matrix`` and ``matrix.T @ vector``, which reads
    each output's weights contiguously); the faster one is the bound.
    """
    import numpy as np

    count = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    columns = 1600
    matrix = np.random.default_rng(0).normal(size=(count // columns, columns)).astype(np.float32)
    transposed = np.ascontiguousarray(matrix.T)
    vector = np.ones((1, matrix.shape[0]), np.float32)
    seconds = min(
        time_call(lambda: vector @ matrix, repeats),
        time_call(lambda: transposed @ vector[0], repeats),
    )
    return 1.0 / seconds, matrix.nbytes / 1e6


def print_sampling_rows(rows):
    print(f"{'sampler':<28}{'batch':>6}{'steps/s':>10}{'points/s':>11}")
    for name, batch, steps, points in rows:
        print(f"{name:<28}{batch:>6}{steps:>10.0f}{points:>11.0f}")


def main(argv):
    del argv
    rows = sampling_rows(FLAGS.sampling_steps, FLAGS.sampling_repeats)
    print(machine_line())
    print_sampling_rows(rows)
    sampled = [r[2] for r in rows if r[1] == 1 and not r[0].startswith("memory")]
    print(f"batch1_steps_per_second: {max(sampled):.0f}")


if __name__ == "__main__":
    app.run(main)
