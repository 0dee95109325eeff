"""Training-run folders for tests: a model config with data statistics and a checkpoint of random weights."""

import types

import keras
import tensorflow as tf

from graves_tf import experiment, run_dir


def make_handwriting_run(folder, spec, offset_mean, offset_std, seed=0, step=None):
    """Writes ``folder`` as ``python -m graves_tf.train`` would (``step``: also checkpoint a step counter)."""
    keras.utils.set_random_seed(seed)
    model = experiment.build_model(spec)
    bundle = types.SimpleNamespace(offset_mean=offset_mean, offset_std=offset_std, vocabulary=None)
    run_dir.save_run_config(str(folder), spec, bundle)
    trackables = {"model": model}
    if step is not None:
        trackables["step"] = tf.Variable(step, dtype=tf.int64)
    tf.train.Checkpoint(**trackables).save(str(folder / "checkpoints" / "ckpt"))
    return str(folder)
