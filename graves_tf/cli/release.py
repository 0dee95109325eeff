r"""Makes a shipped model (graves_tf/pretrained/synthesis, .../prediction, or a text model) from a training run.

    python -m graves_tf.pretrained.release --model_dir=runs/synthesis --data_dir=~/tensorflow_datasets \
        --styles=NAME=LINE_ID:DESCRIPTION,...
    python -m graves_tf.pretrained.release --model_dir=runs/synthesis --style_candidates=24 -o candidates.png
    python -m graves_tf.pretrained.release --model_dir=runs/enwik8_small --release_dir=graves_tf/pretrained/enwik8_small
    python -m graves_tf.pretrained.release --model_dir=runs/prediction_3x400 --data_dir=~/tensorflow_datasets

A text model's release is ``model_config.json`` and float16 ``weights.npz``:
``--model_dir`` of ``graves_tf.evaluate``, ``export`` and ``train --init_from``
take its folder as they take a run's. A prediction run's release (default
``graves_tf/pretrained/prediction``) is the same, with the validation losses
and how far the run trained (``release.training``); ``write --unconditional``
reads it.

It stores the checkpoint's weights as float16, measures the validation
log-loss with the float32 checkpoint and with the float16 weights (both go
into ``model_config.json`` under ``release``), and stores the named styles:
IAM-OnDB lines, usually from the validation split, that ``--style`` primes
with. ``--style_candidates`` instead draws validation lines of a good length
from distinct forms on one sheet, to choose styles from.
"""

import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from graves_tf import experiment  # noqa: E402
from graves_tf import pretrained, run_dir  # noqa: E402
from graves_tf.cli import _program  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """release's flags: every experiment flag group (graves_tf.experiment) and its own."""
    experiment.define_flags()
    if "style_candidates" in FLAGS:
        return
    flags.DEFINE_string(
        "styles", None,
        "Comma-separated NAME=LINE_ID:DESCRIPTION entries, e.g. "
        "neat=f04-000-02:upright print. The lines are looked up in the built IAM-OnDB.",
    )
    flags.DEFINE_integer("style_candidates", 0, "Draw this many candidate style lines to --output and exit.")
    flags.DEFINE_string(
        "release_dir", None,
        "Where to write the release (default for a synthesis run: graves_tf/pretrained/synthesis; for a "
        "prediction run: graves_tf/pretrained/prediction).",
    )
    flags.DEFINE_integer("eval_batch_size", 16, "Lines per validation batch.")


define_flags()


def parse_styles(text):
    styles = []
    for entry in text.split(","):
        name, sep, rest = entry.partition("=")
        line_id, _, description = rest.partition(":")
        if not sep or not name.strip() or not line_id.strip():
            raise app.UsageError(f"--styles entry {entry!r} is not NAME=LINE_ID:DESCRIPTION")
        styles.append((name.strip(), line_id.strip(), description.strip()))
    return styles


def validation_loss(model, spec, data_dir):
    from graves_tf import evaluation
    from graves_tf.data import datasets

    bundle = datasets.load_bundle(spec, FLAGS.eval_batch_size, data_dir=data_dir)
    return evaluation.evaluate_handwriting(model, bundle.split_batches(bundle.validation_split))


def draw_candidates(count, data_dir, path):
    import tensorflow_datasets as tfds

    from graves_tf import drawing
    from graves_tf.data import datasets

    builder = datasets.prepare_builder("iam_ondb", data_dir)
    rows, forms = [], set()
    for example in tfds.as_numpy(builder.as_dataset(split="validation")):
        line_id, text = example["id"].decode(), example["text"].decode()
        form = line_id.rsplit("-", 1)[0]
        if form in forms or not 30 <= len(text) <= 50:
            continue
        forms.add(form)
        rows.append((line_id, example["strokes"].astype("float64")))
        if len(rows) == count:
            break
    drawing.plot_rows(rows, path)
    print(f"drew {len(rows)} candidate lines to {path}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.style_candidates:
        return draw_candidates(FLAGS.style_candidates, FLAGS.data_dir, FLAGS.output or "style_candidates.png")
    if not FLAGS.model_dir:
        raise app.UsageError("--model_dir is required")

    try:
        model, config = run_dir.load_run(FLAGS.model_dir, FLAGS.checkpoint)
        experiment.spec_of_run(config["spec"], FLAGS.model_dir)  # model flags may repeat the run's, not contradict it
    except (FileNotFoundError, ValueError) as error:  # an unreadable checkpoint included
        sys.exit(str(error))
    kind = config["spec"]["model"]
    if kind == "text_predictor":
        if not FLAGS.release_dir:
            raise app.UsageError("--release_dir is required for a text model")
        write_release(model, config, FLAGS.model_dir, FLAGS.release_dir)
    elif kind == "handwriting_synthesizer":
        if not FLAGS.styles:
            raise app.UsageError("--styles is required for a synthesis model")
        release_synthesizer(model, config, parse_styles(FLAGS.styles), FLAGS.release_dir or str(pretrained.SYNTHESIS_DIR))
    elif kind == "handwriting_predictor":
        release_predictor(model, config, FLAGS.release_dir or str(pretrained.PREDICTION_DIR))
    else:
        sys.exit(f"{FLAGS.model_dir} holds a {kind}; releases are of handwriting synthesizers, predictors and text models")


def release_predictor(model, config, release_dir):
    """A prediction release (no styles): the validation log-loss of the float32 and float16 weights and how
    far the run trained (``release.training``: updates, epochs, hours, learning-rate cuts)."""
    from graves_tf import progress

    spec = experiment.ModelSpec(**config["spec"])
    float32 = validation_loss(model, spec, FLAGS.data_dir)
    print(f"validation float32: {float32['loss']:.1f} nats per sequence, SSE {float32['sse_per_point']:.3f}")
    training = progress.training_progress(FLAGS.model_dir)
    training.pop("latest_checkpoint")

    def add_validation(staging, model):
        float16 = validation_loss(model, spec, FLAGS.data_dir)
        print(f"validation float16: {float16['loss']:.1f} nats per sequence, SSE {float16['sse_per_point']:.3f}")
        return {"validation": {"float32": float32, "float16": float16}, "training": training}

    write_release(model, config, FLAGS.model_dir, release_dir, add_validation)


def release_synthesizer(model, config, styles, release_dir):
    """The release with the validation log-loss of the float32 and float16 weights and the named styles."""
    import numpy as np

    from graves_tf.write import find_iam_lines

    spec = experiment.ModelSpec(**config["spec"])
    float32 = validation_loss(model, spec, FLAGS.data_dir)
    print(f"validation float32: {float32['loss']:.1f} nats per sequence, SSE {float32['sse_per_point']:.3f}")

    def add_styles(staging, model):
        float16 = validation_loss(model, spec, FLAGS.data_dir)
        print(f"validation float16: {float16['loss']:.1f} nats per sequence, SSE {float16['sse_per_point']:.3f}")
        lines = find_iam_lines([line_id for _, line_id, _ in styles], FLAGS.data_dir)
        shipped = []
        for name, line_id, description in styles:
            offsets, text = lines[line_id]
            shipped.append({
                "name": name, "line_id": line_id, "description": description, "text": text,
                "strokes": np.asarray(offsets).astype(int).tolist(),
            })
        with open(os.path.join(staging, pretrained.STYLES_FILE), "w") as f:
            json.dump({"source": "IAM-OnDB lineStrokes (whiteboard units, every pen position)", "styles": shipped}, f)
        return {"validation": {"float32": float32, "float16": float16}}

    write_release(model, config, FLAGS.model_dir, release_dir, add_styles)


def write_release(model, config, model_dir, release_dir, add_to_release=None):
    """Writes ``model_config.json`` and float16 ``weights.npz`` (and what ``add_to_release(staging, model)``
    writes and returns for ``release``) to a staging folder, then puts it in place of ``release_dir``."""
    step = run_dir.checkpoint_step(config["checkpoint"])
    averaged = run_dir.averaged_steps(config["checkpoint"])
    print(f"checkpoint {config['checkpoint']} (step {step}{f', the mean of steps {averaged}' if averaged else ''})")
    staging = release_dir.rstrip("/") + ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    weights = os.path.join(staging, pretrained.WEIGHTS_FILE)
    pretrained.save_weights(model, weights)
    pretrained.load_weights(model, weights)
    added = add_to_release(staging, model) if add_to_release else {}
    release = dict(config)
    release.pop("checkpoint")
    release["release"] = {
        "run": os.path.basename(os.path.normpath(model_dir)),
        "step": step,
        **({"averaged_steps": averaged} if averaged else {}),
        "weights_dtype": "float16",
        **added,
    }
    with open(os.path.join(staging, pretrained.CONFIG_FILE), "w") as f:
        json.dump(release, f, indent=2)
    shutil.rmtree(release_dir, ignore_errors=True)
    os.replace(staging, release_dir)
    size = sum(os.path.getsize(os.path.join(release_dir, n)) for n in os.listdir(release_dir))
    print(f"released step {step} to {release_dir} ({size / 1e6:.1f} MB)")


def run():
    """The ``graves-tf-release`` console script, ``python -m graves_tf.release`` and ``python -m graves_tf.cli.release``."""
    _program.run(main, __name__, __doc__)


if __name__ == "__main__":
    run()
