"""What the exported handwriting signatures share: the in-graph checks of stroke inputs and the stroke
transforms (normalisation, the model's sampling rate). Used by ``saved_model`` (synthesis) and ``prediction``."""

import tensorflow as tf

from graves_tf.data.handwriting import downsample_strokes


def lengths_checks(name, lengths, strokes, strokes_name):
    """1 <= lengths <= T, and the strokes up to them finite with an end-of-stroke of 0 or 1."""
    steps = tf.shape(strokes)[1]
    checks = [
        tf.debugging.assert_positive(lengths, message=f"{name}: every length must be at least 1"),
        tf.debugging.assert_less_equal(
            lengths, steps, message=f"{name}: a length is longer than the time axis T of {strokes_name}"
        ),
    ]
    with tf.control_dependencies(checks):
        used = tf.boolean_mask(strokes, tf.sequence_mask(lengths, steps))
    checks.append(tf.debugging.Assert(
        tf.reduce_all(tf.math.is_finite(used)),
        [f"{strokes_name}: every value up to {name} must be a finite number (no NaN or infinity)"],
    ))
    eos = used[:, 2]
    checks.append(tf.debugging.Assert(
        tf.reduce_all((eos == 0.0) | (eos == 1.0)),
        [f"{strokes_name}: the third value of each point, end of stroke, must be 0 or 1"],
    ))
    return checks


def same_batch_checks(batch, name, unit, **others):
    """Each of ``others`` ([B, ...] tensors) has ``batch`` rows, one per ``unit`` of ``name``."""
    return [
        tf.debugging.assert_equal(
            tf.shape(value)[0], batch,
            message=f"{other}: needs one row per {name} {unit} (its batch size must equal {name}'s)",
        )
        for other, value in others.items()
    ]


def normalise(strokes, mean, std):
    return tf.concat([(strokes[..., :2] - mean) / std, strokes[..., 2:]], axis=-1)


def denormalise(strokes, mean, std):
    return tf.concat([strokes[..., :2] * std + mean, strokes[..., 2:]], axis=-1)


def downsample(strokes, lengths, point_stride):
    """Brings caller strokes [B, T, 3] with their lengths to a model's sampling rate (``point_stride``)."""
    if point_stride == 1:
        return strokes, lengths
    rows = tf.map_fn(
        lambda row: downsample_strokes(row, point_stride),
        tf.RaggedTensor.from_tensor(strokes, lengths=lengths),
        fn_output_signature=tf.RaggedTensorSpec([None, 3], tf.float32, ragged_rank=0),
    )
    return rows.to_tensor(), tf.cast(rows.row_lengths(), tf.int32)
