"""The checks tests/test_backends.py runs under one Keras backend, in a process of their own.

    KERAS_BACKEND=jax JAX_ENABLE_X64=1 python tests/backend_checks.py CASES.npz OUT_DIR

``CASES.npz`` (written by the TensorFlow side) holds, per case, the model's
weights, a batch and nothing computed; this script computes on its backend,
for each case: the per-sequence losses, the gradients of their sum with the
fused backward and with autodiff of the step (clipping on) and with both
clips off, ``forward`` and ``step`` outputs with their structure; then trains
the tiny text model on the pipeline's batches with Adam and with the paper's
RMSProp (losses before and after) and saves each run with
``graves_tf.backends.save_run``. Results go to ``OUT_DIR/results.npz`` and
the runs to ``OUT_DIR/run_<optimizer>``. Nothing here compares: the
TensorFlow side does.
"""

import json
import os
import sys
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

# Kept small and shared with the TensorFlow side, which builds the same models.
BATCH, STEPS, CHARS, VOCAB = 3, 9, 6, 11
# Clip limits low enough to bind on these tiny models (tests/test_backends.py
# checks that each changes the gradients).
CLIPS = {"text": (0.1, 0.5), "prediction": (0.5, 1.0), "synthesis": (0.5, 1.0)}
TRAIN_STEPS = 12
TRAIN_RATES = {"adam": 1e-2, "rmsprop_graves": 1e-3}


def build(name, dtype, clips):
    """The tiny model ``name`` with derivative clips ``(lstm_clip, output_clip)``."""
    from graves_tf.models import HandwritingPredictor, HandwritingSynthesizer, TextPredictor

    lstm_clip, output_clip = clips
    common = dict(units=8, num_layers=2, lstm_clip=lstm_clip, output_clip=output_clip, dtype=dtype)
    if name == "text":
        return TextPredictor(VOCAB, **common)
    if name == "prediction":
        return HandwritingPredictor(num_mixtures=3, **common)
    return HandwritingSynthesizer(alphabet_size=7, num_mixtures=3, num_window_gaussians=2, **common)


def make_batch(name, rng, dtype):
    lengths = np.array([9, 5, 7])
    if name == "text":
        targets = rng.integers(0, VOCAB, (BATCH, STEPS))
        inputs = np.concatenate([-np.ones((BATCH, 1), int), targets[:, :-1]], axis=1)
        batch = {"inputs": inputs, "targets": targets}
    else:
        # Large offsets against small sigmas: output derivatives far beyond the clips.
        targets = rng.normal(scale=3.0, size=(BATCH, STEPS, 3))
        targets[..., 2] = rng.integers(0, 2, (BATCH, STEPS))
        inputs = np.concatenate([np.zeros((BATCH, 1, 3)), targets[:, :-1]], axis=1)
        batch = {"inputs": inputs, "targets": targets}
        if name == "synthesis":
            batch["text"] = rng.integers(0, 7, (BATCH, CHARS))
            batch["text_lengths"] = np.array([6, 2, 4])
    batch["lengths"] = lengths
    return {k: v.astype(dtype if v.dtype.kind == "f" else "int32") for k, v in batch.items()}


def case_names():
    return [(name, dtype) for dtype in ("float32", "float64") for name in ("text", "prediction", "synthesis")]


def structure(tree):
    """The nesting of a result with each tensor's shape, as a string (the same on every backend)."""
    def canonical(x):  # dicts by sorted key (JAX returns them so), lists and tuples as they are
        if isinstance(x, dict):
            return {k: canonical(x[k]) for k in sorted(x)}
        if isinstance(x, (list, tuple)):
            return type(x)(canonical(v) for v in x)
        return tuple(int(d) for d in x.shape)

    return repr(canonical(tree))


def flat_numpy(tree):
    import keras
    from keras import ops

    return [ops.convert_to_numpy(x) for x in keras.tree.flatten(tree)]


def case_batch(cases, key):
    prefix = f"{key}/batch/"
    return {k[len(prefix):]: cases[k] for k in cases.files if k.startswith(prefix)}


def set_weights(model, cases, key):
    paths = [str(p) for p in cases[f"{key}/paths"]]
    assert [v.path for v in model.weights] == paths, ([v.path for v in model.weights], paths)
    for i, variable in enumerate(model.weights):
        variable.assign(cases[f"{key}/w{i}"])


def forward_and_gradients(model, batch):
    """``model.forward(batch)`` and the gradients of the summed per-sequence losses, by this backend's autodiff."""
    import keras
    from keras import ops

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def total(trainable):
            mapping = list(zip(model.trainable_variables, trainable))
            with keras.StatelessScope(state_mapping=mapping):
                out = model.forward(batch)
            return ops.sum(out["loss"]), out

        trainable = [v.value for v in model.trainable_variables]
        (_, out), grads = jax.jit(jax.value_and_grad(total, has_aux=True))(trainable)
        return out, [np.asarray(g) for g in grads]
    if backend == "torch":
        for v in model.trainable_variables:
            v.value.grad = None
        out = model.forward(batch)
        ops.sum(out["loss"]).backward()
        grads = [v.value.grad.detach().cpu().numpy() for v in model.trainable_variables]
        return out, grads
    import tensorflow as tf

    with tf.GradientTape() as tape:
        out = model.forward(batch)
        total = tf.reduce_sum(out["loss"])
    return out, [g.numpy() for g in tape.gradient(total, model.trainable_variables)]


def loss_and_gradients(model, batch):
    out, grads = forward_and_gradients(model, batch)
    from keras import ops

    return ops.convert_to_numpy(out["loss"]), grads


def compiled(fn):
    """``fn`` compiled where eager execution is slow (JAX runs op by op otherwise)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    return fn


def shapes_of(fn, *args):
    """What ``fn(*args)`` returns, as far as :func:`structure` reads it (JAX: traced, not compiled)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.eval_shape(fn, *args)
    return fn(*args)


def variants(dtype):
    """``(name, fused_backward, clipped)`` of the gradients computed for a case.

    The fused backward (every backend's default) in both dtypes; autodiff of
    the step and the unclipped gradients in float64, where the comparison is
    tightest (each variant compiles anew on JAX, which takes seconds).
    """
    if dtype == "float32":
        return [("fused1", True, True)]
    return [("fused1", True, True), ("fused0", False, True), ("unclipped", True, False)]


def model_checks(cases, results):
    import keras

    for name, dtype in case_names():
        key = f"{name}/{dtype}"
        batch = case_batch(cases, key)
        models = {}
        for clipped in (True, False):
            models[clipped] = build(name, dtype, CLIPS[name] if clipped else (None, None))
            set_weights(models[clipped], cases, key)
        for variant, fused, clipped in variants(dtype):
            model = models[clipped]
            model.stack.fused_backward = fused
            out, grads = forward_and_gradients(model, batch)
            results[f"{key}/{variant}/loss"] = flat_numpy(out["loss"])[0]
            for i, g in enumerate(grads):
                results[f"{key}/{variant}/g{i}"] = g
            if variant == "fused1":
                results[f"{key}/dtype"] = np.array(keras.backend.standardize_dtype(out["loss"].dtype))
                results[f"{key}/forward_structure"] = np.array(structure(out))
                for i, x in enumerate(flat_numpy(out)):
                    results[f"{key}/forward/{i}"] = x
        model = models[True]
        model.stack.fused_backward = True
        results[f"{key}/grad_paths"] = np.array([v.path for v in model.trainable_variables])
        results[f"{key}/call_structure"] = np.array(structure(shapes_of(model, batch)))

        def two_steps(batch):
            context = model.context(batch)
            state = model.initial_state(BATCH)
            weights = model.step_weights()
            for t in range(2):
                step_out = model.step(batch["inputs"][:, t], state, context, weights)
                state = step_out[1]
            return step_out

        results[f"{key}/step_structure"] = np.array(structure(shapes_of(two_steps, batch)))
        if dtype == "float32":  # values once: the step runs the same cell code as the sequence
            for i, x in enumerate(flat_numpy(compiled(two_steps)(batch))):
                results[f"{key}/step/{i}"] = x


def training_checks(cases, results, out_dir):
    """Trains the tiny text model on the pipeline's batches, with each optimizer, and saves the runs."""
    import keras

    from graves_tf import backends, experiment, optimizers

    spec = experiment.ModelSpec(**json.loads(str(cases["train/spec"])))
    bundle_config = json.loads(str(cases["train/bundle"]))
    batches = [case_batch(cases, f"train/{i}") for i in range(int(cases["train/num_batches"]))]
    for name, rate in TRAIN_RATES.items():
        keras.utils.set_random_seed(0)
        model = experiment.build_model(spec)
        set_weights(model, cases, "train")
        optimizer = optimizers.make_optimizer(name, rate, 0.9)
        trainer = backends.Trainer(model, optimizer)
        losses = [trainer.train_step(batches[i % len(batches)])["loss"] for i in range(TRAIN_STEPS)]
        model = trainer.synced_model()
        results[f"train/{name}/step_losses"] = np.array(losses)
        losses_of = compiled(lambda batch: model(batch))
        results[f"train/{name}/final_losses"] = np.array([float(np.sum(flat_numpy(losses_of(b))[0])) for b in batches])
        folder = os.path.join(out_dir, f"run_{name}")
        backends.save_run(trainer, folder, spec, _bundle(bundle_config))


def _bundle(config):
    """What ``run_dir.save_run_config`` reads of a data bundle."""
    vocabulary = types.SimpleNamespace(symbols=config["vocabulary"], end_of_line=config["end_of_line"])
    return types.SimpleNamespace(offset_mean=None, offset_std=None, vocabulary=vocabulary, sentences=config["sentences"])


def main(cases_path, out_dir):
    import keras

    cases = np.load(cases_path)
    results = {"backend": np.array(keras.backend.backend())}
    model_checks(cases, results)
    training_checks(cases, results, out_dir)
    np.savez(os.path.join(out_dir, "results.npz"), **results)
    print(f"{keras.backend.backend()}: done")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main(*sys.argv[1:])
