"""Training on several devices and several machines: the same updates as on one device.

Two logical CPU devices stand in for two accelerators (tests/two_devices.py,
run in a subprocess because they must be set before TensorFlow starts), and
two worker processes on 127.0.0.1 for two machines.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def two_device_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("two_devices") / "results.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "two_devices.py"), str(out)],
        capture_output=True, text=True, timeout=900, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("model", ["text", "prediction", "synthesis"])
@pytest.mark.parametrize("noise", ["none", "weight_noise"])
def test_two_replicas_make_the_updates_of_one_device(two_device_results, model, noise):
    """Text is truncated BPTT over a stream (its state carried across segments and reset on schedule);
    the handwriting batches are padded to different lengths; weight noise is seeded."""
    case = two_device_results[f"{model}/{noise}"]
    assert case["max_change"] > 1000 * TOLERANCE, case  # the weights did move
    assert case["max_difference"] < TOLERANCE, case
    if noise != "none":
        assert case["noise_effect"] > 100 * TOLERANCE, case  # the noise did change the training


def test_a_global_batch_two_replicas_share_unevenly_makes_the_updates_of_one_device(two_device_results):
    """3 rows on 2 replicas (2 and 1): the gradient is still the sum over the batch / 3."""
    case = two_device_results["prediction/uneven_batch"]
    assert case["max_change"] > 1000 * TOLERANCE and case["max_difference"] < TOLERANCE, case


def test_adaptive_weight_noise_counts_its_complexity_once_on_two_replicas(two_device_results):
    case = two_device_results["prediction/adaptive_weight_noise"]
    assert case["max_change"] > 1000 * TOLERANCE and case["noise_effect"] > 100 * TOLERANCE, case
    assert case["max_difference"] < TOLERANCE, case  # model weights and log sigmas


def test_the_logged_gradient_norm_is_the_norm_of_the_applied_gradient(two_device_results):
    """One SGD update at learning rate 1 on two replicas: the weights move by exactly the applied gradient."""
    case = two_device_results["gradient_norm"]
    assert case["applied"]
    assert case["logged"] == pytest.approx(case["applied_norm"], rel=1e-5), case


# -- every pipeline's batches, cut into replica rows -----------------------------------------------

def pipeline_batches():
    """One global batch (5 rows) of each training pipeline: handwriting lines with their texts (also padded
    to the fixed shapes of --jit_compile and --strategy=tpu), sentences, and a text stream's segment."""
    import numpy as np
    import tensorflow as tf

    from graves_tf import alphabet
    from graves_tf.data import Vocabulary, handwriting_batches, sentence_batches, stream_segments
    from graves_tf.data.text import pad_to_stable_shapes

    rng = np.random.default_rng(0)
    lines = [
        np.concatenate([rng.normal(0, 1, (n, 2)), rng.integers(0, 2, (n, 1))], 1).astype(np.float32)
        for n in (9, 5, 7, 12, 6)
    ]
    texts = ["ab", "c d", "efg", "hi", "j"]
    strokes = tf.data.Dataset.from_generator(
        lambda: ({"strokes": s, "text": t} for s, t in zip(lines, texts)),
        output_signature={"strokes": tf.TensorSpec((None, 3), tf.float32), "text": tf.TensorSpec((), tf.string)},
    )
    handwriting = handwriting_batches(strokes, 5, [0, 0], [1, 1], alphabet.PAPER, bucket_boundaries=None)
    vocabulary = Vocabulary(["<eos>", "<unk>", "the", "cat"], end_of_line="<eos>", unknown="<unk>")
    sentences = tf.data.Dataset.from_tensor_slices(["the cat", "cat", "the dog the", "the", "cat cat"])
    return {
        "handwriting": handwriting,
        "handwriting_padded": pad_to_stable_shapes(handwriting, (16,)),
        "sentences": sentence_batches(sentences, vocabulary, "word", 5),
        "stream": stream_segments(np.arange(200) % 4, 5, 6, reset_every=2).skip(1),
    }


@pytest.mark.parametrize("replicas, workers", [(2, 1), (3, 1), (4, 2), (6, 2)])
def test_every_pipeline_gives_each_replica_its_rows(replicas, workers):
    """Each worker's input pipeline yields its replicas' slices in order: all together, every key of the
    global batch (a stream's reset and segment too), rows [r n, (r + 1) n) for replica r, n = ceil(B / R)."""
    import numpy as np

    from graves_tf import training

    for name, dataset in pipeline_batches().items():
        whole = {key: value.numpy() for key, value in next(iter(dataset)).items()}
        assert all(value.shape[0] == 5 for value in whole.values()), (name, {k: v.shape for k, v in whole.items()})
        slices = [
            piece
            for worker in range(workers)
            for piece in training.split_for_replicas(dataset.take(1), replicas, worker, workers)
        ]
        assert len(slices) == replicas, name
        rows = -(-5 // replicas)
        for key, value in whole.items():
            for r, piece in enumerate(slices):
                np.testing.assert_array_equal(
                    piece[key].numpy(), value[r * rows:(r + 1) * rows], err_msg=f"{name} {key} replica {r}"
                )
            np.testing.assert_array_equal(np.concatenate([piece[key].numpy() for piece in slices]), value)


@pytest.mark.parametrize("strategy, jit_compile, padded", [("tpu", False, True), ("default", False, False),
                                                           ("mirrored", False, False), ("default", True, True)])
def test_strategy_tpu_pads_the_training_batches_as_jit_compile_does(strategy, jit_compile, padded):
    """A TPU compiles every update with XLA: its training batches get --jit_compile's fixed shapes (the time
    axis to a bucket boundary, the text to a multiple of 16); other strategies keep the batches as they are."""
    from absl import flags
    from absl.testing import flagsaver

    from graves_tf.data import datasets
    from graves_tf.cli import train

    handwriting = pipeline_batches()["handwriting"]
    bundle = datasets.DataBundle("handwriting", lambda epoch: handwriting, None, 5, bucket_boundaries=(16,))
    parsed = flags.FLAGS.is_parsed()
    if not parsed:
        flags.FLAGS(["test"])
    try:
        with flagsaver.flagsaver(strategy=strategy, jit_compile=jit_compile):
            batch = next(iter(train.training_batches(bundle)(0)))
    finally:
        if not parsed:
            flags.FLAGS.unparse_flags()
    original = next(iter(handwriting))
    assert original["inputs"].shape[1] == 12 and original["text"].shape[1] == 3
    expected = (16, 16) if padded else (12, 3)
    assert (batch["inputs"].shape[1], batch["text"].shape[1]) == expected, (strategy, jit_compile)


def test_a_batch_without_a_batch_axis_is_refused_in_one_line():
    import tensorflow as tf

    from graves_tf import training

    dataset = tf.data.Dataset.from_tensors({"inputs": tf.zeros((4, 3)), "reset": tf.constant(True)})
    with pytest.raises(ValueError, match="batch key 'reset' is a scalar"):
        training.split_for_replicas(dataset, 2)


# -- two worker processes on 127.0.0.1 -------------------------------------------------------------

# The test trains with plain SGD: two replicas sum a batch's gradient in another order than one
# device (round-off ~1e-7), which Adam at 3e-3 amplifies to ~5e-5 in 30 updates of tiny_synthesis
# (measured: the same for a run straight to 30 as for one resumed at 20); SGD keeps it ~1e-7.
CLUSTER_FLAGS = [
    "--checkpoint_every=10", "--eval_every=10", "--eval_batches=1", "--batch_size=4",
    "--optimizer=sgd", "--learning_rate=1e-3", "--momentum=0", "--noprogress_bar",
]
RUN_FOLDER = {"model_config.json", ".training.lock", "checkpoints", "best", "train", "validation"}


def free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def train_command(data_dir, model_dir, steps, *extra):
    return [
        sys.executable, "-m", "graves_tf.train", f"--flagfile={REPO / 'graves_tf' / 'configs' / 'tiny_synthesis.cfg'}",
        f"--data_dir={data_dir}", f"--model_dir={model_dir}", f"--train_steps={steps}", *CLUSTER_FLAGS, *extra,
    ]


def start_cluster(data_dir, model_dir, steps, temp_dirs, *extra):
    """Two workers (worker 0 the chief) of one MultiWorkerMirroredStrategy run, each with its own TMPDIR."""
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(2):
        env = dict(os.environ, TMPDIR=str(temp_dirs[index]), CUDA_VISIBLE_DEVICES="",
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(
            train_command(data_dir, model_dir, steps, "--strategy=multi_worker", *extra),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        ))
    return processes


def finish(processes, timeout):
    """(returncode, output) of each process; kills any still running after ``timeout`` seconds in all."""
    import time

    deadline = time.monotonic() + timeout
    results = []
    try:
        for process in processes:
            output, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append((process.returncode, output))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def event_file_pids(folder):
    """The process ids in a folder's TensorBoard event file names (events.out.tfevents.TIME.HOST.PID.N.v2)."""
    return [int(name.split(".")[-3]) for name in os.listdir(folder) if name.startswith("events.out.tfevents")]


@pytest.fixture(scope="module")
def iam_dummy(tmp_path_factory):
    from graves_tf.data import datasets

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    datasets.prepare_builder("iam_ondb", data_dir, str(REPO / "tfds_builders" / "iam_ondb" / "dummy_data"))
    return data_dir


def model_weights(model_dir, checkpoint):
    from graves_tf import run_dir

    model, _ = run_dir.load_run(str(model_dir), str(model_dir / "checkpoints" / checkpoint))
    return [w.numpy() for w in model.weights]


@pytest.mark.slow
def test_two_workers_train_resume_and_write_one_run_folder(iam_dummy, tmp_path):
    """tiny_synthesis on two worker processes (TF_CONFIG, --strategy=multi_worker): 20 updates, stop, resume
    both to 30. Only the chief writes the run folder; the weights are a one-process run's with the same
    global batch. Twice, in fresh folders, to catch a race between the workers."""
    import numpy as np

    single = tmp_path / "single"
    result = subprocess.run(train_command(iam_dummy, single, 30), capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = model_weights(single, "ckpt-30")
    for attempt in range(2):
        run = tmp_path / f"cluster{attempt}"
        temp_dirs = [tmp_path / f"tmp{attempt}_{i}" for i in range(2)]
        for folder in temp_dirs:
            folder.mkdir()
        chief_pids = []
        for steps in (20, 30):
            processes = start_cluster(iam_dummy, run, steps, temp_dirs)
            chief_pids.append(processes[0].pid)
            results = finish(processes, timeout=600)
            for index, (code, output) in enumerate(results):
                assert code == 0, f"worker {index} of the run to {steps}:\n{output[-4000:]}"
                assert "Traceback" not in output, output[-4000:]
                if steps == 30:
                    assert "resumed from step 20" in output, output[-4000:]
            assert set(os.listdir(run)) == RUN_FOLDER, os.listdir(run)
        # One set of checkpoints, the chief's: no second copy, no temporary part files.
        assert sorted(os.listdir(run / "checkpoints")) == ["checkpoint"] + [
            f"ckpt-{step}.{suffix}" for step in (10, 20, 30) for suffix in ("data-00000-of-00001", "index")
        ]
        assert sorted(os.listdir(run / "best")) == ["checkpoint", "ckpt-30.data-00000-of-00001", "ckpt-30.index"]
        # One event file per folder and run of the chief, none from the other worker.
        for folder in ("train", "validation"):
            assert sorted(event_file_pids(run / folder)) == sorted(chief_pids), (folder, os.listdir(run / folder))
        # The other worker's checkpoint copies went to its own temporary folder and were deleted.
        assert os.listdir(temp_dirs[1]) == []
        got = model_weights(run, "ckpt-30")
        difference = max(float(np.max(np.abs(a - b))) for a, b in zip(got, expected))
        moved = max(float(np.max(np.abs(a - b))) for a, b in zip(got, model_weights(run, "ckpt-10")))
        assert moved > 1000 * TOLERANCE
        assert difference < TOLERANCE, (attempt, difference)


# -- a run folder on another file system ---------------------------------------------------------

def test_training_resumes_in_a_ram_folder():
    """Every run-folder file goes through tf.io.gfile: a ram:// folder (as gs://) trains, resumes and loads."""
    import keras
    import numpy as np
    import tensorflow as tf

    from graves_tf import experiment, run_dir, training
    from graves_tf.data import stream_segments

    spec = experiment.ModelSpec(model="text_predictor", dataset="ptb_char", vocab_size=50, units=8, num_layers=1)
    ids = np.random.default_rng(0).integers(0, 50, 300)
    folder = "ram://graves_tf_test/run"

    def trainer(steps):
        keras.utils.set_random_seed(1)
        model = experiment.build_model(spec)
        config = training.TrainConfig(model_dir=folder, train_steps=steps, checkpoint_every=3, eval_every=3,
                                      log_every=1, progress_bar=False)
        return training.Trainer(
            model, keras.optimizers.Adam(0.01), config,
            training.DataSource(lambda epoch: stream_segments(ids, 2, 10, 3), 2),
            validation_data=lambda: stream_segments(ids[:100], 2, 10, 3),
        )

    run_dir.save_run_config(folder, spec)
    first = trainer(4)
    assert first.restore() is None
    first.fit()
    second = trainer(7)
    assert second.restore() == 4
    second.fit()
    assert int(second.step.numpy()) == 7
    names = tf.io.gfile.listdir(f"{folder}/checkpoints")
    assert "ckpt-7.index" in names and "ckpt-4.index" in names, names
    assert tf.io.gfile.listdir(f"{folder}/train") and tf.io.gfile.listdir(f"{folder}/best")
    model, config = run_dir.load_run(folder, "latest")
    assert config["checkpoint"].endswith("ckpt-7")
    for a, b in zip(model.weights, second.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.slow
def test_a_lost_worker_is_reported_in_one_line(iam_dummy, tmp_path):
    """The non-chief is killed after the first checkpoint: the chief exits non-zero, naming what to do."""
    import time

    run = tmp_path / "run"
    temp_dirs = [tmp_path / "tmp0", tmp_path / "tmp1"]
    for folder in temp_dirs:
        folder.mkdir()
    processes = start_cluster(iam_dummy, run, 100000, temp_dirs, "--eval_every=0")
    try:
        deadline = time.monotonic() + 400
        while not (run / "checkpoints" / "ckpt-10.index").exists():
            assert time.monotonic() < deadline and all(p.poll() is None for p in processes)
            time.sleep(0.5)
        processes[1].kill()
        (code, output), _ = finish(processes, timeout=180)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert code != 0, output[-3000:]
    assert "lost a worker of the multi-worker run after step" in output, output[-3000:]
    assert "start every worker again with the same command" in output and "ckpt-" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]


@pytest.mark.slow
def test_sigterm_to_one_worker_stops_both_at_the_same_update(iam_dummy, tmp_path):
    """SIGTERM to the non-chief: both workers save the same update (the chief's copy) and exit 0."""
    import signal
    import time

    run = tmp_path / "run"
    temp_dirs = [tmp_path / "tmp0", tmp_path / "tmp1"]
    for folder in temp_dirs:
        folder.mkdir()
    processes = start_cluster(iam_dummy, run, 100000, temp_dirs, "--eval_every=0")
    try:
        deadline = time.monotonic() + 400
        while not (run / "checkpoints" / "ckpt-10.index").exists():
            assert time.monotonic() < deadline and all(p.poll() is None for p in processes)
            time.sleep(0.5)
        processes[1].send_signal(signal.SIGTERM)
    finally:
        results = finish(processes, timeout=180)
    (chief_code, chief), (other_code, other) = results
    assert chief_code == 0 and other_code == 0, chief[-3000:] + other[-3000:]
    assert "stopped by signal 15 at step" in other, other[-3000:]
    step = int(other.split("stopped by signal 15 at step ")[1].split(";")[0])
    assert f"stopped with another worker at step {step}; saved" in chief, chief[-3000:]
    assert (run / "checkpoints" / f"ckpt-{step}.index").exists()
    assert os.listdir(temp_dirs[1]) == []
