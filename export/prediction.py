"""The SavedModel of a handwriting prediction network (section 4): writing without text.

Signatures (strokes are ``(dx, dy, end_of_stroke)`` in whiteboard units, as IAM-OnDB stores them):

* ``serving_default`` = ``sample``: ``bias`` [B] float32 (one sample per bias), ``seed`` [] int64,
  ``num_steps`` [] int32 -> ``strokes`` [B, num_steps, 3] float32, ``lengths`` [B] int32 (all num_steps).
* ``sample_primed``: the same plus ``prime_strokes`` [B, T, 3] and ``prime_lengths`` [B] int32: each sample
  continues its prime ("keep writing in my hand"); ``strokes`` holds the continuation only, its first row
  the offset from the prime's last point.
* ``log_prob``: ``strokes`` [B, T, 3], ``lengths`` [B] int32 -> ``nats`` [B], the loss L(x) of eq. 26.

The samples are those of ``graves_tf.unconditional.sample`` (and so of ``python -m graves_tf.write
--unconditional``) for the same seed and bias: the graph runs the same loop and stateless draws. A model
trained at a coarser rate (``point_stride``) gets its primes and scored strokes downsampled first, and
writes ``num_steps`` points at its own rate.

Inputs are checked in the graph: a call that breaks a rule fails with ``tf.errors.InvalidArgumentError``
naming the input and the rule: the batch must not be empty, every bias finite and >= 0, ``num_steps``
from 1 to :data:`MAX_NUM_STEPS`, every batched input of ``bias``'s batch size (``strokes``'s for
``log_prob``), lengths from 1 to T, strokes up to their lengths finite with an end of stroke of 0 or 1.
"""

import json
import os

import numpy as np
import tensorflow as tf

from . import input_checks
from graves_tf.sampling import sample_handwriting
from graves_tf.unconditional import MAX_POINTS

MAX_NUM_STEPS = MAX_POINTS  # 20,000 points: about 28 lines of 700; a server gives no more in one call
INFO_FILE = "assets.extra/graves_tf.json"  # saved_model.INFO_FILE (saved_model imports this module: no circle)


def _batch_checks(leading, name, **others):
    batch = tf.shape(leading)[0]
    checks = [tf.debugging.assert_positive(batch, message=f"{name}: the batch is empty; give at least one row")]
    return checks + input_checks.same_batch_checks(batch, name, "row", **others)


class PredictionExport(tf.Module):
    """The graph of a HandwritingPredictor with its offset statistics."""

    def __init__(self, model, offset_mean, offset_std, point_stride=1):
        super().__init__(name="graves_tf_prediction")
        self._model = model
        self.model_variables = list(model.weights)
        self.offset_mean = tf.constant(np.asarray(offset_mean, np.float32))
        self.offset_std = tf.constant(np.asarray(offset_std, np.float32))
        self.point_stride = int(point_stride)

    def _normalise(self, strokes):
        return input_checks.normalise(strokes, self.offset_mean, self.offset_std)

    def _denormalise(self, strokes):
        return input_checks.denormalise(strokes, self.offset_mean, self.offset_std)

    def _downsample(self, strokes, lengths):
        return input_checks.downsample(strokes, lengths, self.point_stride)

    def _sampling_checks(self, bias, num_steps):
        return _batch_checks(bias, "bias") + [
            tf.debugging.Assert(
                tf.reduce_all(tf.math.is_finite(bias)), ["bias: every bias must be a finite number (not NaN or infinity)"]
            ),
            tf.debugging.assert_non_negative(bias, message="bias: every bias must be >= 0 (0 unbiased, larger neater)"),
            tf.debugging.assert_positive(num_steps, message="num_steps: must be at least 1"),
            tf.debugging.assert_less_equal(
                num_steps, MAX_NUM_STEPS, message=f"num_steps: must be at most {MAX_NUM_STEPS} points per call"
            ),
        ]

    def _sample(self, bias, seed, num_steps, prime=None, prime_lengths=None):
        strokes, lengths = sample_handwriting(
            self._model, tf.shape(bias)[0], num_steps, bias, seed, prime=prime, prime_lengths=prime_lengths,
        )
        return {"strokes": self._denormalise(strokes), "lengths": lengths}

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.float32, name="bias"),
        tf.TensorSpec([], tf.int64, name="seed"),
        tf.TensorSpec([], tf.int32, name="num_steps"),
    ])
    def sample(self, bias, seed, num_steps):
        with tf.control_dependencies(self._sampling_checks(bias, num_steps)):
            bias, num_steps = tf.identity(bias), tf.identity(num_steps)  # nothing reads them before the checks
        return self._sample(bias, seed, num_steps)

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.float32, name="bias"),
        tf.TensorSpec([], tf.int64, name="seed"),
        tf.TensorSpec([], tf.int32, name="num_steps"),
        tf.TensorSpec([None, None, 3], tf.float32, name="prime_strokes"),
        tf.TensorSpec([None], tf.int32, name="prime_lengths"),
    ])
    def sample_primed(self, bias, seed, num_steps, prime_strokes, prime_lengths):
        checks = self._sampling_checks(bias, num_steps)
        checks += _batch_checks(bias, "bias", prime_strokes=prime_strokes, prime_lengths=prime_lengths)
        with tf.control_dependencies(checks):
            checks = input_checks.lengths_checks("prime_lengths", prime_lengths, prime_strokes, "prime_strokes")
        with tf.control_dependencies(checks):
            bias, prime_strokes = tf.identity(bias), tf.identity(prime_strokes)
            num_steps, prime_lengths = tf.identity(num_steps), tf.identity(prime_lengths)
        prime_strokes, prime_lengths = self._downsample(prime_strokes, prime_lengths)
        return self._sample(bias, seed, num_steps, self._normalise(prime_strokes), prime_lengths)

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, 3], tf.float32, name="strokes"),
        tf.TensorSpec([None], tf.int32, name="lengths"),
    ])
    def log_prob(self, strokes, lengths):
        with tf.control_dependencies(_batch_checks(strokes, "strokes", lengths=lengths)):
            checks = input_checks.lengths_checks("lengths", lengths, strokes, "strokes")
        with tf.control_dependencies(checks):
            strokes = tf.identity(strokes)
        strokes, lengths = self._downsample(strokes, lengths)
        targets = self._normalise(strokes)
        inputs = tf.concat([tf.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1)
        return {"nats": self._model({"inputs": inputs, "targets": targets, "lengths": lengths})}


def export_prediction(model, config, output_dir):
    """Writes the SavedModel of a loaded prediction run and ``assets.extra/graves_tf.json`` beside it."""
    spec = config["spec"]
    module = PredictionExport(model, config["offset_mean"], config["offset_std"], spec.get("point_stride", 1))
    signatures = {"serving_default": module.sample, "sample": module.sample, "sample_primed": module.sample_primed,
                  "log_prob": module.log_prob}
    tf.saved_model.save(module, output_dir, signatures=signatures)
    info = {
        "model": spec["model"], "offset_mean": [float(x) for x in config["offset_mean"]],
        "offset_std": [float(x) for x in config["offset_std"]], "point_stride": int(spec.get("point_stride", 1)),
        "max_num_steps": MAX_NUM_STEPS,
    }
    path = os.path.join(output_dir, INFO_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(info, f, indent=1)
    return module
