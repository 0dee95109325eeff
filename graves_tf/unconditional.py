"""Handwriting without text: the prediction network of section 4 writing freely, or continuing a trace.

The command is ``python -m graves_tf.write --unconditional`` (docs/handwriting.md,
"Writing without text"); this module is what it calls, usable from Python:

    from graves_tf import unconditional
    model, config, where = unconditional.load_predictor()          # the shipped one, or model_dir=RUN
    lines = unconditional.sample(model, config, num_points=700, bias=0.5, seed=1, num_samples=4)
    unconditional.save_page(lines, "free.svg")                      # the paper's fig. 11
    more = unconditional.sample(model, config, 400, prime=my_offsets)[0]
    unconditional.save_page([unconditional.continued(my_offsets, more)], "mine.png")
    unconditional.save_density(model, config, real_offsets, "density.png")  # fig. 10

Offsets are ``(T, 3)`` rows ``(dx, dy, end_of_stroke)`` in whiteboard units at the
data's own rate, as IAM-OnDB stores them; a model trained at a coarser rate
(``point_stride``) gets its primes downsampled, and writes ``num_points``
points at its own rate. The same seed gives the same strokes here, from the
command line and from the exported SavedModel (``export/prediction.py``):
all three run :func:`graves_tf.sampling.sample_handwriting` with its
stateless draws.
"""

import math

import numpy as np

DEFAULT_POINTS = 700  # fig. 11: "All samples are 700 timesteps long."
MAX_POINTS = 20000  # the export's limit of num_steps too


class UnconditionalError(ValueError):
    """A setting or model that cannot write without text; its message says which and why."""


def check_settings(num_points, bias, num_samples=1):
    """Refuses a step count, bias or sample count that cannot give a sample."""
    if isinstance(num_points, bool) or not isinstance(num_points, (int, np.integer)) or not 1 <= num_points <= MAX_POINTS:
        raise UnconditionalError(f"--num_points must be a whole number of pen points from 1 to {MAX_POINTS}, got {num_points}")
    if not isinstance(bias, (int, float, np.floating)) or not math.isfinite(bias) or bias < 0:
        raise UnconditionalError(f"--bias must be a finite number >= 0 (0 unbiased, larger is neater), got {bias}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
        raise UnconditionalError(f"--num_samples must be at least 1, got {num_samples}")


def check_predictor(config, where):
    if config["spec"]["model"] != "handwriting_predictor":
        raise UnconditionalError(
            f"{where} holds a {config['spec']['model']}, not a handwriting_predictor: writing without text needs the "
            "prediction network of section 4 (train one with --flagfile=graves_tf/configs/iam_prediction_3x400.cfg)"
        )


def load_predictor(model_dir=None, checkpoint="best"):
    """``(model, config, where)`` of a prediction run (``model_dir``) or, without one, the shipped prediction model."""
    from graves_tf import pretrained, run_dir

    if model_dir is None:
        model, config = pretrained.load_predictor()
        where = "the shipped prediction model"
    else:
        model, config = run_dir.load_run(model_dir, checkpoint)
        where = model_dir
    check_predictor(config, where)
    return model, config, where


def at_model_rate(offsets, config):
    """Offsets at the data's rate, resampled to the rate the model was trained at (its ``point_stride``)."""
    from graves_tf.data.handwriting import downsample_strokes

    offsets = np.asarray(offsets, np.float64)
    return downsample_strokes(offsets, config["spec"].get("point_stride", 1)).numpy()


def check_offsets(offsets, name="the trace"):
    offsets = np.asarray(offsets, np.float64)
    if offsets.ndim != 2 or offsets.shape[1] != 3 or not len(offsets):
        raise UnconditionalError(f"{name}: expected offsets of shape (T, 3), T >= 1, got {offsets.shape}")
    if not np.all(np.isfinite(offsets)):
        raise UnconditionalError(f"{name}: its offsets must be finite numbers (no NaN or infinity)")
    if not np.all(np.isin(offsets[:, 2], (0.0, 1.0))):
        raise UnconditionalError(f"{name}: the third column, end of stroke, must be 0 or 1")
    return offsets


def normalise(offsets, config):
    """Whiteboard offsets -> the model's units (mean 0, std 1 over the training set, section 4.2)."""
    normalised = np.array(offsets, np.float64)
    normalised[:, :2] = (normalised[:, :2] - np.asarray(config["offset_mean"])) / np.asarray(config["offset_std"])
    return normalised


def sample(model, config, num_points=DEFAULT_POINTS, bias=0.0, seed=0, num_samples=1, prime=None):
    """``num_samples`` free-running samples of ``num_points`` pen points each (at the model's rate).

    Args:
        bias: the probability bias b (eqs. 61-62); 0 samples the network's own distribution.
        seed: integer; the same seed gives the same strokes.
        prime: ``(T, 3)`` whiteboard offsets at the data's rate that every sample continues
            ("keep writing in my hand"): the network reads them first, then writes on.

    Returns:
        a list of ``(num_points, 3)`` offsets in whiteboard units, the continuation only
        (its first offset is from the prime's last point; see :func:`continued`).
    """
    import tensorflow as tf

    from graves_tf import sampling

    check_settings(num_points, bias, num_samples)
    sampler = sampling.compiled_sampler(model)
    if prime is None:
        strokes, counts = sampler(num_samples, int(num_points), float(bias), int(seed), None)
    else:
        primed = normalise(at_model_rate(check_offsets(prime, "the prime"), config), config)
        primes = np.repeat(primed[None].astype(np.float32), num_samples, axis=0)
        lengths = np.full((num_samples,), len(primed), np.int32)
        strokes, counts = sampler(
            num_samples, int(num_points), float(bias), int(seed), None, tf.constant(primes), tf.constant(lengths)
        )
    mean, std = config["offset_mean"], config["offset_std"]
    return [sampling.denormalise(s[:n], mean, std) for s, n in zip(strokes.numpy(), counts.numpy())]


def continued(prime, continuation, config=None):
    """The prime followed by its continuation, one trace (the prime at the model's rate when ``config`` is given)."""
    prime = np.asarray(prime, np.float64) if config is None else at_model_rate(prime, config)
    return np.concatenate([prime, np.asarray(continuation, np.float64)])


def teacher_forced(model, config, offsets):
    """The model's ``outputs`` (y_hat, ``(1, T, 1 + 6M)``) and ``loss`` reading a real trace (data rate)."""
    import tensorflow as tf

    normalised = normalise(at_model_rate(check_offsets(offsets), config), config).astype(np.float32)
    inputs = np.concatenate([np.zeros((1, 3), np.float32), normalised[:-1]])[None]
    if id(model) not in _FORWARD:  # one graph per model (retraced per length only when shapes force it)
        _FORWARD[id(model)] = tf.function(model.forward, reduce_retracing=True)
    return _FORWARD[id(model)]({"inputs": tf.constant(inputs), "targets": tf.constant(normalised[None])})


_FORWARD = {}


def log_prob(model, config, offsets):
    """The loss L(x) of eq. 26 of one trace, in nats (lower is likelier), as the export's ``log_prob`` gives it."""
    return float(teacher_forced(model, config, offsets)["loss"][0])


def save_density(model, config, offsets, path):
    """The paper's fig. 10 along a real trace: the predicted densities of every next pen position summed
    (top) and the mixture weights over time (bottom), as a PNG."""
    from graves_tf import drawing

    if not str(path).lower().endswith(".png"):
        raise UnconditionalError(f"the density map is a PNG: its path must end in .png, got {path!r}")
    out = teacher_forced(model, config, offsets)
    at_rate = at_model_rate(offsets, config)
    return drawing.plot_density(out["outputs"][0].numpy(), at_rate, config["offset_mean"], config["offset_std"], path)


def save_page(lines, path, stroke_width=2.5):
    """Samples stacked down one page at one scale (the paper's fig. 11), SVG or PNG."""
    from graves_tf import drawing

    return drawing.save_lines(lines, path, stroke_width=stroke_width)


def save_strokes(lines, path, config=None, seed=None, bias=None):
    """The samples' offsets as JSON: ``{"samples": [[[dx, dy, eos], ...], ...], ...}`` in whiteboard units."""
    import json

    document = {"units": "whiteboard offsets (dx, dy, end_of_stroke)", "seed": seed, "bias": bias,
                "samples": [np.asarray(line, np.float64).tolist() for line in lines]}
    if config is not None:
        document["point_stride"] = int(config["spec"].get("point_stride", 1))
    with open(path, "w") as f:
        json.dump(document, f)
    return path


def check_output(path, name="-o/--output", suffixes=(".svg", ".png")):
    import os

    if not str(path).lower().endswith(suffixes):
        raise UnconditionalError(f"{name} must end in {' or '.join(suffixes)}, got {path!r}")
    folder = os.path.dirname(str(path))
    if folder and not os.path.isdir(folder):
        raise UnconditionalError(f"{name} {path}: the folder {folder} does not exist")


def write_command(text, output, num_points=DEFAULT_POINTS, bias=0.0, seed=0, num_samples=1, model_dir=None,
                  checkpoint="best", prime=None, plot=None, strokes_output=None, stroke_width=2.5, on_load=None):
    """What ``python -m graves_tf.write --unconditional`` does once its flags are read; returns the lines it prints.

    ``prime``: None, or a function of the loaded model's config returning ``((T, 3) whiteboard offsets at
    the data's rate, a description)`` (so the prime is read, and scaled, for the model that continues it). ``plot``: ``density`` (fig. 10,
    along the prime when there is one, else along the first sample) or ``biases`` (one sample per bias
    0, 0.5, 1, 2). ``on_load(model, config, where)``: called once the model is loaded (write checks its
    model flags against the model's and sets its matmul precision there).
    """
    import os

    if text and text.strip():
        raise UnconditionalError(
            f"--unconditional writes without text: drop the text {text.strip()[:40]!r} (or drop --unconditional "
            "to write it with the synthesis model)"
        )
    check_settings(num_points, bias, num_samples)
    check_output(output)
    if strokes_output:
        check_output(strokes_output, "--strokes_output", (".json",))
    if plot not in (None, "density", "biases"):
        raise UnconditionalError(f"--plot={plot} needs text (the window's weights); with --unconditional: density or biases")
    model, config, where = load_predictor(model_dir, checkpoint)
    if on_load is not None:
        on_load(model, config, where)
    primed, prime_where = (None, None) if prime is None else prime(config)
    if primed is not None:
        primed = check_offsets(primed, prime_where or "the prime")
    lines = sample(model, config, num_points, bias, seed, num_samples, primed)
    drawn = [continued(primed, line, config) for line in lines] if primed is not None else lines
    save_page(drawn, output, stroke_width)
    printed = [
        f"wrote {num_samples} sample(s) of {num_points} points (bias {bias:g}, seed {seed}"
        + (f", continuing {prime_where}" if primed is not None else "") + f") from {where} to {output}"
    ]
    if strokes_output:
        save_strokes(lines, strokes_output, config, seed, bias)
        printed.append(f"wrote their offsets to {strokes_output}")
    if plot:
        path = f"{os.path.splitext(output)[0]}.{plot}.png"
        if plot == "density":
            real = primed if primed is not None else lines[0]
            save_density(model, config, real, path)
            along = prime_where if primed is not None else "the first sample (give --prime_strokes for a real line)"
            printed.append(f"wrote the density map (fig. 10) along {along} to {path}")
        else:
            from graves_tf import drawing

            rows = [(f"b = {b:g}", sample(model, config, num_points, b, seed, 1, primed)[0]) for b in (0.0, 0.5, 1.0, 2.0)]
            drawing.plot_rows(rows, path)
            printed.append(f"wrote samples at biases 0, 0.5, 1, 2 to {path}")
    return printed
