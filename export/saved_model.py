"""SavedModels of trained graves_tf models, self-contained: alphabet, normalisation and the
sampling loop live in the graph, so loading needs TensorFlow only (TF Serving, or a
pipeline without graves_tf).

Handwriting synthesis signatures:

* ``serving_default`` (biased generation): ``text`` [B] string, ``bias`` [B] float32,
  ``seed`` [] int64, ``max_steps`` [] int32 -> ``strokes`` [B, max_steps, 3] float32
  (dx, dy, end_of_stroke) in whiteboard units, ``lengths`` [B] int32.
* ``generate_primed``: the same plus ``prime_strokes`` [B, T, 3] (whiteboard units,
  the first row the first point's offset, (0, 0, e) as in the dataset),
  ``prime_lengths`` [B] int32 and ``prime_text`` [B] string.
* ``log_prob``: ``strokes`` [B, T, 3], ``lengths`` [B], ``text`` [B] -> ``nats`` [B],
  the loss of eq. 54 of each sequence.

Text model signatures: ``sample`` (``prime`` [B] string, ``num_steps`` [] int32,
``temperature`` [] float32, ``seed`` [] int64 -> ``text`` [B] string, ``ids`` [B, N] int32)
and ``log_prob`` (``text`` [B] string -> ``nats`` [B], ``symbols`` [B]).
"""

import numpy as np
import tensorflow as tf

from graves_tf import alphabet as alphabet_lib
from graves_tf import run_dir
from graves_tf.sampling import DEFAULT_STEPS_PER_CHARACTER, sample_handwriting, sample_text
from graves_tf.data.handwriting import downsample_strokes


def _lookup(symbols, default):
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(list(symbols)), tf.range(len(symbols), dtype=tf.int32)),
        default_value=default,
    )


class HandwritingExport(tf.Module):
    """The graph of a HandwritingSynthesizer with its alphabet and statistics."""

    def __init__(self, model, alphabet, offset_mean, offset_std, steps_per_character=DEFAULT_STEPS_PER_CHARACTER,
                 point_stride=1):
        super().__init__(name="graves_tf_handwriting")
        self._model = model
        self.model_variables = list(model.weights)
        self.alphabet_symbols = tf.constant(list(alphabet.symbols))
        self.table = _lookup(alphabet.symbols, 0)
        self.offset_mean = tf.constant(np.asarray(offset_mean, np.float32))
        self.offset_std = tf.constant(np.asarray(offset_std, np.float32))
        self.steps_per_character = steps_per_character
        self.point_stride = int(point_stride)

    def _encode(self, text):
        ids = self.table.lookup(tf.strings.unicode_split(text, "UTF-8"))
        mask = tf.ones_like(ids, dtype=tf.float32).to_tensor()
        return ids.to_tensor(), mask

    def _context(self, text):
        ids, mask = self._encode(text)
        return self._model.window.context(ids, mask)

    def _normalise(self, strokes):
        return tf.concat([(strokes[..., :2] - self.offset_mean) / self.offset_std, strokes[..., 2:]], axis=-1)

    def _downsample(self, strokes, lengths):
        """Brings caller strokes to the model's sampling rate (``point_stride`` of training)."""
        if self.point_stride == 1:
            return strokes, lengths
        rows = tf.RaggedTensor.from_tensor(strokes, lengths=lengths)
        rows = tf.map_fn(
            lambda row: downsample_strokes(row, self.point_stride),
            rows,
            fn_output_signature=tf.RaggedTensorSpec([None, 3], tf.float32, ragged_rank=0),
        )
        return rows.to_tensor(), tf.cast(rows.row_lengths(), tf.int32)

    def _denormalise(self, strokes, lengths):
        out = tf.concat([strokes[..., :2] * self.offset_std + self.offset_mean, strokes[..., 2:]], axis=-1)
        keep = tf.sequence_mask(lengths, tf.shape(strokes)[1])[..., None]
        return tf.where(keep, out, tf.zeros_like(out))

    def _generate(self, text, bias, seed, max_steps, prime=None, prime_lengths=None):
        batch = tf.shape(text)[0]
        strokes, lengths = sample_handwriting(
            self._model, batch, max_steps, bias, seed, self._context(text),
            prime=prime, prime_lengths=prime_lengths, steps_per_character=self.steps_per_character,
        )
        return {"strokes": self._denormalise(strokes, lengths), "lengths": lengths}

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name="text"),
        tf.TensorSpec([None], tf.float32, name="bias"),
        tf.TensorSpec([], tf.int64, name="seed"),
        tf.TensorSpec([], tf.int32, name="max_steps"),
    ])
    def generate(self, text, bias, seed, max_steps):
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
        full_text = tf.strings.join([prime_text, text], separator=" ")
        prime_strokes, prime_lengths = self._downsample(prime_strokes, prime_lengths)
        return self._generate(full_text, bias, seed, max_steps, self._normalise(prime_strokes), prime_lengths)

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, 3], tf.float32, name="strokes"),
        tf.TensorSpec([None], tf.int32, name="lengths"),
        tf.TensorSpec([None], tf.string, name="text"),
    ])
    def log_prob(self, strokes, lengths, text):
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


def export_run(model, config, output_dir):
    """Writes the SavedModel of a loaded run (see ``graves_tf.run_dir.load_run``)."""
    spec = config["spec"]
    if spec["model"] == "handwriting_synthesizer":
        module = HandwritingExport(
            model, alphabet_lib.ALPHABETS[spec["alphabet"]], config["offset_mean"], config["offset_std"],
            point_stride=spec.get("point_stride", 1),
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
    else:
        raise ValueError(f"exporting a {spec['model']} is not supported (synthesis and text models are)")
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
