"""The training loop: learning, checkpoints and resume, NaN handling, strategies, weight noise."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from graves_tf import checkpoint_files, run_dir, training  # noqa: E402
from graves_tf.data import stream_segments  # noqa: E402
from graves_tf.models import HandwritingPredictor, TextPredictor  # noqa: E402
from graves_tf.optimizers import GravesRMSprop  # noqa: E402

from training_helpers import BATCH, VOCAB, make_trainer, periodic_stream, text_source  # noqa: E402,F401


def test_loss_falls_and_the_best_checkpoint_is_kept(tmp_path):
    trainer = make_trainer(tmp_path, 60, eval_every=20)
    before = trainer.evaluate()["loss_per_step"]
    after = trainer.fit()["loss_per_step"]
    assert after < 0.6 * before, (before, after)
    assert tf.train.latest_checkpoint(tmp_path / "best") is not None
    assert tf.train.latest_checkpoint(tmp_path / "checkpoints").endswith("-60")
    assert os.listdir(tmp_path / "train")  # TensorBoard events


def test_keep_every_keeps_those_checkpoints_beside_the_rolling_three(tmp_path):
    make_trainer(tmp_path, 14, keep_every=4).fit()
    rolling = tf.train.get_checkpoint_state(str(tmp_path / "checkpoints")).all_model_checkpoint_paths
    assert [os.path.basename(p) for p in rolling] == ["ckpt-10", "ckpt-12", "ckpt-14"]
    kept = sorted(n for n in os.listdir(tmp_path / run_dir.KEPT_FOLDER) if n.endswith(".index"))
    assert kept == ["ckpt-12.index", "ckpt-4.index", "ckpt-8.index"]
    step = tf.train.load_variable(str(tmp_path / run_dir.KEPT_FOLDER / "ckpt-4"), "step/.ATTRIBUTES/VARIABLE_VALUE")
    assert step == 4


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    """A run stopped at step 10 and resumed to 20 equals a run straight to 20:
    same step, data position and optimizer state."""
    straight = make_trainer(tmp_path / "straight", 20)
    straight.fit()
    first = make_trainer(tmp_path / "resumed", 10)
    first.fit()
    saved_optimizer = [v.numpy().copy() for v in first.optimizer.variables]
    second = make_trainer(tmp_path / "resumed", 20)
    assert second.restore() == 10
    assert int(second.batch_in_epoch.numpy()) == 10
    for saved, restored in zip(saved_optimizer, second.optimizer.variables):
        np.testing.assert_array_equal(saved, restored.numpy())
    second.fit()
    for a, b in zip(straight.model.weights, second.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_a_truncated_newest_checkpoint_is_skipped_and_the_run_ends_as_if_it_never_was(tmp_path, caplog):
    """ckpt-10 cut in half (a full disk, a killed copy): resuming warns, naming it, restores ckpt-5 and
    trains on; the final weights equal those of a run stopped at 5 and resumed, which never had ckpt-10."""
    make_trainer(tmp_path / "clean", 5).fit()
    clean = make_trainer(tmp_path / "clean", 15)
    assert clean.restore() == 5
    clean.fit()
    make_trainer(tmp_path / "broken", 10).fit()
    data = tmp_path / "broken" / "checkpoints" / "ckpt-10.data-00000-of-00001"
    os.truncate(data, os.path.getsize(data) // 2)
    # What TensorFlow makes of it on reading every tensor.
    assert "IndexError: Read less bytes than requested" in checkpoint_files.problem(str(data).split(".data")[0])
    resumed = make_trainer(tmp_path / "broken", 15)
    assert resumed.restore() == 5
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("ckpt-10" in w and "Read less bytes" in w for w in warnings), warnings
    resumed.fit()
    assert int(resumed.step.numpy()) == 15
    for a, b in zip(clean.model.weights, resumed.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-6)
    assert checkpoint_files.problem(str(tmp_path / "broken" / "checkpoints" / "ckpt-10")) is None  # written again


def test_a_checkpoint_that_does_not_read_back_never_becomes_the_latest(tmp_path, monkeypatch):
    """A save whose files come out short (a full disk) fails before the folder's pointer moves to it."""
    trainer = make_trainer(tmp_path, 5)
    trainer.fit()
    verify = checkpoint_files.verify

    def written_short(path):
        data = path + ".data-00000-of-00001"
        os.truncate(data, os.path.getsize(data) // 2)
        verify(path)

    monkeypatch.setattr(checkpoint_files, "verify", written_short)
    trainer.config.train_steps = 10
    with pytest.raises(checkpoint_files.UnreadableCheckpoint, match="ckpt-10 is unreadable"):
        trainer.fit()
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-5")
    monkeypatch.undo()
    again = make_trainer(tmp_path, 10)
    assert again.restore() == 5


def test_every_broken_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    make_trainer(tmp_path, 5).fit()
    os.truncate(tmp_path / "checkpoints" / "ckpt-5.index", 10)
    with pytest.raises(checkpoint_files.UnreadableCheckpoint, match="no checkpoint of .* can be read: .*ckpt-5"):
        make_trainer(tmp_path, 10).restore()


def test_the_tools_read_the_newest_intact_checkpoint_of_best_and_latest(tmp_path, caplog):
    trainer = make_trainer(tmp_path, 10, eval_every=5)
    trainer.evaluate = lambda max_batches=0: {"loss": 10.0 - trainer.step.numpy(), "loss_per_step": 0.0}
    trainer.fit()
    folder = str(tmp_path)
    assert run_dir.checkpoint_path(folder, "best").endswith(os.path.join("best", "ckpt-10"))
    for name in ("checkpoints/ckpt-10", "best/ckpt-10"):
        data = tmp_path / f"{name}.data-00000-of-00001"
        os.truncate(data, os.path.getsize(data) // 2)
    assert run_dir.checkpoint_path(folder, "latest").endswith(os.path.join("checkpoints", "ckpt-5"))
    # best/ keeps one: broken, the newest intact checkpoint stands in for it
    assert run_dir.checkpoint_path(folder, "best").endswith(os.path.join("checkpoints", "ckpt-5"))
    assert any("best/ckpt-10" in r.getMessage() for r in caplog.records)
    with pytest.raises(checkpoint_files.UnreadableCheckpoint, match="ckpt-10 is unreadable"):
        run_dir.restore_weights(trainer.model, str(tmp_path / "checkpoints" / "ckpt-10"))


def test_a_run_stopped_after_the_last_batch_of_an_epoch_resumes_with_the_next_epoch(tmp_path):
    """An epoch here is 49 batches (4 streams of 1,000 symbols, 20-symbol segments and their targets); a run
    stopped at step 49 has trained all of epoch 0 but not yet moved on, so on resume skipping its 49 trained
    batches leaves nothing of epoch 0: that is no empty dataset."""
    make_trainer(tmp_path, 49).fit()
    resumed = make_trainer(tmp_path, 52)
    assert resumed.restore() == 49
    assert (int(resumed.epoch.numpy()), int(resumed.batch_in_epoch.numpy())) == (0, 49)
    resumed.fit()
    assert (int(resumed.step.numpy()), int(resumed.epoch.numpy()), int(resumed.batch_in_epoch.numpy())) == (52, 1, 3)


def test_a_resumed_run_takes_the_learning_rate_it_is_given(tmp_path):
    """The checkpoint holds Adam's learning rate; resuming with another one
    (lowering it for the rest of a run) must use the new one, not the saved one."""
    make_trainer(tmp_path, 10).fit()
    same = make_trainer(tmp_path, 12)
    assert same.restore() == 10
    assert float(same.optimizer.learning_rate) == pytest.approx(0.01)
    lowered = make_trainer(tmp_path, 12, learning_rate=0.002)
    moments = [v.numpy().copy() for v in same.optimizer.variables if "iteration" not in v.name]
    assert lowered.restore() == 10
    assert float(lowered.optimizer.learning_rate) == pytest.approx(0.002)
    restored = [v.numpy() for v in lowered.optimizer.variables if "iteration" not in v.name]
    assert len(moments) == len(restored)
    for saved, loaded in zip(moments, restored):
        if saved.shape:  # the moments come back; only the rate is replaced
            np.testing.assert_array_equal(saved, loaded)
    lowered.fit()
    assert float(lowered.optimizer.learning_rate) == pytest.approx(0.002)


def test_learning_rate_drops_equal_lowering_the_rate_by_resuming(tmp_path):
    """Drops at updates 5 and 10 in one run give the weights of a run stopped
    at 5, resumed at a lower rate to 10, then again; a constant-rate checkpoint
    resumes with drops (the optimizer's variables keep their layout). The
    stops fall where the text stream resets its state, as resuming needs."""
    drops = ((5, 0.004), (10, 0.001))
    scheduled = make_trainer(tmp_path / "scheduled", 15, learning_rate_drops=drops)
    scheduled.fit()
    make_trainer(tmp_path / "by_hand", 5).fit()
    lowered = make_trainer(tmp_path / "by_hand", 10, learning_rate=0.004)
    assert lowered.restore() == 5
    lowered.fit()
    resumed = make_trainer(tmp_path / "by_hand", 15, learning_rate_drops=drops)
    assert resumed.restore() == 10
    assert float(resumed.optimizer.learning_rate) == pytest.approx(0.001)
    resumed.fit()
    for a, b in zip(scheduled.model.weights, resumed.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    assert float(scheduled.optimizer.learning_rate) == pytest.approx(0.001)


def test_a_folder_locked_by_another_process_is_refused_until_that_process_ends(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import fcntl, sys, time\n"
            f"lock = open({str(tmp_path / run_dir.LOCK_FILE)!r}, 'a+')\n"
            "fcntl.flock(lock, fcntl.LOCK_EX); lock.write('4242'); lock.flush()\n"
            "print('locked', flush=True); time.sleep(120)\n"
        )],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        trainer = make_trainer(tmp_path, 5)
        with pytest.raises(run_dir.RunInUseError, match=r"another process \(pid 4242\)"):
            trainer.fit()
        assert not (tmp_path / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()
    trainer.fit()  # a killed holder leaves no stale lock
    assert int(trainer.step.numpy()) == 5
    with run_dir.training_lock(tmp_path):  # the process's own lock is re-entrant
        with run_dir.training_lock(tmp_path):
            pass


def test_training_time_is_saved_and_accumulates_across_resumes(tmp_path):
    first = make_trainer(tmp_path, 10)
    first.fit()
    spent = float(first.train_seconds.numpy())
    assert spent > 0
    second = make_trainer(tmp_path, 20)
    assert second.restore() == 10
    assert float(second.train_seconds.numpy()) == spent
    second.fit()
    assert float(second.train_seconds.numpy()) > spent
    assert second._progress_metrics()["train_hours"] == float(second.train_seconds.numpy()) / 3600


def test_a_checkpoint_from_before_the_training_clock_and_the_plateau_counters_resumes(tmp_path):
    trainer = make_trainer(tmp_path, 10)
    trainer.fit()
    newer = {"train_seconds", "validations_since_best", "plateau_cuts"}
    trackables = {k: v for k, v in trainer._trackables.items() if k not in newer}
    tf.train.Checkpoint(**trackables).save(str(tmp_path / "checkpoints" / "old"))
    with open(tmp_path / "checkpoints" / "checkpoint", "w") as f:
        f.write(f'model_checkpoint_path: "{tmp_path / "checkpoints" / "old-1"}"\n')
    resumed = make_trainer(tmp_path, 12)
    assert resumed.restore() == 10
    assert float(resumed.train_seconds.numpy()) == 0.0
    assert int(resumed.validations_since_best.numpy()) == 0 and int(resumed.plateau_cuts.numpy()) == 0
    resumed.fit()
    assert int(resumed.step.numpy()) == 12


def test_plateaus_halve_the_learning_rate_and_training_stops_when_converged(tmp_path, capsys):
    """Validation losses 5, 4, 4.5, 4.2 (two without a better one: halve),
    3.9 (best), 4.0, 4.1 (halve again), 4.0, 4.0 (four without: converged,
    at step 18 with the best at step 10). Running it again trains no more."""
    losses = iter([5.0, 4.0, 4.5, 4.2, 3.9, 4.0, 4.1, 4.0, 4.0])
    patience = dict(eval_every=2, plateau_patience=2, early_stopping_patience=4)
    trainer = make_trainer(tmp_path, 100, **patience)
    trainer.evaluate = lambda max_batches=0: {"loss": next(losses), "loss_per_step": 0.0}
    trainer.fit()
    assert int(trainer.step.numpy()) == 18
    assert trainer.converged and int(trainer.plateau_cuts.numpy()) == 2
    assert float(trainer.optimizer.learning_rate) == pytest.approx(0.01 / 4)
    assert tf.train.latest_checkpoint(tmp_path / "best").endswith("-10")
    assert tf.train.latest_checkpoint(tmp_path / "checkpoints").endswith("-18")
    assert "converged at step 18" in capsys.readouterr().out
    again = make_trainer(tmp_path, 100, **patience)
    assert again.restore() == 18
    assert float(again.optimizer.learning_rate) == pytest.approx(0.01 / 4)
    again.fit()
    assert int(again.step.numpy()) == 18


def test_plateau_and_early_stopping_need_validation(tmp_path):
    with pytest.raises(ValueError, match="need validation"):
        make_trainer(tmp_path, 10, early_stopping_patience=3)


def test_an_xla_compiled_update_trains_as_the_graph_does(tmp_path):
    graph = make_trainer(tmp_path / "graph", 8)
    graph.fit()
    compiled = make_trainer(tmp_path / "xla", 8, jit_compile=True)
    compiled.fit()
    for a, b in zip(graph.model.weights, compiled.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)


def test_non_finite_steps_are_skipped_then_rolled_back(tmp_path, caplog):
    trainer = make_trainer(tmp_path, 5)
    trainer.fit()  # a checkpoint at step 5
    good = [w.numpy().copy() for w in trainer.model.weights]
    batch = next(iter(stream_segments(periodic_stream(), BATCH, 20, 5)))
    batch = {k: v for k, v in batch.items() if k not in ("reset", "segment")}
    # A NaN in the weights makes the loss NaN: the update must not be applied.
    poisoned = trainer.model.head.bias
    poisoned.assign(tf.fill(poisoned.shape, np.nan))
    metrics, _, applied = trainer.train_step(batch)
    assert not applied and not np.isfinite(metrics["loss"])
    assert np.all(np.isnan(poisoned.numpy()))
    # Repeated failures inside fit() roll back to the last good checkpoint and go on.
    rolled_back_to = []
    roll_back = trainer._roll_back

    def recording_roll_back(bad_steps):
        roll_back(bad_steps)
        rolled_back_to.append(([w.numpy().copy() for w in trainer.model.weights], int(trainer.step.numpy())))

    trainer._roll_back = recording_roll_back
    trainer.config.train_steps = 8
    trainer.fit()
    assert int(trainer.step.numpy()) == 8
    assert len(rolled_back_to) == 1
    weights, step = rolled_back_to[0]
    assert step == 5
    for saved, restored in zip(good, weights):  # exactly the checkpoint's weights, the NaN bias gone
        np.testing.assert_array_equal(saved, restored)
    assert all(np.all(np.isfinite(w.numpy())) for w in trainer.model.weights)
    assert not all(np.array_equal(a, w.numpy()) for a, w in zip(good, trainer.model.weights))  # and trained on
    assert any("rolled back" in r.getMessage() for r in caplog.records)


def test_mirrored_strategy_trains(tmp_path):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    trainer = make_trainer(tmp_path, 3, strategy=strategy)
    trainer.fit()
    assert int(trainer.step.numpy()) == 3


@pytest.mark.parametrize("noise", [{"weight_noise": 0.075}, {"adaptive_weight_noise": True, "num_training_sequences": 100}])
def test_weight_noise_training_runs_and_leaves_clean_weights(tmp_path, noise):
    """The noise perturbs the weights only while a gradient is taken: at learning rate 0 the weights after
    training are exactly the ones before it (a perturbation left behind would show), and at a real rate they
    move and stay finite."""
    frozen = make_trainer(tmp_path / "frozen", 4, learning_rate=0.0, **noise)
    before = [w.numpy().copy() for w in frozen.model.weights]
    frozen.fit()
    assert int(frozen.step.numpy()) == 4
    for a, w in zip(before, frozen.model.weights):
        np.testing.assert_array_equal(a, w.numpy(), err_msg=w.path)
    trainer = make_trainer(tmp_path / "trained", 4, **noise)
    trainer.fit()
    assert all(np.all(np.isfinite(w.numpy())) for w in trainer.model.weights)
    assert not all(np.array_equal(a, w.numpy()) for a, w in zip(before, trainer.model.weights))


def first_batch():
    batch = next(iter(stream_segments(periodic_stream(), BATCH, 20, 5)))
    return {k: v for k, v in batch.items() if k not in ("reset", "segment")}


def test_the_update_differentiates_the_sum_of_the_sequence_losses_then_scales_by_one_over_b(tmp_path):
    """With plain SGD at rate 1 an update subtracts the gradient it applies: it must be (1/B) d(sum of the
    sequences' losses)/dw. With derivative clipping active that is not the gradient of the mean loss, whose
    per-sequence derivatives reach the clip B times smaller (section 2.1 clips each sequence's own)."""
    keras.utils.set_random_seed(2)
    model = TextPredictor(VOCAB, units=16, num_layers=1, lstm_clip=1e-3)
    trainer = training.Trainer(
        model, keras.optimizers.SGD(learning_rate=1.0),
        training.TrainConfig(model_dir=str(tmp_path), train_steps=1, eval_every=0, progress_bar=False),
        text_source(periodic_stream()),
    )
    batch = first_batch()

    def gradients(reduce):
        with tf.GradientTape() as tape:
            loss = reduce(model(batch))
        return [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]

    of_sum, of_mean = gradients(tf.reduce_sum), gradients(tf.reduce_mean)
    before = [v.numpy().copy() for v in model.trainable_variables]
    _, _, applied = trainer.train_step(batch)
    assert applied
    for w0, g, v in zip(before, of_sum, model.trainable_variables):
        np.testing.assert_allclose(v.numpy(), w0 - g / BATCH, rtol=1e-5, atol=1e-7, err_msg=v.path)
    assert not all(np.allclose(g / BATCH, m, rtol=1e-3, atol=1e-8) for g, m in zip(of_sum, of_mean))


def test_truncated_bptt_carries_the_state_between_segments_inside_the_trainer(tmp_path):
    """Trainer.fit on a stream: each segment starts from the previous one's final state, except where the
    stream resets it (every 5 segments here). A hand-written loop that carries the state gives the trainer's
    weights; one that starts every segment from zero does not."""
    steps = 8
    trainer = make_trainer(tmp_path, steps)
    initial = [w.numpy().copy() for w in trainer.model.weights]
    trainer.fit()
    model = TextPredictor(VOCAB, units=16, num_layers=2)
    model(first_batch())  # build

    def by_hand(carry):
        model.set_weights(initial)
        optimizer = keras.optimizers.Adam(0.01)
        state = None
        for batch in stream_segments(periodic_stream(), BATCH, 20, 5).take(steps):
            batch = dict(batch)
            reset = bool(np.any(batch.pop("reset").numpy()))  # the same in every row
            batch.pop("segment")
            if reset or not carry:
                state = None
            with tf.GradientTape() as tape:
                out = model.forward(batch, initial_state=state, training=True)
                loss = tf.reduce_sum(out["loss"])
            grads = [g / BATCH for g in tape.gradient(loss, model.trainable_variables)]
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            state = out["final_state"]
        return [w.numpy() for w in model.weights]

    for a, b in zip(by_hand(carry=True), trainer.model.weights):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-4, atol=1e-5)
    unconnected = by_hand(carry=False)
    assert max(float(np.max(np.abs(a - b.numpy()))) for a, b in zip(unconnected, trainer.model.weights)) > 1e-3


def test_graves_rmsprop_trains_a_handwriting_model(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(40, dtype=np.float32)
    points = np.stack([np.sin(t / 3), np.cos(t / 3), (t % 8 == 7)], -1).astype(np.float32)
    batch = {
        "inputs": np.repeat(np.concatenate([np.zeros((1, 3), np.float32), points[:-1]])[None], BATCH, 0),
        "targets": np.repeat(points[None], BATCH, 0) + rng.normal(0, 0.01, (BATCH, 40, 3)).astype(np.float32) * [1, 1, 0],
        "lengths": np.full((BATCH,), 40, np.int32),
    }
    data = training.DataSource(lambda epoch: tf.data.Dataset.from_tensors(batch).repeat(5), BATCH)
    model = HandwritingPredictor(units=16, num_layers=1, num_mixtures=2)
    trainer = training.Trainer(
        model, GravesRMSprop(learning_rate=1e-2),
        training.TrainConfig(model_dir=str(tmp_path), train_steps=40, eval_every=0, progress_bar=False),
        data,
    )
    first = float(np.mean(model(batch)))
    trainer.fit()
    assert float(np.mean(model(batch))) < first - 20.0


def test_init_from_starts_with_another_runs_weights(tmp_path):
    source = make_trainer(tmp_path / "source", 5)
    source.fit()
    target = make_trainer(tmp_path / "target", 5)
    assert not all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(source.model.weights, target.model.weights))
    path = target.init_from(str(tmp_path / "source"))
    assert path.endswith("-5")
    for a, b in zip(source.model.weights, target.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(target.step.numpy()) == 0  # only the weights come along
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        target.init_from(str(tmp_path / "empty"))


def test_init_from_reads_written_checkpoints_and_shipped_weight_files(tmp_path):
    from graves_tf import pretrained

    source = make_trainer(tmp_path / "source", 5)
    source.fit()
    written = tf.train.Checkpoint(model=source.model).write(str(tmp_path / "written" / "weights"))
    pretrained.save_weights(source.model, tmp_path / "weights.npz", dtype=np.float32)
    for path in (written, str(tmp_path / "weights.npz")):
        target = make_trainer(tmp_path / ("target_" + os.path.basename(path)), 5)
        assert target.init_from(path) == path
        for a, b in zip(source.model.weights, target.model.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
