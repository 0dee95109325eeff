r"""Exports a trained run as a SavedModel with sampling signatures.

    python -m export --output=exported/synthesis/1                 # the shipped model
    python -m export --model_dir=runs/synthesis --output=exported/synthesis/1

(``python -m export`` in a checkout; installed: ``python -m graves_tf.export`` or ``graves-tf-export``.)

The version folder (``.../1``) is the layout TF Serving expects. See
``export/saved_model.py`` (installed: ``graves_tf/export/``) for the signatures. ``--xla`` compiles the synthesis
sampling loop with XLA inside the SavedModel (as fast as the in-process XLA
sampler; TF Serving then needs ``--xla_cpu_compilation_enabled=true``).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from graves_tf import experiment  # noqa: E402
from graves_tf.cli import _program  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """export's flags: every experiment flag group (graves_tf.experiment: a run's flagfile may be given) and --xla."""
    experiment.define_flags()
    if "xla" in FLAGS:
        return
    flags.DEFINE_bool("xla", False, "Compile the synthesis sampling loop with XLA inside the SavedModel.")


define_flags()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.output:
        sys.exit("--output is required")
    from graves_tf.export.saved_model import export_run
    from graves_tf import pretrained, run_dir

    try:
        if FLAGS.model_dir is None:
            model, config = pretrained.load_synthesizer()
        else:
            model, config = run_dir.load_run(FLAGS.model_dir, FLAGS.checkpoint)
        experiment.spec_of_run(config["spec"], FLAGS.model_dir or "the shipped model")  # model flags must agree
        export_run(model, config, FLAGS.output, jit_compile=FLAGS.xla)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(str(error))
    print(f"exported {config['spec']['model']} from {config['checkpoint']} to {FLAGS.output}")


def run():
    """The ``graves-tf-export`` console script, ``python -m graves_tf.export`` and ``python -m graves_tf.cli.export``."""
    _program.run(main, __name__, __doc__)


if __name__ == "__main__":
    run()
