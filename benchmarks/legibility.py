r"""Legibility and the end-of-text rule of a synthesis model, measured with OCR.

    python -m benchmarks.legibility --data_dir=~/tensorflow_datasets          # the shipped model
    python -m benchmarks.legibility --model_dir=runs/synthesis --data_dir=...

Legibility: ``--num_lines`` validation lines of IAM-OnDB (spread evenly over
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
import shutil
import subprocess
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from graves_tf import write  # noqa: E402  (defines --model_dir, --data_dir, --seed, ...)

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


def edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[:], i
        for j, cb in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb))
    return row[-1]


def normalise_text(text):
    return " ".join(text.split())


class Reader:
    """Renders offsets and reads them back with Tesseract (one text line per image)."""

    def __init__(self, scale, line_width, images_dir=None):
        if shutil.which("tesseract") is None:
            raise SystemExit("tesseract is not on the PATH (Debian/Ubuntu: apt install tesseract-ocr)")
        self.scale, self.line_width = scale, line_width
        self.folder = images_dir or tempfile.mkdtemp(prefix="legibility_")
        os.makedirs(self.folder, exist_ok=True)

    def read(self, offsets, name):
        from graves_tf import drawing

        path = os.path.join(self.folder, f"{name}.png")
        drawing.rasterize(offsets, self.scale, self.line_width).save(path)
        result = subprocess.run(["tesseract", path, "stdout", "--psm", "7"], capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"tesseract failed on {path}: {result.stderr.strip()}")
        return normalise_text(result.stdout)


def character_error_rate(pairs):
    errors = sum(edit_distance(read, truth) for read, truth in pairs)
    return errors / sum(len(truth) for _, truth in pairs)


def validation_lines(data_dir, count, alphabet):
    """``count`` validation lines spread evenly over the split: (id, text, IAM-rate offsets)."""
    import tensorflow_datasets as tfds

    from graves_tf import datasets

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
    from graves_tf import alphabet as alphabet_lib

    reader = Reader(FLAGS.ocr_scale, FLAGS.ocr_line_width, FLAGS.images_dir)
    model, config, where = write.load_model(FLAGS.model_dir, FLAGS.checkpoint)
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
