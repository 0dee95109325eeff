"""The training loop behind ``python -m graves_tf.train``.

One update: the teacher-forced loss of every sequence of the global batch,
the gradient of their *sum* (so the derivative clipping of section 2.1 sees
each sequence's own dL(x)/d(.)), scaled by 1 / global batch size, applied by
the optimizer if the loss and the gradients are finite. Everything runs under
a ``tf.distribute`` strategy; the step is a ``tf.function``.

Under a strategy with several replicas (devices, workers) each global batch
is cut into one slice of rows per replica (:func:`split_for_replicas`; a text
stream's replica keeps its rows, so each carries its own streams' state from
segment to segment); the gradients are summed across replicas once, by the
trainer, which logs the norm of that sum, the gradient it applies. Weight
noise is drawn once per update and shared by all replicas (see
:mod:`graves_tf.weight_noise`). In a multi-worker run only the chief writes
the run folder (checkpoints, ``best/``, summaries, samples); the other workers
save their copies of each checkpoint to a worker-local temporary folder and
delete them, and every worker resumes from the chief's checkpoints
(docs/distributed.md). Every path goes through ``tf.io.gfile``, so a
``gs://`` or ``ram://`` folder works as a local one.

Checkpoints (``tf.train.CheckpointManager``) hold the model, the optimizer,
the step, the data position (epoch and batch within it), the adaptive weight
noise posterior, the best validation loss and the validations since it (the
plateau and early-stopping counts); the run resumes from the latest intact
one (a broken newer one is named in a warning and skipped; each checkpoint is
synced and read back before the folder's pointer moves to it:
:mod:`graves_tf.checkpoint_files`). The best checkpoint by validation loss is
kept apart in ``best/``.
"""

import contextlib
import dataclasses
import math
import os
import re
import signal
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from graves_tf import checkpoint_files, run_dir
from graves_tf.optimizers import scheduled_learning_rate
from graves_tf.weight_noise import AdaptiveWeightNoise, FixedWeightNoise


@dataclasses.dataclass
class TrainConfig:
    model_dir: str
    train_steps: int
    checkpoint_every: int = 200
    eval_every: int = 200
    eval_batches: int = 0  # 0 = the whole validation split
    log_every: int = 10
    max_bad_steps: int = 5  # consecutive non-finite steps before rolling back
    weight_noise: float = 0.0
    adaptive_weight_noise: bool = False
    adaptive_noise_init_std: float = 0.075
    num_training_sequences: int = 0  # for the adaptive noise complexity cost
    sample_every: int = 0
    progress_bar: bool = True
    seed: int = 0
    jit_compile: bool = False  # compile the update with XLA (one compilation per batch shape)
    keep_every: int = 0  # also keep the checkpoints of these updates in MODEL_DIR/kept (0: none)
    learning_rate_drops: tuple = ()  # ((updates, rate), ...): optimizers.parse_learning_rate_drops
    plateau_patience: int = 0  # validations without a new best before the rate is cut (0: never)
    plateau_factor: float = 0.5  # what a plateau multiplies the learning rate by
    early_stopping_patience: int = 0  # validations without a new best before training stops, converged (0: never)


class DataSource:
    """Batches for training: ``epoch(n)`` returns the n-th pass as a ``tf.data.Dataset``.

    The trainer resumes a pass by skipping the batches it had consumed, so
    ``epoch(n)`` must give the same batches in the same order each time it is
    called with the same n (shuffle with a seed derived from n).

    Args:
        make_epoch: ``n -> tf.data.Dataset`` of batch dicts.
        global_batch_size: sequences per update across all replicas.
    """

    def __init__(self, make_epoch, global_batch_size):
        self.make_epoch = make_epoch
        self.global_batch_size = global_batch_size


def is_chief(strategy):
    """Whether this process writes the run folder: every process but the non-chief workers of a multi-worker run."""
    return bool(strategy.extended.should_checkpoint)


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


def folder_lock(model_dir, strategy):
    """:func:`run_dir.training_lock` on ``model_dir`` by the process that writes it: the chief of a
    multi-worker run (its other workers write nothing there), the only process of any other run."""
    if not is_chief(strategy):
        return contextlib.nullcontext()
    return run_dir.training_lock(model_dir)


def split_for_replicas(dataset, num_replicas, pipeline_id=0, num_pipelines=1):
    """Each global batch as the per-replica batches of one input pipeline's replicas, in replica order.

    Replica r (of R, numbered across all workers) gets rows ``[r n, (r + 1) n)``
    of every batch, ``n = ceil(B / R)`` (the last replicas fewer, or none, when R
    does not divide B). A stream of segments (:func:`graves_tf.data.stream_segments`)
    thus gives each replica the same streams in every segment. Input pipeline
    ``pipeline_id`` of ``num_pipelines`` (one per worker) yields its
    ``R / num_pipelines`` replicas' slices one after another, as
    ``tf.distribute.Strategy.distribute_datasets_from_function`` hands them to
    its local replicas. Every worker reads the whole global batch.
    """
    if num_replicas % num_pipelines:
        raise ValueError(f"{num_replicas} replicas cannot be shared by {num_pipelines} input pipelines")
    local = num_replicas // num_pipelines
    first = pipeline_id * local
    for key, spec in dataset.element_spec.items():
        if spec.shape.rank == 0:
            raise ValueError(f"batch key {key!r} is a scalar: every key needs a batch axis to be split over replicas")

    def slices(batch):
        size = tf.shape(next(iter(batch.values())), out_type=tf.int64)[0]
        rows = (size + num_replicas - 1) // num_replicas

        def take(j):
            start = tf.minimum((first + j) * rows, size)
            end = tf.minimum(start + rows, size)
            return {key: value[start:end] for key, value in batch.items()}

        return tf.data.Dataset.range(local).map(take)

    return dataset.flat_map(slices)


def make_strategy(name):
    """``default``, ``mirrored``, ``multi_worker`` or ``tpu``."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown strategy {name!r}; choose default, mirrored, multi_worker or tpu")


class TrainingInterrupted(Exception):
    pass


class WorkerLost(RuntimeError):
    """A worker of a multi-worker run stopped answering (it died, or its machine or network did)."""


# What a collective operation raises when a peer is gone (the coordination service of
# MultiWorkerMirroredStrategy reports a task that stopped sending heartbeats as UnavailableError and
# aborts the collectives; a closed connection can surface as any of these).
_LOST_PEER_ERRORS = (
    tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError, tf.errors.AbortedError,
)


class Trainer:
    """Runs updates, validation, checkpoints and logging for one model.

    Build the model and optimizer inside ``strategy.scope()`` before creating
    the trainer.

    Args:
        model: a :class:`graves_tf.models.SequenceModel`.
        optimizer: a Keras optimizer.
        config: a :class:`TrainConfig`.
        train_data: a :class:`DataSource`.
        validation_data: a function returning a ``tf.data.Dataset`` of batches, or None.
        strategy: the ``tf.distribute`` strategy the model was built under.
        sample_image_fn: ``model -> (H, W, C) uint8 image`` for TensorBoard, or None.
    """

    def __init__(self, model, optimizer, config, train_data, validation_data=None, strategy=None, sample_image_fn=None):
        self.model = model
        self.optimizer = optimizer
        self.config = config
        self.train_data = train_data
        self.validation_data = validation_data
        self.strategy = strategy or tf.distribute.get_strategy()
        self.sample_image_fn = sample_image_fn
        self.is_chief = is_chief(self.strategy)
        self._multi_worker = is_multi_worker(self.strategy)
        if self.strategy.num_replicas_in_sync > 1:
            _sum_gradients_in_the_trainer(optimizer)
        if config.weight_noise and config.adaptive_weight_noise:
            raise ValueError("choose fixed weight noise or adaptive weight noise, not both")
        with self.strategy.scope():
            self.step = tf.Variable(0, dtype=tf.int64, name="step", trainable=False)
            self.epoch = tf.Variable(0, dtype=tf.int64, name="epoch", trainable=False)
            self.batch_in_epoch = tf.Variable(0, dtype=tf.int64, name="batch_in_epoch", trainable=False)
            self.best_validation = tf.Variable(math.inf, dtype=tf.float64, name="best_validation", trainable=False)
            self.train_seconds = tf.Variable(0.0, dtype=tf.float64, name="train_seconds", trainable=False)
            self.validations_since_best = tf.Variable(
                0, dtype=tf.int64, name="validations_since_best", trainable=False
            )
            self.plateau_cuts = tf.Variable(0, dtype=tf.int64, name="plateau_cuts", trainable=False)
            self.noise = None
            if config.weight_noise:
                self.noise = FixedWeightNoise(config.weight_noise, seed=config.seed)
            elif config.adaptive_weight_noise:
                if config.num_training_sequences < 1:
                    raise ValueError("adaptive weight noise needs the number of training sequences")
                self.noise = AdaptiveWeightNoise(
                    model.trainable_variables,
                    init_std=config.adaptive_noise_init_std,
                    num_sequences=config.num_training_sequences,
                    seed=config.seed,
                )
            # Create the optimizer's slots now, so a restore fills them directly.
            self.optimizer.build(self._variables())
        self._initial_learning_rate = self._learning_rate()
        self._drop_updates = {updates for updates, _ in config.learning_rate_drops}
        if (config.learning_rate_drops or config.plateau_patience) and self._initial_learning_rate is None:
            raise ValueError("learning rate drops and plateaus need an optimizer built with a constant learning rate")
        if (config.plateau_patience or config.early_stopping_patience) and (
            validation_data is None or not config.eval_every
        ):
            raise ValueError("--plateau_patience and --early_stopping_patience need validation (--eval_every > 0)")
        trackables = dict(
            model=model,
            optimizer=optimizer,
            step=self.step,
            epoch=self.epoch,
            batch_in_epoch=self.batch_in_epoch,
            best_validation=self.best_validation,
            train_seconds=self.train_seconds,
            validations_since_best=self.validations_since_best,
            plateau_cuts=self.plateau_cuts,
        )
        if isinstance(self.noise, AdaptiveWeightNoise):
            trackables["weight_noise"] = self.noise
        self._trackables = trackables
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(config.model_dir, "checkpoints"), max_to_keep=3
        )
        self.best_manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(config.model_dir, "best"), max_to_keep=1
        )
        if self.is_chief:
            self.writer = tf.summary.create_file_writer(os.path.join(config.model_dir, "train"))
            self.validation_writer = tf.summary.create_file_writer(os.path.join(config.model_dir, "validation"))
        else:  # the chief writes the run's summaries
            self.writer = self.validation_writer = tf.summary.create_noop_writer()
        self._stop_signal = None
        self._step = tf.function(
            self._distributed_step, reduce_retracing=True, jit_compile=config.jit_compile or None
        )
        self._evaluate = tf.function(self._distributed_evaluate, reduce_retracing=True)

    # -- state -------------------------------------------------------------

    def restore(self):
        """Restores the latest intact checkpoint, if any; returns the step it resumed from (or None)."""
        latest = checkpoint_files.newest_intact(self.manager.directory)  # a broken newer one: warned, skipped
        if latest is None:
            return None
        # Runs saved before these counters existed resume with them at 0.
        saved = {name.split("/")[0] for name in run_dir.checkpoint_reader(latest).get_variable_to_shape_map()}
        optional = {"train_seconds", "validations_since_best", "plateau_cuts"}
        tf.train.Checkpoint(
            **{k: v for k, v in self._trackables.items() if k in saved or k not in optional}
        ).restore(latest).assert_existing_objects_matched()
        saved_rate = self._learning_rate()
        self._follow_learning_rate_drops()
        if saved_rate is not None and self._learning_rate() != saved_rate:
            logging.info("learning rate %g (the checkpoint's was %g)", self._learning_rate(), saved_rate)
        return int(self.step.numpy())

    def _follow_learning_rate_drops(self):
        """Sets the rate the flags ask for at this update count (the checkpoint's saved rate never wins).

        The rate changes only here: when a drop's update count is reached, when
        the validation loss reaches a plateau, and after a restore or a roll
        back, which bring back a checkpoint's rate."""
        if self._initial_learning_rate is None:
            return
        rate = scheduled_learning_rate(
            self._initial_learning_rate, self.config.learning_rate_drops, int(self.step.numpy())
        ) * self.config.plateau_factor ** int(self.plateau_cuts.numpy())
        if self._learning_rate() != float(np.float32(rate)):
            self.optimizer.learning_rate = rate

    def _learning_rate(self):
        """The optimizer's constant learning rate, or None when it follows a schedule."""
        if isinstance(self.optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            return None
        return float(np.asarray(self.optimizer.learning_rate))

    def init_from(self, path):
        """Loads only the model weights of another run: its model dir, a checkpoint, or a ``weights.npz``.

        A ``.npz`` file is read as :func:`graves_tf.pretrained.save_weights`
        wrote it (the shipped model's format).
        """
        if tf.io.gfile.isdir(path):
            path = run_dir.checkpoint_path(path, "best")
        elif not path.endswith(".npz") and not tf.io.gfile.exists(path + ".index"):
            raise FileNotFoundError(f"--init_from {path}: no checkpoint (give a run's model dir or a ckpt-N path)")
        run_dir.restore_weights(self.model, path)
        logging.info("initialised the model from %s", path)
        return path

    def save(self):
        """Saves a checkpoint; its files are synced and read back before the folder's pointer names it."""
        path = self._save_with(self.manager)
        if not self.is_chief:
            return path
        if self.config.keep_every and int(self.step.numpy()) % self.config.keep_every == 0:
            kept = os.path.join(self.config.model_dir, run_dir.KEPT_FOLDER)
            tf.io.gfile.makedirs(kept)
            for source in sorted(tf.io.gfile.glob(path + ".*"), key=lambda name: name.endswith(".index")):
                # Copied under a temporary name and renamed, data before index: a copy killed half way
                # leaves a ``.partial`` file, never a short kept/ckpt-N that average_checkpoints would read.
                target = os.path.join(kept, os.path.basename(source))
                tf.io.gfile.copy(source, target + ".partial", overwrite=True)
                tf.io.gfile.rename(target + ".partial", target, overwrite=True)
        return path

    def _save_with(self, manager):
        """``manager.save`` on the chief (or the only process); the checkpoint's path in the run folder.

        Every worker of a multi-worker run must save (saving may read every
        worker's variables), but only the chief's copy is kept: the other
        workers write theirs to a worker-local temporary folder and delete it
        (TensorFlow's multi-worker guidance), so the run folder holds one set.
        """
        options = checkpoint_files.write_options()
        if self.is_chief:
            return manager.save(checkpoint_number=self.step, options=options)
        task_id = getattr(self.strategy.cluster_resolver, "task_id", None)
        temporary = tempfile.mkdtemp(prefix=f"graves_tf_worker{task_id}_")
        try:
            tf.train.CheckpointManager(self.checkpoint, temporary, max_to_keep=1).save(
                checkpoint_number=self.step, options=options
            )
        finally:
            tf.io.gfile.rmtree(temporary)
        return os.path.join(manager.directory, f"ckpt-{int(self.step.numpy())}")

    # -- steps -------------------------------------------------------------

    def _variables(self):
        variables = list(self.model.trainable_variables)
        if isinstance(self.noise, AdaptiveWeightNoise):
            variables += list(self.noise.trainable_variables)
        return variables

    def _replica_gradients(self, batch, state, noisy_weights, noise_sample):
        """This replica's loss and the applied gradient: the sum over all replicas of theirs, / global batch.

        With weight noise the forward pass reads the noisy weights (drawn once
        for the update, the same on every replica) through a
        ``keras.StatelessScope``; the variables keep their clean values.
        """
        model_vars = self.model.trainable_variables
        with tf.GradientTape() as tape:
            if noisy_weights is None:
                out = self.model.forward(batch, initial_state=state, training=True)
            else:
                tape.watch(noisy_weights)
                with keras.StatelessScope(state_mapping=list(zip(model_vars, noisy_weights))):
                    out = self.model.forward(batch, initial_state=state, training=True)
            loss_sum = tf.reduce_sum(out["loss"])
        grads = tape.gradient(loss_sum, model_vars if noisy_weights is None else noisy_weights)
        scale = 1.0 / self.train_data.global_batch_size
        grads = [g * scale for g in grads]
        if self.strategy.num_replicas_in_sync > 1:  # the optimizer's own sum is off (_sum_gradients_in_the_trainer)
            grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)
        if isinstance(self.noise, AdaptiveWeightNoise):  # from the summed data gradient: the KL term once
            mu_grads, sigma_grads = self.noise.gradients(grads, noise_sample, model_vars)
            grads = list(mu_grads) + list(sigma_grads)
        return loss_sum, grads, tf.linalg.global_norm(grads), out["final_state"], _num_steps(batch, out)

    def _distributed_step(self, batch, state):
        """Gradients on every replica; the update only if every replica's loss and gradients are finite."""
        strategy = self.strategy
        noisy_weights = noise_sample = None
        if self.noise is not None:  # one draw per update, in cross-replica context: every replica's
            noisy_weights, noise_sample = self.noise.sample(self.model.trainable_variables)
        loss_sum, grads, grad_norm, final_state, num_steps = strategy.run(
            self._replica_gradients, args=(batch, state, noisy_weights, noise_sample)
        )

        def replica_is_bad(loss, norm):
            return 1.0 - tf.cast(tf.math.is_finite(loss) & tf.math.is_finite(norm), tf.float32)

        bad_replicas = strategy.reduce(
            tf.distribute.ReduceOp.SUM, strategy.run(replica_is_bad, args=(loss_sum, grad_norm)), axis=None
        )

        def apply():
            strategy.run(lambda g: self.optimizer.apply_gradients(zip(g, self._variables())), args=(grads,))
            return tf.constant(True)

        applied = tf.cond(bad_replicas > 0, lambda: tf.constant(False), apply)
        return (
            strategy.reduce(tf.distribute.ReduceOp.SUM, loss_sum, axis=None),
            strategy.reduce(tf.distribute.ReduceOp.SUM, num_steps, axis=None),
            self._local(grad_norm)[0],  # the same on every replica: the norm of the summed gradient
            applied,
            final_state,
        )

    def _distributed_evaluate(self, batch):
        def replica_fn(batch):
            out = self.model.forward(batch)
            return tf.reduce_sum(out["loss"]), tf.cast(tf.shape(out["loss"])[0], tf.float32), _num_steps(batch, out)

        return [self._reduce_sum(value) for value in self.strategy.run(replica_fn, args=(batch,))]

    def _replica_batches(self, make_dataset):
        """``make_dataset()``'s global batches as per-replica batches (:func:`split_for_replicas`)."""
        if self.strategy.num_replicas_in_sync == 1:
            return make_dataset()

        def dataset_fn(context):
            return split_for_replicas(
                make_dataset(), context.num_replicas_in_sync, context.input_pipeline_id, context.num_input_pipelines
            )

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    def _reduce_sum(self, value):
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)

    def _local(self, per_replica):
        return self.strategy.experimental_local_results(per_replica)

    def train_step(self, batch, state=None):
        """One update. Returns ``(metrics, final_state, applied)``; a non-finite step is not applied."""
        loss_sum, num_steps, grad_norm, applied, final_state = self._step(batch, state)
        loss_sum, num_steps = float(loss_sum), float(num_steps)
        metrics = {
            "loss": loss_sum / self.train_data.global_batch_size,
            "loss_per_step": loss_sum / max(num_steps, 1.0),
            "gradient_norm": float(grad_norm),
        }
        return metrics, final_state, bool(applied)

    def evaluate(self, max_batches=0):
        """Mean loss per sequence and per step (nats) over the validation data."""
        total, sequences, steps = 0.0, 0.0, 0.0
        for i, batch in enumerate(self._replica_batches(self.validation_data)):
            if max_batches and i >= max_batches:
                break
            batch = {k: v for k, v in batch.items() if k not in ("reset", "segment")}
            loss, count, num_steps = self._evaluate(batch)
            total += float(loss)
            sequences += float(count)
            steps += float(num_steps)
        if sequences == 0:
            raise ValueError("the validation data is empty")
        return {"loss": total / sequences, "loss_per_step": total / max(steps, 1.0)}

    # -- the loop ------------------------------------------------------------

    def _on_signal(self, signum, frame):
        self._stop_signal = signum

    def fit(self):
        """Trains until ``config.train_steps``; returns the last validation metrics (or None)."""
        config = self.config
        with folder_lock(config.model_dir, self.strategy):
            previous_handlers = {
                sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
            }
            try:
                validation = self._fit(config)
                if self._multi_worker:  # a barrier: no worker leaves while another still needs it
                    self._any_worker(tf.constant(False))
                return validation
            except _LOST_PEER_ERRORS as error:
                if not self._multi_worker:
                    raise
                detail = re.sub(r"\{\{[^}]*\}\}\s*", "", str(error)).strip()  # less the failing op's name
                detail = detail.splitlines()[0] if detail else "no detail"
                latest = checkpoint_files.listed(self.manager.directory)
                raise WorkerLost(
                    f"lost a worker of the multi-worker run after step {int(self.step.numpy())} "
                    f"({type(error).__name__}: {detail}); start every worker again with the same command and "
                    f"TF_CONFIG: they resume from the chief's latest checkpoint, "
                    f"{latest[0] if latest else 'none yet (from the start)'}"
                ) from None
            finally:
                for sig, handler in previous_handlers.items():
                    signal.signal(sig, handler)
                self.writer.flush()
                self.validation_writer.flush()

    def _fit(self, config):
        progress = _Progress(config.train_steps, int(self.step.numpy()), enabled=config.progress_bar)
        bad_steps = 0
        validation = None
        state = None
        self._clock = time.monotonic()
        self._follow_learning_rate_drops()
        if self.converged:
            self._report_convergence()
            return validation
        while int(self.step.numpy()) < config.train_steps:
            epoch = int(self.epoch.numpy())
            already_trained = int(self.batch_in_epoch.numpy())
            dataset = self._replica_batches(lambda: self.train_data.make_epoch(epoch).skip(already_trained))
            consumed_any = False
            for batch in dataset:
                consumed_any = True
                carries_state = "reset" in batch  # truncated BPTT over a stream
                if carries_state:
                    reset = batch.pop("reset")
                    batch.pop("segment", None)
                    if bool(np.any(self._local(reset)[0])):
                        state = None
                metrics, final_state, applied = self.train_step(batch, state)
                self.batch_in_epoch.assign_add(1)
                if not applied:
                    bad_steps += 1
                    logging.warning(
                        "step %d: non-finite loss or gradient (loss %s, gradient norm %s); update skipped",
                        int(self.step.numpy()), metrics["loss"], metrics["gradient_norm"],
                    )
                    if bad_steps >= config.max_bad_steps:
                        self._roll_back(bad_steps)
                        bad_steps, state = 0, None
                        break
                    continue
                bad_steps = 0
                state = final_state if carries_state else None
                self.step.assign_add(1)
                step = int(self.step.numpy())
                self._tick()
                progress.update(step, metrics)
                if step % config.log_every == 0 or step == config.train_steps:
                    self._log(self.writer, step, {**metrics, **self._progress_metrics()})
                if self.validation_data is not None and config.eval_every and (
                    step % config.eval_every == 0 or step == config.train_steps
                ):
                    validation = self._validate(step)
                    if self.converged:
                        self.save()
                        progress.close()
                        self._report_convergence()
                        return validation
                if config.sample_every and self.sample_image_fn and self.is_chief and step % config.sample_every == 0:
                    self._log_sample(step)
                kept = config.keep_every and step % config.keep_every == 0
                if step % config.checkpoint_every == 0 or kept or step == config.train_steps:
                    self.save()
                if step in self._drop_updates:  # the next update is made at the new rate
                    self._follow_learning_rate_drops()
                if self._stopping():
                    path = self.save()
                    progress.close()
                    cause = f"by signal {self._stop_signal}" if self._stop_signal is not None else "with another worker"
                    print(f"stopped {cause} at step {step}; saved {path}", flush=True)
                    raise TrainingInterrupted(step)
                if step >= config.train_steps:
                    break
            else:
                if not consumed_any and not already_trained:
                    raise ValueError(f"epoch {epoch} of the training data is empty")
                # else a run stopped after the epoch's last batch resumes with the next epoch
                self.epoch.assign_add(1)
                self.batch_in_epoch.assign(0)
                state = None
        progress.close()
        return validation

    def _stopping(self):
        """Whether a signal asked to stop; in a multi-worker run, whether it asked any worker (all stop at
        the same update, so their collective operations stay in step)."""
        asked = self._stop_signal is not None
        if not self._multi_worker:
            return asked
        return bool(self._any_worker(tf.constant(asked)))

    @tf.function
    def _any_worker(self, flag):
        strategy = self.strategy
        votes = strategy.run(lambda f: tf.cast(f, tf.int32), args=(flag,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None) > 0

    def _tick(self):
        """Adds the wall time since the last tick to ``train_seconds`` (saved with the checkpoint)."""
        now = time.monotonic()
        self.train_seconds.assign_add(now - self._clock)
        self._clock = now

    def _progress_metrics(self):
        metrics = {"train_hours": float(self.train_seconds.numpy()) / 3600.0}
        if self.config.num_training_sequences:
            metrics["epochs"] = (
                float(self.step.numpy()) * self.train_data.global_batch_size / self.config.num_training_sequences
            )
        return metrics

    def _roll_back(self, bad_steps):
        latest = checkpoint_files.newest_intact(self.manager.directory)
        if latest is None:
            raise FloatingPointError(
                f"{bad_steps} consecutive non-finite steps and no checkpoint to roll back to"
            )
        self.checkpoint.restore(latest)
        self._follow_learning_rate_drops()
        logging.warning(
            "%d consecutive non-finite steps: rolled back to %s (step %d)", bad_steps, latest, int(self.step.numpy())
        )
        # Move past the batches that failed, so the same data does not fail again.
        self.batch_in_epoch.assign_add(bad_steps)

    def _validate(self, step):
        metrics = self.evaluate(self.config.eval_batches)
        self._log(self.validation_writer, step, metrics)
        logging.info("step %d: validation loss %.3f nats per sequence", step, metrics["loss"])
        if metrics["loss"] < float(self.best_validation.numpy()):
            self.best_validation.assign(metrics["loss"])
            self._save_with(self.best_manager)
            self.validations_since_best.assign(0)
            return metrics
        self.validations_since_best.assign_add(1)
        waited = int(self.validations_since_best.numpy())
        patience = self.config.plateau_patience
        if patience and waited % patience == 0 and not self.converged:
            self.plateau_cuts.assign_add(1)
            self._follow_learning_rate_drops()
            logging.info(
                "step %d: no better validation loss in %d validations; learning rate now %g",
                step, waited, self._learning_rate(),
            )
        return metrics

    @property
    def converged(self):
        """Whether the validation loss has not improved for ``early_stopping_patience`` validations."""
        patience = self.config.early_stopping_patience
        return bool(patience) and int(self.validations_since_best.numpy()) >= patience

    def _report_convergence(self):
        best = self.best_manager.latest_checkpoint
        print(
            f"converged at step {int(self.step.numpy())}: no better validation loss in the last "
            f"{int(self.validations_since_best.numpy())} validations; the best, "
            f"{float(self.best_validation.numpy()):.4f} nats per sequence, is {best}",
            flush=True,
        )

    def _log(self, writer, step, metrics):
        if not self.is_chief:
            return
        with writer.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.scalar(name, value)
            if writer is self.writer:
                tf.summary.scalar("learning_rate", float(np.asarray(self.optimizer.learning_rate)))
                if isinstance(self.noise, AdaptiveWeightNoise):
                    tf.summary.scalar("weight_noise_mean_std", float(self.noise.mean_sigma()))

    def _log_sample(self, step):
        image = self.sample_image_fn(self.model)
        with self.writer.as_default(step=step):
            tf.summary.image("sample", image[None], step=step)


def _sum_gradients_in_the_trainer(optimizer):
    """Turns off the Keras optimizer's own sum of the gradients across replicas.

    The trainer sums them itself (to check and log the gradient it applies,
    and to form adaptive weight noise's gradients once); a second sum would
    multiply the update by the number of replicas.
    """
    if not callable(getattr(optimizer, "_all_reduce_sum_gradients", None)):
        raise TypeError(
            f"{type(optimizer).__name__} does not sum gradients across replicas as the Keras TensorFlow "
            "optimizers do; it cannot train under a strategy with several replicas"
        )
    object.__setattr__(optimizer, "_all_reduce_sum_gradients", lambda grads_and_vars: list(grads_and_vars))


def _num_steps(batch, out):
    if batch.get("lengths") is not None:
        return tf.cast(tf.reduce_sum(batch["lengths"]), tf.float32)
    if batch.get("mask") is not None:
        return tf.reduce_sum(tf.cast(batch["mask"], tf.float32))
    return tf.cast(tf.size(batch["targets"]) // _point_width(batch), tf.float32)


def _point_width(batch):
    targets = batch["targets"]
    return targets.shape[-1] if targets.shape.rank == 3 else 1


class _Progress:
    """A tqdm progress bar with rate, ETA and the latest loss."""

    def __init__(self, total, initial, enabled=True):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, mininterval=1.0)
        self.last = initial
        self.started = time.time()

    def update(self, step, metrics):
        if self.bar is None:
            return
        self.bar.update(step - self.last)
        self.last = step
        self.bar.set_postfix(loss=f"{metrics['loss']:.2f}", refresh=False)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
