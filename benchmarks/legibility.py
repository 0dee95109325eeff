r"""Legibility and the end-of-text rule of a synthesis model, measured with OCR.

    python -m benchmarks.legibility                                   # novel sentences, the shipped model
    python -m benchmarks.legibility --model_dir=runs/synthesis --checkpoint=...
    python -m benchmarks.legibility --suite=validation --data_dir=~/tensorflow_datasets

``--suite=novel`` (the default): sentences the model never saw, at several
biases, unprimed and with every shipped style; see
:mod:`benchmarks.novel_legibility`. Releases are chosen by it.

``--suite=validation`` compares samples with real IAM-OnDB lines. Legibility: ``--num_lines`` validation lines of IAM-OnDB (spread evenly over
the split) are rendered with ``drawing.rasterize`` and read by Tesseract
(``tesseract`` on the PATH; Debian: ``apt install tesseract-ocr``). The same
sentences are then sampled at bias ``--bias`` (unprimed) and rendered and read
the same way. Printed: the character error rate (edit distance / characters)
of the real lines at the data's sampling rate, at the model's rate
(``point_stride``), and of the samples; the last line is
``samples_vs_real_cer: S R``.

End of text: ``--stop_lines`` validation sentences are sampled at each of
``--stop_biases``. A line ends at the end of its text when the
end-of-sequence rule (section 5.3) stops it before the step cap, and it adds at
most ``--max_tail_characters`` characters' worth of points (the measured
lines' mean points per character at the model's rate) after its window first settles on the
last character (argmax_u phi(t, u) = U).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from benchmarks.common import load_model_of_flags  # noqa: E402
from benchmarks.ocr import Reader, character_error_rate, normalise_text  # noqa: E402
from graves_tf import write  # noqa: E402
from graves_tf.cli import write as write_program  # noqa: E402,F401  (write's flags: --model_dir, --data_dir, --seed, ...)

FLAGS = flags.FLAGS

flags.DEFINE_integer("num_lines", 100, "Validation lines for the OCR comparison.")
flags.DEFINE_float("ocr_bias", 1.0, "Probability bias of the samples read by OCR.")
flags.DEFINE_integer("stop_lines", 100, "Validation sentences sampled per bias for the end-of-text rule.")
flags.DEFINE_list("stop_biases", ["0.5", "1.0", "2.0"], "Biases of the end-of-text measurement.")
flags.DEFINE_float("max_tail_characters", 3.0, "Points allowed after the window reaches the last character, in characters.")
flags.DEFINE_integer("sample_batch_size", 20, "Lines sampled at once.")
flags.DEFINE_float("ocr_scale", 0.1, "Pixels per whiteboard unit of the OCR renderings.")
flags.DEFINE_integer("ocr_line_width", 2, "Pen width in pixels of the OCR renderings.")
flags.DEFINE_string("images_dir", None, "Also keep the rendered lines here.")
flags.DEFINE_enum("suite", "novel", ["novel", "validation"], "Novel sentences, or IAM-OnDB validation lines.")
flags.DEFINE_list("biases", ["0", "0.5", "0.75", "1"], "Novel suite: the biases sampled.")
flags.DEFINE_list("styles", None, "Novel suite: the shipped styles to prime with (default: all; 'none': unprimed only).")
flags.DEFINE_integer("finish_stroke_steps", 0, "Novel suite: points the pen may take to finish its stroke after the stop rule.")
flags.DEFINE_integer("end_delay_steps", 0, "Novel suite: points written after the stop rule before a pen-up may end the line.")
flags.DEFINE_bool("trailing_space", False, "Novel suite: the window reads each line with a space after it (write.sample_lines).")
flags.DEFINE_integer("num_sentences", 0, "Novel suite: read only the first N sentences (0: all; for a quick look).")
flags.DEFINE_bool("hello_world", True, "Novel suite: also read write's README line at its defaults, seeds 0-9.")
flags.DEFINE_list(
    "hello_world_styles", None,
    "Novel suite: read the README line primed with each of these styles too ('all': every shipped style, "
    "'none': unprimed), to choose write's default style by measurement.",
)
flags.DEFINE_list("widths", ["30", "40", "50", "60"], "Novel suite: also read lines wrapped at these widths ([] : skip).")
flags.DEFINE_string("results_json", None, "Novel suite: also write the results, with this command, to this file.")


def validation_lines(data_dir, count, alphabet):
    """``count`` validation lines spread evenly over the split: (id, text, IAM-rate offsets)."""
    import tensorflow_datasets as tfds

    from graves_tf.data import datasets

    builder = datasets.prepare_builder("iam_ondb", data_dir)
    lines = [
        (e["id"].decode(), normalise_text(e["text"].decode()), e["strokes"].astype("float64"))
        for e in tfds.as_numpy(builder.as_dataset(split="validation"))
    ]
    lines = [line for line in lines if all(c in alphabet.symbols or c == " " for c in line[1])] or lines
    step = max(1, len(lines) // count)
    return lines[::step][:count]


def sample_all(model, config, texts, bias, seed):
    offsets, stopped = [], []
    for start in range(0, len(texts), FLAGS.sample_batch_size):
        batch = texts[start : start + FLAGS.sample_batch_size]
        out, done = write.sample_lines(model, config, batch, bias, seed + start)
        offsets += out
        stopped += done
    return offsets, stopped


def tail_points(model, config, text, offsets):
    """Points written after the window first settles on the last character (None: it never does)."""
    import numpy as np

    phi = write.teacher_forced(model, config, text, offsets)["phi"][0].numpy()
    at_last = np.flatnonzero(phi.argmax(axis=1) == phi.shape[1] - 1)
    return None if len(at_last) == 0 else len(offsets) - int(at_last[0])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.suite == "novel":
        return novel_main()
    return validation_main()


def novel_main():
    import sys

    from benchmarks import novel_legibility
    from graves_tf import pretrained

    model, config, where = load_model_of_flags()  # before the OCR reader: a bad run is refused first
    reader = Reader(FLAGS.ocr_scale, FLAGS.ocr_line_width, FLAGS.images_dir)
    if FLAGS.styles is None:
        styles = [s["name"] for s in pretrained.list_styles()]
    else:
        styles = [s for s in FLAGS.styles if s != "none"]
    sentences = novel_legibility.novel_sentences()[: FLAGS.num_sentences or None]
    biases = [float(b) for b in FLAGS.biases]
    print(f"model: {where} ({config['checkpoint']}); OCR: tesseract --psm 7, {reader.folder}")
    print(f"{len(sentences)} novel sentences; biases {', '.join(FLAGS.biases)}; styles: {', '.join(styles) or 'none'}")
    results = novel_legibility.run(
        model, config, reader, sentences, biases, styles, FLAGS.seed, FLAGS.sample_batch_size,
        sample_options=dict(
            finish_stroke_steps=FLAGS.finish_stroke_steps, end_delay_steps=FLAGS.end_delay_steps,
            trailing_space=FLAGS.trailing_space,
        ),
    )
    novel_legibility.print_tables(results)
    extra = {}
    if FLAGS.hello_world:
        hello = novel_legibility.hello_world(model, config, reader, [write.DEFAULT_BIAS], style=write.DEFAULT_STYLE)
        rows = hello[write.DEFAULT_BIAS]
        print(f"\n'Hello world' at write's defaults (bias {write.DEFAULT_BIAS:g}, style {write.DEFAULT_STYLE}), seeds 0-9:")
        for seed, read, cer in rows:
            print(f"  seed {seed}: {read!r} (CER {cer:.2f})")
        print(f"hello_world_read: {novel_legibility.read_within_one_character(rows)} of {len(rows)} (CER <= 0.1)")
        extra["hello_world"] = rows
    if FLAGS.hello_world_styles:
        every = FLAGS.hello_world_styles == ["all"]
        candidates = [s["name"] for s in pretrained.list_styles()] if every else FLAGS.hello_world_styles
        by_style = {}
        print(f"\n'Hello world' at bias {write.DEFAULT_BIAS:g} by style, seeds 0-9:")
        for name in candidates:
            rows = novel_legibility.hello_world(model, config, reader, [write.DEFAULT_BIAS], style=name)[write.DEFAULT_BIAS]
            read, mean = novel_legibility.read_within_one_character(rows), sum(cer for _, _, cer in rows) / len(rows)
            by_style[name] = {"read": read, "mean_cer": mean, "rows": rows}
            print(f"  {name:<24} {read} of {len(rows)} within one character, mean CER {mean:.3f}: "
                  + ", ".join(repr(r) for _, r, _ in rows))
        best = min(by_style, key=lambda n: (-by_style[n]["read"], by_style[n]["mean_cer"]))
        print(f"best_hello_world_style: {best}")
        extra["hello_world_by_style"] = by_style
    if FLAGS.widths:
        widths = [int(w) for w in FLAGS.widths]
        scan = novel_legibility.by_width(
            model, config, reader, sentences, widths, write.DEFAULT_BIAS, FLAGS.seed, style=write.DEFAULT_STYLE
        )
        print(f"\nlines wrapped at each width (bias {write.DEFAULT_BIAS:g}, style {write.DEFAULT_STYLE}):")
        print("| width | lines | CER | last word read exactly | stopped by the step cap |\n|---|---|---|---|---|")
        for width, r in scan.items():
            print(f"| {width} | {r['n']} | {r['cer']:.3f} | {r['last_word']:.0%} | {r['capped']:.0%} |")
        extra["widths"] = scan
    if FLAGS.results_json:
        novel_legibility.save(results, FLAGS.results_json, " ".join(["python -m benchmarks.legibility"] + sys.argv[1:]), extra)


def validation_main():
    from graves_tf import alphabet as alphabet_lib

    model, config, where = load_model_of_flags()  # before the OCR reader: a bad run is refused first
    reader = Reader(FLAGS.ocr_scale, FLAGS.ocr_line_width, FLAGS.images_dir)
    alphabet = alphabet_lib.ALPHABETS[config["spec"]["alphabet"]]
    stride = config["spec"].get("point_stride", 1)
    print(f"model: {where} ({config['checkpoint']}); OCR: tesseract --psm 7, {reader.folder}")

    lines = validation_lines(FLAGS.data_dir, max(FLAGS.num_lines, FLAGS.stop_lines), alphabet)
    ocr_lines = lines[:: max(1, len(lines) // FLAGS.num_lines)][: FLAGS.num_lines]
    texts = [text for _, text, _ in ocr_lines]
    real = [(reader.read(offsets, f"real_{i}"), text) for i, (_, text, offsets) in enumerate(ocr_lines)]
    real_rate = [
        (reader.read(write.at_model_rate(offsets, config), f"real_model_rate_{i}"), text)
        for i, (_, text, offsets) in enumerate(ocr_lines)
    ]
    samples, _ = sample_all(model, config, texts, FLAGS.ocr_bias, FLAGS.seed)
    sampled = [(reader.read(offsets, f"sample_{i}"), text) for i, (offsets, text) in enumerate(zip(samples, texts))]
    print(f"\n{'lines':<44} {'n':>4} {'CER':>7}")
    print(f"{'real IAM lines (every pen position)':<44} {len(real):>4} {character_error_rate(real):>7.3f}")
    print(f"{f'real IAM lines at the model rate (stride {stride})':<44} {len(real):>4} {character_error_rate(real_rate):>7.3f}")
    print(f"{f'samples, bias {FLAGS.ocr_bias:g}':<44} {len(sampled):>4} {character_error_rate(sampled):>7.3f}")
    for (read, truth), (sample_read, _) in list(zip(real, sampled))[:3]:
        print(f"  truth {truth!r}\n    real   -> {read!r}\n    sample -> {sample_read!r}")

    import numpy as np

    points_per_character = sum(len(write.at_model_rate(o, config)) for _, _, o in lines) / sum(
        len(t) for _, t, _ in lines
    )
    limit = FLAGS.max_tail_characters * points_per_character
    stop_texts = [text for _, text, _ in lines[: FLAGS.stop_lines]]
    print(f"\nend of text: at most {FLAGS.max_tail_characters:g} x {points_per_character:.1f} points after the window reaches the last character")
    print(f"{'bias':>5} {'lines':>6} {'stopped by rule':>16} {'ends at text end':>17} {'median tail':>12}")
    for bias in (float(b) for b in FLAGS.stop_biases):
        samples, stopped = sample_all(model, config, stop_texts, bias, FLAGS.seed)
        tails = [tail_points(model, config, t, s) for t, s in zip(stop_texts, samples)]
        clean = [done and tail is not None and tail <= limit for done, tail in zip(stopped, tails)]
        median = np.median([t for t in tails if t is not None]) if any(t is not None for t in tails) else float("nan")
        print(f"{bias:>5g} {len(stop_texts):>6} {100 * np.mean(stopped):>15.0f}% {100 * np.mean(clean):>16.0f}% {median:>12.0f}")
    print(f"\nsamples_vs_real_cer: {character_error_rate(sampled):.3f} {character_error_rate(real):.3f}")


if __name__ == "__main__":
    app.run(main)
