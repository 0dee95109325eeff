"""What the export tests share: a tiny synthesis run exported by the command, the texts it samples, and a
process in which graves_tf cannot be imported (where a served model lives)."""

import os
import pathlib
import subprocess
import sys
import textwrap
import types

import keras
import numpy as np
import tensorflow as tf

from graves_tf import alphabet, experiment, run_dir

REPO = pathlib.Path(__file__).resolve().parents[1]
TEXTS = ["hello there", "ab"]
BIAS, SEED, MAX_STEPS = [0.5, 1.0], 7, 60


def export_tiny_synthesis(folder, *flags):
    """A 2 x 16 synthesis run of random weights in ``folder/run``, exported by ``python -m export [flags]`` (run
    at the checkout's top) to ``folder/saved/1``; returns ``(folder, the version folder)``."""
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
        [sys.executable, "-m", "export", f"--model_dir={folder / 'run'}", f"--output={output}", *flags],
        capture_output=True, text=True, timeout=600, cwd=REPO,  # python -m export: a checkout's top level
    )
    assert result.returncode == 0, result.stderr
    return folder, output


def texts_context(model):
    """The window's context of :data:`TEXTS` in the paper's alphabet."""
    ids = [alphabet.PAPER.encode(t) for t in TEXTS]
    width = max(map(len, ids))
    text = np.zeros((len(ids), width), np.int32)
    mask = np.zeros((len(ids), width), np.float32)
    for row, i in enumerate(ids):
        text[row, : len(i)], mask[row, : len(i)] = i, 1
    return model.window.context(tf.constant(text), tf.constant(mask))


def run_without_graves_tf(saved, body, cwd):
    """Runs ``body`` (Python source; ``model`` is the loaded SavedModel) in a process where graves_tf cannot be imported."""
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
    """) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=cwd)
