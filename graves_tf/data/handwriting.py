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


def downsample_strokes(strokes, stride):
    """Keeps every ``stride``-th pen position of each stroke, plus its last one
    (and the line's last point).

    ``strokes`` is ``(T, 3)`` rows ``(dx, dy, end_of_stroke)``. Within a stroke
    the points at positions 0, stride, 2*stride, ... and the stroke's final
    point survive, so every pen-down and pen-up position is kept exactly; the
    offsets are re-taken between the surviving points, so the drawing's
    absolute trajectory is the original one sampled more coarsely. Works on
    tensors in graphs (tf.data, SavedModels) and eagerly; ``stride=1`` returns
    the input.
    """
    strokes = tf.convert_to_tensor(strokes)
    if stride == 1:
        return strokes
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    ends = strokes[:, 2] > 0.5
    index = tf.range(tf.shape(strokes)[0])
    stroke_id = tf.cumsum(tf.cast(ends, tf.int32), exclusive=True)
    starts = tf.math.unsorted_segment_min(index, stroke_id, tf.reduce_max(stroke_id) + 1)
    position = index - tf.gather(starts, stroke_id)
    last = tf.equal(index, tf.shape(strokes)[0] - 1)
    keep = tf.logical_or(tf.equal(position % stride, 0), tf.logical_or(ends, last))
    positions = tf.boolean_mask(tf.cumsum(strokes[:, :2], axis=0), keep)
    offsets = positions - tf.concat([tf.zeros_like(positions[:1]), positions[:-1]], axis=0)
    end_flags = tf.cast(tf.boolean_mask(ends, keep), strokes.dtype)
    return tf.concat([offsets, end_flags[:, None]], axis=-1)


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
    point_stride=1,
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
        max_length: lines longer than this are cut to it (None: keep all),
            after downsampling.
        point_stride: keep every this-many-th pen position of each stroke
            (:func:`downsample_strokes`); ``offset_mean``/``offset_std`` must be
            the statistics of the downsampled offsets.
    """
    mean = tf.constant(offset_mean, tf.float32)
    std = tf.constant(offset_std, tf.float32)
    table = alphabet_lookup_table(alphabet) if alphabet is not None else None

    def to_sequence(example):
        strokes = downsample_strokes(tf.cast(example["strokes"], tf.float32), point_stride)
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
