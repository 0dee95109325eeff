"""Sampling loops: seeds, the stop rule and step cap, priming, bias, text sampling."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf.evaluation import mixture_mean  # noqa: E402,F401
from graves_tf.layers.mixture_density_head import mixture_parameters  # noqa: E402
from graves_tf.models import HandwritingPredictor, HandwritingSynthesizer, TextPredictor  # noqa: E402
from graves_tf.sampling import compiled_sampler, sample_handwriting, sample_text  # noqa: E402
from sampling_helpers import ALPHABET_SIZE, context_for, expected_stop_length, force_window, synthesizer  # noqa: E402,F401


def test_a_seed_reproduces_a_sample_and_another_seed_changes_it():
    model = synthesizer()
    context = context_for(model, [5, 3])
    sampler = compiled_sampler(model)
    a, la = sampler(2, 60, 0.3, 11, context)
    b, lb = sampler(2, 60, 0.3, 11, context)
    c, _ = sampler(2, 60, 0.3, 12, context)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(la.numpy(), lb.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    eager, _ = sample_handwriting(model, 2, 60, 0.3, 11, context)  # the same loop outside tf.function
    np.testing.assert_allclose(eager.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)


def test_the_stop_rule_ends_each_sample_where_the_window_passes_its_text():
    model = synthesizer()
    force_window(model, kappa_step=0.25)
    lengths = [5, 2]
    strokes, counts = compiled_sampler(model)(2, 200, 0.0, 0, context_for(model, lengths))
    expected = [expected_stop_length(u, 0.25) for u in lengths]
    np.testing.assert_array_equal(counts.numpy(), expected)
    for row, n in enumerate(expected):
        assert np.all(strokes[row, n:].numpy() == 0)
        assert np.any(strokes[row, :n].numpy() != 0)


def test_the_step_cap_stops_a_sample_whose_window_never_moves():
    model = synthesizer()
    force_window(model, kappa_step=1e-6)
    strokes, counts = sample_handwriting(model, 2, 500, 0.0, 0, context_for(model, [4, 2]), steps_per_character=9)
    np.testing.assert_array_equal(counts.numpy(), [36, 18])
    strokes, counts = sample_handwriting(model, 1, 10, 0.0, 0, context_for(model, [4]), steps_per_character=9)
    np.testing.assert_array_equal(counts.numpy(), [10])  # max_steps caps too


def test_priming_clamps_the_inputs_then_continues_from_the_primed_state():
    """With a large bias the first sampled point is the mean of the most probable
    component predicted after teacher forcing the priming strokes (section 5.5)."""
    model = synthesizer()
    rng = np.random.default_rng(0)
    prime = rng.normal(size=(1, 8, 3)).astype(np.float32)
    prime[..., 2] = rng.integers(0, 2, (1, 8))
    context = context_for(model, [6])
    strokes, counts = sample_handwriting(
        model, 1, 5, bias=60.0, seed=0, context=context, prime=tf.constant(prime), prime_lengths=tf.constant([8]),
        use_stop_rule=False,
    )
    inputs = np.concatenate([np.zeros((1, 1, 3), np.float32), prime], axis=1)
    batch = {"inputs": inputs, "targets": np.zeros_like(inputs), "text": np.ones((1, 6), np.int32)}
    y_hat = model.forward(batch)["outputs"][:, -1]
    params = mixture_parameters(y_hat)
    best = int(np.argmax(params["log_pi"][0]))
    expected = [params["mu1"][0, best], params["mu2"][0, best]]
    np.testing.assert_allclose(strokes[0, 0, :2].numpy(), expected, rtol=1e-3, atol=1e-3)
    assert int(counts[0]) == 5


def test_prediction_samples_run_their_length_and_bias_shrinks_their_spread():
    keras.utils.set_random_seed(0)
    model = HandwritingPredictor(units=8, num_layers=1, num_mixtures=3)
    spreads = []
    for bias in (0.0, 1.0, 4.0):
        strokes, counts = sample_handwriting(model, 64, 20, bias=bias, seed=1)
        np.testing.assert_array_equal(counts.numpy(), 20)
        spreads.append(float(np.std(strokes.numpy()[:, 0, :2])))
    assert spreads[0] > spreads[1] > spreads[2]


def test_greedy_text_sampling_follows_the_argmax_of_the_teacher_forced_outputs():
    keras.utils.set_random_seed(0)
    model = TextPredictor(9, units=10, num_layers=2)
    prime = np.array([[3, 1, 4, 1]], np.int32)
    greedy = sample_text(model, prime, 12, temperature=0.0).numpy()
    inputs = np.concatenate([[[-1]], prime, greedy[:, :-1]], axis=1)
    logits = model.forward({"inputs": inputs, "targets": np.zeros_like(inputs)})["outputs"].numpy()
    np.testing.assert_array_equal(np.argmax(logits[0, prime.shape[1]:], axis=-1), greedy[0])
    a = sample_text(model, prime, 30, temperature=1.0, seed=5).numpy()
    np.testing.assert_array_equal(a, sample_text(model, prime, 30, temperature=1.0, seed=5).numpy())
    assert len(set(a[0].tolist())) > 2


def test_after_a_sentence_end_text_sampling_starts_a_new_sentence_from_scratch():
    """A model trained one sentence per sequence starts each sentence from the
    null input and a zero state: greedy samples then repeat the first sentence."""
    keras.utils.set_random_seed(3)
    model = TextPredictor(9, units=10, num_layers=2)
    no_prime = np.zeros((2, 0), np.int32)
    stream = sample_text(model, no_prime, 40, temperature=0.0).numpy()
    end = next(j for j in range(1, 40) if stream[0, j] not in stream[0, :j])  # first sentence: stream[0, :end + 1]
    sentences = sample_text(model, no_prime, 40, temperature=0.0, sentence_end=int(stream[0, end])).numpy()
    period = end + 1
    np.testing.assert_array_equal(sentences, np.tile(stream[:, :period], (1, 40 // period + 1))[:, :40])
    assert not np.array_equal(sentences, stream)
