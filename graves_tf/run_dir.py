"""A training run's folder: its model configuration and checkpoints, loadable without flags.

``python -m graves_tf.train`` writes ``MODEL_DIR/model_config.json`` (the
:class:`~graves_tf.experiment.ModelSpec`, the offset normalisation statistics
of handwriting data, the vocabulary of text data); :func:`load_run` rebuilds
the model from it and restores a checkpoint.
"""

import dataclasses
import json
import os

import numpy as np

CONFIG_FILE = "model_config.json"


def save_run_config(model_dir, spec, bundle=None):
    """Writes the model configuration (and data statistics) of a run."""
    config = {"spec": dataclasses.asdict(spec)}
    if bundle is not None:
        if bundle.offset_mean is not None:
            config["offset_mean"] = np.asarray(bundle.offset_mean).tolist()
            config["offset_std"] = np.asarray(bundle.offset_std).tolist()
        if bundle.vocabulary is not None:
            config["vocabulary"] = bundle.vocabulary.symbols
            config["end_of_line"] = bundle.vocabulary.end_of_line
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, CONFIG_FILE), "w") as f:
        json.dump(config, f, indent=2)
    return config


def checkpoint_path(model_dir, which="best"):
    """``best`` (lowest validation loss, else latest), ``latest``, or a checkpoint path."""
    import tensorflow as tf

    if which not in ("best", "latest"):
        return which
    folders = ["best", "checkpoints"] if which == "best" else ["checkpoints"]
    for folder in folders:
        found = tf.train.latest_checkpoint(os.path.join(model_dir, folder))
        if found:
            return found
    raise FileNotFoundError(f"no checkpoint in {model_dir} (looked in {', '.join(folders)})")


def load_run(model_dir, checkpoint="best"):
    """``(model, config)`` of a training run, its weights restored."""
    import tensorflow as tf

    from graves_tf import experiment

    path = os.path.join(model_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: {model_dir} is not a graves_tf training run (python -m graves_tf.train writes it)"
        )
    with open(path) as f:
        config = json.load(f)
    spec = experiment.ModelSpec(**config["spec"])
    model = experiment.build_model(spec)
    checkpoint_file = checkpoint_path(model_dir, checkpoint)
    tf.train.Checkpoint(model=model).restore(checkpoint_file).expect_partial().assert_existing_objects_matched()
    config["checkpoint"] = checkpoint_file
    return model, config
