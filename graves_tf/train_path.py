"""Which way ``graves_tf.train`` computes an update: the fastest correct path for this machine.

Three paths compute the same loss and gradients (``tests/test_train_path.py``):

* ``fused``: the hand-written backward pass through time
  (:mod:`graves_tf.layers.lstm_sequence`, ``model.stack.fused_backward = True``);
* ``autodiff``: automatic differentiation of the step-by-step graph
  (``fused_backward = False``);
* ``xla``: the fused path with the whole update compiled by XLA (batches
  padded to a few fixed shapes, each compiled once).

Which is fastest depends on the CPU (AVX2 or AVX-512, its cores) and on its
load, so ``--train_path=auto`` (the default) measures it: :func:`probe` times
a few updates of each path on the run's own model at its batch size (a
random batch of :data:`PROBE_STEPS` steps), and :func:`choose` takes the
fastest. The result is cached per machine and model in
``~/.cache/graves_tf/train_path.json`` (``$XDG_CACHE_HOME/graves_tf``), keyed
by the CPU model, its flags, the thread counts, the TensorFlow version, the
model's spec, the batch size and the matmul precision, so the probe runs once.
Models under :data:`PROBE_MIN_WEIGHTS` weights are not probed (the probe
would cost more than it can save): they take ``fused``.
"""

import dataclasses
import datetime
import json
import os
import time

import numpy as np

from graves_tf import machine

PATHS = ("fused", "autodiff", "xla")
CHOICES = ("auto",) + PATHS
PROBE_STEPS = 200  # steps per sequence of the probe's batch: long enough that per-step costs dominate
PROBE_UPDATES = 2  # timed updates per path, after one untimed (tracing, XLA compilation)
PROBE_MIN_WEIGHTS = 100_000
CACHE_FILE = "train_path.json"


def resolve_request(train_path, jit_compile):
    """``--train_path`` with the older ``--jit_compile`` folded in (it means ``xla``); ValueError on a conflict."""
    if train_path not in CHOICES:
        raise ValueError(f"--train_path={train_path}: choose one of {', '.join(CHOICES)}")
    if jit_compile and train_path not in ("auto", "xla"):
        raise ValueError(f"--jit_compile means --train_path=xla; it contradicts --train_path={train_path}")
    return "xla" if jit_compile else train_path


def apply_path(model, path):
    """Sets the model for ``path``; returns whether the update is compiled with XLA."""
    if path not in PATHS:
        raise ValueError(f"unknown training path {path!r}; choose one of {', '.join(PATHS)}")
    model.stack.fused_backward = path != "autodiff"
    return path == "xla"


def synthetic_batch(model, batch_size, num_steps, text_length=40, seed=0):
    """A full (unpadded) random batch in the layout the input pipelines produce."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    if hasattr(model, "vocab_size"):
        ids = rng.integers(0, model.vocab_size, (batch_size, num_steps + 1)).astype("int32")
        return {"inputs": tf.constant(ids[:, :-1]), "targets": tf.constant(ids[:, 1:]), "mask": tf.ones((batch_size, num_steps))}
    offsets = rng.normal(size=(batch_size, num_steps, 2))
    end_of_stroke = rng.random((batch_size, num_steps, 1)) < 0.05
    targets = np.concatenate([offsets, end_of_stroke], -1).astype("float32")
    inputs = np.concatenate([np.zeros((batch_size, 1, 3), "float32"), targets[:, :-1]], 1)
    batch = {"inputs": tf.constant(inputs), "targets": tf.constant(targets), "mask": tf.ones((batch_size, num_steps))}
    if hasattr(model, "window"):
        batch["text"] = tf.constant(rng.integers(1, model.alphabet_size, (batch_size, text_length)).astype("int32"))
        batch["text_mask"] = tf.ones((batch_size, text_length))
    return batch


def gradient_function(model, path):
    """A ``tf.function`` of ``batch -> (loss sum, gradients)`` on ``path``, as the trainer computes them."""
    import tensorflow as tf

    jit_compile = apply_path(model, path)
    variables = model.trainable_variables

    # autograph=False: the layers have no Python control flow on tensors (their loops are tf.while_loop),
    # and AutoGraph's rewriting of their source would be most of the probe's tracing time.
    @tf.function(jit_compile=jit_compile or None, autograph=False)
    def loss_and_gradients(batch):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(batch, training=True))
        return loss, tape.gradient(loss, variables)

    return loss_and_gradients


def time_path(model, batch, path, updates=PROBE_UPDATES):
    """Seconds of one forward and backward pass of ``batch`` on ``path`` (after one untimed call)."""
    fused = model.stack.fused_backward
    try:
        run = gradient_function(model, path)
        _finish(run(batch))
        start = time.perf_counter()
        for _ in range(updates):
            _finish(run(batch))
        return (time.perf_counter() - start) / updates
    finally:
        model.stack.fused_backward = fused


def _finish(result):
    loss, grads = result
    float(loss)
    for g in grads:
        if g is not None:
            g.numpy()


def probe(model, batch, paths=PATHS, timer=time_path):
    """``{path: seconds per update}``; a path that fails (an XLA error, say) is recorded as None."""
    seconds = {}
    for path in paths:
        try:
            seconds[path] = timer(model, batch, path)
        except Exception as error:  # noqa: BLE001  (any failure rules the path out; the others still count)
            seconds[path] = None
            print(f"training path probe: {path} failed ({type(error).__name__}: {str(error).splitlines()[0][:200]})")
    return seconds


def choose(seconds):
    """The fastest path of ``{path: seconds}`` (None: failed); ties go to the earlier of :data:`PATHS`."""
    timed = [(s, PATHS.index(p), p) for p, s in seconds.items() if s is not None]
    if not timed:
        raise RuntimeError("every training path failed in the probe")
    return min(timed)[2]


def cache_file():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "graves_tf", CACHE_FILE)


def cache_key(spec, batch_size, precision=None):
    """What the probe's result depends on, as a string: the machine, TensorFlow, the model, the batch."""
    return json.dumps(
        {
            "machine": machine.fingerprint(),
            "spec": dataclasses.asdict(spec),
            "batch_size": int(batch_size),
            "precision": precision or "float32",
            "probe_steps": PROBE_STEPS,
        },
        sort_keys=True,
    )


def read_cache(path):
    try:
        with open(path) as f:
            entries = json.load(f)
        return entries if isinstance(entries, dict) else {}
    except (OSError, ValueError):
        return {}


def write_cache(path, key, entry):
    """Adds ``entry`` under ``key`` (atomically: a half-written file is never read)."""
    entries = read_cache(path)
    entries[key] = entry
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        json.dump(entries, f, indent=1, sort_keys=True)
    os.replace(temporary, path)


def _format(seconds):
    return ", ".join(f"{p} {'failed' if s is None else f'{s:.3f} s'}" for p, s in seconds.items())


def select(model, spec, batch_size, requested="auto", precision=None, timer=time_path, cache=None,
           min_weights=PROBE_MIN_WEIGHTS):
    """The path to train on and a line saying why: ``(path, reason)``.

    ``requested`` other than ``auto`` is taken as it is. Otherwise a cached
    probe of this machine and model decides, or a new probe (then cached);
    a model under ``min_weights`` weights takes ``fused`` unprobed.
    """
    from graves_tf.models import count_weights

    if requested != "auto":
        return requested, f"training path: {requested} (as asked)"
    weights = count_weights(model)
    if weights < min_weights:
        return "fused", f"training path: fused (a model of {weights:,} weights, under {min_weights:,}: not probed)"
    cache = cache or cache_file()
    key = cache_key(spec, batch_size, precision)
    entry = read_cache(cache).get(key)
    if entry and entry.get("path") in PATHS:
        return entry["path"], (
            f"training path: {entry['path']} (cached in {cache} from the probe of {entry.get('probed', '?')}: "
            f"{_format(entry.get('seconds', {}))} per update of {batch_size} x {PROBE_STEPS})"
        )
    text_length = 40
    batch = synthetic_batch(model, batch_size, PROBE_STEPS, text_length)
    started = time.perf_counter()
    seconds = probe(model, batch, timer=timer)
    path = choose(seconds)
    took = time.perf_counter() - started
    write_cache(cache, key, {
        "path": path, "seconds": seconds, "shape": [int(batch_size), PROBE_STEPS],
        "probed": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "probe_seconds": round(took, 1),
    })
    return path, (
        f"training path: {path} (probe of {took:.0f} s, {batch_size} x {PROBE_STEPS}: {_format(seconds)} per update; "
        f"cached in {cache})"
    )
