r"""Trains a network of the paper from a flagfile.

    python -m graves_tf.train --flagfile=graves_tf/configs/iam_synthesis.cfg \
        --model_dir=runs/synthesis

``--dry_run`` builds the model, prints its summary and the experiment's
settings, and ends with ``weights: N`` (the trainable weight count).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from graves_tf import experiment  # noqa: E402  (defines the model and training flags)
from graves_tf.models import count_weights  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_bool("dry_run", False, "Build the model, print its summary and weight count, exit.")
flags.DEFINE_string("model_dir", None, "Where checkpoints and TensorBoard logs go.")


def describe_experiment(spec):
    lstm_clip, output_clip = spec.clips()
    lines = [
        f"model: {spec.model} ({spec.num_layers} x {spec.units} LSTM)",
        f"dataset: {spec.dataset} ({experiment.DATASETS[spec.dataset].description})",
        f"derivative clipping: LSTM pre-activations {lstm_clip}, outputs {output_clip}",
        f"optimizer: {FLAGS.optimizer}, learning rate {FLAGS.learning_rate}, momentum {FLAGS.momentum}",
        f"batch size: {FLAGS.batch_size}",
    ]
    if spec.kind == "text":
        segment = FLAGS.segment_length or "one line per sequence"
        lines.append(f"segments: {segment}, state reset every {FLAGS.reset_state_every}")
    if FLAGS.weight_noise:
        lines.append(f"weight noise: std {FLAGS.weight_noise}")
    if FLAGS.adaptive_weight_noise:
        lines.append(f"adaptive weight noise: initial std {FLAGS.adaptive_noise_init_std}")
    return "\n".join(lines)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        spec = experiment.model_spec_from_flags(FLAGS)
    except ValueError as error:
        sys.exit(f"bad configuration: {error}")
    model = experiment.build_model(spec)
    model.summary()
    print(describe_experiment(spec))
    print(f"weights: {count_weights(model)}")
    if FLAGS.dry_run:
        return
    sys.exit(
        "this version of graves_tf builds and checks models only; the training loop is "
        "tracked in issue #4. Run with --dry_run."
    )


if __name__ == "__main__":
    app.run(main)
