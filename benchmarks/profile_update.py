r"""Where the time of one training update goes: TensorFlow's profiler, summed by op type.

    python -m benchmarks.profile_update [--config=iam_synthesis] [--path=fused|autodiff]
                                        [--batch_size=32] [--num_steps=700] [--updates=2]

Runs one untimed update (forward, backward, Adam, as ``benchmarks.speed`` times
it) of the config's model on a random batch of the paper's shape, then
``--updates`` more under ``tf.profiler.experimental``, and prints the self-time
of the TensorFlow ops by op type (threads' idle time, the profiler's "IDLE"
row, left out and printed apart) (the profiler's ``framework_op_stats``) as a
share of all op time, largest first, and the same time in groups: dense
products (MatMul and its batched forms), elementwise maths, data movement
(concatenation, slicing, transposes, gathers, TensorList reads and writes
inside the loops over time), loop control (While, Enter/Exit, condition ops)
and the rest. The machine line comes first. The shares say what to make
faster; seconds from a machine with other work on it are not comparable.
"""

import collections
import glob
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from benchmarks.common import machine_line, synthetic_batch  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("config", "iam_synthesis", "Config of the model to profile.")
flags.DEFINE_enum("path", "fused", ["fused", "autodiff"], "fused: the hand-written backward; autodiff: tf.GradientTape of the steps.")
flags.DEFINE_integer("batch_size", 32, "Sequences per batch.")
flags.DEFINE_integer("num_steps", 700, "Steps per sequence.")
flags.DEFINE_integer("text_length", 40, "Synthesis: characters per sequence.")
flags.DEFINE_integer("updates", 2, "Profiled updates (after one untimed one).")
flags.DEFINE_integer("top", 15, "Op types to list.")

GROUPS = (
    ("dense products", ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "_MklMatMul", "_MklBatchMatMulV2",
                        "_FusedMatMul", "_MklFusedMatMul", "Einsum")),
    ("data movement", ("ConcatV2", "Concat", "Slice", "StridedSlice", "StridedSliceGrad", "Transpose", "GatherV2",
                       "Pack", "Unpack", "Reshape", "Split", "SplitV", "Tile", "Pad", "TensorListGetItem",
                       "TensorListSetItem", "TensorListStack", "TensorListFromTensor", "TensorListReserve",
                       "TensorListPushBack", "TensorListPopBack", "ZerosLike", "Fill", "Identity", "BroadcastTo",
                       "TensorListElementShape", "TensorListLength", "Cast", "Squeeze", "ExpandDims", "OnesLike",
                       "Reverse", "ReverseV2", "Shape", "Range")),
    ("loop control", ("While", "StatelessWhile", "Enter", "Exit", "Merge", "Switch", "NextIteration", "LoopCond",
                      "Less", "LogicalAnd", "If", "StatelessIf", "PartitionedCall", "StatefulPartitionedCall")),
    ("elementwise maths", ("Mul", "AddV2", "Add", "Sub", "Tanh", "Sigmoid", "TanhGrad", "SigmoidGrad", "Exp", "Log",
                           "Square", "Sqrt", "Rsqrt", "RealDiv", "Neg", "Maximum", "Minimum", "ClipByValue",
                           "Select", "SelectV2", "Softplus", "Softmax", "LogSoftmax", "Sum", "Max", "Mean",
                           "AddN", "Reciprocal", "Abs", "Pow", "Log1p", "GreaterEqual", "Greater", "LessEqual",
                           "Equal", "Cumsum", "SquaredDifference", "BiasAdd", "BiasAddGrad", "Prod",
                           "ResourceApplyAdam", "AssignVariableOp", "AssignAddVariableOp", "ReadVariableOp",
                           "ResourceGather", "SoftplusGrad", "Sign", "Floor", "DivNoNan", "Relu", "LogicalNot")),
)


def op_stats(trace_folder):
    """``[(op type, self-time us)]`` of every op the profiler recorded under ``trace_folder``."""
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin

    files = glob.glob(os.path.join(trace_folder, "**", "*.xplane.pb"), recursive=True)
    if not files:
        raise RuntimeError(f"the profiler wrote no trace under {trace_folder}")
    data, _ = _pywrap_profiler_plugin.xspace_to_tools_data(files, "framework_op_stats", {})
    tables = json.loads(data)
    table = tables[0] if isinstance(tables, list) else tables
    columns = [c["id"] for c in table["cols"]]
    kind, self_time = columns.index("type"), columns.index("total_self_time")
    rows = []
    for row in table["rows"]:
        cells = [c.get("v") if isinstance(c, dict) else c for c in row["c"]]
        rows.append((str(cells[kind]), float(cells[self_time])))
    return rows


def group_of(op_type):
    for name, members in GROUPS:
        if op_type in members:
            return name
    return "other"


def main(argv):
    del argv
    import keras
    import tensorflow as tf

    from graves_tf import experiment

    spec = experiment.spec_from_config(FLAGS.config)
    model = experiment.build_model(spec)
    model.stack.fused_backward = FLAGS.path == "fused"
    batch = synthetic_batch(model, FLAGS.batch_size, FLAGS.num_steps, FLAGS.text_length)
    optimizer = keras.optimizers.Adam(1e-4)
    variables = model.trainable_variables

    @tf.function
    def update():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(batch))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    float(update())
    with tempfile.TemporaryDirectory() as folder:
        tf.profiler.experimental.start(folder)
        start = time.perf_counter()
        for _ in range(FLAGS.updates):
            float(update())
        seconds = (time.perf_counter() - start) / FLAGS.updates
        tf.profiler.experimental.stop()
        rows = op_stats(folder)

    by_type = collections.Counter()
    for op_type, micros in rows:
        by_type[op_type] += micros
    idle = by_type.pop("IDLE", 0.0)  # the profiler's own row for threads waiting, not an op
    total = sum(by_type.values())
    by_group = collections.Counter()
    for op_type, micros in by_type.items():
        by_group[group_of(op_type)] += micros

    print(machine_line())
    print(f"{FLAGS.config}, {FLAGS.path} path, {FLAGS.batch_size} x {FLAGS.num_steps}: {seconds:.2f} s per profiled "
          f"update; ops' self-time {total / 1e6 / FLAGS.updates:.2f} s per update summed over threads, "
          f"idle {idle / 1e6 / FLAGS.updates:.2f} s")
    print(f"{'op type':<28}{'share':>8}")
    for op_type, micros in by_type.most_common(FLAGS.top):
        print(f"{op_type:<28}{micros / total:>8.1%}")
    print()
    print(f"{'group':<28}{'share':>8}")
    for name, micros in by_group.most_common():
        print(f"{name:<28}{micros / total:>8.1%}")


if __name__ == "__main__":
    app.run(main)
