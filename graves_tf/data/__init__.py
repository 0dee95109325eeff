"""Input pipelines that turn the TFDS datasets into model batches."""

from graves_tf.data.handwriting import handwriting_batches
from graves_tf.data.text import Vocabulary, sentence_batches, stream_segments

__all__ = ["Vocabulary", "handwriting_batches", "sentence_batches", "stream_segments"]
