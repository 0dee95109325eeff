"""The training loop behind ``python -m graves_tf.train``.

One update: the teacher-forced loss of every sequence of the global batch,
the gradient of their *sum* (so the derivative clipping of section 2.1 sees
each sequence's own dL(x)/d(.)), scaled by 1 / global batch size, applied by
the optimizer if the loss and the gradients are finite. Everything runs under
a ``tf.distribute`` strategy; the step is a ``tf.function``.

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
import signal
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


def folder_lock(model_dir, strategy):
    """:func:`run_dir.training_lock` on ``model_dir``, except for multi-worker
    runs, whose processes write one folder by design."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return contextlib.nullcontext()
    return run_dir.training_lock(model_dir)


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
        uses_noise = config.weight_noise or config.adaptive_weight_noise
        if uses_noise and self.strategy is not tf.distribute.get_strategy():
            raise ValueError(
                "weight noise perturbs the weights in place and needs --strategy=default"
            )
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
        self.writer = tf.summary.create_file_writer(os.path.join(config.model_dir, "train"))
        self.validation_writer = tf.summary.create_file_writer(os.path.join(config.model_dir, "validation"))
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
        saved = {name.split("/")[0] for name, _ in tf.train.list_variables(latest)}
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
        path = self.manager.save(checkpoint_number=self.step, options=checkpoint_files.write_options())
        if self.config.keep_every and int(self.step.numpy()) % self.config.keep_every == 0:
            kept = os.path.join(self.config.model_dir, run_dir.KEPT_FOLDER)
            tf.io.gfile.makedirs(kept)
            for source in tf.io.gfile.glob(path + ".*"):
                tf.io.gfile.copy(source, os.path.join(kept, os.path.basename(source)), overwrite=True)
        return path

    # -- steps -------------------------------------------------------------

    def _variables(self):
        variables = list(self.model.trainable_variables)
        if isinstance(self.noise, AdaptiveWeightNoise):
            variables += list(self.noise.trainable_variables)
        return variables

    def _replica_gradients(self, batch, state):
        model_vars = self.model.trainable_variables
        saved = self.noise.perturb(model_vars) if self.noise is not None else None
        with tf.GradientTape() as tape:
            out = self.model.forward(batch, initial_state=state, training=True)
            loss_sum = tf.reduce_sum(out["loss"])
        grads = tape.gradient(loss_sum, model_vars)
        if self.noise is not None:
            self.noise.restore(model_vars, saved)
        scale = 1.0 / self.train_data.global_batch_size
        grads = [g * scale for g in grads]
        if isinstance(self.noise, AdaptiveWeightNoise):
            mu_grads, sigma_grads = self.noise.gradients(grads, saved, model_vars)
            grads = list(mu_grads) + list(sigma_grads)
        return loss_sum, grads, tf.linalg.global_norm(grads), out["final_state"], _num_steps(batch, out)

    def _distributed_step(self, batch, state):
        """Gradients on every replica; the update only if every replica's loss and gradients are finite."""
        strategy = self.strategy
        loss_sum, grads, grad_norm, final_state, num_steps = strategy.run(
            self._replica_gradients, args=(batch, state)
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
            strategy.reduce(tf.distribute.ReduceOp.MEAN, grad_norm, axis=None),
            applied,
            final_state,
        )

    def _distributed_evaluate(self, batch):
        def replica_fn(batch):
            out = self.model.forward(batch)
            return tf.reduce_sum(out["loss"]), tf.cast(tf.shape(out["loss"])[0], tf.float32), _num_steps(batch, out)

        return self.strategy.run(replica_fn, args=(batch,))

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
        for i, batch in enumerate(self.validation_data()):
            if max_batches and i >= max_batches:
                break
            loss, count, num_steps = self._evaluate(batch)
            total += float(self._reduce_sum(loss))
            sequences += float(self._reduce_sum(count))
            steps += float(self._reduce_sum(num_steps))
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
                return self._fit(config)
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
            dataset = self.train_data.make_epoch(epoch).skip(already_trained)
            dataset = self.strategy.experimental_distribute_dataset(dataset)
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
                if config.sample_every and self.sample_image_fn and step % config.sample_every == 0:
                    self._log_sample(step)
                kept = config.keep_every and step % config.keep_every == 0
                if step % config.checkpoint_every == 0 or kept or step == config.train_steps:
                    self.save()
                if step in self._drop_updates:  # the next update is made at the new rate
                    self._follow_learning_rate_drops()
                if self._stop_signal is not None:
                    path = self.save()
                    progress.close()
                    print(f"stopped by signal {self._stop_signal} at step {step}; saved {path}", flush=True)
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
            self.best_manager.save(checkpoint_number=self.step, options=checkpoint_files.write_options())
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
