"""Writing without text (graves_tf.unconditional): samples, priming, the density map, refusals."""

import json
import os
import xml.etree.ElementTree as ElementTree

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from graves_tf import experiment, run_dir, sampling, unconditional  # noqa: E402
from run_folders import make_handwriting_run  # noqa: E402

SPEC = experiment.ModelSpec(model="handwriting_predictor", dataset="iam_ondb", num_layers=2, units=16, num_mixtures=3)
MEAN, STD = [8.0, 0.1], [40.0, 37.0]


def trace(seed=0, points=30):
    """A pen trace in whiteboard units: two strokes, the first offset (0, 0) as in IAM-OnDB."""
    rng = np.random.default_rng(seed)
    offsets = np.column_stack([rng.normal(8, 20, (points, 2)), np.zeros(points)])
    offsets[0, :2] = 0
    offsets[points // 2, 2] = offsets[-1, 2] = 1
    return offsets


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A prediction 'training run' folder: config, statistics and a checkpoint of random weights."""
    return make_handwriting_run(tmp_path_factory.mktemp("run"), SPEC, MEAN, STD, seed=0, step=3)


@pytest.fixture(scope="module")
def loaded(tiny_run):
    model, config, where = unconditional.load_predictor(tiny_run)
    assert where == tiny_run
    return model, config


def test_a_seed_gives_the_same_samples_and_another_seed_others(loaded):
    model, config = loaded
    a = unconditional.sample(model, config, num_points=50, bias=0.5, seed=3, num_samples=2)
    b = unconditional.sample(model, config, num_points=50, bias=0.5, seed=3, num_samples=2)
    c = unconditional.sample(model, config, num_points=50, bias=0.5, seed=4, num_samples=2)
    assert len(a) == 2 and all(line.shape == (50, 3) for line in a)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a[0], c[0])
    assert not np.allclose(a[0], a[1])  # each sample of a batch is its own
    assert set(np.unique(a[0][:, 2])) <= {0.0, 1.0}


def test_samples_are_the_samplers_in_whiteboard_units(loaded):
    model, config = loaded
    (line,) = unconditional.sample(model, config, num_points=20, bias=1.0, seed=5)
    strokes, counts = sampling.compiled_sampler(model)(1, 20, 1.0, 5, None)
    assert int(counts[0]) == 20
    np.testing.assert_allclose(line, sampling.denormalise(strokes[0].numpy(), MEAN, STD), rtol=1e-12)
    high = unconditional.sample(model, config, num_points=200, bias=5.0, seed=1)[0]
    low = unconditional.sample(model, config, num_points=200, bias=0.0, seed=1)[0]
    # A high bias narrows every Gaussian (eq. 62): the offsets scatter less about their means.
    assert np.std(np.diff(high[:, 0])) < np.std(np.diff(low[:, 0]))


def test_a_prime_is_continued_and_changes_what_follows(loaded):
    model, config = loaded
    prime_a, prime_b = trace(1), trace(2)
    a = unconditional.sample(model, config, num_points=25, bias=0.5, seed=0, prime=prime_a)[0]
    again = unconditional.sample(model, config, num_points=25, bias=0.5, seed=0, prime=prime_a)[0]
    b = unconditional.sample(model, config, num_points=25, bias=0.5, seed=0, prime=prime_b)[0]
    free = unconditional.sample(model, config, num_points=25, bias=0.5, seed=0)[0]
    np.testing.assert_array_equal(a, again)
    assert a.shape == (25, 3) and not np.allclose(a, b) and not np.allclose(a, free)
    whole = unconditional.continued(prime_a, a, config)
    assert whole.shape == (len(prime_a) + 25, 3)
    np.testing.assert_array_equal(whole[: len(prime_a)], prime_a)


def test_a_strided_model_reads_its_prime_at_its_own_rate(tmp_path):
    spec = experiment.ModelSpec(**{**vars(SPEC), "point_stride": 2})
    model, config, _ = unconditional.load_predictor(make_handwriting_run(tmp_path, spec, MEAN, STD))
    prime = trace(3)
    at_rate = unconditional.at_model_rate(prime, config)
    assert len(at_rate) < len(prime)
    np.testing.assert_allclose(at_rate[:, :2].sum(axis=0), prime[:, :2].sum(axis=0))  # the same trajectory
    sampled = unconditional.sample(model, config, 10, 0.5, 0, prime=prime)[0]
    normalised = unconditional.normalise(at_rate, config).astype(np.float32)[None]
    import tensorflow as tf

    strokes, _ = sampling.compiled_sampler(model)(1, 10, 0.5, 0, None, tf.constant(normalised), tf.constant([len(at_rate)]))
    np.testing.assert_allclose(sampled, sampling.denormalise(strokes[0].numpy(), MEAN, STD), rtol=1e-12)
    assert len(unconditional.continued(prime, sampled, config)) == len(at_rate) + 10


@pytest.mark.parametrize(
    "num_points, bias, num_samples, message",
    [
        (0, 0.5, 1, "--num_points must be a whole number of pen points from 1"),
        (-5, 0.5, 1, "--num_points must be a whole number of pen points from 1"),
        (10**6, 0.5, 1, "--num_points must be a whole number of pen points from 1 to 20000"),
        (2.5, 0.5, 1, "--num_points must be a whole number"),
        (10, float("nan"), 1, "--bias must be a finite number >= 0"),
        (10, float("inf"), 1, "--bias must be a finite number >= 0"),
        (10, -0.1, 1, "--bias must be a finite number >= 0"),
        (10, 0.5, 0, "--num_samples must be at least 1"),
    ],
)
def test_bad_settings_are_refused_before_sampling(loaded, num_points, bias, num_samples, message):
    model, config = loaded
    with pytest.raises(unconditional.UnconditionalError, match=message):
        unconditional.sample(model, config, num_points, bias, 0, num_samples)


def test_a_bad_prime_is_refused_by_name(loaded):
    model, config = loaded
    bad = trace(0)
    bad[3, 0] = np.nan
    with pytest.raises(unconditional.UnconditionalError, match="the prime: its offsets must be finite"):
        unconditional.sample(model, config, 10, prime=bad)
    bad = trace(0)
    bad[3, 2] = 2
    with pytest.raises(unconditional.UnconditionalError, match="end of stroke, must be 0 or 1"):
        unconditional.sample(model, config, 10, prime=bad)
    with pytest.raises(unconditional.UnconditionalError, match=r"shape \(T, 3\)"):
        unconditional.sample(model, config, 10, prime=np.zeros((4, 2)))


def test_a_synthesis_model_is_refused(tmp_path):
    spec = experiment.ModelSpec(model="handwriting_synthesizer", dataset="iam_ondb", num_layers=1, units=8,
                                num_mixtures=2, num_window_gaussians=2)
    folder = make_handwriting_run(tmp_path, spec, MEAN, STD)
    with pytest.raises(unconditional.UnconditionalError, match="holds a handwriting_synthesizer, not a handwriting_predictor"):
        unconditional.load_predictor(folder)


def test_log_prob_is_the_models_loss_and_prefers_a_smooth_trace(loaded):
    model, config = loaded
    line = trace(4)
    nats = unconditional.log_prob(model, config, line)
    normalised = unconditional.normalise(line, config).astype(np.float32)
    inputs = np.concatenate([np.zeros((1, 3), np.float32), normalised[:-1]])[None]
    expected = float(model({"inputs": inputs, "targets": normalised[None]})[0])
    assert np.isfinite(nats) and nats == pytest.approx(expected, rel=1e-5)
    wild = line.copy()
    wild[1:, :2] *= 30  # offsets far outside the training data's: much less likely
    assert unconditional.log_prob(model, config, wild) > nats + 100


def test_the_density_map_of_a_real_trace_is_a_png(loaded, tmp_path):
    model, config = loaded
    path = unconditional.save_density(model, config, trace(5), str(tmp_path / "density.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(path) > 5000
    with pytest.raises(unconditional.UnconditionalError, match="must end in .png"):
        unconditional.save_density(model, config, trace(5), str(tmp_path / "density.svg"))


def test_a_page_of_samples_and_their_strokes_file(loaded, tmp_path):
    model, config = loaded
    lines = unconditional.sample(model, config, 40, 0.5, 2, num_samples=3)
    unconditional.save_page(lines, str(tmp_path / "page.svg"))
    paths = [e for e in ElementTree.parse(tmp_path / "page.svg").getroot().iter() if e.tag.endswith("path")]
    assert len(paths) >= 3 and all(p.get("d").startswith("M") for p in paths)
    unconditional.save_page(lines, str(tmp_path / "page.png"))
    assert os.path.getsize(tmp_path / "page.png") > 1000
    unconditional.save_strokes(lines, str(tmp_path / "strokes.json"), config, seed=2, bias=0.5)
    stored = json.loads((tmp_path / "strokes.json").read_text())
    assert stored["seed"] == 2 and stored["point_stride"] == 1 and len(stored["samples"]) == 3
    for line, saved in zip(lines, stored["samples"]):
        np.testing.assert_array_equal(np.asarray(saved), line)


def test_the_write_command_draws_samples_strokes_and_the_density_along_the_prime(tiny_run, tmp_path):
    prime = trace(6)
    printed = unconditional.write_command(
        "", str(tmp_path / "free.svg"), num_points=30, bias=0.5, seed=1, num_samples=2, model_dir=tiny_run,
        prime=lambda config: (prime, "my trace"), plot="density", strokes_output=str(tmp_path / "free.json"),
    )
    assert printed[0].startswith("wrote 2 sample(s) of 30 points (bias 0.5, seed 1, continuing my trace)")
    assert "density map (fig. 10) along my trace" in printed[-1]
    assert os.path.getsize(tmp_path / "free.density.png") > 5000
    samples = json.loads((tmp_path / "free.json").read_text())["samples"]
    model, config = run_dir.load_run(tiny_run)
    expected = unconditional.sample(model, config, 30, 0.5, 1, 2, prime)
    for saved, line in zip(samples, expected):
        np.testing.assert_array_equal(np.asarray(saved), line)
    paths = [e for e in ElementTree.parse(tmp_path / "free.svg").getroot().iter() if e.tag.endswith("path")]
    assert len(paths) >= 4  # each line: the prime's two strokes, then the continuation


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(text="hello"), "--unconditional writes without text: drop the text 'hello'"),
        (dict(num_points=0), "--num_points must be a whole number of pen points from 1"),
        (dict(num_points=-3), "--num_points must be a whole number of pen points from 1"),
        (dict(bias=float("nan")), "--bias must be a finite number >= 0"),
        (dict(output="free.pdf"), "-o/--output must end in .svg or .png"),
        (dict(output="/no/such/folder/free.svg"), "the folder /no/such/folder does not exist"),
        (dict(strokes_output="free.npy"), "--strokes_output must end in .json"),
        (dict(plot="attention"), "--plot=attention needs text"),
    ],
)
def test_the_write_command_refuses_bad_settings_before_loading_a_model(change, message, tmp_path):
    arguments = dict(text="", output=str(tmp_path / "free.svg"), model_dir=str(tmp_path / "no_run"))
    arguments.update(change)
    with pytest.raises(unconditional.UnconditionalError, match=message):
        unconditional.write_command(arguments.pop("text"), arguments.pop("output"), **arguments)
