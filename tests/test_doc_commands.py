"""The shell commands of README.md and docs/*.md: each fenced shell block is marked, and the runnable ones run.

A marker is the line just before the block's opening fence:

* ``<!-- test: run -->``: this test runs the block with ``bash -e`` in a fresh folder (see :func:`sandbox`:
  the checkout's ``export/``, ``graves_tf/`` and ``benchmarks/`` linked in, as at the checkout's top, an
  empty ``docs/samples/``, a pen trace ``me.json`` and a tiny synthesis run ``runs/synthesis`` of random
  weights), and it must succeed;
* ``<!-- test: skip: REASON -->``: not run here, and why (real data, hours of training, docker, another
  machine, a server that runs until stopped, a placeholder to fill in);
* ``<!-- install -->`` and ``<!-- test -->``: README's set-up and test commands, which ``.ci/run`` runs in a
  fresh virtual environment.

A shell block without a marker fails :func:`test_every_shell_block_is_marked`.
"""

import json
import os
import pathlib
import re
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL = ("bash", "sh", "shell", "console")
MARKER = re.compile(r"^<!-- (install|test|test: run|test: skip: [^>]*\S) -->$")


def shell_blocks(path):
    """``(line, marker, code)`` of each fenced shell block of ``path``; marker is the line before it, or None."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, inside, language = [], None, None
    for number, line in enumerate(lines):
        if inside is None and line.startswith("```"):
            language = line[3:].strip()
            inside = number
        elif inside is not None and line.startswith("```"):
            if language in SHELL:
                before = lines[inside - 1].strip() if inside else ""
                marker = MARKER.match(before)
                blocks.append((inside + 1, marker.group(1) if marker else None, "\n".join(lines[inside + 1:number])))
            inside = None
    return blocks


def all_blocks():
    return [(path, *block) for path in PAGES for block in shell_blocks(path)]


def test_the_pages_have_shell_blocks_to_check():
    blocks = all_blocks()
    assert len(blocks) >= 20
    assert sum(marker == "test: run" for _, _, marker, _ in blocks) >= 3
    assert shell_blocks(REPO / "README.md")[0][1] == "install"  # the block .ci/run installs with


def test_every_shell_block_is_marked():
    unmarked = [f"{path.relative_to(REPO)}:{line}" for path, line, marker, _ in all_blocks() if marker is None]
    assert unmarked == [], "mark these with <!-- test: run --> or <!-- test: skip: REASON -->"


# A pen trace (a JSON list of strokes of [x, y] points, y down), for --prime_strokes=me.json.
ME = [[[x, 10 + 8 * ((x // 6) % 2)] for x in range(start, start + 30, 2)] for start in (0, 40, 80)]


@pytest.fixture
def sandbox(tmp_path):
    """A folder to run the commands in, holding what they name: ``me.json``, ``runs/synthesis`` (a tiny
    synthesis run of random weights), the checkout's ``export``, ``graves_tf`` and ``benchmarks``."""
    from graves_tf import experiment
    from run_folders import make_handwriting_run

    folder = tmp_path / "work"
    folder.mkdir()
    for name in ("export", "graves_tf", "benchmarks"):  # python -m export, graves_tf/pretrained/..., benchmarks
        (folder / name).symlink_to(REPO / name, target_is_directory=True)
    (folder / "docs" / "samples").mkdir(parents=True)  # where commands write pictures and samples
    (folder / "me.json").write_text(json.dumps(ME))
    spec = experiment.ModelSpec(num_layers=1, units=16, num_mixtures=3, num_window_gaussians=2)
    make_handwriting_run(folder / "runs" / "synthesis", spec, [8.0, 0.1], [40.0, 37.0])
    return folder


RUN = [
    pytest.param(path, line, code, id=f"{path.relative_to(REPO)}:{line}")
    for path, line, marker, code in all_blocks() if marker == "test: run"
]


@pytest.mark.slow
@pytest.mark.parametrize("path, line, code", RUN)
def test_the_marked_commands_run(path, line, code, sandbox):
    env = {k: v for k, v in os.environ.items() if k != "GRAVES_TF_VERBOSE"}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", code], capture_output=True, text=True,
                            timeout=900, cwd=sandbox, env=env)
    assert result.returncode == 0, f"{path.name}:{line}\n{code}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
