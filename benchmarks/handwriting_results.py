r"""The paper's handwriting tables (Table 3: prediction, Table 4: synthesis), ours next to the paper's.

    python -m benchmarks.handwriting_results --runs_dir=runs --data_dir=~/tensorflow_datasets
    python -m benchmarks.handwriting_results --run_dirs=prediction_3x400=/work/runs/prediction_3x400

Each row of :data:`ROWS` is evaluated on the paper's validation set (the
smaller of IAM-OnDB's two, the builder's ``validation`` split) by
``python -m graves_tf.evaluate --split=validation``, with the paper's
normalisation (offsets scaled to mean 0, std 1 over the training set, as the
model trained): the mean log-loss L(x) of eq. 26 (54 for synthesis) in nats
per line and the sum-squared error of the mixture's mean offset per point.

A row's model is, in this order: the folder ``--run_dirs`` names for it, the
training run ``RUNS_DIR/<row>``, or the shipped model of the row
(``graves_tf/pretrained/<name>``: ``--shipped_dir`` reads them elsewhere); a
row with none says "not trained". Next to each number is how far its run
trained (updates, epochs, hours, learning-rate cuts, from its latest
checkpoint; a shipped model: from its release) and whether it is partial:
a run is partial until its validation loss stopped improving for a
learning-rate step (``--plateau_patience`` cut the rate at least once) or
early stopping ended it. Rows that are not in the paper's setting (the
shipped synthesis model: half the pen points, the full alphabet, Adam) say
what differs; their numbers are not comparable with the paper's. Below the
table it lists, per row, the commands that train (the run's own
``command.sh`` when it has one) and evaluate it.

Evaluations are cached in ``--results_dir`` (one JSON per row, with the
checkpoint and command that measured it) and rerun when either changes; no
file is written in a run folder.
"""

import dataclasses
import datetime
import json
import os
import shlex
import sys

from absl import app, flags

# text_results defines --runs_dir, --rows, --reuse and --output_markdown, which this table shares (so both
# tables can be imported in one process), and --data_dir and --manual_dir (graves_tf.experiment's data flags).
from benchmarks.text_results import _number, run_command
from graves_tf import experiment

FLAGS = flags.FLAGS
PRETRAINED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "graves_tf", "pretrained")

flags.DEFINE_list("run_dirs", [], "ROW=FOLDER pairs: evaluate row ROW from FOLDER (a run or a release) instead.")
flags.DEFINE_string("shipped_dir", PRETRAINED, "Where the shipped models are (graves_tf/pretrained).")
flags.DEFINE_string("results_dir", os.path.join("runs", "handwriting_results"), "Cached evaluations, one per row.")
flags.DEFINE_integer("validation_batch_size", 16, "Lines per validation batch (the loss is per line: any size gives it).")


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of Table 3 or 4; ``paper`` is (log-loss in nats per line, SSE per point)."""

    name: str  # the run folder's name under --runs_dir
    table: int
    description: str
    flagfile: str
    paper: tuple
    init_from: str | None = None  # the row whose run it is retrained from (the paper's adaptive-noise rows)
    shipped: str | None = None  # graves_tf/pretrained/<shipped>, evaluated when the row has no run
    differs: str = ""  # how the row's setting differs from the paper's (its numbers are then not comparable)


SHIPPED_SYNTHESIS_DIFFERS = (
    "not the paper's setting: every other pen point (point_stride=2, half the points per line, each a longer "
    "step, normalised by that rate's statistics), the full 83-character alphabet, Adam; not comparable"
)
ROWS = (
    Row("prediction_1x900", 3, "prediction, 1 x 900 LSTM, no regularisation", "iam_prediction_1x900", (-1025.7, 0.40)),
    Row("prediction_3x400", 3, "prediction, 3 x 400 LSTM, no regularisation", "iam_prediction_3x400", (-1041.0, 0.41),
        shipped="prediction"),
    Row("prediction_3x400_adaptive_noise", 3, "prediction, 3 x 400 LSTM, adaptive weight noise",
        "iam_prediction_3x400_adaptive_noise", (-1057.7, 0.41), init_from="prediction_3x400"),
    Row("synthesis", 4, "synthesis, 3 x 400 LSTM, no regularisation", "iam_synthesis", (-1096.9, 0.23)),
    Row("synthesis_adaptive_noise", 4, "synthesis, 3 x 400 LSTM, adaptive weight noise",
        "iam_synthesis_adaptive_noise", (-1128.2, 0.23), init_from="synthesis"),
    Row("synthesis_shipped", 4, "synthesis, the shipped model (graves_tf/pretrained/synthesis)",
        "iam_synthesis_shipped", (-1096.9, 0.23), shipped="synthesis", differs=SHIPPED_SYNTHESIS_DIFFERS),
)


def named_run_dirs():
    pairs = {}
    for entry in FLAGS.run_dirs:
        name, sep, folder = entry.partition("=")
        if not sep or not name or not folder:
            raise app.UsageError(f"--run_dirs entry {entry!r} is not ROW=FOLDER")
        pairs[name] = folder
    return pairs


def model_source(row, run_dirs):
    """``(folder, kind)`` of the row's model: kind ``run`` (checkpoints) or ``release`` (weights.npz); or None."""
    candidates = []
    if row.name in run_dirs:
        candidates.append(run_dirs[row.name])
    else:
        candidates.append(os.path.join(FLAGS.runs_dir, row.name))
        if row.shipped:
            candidates.append(os.path.join(FLAGS.shipped_dir, row.shipped))
    for folder in candidates:
        if not os.path.exists(os.path.join(folder, "model_config.json")):
            continue
        with open(os.path.join(folder, "model_config.json")) as f:
            config = json.load(f)
        return folder, ("release" if "release" in config else "run"), config
    if row.name in run_dirs:
        raise app.UsageError(f"--run_dirs: {run_dirs[row.name]} has no model_config.json (not a run or a release)")
    return None


def data_flags():
    out = []
    if FLAGS.data_dir:
        out.append(f"--data_dir={FLAGS.data_dir}")
    if FLAGS.manual_dir:
        out.append(f"--manual_dir={FLAGS.manual_dir}")
    return out


def evaluate_command(folder, output_json=None):
    command = [
        "python", "-m", "graves_tf.evaluate", f"--model_dir={folder}", "--split=validation",
        f"--eval_batch_size={FLAGS.validation_batch_size}", *data_flags(),
    ]
    if output_json:
        command.append(f"--output_json={output_json}")
    return command


def train_command(row, folder, steps=None):
    command = [
        "python", "-m", "graves_tf.train", f"--flagfile=graves_tf/configs/{row.flagfile}.cfg",
        f"--model_dir={folder}", *data_flags(),
    ]
    if steps:
        command.append(f"--train_steps={steps}")
    if row.init_from:
        command.append(f"--init_from={os.path.join(FLAGS.runs_dir, row.init_from)}")
    return command


def _utc(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def run_progress(folder):
    """How far a training run got (:func:`graves_tf.progress.training_progress`) and the checkpoint
    evaluated: its best."""
    from graves_tf import progress, run_dir

    found = progress.training_progress(folder)
    evaluated = run_dir.checkpoint_path(folder, "best")
    found.update(
        evaluated_checkpoint=evaluated, evaluated_step=run_dir.checkpoint_step(evaluated),
        saved_at=_utc(os.path.getmtime(found["latest_checkpoint"] + ".index")),
    )
    return found


def trained_cell(progress):
    epochs = progress["epochs"]
    text = f"{progress['steps']:,} updates"
    if epochs is not None:
        text += f", {epochs:.2f} epochs"
    elif progress["epoch"] is not None:
        text += f", in epoch {progress['epoch'] + 1}"
    if progress["hours"] is not None:
        text += f", {progress['hours']:.1f} h"
    cuts = progress["plateau_cuts"] or 0
    if cuts:
        text += f"; validation stopped improving: learning rate cut {cuts} time{'s' if cuts > 1 else ''}"
    else:
        text += "; **partial** (its learning rate was never cut for a plateau of the validation loss)"
    text += (
        f"; {progress['validations_since_best'] or 0} validation(s) since the best; evaluated: step "
        f"{progress['evaluated_step']:,}; last checkpoint {progress['saved_at']}"
    )
    return text


def release_cell(config):
    """How far a shipped model trained: what ``release`` stored of its run (``release.training``)."""
    from graves_tf import pretrained

    training = config["release"].get("training") or {}
    text = f"released: {pretrained.describe_release(config)}"
    if training.get("epochs") is not None:
        text += f", {training['epochs']:.2f} epochs"
    if training.get("hours") is not None:
        text += f", {training['hours']:.1f} h"
    if training.get("plateau_cuts") is None:
        text += "; how far it trained is not in the release (docs/handwriting.md, 'The shipped model')"
    elif training["plateau_cuts"]:
        text += f"; validation stopped improving: learning rate cut {training['plateau_cuts']} time(s)"
    else:
        text += "; **partial** (the learning rate was never cut)"
    return text


def setting_cell(row, config):
    """The row's own note, and every model setting where the evaluated network is not the row's flagfile's."""
    paper_spec = experiment.spec_from_config(row.flagfile)
    spec = experiment.ModelSpec(**config["spec"])
    wanted, given = dataclasses.asdict(paper_spec), dataclasses.asdict(spec)
    wanted["lstm_clip"], wanted["output_clip"] = paper_spec.clips()  # the clips in force, defaults filled in
    given["lstm_clip"], given["output_clip"] = spec.clips()
    differences = [
        f"{name}={value} (the paper's config: {wanted[name]})" for name, value in given.items() if wanted[name] != value
    ]
    if row.differs:
        return row.differs
    if differences:
        return "not the paper's network: " + ", ".join(differences) + "; not comparable"
    return "the paper's network and data rate"


def evaluated_key(path):
    """What identifies the weights evaluated: their path and when their file was written (a checkpoint
    written again under the same name, or a new release in the same folder, is evaluated again)."""
    file = path if path.endswith(".npz") else path + ".index"
    return f"{path}@{os.stat(file).st_mtime_ns}"


def evaluation(row, folder, checkpoint):
    """The metrics of ``python -m graves_tf.evaluate`` for ``checkpoint``, cached per checkpoint and command."""
    os.makedirs(FLAGS.results_dir, exist_ok=True)
    path = os.path.join(FLAGS.results_dir, f"{row.name}.json")
    command = shlex.join(evaluate_command(folder))
    key = evaluated_key(checkpoint)
    if FLAGS.reuse and os.path.exists(path):
        with open(path) as f:
            cached = json.load(f)
        if cached.get("evaluated") == key and cached.get("command") == command:
            return cached
    run_command(evaluate_command(folder, path))
    with open(path) as f:
        metrics = json.load(f)
    metrics.update(command=command, evaluated=key)  # another command (flags, data) or weights: evaluated afresh
    with open(path, "w") as f:
        json.dump(metrics, f, indent=2)
    return metrics


def table_row(row, metrics=None, trained="not trained", setting=""):
    points = None if metrics is None else metrics["points"] / metrics["sequences"]
    loss = None if metrics is None else metrics["loss"]
    sse = None if metrics is None else metrics["sse_per_point"]
    return (
        f"| {row.table} | {row.description} | {_number(loss, 1)} | {row.paper[0]:.1f} "
        f"| {_number(sse, 3)} | {row.paper[1]:.2f} | {_number(points, 0)} | {trained} | {setting or '-'} |"
    )


def command_lines(row, folder, kind, progress):
    lines = [f"* {row.description} ({folder}):"]
    if kind == "run":
        script = os.path.join(folder, "command.sh")
        if os.path.exists(script):
            lines.append(f"  trained by `{script}`")
        lines.append(f"  `{shlex.join(train_command(row, folder, progress['evaluated_step']))}`")
    else:
        lines.append(f"  released from run {progress['release']['run']} (docs/training.md, 'Releasing')")
    lines.append(f"  `{shlex.join(evaluate_command(folder))}`")
    return lines


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    unknown = set(FLAGS.rows) - {row.name for row in ROWS}
    run_dirs = named_run_dirs()
    unknown |= set(run_dirs) - {row.name for row in ROWS}
    if unknown:
        sys.exit(f"unknown rows: {', '.join(sorted(unknown))}; choose from {', '.join(r.name for r in ROWS)}")
    selected = [row for row in ROWS if not FLAGS.rows or row.name in FLAGS.rows]
    lines = [
        "| table | network | log-loss, nats per line | paper | SSE per point | paper | points per line "
        "| trained | setting |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    commands = []
    for row in selected:
        source = model_source(row, run_dirs)
        if source is None:
            print(f"{row.name}: no run in {os.path.join(FLAGS.runs_dir, row.name)}; not trained", flush=True)
            lines.append(table_row(row))
            commands.append(f"* {row.description}: not trained; "
                            f"`{shlex.join(train_command(row, os.path.join(FLAGS.runs_dir, row.name)))}`")
            continue
        folder, kind, config = source
        if kind == "run":
            progress = run_progress(folder)
            checkpoint, trained = progress["evaluated_checkpoint"], trained_cell(progress)
        else:
            from graves_tf import run_dir

            progress = {"release": config["release"]}
            checkpoint, trained = run_dir.checkpoint_path(folder, "best"), release_cell(config)
        metrics = evaluation(row, folder, checkpoint)
        lines.append(table_row(row, metrics, trained, setting_cell(row, config)))
        commands += command_lines(row, folder, kind, progress)
    heading = "Commands (train to the evaluated checkpoint, then evaluate on the validation set):"
    text = "\n".join(lines + ["", heading, ""] + commands)
    print(text)
    if FLAGS.output_markdown:
        with open(FLAGS.output_markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    app.run(main)
