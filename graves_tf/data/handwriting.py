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


LINE_PREPARATIONS = ("straighten", "smooth")

# Savitzky-Golay smoothing, 7 points, cubic: the least-squares cubic through each point and its three
# neighbours on either side, evaluated at the point (the weights of scipy.signal.savgol_filter(x, 7, 3)).
_SMOOTHING_WEIGHTS = (-2.0, 3.0, 6.0, 7.0, 6.0, 3.0, -2.0)


def _positions_and_strokes(strokes):
    ends = strokes[:, 2] > 0.5
    index = tf.range(tf.shape(strokes)[0])
    stroke_id = tf.cumsum(tf.cast(ends, tf.int32), exclusive=True)
    count = tf.reduce_max(stroke_id) + 1
    first = tf.gather(tf.math.unsorted_segment_min(index, stroke_id, count), stroke_id)
    last = tf.gather(tf.math.unsorted_segment_max(index, stroke_id, count), stroke_id)
    return tf.cumsum(strokes[:, :2], axis=0), index, first, last


def _offsets_of(positions, strokes):
    offsets = positions - tf.concat([tf.zeros_like(positions[:1]), positions[:-1]], axis=0)
    return tf.concat([offsets, strokes[:, 2:3]], axis=-1)


def straighten_baseline(strokes):
    """Rotates a line about its first point so that the least-squares line through its pen positions
    (y on x) is horizontal: a line written uphill or downhill comes out level. ``(T, 3)`` offsets in,
    ``(T, 3)`` out, pen-ups unchanged."""
    strokes = tf.convert_to_tensor(strokes)
    positions = tf.cumsum(strokes[:, :2], axis=0)
    centred = positions - tf.reduce_mean(positions, axis=0)
    slope = tf.math.divide_no_nan(
        tf.reduce_sum(centred[:, 0] * centred[:, 1]), tf.reduce_sum(tf.square(centred[:, 0]))
    )
    angle = tf.atan(slope)
    cos, sin = tf.cos(angle), tf.sin(angle)
    relative = positions - positions[:1]
    rotated = tf.stack(
        [relative[:, 0] * cos + relative[:, 1] * sin, relative[:, 1] * cos - relative[:, 0] * sin], axis=-1
    )
    return _offsets_of(rotated + positions[:1], strokes)


def smooth_strokes(strokes):
    """Smooths each stroke's pen positions with a 7-point cubic Savitzky-Golay filter, the stroke's end
    points repeated beyond its ends (the pen noise of the whiteboard's sensor; learned from
    sjvasquez/handwriting-synthesis' data preparation). Strokes stay apart: no point is pulled towards
    another stroke. ``(T, 3)`` offsets in, ``(T, 3)`` out, pen-ups unchanged."""
    strokes = tf.convert_to_tensor(strokes)
    positions, index, first, last = _positions_and_strokes(strokes)
    total = sum(_SMOOTHING_WEIGHTS)
    smoothed = tf.zeros_like(positions)
    for tap, weight in zip(range(-3, 4), _SMOOTHING_WEIGHTS):
        source = tf.clip_by_value(index + tap, first, last)
        smoothed += (weight / total) * tf.gather(positions, source)
    return _offsets_of(smoothed, strokes)


def check_line_preparation(preparation):
    """``ValueError`` naming a step that is not one of :data:`LINE_PREPARATIONS`."""
    for name in preparation:
        if name not in LINE_PREPARATIONS:
            raise ValueError(f"unknown line preparation {name!r}; choose from {', '.join(LINE_PREPARATIONS)}")


def prepare_line(strokes, preparation=()):
    """Applies the named :data:`LINE_PREPARATIONS` in order (``()``: the line as it is)."""
    check_line_preparation(preparation)
    steps = {"straighten": straighten_baseline, "smooth": smooth_strokes}
    for name in preparation:
        strokes = steps[name](strokes)
    return strokes


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
    line_preparation=(),
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
        line_preparation: names of :data:`LINE_PREPARATIONS` applied to each
            line at the data's rate, before downsampling (:func:`prepare_line`).
    """
    check_line_preparation(line_preparation)  # before any line is read
    mean = tf.constant(offset_mean, tf.float32)
    std = tf.constant(offset_std, tf.float32)
    table = alphabet_lookup_table(alphabet) if alphabet is not None else None

    def to_sequence(example):
        strokes = prepare_line(tf.cast(example["strokes"], tf.float32), line_preparation)
        strokes = downsample_strokes(strokes, point_stride)
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
