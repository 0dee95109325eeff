"""Text input pipelines: sentences as sequences, or a stream cut into segments for truncated BPTT.

Both produce the batch dicts the models take (see ``graves_tf.models.sequence_model``):
``inputs`` are the previous symbols with ``-1`` as the null input that starts a
sequence (section 2), ``targets`` the symbols to predict.
"""

import numpy as np
import tensorflow as tf

NULL_INPUT = -1


class Vocabulary:
    """Symbols <-> ids, in the order given (the builders store it in their metadata).

    Args:
        symbols: the symbols in id order.
        end_of_line: the symbol that ends every sentence (``<eos>`` for words,
            ``\\n`` for characters), or None.
        unknown: the symbol out-of-vocabulary tokens map to (``<unk>``), or None
            to refuse them.
    """

    def __init__(self, symbols, end_of_line=None, unknown=None):
        self.symbols = list(symbols)
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("vocabulary symbols must be distinct")
        self.ids = {s: i for i, s in enumerate(self.symbols)}
        for name, symbol in (("end_of_line", end_of_line), ("unknown", unknown)):
            if symbol is not None and symbol not in self.ids:
                raise ValueError(f"{name} symbol {symbol!r} is not in the vocabulary")
        self.end_of_line = end_of_line
        self.unknown = unknown

    def __len__(self):
        return len(self.symbols)

    def lookup_table(self):
        default = self.ids[self.unknown] if self.unknown is not None else -2
        return tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(self.symbols), tf.range(len(self.symbols), dtype=tf.int32)
            ),
            default_value=default,
        )

    def encode(self, tokens):
        ids = []
        for token in tokens:
            if token in self.ids:
                ids.append(self.ids[token])
            elif self.unknown is not None:
                ids.append(self.ids[self.unknown])
            else:
                raise ValueError(f"symbol {token!r} is not in the vocabulary")
        return ids

    def decode(self, ids):
        return [self.symbols[i] for i in ids]


def tokenize_line(line, level):
    """Splits a line tensor into tokens: words on whitespace, or characters.

    Character-level Penn Treebank lines are already whitespace-separated
    characters (``_`` between words): ``spaced_char`` splits them like words;
    ``char`` splits other text into UTF-8 characters.
    """
    if level in ("word", "spaced_char"):
        return tf.strings.split(line)
    if level == "char":
        return tf.strings.unicode_split(line, "UTF-8")
    raise ValueError(f"unknown level {level!r}; choose word, spaced_char or char")


def sentence_batches(
    lines, vocabulary, level, batch_size, shuffle_buffer=0, seed=None, bucket_boundaries=None, drop_remainder=False
):
    """One sentence (line) per sequence, as the paper's Penn Treebank experiments.

    Each line becomes ``targets`` = its symbols followed by the end-of-line
    symbol, ``inputs`` = the null input followed by all but the last target.

    Args:
        lines: a ``tf.data.Dataset`` of string lines (without the newline).
        vocabulary: a :class:`Vocabulary` with an ``end_of_line`` symbol.
        level: ``"word"``, ``"spaced_char"`` or ``"char"`` (see :func:`tokenize_line`).
        batch_size: sequences per batch.
        shuffle_buffer: 0 keeps file order.
        bucket_boundaries: sentence lengths at which to start a new bucket
            (sequences of similar length are batched together); None pads each
            batch to its longest sequence.
    """
    if vocabulary.end_of_line is None:
        raise ValueError("sentence batches need a vocabulary with an end_of_line symbol")
    table = vocabulary.lookup_table()
    end_id = vocabulary.ids[vocabulary.end_of_line]

    def encode(line):
        ids = table.lookup(tokenize_line(line, level))
        tf.debugging.assert_non_negative(ids, message="a token is not in the vocabulary")
        targets = tf.concat([ids, [end_id]], axis=0)
        inputs = tf.concat([[NULL_INPUT], targets[:-1]], axis=0)
        return {"inputs": inputs, "targets": targets, "lengths": tf.shape(targets)[0]}

    dataset = lines.map(encode, num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    return padded_batches(dataset, batch_size, bucket_boundaries, drop_remainder)


def padding_value(key, dtype):
    """What a batch is padded with: the null input -1 for integer ``inputs``, 0 for everything else."""
    if key == "inputs" and dtype.is_integer:
        return tf.constant(NULL_INPUT, dtype)
    return tf.zeros((), dtype)


def padded_batches(dataset, batch_size, bucket_boundaries=None, drop_remainder=False):
    """Pads sequence dicts into batches (with :func:`padding_value`), optionally bucketed by ``lengths``.

    Masks come from ``lengths`` (and ``text_lengths``).
    """
    specs = dataset.element_spec
    padding_values = {key: padding_value(key, spec.dtype) for key, spec in specs.items()}
    if bucket_boundaries:
        dataset = dataset.bucket_by_sequence_length(
            element_length_func=lambda x: x["lengths"],
            bucket_boundaries=list(bucket_boundaries),
            bucket_batch_sizes=[batch_size] * (len(bucket_boundaries) + 1),
            padding_values=padding_values,
            drop_remainder=drop_remainder,
        )
    else:
        dataset = dataset.padded_batch(
            batch_size, padding_values=padding_values, drop_remainder=drop_remainder
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def pad_to_stable_shapes(dataset, time_sizes=(), time_multiple=64, text_multiple=16):
    """Pads each batch's time and text axes up to one of a few sizes, for a compiled (XLA) update.

    XLA compiles an update once per input shape. Bucketed batches are padded
    to their own longest sequence, so nearly every batch would be a new
    shape; here the time axis grows to the smallest of ``time_sizes`` (the
    bucket boundaries) that holds it, beyond the largest to a multiple of
    ``time_multiple``, and the text to a multiple of ``text_multiple``. The
    padding is :func:`padding_value` and ``lengths``/``text_lengths`` do not
    change, so every loss and gradient is the same.
    """
    sizes = tf.constant(sorted(time_sizes) or [0], tf.int32)

    def padded_size(length):
        fits = sizes[sizes >= length]
        beyond = -(-length // time_multiple) * time_multiple
        return tf.cond(tf.size(fits) > 0, lambda: fits[0], lambda: beyond)

    def pad(batch, key, size):
        value = batch[key]
        extra = size - tf.shape(value)[1]
        paddings = [[0, 0], [0, extra]] + [[0, 0]] * (value.shape.rank - 2)
        return tf.pad(value, paddings, constant_values=padding_value(key, value.dtype))

    def stabilise(batch):
        batch = dict(batch)
        steps = padded_size(tf.shape(batch["targets"])[1])
        for key in ("inputs", "targets"):
            batch[key] = pad(batch, key, steps)
        if "text" in batch:
            width = tf.shape(batch["text"])[1]
            batch["text"] = pad(batch, "text", -(-width // text_multiple) * text_multiple)
        return batch

    return dataset.map(stabilise, num_parallel_calls=tf.data.AUTOTUNE)


def stream_segments(ids, batch_size, segment_length, reset_every=1, start_segment=0):
    """Cuts a symbol stream into consecutive segments for truncated backpropagation (section 3.2).

    The stream is split into ``batch_size`` contiguous parallel streams (row b
    holds the b-th slice); batch k holds symbols ``[k L, (k+1) L)`` of every
    row, so row b of batch k+1 continues row b of batch k and the network's
    state is carried from one batch to the next. Every ``reset_every``
    segments the state is reset: those batches have ``reset`` = True and start
    with the null input; the others start with the symbol before the segment.
    Order is never shuffled.

    Args:
        ids: 1-D integer array of the whole split.
        batch_size: B parallel streams.
        segment_length: L symbols per segment (paper, enwik8: 100).
        reset_every: R, segments between state resets (paper, enwik8: 100).
        start_segment: resume at this segment index (the data position of a checkpoint).

    Returns:
        A ``tf.data.Dataset`` of dicts ``inputs``, ``targets`` ``(B, L)`` int32,
        ``reset`` ``(B,)`` bool and ``segment`` ``(B,)`` int64 (the segment
        index), the same in every row: every key has a batch axis, so a
        ``tf.distribute`` strategy can give each replica its rows (its streams).
    """
    ids = np.asarray(ids)
    per_stream = (len(ids) - 1) // batch_size
    num_segments = per_stream // segment_length
    if num_segments < 1:
        raise ValueError(
            f"a stream of {len(ids)} symbols is too short for {batch_size} streams of "
            f"segments of {segment_length}"
        )
    used = num_segments * segment_length
    rows = np.arange(batch_size)[:, None] * per_stream
    positions = rows + np.arange(used)[None, :]
    dtype = np.int32
    targets = ids[positions + 1].astype(dtype)
    previous = ids[positions].astype(dtype)

    def to_segments(x):  # (B, used) -> (num_segments, B, L)
        return x.reshape(batch_size, num_segments, segment_length).transpose(1, 0, 2)

    segment_index = np.arange(num_segments)
    reset = segment_index % reset_every == 0
    inputs = to_segments(previous).copy()
    inputs[reset, :, 0] = NULL_INPUT
    per_row = (num_segments, batch_size)
    dataset = tf.data.Dataset.from_tensor_slices(
        {
            "inputs": inputs,
            "targets": to_segments(targets),
            "reset": np.broadcast_to(reset[:, None], per_row),
            "segment": np.broadcast_to(segment_index.astype(np.int64)[:, None], per_row),
        }
    )
    return dataset.skip(start_segment).prefetch(tf.data.AUTOTUNE)
