"""SavedModel export: signatures, a separate process without graves_tf, saved_model_cli, TFSMLayer."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf import experiment, run_dir, sampling  # noqa: E402
from export_helpers import BIAS, MAX_STEPS, SEED, TEXTS, export_tiny_synthesis, run_without_graves_tf, texts_context  # noqa: E402,F401


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_tiny_synthesis(tmp_path_factory.mktemp("export"))


def in_process_sample(run_folder):
    model, config = run_dir.load_run(str(run_folder))
    strokes, lengths = sampling.compiled_sampler(model)(len(TEXTS), MAX_STEPS, BIAS, SEED, texts_context(model))
    denormalised = [sampling.denormalise(s[:n], config["offset_mean"], config["offset_std"]) for s, n in zip(strokes.numpy(), lengths.numpy())]
    return denormalised, lengths.numpy()


def test_a_process_without_graves_tf_gets_the_in_process_strokes(exported, tmp_path):
    folder, saved = exported
    result = run_without_graves_tf(saved, f"""
        out = model.signatures["serving_default"](
            text=tf.constant({TEXTS!r}), bias=tf.constant({BIAS!r}), seed=tf.constant({SEED}, tf.int64),
            max_steps=tf.constant({MAX_STEPS}))
        np.savez({str(tmp_path / 'out.npz')!r}, strokes=out["strokes"].numpy(), lengths=out["lengths"].numpy())
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    saved_out = np.load(tmp_path / "out.npz")
    expected, lengths = in_process_sample(folder / "run")
    np.testing.assert_array_equal(saved_out["lengths"], lengths)
    for row, n in enumerate(lengths):
        np.testing.assert_allclose(saved_out["strokes"][row, :n], expected[row], rtol=1e-5, atol=1e-4)
        assert np.all(saved_out["strokes"][row, n:] == 0)
    # Bit for bit what the export's sampling function gives in this process, before saving.
    from graves_tf.export.saved_model import HandwritingExport
    from graves_tf import alphabet

    model, config = run_dir.load_run(str(folder / "run"))
    module = HandwritingExport(model, alphabet.PAPER, config["offset_mean"], config["offset_std"])
    in_process = module.generate(
        tf.constant(TEXTS), tf.constant(BIAS), tf.constant(SEED, tf.int64), tf.constant(MAX_STEPS))
    np.testing.assert_array_equal(in_process["strokes"].numpy(), saved_out["strokes"])
    np.testing.assert_array_equal(in_process["lengths"].numpy(), saved_out["lengths"])


def test_saved_model_cli_lists_the_signatures(exported):
    _, saved = exported
    cli = shutil.which("saved_model_cli") or os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run([cli, "show", "--dir", str(saved), "--all"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for name in ("serving_default", "generate_primed", "log_prob"):
        assert f"signature_def['{name}']" in result.stdout


def test_primed_generation_and_log_prob(exported):
    _, saved = exported
    model = tf.saved_model.load(str(saved))
    prime = np.zeros((1, 6, 3), np.float32)
    prime[0, 1:, 0] = 10.0
    prime[0, -1, 2] = 1
    out = model.signatures["generate_primed"](
        text=tf.constant(["more"]), bias=tf.constant([0.5]), seed=tf.constant(1, tf.int64),
        max_steps=tf.constant(40), prime_strokes=tf.constant(prime), prime_lengths=tf.constant([6]),
        prime_text=tf.constant(["ab"]))
    assert 0 <= int(out["lengths"][0]) <= 40
    assert out["strokes"].shape == (1, int(out["lengths"][0]), 3)  # as long as the longest sample
    nats = model.signatures["log_prob"](strokes=tf.constant(prime), lengths=tf.constant([6]), text=tf.constant(["ab"]))["nats"]
    assert nats.shape == (1,) and np.isfinite(nats.numpy()).all()


def test_tfsm_layer_inside_another_keras_model(exported):
    _, saved = exported

    class Scorer(keras.Model):
        def __init__(self):
            super().__init__()
            self.graves = keras.layers.TFSMLayer(str(saved), call_endpoint="log_prob")

        def call(self, batch):
            return -self.graves(batch["strokes"], lengths=batch["lengths"], text=batch["text"])["nats"]

    strokes = np.random.default_rng(0).normal(0, 20, (2, 9, 3)).astype(np.float32)
    strokes[..., 2] = 0
    score = Scorer()({"strokes": strokes, "lengths": np.array([9, 5], np.int32), "text": tf.constant(["hi", "yo"])})
    assert score.shape == (2,) and np.isfinite(score.numpy()).all()


def test_a_byte_level_text_model_reads_and_writes_utf8_bytes(tmp_path):
    """enwik8 models predict bytes: a UTF-8 prime is split into its bytes and
    the sampled bytes are joined back unchanged (not re-encoded as Latin-1)."""
    from graves_tf.export.saved_model import TextExport
    from graves_tf.models import TextPredictor

    symbols = [bytes([b]) for b in b" acef\xc3\xa9"]
    keras.utils.set_random_seed(0)
    module = TextExport(TextPredictor(len(symbols), units=8, num_layers=1), symbols, "byte")
    tf.saved_model.save(module, str(tmp_path), signatures={"sample": module.sample, "log_prob": module.log_prob})
    loaded = tf.saved_model.load(str(tmp_path))
    assert loaded.signatures["log_prob"](text=tf.constant(["café"]))["symbols"].numpy().tolist() == [5]
    out = loaded.signatures["sample"](
        prime=tf.constant(["café"]), num_steps=tf.constant(60), temperature=tf.constant(1.0),
        seed=tf.constant(1, tf.int64),
    )
    ids = out["ids"].numpy()[0]
    assert out["text"].numpy()[0] == b"".join(symbols[i] for i in ids)
    assert {5, 6} & set(ids.tolist())  # the two bytes of é come out as themselves


PRIME = [[[0, 0, 0], [10, 0, 0], [10, 0, 0], [10, 0, 0], [10, 0, 0], [10, 0, 1]]]  # [1, 6, 3]
GOOD = {
    "serving_default": dict(text=["hello"], bias=[0.5], seed=1, max_steps=40),
    "generate_primed": dict(text=["hello"], bias=[0.5], seed=1, max_steps=40, prime_strokes=PRIME,
                            prime_lengths=[6], prime_text=["ab"]),
    "log_prob": dict(strokes=PRIME, lengths=[6], text=["ab"]),
}
NAN_PRIME = [[[0, 0, 0], [float("nan"), 0, 0]] + PRIME[0][2:]]
# (signature, the inputs that differ from GOOD's, what the InvalidArgumentError must say)
BAD_CALLS = {
    "unknown characters": ("serving_default", dict(text=["naïve"]), "text: every character must be one the model can write"),
    "a newline": ("serving_default", dict(text=["two\nlines"]), "text: every character must be one the model can write"),
    "empty text": ("serving_default", dict(text=[""]), "text: every string must have at least one character"),
    "empty batch": ("serving_default", dict(text=[], bias=[]), "text: the batch is empty"),
    "NaN bias": ("serving_default", dict(bias=[float("nan")]), "bias: every bias must be a finite number"),
    "infinite bias": ("serving_default", dict(bias=[float("inf")]), "bias: every bias must be a finite number"),
    "negative bias": ("serving_default", dict(bias=[-1.0]), "bias: every bias must be >= 0"),
    "one bias for two texts": ("serving_default", dict(text=["ab", "cd"]), "bias: needs one row per text string"),
    "two biases for one text": ("serving_default", dict(bias=[0.5, 1.0]), "bias: needs one row per text string"),
    "max_steps 0": ("serving_default", dict(max_steps=0), "max_steps: must be at least 1"),
    "negative max_steps": ("serving_default", dict(max_steps=-5), "max_steps: must be at least 1"),
    "prime longer than its strokes": ("generate_primed", dict(prime_lengths=[7]),
                                      "prime_lengths: a length is longer than the time axis T of prime_strokes"),
    "prime length 0": ("generate_primed", dict(prime_lengths=[0]), "prime_lengths: every length must be at least 1"),
    "negative prime length": ("generate_primed", dict(prime_lengths=[-2]), "prime_lengths: every length must be at least 1"),
    "prime batch of two for one text": ("generate_primed", dict(prime_strokes=PRIME * 2, prime_lengths=[6, 6]),
                                        "prime_strokes: needs one row per text string"),
    "two prime texts for one text": ("generate_primed", dict(prime_text=["ab", "cd"]), "prime_text: needs one row per text string"),
    "NaN in the prime": ("generate_primed", dict(prime_strokes=NAN_PRIME),
                         "prime_strokes: every value up to prime_lengths must be a finite number"),
    "end of stroke 2 in the prime": ("generate_primed", dict(prime_strokes=[PRIME[0][:5] + [[1, 1, 2]]]),
                                     "prime_strokes: the third value of each point, end of stroke, must be 0 or 1"),
    "unknown prime text": ("generate_primed", dict(prime_text=["café"]), "prime_text: every character must be one the model can write"),
    "empty prime text": ("generate_primed", dict(prime_text=[""]), "prime_text: every string must have at least one character"),
    "log_prob lengths past T": ("log_prob", dict(lengths=[9]), "lengths: a length is longer than the time axis T of strokes"),
    "log_prob length 0": ("log_prob", dict(lengths=[0]), "lengths: every length must be at least 1"),
    "log_prob empty text": ("log_prob", dict(text=[""]), "text: every string must have at least one character"),
    "log_prob unknown text": ("log_prob", dict(text=["ü"]), "text: every character must be one the model can write"),
    "log_prob two texts for one line": ("log_prob", dict(text=["ab", "cd"]), "strokes: needs one row per text string"),
    "log_prob NaN strokes": ("log_prob", dict(strokes=NAN_PRIME), "strokes: every value up to lengths must be a finite number"),
}
DTYPES = {"seed": "tf.int64", "max_steps": "tf.int32", "prime_lengths": "tf.int32", "lengths": "tf.int32",
          "bias": "tf.float32", "prime_strokes": "tf.float32", "strokes": "tf.float32"}


@pytest.fixture(scope="module")
def served_calls(exported, tmp_path_factory):
    """Every call of BAD_CALLS, a huge max_steps and then a good call, in one process without graves_tf."""
    _, saved = exported
    folder = tmp_path_factory.mktemp("served")
    calls = {name: (signature, {**GOOD[signature], **change}) for name, (signature, change, _) in BAD_CALLS.items()}
    calls["huge max_steps"] = ("serving_default", dict(GOOD["serving_default"], max_steps=10**7))
    calls["good call after the bad ones"] = ("serving_default", GOOD["serving_default"])
    result = run_without_graves_tf(saved, f"""
        dtypes = {{name: eval(dtype) for name, dtype in {DTYPES!r}.items()}}
        results = {{}}
        for name, (signature, inputs) in json.loads({json.dumps(calls)!r}).items():
            inputs = {{k: tf.constant(v, dtypes.get(k, tf.string)) for k, v in inputs.items()}}
            try:
                out = model.signatures[signature](**inputs)
                results[name] = {{"shapes": {{k: v.shape.as_list() for k, v in out.items()}},
                                 "lengths": out["lengths"].numpy().tolist() if "lengths" in out else None,
                                 "finite": bool(all(np.all(np.isfinite(v.numpy())) for k, v in out.items()))}}
            except tf.errors.InvalidArgumentError as error:
                results[name] = {{"error": error.message}}
        json.dump(results, open({str(folder / "results.json")!r}, "w"))
    """, folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((folder / "results.json").read_text())


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_a_bad_call_of_a_signature_is_refused_naming_the_input_and_the_rule(served_calls, name):
    message = BAD_CALLS[name][2]
    assert "error" in served_calls[name], f"{name} was not refused: {served_calls[name]}"
    assert message in served_calls[name]["error"], served_calls[name]["error"][:2000]


def test_the_unknown_characters_are_named(served_calls):
    assert "ï" in served_calls["unknown characters"]["error"]
    assert "é" in served_calls["unknown prime text"]["error"]


def test_a_huge_max_steps_is_capped_and_the_output_is_as_long_as_the_longest_sample(served_calls):
    huge = served_calls["huge max_steps"]
    assert "error" not in huge and huge["finite"]
    (length,) = huge["lengths"]
    assert 0 < length <= 40 * len("hello")  # steps_per_character times the text
    assert huge["shapes"]["strokes"] == [1, length, 3]


def test_the_serving_process_survives_every_bad_call(served_calls):
    good = served_calls["good call after the bad ones"]
    assert "error" not in good and good["finite"] and good["shapes"]["strokes"][0] == 1

