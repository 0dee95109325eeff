"""``keras.ops`` functions that keep float64 as float64 on every backend.

Keras's type promotion maps 64-bit results to 32 bits
(``keras.backend.result_type("float64", "float64")`` is ``"float32"``, as JAX
does without ``jax_enable_x64``), and some backends' ops follow it:
``keras.ops.matmul`` on PyTorch multiplies float64 operands in float32, and
``keras.ops.tanh`` on JAX computes float64 in float32, and ``keras.ops.clip``
on PyTorch rounds its bounds to float32. These versions call
the backend's own function for float64 operands (a float64 model then agrees
with TensorFlow to 1e-9; see tests/test_backends.py) and are
the ``keras.ops`` functions otherwise, on TensorFlow always.
"""

import keras
from keras import ops

_BACKEND = keras.backend.backend()


def _is_float64(*tensors):
    return all(keras.backend.standardize_dtype(t.dtype) == "float64" for t in tensors)


def matmul(a, b):
    """``a @ b`` (``keras.ops.matmul``), float64 operands multiplied in float64."""
    if _BACKEND == "torch":
        a, b = ops.convert_to_tensor(a), ops.convert_to_tensor(b)
        if _is_float64(a, b):
            import torch

            return torch.matmul(a, b)
    return ops.matmul(a, b)


def tanh(x):
    """``keras.ops.tanh``, float64 computed in float64."""
    if _BACKEND == "jax":
        x = ops.convert_to_tensor(x)
        if _is_float64(x):
            import jax.numpy as jnp

            return jnp.tanh(x)
    return ops.tanh(x)


def clip(x, limit):
    """``keras.ops.clip(x, -limit, limit)`` with the bound exact in float64 (PyTorch's takes it as float32)."""
    if _BACKEND == "torch":
        x = ops.convert_to_tensor(x)
        if _is_float64(x):
            import torch

            return torch.clamp(x, -float(limit), float(limit))
    return ops.clip(x, -limit, limit)
