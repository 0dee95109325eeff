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

TEXTS = ["hello there", "ab"]
BIAS, SEED, MAX_STEPS = [0.5, 1.0], 7, 60


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    spec = experiment.ModelSpec(
        model="handwriting_synthesizer", dataset="iam_ondb", num_layers=2, units=16, num_mixtures=3,
        num_window_gaussians=2,
    )
    keras.utils.set_random_seed(0)
    model = experiment.build_model(spec)
    for v in model.weights:  # random weights everywhere, peepholes too
        v.assign(np.random.default_rng(len(v.name)).normal(0, 0.3, v.shape))
    stats = types.SimpleNamespace(offset_mean=[8.0, 0.1], offset_std=[40.0, 37.0], vocabulary=None)
    run_dir.save_run_config(str(folder / "run"), spec, stats)
    tf.train.Checkpoint(model=model).save(str(folder / "run" / "checkpoints" / "ckpt"))
    output = folder / "saved" / "1"
    result = subprocess.run(
        [sys.executable, "-m", "export", f"--model_dir={folder / 'run'}", f"--output={output}"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return folder, output


def in_process_sample(run_folder):
    model, config = run_dir.load_run(str(run_folder))
    from graves_tf import alphabet

    ids = [alphabet.PAPER.encode(t) for t in TEXTS]
    width = max(map(len, ids))
    text = np.zeros((len(ids), width), np.int32)
    mask = np.zeros((len(ids), width), np.float32)
    for row, i in enumerate(ids):
        text[row, : len(i)], mask[row, : len(i)] = i, 1
    context = model.window.context(tf.constant(text), tf.constant(mask))
    strokes, lengths = sampling.compiled_sampler(model)(len(TEXTS), MAX_STEPS, BIAS, SEED, context)
    denormalised = [sampling.denormalise(s[:n], config["offset_mean"], config["offset_std"]) for s, n in zip(strokes.numpy(), lengths.numpy())]
    return denormalised, lengths.numpy()


def test_a_process_without_graves_tf_gets_the_in_process_strokes(exported, tmp_path):
    folder, saved = exported
    script = textwrap.dedent(f"""
        import importlib.abc, json, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in ("graves_tf", "export"):
                    raise ImportError("graves_tf is not installed here")
        sys.meta_path.insert(0, Block())
        sys.path = [p for p in sys.path if p not in ("", {str(os.getcwd())!r})]
        import numpy as np, tensorflow as tf
        try:
            import graves_tf
            sys.exit("graves_tf was importable")
        except ImportError:
            pass
        model = tf.saved_model.load({str(saved)!r})
        out = model.signatures["serving_default"](
            text=tf.constant({TEXTS!r}), bias=tf.constant({BIAS!r}), seed=tf.constant({SEED}, tf.int64),
            max_steps=tf.constant({MAX_STEPS}))
        np.savez({str(tmp_path / 'out.npz')!r}, strokes=out["strokes"].numpy(), lengths=out["lengths"].numpy())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    saved_out = np.load(tmp_path / "out.npz")
    expected, lengths = in_process_sample(folder / "run")
    np.testing.assert_array_equal(saved_out["lengths"], lengths)
    for row, n in enumerate(lengths):
        np.testing.assert_allclose(saved_out["strokes"][row, :n], expected[row], rtol=1e-5, atol=1e-4)
        assert np.all(saved_out["strokes"][row, n:] == 0)
    # Bit for bit what the export's sampling function gives in this process, before saving.
    from export.saved_model import HandwritingExport
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
    assert out["strokes"].shape == (1, 40, 3) and 0 <= int(out["lengths"][0]) <= 40
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
    from export.saved_model import TextExport
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
