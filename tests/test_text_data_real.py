"""The ptb and hutter TFDS builders on the real data (skipped when it is absent).

The data folder is `<repo root>/../shared/data`, or $GRAVES_TF_DATA. Each build
goes to a temporary data_dir with the data folder as manual_dir, so nothing is
downloaded. About 5 s per PTB config and under a second for the enwik8 prefix
on the 2-core machine.
"""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from graves_tf.tfds_builders.hutter import hutter_dataset_builder  # noqa: E402
from graves_tf.tfds_builders.ptb import ptb_dataset_builder  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(os.environ.get("GRAVES_TF_DATA", REPO_ROOT.parent / "shared" / "data"))

pytestmark = pytest.mark.real_data

PTB_VOCABULARY_SIZE = {"word": 10_000, "char": 50}
ENWIK8_PREFIX = DATA / "enwik8" / "enwik8.prefix"


def _need(*paths):
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        pytest.skip(f"real data absent: {', '.join(missing)} (set GRAVES_TF_DATA)")


def _build(builder_cls, config, manual_dir, data_dir):
    builder = builder_cls(config=config, data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    return builder


def _file_lines(path):
    return ptb_dataset_builder.read_lines(path)


@pytest.mark.parametrize("level", ["word", "char"])
def test_ptb(tmp_path, level):
    ptb = DATA / "ptb"
    files = {
        s: ptb / ptb_dataset_builder.file_name(level, s) for s in ("train", "validation", "test")
    }
    _need(*files.values())
    builder = _build(ptb_dataset_builder.Builder, level, ptb, tmp_path)

    for split, path in files.items():
        # One example per line of the file (the files' `wc -l`).
        assert builder.info.splits[split].num_examples == path.read_bytes().count(b"\n"), split
    for split in ("validation", "test"):  # the small splits: every line, in order
        texts = [
            t.decode()
            for batch in tfds.as_numpy(builder.as_dataset(split=split).batch(4096))
            for t in batch["text"]
        ]
        assert texts == _file_lines(files[split]), split
    first = next(iter(tfds.as_numpy(builder.as_dataset(split="train[:1]"))))
    assert first["text"].decode() == _file_lines(files["train"])[0]

    vocabulary = builder.info.metadata["vocabulary"]
    assert len(vocabulary) == PTB_VOCABULARY_SIZE[level]
    assert vocabulary[-1] == ptb_dataset_builder.EOS[level]
    if level == "char":
        assert "_" in vocabulary and " " not in vocabulary
    else:
        assert "<unk>" in vocabulary and "N" in vocabulary
    # Saved with the dataset: a fresh builder reads it back.
    reloaded = ptb_dataset_builder.Builder(config=level, data_dir=tmp_path)
    assert reloaded.info.metadata["vocabulary"] == vocabulary


def test_hutter_prefix_streams_the_file_in_order(tmp_path):
    _need(ENWIK8_PREFIX)
    builder = _build(hutter_dataset_builder.Builder, "prefix", ENWIK8_PREFIX.parent, tmp_path)
    data = ENWIK8_PREFIX.read_bytes()

    parts = []
    for split in ("train", "validation", "test"):
        examples = list(tfds.as_numpy(builder.as_dataset(split=split)))
        chunks = [ex["bytes"].tobytes() for ex in examples]
        assert [int(ex["offset"]) for ex in examples] == [
            i * hutter_dataset_builder.Builder.CHUNK_SIZE for i in range(len(chunks))]
        assert all(len(c) == hutter_dataset_builder.Builder.CHUNK_SIZE for c in chunks[:-1])
        parts.append(b"".join(chunks))
    assert b"".join(parts) == data

    meta = builder.info.metadata
    assert meta["num_bytes"] == {s: len(p) for s, p in zip(("train", "validation", "test"), parts)}
    assert meta["num_bytes"]["train"] == len(data) * 90 // 100
    assert meta["vocabulary"] == sorted(set(data))
    assert meta["is_full_enwik8"] is False


@pytest.mark.parametrize("config", ["paper", "standard"])
def test_hutter_full_configs_refuse_the_prefix(tmp_path, config):
    _need(ENWIK8_PREFIX)
    with pytest.raises(ValueError, match=r"needs the full enwik8.*enwik8\.prefix.*hutter/prefix"):
        _build(hutter_dataset_builder.Builder, config, ENWIK8_PREFIX.parent, tmp_path)
