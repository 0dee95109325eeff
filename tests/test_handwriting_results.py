"""The handwriting results table (Tables 3 and 4): rows, progress, settings, the cache; end to end on dummy data."""

import dataclasses
import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from benchmarks import handwriting_results as results
from graves_tf import experiment, pretrained, run_dir

REPO = pathlib.Path(__file__).resolve().parents[1]
DUMMY_IAM = REPO / "tfds_builders" / "iam_ondb" / "dummy_data"
TINY = experiment.ModelSpec(model="handwriting_predictor", dataset="iam_ondb", num_layers=2, units=32, num_mixtures=5)
TRAINED = results.Row("tiny_prediction", 3, "tiny prediction", "tiny_handwriting_prediction", (-1041.0, 0.41))
MISSING = results.Row("tiny_missing", 3, "tiny, never trained", "tiny_handwriting_prediction", (-1025.7, 0.40))
SHIPPED = results.Row("tiny_shipped", 4, "tiny shipped", "tiny_handwriting_prediction", (-1096.9, 0.23), shipped="tiny")
METRICS = {"loss": -123.45, "sse_per_point": 0.321, "sequences": 4, "points": 1000}


def fake_run(folder, spec=TINY, **progress):
    """A run folder as training leaves it: config, a checkpoint with the trainer's counters, a best checkpoint."""
    keras.utils.set_random_seed(0)
    model = experiment.build_model(spec)
    stats = type("Stats", (), dict(offset_mean=[8.0, 0.1], offset_std=[40.0, 37.0], vocabulary=None))
    run_dir.save_run_config(str(folder), spec, stats)
    counters = {**dict(step=120, epoch=2, train_seconds=5400.0, plateau_cuts=0, validations_since_best=1), **progress}
    variables = {k: tf.Variable(v, dtype=tf.float64 if k == "train_seconds" else tf.int64) for k, v in counters.items()}
    tf.train.Checkpoint(model=model, **variables).save(str(folder / "checkpoints" / "ckpt"))
    variables["step"].assign(80)
    tf.train.Checkpoint(model=model, **variables).save(str(folder / "best" / "ckpt"))
    return folder


def fake_release(folder, spec=TINY, **release):
    keras.utils.set_random_seed(0)
    folder.mkdir(parents=True)
    pretrained.save_weights(experiment.build_model(spec), str(folder / pretrained.WEIGHTS_FILE))
    config = {"spec": dataclasses.asdict(spec), "offset_mean": [8.0, 0.1], "offset_std": [40.0, 37.0],
              "release": {"run": "tiny_run", "step": 300, "weights_dtype": "float16", **release}}
    (folder / pretrained.CONFIG_FILE).write_text(json.dumps(config))
    return folder


@pytest.fixture
def table(tmp_path, monkeypatch):
    """The table's flags over tmp_path, its rows the tiny ones, evaluate replaced by a recorder."""
    evaluated = []

    def fake_evaluate(command):
        evaluated.append(command)
        output = next(a.split("=", 1)[1] for a in command if a.startswith("--output_json="))
        pathlib.Path(output).write_text(json.dumps(METRICS))

    monkeypatch.setattr(results, "run_command", fake_evaluate)
    monkeypatch.setattr(results, "ROWS", (TRAINED, MISSING, SHIPPED))
    flags.FLAGS([
        "handwriting_results", f"--runs_dir={tmp_path / 'runs'}", f"--shipped_dir={tmp_path / 'shipped'}",
        f"--results_dir={tmp_path / 'results'}", f"--output_markdown={tmp_path / 'table.md'}",
    ])
    yield tmp_path, evaluated
    flags.FLAGS.unparse_flags()


def cells(markdown, name):
    line = next(line for line in markdown.splitlines() if f"| {name} |" in line)
    return [c.strip() for c in line.split("|")[1:-1]]


def test_rows_with_a_run_a_release_and_nothing(table):
    root, evaluated = table
    fake_run(root / "runs" / "tiny_prediction")
    (root / "runs" / "tiny_prediction" / "command.sh").write_text("#!/bin/bash\n")
    fake_release(root / "shipped" / "tiny", training=dict(steps=300, epochs=3.5, hours=2.0, plateau_cuts=1))
    results.main(["handwriting_results"])
    markdown = (root / "table.md").read_text()
    run = cells(markdown, "tiny prediction")
    assert run[:7] == ["3", "tiny prediction", "-123.5", "-1041.0", "0.321", "0.41", "250"]
    assert run[7].startswith("120 updates, in epoch 3, 1.5 h; **partial**")
    assert "evaluated: step 80" in run[7] and run[8] == "the paper's network and data rate"
    assert cells(markdown, "tiny, never trained")[2:8] == ["-", "-1025.7", "-", "0.40", "-", "not trained"]
    shipped = cells(markdown, "tiny shipped")
    assert shipped[2] == "-123.5" and shipped[3] == "-1096.9"
    assert shipped[7] == "released: update 300 of run tiny_run, 3.50 epochs, 2.0 h; validation stopped improving: " \
                         "learning rate cut 1 time(s)"
    assert len(evaluated) == 2
    assert f"--model_dir={root / 'runs' / 'tiny_prediction'}" in evaluated[0] and "--split=validation" in evaluated[0]
    assert f"--model_dir={root / 'shipped' / 'tiny'}" in evaluated[1]
    assert f"trained by `{root / 'runs' / 'tiny_prediction' / 'command.sh'}`" in markdown
    assert "--flagfile=graves_tf/configs/tiny_handwriting_prediction.cfg" in markdown and "--train_steps=80" in markdown
    assert "tiny, never trained: not trained; `python -m graves_tf.train" in markdown
    assert not (root / "runs" / "tiny_prediction" / "results").exists()  # nothing written in a run folder

    results.main(["handwriting_results"])  # the same checkpoints and commands: the cache answers
    assert len(evaluated) == 2
    fake_run(root / "runs" / "tiny_prediction")  # a new checkpoint (ckpt-2): evaluated again
    results.main(["handwriting_results"])
    assert len(evaluated) == 3


def test_a_run_whose_learning_rate_was_cut_is_not_partial_and_other_settings_are_named(table):
    root, _ = table
    spec = dataclasses.replace(TINY, point_stride=2)
    fake_run(root / "runs" / "tiny_prediction", spec, plateau_cuts=2, validations_since_best=3)
    flags.FLAGS.rows = ["tiny_prediction"]
    results.main(["handwriting_results"])
    row = cells((root / "table.md").read_text(), "tiny prediction")
    assert "validation stopped improving: learning rate cut 2 times; 3 validation(s) since the best" in row[7]
    assert "partial" not in row[7]
    assert row[8] == "not the paper's network: point_stride=2 (the paper's config: 1); not comparable"


def test_run_dirs_point_a_row_at_another_folder_and_unknown_rows_are_refused(table):
    root, evaluated = table
    elsewhere = fake_release(root / "elsewhere")
    flags.FLAGS.run_dirs = [f"tiny_missing={elsewhere}"]
    flags.FLAGS.rows = ["tiny_missing"]
    results.main(["handwriting_results"])
    row = cells((root / "table.md").read_text(), "tiny, never trained")
    assert row[2] == "-123.5" and "how far it trained is not in the release" in row[7]
    assert f"--model_dir={elsewhere}" in evaluated[0]
    flags.FLAGS.run_dirs = ["nonsense"]
    with pytest.raises(Exception, match="is not ROW=FOLDER"):
        results.main(["handwriting_results"])
    flags.FLAGS.run_dirs = [f"no_such_row={elsewhere}"]
    with pytest.raises(SystemExit, match="unknown rows: no_such_row"):
        results.main(["handwriting_results"])
    flags.FLAGS.run_dirs = [f"tiny_missing={root / 'empty'}"]
    with pytest.raises(Exception, match="has no model_config.json"):
        results.main(["handwriting_results"])


def test_the_paper_rows_and_their_configs():
    names = {row.name: row for row in results.ROWS}
    assert [names[n].paper for n in ("prediction_1x900", "prediction_3x400", "prediction_3x400_adaptive_noise")] == [
        (-1025.7, 0.40), (-1041.0, 0.41), (-1057.7, 0.41)]
    assert [names[n].paper for n in ("synthesis", "synthesis_adaptive_noise")] == [(-1096.9, 0.23), (-1128.2, 0.23)]
    for row in results.ROWS:
        experiment.config_path(row.flagfile)  # every row's flagfile exists
    shipped = names["synthesis_shipped"]
    assert shipped.shipped == "synthesis" and "point_stride=2" in shipped.differs and "alphabet" in shipped.differs
    assert names["prediction_3x400"].shipped == "prediction"


@pytest.mark.slow
def test_end_to_end_a_trained_tiny_run_is_evaluated_by_graves_tf_evaluate(tmp_path, monkeypatch):
    """Trains tiny_handwriting_prediction.cfg 3 updates on the dummy IAM-OnDB and checks the row against
    ``graves_tf.evaluate``'s own JSON (the real commands, in subprocesses)."""
    data = tmp_path / "tfds"
    train = subprocess.run(
        [sys.executable, "-m", "graves_tf.train", "--flagfile=graves_tf/configs/tiny_handwriting_prediction.cfg",
         f"--model_dir={tmp_path / 'runs' / 'tiny_prediction'}", f"--data_dir={data}", f"--manual_dir={DUMMY_IAM}",
         "--train_steps=3", "--eval_every=1", "--learning_rate=1e-30", "--plateau_patience=1", "--batch_size=2",
         "--noprogress_bar"],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    monkeypatch.setattr(results, "ROWS", (TRAINED,))
    flags.FLAGS([
        "handwriting_results", f"--runs_dir={tmp_path / 'runs'}", f"--results_dir={tmp_path / 'results'}",
        f"--data_dir={data}", f"--output_markdown={tmp_path / 'table.md'}",
    ])
    try:
        monkeypatch.chdir(REPO)
        results.main(["handwriting_results"])
    finally:
        flags.FLAGS.unparse_flags()
    measured = json.loads((tmp_path / "results" / "tiny_prediction.json").read_text())
    row = cells((tmp_path / "table.md").read_text(), "tiny prediction")
    assert row[2] == f"{measured['loss']:.1f}" and row[4] == f"{measured['sse_per_point']:.3f}"
    assert row[6] == f"{measured['points'] / measured['sequences']:.0f}"
    # A learning rate of 1e-30 (0 is refused) never improves on the first validation: the plateau rule cut the rate twice.
    assert row[7].startswith("3 updates, ") and "learning rate cut 2 times" in row[7] and "evaluated: step 1;" in row[7]
    assert np.isfinite(measured["loss"]) and measured["split"] == "validation"
