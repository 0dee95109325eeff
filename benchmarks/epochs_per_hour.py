r"""Epochs per hour of a training config on this machine, on its real data.

    python -m benchmarks.epochs_per_hour [--flagfile_config=iam_synthesis_shipped]
        [--updates=40] [--skip=10] [--manual_dir=../shared/data/iam-ondb] [--train_path=auto]

Runs ``python -m graves_tf.train`` with the config's flagfile in a new process
and a temporary model folder for ``--updates`` updates (no validation, no
checkpoint until the end), and reads from the run's TensorBoard events the
``epochs`` it logs at every update (the share of the train split seen) with
their wall times: the epochs gained after the first ``--skip`` updates (which
carry the tracing, the training-path probe if the cache has no entry, and the
first shapes' compilation), over their time. Prints the machine line, the
training path, the seconds per update and ``epochs_per_hour: E``. Shapes a run
sees later in an epoch (other bucket lengths) may still trace or compile
once each, which this does not count; a machine with other work on it gives
fewer epochs.
"""

import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from benchmarks.common import machine_line  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("flagfile_config", "iam_synthesis_shipped", "Config in graves_tf/configs/ to train.")
flags.DEFINE_integer("updates", 40, "Updates to run.")
flags.DEFINE_integer("skip", 10, "First updates left out of the rate.")
flags.DEFINE_string("manual_dir", None, "The dataset's --manual_dir, if it is not prepared yet.")
flags.DEFINE_string("train_path", "auto", "--train_path for the run.")


def main(argv):
    del argv
    if FLAGS.skip < 1 or FLAGS.updates <= FLAGS.skip + 1:
        raise app.UsageError("--updates must exceed --skip + 1, and --skip must be at least 1")
    from graves_tf import experiment, progress

    config_path = os.path.join(os.path.dirname(experiment.__file__), "configs", f"{FLAGS.flagfile_config}.cfg")
    if not os.path.exists(config_path):
        raise app.UsageError(f"no config {FLAGS.flagfile_config!r}: {config_path} does not exist")
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable, "-m", "graves_tf.train", f"--flagfile={config_path}", f"--model_dir={folder}",
            f"--train_steps={FLAGS.updates}", "--eval_every=0", f"--checkpoint_every={FLAGS.updates}",
            "--log_every=1", "--noprogress_bar", f"--train_path={FLAGS.train_path}",
        ]
        if FLAGS.manual_dir:
            command.append(f"--manual_dir={FLAGS.manual_dir}")
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"graves_tf.train failed:\n{result.stderr[-3000:]}")
        path_lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("training path:")]
        logged = progress.logged_scalars(folder, "epochs")
    first, last = FLAGS.skip, max(logged, default=0)
    if first not in logged or last <= first:
        raise RuntimeError(f"the run logged epochs at steps {sorted(logged)[:5]}...; expected every update")
    (start, start_epochs), (end, end_epochs) = logged[first], logged[last]
    print(machine_line())
    if path_lines:
        print(path_lines[-1])
    print(f"{FLAGS.flagfile_config}: {(end_epochs - start_epochs) / (last - first):.5f} epochs per update")
    print(f"seconds per update (updates {first}-{last}): {(end - start) / (last - first):.2f}")
    print(f"epochs_per_hour: {3600 * (end_epochs - start_epochs) / (end - start):.2f}")


if __name__ == "__main__":
    app.run(main)
