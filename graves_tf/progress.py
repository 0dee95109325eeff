"""How far a training run got: its latest checkpoint's counters and the epochs it logged.

Read by ``benchmarks.handwriting_results`` (the "trained" column) and by
``release`` (stored in a release's ``model_config.json``, so a shipped model
says how far it trained).
"""

import os


def logged_scalars(model_dir, tag, split="train"):
    """``{step: (wall time, value)}`` of one scalar a run logged to TensorBoard (``model_dir/split/events*``)."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    logged = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(model_dir, split, "events*"))):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag == tag:
                    logged[int(event.step)] = (event.wall_time, float(tf.make_ndarray(value.tensor)))
    return logged


def logged_epochs(model_dir, up_to_step):
    """The ``epochs`` scalar (passes over the data) training logged last by ``up_to_step``, or None."""
    logged = logged_scalars(model_dir, "epochs")
    steps = [step for step in logged if step <= up_to_step]
    return logged[max(steps)][1] if steps else None


def training_progress(model_dir):
    """How far a run trained, from its latest checkpoint.

    Returns ``steps``, ``epochs`` (the passes over the data it logged, or None), ``epoch`` (the one under
    way, from 0), ``hours`` (of training), ``plateau_cuts`` (learning-rate cuts by ``--plateau_patience``)
    and ``validations_since_best``: None where the checkpoint lacks a counter; and ``latest_checkpoint``.
    """
    from graves_tf import run_dir

    latest = run_dir.checkpoint_path(model_dir, "latest")
    reader = run_dir.checkpoint_reader(latest)

    def value(name):
        key = f"{name}/.ATTRIBUTES/VARIABLE_VALUE"
        return reader.get_tensor(key) if reader.has_tensor(key) else None

    def integer(name):
        found = value(name)
        return None if found is None else int(found)

    step = integer("step") or 0
    seconds = value("train_seconds")
    return {
        "steps": step,
        "epochs": logged_epochs(model_dir, step),
        "epoch": integer("epoch"),
        "hours": None if seconds is None else float(seconds) / 3600.0,
        "plateau_cuts": integer("plateau_cuts"),
        "validations_since_best": integer("validations_since_best"),
        "latest_checkpoint": latest,
    }
