"""Experiment settings shared by the command-line tools: flag groups, validation, model building.

Every experiment of the paper has a flagfile in ``graves_tf/configs/``; the
flag groups here are what those files set: :func:`define_flags` and its parts,
which define nothing until a program calls them (the programs are in
``graves_tf/cli/``). :func:`build_model` is the flag-free entry point (it
validates and raises ``ValueError`` with a message that names the offending
setting).
"""

import dataclasses
import functools
import pathlib

from absl import flags

from graves_tf import alphabet as alphabet_lib
from graves_tf.models import HandwritingPredictor, HandwritingSynthesizer, TextPredictor

MODELS = {
    "text_predictor": TextPredictor,
    "handwriting_predictor": HandwritingPredictor,
    "handwriting_synthesizer": HandwritingSynthesizer,
}
ALPHABETS = alphabet_lib.ALPHABETS


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    kind: str  # "text" or "handwriting"
    num_classes: int = 0  # text only: the number of input/output classes
    description: str = ""


DATASETS = {
    "ptb_char": DatasetInfo("text", 50, "Penn Treebank characters: 49 symbols plus newline"),
    "ptb_word": DatasetInfo("text", 10000, "Penn Treebank words: 9,999 words plus <eos>"),
    "enwik8": DatasetInfo("text", 205, "Hutter prize bytes: the 205 byte values of enwik8"),
    "iam_ondb": DatasetInfo("handwriting", 0, "IAM On-Line Handwriting Database"),
}
MODEL_KIND = {
    "text_predictor": "text",
    "handwriting_predictor": "handwriting",
    "handwriting_synthesizer": "handwriting",
}
PAPER_CLIPS = {  # (LSTM pre-activation clip, output clip), sections 3.1 and 4.2
    "text": (1.0, None),
    "handwriting": (10.0, 100.0),
}
CONFIG_DIR = pathlib.Path(__file__).parent / "configs"


class _Definer:
    """``flags.DEFINE_*`` bound to one ``FlagValues`` (the flag groups below define into the one they are given)."""

    def __init__(self, flag_values):
        self._flag_values = flag_values

    def __getattr__(self, name):
        return functools.partial(getattr(flags, name), flag_values=self._flag_values)


def define_model_flags(flag_values=flags.FLAGS):
    """The model flags: what a :class:`ModelSpec` holds. Defining a group twice is a no-op."""
    if "model" in flag_values:
        return
    define = _Definer(flag_values)
    define.DEFINE_enum("model", "handwriting_synthesizer", list(MODELS), "Which network of the paper.")
    define.DEFINE_enum("dataset", "iam_ondb", list(DATASETS), "Training data.")
    define.DEFINE_integer("num_layers", 3, "N, the number of stacked LSTM layers.")
    define.DEFINE_integer("units", 400, "LSTM cells per layer.")
    define.DEFINE_integer(
        "vocab_size", None, "Text models: input/output classes (default: the dataset's count)."
    )
    define.DEFINE_integer("num_mixtures", 20, "Handwriting models: M bivariate Gaussians (eq. 16).")
    define.DEFINE_integer(
        "num_window_gaussians", 10, "Synthesis: K Gaussian functions in the soft window (eq. 46)."
    )
    define.DEFINE_float(
        "initial_kappa_step",
        None,
        "Synthesis: the untrained window's stride, characters per pen point (eq. 51 bias "
        "log(step)); the paper does not say; default: bias -1.",
    )
    define.DEFINE_integer(
        "point_stride",
        1,
        "Handwriting: keep every this-many-th pen position of each stroke (and every pen-up); "
        "1 = the paper's full sampling rate.",
    )
    define.DEFINE_enum(
        "alphabet",
        "paper",
        list(ALPHABETS),
        "Synthesis: the character set of the text: paper (57 symbols, section 5.2) or full (83).",
    )
    define.DEFINE_float(
        "lstm_clip",
        None,
        "Clip of dL/d(LSTM pre-activations); default: the paper's (1 text, 10 handwriting); 0 = off.",
    )
    define.DEFINE_float(
        "output_clip",
        None,
        "Clip of dL/d(y_hat); default: the paper's (none for text, 100 handwriting); 0 = off.",
    )


def define_training_flags(flag_values=flags.FLAGS):
    """The optimiser and training-loop flags of the flagfiles (consumed by the training loop)."""
    if "optimizer" in flag_values:
        return
    define = _Definer(flag_values)
    define.DEFINE_enum(
        "optimizer",
        "rmsprop_graves",
        ["rmsprop_graves", "sgd", "adam"],
        "rmsprop_graves: eqs. 38-45; sgd: SGD with momentum (text experiments); adam.",
    )
    define.DEFINE_float("learning_rate", 1e-4, "Learning rate (paper: 1e-4 everywhere).")
    define.DEFINE_list(
        "learning_rate_drops",
        [],
        "UPDATES:RATE pairs, e.g. 4332:5e-4,4773:2.5e-4: after UPDATES updates the learning rate is RATE.",
    )
    define.DEFINE_integer("train_steps", 10000, "Train until this many updates in total.")
    define.DEFINE_integer("eval_every", 200, "Validate every this many updates (0: never).")
    define.DEFINE_integer(
        "plateau_patience",
        0,
        "Multiply the learning rate by --plateau_factor after this many validations in a row without a "
        "better validation loss (again after each further such run); 0 = off.",
    )
    define.DEFINE_float("plateau_factor", 0.5, "What a validation plateau multiplies the learning rate by.")
    define.DEFINE_integer(
        "early_stopping_patience",
        0,
        "Stop, converged, after this many validations in a row without a better validation loss "
        "(the best checkpoint is in MODEL_DIR/best; running the command again does not train on); 0 = off.",
    )
    define.DEFINE_float("momentum", 0.9, "Momentum (paper: 0.9; 0.99 for Penn Treebank).")
    define.DEFINE_integer("batch_size", 32, "Sequences per update (the paper does not state one).")
    define.DEFINE_integer(
        "segment_length",
        0,
        "Text: length of the truncated-BPTT segments; 0 = one line (sentence) per sequence.",
    )
    define.DEFINE_integer(
        "reset_state_every", 1, "Text: carry the state across this many consecutive segments."
    )
    define.DEFINE_float("weight_noise", 0.0, "Std of fixed Gaussian weight noise (paper: 0.075); 0 = off.")
    define.DEFINE_bool(
        "adaptive_weight_noise", False, "Adaptive weight noise (Graves 2011) with an MDL loss."
    )
    define.DEFINE_float(
        "adaptive_noise_init_std", 0.075, "Initial posterior std of adaptive weight noise."
    )


def define_run_flags(flag_values=flags.FLAGS):
    """The run flags shared by train, evaluate, write and export: --model_dir, --checkpoint, --output, --seed, ..."""
    if "model_dir" in flag_values:
        return
    define = _Definer(flag_values)
    define.DEFINE_string(
        "model_dir", None, "The training run: where train writes checkpoints and logs, where the other tools read them."
    )
    define.DEFINE_string(
        "checkpoint", "best", "Which checkpoint to read: best (lowest validation loss), latest, or a path."
    )
    define.DEFINE_string(
        "output", None, "Where to write: write's .svg/.png file, export's SavedModel folder.", short_name="o"
    )

    define.DEFINE_integer("seed", 0, "Random seed (train: weights, data order, noise; write: the samples).")
    define.DEFINE_bool(
        "verbose", False, "Also print TensorFlow's C++ start-up lines (oneDNN, CUDA probing), hidden otherwise."
    )
    define.DEFINE_enum(
        "precision",
        "float32",
        ["float32", "bfloat16"],
        "Matmul precision (train, evaluate, write): bfloat16 multiplies in bfloat16 (CPUs with AVX512_BF16 or AMX; refused "
        "elsewhere) with the state, window, loss and weights in float32.",
    )


def define_data_flags(flag_values=flags.FLAGS):
    """Where the data is and how it is cut: --data_dir, --manual_dir, --hutter_config, --max_length,
    --line_preparation."""
    if "data_dir" in flag_values:
        return
    define = _Definer(flag_values)
    define.DEFINE_string(
        "data_dir", None, "TFDS data dir holding the built datasets (default ~/tensorflow_datasets)."
    )
    define.DEFINE_string(
        "manual_dir", None, "Folder with the raw data files; the dataset is built from it if missing."
    )
    define.DEFINE_enum(
        "hutter_config",
        "paper",
        ["paper", "standard", "prefix"],
        "enwik8 split: paper (96M/4M), standard (90M/5M/5M), prefix (a shorter file; not the benchmark).",
    )
    define.DEFINE_integer(
        "max_length", None, "Handwriting: cut lines to this many points (smoke runs); default: keep all."
    )
    define.DEFINE_list(
        "line_preparation", [],
        "Handwriting: prepare every line before training on it: straighten (rotate its baseline level), "
        "smooth (7-point cubic Savitzky-Golay per stroke), in the order given; default none (the paper's "
        "data). Validation during training reads lines prepared alike; evaluate reads them as they are.",
    )


def define_flags(flag_values=flags.FLAGS):
    """Every flag group above: what a program that reads the experiment flagfiles
    (``graves_tf/configs/*.cfg``) defines, as train, evaluate, write and export do."""
    define_model_flags(flag_values)
    define_training_flags(flag_values)
    define_run_flags(flag_values)
    define_data_flags(flag_values)


def _config_flags():
    """A private ``FlagValues`` holding every experiment flag, to read the shipped flagfiles with."""
    global _CONFIG_FLAGS
    if _CONFIG_FLAGS is None:
        _CONFIG_FLAGS = flags.FlagValues()
        define_flags(_CONFIG_FLAGS)
    return _CONFIG_FLAGS


_CONFIG_FLAGS = None


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What :func:`build_model` needs; validated on construction."""

    model: str = "handwriting_synthesizer"
    dataset: str = "iam_ondb"
    num_layers: int = 3
    units: int = 400
    vocab_size: int | None = None
    num_mixtures: int = 20
    num_window_gaussians: int = 10
    alphabet: str = "paper"
    lstm_clip: float | None = None
    output_clip: float | None = None
    initial_kappa_step: float | None = None
    point_stride: int = 1

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {sorted(MODELS)}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {sorted(DATASETS)}")
        kind = MODEL_KIND[self.model]
        data = DATASETS[self.dataset]
        if data.kind != kind:
            raise ValueError(
                f"model {self.model} models {kind} but dataset {self.dataset} is {data.kind}"
            )
        for name in ("num_layers", "units", "num_mixtures", "num_window_gaussians", "point_stride"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if kind == "text" and self.vocab_size is not None and self.vocab_size != data.num_classes:
            raise ValueError(
                f"vocab_size={self.vocab_size} does not match dataset {self.dataset}, which has "
                f"{data.num_classes} classes ({data.description}); drop --vocab_size or set it "
                f"to {data.num_classes}"
            )
        if self.initial_kappa_step is not None and not self.initial_kappa_step > 0:
            raise ValueError(f"initial_kappa_step must be > 0, got {self.initial_kappa_step}")
        if self.point_stride != 1 and kind != "handwriting":
            raise ValueError(f"point_stride applies to handwriting data, not {self.dataset}")
        if self.initial_kappa_step is not None and self.model != "handwriting_synthesizer":
            raise ValueError("initial_kappa_step applies to handwriting_synthesizer only")
        if self.alphabet not in ALPHABETS:
            raise ValueError(f"unknown alphabet {self.alphabet!r}; choose one of {sorted(ALPHABETS)}")
        for name in ("lstm_clip", "output_clip"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0 (0 turns clipping off), got {value}")

    @property
    def kind(self):
        return MODEL_KIND[self.model]

    def clips(self):
        """The (lstm_clip, output_clip) in force: the paper's defaults, 0 meaning off."""
        defaults = PAPER_CLIPS[self.kind]
        chosen = []
        for value, default in zip((self.lstm_clip, self.output_clip), defaults):
            value = default if value is None else value
            chosen.append(None if not value else float(value))
        return tuple(chosen)


def build_model(spec):
    """Builds the Keras model a :class:`ModelSpec` describes."""
    lstm_clip, output_clip = spec.clips()
    common = dict(units=spec.units, num_layers=spec.num_layers, lstm_clip=lstm_clip, output_clip=output_clip)
    if spec.model == "text_predictor":
        vocab = spec.vocab_size or DATASETS[spec.dataset].num_classes
        return TextPredictor(vocab, **common)
    if spec.model == "handwriting_predictor":
        return HandwritingPredictor(num_mixtures=spec.num_mixtures, **common)
    return HandwritingSynthesizer(
        alphabet_size=len(ALPHABETS[spec.alphabet]),
        num_mixtures=spec.num_mixtures,
        num_window_gaussians=spec.num_window_gaussians,
        initial_kappa_step=spec.initial_kappa_step,
        **common,
    )


def set_matmul_precision(model, precision):
    """Gives ``model`` the ``--precision`` of train, evaluate and write (``float32`` or ``bfloat16``).

    Raises ``ValueError`` (one line) for bfloat16 on a CPU without bfloat16 arithmetic; each program reports
    it its own way.
    """
    from graves_tf import machine
    from graves_tf.layers import precision as precision_lib

    if precision == "bfloat16":
        machine.check_bfloat16("--precision=bfloat16")
    model.matmul_precision = precision_lib.check_precision(precision)


def model_spec_from_flags(flag_values=flags.FLAGS):
    fields = {f.name for f in dataclasses.fields(ModelSpec)}
    return ModelSpec(**{name: flag_values[name].value for name in fields})


def config_settings(name, flag_values=None):
    """The settings of a shipped flagfile as ``{flag: value}``, without touching the flags' values
    (read with ``flag_values``, by default a private set of the experiment flags)."""
    flag_values = _config_flags() if flag_values is None else flag_values
    args = flag_values.read_flags_from_files([f"--flagfile={config_path(name)}"], force_gnu=False)
    settings = {}
    for arg in args:
        key, _, text = arg[2:].partition("=")
        if not text and key not in flag_values and key.startswith("no"):
            settings[key[2:]] = False
        elif not text:
            settings[key] = True
        else:
            settings[key] = flag_values[key].parser.parse(text)
    return settings


def spec_from_config(name, flag_values=None):
    """The :class:`ModelSpec` of a shipped flagfile."""
    settings = config_settings(name, flag_values)
    fields = {f.name for f in dataclasses.fields(ModelSpec)}
    return ModelSpec(**{key: value for key, value in settings.items() if key in fields})


def config_path(name):
    """Path of a shipped flagfile by name (``"iam_synthesis"`` or ``"iam_synthesis.cfg"``)."""
    path = CONFIG_DIR / (name if name.endswith(".cfg") else name + ".cfg")
    if not path.exists():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.cfg"))
        raise FileNotFoundError(f"no config {name!r}; shipped configs: {known}")
    return path


def _in_force(spec, name):
    """A spec field as the built model sees it: the clips and the vocabulary with their defaults filled in."""
    if name in ("lstm_clip", "output_clip"):
        return spec.clips()[0 if name == "lstm_clip" else 1]
    if name == "vocab_size" and spec.kind == "text":
        return spec.vocab_size or DATASETS[spec.dataset].num_classes
    return getattr(spec, name)


def spec_conflicts(saved, spec, names=None):
    """``--flag=value (the run's: value)`` for each field of ``names`` (default: all) where ``spec`` differs from ``saved``."""
    names = names if names is not None else [f.name for f in dataclasses.fields(ModelSpec)]
    conflicts = []
    for name in names:
        try:
            differs = _in_force(spec, name) != _in_force(saved, name)
        except (KeyError, ValueError):
            differs = getattr(spec, name) != getattr(saved, name)
        if differs:
            conflicts.append(f"--{name}={getattr(spec, name)} (the run's: {getattr(saved, name)})")
    return conflicts


def read_run_spec(model_dir):
    """The :class:`ModelSpec` in ``MODEL_DIR/model_config.json``, or None where the folder has none."""
    import json
    import os

    import tensorflow as tf

    path = os.path.join(model_dir, "model_config.json")  # run_dir.CONFIG_FILE
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return ModelSpec(**json.load(f)["spec"])


def spec_of_run(saved, where, flag_values=flags.FLAGS):
    """``saved`` (a run's :class:`ModelSpec` or its dict), after checking the model flags given on the command
    line (or in a flagfile) agree with it; ``ValueError`` naming each one that contradicts it."""
    if isinstance(saved, dict):
        saved = ModelSpec(**saved)
    given = [f.name for f in dataclasses.fields(ModelSpec) if flag_values[f.name].present]
    if not given:
        return saved
    asked = dataclasses.replace(saved, **{name: flag_values[name].value for name in given})
    conflicts = spec_conflicts(saved, asked, given)
    if conflicts:
        raise ValueError(
            f"{where} was trained with another configuration (its model_config.json); these flags contradict it: "
            + ", ".join(conflicts) + "; drop them (the run's configuration is read from the folder)"
        )
    return saved
