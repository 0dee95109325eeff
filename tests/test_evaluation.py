"""Evaluation metrics and dynamic evaluation."""

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf import evaluation  # noqa: E402
from graves_tf.data import stream_segments  # noqa: E402
from graves_tf.models import HandwritingPredictor, TextPredictor  # noqa: E402

VOCAB = 6


def tiny_text_model(seed=0):
    keras.utils.set_random_seed(seed)
    return TextPredictor(VOCAB, units=12, num_layers=1)


def test_bits_error_and_perplexity_match_a_direct_computation():
    model = tiny_text_model()
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, 400)
    segments = list(stream_segments(ids, 2, 25, reset_every=1000))
    metrics = evaluation.evaluate_text(model, segments, word_end_ids=[0])
    nats = correct = count = ends = 0
    state = None
    for seg in segments:
        batch = {"inputs": seg["inputs"], "targets": seg["targets"]}
        out = model.forward(batch, initial_state=state)
        state = out["final_state"]
        logp = tf.nn.log_softmax(out["outputs"]).numpy()
        t = seg["targets"].numpy()
        nats -= np.take_along_axis(logp, t[..., None], -1).sum()
        correct += (logp.argmax(-1) == t).sum()
        count += t.size
        ends += (t == 0).sum()
    assert math.isclose(metrics["bits_per_symbol"], nats / math.log(2) / count, rel_tol=1e-5)
    assert math.isclose(metrics["error_rate"], 1 - correct / count, rel_tol=1e-9)
    assert math.isclose(metrics["perplexity"], 2 ** (nats / math.log(2) / ends), rel_tol=1e-4)
    assert metrics["bits_per_character"] == metrics["bits_per_symbol"] and metrics["characters"] == count


def test_a_perplexity_beyond_a_float_is_infinite_not_an_error():
    totals = evaluation.TextTotals()
    totals.nats, totals.symbols, totals.characters, totals.word_ends = 5000.0, 2000, 2000, 2
    assert totals.metrics()["perplexity"] == math.inf
    totals.word_ends = 100
    assert math.isclose(totals.metrics()["perplexity"], 2 ** (5000 / math.log(2) / 100), rel_tol=1e-12)


def test_word_models_count_the_characters_their_words_spell():
    from graves_tf.data.text import Vocabulary
    from graves_tf.evaluation import characters_per_id, word_end_ids

    vocabulary = Vocabulary(["<eos>", "no", "it", "was", "<unk>"], end_of_line="<eos>")
    assert word_end_ids(vocabulary, "ptb_word") == [1, 2, 3, 4]
    assert characters_per_id(vocabulary, "ptb_word") == [0, 3, 3, 4, 6]
    assert characters_per_id(vocabulary, "ptb_char") is None
    totals = evaluation.TextTotals(word_end_ids(vocabulary, "ptb_word"), characters_per_id(vocabulary, "ptb_word"))
    targets = np.array([[1, 2, 3, 0], [4, 0, 0, 0]])  # "no it was" and "<unk>", the second padded
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]])
    totals.add(10.0, targets, np.zeros((2, 4, 5)), mask)
    metrics = totals.metrics()
    assert metrics["characters"] == len("no it was\n<unk>\n") and metrics["symbols"] == 6
    assert math.isclose(metrics["bits_per_character"], 10.0 / math.log(2) / 16)
    assert math.isclose(metrics["perplexity"], 2 ** (10.0 / math.log(2) / 4))


def repetitive_text(n=3000):
    return np.tile(np.array([1, 2, 3, 4, 5, 0, 3, 3, 1]), n // 9 + 1)[:n]


def test_dynamic_evaluation_on_seen_text_lowers_bpc():
    ids = repetitive_text()
    model = tiny_text_model()
    static = evaluation.evaluate_text(model, stream_segments(ids, 1, 50, reset_every=10**6))
    dynamic = evaluation.dynamic_evaluation(
        model, stream_segments(ids, 1, 50, reset_every=10**6), learning_rate=0.02
    )
    assert dynamic["bits_per_symbol"] < 0.8 * static["bits_per_symbol"], (static, dynamic)


def test_dynamic_evaluation_never_uses_a_symbol_before_predicting_it():
    """Shuffled-future trap: changing the text after segment k leaves the losses of
    segments 0..k unchanged, and segment 0 is scored with the untouched weights."""
    ids = repetitive_text(1200)
    k = 6
    trap = ids.copy()
    rng = np.random.default_rng(1)
    future = trap[(k + 1) * 50 + 1 :]
    trap[(k + 1) * 50 + 1 :] = rng.permutation(future)

    def per_segment_losses(stream):
        model = tiny_text_model()
        losses = []
        evaluation.dynamic_evaluation(
            model, stream_segments(stream, 1, 50, reset_every=10**6), learning_rate=0.05,
            on_batch=lambda i, nats: losses.append(nats),
        )
        return losses

    honest, trapped = per_segment_losses(ids), per_segment_losses(trap)
    np.testing.assert_allclose(honest[: k + 1], trapped[: k + 1], rtol=1e-6)
    assert not np.allclose(honest[k + 1 :], trapped[k + 1 :])  # the future did change
    first = next(iter(stream_segments(ids, 1, 50, reset_every=10**6)))
    static_first = float(tf.reduce_sum(tiny_text_model()({"inputs": first["inputs"], "targets": first["targets"]})))
    assert math.isclose(honest[0], static_first, rel_tol=1e-5)


def test_dynamic_evaluation_starts_every_sentence_from_the_zero_state():
    """Sentence batches (no ``reset``) are independent sequences, as in
    training: with a zero learning rate dynamic evaluation equals static."""
    rng = np.random.default_rng(2)
    sentences = []
    for length in (7, 12, 5, 9):
        ids = rng.integers(0, VOCAB, length)
        sentences.append({
            "inputs": np.concatenate([[-1], ids[:-1]])[None].astype(np.int32),
            "targets": ids[None].astype(np.int32), "lengths": np.array([length], np.int32),
        })
    model = tiny_text_model()
    static = evaluation.evaluate_text(model, sentences)
    frozen = evaluation.dynamic_evaluation(model, sentences, learning_rate=0.0)
    assert math.isclose(frozen["bits_per_symbol"], static["bits_per_symbol"], rel_tol=1e-6)
    carried = evaluation.evaluate_text(model, sentences, carry_state=True)
    assert not math.isclose(carried["bits_per_symbol"], static["bits_per_symbol"], rel_tol=1e-6)


def test_handwriting_loss_and_sse():
    keras.utils.set_random_seed(0)
    model = HandwritingPredictor(units=8, num_layers=1, num_mixtures=2)
    rng = np.random.default_rng(0)
    targets = rng.normal(size=(3, 10, 3)).astype(np.float32)
    targets[..., 2] = rng.integers(0, 2, (3, 10))
    inputs = np.concatenate([np.zeros((3, 1, 3), np.float32), targets[:, :-1]], 1)
    batch = {"inputs": inputs, "targets": targets, "lengths": np.array([10, 7, 4])}
    metrics = evaluation.evaluate_handwriting(model, [batch])
    out = model.forward(batch)
    mean = evaluation.mixture_mean(out["outputs"]).numpy()
    mask = np.arange(10)[None] < batch["lengths"][:, None]
    sse = (((targets[..., :2] - mean) ** 2).sum(-1) * mask).sum() / mask.sum()
    assert math.isclose(metrics["loss"], float(np.mean(out["loss"])), rel_tol=1e-5)
    assert math.isclose(metrics["sse_per_point"], sse, rel_tol=1e-5)
    assert metrics["points"] == 21
