"""A custom gradient of a function with several tensor outputs, on every Keras backend.

``keras.ops.custom_gradient`` hands a function's gradient its upstream
derivatives in three different ways: TensorFlow passes one positional
argument per output, JAX passes them as one tuple, and the PyTorch backend's
``torch.autograd.Function`` accepts a single output only. :func:`custom_gradient`
takes a function written once, ``fn(*tensors) -> (outputs, grad)`` with
``grad(*upstream) -> derivatives``, and wraps it for the backend in use:

* TensorFlow: ``keras.ops.custom_gradient`` (``tf.custom_gradient``), as before;
* JAX: ``keras.ops.custom_gradient`` (``jax.custom_gradient``), the tuple of
  upstream derivatives unpacked;
* PyTorch: a ``torch.autograd.Function`` with one backward input per output.

An upstream derivative may be None (TensorFlow, for an output the loss does
not use) or zeros (JAX, PyTorch); ``grad`` must accept both.
"""

import keras
from keras import ops


def custom_gradient(fn):
    """Wraps ``fn(*tensors) -> (outputs, grad)`` so that autodiff uses ``grad``.

    Args:
        fn: takes tensors only (no keyword arguments) and returns a tuple of
            tensors and ``grad(*upstream)``: one upstream derivative per
            output in, one derivative per input out (zeros for inputs that
            are not differentiated).

    Returns:
        A function of the same tensors returning the same tuple.
    """
    backend = keras.backend.backend()
    if backend == "torch":
        return _torch_custom_gradient(fn)
    if backend == "jax":

        def run_jax(*args):
            outputs, grad = fn(*args)
            return outputs, lambda upstream: grad(*upstream)

        return ops.custom_gradient(run_jax)

    def run(*args):
        outputs, grad = fn(*args)
        return outputs, lambda *upstream: grad(*upstream)

    return ops.custom_gradient(run)


def _torch_custom_gradient(fn):
    import torch

    class Function(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *args):
            outputs, ctx.grad = fn(*args)
            return tuple(outputs)

        @staticmethod
        def backward(ctx, *upstream):
            return tuple(ctx.grad(*upstream))

    def run(*args):
        return Function.apply(*(ops.convert_to_tensor(a) for a in args))

    return run
