r"""Evaluates a trained model on a split, as the paper's tables report.

    python -m graves_tf.evaluate --model_dir=runs/ptb_char --split=test [--dynamic]

The model is the one in the run's ``model_config.json`` (a ``--flagfile``
may repeat it; a model flag that contradicts it is refused). The data flags
the configuration does not hold (``--segment_length``, ``--batch_size``, ...)
are read from the command line.

Text: bits per character, perplexity (2 to the bits per word) and next-step
error rate; handwriting: mean log-loss in nats per sequence (eq. 26) and
sum-squared error per point. ``--dynamic`` runs dynamic evaluation, in the
units the model trained on (one sentence at a time from the zero state for
``--segment_length=0``, stream segments with the state carried otherwise):
each is predicted, then the weights take a gradient step on it.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from graves_tf import experiment  # noqa: E402
from graves_tf.cli import _program  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """evaluate's flags: every experiment flag group (graves_tf.experiment) and its own."""
    experiment.define_flags()
    if "split" in FLAGS:
        return
    flags.DEFINE_string("split", "validation", "Which split: train, validation or test.")
    flags.DEFINE_bool("dynamic", False, "Dynamic evaluation (text): adapt the weights as the data is predicted.")
    flags.DEFINE_float("dynamic_learning_rate", 1e-4, "SGD learning rate of dynamic evaluation.")
    flags.DEFINE_integer(
        "eval_batch_size", None, "Sequences per batch (default: --batch_size; dynamic: 1, a single stream)."
    )
    flags.DEFINE_integer("max_batches", 0, "Evaluate only this many batches (0: all).")
    flags.DEFINE_string("output_json", None, "Also write the metrics to this JSON file.")


define_flags()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.model_dir:
        sys.exit("--model_dir is required")
    if FLAGS.max_batches < 0:  # was: a ZeroDivisionError after evaluating nothing
        sys.exit(f"--max_batches must be 0 (all) or more, got {FLAGS.max_batches}")
    if FLAGS.eval_batch_size is not None and FLAGS.eval_batch_size < 1:
        sys.exit(f"--eval_batch_size must be at least 1, got {FLAGS.eval_batch_size}")
    if not 0 <= FLAGS.dynamic_learning_rate < float("inf"):
        sys.exit(f"--dynamic_learning_rate must be a finite number >= 0, got {FLAGS.dynamic_learning_rate}")
    from graves_tf import evaluation, run_dir
    from graves_tf.data import datasets

    try:  # the run's own model_config.json; model flags may repeat it, not contradict it
        saved = experiment.read_run_spec(FLAGS.model_dir)
        spec = experiment.model_spec_from_flags(FLAGS) if saved is None else experiment.spec_of_run(saved, FLAGS.model_dir)
    except ValueError as error:
        sys.exit(f"bad configuration: {error}")
    if FLAGS.dynamic and spec.kind != "text":
        sys.exit("--dynamic applies to text models")
    batch_size = FLAGS.eval_batch_size or (1 if FLAGS.dynamic else FLAGS.batch_size)
    try:
        bundle = datasets.load_bundle(
            spec, batch_size, data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir,
            segment_length=FLAGS.segment_length, reset_every=FLAGS.reset_state_every if FLAGS.segment_length else 10**9,
            hutter_config=FLAGS.hutter_config, max_length=FLAGS.max_length,
        )
        path = run_dir.checkpoint_path(FLAGS.model_dir, FLAGS.checkpoint)
        model = experiment.build_model(spec)
        experiment.set_matmul_precision(model, FLAGS.precision)
        run_dir.restore_weights(model, path)
    except (datasets.DatasetNotBuilt, FileNotFoundError, ValueError) as error:  # UnreadableCheckpoint included
        sys.exit(str(error))
    try:
        batches = bundle.split_batches(FLAGS.split)
    except (ValueError, KeyError) as error:
        sys.exit(f"cannot read split {FLAGS.split!r}: {error}")
    if spec.kind == "handwriting":
        metrics = evaluation.evaluate_handwriting(model, batches, FLAGS.max_batches)
        summary = f"log-loss {metrics['loss']:.1f} nats per sequence, SSE {metrics['sse_per_point']:.3f} per point"
    else:
        counts = dict(
            word_end_ids=evaluation.word_end_ids(bundle.vocabulary, spec.dataset),
            characters_per_id=evaluation.characters_per_id(bundle.vocabulary, spec.dataset),
            max_batches=FLAGS.max_batches,
        )
        if FLAGS.dynamic:
            metrics = evaluation.dynamic_evaluation(model, batches, FLAGS.dynamic_learning_rate, **counts)
        else:
            metrics = evaluation.evaluate_text(model, batches, **counts)
        summary = (
            f"{metrics['bits_per_symbol']:.4f} bits per symbol, {metrics['bits_per_character']:.4f} per character, "
            f"error {100 * metrics['error_rate']:.1f}%"
        )
        if "perplexity" in metrics:
            summary += f", perplexity {metrics['perplexity']:.1f}"
    metrics.update(split=FLAGS.split, checkpoint=path, dynamic=FLAGS.dynamic, precision=FLAGS.precision)
    print(f"{spec.dataset} {FLAGS.split}{' (dynamic)' if FLAGS.dynamic else ''}: {summary}")
    print(json.dumps(metrics, indent=2, default=str))
    if FLAGS.output_json:
        with open(FLAGS.output_json, "w") as f:
            json.dump(metrics, f, indent=2, default=str)


def run():
    """The ``graves-tf-evaluate`` console script, ``python -m graves_tf.evaluate`` and ``python -m graves_tf.cli.evaluate``."""
    _program.run(main, __name__, __doc__)


if __name__ == "__main__":
    run()
