r"""Input pipeline throughput against the training step it feeds, measured in one run.

    python -m benchmarks.input_pipeline --manual_dir_iam=../shared/data/iam-ondb \
        --manual_dir_ptb=../shared/data/ptb [--data_dir=D]

For each dataset: batches per second the pipeline delivers (after a warm-up
pass, so it measures the steady state of an epoch), the time of one training
step (forward, backward, update) of the paper's configuration at the same
batch size, and their ratio: how many batches the pipeline makes in the time
one step consumes. The last line reads `min_ratio: R`.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from benchmarks.common import time_model_train_step  # noqa: E402
from graves_tf import experiment  # noqa: E402
from graves_tf.data import datasets  # noqa: E402

experiment.define_data_flags()  # --data_dir

FLAGS = flags.FLAGS
flags.DEFINE_string("manual_dir_iam", None, "Raw IAM-OnDB archives (skipped if not given).")
flags.DEFINE_string("manual_dir_ptb", None, "Raw Penn Treebank files (skipped if not given).")
flags.DEFINE_integer("pipeline_batches", 50, "Batches timed per pipeline.")
flags.DEFINE_integer("timed_train_steps", 3, "Training steps timed per model (after one warm-up step).")
flags.DEFINE_integer("pipeline_batch_size", 32, "Sequences per batch.")


def time_pipeline(dataset, batches):
    iterator = iter(dataset.repeat())
    next(iterator)  # warm-up: tracing, file opening
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return (time.perf_counter() - start) / batches


def main(argv):
    del argv
    rows = []
    cases = []
    if FLAGS.manual_dir_iam:
        cases.append(("iam_synthesis", FLAGS.manual_dir_iam))
    if FLAGS.manual_dir_ptb:
        cases.append(("ptb_char", FLAGS.manual_dir_ptb))
    if not cases:
        raise app.UsageError("give --manual_dir_iam and/or --manual_dir_ptb")
    for config, manual_dir in cases:
        spec = experiment.spec_from_config(config)
        bundle = datasets.load_bundle(spec, FLAGS.pipeline_batch_size, data_dir=FLAGS.data_dir, manual_dir=manual_dir)
        dataset = bundle.make_epoch(0)
        seconds_per_batch = time_pipeline(dataset, FLAGS.pipeline_batches)
        batch = next(iter(dataset))
        model = experiment.build_model(spec)
        seconds_per_step = time_model_train_step(model, batch, FLAGS.timed_train_steps)
        width = int(batch["targets"].shape[1])
        rows.append((config, FLAGS.pipeline_batch_size, width, 1.0 / seconds_per_batch, seconds_per_step,
                     seconds_per_step / seconds_per_batch))
    print(f"{'config':<16}{'batch':>6}{'length':>8}{'pipeline batches/s':>20}{'train step s':>14}{'ratio':>10}")
    for config, batch_size, width, rate, step, ratio in rows:
        print(f"{config:<16}{batch_size:>6}{width:>8}{rate:>20.1f}{step:>14.3f}{ratio:>10.0f}")
    print(f"min_ratio: {min(r[-1] for r in rows):.0f}")


if __name__ == "__main__":
    app.run(main)
