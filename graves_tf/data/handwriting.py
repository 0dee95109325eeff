"""Handwriting input pipeline: IAM-OnDB lines -> normalised, padded, bucketed batches (section 4.2)."""

import tensorflow as tf

from graves_tf.data.text import padded_batches


def alphabet_lookup_table(alphabet):
    """A table from single characters to ids of ``alphabet``; unknown ones give id 0.

    Id 0 is the alphabet's catch-all label (the paper's "non-letter"), so
    characters outside the set are mapped as section 5.2 describes.
    """
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(alphabet.symbols)), tf.range(len(alphabet), dtype=tf.int32)
        ),
        default_value=0,
    )


def handwriting_batches(
    examples,
    batch_size,
    offset_mean,
    offset_std,
    alphabet=None,
    bucket_boundaries=(300, 500, 700, 900),
    shuffle_buffer=0,
    seed=None,
    max_length=None,
    drop_remainder=False,
):
    """Turns IAM-OnDB examples into model batches.

    Per line: the offsets (dx, dy) are normalised to mean 0, std 1 with the
    training split's statistics; ``targets`` are the T points, ``inputs`` the
    null vector followed by the first T-1 points (section 2: the network
    predicts x_2 from the null x_1). With an alphabet, ``text`` holds the
    transcription's character ids.

    Args:
        examples: a ``tf.data.Dataset`` of dicts with ``strokes`` ``(T, 3)`` and ``text``.
        batch_size: lines per batch.
        offset_mean, offset_std: ``(2,)`` training-split statistics of (dx, dy).
        alphabet: a :class:`graves_tf.alphabet.Alphabet` to encode ``text``, or
            None for prediction (no text).
        bucket_boundaries: line lengths at which a new bucket starts; lines of
            similar length are batched together to save padding.
        shuffle_buffer: 0 keeps the dataset order.
        max_length: lines longer than this are cut to it (None: keep all).
    """
    mean = tf.constant(offset_mean, tf.float32)
    std = tf.constant(offset_std, tf.float32)
    table = alphabet_lookup_table(alphabet) if alphabet is not None else None

    def to_sequence(example):
        strokes = tf.cast(example["strokes"], tf.float32)
        if max_length:
            strokes = strokes[:max_length]
        points = tf.concat([(strokes[:, :2] - mean) / std, strokes[:, 2:3]], axis=-1)
        inputs = tf.concat([tf.zeros((1, 3)), points[:-1]], axis=0)
        out = {"inputs": inputs, "targets": points, "lengths": tf.shape(points)[0]}
        if table is not None:
            text = table.lookup(tf.strings.unicode_split(example["text"], "UTF-8"))
            out["text"] = text
            out["text_lengths"] = tf.shape(text)[0]
        return out

    dataset = examples.map(to_sequence, num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    return padded_batches(dataset, batch_size, bucket_boundaries, drop_remainder)
