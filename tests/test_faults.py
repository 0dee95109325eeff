"""Faults and bad input at the command line: each gets one clear line and a non-zero exit, or a recovery.

The table in docs/faults.md lists every case with the test that holds it.
Each test runs the real command in a subprocess.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from graves_tf import experiment
from run_folders import make_handwriting_run

REPO = pathlib.Path(__file__).resolve().parents[1]
DUMMY_PTB = REPO / "tfds_builders" / "ptb" / "dummy_data" / "manual"
DUMMY_IAM = REPO / "tfds_builders" / "iam_ondb" / "dummy_data"
SPEC = experiment.ModelSpec(
    model="handwriting_synthesizer", dataset="iam_ondb", num_layers=2, units=16, num_mixtures=3,
    num_window_gaussians=2,
)


def run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=300)


def refused(result, message):
    """A non-zero exit whose stderr holds ``message`` and no traceback."""
    assert result.returncode != 0, result.stdout[-2000:]
    assert message in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


def data_args(tmp_path):
    return [f"--data_dir={tmp_path / 'tfds'}", f"--manual_dir={DUMMY_PTB}", "--batch_size=2", "--segment_length=5"]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A tiny text run trained 4 updates on the PTB builder's dummy data, checkpoints at 2 and 4."""
    folder = tmp_path_factory.mktemp("faults")
    result = run(
        "graves_tf.train", f"--flagfile={experiment.config_path('tiny_text')}", f"--model_dir={folder / 'run'}",
        *data_args(folder), "--eval_every=0", "--noprogress_bar", "--train_steps=4", "--checkpoint_every=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def copy_with_truncated_latest(text_run, tmp_path):
    run_folder = tmp_path / "run"
    shutil.copytree(text_run / "run", run_folder)
    data = run_folder / "checkpoints" / "ckpt-4.data-00000-of-00001"
    os.truncate(data, os.path.getsize(data) // 2)
    return run_folder


def test_evaluate_reads_the_runs_configuration_without_a_flagfile(text_run):
    result = run("graves_tf.evaluate", f"--model_dir={text_run / 'run'}", *data_args(text_run),
                 "--split=train", "--checkpoint=latest")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bits per symbol" in result.stdout and "ckpt-4" in result.stdout


def test_evaluate_refuses_a_model_flag_that_contradicts_the_run(text_run):
    result = run("graves_tf.evaluate", f"--model_dir={text_run / 'run'}", *data_args(text_run), "--units=48")
    refused(result, "these flags contradict it: --units=48 (the run's: 32)")


def test_evaluate_honours_precision_or_refuses_it(text_run, tmp_path):
    """--precision=bfloat16 was once parsed and ignored by evaluate: it now multiplies in bfloat16 (a loss
    near float32's, not equal) or, on a CPU without bfloat16, is refused in one line."""
    from graves_tf import machine

    losses = {}
    for precision in ("float32", "bfloat16"):
        output = tmp_path / f"{precision}.json"
        result = run("graves_tf.evaluate", f"--model_dir={text_run / 'run'}", *data_args(text_run), "--split=train",
                     f"--precision={precision}", f"--output_json={output}")
        if precision == "bfloat16" and not machine.has_bfloat16():
            refused(result, "--precision=bfloat16: bfloat16 needs a CPU with AVX512_BF16 or AMX_BF16")
            return
        assert result.returncode == 0, result.stderr[-3000:]
        metrics = json.loads(output.read_text())
        assert metrics["precision"] == precision
        losses[precision] = metrics["bits_per_symbol"]
    assert losses["bfloat16"] != losses["float32"]
    assert losses["bfloat16"] == pytest.approx(losses["float32"], rel=1e-2)


def test_evaluate_latest_skips_a_truncated_newest_checkpoint(text_run, tmp_path):
    run_folder = copy_with_truncated_latest(text_run, tmp_path)
    result = run("graves_tf.evaluate", f"--model_dir={run_folder}", *data_args(text_run),
                 "--split=train", "--checkpoint=latest")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"skipping checkpoint {run_folder / 'checkpoints' / 'ckpt-4'}" in result.stderr, result.stderr[-3000:]
    assert "ckpt-2" in result.stdout and "ckpt-4" not in result.stdout


def test_train_resumes_from_the_checkpoint_before_a_truncated_newest_one(text_run, tmp_path):
    run_folder = copy_with_truncated_latest(text_run, tmp_path)
    result = run(
        "graves_tf.train", f"--flagfile={experiment.config_path('tiny_text')}", f"--model_dir={run_folder}",
        *data_args(text_run), "--eval_every=0", "--noprogress_bar", "--train_steps=5",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from step 2" in result.stdout
    assert "skipping checkpoint" in result.stderr and "ckpt-4" in result.stderr


def test_train_refuses_to_resume_a_run_with_another_configuration(text_run):
    result = run(
        "graves_tf.train", f"--flagfile={experiment.config_path('tiny_text')}", f"--model_dir={text_run / 'run'}",
        *data_args(text_run), "--eval_every=0", "--noprogress_bar", "--train_steps=6", "--units=48",
    )
    refused(result, "holds a run of another configuration (its model_config.json); these flags differ: --units=48 (the run's: 32)")


def test_strategy_tpu_without_a_tpu_is_one_line(tmp_path):
    result = run(
        "graves_tf.train", f"--flagfile={experiment.config_path('tiny_text')}", f"--model_dir={tmp_path / 'run'}",
        *data_args(tmp_path), "--train_steps=1", "--strategy=tpu",
    )
    refused(result, "--strategy=tpu: cannot start it")
    assert "no TPU was found" in result.stderr


def test_a_truncated_strokes_archive_is_named_with_what_to_do(tmp_path):
    manual = tmp_path / "manual"
    shutil.copytree(DUMMY_IAM, manual)
    archive = manual / "lineStrokes-all.tar.gz"
    os.truncate(archive, os.path.getsize(archive) // 2)
    result = run(
        "graves_tf.train", f"--flagfile={experiment.config_path('tiny_synthesis')}", f"--model_dir={tmp_path / 'run'}",
        f"--data_dir={tmp_path / 'tfds'}", f"--manual_dir={manual}", "--train_steps=1",
    )
    refused(result, f"{archive} is cut short or damaged")
    assert "download lineStrokes-all.tar.gz again" in result.stderr


# -- write ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return make_handwriting_run(tmp_path_factory.mktemp("run"), SPEC, [8.0, 0.1], [40.0, 37.0], seed=0)


SETTINGS = [
    (["--bias=nan"], "--bias must be a finite number >= 0"),
    (["--bias=-1"], "--bias must be a finite number >= 0"),
    (["--steps_per_character=0"], "--steps_per_character must be at least 1"),
    (["--width=0"], "--width must be at least 1 character"),
    (["-o", "out.pdf"], "-o/--output must end in .svg or .png, got 'out.pdf'"),
]


@pytest.mark.parametrize("args, message", SETTINGS)
def test_write_refuses_settings_before_it_loads_a_model(args, message, tmp_path):
    """Refused even with a --model_dir that does not exist: before the model is read, so before any sampling."""
    result = run("graves_tf.write", "Hello", f"--model_dir={tmp_path / 'nowhere'}", *args)
    refused(result, message)
    assert not os.path.exists("out.pdf")


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(bias=float("inf")), "--bias must be a finite number >= 0"),
        (dict(bias=-0.01), "--bias must be a finite number >= 0"),
        (dict(width=-4), "--width must be at least 1 character"),
        (dict(steps_per_character=-1), "--steps_per_character must be at least 1"),
        (dict(output="page.SVG.txt"), "must end in .svg or .png"),
        (dict(output="no/such/folder/x.svg"), "the folder no/such/folder does not exist"),
    ],
)
def test_write_settings_checks(settings, message):
    from graves_tf import write

    good = dict(bias=0.5, width=50, steps_per_character=40, output="page.png")
    write.check_settings(**good)  # passes
    with pytest.raises(write.WriteError, match=message.replace("(", r"\(").replace(")", r"\)")):
        write.check_settings(**{**good, **settings})


PRIMES = {  # each run through the command
    "infinity.json": ("[[[0, 0], [Infinity, 1]]]", "stroke 1 has points that are not finite numbers"),
    "nan.json": ('{"strokes": [[[0, 0], [1, 2]], [[NaN, 0], [3, 3]]]}', "stroke 2 has points that are not finite numbers"),
    "malformed.json": ("[[[0, 0], [1, 1]", "not valid JSON"),
    "foo.json": ('{"foo": 1}', 'expected a list of strokes or {"strokes": [...]}, got an object with keys [\'foo\']'),
    "xyz.json": ("[[[0, 0, 0], [1, 1, 1], [2, 2, 2]]]", "stroke 1 is not a list of [x, y] points (each point 2 numbers"),
    "nan.npy": (np.full((5, 3), np.nan), "15 of its 15 values are not finite numbers"),
}
MORE_PRIMES = {  # each read by write.load_prime_strokes
    "number.json": ("42", "expected a list of strokes"),
    "words.json": ('[["a", "b"]]', "stroke 1 is not a list of [x, y] points of numbers"),
    "empty.json": ("[[], []]", "no strokes"),
    "eos.npy": (np.array([[0, 0, 0], [1, 1, 0.5]]), "the third column, end of stroke, must be 0 or 1"),
    "flat.npy": (np.zeros(6), "expected an array of shape"),
    "inf.npy": (np.array([[0, 0, 0], [np.inf, 1, 0]]), "1 of its 6 values are not finite numbers"),
}


def save_prime(path, content):
    if path.suffix == ".npy":
        np.save(path, content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize("name", sorted(PRIMES))
def test_write_refuses_a_bad_prime_trace_by_name(name, tiny_run, tmp_path):
    content, message = PRIMES[name]
    path = save_prime(tmp_path / name, content)
    output = tmp_path / "x.svg"
    result = run("graves_tf.write", "Hello", f"--model_dir={tiny_run}", f"--prime_strokes={path}",
                 "--prime_text=hi", f"-o={output}")
    refused(result, f"{path}: {message}")
    assert not output.exists()


def test_write_refuses_a_model_flag_that_contradicts_the_run(tiny_run, tmp_path):
    result = run("graves_tf.write", "Hello", f"--model_dir={tiny_run}", "--units=400", f"-o={tmp_path / 'x.svg'}")
    refused(result, "these flags contradict it: --units=400 (the run's: 16)")


def test_write_with_every_checkpoint_broken_says_so(tmp_path):
    folder = pathlib.Path(make_handwriting_run(tmp_path / "run", SPEC, [8.0, 0.1], [40.0, 37.0]))
    (data,) = (folder / "checkpoints").glob("*.data-*")
    os.truncate(data, os.path.getsize(data) // 2)
    result = run("graves_tf.write", "Hello", f"--model_dir={folder}", f"-o={tmp_path / 'x.svg'}")
    refused(result, "can be read")
    assert "Read less bytes than requested" in result.stderr and "copy them again" in result.stderr


def test_write_help_lists_the_shared_flags():
    result = run("graves_tf.write", "--help")
    text = result.stdout + result.stderr
    for flag in ("-o,--output", "--seed", "--model_dir", "--checkpoint", "--bias", "--prime_strokes"):
        assert flag in text, flag


@pytest.mark.parametrize("name", sorted(MORE_PRIMES))
def test_more_bad_prime_traces_are_refused_by_name(name, tmp_path):
    from graves_tf import write

    content, message = MORE_PRIMES[name]
    path = save_prime(tmp_path / name, content)
    with pytest.raises(write.WriteError, match=f"{path}: {message}".replace("(", r"\(").replace("[", r"\[")):
        write.load_prime_strokes(str(path), [40.0, 37.0])


def test_the_prime_checks_pass_a_good_trace(tmp_path):
    """Only what is broken is refused: an empty stroke is skipped, an integer .npy of 0/1 pen lifts passes."""
    from graves_tf import write

    path = save_prime(tmp_path / "me.json", json.dumps([[[0, 0], [5, 8], [10, 3]], [], [[30, 0], [30, 10]]]))
    offsets = write.load_prime_strokes(str(path), [40.0, 37.0])
    np.testing.assert_array_equal(offsets[:, 2], [0, 0, 1, 0, 1])
    assert np.all(np.isfinite(offsets))
    path = save_prime(tmp_path / "me.npy", np.array([[0, 0, 0], [3, 4, 1]], np.int64))
    np.testing.assert_array_equal(write.load_prime_strokes(str(path), [40.0, 37.0]), [[0, 0, 0], [3, 4, 1]])


def test_export_refuses_a_model_flag_that_contradicts_the_run(tiny_run, tmp_path):
    result = run("export", f"--model_dir={tiny_run}", f"--output={tmp_path / 'saved'}", "--num_mixtures=20")
    refused(result, "these flags contradict it: --num_mixtures=20 (the run's: 3)")
    assert not (tmp_path / "saved").exists()


# -- a training run killed while it writes a checkpoint ------------------------

TRAIN = "graves_tf.train"
# Runs the training command in this process with the pointer-moving step of a save held back: once the files
# of checkpoint argv[1] are written, it writes argv[2] and sleeps, so the test can SIGKILL it right there.
STALL_BEFORE_THE_POINTER = r"""
import os, runpy, sys, time
from graves_tf import checkpoint_files
stall_at, marker = sys.argv[1], sys.argv[2]
commit_check = checkpoint_files._commit_check
def stalled(path):
    if os.path.basename(path) == stall_at:
        with open(marker, "w") as f:
            f.write(path)
        time.sleep(600)
    commit_check(path)
checkpoint_files._commit_check = stalled
sys.argv = ["train"] + sys.argv[3:]
runpy.run_module("%s", run_name="__main__", alter_sys=True)
""" % TRAIN


def train_args(folder, run_folder, train_steps, checkpoint_every):
    return [f"--flagfile={experiment.config_path('tiny_text')}", f"--model_dir={run_folder}", *data_args(folder),
            "--eval_every=0", "--noprogress_bar", f"--train_steps={train_steps}", f"--checkpoint_every={checkpoint_every}"]


def pointer(folder):
    """The checkpoint a folder's ``checkpoint`` file names as the latest (None: no pointer yet)."""
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(str(folder))
    return state.model_checkpoint_path if state else None


def model_tensors(path):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(path))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if k.startswith("model/")}


def wait_for(condition, process, log, seconds=240):
    import time

    deadline = time.time() + seconds
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"training ended (exit {process.returncode}) before the test could kill it: "
                        + log.read_text()[-3000:])
        if time.time() > deadline:
            process.kill()
            pytest.fail("training never reached the point to kill it at: " + log.read_text()[-3000:])
        time.sleep(0.001)


def test_a_run_killed_after_writing_a_checkpoint_before_its_pointer_moves_resumes_as_if_never_written(tmp_path):
    """SIGKILL between the files of ckpt-4 and the pointer naming them: the pointer still names ckpt-2, the
    rerun resumes from it, and its final weights equal those of a run that never had ckpt-4's files (1e-6)."""
    import signal

    from graves_tf import checkpoint_files

    run_folder, marker, log = tmp_path / "run", tmp_path / "stalled", tmp_path / "log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", STALL_BEFORE_THE_POINTER, "ckpt-4", str(marker), *train_args(tmp_path, run_folder, 6, 2)],
            stdout=out, stderr=subprocess.STDOUT,
        )
        wait_for(marker.exists, process, log)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    checkpoints = run_folder / "checkpoints"
    assert pointer(checkpoints) == str(checkpoints / "ckpt-2")  # never on the unverified ckpt-4
    assert (checkpoints / "ckpt-4.index").exists()  # its files were written
    assert checkpoint_files.newest_intact(str(checkpoints)) == str(checkpoints / "ckpt-2")
    # The reference: the same folder without any trace of ckpt-4.
    reference = tmp_path / "reference"
    shutil.copytree(run_folder, reference)
    for leftover in (reference / "checkpoints").glob("ckpt-4*"):
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    for folder in (run_folder, reference):
        result = run(TRAIN, *train_args(tmp_path, folder, 6, 2))
        assert result.returncode == 0, result.stderr[-3000:]
        assert "resumed from step 2" in result.stdout
        assert pointer(folder / "checkpoints") == str(folder / "checkpoints" / "ckpt-6")
    resumed, clean = model_tensors(checkpoints / "ckpt-6"), model_tensors(reference / "checkpoints" / "ckpt-6")
    assert resumed.keys() == clean.keys() and resumed
    for key in clean:
        np.testing.assert_allclose(resumed[key], clean[key], rtol=0, atol=1e-6, err_msg=key)
    assert checkpoint_files.problem(str(checkpoints / "ckpt-4")) is None  # written again, whole


def unlisted_files(folder, latest):
    """Files a save left that the pointer does not name: TensorFlow's ``*_temp`` folder, or a newer ``ckpt-N``."""
    step = int(latest.rsplit("-", 1)[1])
    found = []
    for name in os.listdir(folder):
        if "_temp" in name:
            found.append(name)
        elif name.startswith("ckpt-") and int(name.split(".")[0].split("-")[1].split("_")[0]) > step:
            found.append(name)
    return found


def test_sigkill_while_checkpoints_are_written_never_leaves_the_pointer_on_a_partial_file(tmp_path):
    """A run saving every update is killed four times: twice the moment TensorFlow's temporary checkpoint
    folder appears (mid-write), twice at a random moment. After each kill the pointer names a checkpoint
    that reads back whole, and the rerun resumes from it; at least one kill caught a save half done."""
    import random
    import signal

    from graves_tf import checkpoint_files

    rng = random.Random(0)
    run_folder, log = tmp_path / "run", tmp_path / "log"
    checkpoints = run_folder / "checkpoints"
    caught_mid_save, steps = [], []
    for attempt in range(4):
        before = pointer(checkpoints)
        stale = set(os.listdir(checkpoints)) if checkpoints.exists() else set()  # an earlier kill's leftovers
        with open(log, "w") as out:
            process = subprocess.Popen([sys.executable, "-m", TRAIN, *train_args(tmp_path, run_folder, 10**6, 1)],
                                       stdout=out, stderr=subprocess.STDOUT)
            wait_for(lambda: pointer(checkpoints) not in (None, before), process, log)  # it has saved once
            if attempt % 2 == 0:
                wait_for(lambda: any("_temp" in n for n in set(os.listdir(checkpoints)) - stale), process, log)
            else:
                import time

                time.sleep(rng.uniform(0, 0.5))
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        latest = pointer(checkpoints)
        assert checkpoint_files.problem(latest) is None, (attempt, latest, checkpoint_files.problem(latest))
        assert checkpoint_files.newest_intact(str(checkpoints)) == latest
        left = sorted(set(unlisted_files(checkpoints, latest)) - stale)  # by this kill
        if left:
            caught_mid_save.append((attempt, left))
        if "resumed from step" in log.read_text():
            assert f"resumed from step {steps[-1]}" in log.read_text()
        steps.append(checkpoint_files_step(latest))
    print("kills that landed inside a save:", caught_mid_save)
    assert caught_mid_save, "no kill landed inside a save; the test did not test it"
    assert steps == sorted(steps) and steps[-1] > steps[0]
    result = run(TRAIN, *train_args(tmp_path, run_folder, steps[-1] + 2, 1))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resumed from step {steps[-1]}" in result.stdout
    assert pointer(checkpoints) == str(checkpoints / f"ckpt-{steps[-1] + 2}")
    assert checkpoint_files.problem(pointer(checkpoints)) is None


def checkpoint_files_step(path):
    from graves_tf import run_dir

    return run_dir.checkpoint_step(path)


# -- a partial enwik8.zip ------------------------------------------------------


def hutter_builder_module():
    import importlib

    from graves_tf.data import datasets

    package = datasets.import_builder("enwik8")
    return importlib.import_module(package.__name__ + ".hutter_dataset_builder")


def enwik8_zip(path, damage):
    """A zip of the builder's dummy enwik8 prefix, cut in half (``"cut"``) or with a byte of its data flipped."""
    import zipfile

    data = (REPO / "tfds_builders" / "hutter" / "dummy_data" / "manual" / "enwik8.prefix").read_bytes()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("enwik8", data)
    raw = bytearray(path.read_bytes())
    if damage == "cut":
        raw = raw[: len(raw) // 2]
    else:
        raw[60] ^= 0xFF  # inside the compressed member, past its local header
    path.write_bytes(bytes(raw))
    return path


def test_a_truncated_enwik8_zip_is_named_with_what_to_do(tmp_path):
    """Was: a zip without its central directory was read as raw bytes (hutter/prefix built from the
    compressed bytes; paper/standard said to use prefix)."""
    manual = tmp_path / "manual"
    manual.mkdir()
    archive = enwik8_zip(manual / "enwik8.zip", "cut")
    result = run(
        TRAIN, f"--flagfile={experiment.config_path('tiny_text')}", "--dataset=enwik8", "--hutter_config=prefix",
        f"--model_dir={tmp_path / 'run'}", f"--data_dir={tmp_path / 'tfds'}",
        f"--manual_dir={manual}", "--train_steps=1",
    )
    refused(result, f"{archive} is cut short or damaged (no zip central directory at its end)")
    assert "download enwik8.zip again from http://mattmahoney.net/dc/enwik8.zip" in result.stderr


def test_a_damaged_enwik8_zip_member_is_named(tmp_path):
    module = hutter_builder_module()
    archive = enwik8_zip(tmp_path / "enwik8.zip", "flip")
    source = module.find_local_source(module.epath.Path(tmp_path))
    assert source.member == "enwik8"
    with pytest.raises(module.CorruptArchive, match=f"{archive} is cut short or damaged"):
        module.scan(source)


def test_a_kept_checkpoint_copy_cut_short_leaves_no_short_kept_checkpoint(tmp_path, monkeypatch):
    """``--keep_every`` copies a checkpoint into kept/ (average_checkpoints reads kept/ckpt-N first): a copy that
    dies half way (a full disk, a kill) leaves only a ``.partial`` file, never a short kept/ckpt-N."""
    import tensorflow as tf
    from training_helpers import make_trainer

    from graves_tf import run_dir

    copy = tf.io.gfile.copy

    def dies_half_way(source, target, overwrite=False):
        if ".data-" in source and "ckpt-4" in source:
            with open(source, "rb") as f, open(target, "wb") as out:
                out.write(f.read()[: os.path.getsize(source) // 2])
            raise OSError("No space left on device")
        return copy(source, target, overwrite=overwrite)

    monkeypatch.setattr(tf.io.gfile, "copy", dies_half_way)
    with pytest.raises(OSError, match="No space left"):
        make_trainer(tmp_path, 8, keep_every=4, checkpoint_every=4).fit()
    kept = tmp_path / run_dir.KEPT_FOLDER
    assert sorted(os.listdir(kept)) == ["ckpt-4.data-00000-of-00001.partial"]
    monkeypatch.undo()
    again = make_trainer(tmp_path, 8, keep_every=4, checkpoint_every=4)
    assert again.restore() == 4  # its rolling copy is whole
    again.fit()
    assert sorted(n for n in os.listdir(kept) if not n.endswith(".partial")) == [
        "ckpt-8.data-00000-of-00001", "ckpt-8.index"]


# -- every tool that takes a run folder reads its configuration ---------------


@pytest.mark.parametrize(
    "module, args",
    [
        ("graves_tf.average_checkpoints", ["--checkpoints=ckpt-1,ckpt-2"]),
        ("graves_tf.pretrained.release", ["--styles=neat=a01-000u-01:neat", "--release_dir={tmp}/release"]),
        ("graves_tf.gallery", ["--output_dir={tmp}/gallery"]),
        ("graves_tf.serve", ["--port=0"]),
        ("benchmarks.legibility", ["--num_sentences=1"]),
        ("benchmarks.choose_styles", ["--num_candidates=1"]),
    ],
)
def test_every_tool_given_a_run_refuses_a_model_flag_that_contradicts_it(module, args, tiny_run, tmp_path):
    """Each reads the run's model_config.json (experiment.spec_of_run); --units=400 against the run's 16 is
    one line naming both, before anything is written (was: a shape mismatch, or a model built to the flags)."""
    if module == "graves_tf.serve":
        pytest.importorskip("starlette")
        pytest.importorskip("uvicorn")
    args = [a.format(tmp=tmp_path) for a in args]
    result = subprocess.run([sys.executable, "-m", module, f"--model_dir={tiny_run}", "--units=400", *args],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    refused(result, f"{tiny_run} was trained with another configuration (its model_config.json); "
                    "these flags contradict it: --units=400 (the run's: 16)")
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize(
    "module, args",
    [
        ("graves_tf.pretrained.release", ["--styles=neat=a01-000u-01:neat"]),
        ("graves_tf.gallery", ["--output_dir={tmp}/gallery"]),
        ("benchmarks.legibility", []),
    ],
)
def test_a_folder_that_is_not_a_run_is_one_line(module, args, tmp_path):
    """(was: a traceback ending in FileNotFoundError)"""
    args = [a.format(tmp=tmp_path) for a in args]
    result = subprocess.run([sys.executable, "-m", module, f"--model_dir={tmp_path / 'nowhere'}", *args],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    refused(result, "is not a graves_tf training run")


# -- train's numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--batch_size=0", "--batch_size must be at least 1, got 0"),  # was: ZeroDivisionError
        ("--train_steps=-5", "--train_steps must be at least 1, got -5"),  # was: exit 0, nothing trained
        ("--checkpoint_every=0", "--checkpoint_every must be at least 1, got 0"),
        ("--segment_length=-1", "--segment_length must be 0 or more, got -1"),
        ("--learning_rate=nan", "--learning_rate must be a finite number >= 0 (0: frozen weights), got nan"),
        ("--learning_rate=-1", "--learning_rate must be a finite number >= 0 (0: frozen weights), got -1.0"),
        ("--momentum=1.5", "--momentum must be in [0, 1), got 1.5"),
        ("--weight_noise=-0.1", "--weight_noise must be a finite number >= 0"),
    ],
)
def test_train_refuses_bad_numbers_before_reading_data(flag, message, tmp_path):
    """Refused with a --manual_dir that does not exist: before any data is read."""
    result = run(TRAIN, f"--flagfile={experiment.config_path('tiny_text')}", f"--model_dir={tmp_path / 'run'}",
                 f"--data_dir={tmp_path / 'tfds'}", f"--manual_dir={tmp_path / 'nowhere'}", flag)
    refused(result, f"bad configuration: {message}")
    assert not (tmp_path / "run").exists()


def test_train_data_too_short_for_the_batch_is_one_line(tmp_path):
    """The dummy Penn Treebank in 8 streams of 50-character segments (was: a ValueError traceback)."""
    result = run(TRAIN, f"--flagfile={experiment.config_path('tiny_text')}", f"--model_dir={tmp_path / 'run'}",
                 f"--data_dir={tmp_path / 'tfds'}", f"--manual_dir={DUMMY_PTB}", "--train_steps=2", "--eval_every=0",
                 "--noprogress_bar")
    refused(result, "cannot train on this data: a stream of")
    assert "is too short for 8 streams of segments of 50" in result.stderr


def test_train_into_a_file_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("")
    result = run(TRAIN, f"--flagfile={experiment.config_path('tiny_text')}", f"--model_dir={tmp_path / 'afile'}",
                 *data_args(tmp_path), "--train_steps=2")
    refused(result, f"--model_dir {tmp_path / 'afile'} is a file, not a folder")  # was: FileExistsError


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--max_batches=-1", "--max_batches must be 0 (all) or more, got -1"),  # was: ZeroDivisionError
        ("--eval_batch_size=0", "--eval_batch_size must be at least 1, got 0"),
        ("--dynamic_learning_rate=nan", "--dynamic_learning_rate must be a finite number >= 0, got nan"),
    ],
)
def test_evaluate_refuses_bad_numbers(flag, message, tmp_path):
    result = run("graves_tf.evaluate", f"--model_dir={tmp_path / 'nowhere'}", flag)
    refused(result, message)
