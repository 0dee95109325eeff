"""`python -m graves_tf.write --unconditional`: refusals, and one seed's strokes from the command line,
the Python API and the SavedModel."""

import json
import os
import pathlib
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from absl import flags  # noqa: E402

from graves_tf import experiment, unconditional, write  # noqa: E402
from graves_tf.cli import write as write_cli  # noqa: E402  (defines write's flags)
from run_folders import make_handwriting_run  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SPEC = experiment.ModelSpec(model="handwriting_predictor", dataset="iam_ondb", num_layers=2, units=16, num_mixtures=3)
MEAN, STD = [8.0, 0.1], [40.0, 37.0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return make_handwriting_run(tmp_path_factory.mktemp("run"), SPEC, MEAN, STD, seed=4)


def write_in_process(*args):
    """``main`` of the write program with these command-line arguments (flags parsed as the program does)."""
    argv = flags.FLAGS(["write", *args])
    try:
        return write_cli.main(argv)
    finally:
        flags.FLAGS.unparse_flags()


@pytest.mark.parametrize(
    "args, message",
    [
        (["Hello world"], "--unconditional writes without text: drop the text 'Hello world'"),
        (["--num_points=0"], "--num_points must be a whole number of pen points from 1 to 20000, got 0"),
        (["--num_points=-7"], "--num_points must be a whole number of pen points from 1 to 20000, got -7"),
        (["--bias=nan"], "--bias must be a finite number >= 0"),
        (["--bias=-1"], "--bias must be a finite number >= 0"),
        (["--num_samples=0"], "--num_samples must be at least 1"),
        (["--prime_text=hi"], "--prime_text: with --unconditional"),
        (["--style=rounded", "--prime_id=a01-000u-01"], "give one of --style, --prime_id and --prime_strokes"),
        (["--plot=attention"], "--plot=attention needs text"),
    ],
)
def test_bad_input_is_refused_in_one_line(tiny_run, tmp_path, args, message):
    with pytest.raises(SystemExit) as refused:
        write_in_process("--unconditional", f"--model_dir={tiny_run}", f"-o={tmp_path / 'x.svg'}", *args)
    assert message in str(refused.value)
    assert not (tmp_path / "x.svg").exists()


def test_a_synthesis_run_is_refused_and_the_missing_shipped_model_says_what_to_do(tmp_path, monkeypatch):
    synthesis = experiment.ModelSpec(model="handwriting_synthesizer", dataset="iam_ondb", num_layers=1, units=8,
                                     num_mixtures=2, num_window_gaussians=2)
    folder = make_handwriting_run(tmp_path / "synthesis", synthesis, MEAN, STD)
    with pytest.raises(SystemExit, match="holds a handwriting_synthesizer, not a handwriting_predictor"):
        write_in_process("--unconditional", f"--model_dir={folder}", f"-o={tmp_path / 'x.svg'}")
    from graves_tf import pretrained

    monkeypatch.setattr(pretrained, "PREDICTION_DIR", tmp_path / "no_release")
    with pytest.raises(SystemExit, match="no shipped prediction model; pass --model_dir"):
        write_in_process("--unconditional", f"-o={tmp_path / 'x.svg'}")


def test_the_default_bias_is_the_papers_and_a_prime_is_continued(tiny_run, tmp_path, capsys):
    trace = [[[0, 0], [5, 8], [10, 3], [15, 9]], [[30, 0], [30, 10], [34, 12]]]
    (tmp_path / "me.json").write_text(json.dumps({"strokes": trace}))
    write_in_process("--unconditional", f"--model_dir={tiny_run}", "--num_points=20", "--seed=3",
                     f"--prime_strokes={tmp_path / 'me.json'}", f"--strokes_output={tmp_path / 's.json'}",
                     "--plot=density", f"-o={tmp_path / 'me.png'}")
    printed = capsys.readouterr().out
    assert f"(bias 0, seed 3, continuing {tmp_path / 'me.json'})" in printed
    assert (tmp_path / "me.png").exists() and (tmp_path / "me.density.png").exists()
    model, config, _ = unconditional.load_predictor(tiny_run)
    prime = write.load_prime_strokes(str(tmp_path / "me.json"), STD)
    (expected,) = unconditional.sample(model, config, 20, 0.0, 3, prime=prime)
    np.testing.assert_array_equal(np.asarray(json.loads((tmp_path / "s.json").read_text())["samples"][0]), expected)


@pytest.mark.slow  # two fresh processes (write, then the SavedModel without graves_tf): 93 s with training running
def test_one_seed_gives_the_same_strokes_from_the_command_line_the_api_and_the_saved_model(tiny_run, tmp_path):
    from graves_tf.export.prediction import export_prediction
    from export_helpers import run_without_graves_tf

    result = subprocess.run(
        [sys.executable, "-m", "graves_tf.write", "--unconditional", f"--model_dir={tiny_run}", "--num_points=40",
         "--num_samples=2", "--bias=0.5", "--seed=11", f"--strokes_output={tmp_path / 'cli.json'}",
         f"-o={tmp_path / 'cli.svg'}"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wrote 2 sample(s) of 40 points (bias 0.5, seed 11)" in result.stdout
    from_cli = [np.asarray(s) for s in json.loads((tmp_path / "cli.json").read_text())["samples"]]

    model, config, _ = unconditional.load_predictor(tiny_run)
    from_api = unconditional.sample(model, config, 40, 0.5, 11, num_samples=2)
    export_prediction(model, config, str(tmp_path / "saved"))
    served = run_without_graves_tf(tmp_path / "saved", f"""
        out = model.signatures["serving_default"](bias=tf.constant([0.5, 0.5]), seed=tf.constant(11, tf.int64),
                                                  num_steps=tf.constant(40))
        np.save({str(tmp_path / 'saved.npy')!r}, out["strokes"].numpy())
    """, tmp_path)
    assert served.returncode == 0, served.stderr[-3000:]
    from_saved_model = np.load(tmp_path / "saved.npy")
    for row in range(2):
        np.testing.assert_allclose(from_cli[row], from_api[row], rtol=1e-6, atol=1e-6)  # the same code, another process
        np.testing.assert_allclose(from_saved_model[row], from_api[row], rtol=1e-5, atol=1e-3)
        np.testing.assert_array_equal(from_saved_model[row][:, 2], from_api[row][:, 2])  # the same pen lifts


def test_a_shipped_style_is_continued_and_the_bias_rows_are_drawn(tiny_run, tmp_path, capsys):
    style = write.DEFAULT_STYLE
    write_in_process("--unconditional", f"--model_dir={tiny_run}", "--num_points=10", f"--style={style}",
                     "--plot=biases", "--bias=0.5", f"-o={tmp_path / 'styled.svg'}")
    printed = capsys.readouterr().out
    assert f"(bias 0.5, seed 0, continuing the style '{style}')" in printed
    assert "samples at biases 0, 0.5, 1, 2" in printed and (tmp_path / "styled.biases.png").exists()
    with pytest.raises(SystemExit, match="no style 'nope'"):
        write_in_process("--unconditional", f"--model_dir={tiny_run}", "--style=nope", f"-o={tmp_path / 'x.svg'}")
