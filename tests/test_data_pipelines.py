"""Input pipelines: null input, normalisation, text encoding, padding, stream segments."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf import alphabet  # noqa: E402
from graves_tf.data import Vocabulary, handwriting_batches, sentence_batches, stream_segments  # noqa: E402
from graves_tf.data.text import pad_to_stable_shapes  # noqa: E402
from graves_tf.models import HandwritingSynthesizer, TextPredictor  # noqa: E402


def iam_like(lengths, texts, seed=0):
    rng = np.random.default_rng(seed)
    lines = []
    for n in lengths:
        strokes = np.concatenate([rng.normal(3.0, 20.0, (n, 2)), rng.integers(0, 2, (n, 1))], axis=1)
        lines.append(strokes.astype(np.float32))
    dataset = tf.data.Dataset.from_generator(
        lambda: ({"strokes": s, "text": t} for s, t in zip(lines, texts)),
        output_signature={
            "strokes": tf.TensorSpec((None, 3), tf.float32),
            "text": tf.TensorSpec((), tf.string),
        },
    )
    return dataset, lines


def test_handwriting_batches_normalise_and_start_with_the_null_input():
    dataset, lines = iam_like([6, 4, 9], ["Hello", "a 1!", "Mr . Gaitskell"])
    mean, std = np.array([3.0, -1.0]), np.array([20.0, 5.0])
    batches = list(
        handwriting_batches(dataset, 3, mean, std, alphabet.PAPER, bucket_boundaries=None)
    )
    assert len(batches) == 1
    batch = batches[0]
    assert batch["inputs"].shape == (3, 9, 3) and batch["targets"].shape == (3, 9, 3)
    np.testing.assert_array_equal(batch["lengths"], [6, 4, 9])
    for i, strokes in enumerate(lines):
        n = len(strokes)
        expected = np.concatenate([(strokes[:, :2] - mean) / std, strokes[:, 2:]], axis=1)
        np.testing.assert_allclose(batch["targets"][i, :n], expected, rtol=1e-6)
        np.testing.assert_array_equal(batch["inputs"][i, 0], [0, 0, 0])  # null input x_1
        np.testing.assert_allclose(batch["inputs"][i, 1:n], expected[:-1], rtol=1e-6)
        np.testing.assert_array_equal(batch["targets"][i, n:], 0)  # padding
    # Text in the paper's alphabet; digits and '!' become the non-letter label 0.
    assert alphabet.PAPER.decode(batch["text"][1, : batch["text_lengths"][1]].numpy()) == "a ##"
    np.testing.assert_array_equal(batch["text_lengths"], [5, 4, 14])


def test_handwriting_batches_feed_the_synthesizer():
    dataset, _ = iam_like([12, 30, 7, 25], ["ab", "c d e", "f", "the end"])
    model = HandwritingSynthesizer(units=8, num_layers=2, num_mixtures=2, num_window_gaussians=2)
    for batch in handwriting_batches(dataset, 2, [0, 0], [1, 1], alphabet.PAPER, bucket_boundaries=(20,)):
        loss = model(batch)
        assert loss.shape == (2,) and np.all(np.isfinite(loss))
        assert batch["lengths"].numpy().max() == batch["inputs"].shape[1]


def test_bucketing_groups_lines_of_similar_length():
    dataset, _ = iam_like([5, 50, 6, 55, 7, 52], ["x"] * 6)
    batches = list(handwriting_batches(dataset, 2, [0, 0], [1, 1], bucket_boundaries=(20,)))
    widths = sorted(int(b["inputs"].shape[1]) for b in batches)
    assert widths == [6, 7, 52, 55]  # short with short, long with long
    assert "text" not in batches[0]


def test_stable_shapes_leave_every_loss_unchanged_with_few_shapes():
    lengths = [5, 50, 6, 55, 7, 52, 90, 95, 33, 21]
    texts = ["a", "bc d", "efgh", "the end of it", "x", "yz", "a longer one here", "b", "cc c", "seventeen letters"]
    dataset, _ = iam_like(lengths, texts)
    batches = handwriting_batches(dataset, 2, [0, 0], [1, 1], alphabet.PAPER, bucket_boundaries=(20, 60))
    stable = pad_to_stable_shapes(batches, (20, 60), time_multiple=32, text_multiple=8)
    model = HandwritingSynthesizer(units=8, num_layers=2, num_mixtures=2, num_window_gaussians=2)
    shapes = set()
    for batch, padded in zip(batches, stable):
        steps, width = padded["inputs"].shape[1], padded["text"].shape[1]
        assert steps in (20, 60) or (steps > 60 and steps % 32 == 0), steps
        assert width % 8 == 0 and width >= batch["text"].shape[1]
        shapes.add((steps, width))
        np.testing.assert_array_equal(padded["lengths"], batch["lengths"])
        np.testing.assert_array_equal(padded["inputs"][:, : batch["inputs"].shape[1]], batch["inputs"])
        np.testing.assert_array_equal(padded["inputs"][:, batch["inputs"].shape[1] :], 0)
        np.testing.assert_allclose(model(padded), model(batch), rtol=1e-5)
    assert {steps for steps, _ in shapes} == {20, 60, 96}


def test_stable_shapes_pad_text_inputs_with_the_null_input():
    vocab = Vocabulary(["<eos>", "<unk>", "the", "cat"], end_of_line="<eos>", unknown="<unk>")
    lines = tf.data.Dataset.from_tensor_slices(["the cat", "cat"])
    batches = sentence_batches(lines, vocab, "word", 2)
    batch, padded = next(iter(batches)), next(iter(pad_to_stable_shapes(batches, (8,))))
    assert padded["inputs"].shape == (2, 8)
    np.testing.assert_array_equal(padded["inputs"][:, 3:], -1)
    np.testing.assert_array_equal(padded["targets"][:, 3:], 0)
    model = TextPredictor(len(vocab), units=4)
    np.testing.assert_allclose(model(padded), model(batch), rtol=1e-6)


def test_sentence_batches_end_every_sentence_and_start_with_null():
    vocab = Vocabulary(["<eos>", "<unk>", "the", "cat"], end_of_line="<eos>", unknown="<unk>")
    lines = tf.data.Dataset.from_tensor_slices(["the cat", "cat", "the dog the"])
    batch = next(iter(sentence_batches(lines, vocab, "word", 3)))
    np.testing.assert_array_equal(batch["targets"][0], [2, 3, 0, 0])
    np.testing.assert_array_equal(batch["inputs"][0], [-1, 2, 3, -1])
    np.testing.assert_array_equal(batch["targets"][2], [2, 1, 2, 0])  # dog -> <unk>
    np.testing.assert_array_equal(batch["lengths"], [3, 2, 4])
    model = TextPredictor(len(vocab), units=4)
    assert model(batch).shape == (3,)


def test_sentence_batches_refuse_unknown_symbols_without_an_unk():
    vocab = Vocabulary(["a", "b", "\n"], end_of_line="\n")
    lines = tf.data.Dataset.from_tensor_slices(["a b", "a c"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="not in the vocabulary"):
        list(sentence_batches(lines, vocab, "spaced_char", 1))


def test_stream_segments_continue_each_row_and_reset_on_schedule():
    ids = np.arange(1000) % 97
    batch_size, length, reset_every = 4, 10, 3
    segments = list(stream_segments(ids, batch_size, length, reset_every))
    per_stream = (len(ids) - 1) // batch_size
    assert len(segments) == per_stream // length
    for k, seg in enumerate(segments):
        assert seg["inputs"].shape == (batch_size, length)
        np.testing.assert_array_equal(seg["reset"], [k % reset_every == 0] * batch_size)  # one per row
        np.testing.assert_array_equal(seg["segment"], [k] * batch_size)
        for b in range(batch_size):
            start = b * per_stream + k * length
            np.testing.assert_array_equal(seg["targets"][b], ids[start + 1 : start + 1 + length])
            np.testing.assert_array_equal(seg["inputs"][b, 1:], ids[start + 1 : start + length])
            first = -1 if k % reset_every == 0 else ids[start]
            assert seg["inputs"][b, 0] == first
    # Row b of segment k+1 continues row b of segment k.
    np.testing.assert_array_equal(segments[1]["inputs"][:, 0], segments[0]["targets"][:, -1])


def test_stream_segments_resume_at_a_data_position():
    ids = np.arange(500)
    all_segments = list(stream_segments(ids, 2, 7, 5))
    resumed = list(stream_segments(ids, 2, 7, 5, start_segment=4))
    assert len(resumed) == len(all_segments) - 4
    for a, b in zip(all_segments[4:], resumed):
        np.testing.assert_array_equal(a["inputs"], b["inputs"])
        np.testing.assert_array_equal(a["segment"], b["segment"])


def test_stream_too_short_is_a_clear_error():
    with pytest.raises(ValueError, match="too short"):
        stream_segments(np.arange(10), 4, 100)


def test_full_alphabet_keeps_digits_and_punctuation():
    dataset, _ = iam_like([5], ["No. 9 (ok)!"])
    batch = next(iter(handwriting_batches(dataset, 1, [0, 0], [1, 1], alphabet.FULL, bucket_boundaries=None)))
    assert alphabet.FULL.decode(batch["text"][0].numpy()) == "No. 9 (ok)!"
    assert len(alphabet.FULL) == 83 and alphabet.FULL.encode("é") == [0]


# -- line preparation (--line_preparation) -------------------------------------


def offsets_of(points, pen_up_after):
    points = np.asarray(points, np.float64)
    offsets = np.concatenate([points[:1], np.diff(points, axis=0)])
    ends = np.zeros((len(points), 1))
    ends[list(pen_up_after)] = 1
    return np.concatenate([offsets, ends], axis=1).astype(np.float32)


def test_smoothing_keeps_cubic_strokes_removes_jitter_and_keeps_strokes_apart():
    from graves_tf.data.handwriting import smooth_strokes

    t = np.linspace(0, 1, 20)
    cubic = np.stack([100 * t, 30 * t**3 - 20 * t**2 + 5 * t], axis=1)
    far = cubic + [500.0, 0.0]  # a second stroke, far to the right
    points = np.concatenate([cubic, far])
    strokes = offsets_of(points, [19, 39])
    smoothed = smooth_strokes(strokes).numpy()
    positions = np.cumsum(smoothed[:, :2], axis=0)
    np.testing.assert_array_equal(smoothed[:, 2], strokes[:, 2])  # pen-ups unchanged
    # a cubic is its own least-squares cubic: unchanged away from the stroke ends, in both strokes
    np.testing.assert_allclose(positions[3:17], points[3:17], atol=1e-3)
    np.testing.assert_allclose(positions[23:37], points[23:37], atol=1e-3)
    assert positions[:20, 0].max() < 101 and positions[20:, 0].min() > 499  # nothing pulled across the gap
    jitter = np.random.default_rng(0).normal(0, 2, points.shape)
    rough = np.cumsum(smooth_strokes(offsets_of(points + jitter, [19, 39])).numpy()[:, :2], axis=0)
    assert np.abs(rough - points).mean() < 0.75 * np.abs(jitter).mean()


def test_straightening_levels_a_sloped_line_about_its_first_point():
    from graves_tf.data.handwriting import straighten_baseline

    x = np.linspace(0, 300, 60)
    points = np.stack([x, 0.25 * x + 10 * np.sin(x / 7)], axis=1) + [40.0, -15.0]
    strokes = offsets_of(points, [29, 59])
    level = np.cumsum(straighten_baseline(strokes).numpy()[:, :2], axis=0)
    assert abs(np.polyfit(level[:, 0], level[:, 1], 1)[0]) < 0.01  # from 0.25 (a regression, not exactly 0)
    np.testing.assert_allclose(level[0], points[0], atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(np.diff(level, axis=0), axis=1),
                               np.linalg.norm(np.diff(points, axis=0), axis=1), rtol=1e-4)  # a rotation


def test_prepared_batches_and_bad_preparations():
    from graves_tf.data.handwriting import prepare_line

    dataset, lines = iam_like([30, 25], ["Hello", "a 1!"])
    mean, std = np.array([0.0, 0.0]), np.array([1.0, 1.0])
    plain = next(iter(handwriting_batches(dataset, 2, mean, std, alphabet.PAPER, bucket_boundaries=None)))
    batch = next(iter(handwriting_batches(dataset, 2, mean, std, alphabet.PAPER, bucket_boundaries=None,
                                          line_preparation=("straighten", "smooth"))))
    for i, strokes in enumerate(lines):
        expected = prepare_line(strokes, ("straighten", "smooth")).numpy()
        np.testing.assert_allclose(batch["targets"][i, : len(strokes)], expected, rtol=1e-5, atol=1e-4)
    assert not np.allclose(batch["targets"], plain["targets"])
    with pytest.raises(ValueError, match="unknown line preparation 'denoise'; choose from straighten, smooth"):
        handwriting_batches(dataset, 2, mean, std, line_preparation=("denoise",))


def test_line_preparation_is_refused_for_text_and_for_unknown_steps_before_any_data_is_read(tmp_path):
    from graves_tf import experiment
    from graves_tf.data import datasets

    text = experiment.ModelSpec(model="text_predictor", dataset="ptb_char", vocab_size=50)
    with pytest.raises(ValueError, match="--line_preparation prepares handwriting lines; ptb_char is text"):
        datasets.load_bundle(text, 1, data_dir=str(tmp_path), line_preparation=("smooth",))
    with pytest.raises(ValueError, match="unknown line preparation 'level'"):
        datasets.load_bundle(experiment.ModelSpec(), 1, data_dir=str(tmp_path), line_preparation=("level",))
