"""`python -m graves_tf.train` end to end on the PTB builder's dummy data: SIGTERM, resume, errors."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from graves_tf import experiment

REPO = pathlib.Path(__file__).resolve().parents[1]
DUMMY_PTB = REPO / "tfds_builders" / "ptb" / "dummy_data" / "manual"


def train_args(tmp_path, *extra):
    return [
        sys.executable, "-m", "graves_tf.train",
        f"--flagfile={experiment.config_path('tiny_text')}",
        f"--data_dir={tmp_path / 'tfds'}", f"--manual_dir={DUMMY_PTB}", f"--model_dir={tmp_path / 'run'}",
        "--batch_size=2", "--segment_length=5", "--eval_every=0", "--noprogress_bar", *extra,
    ]


def _shared_flag(arg):
    return not arg.startswith(("--eval_every", "--noprogress_bar"))


def test_sigterm_saves_and_a_restart_resumes(tmp_path):
    """Also: a second training in the same folder is refused while the first runs."""
    process = subprocess.Popen(
        train_args(tmp_path, "--train_steps=1000000", "--checkpoint_every=1000000"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    events = tmp_path / "run" / "train"
    deadline = time.time() + 240
    while not (events.exists() and any(events.iterdir())) and time.time() < deadline:
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.5)
    time.sleep(4)  # let it take some steps
    second = subprocess.run(train_args(tmp_path, "--train_steps=5"), capture_output=True, text=True, timeout=300)
    assert second.returncode != 0, second.stdout
    assert f"is being trained by another process (pid {process.pid})" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "stopped by signal" in output, output
    saved_step = int(output.split("stopped by signal")[1].split("at step ")[1].split(";")[0])
    assert saved_step > 0
    result = subprocess.run(
        train_args(tmp_path, f"--train_steps={saved_step + 3}"), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert f"resumed from step {saved_step}" in result.stdout
    checkpoints = os.listdir(tmp_path / "run" / "checkpoints")
    assert any(name.startswith(f"ckpt-{saved_step + 3}.") for name in checkpoints), checkpoints
    evaluation = subprocess.run(
        [sys.executable, "-m", "graves_tf.evaluate", *[a for a in train_args(tmp_path)[3:] if _shared_flag(a)],
         "--checkpoint=latest", "--split=train"],
        capture_output=True, text=True, timeout=300,
    )
    assert evaluation.returncode == 0, evaluation.stderr
    assert "bits per symbol" in evaluation.stdout and f"ckpt-{saved_step + 3}" in evaluation.stdout


def test_a_dataset_not_built_names_the_tfds_build_command(tmp_path):
    args = [a for a in train_args(tmp_path, "--train_steps=1") if not a.startswith("--manual_dir")]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "is not built" in result.stderr and "tfds build" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_wrong_manual_dir_is_named(tmp_path):
    args = [a for a in train_args(tmp_path, "--train_steps=1") if not a.startswith("--manual_dir")]
    result = subprocess.run(args + [f"--manual_dir={tmp_path / 'nowhere'}"], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "nowhere" in result.stderr and "Traceback" not in result.stderr


def test_init_from_pretrained_refuses_another_network(tmp_path):
    result = subprocess.run(train_args(tmp_path, "--train_steps=1", "--init_from=pretrained"),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "--model=text_predictor (shipped: handwriting_synthesizer)" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("tool", ["graves_tf.train", "graves_tf.evaluate"])
def test_help_documents_every_flag(tool):
    result = subprocess.run([sys.executable, "-m", tool, "--helpfull"], capture_output=True, text=True, timeout=120)
    text = result.stdout + result.stderr
    for flag in ("--model_dir", "--flagfile", "--data_dir", "--manual_dir", "--learning_rate", "--weight_noise"):
        assert flag in text, flag
    if tool == "graves_tf.train":
        for flag in ("--train_steps", "--strategy", "--init_from", "--checkpoint_every", "--[no]adaptive_weight_noise"):
            assert flag in text, flag
    else:
        for flag in ("--[no]dynamic", "--split", "--checkpoint"):
            assert flag in text, flag


def logged_learning_rates(run):
    from graves_tf import progress

    return {step: value for step, (_, value) in progress.logged_scalars(str(run), "learning_rate").items()}


def test_learning_rate_drops_are_logged_and_malformed_ones_refused(tmp_path):
    result = subprocess.run(
        train_args(tmp_path, "--train_steps=5", "--log_every=1", "--learning_rate_drops=3:1e-5"),
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "(drops, updates:rate: 3:1e-5)" in result.stdout
    rates = logged_learning_rates(tmp_path / "run")  # the rate each logged update was made with
    assert rates == pytest.approx({1: 3e-3, 2: 3e-3, 3: 3e-3, 4: 1e-5, 5: 1e-5})

    refused = subprocess.run(
        train_args(tmp_path, "--train_steps=6", "--learning_rate_drops=3:1e-5,2:1e-6"),
        capture_output=True, text=True, timeout=300,
    )
    assert refused.returncode != 0
    assert "updates must be positive and increasing" in refused.stderr and "Traceback" not in refused.stderr
