"""The text models shipped in graves_tf/pretrained (enwik8_small, ptb_char): each loads like a run,
gives real text far fewer bits than the same symbols shuffled, and (on the real data) scores its
README row."""

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

# Per shipped model: how its README row is evaluated, and what that measured from the shipped
# float16 weights (test bits per symbol, by the README's command in "Text results").
SHIPPED = {
    "enwik8_small": {
        "dataset": "enwik8",
        "units": 256,
        "flagfile": "enwik8_small",
        "data_file": "enwik8/enwik8.prefix",
        "eval_flags": ("--hutter_config=prefix", "--eval_batch_size=1"),
        "test_symbols": 207_700,
        "test_bpc": {"static": 1.977, "dynamic": 1.905},
        "text": "The city of [[London]] is the capital of [[England]] and of the [[United Kingdom]].",
        "max_bits_per_symbol": 3.0,
    },
    "ptb_char": {
        "dataset": "ptb_char",
        "units": 1000,
        "flagfile": "ptb_char_adam_plateau",
        "data_file": "ptb/ptb.char.test.txt",
        "eval_flags": (),
        "test_symbols": 442_423,
        "test_bpc": {"static": 1.356, "dynamic": 1.341},
        "text": "the_company_said_it_expects_to_report_a_loss_for_the_third_quarter\n",
        "max_bits_per_symbol": 2.5,
    },
}


@pytest.fixture(scope="module", params=sorted(SHIPPED))
def shipped(request):
    return request.param, run_dir.load_run(str(pretrained.text_model_dir(request.param)))


def nats(model, config, text):
    index = {symbol: i for i, symbol in enumerate(config["vocabulary"])}
    targets = tf.constant([[index[c] for c in text]], tf.int32)
    inputs = tf.concat([-tf.ones_like(targets[:, :1]), targets[:, :-1]], axis=1)
    return float(model({"inputs": inputs, "targets": targets, "lengths": tf.constant([len(text)])})[0])


def test_every_shipped_text_model_is_listed_here():
    assert set(pretrained.TEXT_MODELS) == set(SHIPPED)


def test_the_shipped_text_model_loads_like_a_run(shipped):
    name, (model, config) = shipped
    assert config["checkpoint"].endswith(pretrained.WEIGHTS_FILE)
    assert config["spec"]["dataset"] == SHIPPED[name]["dataset"]
    assert config["spec"]["units"] == SHIPPED[name]["units"]
    assert config["release"]["weights_dtype"] == "float16"
    with pytest.raises(KeyError, match="enwik8_small"):
        pretrained.text_model_dir("enwik8_large")


def test_it_gives_real_text_far_fewer_bits_than_the_same_symbols_shuffled(shipped):
    name, (model, config) = shipped
    text = SHIPPED[name]["text"]
    shuffled = "".join(np.random.default_rng(0).permutation(list(text)))
    real, scrambled = nats(model, config, text), nats(model, config, shuffled)
    bits_per_symbol = real / np.log(2) / len(text)
    assert bits_per_symbol < SHIPPED[name]["max_bits_per_symbol"] and real < 0.6 * scrambled, (
        bits_per_symbol, real, scrambled,
    )


@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_shipped_model_scores_its_readme_row(name, tmp_path):
    facts = SHIPPED[name]
    data_file = DATA / facts["data_file"]
    if not data_file.exists():
        pytest.skip(f"real data absent: {data_file} (set GRAVES_TF_DATA)")
    output = tmp_path / "static.json"
    result = subprocess.run(
        [
            sys.executable, "-m", "graves_tf.evaluate", f"--flagfile=graves_tf/configs/{facts['flagfile']}.cfg",
            f"--model_dir={pretrained.text_model_dir(name)}", f"--manual_dir={data_file.parent}",
            f"--data_dir={tmp_path / 'tfds'}", "--split=test", *facts["eval_flags"], f"--output_json={output}",
        ],
        capture_output=True, text=True, timeout=1200, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(output.read_text())
    assert metrics["symbols"] == facts["test_symbols"]
    assert metrics["bits_per_character"] == pytest.approx(facts["test_bpc"]["static"], abs=0.001)
    readme = (REPO / "README.md").read_text()
    assert f"{facts['test_bpc']['static']:.3f}" in readme and f"{facts['test_bpc']['dynamic']:.3f}" in readme
