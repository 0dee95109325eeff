"""Tests of the ptb builder (tfds_builders/ptb/) on its dummy_data/ (tiny files in Mikolov's formats).

dummy_data/manual/ holds the six files as a manual dir would;
dummy_data/download/ holds what the mocked downloads return (word/: the three
raw files; char/: the extracted simple-examples.tgz), one training line fewer,
so the split sizes tell which source was read.
"""

import pytest
import tensorflow_datasets as tfds

from graves_tf.tfds_builders.ptb import ptb_dataset_builder

DUMMY = ptb_dataset_builder.Builder.code_path.parent / "dummy_data"


class PtbManualDirTest(tfds.testing.DatasetBuilderTestCase):
    """Both configs read from the manual dir, no download."""

    DATASET_CLASS = ptb_dataset_builder.Builder
    EXAMPLE_DIR = DUMMY / "manual"
    BUILDER_CONFIG_NAMES_TO_TEST = ["word", "char"]
    SPLITS = {"train": 5, "validation": 2, "test": 3}

    def _download_and_prepare_as_dataset(self, builder):
        super()._download_and_prepare_as_dataset(builder)
        self.assertEqual(builder.info.metadata["source"], "manual_dir")
        self.assertEmpty(self._download_urls)


class PtbWordDownloadTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = ptb_dataset_builder.Builder
    EXAMPLE_DIR = DUMMY / "download"
    BUILDER_CONFIG_NAMES_TO_TEST = ["word"]
    SPLITS = {"train": 4, "validation": 2, "test": 3}
    DL_DOWNLOAD_RESULT = {
        "train": "word/ptb.train.txt",
        "validation": "word/ptb.valid.txt",
        "test": "word/ptb.test.txt",
    }


class PtbCharDownloadTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = ptb_dataset_builder.Builder
    EXAMPLE_DIR = DUMMY / "download"
    BUILDER_CONFIG_NAMES_TO_TEST = ["char"]
    SPLITS = {"train": 4, "validation": 2, "test": 3}
    DL_EXTRACT_RESULT = "char"
    # simple-examples.tgz has no sha256 in checksums.tsv: it could not be
    # computed without internet (README.md); register it on first download.
    SKIP_CHECKSUMS = True


# ---------------------------------------------------------------------------
# Contents, metadata and error cases (plain pytest).


def _build(tmp_path, config, manual_dir):
    builder = ptb_dataset_builder.Builder(config=config, data_dir=tmp_path / "data")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    return builder


def _texts(builder, split):
    return [ex["text"].decode() for ex in tfds.as_numpy(builder.as_dataset(split=split))]


def test_word_lines_in_file_order_and_vocabulary(tmp_path):
    builder = _build(tmp_path, "word", DUMMY / "manual")
    lines = (DUMMY / "manual" / "ptb.train.txt").read_text().split("\n")[:-1]
    assert _texts(builder, "train") == lines
    vocab = builder.info.metadata["vocabulary"]
    words = sorted({w for line in lines for w in line.split()})
    assert vocab == words + ["<eos>"]
    assert builder.info.metadata["eos"] == "<eos>"
    # The metadata is saved with the dataset and read back.
    reloaded = ptb_dataset_builder.Builder(config="word", data_dir=tmp_path / "data")
    assert reloaded.info.metadata["vocabulary"] == vocab


def test_char_lines_and_vocabulary(tmp_path):
    builder = _build(tmp_path, "char", DUMMY / "manual")
    texts = _texts(builder, "validation")
    # Lines as in the file: space-separated characters, '_' between words.
    assert [t.split() for t in texts] == [
        list("the_dog_sat"),
        list("prices_fell_N_N"),
    ]
    # Joining the lines with the end-of-line symbol gives the file back.
    raw = (DUMMY / "manual" / "ptb.char.valid.txt").read_text()
    assert "\n".join(texts) + "\n " == raw
    vocab = builder.info.metadata["vocabulary"]
    assert vocab[-1] == "\n" and "_" in vocab and " " not in vocab
    assert vocab[:-1] == sorted(vocab[:-1])


def test_read_lines_handles_the_char_files_trailing_space(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("a _ b \n c \n ")
    assert ptb_dataset_builder.read_lines(path) == ["a _ b ", " c "]
    path.write_text(" x y \n z")  # a last line without its newline is kept
    assert ptb_dataset_builder.read_lines(path) == [" x y ", " z"]


def test_simple_examples_layout_in_manual_dir(tmp_path):
    manual = DUMMY / "download" / "char"  # holds simple-examples/data/ptb.char.*
    builder = _build(tmp_path, "char", manual)
    assert builder.info.splits["train"].num_examples == 4


def test_partial_manual_dir_is_refused(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "ptb.train.txt").write_text(" a b \n")
    with pytest.raises(FileNotFoundError, match=r"missing: .*ptb\.test\.txt.*ptb\.valid\.txt"):
        _build(tmp_path, "word", manual)


def test_checksums_cover_the_word_urls():
    infos = ptb_dataset_builder.Builder.url_infos
    assert set(infos) == set(ptb_dataset_builder.WORD_URLS.values())
    assert {info.filename for info in infos.values()} == {
        "ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"}
