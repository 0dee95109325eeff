"""`python -m graves_tf.average_checkpoints` and `train --keep_every`: averaging a run's checkpoints."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf import average_checkpoints, experiment, run_dir  # noqa: E402
from run_folders import make_handwriting_run  # noqa: E402

SPEC = experiment.ModelSpec(
    model="handwriting_synthesizer", dataset="iam_ondb", num_layers=1, units=8, num_mixtures=2,
    num_window_gaussians=2,
)


@pytest.fixture()
def run_with_two_checkpoints(tmp_path):
    """A run whose rolling folder holds ckpt-1 (step 10) and whose kept folder holds ckpt-20 (other weights)."""
    folder = make_handwriting_run(tmp_path / "run", SPEC, [8.0, 0.1], [40.0, 37.0], seed=0, step=10)
    model, _ = run_dir.load_run(folder, "latest")
    first = [w.numpy() for w in model.weights]
    rng = np.random.default_rng(0)
    for w in model.weights:
        w.assign(w.numpy() + rng.normal(size=w.shape).astype(w.numpy().dtype))
    second = [w.numpy() for w in model.weights]
    tf.train.Checkpoint(model=model, step=tf.Variable(20, dtype=tf.int64)).write(
        os.path.join(folder, run_dir.KEPT_FOLDER, "ckpt-20")
    )
    return folder, first, second


def test_the_average_holds_the_mean_weights_and_the_steps_it_averages(run_with_two_checkpoints):
    folder, first, second = run_with_two_checkpoints
    path = average_checkpoints.average_checkpoints(folder, ["ckpt-1", "ckpt-20"])
    assert path == os.path.join(folder, "averaged", "ckpt-10-20")
    model, config = run_dir.load_run(folder, path)
    for weight, a, b in zip(model.weights, first, second):
        np.testing.assert_allclose(weight.numpy(), (a + b) / 2, rtol=1e-6, atol=1e-6)
    assert run_dir.averaged_steps(path) == [10, 20]
    assert int(tf.train.load_variable(path, "step/.ATTRIBUTES/VARIABLE_VALUE")) == 20
    assert run_dir.averaged_steps(os.path.join(folder, "checkpoints", "ckpt-1")) is None


def test_the_command_refuses_a_missing_checkpoint_and_a_single_one(run_with_two_checkpoints):
    folder, _, _ = run_with_two_checkpoints
    command = [sys.executable, "-m", "graves_tf.average_checkpoints", f"--model_dir={folder}"]
    missing = subprocess.run([*command, "--checkpoints=ckpt-1,ckpt-30"], capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0 and "no checkpoint 'ckpt-30'" in missing.stderr and "--keep_every" in missing.stderr
    single = subprocess.run([*command, "--checkpoints=ckpt-1"], capture_output=True, text=True, timeout=300)
    assert single.returncode != 0 and "two or more checkpoints" in single.stderr


def test_write_draws_with_an_averaged_checkpoint(run_with_two_checkpoints, tmp_path):
    folder, _, _ = run_with_two_checkpoints
    output = tmp_path / "avg"
    result = subprocess.run(
        [sys.executable, "-m", "graves_tf.average_checkpoints", f"--model_dir={folder}",
         "--checkpoints=ckpt-1,ckpt-20", f"-o={output}"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"--checkpoint={output}" in result.stdout
    svg = tmp_path / "hi.svg"
    result = subprocess.run(
        [sys.executable, "-m", "graves_tf.write", "hi", f"--model_dir={folder}", f"--checkpoint={output}",
         f"-o={svg}", "--steps_per_character=5"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert svg.read_text().startswith("<")
