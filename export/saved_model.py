"""SavedModels of trained graves_tf models, self-contained: alphabet, normalisation and the
sampling loop live in the graph, so loading needs TensorFlow only (TF Serving, or a
pipeline without graves_tf).

Handwriting synthesis signatures:

* ``serving_default`` (biased generation): ``text`` [B] string, ``bias`` [B] float32,
  ``seed`` [] int64, ``max_steps`` [] int32 -> ``strokes`` [B, L, 3] float32
  (dx, dy, end_of_stroke) in whiteboard units, ``lengths`` [B] int32; L is the
  longest sample's length (rows are zero after their own length).
* ``generate_primed``: the same plus ``prime_strokes`` [B, T, 3] (whiteboard units,
  the first row the first point's offset, (0, 0, e) as in the dataset),
  ``prime_lengths`` [B] int32 and ``prime_text`` [B] string.
* ``log_prob``: ``strokes`` [B, T, 3], ``lengths`` [B], ``text`` [B] -> ``nats`` [B],
  the loss of eq. 54 of each sequence.

Inputs are checked in the graph: a call that breaks a rule fails with
``tf.errors.InvalidArgumentError`` (a 400 from TF Serving; the server goes on)
whose message names the input and the rule. Every text must be non-empty and
made of IAM-OnDB characters (:data:`graves_tf.alphabet.IAM_CHARACTERS`; with
the paper's alphabet, digits and most punctuation are written as its
non-letter); the batch must not be empty and every batched input must have
the text's batch size (no broadcasting); ``bias`` must be finite and >= 0;
``max_steps`` must be >= 1; ``prime_lengths`` and ``lengths`` must be between
1 and T; strokes, up to their lengths, must be finite with an end-of-stroke of
0 or 1. ``max_steps`` larger than ``steps_per_character`` (40) times the
longest text (prime text included) is capped there, since the stop rule ends
every sample by then.

With ``jit_compile`` (``python -m export --xla``) the sampling loop of
``serving_default`` and ``generate_primed`` is compiled by XLA inside the
SavedModel: the checks and the text lookup run in the plain graph, which
then calls a function marked for XLA compilation (compiled on its first call
with each batch size, text width rounded up to a multiple of 16 characters,
and ``max_steps`` if it is below 40 times that width; then reused). Plain
TensorFlow loads and runs it without graves_tf; TF Serving needs
``--xla_cpu_compilation_enabled=true``. XLA draws other random numbers for a
seed than the plain graph does, so such an export reproduces the in-process
XLA sampler (``graves_tf.sampling.compiled_sampler(model, jit_compile=True)``),
not the plain one.

Handwriting prediction models (writing without text): ``serving_default``/``sample``,
``sample_primed`` and ``log_prob``, see ``export/prediction.py``.

Text model signatures: ``sample`` (``prime`` [B] string, ``num_steps`` [] int32,
``temperature`` [] float32, ``seed`` [] int64 -> ``text`` [B] string, ``ids`` [B, N] int32)
and ``log_prob`` (``text`` [B] string -> ``nats`` [B], ``symbols`` [B]).
"""

import numpy as np
import tensorflow as tf

from . import input_checks
from graves_tf import alphabet as alphabet_lib
from graves_tf import run_dir
from graves_tf.sampling import DEFAULT_STEPS_PER_CHARACTER, sample_handwriting, sample_text


def _lookup(symbols, default, ids=None):
    ids = tf.range(len(symbols), dtype=tf.int32) if ids is None else tf.constant(ids, tf.int32)
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(list(symbols)), ids), default_value=default,
    )


def _batch_checks(text, name="text", **others):
    """A non-empty batch of non-empty strings, and each of ``others`` ([B, ...] tensors) of its batch size."""
    batch = tf.shape(text)[0]
    checks = [
        tf.debugging.assert_positive(batch, message=f"{name}: the batch is empty; give at least one string"),
        tf.debugging.assert_positive(
            tf.strings.length(text, unit="UTF8_CHAR"), message=f"{name}: every string must have at least one character"
        ),
    ]
    return checks + input_checks.same_batch_checks(batch, name, "string", **others)


TEXT_BUCKET = 16  # with jit_compile: texts are padded to a multiple of this many characters


class HandwritingExport(tf.Module):
    """The graph of a HandwritingSynthesizer with its alphabet and statistics."""

    def __init__(self, model, alphabet, offset_mean, offset_std, steps_per_character=DEFAULT_STEPS_PER_CHARACTER,
                 point_stride=1, jit_compile=False):
        super().__init__(name="graves_tf_handwriting")
        self._model = model
        self.jit_compile = bool(jit_compile)
        # The sampling loop, compiled by XLA when asked: it takes tensors only (no strings, tables, ragged
        # tensors or asserts, which XLA cannot compile), so the signatures check and encode outside it.
        self._sample = tf.function(self._sample_ids, jit_compile=True) if jit_compile else self._sample_ids
        self.model_variables = list(model.weights)
        self.alphabet_symbols = tf.constant(list(alphabet.symbols))
        # Every IAM-OnDB character has an id (as alphabet.encode gives it); any other is refused.
        writable = list(dict.fromkeys(alphabet.symbols[1:] + alphabet_lib.IAM_CHARACTERS))
        self.table = _lookup(writable, -1, alphabet.encode("".join(writable)))
        self.offset_mean = tf.constant(np.asarray(offset_mean, np.float32))
        self.offset_std = tf.constant(np.asarray(offset_std, np.float32))
        self.steps_per_character = steps_per_character
        self.point_stride = int(point_stride)

    def _encode(self, text, name="text"):
        characters = tf.strings.unicode_split(text, "UTF-8")
        ids = self.table.lookup(characters)
        known = tf.debugging.Assert(
            tf.reduce_all(ids.flat_values >= 0),
            [f"{name}: every character must be one the model can write (the letters, digits, space and "
             "punctuation of IAM-OnDB); these are not:", tf.boolean_mask(characters.flat_values, ids.flat_values < 0)],
            summarize=20,
        )
        with tf.control_dependencies([known]):
            ids = tf.identity(ids)
        mask = tf.ones_like(ids, dtype=tf.float32).to_tensor()
        return ids.to_tensor(), mask

    def _normalise(self, strokes):
        return input_checks.normalise(strokes, self.offset_mean, self.offset_std)

    def _downsample(self, strokes, lengths):
        """Brings caller strokes to the model's sampling rate (``point_stride`` of training)."""
        return input_checks.downsample(strokes, lengths, self.point_stride)

    def _denormalise(self, strokes, lengths):
        out = input_checks.denormalise(strokes, self.offset_mean, self.offset_std)
        keep = tf.sequence_mask(lengths, tf.shape(strokes)[1])[..., None]
        return tf.where(keep, out, tf.zeros_like(out))

    def _generation_checks(self, text, bias, max_steps):
        return _batch_checks(text, bias=bias) + [
            tf.debugging.Assert(
                tf.reduce_all(tf.math.is_finite(bias)), ["bias: every bias must be a finite number (not NaN or infinity)"]
            ),
            tf.debugging.assert_non_negative(bias, message="bias: every bias must be >= 0 (0 unbiased, larger neater)"),
            tf.debugging.assert_positive(max_steps, message="max_steps: must be at least 1"),
        ]

    def _sample_ids(self, ids, mask, bias, seed, max_steps, prime=None, prime_lengths=None):
        return sample_handwriting(
            self._model, tf.shape(ids)[0], max_steps, bias, seed, self._model.window.context(ids, mask),
            prime=prime, prime_lengths=prime_lengths, steps_per_character=self.steps_per_character,
        )

    def _generate(self, text, bias, seed, max_steps, prime=None, prime_lengths=None):
        ids, mask = self._encode(text)
        # No sample outlives steps_per_character points per character of its text: a larger max_steps is capped.
        longest = tf.cast(tf.reduce_max(tf.reduce_sum(mask, axis=-1)), tf.int32)
        if self.jit_compile:
            # XLA compiles once per shape and max_steps: texts padded to a multiple of TEXT_BUCKET characters
            # (masked out: the same samples) and max_steps capped for that width, not the text's own length
            # (each sample keeps its own cap), so a call with a large max_steps compiles once per batch size
            # and text bucket.
            width = tf.shape(ids)[1]
            longest = (width + TEXT_BUCKET - 1) // TEXT_BUCKET * TEXT_BUCKET
            ids = tf.pad(ids, [[0, 0], [0, longest - width]])
            mask = tf.pad(mask, [[0, 0], [0, longest - width]])
        max_steps = tf.minimum(max_steps, self.steps_per_character * longest)
        strokes, lengths = self._sample(ids, mask, bias, seed, max_steps, prime, prime_lengths)
        strokes = strokes[:, : tf.reduce_max(lengths)]  # as long as the longest sample
        return {"strokes": self._denormalise(strokes, lengths), "lengths": lengths}

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name="text"),
        tf.TensorSpec([None], tf.float32, name="bias"),
        tf.TensorSpec([], tf.int64, name="seed"),
        tf.TensorSpec([], tf.int32, name="max_steps"),
    ])
    def generate(self, text, bias, seed, max_steps):
        with tf.control_dependencies(self._generation_checks(text, bias, max_steps)):
            text = tf.identity(text)
        return self._generate(text, bias, seed, max_steps)

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name="text"),
        tf.TensorSpec([None], tf.float32, name="bias"),
        tf.TensorSpec([], tf.int64, name="seed"),
        tf.TensorSpec([], tf.int32, name="max_steps"),
        tf.TensorSpec([None, None, 3], tf.float32, name="prime_strokes"),
        tf.TensorSpec([None], tf.int32, name="prime_lengths"),
        tf.TensorSpec([None], tf.string, name="prime_text"),
    ])
    def generate_primed(self, text, bias, seed, max_steps, prime_strokes, prime_lengths, prime_text):
        checks = self._generation_checks(text, bias, max_steps)
        checks += _batch_checks(text, prime_strokes=prime_strokes, prime_lengths=prime_lengths, prime_text=prime_text)
        checks += _batch_checks(prime_text, "prime_text")
        with tf.control_dependencies(checks):
            checks = input_checks.lengths_checks("prime_lengths", prime_lengths, prime_strokes, "prime_strokes")
            checks.append(self._encode(prime_text, "prime_text")[0])
        with tf.control_dependencies(checks):
            text, prime_strokes = tf.identity(text), tf.identity(prime_strokes)
        full_text = tf.strings.join([prime_text, text], separator=" ")
        prime_strokes, prime_lengths = self._downsample(prime_strokes, prime_lengths)
        return self._generate(full_text, bias, seed, max_steps, self._normalise(prime_strokes), prime_lengths)

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, 3], tf.float32, name="strokes"),
        tf.TensorSpec([None], tf.int32, name="lengths"),
        tf.TensorSpec([None], tf.string, name="text"),
    ])
    def log_prob(self, strokes, lengths, text):
        with tf.control_dependencies(_batch_checks(text, strokes=strokes, lengths=lengths)):
            checks = input_checks.lengths_checks("lengths", lengths, strokes, "strokes")
        with tf.control_dependencies(checks):
            strokes = tf.identity(strokes)
        strokes, lengths = self._downsample(strokes, lengths)
        targets = self._normalise(strokes)
        inputs = tf.concat([tf.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1)
        ids, mask = self._encode(text)
        batch = {"inputs": inputs, "targets": targets, "lengths": lengths, "text": ids, "text_mask": mask}
        return {"nats": self._model(batch)}


class TextExport(tf.Module):
    """The graph of a TextPredictor with its vocabulary."""

    def __init__(self, model, symbols, level, sentence_end=None):
        super().__init__(name="graves_tf_text")
        self._model = model
        self.model_variables = list(model.weights)
        self.symbols = tf.constant(list(symbols))
        self.num_symbols = len(symbols)
        self.table = _lookup(symbols, -2)
        self.level = level  # "word": space-separated words; "byte": UTF-8 bytes; otherwise characters
        # Models trained one sentence per sequence start every sentence afresh.
        self.sentence_end = None if sentence_end is None else list(symbols).index(sentence_end)

    def _tokens(self, text):
        if self.level == "word":
            return tf.strings.split(text)
        if self.level == "byte":
            return tf.strings.bytes_split(text)
        return tf.strings.unicode_split(text, "UTF-8")

    def _join(self, ids):
        pieces = tf.gather(self.symbols, ids)
        return tf.strings.reduce_join(pieces, axis=-1, separator=" " if self.level == "word" else "")

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name="prime"),
        tf.TensorSpec([], tf.int32, name="num_steps"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int64, name="seed"),
    ])
    def sample(self, prime, num_steps, temperature, seed):
        ids = self.table.lookup(self._tokens(prime))
        tf.debugging.assert_non_negative(ids.flat_values, message="a symbol of the prime is not in the vocabulary")
        ids = ids.to_tensor()
        sampled = sample_text(
            self._model, ids, num_steps, temperature, seed, num_symbols=self.num_symbols, sentence_end=self.sentence_end
        )
        return {"text": self._join(sampled), "ids": sampled}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def log_prob(self, text):
        ids = self.table.lookup(self._tokens(text))
        tf.debugging.assert_non_negative(ids.flat_values, message="a symbol is not in the vocabulary")
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        targets = ids.to_tensor()
        inputs = tf.concat([-tf.ones_like(targets[:, :1]), targets[:, :-1]], axis=1)
        nats = self._model({"inputs": inputs, "targets": targets, "lengths": lengths})
        return {"nats": nats, "symbols": lengths}


def export_run(model, config, output_dir, jit_compile=False):
    """Writes the SavedModel of a loaded run (see ``graves_tf.run_dir.load_run``); ``jit_compile``: the
    synthesis sampling loop compiled by XLA (see the module's docstring)."""
    spec = config["spec"]
    if spec["model"] == "handwriting_synthesizer":
        module = HandwritingExport(
            model, alphabet_lib.ALPHABETS[spec["alphabet"]], config["offset_mean"], config["offset_std"],
            point_stride=spec.get("point_stride", 1), jit_compile=jit_compile,
        )
        signatures = {
            "serving_default": module.generate,
            "generate_primed": module.generate_primed,
            "log_prob": module.log_prob,
        }
    elif spec["model"] == "text_predictor":
        if "vocabulary" not in config:
            raise ValueError("the run's model_config.json has no vocabulary")
        level = {"ptb_word": "word", "enwik8": "byte"}.get(spec["dataset"], "char")
        symbols = config["vocabulary"]
        if level == "byte":  # stored as the Latin-1 characters of the byte values
            symbols = [s.encode("latin-1") for s in symbols]
        if spec["dataset"] == "ptb_char":  # '_' is the space between words, '\n' the end of a line
            symbols = [" " if s == "_" else s for s in symbols]
        sentence_end = config.get("end_of_line") if run_dir.trained_on_sentences(config) else None
        module = TextExport(model, symbols, level, sentence_end)
        signatures = {"serving_default": module.sample, "sample": module.sample, "log_prob": module.log_prob}
    elif spec["model"] == "handwriting_predictor":  # writing without text: export/prediction.py
        from .prediction import export_prediction

        return export_prediction(model, config, output_dir)
    else:
        raise ValueError(f"exporting a {spec['model']} is not supported (synthesis, prediction and text models are)")
    tf.saved_model.save(module, output_dir, signatures=signatures)
    if spec["model"] == "handwriting_synthesizer":
        write_info(config, output_dir)
    return module


INFO_FILE = "assets.extra/graves_tf.json"  # TF Serving ignores assets.extra/ (bar warm-up requests)


def write_info(config, output_dir):
    """Writes what a client needs beside a synthesis export (``graves_tf.serve``'s page reads it):
    the characters the model writes, its offset statistics and the sampling rate it was trained at."""
    import json
    import os

    from graves_tf.alphabet import IAM_CHARACTERS

    spec = config["spec"]
    info = {
        "model": spec["model"], "alphabet": spec["alphabet"], "characters": IAM_CHARACTERS,
        "offset_mean": [float(x) for x in config["offset_mean"]],
        "offset_std": [float(x) for x in config["offset_std"]],
        "point_stride": int(spec.get("point_stride", 1)), "steps_per_character": DEFAULT_STEPS_PER_CHARACTER,
    }
    path = os.path.join(output_dir, INFO_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(info, f, indent=1)
