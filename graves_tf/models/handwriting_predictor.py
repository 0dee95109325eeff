"""Handwriting prediction network (paper section 4)."""

import keras

from graves_tf.layers import MixtureDensityHead, SkipStack
from graves_tf.models.sequence_model import SequenceModel


@keras.saving.register_keras_serializable(package="graves_tf")
class HandwritingPredictor(SequenceModel):
    """Pen offsets (dx, dy, end_of_stroke) -> mixture density outputs (eqs. 1-4, 15-26).

    Inputs are ``(B, T, 3)`` offsets, the first one the null vector; the loss
    is eq. 26 in nats per sequence.

    Args:
        units: LSTM cells per layer (paper: 400 for 3 layers, 900 for 1).
        num_layers: N.
        num_mixtures: M bivariate Gaussians (paper: 20).
        lstm_clip: derivative clip of the LSTM pre-activations (paper: 10).
        output_clip: derivative clip of y_hat (paper: 100).
    """

    input_dim = 3

    def __init__(self, units=400, num_layers=3, num_mixtures=20, lstm_clip=10.0, output_clip=100.0, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.num_mixtures = int(num_mixtures)
        self.lstm_clip = lstm_clip
        self.output_clip = output_clip
        self.stack = SkipStack(
            self.input_dim, units, num_layers, clip=lstm_clip, dtype=self.dtype_policy, name="skip_stack"
        )
        self.head = MixtureDensityHead(
            num_mixtures, clip=output_clip, dtype=self.dtype_policy, name="mixture_density"
        )
        self._build_layers()

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            num_layers=self.num_layers,
            num_mixtures=self.num_mixtures,
            lstm_clip=self.lstm_clip,
            output_clip=self.output_clip,
        )
        return config
