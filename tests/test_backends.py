"""The models on JAX and PyTorch compute what they compute on TensorFlow, train there, and come back.

One process per backend (``KERAS_BACKEND`` is fixed when Keras is imported)
runs ``tests/backend_checks.py`` on the cases this TensorFlow process wrote:
the three tiny models with fixed random weights, in float32 and float64,
with derivative clips low enough to bind. This process runs the same checks
on TensorFlow and compares:

* per-sequence losses and the gradients of their sum, with the fused
  backward and with autodiff of the step, equal TensorFlow's to 1e-5
  (float32) and 1e-9 (float64) of each tensor's largest value; the clipped
  gradients differ from the unclipped ones (each clip binds) and the
  unclipped ones agree too;
* ``forward``, ``call`` and ``step`` return the same structure and values;
* a few updates with Adam and with the paper's RMSProp on the PTB builder's
  dummy data (the input pipeline's batches as NumPy) lower the loss, by as
  much as the same updates on TensorFlow;
* the saved run loads into the TensorFlow model, scores the batches as the
  backend did, and ``python -m export`` writes a SavedModel from it.

Skipped where JAX or PyTorch is not installed.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import backend_checks  # noqa: E402
from backend_checks import CLIPS, build, case_names, make_batch  # noqa: E402
from model_helpers import randomize  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
DUMMY_PTB = REPO / "tfds_builders" / "ptb" / "dummy_data" / "manual"
TOLERANCE = {"float32": 1e-5, "float64": 1e-9}
BACKEND_MODULES = {"jax": "jax", "torch": "torch"}
TRAIN_SPEC = dict(model="text_predictor", dataset="ptb_char", num_layers=2, units=16, lstm_clip=1.0)


def assert_close(got, want, dtype, what):
    """|got - want| <= tolerance * max(1, max |want|), elementwise."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    bound = TOLERANCE[dtype] * max(1.0, float(np.max(np.abs(want), initial=0.0)))
    error = float(np.max(np.abs(got - want), initial=0.0))
    assert error <= bound, f"{what}: off by {error:.3g} > {bound:.3g}"


def _pipeline_batches(tmp_path, count=3):
    from graves_tf import backends, experiment
    from graves_tf.data import datasets

    spec = experiment.ModelSpec(**TRAIN_SPEC)
    bundle = datasets.load_bundle(
        spec, 4, data_dir=str(tmp_path / "tfds"), manual_dir=str(DUMMY_PTB), segment_length=10
    )
    keys = ("inputs", "targets")
    batches = [{k: b[k] for k in keys} for b in backends.numpy_batches(bundle.make_epoch(0), count)]
    return spec, bundle, batches


def write_cases(folder):
    """Writes ``folder/cases.npz``; returns its path, the training batches and their initial losses."""
    import dataclasses

    from graves_tf import experiment

    arrays = {}
    for n, (name, dtype) in enumerate(case_names()):
        rng = np.random.default_rng(n)
        model = build(name, dtype, CLIPS[name])
        randomize(model, rng)
        key = f"{name}/{dtype}"
        arrays[f"{key}/paths"] = np.array([v.path for v in model.weights])
        for i, v in enumerate(model.weights):
            arrays[f"{key}/w{i}"] = v.numpy()
        for k, v in make_batch(name, rng, dtype).items():
            arrays[f"{key}/batch/{k}"] = v
    spec, bundle, batches = _pipeline_batches(folder)
    keras.utils.set_random_seed(0)
    model = experiment.build_model(spec)
    arrays["train/paths"] = np.array([v.path for v in model.weights])
    for i, v in enumerate(model.weights):
        arrays[f"train/w{i}"] = v.numpy()
    arrays["train/spec"] = np.array(json.dumps(dataclasses.asdict(spec)))
    arrays["train/bundle"] = np.array(json.dumps(
        {"vocabulary": bundle.vocabulary.symbols, "end_of_line": bundle.vocabulary.end_of_line,
         "sentences": bundle.sentences}
    ))
    arrays["train/num_batches"] = np.array(len(batches))
    for i, b in enumerate(batches):
        for k, v in b.items():
            arrays[f"train/{i}/batch/{k}"] = v
    path = folder / "cases.npz"
    np.savez(path, **arrays)
    return path, batches, [float(np.sum(model(b))) for b in batches]


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """The cases file, TensorFlow's results on it, and the training batches."""
    if not any(importlib.util.find_spec(module) for module in BACKEND_MODULES.values()):
        pytest.skip("neither JAX nor PyTorch is installed (pip install -e '.[test]' installs both)")
    folder = tmp_path_factory.mktemp("backend_cases")
    path, batches, initial_losses = write_cases(folder)
    loaded = np.load(path)
    reference = {}
    backend_checks.model_checks(loaded, reference)
    backend_checks.training_checks(loaded, reference, str(folder))  # graves_tf.backends.Trainer on TensorFlow
    return {"path": path, "npz": loaded, "tf": reference, "initial_losses": initial_losses, "batches": batches}


@pytest.fixture(scope="module", params=sorted(BACKEND_MODULES))
def backend(request, cases, tmp_path_factory):
    """``(name, results, out_dir)`` of the checks run under one backend."""
    name = request.param
    if importlib.util.find_spec(BACKEND_MODULES[name]) is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]' installs it)")
    out_dir = tmp_path_factory.mktemp(f"backend_{name}")
    env = dict(os.environ, KERAS_BACKEND=name, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "backend_checks.py"), str(cases["path"]), str(out_dir)],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-6000:]
    results = np.load(out_dir / "results.npz")
    assert str(results["backend"]) == name
    return name, results, out_dir


def _gradients(results, key, which):
    paths = results[f"{key}/grad_paths"]
    return [(str(p), results[f"{key}/{which}/g{i}"]) for i, p in enumerate(paths)]


@pytest.mark.parametrize("variant", ["fused1", "fused0"], ids=["fused_backward", "autodiff"])
def test_losses_and_gradients_equal_tensorflows(cases, backend, variant):
    """Against TensorFlow's fused backward (itself checked against autodiff in tests/test_fast_paths.py)."""
    name, results, _ = backend
    tf_results = cases["tf"]
    compared = 0
    for model_name, dtype in case_names():
        key = f"{model_name}/{dtype}"
        assert str(results[f"{key}/dtype"]) == dtype, f"{name} {key}: losses in {results[f'{key}/dtype']}"
        if variant not in [v for v, _, _ in backend_checks.variants(dtype)]:
            continue
        assert_close(results[f"{key}/{variant}/loss"], tf_results[f"{key}/fused1/loss"], dtype, f"{name} {key} loss")
        for (path, got), (_, want) in zip(_gradients(results, key, variant), _gradients(tf_results, key, "fused1")):
            assert_close(got, want, dtype, f"{name} {key} d/d {path}")
        compared += 1
    assert compared >= 3


def test_clipping_binds_and_is_exact_on_each_backend(cases, backend):
    """Each clip changes TensorFlow's gradients; the backend's unclipped gradients equal TensorFlow's too."""
    name, results, _ = backend
    tf_results = cases["tf"]
    npz = cases["npz"]
    for model_name, dtype in case_names():
        key = f"{model_name}/{dtype}"
        clipped = [g for _, g in _gradients(tf_results, key, "fused1")]
        lstm_clip, output_clip = CLIPS[model_name]
        batch = backend_checks.case_batch(npz, key)
        for clips in ((None, output_clip), (lstm_clip, None)):
            model = build(model_name, dtype, clips)
            backend_checks.set_weights(model, npz, key)
            _, grads = backend_checks.loss_and_gradients(model, batch)
            differs = max(float(np.max(np.abs(a - b))) for a, b in zip(grads, clipped))
            assert differs > 100 * TOLERANCE[dtype], f"{key}: clips {clips} change no gradient"
        if dtype == "float64":
            pairs = zip(_gradients(results, key, "unclipped"), _gradients(tf_results, key, "unclipped"))
            for (path, got), (_, want) in pairs:
                assert_close(got, want, dtype, f"{name} {key} unclipped d/d {path}")


def test_forward_call_and_step_return_the_same_structure_and_values(cases, backend):
    name, results, _ = backend
    tf_results = cases["tf"]
    for model_name, dtype in case_names():
        key = f"{model_name}/{dtype}"
        for part in ("forward", "call", "step"):
            assert str(results[f"{key}/{part}_structure"]) == str(tf_results[f"{key}/{part}_structure"]), (name, key, part)
        for part in ("forward", "step"):
            count = sum(1 for k in tf_results if k.startswith(f"{key}/{part}/"))
            assert count > 0 or (part, dtype) == ("step", "float64")
            for i in range(count):
                assert_close(results[f"{key}/{part}/{i}"], tf_results[f"{key}/{part}/{i}"], dtype, f"{name} {key} {part}[{i}]")


@pytest.mark.parametrize("optimizer", sorted(backend_checks.TRAIN_RATES))
def test_a_few_updates_lower_the_loss(cases, backend, optimizer):
    name, results, _ = backend
    before = sum(cases["initial_losses"])
    after = float(np.sum(results[f"train/{optimizer}/final_losses"]))
    assert np.all(np.isfinite(results[f"train/{optimizer}/step_losses"]))
    assert after < 0.9 * before, f"{name} {optimizer}: loss {before:.3f} -> {after:.3f}"


@pytest.mark.parametrize("optimizer", sorted(backend_checks.TRAIN_RATES))
def test_the_updates_are_tensorflows(cases, backend, optimizer):
    """The same losses, update after update, as graves_tf.backends.Trainer on TensorFlow (float32)."""
    name, results, _ = backend
    got = results[f"train/{optimizer}/step_losses"]
    want = cases["tf"][f"train/{optimizer}/step_losses"]
    np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=f"{name} {optimizer}")


def test_the_saved_run_loads_into_tensorflow_and_exports(cases, backend, tmp_path):
    from graves_tf import run_dir

    name, results, out_dir = backend
    for optimizer in sorted(backend_checks.TRAIN_RATES):
        folder = out_dir / f"run_{optimizer}"
        model, config = run_dir.load_run(str(folder))
        assert config["checkpoint"].endswith("weights.npz")
        got = [float(np.sum(model(b))) for b in cases["batches"]]
        assert_close(got, results[f"train/{optimizer}/final_losses"], "float32", f"{name} {optimizer} reloaded loss")
    output = tmp_path / "exported" / "1"
    export = subprocess.run(
        [sys.executable, "-m", "export", f"--model_dir={out_dir / 'run_adam'}", f"--output={output}"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert export.returncode == 0, export.stderr[-4000:]
    assert (output / "saved_model.pb").exists()
