"""The models shipped inside the package: handwriting synthesis with its named styles, and text.

``graves_tf/pretrained/synthesis/`` holds ``model_config.json`` (as a training
run writes it, plus how the weights were made), ``weights.npz`` (every weight
of the model by its Keras path, stored as float16 to halve the package) and
``styles.json`` (priming lines from the IAM-OnDB validation split, in
whiteboard units at the data's own sampling rate). ``python -m graves_tf.write``
and ``python -m export`` use it when no ``--model_dir`` is given;
``python -m graves_tf.pretrained.release`` makes it from a training run.

``graves_tf/pretrained/prediction/`` (once released: ``python -m
graves_tf.pretrained.release`` of a ``handwriting_predictor`` run) holds an
unconditional handwriting prediction network (section 4) in the same format,
``model_config.json`` and ``weights.npz``, no styles: ``python -m
graves_tf.write --unconditional`` uses it (:func:`load_predictor`), and
``python -m export --model_dir=graves_tf/pretrained/prediction`` exports it.

``python -m graves_tf.train --init_from=pretrained`` starts from the shipped
synthesis weights, ``--init_from=pretrained:NAME`` from those of
``graves_tf/pretrained/NAME`` (:func:`init_weights`), after checking that the
model flags build the shipped network.

Text models (:data:`TEXT_MODELS`: ``graves_tf/pretrained/enwik8_small/`` and ``ptb_char/``)
hold ``model_config.json`` and ``weights.npz`` alone; their folder
(:func:`text_model_dir`) is a ``--model_dir`` for ``graves_tf.evaluate``,
``export`` and ``run_dir.load_run``.
"""

import json
import pathlib

import numpy as np

from graves_tf import run_dir

PRETRAINED_DIR = pathlib.Path(__file__).parent
SYNTHESIS_DIR = PRETRAINED_DIR / "synthesis"
PREDICTION_DIR = PRETRAINED_DIR / "prediction"
CONFIG_FILE = "model_config.json"
WEIGHTS_FILE = run_dir.RELEASED_WEIGHTS
STYLES_FILE = "styles.json"
TEXT_MODELS = ("enwik8_small", "ptb_char")


class PretrainedNotFound(FileNotFoundError):
    pass


def _require(folder, name, what="synthesis"):
    path = pathlib.Path(folder or SYNTHESIS_DIR) / name
    if not path.exists():
        raise PretrainedNotFound(
            f"{path} is missing: this copy of graves_tf has no shipped {what} model; "
            f"pass --model_dir of a training run, or reinstall graves_tf"
        )
    return path


def text_model_dir(name):
    """The folder of a shipped text model (one of :data:`TEXT_MODELS`)."""
    if name not in TEXT_MODELS:
        raise KeyError(f"no shipped text model {name!r}; shipped: {', '.join(TEXT_MODELS)}")
    folder = pathlib.Path(__file__).parent / name
    if not (folder / WEIGHTS_FILE).exists():
        raise PretrainedNotFound(f"{folder / WEIGHTS_FILE} is missing: reinstall graves_tf")
    return folder


# The released format (every weight by its Keras path in an .npz) is read and written by run_dir, which
# restores any checkpoint; these are its names here, where the shipped models are.
save_weights = run_dir.save_released_weights
load_weights = run_dir.load_released_weights


def load_config(folder=None):
    """The shipped model's ``model_config.json``."""
    with open(_require(folder, CONFIG_FILE)) as f:
        return json.load(f)


def describe_release(config):
    """Which checkpoint of which run a release holds, e.g. ``the mean of updates 500, 750 of run synthesis_ft``."""
    release = config["release"]
    averaged = release.get("averaged_steps")
    which = f"the mean of updates {', '.join(map(str, averaged))}" if averaged else f"update {release['step']}"
    return f"{which} of run {release['run']}"


def weights_path(folder=None):
    """The shipped model's ``weights.npz``."""
    return str(_require(folder, WEIGHTS_FILE))


def load_synthesizer(folder=None):
    """``(model, config)`` of the shipped synthesis model, as ``run_dir.load_run`` returns them."""
    from graves_tf import experiment

    config = load_config(folder)
    model = experiment.build_model(experiment.ModelSpec(**config["spec"]))
    weights = weights_path(folder)
    load_weights(model, weights)
    config["checkpoint"] = str(weights)
    return model, config


def load_predictor(folder=None):
    """``(model, config)`` of the shipped handwriting prediction model (``graves_tf/pretrained/prediction``),
    as ``run_dir.load_run`` returns them; :class:`PretrainedNotFound` while none is shipped."""
    from graves_tf import experiment

    folder = pathlib.Path(folder or PREDICTION_DIR)
    with open(_require(folder, CONFIG_FILE, "prediction")) as f:
        config = json.load(f)
    if config["spec"]["model"] != "handwriting_predictor":
        raise ValueError(f"{folder} holds a {config['spec']['model']}, not a handwriting_predictor")
    model = experiment.build_model(experiment.ModelSpec(**config["spec"]))
    weights = str(_require(folder, WEIGHTS_FILE, "prediction"))
    load_weights(model, weights)
    config["checkpoint"] = weights
    return model, config


def shipped_names():
    """The shipped models in this copy of graves_tf: the folders of :data:`PRETRAINED_DIR` with a ``weights.npz``."""
    return sorted(p.parent.name for p in pathlib.Path(PRETRAINED_DIR).glob(f"*/{WEIGHTS_FILE}"))


def init_weights(value, spec):
    """The weights file ``train --init_from=value`` starts from, once ``spec`` is found to build that network.

    ``value``: ``pretrained`` (the shipped synthesis model), ``pretrained:NAME`` or ``pretrained/NAME`` (the
    shipped ``graves_tf/pretrained/NAME``: ``prediction``, ``synthesis``, a text model), or the folder of a
    release (``model_config.json`` and ``weights.npz``). None for anything else (a run folder or a
    checkpoint: the trainer reads those itself). ``ValueError`` names the model flags that differ from the
    shipped network's, or the shipped models there are.
    """
    import dataclasses

    if value == "pretrained":
        folder, name = SYNTHESIS_DIR, "synthesis"
    elif value.startswith(("pretrained:", "pretrained/")):
        name = value[len("pretrained") + 1 :].strip("/")
        folder = pathlib.Path(PRETRAINED_DIR) / name
        if not name or not (folder / WEIGHTS_FILE).exists():
            shipped = ", ".join(f"pretrained:{n}" for n in shipped_names()) or "none"
            raise ValueError(f"--init_from={value}: no shipped model {name!r} in {PRETRAINED_DIR}; shipped: {shipped}")
    else:
        folder, name = pathlib.Path(value), None
        if not ((folder / WEIGHTS_FILE).exists() and (folder / CONFIG_FILE).exists()):
            return None
    from graves_tf import experiment

    with open(_require(folder, CONFIG_FILE, name or "released")) as f:
        shipped = experiment.ModelSpec(**json.load(f)["spec"])
    differences = [  # as the models are built: a clip left at its default is the paper's clip
        f"--{key}={given} (shipped: {getattr(shipped, key)})"
        for key, given in dataclasses.asdict(spec).items()
        if experiment._in_force(spec, key) != experiment._in_force(shipped, key)
    ]
    if differences:
        config = {"synthesis": "iam_synthesis_shipped.cfg"}.get(name)
        hint = f" (--flagfile=graves_tf/configs/{config})" if config else ""
        raise ValueError(
            f"--init_from={value} needs the shipped model's network{hint}; these flags differ: " + ", ".join(differences)
        )
    return str(_require(folder, WEIGHTS_FILE, name or "released"))


def list_styles(folder=None):
    """The shipped styles: dicts with ``name``, ``line_id``, ``text``, ``description``, ``strokes``."""
    with open(_require(folder, STYLES_FILE)) as f:
        return json.load(f)["styles"]


def style(name, folder=None):
    """``(offsets, text)`` of a shipped style: ``(T, 3)`` whiteboard-unit offsets and their text."""
    styles = {s["name"]: s for s in list_styles(folder)}
    if name not in styles:
        raise KeyError(f"no style {name!r}; shipped styles: {', '.join(styles)}")
    chosen = styles[name]
    return np.asarray(chosen["strokes"], np.float64), chosen["text"]
