"""The training paths (graves_tf.train_path): same numbers on each, the probe's choice, its cache, the flags.

* fused, autodiff and XLA give the same loss and gradients with the paper's
  derivative clipping acting (float64, rtol 1e-9);
* the chooser takes the fastest of given timings, a failed path never;
* ``select`` probes once per machine and model and reads the cache after;
* ``python -m graves_tf.train --train_path=...`` overrides, ``--jit_compile``
  still means xla, and ``auto`` prints the probe and then the cached choice.
"""

import os
import pathlib
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf import experiment, machine, train_path  # noqa: E402
from model_helpers import as_tensors, randomize, tiny_models  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
DUMMY_PTB = REPO / "tfds_builders" / "ptb" / "dummy_data" / "manual"


def gradients(model, batch, path):
    loss, grads = train_path.gradient_function(model, path)(batch)
    return loss.numpy(), [g.numpy() for g in grads]


def set_clipping(model, on):
    """The paper's clips (the model's own) on, or every clip off, in place."""
    if not hasattr(model, "_clips"):
        model._clips = [cell.clip for cell in model.stack.cells], model.head.clip
    lstm_clips, head_clip = model._clips
    for cell, clip in zip(model.stack.cells, lstm_clips):
        cell.clip = clip if on else None
    model.head.clip = head_clip if on else None


@pytest.mark.parametrize("name", ["text", "synthesis"])
def test_the_three_paths_give_the_same_loss_and_gradients_with_the_papers_clipping(name):
    rng = np.random.default_rng(3)
    model, make_batch = tiny_models("float64")[name]
    randomize(model, rng, scale=1.0)
    raw = make_batch(rng)
    if name == "synthesis":  # far-off targets: output derivatives beyond the clip of 100, LSTM ones beyond 10
        raw["targets"] = raw["targets"] * np.array([40.0, 40.0, 1.0])
    batch = as_tensors(raw, "float64")
    set_clipping(model, False)
    _, unclipped = gradients(model, batch, "autodiff")
    set_clipping(model, True)
    want_loss, want = gradients(model, batch, "autodiff")  # the straightforward path
    assert any(not np.allclose(a, b, rtol=1e-6) for a, b in zip(unclipped, want)), "the clipping did not act"
    for path in ("fused", "xla"):
        loss, got = gradients(model, batch, path)
        np.testing.assert_allclose(loss, want_loss, rtol=1e-9, err_msg=path)
        for variable, g, w in zip(model.trainable_variables, got, want):
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9, err_msg=f"{path}: {variable.path}")
    assert model.stack.fused_backward is True  # gradient_function("fused"/"xla") leaves the fused layers on


def test_the_chooser_takes_the_fastest_path_and_never_a_failed_one():
    assert train_path.choose({"fused": 2.0, "autodiff": 1.5, "xla": 3.0}) == "autodiff"
    assert train_path.choose({"fused": 2.0, "autodiff": 2.5, "xla": 1.0}) == "xla"
    assert train_path.choose({"fused": 2.0, "autodiff": None, "xla": None}) == "fused"
    assert train_path.choose({"fused": 1.0, "autodiff": 1.0, "xla": 1.0}) == "fused"  # ties: the first
    with pytest.raises(RuntimeError, match="every training path failed"):
        train_path.choose({"fused": None, "autodiff": None, "xla": None})


def test_the_probe_runs_once_picks_the_fastest_of_its_timings_and_is_read_from_the_cache(tmp_path):
    spec = experiment.spec_from_config("tiny_synthesis")
    model = experiment.build_model(spec)
    fake = {"fused": 0.30, "autodiff": 0.20, "xla": 0.25}
    timed = []

    def timer(model, batch, path):
        timed.append((path, tuple(batch["inputs"].shape)))
        return fake[path]

    cache = str(tmp_path / "cache.json")
    path, reason = train_path.select(model, spec, 8, timer=timer, cache=cache, min_weights=0)
    assert path == "autodiff" and "probe of" in reason, reason
    assert timed == [(p, (8, train_path.PROBE_STEPS, 3)) for p in train_path.PATHS]  # the run's batch size

    def no_timer(*args):
        raise AssertionError("probed again instead of reading the cache")

    path, reason = train_path.select(model, spec, 8, timer=no_timer, cache=cache, min_weights=0)
    assert path == "autodiff" and "cached in" in reason and "autodiff 0.200 s" in reason, reason
    # Another batch size, or bfloat16 matmuls, is another entry: probed anew.
    timed.clear()
    assert train_path.select(model, spec, 4, timer=timer, cache=cache, min_weights=0)[0] == "autodiff"
    assert len(timed) == 3
    # A path asked for is taken as it is; a small model is not probed.
    assert train_path.select(model, spec, 8, "xla", timer=no_timer, cache=cache)[0] == "xla"
    path, reason = train_path.select(model, spec, 2, timer=no_timer, cache=cache)
    assert path == "fused" and "not probed" in reason


def test_a_failing_path_is_ruled_out_by_the_probe():
    def timer(model, batch, path):
        if path == "xla":
            raise tf.errors.InvalidArgumentError(None, None, "XLA cannot compile this")
        return {"fused": 0.5, "autodiff": 0.7}[path]

    seconds = train_path.probe(None, {}, timer=timer)
    assert seconds == {"fused": 0.5, "autodiff": 0.7, "xla": None}
    assert train_path.choose(seconds) == "fused"


def test_jit_compile_means_xla_and_contradicting_paths_are_refused():
    assert train_path.resolve_request("auto", True) == "xla"
    assert train_path.resolve_request("xla", True) == "xla"
    assert train_path.resolve_request("autodiff", False) == "autodiff"
    with pytest.raises(ValueError, match="--jit_compile means --train_path=xla"):
        train_path.resolve_request("autodiff", True)


def test_the_cache_key_names_the_machine_the_model_and_the_batch():
    spec = experiment.spec_from_config("tiny_synthesis")
    key = train_path.cache_key(spec, 8)
    assert machine.cpu_model() in key and tf.__version__ in key and '"batch_size": 8' in key
    assert key != train_path.cache_key(spec, 8, "bfloat16") != train_path.cache_key(spec, 16)


def train(tmp_path, *extra, cache=None):
    env = dict(os.environ, XDG_CACHE_HOME=str(cache or tmp_path / "cache"))
    return subprocess.run(
        [
            sys.executable, "-m", "graves_tf.train", f"--flagfile={experiment.config_path('tiny_text')}",
            f"--data_dir={tmp_path / 'tfds'}", f"--manual_dir={DUMMY_PTB}", f"--model_dir={tmp_path / 'run'}",
            "--batch_size=2", "--segment_length=5", "--eval_every=0", "--noprogress_bar", *extra,
        ],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )


def test_train_path_override_and_jit_compile(tmp_path):
    result = train(tmp_path, "--train_path=autodiff", "--train_steps=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training path: autodiff (as asked)" in result.stdout, result.stdout
    result = train(tmp_path, "--jit_compile", "--train_path=autodiff", "--train_steps=4")
    assert result.returncode != 0 and "--jit_compile means --train_path=xla" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_jit_compile_still_trains_on_xla(tmp_path):
    result = train(tmp_path, "--jit_compile", "--train_steps=3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training path: xla (as asked)" in result.stdout, result.stdout


@pytest.mark.slow
def test_auto_probes_then_reads_the_cache(tmp_path):
    cache = tmp_path / "cache"
    first = train(tmp_path, "--train_steps=1", "--train_path_probe_min_weights=0", cache=cache)
    assert first.returncode == 0, first.stderr[-3000:]
    line = next(l for l in first.stdout.splitlines() if l.startswith("training path:"))
    assert "probe of" in line and all(f"{p} " in line for p in train_path.PATHS), line
    assert (cache / "graves_tf" / train_path.CACHE_FILE).exists()
    second = train(tmp_path, "--train_steps=2", "--train_path_probe_min_weights=0", cache=cache)
    assert second.returncode == 0, second.stderr[-3000:]
    again = next(l for l in second.stdout.splitlines() if l.startswith("training path:"))
    assert "cached in" in again and again.split()[2] == line.split()[2], (line, again)


def test_bfloat16_is_refused_with_one_line_on_a_cpu_without_it(monkeypatch):
    monkeypatch.setattr(machine, "_cpuinfo", lambda: ("Some AVX2 CPU", frozenset({"avx2", "fma"})))
    with pytest.raises(ValueError) as error:
        machine.check_bfloat16("--precision=bfloat16")
    message = str(error.value)
    assert "\n" not in message and "AVX512_BF16" in message and "Some AVX2 CPU" in message
