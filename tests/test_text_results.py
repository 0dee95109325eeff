"""The text results table and the text sample page, end to end on the PTB builder's dummy data."""

import dataclasses
import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from benchmarks import text_results

REPO = pathlib.Path(__file__).resolve().parents[1]
DUMMY_PTB = REPO / "tfds_builders" / "ptb" / "dummy_data" / "manual"
SMALL = ("--batch_size=2", "--segment_length=5")
TINY_ROW = text_results.Row(
    "tiny_text", "tiny PTB char", "tiny_text", "ptb", "test", (1.32, 167, 28.5), (1.29, 148, 28.0), 9,
    extra_flags=SMALL,
)


def run(args, **kwargs):
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, cwd=REPO, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def train_tiny(root, name, *flags):
    """Trains ``tiny_text.cfg`` on the dummy PTB text into ``root/runs/name``, as a row's run."""
    return run([
        "-m", "graves_tf.train", "--flagfile=graves_tf/configs/tiny_text.cfg", f"--data_dir={root / 'tfds'}",
        f"--manual_dir={DUMMY_PTB}", f"--model_dir={root / 'runs' / name}", *SMALL, *flags, "--noprogress_bar",
    ])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("text_runs")
    train_tiny(root, "tiny_text", "--train_steps=4", "--eval_every=2", "--keep_every=1")
    return root


@pytest.fixture
def table_flags(runs, monkeypatch):
    monkeypatch.setattr(text_results, "ROWS", (TINY_ROW,))
    flags.FLAGS([
        "text_results", f"--runs_dir={runs / 'runs'}", f"--data_dir={runs / 'tfds'}", f"--manual_dir_ptb={DUMMY_PTB}",
        f"--output_markdown={runs / 'table.md'}",
    ])
    yield runs
    flags.FLAGS.unparse_flags()


def test_table_rows_match_evaluate_and_the_paper(table_flags, capsys):
    runs = table_flags
    text_results.main(["text_results"])
    printed = capsys.readouterr().out
    assert printed.count("running:") == 2  # static and dynamic evaluation
    static = json.loads((runs / "runs" / "tiny_text" / "results" / "test_static.json").read_text())
    dynamic = json.loads((runs / "runs" / "tiny_text" / "results" / "test_dynamic.json").read_text())
    assert static["dynamic"] is False and dynamic["dynamic"] is True
    table = (runs / "table.md").read_text()
    row_static = next(line for line in table.splitlines() if "test, static" in line)
    row_dynamic = next(line for line in table.splitlines() if "test, dynamic" in line)
    cells = [c.strip() for c in row_static.split("|")[1:-1]]
    assert cells[2] == f"{static['bits_per_symbol']:.3f}" and cells[3] == "1.32"
    assert cells[6] == f"{100 * static['error_rate']:.1f}" and cells[7] == "28.5"
    assert cells[8].startswith("4 updates, ") and " epochs, " in cells[8] and " h; evaluated: step " in cells[8]
    assert cells[9] == "9 epochs"
    assert f"{dynamic['bits_per_symbol']:.3f}" in row_dynamic and "| 1.29 |" in row_dynamic
    assert "python -m graves_tf.train --flagfile=graves_tf/configs/tiny_text.cfg" in table
    assert "--train_steps=4" in table and "--dynamic" in table

    text_results.main(["text_results"])  # the same checkpoint: the cached evaluations are reused
    assert "running:" not in capsys.readouterr().out


def test_a_new_best_checkpoint_is_evaluated_again(table_flags, capsys):
    runs = table_flags
    results = runs / "runs" / "tiny_text" / "results"
    results.mkdir(parents=True, exist_ok=True)
    for name in ("test_static.json", "test_dynamic.json"):
        (results / name).write_text(json.dumps({"checkpoint": "an/older/ckpt-1", "bits_per_symbol": 9.0}))
    text_results.main(["text_results"])
    assert capsys.readouterr().out.count("running:") == 2
    assert json.loads((results / "test_static.json").read_text())["bits_per_symbol"] != 9.0


def test_an_evaluation_with_other_flags_is_not_taken_from_the_cache(table_flags, monkeypatch, capsys):
    flags.FLAGS.dynamic = False
    text_results.main(["text_results"])
    capsys.readouterr()
    monkeypatch.setattr(text_results, "ROWS", (dataclasses.replace(TINY_ROW, eval_flags=("--eval_batch_size=1",)),))
    text_results.main(["text_results"])
    printed = capsys.readouterr().out
    assert printed.count("running:") == 1 and "--eval_batch_size=1" in printed
    static = json.loads((table_flags / "runs" / "tiny_text" / "results" / "test_static.json").read_text())
    assert "--eval_batch_size=1" in static["command"]


def test_a_row_of_averaged_checkpoints_averages_then_evaluates_the_mean(table_flags, monkeypatch, capsys):
    runs = table_flags
    flags.FLAGS.dynamic = False
    averaged = runs / "runs" / "tiny_text" / "averaged" / "ckpt-2-4"
    monkeypatch.setattr(text_results, "ROWS", (dataclasses.replace(TINY_ROW, averaged_steps=(2, 4), keep_every=1),))
    text_results.main(["text_results"])
    printed = capsys.readouterr().out
    assert "running: " in printed and "graves_tf.average_checkpoints" in printed
    static = json.loads((runs / "runs" / "tiny_text" / "results" / "test_static.json").read_text())
    assert static["checkpoint"] == str(averaged)
    table = (runs / "table.md").read_text()
    assert "evaluated: the mean of steps 2, 4 |" in table
    assert "--train_steps=4 --keep_every=1" in table
    assert "-m graves_tf.average_checkpoints --model_dir=" in table and "--checkpoints=ckpt-2,ckpt-4`" in table
    assert f"--split=test --checkpoint={averaged}`" in table

    text_results.main(["text_results"])  # nothing new: nothing is averaged or evaluated again
    assert "running:" not in capsys.readouterr().out
    monkeypatch.setattr(text_results, "ROWS", (dataclasses.replace(TINY_ROW, averaged_steps=(2, 3, 4)),))
    text_results.main(["text_results"])  # the same path, other weights: both steps rerun
    printed = capsys.readouterr().out
    assert printed.count("running:") == 2 and "--checkpoints=ckpt-2,ckpt-3,ckpt-4" in printed
    from graves_tf import run_dir

    assert run_dir.averaged_steps(str(averaged)) == [2, 3, 4]


def test_a_row_trained_to_convergence_says_so_and_its_command_has_no_step_count(runs, table_flags, monkeypatch):
    """With a learning rate of 0 the second validation is no better than the
    first, so a patience of 1 stops the run there, converged; its best is step 1."""
    converging = ("--learning_rate=0", "--eval_every=1", "--early_stopping_patience=1")
    row = dataclasses.replace(TINY_ROW, run="tiny_converged", extra_flags=SMALL + converging, to_convergence=True)
    monkeypatch.setattr(text_results, "ROWS", (row,))
    flags.FLAGS.dynamic = False
    result = train_tiny(runs, "tiny_converged", *converging, "--train_steps=50")
    assert "converged at step 2" in result.stdout
    text_results.main(["text_results"])
    table = (runs / "table.md").read_text()
    assert "| converged at 2 updates, " in table and "; evaluated: step 1 |" in table
    train = next(line for line in table.splitlines() if "graves_tf.train" in line)
    assert "--early_stopping_patience=1" in train and "--train_steps" not in train


def test_a_row_stopped_before_convergence_says_so_and_its_command_trains_to_the_evaluated_step(
    runs, table_flags, monkeypatch
):
    """A run meant to converge but stopped first (here by --train_steps=3, no early stopping reached) is
    reproduced only by training it as far as its evaluated checkpoint, so its command says how far."""
    patient = ("--eval_every=1", "--early_stopping_patience=50")
    row = dataclasses.replace(TINY_ROW, run="tiny_stopped", extra_flags=SMALL + patient, to_convergence=True)
    monkeypatch.setattr(text_results, "ROWS", (row,))
    flags.FLAGS.dynamic = False
    train_tiny(runs, "tiny_stopped", *patient, "--train_steps=3")
    text_results.main(["text_results"])
    table = (runs / "table.md").read_text()
    assert "| not yet converged, 3 updates, " in table
    evaluated = int(re.search(r"; evaluated: step (\d+) \|", table).group(1))
    train = next(line for line in table.splitlines() if "graves_tf.train" in line)
    assert f"--train_steps={evaluated}" in train


def test_unknown_rows_are_refused(table_flags):
    flags.FLAGS.rows = ["ptb_chr"]
    with pytest.raises(SystemExit, match="unknown rows: ptb_chr"):
        text_results.main(["text_results"])


def test_every_paper_row_has_a_config():
    for row in text_results.ROWS:
        assert (REPO / "graves_tf" / "configs" / f"{row.flagfile}.cfg").exists(), row.flagfile
        if row.init_from:
            assert row.init_from in {r.run for r in text_results.ROWS}


@pytest.fixture(scope="module")
def exported(runs):
    folder = runs / "exported"
    run(["-m", "export", f"--model_dir={runs / 'runs' / 'tiny_text'}", f"--output={folder}"])
    return folder


def test_sample_page_comes_from_the_sample_signature(exported, runs):
    page = runs / "page.md"
    result = run([
        "-m", "benchmarks.text_samples", f"--saved_model=tiny PTB={exported}", "--prime=the ", "--num_steps=40",
        "--seed=3", f"--output_markdown={page}",
    ])
    text = page.read_text()
    assert text.strip() in result.stdout
    assert text.startswith("#### tiny PTB") and "40 symbols, temperature 1, seed 3" in text

    from graves_tf import run_dir, sampling

    model, config = run_dir.load_run(str(runs / "runs" / "tiny_text"))
    symbols = [" " if s == "_" else s for s in config["vocabulary"]]
    prime = [[config["vocabulary"].index("_" if c == " " else c) for c in "the "]]
    ids = sampling.sample_text(model, tf.constant(prime), 40, temperature=1.0, seed=3, num_symbols=len(symbols))
    ids = ids.numpy()[0]
    expected = "the " + "".join(symbols[i] for i in ids)
    body = text.split("```text\n")[1].split("\n```")[0]
    assert body == expected


def test_a_prime_outside_the_vocabulary_is_an_error(exported):
    loaded = tf.saved_model.load(str(exported))
    with pytest.raises(tf.errors.InvalidArgumentError, match="not in the vocabulary"):
        loaded.signatures["sample"](
            prime=tf.constant(["the \u00e9"]), num_steps=tf.constant(5), temperature=tf.constant(1.0),
            seed=tf.constant(0, tf.int64),
        )
    ids = loaded.signatures["sample"](
        prime=tf.constant(["the "]), num_steps=tf.constant(5), temperature=tf.constant(0.0),
        seed=tf.constant(0, tf.int64),
    )["ids"].numpy()
    assert ids.shape == (1, 5) and np.all(ids >= 0)


def test_a_released_text_model_evaluates_and_exports_like_its_run(runs, tmp_path):
    """A text release (float16 weights.npz and the run's config) stands in for the run's folder."""
    source = runs / "runs" / "tiny_text"
    release = tmp_path / "released"
    run(["-m", "graves_tf.pretrained.release", f"--model_dir={source}", f"--release_dir={release}"])
    assert sorted(p.name for p in release.iterdir()) == ["model_config.json", "weights.npz"]
    config = json.loads((release / "model_config.json").read_text())
    from graves_tf import run_dir

    assert config["release"]["step"] == run_dir.checkpoint_step(run_dir.checkpoint_path(str(source)))
    assert config["release"]["weights_dtype"] == "float16" and config["vocabulary"]
    metrics = {}
    for name, folder in (("run", source), ("release", release)):
        output = tmp_path / f"{name}.json"
        run([
            "-m", "graves_tf.evaluate", "--flagfile=graves_tf/configs/tiny_text.cfg", f"--model_dir={folder}",
            f"--data_dir={runs / 'tfds'}", f"--manual_dir={DUMMY_PTB}", *SMALL, "--split=test",
            f"--output_json={output}",
        ])
        metrics[name] = json.loads(output.read_text())
    assert metrics["release"]["checkpoint"] == str(release / "weights.npz")
    assert metrics["release"]["bits_per_symbol"] == pytest.approx(metrics["run"]["bits_per_symbol"], abs=0.01)
    result = run(["-m", "export", f"--model_dir={release}", f"--output={tmp_path / 'exported'}"])
    assert "weights.npz" in result.stdout
    loaded = tf.saved_model.load(str(tmp_path / "exported"))
    assert "sample" in loaded.signatures


def test_runs_record_whether_they_trained_on_sentences(runs):
    from graves_tf import run_dir

    _, config = run_dir.load_run(str(runs / "runs" / "tiny_text"))
    assert config["sentences"] is False  # tiny_text.cfg: 50-symbol segments of the stream
    assert not run_dir.trained_on_sentences(config)
    older = {"spec": {"dataset": "ptb_word"}}  # recorded before "sentences" existed: PTB's default
    assert run_dir.trained_on_sentences(older)
    assert not run_dir.trained_on_sentences({"spec": {"dataset": "enwik8"}})
