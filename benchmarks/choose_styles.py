r"""Chooses the shipped styles by measurement: legible when primed, and as varied as the data allows.

    python -m benchmarks.choose_styles --model_dir=runs/synthesis --checkpoint=... \
        --data_dir=~/tensorflow_datasets --num_styles=13 --report=styles_report.json

Candidates are IAM-OnDB validation lines of 25-60 characters, one per form
(so mostly one per writer). Each is described by three measured features of
its pen trace:

* slant: the length-weighted mean angle from vertical of its pen-down
  segments that run more up-down than sideways (degrees, positive leaning
  right);
* size: the spread of its points' heights (the 10th to 90th percentile of y),
  in whiteboard units;
* joined: letters per stroke (non-space characters over pen-down strokes);
  cursive writing joins several letters into one stroke, print about one.

It is then measured as a style: the model, primed with the line (section
5.5), writes the sentences of ``benchmarks/data/style_selection_sentences.txt``
(not the benchmark's novel sentences, so the benchmark stays unseen) at
``--selection_bias``, and Tesseract reads them. A candidate is legible if its mean CER
is at most ``--max_cer``.

The styles are chosen greedily from the legible candidates: each of the
eight kinds (cursive or print, slanted or upright, large or small; the
thresholds are the candidates' medians) first gets its most legible
candidate, then the rest go to the most legible of the remaining,
preferring kinds with fewer styles. Printed: a table of the chosen styles
and the ``--styles=`` argument of ``graves_tf.pretrained.release``.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from benchmarks.common import load_model_of_flags  # noqa: E402
from benchmarks.ocr import Reader, character_error_rate  # noqa: E402
from graves_tf import write  # noqa: E402
from graves_tf.cli import write as write_program  # noqa: E402,F401  (write's flags: --model_dir, --checkpoint, --data_dir, --seed)

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_styles", 13, "Styles to choose.")
flags.DEFINE_integer("num_candidates", 48, "Validation lines to try.")
flags.DEFINE_float("selection_bias", 0.75, "Bias of the samples read by OCR.")
flags.DEFINE_float("max_cer", 0.2, "A style is legible if OCR reads its samples at this CER or better.")
flags.DEFINE_string("report", None, "Write every candidate's features and CER to this JSON file.")
flags.DEFINE_integer("style_batch_size", 12, "Lines sampled at once.")

SELECTION_SENTENCES = os.path.join(os.path.dirname(__file__), "data", "style_selection_sentences.txt")


def features(offsets, text):
    """``{slant, size, joined}`` of a line's pen trace (whiteboard units, y down)."""
    import numpy as np

    from graves_tf import drawing

    strokes = [s for s in drawing.offsets_to_strokes(offsets) if len(s) > 1]
    segments = np.concatenate([np.diff(s, axis=0) for s in strokes]) if strokes else np.zeros((1, 2))
    upright = np.abs(segments[:, 1]) > np.abs(segments[:, 0])
    seg = segments[upright]
    lengths = np.linalg.norm(seg, axis=1)
    # angle from vertical, leaning right positive (y points down: a stroke going up-right has dx > 0, dy < 0)
    angles = np.degrees(np.arctan2(seg[:, 0] * -np.sign(seg[:, 1]), np.abs(seg[:, 1])))
    slant = float(np.sum(angles * lengths) / max(np.sum(lengths), 1e-9))
    points = np.concatenate(strokes) if strokes else np.zeros((1, 2))
    size = float(np.percentile(points[:, 1], 90) - np.percentile(points[:, 1], 10))
    letters = sum(not c.isspace() for c in text)
    return {"slant": slant, "size": size, "joined": letters / max(len(strokes), 1)}


def candidates(data_dir, count, alphabet):
    import tensorflow_datasets as tfds

    from graves_tf.data import datasets

    builder = datasets.prepare_builder("iam_ondb", data_dir)
    found, forms = [], set()
    for example in tfds.as_numpy(builder.as_dataset(split="validation")):
        line_id, text = example["id"].decode(), " ".join(example["text"].decode().split())
        form = line_id.rsplit("-", 1)[0]
        if form in forms or not 25 <= len(text) <= 60 or any(c not in alphabet.symbols and c != " " for c in text):
            continue
        forms.add(form)
        found.append((line_id, text, example["strokes"].astype("float64")))
    step = max(1, len(found) // count)
    return found[::step][:count]


def kind(feature, thresholds):
    return (
        "cursive" if feature["joined"] >= thresholds["joined"] else "print",
        "slanted" if feature["slant"] >= thresholds["slant"] else "upright",
        "large" if feature["size"] >= thresholds["size"] else "small",
    )


def choose(measured, num_styles, max_cer):
    """Greedy choice over kinds; ``measured``: dicts with ``kind`` and ``cer``."""
    legible = sorted((m for m in measured if m["cer"] <= max_cer), key=lambda m: m["cer"])
    chosen, per_kind = [], {}
    for m in legible:  # the best of each kind first
        if m["kind"] not in per_kind and len(chosen) < num_styles:
            chosen.append(m)
            per_kind[m["kind"]] = 1
    while len(chosen) < num_styles:
        rest = [m for m in legible if m not in chosen]
        if not rest:
            break
        best = min(rest, key=lambda m: (per_kind.get(m["kind"], 0), m["cer"]))
        chosen.append(best)
        per_kind[best["kind"]] = per_kind.get(best["kind"], 0) + 1
    return chosen


def names(chosen):
    """Unique names from the kinds: ``slanted-cursive``, ``upright-print-large``, ..."""
    counts, named = {}, []
    for m in chosen:
        join, lean, size = m["kind"]
        base = f"{lean}-{join}-{size}"
        counts[base] = counts.get(base, 0) + 1
        named.append(base if counts[base] == 1 else f"{base}-{counts[base]}")
    return named


def styles_argument(named, chosen):
    """``graves_tf.pretrained.release``'s ``--styles`` value: NAME=LINE_ID:DESCRIPTION entries joined by commas
    (so a description has none), e.g. ``slanted large cursive (slant 11 deg; 1.2 letters per stroke)``."""
    return ",".join(
        f"{name}={m['line_id']}:{m['kind'][1]} {m['kind'][2]} {m['kind'][0]} "
        f"(slant {m['slant']:.0f} deg; {m['joined']:.1f} letters per stroke)"
        for name, m in zip(named, chosen)
    )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import numpy as np

    from graves_tf import alphabet as alphabet_lib

    model, config, where = load_model_of_flags()  # before the OCR reader: a bad run is refused first
    reader = Reader(0.1, 2)
    alphabet = alphabet_lib.ALPHABETS[config["spec"]["alphabet"]]
    with open(SELECTION_SENTENCES) as f:
        sentences = [line.strip() for line in f if line.strip()]
    lines = candidates(FLAGS.data_dir, FLAGS.num_candidates, alphabet)
    print(f"model: {where}; {len(lines)} candidate lines; {len(sentences)} selection sentences at bias {FLAGS.selection_bias:g}")
    measured = []
    for number, (line_id, text, offsets) in enumerate(lines):
        prime = write.at_model_rate(offsets, config)
        samples = []
        for start in range(0, len(sentences), FLAGS.style_batch_size):
            samples += write.sample_lines(
                model, config, sentences[start : start + FLAGS.style_batch_size], FLAGS.selection_bias, FLAGS.seed, prime, text,
            )[0]
        reads = [reader.read(s, f"{line_id}_{i}") for i, s in enumerate(samples)]
        cer = character_error_rate(list(zip(reads, sentences)))
        measured.append({"line_id": line_id, "text": text, "cer": cer, **features(offsets, text)})
        print(f"  {number + 1:>3}/{len(lines)} {line_id:<14} CER {cer:.3f}  slant {measured[-1]['slant']:5.1f}  "
              f"size {measured[-1]['size']:6.0f}  joined {measured[-1]['joined']:.2f}", flush=True)
    thresholds = {key: float(np.median([m[key] for m in measured])) for key in ("slant", "size", "joined")}
    for m in measured:
        m["kind"] = kind(m, thresholds)
    chosen = choose(measured, FLAGS.num_styles, FLAGS.max_cer)
    named = names(chosen)
    print(f"\nthresholds (medians): slant {thresholds['slant']:.1f} degrees, size {thresholds['size']:.0f}, "
          f"joined {thresholds['joined']:.2f} letters per stroke")
    print(f"{sum(m['cer'] <= FLAGS.max_cer for m in measured)} of {len(measured)} candidates legible (CER <= {FLAGS.max_cer:g})")
    print("| style | line | CER | slant | size | letters per stroke |\n|---|---|---|---|---|---|")
    for name, m in zip(named, chosen):
        print(f"| {name} | {m['line_id']} | {m['cer']:.3f} | {m['slant']:.1f} | {m['size']:.0f} | {m['joined']:.2f} |")
    print(f"\n--styles=\"{styles_argument(named, chosen)}\"")
    if FLAGS.report:
        with open(FLAGS.report, "w") as f:
            json.dump({"thresholds": thresholds, "candidates": measured, "chosen": dict(zip(named, [m["line_id"] for m in chosen]))}, f, indent=1)


if __name__ == "__main__":
    app.run(main)
