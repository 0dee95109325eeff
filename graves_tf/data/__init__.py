"""Input pipelines that turn the TFDS datasets into model batches.

``handwriting`` and ``text`` hold the pipelines (tf.data, no TFDS); ``datasets`` prepares the TFDS
builders of ``tfds_builders/`` and feeds their splits through them (``datasets.load_bundle``).
"""

from graves_tf.data.handwriting import handwriting_batches
from graves_tf.data.text import Vocabulary, sentence_batches, stream_segments

__all__ = ["Vocabulary", "handwriting_batches", "sentence_batches", "stream_segments"]
