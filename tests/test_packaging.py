"""What an installed graves_tf holds: the wheel's files, its commands, and the builders by module path.

The wheel built from the checkout installs one top-level package, ``graves_tf``: the checkout's
``export/`` and ``tfds_builders/`` go in as ``graves_tf.export`` and ``graves_tf.tfds_builders``
(setup.py's ``package_dir``), no ``tests`` or ``benchmarks``, and every program of ``graves_tf/cli/``
is a ``graves-tf-*`` console script. The fresh-venv check (install the wheel, write and export from an
empty folder) is docs/packaging.md's, run by hand: it installs TensorFlow.
"""

import configparser
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PROGRAMS = sorted(p.stem for p in (REPO / "graves_tf" / "cli").glob("*.py") if not p.stem.startswith("_"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel of the checkout, built as ``pip wheel`` does (no download: the installed setuptools)."""
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = out.glob("graves_tf-*.whl")
    with zipfile.ZipFile(path) as archive:
        return archive.namelist(), {n: archive.read(n) for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")}


@pytest.mark.slow
def test_the_wheel_installs_only_the_graves_tf_package(wheel):
    names, _ = wheel
    top = {name.split("/")[0] for name in names}
    assert top == {"graves_tf", "graves_tf-0.1.0.dist-info"}, sorted(top)
    assert not [n for n in names if n.endswith("_test.py") or "/tests/" in n or n.startswith("benchmarks/")]


@pytest.mark.slow
def test_the_exporter_builders_and_data_are_inside_the_package(wheel):
    names, _ = wheel
    expected = [
        "graves_tf/export/__init__.py", "graves_tf/export/__main__.py", "graves_tf/export/saved_model.py",
        "graves_tf/tfds_builders/__init__.py",
        "graves_tf/cli/__init__.py", "graves_tf/cli/write.py", "graves_tf/experiment.py",
        "graves_tf/configs/tiny_synthesis.cfg", "graves_tf/pretrained/synthesis/weights.npz",
        "graves_tf/pretrained/synthesis/styles.json", "graves_tf/web/index.html",
    ]
    for builder in ("iam_ondb", "hutter", "ptb"):  # TFDS reads checksums.tsv, README.md, CITATIONS.bib beside it
        folder = f"graves_tf/tfds_builders/{builder}/"
        expected += [folder + f"{builder}_dataset_builder.py", folder + "checksums.tsv", folder + "CITATIONS.bib"]
        assert any(n.startswith(folder + "dummy_data/") for n in names), builder
    assert [n for n in expected if n not in names] == []


@pytest.mark.slow
def test_every_program_is_a_console_script(wheel):
    _, entry_points = wheel
    (text,) = entry_points.values()
    parser = configparser.ConfigParser()
    parser.read_string(text.decode())
    scripts = dict(parser["console_scripts"])
    assert sorted(target for target in scripts.values()) == sorted(f"graves_tf.cli.{p}:run" for p in PROGRAMS)
    assert scripts["graves-tf-write"] == "graves_tf.cli.write:run"
    assert all(name == "graves-tf-" + target.split(".")[-1].split(":")[0].replace("_", "-")
               for name, target in scripts.items())


@pytest.mark.slow
def test_tfds_builds_the_iam_builder_by_its_module_path(tmp_path):
    """``tfds build iam_ondb --imports=graves_tf.tfds_builders.iam_ondb``, from a folder with no checkout, on the
    builder's dummy archives: TFDS finds the builder, its checksums and metadata where graves_tf maps them."""
    tfds = shutil.which("tfds") or pytest.skip("no tfds command")
    manual = REPO / "tfds_builders" / "iam_ondb" / "dummy_data"
    result = subprocess.run(
        [tfds, "build", "iam_ondb", "--imports=graves_tf.tfds_builders.iam_ondb", f"--manual_dir={manual}",
         f"--data_dir={tmp_path / 'data'}"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (info,) = (tmp_path / "data" / "iam_ondb").glob("*/dataset_info.json")
    assert '"name": "iam_ondb"' in info.read_text()
    assert "Liwicki" in (info.parent / "dataset_info.json").read_text()  # CITATIONS.bib, read beside the builder
