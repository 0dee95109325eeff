r"""What the cold start of ``python -m graves_tf.write "Hello world" -o hello.svg`` is made of.

    python -m benchmarks.cold_start [--text="Hello world"] [--repeats=3]

Each repeat runs, in a new Python process, the stages ``graves_tf.write``
goes through, timing each: the interpreter's start, ``import tensorflow``
(with its device discovery), Keras and graves_tf's layers, the rest of the
imports (``graves_tf.write`` and what it needs, absl flags), building the model,
loading the shipped weights, reading write's default style (the priming
strokes), tracing the compiled sampler (its first call, less a second
identical call), sampling (the second call), and drawing the SVG, all with
write's default settings. Then it times the command itself, ``python -m graves_tf.write TEXT -o
FILE``, end to end, in a new process as a user runs it. The table shows the
median of the repeats in seconds and as a share of the sum; the last line
reads ``write_cold_seconds: S``, the command's median wall time. The first
repeat also warms the operating system's file cache; a machine with other
work on its cores gives longer times.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("text", "Hello world", "What to write.")
flags.DEFINE_integer("repeats", 3, "New processes per measurement.")

STAGES = ("interpreter", "import tensorflow", "import keras, graves_tf", "other imports", "build model",
          "load weights", "load style", "trace sampler", "sample", "draw")

# Run in a new process: prints one JSON line of stage -> seconds.
_DRIVER = textwrap.dedent("""
    import json, os, sys, time
    started = float(sys.argv[1])
    times = {"interpreter": time.time() - started}
    t = time.perf_counter()
    import tensorflow as tf
    tf.config.list_physical_devices()
    times["import tensorflow"] = time.perf_counter() - t
    t = time.perf_counter()
    import graves_tf
    times["import keras, graves_tf"] = time.perf_counter() - t
    t = time.perf_counter()
    from absl import flags
    from graves_tf import drawing, experiment, pretrained, write
    from graves_tf.cli import write as write_program  # write's flags, with their defaults
    flags.FLAGS(["write"])
    times["other imports"] = time.perf_counter() - t
    t = time.perf_counter()
    config = pretrained.load_config()
    model = experiment.build_model(experiment.ModelSpec(**config["spec"]))
    times["build model"] = time.perf_counter() - t
    t = time.perf_counter()
    pretrained.load_weights(model, pretrained.weights_path())
    times["load weights"] = time.perf_counter() - t
    F = flags.FLAGS  # write's defaults: its bias, width, seed and default style, as the command uses them
    t = time.perf_counter()
    style = getattr(write, "DEFAULT_STYLE", None)
    prime, prime_text = write.style_prime(style, config) if style else (None, None)
    times["load style"] = time.perf_counter() - t
    lines = write.wrap(sys.argv[2], F.width)
    args = (model, config, lines, F.bias, F.seed, prime, prime_text, F.steps_per_character)
    t = time.perf_counter()
    written = write.write_lines(*args)
    first = time.perf_counter() - t
    t = time.perf_counter()
    written = write.write_lines(*args)
    times["sample"] = time.perf_counter() - t
    times["trace sampler"] = max(first - times["sample"], 0.0)
    t = time.perf_counter()
    extra = {"stroke_width": F.stroke_width} if "stroke_width" in F else {}
    drawing.save_lines(written, os.path.join(sys.argv[3], "hello.svg"), **extra)
    times["draw"] = time.perf_counter() - t
    print(json.dumps(times))
""")


def run_stages(folder):
    result = subprocess.run(
        [sys.executable, "-c", _DRIVER, repr(time.time()), FLAGS.text, folder],
        capture_output=True, text=True, timeout=900,
    )
    if result.returncode:
        raise RuntimeError(f"the stage driver failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_command(folder):
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "graves_tf.write", FLAGS.text, "-o", os.path.join(folder, "cli.svg")],
        capture_output=True, text=True, timeout=900,
    )
    seconds = time.perf_counter() - start
    if result.returncode:
        raise RuntimeError(f"graves_tf.write failed:\n{result.stderr[-3000:]}")
    return seconds


def main(argv):
    del argv
    from graves_tf import machine

    print(machine.describe())
    with tempfile.TemporaryDirectory() as folder:
        stages = [run_stages(folder) for _ in range(FLAGS.repeats)]
        command = [run_command(folder) for _ in range(FLAGS.repeats)]
    medians = {name: statistics.median(s[name] for s in stages) for name in STAGES}
    total = sum(medians.values())
    print(f"{'stage':<26}{'seconds':>9}{'share':>8}")
    for name in STAGES:
        print(f"{name:<26}{medians[name]:>9.2f}{medians[name] / total:>8.0%}")
    print(f"{'sum of stages':<26}{total:>9.2f}")
    print(f"write_cold_seconds: {statistics.median(command):.2f}")


if __name__ == "__main__":
    app.run(main)
