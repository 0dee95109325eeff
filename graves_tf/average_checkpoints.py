r"""Averages the weights of several checkpoints of one training run.

    python -m graves_tf.average_checkpoints --model_dir=runs/synthesis \
        --checkpoints=ckpt-750,ckpt-800,ckpt-850,ckpt-889

The mean of checkpoints taken along one run (late in training, a few dozen
updates apart) is usually a better network than any one of them: the updates'
noise averages out (Polyak averaging; "checkpoint averaging" in machine
translation). ``--checkpoints`` names checkpoints of the run (``ckpt-N``,
found in MODEL_DIR/kept, where ``train --keep_every`` keeps them, or in
MODEL_DIR/checkpoints) or gives their paths. The average is written to
``--output``/``-o`` (default MODEL_DIR/averaged/ckpt-FIRST-LAST), with ``step`` set to
the last checkpoint's update and ``averaged_steps`` listing them all; every
command that takes ``--model_dir`` and ``--checkpoint`` reads it
(``write``, ``evaluate``, ``export``, ``pretrained.release``, the benchmarks).

The program (its flags and ``main``) is :mod:`graves_tf.cli.average_checkpoints`;
``python -m graves_tf.average_checkpoints`` runs it.
"""

import os

AVERAGED_FOLDER = "averaged"


def default_output(model_dir, steps):
    """Where the mean of a run's checkpoints of ``steps`` is written: MODEL_DIR/averaged/ckpt-FIRST-LAST."""
    return os.path.join(model_dir, AVERAGED_FOLDER, f"ckpt-{min(steps)}-{max(steps)}")


def find_checkpoint(model_dir, name):
    """The path of checkpoint ``name`` (a path, or ``ckpt-N`` in the run's kept or rolling folder)."""
    import tensorflow as tf

    from graves_tf import run_dir

    candidates = [name] + [os.path.join(model_dir, folder, name) for folder in (run_dir.KEPT_FOLDER, "checkpoints")]
    for candidate in candidates:
        if tf.io.gfile.exists(candidate + ".index"):
            return candidate
    raise FileNotFoundError(
        f"no checkpoint {name!r}: looked for {', '.join(c + '.index' for c in candidates)} "
        "(train with --keep_every=N to keep more than the latest three)"
    )


def average_checkpoints(model_dir, names, output=None):
    """Writes the mean weights of checkpoints ``names`` of run ``model_dir``; returns the written path."""
    import numpy as np
    import tensorflow as tf

    from graves_tf import run_dir

    if len(names) < 2:
        raise ValueError(f"give two or more checkpoints to average, not {len(names)}")
    paths = [find_checkpoint(model_dir, name) for name in names]
    model, _ = run_dir.load_run(model_dir, paths[0])
    total = [np.zeros(w.shape, np.float64) for w in model.weights]
    steps = []
    for path in paths:
        run_dir.restore_weights(model, path)
        for sum_, weight in zip(total, model.weights):
            sum_ += weight.numpy()
        steps.append(run_dir.checkpoint_step(path))
    for sum_, weight in zip(total, model.weights):
        weight.assign((sum_ / len(paths)).astype(weight.dtype))
    if output is None:
        output = default_output(model_dir, steps)
    tf.io.gfile.makedirs(os.path.dirname(output))
    checkpoint = tf.train.Checkpoint(
        model=model,
        step=tf.Variable(max(steps), dtype=tf.int64),
        **{run_dir.AVERAGED_STEPS: tf.Variable(sorted(steps), dtype=tf.int64)},
    )
    return checkpoint.write(output)


if __name__ == "__main__":
    from graves_tf.cli.average_checkpoints import run

    run()
