"""``scan(f, init, xs)`` with the semantics of ``jax.lax.scan``, for every Keras backend.

``keras.ops.scan`` on the TensorFlow backend requires the per-step outputs to
have the structure of the carry and fails on sequences whose length is not
known when the graph is traced; this version has neither limit. On other
backends it is ``keras.ops.scan``.
"""

import keras
from keras import ops


def scan(f, init, xs):
    """Loops ``carry, y = f(carry, x)`` over the leading axis of ``xs``.

    Args:
        f: ``(carry, x) -> (carry, y)``; carry keeps its structure, shapes and dtypes.
        init: the initial carry (a nested structure of tensors).
        xs: a nested structure of tensors with a common leading (time) axis of
            length at least 1.

    Returns:
        ``(final_carry, ys)``, ys stacked along a new leading axis.
    """
    if keras.backend.backend() != "tensorflow":
        return ops.scan(f, init, xs)
    import tensorflow as tf

    xs_flat = keras.tree.flatten(xs)
    length = xs_flat[0].shape[0] or tf.shape(xs_flat[0])[0]
    xs_arrays = [
        tf.TensorArray(x.dtype, size=length, element_shape=x.shape[1:]).unstack(x) for x in xs_flat
    ]

    def x_at(t):
        return keras.tree.pack_sequence_as(xs, [a.read(t) for a in xs_arrays])

    # The first step runs outside the loop: it tells the structure of y.
    carry, y = f(init, x_at(0))
    ys_flat = keras.tree.flatten(y)
    ys_arrays = [
        tf.TensorArray(v.dtype, size=length, element_shape=v.shape).write(0, v) for v in ys_flat
    ]
    carry_flat = keras.tree.flatten(carry)

    def body(t, carry_flat, ys_arrays):
        carry = keras.tree.pack_sequence_as(init, carry_flat)
        carry, y = f(carry, x_at(t))
        new_arrays = [a.write(t, v) for a, v in zip(ys_arrays, keras.tree.flatten(y))]
        return t + 1, keras.tree.flatten(carry), new_arrays

    _, carry_flat, ys_arrays = tf.while_loop(
        lambda t, *_: t < length,
        body,
        (tf.constant(1), carry_flat, ys_arrays),
        maximum_iterations=length,  # bounds the gradient's accumulators (XLA needs it)
    )
    ys = [a.stack() for a in ys_arrays]
    return keras.tree.pack_sequence_as(init, carry_flat), keras.tree.pack_sequence_as(y, ys)


def snapshot(variable):
    """The variable's current value as a tensor, read here and not where it is used.

    A loop body that uses the snapshot reads no variable (on TensorFlow,
    ``convert_to_tensor`` of a variable still reads it lazily, at every use).
    Gradients flow through the snapshot to the variable.
    """
    return ops.copy(variable)
