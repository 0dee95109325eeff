"""Trains the three models on one device and on two (MirroredStrategy over two logical CPUs); run by
tests/test_distributed.py in a subprocess, since the logical devices must be set before TensorFlow starts.

    python tests/two_devices.py OUT.json

Each case builds one model from the same initial weights twice, trains it
``UPDATES`` SGD updates with the same global batch on the default strategy and
on MirroredStrategy(["/cpu:0", "/cpu:1"]), and records the largest difference
of any weight (the model's, and adaptive noise's log sigmas) between the two,
how far the weights moved, and how far the noise moved them from the run
without noise. One case trains with a global batch of 3 rows, which two
replicas share unevenly (2 and 1). A last case makes one SGD
update at learning rate 1 on two replicas and records the logged gradient_norm
beside the norm of the change of the weights (the applied gradient).
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from graves_tf import training  # noqa: E402
from graves_tf.data import stream_segments  # noqa: E402
from graves_tf.models import HandwritingPredictor, HandwritingSynthesizer, TextPredictor  # noqa: E402

BATCH, UPDATES, VOCAB, ALPHABET = 4, 4, 7, 6
# (model, noise) pairs trained: every model without and with fixed weight noise, one with adaptive noise.
CASES = [(m, n) for m in ("text", "prediction", "synthesis") for n in ("none", "weight_noise")] + [
    ("prediction", "adaptive_weight_noise")
]


def text_data():
    """A stream cut into 4 rows of 8-symbol segments, the state reset every 3: updates 2, 3 carry it."""
    ids = np.random.default_rng(0).integers(0, VOCAB, 400)
    return lambda epoch: stream_segments(ids, BATCH, 8, reset_every=3)


def handwriting_batches(with_text, rows=BATCH):
    """Padded pen-offset sequences of different lengths (and, for synthesis, texts of different lengths)."""
    rng = np.random.default_rng(1)
    batches = []
    for _ in range(UPDATES):
        steps = 12
        points = np.concatenate(
            [rng.normal(0, 1, (rows, steps, 2)), (rng.random((rows, steps, 1)) < 0.2)], -1
        ).astype(np.float32)
        batch = {
            "inputs": np.concatenate([np.zeros((rows, 1, 3), np.float32), points[:, :-1]], 1),
            "targets": points,
            "lengths": rng.integers(6, steps + 1, rows).astype(np.int32),
        }
        if with_text:
            batch["text"] = rng.integers(1, ALPHABET, (rows, 5)).astype(np.int32)
            batch["text_lengths"] = rng.integers(2, 6, rows).astype(np.int32)
        batches.append(batch)
    dataset = tf.data.Dataset.from_tensor_slices({k: np.stack([b[k] for b in batches]) for k in batches[0]})
    return lambda epoch: dataset


MODELS = {
    "text": (lambda: TextPredictor(VOCAB, units=8, num_layers=2), text_data),
    "prediction": (lambda: HandwritingPredictor(units=8, num_layers=2, num_mixtures=2), lambda: handwriting_batches(False)),
    "synthesis": (
        lambda: HandwritingSynthesizer(alphabet_size=ALPHABET, units=8, num_layers=2, num_mixtures=2, num_window_gaussians=2),
        lambda: handwriting_batches(True),
    ),
}
NOISE = {
    "none": {},
    "weight_noise": {"weight_noise": 0.075, "seed": 3},
    "adaptive_weight_noise": {"adaptive_weight_noise": True, "num_training_sequences": 50, "seed": 3},
}


def build(make_model, strategy, initial):
    with strategy.scope():
        model = make_model()  # built in its constructor
        if initial is not None:
            model.set_weights(initial)
    return model


def train(name, noise, strategy, initial, optimizer=None, make_data=None, batch_size=BATCH):
    make_model, default_data = MODELS[name]
    make_data = make_data or default_data
    model = build(make_model, strategy, initial)
    with strategy.scope():
        # SGD, not Adam: an update proportional to the gradient, so a gradient summed twice would show.
        optimizer = optimizer() if optimizer else keras.optimizers.SGD(0.02, momentum=0.5)
    config = training.TrainConfig(
        model_dir=tempfile.mkdtemp(), train_steps=UPDATES, checkpoint_every=UPDATES, eval_every=0,
        log_every=UPDATES, progress_bar=False, **noise,
    )
    trainer = training.Trainer(model, optimizer, config, training.DataSource(make_data(), batch_size), strategy=strategy)
    trainer.fit()
    weights = [np.array(v.numpy()) for v in model.weights]
    if trainer.noise is not None and hasattr(trainer.noise, "log_sigmas"):
        weights += [np.array(v.numpy()) for v in trainer.noise.log_sigmas]
    return weights


def gradient_norm_case(strategy):
    """One SGD update at rate 1 on two replicas: the logged norm against the norm of the weights' change."""
    keras.utils.set_random_seed(5)
    model = build(MODELS["text"][0], strategy, None)
    with strategy.scope():
        optimizer = keras.optimizers.SGD(1.0)
    config = training.TrainConfig(model_dir=tempfile.mkdtemp(), train_steps=1, eval_every=0, progress_bar=False)
    trainer = training.Trainer(model, optimizer, config, training.DataSource(text_data(), BATCH), strategy=strategy)
    before = [np.array(v.numpy()) for v in model.trainable_variables]
    batch = next(iter(trainer._replica_batches(lambda: text_data()(0))))
    batch = {k: v for k, v in batch.items() if k not in ("reset", "segment")}
    metrics, _, applied = trainer.train_step(batch)
    change = [b - np.array(v.numpy()) for b, v in zip(before, model.trainable_variables)]
    return {
        "applied": applied,
        "logged": metrics["gradient_norm"],
        "applied_norm": float(np.sqrt(sum(np.sum(c.astype(np.float64) ** 2) for c in change))),
    }


def main(out):
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    default = tf.distribute.get_strategy()
    results, initials, clean = {}, {}, {}
    for name, noise_name in CASES:
        if name not in initials:
            keras.utils.set_random_seed(2)
            initials[name] = build(MODELS[name][0], default, None).get_weights()
        initial = initials[name]
        one = train(name, NOISE[noise_name], default, initial)
        two = train(name, NOISE[noise_name], mirrored, initial)
        if noise_name == "none":
            clean[name] = one
        results[f"{name}/{noise_name}"] = {
            "max_difference": max(float(np.max(np.abs(a - b))) for a, b in zip(one, two)),
            "max_change": max(float(np.max(np.abs(a - b))) for a, b in zip(one, initial)),
            "noise_effect": max(float(np.max(np.abs(a - b))) for a, b in zip(one, clean[name])),
        }
        print(name, noise_name, results[f"{name}/{noise_name}"], flush=True)
    uneven = {"make_data": lambda: handwriting_batches(False, rows=3), "batch_size": 3}
    one = train("prediction", {}, default, initials["prediction"], **uneven)
    two = train("prediction", {}, mirrored, initials["prediction"], **uneven)
    results["prediction/uneven_batch"] = {
        "max_difference": max(float(np.max(np.abs(a - b))) for a, b in zip(one, two)),
        "max_change": max(float(np.max(np.abs(a - b))) for a, b in zip(one, initials["prediction"])),
    }
    print("prediction uneven_batch", results["prediction/uneven_batch"], flush=True)
    results["gradient_norm"] = gradient_norm_case(mirrored)
    print(results["gradient_norm"], flush=True)
    with open(out, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1])
