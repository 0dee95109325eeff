"""A tiny synthesizer and a window that moves at a known pace, shared by the sampling and fast-path tests."""

import keras
import numpy as np
import tensorflow as tf

from graves_tf.models import HandwritingSynthesizer

ALPHABET_SIZE = 7


def synthesizer(seed=0):
    keras.utils.set_random_seed(seed)
    return HandwritingSynthesizer(
        alphabet_size=ALPHABET_SIZE, units=12, num_layers=2, num_mixtures=3, num_window_gaussians=2
    )


def context_for(model, lengths, max_length=6):
    ids = np.ones((len(lengths), max_length), np.int32)
    mask = (np.arange(max_length)[None] < np.array(lengths)[:, None]).astype(np.float32)
    return model.window.context(tf.constant(ids), tf.constant(mask))


def force_window(model, kappa_step):
    """Window weights that ignore the LSTM: alpha = beta = 1, kappa_t = kappa_step * t."""
    window = model.window
    window.kernel.assign(tf.zeros_like(window.kernel))
    k = window.num_gaussians
    bias = np.concatenate([np.zeros(k), np.zeros(k), np.full(k, np.log(kappa_step))])
    window.bias.assign(bias.astype(np.float32))


def expected_stop_length(text_length, kappa_step, num_gaussians=2):
    """Sampled points before phi(t, U+1) > phi(t, u) for all u (NumPy, eq. 46)."""
    for t in range(10_000):
        kappa = kappa_step * (t + 1)
        phi = num_gaussians * np.exp(-((kappa - np.arange(1, text_length + 2)) ** 2))
        if phi[-1] > phi[:-1].max():
            return t
    raise AssertionError("never stops")
