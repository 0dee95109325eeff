"""bfloat16 matmuls (graves_tf.layers.precision) stay close to float32; skipped on CPUs without bfloat16.

Tolerances (a bfloat16 operand keeps 8 significant bits, a relative rounding
of at most 2^-9 = 0.2%): the loss within 0.1% of float32's, each weight's
gradient within 3% of float32's in norm (measured on these tiny models:
at most 0.4%), teacher-forced outputs within 0.05 absolute (logits and
mixture parameters of order 1). The numbers must also differ from float32's,
or bfloat16 was not used.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf import machine, train_path  # noqa: E402
from graves_tf.layers import precision  # noqa: E402
from graves_tf.sampling import compiled_sampler  # noqa: E402
from model_helpers import as_tensors, randomize, tiny_models  # noqa: E402

pytestmark = pytest.mark.skipif(
    not machine.has_bfloat16(), reason="this CPU has no bfloat16 arithmetic (AVX512_BF16 / AMX_BF16)"
)


def loss_and_gradients(model, batch, path, matmul_precision):
    model.matmul_precision = matmul_precision
    try:
        loss, grads = train_path.gradient_function(model, path)(batch)
        return float(loss), [g.numpy() for g in grads]
    finally:
        model.matmul_precision = None


@pytest.mark.parametrize("path", ["fused", "autodiff", "xla"])
@pytest.mark.parametrize("name", ["text", "synthesis"])
def test_bfloat16_loss_and_gradients_are_close_to_float32(name, path):
    rng = np.random.default_rng(5)
    model, make_batch = tiny_models("float32")[name]
    randomize(model, rng)
    batch = as_tensors(make_batch(rng), "float32")
    want_loss, want = loss_and_gradients(model, batch, path, None)
    loss, got = loss_and_gradients(model, batch, path, "bfloat16")
    assert loss != want_loss, "the loss is float32's to the bit: bfloat16 matmuls were not used"
    assert abs(loss - want_loss) <= 1e-3 * abs(want_loss), (loss, want_loss)
    for variable, g, w in zip(model.trainable_variables, got, want):
        assert g.dtype == np.float32, variable.path  # gradients (and weights) stay float32
        error = np.linalg.norm(g - w) / max(np.linalg.norm(w), 1e-12)
        assert error < 0.03, f"{variable.path}: relative gradient error {error:.4f}"


def test_the_state_window_and_loss_stay_float32_and_the_step_kernels_are_cast_once():
    rng = np.random.default_rng(6)
    model, make_batch = tiny_models("float32")["synthesis"]
    randomize(model, rng)
    batch = as_tensors(make_batch(rng), "float32")
    want = model.forward(batch)
    model.matmul_precision = "bfloat16"
    try:
        got = model.forward(batch)
        for key in ("loss", "outputs", "phi", "window"):
            assert got[key].dtype == tf.float32, key
        for value in tf.nest.flatten(got["final_state"]):
            assert value.dtype == tf.float32
        np.testing.assert_allclose(got["outputs"].numpy(), want["outputs"].numpy(), atol=0.05)
        assert not np.array_equal(got["outputs"].numpy(), want["outputs"].numpy())
        weights = model.step_weights()
        assert all(k.dtype == tf.bfloat16 for k in weights["stacked_kernels"])
        assert all(w.dtype == tf.float32 for w in weights["lstm"][0].values())  # peepholes: elementwise, float32
        assert weights["window"]["kernel"].dtype == tf.float32
        context = model.context(batch)
        strokes, lengths = compiled_sampler(model, jit_compile=True)(int(batch["inputs"].shape[0]), 30, 0.5, 0, context)[:2]
        assert strokes.dtype == tf.float32 and np.all(np.isfinite(strokes.numpy()))
        assert np.all(lengths.numpy() >= 1)
    finally:
        model.matmul_precision = None


def test_float64_and_plain_matmuls_are_untouched():
    a = tf.constant(np.random.default_rng(0).normal(size=(3, 4)))
    with precision.matmul_precision("bfloat16"):
        assert precision.matmul(a, tf.transpose(a)).dtype == tf.float64
        b = tf.cast(a, tf.float32)
        assert precision.matmul(b, tf.transpose(b)).dtype == tf.float32
        assert not np.array_equal(precision.matmul(b, tf.transpose(b)).numpy(), (b @ tf.transpose(b)).numpy())
    np.testing.assert_array_equal(precision.matmul(b, tf.transpose(b)).numpy(), (b @ tf.transpose(b)).numpy())
    with pytest.raises(ValueError, match="unknown precision"):
        precision.check_precision("float16")
