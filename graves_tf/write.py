r"""Writing text as handwriting: the library of ``python -m graves_tf.write`` (the program, its flags and
``main``, is :mod:`graves_tf.cli.write`; ``python -m graves_tf.write`` runs it).

:func:`write_lines` samples lines of text with a synthesis model (:func:`load_model`: a training run or
the shipped one), primed (section 5.5) with a shipped style (:func:`style_prime`), a line of the built
IAM-OnDB (:func:`find_iam_line`) or a pen trace of your own (:func:`load_prime_strokes`): a JSON list of
strokes, each a list of [x, y] pen positions (y pointing down, any units: they are rescaled so the
trace's median step matches the training data's), or {"strokes": [...]} with the same content; or a .npy
array of (dx, dy, end_of_stroke) offsets in whiteboard units. :func:`wrap` cuts text into lines of a
page, :func:`check_text` and :func:`check_settings` refuse what cannot be written (:class:`WriteError`).
"""

import json
import math
import os
import textwrap

# Chosen by measurement (benchmarks.legibility, docs/handwriting.md): the bias, and the shipped style that
# every line is primed with unless another is asked for.
DEFAULT_BIAS = 0.75
DEFAULT_STYLE = "upright-cursive-small"
DEFAULT_WIDTH = 40  # characters per line of a page
BIAS_ROWS = (0.0, 0.5, 1.0, 2.0)


class WriteError(ValueError):
    pass


def check_text(text, alphabet):
    """Refuses characters the model cannot write, naming them."""
    from graves_tf.alphabet import IAM_CHARACTERS

    unknown = [c for c in dict.fromkeys(text) if c not in IAM_CHARACTERS and c != "\n"]
    if unknown:
        raise WriteError(
            f"cannot write {''.join(unknown)!r}: the model knows the characters of IAM-OnDB, "
            f"{IAM_CHARACTERS!r}"
            + ("; with the paper's alphabet, digits and most punctuation are written as some "
               "non-letter" if len(alphabet) == 57 else "")
        )


def check_settings(bias, width, steps_per_character, output):
    """Refuses settings that would sample a blank or scribbled page, or fail after sampling."""
    if not math.isfinite(bias) or bias < 0:
        raise WriteError(f"--bias must be a finite number >= 0 (0 unbiased, larger is neater), got {bias}")
    if width < 1:
        raise WriteError(f"--width must be at least 1 character, got {width}")
    if steps_per_character < 1:
        raise WriteError(f"--steps_per_character must be at least 1, got {steps_per_character}")
    if not output.lower().endswith((".svg", ".png")):
        raise WriteError(f"-o/--output must end in .svg or .png, got {output!r}")
    folder = os.path.dirname(output)
    if folder and not os.path.isdir(folder):
        raise WriteError(f"-o/--output {output}: the folder {folder} does not exist")


def wrap(text, width):
    lines = []
    for paragraph in text.split("\n"):
        lines.extend(textwrap.wrap(paragraph, width) or [""])
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise WriteError("nothing to write")
    return lines


def load_prime_strokes(path, offset_std):
    """A user's pen trace -> (T, 3) offsets in whiteboard units."""
    import numpy as np

    if path.endswith(".npy"):
        try:
            offsets = np.load(path, allow_pickle=False).astype(np.float64)
        except (ValueError, TypeError, OSError) as error:
            raise WriteError(f"{path}: not a NumPy array of numbers ({error})") from None
        if offsets.ndim != 2 or offsets.shape[1] != 3 or not len(offsets):
            raise WriteError(f"{path}: expected an array of shape (T, 3), T >= 1, got {offsets.shape}")
        bad = int(np.sum(~np.isfinite(offsets)))
        if bad:
            raise WriteError(f"{path}: {bad} of its {offsets.size} values are not finite numbers (NaN or infinity)")
        if not np.all(np.isin(offsets[:, 2], (0.0, 1.0))):
            raise WriteError(f"{path}: the third column, end of stroke, must be 0 or 1")
        return offsets
    try:
        with open(path) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise WriteError(f"{path}: not valid JSON ({error})") from None
    if isinstance(data, dict):
        if "strokes" not in data:
            raise WriteError(
                f'{path}: expected a list of strokes or {{"strokes": [...]}}, got an object with keys {sorted(data)}'
            )
        data = data["strokes"]
    if not isinstance(data, list):
        raise WriteError(f"{path}: expected a list of strokes, each a list of [x, y] points")
    strokes = []
    for number, stroke in enumerate(data, 1):
        try:
            points = np.asarray(stroke, np.float64)
        except (TypeError, ValueError):
            raise WriteError(f"{path}: stroke {number} is not a list of [x, y] points of numbers") from None
        if points.size == 0:
            continue
        if points.ndim != 2 or points.shape[1] != 2:
            raise WriteError(
                f"{path}: stroke {number} is not a list of [x, y] points (each point 2 numbers; got shape {points.shape})"
            )
        if not np.all(np.isfinite(points)):
            raise WriteError(f"{path}: stroke {number} has points that are not finite numbers (NaN or Infinity)")
        strokes.append(points)
    if not strokes:
        raise WriteError(f"{path}: no strokes")
    points = np.concatenate(strokes)
    ends = np.zeros(len(points))
    ends[np.cumsum([len(s) for s in strokes]) - 1] = 1
    offsets = np.concatenate([np.zeros((1, 2)), np.diff(points, axis=0)])
    steps = np.linalg.norm(offsets[1:][ends[:-1] == 0], axis=1)
    typical = np.median(steps[steps > 0]) if np.any(steps > 0) else 1.0
    offsets *= 0.5 * float(np.mean(offset_std)) / typical  # training data: median step ~ half a std
    return np.concatenate([offsets, ends[:, None]], axis=1)


def find_iam_lines(line_ids, data_dir):
    """``{line_id: (strokes, text)}`` of IAM-OnDB lines of the built dataset, read in one pass."""
    import tensorflow_datasets as tfds

    from graves_tf.data import datasets

    builder = datasets.prepare_builder("iam_ondb", data_dir)
    wanted, found = set(line_ids), {}
    for split in builder.info.splits:
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            line_id = example["id"].decode()
            if line_id in wanted:
                found[line_id] = (example["strokes"].astype("float64"), example["text"].decode())
                if len(found) == len(wanted):
                    return found
    missing = sorted(wanted - set(found))
    raise WriteError(f"no line {', '.join(map(repr, missing))} in {builder.data_dir}")


def find_iam_line(line_id, data_dir):
    return find_iam_lines([line_id], data_dir)[line_id]


def style_prime(name, config):
    """``(offsets at the model's rate, text)`` of a shipped style, or ``(None, None)`` for ``'none'``."""
    from graves_tf import pretrained

    if not name or name == "none":
        return None, None
    offsets, text = pretrained.style(name)
    return at_model_rate(offsets, config), text


def at_model_rate(offsets, config):
    """IAM-rate offsets resampled to the rate the model was trained at (its ``point_stride``)."""
    from graves_tf.data.handwriting import downsample_strokes

    return downsample_strokes(offsets, config["spec"].get("point_stride", 1)).numpy()


def sample_lines(model, config, texts, bias, seed, prime=None, prime_text=None, steps_per_character=40,
                 finish_stroke_steps=0, end_delay_steps=0, trailing_space=False):
    """Samples one line of handwriting per text, as one batch.

    Returns ``(offsets, stopped)``: a list of ``(T, 3)`` offsets in whiteboard
    units, and per line whether the end-of-sequence rule (section 5.3) ended it
    before the cap of ``steps_per_character`` points per character of its
    text. With ``prime`` (IAM-rate offsets at the model's rate) and
    ``prime_text``, every line continues that handwriting (section 5.5).
    ``finish_stroke_steps`` and ``end_delay_steps`` let the pen finish the
    last letter after the rule fires (:func:`graves_tf.sampling.sample_handwriting`;
    measured in docs/handwriting.md: off by default). ``trailing_space``: the
    window reads each text with a space after it, so the stop rule fires once
    the window has passed that space, not the last letter.
    """
    import numpy as np
    import tensorflow as tf

    from graves_tf import alphabet as alphabet_lib
    from graves_tf import sampling

    alphabet = alphabet_lib.ALPHABETS[config["spec"]["alphabet"]]
    mean, std = np.asarray(config["offset_mean"]), np.asarray(config["offset_std"])
    sampler = sampling.compiled_sampler(
        model, steps_per_character=steps_per_character, finish_stroke_steps=finish_stroke_steps,
        end_delay_steps=end_delay_steps, return_positions=True,
    )
    full = [(prime_text + " " + t) if prime_text else t for t in texts]
    if trailing_space:
        full = [t + " " for t in full]
    ids = [alphabet.encode(t) for t in full]
    width = max(len(i) for i in ids)
    text = np.zeros((len(ids), width), np.int32)
    mask = np.zeros((len(ids), width), np.float32)
    for row, i in enumerate(ids):
        text[row, : len(i)], mask[row, : len(i)] = i, 1
    context = model.window.context(tf.constant(text), tf.constant(mask))
    max_steps = steps_per_character * width
    if prime is None:
        strokes, counts, positions = sampler(len(texts), max_steps, bias, seed, context)
    else:
        normalised = np.array(prime, np.float64)
        normalised[:, :2] = (normalised[:, :2] - mean) / std
        primes = np.repeat(normalised[None].astype(np.float32), len(texts), axis=0)
        lengths = np.full((len(texts),), len(normalised), np.int32)
        strokes, counts, positions = sampler(
            len(texts), max_steps, bias, seed, context, tf.constant(primes), tf.constant(lengths)
        )
    counts, positions = counts.numpy(), positions.numpy()
    offsets = [sampling.denormalise(s[:n], mean, std) for s, n in zip(strokes.numpy(), counts)]
    if prime_text:  # the new text starts after the priming text and its space
        offsets = [drop_strokes_before(o, p[:len(o)], len(prime_text) + 1) for o, p in zip(offsets, positions)]
    return offsets, [bool(n < steps_per_character * len(i)) for n, i in zip(counts, ids)]


def drop_strokes_before(offsets, positions, first_character):
    """Removes the strokes of a primed sample that end before the window reaches
    ``first_character`` (the last touches of the priming text: a stray dot or
    comma at the start of the line); the points kept stay where they were."""
    import numpy as np

    reached = np.flatnonzero(np.asarray(positions) >= first_character)
    if not len(reached) or not len(offsets):
        return offsets
    ends = np.flatnonzero(offsets[:, 2] > 0.5)
    earlier = ends[ends < reached[0]]
    if not len(earlier):
        return offsets
    start = int(earlier[-1]) + 1
    if start >= len(offsets):
        return offsets
    kept = np.array(offsets[start:], np.float64)
    kept[0, :2] += offsets[:start, :2].sum(axis=0)
    return kept


def write_lines(model, config, lines, bias, seed, prime=None, prime_text=None, steps_per_character=40, **ending):
    """Samples every line; a list of (T, 3) offsets in whiteboard units.

    Without ``prime`` the first line is written unprimed and the others are
    primed with it, so a page keeps one style. ``ending``: the
    ``finish_stroke_steps``, ``end_delay_steps`` and ``trailing_space`` of :func:`sample_lines`.
    """
    if prime is not None:
        return sample_lines(model, config, lines, bias, seed, prime, prime_text, steps_per_character, **ending)[0]
    first = sample_lines(model, config, lines[:1], bias, seed, steps_per_character=steps_per_character, **ending)[0]
    if len(lines) == 1:
        return first
    rest = sample_lines(model, config, lines[1:], bias, seed, first[0], lines[0], steps_per_character, **ending)[0]
    return first + rest


def teacher_forced(model, config, text, offsets):
    """The model's outputs (``phi``, ``outputs``, ``loss``, ...) reading ``offsets`` of ``text``."""
    import numpy as np
    import tensorflow as tf

    from graves_tf import alphabet as alphabet_lib

    alphabet = alphabet_lib.ALPHABETS[config["spec"]["alphabet"]]
    mean, std = np.asarray(config["offset_mean"]), np.asarray(config["offset_std"])
    normalised = np.array(offsets, np.float64)
    normalised[:, :2] = (normalised[:, :2] - mean) / std
    inputs = np.concatenate([np.zeros((1, 3)), normalised[:-1]])[None].astype(np.float32)
    batch = {"inputs": inputs, "targets": normalised[None].astype(np.float32),
             "text": np.asarray([alphabet.encode(text)], np.int32)}
    if id(model) not in _FORWARD:
        _FORWARD[id(model)] = tf.function(model.forward, reduce_retracing=True)
    return _FORWARD[id(model)](batch)


_FORWARD = {}


def save_plot(kind, model, config, text, offsets, path, seed=0):
    import numpy as np

    from graves_tf import drawing

    if kind == "biases":
        rows = [(f"b = {b:g}", write_lines(model, config, [text], b, seed)[0]) for b in BIAS_ROWS]
        return drawing.plot_rows(rows, path, title=text)
    mean, std = np.asarray(config["offset_mean"]), np.asarray(config["offset_std"])
    out = teacher_forced(model, config, text, offsets)
    if kind == "attention":
        return drawing.plot_attention(out["phi"][0].numpy(), text, path, offsets)
    return drawing.plot_density(out["outputs"][0].numpy(), offsets, mean, std, path)


def load_model(model_dir=None, checkpoint="best"):
    """The model of a training run, or the shipped one without ``model_dir``: ``(model, config, where)``."""
    from graves_tf import pretrained, run_dir

    if model_dir is None:
        model, config = pretrained.load_synthesizer()
        return model, config, "the shipped model"
    model, config = run_dir.load_run(model_dir, checkpoint)
    return model, config, model_dir


if __name__ == "__main__":
    from graves_tf.cli.write import run

    run()
