"""Hutter prize Wikipedia data, enwik8 (Graves 2013, section 3.2).

enwik8 is the first 100,000,000 bytes of the English Wikipedia XML dump of
2006-03-03. The examples are the byte stream in chunks of `CHUNK_SIZE`
(1,000,000) bytes, in order (`disable_shuffling=True`): iterating a split and
concatenating `bytes` gives the split's bytes back; `offset` is the chunk's
byte offset within its split.

Configs:

* `hutter/paper`: the first 96,000,000 bytes train, the last 4,000,000
    validation, as in section 3.2 of the paper. Full file only.
* `hutter/standard`: 90,000,000 / 5,000,000 / 5,000,000 bytes
    train / validation / test, the split of most later work. Full file only.
* `hutter/prefix`: NOT THE BENCHMARK. Any shorter file named `enwik8*` (such
    as `enwik8.prefix`, the first 4,154,399 bytes), split 90% / 5% / 5% like
    `standard`, for tests and small experiments.

Sources, in this order: a file in `manual_dir` (`enwik8`, `enwik8.zip`, then
`enwik8.prefix` and any other file named `enwik8*`), otherwise the download of
http://mattmahoney.net/dc/enwik8.zip (size and sha256 in checksums.tsv). A
100,000,000-byte file is checked against enwik8's md5 in every config;
`paper` and `standard` refuse any other file and point to `prefix`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
import zlib

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

URL = "http://mattmahoney.net/dc/enwik8.zip"
MEMBER = "enwik8"  # the zip's single member
ZIP_MAGIC = b"PK\x03\x04"


class CorruptArchive(ValueError):
    """enwik8.zip of the manual_dir ends early or is damaged (a partial download)."""


def _corrupt(path, problem) -> CorruptArchive:
    return CorruptArchive(
        f"{path} is cut short or damaged ({problem}), as a partial download leaves it: "
        f"download {path.name} again from {URL} and rebuild"
    )


@dataclasses.dataclass(eq=False)
class HutterConfig(tfds.core.BuilderConfig):
    """A split of the byte stream.

    Attributes:
        split_percent: (split name, percent of the file) pairs, in stream order;
            the last split takes the remainder.
        full_file_only: refuse anything but the full 100,000,000-byte enwik8.
    """

    split_percent: tuple[tuple[str, int], ...] = ()
    full_file_only: bool = True


@dataclasses.dataclass(frozen=True)
class Source:
    """A byte stream to read: a plain file, or a member of a zip file."""

    path: epath.Path
    member: str | None = None

    @property
    def name(self) -> str:
        return f"{self.path.name}:{self.member}" if self.member else self.path.name

    def open(self):
        if self.member is None:
            return self.path.open("rb")
        return _ZipMember(self.path, self.member)


class _ZipMember:
    """Context manager giving a zip member as a binary stream."""

    def __init__(self, path: epath.Path, member: str):
        self._file = path.open("rb")
        try:
            self._zip = zipfile.ZipFile(self._file)
            if member not in self._zip.namelist():
                raise FileNotFoundError(
                    f"{path} has no member {member!r} (it has {self._zip.namelist()[:5]})."
                )
            self._stream = self._zip.open(member)
        except BaseException:
            self._file.close()
            raise

    def __enter__(self):
        return self._stream

    def __exit__(self, *exc):
        self._stream.close()
        self._zip.close()
        self._file.close()


@dataclasses.dataclass(frozen=True)
class Scan:
    size: int
    md5: str
    vocabulary: list[int]


def scan(source: Source, chunk_size: int = 1 << 20) -> Scan:
    """Size, md5 and the sorted distinct byte values of a source, in one pass."""
    md5 = hashlib.md5()
    counts = np.zeros(256, dtype=np.int64)
    size = 0
    try:
        with source.open() as f:
            while chunk := f.read(chunk_size):
                md5.update(chunk)
                counts += np.bincount(np.frombuffer(chunk, dtype=np.uint8), minlength=256)
                size += len(chunk)
    except (zipfile.BadZipFile, EOFError, zlib.error) as error:
        if source.member is None:
            raise
        raise _corrupt(source.path, f"{type(error).__name__}: {error}") from None
    return Scan(size, md5.hexdigest(), [int(b) for b in np.flatnonzero(counts)])


def split_sizes(total: int, split_percent) -> dict[str, int]:
    """Bytes per split: floor(total * percent / 100), the last takes the rest."""
    sizes = {}
    for name, percent in split_percent[:-1]:
        sizes[name] = total * percent // 100
    sizes[split_percent[-1][0]] = total - sum(sizes.values())
    return sizes


def _manual_dir(dl_manager) -> epath.Path | None:
    """`dl_manager.manual_dir`, or None where none was given or it is empty."""
    try:
        return epath.Path(dl_manager.manual_dir)
    except (AssertionError, ValueError):
        return None


def find_local_source(manual_dir: epath.Path | None) -> Source | None:
    """`enwik8`, `enwik8.zip`, `enwik8.prefix`, then any other `enwik8*` file."""
    if manual_dir is None:
        return None
    preferred = ["enwik8", "enwik8.zip", "enwik8.prefix"]
    others = sorted(p.name for p in manual_dir.glob("enwik8*") if p.name not in preferred)
    for name in preferred + others:
        path = manual_dir / name
        if path.exists() and not path.is_dir():
            with path.open("rb") as f:
                is_zip = zipfile.is_zipfile(f)
                f.seek(0)
                starts_like_a_zip = f.read(len(ZIP_MAGIC)) == ZIP_MAGIC
            if not is_zip and (starts_like_a_zip or name.endswith(".zip")):
                # Not read as raw bytes: the prefix config would split the compressed bytes.
                raise _corrupt(path, "no zip central directory at its end")
            return Source(path, MEMBER if is_zip else None)
    return None


_PREFIX_WARNING = (
    "NOT THE BENCHMARK: splits whatever enwik8 prefix it is given (e.g. "
    "enwik8.prefix, the first 4,154,399 bytes) 90% / 5% / 5% into "
    "train / validation / test; for tests and small experiments only. Its "
    "numbers are not comparable with results on enwik8."
)


class Builder(tfds.core.GeneratorBasedBuilder):
    """enwik8 as an ordered byte stream."""

    VERSION = tfds.core.Version("1.0.0")

    # This folder, wherever the package is. TFDS's defaults join the module name onto the top-level package's
    # folder, which misses graves_tf.tfds_builders where an editable install maps that name onto a checkout's
    # tfds_builders/ (setup.py's package_dir). TFDS reads README.md and CITATIONS.bib from pkg_dir_path,
    # checksums.tsv next to code_path, and its test case the dummy_data/ there.
    pkg_dir_path = epath.Path(__file__).parent

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        return epath.Path(__file__)

    RELEASE_NOTES = {"1.0.0": "Initial release: paper, standard and prefix configs."}
    BUILDER_CONFIGS = [
        HutterConfig(
            name="paper",
            description=(
                "Graves (2013) section 3.2: the first 96,000,000 bytes of enwik8 "
                "train, the last 4,000,000 validation. Full file only."
            ),
            split_percent=(("train", 96), ("validation", 4)),
        ),
        HutterConfig(
            name="standard",
            description=(
                "The common enwik8 split: 90,000,000 / 5,000,000 / 5,000,000 "
                "bytes train / validation / test. Full file only."
            ),
            split_percent=(("train", 90), ("validation", 5), ("test", 5)),
        ),
        HutterConfig(
            name="prefix",
            description=_PREFIX_WARNING,
            split_percent=(("train", 90), ("validation", 5), ("test", 5)),
            full_file_only=False,
        ),
    ]
    DEFAULT_CONFIG_NAME = "paper"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Optional: without a manual dir, enwik8.zip is downloaded. To use a local
    copy, put `enwik8` (100,000,000 bytes, md5 a1fa5ffddb56f4953e226637dabbb36a)
    or `enwik8.zip` in the manual dir. The `prefix` config (not the benchmark)
    also takes a shorter file named `enwik8*`, such as `enwik8.prefix`.
    """

    # The full file; class attributes so that tests can stand in a tiny one.
    EXPECTED_SIZE = 100_000_000
    EXPECTED_MD5 = "a1fa5ffddb56f4953e226637dabbb36a"
    CHUNK_SIZE = 1_000_000


    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "bytes": tfds.features.Tensor(
                    shape=(None,),
                    dtype=np.uint8,
                    encoding=tfds.features.Encoding.BYTES,
                ),
                "offset": tfds.features.Scalar(
                    dtype=np.int64, doc="Byte offset of the chunk within its split."
                ),
            }),
            supervised_keys=None,
            homepage="http://prize.hutter1.net/",
            metadata=tfds.core.MetadataDict(),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        config = self.builder_config
        source = find_local_source(_manual_dir(dl_manager))
        if source is None:
            extracted = epath.Path(dl_manager.download_and_extract(URL))
            source = Source(extracted / MEMBER)
            if not source.path.exists():
                raise FileNotFoundError(f"{URL} did not give a file {MEMBER!r} in {extracted}.")

        stats = scan(source)
        self._check(source, stats)
        sizes = split_sizes(stats.size, config.split_percent)
        logging.info(
            "hutter/%s: %s, %d bytes, splits %s", config.name, source.name, stats.size, sizes
        )

        self.info.metadata["vocabulary"] = stats.vocabulary
        self.info.metadata["num_bytes"] = sizes
        self.info.metadata["total_bytes"] = stats.size
        self.info.metadata["source"] = source.name
        self.info.metadata["source_md5"] = stats.md5
        self.info.metadata["is_full_enwik8"] = (
            stats.size == self.EXPECTED_SIZE and stats.md5 == self.EXPECTED_MD5
        )

        generators = {}
        start = 0
        for name, _ in config.split_percent:
            generators[name] = self._generate_examples(source, start, sizes[name])
            start += sizes[name]
        return generators

    def _check(self, source: Source, stats: Scan) -> None:
        config = self.builder_config
        full = f"{self.EXPECTED_SIZE:,} bytes, md5 {self.EXPECTED_MD5}"
        if stats.size == self.EXPECTED_SIZE and stats.md5 != self.EXPECTED_MD5:
            raise ValueError(
                f"hutter/{config.name}: {source.name} has the size of enwik8 "
                f"({stats.size:,} bytes) but md5 {stats.md5}, not "
                f"{self.EXPECTED_MD5}: it is not enwik8 (damaged or another file). "
                "Replace it with the real enwik8; for a shorter prefix of enwik8 "
                "use the `hutter/prefix` config (not the benchmark)."
            )
        if stats.size == 0:
            raise ValueError(f"hutter/{config.name}: {source.name} is empty.")
        if config.full_file_only and stats.size != self.EXPECTED_SIZE:
            raise ValueError(
                f"hutter/{config.name} needs the full enwik8 ({full}); "
                f"{source.name} has {stats.size:,} bytes. For a shorter file such "
                "as enwik8.prefix use the `hutter/prefix` config, which is NOT the "
                "benchmark (its numbers are not comparable with enwik8 results)."
            )

    def _generate_examples(self, source: Source, start: int, length: int):
        with source.open() as f:
            f.seek(start)
            offset = 0
            while offset < length:
                chunk = f.read(min(self.CHUNK_SIZE, length - offset))
                if not chunk:
                    raise ValueError(
                        f"{source.name} ended at byte {start + offset:,}, before "
                        f"{start + length:,}: was it changed during the build?"
                    )
                yield offset, {"bytes": np.frombuffer(chunk, dtype=np.uint8), "offset": offset}
                offset += len(chunk)
