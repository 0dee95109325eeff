r"""Writes text as handwriting with the shipped synthesis network or a trained one.

    python -m graves_tf.write "Hello world" -o hello.svg
    python -m graves_tf.write --list_styles
    python -m graves_tf.write "Two lines\nof text" --bias=1 --seed=3 --style=NAME -o page.png --plot=attention
    python -m graves_tf.write "In my own hand" --prime_strokes=me.json --prime_text="the quick fox" -o me.svg
    python -m graves_tf.write "Hello world" --model_dir=runs/synthesis -o hello.svg
    python -m graves_tf.write --unconditional --num_samples=4 --seed=1 -o free.svg   # no text: docs/unconditional.md

(also ``graves-tf-write``; the library it calls is :mod:`graves_tf.write`.)

Without --model_dir the model shipped in the package (graves_tf/pretrained) writes.

Long text is wrapped at --width characters; every line after the first is
primed with the first (section 5.5), so the page keeps one style. With
--style (a shipped style, see --list_styles), --prime_id (a line of the built
IAM-OnDB dataset) or --prime_strokes (your own pen trace) every line is primed
with that style instead.

--prime_strokes takes a JSON file: a list of strokes, each a list of [x, y]
pen positions (y pointing down, any units: they are rescaled so the trace's
median step matches the training data's), or {"strokes": [...]} with the same
content; or a .npy array of (dx, dy, end_of_stroke) offsets in whiteboard units.
"""

import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from graves_tf import experiment  # noqa: E402
from graves_tf.cli import _program  # noqa: E402
from graves_tf.write import (  # noqa: E402
    DEFAULT_BIAS,
    DEFAULT_STYLE,
    DEFAULT_WIDTH,
    WriteError,
    at_model_rate,
    check_settings,
    check_text,
    find_iam_line,
    load_model,
    load_prime_strokes,
    save_plot,
    style_prime,
    wrap,
    write_lines,
)

FLAGS = flags.FLAGS


def define_flags():
    """write's flags: every experiment flag group (graves_tf.experiment: --model_dir, --output, --seed, ...)
    and its own; the shared ones are key flags, listed by --help."""
    experiment.define_flags()
    if "list_styles" in FLAGS:
        return
    flags.DEFINE_float("bias", DEFAULT_BIAS, "Probability bias b (eqs. 61-62): 0 unbiased, larger is neater.")
    flags.DEFINE_integer(
        "width", DEFAULT_WIDTH, "Wrap lines at this many characters (40 read best by OCR of 30-60, docs/handwriting.md)."
    )
    flags.DEFINE_integer("steps_per_character", 40, "Stop a line after this many pen points per character.")
    flags.DEFINE_string(
        "style", None,
        f"Imitate a shipped style (see --list_styles); default {DEFAULT_STYLE!r} unless --prime_id or "
        "--prime_strokes is given; 'none': unprimed (the first line then sets the page's style).",
    )
    flags.DEFINE_bool("list_styles", False, "List the shipped styles and exit.")
    flags.DEFINE_string("prime_id", None, "Imitate the style of this IAM-OnDB line (e.g. a01-000u-01).")
    flags.DEFINE_string("prime_strokes", None, "Imitate your own pen trace (JSON or .npy, see above).")
    flags.DEFINE_string("prime_text", None, "What --prime_strokes says.")
    flags.DEFINE_enum(
        "plot", None, ["attention", "density", "biases"],
        "Also save a picture of the first line: its window weights (fig. 13), predicted densities "
        "(figs. 10, 14), or samples at biases 0, 0.5, 1, 2 (fig. 16).",
    )
    flags.DEFINE_float("stroke_width", 2.5, "Pen width in SVG pixels (the letters are about 20 pixels high).")
    # Writing without text (docs/unconditional.md): the prediction network of section 4.
    flags.DEFINE_bool(
        "unconditional", False,
        "Write without text, with a handwriting prediction network (section 4; --model_dir of a prediction "
        "run, default the shipped graves_tf/pretrained/prediction): free samples, or the continuation of "
        "--prime_strokes/--style/--prime_id; --bias defaults to 0 (the paper's fig. 11).",
    )
    flags.DEFINE_integer("num_points", 700, "--unconditional: pen points per sample (fig. 11: 700).")
    flags.DEFINE_integer("num_samples", 1, "--unconditional: samples, stacked down the page.")
    flags.DEFINE_string(
        "strokes_output", None, "--unconditional: also write the samples' offsets to this .json (whiteboard units)."
    )
    for name in ("output", "seed", "model_dir", "checkpoint", "data_dir", "precision", "verbose"):
        flags.declare_key_flag(name)


define_flags()


def print_styles():
    from graves_tf import pretrained

    try:
        styles = pretrained.list_styles()
    except pretrained.PretrainedNotFound as error:
        sys.exit(str(error))
    width = max(len(s["name"]) for s in styles)
    for s in styles:
        print(f"{s['name']:<{width}}  {s['line_id']}  {s['description']}: \"{s['text']}\"")


def write_unconditional(text):
    """``--unconditional``: samples the prediction network (graves_tf.unconditional.write_command)."""
    from graves_tf import checkpoint_files, pretrained, unconditional

    def check_model(model, config, where):
        try:  # model flags on the command line must agree with the model's configuration
            experiment.spec_of_run(config["spec"], where)
        except ValueError as error:
            raise WriteError(str(error)) from None
        try:
            experiment.set_matmul_precision(model, FLAGS.precision)
        except ValueError as error:
            raise WriteError(str(error)) from None

    def prime(config):
        if FLAGS.style and FLAGS.style != "none":
            try:
                offsets, _ = pretrained.style(FLAGS.style)
            except KeyError as error:
                raise WriteError(error.args[0]) from None
            return offsets, f"the style {FLAGS.style!r}"
        if FLAGS.prime_id:
            return find_iam_line(FLAGS.prime_id, FLAGS.data_dir)[0], f"IAM-OnDB line {FLAGS.prime_id}"
        return load_prime_strokes(FLAGS.prime_strokes, config["offset_std"]), FLAGS.prime_strokes

    try:
        if FLAGS.prime_text:
            raise WriteError("--prime_text: with --unconditional a prime needs no text (the network reads none)")
        if sum(bool(x) for x in (FLAGS.style, FLAGS.prime_id, FLAGS.prime_strokes)) > 1:
            raise WriteError("give one of --style, --prime_id and --prime_strokes")
        if not math.isfinite(FLAGS.stroke_width) or FLAGS.stroke_width <= 0:
            raise WriteError(f"--stroke_width must be a positive number of pixels, got {FLAGS.stroke_width}")
        primed = (FLAGS.style and FLAGS.style != "none") or FLAGS.prime_id or FLAGS.prime_strokes
        printed = unconditional.write_command(
            text, FLAGS.output or "handwriting.svg", FLAGS.num_points,
            FLAGS.bias if FLAGS["bias"].present else 0.0, FLAGS.seed, FLAGS.num_samples, FLAGS.model_dir,
            FLAGS.checkpoint, prime if primed else None, FLAGS.plot, FLAGS.strokes_output, FLAGS.stroke_width,
            on_load=check_model,
        )
    except (WriteError, unconditional.UnconditionalError, FileNotFoundError, checkpoint_files.UnreadableCheckpoint) as error:
        sys.exit(str(error))
    print("\n".join(printed))


def main(argv):
    if FLAGS.list_styles:
        return print_styles()
    text = "\n".join(argv[1:]).replace("\\n", "\n")
    if FLAGS.unconditional:
        return write_unconditional(text)
    if not text.strip():
        raise app.UsageError(
            'give the text to write: python -m graves_tf.write "Hello world" -o hello.svg '
            "(or --unconditional to write without text)"
        )
    from graves_tf import checkpoint_files, drawing

    output = FLAGS.output or "handwriting.svg"
    try:
        check_settings(FLAGS.bias, FLAGS.width, FLAGS.steps_per_character, output)
        if not math.isfinite(FLAGS.stroke_width) or FLAGS.stroke_width <= 0:
            raise WriteError(f"--stroke_width must be a positive number of pixels, got {FLAGS.stroke_width}")
        model, config, where = load_model(FLAGS.model_dir, FLAGS.checkpoint)
        try:  # bfloat16 matmuls, float32 state and window (graves_tf.layers.precision)
            experiment.set_matmul_precision(model, FLAGS.precision)
        except ValueError as error:
            raise WriteError(str(error)) from None
        try:  # model flags on the command line must agree with the model's configuration
            experiment.spec_of_run(config["spec"], where)
        except ValueError as error:
            raise WriteError(str(error)) from None
        if config["spec"]["model"] != "handwriting_synthesizer":
            raise WriteError(f"{where} holds a {config['spec']['model']}, not a handwriting synthesizer")
        from graves_tf import alphabet as alphabet_lib

        check_text(text, alphabet_lib.ALPHABETS[config["spec"]["alphabet"]])
        lines = wrap(text, FLAGS.width)
        prime, prime_text = None, None
        if sum(bool(x) for x in (FLAGS.style, FLAGS.prime_id, FLAGS.prime_strokes)) > 1:
            raise WriteError("give one of --style, --prime_id and --prime_strokes")
        style = FLAGS.style or (None if FLAGS.prime_id or FLAGS.prime_strokes else DEFAULT_STYLE)
        if style:
            try:
                prime, prime_text = style_prime(style, config)
            except KeyError as error:
                raise WriteError(error.args[0]) from None
        elif FLAGS.prime_id:
            prime, prime_text = find_iam_line(FLAGS.prime_id, FLAGS.data_dir)
            prime = at_model_rate(prime, config)
        elif FLAGS.prime_strokes:
            if not FLAGS.prime_text:
                raise WriteError("--prime_strokes needs --prime_text, what the strokes say")
            check_text(FLAGS.prime_text, alphabet_lib.ALPHABETS[config["spec"]["alphabet"]])
            prime, prime_text = load_prime_strokes(FLAGS.prime_strokes, config["offset_std"]), FLAGS.prime_text
        written = write_lines(model, config, lines, FLAGS.bias, FLAGS.seed, prime, prime_text, FLAGS.steps_per_character)
        drawing.save_lines(written, output, stroke_width=FLAGS.stroke_width)
        print(f"wrote {len(lines)} line(s) to {output}")
        if FLAGS.plot:
            stem = os.path.splitext(output)[0]
            path = save_plot(FLAGS.plot, model, config, lines[0], written[0], f"{stem}.{FLAGS.plot}.png", FLAGS.seed)
            print(f"wrote the {FLAGS.plot} plot to {path}")
    except (WriteError, FileNotFoundError, checkpoint_files.UnreadableCheckpoint) as error:
        sys.exit(str(error))


def run():
    """The ``graves-tf-write`` console script, ``python -m graves_tf.write`` and ``python -m graves_tf.cli.write``."""
    _program.run(main, __name__, __doc__)


if __name__ == "__main__":
    run()
