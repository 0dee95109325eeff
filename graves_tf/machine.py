"""The machine a command runs on: CPU model, cores, vector and matrix extensions, TensorFlow's threads.

Speed figures from different machines must never be mixed, so the
benchmarks print :func:`describe` above their tables, and the training path
probe (:mod:`graves_tf.train_path`) keys its cache on :func:`fingerprint`.
Everything is read from ``/proc/cpuinfo`` (Linux); elsewhere the CPU model is
``platform.processor()`` and no flags are known.
"""

import functools
import os
import platform

# The flags that decide which kernels pay: AVX2/FMA (the slower kind of machine of this project),
# AVX-512, bfloat16 dot products (AVX512_BF16) and the AMX tile unit's bfloat16 matmuls.
FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=None)
def _cpuinfo(path="/proc/cpuinfo"):
    """``(model name, set of flags)`` of the first processor listed, or ``(platform name, empty set)``."""
    model, flags = None, set()
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
                if model is not None and flags:
                    break
    except OSError:
        pass
    return model or platform.processor() or platform.machine() or "unknown CPU", frozenset(flags)


def cpu_model():
    return _cpuinfo()[0]


def cpu_flags():
    """The flags of :data:`FLAGS_OF_INTEREST` that ``/proc/cpuinfo`` lists, in that order."""
    flags = _cpuinfo()[1]
    return [name for name in FLAGS_OF_INTEREST if name in flags]


def core_count():
    """CPUs this process may run on (its affinity mask), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def has_bfloat16():
    """Whether the CPU does bfloat16 arithmetic (AVX512_BF16 dot products; AMX_BF16 tiles imply it)."""
    flags = _cpuinfo()[1]
    return "avx512_bf16" in flags or "amx_bf16" in flags


def tensorflow_threads():
    """``(intra-op, inter-op)`` thread settings of TensorFlow; 0 means its default (one per core it may use)."""
    import tensorflow as tf

    return (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )


def describe():
    """One line: ``machine: MODEL, N cores, flags avx2 avx512f ...; TensorFlow X threads intra-op, Y inter-op``."""
    intra, inter = (n or f"{core_count()} (default)" for n in tensorflow_threads())
    flags = " ".join(cpu_flags()) or "none of " + "/".join(FLAGS_OF_INTEREST)
    return (
        f"machine: {cpu_model()}, {core_count()} cores, flags {flags}; "
        f"TensorFlow threads {intra} intra-op, {inter} inter-op"
    )


def fingerprint():
    """What makes timings of one machine comparable: CPU model, flags, threads, TensorFlow version."""
    import tensorflow as tf

    intra, inter = tensorflow_threads()
    return {
        "cpu": cpu_model(),
        "flags": cpu_flags(),
        "cores": core_count(),
        "threads": [intra, inter],
        "tensorflow": tf.__version__,
    }


def check_bfloat16(what):
    """Raises ``ValueError`` with one line when the CPU has no bfloat16 arithmetic."""
    if not has_bfloat16():
        raise ValueError(
            f"{what}: bfloat16 needs a CPU with AVX512_BF16 or AMX_BF16, and /proc/cpuinfo lists neither "
            f"on this {cpu_model()} (flags: {' '.join(cpu_flags()) or 'none of interest'}); use float32"
        )
