"""Evaluation metrics of the paper, static and dynamic.

Text (section 3): bits per character (the mean of -log2 Pr(x_{t+1} | y_t)),
perplexity (2 to the bits per word), and the next-step error rate.
Handwriting (section 4.2, Tables 3-4): the mean sequence loss L(x) in nats
(eq. 26) and the mean sum-squared error per point of the predicted offset.

Dynamic evaluation (section 3.1): the weights adapt to the test data as it is
predicted. Each segment is first predicted with the current weights, its loss
recorded, and only then used for a gradient step; so every symbol is
predicted once, before any update that has seen it.
"""

import math

import numpy as np
import tensorflow as tf
from keras import ops

from graves_tf.layers.mixture_density_head import mixture_parameters

LN2 = math.log(2.0)


def word_end_ids(vocabulary, dataset):
    """Ids that end a word, for perplexity per word.

    The end of a sentence counts as part of its last word, for words as for
    characters (where the end of line ends the last word): the 78,669 words
    of the PTB test set. Under this convention the paper's bits per character
    and perplexity pairs agree within 0.01 bits (1.27 and 138 for words, 1.32
    and 167 for characters, over the same 442,424 characters); counting the
    ends of sentence as words, they would not (1.27 would be perplexity 113).
    """
    if dataset == "ptb_word":
        return [i for i, s in enumerate(vocabulary.symbols) if s != vocabulary.end_of_line]
    return [vocabulary.ids[s] for s in ("_", "\n", " ") if s in vocabulary.ids]


def characters_per_id(vocabulary, dataset):
    """Word models: the characters each word stands for in the character-level
    text (the word and the space or end of line after it; 0 for the end of
    sentence, whose end of line the last word counted). None: one each."""
    if dataset != "ptb_word":
        return None
    return [0 if s == vocabulary.end_of_line else len(s) + 1 for s in vocabulary.symbols]


class TextTotals:
    """Accumulates nats, symbols, characters, correct predictions and word ends.

    ``characters_per_id`` (word models) gives the characters each symbol
    stands for, so that bits per character can be compared with character
    models; without it every symbol is one character.
    """

    def __init__(self, word_end_ids=(), characters_per_id=None):
        self.nats = 0.0
        self.symbols = 0
        self.characters = 0
        self.correct = 0
        self.word_ends = 0
        self.word_end_ids = np.asarray(sorted(word_end_ids), np.int64)
        self.characters_per_id = None if characters_per_id is None else np.asarray(characters_per_id, np.int64)

    def add(self, nats, targets, logits, mask):
        mask = np.asarray(mask, bool)
        targets = np.asarray(targets)
        predicted = np.argmax(np.asarray(logits), axis=-1)
        self.nats += float(nats)
        self.symbols += int(mask.sum())
        if self.characters_per_id is None:
            self.characters += int(mask.sum())
        else:
            self.characters += int((self.characters_per_id[targets] * mask).sum())
        self.correct += int(((predicted == targets) & mask).sum())
        if len(self.word_end_ids):
            self.word_ends += int((np.isin(targets, self.word_end_ids) & mask).sum())

    def metrics(self):
        bits = self.nats / LN2
        result = {
            "bits_per_symbol": bits / self.symbols,
            "bits_per_character": bits / self.characters,
            "characters": self.characters,
            "error_rate": 1.0 - self.correct / self.symbols,
            "nats": self.nats,
            "symbols": self.symbols,
        }
        if self.word_ends:
            bits_per_word = bits / self.word_ends
            # An untrained model's words can cost more bits than a float's exponent holds.
            result["perplexity"] = 2.0**bits_per_word if bits_per_word < 1024 else math.inf
            result["words"] = self.word_ends
        return result


def _mask(batch):
    targets = batch["targets"]
    if batch.get("lengths") is not None:
        length = tf.shape(targets)[1]
        return tf.sequence_mask(batch["lengths"], length)
    return tf.ones(tf.shape(targets)[:2], tf.bool)


def _starts_afresh(batch, carries_state):
    """Whether a batch starts from the zero state: always when the state is not
    carried (sentences), else at a stream segment's ``reset``."""
    return not carries_state or bool(np.any(batch.get("reset", False)))


def _model_inputs(batch):
    return {k: v for k, v in batch.items() if k not in ("reset", "segment")}


def evaluate_text(model, batches, word_end_ids=(), carry_state=None, max_batches=0, characters_per_id=None):
    """Static evaluation of a text model over batches (sentences or stream segments).

    Args:
        model: a TextPredictor.
        batches: iterable of batch dicts; stream segments carry ``reset``.
        word_end_ids: ids that end a word (for perplexity): for words every
            id but the end of sentence, for characters the word separator and
            the end of line.
        carry_state: carry the state across consecutive batches (default:
            when the batches have ``reset``).
        characters_per_id: characters each id stands for (word models; see
            :class:`TextTotals`).
    """
    forward = tf.function(lambda b, s: model.forward(b, initial_state=s), reduce_retracing=True)
    totals = TextTotals(word_end_ids, characters_per_id)
    state = None
    for i, batch in enumerate(batches):
        if max_batches and i >= max_batches:
            break
        carries = carry_state if carry_state is not None else "reset" in batch
        if _starts_afresh(batch, carries):
            state = None
        out = forward(_model_inputs(batch), state)
        state = out["final_state"] if carries else None
        totals.add(tf.reduce_sum(out["loss"]), batch["targets"], out["outputs"], _mask(batch))
    return totals.metrics()


def dynamic_evaluation(
    model, segments, learning_rate=1e-4, momentum=0.0, word_end_ids=(), max_batches=0, on_batch=None,
    characters_per_id=None,
):
    """Dynamic evaluation over consecutive batches, in order.

    For each batch: predict it with the current weights (its loss counts),
    then take one SGD step on that batch's loss. Stream segments (batches
    with ``reset``) carry the state on; sentences (batches without it, for a
    model trained one sentence per sequence) each start from the zero state,
    as in training. The model's weights are changed; reload them to evaluate
    again. ``on_batch(index, nats)`` is called with each batch's loss.
    """
    variables = model.trainable_variables
    velocity = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
    learning_rate = tf.constant(learning_rate, tf.float32)
    momentum = tf.constant(momentum, tf.float32)

    @tf.function(reduce_retracing=True)
    def predict_then_adapt(batch, state):
        with tf.GradientTape() as tape:
            out = model.forward(batch, initial_state=state)
            loss = tf.reduce_sum(out["loss"])
        grads = tape.gradient(loss, variables)
        for v, vel, g in zip(variables, velocity, grads):
            vel.assign(momentum * vel - learning_rate * tf.cast(g, vel.dtype))
            v.assign_add(vel)
        return loss, out["outputs"], out["final_state"]

    totals = TextTotals(word_end_ids, characters_per_id)
    state = None
    for i, batch in enumerate(segments):
        if max_batches and i >= max_batches:
            break
        if _starts_afresh(batch, "reset" in batch):
            state = None
        loss, logits, state = predict_then_adapt(_model_inputs(batch), state)
        totals.add(loss, batch["targets"], logits, _mask(batch))
        if on_batch is not None:
            on_batch(i, float(loss))
    return totals.metrics()


def mixture_mean(y_hat):
    """The mean of the predicted offset distribution, sum_j pi_j mu_j: ``(..., 2)``."""
    params = mixture_parameters(y_hat)
    pi = ops.exp(params["log_pi"])
    return ops.stack(
        [ops.sum(pi * params["mu1"], axis=-1), ops.sum(pi * params["mu2"], axis=-1)], axis=-1
    )


def evaluate_handwriting(model, batches, max_batches=0):
    """Mean loss per sequence (nats, eq. 26 / 54) and mean sum-squared error per point.

    The squared error is that of the mixture's mean offset against the true
    (normalised) offset, (dx - E[dx])^2 + (dy - E[dy])^2, averaged over points.
    """
    forward = tf.function(lambda b: model.forward(b), reduce_retracing=True)
    nats = sse = 0.0
    sequences = points = 0
    for i, batch in enumerate(batches):
        if max_batches and i >= max_batches:
            break
        out = forward(_model_inputs(batch))
        mask = tf.cast(_mask(batch), tf.float32)
        error = tf.reduce_sum(tf.square(batch["targets"][..., :2] - mixture_mean(out["outputs"])), axis=-1)
        nats += float(tf.reduce_sum(out["loss"]))
        sse += float(tf.reduce_sum(error * mask))
        sequences += int(out["loss"].shape[0])
        points += int(tf.reduce_sum(mask))
    if sequences == 0:
        raise ValueError("no batches to evaluate")
    return {"loss": nats / sequences, "sse_per_point": sse / points, "sequences": sequences, "points": points}
