"""What users see of a sample: how a line ends, priming leftovers, one page at one scale, smooth strokes,
and the measurements that choose the defaults and styles."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import choose_styles, novel_legibility  # noqa: E402
from graves_tf import drawing, write  # noqa: E402
from graves_tf.alphabet import ALPHABETS, IAM_CHARACTERS  # noqa: E402
from graves_tf.models import HandwritingSynthesizer  # noqa: E402
from graves_tf.sampling import sample_handwriting  # noqa: E402


def tiny_synthesizer():
    keras.utils.set_random_seed(3)
    return HandwritingSynthesizer(alphabet_size=7, units=12, num_layers=2, num_mixtures=3, num_window_gaussians=2)


def context(model, length=4):
    ids = tf.ones((1, length), tf.int32)
    return model.window.context(ids, tf.ones((1, length)))


def line(points, pen_up_after=()):
    """Offsets of absolute points, the pen lifted after the given indices."""
    points = np.asarray(points, np.float64)
    offsets = np.concatenate([points[:1], np.diff(points, axis=0)])
    ends = np.zeros((len(points), 1))
    ends[list(pen_up_after)] = 1
    return np.concatenate([offsets, ends], axis=1)


# -- how a line ends ----------------------------------------------------------


def test_finishing_the_stroke_extends_the_paper_sample_until_the_pen_lifts():
    model = tiny_synthesizer()
    ctx = context(model)
    paper, paper_count = sample_handwriting(model, 1, 200, 0.5, 7, ctx)
    longer, count = sample_handwriting(model, 1, 200, 0.5, 7, ctx, finish_stroke_steps=30)
    n, m = int(paper_count[0]), int(count[0])
    assert n < 160  # the rule fired (the cap is 40 per character)
    # the same draws step by step: the paper's sample is a prefix of the finished one
    np.testing.assert_array_equal(longer[0, :n].numpy(), paper[0, :n].numpy())
    assert m >= n
    if m > n:
        ends = longer[0, n:m, 2].numpy()
        assert m - n <= 30
        assert m - n == 30 or ends[-1] == 1  # stopped at the first pen-up, or at the allowance
        assert not np.any(ends[:-1] == 1)
    else:  # the pen was already up when the rule fired
        assert paper[0, n - 1, 2].numpy() == 1


def test_a_delay_writes_at_least_that_many_points_after_the_rule():
    model = tiny_synthesizer()
    ctx = context(model)
    _, paper_count = sample_handwriting(model, 1, 200, 0.5, 7, ctx)
    _, count = sample_handwriting(model, 1, 200, 0.5, 7, ctx, end_delay_steps=5, finish_stroke_steps=10)
    assert int(paper_count[0]) + 5 <= int(count[0]) <= int(paper_count[0]) + 15


def test_a_trailing_space_is_read_by_the_window_and_nothing_else_changes(monkeypatch):
    keras.utils.set_random_seed(3)
    model = HandwritingSynthesizer(alphabet_size=57, units=12, num_layers=2, num_mixtures=3, num_window_gaussians=2)
    config = {"spec": {"alphabet": "paper"}, "offset_mean": [0.0, 0.0], "offset_std": [1.0, 1.0]}
    read, context = [], model.window.context
    monkeypatch.setattr(model.window, "context", lambda ids, mask: read.append(ids.numpy()) or context(ids, mask))
    plain, _ = write.sample_lines(model, config, ["ab", "abc"], 0.5, 1, steps_per_character=5)
    spaced, _ = write.sample_lines(model, config, ["ab", "abc"], 0.5, 1, steps_per_character=5, trailing_space=True)
    encode = ALPHABETS["paper"].encode
    np.testing.assert_array_equal(read[0], [encode("ab") + [0], encode("abc")])
    np.testing.assert_array_equal(read[1], [encode("ab ") + [0], encode("abc ")])
    assert len(plain) == len(spaced) == 2 and all(o.shape[1] == 3 for o in plain + spaced)


def test_window_positions_come_with_the_same_strokes():
    model = tiny_synthesizer()
    ctx = context(model)
    strokes, counts = sample_handwriting(model, 1, 100, 0.5, 2, ctx)
    again, counts_again, positions = sample_handwriting(model, 1, 100, 0.5, 2, ctx, return_positions=True)
    np.testing.assert_array_equal(strokes.numpy(), again.numpy())
    n = int(counts[0])
    assert positions.shape == (1, 100)
    p = positions[0, :n].numpy()
    assert p.min() >= 0 and p.max() <= 3
    assert np.all(positions[0, n:].numpy() == 0)


def test_strokes_that_end_before_the_new_text_are_dropped_and_the_rest_stay_in_place():
    # a stray dot (points 0-1) written while the window is still on the priming text, then the new letter
    offsets = line([[10, 0], [11, 1], [40, 5], [45, 0], [50, 5]], pen_up_after=[1, 4])
    positions = [5, 5, 6, 7, 7]
    kept = write.drop_strokes_before(offsets, positions, first_character=6)
    assert len(kept) == 3
    np.testing.assert_allclose(np.cumsum(kept[:, :2], axis=0), [[40, 5], [45, 0], [50, 5]])
    # a stroke under way when the window reaches the new text is kept whole
    unchanged = write.drop_strokes_before(offsets, [5, 6, 6, 7, 7], first_character=6)
    np.testing.assert_array_equal(unchanged, offsets)


# -- one page at one scale, smooth strokes --------------------------------------


def test_a_page_keeps_each_line_at_its_size_and_spaces_baselines_evenly():
    small = line([[0, 0], [100, 0], [100, 40], [0, 40]], pen_up_after=[3])
    large = line([[0, 0], [300, 0], [300, 120], [0, 120]], pen_up_after=[3])
    placed, height, width = drawing.page_layout([small, large, small], smooth=False, level=False)
    heights = [np.ptp(np.concatenate(strokes)[:, 1]) for strokes in placed]
    np.testing.assert_allclose(heights, [40, 120, 40])
    assert width == pytest.approx(300)
    baselines = [drawing.baseline(strokes) for strokes in placed]
    assert baselines[1] - baselines[0] == pytest.approx(baselines[2] - baselines[1])
    assert min(np.concatenate(placed[1])[:, 1]) > max(np.concatenate(placed[0])[:, 1])  # lines do not overlap


def test_straighten_levels_a_slanting_line():
    x = np.linspace(0, 1000, 50)
    tilted = line(np.stack([x, 0.2 * x + 5 * np.sin(x / 30)], axis=1))
    (levelled,) = drawing.straighten(drawing.offsets_to_strokes(tilted))
    slope = np.polyfit(levelled[:, 0], levelled[:, 1], 1)[0]
    assert abs(slope) < 1e-3  # from 0.2 (least squares is not rotation invariant, so not exactly 0)
    assert np.ptp(levelled[:, 1]) < np.ptp(drawing.offsets_to_strokes(tilted)[0][:, 1]) / 5


def test_denoise_removes_jitter_and_keeps_the_shape():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 400)
    circle = np.stack([100 * np.cos(t), 100 * np.sin(t)], axis=1)
    noisy = circle + rng.normal(0, 4, circle.shape)
    (smoothed,) = drawing.denoise([noisy])
    assert np.abs(smoothed - circle).mean() < 0.8 * np.abs(noisy - circle).mean()  # theory: 0.70 for white noise
    short = np.array([[0.0, 0.0], [5.0, 5.0]])
    np.testing.assert_array_equal(drawing.denoise([short])[0], short)


def test_curve_points_run_from_the_first_to_the_last_point_smoothly():
    stroke = np.array([[0, 0], [10, 10], [20, 0], [30, 10]], np.float64)
    curve = drawing.curve_points(stroke, per_segment=8)
    np.testing.assert_allclose(curve[0], stroke[0])
    np.testing.assert_allclose(curve[-1], stroke[-1])
    steps = np.linalg.norm(np.diff(curve, axis=0), axis=1)
    assert len(curve) > 3 * len(stroke) and steps.max() < 4


def test_png_and_svg_pages_are_written(tmp_path):
    a = line([[0, 0], [50, 20], [100, 0]])
    for name in ("page.png", "page.svg"):
        path = drawing.save_lines([a, a[:2]], str(tmp_path / name), stroke_width=4)
        assert os.path.getsize(path) > 200
    assert 'stroke-width="4' in (tmp_path / "page.svg").read_text()


# -- the measurements -------------------------------------------------------------


def test_the_novel_sentences_are_of_the_promised_kind():
    sentences = novel_legibility.novel_sentences()
    assert len(sentences) >= 50
    assert all(25 <= len(s) <= 45 for s in sentences)
    assert all(c in IAM_CHARACTERS for s in sentences for c in s)
    assert sum(any(c.isdigit() for c in s) for s in sentences) >= 5
    assert sum(any(c in ",!?'" for c in s) for s in sentences) >= 5
    with open(choose_styles.SELECTION_SENTENCES) as f:
        assert not set(sentences) & {line.strip() for line in f}  # styles are chosen on other sentences


def test_scores_count_last_words_and_capped_lines():
    pairs = [("the cat sat.", "the cat sat."), ("the cat sal", "the cat sat."), ("a dog", "a dog!")]
    result = novel_legibility.score(pairs, [True, False, True])
    assert result["last_word"] == pytest.approx(2 / 3)
    assert result["capped"] == pytest.approx(1 / 3)
    assert result["cer"] == pytest.approx((0 + 2 + 1) / (12 + 12 + 6))


def test_style_features_tell_slant_size_and_joining_apart():
    upright = line([[0, 0], [0, -100], [30, 0], [30, -100]], pen_up_after=[1, 3])
    slanted = line([[0, 0], [40, -100], [30, 0], [70, -100]], pen_up_after=[1, 3])
    a, b = choose_styles.features(upright, "ab"), choose_styles.features(slanted, "ab")
    assert abs(a["slant"]) < 1 and b["slant"] > 15
    assert a["joined"] == 1.0
    joined = line([[0, 0], [0, -100], [30, 0], [30, -100]])
    assert choose_styles.features(joined, "ab")["joined"] == 2.0
    assert choose_styles.features(line([[0, 0], [0, -300]]), "a")["size"] > a["size"]


def test_styles_are_chosen_legible_and_one_of_each_kind_first():
    kinds = [("cursive", "slanted", "large"), ("print", "upright", "small")]
    measured = [
        {"line_id": "a", "kind": kinds[0], "cer": 0.10},
        {"line_id": "b", "kind": kinds[0], "cer": 0.05},
        {"line_id": "c", "kind": kinds[1], "cer": 0.15},
        {"line_id": "d", "kind": kinds[1], "cer": 0.50},  # not legible
    ]
    chosen = choose_styles.choose(measured, 3, max_cer=0.2)
    assert [m["line_id"] for m in chosen] == ["b", "c", "a"]
    assert choose_styles.names(chosen) == ["slanted-cursive-large", "upright-print-small", "slanted-cursive-large-2"]


def test_the_chosen_styles_argument_is_what_release_parses():
    """choose_styles prints release's --styles value; once its descriptions held commas, which release splits on."""
    from graves_tf.cli import release

    chosen = [
        {"line_id": "l04-397z-06", "kind": ("cursive", "slanted", "large"), "slant": 10.6, "joined": 1.23},
        {"line_id": "m03-214z-04", "kind": ("print", "upright", "small"), "slant": 1.7, "joined": 0.82},
    ]
    argument = choose_styles.styles_argument(choose_styles.names(chosen), chosen)
    assert release.parse_styles(argument) == [
        ("slanted-cursive-large", "l04-397z-06", "slanted large cursive (slant 11 deg; 1.2 letters per stroke)"),
        ("upright-print-small", "m03-214z-04", "upright small print (slant 2 deg; 0.8 letters per stroke)"),
    ]
