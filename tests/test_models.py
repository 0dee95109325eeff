"""The three models: teacher-forced call vs. explicit-state steps, masks, saving, learning."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from graves_tf.models import HandwritingPredictor, HandwritingSynthesizer, TextPredictor  # noqa: E402
from model_helpers import BATCH, CHARS, STEPS, VOCAB, as_tensors, handwriting_batch, randomize, text_batch, tiny_models  # noqa: E402,F401


@pytest.mark.parametrize("name", ["text", "prediction", "synthesis"])
def test_step_unrolled_equals_teacher_forced_call(name):
    """step() from initial_state() over the sequence reproduces the sequence call (eqs. 1-4, 52-53)."""
    rng = np.random.default_rng(0)
    model, make_batch = tiny_models("float64")[name]
    randomize(model, rng)
    batch = as_tensors(make_batch(rng), "float64")
    out = model.forward(batch)
    context = model.context(batch)
    state = model.initial_state(BATCH)
    for t in range(STEPS):
        y_hat, state, extras = model.step(batch["inputs"][:, t], state, context)
        real = [i for i in range(BATCH) if t < batch["lengths"][i]]  # padding is not stepped through
        close = lambda a, b: np.testing.assert_allclose(  # noqa: E731
            ops.take(a, real, axis=0), ops.take(b, real, axis=0), rtol=1e-10, atol=1e-12
        )
        close(y_hat, out["outputs"][:, t])
        if name == "synthesis":
            close(extras["phi"], out["phi"][:, t])
            close(extras["phi_end"], out["phi_end"][:, t])
    full = [i for i in range(BATCH) if batch["lengths"][i] == STEPS]
    for layer in range(model.num_layers):
        for part in range(2):
            np.testing.assert_allclose(
                ops.take(state["lstm"][layer][part], full, axis=0),
                ops.take(out["final_state"]["lstm"][layer][part], full, axis=0),
                rtol=1e-10,
            )


@pytest.mark.parametrize("name", ["text", "prediction", "synthesis"])
def test_padding_does_not_change_a_sequence(name):
    """The per-sequence loss of a padded sequence equals that of the sequence alone, and the
    final state is the state at its last real step."""
    rng = np.random.default_rng(1)
    model, make_batch = tiny_models("float64")[name]
    randomize(model, rng)
    batch = make_batch(rng)
    padded = model(as_tensors(batch, "float64")).numpy()
    out_padded = model.forward(as_tensors(batch, "float64"))
    for i, length in enumerate(batch["lengths"]):
        alone = {}
        for key, value in batch.items():
            value = value[i : i + 1]
            if key in ("inputs", "targets"):
                value = value[:, :length]
            if key == "lengths":
                value = np.array([length])
            alone[key] = value
        if "text" in batch:
            text_length = batch["text_lengths"][i]
            alone["text"] = alone["text"][:, :text_length]
        out = model.forward(as_tensors(alone, "float64"))
        np.testing.assert_allclose(padded[i], out["loss"].numpy()[0], rtol=1e-10)
        np.testing.assert_allclose(
            out_padded["final_state"]["lstm"][-1][1][i], out["final_state"]["lstm"][-1][1][0], rtol=1e-10
        )


@pytest.mark.parametrize("name", ["text", "prediction", "synthesis"])
def test_keras_save_and_load_give_identical_outputs(name, tmp_path):
    rng = np.random.default_rng(2)
    model, make_batch = tiny_models()[name]
    randomize(model, rng, scale=0.3)
    batch = as_tensors(make_batch(rng), "float32")
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(model(batch).numpy(), loaded(batch).numpy())
    np.testing.assert_array_equal(model.forward(batch)["outputs"], loaded.forward(batch)["outputs"])


@pytest.mark.parametrize("name", ["text", "prediction", "synthesis"])
def test_tiny_model_overfits_one_batch(name):
    """A few hundred Adam steps on one batch drive its loss far down: the gradients are right."""
    rng = np.random.default_rng(3)
    keras.utils.set_random_seed(3)
    model, make_batch = tiny_models()[name]
    batch = make_batch(rng)
    if name != "text":  # learnable targets: smooth offsets, a regular pen lift
        t = np.arange(STEPS)
        batch["targets"][..., 0] = np.sin(t)[None] + np.arange(BATCH)[:, None]
        batch["targets"][..., 1] = np.cos(t)[None]
        batch["targets"][..., 2] = (t % 3 == 2)[None]
    batch = as_tensors(batch, "float32")
    optimizer = keras.optimizers.Adam(0.02)

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            loss = ops.mean(model(batch))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    first = float(train_step())
    for _ in range(300):
        last = float(train_step())
    steps = float(np.sum(batch["lengths"]))
    per_step_first, per_step_last = first * BATCH / steps, last * BATCH / steps
    if name == "text":
        # From about ln(11) = 2.4 nats per symbol to nearly memorised.
        assert per_step_last < 0.1 * per_step_first, (per_step_first, per_step_last)
    else:
        assert per_step_last < per_step_first - 3.0, (per_step_first, per_step_last)


def test_output_derivatives_are_clipped_in_the_model():
    """dL/dy_hat is clipped to [-output_clip, output_clip] (section 4.2) and only there."""
    rng = np.random.default_rng(4)
    model = HandwritingPredictor(units=4, num_layers=1, num_mixtures=2, output_clip=0.5, lstm_clip=None)
    unclipped = HandwritingPredictor(units=4, num_layers=1, num_mixtures=2, output_clip=None, lstm_clip=None)
    randomize(model, rng)
    unclipped.set_weights(model.get_weights())
    batch = as_tensors(handwriting_batch(rng), "float32")
    batch["targets"] = batch["targets"] * 30.0  # far-off targets: large output derivatives
    grads = []
    for m in (model, unclipped):
        with tf.GradientTape() as tape:
            loss = ops.sum(m(batch))
        grads.append(tape.gradient(loss, m.head.bias))
    clipped_bias_grad, raw_bias_grad = grads
    # dL/d(bias) = sum over steps of dL/dy_hat: each term is at most 0.5 in magnitude.
    steps = float(np.sum(batch["lengths"]))
    assert np.max(np.abs(clipped_bias_grad)) <= 0.5 * steps + 1e-4
    assert np.max(np.abs(raw_bias_grad)) > 0.5 * steps
    np.testing.assert_allclose(model(batch), unclipped(batch), rtol=1e-6)


@pytest.mark.parametrize("name", ["text", "prediction", "synthesis"])
def test_a_tensorflow_checkpoint_of_the_model_holds_every_weight(name, tmp_path):
    """tf.train.Checkpoint(model=...) alone (as evaluation restores it) saves and restores all weights."""
    rng = np.random.default_rng(5)
    model, _ = tiny_models()[name]
    randomize(model, rng)
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    saved = [n for n, _ in tf.train.list_variables(path) if n.startswith("model/")]
    assert len(saved) == len(model.trainable_weights)
    fresh, _ = tiny_models()[name]
    tf.train.Checkpoint(model=fresh).restore(path).assert_existing_objects_matched()
    for a, b in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
