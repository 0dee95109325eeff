"""bfloat16 matmuls with everything else in float32 (mixed precision on CPUs with AVX512_BF16 / AMX).

Under ``with matmul_precision("bfloat16"):`` the LSTM and output matmuls
(:func:`matmul`) round their two operands to bfloat16, multiply them, and
return the product as float32: the state (h, c), the gates' elementwise
maths, the soft window (its parameters' matmul included: kappa accumulates
over hundreds of steps), the loss and the weights stay float32. TensorFlow's
CPU matmul has no bfloat16-in, float32-out kernel (``output_type=float32`` is
refused for bfloat16 operands), so the product is rounded to bfloat16 once
before the cast back; oneDNN accumulates the dot products in float32 inside
the kernel. Gradients follow the casts: the backward matmuls are bfloat16 too.

The setting is read when a graph is traced, not when it runs: a model's
``matmul_precision`` attribute (see :class:`graves_tf.models.SequenceModel`)
enters this context around its forward pass and its step, and the fused
sequence functions (:mod:`graves_tf.layers.lstm_sequence`) keep the precision
of their forward pass for their hand-written backward pass.
"""

import contextlib

import keras
from keras import ops

from graves_tf.layers import backend_ops

PRECISIONS = ("float32", "bfloat16")
_ACTIVE = [None]  # None: plain matmuls (float32, or whatever the operands are)
CONTEXT = "context"  # the ``dtype`` argument meaning: the precision in force (None means plain)


def current():
    """The matmul dtype in force: None (plain) or ``"bfloat16"``."""
    return _ACTIVE[-1]


def check_precision(precision):
    if precision not in (None,) + PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return None if precision in (None, "float32") else precision


@contextlib.contextmanager
def matmul_precision(precision):
    """Runs the enclosed tracing with ``precision`` (None/"float32": plain; "bfloat16") matmuls."""
    _ACTIVE.append(check_precision(precision))
    try:
        yield
    finally:
        _ACTIVE.pop()


def _is_float32(x):
    return keras.backend.standardize_dtype(x.dtype) == "float32"


def for_matmul(x, dtype=CONTEXT):
    """``x`` as :func:`matmul` would multiply it: cast once (e.g. a weight before a loop over time)."""
    dtype = current() if dtype == CONTEXT else dtype
    if dtype is None or not _is_float32(x):
        return x
    return ops.cast(x, dtype)


def matmul(a, b, dtype=CONTEXT):
    """``a @ b``; in a bfloat16 context (or with ``dtype="bfloat16"``) with bfloat16 operands, float32 out.

    Operands already in bfloat16 (weights cast once by :func:`for_matmul`)
    are not cast again. Outside the context (or with ``dtype=None``) this is
    ``keras.ops.matmul``.
    """
    dtype = current() if dtype == CONTEXT else dtype
    kinds = {keras.backend.standardize_dtype(a.dtype), keras.backend.standardize_dtype(b.dtype)}
    if dtype is None or not kinds <= {"float32", dtype}:  # off, or float64 operands (tests): untouched
        return backend_ops.matmul(a, b)
    return ops.cast(ops.matmul(for_matmul(a, dtype), for_matmul(b, dtype)), "float32")
