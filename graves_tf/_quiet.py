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
"""

import os
import re
import sys
import tempfile

NOISE = re.compile(
    r"All log messages before absl::InitializeLog"
    r"|port\.cc:\d+\] oneDNN custom operations"
    r"|cudart_stub\.cc:\d+\]"
    r"|cuda_platform\.cc:\d+\] failed call to cuInit"
    r"|cuda_diagnostics\.cc"
    r"|cpu_feature_guard\.cc:\d+\]"
    r"|^To enable the following instructions: .*rebuild TensorFlow"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|TF-TRT Warning: Could not find TensorRT"
)


def verbose():
    return "--verbose" in sys.argv[1:] or os.environ.get("GRAVES_TF_VERBOSE", "") not in ("", "0")


def import_tensorflow():
    """``import tensorflow`` (and its device discovery) with the start-up lines above filtered from stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or verbose():
        return
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
