r"""Averages the weights of several checkpoints of one training run.

    python -m graves_tf.average_checkpoints --model_dir=runs/synthesis \
        --checkpoints=ckpt-750,ckpt-800,ckpt-850,ckpt-889

(also ``graves-tf-average-checkpoints``; what it does and where it writes:
:mod:`graves_tf.average_checkpoints`.)
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from graves_tf import experiment  # noqa: E402
from graves_tf.average_checkpoints import average_checkpoints  # noqa: E402
from graves_tf.cli import _program  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """average_checkpoints' flags: every experiment flag group (graves_tf.experiment: --model_dir, --output, ...)
    and --checkpoints."""
    experiment.define_flags()
    if "checkpoints" in FLAGS:
        return
    flags.DEFINE_list("checkpoints", [], "Two or more checkpoints: ckpt-N names of the run, or paths.")


define_flags()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.model_dir:
        raise app.UsageError("--model_dir is required")
    try:
        saved = experiment.read_run_spec(FLAGS.model_dir)
        if saved is not None:  # model flags may repeat the run's configuration, not contradict it
            experiment.spec_of_run(saved, FLAGS.model_dir)
        path = average_checkpoints(FLAGS.model_dir, FLAGS.checkpoints, FLAGS.output)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(str(error))
    print(f"averaged {len(FLAGS.checkpoints)} checkpoints into {path}")
    print(f"use it with --model_dir={FLAGS.model_dir} --checkpoint={path}")


def run():
    """The ``graves-tf-average-checkpoints`` console script, ``python -m graves_tf.average_checkpoints`` and
    ``python -m graves_tf.cli.average_checkpoints``."""
    _program.run(main, __name__, __doc__)


if __name__ == "__main__":
    run()
