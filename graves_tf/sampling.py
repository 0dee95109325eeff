"""Sampling loops compiled as graphs (``tf.function`` + ``tf.while_loop``) over the models' step.

Random draws are stateless, derived from an integer seed and the step
number, so a seed reproduces a sample exactly, in process or in an exported
graph.

* :func:`sample_handwriting`: free-running prediction samples, or synthesis
  samples of a text with the end-of-sequence rule of section 5.3, biased
  (eqs. 61-62) and/or primed with real strokes (section 5.5).
* :func:`sample_text`: text samples with a temperature, after a priming
  string; temperature 0 is greedy.
"""

import math

import numpy as np
import tensorflow as tf

from graves_tf.layers.mixture_density_head import sample_mixture_from_noise

DEFAULT_STEPS_PER_CHARACTER = 40  # the paper: "the average letter occupying more than 25 timesteps"


def step_noise(seed, step, batch_size, dtype=tf.float32):
    """The three draws of one sampling step: component uniform, 2 normals, end-of-stroke uniform."""
    seed = tf.cast(seed, tf.int64)
    base = 3 * tf.cast(step, tf.int64)
    return (
        tf.random.stateless_uniform((batch_size,), seed=tf.stack([seed, base]), dtype=dtype),
        tf.random.stateless_normal((batch_size, 2), seed=tf.stack([seed, base + 1]), dtype=dtype),
        tf.random.stateless_uniform((batch_size,), seed=tf.stack([seed, base + 2]), dtype=dtype),
    )


def finished_writing(phi, phi_end):
    """The end-of-sequence rule of section 5.3: phi(t, U+1) > phi(t, u) for all u <= U."""
    return phi_end > tf.reduce_max(phi, axis=-1)


def sample_handwriting(
    model,
    batch_size,
    max_steps,
    bias=0.0,
    seed=0,
    context=None,
    prime=None,
    prime_lengths=None,
    steps_per_character=DEFAULT_STEPS_PER_CHARACTER,
    use_stop_rule=None,
    finish_stroke_steps=0,
    end_delay_steps=0,
    return_positions=False,
):
    """Samples pen offsets from a handwriting model.

    Args:
        model: a HandwritingPredictor or HandwritingSynthesizer.
        batch_size: number of samples.
        max_steps: the most steps any sample runs after its priming.
        bias: the probability bias b (eqs. 61-62), a float or ``(batch,)``.
        seed: integer seed; the same seed gives the same samples.
        context: the synthesizer's text context (``model.window.context(...)``);
            for priming, the text is the priming text followed by the text
            to write (section 5.5: c' = c + s).
        prime: ``(batch, T, 3)`` normalised real offsets that the inputs are
            clamped to for the first ``prime_lengths`` steps; None: no priming.
        prime_lengths: ``(batch,)`` real steps of each priming sequence.
        steps_per_character: synthesis: a sample stops after this many steps
            per character of its text at the latest, even if the stop rule
            never fires.
        use_stop_rule: stop each sample by the rule of section 5.3 (default:
            on for a synthesizer).
        finish_stroke_steps: when the rule fires with the pen still down,
            keep sampling until the pen lifts, for at most this many more
            points, so the stroke under way (the tail of the last letter) is
            completed; 0 stops at once, as the paper's rule does.
        end_delay_steps: after the rule fires, write at least this many more
            points before stopping at a pen-up (the window runs a little ahead
            of the pen, so the last letter may still be unwritten when it
            passes the text's end); the sample stops at most
            ``end_delay_steps + finish_stroke_steps`` points after the rule.
        return_positions: synthesis: also return where the window was at
            each sampled point.

    Returns:
        ``(strokes, lengths)``: ``(batch, max_steps, 3)`` normalised sampled
        offsets (the priming part excluded; zeros after a sample's end) and
        ``(batch,)`` the number of sampled steps of each; with
        ``return_positions`` also ``(batch, max_steps)`` int32, the character
        the window weighted most (argmax_u phi(t, u)) when each point was
        sampled.
    """
    if use_stop_rule is None:
        use_stop_rule = context is not None
    dtype = model.compute_dtype
    bias = tf.broadcast_to(tf.cast(bias, dtype), (batch_size,))
    if prime is None:
        prime = tf.zeros((batch_size, 1, 3), dtype)
        prime_lengths = tf.zeros((batch_size,), tf.int32)
    prime = tf.cast(prime, dtype)
    prime_lengths = tf.cast(prime_lengths, tf.int32)
    prime_steps = tf.shape(prime)[1]
    cap = tf.fill((batch_size,), tf.cast(max_steps, tf.int32))
    if context is not None:
        text_lengths = tf.cast(tf.reduce_sum(context["text_mask"], axis=-1), tf.int32)
        cap = tf.minimum(cap, steps_per_character * text_lengths)
    total_steps = tf.reduce_max(prime_lengths) + max_steps
    buffer_steps = prime.shape[1] + max_steps if isinstance(max_steps, int) and prime.shape[1] else prime_steps + max_steps

    # Iteration t reads x_{t+1} (x_1 is the null input) and emits x_{t+2}: the
    # priming point prime[t] while t < prime_length, a sample afterwards.
    weights = model.step_weights()

    def body(t, x, state, done, counts, finishing, extra, outputs, positions):
        y_hat, state, extras = model.step(x, state, context, weights)
        sampled = sample_mixture_from_noise(y_hat, *step_noise(seed, t, batch_size, dtype), bias=bias)
        priming = t < prime_lengths
        x_next = tf.where(priming[:, None], tf.gather(prime, tf.minimum(t, prime_steps - 1), axis=1), sampled)
        active = tf.logical_and(tf.logical_not(done), tf.logical_not(priming))
        emit = active
        if use_stop_rule:  # x_{t+1} ends the sequence, unless the pen is still finishing its stroke
            fired = tf.logical_and(active, finished_writing(extras["phi"], extras["phi_end"]))
            finishing = tf.logical_or(finishing, fired)
            pen_up = x[:, 2] > 0.5
            lifted = tf.logical_and(pen_up, extra >= end_delay_steps)
            stop = tf.logical_and(finishing, tf.logical_or(lifted, extra >= end_delay_steps + finish_stroke_steps))
            emit = tf.logical_and(active, tf.logical_not(stop))
            extra = extra + tf.cast(tf.logical_and(finishing, emit), tf.int32)
        counts = counts + tf.cast(emit, tf.int32)
        done = tf.logical_or(done, tf.logical_and(active, tf.logical_not(emit)))
        done = tf.logical_or(done, counts >= cap)
        written = tf.where(emit[:, None], sampled, tf.zeros_like(sampled))
        if return_positions:
            positions = positions.write(t, tf.cast(tf.argmax(extras["phi"], axis=-1), tf.int32))
        return t + 1, x_next, state, done, counts, finishing, extra, outputs.write(t, written), positions

    def cond(t, x, state, done, counts, finishing, extra, outputs, positions):
        return tf.logical_and(t < total_steps, tf.logical_not(tf.reduce_all(done)))

    _, _, _, _, counts, _, _, outputs, positions = tf.while_loop(
        cond,
        body,
        (
            tf.constant(0),
            tf.zeros((batch_size, 3), dtype),
            model.initial_state(batch_size),
            cap <= 0,
            tf.zeros((batch_size,), tf.int32),
            tf.zeros((batch_size,), tf.bool),
            tf.zeros((batch_size,), tf.int32),
            tf.TensorArray(dtype, size=buffer_steps, element_shape=(_static(batch_size), 3)),
            tf.TensorArray(tf.int32, size=buffer_steps if return_positions else 1, element_shape=(_static(batch_size),)),
        ),
    )
    emitted = tf.transpose(outputs.stack(), [1, 0, 2])  # (batch, iterations, 3)
    emitted = tf.pad(emitted, [[0, 0], [0, 1], [0, 0]])  # at least one column to gather from
    positions_index = tf.minimum(prime_lengths[:, None] + tf.range(max_steps)[None, :], tf.shape(emitted)[1] - 1)
    strokes = tf.gather(emitted, positions_index, batch_dims=1)
    keep = tf.range(max_steps)[None, :] < counts[:, None]
    strokes = tf.where(keep[..., None], strokes, tf.zeros_like(strokes))
    if not return_positions:
        return strokes, counts
    where = tf.pad(tf.transpose(positions.stack(), [1, 0]), [[0, 0], [0, 1]])
    return strokes, counts, tf.where(keep, tf.gather(where, positions_index, batch_dims=1), tf.zeros_like(keep, tf.int32))


def sample_text(model, prime_ids, num_steps, temperature=1.0, seed=0, num_symbols=None, sentence_end=None):
    """Samples ``num_steps`` symbols after a priming sequence.

    Args:
        model: a TextPredictor.
        prime_ids: ``(batch, P)`` int ids fed first (P >= 0); the null input
            starts the sequence.
        num_steps: symbols to sample.
        temperature: softmax temperature; 0 picks the most probable symbol (greedy).
        seed: integer seed.
        num_symbols: only ids below this are sampled (a vocabulary smaller
            than the output layer, e.g. bytes absent from the training data);
            None: every class.
        sentence_end: the id that ends a sentence, for a model trained on
            one sentence per sequence (Penn Treebank): after sampling it, the
            next sentence starts as in training, from the null input and a
            zero state (section 3.1). None: one unbroken stream (enwik8).

    Returns:
        ``(batch, num_steps)`` int32 sampled ids.
    """
    prime_ids = tf.cast(prime_ids, tf.int32)
    batch_size = tf.shape(prime_ids)[0]
    inputs = tf.concat([-tf.ones((batch_size, 1), tf.int32), prime_ids], axis=1)
    initial_state = model.initial_state(batch_size)
    state = initial_state
    prime_length = tf.shape(inputs)[1]
    weights = model.step_weights()

    def feed(t, state, logits):
        logits, state, _ = model.step(inputs[:, t], state, weights=weights)
        return t + 1, state, logits

    vocab = model.vocab_size
    _, state, logits = tf.while_loop(
        lambda t, *_: t < prime_length, feed, (tf.constant(0), state, tf.zeros((batch_size, vocab), model.compute_dtype))
    )
    temperature = tf.cast(temperature, logits.dtype)
    is_symbol = tf.range(vocab) < num_symbols if num_symbols is not None and num_symbols < vocab else None

    def body(t, state, logits, outputs):
        if is_symbol is not None:
            logits = tf.where(is_symbol, logits, tf.constant(-math.inf, logits.dtype))
        noise = tf.random.stateless_uniform(
            tf.shape(logits), seed=tf.stack([tf.cast(seed, tf.int64), tf.cast(t, tf.int64)]),
            minval=1e-20, maxval=1.0, dtype=logits.dtype,
        )
        gumbel = -tf.math.log(-tf.math.log(noise))
        scaled = logits / tf.maximum(temperature, 1e-8) + gumbel
        choice = tf.where(temperature > 0, tf.argmax(scaled, axis=-1), tf.argmax(logits, axis=-1))
        choice = tf.cast(choice, tf.int32)
        next_input = choice
        if sentence_end is not None:
            new_sentence = tf.equal(choice, sentence_end)
            next_input = tf.where(new_sentence, tf.constant(-1, tf.int32), choice)
            state = tf.nest.map_structure(
                lambda value, start: tf.where(tf.reshape(new_sentence, [-1] + [1] * (value.shape.rank - 1)), start, value),
                state, initial_state,
            )
        logits, state, _ = model.step(next_input, state, weights=weights)
        return t + 1, state, logits, outputs.write(t, choice)

    _, _, _, outputs = tf.while_loop(
        lambda t, *_: t < num_steps,
        body,
        (tf.constant(0), state, logits, tf.TensorArray(tf.int32, size=num_steps)),
    )
    return tf.transpose(outputs.stack(), [1, 0])


def sample_image_fn(offset_mean, offset_std, text="the quick brown fox", max_steps=600, bias=0.5, alphabet=None):
    """A ``model -> image array`` function rendering a sample, for TensorBoard during training."""
    from graves_tf import alphabet as alphabet_lib
    from graves_tf import drawing

    alphabet = alphabet or alphabet_lib.PAPER

    def render(model):
        context = None
        if hasattr(model, "window"):
            ids = tf.constant([alphabet.encode(text)], tf.int32)
            context = model.window.context(ids, tf.ones_like(ids, dtype=model.compute_dtype))
        strokes, lengths = compiled_sampler(model)(1, max_steps, bias, 0, context)
        offsets = denormalise(strokes[0, : int(lengths[0])].numpy(), offset_mean, offset_std)
        return drawing.render_array(offsets, title=text if context is not None else None)

    return render


_COMPILED = {}


def compiled_sampler(
    model, jit_compile=False, steps_per_character=DEFAULT_STEPS_PER_CHARACTER, finish_stroke_steps=0,
    end_delay_steps=0, return_positions=False,
):
    """:func:`sample_handwriting` as a ``tf.function`` cached per model:
    ``(batch_size, max_steps, bias, seed, context, prime=None, prime_lengths=None)``.

    With ``jit_compile`` the whole loop is compiled by XLA, once per batch
    size, step count and text length; XLA draws other random numbers for the
    same seed, so a seed reproduces a sample only on the same path. On this
    project's 2-core CPU XLA about doubles batch-1 sampling speed
    (``python -m benchmarks.speed``).
    """
    key = (id(model), bool(jit_compile), int(steps_per_character), int(finish_stroke_steps), int(end_delay_steps),
           bool(return_positions), getattr(model, "matmul_precision", None))  # a traced graph keeps its precision
    if key not in _COMPILED:

        # autograph=False: the loop is an explicit tf.while_loop and the model's step has no Python control
        # flow on tensors, so AutoGraph would only rewrite ~120 functions' source (most of a cold trace).
        @tf.function(reduce_retracing=True, jit_compile=jit_compile, autograph=False)
        def sampler(batch_size, max_steps, bias, seed, context, prime=None, prime_lengths=None):
            return sample_handwriting(
                model, batch_size, max_steps, bias, seed, context, prime=prime, prime_lengths=prime_lengths,
                steps_per_character=steps_per_character, finish_stroke_steps=finish_stroke_steps,
                end_delay_steps=end_delay_steps, return_positions=return_positions,
            )

        def call(batch_size, max_steps, bias, seed, context, prime=None, prime_lengths=None):
            if not jit_compile:  # a tensor, so that each new step count does not retrace
                max_steps = tf.constant(max_steps, tf.int32)
            return sampler(
                batch_size, max_steps, tf.constant(bias, tf.float32), tf.constant(seed, tf.int64), context, prime,
                prime_lengths,
            )

        _COMPILED[key] = call
    return _COMPILED[key]


def denormalise(offsets, offset_mean, offset_std):
    """Normalised (dx, dy, eos) back to whiteboard units."""
    offsets = np.array(offsets, dtype=np.float64)
    offsets[:, :2] = offsets[:, :2] * np.asarray(offset_std) + np.asarray(offset_mean)
    return offsets


def _static(size):
    return size if isinstance(size, int) else None
