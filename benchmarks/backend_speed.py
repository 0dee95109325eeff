r"""Seconds of one training update of a graves_tf model under the JAX or PyTorch backend.

    KERAS_BACKEND=jax python -m benchmarks.backend_speed CONFIG BATCH.npz REPEATS

``benchmarks.speed`` runs this once per backend in a process of its own
(``KERAS_BACKEND`` is fixed when Keras is imported) on the batch it times
TensorFlow on, saved as NumPy arrays, and reads the seconds from the last
line (``seconds: S``). The update is ``graves_tf.backends.Trainer``'s (the
gradient of the summed per-sequence losses, Adam): under JAX one jitted
function (XLA on the machine's CPU or accelerator), under PyTorch eager
autograd with the fused backward. The first update (compilation) is not
timed.
"""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BACKENDS = {"jax": "graves_tf, JAX (XLA)", "torch": "graves_tf, PyTorch"}


def seconds_per_update(config, batch_path, repeats):
    """Times ``repeats`` updates (after a warm-up one) of ``config``'s model on the saved batch."""
    import numpy as np

    from benchmarks.common import time_call
    from graves_tf import backends, experiment

    spec = experiment.spec_from_config(config)
    model = experiment.build_model(spec)
    with np.load(batch_path) as stored:
        batch = {key: stored[key] for key in stored.files}
    import keras

    trainer = backends.Trainer(model, keras.optimizers.Adam(1e-4))

    def update():
        loss = trainer.train_step(batch)["loss"]  # a float: waits for the device
        if not np.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss}")

    return time_call(update, repeats)


def run_backend(backend, config, batch, repeats, timeout=3600):
    """Seconds per update under ``backend`` in a subprocess, or None when it is not installed.

    ``batch``: a dict of arrays (TensorFlow tensors are converted); saved to a
    temporary file for the subprocess.
    """
    import importlib.util
    import tempfile

    import numpy as np

    if importlib.util.find_spec(backend) is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "batch.npz")
        np.savez(path, **{key: np.asarray(value) for key, value in batch.items()})
        env = dict(os.environ, KERAS_BACKEND=backend)
        result = subprocess.run(
            [sys.executable, "-m", "benchmarks.backend_speed", config, path, str(repeats)],
            env=env, capture_output=True, text=True, timeout=timeout,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
    if result.returncode != 0:
        raise RuntimeError(f"{backend} update failed:\n{result.stderr[-4000:]}")
    return float(result.stdout.strip().splitlines()[-1].split("seconds:")[1])


def main(argv):
    config, batch_path, repeats = argv[1:]
    print(f"seconds: {seconds_per_update(config, batch_path, int(repeats)):.6f}")


if __name__ == "__main__":
    main(sys.argv)
