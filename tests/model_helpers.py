"""Tiny models and batches shared by the model, backend, bfloat16, training-path and fast-path tests."""

import numpy as np
import tensorflow as tf

from graves_tf.models import HandwritingPredictor, HandwritingSynthesizer, TextPredictor

BATCH, STEPS, CHARS, VOCAB = 3, 9, 6, 11


def handwriting_batch(rng, lengths=(9, 5, 7), with_text=False, alphabet_size=57):
    inputs = rng.normal(size=(BATCH, STEPS, 3))
    inputs[..., 2] = rng.integers(0, 2, (BATCH, STEPS))
    inputs[:, 0] = 0.0  # the null input of section 2
    targets = rng.normal(size=(BATCH, STEPS, 3))
    targets[..., 2] = rng.integers(0, 2, (BATCH, STEPS))
    batch = {"inputs": inputs, "targets": targets, "lengths": np.array(lengths)}
    if with_text:
        batch["text"] = rng.integers(0, alphabet_size, (BATCH, CHARS))
        batch["text_lengths"] = np.array([6, 2, 4])
    return batch


def text_batch(rng, lengths=(9, 5, 7)):
    targets = rng.integers(0, VOCAB, (BATCH, STEPS))
    inputs = np.concatenate([-np.ones((BATCH, 1), int), targets[:, :-1]], axis=1)
    return {"inputs": inputs, "targets": targets, "lengths": np.array(lengths)}


def tiny_models(dtype="float32"):
    return {
        "text": (TextPredictor(VOCAB, units=8, num_layers=2, dtype=dtype), text_batch),
        "prediction": (HandwritingPredictor(units=8, num_layers=2, num_mixtures=3, dtype=dtype), handwriting_batch),
        "synthesis": (
            HandwritingSynthesizer(
                alphabet_size=7, units=8, num_layers=3, num_mixtures=3, num_window_gaussians=2, dtype=dtype
            ),
            lambda rng: handwriting_batch(rng, with_text=True, alphabet_size=7),
        ),
    }


def as_tensors(batch, dtype):
    return {
        k: tf.constant(v, dtype=dtype if v.dtype.kind == "f" else "int32") for k, v in batch.items()
    }


def randomize(model, rng, scale=0.5):
    """Random weights everywhere (peepholes too), so no term of the equations hides behind a zero."""
    for v in model.weights:
        v.assign(rng.normal(scale=scale, size=v.shape))

