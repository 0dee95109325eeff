"""The paper's datasets as model batches: TFDS builders in, this package's input pipelines out.

The builders live in ``tfds_builders/`` (a checkout's top level), imported as
``graves_tf.tfds_builders`` (where the wheel installs them; an editable install maps
that name to the checkout's folder); this module prepares them (from
``--manual_dir`` when the dataset is not built yet) and feeds their splits
through :mod:`graves_tf.data`.
"""

import dataclasses
import importlib
import os
import pathlib

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from graves_tf import alphabet as alphabet_lib
from graves_tf.data import Vocabulary, handwriting_batches, sentence_batches, stream_segments
from graves_tf.data.handwriting import check_line_preparation, downsample_strokes

BUILDERS = {  # dataset flag -> (builder package, TFDS name)
    "iam_ondb": ("graves_tf.tfds_builders.iam_ondb", "iam_ondb"),
    "ptb_char": ("graves_tf.tfds_builders.ptb", "ptb/char"),
    "ptb_word": ("graves_tf.tfds_builders.ptb", "ptb/word"),
    "enwik8": ("graves_tf.tfds_builders.hutter", "hutter/{hutter_config}"),
}
DEFAULT_DATA_DIR = os.path.join("~", "tensorflow_datasets")
HANDWRITING_BUCKETS = (300, 450, 600, 750, 900, 1200)
SENTENCE_BUCKETS = {  # sentence lengths (in symbols) at which a new bucket starts
    "word": (10, 20, 30, 50, 80),
    "spaced_char": (60, 100, 140, 180, 240, 320),
}


class DatasetNotBuilt(FileNotFoundError):
    pass


def builder_name(dataset, hutter_config="paper"):
    if dataset not in BUILDERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(BUILDERS)}")
    return BUILDERS[dataset][1].format(hutter_config=hutter_config)


def import_builder(dataset):
    """Imports (and so registers) the builder package of ``dataset``: ``graves_tf.tfds_builders.NAME``, installed
    or in a checkout installed editable; a checkout on ``sys.path`` but not installed has it at the top level
    (``tfds_builders.NAME``). One process uses one of the two names: TFDS refuses a builder registered twice."""
    package = BUILDERS[dataset][0]
    try:
        return importlib.import_module(package)
    except ModuleNotFoundError as error:
        if error.name not in ("graves_tf.tfds_builders", package):
            raise
        return importlib.import_module(package.removeprefix("graves_tf."))


def build_command(dataset, data_dir, hutter_config="paper"):
    """The ``tfds build`` command line that prepares ``dataset`` in ``data_dir``."""
    name = BUILDERS[dataset][1]
    folder = pathlib.Path(import_builder(dataset).__file__).parent
    config = name.format(hutter_config=hutter_config).partition("/")[2]
    config_flag = f" --config={config}" if config else ""
    return f"tfds build {folder}{config_flag} --manual_dir=<folder with the raw files> --data_dir={data_dir}"


def prepare_builder(dataset, data_dir=None, manual_dir=None, hutter_config="paper"):
    """The TFDS builder of ``dataset``, built from ``manual_dir`` first if it is not built yet."""
    data_dir = os.path.expanduser(data_dir or DEFAULT_DATA_DIR)
    name = builder_name(dataset, hutter_config)
    import_builder(dataset)  # registers the builder
    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    if manual_dir is None:
        raise DatasetNotBuilt(
            f"dataset {name} is not built in {data_dir}. Build it with\n"
            f"  {build_command(dataset, data_dir, hutter_config)}\n"
            f"or pass --manual_dir=<folder with the raw files> to build it now."
        )
    manual_dir = os.path.expanduser(manual_dir)
    if not os.path.isdir(manual_dir):
        raise DatasetNotBuilt(f"--manual_dir {manual_dir} is not a folder (dataset {name})")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return builder


@dataclasses.dataclass
class DataBundle:
    """What training and evaluation need of a dataset."""

    kind: str  # "text" or "handwriting"
    make_epoch: object  # epoch -> tf.data.Dataset of training batches
    split_batches: object  # split name -> tf.data.Dataset of evaluation batches (in order)
    num_training_sequences: int
    vocabulary: Vocabulary | None = None
    offset_mean: np.ndarray | None = None
    offset_std: np.ndarray | None = None
    validation_split: str = "validation"
    bucket_boundaries: tuple = ()  # of the training batches' lengths (none for fixed-length segments)
    sentences: bool = False  # text: one sentence per sequence (not segments of a stream)


def downsampled_offset_statistics(builder, point_stride):
    """Mean and std of (dx, dy) over the train split after :func:`downsample_strokes`."""
    total, total_sq, count = np.zeros(2), np.zeros(2), 0
    lines = builder.as_dataset(split="train", shuffle_files=False).map(
        lambda example: downsample_strokes(tf.cast(example["strokes"], tf.float64), point_stride)[:, :2],
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    for offsets in lines.as_numpy_iterator():
        total += offsets.sum(0)
        total_sq += (offsets**2).sum(0)
        count += len(offsets)
    mean = total / count
    return mean.astype(np.float32), np.sqrt(total_sq / count - mean**2).astype(np.float32)


def handwriting_bundle(builder, batch_size, alphabet=None, seed=0, max_length=None, point_stride=1,
                       line_preparation=()):
    metadata = builder.info.metadata
    if point_stride == 1:
        mean = np.asarray(metadata["offset_mean"], np.float32)
        std = np.asarray(metadata["offset_std"], np.float32)
    else:
        mean, std = downsampled_offset_statistics(builder, point_stride)
    num_train = builder.info.splits["train"].num_examples
    boundaries = tuple(b // point_stride for b in HANDWRITING_BUCKETS)

    def make_epoch(epoch):
        return handwriting_batches(
            builder.as_dataset(split="train", shuffle_files=False),
            batch_size,
            mean,
            std,
            alphabet,
            bucket_boundaries=boundaries,
            shuffle_buffer=num_train,
            seed=seed + epoch,
            max_length=max_length,
            drop_remainder=True,
            point_stride=point_stride,
            line_preparation=line_preparation,
        )

    def split_batches(split):
        return handwriting_batches(
            builder.as_dataset(split=split, shuffle_files=False),
            batch_size,
            mean,
            std,
            alphabet,
            bucket_boundaries=boundaries,
            max_length=max_length,
            point_stride=point_stride,
            line_preparation=line_preparation,
        )

    return DataBundle(
        "handwriting", make_epoch, split_batches, num_train, offset_mean=mean, offset_std=std,
        bucket_boundaries=boundaries,
    )


def text_vocabulary(builder):
    symbols = list(builder.info.metadata["vocabulary"])
    if "hutter" in builder.name:
        return Vocabulary([bytes([int(b)]).decode("latin-1") for b in symbols])
    end_of_line = "<eos>" if "<eos>" in symbols else "\n"
    unknown = "<unk>" if "<unk>" in symbols else None
    return Vocabulary(symbols, end_of_line=end_of_line, unknown=unknown)


def text_stream(builder, split, vocabulary):
    """All of a split as one id array, in order (lines followed by their end-of-line symbol)."""
    if "hutter" in builder.name:
        chunks = [np.asarray(ex["bytes"]) for ex in tfds.as_numpy(builder.as_dataset(split=split))]
        data = np.concatenate(chunks) if chunks else np.zeros((0,), np.uint8)
        byte_to_id = np.full(256, -1, np.int32)
        for i, symbol in enumerate(vocabulary.symbols):
            byte_to_id[symbol.encode("latin-1")[0]] = i
        ids = byte_to_id[data]
        if np.any(ids < 0):
            raise ValueError(f"split {split} has bytes outside the vocabulary")
        return ids
    end_id = vocabulary.ids[vocabulary.end_of_line]
    ids = []
    for line, example in enumerate(tfds.as_numpy(builder.as_dataset(split=split))):
        try:
            ids.extend(vocabulary.encode(example["text"].decode("utf-8").split()))
        except ValueError as error:
            raise ValueError(f"{builder.name} {split} line {line + 1}: {error}") from None
        ids.append(end_id)
    return np.asarray(ids, np.int32)


def text_bundle(builder, batch_size, segment_length=0, reset_every=1, seed=0):
    vocabulary = text_vocabulary(builder)
    level = "word" if builder.builder_config.name == "word" else "spaced_char"
    num_lines = builder.info.splits["train"].num_examples
    if segment_length:
        boundaries = ()  # fixed-length segments
        streams = {}

        def stream(split):
            if split not in streams:
                streams[split] = text_stream(builder, split, vocabulary)
            return streams[split]

        def make_epoch(epoch):
            return stream_segments(stream("train"), batch_size, segment_length, reset_every)

        def split_batches(split):
            return stream_segments(stream(split), batch_size, segment_length, reset_every)

        num_sequences = max(1, len(stream("train")) // segment_length)
    else:
        boundaries = SENTENCE_BUCKETS[level]

        def lines(split):
            return builder.as_dataset(split=split).map(lambda ex: ex["text"])

        def make_epoch(epoch):
            return sentence_batches(
                lines("train"), vocabulary, level, batch_size, shuffle_buffer=num_lines,
                seed=seed + epoch, bucket_boundaries=boundaries, drop_remainder=True,
            )

        def split_batches(split):
            return sentence_batches(
                lines(split), vocabulary, level, batch_size, bucket_boundaries=boundaries
            )

        num_sequences = num_lines
    return DataBundle(
        "text", make_epoch, split_batches, num_sequences, vocabulary=vocabulary, bucket_boundaries=boundaries,
        sentences=not segment_length,
    )


def load_bundle(spec, batch_size, data_dir=None, manual_dir=None, segment_length=0, reset_every=1,
                hutter_config="paper", seed=0, max_length=None, line_preparation=()):
    """The :class:`DataBundle` of an experiment's dataset (see ``graves_tf.experiment``); handwriting
    lines are prepared by ``line_preparation`` (:func:`graves_tf.data.handwriting.prepare_line`), the
    training and validation splits alike (the paper's setting: none)."""
    if line_preparation and spec.kind != "handwriting":
        raise ValueError(f"--line_preparation prepares handwriting lines; {spec.dataset} is text")
    check_line_preparation(line_preparation)
    builder = prepare_builder(spec.dataset, data_dir, manual_dir, hutter_config)
    if spec.kind == "handwriting":
        alphabet = alphabet_lib.ALPHABETS[spec.alphabet] if spec.model == "handwriting_synthesizer" else None
        return handwriting_bundle(builder, batch_size, alphabet, seed, max_length, spec.point_stride, line_preparation)
    bundle = text_bundle(builder, batch_size, segment_length, reset_every, seed)
    if spec.vocab_size is not None and spec.vocab_size < len(bundle.vocabulary):
        raise ValueError(
            f"the model has vocab_size={spec.vocab_size} but dataset {builder.name} has "
            f"{len(bundle.vocabulary)} symbols"
        )
    return bundle

