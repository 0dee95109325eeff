"""Checkpoints that are whole: checked when written, skipped when found broken.

A checkpoint is a ``.index`` file and a ``.data-*`` file; a full disk, a killed
copy or a lost power supply can leave either short, and TensorFlow then fails
every restore with ``IndexError: Read less bytes than requested`` (or a
checksum error). Here:

* :func:`write_options` makes ``tf.train.CheckpointManager.save`` flush the new
  files to disk and read every tensor back (checksums included) *before* it
  moves the folder's ``checkpoint`` pointer to them, so a crash or a short
  write mid-save leaves the pointer on the previous, whole checkpoint;
* :func:`newest_intact` finds the newest readable checkpoint of a folder,
  logging a warning that names each broken one it passes over (training
  resumes from it; ``best``/``latest`` of every tool read it).
"""

import os

from absl import logging


class UnreadableCheckpoint(ValueError):
    """A checkpoint (or every checkpoint of a folder) cannot be read."""


def _files(path):
    import tensorflow as tf

    return tf.io.gfile.glob(path + ".index") + tf.io.gfile.glob(path + ".data-*")


def problem(path):
    """Why checkpoint ``path`` cannot be restored, or None when every tensor of it reads back whole."""
    import tensorflow as tf

    if not tf.io.gfile.exists(path + ".index"):
        return f"{path}.index is missing"
    if not tf.io.gfile.glob(path + ".data-*"):
        return f"its data file {path}.data-00000-of-00001 is missing"
    try:
        reader = tf.compat.v1.train.NewCheckpointReader(path)  # as run_dir.checkpoint_reader (ram://)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)  # reads the bytes and checks their checksum
    except (IndexError, ValueError, tf.errors.OpError) as error:
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else 'unreadable'}"
    return None


def verify(path):
    """Raises :class:`UnreadableCheckpoint` unless checkpoint ``path`` reads back whole."""
    found = problem(path)
    if found:
        raise UnreadableCheckpoint(f"checkpoint {path} is unreadable: {found}")


def _sync(path):
    """Flushes a local checkpoint's files (and their folder) to the disk; remote file systems commit on close."""
    if "://" in path:
        return
    for name in _files(path):
        with open(name, "rb") as f:
            os.fsync(f.fileno())
    folder = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _commit_check(path):
    _sync(path)
    verify(path)


def write_options():
    """``tf.train.CheckpointOptions`` for ``CheckpointManager.save``: sync and verify before the pointer moves.

    The manager runs these callbacks after the files are written and before
    its own, which records the new checkpoint as the latest; a new options
    object each time, since the manager appends to the list it is given.
    """
    import tensorflow as tf

    return tf.train.CheckpointOptions(experimental_write_callbacks=[_commit_check])


def listed(folder):
    """The checkpoints a folder's ``checkpoint`` file lists, newest first (none: [])."""
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(folder)
    if state is None:
        return []
    paths = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path:
        if state.model_checkpoint_path in paths:
            paths.remove(state.model_checkpoint_path)
        paths.append(state.model_checkpoint_path)
    return paths[::-1]


def newest_intact(folder):
    """The newest whole checkpoint of ``folder`` (``checkpoints/`` or ``best/`` of a run), or None if it has none.

    Each broken newer one is named in a warning. Raises
    :class:`UnreadableCheckpoint` when the folder lists checkpoints but none
    can be read.
    """
    paths = listed(folder)
    broken = []
    for path in paths:
        found = problem(path)
        if found is None:
            if broken:
                logging.warning("using %s, the newest intact checkpoint of %s", path, folder)
            return path
        logging.warning("skipping checkpoint %s: %s", path, found)
        broken.append(f"{path} ({found})")
    if broken:
        raise UnreadableCheckpoint(
            f"no checkpoint of {folder} can be read: {'; '.join(broken)}; copy them again, "
            "or move the folder away to start afresh"
        )
    return None
