"""``scan(f, init, xs)`` with the semantics of ``jax.lax.scan``, for every Keras backend.

``keras.ops.scan`` on the TensorFlow backend requires the per-step outputs to
have the structure of the carry and fails on sequences whose length is not
known when the graph is traced; this version has neither limit. On other
backends it is ``keras.ops.scan``.
"""

import keras
from keras import ops


def scan(f, init, xs, reverse=False):
    """Loops ``carry, y = f(carry, x)`` over the leading axis of ``xs``.

    Args:
        f: ``(carry, x) -> (carry, y)``; carry keeps its structure, shapes and dtypes.
        init: the initial carry (a nested structure of tensors).
        xs: a nested structure of tensors with a common leading (time) axis of
            length at least 1.
        reverse: loop from the last step to the first; ``ys[t]`` is still the
            output of step t (as ``jax.lax.scan(..., reverse=True)``): the
            same as reversing xs and ys, without copying them.

    Returns:
        ``(final_carry, ys)``, ys stacked along a new leading axis.
    """
    if keras.backend.backend() != "tensorflow":
        return ops.scan(f, init, xs, reverse=reverse)
    import tensorflow as tf

    xs_flat = keras.tree.flatten(xs)
    length = xs_flat[0].shape[0] or tf.shape(xs_flat[0])[0]
    xs_arrays = [
        tf.TensorArray(x.dtype, size=length, element_shape=x.shape[1:]).unstack(x) for x in xs_flat
    ]

    def index(t):
        return length - 1 - t if reverse else t

    def x_at(t):
        return keras.tree.pack_sequence_as(xs, [a.read(index(t)) for a in xs_arrays])

    # The first step runs outside the loop: it tells the structure of y.
    carry, y = f(init, x_at(0))
    ys_flat = keras.tree.flatten(y)
    ys_arrays = [
        tf.TensorArray(v.dtype, size=length, element_shape=v.shape).write(index(0), v) for v in ys_flat
    ]
    carry_flat = keras.tree.flatten(carry)

    def body(t, carry_flat, ys_arrays):
        carry = keras.tree.pack_sequence_as(init, carry_flat)
        carry, y = f(carry, x_at(t))
        new_arrays = [a.write(index(t), v) for a, v in zip(ys_arrays, keras.tree.flatten(y))]
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
