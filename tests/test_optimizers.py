"""GravesRMSprop against a NumPy transcription of Graves (2013) eqs. 38-45."""

import inspect
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf.optimizers import (  # noqa: E402
    GravesRMSprop,
    make_optimizer,
    parse_learning_rate_drops,
    scheduled_learning_rate,
)

SHAPES = [(3,), (4, 5), (2, 3, 2)]


def numpy_graves_rmsprop(weights, gradients_per_step, aleph, beth, gimel, k):
    """Eqs. 38-41 written out in NumPy (float64); returns the weights after every step."""
    w = [np.array(x, np.float64) for x in weights]
    n = [np.zeros_like(x) for x in w]
    g = [np.zeros_like(x) for x in w]
    delta = [np.zeros_like(x) for x in w]
    history = []
    for grads in gradients_per_step:
        for i, eps in enumerate(grads):
            n[i] = aleph * n[i] + (1 - aleph) * eps**2  # (38)
            g[i] = aleph * g[i] + (1 - aleph) * eps  # (39)
            delta[i] = beth * delta[i] - gimel * eps / np.sqrt(n[i] - g[i] ** 2 + k)  # (40)
            w[i] = w[i] + delta[i]  # (41)
        history.append([x.copy() for x in w])
    return history


def random_problem(seed, num_steps=7):
    rng = np.random.RandomState(seed)
    weights = [rng.randn(*s) for s in SHAPES]
    # Gradients with a non-zero mean (so g_i^2 matters in eq. 40) and varying scales.
    offsets = [rng.randn(*s) for s in SHAPES]
    grads = [
        [(offsets[i] + rng.randn(*s)) * 10.0 ** rng.uniform(-2, 1) for i, s in enumerate(SHAPES)]
        for _ in range(num_steps)
    ]
    return weights, grads


def test_defaults_are_the_papers():
    params = inspect.signature(GravesRMSprop).parameters
    assert params["learning_rate"].default == 1e-4  # gimel, eq. 44
    assert params["decay"].default == 0.95  # aleph, eq. 42
    assert params["momentum"].default == 0.9  # beth, eq. 43
    assert params["epsilon"].default == 1e-4  # k, eq. 45
    opt = GravesRMSprop()
    assert opt.decay == 0.95 and opt.momentum == 0.9 and opt.epsilon == 1e-4
    assert float(opt.learning_rate) == pytest.approx(1e-4, rel=1e-7)
    assert opt.name == "graves_rmsprop"


@pytest.mark.parametrize("use_tf_function", [False, True])
@pytest.mark.parametrize(
    "hyper",
    [
        # learning rate exactly representable in float32 (Keras keeps it in a float32 variable)
        dict(learning_rate=2.0**-7, decay=0.95, momentum=0.9, epsilon=1e-4),
        dict(learning_rate=2.0**-5, decay=0.8, momentum=0.5, epsilon=1e-3),
    ],
)
def test_matches_numpy_equations(hyper, use_tf_function):
    weights, grads = random_problem(seed=3)
    expected = numpy_graves_rmsprop(
        weights, grads, hyper["decay"], hyper["momentum"], hyper["learning_rate"], hyper["epsilon"]
    )
    variables = [tf.Variable(w, dtype=tf.float64) for w in weights]
    opt = GravesRMSprop(**hyper)

    def apply(gs):
        opt.apply_gradients(zip(gs, variables))

    if use_tf_function:
        apply = tf.function(apply)
    for step, gs in enumerate(grads):
        apply([tf.constant(x, tf.float64) for x in gs])
        for v, e in zip(variables, expected[step]):
            np.testing.assert_allclose(v.numpy(), e, rtol=1e-12, atol=1e-12, err_msg=f"step {step}")
    # Sanity: the weights really moved (the comparison is not vacuous).
    assert all(np.abs(v.numpy() - w).max() > 1e-3 for v, w in zip(variables, weights))


def test_matches_numpy_with_default_learning_rate():
    weights, grads = random_problem(seed=5, num_steps=5)
    # Keras holds the learning rate in a float32 variable: gimel = float32(1e-4).
    gimel = float(np.float32(1e-4))
    expected = numpy_graves_rmsprop(weights, grads, 0.95, 0.9, gimel, 1e-4)
    variables = [tf.Variable(w, dtype=tf.float64) for w in weights]
    opt = GravesRMSprop()
    for step, gs in enumerate(grads):
        opt.apply_gradients(zip([tf.constant(x) for x in gs], variables))
        for v, e in zip(variables, expected[step]):
            np.testing.assert_allclose(v.numpy(), e, rtol=1e-12, atol=1e-12)


def test_clipnorm_passes_through():
    rng = np.random.RandomState(0)
    w0 = rng.randn(6)
    grads = [rng.randn(6) * 100.0 for _ in range(3)]
    clipped = [g / max(1.0, np.linalg.norm(g) / 0.5) for g in grads]
    expected = numpy_graves_rmsprop([w0], [[g] for g in clipped], 0.95, 0.9, 2.0**-6, 1e-4)
    var = tf.Variable(w0)
    opt = GravesRMSprop(learning_rate=2.0**-6, clipnorm=0.5)
    for step, g in enumerate(grads):
        opt.apply_gradients([(tf.constant(g), var)])
        np.testing.assert_allclose(var.numpy(), expected[step][0], rtol=1e-10, atol=1e-12)


def _tiny_model():
    keras.utils.set_random_seed(7)
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(2)])


def _stepper(model, opt, x, y):
    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x) - y))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))

    return step


def test_checkpoint_restores_optimizer_state(tmp_path):
    rng = np.random.RandomState(1)
    x = tf.constant(rng.randn(16, 3), tf.float32)
    y = tf.constant(rng.randn(16, 2), tf.float32)

    model = _tiny_model()
    opt = GravesRMSprop(learning_rate=1e-2)
    step = _stepper(model, opt, x, y)
    for _ in range(4):
        step()
    path = tf.train.Checkpoint(model=model, optimizer=opt).save(str(tmp_path / "ckpt"))
    saved_names = [name for name, _ in tf.train.list_variables(path)]
    # 3 slots (n, g, Delta) per weight tensor; iterations and learning rate are saved apart.
    assert sum(name.startswith("optimizer/_variables/") for name in saved_names) == 3 * 4
    assert "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE" in saved_names
    for _ in range(3):
        step()
    expected = [v.numpy() for v in model.trainable_variables]

    # Fresh model and optimizer (unbuilt: the slots are restored on creation).
    model2 = _tiny_model()
    opt2 = GravesRMSprop(learning_rate=1e-2)
    status = tf.train.Checkpoint(model=model2, optimizer=opt2).restore(path)
    step2 = _stepper(model2, opt2, x, y)
    for _ in range(3):
        step2()
    status.assert_existing_objects_matched()
    assert int(opt2.iterations.numpy()) == 7
    for v, e in zip(model2.trainable_variables, expected):
        np.testing.assert_array_equal(v.numpy(), e)

    # Control: restoring the weights but not the optimizer state gives different steps.
    model3 = _tiny_model()
    opt3 = GravesRMSprop(learning_rate=1e-2)
    tf.train.Checkpoint(model=model3).restore(path).expect_partial()
    step3 = _stepper(model3, opt3, x, y)
    for _ in range(3):
        step3()
    assert any(not np.array_equal(v.numpy(), e) for v, e in zip(model3.trainable_variables, expected))


def test_config_round_trip():
    opt = GravesRMSprop(learning_rate=3e-3, decay=0.9, momentum=0.5, epsilon=1e-6, clipnorm=2.0)
    config = opt.get_config()
    assert config["decay"] == 0.9 and config["momentum"] == 0.5 and config["epsilon"] == 1e-6
    assert config["clipnorm"] == 2.0
    clone = GravesRMSprop.from_config(config)
    assert isinstance(clone, GravesRMSprop)
    assert clone.get_config() == config

    serialized = keras.saving.serialize_keras_object(opt)
    assert serialized["registered_name"] == "graves_tf>GravesRMSprop"
    revived = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(revived, GravesRMSprop)
    assert (revived.decay, revived.momentum, revived.epsilon, revived.clipnorm) == (0.9, 0.5, 1e-6, 2.0)
    assert float(revived.learning_rate) == pytest.approx(3e-3, rel=1e-6)


def test_make_optimizer():
    opt = make_optimizer("rmsprop_graves", 1e-3, 0.8)
    assert type(opt) is GravesRMSprop
    assert opt.momentum == 0.8 and opt.decay == 0.95 and opt.epsilon == 1e-4
    assert float(opt.learning_rate) == pytest.approx(1e-3, rel=1e-6)

    sgd = make_optimizer("sgd", 0.1, 0.7)
    assert type(sgd) is keras.optimizers.SGD
    assert sgd.momentum == 0.7
    assert float(sgd.learning_rate) == pytest.approx(0.1, rel=1e-6)

    adam = make_optimizer("adam", 2e-3, 0.9)
    assert type(adam) is keras.optimizers.Adam
    assert float(adam.learning_rate) == pytest.approx(2e-3, rel=1e-6)

    with pytest.raises(ValueError) as info:
        make_optimizer("adagrad", 0.1, 0.9)
    for choice in ("rmsprop_graves", "sgd", "adam", "adagrad"):
        assert choice in str(info.value)


def test_learning_rate_drops_take_effect_after_their_update_count():
    drops = parse_learning_rate_drops(["2:0.2", "5:1e-1"])
    assert drops == ((2, 0.2), (5, 0.1))
    assert [scheduled_learning_rate(0.4, drops, done) for done in range(7)] == [0.4, 0.4, 0.2, 0.2, 0.2, 0.1, 0.1]
    assert scheduled_learning_rate(0.4, (), 10**6) == 0.4


@pytest.mark.parametrize(
    "drops, message",
    [
        (["100"], "is not UPDATES:RATE"),
        (["100:fast"], "is not UPDATES:RATE"),
        (["200:1e-4", "100:1e-5"], "increasing"),
        (["0:1e-4"], "positive and increasing"),
        (["100:0"], "rates must be positive"),
    ],
)
def test_malformed_learning_rate_drops_are_refused(drops, message):
    with pytest.raises(ValueError, match=message):
        parse_learning_rate_drops(drops)
