r"""Trains a network of the paper from a flagfile.

    python -m graves_tf.train --flagfile=graves_tf/configs/iam_synthesis.cfg \
        --model_dir=runs/synthesis --manual_dir=../shared/data/iam-ondb

The dataset is read with TFDS from --data_dir; when it is not built yet and
--manual_dir holds the raw files, it is built first. Checkpoints go to
MODEL_DIR/checkpoints (the latest three) and MODEL_DIR/best (best validation
loss); TensorBoard logs to MODEL_DIR/train and MODEL_DIR/validation. Running
the same command again resumes from the latest checkpoint. SIGTERM or Ctrl-C
saves a checkpoint and exits.

``--dry_run`` builds the model, prints its summary and the experiment's
settings, and ends with ``weights: N`` (the trainable weight count).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from graves_tf import experiment  # noqa: E402
from graves_tf.cli import _program  # noqa: E402
from graves_tf.models import count_weights  # noqa: E402
from graves_tf.train_path import CHOICES as TRAIN_PATHS  # noqa: E402
from graves_tf.train_path import PROBE_MIN_WEIGHTS  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """train's flags: every experiment flag group (graves_tf.experiment) and its own."""
    experiment.define_flags()
    if "dry_run" in FLAGS:
        return
    flags.DEFINE_bool("dry_run", False, "Build the model, print its summary and weight count, exit.")
    flags.DEFINE_enum(
        "strategy", "default", ["default", "mirrored", "multi_worker", "tpu"], "tf.distribute strategy."
    )
    flags.DEFINE_string(
        "init_from",
        None,
        "Start from the weights of another run (its model dir or a checkpoint path), of a shipped model "
        "('pretrained': the synthesis model; 'pretrained:NAME': graves_tf/pretrained/NAME, e.g. "
        "pretrained:prediction) or of a release folder; for a shipped model the model flags must be its own.",
    )
    flags.DEFINE_integer("checkpoint_every", 200, "Save a checkpoint every this many updates.")
    flags.DEFINE_integer(
        "keep_every",
        0,
        "Also keep the checkpoint of every this-many-th update in MODEL_DIR/kept (the rolling folder keeps "
        "three), e.g. to average them with graves_tf.average_checkpoints; 0 = off.",
    )
    flags.DEFINE_integer("eval_batches", 0, "Validation batches per evaluation (0: the whole split).")
    flags.DEFINE_integer("log_every", 10, "Write training scalars every this many updates.")
    flags.DEFINE_integer("sample_every", 0, "Handwriting: log a rendered sample every this many updates.")
    flags.DEFINE_integer("max_bad_steps", 5, "Consecutive non-finite updates before rolling back.")
    flags.DEFINE_bool("progress_bar", True, "Show a progress bar with rate and ETA.")
    flags.DEFINE_bool(
        "jit_compile",
        False,
        "Compile the update with XLA; batches are padded to a few fixed shapes (bucket boundaries), "
        "each compiled once when first seen. The same as --train_path=xla.",
    )
    flags.DEFINE_enum(
        "train_path",
        "auto",
        list(TRAIN_PATHS),
        "How an update is computed: fused (hand-written backward pass), autodiff (automatic differentiation "
        "of the step-by-step graph), xla (fused, compiled with XLA), or auto: the fastest on this machine, "
        "measured by a short probe of the model at --batch_size and cached in ~/.cache/graves_tf/train_path.json.",
    )
    flags.DEFINE_integer(
        "train_path_probe_min_weights",
        PROBE_MIN_WEIGHTS,
        "--train_path=auto probes models of at least this many weights; smaller ones train on fused unprobed.",
    )


define_flags()


def describe_experiment(spec):
    lstm_clip, output_clip = spec.clips()
    lines = [
        f"model: {spec.model} ({spec.num_layers} x {spec.units} LSTM)",
        f"dataset: {spec.dataset} ({experiment.DATASETS[spec.dataset].description})",
        f"derivative clipping: LSTM pre-activations {lstm_clip}, outputs {output_clip}",
        f"optimizer: {FLAGS.optimizer}, learning rate {FLAGS.learning_rate}"
        + (f" (drops, updates:rate: {', '.join(FLAGS.learning_rate_drops)})" if FLAGS.learning_rate_drops else "")
        + f", momentum {FLAGS.momentum}",
        f"batch size: {FLAGS.batch_size}",
    ]
    if FLAGS.precision != "float32":
        lines.append(f"matmul precision: {FLAGS.precision} (state, window, loss and weights float32)")
    if spec.model == "handwriting_synthesizer":
        lines.append(f"alphabet: {spec.alphabet} ({len(experiment.ALPHABETS[spec.alphabet])} symbols)")
        if spec.initial_kappa_step is not None:
            lines.append(f"untrained window stride: {spec.initial_kappa_step} characters per point")
    if spec.point_stride != 1:
        lines.append(f"pen positions: 1 in {spec.point_stride} of each stroke, every pen-up kept (point_stride)")
    if FLAGS.line_preparation:
        lines.append(f"lines prepared: {', '.join(FLAGS.line_preparation)} (--line_preparation)")
    if spec.kind == "text":
        segment = FLAGS.segment_length or "one line per sequence"
        lines.append(f"segments: {segment}, state reset every {FLAGS.reset_state_every}")
    if FLAGS.weight_noise:
        lines.append(f"weight noise: std {FLAGS.weight_noise}")
    if FLAGS.adaptive_weight_noise:
        lines.append(f"adaptive weight noise: initial std {FLAGS.adaptive_noise_init_std}")
    return "\n".join(lines)


def training_batches(bundle, jit_compile=None):
    """``epoch -> dataset`` of training batches; compiled with XLA (``jit_compile``, default --jit_compile)
    or on a TPU (which compiles every update with XLA) padded to a few fixed shapes."""
    jit_compile = FLAGS.jit_compile if jit_compile is None else jit_compile
    if not (jit_compile or FLAGS.strategy == "tpu"):
        return bundle.make_epoch
    from graves_tf.data.text import pad_to_stable_shapes

    return lambda epoch: pad_to_stable_shapes(bundle.make_epoch(epoch), bundle.bucket_boundaries)


def start_strategy(name):
    """The ``tf.distribute`` strategy ``name``, or exit with one line when its devices are not there (a TPU)."""
    import tensorflow as tf

    from graves_tf import training

    try:
        return training.make_strategy(name)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        sys.exit(
            f"--strategy={name}: cannot start it ({detail})"
            + ("; no TPU was found: run on a TPU VM, or name one with TPU_NAME" if name == "tpu" else "")
        )


def check_run_configuration(spec):
    """A folder that holds a run already (its model_config.json) resumes only with that run's model flags."""
    saved = experiment.read_run_spec(FLAGS.model_dir)
    conflicts = experiment.spec_conflicts(saved, spec) if saved is not None else []
    if conflicts:
        sys.exit(
            f"{FLAGS.model_dir} holds a run of another configuration (its model_config.json); these flags differ: "
            + ", ".join(conflicts) + "; give the run's own flags (its --flagfile) to resume, or another --model_dir"
        )


def choose_train_path(model, spec, strategy):
    """Sets the model's matmul precision and training path (--precision, --train_path); whether to use XLA.

    ``auto`` probes the model (graves_tf.train_path) unless several replicas train it (each could pick
    another path): then fused, or xla on a TPU. The choice and why are printed.
    """
    from graves_tf import train_path

    try:
        requested = train_path.resolve_request(FLAGS.train_path, FLAGS.jit_compile)
        experiment.set_matmul_precision(model, FLAGS.precision)
    except ValueError as error:
        sys.exit(str(error))
    if requested == "auto" and (FLAGS.strategy == "tpu" or strategy.num_replicas_in_sync > 1):
        path = "xla" if FLAGS.strategy == "tpu" else "fused"
        reason = f"training path: {path} (not probed: --strategy={FLAGS.strategy})"
    else:
        path, reason = train_path.select(
            model, spec, FLAGS.batch_size, requested, model.matmul_precision,
            min_weights=FLAGS.train_path_probe_min_weights,
        )
    print(reason, flush=True)
    return train_path.apply_path(model, path)


def run_training(spec):
    """Trains in ``--model_dir``, refusing a folder that another training is using."""
    from graves_tf import run_dir, training

    if not FLAGS.model_dir:
        sys.exit("--model_dir is required to train (checkpoints and logs go there)")
    if os.path.exists(FLAGS.model_dir) and not os.path.isdir(FLAGS.model_dir):
        sys.exit(f"--model_dir {FLAGS.model_dir} is a file, not a folder")
    strategy = start_strategy(FLAGS.strategy)
    try:
        with training.folder_lock(FLAGS.model_dir, strategy):
            train_in_model_dir(spec, strategy)
    except run_dir.RunInUseError as error:
        sys.exit(str(error))


def pretrained_weights(spec, value="pretrained"):
    """The weights file of the shipped model ``--init_from=value`` names (``pretrained``: synthesis;
    ``pretrained:NAME``: graves_tf/pretrained/NAME; a release folder), once ``spec`` is found to be its
    network; None for a run folder or a checkpoint (the trainer reads those)."""
    from graves_tf import pretrained

    return pretrained.init_weights(value, spec)


def train_in_model_dir(spec, strategy):
    import keras

    from graves_tf import checkpoint_files, run_dir, training
    from graves_tf.data import datasets
    from graves_tf.optimizers import make_optimizer, parse_learning_rate_drops

    check_run_configuration(spec)
    keras.utils.set_random_seed(FLAGS.seed)
    try:
        learning_rate_drops = parse_learning_rate_drops(FLAGS.learning_rate_drops)
        bundle = datasets.load_bundle(
            spec,
            FLAGS.batch_size,
            data_dir=FLAGS.data_dir,
            manual_dir=FLAGS.manual_dir,
            segment_length=FLAGS.segment_length,
            reset_every=FLAGS.reset_state_every,
            hutter_config=FLAGS.hutter_config,
            seed=FLAGS.seed,
            max_length=FLAGS.max_length,
            line_preparation=tuple(FLAGS.line_preparation),
        )
    except (datasets.DatasetNotBuilt, ValueError) as error:
        sys.exit(str(error))
    with strategy.scope():
        model = experiment.build_model(spec)
        optimizer = make_optimizer(FLAGS.optimizer, FLAGS.learning_rate, FLAGS.momentum)
    jit_compile = choose_train_path(model, spec, strategy)
    config = training.TrainConfig(
        model_dir=FLAGS.model_dir,
        train_steps=FLAGS.train_steps,
        checkpoint_every=FLAGS.checkpoint_every,
        keep_every=FLAGS.keep_every,
        learning_rate_drops=learning_rate_drops,
        plateau_patience=FLAGS.plateau_patience,
        plateau_factor=FLAGS.plateau_factor,
        early_stopping_patience=FLAGS.early_stopping_patience,
        eval_every=FLAGS.eval_every,
        eval_batches=FLAGS.eval_batches,
        log_every=FLAGS.log_every,
        max_bad_steps=FLAGS.max_bad_steps,
        weight_noise=FLAGS.weight_noise,
        adaptive_weight_noise=FLAGS.adaptive_weight_noise,
        adaptive_noise_init_std=FLAGS.adaptive_noise_init_std,
        num_training_sequences=bundle.num_training_sequences,
        sample_every=FLAGS.sample_every,
        progress_bar=FLAGS.progress_bar,
        seed=FLAGS.seed,
        jit_compile=jit_compile,
    )
    sample_image_fn = None
    if spec.kind == "handwriting" and FLAGS.sample_every:
        from graves_tf.sampling import sample_image_fn as make_sample_image_fn

        from graves_tf.alphabet import ALPHABETS

        sample_image_fn = make_sample_image_fn(
            bundle.offset_mean, bundle.offset_std, max_steps=600 // spec.point_stride,
            alphabet=ALPHABETS[spec.alphabet],
        )
    try:
        trainer = training.Trainer(
            model,
            optimizer,
            config,
            training.DataSource(training_batches(bundle, jit_compile), FLAGS.batch_size),
            validation_data=lambda: bundle.split_batches(bundle.validation_split),
            strategy=strategy,
            sample_image_fn=sample_image_fn,
        )
    except ValueError as error:
        sys.exit(f"bad configuration: {error}")
    if trainer.is_chief:  # the other workers of a multi-worker run write nothing in the run folder
        run_dir.save_run_config(FLAGS.model_dir, spec, bundle)
    try:
        resumed = trainer.restore()
    except checkpoint_files.UnreadableCheckpoint as error:
        sys.exit(str(error))
    if resumed is not None:
        print(f"resumed from step {resumed}", flush=True)
    elif FLAGS.init_from:
        try:
            trainer.init_from(pretrained_weights(spec, FLAGS.init_from) or FLAGS.init_from)
        except (FileNotFoundError, ValueError) as error:
            sys.exit(str(error))
    try:
        validation = trainer.fit()
    except training.TrainingInterrupted:
        return
    except checkpoint_files.UnreadableCheckpoint as error:  # a save that did not read back (a full disk)
        sys.exit(f"{error}; the folder's latest checkpoint is still the one before it")
    except training.WorkerLost as error:
        sys.exit(str(error))
    except ValueError as error:  # the data cut into nothing: too short for --batch_size streams, an empty epoch
        sys.exit(f"cannot train on this data: {error}")
    step = int(trainer.step.numpy())
    if validation is not None:
        print(f"step {step}: validation loss {validation['loss']:.3f} nats per sequence, "
              f"{validation['loss_per_step']:.4f} per step", flush=True)
    logging.info("finished at step %d", step)


AT_LEAST_ONE = ("batch_size", "train_steps", "checkpoint_every", "log_every", "reset_state_every", "max_bad_steps")
AT_LEAST_ZERO = ("segment_length", "eval_every", "eval_batches", "keep_every", "sample_every", "plateau_patience",
                 "early_stopping_patience")


def settings_problem(flag_values=FLAGS):
    """What is wrong with the training loop's numbers, named by flag (None: nothing), before any data is read.

    (Was: --batch_size=0 a ZeroDivisionError, --train_steps=-5 an
    exit 0 having trained nothing.)"""
    import math

    for name in AT_LEAST_ONE:
        if flag_values[name].value < 1:
            return f"--{name} must be at least 1, got {flag_values[name].value}"
    for name in AT_LEAST_ZERO:
        if flag_values[name].value < 0:
            return f"--{name} must be 0 or more, got {flag_values[name].value}"
    if flag_values["max_length"].value is not None and flag_values["max_length"].value < 1:
        return f"--max_length must be at least 1 point, got {flag_values['max_length'].value}"
    value = {name: flag_values[name].value for name in
             ("learning_rate", "plateau_factor", "adaptive_noise_init_std", "weight_noise", "momentum")}
    for name in ("plateau_factor", "adaptive_noise_init_std"):
        if not math.isfinite(value[name]) or value[name] <= 0:
            return f"--{name} must be a finite number > 0, got {value[name]}"
    for name, zero in (("learning_rate", "frozen weights"), ("weight_noise", "off")):
        if not math.isfinite(value[name]) or value[name] < 0:
            return f"--{name} must be a finite number >= 0 (0: {zero}), got {value[name]}"
    if not math.isfinite(value["momentum"]) or not 0 <= value["momentum"] < 1:
        return f"--momentum must be in [0, 1), got {value['momentum']}"
    return None


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        spec = experiment.model_spec_from_flags(FLAGS)
    except ValueError as error:
        sys.exit(f"bad configuration: {error}")
    problem = settings_problem(FLAGS)
    if problem:
        sys.exit(f"bad configuration: {problem}")
    if FLAGS.dry_run:
        model = experiment.build_model(spec)
        model.summary()
        print(describe_experiment(spec))
        print(f"weights: {count_weights(model)}")
        return
    print(describe_experiment(spec), flush=True)
    run_training(spec)


def run():
    """The ``graves-tf-train`` console script, ``python -m graves_tf.train`` and ``python -m graves_tf.cli.train``."""
    _program.run(main, __name__, __doc__)


if __name__ == "__main__":
    run()
