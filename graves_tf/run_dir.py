"""A training run's folder: its model configuration and checkpoints, loadable without flags.

``python -m graves_tf.train`` writes ``MODEL_DIR/model_config.json`` (the
:class:`~graves_tf.experiment.ModelSpec`, the offset normalisation statistics
of handwriting data, the vocabulary of text data); :func:`load_run` rebuilds
the model from it and restores a checkpoint.

Every file goes through ``tf.io.gfile``, so ``MODEL_DIR`` may be a ``gs://``
(or any TensorFlow file system's) folder as well as a local one.
"""

import contextlib
import dataclasses
import json
import os

import numpy as np
from absl import logging

CONFIG_FILE = "model_config.json"
RELEASED_WEIGHTS = "weights.npz"  # graves_tf.pretrained.WEIGHTS_FILE: save_released_weights, load_released_weights
LOCK_FILE = ".training.lock"
KEPT_FOLDER = "kept"  # checkpoints kept by --keep_every
AVERAGED_STEPS = "averaged_steps"  # written by graves_tf.average_checkpoints
_HELD_LOCKS = set()


class RunInUseError(RuntimeError):
    """Another process is training in the same folder."""


@contextlib.contextmanager
def training_lock(model_dir):
    """Holds ``MODEL_DIR/.training.lock`` while a run trains there.

    Two trainings writing one folder would delete each other's checkpoints;
    the second one is refused with the first one's process id. The lock is
    an advisory ``flock`` on an open file, so it goes with its process: a
    killed run leaves no stale lock. Where ``fcntl`` does not exist
    (Windows), and in a folder on another file system (``gs://``,
    ``ram://``: no lock there goes with its process), nothing is locked.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    if is_remote(model_dir):
        yield
        return
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.realpath(os.path.join(model_dir, LOCK_FILE))
    if path in _HELD_LOCKS:  # this process holds it already (train.py, then Trainer.fit)
        yield
        return
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            raise RunInUseError(
                f"{model_dir} is being trained by another process (pid {holder}); stop it "
                "(SIGTERM saves a checkpoint) or train in another --model_dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        _HELD_LOCKS.add(path)
        try:
            yield
        finally:
            _HELD_LOCKS.discard(path)
            fcntl.flock(lock, fcntl.LOCK_UN)


def is_remote(path):
    """Whether ``path`` is on a file system of TensorFlow's (``gs://``, ``ram://``, ...), not a local path."""
    return "://" in str(path) and not str(path).startswith("file://")


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
            config["sentences"] = bundle.sentences
    import tensorflow as tf

    tf.io.gfile.makedirs(model_dir)
    with tf.io.gfile.GFile(os.path.join(model_dir, CONFIG_FILE), "w") as f:
        f.write(json.dumps(config, indent=2))
    return config


def trained_on_sentences(config):
    """Whether a text run was trained one sentence per sequence (runs from
    before this was recorded: Penn Treebank's default, sentences)."""
    return config.get("sentences", config["spec"]["dataset"] in ("ptb_char", "ptb_word"))


def checkpoint_path(model_dir, which="best"):
    """``best`` (lowest validation loss, else latest), ``latest``, or a checkpoint path.

    A released model (``python -m graves_tf.pretrained.release``: ``model_config.json``
    and ``weights.npz``, no checkpoints) answers both with its ``weights.npz``.
    ``best`` and ``latest`` skip broken checkpoints (:func:`checkpoint_files.newest_intact`)."""

    if which not in ("best", "latest"):
        return which
    import tensorflow as tf

    from graves_tf import checkpoint_files

    folders = ["best", "checkpoints"] if which == "best" else ["checkpoints"]
    for folder in folders:
        try:  # the newest intact one: a broken newer one is named in a warning and passed over
            found = checkpoint_files.newest_intact(os.path.join(model_dir, folder))
        except checkpoint_files.UnreadableCheckpoint as error:
            if folder != folders[-1]:  # best/ broken: the latest intact checkpoint instead
                logging.warning("%s; reading %s/checkpoints instead", error, model_dir)
                continue
            raise
        if found:
            return found
    released = os.path.join(model_dir, RELEASED_WEIGHTS)
    if tf.io.gfile.exists(released):
        return released
    raise FileNotFoundError(f"no checkpoint in {model_dir} (looked in {', '.join(folders)})")


def save_released_weights(model, path, dtype=np.float16):
    """Writes a released ``weights.npz``: every weight of ``model`` keyed by its Keras path, in ``dtype``
    (``graves_tf.pretrained.save_weights``)."""
    arrays = {}
    for variable in model.weights:
        if variable.path in arrays:
            raise ValueError(f"two weights share the path {variable.path}")
        arrays[variable.path] = np.asarray(variable.numpy(), dtype)
    np.savez_compressed(path, **arrays)


def load_released_weights(model, path):
    """Assigns the weights :func:`save_released_weights` wrote; refuses missing, extra or misshapen ones."""
    with np.load(path) as stored:
        stored = {key: stored[key] for key in stored.files}
    expected = {variable.path: variable for variable in model.weights}
    missing, extra = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or extra:
        raise ValueError(f"{path} does not fit the model: missing {missing}, unexpected {extra}")
    for key, variable in expected.items():
        if tuple(stored[key].shape) != tuple(variable.shape):
            raise ValueError(f"{path}: {key} has shape {stored[key].shape}, the model {variable.shape}")
        variable.assign(stored[key].astype(variable.dtype))


def restore_weights(model, path):
    """Reads the model's weights from a checkpoint: one a training run saved, one written with
    ``tf.train.Checkpoint(model=...).write`` (an averaged checkpoint), or a released ``.npz``."""
    import tensorflow as tf

    if path.endswith(".npz"):
        load_released_weights(model, path)
        return
    from graves_tf import checkpoint_files

    try:
        tf.train.Checkpoint(model=model).read(path).expect_partial().assert_existing_objects_matched()
    except (IndexError, tf.errors.OpError) as error:
        raise checkpoint_files.UnreadableCheckpoint(
            f"checkpoint {path} is unreadable: {checkpoint_files.problem(path) or error}"
        ) from None


def checkpoint_reader(path):
    """A reader of checkpoint ``path`` (its prefix, ``.../ckpt-N``), on any file system.

    ``tf.train.load_checkpoint`` takes a path that is a folder for the folder's
    latest checkpoint, and TensorFlow's ``ram://`` file system calls every
    prefix of a file a folder; the reader is opened on the prefix directly."""
    import tensorflow as tf

    return tf.compat.v1.train.NewCheckpointReader(path)


def _variable_key(name):
    return f"{name}/.ATTRIBUTES/VARIABLE_VALUE"


def checkpoint_step(path):
    """The training update a checkpoint was saved at (an averaged one: its last)."""
    return int(checkpoint_reader(path).get_tensor(_variable_key("step")))


def averaged_steps(path):
    """The updates whose weights a checkpoint averages (graves_tf.average_checkpoints), or None."""
    reader = checkpoint_reader(path)
    key = _variable_key(AVERAGED_STEPS)
    return [int(s) for s in reader.get_tensor(key)] if reader.has_tensor(key) else None


def load_run(model_dir, checkpoint="best"):
    """``(model, config)`` of a training run, its weights restored."""
    import tensorflow as tf

    from graves_tf import experiment

    path = os.path.join(model_dir, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"{path} not found: {model_dir} is not a graves_tf training run (python -m graves_tf.train writes it)"
        )
    with tf.io.gfile.GFile(path) as f:
        config = json.load(f)
    spec = experiment.ModelSpec(**config["spec"])
    model = experiment.build_model(spec)
    checkpoint_file = checkpoint_path(model_dir, checkpoint)
    restore_weights(model, checkpoint_file)
    config["checkpoint"] = checkpoint_file
    return model, config
