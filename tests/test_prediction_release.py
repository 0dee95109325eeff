"""Releasing a prediction run (graves_tf/pretrained/prediction's format), loading it, and training on from it."""

import json
import os
import pathlib
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from graves_tf import experiment, pretrained, run_dir, unconditional  # noqa: E402
from run_folders import make_handwriting_run  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
DUMMY_IAM = REPO / "tfds_builders" / "iam_ondb" / "dummy_data"
# The network of tiny_handwriting_prediction.cfg, so that train --flagfile=... can start from its release.
SPEC = experiment.ModelSpec(model="handwriting_predictor", dataset="iam_ondb", num_layers=2, units=32, num_mixtures=5)


@pytest.fixture(scope="module")
def dummy_data(tmp_path_factory):
    from graves_tf.data import datasets

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    datasets.prepare_builder("iam_ondb", data_dir, str(DUMMY_IAM))
    return data_dir


@pytest.fixture(scope="module")
def release(tmp_path_factory, dummy_data):
    root = tmp_path_factory.mktemp("prediction_release")
    run = make_handwriting_run(root / "prediction_run", SPEC, [8.0, 0.1], [40.0, 37.0], seed=3, step=42)
    folder = root / "pretrained" / "prediction"
    result = subprocess.run(
        [sys.executable, "-m", "graves_tf.pretrained.release", f"--model_dir={run}", f"--data_dir={dummy_data}",
         f"--release_dir={folder}"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "released step 42" in result.stdout
    return run, folder


def test_a_prediction_release_holds_float16_weights_and_both_validation_losses(release):
    run, folder = release
    assert sorted(p.name for p in folder.iterdir()) == ["model_config.json", "weights.npz"]  # no styles
    config = json.loads((folder / "model_config.json").read_text())
    assert config["spec"]["model"] == "handwriting_predictor" and config["release"]["step"] == 42
    float32, float16 = config["release"]["validation"]["float32"], config["release"]["validation"]["float16"]
    assert np.isfinite(float32["loss"]) and abs(float16["loss"] - float32["loss"]) < 0.01 * abs(float32["loss"]) + 0.5
    assert config["release"]["training"]["steps"] == 42  # how far it trained, as the results table reads it
    shipped, shipped_config = pretrained.load_predictor(folder)
    trained, _ = run_dir.load_run(run)
    for a, b in zip(shipped.weights, trained.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy().astype(np.float16).astype(np.float32))
    assert shipped_config["offset_std"] == [40.0, 37.0]


def test_the_shipped_prediction_folder_is_what_write_unconditional_reads(release, monkeypatch):
    _, folder = release
    monkeypatch.setattr(pretrained, "PREDICTION_DIR", folder)
    model, config, where = unconditional.load_predictor()
    assert where == "the shipped prediction model"
    (line,) = unconditional.sample(model, config, 15, 0.5, 0)
    assert line.shape == (15, 3)
    monkeypatch.setattr(pretrained, "PREDICTION_DIR", folder.parent / "missing")
    with pytest.raises(pretrained.PretrainedNotFound, match="no shipped prediction model; pass --model_dir"):
        unconditional.load_predictor()


def test_init_from_names_a_shipped_model_and_checks_its_network(release, monkeypatch):
    _, folder = release
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", folder.parent)
    weights = str(folder / "weights.npz")
    assert pretrained.init_weights("pretrained:prediction", SPEC) == weights
    assert pretrained.init_weights("pretrained/prediction", SPEC) == weights
    assert pretrained.init_weights(str(folder), SPEC) == weights  # a release folder by its path
    assert pretrained.init_weights(str(folder.parent / "a_run"), SPEC) is None  # not a release: the trainer's
    # A flagfile's clips 10 and 100 are the paper's defaults the release left unset: the same network.
    clipped = experiment.ModelSpec(**{**vars(SPEC), "lstm_clip": 10.0, "output_clip": 100.0})
    assert pretrained.init_weights("pretrained:prediction", clipped) == weights
    other = experiment.ModelSpec(**{**vars(SPEC), "units": 16})
    with pytest.raises(ValueError, match=r"--init_from=pretrained:prediction needs the shipped model's network; "
                                         r"these flags differ: --units=16 \(shipped: 32\)"):
        pretrained.init_weights("pretrained:prediction", other)
    with pytest.raises(ValueError, match="no shipped model 'nothing'.*shipped: pretrained:prediction"):
        pretrained.init_weights("pretrained:nothing", SPEC)


@pytest.mark.slow  # a training process on the dummy data: ~30 s with a training run on both cores
def test_train_starts_from_the_shipped_prediction_weights(release, dummy_data, tmp_path, monkeypatch):
    _, folder = release
    result = subprocess.run(
        [sys.executable, "-m", "graves_tf.train", "--flagfile=graves_tf/configs/tiny_handwriting_prediction.cfg",
         f"--model_dir={tmp_path / 'more'}", f"--data_dir={dummy_data}", f"--init_from={folder}",
         "--learning_rate=1e-30", "--train_steps=1", "--eval_every=0", "--batch_size=2", "--noprogress_bar"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    continued, _ = run_dir.load_run(str(tmp_path / "more"), "latest")
    shipped, _ = pretrained.load_predictor(folder)
    for a, b in zip(continued.trainable_weights, shipped.trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-20)  # a rate of 1e-30: the shipped weights
