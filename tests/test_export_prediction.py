"""The prediction network's SavedModel: sampling and log_prob without graves_tf, as the Python API samples."""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf import experiment, run_dir, unconditional  # noqa: E402
from run_folders import make_handwriting_run  # noqa: E402
from export_helpers import run_without_graves_tf  # noqa: E402

SPEC = experiment.ModelSpec(model="handwriting_predictor", dataset="iam_ondb", num_layers=2, units=16, num_mixtures=3)
MEAN, STD = [8.0, 0.1], [40.0, 37.0]
BIAS, SEED, STEPS = [0.5, 1.0], 7, 30
PRIME = [[0, 0, 0], [10, 2, 0], [12, -3, 0], [9, 1, 1], [-30, 5, 0], [8, 8, 0], [6, 0, 1]]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from graves_tf.export.saved_model import export_run

    folder = tmp_path_factory.mktemp("prediction_export")
    run = make_handwriting_run(folder / "run", SPEC, MEAN, STD, seed=2)
    model, config = run_dir.load_run(run)
    export_run(model, config, str(folder / "saved" / "1"))  # python -m export's call: a predictor's export
    return run, folder / "saved" / "1"


@pytest.mark.slow  # 27-42 s here with a training run on both cores: a fresh TensorFlow process loads the export
def test_a_process_without_graves_tf_samples_what_the_python_api_samples(exported, tmp_path):
    run, saved = exported
    result = run_without_graves_tf(saved, f"""
        out = model.signatures["serving_default"](
            bias=tf.constant({BIAS!r}), seed=tf.constant({SEED}, tf.int64), num_steps=tf.constant({STEPS}))
        primed = model.signatures["sample_primed"](
            bias=tf.constant([0.5]), seed=tf.constant(3, tf.int64), num_steps=tf.constant(12),
            prime_strokes=tf.constant([{PRIME!r}], tf.float32), prime_lengths=tf.constant([{len(PRIME)}]))
        nats = model.signatures["log_prob"](strokes=tf.constant([{PRIME!r}], tf.float32),
                                            lengths=tf.constant([{len(PRIME)}]))["nats"]
        info = json.load(open({str(saved / "assets.extra" / "graves_tf.json")!r}))
        np.savez({str(tmp_path / 'out.npz')!r}, strokes=out["strokes"].numpy(), lengths=out["lengths"].numpy(),
                 primed=primed["strokes"].numpy(), nats=nats.numpy(), point_stride=info["point_stride"])
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    model, config, _ = unconditional.load_predictor(run)
    assert out["strokes"].shape == (2, STEPS, 3) and out["lengths"].tolist() == [STEPS, STEPS]
    for row, bias in enumerate(BIAS):
        # One sample per bias; the batch's draws are per row, so each row is the API's row of a batch of two.
        expected = unconditional.sample(model, config, STEPS, bias, SEED, num_samples=2)[row]
        np.testing.assert_allclose(out["strokes"][row], expected, rtol=1e-5, atol=1e-3)
    (expected,) = unconditional.sample(model, config, 12, 0.5, 3, prime=np.asarray(PRIME, np.float64))
    np.testing.assert_allclose(out["primed"][0], expected, rtol=1e-5, atol=1e-3)
    assert out["nats"][0] == pytest.approx(unconditional.log_prob(model, config, np.asarray(PRIME, np.float64)), rel=1e-5)
    assert int(out["point_stride"]) == 1


def test_the_signatures_and_their_inputs(loaded):
    assert set(loaded.signatures) == {"serving_default", "sample", "sample_primed", "log_prob"}
    inputs = {name: sorted(loaded.signatures[name].structured_input_signature[1]) for name in loaded.signatures}
    assert inputs["serving_default"] == ["bias", "num_steps", "seed"]
    assert inputs["sample_primed"] == ["bias", "num_steps", "prime_lengths", "prime_strokes", "seed"]
    assert inputs["log_prob"] == ["lengths", "strokes"]


GOOD = {
    "serving_default": dict(bias=[0.5], seed=1, num_steps=10),
    "sample_primed": dict(bias=[0.5], seed=1, num_steps=10, prime_strokes=[PRIME], prime_lengths=[len(PRIME)]),
    "log_prob": dict(strokes=[PRIME], lengths=[len(PRIME)]),
}
NAN_PRIME = [PRIME[:2] + [[float("nan"), 0, 0]] + PRIME[3:]]
BAD_CALLS = {
    "NaN bias": ("serving_default", dict(bias=[float("nan")]), "bias: every bias must be a finite number"),
    "negative bias": ("serving_default", dict(bias=[-1.0]), "bias: every bias must be >= 0"),
    "empty batch": ("serving_default", dict(bias=[]), "bias: the batch is empty"),
    "zero steps": ("serving_default", dict(num_steps=0), "num_steps: must be at least 1"),
    "negative steps": ("serving_default", dict(num_steps=-3), "num_steps: must be at least 1"),
    "too many steps": ("serving_default", dict(num_steps=10**6), "num_steps: must be at most 20000"),
    "two primes for one bias": ("sample_primed", dict(prime_strokes=[PRIME, PRIME], prime_lengths=[7, 7]),
                                "prime_strokes: needs one row per bias row"),
    "prime length past T": ("sample_primed", dict(prime_lengths=[8]), "prime_lengths: a length is longer than the time axis"),
    "prime length 0": ("sample_primed", dict(prime_lengths=[0]), "prime_lengths: every length must be at least 1"),
    "NaN in the prime": ("sample_primed", dict(prime_strokes=NAN_PRIME), "prime_strokes: every value up to prime_lengths"),
    "log_prob two lengths": ("log_prob", dict(lengths=[7, 7]), "lengths: needs one row per strokes row"),
    "log_prob end of stroke 2": ("log_prob", dict(strokes=[PRIME[:6] + [[1, 1, 2]]]), "end of stroke, must be 0 or 1"),
}
DTYPES = {"seed": tf.int64, "num_steps": tf.int32, "prime_lengths": tf.int32, "lengths": tf.int32}


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported[1]))


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_a_bad_call_is_refused_naming_the_input_and_the_rule(loaded, name):
    signature, change, message = BAD_CALLS[name]
    inputs = {k: tf.constant(v, DTYPES.get(k, tf.float32)) for k, v in {**GOOD[signature], **change}.items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("(", r"\(")):
        loaded.signatures[signature](**inputs)
    good = {k: tf.constant(v, DTYPES.get(k, tf.float32)) for k, v in GOOD[signature].items()}
    out = loaded.signatures[signature](**good)  # the model goes on after the refusal
    assert all(np.all(np.isfinite(v.numpy())) for v in out.values())


def test_a_strided_models_export_downsamples_its_prime(tmp_path):
    from graves_tf.export.prediction import PredictionExport

    spec = experiment.ModelSpec(**{**vars(SPEC), "point_stride": 2})
    model, config = run_dir.load_run(make_handwriting_run(tmp_path, spec, MEAN, STD))
    module = PredictionExport(model, MEAN, STD, point_stride=2)
    out = module.sample_primed(tf.constant([0.5]), tf.constant(1, tf.int64), tf.constant(9),
                               tf.constant([PRIME], tf.float32), tf.constant([len(PRIME)]))
    expected = unconditional.sample(model, config, 9, 0.5, 1, prime=np.asarray(PRIME, np.float64))[0]
    np.testing.assert_allclose(out["strokes"][0].numpy(), expected, rtol=1e-5, atol=1e-3)
    nats = module.log_prob(tf.constant([PRIME], tf.float32), tf.constant([len(PRIME)]))["nats"]
    assert float(nats[0]) == pytest.approx(unconditional.log_prob(model, config, np.asarray(PRIME, np.float64)), rel=1e-5)


def test_the_info_file_names_the_model(exported):
    _, saved = exported
    info = json.loads((saved / "assets.extra" / "graves_tf.json").read_text())
    assert info["model"] == "handwriting_predictor" and info["offset_std"] == STD and info["max_num_steps"] == 20000
