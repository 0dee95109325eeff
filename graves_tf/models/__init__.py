"""The three networks of Graves (2013)."""

from graves_tf.models.handwriting_predictor import HandwritingPredictor
from graves_tf.models.handwriting_synthesizer import HandwritingSynthesizer
from graves_tf.models.sequence_model import SequenceModel, count_weights
from graves_tf.models.text_predictor import TextPredictor

__all__ = [
    "HandwritingPredictor",
    "HandwritingSynthesizer",
    "SequenceModel",
    "TextPredictor",
    "count_weights",
]
