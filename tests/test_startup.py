"""The command-line tools print no TensorFlow C++ start-up lines (graves_tf/_quiet.py) unless --verbose."""

import os
import subprocess
import sys

import pytest

from graves_tf import _quiet

NOISE_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796283654.845431   15804 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.",
    "I0000 00:00:1796283654.845684   15804 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
    "E0000 00:00:1796283668.230828   15804 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    "call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1796415146.237446   11855 util.cc:131] oneDNN supports DT_BOOL only on platforms with AVX-512. "
    "Falling back to the default Eigen-based implementation if present.",
    "E0000 00:00:1796412544.891040    4118 util.cc:131] oneDNN supports DT_INT32 only on platforms with AVX-512. "
    "Falling back to the default Eigen-based implementation if present.",
]
MARKERS = ("absl::InitializeLog", "oneDNN", "cudart_stub", "cuInit", "cpu_feature_guard")


def test_the_filter_drops_the_start_up_lines_and_keeps_anything_else():
    for line in NOISE_LINES:
        assert _quiet.NOISE.search(line), line
    for line in ("Traceback (most recent call last):", "UserWarning: something real", "E0000 ... other.cc:1] an error"):
        assert not _quiet.NOISE.search(line), line


@pytest.mark.parametrize("tool", [["graves_tf.write", "Hi", "-o", "x.svg"]])
def test_write_prints_no_tensorflow_start_up_lines(tool, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("GRAVES_TF_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    result = subprocess.run(
        [sys.executable, "-m", *tool], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert not [m for m in MARKERS if m in output], output[-3000:]
    assert (tmp_path / "x.svg").exists() and "wrote 1 line(s) to x.svg" in result.stdout


def test_the_other_tools_print_none_either(tmp_path):
    """train, evaluate and export stop at a missing argument, after importing TensorFlow."""
    env = {k: v for k, v in os.environ.items() if k not in ("GRAVES_TF_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    for tool in (["graves_tf.train"], ["graves_tf.evaluate"], ["graves_tf.export"]):
        result = subprocess.run([sys.executable, "-m", *tool], capture_output=True, text=True, timeout=600,
                                cwd=tmp_path, env=env)
        output = result.stdout + result.stderr
        assert not [m for m in MARKERS if m in output], (tool, output[-3000:])
        assert output.strip(), tool  # each says what is missing


@pytest.mark.parametrize("window, order", [(5, 2), (7, 3), (5, 1)])
def test_the_numpy_savitzky_golay_is_scipys(window, order):
    np = pytest.importorskip("numpy")
    signal = pytest.importorskip("scipy.signal")
    from graves_tf.drawing import savgol_nearest

    rng = np.random.default_rng(window + order)
    for length in (window, window + 1, 40):
        values = rng.normal(size=length).cumsum()
        np.testing.assert_allclose(
            savgol_nearest(values, window, order), signal.savgol_filter(values, window, order, mode="nearest"),
            rtol=0, atol=1e-12,
        )


def test_drawing_a_page_does_not_import_scipy_signal(tmp_path):
    """Importing scipy.signal took longer than the rest of drawing in a cold write."""
    script = (
        "import sys, numpy as np\n"
        "from graves_tf import drawing\n"
        "offsets = np.zeros((30, 3)); offsets[:, 0] = 1.0; offsets[14, 2] = offsets[-1, 2] = 1\n"
        f"drawing.save_lines([offsets], {str(tmp_path / 'page.svg')!r})\n"
        "print('scipy.signal' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "False"
    assert (tmp_path / "page.svg").exists()
