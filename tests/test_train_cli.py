"""`python -m graves_tf.train --dry_run` and the experiment flagfiles."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from absl import flags  # noqa: E402

from graves_tf import experiment  # noqa: E402
from graves_tf.cli import train  # noqa: E402,F401  (the program defines the experiment flags and --dry_run)
from graves_tf.models import count_weights  # noqa: E402



def lstm_layer(inputs, cells):
    """Eqs. 7-11: W_x* (inputs x cells), W_h* (cells x cells) and b_* of four gates, three diagonal peepholes."""
    return 4 * cells * (inputs + cells + 1) + 3 * cells


def skip_stack(layers, cells, inputs, window=0):
    """Eqs. 1-2 (52-53): layer 1 reads x (and the window), layers 2..N read x, the layer below (and the window)."""
    return lstm_layer(inputs + window, cells) + (layers - 1) * lstm_layer(inputs + cells + window, cells)


def output_layer(layers, cells, outputs):
    """Eq. 3 (and 17-18, 52-53): every hidden layer feeds the output: (N * cells + 1) x outputs."""
    return (layers * cells + 1) * outputs


MIXTURE = 6 * 20 + 1  # eq. 17: 20 bivariate Gaussians (weight, 2 means, 2 stds, correlation) and end of stroke
# Counted by hand from the paper's equations and sizes (sections 3.1, 4.2, 5.2; not from the code).
HAND_COUNTED = {
    "iam_prediction_3x400": skip_stack(3, 400, 3) + output_layer(3, 400, MIXTURE),
    "iam_prediction_1x900": skip_stack(1, 900, 3) + output_layer(1, 900, MIXTURE),
    # the window: 57 one-hot characters, 10 Gaussians of 3 parameters from layer 1 (eq. 48)
    "iam_synthesis": skip_stack(3, 400, 3, window=57) + (400 + 1) * 3 * 10 + output_layer(3, 400, MIXTURE),
    "ptb_char": skip_stack(1, 1000, 50) + output_layer(1, 1000, 50),  # 49 symbols and the end of a line
    "ptb_word": skip_stack(1, 1000, 10000) + output_layer(1, 1000, 10000),
    "enwik8": skip_stack(7, 700, 205) + output_layer(7, 700, 205),
}
# What the paper reports, and the rounding it reports it with ("approximately 3.4M weights").
PAPER_WEIGHTS = {
    "iam_prediction_3x400": (3.4e6, 0.05e6),
    "iam_prediction_1x900": (3.4e6, 0.05e6),
    "iam_synthesis": (3.7e6, 0.05e6),
    "ptb_char": (4.3e6, 0.05e6),
    "ptb_word": (54e6, 0.5e6),
}
# enwik8: 7 full 700-cell layers with skip connections cannot have the paper's 21.3M.
ENWIK8_WEIGHTS = 30_537_005


def test_the_hand_counts_are_the_papers_numbers_as_it_rounds_them():
    assert HAND_COUNTED["iam_synthesis"] == 3_653_751 and HAND_COUNTED["ptb_char"] == 4_257_050
    for name, (paper, rounding) in PAPER_WEIGHTS.items():
        assert abs(HAND_COUNTED[name] - paper) <= rounding, (name, HAND_COUNTED[name], paper)
    assert HAND_COUNTED["enwik8"] == ENWIK8_WEIGHTS


def spec_from_flagfile(*args):
    flag_values = flags.FLAGS
    flag_values.unparse_flags()
    flag_values(["train", *args])
    try:
        return experiment.model_spec_from_flags(flag_values)
    finally:
        flag_values.unparse_flags()


@pytest.mark.parametrize("name", sorted(PAPER_WEIGHTS))
def test_paper_configs_have_the_papers_weight_count(name):
    """The built model has exactly the weights counted by hand, which are the paper's number as it rounds it."""
    spec = spec_from_flagfile(f"--flagfile={experiment.config_path(name)}")
    assert count_weights(experiment.build_model(spec)) == HAND_COUNTED[name]


def test_enwik8_config_counts_and_explains_its_weights():
    path = experiment.config_path("enwik8")
    spec = spec_from_flagfile(f"--flagfile={path}")
    assert (spec.num_layers, spec.units, spec.vocab_size) == (7, 700, 205)
    assert count_weights(experiment.build_model(spec)) == ENWIK8_WEIGHTS
    assert "30,537,005" in path.read_text() and "21.3M" in path.read_text()


def test_every_experiment_of_the_paper_has_a_flagfile():
    names = {p.stem for p in experiment.CONFIG_DIR.glob("*.cfg")}
    assert {
        "ptb_char", "ptb_char_weight_noise", "ptb_char_adaptive_noise",
        "ptb_word", "ptb_word_weight_noise", "enwik8",
        "iam_prediction_3x400", "iam_prediction_3x400_adaptive_noise", "iam_prediction_1x900",
        "iam_synthesis", "iam_synthesis_adaptive_noise",
        "tiny_text", "tiny_handwriting_prediction", "tiny_synthesis",
    } <= names
    for name in names:  # every shipped file parses and validates (tiny ones are also built)
        spec = spec_from_flagfile(f"--flagfile={experiment.config_path(name)}")
        if name.startswith("tiny"):
            assert count_weights(experiment.build_model(spec)) < 100_000


def run_train(*args):
    return subprocess.run(
        [sys.executable, "-m", "graves_tf.train", *args], capture_output=True, text=True, timeout=300
    )


def test_dry_run_prints_summary_and_ends_with_the_weight_count():
    result = run_train(f"--flagfile={experiment.config_path('iam_synthesis')}", "--dry_run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "weights: 3653751"
    assert "handwriting_synthesizer" in result.stdout and "Total params" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model=text_predictor"], "model text_predictor models text but dataset iam_ondb is handwriting"),
        (["--model=text_predictor", "--dataset=ptb_char", "--vocab_size=49"], "vocab_size=49 does not match dataset ptb_char"),
        (["--units=0"], "units must be a positive integer"),
        (["--num_window_gaussians=-2"], "num_window_gaussians must be a positive integer"),
        (["--lstm_clip=-1"], "lstm_clip must be >= 0"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(args, message):
    with pytest.raises(ValueError, match=message):
        spec_from_flagfile(*args)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model=handwriting_predictor", "--dataset=ptb_word"], "bad configuration: model handwriting_predictor models handwriting"),
        (["--model=lstm"], "value should be one of"),
        (["--flagfile=does/not/exist.cfg"], "does/not/exist.cfg"),
    ],
)
def test_bad_configuration_on_the_command_line_exits_with_the_message(args, message):
    result = run_train(*args, "--dry_run")
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_config_path_names_the_shipped_configs_when_unknown():
    with pytest.raises(FileNotFoundError, match="iam_synthesis"):
        experiment.config_path("no_such_experiment")


def test_every_command_line_tool_can_share_one_process():
    """Their absl flags do not collide (tests and notebooks import several)."""
    code = (
        "import importlib\n"
        "for name in ['graves_tf.cli.train', 'graves_tf.cli.evaluate', 'graves_tf.cli.write', 'graves_tf.cli.export',"
        " 'graves_tf.cli.serve', 'graves_tf.cli.gallery', 'graves_tf.cli.average_checkpoints',"
        " 'benchmarks.input_pipeline', 'benchmarks.sampling']:\n"
        "    importlib.import_module(name)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize("module", ["graves_tf.cli.evaluate", "graves_tf.cli.export"])
def test_every_flagfile_is_read_by_the_tools_that_take_it(module):
    """evaluate and export take the training flagfile: every flag in a config must be one they know."""
    check = (
        f"import {module}\n"
        "from absl import flags\n"
        "from graves_tf import experiment\n"
        "for path in sorted(experiment.CONFIG_DIR.glob('*.cfg')):\n"
        "    flags.FLAGS.unparse_flags()\n"
        "    flags.FLAGS(['tool', f'--flagfile={path}'])\n"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
