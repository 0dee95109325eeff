r"""The paper's text prediction tables (Tables 1 and 2), ours next to the paper's.

    python -m benchmarks.text_results --runs_dir=runs --data_dir=~/tensorflow_datasets \
        --manual_dir_ptb=../shared/data/ptb --manual_dir_enwik8=../shared/data/enwik8

Each row of :data:`ROWS` is a training run under ``--runs_dir`` (its folder
name is the row's ``run``), trained by the command the table prints. For
every run that exists, the script runs ``python -m graves_tf.evaluate`` on
the row's split, with fixed weights and with dynamic evaluation, and prints
a Markdown table: our bits per character, perplexity and error rate next to
the paper's, and how far the run trained (updates, epochs, hours, from its
checkpoint). Below the table it lists, per row, the exact training and
evaluation commands. Evaluations are cached next to the checkpoint they
measured (``RUN/results/*.json``, with the command that measured them) and
rerun when the best checkpoint or the command changes.
"""

import dataclasses
import json
import os
import shlex
import subprocess
import sys

from absl import app, flags

from graves_tf import experiment, progress

experiment.define_data_flags()  # --data_dir, passed on to graves_tf.evaluate

FLAGS = flags.FLAGS

flags.DEFINE_string("runs_dir", "runs", "Folder holding the training runs, one folder per row.")
flags.DEFINE_string("manual_dir_ptb", "../shared/data/ptb", "Penn Treebank raw files (if not yet built).")
flags.DEFINE_string("manual_dir_enwik8", "../shared/data/enwik8", "enwik8 file (if not yet built).")
flags.DEFINE_list("rows", [], "Only these rows (their run names); default: every row with a run.")
flags.DEFINE_bool("dynamic", True, "Also run dynamic evaluation (slow: batch 1, a gradient step per segment).")
flags.DEFINE_bool("reuse", True, "Reuse cached evaluations of the same checkpoint.")
flags.DEFINE_string("output_markdown", None, "Also write the table and commands to this file.")

@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the paper's tables; ``paper_*`` are (bits per character, perplexity, error %)."""

    run: str
    description: str
    flagfile: str
    data: str  # "ptb" or "enwik8"
    split: str
    paper_static: tuple | None
    paper_dynamic: tuple | None
    paper_epochs: int | None
    init_from: str | None = None
    extra_flags: tuple = ()  # for both train and evaluate
    eval_flags: tuple = ()  # for evaluate only
    averaged_steps: tuple = ()  # evaluate the mean of these kept checkpoints (train --keep_every)
    keep_every: int = 0  # train --keep_every, needed by averaged_steps
    to_convergence: bool = False  # trains until its flags' early stopping ends it; the best checkpoint is evaluated


ROWS = (
    Row("ptb_char", "PTB char, 1x1000, no regularisation", "ptb_char", "ptb", "test",
        (1.32, 167, 28.5), (1.29, 148, 28.0), 9),
    Row("ptb_char_adam_plateau", "PTB char, 1x1000, no regularisation, Adam (not the paper's SGD), trained to convergence",
        "ptb_char_adam_plateau", "ptb", "test", (1.32, 167, 28.5), (1.29, 148, 28.0), 9, to_convergence=True),
    Row("ptb_char_weight_noise", "PTB char, 1x1000, weight noise, the paper's SGD, rate halved on plateaus",
        "ptb_char_weight_noise", "ptb", "test", (1.27, 140, 27.4), (1.24, 124, 26.9), 25,
        init_from="ptb_char_adam_plateau", to_convergence=True),
    Row("ptb_char_weight_noise_adam", "PTB char, 1x1000, weight noise, Adam (not the paper's SGD)",
        "ptb_char_weight_noise_adam", "ptb", "test", (1.27, 140, 27.4), (1.24, 124, 26.9), 25,
        init_from="ptb_char_adam_plateau", to_convergence=True),
    Row("ptb_char_adaptive_noise", "PTB char, 1x1000, adaptive weight noise, the paper's SGD, rate halved on plateaus",
        "ptb_char_adaptive_noise", "ptb", "test", (1.26, 133, 27.4), (1.24, 122, 26.9), 26,
        init_from="ptb_char_weight_noise", to_convergence=True),
    Row("ptb_word", "PTB word, 1x1000, no regularisation", "ptb_word", "ptb", "test",
        (1.27, 138, 77.8), (1.25, 126, 76.9), 11),
    Row("ptb_word_adam_plateau", "PTB word, 1x1000, no regularisation, Adam (not the paper's SGD), trained to convergence",
        "ptb_word_adam_plateau", "ptb", "test", (1.27, 138, 77.8), (1.25, 126, 76.9), 11, to_convergence=True),
    Row("ptb_word_weight_noise", "PTB word, 1x1000, weight noise, the paper's SGD, rate halved on plateaus",
        "ptb_word_weight_noise", "ptb", "test", (1.25, 126, 76.9), (1.23, 117, 76.2), 14,
        init_from="ptb_word_adam_plateau", to_convergence=True),
    Row("enwik8", "Wikipedia, 7x700 (paper's network), enwik8 prefix, the first 30,000 validation bytes", "enwik8",
        "enwik8", "validation", (1.67, None, None), (1.33, None, None), None, extra_flags=("--hutter_config=prefix",),
        eval_flags=("--eval_batch_size=1", "--max_batches=300")),
    Row("enwik8_small", "Wikipedia, 2x256 (smaller), enwik8 prefix, trained to convergence", "enwik8_small", "enwik8",
        "test", None, None, None, extra_flags=("--hutter_config=prefix",), eval_flags=("--eval_batch_size=1",),
        to_convergence=True),
)


def run_folder(row):
    return os.path.join(FLAGS.runs_dir, row.run)


def data_flags(row):
    manual = FLAGS.manual_dir_ptb if row.data == "ptb" else FLAGS.manual_dir_enwik8
    out = [f"--manual_dir={manual}"]
    if FLAGS.data_dir:
        out.append(f"--data_dir={FLAGS.data_dir}")
    return out + list(row.extra_flags)


def train_command(row, steps, converged=False):
    """The row's training command: until converged for a converged ``to_convergence`` row, else to ``steps`` updates.

    A ``to_convergence`` run stopped before it converged is reproduced by training it as far as the evaluated step.
    """
    command = [
        "python", "-m", "graves_tf.train", f"--flagfile=graves_tf/configs/{row.flagfile}.cfg",
        f"--model_dir={run_folder(row)}", *data_flags(row),
    ]
    if not (row.to_convergence and converged):
        command.append(f"--train_steps={steps}")
    if row.keep_every:
        command.append(f"--keep_every={row.keep_every}")
    if row.init_from:
        command.append(f"--init_from={os.path.join(FLAGS.runs_dir, row.init_from)}")
    return command


def early_stopping_patience(row):
    """The ``--early_stopping_patience`` the row trains with (its flagfile, then its extra flags), or 0."""
    from graves_tf import experiment

    with open(experiment.config_path(row.flagfile)) as f:
        arguments = [line.strip() for line in f] + list(row.extra_flags)
    patience = 0
    for argument in arguments:
        if argument.startswith("--early_stopping_patience="):
            patience = int(argument.split("=", 1)[1])
    return patience


def averaged_checkpoint(row):
    """Where ``python -m graves_tf.average_checkpoints`` writes the row's mean checkpoint."""
    from graves_tf import average_checkpoints

    return average_checkpoints.default_output(run_folder(row), row.averaged_steps)


def averaged_checkpoint_is_current(row):
    from graves_tf import run_dir

    path = averaged_checkpoint(row)
    return os.path.exists(path + ".index") and run_dir.averaged_steps(path) == sorted(row.averaged_steps)


def average_command(row):
    return [
        "python", "-m", "graves_tf.average_checkpoints", f"--model_dir={run_folder(row)}",
        "--checkpoints=" + ",".join(f"ckpt-{step}" for step in row.averaged_steps),
    ]


def evaluate_command(row, dynamic, output_json=None):
    command = [
        "python", "-m", "graves_tf.evaluate", f"--flagfile=graves_tf/configs/{row.flagfile}.cfg",
        f"--model_dir={run_folder(row)}", *data_flags(row), f"--split={row.split}",
    ]
    if row.averaged_steps:
        command.append(f"--checkpoint={averaged_checkpoint(row)}")
    command += list(row.eval_flags)
    if dynamic:
        command.append("--dynamic")
    if output_json:
        command.append(f"--output_json={output_json}")
    return command


def run_progress(row):
    """Updates, epochs and training hours of a run's latest checkpoint; the path of the one evaluated."""
    import tensorflow as tf

    from graves_tf import run_dir

    latest = run_dir.checkpoint_path(run_folder(row), "latest")
    evaluated = averaged_checkpoint(row) if row.averaged_steps else run_dir.checkpoint_path(run_folder(row), "best")
    names = {name for name, _ in tf.train.list_variables(latest)}
    patience = early_stopping_patience(row)

    def value(name, default=None):
        key = f"{name}/.ATTRIBUTES/VARIABLE_VALUE"
        return tf.train.load_variable(latest, key) if key in names else default

    return {
        "epochs_passed": progress.logged_epochs(run_folder(row), int(value("step"))),
        "steps": int(value("step")),
        "epochs": int(value("epoch")),
        "batch_in_epoch": int(value("batch_in_epoch")),
        "hours": None if value("train_seconds") is None else float(value("train_seconds")) / 3600.0,
        "converged": bool(patience) and int(value("validations_since_best", 0)) >= patience,
        "evaluated_checkpoint": evaluated,
        "evaluated_step": run_dir.checkpoint_step(evaluated),
    }


def run_command(command):
    """Runs a printed ``python -m ...`` command with this interpreter."""
    command = [sys.executable, *command[1:]]
    print("running:", shlex.join(command), flush=True)
    subprocess.run(command, check=True)


def evaluation(row, dynamic, checkpoint, reuse=True):
    """The metrics of ``python -m graves_tf.evaluate`` for ``checkpoint``, cached per checkpoint and command."""
    folder = os.path.join(run_folder(row), "results")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{row.split}_{'dynamic' if dynamic else 'static'}.json")
    command = shlex.join(evaluate_command(row, dynamic))
    if reuse and FLAGS.reuse and os.path.exists(path):
        with open(path) as f:
            cached = json.load(f)
        if cached.get("checkpoint") == checkpoint and cached.get("command") == command:
            return cached
    run_command(evaluate_command(row, dynamic, path))
    with open(path) as f:
        metrics = json.load(f)
    metrics["command"] = command  # another command (flags, data) is evaluated afresh
    with open(path, "w") as f:
        json.dump(metrics, f, indent=2)
    return metrics


def _number(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


def table_rows(row, progress, metrics):
    rows = []
    for dynamic in (False, True):
        measured = metrics.get(dynamic)
        paper = row.paper_dynamic if dynamic else row.paper_static
        if measured is None and paper is None:
            continue
        ours = (
            (measured["bits_per_character"], measured.get("perplexity"), 100 * measured["error_rate"])
            if measured
            else (None, None, None)
        )
        paper = paper or (None, None, None)
        epochs = progress["epochs_passed"]
        trained = (
            ("converged at " if progress["converged"] else "not yet converged, " if row.to_convergence else "")
            + f"{progress['steps']:,} updates"
            + (f", {epochs:.2f} epochs" if epochs is not None else f", epoch {progress['epochs'] + 1}")
            + (f", {progress['hours']:.1f} h" if progress["hours"] is not None else "")
            + (
                f"; evaluated: the mean of steps {', '.join(f'{step:,}' for step in row.averaged_steps)}"
                if row.averaged_steps
                else f"; evaluated: step {progress['evaluated_step']:,}"
            )
        )
        paper_epochs = f"{row.paper_epochs} epochs" if row.paper_epochs else "-"
        rows.append(
            f"| {row.description} | {row.split}, {'dynamic' if dynamic else 'static'} "
            f"| {_number(ours[0], 3)} | {_number(paper[0], 2)} "
            f"| {_number(ours[1], 0)} | {_number(paper[1], 0)} "
            f"| {_number(ours[2], 1)} | {_number(paper[2], 1)} "
            f"| {trained} | {paper_epochs} |"
        )
    return rows


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    unknown = set(FLAGS.rows) - {row.run for row in ROWS}
    if unknown:
        sys.exit(f"unknown rows: {', '.join(sorted(unknown))}; choose from {', '.join(r.run for r in ROWS)}")
    selected = [row for row in ROWS if not FLAGS.rows or row.run in FLAGS.rows]
    lines = [
        "| experiment | evaluation | BPC | paper | perplexity | paper | error % | paper | trained | paper |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    commands = []
    for row in selected:
        if not os.path.exists(os.path.join(run_folder(row), "model_config.json")):
            print(f"{row.run}: no run in {run_folder(row)}; skipped", flush=True)
            continue
        averaged_anew = bool(row.averaged_steps) and not averaged_checkpoint_is_current(row)
        if averaged_anew:  # the same path now holds other weights: no cached evaluation of it holds
            run_command(average_command(row))
        progress = run_progress(row)
        metrics = {False: evaluation(row, False, progress["evaluated_checkpoint"], reuse=not averaged_anew)}
        if FLAGS.dynamic:
            metrics[True] = evaluation(row, True, progress["evaluated_checkpoint"], reuse=not averaged_anew)
        lines += table_rows(row, progress, metrics)
        commands.append(f"* {row.description}:")
        commands.append(f"  `{shlex.join(train_command(row, progress['evaluated_step'], progress['converged']))}`")
        if row.averaged_steps:
            commands.append(f"  `{shlex.join(average_command(row))}`")
        for dynamic in (False, True) if FLAGS.dynamic else (False,):
            commands.append(f"  `{shlex.join(evaluate_command(row, dynamic))}`")
    heading = "Commands (train to the evaluated checkpoint or until converged, average where a row does, then evaluate):"
    text = "\n".join(lines + ["", heading, ""] + commands)
    print(text)
    if FLAGS.output_markdown:
        with open(FLAGS.output_markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    app.run(main)
