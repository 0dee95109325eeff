"""The legibility benchmark that chooses releases: its scoring, its OCR reader, and one tiny run end to end."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import novel_legibility
from benchmarks.ocr import Reader, character_error_rate, edit_distance, normalise_text

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed")


def test_edit_distance_and_cer():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("abc", "abc") == 0
    assert character_error_rate([("Hallo world", "Hello world"), ("", "abc")]) == pytest.approx(4 / 14)
    assert normalise_text("  two \n words ") == "two words"


def test_last_word_and_score():
    assert novel_legibility.last_word('He said "stop."') == "stop"
    assert novel_legibility.last_word("") == ""
    scores = novel_legibility.score([("a cat", "a cat."), ("a hat", "a bat")], stopped=[True, False])
    assert scores == {"n": 2, "cer": pytest.approx(2 / 11), "last_word": 0.5, "other_words": 1.0, "capped": 0.5}
    assert novel_legibility.other_words_read([("The cot sat", "The cat sat."), ("a b", "x y z")]) == pytest.approx(1 / 4)


def test_novel_sentences_fit_the_issue():
    sentences = novel_legibility.novel_sentences()
    assert len(sentences) >= 50 and len(set(sentences)) == len(sentences)
    assert all(25 <= len(s) <= 45 for s in sentences)
    assert any(any(c.isdigit() for c in s) for s in sentences)


def block_letters(text):
    """Offsets (dx, dy, end of stroke) drawing ``text`` in straight-line capitals, 100 units high."""
    shapes = {
        "H": [[(0, 0), (0, 100)], [(60, 0), (60, 100)], [(0, 50), (60, 50)]],
        "I": [[(30, 0), (30, 100)]],
        "L": [[(0, 0), (0, 100), (60, 100)]],
        "T": [[(0, 0), (60, 0)], [(30, 0), (30, 100)]],
        "E": [[(60, 0), (0, 0), (0, 100), (60, 100)], [(0, 50), (45, 50)]],
    }
    points, x = [], 0
    for char in text:
        for stroke in shapes[char]:
            for i, (px, py) in enumerate(stroke):
                points.append((x + px, py, i == len(stroke) - 1))
        x += 100
    xy = np.array([(p[0], p[1]) for p in points], dtype=float)
    offsets = np.zeros((len(points), 3))
    offsets[1:, :2] = np.diff(xy, axis=0)
    offsets[:, 2] = [p[2] for p in points]
    return offsets


@needs_tesseract
def test_reader_reads_clear_capitals(tmp_path):
    reader = Reader(scale=0.5, line_width=4, images_dir=str(tmp_path))
    read = reader.read(block_letters("HELL"), "hell")
    assert (tmp_path / "hell.png").exists()
    assert character_error_rate([(read, "HELL")]) <= 0.25, read


@needs_tesseract
@pytest.mark.slow
def test_benchmark_runs_end_to_end_on_the_shipped_model(tmp_path):
    results_json = tmp_path / "results.json"
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.legibility", "--num_sentences=2", "--biases=1", "--styles=none",
         "--nohello_world", "--hello_world_styles=none", "--widths=", f"--results_json={results_json}", f"--images_dir={tmp_path / 'lines'}"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "novel_cer: 1 " in out.stdout, out.stdout
    assert "best_hello_world_style: none" in out.stdout, out.stdout
    saved = json.loads(results_json.read_text())
    assert saved["command"].startswith("python -m benchmarks.legibility")
    assert len(list((tmp_path / "lines").glob("b1_*.png"))) == 2
    assert len(saved["hello_world_by_style"]["none"]["rows"]) == 10
