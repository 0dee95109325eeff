"""The notebooks in colab/ run top to bottom (short settings: GRAVES_TF_QUICK=1) without an error."""

import os
import pathlib

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

COLAB = pathlib.Path(__file__).resolve().parents[1] / "colab"
NOTEBOOKS = sorted(COLAB.glob("*.ipynb"))


def test_the_three_notebooks_exist():
    assert {p.stem for p in NOTEBOOKS} >= {"handwriting_synthesis", "train_your_own", "text_generation"}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    if path.stem == "handwriting_synthesis":
        from graves_tf import pretrained

        if not (pretrained.SYNTHESIS_DIR / pretrained.WEIGHTS_FILE).exists():
            pytest.skip("no shipped model in this checkout")
    monkeypatch.setenv("GRAVES_TF_QUICK", "1")
    monkeypatch.setenv("GRAVES_TF_WORK", str(tmp_path / "work"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(COLAB)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on the first error
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    images = [o for cell in notebook.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})
              or "image/svg+xml" in o.get("data", {})]
    if path.stem != "text_generation":
        assert images, "the notebook shows no picture"
