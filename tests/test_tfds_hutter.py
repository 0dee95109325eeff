"""Tests of the hutter builder (tfds_builders/hutter/) on its dummy_data/ (tiny fake enwik8 files).

dummy_data/manual/enwik8.prefix: a 2,345-byte fake prefix for `prefix`.
dummy_data/download/extracted/enwik8: a 2,000-byte fake enwik8, what the
mocked download of enwik8.zip returns; `paper` and `standard` accept it once
the test sets EXPECTED_SIZE / EXPECTED_MD5 to its own. CHUNK_SIZE is set to
100 bytes so that every split has several chunks.
"""

import hashlib
from unittest import mock
import zipfile

import numpy as np
import pytest
import tensorflow_datasets as tfds

from graves_tf.tfds_builders.hutter import hutter_dataset_builder

Builder = hutter_dataset_builder.Builder
DUMMY = Builder.code_path.parent / "dummy_data"
FAKE_FULL = DUMMY / "download" / "extracted" / "enwik8"  # 2,000 bytes
FAKE_PREFIX = DUMMY / "manual" / "enwik8.prefix"  # 2,345 bytes
CHUNK = 100


def _fake_full_attributes():
    data = FAKE_FULL.read_bytes()
    return {
        "EXPECTED_SIZE": len(data),
        "EXPECTED_MD5": hashlib.md5(data).hexdigest(),
        "CHUNK_SIZE": CHUNK,
    }


class _PatchBuilder:
    """Mixin: sets class attributes of Builder for the duration of each test."""

    DATASET_CLASS = Builder
    PATCH = {"CHUNK_SIZE": CHUNK}

    def setUp(self):
        for name, value in self.PATCH.items():
            patcher = mock.patch.object(Builder, name, value)
            patcher.start()
            self.addCleanup(patcher.stop)
        super().setUp()


class HutterPrefixTest(_PatchBuilder, tfds.testing.DatasetBuilderTestCase):
    """The prefix config from the manual dir: 2,345 bytes -> 2110/117/118."""

    EXAMPLE_DIR = DUMMY / "manual"
    BUILDER_CONFIG_NAMES_TO_TEST = ["prefix"]
    SPLITS = {"train": 22, "validation": 2, "test": 2}


class HutterPaperTest(_PatchBuilder, tfds.testing.DatasetBuilderTestCase):
    """The paper config from the (mocked) download: 2,000 bytes -> 1920/80."""

    EXAMPLE_DIR = DUMMY / "download"
    DL_EXTRACT_RESULT = "extracted"
    PATCH = _fake_full_attributes()
    BUILDER_CONFIG_NAMES_TO_TEST = ["paper"]
    SPLITS = {"train": 20, "validation": 1}


class HutterStandardTest(_PatchBuilder, tfds.testing.DatasetBuilderTestCase):
    """The standard config from the (mocked) download: 1800/100/100."""

    EXAMPLE_DIR = DUMMY / "download"
    DL_EXTRACT_RESULT = "extracted"
    PATCH = _fake_full_attributes()
    BUILDER_CONFIG_NAMES_TO_TEST = ["standard"]
    SPLITS = {"train": 18, "validation": 1, "test": 1}


# ---------------------------------------------------------------------------
# Contents, metadata and error cases (plain pytest).


@pytest.fixture
def tiny_chunks(monkeypatch):
    monkeypatch.setattr(Builder, "CHUNK_SIZE", CHUNK)


@pytest.fixture
def fake_full(monkeypatch):
    """Makes the 2,000-byte fake stand for the full enwik8."""
    for name, value in _fake_full_attributes().items():
        monkeypatch.setattr(Builder, name, value)


def _build(tmp_path, config, manual_dir):
    builder = Builder(config=config, data_dir=tmp_path / "data")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    return builder


def _stream(builder, split):
    examples = list(tfds.as_numpy(builder.as_dataset(split=split)))
    offsets = [int(ex["offset"]) for ex in examples]
    chunks = [ex["bytes"].tobytes() for ex in examples]
    assert offsets == [sum(len(c) for c in chunks[:i]) for i in range(len(chunks))]
    return b"".join(chunks), [len(c) for c in chunks]


def test_prefix_splits_concatenate_to_the_file(tmp_path, tiny_chunks):
    builder = _build(tmp_path, "prefix", DUMMY / "manual")
    data = FAKE_PREFIX.read_bytes()
    train, train_lengths = _stream(builder, "train")
    validation, _ = _stream(builder, "validation")
    test, _ = _stream(builder, "test")
    assert train + validation + test == data
    assert (len(train), len(validation), len(test)) == (2110, 117, 118)
    assert train_lengths == [CHUNK] * 21 + [10]
    meta = builder.info.metadata
    assert meta["num_bytes"] == {"train": 2110, "validation": 117, "test": 118}
    assert meta["vocabulary"] == sorted(set(data))
    assert meta["total_bytes"] == len(data)
    assert meta["source"] == "enwik8.prefix"
    assert meta["is_full_enwik8"] is False
    assert "NOT THE BENCHMARK" in builder.builder_config.description
    reloaded = Builder(config="prefix", data_dir=tmp_path / "data")
    assert reloaded.info.metadata["vocabulary"] == meta["vocabulary"]


def test_zip_in_manual_dir(tmp_path, fake_full):
    manual = tmp_path / "manual"
    manual.mkdir()
    with zipfile.ZipFile(manual / "enwik8.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("enwik8", FAKE_FULL.read_bytes())
    builder = _build(tmp_path, "paper", manual)
    train, _ = _stream(builder, "train")
    validation, _ = _stream(builder, "validation")
    assert train + validation == FAKE_FULL.read_bytes()
    assert builder.info.metadata["source"] == "enwik8.zip:enwik8"
    assert builder.info.metadata["is_full_enwik8"] is True


@pytest.mark.parametrize("config", ["paper", "standard"])
def test_full_configs_refuse_a_short_file(tmp_path, config):
    message = r"needs the full enwik8.*hutter/prefix.*NOT the benchmark"
    with pytest.raises(ValueError, match=message):
        _build(tmp_path, config, DUMMY / "manual")


@pytest.mark.parametrize("config", ["paper", "standard", "prefix"])
def test_a_full_size_file_with_the_wrong_md5_is_refused(tmp_path, fake_full, config):
    manual = tmp_path / "manual"
    manual.mkdir()
    data = bytearray(FAKE_FULL.read_bytes())
    data[1000] ^= 1
    (manual / "enwik8").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"size of enwik8.*md5.*hutter/prefix"):
        _build(tmp_path, config, manual)


def test_zip_without_the_enwik8_member_is_refused(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    with zipfile.ZipFile(manual / "enwik8.zip", "w") as z:
        z.writestr("something_else", b"abc")
    with pytest.raises(FileNotFoundError, match="no member 'enwik8'"):
        _build(tmp_path, "prefix", manual)


def test_download_without_enwik8_is_refused(tmp_path):
    empty = tmp_path / "extracted"
    empty.mkdir()
    with mock.patch.object(
        tfds.download.DownloadManager, "download_and_extract", return_value=empty
    ):
        with pytest.raises(FileNotFoundError, match="did not give a file 'enwik8'"):
            _build(tmp_path, "prefix", tmp_path / "no_manual_dir")


def test_find_local_source_order(tmp_path):
    find = hutter_dataset_builder.find_local_source
    assert find(None) is None
    assert find(tmp_path) is None
    (tmp_path / "enwik8.other").write_bytes(b"x")
    assert find(tmp_path).name == "enwik8.other"
    (tmp_path / "enwik8.prefix").write_bytes(b"x")
    assert find(tmp_path).name == "enwik8.prefix"
    (tmp_path / "enwik8").write_bytes(b"x")
    assert find(tmp_path).name == "enwik8"


def test_split_sizes_of_the_full_file():
    full = 100_000_000
    paper = dict(Builder.builder_configs["paper"].split_percent)
    standard = dict(Builder.builder_configs["standard"].split_percent)
    assert hutter_dataset_builder.split_sizes(full, tuple(paper.items())) == {
        "train": 96_000_000, "validation": 4_000_000}
    assert hutter_dataset_builder.split_sizes(full, tuple(standard.items())) == {
        "train": 90_000_000, "validation": 5_000_000, "test": 5_000_000}


def test_checksums_list_enwik8_zip():
    info = Builder.url_infos[hutter_dataset_builder.URL]
    assert info.size == 36_445_475
    assert info.checksum == "547994d9980ebed1288380d652999f38a14fe291a6247c157c3d33d4932534bc"
    assert info.filename == "enwik8.zip"


def test_chunks_are_uint8_vectors(tmp_path, tiny_chunks):
    builder = _build(tmp_path, "prefix", DUMMY / "manual")
    example = next(iter(tfds.as_numpy(builder.as_dataset(split="validation"))))
    assert example["bytes"].dtype == np.uint8 and example["bytes"].shape == (CHUNK,)
    assert example["offset"] == 0
