r"""Draws the README's gallery with the shipped synthesis model (or a training run).

    python -m graves_tf.gallery --output_dir=docs/gallery
    python -m graves_tf.gallery --model_dir=runs/synthesis --output_dir=/tmp/gallery

Writes ``biases.png`` (one text at biases 0, 0.5, 1 and 2, the paper's fig.
16), ``styles.png`` (each shipped style: the real IAM-OnDB line, then new text
primed with it, fig. 17), ``attention.png`` (the window weights of one
sample, fig. 13), ``density.png`` (its predicted pen densities, fig. 14) and
``page.png`` (a paragraph wrapped at ``--page_width`` characters into one page,
as ``python -m graves_tf.write --width=...`` writes it). Only with the shipped
models (no ``--model_dir``): ``styles.png``, and ``unconditional.png``: four unbiased
samples of the shipped prediction network (fig. 11), as
``python -m graves_tf.write --unconditional --num_samples=4 --seed=1`` draws them.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from graves_tf import experiment, write  # noqa: E402
from graves_tf.cli import _program  # noqa: E402
from graves_tf.cli import write as write_program  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """gallery's flags: write's (--model_dir, --checkpoint, --seed, --bias, ...) and its own."""
    write_program.define_flags()
    if "output_dir" in FLAGS:
        return
    flags.DEFINE_string("output_dir", "gallery", "Folder for the pictures.")
    flags.DEFINE_string("gallery_text", "You can write anything you like", "The text of the bias and attention figures.")
    flags.DEFINE_string("style_text", "graves_tf imitates this hand", "What the primed styles write.")
    flags.DEFINE_float("style_bias", 1.0, "Probability bias of the primed samples.")
    flags.DEFINE_string(
        "page_text",
        "Handwriting synthesis is the generation of handwriting for a given text. It lets a network write "
        "a letter, a note or a whole page, one line under the other, in one style.",
        "The paragraph of page.png.",
    )
    flags.DEFINE_integer("page_width", 40, "Characters per line of page.png.")


define_flags()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from graves_tf import drawing, pretrained

    try:
        model, config, where = write.load_model(FLAGS.model_dir, FLAGS.checkpoint)
        experiment.spec_of_run(config["spec"], where)  # model flags may repeat the model's, not contradict it
    except (FileNotFoundError, ValueError) as error:  # an unreadable checkpoint included
        sys.exit(str(error))
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    path = lambda name: os.path.join(FLAGS.output_dir, name)  # noqa: E731
    text = FLAGS.gallery_text
    print(write.save_plot("biases", model, config, text, None, path("biases.png"), FLAGS.seed))

    sample = write.write_lines(model, config, [text], 1.0, FLAGS.seed)[0]
    print(write.save_plot("attention", model, config, text, sample, path("attention.png")))
    print(write.save_plot("density", model, config, text, sample, path("density.png")))

    lines = write.wrap(FLAGS.page_text, FLAGS.page_width)
    page = write.write_lines(model, config, lines, FLAGS.bias, FLAGS.seed, *write.style_prime(write.DEFAULT_STYLE, config))
    print(drawing.save_lines(page, path("page.png")), f"({len(lines)} lines at bias {FLAGS.bias:g}, style {write.DEFAULT_STYLE})")

    if FLAGS.model_dir is None:
        rows = []
        for style in pretrained.list_styles():
            prime, prime_text = pretrained.style(style["name"])
            continued = write.write_lines(
                model, config, [FLAGS.style_text], FLAGS.style_bias, FLAGS.seed, write.at_model_rate(prime, config), prime_text
            )[0]
            rows += [(f"{style['name']}: IAM", prime), (f"{style['name']}: sample", continued)]
        print(drawing.plot_rows(rows, path("styles.png"), title=f'"{FLAGS.style_text}" in each shipped style, bias {FLAGS.style_bias:g}'))
        from graves_tf import unconditional

        for line in unconditional.write_command(None, path("unconditional.png"), num_samples=4, seed=1):
            print(line)
    release = config.get("release")
    if release:
        loss = release["validation"]["float16"]
        print(f"{where}: {pretrained.describe_release(config)}, validation log-loss {loss['loss']:.1f} nats per sequence "
              f"({loss['sequences']} lines), SSE {loss['sse_per_point']:.3f}")


def run():
    """The ``graves-tf-gallery`` console script, ``python -m graves_tf.gallery`` and ``python -m graves_tf.cli.gallery``."""
    _program.run(main, __name__, __doc__)


if __name__ == "__main__":
    run()
