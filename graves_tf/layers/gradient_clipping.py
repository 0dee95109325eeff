"""Derivative clipping (paper section 2.1 and section 4.2).

Graves clips two kinds of derivatives during backpropagation, leaving the
forward pass untouched:

* the derivatives of the loss with respect to the LSTM pre-activations (the
  "network inputs to the LSTM layers, before the sigmoid and tanh functions are
  applied"): [-1, 1] for text, [-10, 10] for handwriting;
* the derivatives with respect to the network outputs ``y_hat`` (eq. 17):
  [-100, 100] for handwriting.

Clipping is elementwise on the derivative of each sequence's own loss L(x).
A training step that wants the paper's behaviour therefore differentiates the
*sum* of the per-sequence losses of a batch (so every clip point sees exactly
dL(x)/d(.) of its own sequence) and scales the gradients afterwards.
"""

from keras import ops

from graves_tf.layers import backend_ops


def clip_gradient(x, limit):
    """Identity in the forward pass; clips the incoming derivative to [-limit, limit].

    Args:
        x: a tensor.
        limit: a positive Python float, or ``None`` for no clipping.

    Returns:
        ``x`` unchanged; during backpropagation the derivative flowing into
        ``x`` is clipped elementwise to ``[-limit, limit]``.
    """
    limit = validate_clip("clip limit", limit)
    if limit is None:
        return x
    return _clip_gradient_fn(limit)(x)


_CACHE = {}


def _clip_gradient_fn(limit):
    if limit not in _CACHE:

        @ops.custom_gradient
        def clip(x):
            def grad(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                return backend_ops.clip(upstream, limit)

            return ops.copy(x), grad

        _CACHE[limit] = clip
    return _CACHE[limit]


def validate_clip(name, value):
    """Returns ``value`` as a float or None, raising a clear error otherwise."""
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number or None, got {value!r}")
    if not value > 0:
        raise ValueError(f"{name} must be a positive number or None, got {value!r}")
    return value

