"""The shipped model: downsampled strokes, float16 weights, styles, release, and write/export defaults."""

import json
import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf import drawing, experiment, pretrained, run_dir, write  # noqa: E402
from graves_tf.data.handwriting import downsample_strokes  # noqa: E402
from run_folders import make_handwriting_run  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEC = experiment.ModelSpec(
    model="handwriting_synthesizer", dataset="iam_ondb", num_layers=2, units=16, num_mixtures=3,
    num_window_gaussians=2, alphabet="full", point_stride=2, initial_kappa_step=0.1,
)


def random_line(seed, points=60):
    rng = np.random.default_rng(seed)
    offsets = np.column_stack([rng.integers(-20, 20, (points, 2)), rng.random(points) < 0.15]).astype(np.float64)
    offsets[-1, 2] = 1
    return offsets


@pytest.mark.parametrize("stride", [2, 3, 5])
def test_downsampling_keeps_every_pen_down_and_pen_up_on_the_original_trajectory(stride):
    offsets = random_line(stride)
    out = downsample_strokes(tf.constant(offsets), stride).numpy()
    original, kept = drawing.offsets_to_strokes(offsets), drawing.offsets_to_strokes(out)
    assert len(kept) == len(original)
    for full, coarse in zip(original, kept):
        np.testing.assert_array_equal(coarse[0], full[0])
        np.testing.assert_array_equal(coarse[-1], full[-1])
        np.testing.assert_array_equal(coarse[:-1], full[:-1][::stride])  # every stride-th position
    assert len(out) < len(offsets)


def test_downsampling_by_one_is_the_identity_and_runs_in_tf_data():
    offsets = random_line(0).astype(np.float32)
    np.testing.assert_array_equal(downsample_strokes(offsets, 1).numpy(), offsets)
    lines = tf.data.Dataset.from_tensors(offsets).map(lambda s: downsample_strokes(s, 2))
    np.testing.assert_array_equal(next(iter(lines)).numpy(), downsample_strokes(offsets, 2).numpy())
    with pytest.raises(ValueError, match="stride"):
        downsample_strokes(offsets, 0)


def test_initial_kappa_step_sets_the_untrained_window_pace():
    keras.utils.set_random_seed(0)
    model = experiment.build_model(SPEC)
    bias = model.window.bias.numpy()
    np.testing.assert_allclose(np.exp(bias[-SPEC.num_window_gaussians:]), 0.1, rtol=1e-6)
    np.testing.assert_array_equal(bias[: 2 * SPEC.num_window_gaussians], -1.0)
    assert model.window.get_config()["initial_kappa_step"] == 0.1
    with pytest.raises(ValueError, match="point_stride"):
        experiment.ModelSpec(model="text_predictor", dataset="ptb_char", point_stride=2)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return make_handwriting_run(tmp_path_factory.mktemp("run"), SPEC, [16.0, 0.2], [70.0, 60.0], seed=1, step=7)


def test_float16_weights_round_trip_and_refuse_another_model(tiny_run, tmp_path):
    model, _ = run_dir.load_run(tiny_run)
    path = str(tmp_path / "weights.npz")
    pretrained.save_weights(model, path)
    copy = experiment.build_model(SPEC)
    pretrained.load_weights(copy, path)
    for a, b in zip(model.weights, copy.weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-3, atol=1e-4)
        np.testing.assert_array_equal(b.numpy(), a.numpy().astype(np.float16).astype(np.float32))
    other = experiment.build_model(experiment.ModelSpec(**{**vars(SPEC), "units": 8}))
    with pytest.raises(ValueError, match="shape"):
        pretrained.load_weights(other, path)


def test_a_missing_release_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "SYNTHESIS_DIR", tmp_path / "nothing")
    with pytest.raises(pretrained.PretrainedNotFound, match="--model_dir"):
        pretrained.load_synthesizer()


@pytest.fixture(scope="module")
def dummy_data(tmp_path_factory):
    from graves_tf.data import datasets

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    datasets.prepare_builder("iam_ondb", data_dir, str(ROOT / "tfds_builders" / "iam_ondb" / "dummy_data"))
    return data_dir


@pytest.fixture(scope="module")
def release(tiny_run, dummy_data, tmp_path_factory):
    import tensorflow_datasets as tfds

    from graves_tf.data import datasets

    builder = datasets.prepare_builder("iam_ondb", dummy_data)
    line_id = next(iter(tfds.as_numpy(builder.as_dataset(split="validation"))))["id"].decode()
    folder = tmp_path_factory.mktemp("release") / "synthesis"
    result = subprocess.run(
        [sys.executable, "-m", "graves_tf.pretrained.release", f"--model_dir={tiny_run}", f"--data_dir={dummy_data}",
         f"--release_dir={folder}", f"--styles=plain={line_id}:a test line"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "released step 7" in result.stdout
    return folder, line_id


def test_release_writes_weights_styles_and_both_validation_losses(release, tiny_run):
    folder, line_id = release
    config = json.loads((folder / "model_config.json").read_text())
    assert config["spec"]["point_stride"] == 2 and config["release"]["step"] == 7
    float32, float16 = config["release"]["validation"]["float32"], config["release"]["validation"]["float16"]
    assert np.isfinite(float32["loss"]) and abs(float16["loss"] - float32["loss"]) < 0.01 * abs(float32["loss"]) + 0.5
    (style,) = pretrained.list_styles(folder)
    assert style["name"] == "plain" and style["line_id"] == line_id and style["description"] == "a test line"
    offsets, text = pretrained.style("plain", folder)
    assert offsets.shape[1] == 3 and text == style["text"]
    with pytest.raises(KeyError, match="plain"):
        pretrained.style("missing", folder)
    shipped, _ = pretrained.load_synthesizer(folder)
    trained, _ = run_dir.load_run(tiny_run)
    for a, b in zip(shipped.weights, trained.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-4)


def test_write_uses_the_shipped_model_and_its_styles(release, monkeypatch, tmp_path):
    folder, _ = release
    monkeypatch.setattr(pretrained, "SYNTHESIS_DIR", folder)
    model, config, where = write.load_model()
    assert where == "the shipped model"
    prime, prime_text = pretrained.style("plain")
    prime = write.at_model_rate(prime, config)
    lines = write.write_lines(model, config, ["hi there", "ok"], 1.0, 0, prime, prime_text)
    assert len(lines) == 2 and all(len(line) > 0 for line in lines)
    drawing.save_lines(lines, str(tmp_path / "page.svg"))
    assert ElementTree.parse(tmp_path / "page.svg").getroot().tag.endswith("svg")


def test_export_of_a_strided_model_downsamples_primes(tiny_run, tmp_path):
    from graves_tf.export.saved_model import HandwritingExport

    model, config = run_dir.load_run(tiny_run)
    from graves_tf import alphabet as alphabet_lib

    module = HandwritingExport(model, alphabet_lib.FULL, config["offset_mean"], config["offset_std"], point_stride=2)
    a, b = random_line(3, 40), random_line(4, 30)
    padded = np.zeros((2, 40, 3), np.float32)
    padded[0], padded[1, :30] = a, b
    strokes, lengths = module._downsample(tf.constant(padded), tf.constant([40, 30]))
    for row, line in enumerate((a, b)):
        expected = downsample_strokes(line.astype(np.float32), 2).numpy()
        assert int(lengths[row]) == len(expected)
        np.testing.assert_array_equal(strokes[row, : len(expected)].numpy(), expected)
    nats = module.log_prob(tf.constant(padded), tf.constant([40, 30]), tf.constant(["ab", "cd"]))["nats"]
    assert nats.shape == (2,) and np.all(np.isfinite(nats.numpy()))


@pytest.mark.skipif(not (pretrained.SYNTHESIS_DIR / pretrained.WEIGHTS_FILE).exists(), reason="no shipped weights")
def test_the_readme_command_writes_hello_world_with_the_shipped_model(tmp_path):
    output = tmp_path / "hello.svg"
    result = subprocess.run(
        [sys.executable, "-m", "graves_tf.write", "Hello world", "-o", str(output)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    paths = [e for e in ElementTree.parse(output).getroot().iter() if e.tag.endswith("path")]
    assert len(paths) >= 3
    listed = subprocess.run([sys.executable, "-m", "graves_tf.write", "--list_styles"], capture_output=True, text=True)
    assert listed.returncode == 0 and len(listed.stdout.strip().splitlines()) == len(pretrained.list_styles())


def test_init_from_pretrained_needs_the_shipped_network():
    from graves_tf.cli import train

    shipped = pretrained.load_config()["spec"]
    assert train.pretrained_weights(experiment.ModelSpec(**shipped)) == pretrained.weights_path()
    other = dict(shipped, units=16, num_mixtures=3)
    with pytest.raises(ValueError, match=r"--units=16 \(shipped: 400\), --num_mixtures=3 \(shipped: 20\)"):
        train.pretrained_weights(experiment.ModelSpec(**other))


def test_a_release_says_which_checkpoints_it_holds():
    single = {"release": {"run": "synthesis", "step": 2250}}
    averaged = {"release": {"run": "synthesis_ft", "step": 889, "averaged_steps": [500, 750, 889]}}
    assert pretrained.describe_release(single) == "update 2250 of run synthesis"
    assert pretrained.describe_release(averaged) == "the mean of updates 500, 750, 889 of run synthesis_ft"
    shipped = pretrained.load_config()["release"]
    assert pretrained.describe_release(pretrained.load_config()) == (
        f"the mean of updates {', '.join(map(str, shipped['averaged_steps']))} of run {shipped['run']}"
    )
