r"""Training and sampling speed against baselines of the same sizes, measured in one run.

    python -m benchmarks.speed [--configs=iam_synthesis,iam_prediction_3x400,ptb_char]
                               [--timed_steps=2] [--sampling_steps=300] [--xla_rows]

For each configuration, the time of one training update (forward, backward,
Adam) on a random batch of the paper's shape (handwriting: 32 sequences x 700
steps, synthesis text 40 characters; text: 128 x 100), for:

* ``graves_tf``: the package's model, as ``graves_tf.train`` runs it;
* ``graves_tf, autodiff``: the same model with ``fused_backward=False``
  (automatic differentiation of the step-by-step graph): the straightforward
  path the optimisations are measured against;
* ``keras LSTM``: a stack of ``keras.layers.LSTM`` layers of the same sizes
  (no peepholes, no window, no clipping) with the same skip connections
  (the input feeds every layer, every layer feeds a dense output layer of
  the same width as the model's); for synthesis the input is 3 + 57 wide
  so that every matmul has the model's shape; text inputs are one-hot;
* ``torch LSTM``: the same stack of ``torch.nn.LSTM`` layers, if PyTorch is
  installed (``pip install torch==2.13.0``), else "skipped";
* synthesis only, with ``--backend_rows`` (the default): ``graves_tf, JAX (XLA)``
  (XLA on the CPU) and ``graves_tf, PyTorch``: the same model and batch trained by
  ``graves_tf.backends.Trainer`` (Adam) under ``KERAS_BACKEND=jax`` and
  ``torch``, each in a subprocess (``benchmarks.backend_speed``), "skipped"
  where the backend is not installed;
* with ``--xla_rows``: ``graves_tf, XLA``: the update compiled with XLA;
* ``graves_tf, bfloat16``: the default path with bfloat16 matmuls
  (``--precision=bfloat16``), only on CPUs with AVX512_BF16 or AMX.

Throughput is timesteps (sequence steps x batch) per second. GFLOP/s counts
the dense multiply-adds of the equations (2 FLOPs each; one-hot inputs
counted as dense, elementwise work not counted), forward and backward as 3x
the forward pass, the same count for every row of a configuration; "roof" is
that rate over a 4096^3 fp32 matmul's rate measured in the same run.

Above the tables, the machine: CPU model, cores, which of AVX2/FMA/AVX-512/
AVX512_BF16/AMX_BF16 ``/proc/cpuinfo`` lists, and TensorFlow's threads.
Then the sampling rows of ``benchmarks.sampling``. The last lines read
``synthesis_default_path: P``, the path ``graves_tf.train --train_path=auto``
takes (the fastest of the graves_tf paths timed: fused, autodiff, and XLA
with ``--xla_rows``; ``graves_tf.train_path.choose``), then
``synthesis_vs_builtin: R``, the synthesis update's time on that path over
the keras LSTM stack's, and ``synthesis_vs_torch: R``, over the torch
stack's, same run.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from benchmarks import backend_speed  # noqa: E402
from benchmarks import sampling as sampling_benchmark  # noqa: E402
from benchmarks.common import machine_line, synthetic_batch, time_call, time_model_train_step, time_train_step  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("configs", ["iam_synthesis", "iam_prediction_3x400", "ptb_char"], "Configs to time.")
flags.DEFINE_integer("timed_steps", 2, "Timed updates per row (after one warm-up update).")
flags.DEFINE_integer("handwriting_batch", 32, "Handwriting: sequences per batch.")
flags.DEFINE_integer("handwriting_length", 700, "Handwriting: steps per sequence.")
flags.DEFINE_integer("synthesis_text_length", 40, "Synthesis: characters per sequence.")
flags.DEFINE_integer("text_batch", 128, "Text: sequences per batch.")
flags.DEFINE_integer("text_length", 100, "Text: steps per sequence.")
flags.DEFINE_bool("xla_rows", False, "Also time the graves_tf update compiled with XLA.")
flags.DEFINE_bool("sampling_rows", True, "Also time sampling.")
flags.DEFINE_bool(
    "backend_rows", True, "Synthesis: also time the update under the JAX and PyTorch Keras backends (if installed)."
)


def forward_flops_per_step(model, text_length):
    """Dense FLOPs of one timestep of one sequence, forward (2 per multiply-add)."""
    stack = model.stack
    macs = 0
    for n in range(stack.num_layers):
        width = stack.input_dim + (stack.units if n else 0) + stack.conditioning_dim
        macs += (width + stack.units) * 4 * stack.units  # eqs. 7-10 (52-53)
    if stack.conditioning is not None:
        window = stack.conditioning
        macs += stack.units * 3 * window.num_gaussians  # eq. 48
        macs += text_length * window.alphabet_size  # eq. 47
    macs += stack.output_dim * output_width(model)  # eq. 3
    return 2 * macs


def output_width(model):
    return model.vocab_size if hasattr(model, "vocab_size") else model.head.output_dim


def keras_baseline(model, batch_size, num_steps):
    """``(loss_fn, variables)`` of a keras.layers.LSTM stack shaped like ``model``."""
    import keras
    import tensorflow as tf

    stack = model.stack
    width = stack.input_dim + stack.conditioning_dim
    inputs = keras.Input((num_steps, width))
    hidden = []
    for n in range(stack.num_layers):
        layer_input = inputs if n == 0 else keras.layers.Concatenate()([inputs, hidden[-1]])
        hidden.append(keras.layers.LSTM(stack.units, return_sequences=True)(layer_input))
    joined = hidden[0] if len(hidden) == 1 else keras.layers.Concatenate()(hidden)
    baseline = keras.Model(inputs, keras.layers.Dense(output_width(model))(joined))
    x = tf.random.normal((batch_size, num_steps, width))
    return (lambda: tf.reduce_mean(tf.square(baseline(x)))), baseline.trainable_variables


def torch_baseline_seconds(model, batch_size, num_steps, repeats):
    """Seconds per update of the same stack in torch.nn.LSTM, or None without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    stack = model.stack
    width = stack.input_dim + stack.conditioning_dim

    class Stack(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(
                torch.nn.LSTM(width + (stack.units if n else 0), stack.units) for n in range(stack.num_layers)
            )
            self.output = torch.nn.Linear(stack.output_dim, output_width(model))

        def forward(self, x):
            hidden = []
            for n, layer in enumerate(self.layers):
                h, _ = layer(x if n == 0 else torch.cat([x, hidden[-1]], -1))
                hidden.append(h)
            return self.output(torch.cat(hidden, -1))

    network = Stack()
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    x = torch.randn(num_steps, batch_size, width)

    def update():
        optimizer.zero_grad()
        loss = network(x).square().mean()
        loss.backward()
        optimizer.step()

    return time_call(update, repeats)


def matmul_gflops(size=4096, repeats=5):
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    matmul = tf.function(tf.matmul)
    seconds = time_call(lambda: matmul(a, b).numpy(), repeats)
    return 2 * size**3 / seconds / 1e9


def main(argv):
    del argv
    from absl import logging

    from graves_tf import experiment, machine, train_path

    logging.set_verbosity(logging.WARNING)

    roof = matmul_gflops()
    rows = []
    builtin_seconds = {}
    ours_seconds = {}
    default_path = {}
    torch_seconds = {}
    for config in FLAGS.configs:
        spec = experiment.spec_from_config(config)
        model = experiment.build_model(spec)
        is_text = hasattr(model, "vocab_size")
        batch_size = FLAGS.text_batch if is_text else FLAGS.handwriting_batch
        num_steps = FLAGS.text_length if is_text else FLAGS.handwriting_length
        batch = synthetic_batch(model, batch_size, num_steps, FLAGS.synthesis_text_length)
        flops = 3 * forward_flops_per_step(model, FLAGS.synthesis_text_length) * batch_size * num_steps
        path_seconds = {"fused": time_model_train_step(model, batch, FLAGS.timed_steps)}
        timings = [("graves_tf", path_seconds["fused"])]
        model.stack.fused_backward = False
        path_seconds["autodiff"] = time_model_train_step(model, batch, FLAGS.timed_steps)
        timings.append(("graves_tf, autodiff", path_seconds["autodiff"]))
        model.stack.fused_backward = True
        if FLAGS.xla_rows:
            path_seconds["xla"] = time_model_train_step(model, batch, FLAGS.timed_steps, jit_compile=True)
            timings.append(("graves_tf, XLA", path_seconds["xla"]))
        default_path[config] = train_path.choose(path_seconds)
        ours_seconds[config] = path_seconds[default_path[config]]
        if machine.has_bfloat16():
            model.matmul_precision = "bfloat16"
            timings.append(("graves_tf, bfloat16", time_model_train_step(model, batch, FLAGS.timed_steps)))
            model.matmul_precision = None
        loss_fn, variables = keras_baseline(model, batch_size, num_steps)
        builtin_seconds[config] = time_train_step(loss_fn, variables, FLAGS.timed_steps)
        timings.append(("keras LSTM", builtin_seconds[config]))
        torch_seconds[config] = torch_baseline_seconds(model, batch_size, num_steps, FLAGS.timed_steps)
        timings.append(("torch LSTM", torch_seconds[config]))
        if FLAGS.backend_rows and spec.model == "handwriting_synthesizer":
            for backend, name in backend_speed.BACKENDS.items():  # same batch, each in its own process
                timings.append((name, backend_speed.run_backend(backend, config, batch, FLAGS.timed_steps)))
        for name, seconds in timings:
            rows.append((config, f"{batch_size}x{num_steps}", name, seconds, batch_size * num_steps, flops))

    print(machine_line())
    print(f"matmul roof: {roof:.1f} GFLOP/s (4096^3 fp32, TensorFlow)")
    header = f"{'config':<22}{'batch':>8}  {'implementation':<22}{'step s':>8}{'steps/s':>10}{'GFLOP/s':>9}{'roof':>6}{'vs keras':>10}"
    print(header)
    print("-" * len(header))
    for config, shape, name, seconds, timesteps, flops in rows:
        if seconds is None:
            print(f"{config:<22}{shape:>8}  {name:<22}{'skipped (not installed)':>43}")
            continue
        gflops = flops / seconds / 1e9
        print(
            f"{config:<22}{shape:>8}  {name:<22}{seconds:>8.2f}{timesteps / seconds:>10.0f}{gflops:>9.1f}"
            f"{gflops / roof:>6.0%}{seconds / builtin_seconds[config]:>10.2f}"
        )
    if FLAGS.sampling_rows:
        print()
        sampling_benchmark.print_sampling_rows(
            sampling_benchmark.sampling_rows(FLAGS.sampling_steps, FLAGS.sampling_repeats)
        )
    if "iam_synthesis" in ours_seconds:
        ours = ours_seconds["iam_synthesis"]
        print(f"synthesis_default_path: {default_path['iam_synthesis']} (what --train_path=auto picks: the fastest "
              f"of the paths timed above{'' if FLAGS.xla_rows else '; xla not timed without --xla_rows'})")
        print(f"synthesis_vs_builtin: {ours / builtin_seconds['iam_synthesis']:.2f}")
        torch_time = torch_seconds["iam_synthesis"]
        print(f"synthesis_vs_torch: {'skipped (torch not installed)' if torch_time is None else f'{ours / torch_time:.2f}'}")


if __name__ == "__main__":
    app.run(main)
