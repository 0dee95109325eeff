"""Imports TensorFlow without its C++ start-up noise (unless ``--verbose`` or ``GRAVES_TF_VERBOSE=1``).

TensorFlow 2.21 logs a few lines through Abseil's C++ logging while its
libraries load and when it looks for a GPU: ``oneDNN custom operations are
on`` (port.cc), ``Could not find cuda drivers`` (cudart_stub.cc), ``failed
call to cuInit`` (cuda_platform.cc), each preceded by ``All log messages
before absl::InitializeLog() is called are written to STDERR``. They are
written to file descriptor 2 before Abseil's logging is initialised, so
``TF_CPP_MIN_LOG_LEVEL`` does not reach the INFO ones (3 hides the cuInit
error only) and no ``ABSL_``/``GLOG_`` variable is read. What works is to
point descriptor 2 at a temporary file while TensorFlow is imported and its
devices are listed (which is where the CUDA lines come from), then to copy
back every line that is not one of these: anything else TensorFlow or
Python says on import still reaches stderr.

Later, when a graph first runs, TensorFlow's oneDNN layer logs (at ERROR
level, so ``TF_CPP_MIN_LOG_LEVEL=2`` shows it) ``oneDNN supports DT_INT32
(or DT_BOOL, ...) only on platforms with AVX-512. Falling back to the default Eigen-based
implementation``, even on CPUs with AVX-512. For the command-line tools
(``python -m graves_tf.write``, ``graves_tf.train``, ``graves_tf.evaluate``,
``export``, their ``graves_tf.cli`` programs and ``graves-tf-*`` console scripts; :data:`TOOLS`) :func:`filter_stderr` therefore sends descriptor
2 through a ``grep -v`` child process for the rest of the run: every other
line passes unchanged, and a crash loses nothing (the child prints what the
pipe holds, then sees it close).
"""

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile

# One extended regular expression, for Python's re and for grep -E alike.
NOISE_PATTERN = "|".join([
    "All log messages before absl::InitializeLog",
    r"port\.cc:[0-9]+] oneDNN custom operations",
    r"cudart_stub\.cc:[0-9]+]",
    r"cuda_platform\.cc:[0-9]+] failed call to cuInit",
    r"cuda_diagnostics\.cc",
    r"cpu_feature_guard\.cc:[0-9]+]",
    "^To enable the following instructions: .*rebuild TensorFlow",
    "Unable to register cu(DNN|FFT|BLAS) factory",
    "TF-TRT Warning: Could not find TensorRT",
    r"util\.cc:[0-9]+] oneDNN supports DT_[A-Z0-9]+ only on platforms with AVX-512",
])
NOISE = re.compile(NOISE_PATTERN)
TOOLS = ("graves_tf.write", "graves_tf.train", "graves_tf.evaluate", "export", "graves_tf.export")
TOOLS += tuple(f"graves_tf.cli.{name}" for name in ("write", "train", "evaluate", "export"))
SCRIPTS = ("graves-tf-write", "graves-tf-train", "graves-tf-evaluate", "graves-tf-export")  # setup.py's console scripts


def verbose():
    asked = {"--verbose", "--verbose=true", "--verbose=True", "--verbose=1"} & set(sys.argv[1:])
    return bool(asked) or os.environ.get("GRAVES_TF_VERBOSE", "") not in ("", "0")


def running_tool():
    """Whether this process is ``python -m TOOL`` for one of :data:`TOOLS`, or one of the :data:`SCRIPTS`."""
    argv = getattr(sys, "orig_argv", [])
    if sys.argv and os.path.basename(sys.argv[0]) in SCRIPTS:
        return True
    return any(a == "-m" and b in TOOLS for a, b in zip(argv, argv[1:]))


def filter_stderr():
    """Sends descriptor 2 through ``grep -v NOISE`` for the rest of the process (no-op without grep)."""
    grep = shutil.which("grep")
    if grep is None:
        return
    try:
        sys.stderr.flush()
        original = os.dup(2)
        read, write = os.pipe()
    except (OSError, ValueError):
        return
    child = subprocess.Popen(
        [grep, "--line-buffered", "-v", "-E", NOISE_PATTERN], stdin=read, stdout=original, stderr=original,
        close_fds=True, start_new_session=True,  # Ctrl-C reaches the tool (which saves and reports), not grep
    )
    os.close(read)
    os.dup2(write, 2)
    os.close(write)

    def finish():  # at exit: close the pipe, let grep print what is left, then put descriptor 2 back
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(original, 2)
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
        os.close(original)

    atexit.register(finish)


def import_tensorflow():
    """``import tensorflow`` (and its device discovery) with the start-up lines above filtered from stderr;
    in a command-line tool (:func:`running_tool`) the filter then stays on (:func:`filter_stderr`)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or verbose():
        return
    if running_tool():
        filter_stderr()
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 to borrow (an embedded interpreter): import plainly
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe, while descriptor 2 is captured
        finally:
            try:
                sys.stderr.flush()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            capture.seek(0)
            kept = [
                line for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True)
                if not NOISE.search(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
