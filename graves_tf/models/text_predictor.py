"""Character, byte or word level language model (paper section 3)."""

import keras

from graves_tf.layers import SkipStack, SoftmaxHead
from graves_tf.models.sequence_model import SequenceModel


@keras.saving.register_keras_serializable(package="graves_tf")
class TextPredictor(SequenceModel):
    """Stacked peephole LSTM with skip connections and a softmax output (eqs. 1-4, 12-13).

    Inputs are class ids (one-hot in the paper, computed as a row lookup);
    id -1 is the null input that starts a sequence. The loss is eq. 13 in
    nats per sequence; bits per character = nats / ln 2 / characters.

    Args:
        vocab_size: K, input and output classes (PTB chars 50, words 10,000, enwik8 bytes 205).
        units: LSTM cells per layer.
        num_layers: N.
        lstm_clip: derivative clip of the LSTM pre-activations (paper: 1).
        output_clip: derivative clip of the outputs (the paper sets none for text).
    """

    def __init__(self, vocab_size, units=1000, num_layers=1, lstm_clip=1.0, output_clip=None, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.lstm_clip = lstm_clip
        self.output_clip = output_clip
        self.stack = SkipStack(
            vocab_size, units, num_layers, clip=lstm_clip, dtype=self.dtype_policy, name="skip_stack"
        )
        self.head = SoftmaxHead(vocab_size, clip=output_clip, dtype=self.dtype_policy, name="softmax")
        self._build_layers()

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            units=self.units,
            num_layers=self.num_layers,
            lstm_clip=self.lstm_clip,
            output_clip=self.output_clip,
        )
        return config
