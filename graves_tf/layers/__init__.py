"""Keras layers of Graves (2013), "Generating Sequences With Recurrent Neural Networks"."""

from graves_tf.layers.gaussian_window import GaussianWindow, soft_window
from graves_tf.layers.gradient_clipping import clip_gradient
from graves_tf.layers.lstm_sequence import lstm_sequence, peephole_lstm_step
from graves_tf.layers.mixture_density_head import (
    MixtureDensityHead,
    mixture_negative_log_likelihood,
    mixture_parameters,
    sample_mixture,
    sample_mixture_from_noise,
)
from graves_tf.layers.peephole_lstm_cell import PeepholeLSTMCell
from graves_tf.layers.skip_stack import SkipStack
from graves_tf.layers.softmax_head import SoftmaxHead

__all__ = [
    "GaussianWindow",
    "MixtureDensityHead",
    "PeepholeLSTMCell",
    "SkipStack",
    "SoftmaxHead",
    "clip_gradient",
    "lstm_sequence",
    "mixture_negative_log_likelihood",
    "mixture_parameters",
    "peephole_lstm_step",
    "sample_mixture",
    "sample_mixture_from_noise",
    "soft_window",
]
