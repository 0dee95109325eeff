"""The text model shipped in graves_tf/pretrained/enwik8_small: it loads like a run, knows English
Wikipedia text from shuffled text, and (on the real enwik8 prefix) scores the README's row."""

import json
import os
import pathlib
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf import pretrained, run_dir  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(os.environ.get("GRAVES_TF_DATA", REPO.parent / "shared" / "data"))
SENTENCE = "The city of [[London]] is the capital of [[England]] and of the [[United Kingdom]]."
# Measured from the shipped float16 weights by the README's command (Text results): test bits per byte.
SHIPPED_TEST_BPC = {"static": 1.977, "dynamic": 1.905}


@pytest.fixture(scope="module")
def shipped():
    return run_dir.load_run(str(pretrained.text_model_dir("enwik8_small")))


def nats(model, config, text):
    index = {symbol: i for i, symbol in enumerate(config["vocabulary"])}
    targets = tf.constant([[index[c] for c in text]], tf.int32)
    inputs = tf.concat([-tf.ones_like(targets[:, :1]), targets[:, :-1]], axis=1)
    return float(model({"inputs": inputs, "targets": targets, "lengths": tf.constant([len(text)])})[0])


def test_the_shipped_text_model_loads_like_a_run(shipped):
    model, config = shipped
    assert config["checkpoint"].endswith(pretrained.WEIGHTS_FILE)
    assert config["spec"]["dataset"] == "enwik8" and config["spec"]["units"] == 256
    assert config["release"]["weights_dtype"] == "float16"
    with pytest.raises(KeyError, match="enwik8_small"):
        pretrained.text_model_dir("enwik8_large")


def test_it_gives_wikipedia_text_far_fewer_bits_than_the_same_bytes_shuffled(shipped):
    model, config = shipped
    shuffled = "".join(np.random.default_rng(0).permutation(list(SENTENCE)))
    real, scrambled = nats(model, config, SENTENCE), nats(model, config, shuffled)
    bits_per_byte = real / np.log(2) / len(SENTENCE)
    assert bits_per_byte < 3.0 and real < 0.6 * scrambled, (bits_per_byte, real, scrambled)


@pytest.mark.real_data
@pytest.mark.slow
def test_the_shipped_model_scores_its_readme_row_on_the_prefix(tmp_path):
    prefix = DATA / "enwik8" / "enwik8.prefix"
    if not prefix.exists():
        pytest.skip(f"real data absent: {prefix} (set GRAVES_TF_DATA)")
    output = tmp_path / "static.json"
    result = subprocess.run(
        [
            sys.executable, "-m", "graves_tf.evaluate", "--flagfile=graves_tf/configs/enwik8_small.cfg",
            f"--model_dir={pretrained.text_model_dir('enwik8_small')}", f"--manual_dir={prefix.parent}",
            f"--data_dir={tmp_path / 'tfds'}", "--hutter_config=prefix", "--split=test", "--eval_batch_size=1",
            f"--output_json={output}",
        ],
        capture_output=True, text=True, timeout=1200, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(output.read_text())
    assert metrics["symbols"] == 207_700
    assert metrics["bits_per_character"] == pytest.approx(SHIPPED_TEST_BPC["static"], abs=0.001)
    readme = (REPO / "README.md").read_text()
    assert f"{SHIPPED_TEST_BPC['static']:.3f}" in readme and f"{SHIPPED_TEST_BPC['dynamic']:.3f}" in readme
