"""`python -m graves_tf.write`: text to an SVG/PNG page, priming, refusals, plots."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from graves_tf import experiment, run_dir, write  # noqa: E402
from run_folders import make_handwriting_run  # noqa: E402

SPEC = experiment.ModelSpec(
    model="handwriting_synthesizer", dataset="iam_ondb", num_layers=2, units=16, num_mixtures=3,
    num_window_gaussians=2,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A synthesis 'training run' folder: config, statistics and a checkpoint of random weights."""
    return make_handwriting_run(tmp_path_factory.mktemp("run"), SPEC, [8.0, 0.1], [40.0, 37.0], seed=0)


def run_write(*args):
    return subprocess.run([sys.executable, "-m", "graves_tf.write", *args], capture_output=True, text=True, timeout=300)


def test_write_makes_an_svg_of_every_line(tiny_run, tmp_path):
    output = tmp_path / "page.svg"
    result = run_write("Hello world, this wraps", f"--model_dir={tiny_run}", "--width=12", f"-o={output}", "--seed=2")
    assert result.returncode == 0, result.stderr
    assert "wrote 2 line(s)" in result.stdout
    root = ElementTree.parse(output).getroot()
    paths = [e for e in root.iter() if e.tag.endswith("path")]
    assert paths and all(p.get("d").startswith("M") for p in paths)


def test_the_same_seed_writes_the_same_page(tiny_run):
    model, config = run_dir.load_run(tiny_run)
    a = write.write_lines(model, config, ["abc", "de"], bias=0.5, seed=4)
    b = write.write_lines(model, config, ["abc", "de"], bias=0.5, seed=4)
    assert len(a) == 2
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_unknown_characters_are_refused_by_name(tiny_run, tmp_path):
    result = run_write("naïve café", f"--model_dir={tiny_run}", f"-o={tmp_path / 'x.svg'}")
    assert result.returncode != 0
    assert "'ïé'" in result.stderr and "Traceback" not in result.stderr


def test_priming_with_a_users_own_strokes_and_plots(tiny_run, tmp_path):
    trace = [[[0, 0], [5, 8], [10, 3], [15, 9]], [[30, 0], [30, 10]]]
    (tmp_path / "me.json").write_text(json.dumps({"strokes": trace}))
    output = tmp_path / "me.png"
    result = run_write(
        "in my hand", f"--model_dir={tiny_run}", f"--prime_strokes={tmp_path / 'me.json'}", "--prime_text=hi",
        f"-o={output}", "--plot=attention",
    )
    assert result.returncode == 0, result.stderr
    assert output.exists() and (tmp_path / "me.attention.png").exists()
    offsets = write.load_prime_strokes(str(tmp_path / "me.json"), [40.0, 37.0])
    assert offsets.shape == (6, 3)
    np.testing.assert_array_equal(offsets[:, 2], [0, 0, 0, 1, 0, 1])


def test_prime_strokes_need_their_text(tiny_run, tmp_path):
    (tmp_path / "me.json").write_text("[[[0, 0], [1, 1]]]")
    result = run_write("x", f"--model_dir={tiny_run}", f"--prime_strokes={tmp_path / 'me.json'}")
    assert result.returncode != 0 and "--prime_text" in result.stderr


def test_density_plot(tiny_run, tmp_path):
    model, config = run_dir.load_run(tiny_run)
    offsets = write.write_lines(model, config, ["ab"], bias=1.0, seed=0)[0]
    path = write.save_plot("density", model, config, "ab", offsets, str(tmp_path / "d.png"))
    assert os.path.getsize(path) > 1000


def test_bias_rows_plot(tiny_run, tmp_path):
    model, config = run_dir.load_run(tiny_run)
    path = write.save_plot("biases", model, config, "ab", None, str(tmp_path / "b.png"))
    assert os.path.getsize(path) > 1000


def test_prime_id_finds_a_line_of_the_built_dataset(tmp_path):
    import pathlib

    import tensorflow_datasets as tfds

    from graves_tf.data import datasets

    dummy = pathlib.Path(__file__).resolve().parents[1] / "tfds_builders" / "iam_ondb" / "dummy_data"
    builder = datasets.prepare_builder("iam_ondb", str(tmp_path), str(dummy))
    example = next(iter(tfds.as_numpy(builder.as_dataset(split="train"))))
    line_id = example["id"].decode()
    strokes, text = write.find_iam_line(line_id, str(tmp_path))
    np.testing.assert_array_equal(strokes, example["strokes"])
    assert text == example["text"].decode()
    with pytest.raises(write.WriteError, match="no line"):
        write.find_iam_line("zz-none", str(tmp_path))
