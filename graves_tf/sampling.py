"""Sampling loops compiled as graphs (``tf.function`` + ``tf.while_loop``) over the models' step.

Random draws are stateless, derived from an integer seed and the step
number, so a seed reproduces a sample exactly, in process or in an exported
graph.
"""

import numpy as np
import tensorflow as tf

from graves_tf.layers.mixture_density_head import sample_mixture_from_noise


def step_noise(seed, step, batch_size, dtype=tf.float32):
    """The three draws of one sampling step: component uniform, 2 normals, end-of-stroke uniform."""
    seed = tf.cast(seed, tf.int64)
    step = tf.cast(step, tf.int64)
    base = 3 * step
    return (
        tf.random.stateless_uniform((batch_size,), seed=tf.stack([seed, base]), dtype=dtype),
        tf.random.stateless_normal((batch_size, 2), seed=tf.stack([seed, base + 1]), dtype=dtype),
        tf.random.stateless_uniform((batch_size,), seed=tf.stack([seed, base + 2]), dtype=dtype),
    )


def finished_writing(phi, phi_end):
    """The end-of-sequence rule of section 5.3: phi(t, U+1) > phi(t, u) for all u <= U."""
    return phi_end > tf.reduce_max(phi, axis=-1)


def sample_handwriting(model, batch_size, max_steps, bias=0.0, seed=0, context=None, use_stop_rule=None):
    """Free-running samples of a handwriting model.

    Args:
        model: a HandwritingPredictor or HandwritingSynthesizer.
        batch_size: number of samples.
        max_steps: steps to run (a cap when the stop rule is on).
        bias: the probability bias b (eqs. 61-62).
        seed: integer seed.
        context: the synthesizer's text context (``model.window.context(...)``).
        use_stop_rule: stop each sample by the rule of section 5.3; default:
            on for a synthesizer.

    Returns:
        ``(strokes, lengths)``: ``(batch, max_steps, 3)`` normalised offsets
        (zeros after a sample's end) and ``(batch,)`` lengths.
    """
    if use_stop_rule is None:
        use_stop_rule = context is not None
    dtype = model.compute_dtype
    bias = tf.cast(bias, dtype)
    state = model.initial_state(batch_size)
    x = tf.zeros((batch_size, 3), dtype)
    outputs = tf.TensorArray(dtype, size=max_steps)
    done = tf.zeros((batch_size,), tf.bool)
    lengths = tf.fill((batch_size,), tf.cast(max_steps, tf.int32))

    def body(t, x, state, done, lengths, outputs):
        y_hat, new_state, extras = model.step(x, state, context)
        x_next = sample_mixture_from_noise(y_hat, *step_noise(seed, t, batch_size, dtype), bias=bias)
        if use_stop_rule:
            stop = tf.logical_and(finished_writing(extras["phi"], extras["phi_end"]), tf.logical_not(done))
            lengths = tf.where(stop, t, lengths)
            done = tf.logical_or(done, stop)
        x_next = tf.where(done[:, None], tf.zeros_like(x_next), x_next)
        return t + 1, x_next, new_state, done, lengths, outputs.write(t, x_next)

    def cond(t, x, state, done, lengths, outputs):
        return tf.logical_and(t < max_steps, tf.logical_not(tf.reduce_all(done)))

    _, _, _, _, lengths, outputs = tf.while_loop(
        cond, body, (tf.constant(0), x, state, done, lengths, outputs)
    )
    strokes = tf.transpose(outputs.stack(), [1, 0, 2])
    steps = tf.shape(strokes)[1]
    strokes = tf.pad(strokes, [[0, 0], [0, max_steps - steps], [0, 0]])
    return strokes, tf.minimum(lengths, steps)


def sample_image_fn(offset_mean, offset_std, text="the quick brown fox", max_steps=600, bias=0.5):
    """A ``model -> PNG image array`` function for TensorBoard during training."""
    from graves_tf import alphabet as alphabet_lib
    from graves_tf import drawing

    def render(model):
        context = None
        if hasattr(model, "window"):
            ids = tf.constant([alphabet_lib.PAPER.encode(text)], tf.int32)
            context = model.window.context(ids, tf.ones_like(ids, dtype=model.compute_dtype))
        strokes, lengths = sample_handwriting_compiled(model, 1, max_steps, bias, 0, context)
        offsets = denormalise(strokes[0, : int(lengths[0])].numpy(), offset_mean, offset_std)
        return drawing.render_array(offsets, title=text if context is not None else None)

    return render


_COMPILED = {}


def sample_handwriting_compiled(model, batch_size, max_steps, bias=0.0, seed=0, context=None):
    """:func:`sample_handwriting` as a cached ``tf.function`` per model."""
    key = id(model)
    if key not in _COMPILED:
        _COMPILED[key] = tf.function(
            lambda b, s, ctx, n, steps: sample_handwriting(model, n, steps, b, s, ctx),
            reduce_retracing=True,
        )
    return _COMPILED[key](
        tf.constant(bias, tf.float32), tf.constant(seed, tf.int64), context, batch_size, max_steps
    )


def denormalise(offsets, offset_mean, offset_std):
    """Normalised (dx, dy, eos) back to whiteboard units."""
    offsets = np.array(offsets, dtype=np.float64)
    offsets[:, :2] = offsets[:, :2] * np.asarray(offset_std) + np.asarray(offset_mean)
    return offsets
