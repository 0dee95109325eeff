r"""A page of generated text from exported text models (their ``sample`` signature).

    python -m export --model_dir=runs/ptb_char -o exported/ptb_char
    python -m benchmarks.text_samples --saved_model="PTB characters=exported/ptb_char" \
        --prime="the company said " --num_steps=1000 --output_markdown=docs/samples/text.md

Only TensorFlow is used to load and run the SavedModels (as a serving
pipeline without graves_tf would). Each sample is written as a Markdown
section: the model's name, the prime, the settings and the text.
"""

import sys

from absl import app, flags

FLAGS = flags.FLAGS

flags.DEFINE_multi_string("saved_model", [], "NAME=FOLDER of an exported text model; repeat for several.")
flags.DEFINE_string("prime", "", "Text fed before sampling (empty: start from the null input).")
flags.DEFINE_integer("num_steps", 1000, "Symbols to sample.")
flags.DEFINE_float("temperature", 1.0, "Softmax temperature (1: the model's distribution).")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
flags.DEFINE_string("output_markdown", None, "Write the page here (default: print only).")


def sample(folder, prime, num_steps, temperature, seed):
    """The text sampled by the SavedModel in ``folder`` (signature ``sample``)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(folder)
    if "sample" not in loaded.signatures:
        raise ValueError(f"{folder} has no 'sample' signature: export a text model (python -m export)")
    out = loaded.signatures["sample"](
        prime=tf.constant([prime]), num_steps=tf.constant(num_steps, tf.int32),
        temperature=tf.constant(temperature, tf.float32), seed=tf.constant(seed, tf.int64),
    )
    return out["text"].numpy()[0].decode("utf-8", errors="replace")


def page_section(name, prime, text, num_steps, temperature, seed):
    settings = f"{num_steps} symbols, temperature {temperature:g}, seed {seed}"
    prime_note = f"after the prime `{prime}`" if prime else "from the null input"
    fence = "~~~~" if "```" in text else "```"
    return f"#### {name}\n\nSampled {prime_note} ({settings}):\n\n{fence}text\n{prime}{text}\n{fence}\n"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.saved_model:
        sys.exit("give at least one --saved_model=NAME=FOLDER")
    sections = []
    for entry in FLAGS.saved_model:
        name, sep, folder = entry.partition("=")
        if not sep or not folder:
            sys.exit(f"--saved_model={entry!r}: expected NAME=FOLDER")
        try:
            text = sample(folder, FLAGS.prime, FLAGS.num_steps, FLAGS.temperature, FLAGS.seed)
        except (OSError, ValueError) as error:
            sys.exit(f"{name}: {error}")
        sections.append(page_section(name, FLAGS.prime, text, FLAGS.num_steps, FLAGS.temperature, FLAGS.seed))
    page = "\n".join(sections)
    print(page)
    if FLAGS.output_markdown:
        with open(FLAGS.output_markdown, "w") as f:
            f.write(page)


if __name__ == "__main__":
    app.run(main)
