"""``python -m export --xla``: the sampling loop compiled by XLA inside the SavedModel.

A process without graves_tf loads and runs it, and for a fixed seed it writes
the strokes of the in-process XLA sampler (lengths equal, offsets to 1e-4
whiteboard units: the same XLA computation, traced from a different graph);
bad inputs are still refused before the compiled part.
"""

import os
import subprocess
import sys
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf import alphabet, experiment, run_dir, sampling  # noqa: E402
from export_helpers import BIAS, MAX_STEPS, SEED, TEXTS, export_tiny_synthesis, run_without_graves_tf, texts_context  # noqa: E402,F401


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_tiny_synthesis(tmp_path_factory.mktemp("export_xla"), "--xla")


def in_process_xla_sample(run_folder):
    model, config = run_dir.load_run(str(run_folder))
    context = texts_context(model)
    strokes, lengths = sampling.compiled_sampler(model, jit_compile=True)(len(TEXTS), MAX_STEPS, BIAS, SEED, context)[:2]
    offsets = [sampling.denormalise(s[:n], config["offset_mean"], config["offset_std"])
               for s, n in zip(strokes.numpy(), lengths.numpy())]
    return offsets, lengths.numpy()


def test_the_export_holds_an_xla_function(exported):
    _, saved = exported
    assert b"_XlaMustCompile" in (saved / "saved_model.pb").read_bytes()


def test_a_process_without_graves_tf_runs_it_and_gets_the_in_process_xla_strokes(exported, tmp_path):
    folder, saved = exported
    result = run_without_graves_tf(saved, f"""
        out = model.signatures["serving_default"](
            text=tf.constant({TEXTS!r}), bias=tf.constant({BIAS!r}), seed=tf.constant({SEED}, tf.int64),
            max_steps=tf.constant({MAX_STEPS}))
        again = model.signatures["serving_default"](
            text=tf.constant({TEXTS!r}), bias=tf.constant({BIAS!r}), seed=tf.constant({SEED}, tf.int64),
            max_steps=tf.constant({MAX_STEPS}))
        assert np.array_equal(out["strokes"].numpy(), again["strokes"].numpy())
        primed = model.signatures["generate_primed"](
            text=tf.constant(["more"]), bias=tf.constant([0.5]), seed=tf.constant(1, tf.int64),
            max_steps=tf.constant(40), prime_strokes=tf.constant([[[0, 0, 0], [10, 0, 0], [10, 0, 1]]], tf.float32),
            prime_lengths=tf.constant([3]), prime_text=tf.constant(["ab"]))
        try:
            model.signatures["serving_default"](
                text=tf.constant(["ab"]), bias=tf.constant([-1.0]), seed=tf.constant(1, tf.int64),
                max_steps=tf.constant(40))
            refused = ""
        except tf.errors.InvalidArgumentError as error:
            refused = error.message
        np.savez({str(tmp_path / 'out.npz')!r}, strokes=out["strokes"].numpy(), lengths=out["lengths"].numpy(),
                 primed=primed["lengths"].numpy(), refused=refused)
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    expected, lengths = in_process_xla_sample(folder / "run")
    np.testing.assert_array_equal(out["lengths"], lengths)
    for row, n in enumerate(lengths):
        np.testing.assert_allclose(out["strokes"][row, :n], expected[row], rtol=1e-5, atol=1e-4)
        assert np.all(out["strokes"][row, n:] == 0)
    assert 0 <= int(out["primed"][0]) <= 40
    assert "bias: every bias must be >= 0" in str(out["refused"])  # checked before the compiled loop


def test_texts_of_one_16_character_bucket_share_one_compiled_loop(exported):
    """Padded to 16 characters with max_steps capped for that width: one trace (one XLA program) for both."""
    from graves_tf.export.saved_model import HandwritingExport

    folder, _ = exported
    model, config = run_dir.load_run(str(folder / "run"))
    module = HandwritingExport(model, alphabet.PAPER, config["offset_mean"], config["offset_std"], jit_compile=True)
    for text in ("ab", "hello there"):
        out = module.generate(tf.constant([text]), tf.constant([0.5]), tf.constant(1, tf.int64), tf.constant(10**6))
        assert 0 < int(out["lengths"][0]) <= 40 * len(text)  # each sample keeps its own text's cap
    assert module._sample.experimental_get_tracing_count() == 1
