"""Handwriting synthesis network (paper section 5)."""

import keras

from graves_tf.layers import GaussianWindow, MixtureDensityHead, SkipStack
from graves_tf.models.sequence_model import SequenceModel, sequence_mask


@keras.saving.register_keras_serializable(package="graves_tf")
class HandwritingSynthesizer(SequenceModel):
    """The prediction network conditioned on text through a Gaussian window (eqs. 46-55).

    A batch carries, besides the pen offsets, ``text`` ``(B, U)`` character ids
    in the model's alphabet and ``text_mask`` (or ``text_lengths``). The loss
    is -log Pr(x | c) (eq. 54) in nats per sequence. :meth:`forward` also
    returns the window weights ``phi`` ``(B, T, U)`` and ``phi_end``
    ``(B, T)`` = phi(t, U+1) for plots and the stop rule of section 5.3.

    Args:
        alphabet_size: V, size of the one-hot characters (paper: 57).
        units: LSTM cells per layer (paper: 400).
        num_layers: N (paper: 3).
        num_mixtures: M output Gaussians (paper: 20).
        num_window_gaussians: K window Gaussians (paper: 10).
        lstm_clip: derivative clip of the LSTM pre-activations (paper: 10).
        output_clip: derivative clip of y_hat (paper: 100).
        initial_kappa_step: the untrained window's stride in characters per
            point (see :class:`GaussianWindow`); None: the default bias.
    """

    input_dim = 3

    def __init__(
        self,
        alphabet_size=57,
        units=400,
        num_layers=3,
        num_mixtures=20,
        num_window_gaussians=10,
        lstm_clip=10.0,
        output_clip=100.0,
        initial_kappa_step=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.alphabet_size = int(alphabet_size)
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.num_mixtures = int(num_mixtures)
        self.num_window_gaussians = int(num_window_gaussians)
        self.lstm_clip = lstm_clip
        self.output_clip = output_clip
        self.initial_kappa_step = initial_kappa_step
        window = GaussianWindow(
            num_window_gaussians,
            alphabet_size,
            initial_kappa_step=initial_kappa_step,
            dtype=self.dtype_policy,
            name="window",
        )
        self.stack = SkipStack(
            self.input_dim,
            units,
            num_layers,
            clip=lstm_clip,
            conditioning=window,
            dtype=self.dtype_policy,
            name="skip_stack",
        )
        self.head = MixtureDensityHead(
            num_mixtures, clip=output_clip, dtype=self.dtype_policy, name="mixture_density"
        )
        self._build_layers()

    @property
    def window(self):
        return self.stack.conditioning

    def context(self, batch):
        text = batch["text"]
        text_mask = sequence_mask(
            batch, "text_mask", "text_lengths", keras.ops.shape(text)[1], self.compute_dtype
        )
        if text_mask is None:
            text_mask = keras.ops.ones(keras.ops.shape(text), dtype=self.compute_dtype)
        return self.window.context(text, text_mask)

    def get_config(self):
        config = super().get_config()
        config.update(
            alphabet_size=self.alphabet_size,
            units=self.units,
            num_layers=self.num_layers,
            num_mixtures=self.num_mixtures,
            num_window_gaussians=self.num_window_gaussians,
            lstm_clip=self.lstm_clip,
            output_clip=self.output_clip,
            initial_kappa_step=self.initial_kappa_step,
        )
        return config
