"""IAM On-Line Handwriting Database (IAM-OnDB): text lines as pen offsets.

Graves (2013), section 4: each text line of IAM-OnDB is one sequence of
(dx, dy, end_of_stroke) vectors, after recording errors were corrected "by
interpolating to fill in for missing readings, and removing steps whose length
exceeded a certain threshold". The two rules below do that; README.md gives
their numbers, why, and what they change on the real data.

Source: the manual_dir (registration required) holding `lineStrokes-all.tar.gz`
and `ascii-all.tar.gz` (read as streams, never extracted) or the extracted
`lineStrokes/` and `ascii/` folders.
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import hashlib
import re
import tarfile
from typing import Iterator
import xml.etree.ElementTree as ET
import xml.parsers.expat
import zlib

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

HOMEPAGE = "https://fki.tic.heia-fr.ch/databases/iam-on-line-handwriting-database"
STROKES_ARCHIVE = "lineStrokes-all.tar.gz"
ASCII_ARCHIVE = "ascii-all.tar.gz"
STROKES_FOLDER = "lineStrokes"
ASCII_FOLDER = "ascii"
# The official task split files (optional in manual_dir).
TRAIN_SET_FILE = "trainset.txt"
VALIDATION_SET_FILES = ("testset_v.txt", "testset_t.txt")  # the two validation sets
TEST_SET_FILE = "testset_f.txt"

# --- Rule 1, missing readings. Inside a stroke, the step from point j to j+1
# is a gap of lost readings when the clock says at least GAP_MIN_INTERVALS
# sampling intervals passed AND the pen moved at least GAP_MIN_STRETCH times
# the local step length (the median length of the NEIGHBOUR_STEPS steps on each
# side); the timestamps jitter too much to be trusted alone. The gap gets
#   min(round(dt / interval), round(step / local step)) - 1
# points (at most MAX_FILLED_POINTS) evenly spaced on the straight segment.
GAP_MIN_INTERVALS = 1.5
GAP_MIN_STRETCH = 2.0
NEIGHBOUR_STEPS = 2
MAX_FILLED_POINTS = 20
# --- Rule 2, outlier steps. After rule 1, a pen-down step (between two points
# of one stroke) longer than MAX_STEP whiteboard units is removed from the pen
# trace: the stroke ends before it, so the displacement is kept as a pen-up
# move and no point is moved or deleted.
MAX_STEP = 500.0

# --- Split without the official files: the paper's share of validation lines
# (its training set + larger validation set + test set for training, the
# smaller validation set, 1438 of 12179 lines, for early stopping).
PAPER_VALIDATION_LINES = 1438
PAPER_TOTAL_LINES = 5364 + 1438 + 1518 + 3859
VALIDATION_FRACTION = PAPER_VALIDATION_LINES / PAPER_TOTAL_LINES

# The CSR text of the test forms z00-001 and z01-000z: a placeholder, not what
# was written; such lines are dropped.
PLACEHOLDER_TEXT = "Please Enter Transcription here"

_LINE_ID = re.compile(r"^([a-z0-9]+-[0-9]+)([a-z]?)-([0-9]+)$")
_POINT = re.compile(
    rb'<Point\s+x="([-+.0-9eE]+)"\s+y="([-+.0-9eE]+)"\s+time="([-+.0-9eE]+)"\s*/>'
)

_MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
IAM-OnDB is free for non-commercial research but needs a registration at
{HOMEPAGE}
After registering, download these two files from the database's download page

    {STROKES_ARCHIVE}  (line stroke XML files: lineStrokes/...)
    {ASCII_ARCHIVE}        (transcriptions: ascii/...)

and put them, unchanged, in the manual_dir (`tfds build ... --manual_dir=<folder>`;
default ~/tensorflow_datasets/downloads/manual/). Extracted folders
`{STROKES_FOLDER}/` and `{ASCII_FOLDER}/` in the manual_dir work too. If the task files
{TRAIN_SET_FILE}, {VALIDATION_SET_FILES[0]}, {VALIDATION_SET_FILES[1]} and {TEST_SET_FILE}
are there as well, the official split is used (see README.md).
"""


class CorruptFile(ValueError):
    """A stroke XML file that cannot be read as a pen trace."""


class MissingDataError(FileNotFoundError):
    """The manual_dir lacks the IAM-OnDB files."""


class CorruptArchive(ValueError):
    """An archive of the manual_dir ends early or is not a gzipped tar file (a partial download)."""


# ----------------------------------------------------------------- parsing


def _parse_stroke_xml_tree(data: bytes) -> list[np.ndarray]:
    """The general (slower) reader: any attribute order, ElementTree."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise CorruptFile(f"XML parse error: {e}") from e
    strokes = []
    for stroke in root.iter("Stroke"):
        try:
            points = [
                (float(p.attrib["x"]), float(p.attrib["y"]), float(p.attrib["time"]))
                for p in stroke.iter("Point")
            ]
        except (KeyError, ValueError) as e:
            raise CorruptFile(f"bad Point attribute: {e!r}") from e
        if points:
            strokes.append(np.array(points, dtype=np.float64))
    return strokes


def parse_stroke_xml(data: bytes) -> list[np.ndarray]:
    """A lineStrokes XML file -> its strokes, `(n, 3)` float64 (x, y, time) arrays.

    Fast path: expat checks that the file is well-formed XML, a regular
    expression reads the `<Point x=".." y=".." time=".."/>` elements stroke by
    stroke. Files in another layout go through ElementTree.

    Raises:
        CorruptFile: not well-formed (e.g. truncated), a point without numeric
            x, y and time, or no point at all.
    """
    try:
        xml.parsers.expat.ParserCreate().Parse(data, True)
    except xml.parsers.expat.ExpatError as e:
        raise CorruptFile(f"XML parse error: {e}") from e
    parts = data.split(b"<Stroke")[1:]
    strokes = []
    for part in parts:
        points = _POINT.findall(part)
        if points:
            strokes.append(np.array(points, dtype=np.float64))
    if sum(len(s) for s in strokes) != data.count(b"<Point"):
        strokes = _parse_stroke_xml_tree(data)
    if not strokes:
        raise CorruptFile("no Stroke/Point elements")
    return strokes


def parse_transcription(data: bytes) -> list[str] | None:
    """The CSR lines of an `ascii/` transcription file (None: no CSR section).

    The lines are the non-empty lines after the `CSR:` header, stripped of
    surrounding white space; line i (1-based) transcribes stroke file
    `<file stem>-<i:02d>.xml`.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for i, line in enumerate(lines):
        if line.strip() == "CSR:":
            return [l.strip() for l in lines[i + 1 :] if l.strip()]
    return None


def parse_line_id(line_id: str) -> tuple[str, str, int]:
    """`a01-000u-01` -> (`a01-000`, `a01-000u`, 1): form, transcription file stem, line."""
    match = _LINE_ID.match(line_id)
    if not match:
        raise ValueError(f"not an IAM-OnDB line id: {line_id!r}")
    form, writer_suffix, number = match.groups()
    return form, form + writer_suffix, int(number)


# ---------------------------------------------------------------- cleaning


@dataclasses.dataclass
class CleaningCounts:
    """What the cleaning changed; summed over lines with `+`."""

    points_read: int = 0
    points_written: int = 0
    gaps_filled: int = 0  # rule 1: gaps of missing readings
    points_interpolated: int = 0  # rule 1: points inserted in them
    lines_interpolated: int = 0
    steps_removed: int = 0  # rule 2: pen-down steps > MAX_STEP made pen-up moves
    lines_with_steps_removed: int = 0

    def __add__(self, other: CleaningCounts) -> CleaningCounts:
        return CleaningCounts(
            *(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other)))
        )

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in dataclasses.asdict(self).items()}


def sampling_interval(strokes: list[np.ndarray]) -> float | None:
    """The line's pen sampling interval in seconds, robust to timestamp glitches.

    The median, over strokes of at least 3 points, of their mean time step
    (timestamps have a 10 ms resolution: single steps of the ~15 ms interval
    read 10 or 20 ms). None when no stroke has a positive duration.
    """
    means = [
        (s[-1, 2] - s[0, 2]) / (len(s) - 1)
        for s in strokes
        if len(s) >= 3 and s[-1, 2] > s[0, 2]
    ]
    return float(np.median(means)) if means else None


def fill_missing_readings(
    stroke: np.ndarray, interval: float | None, typical_step: float
) -> tuple[np.ndarray, int, int]:
    """Rule 1 on one stroke: linear interpolation over gaps of lost readings.

    Args:
        stroke: `(n, 3)` (x, y, time) points.
        interval: the line's sampling interval (None: nothing is filled).
        typical_step: the line's median step length, the local step of a
            stroke too short to have neighbouring steps.

    Returns:
        `(m, 2)` points (the n originals, in order, plus the inserted ones), the
        number of gaps filled and the number of points inserted.
    """
    xy = stroke[:, :2]
    if interval is None or len(stroke) < 2:
        return xy, 0, 0
    dt = np.diff(stroke[:, 2])
    candidates = np.flatnonzero(dt >= GAP_MIN_INTERVALS * interval)
    if not len(candidates):
        return xy, 0, 0
    steps = np.hypot(*np.diff(xy, axis=0).T)
    pieces, start, gaps, inserted = [], 0, 0, 0
    for j in candidates:
        neighbours = np.concatenate(
            [steps[max(0, j - NEIGHBOUR_STEPS) : j], steps[j + 1 : j + 1 + NEIGHBOUR_STEPS]]
        )
        local = max(float(np.median(neighbours)) if len(neighbours) else typical_step, 1.0)
        if steps[j] < GAP_MIN_STRETCH * local:
            continue
        missing = min(round(dt[j] / interval), round(steps[j] / local), MAX_FILLED_POINTS + 1) - 1
        if missing < 1:
            continue
        fractions = np.arange(1, missing + 1)[:, None] / (missing + 1)
        pieces += [xy[start : j + 1], xy[j] + fractions * (xy[j + 1] - xy[j])]
        start = j + 1
        gaps += 1
        inserted += missing
    if not gaps:
        return xy, 0, 0
    pieces.append(xy[start:])
    return np.concatenate(pieces), gaps, inserted


def remove_long_steps(points: np.ndarray, end_of_stroke: np.ndarray) -> tuple[np.ndarray, int]:
    """Rule 2: ends the stroke before every pen-down step longer than MAX_STEP.

    Args:
        points: `(T, 2)` points of a line.
        end_of_stroke: `(T,)` bool, True on the last point of each stroke.

    Returns:
        the new end_of_stroke and the number of steps removed from the pen
        trace (made pen-up moves).
    """
    steps = np.hypot(*np.diff(points, axis=0).T)
    long_steps = np.flatnonzero((steps > MAX_STEP) & ~end_of_stroke[:-1])
    end_of_stroke = end_of_stroke.copy()
    end_of_stroke[long_steps] = True
    return end_of_stroke, len(long_steps)


def clean_line(strokes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, CleaningCounts]:
    """Both rules on a line: `(x, y, time)` strokes -> points `(T, 2)`, end_of_stroke `(T,)`."""
    counts = CleaningCounts(points_read=sum(len(s) for s in strokes))
    interval = sampling_interval(strokes)
    points = np.concatenate(strokes)
    ends = np.cumsum([len(s) for s in strokes]) - 1
    inside = np.ones(max(len(points) - 1, 0), dtype=bool)  # step j stays in a stroke
    inside[ends[:-1]] = False
    delta = np.diff(points, axis=0)
    steps = np.hypot(delta[:, 0], delta[:, 1])
    typical_step = float(np.median(steps[inside])) if inside.any() else 1.0
    if interval is not None:
        gap_ends = np.flatnonzero(inside & (delta[:, 2] >= GAP_MIN_INTERVALS * interval))
        candidates = set(np.searchsorted(ends, gap_ends).tolist())  # strokes to look at
    else:
        candidates = set()
    xy = []
    for i, stroke in enumerate(strokes):
        if i in candidates:
            filled, gaps, inserted = fill_missing_readings(stroke, interval, typical_step)
            counts.gaps_filled += gaps
            counts.points_interpolated += inserted
            xy.append(filled)
        else:
            xy.append(stroke[:, :2])
    points = np.concatenate(xy)
    end_of_stroke = np.zeros(len(points), dtype=bool)
    end_of_stroke[np.cumsum([len(s) for s in xy]) - 1] = True
    end_of_stroke, counts.steps_removed = remove_long_steps(points, end_of_stroke)
    counts.points_written = len(points)
    counts.lines_interpolated = int(counts.points_interpolated > 0)
    counts.lines_with_steps_removed = int(counts.steps_removed > 0)
    return points, end_of_stroke, counts


def to_offsets(points: np.ndarray, end_of_stroke: np.ndarray) -> np.ndarray:
    """Points `(T, 2)` and end_of_stroke `(T,)` -> `(T, 3)` float32 (dx, dy, end_of_stroke).

    Row 0 is (0, 0, end_of_stroke[0]): the offsets are taken from the line's
    first point, so `cumsum(offsets[:, :2])` gives the points with the first
    one at the origin. Row i > 0 is point i minus point i-1 (a pen-up move
    when point i-1 ends a stroke).
    """
    offsets = np.zeros((len(points), 3), dtype=np.float64)
    offsets[1:, :2] = np.diff(points, axis=0)
    offsets[:, 2] = end_of_stroke
    return offsets.astype(np.float32)


def line_offsets(xml_data: bytes) -> tuple[np.ndarray, CleaningCounts]:
    """A stroke XML file -> its cleaned `(T, 3)` offsets and what the cleaning did."""
    points, end_of_stroke, counts = clean_line(parse_stroke_xml(xml_data))
    return to_offsets(points, end_of_stroke), counts


# ----------------------------------------------------------------- reading


def _iter_archive(path: epath.Path, suffix: str) -> Iterator[tuple[str, bytes]]:
    """(member name, content) of the archive's files ending in `suffix`, streamed."""
    try:
        with path.open("rb") as f, tarfile.open(fileobj=f, mode="r|gz") as archive:
            for member in archive:
                if member.isfile() and member.name.endswith(suffix):
                    yield member.name, archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise CorruptArchive(
            f"{path} is cut short or damaged ({type(error).__name__}: {error}), as a partial download "
            f"leaves it: download {path.name} again from {HOMEPAGE} and rebuild"
        ) from None


def _iter_folder(folder: epath.Path, suffix: str) -> Iterator[tuple[str, bytes]]:
    """The same for an extracted folder, in the archives' layout `<folder>/a01/a01-000/...`."""
    for path in sorted(folder.glob(f"*/*/*{suffix}")):
        yield f"{folder.name}/{path.relative_to(folder)}", path.read_bytes()


def iter_files(manual_dir: epath.PathLike, archive: str, folder: str, suffix: str):
    """(name, content) of the files from `archive` in manual_dir, else from `folder`."""
    manual_dir = epath.Path(manual_dir)
    if (manual_dir / archive).exists():
        return _iter_archive(manual_dir / archive, suffix)
    if (manual_dir / folder).is_dir():
        return _iter_folder(manual_dir / folder, suffix)
    raise MissingDataError(
        f"{manual_dir} has neither {archive} nor an extracted {folder}/ folder.\n"
        + _MANUAL_DOWNLOAD_INSTRUCTIONS
    )


def check_manual_dir(manual_dir: epath.PathLike) -> epath.Path:
    """The manual_dir as a Path if it has both files (or folders), else MissingDataError."""
    manual_dir = epath.Path(manual_dir)
    missing = [
        archive
        for archive, folder in ((STROKES_ARCHIVE, STROKES_FOLDER), (ASCII_ARCHIVE, ASCII_FOLDER))
        if not (manual_dir / archive).exists() and not (manual_dir / folder).is_dir()
    ]
    if missing:
        raise MissingDataError(
            f"IAM-OnDB: {' and '.join(missing)} not found in the manual_dir {manual_dir}.\n"
            + _MANUAL_DOWNLOAD_INSTRUCTIONS
        )
    return manual_dir


@dataclasses.dataclass
class Line:
    id: str
    form: str
    text: str
    strokes: np.ndarray  # (T, 3) float32 offsets


def read_transcriptions(manual_dir: epath.PathLike) -> dict[str, list[str] | None]:
    """Transcription file stem (`a01-000u`) -> its CSR lines (None: no CSR section)."""
    return {
        epath.Path(name).stem: parse_transcription(data)
        for name, data in iter_files(manual_dir, ASCII_ARCHIVE, ASCII_FOLDER, ".txt")
    }


def read_lines(manual_dir: epath.PathLike):
    """Reads, matches and cleans every line of the manual_dir.

    Returns:
        `(lines, dropped, counts)`: the transcribed, cleaned `Line`s sorted by
        id; `{"id", "reason"}` dicts for the stroke files left out (sorted by
        id); the summed `CleaningCounts`.
    """
    manual_dir = check_manual_dir(manual_dir)
    texts = read_transcriptions(manual_dir)
    lines, dropped, counts = [], [], CleaningCounts()
    for name, data in iter_files(manual_dir, STROKES_ARCHIVE, STROKES_FOLDER, ".xml"):
        line_id = epath.Path(name).stem
        try:
            form, text_file, number = parse_line_id(line_id)
        except ValueError:
            dropped.append({"id": line_id, "reason": f"unexpected file name {name}"})
            continue
        csr = texts.get(text_file, "missing")
        if csr == "missing":
            reason = f"no transcription file {text_file}.txt"
        elif csr is None:
            reason = f"{text_file}.txt has no CSR section"
        elif number > len(csr):
            reason = f"no CSR line {number} ({text_file}.txt has {len(csr)} CSR lines)"
        elif csr[number - 1].lower() == PLACEHOLDER_TEXT.lower():
            reason = f"placeholder transcription {csr[number - 1]!r}"
        else:
            reason = None
        if reason:
            dropped.append({"id": line_id, "reason": reason})
            continue
        try:
            offsets, line_counts = line_offsets(data)
        except CorruptFile as e:
            logging.warning("IAM-OnDB: skipping corrupt stroke file %s: %s", name, e)
            dropped.append({"id": line_id, "reason": f"corrupt XML: {e}"})
            continue
        counts += line_counts
        lines.append(Line(line_id, form, csr[number - 1], offsets))
    lines.sort(key=lambda l: l.id)
    dropped.sort(key=lambda d: d["id"])
    return lines, dropped, counts


# ------------------------------------------------------------------ splits


def _form_hash(form: str) -> str:
    return hashlib.sha256(form.encode("utf-8")).hexdigest()


def hash_split(lines: list[Line], fraction: float = VALIDATION_FRACTION):
    """(train, validation) lines, split by form: no form is in both.

    Forms are taken in the order of the SHA-256 of their id; validation gets
    forms until it holds at least `fraction` of the lines; train the rest.
    """
    per_form = collections.Counter(l.form for l in lines)
    target = fraction * len(lines)
    validation_forms, n = set(), 0
    for form in sorted(per_form, key=_form_hash):
        if n >= target:
            break
        validation_forms.add(form)
        n += per_form[form]
    train = [l for l in lines if l.form not in validation_forms]
    validation = [l for l in lines if l.form in validation_forms]
    return train, validation


def _read_set_file(path: epath.Path) -> set[str]:
    return {l.strip() for l in path.read_text().splitlines() if l.strip()}


def official_split(lines: list[Line], manual_dir: epath.PathLike):
    """(train, validation, validation file) by the task files; None without them.

    As in the paper: validation is the smaller of the two validation sets
    (by transcribed lines), train is everything else (trainset, the larger
    validation set, testset_f and any line in no file). Entries are
    transcription file stems (`a01-000u`).
    """
    manual_dir = epath.Path(manual_dir)
    names = (TRAIN_SET_FILE, *VALIDATION_SET_FILES, TEST_SET_FILE)
    if not all((manual_dir / n).exists() for n in names):
        return None
    sets = {n: _read_set_file(manual_dir / n) for n in VALIDATION_SET_FILES}
    stems = [parse_line_id(l.id)[1] for l in lines]
    sizes = {n: sum(s in sets[n] for s in stems) for n in VALIDATION_SET_FILES}
    chosen = min(VALIDATION_SET_FILES, key=lambda n: (sizes[n], n))
    logging.info("IAM-OnDB official split: lines per validation file %s; using %s", sizes, chosen)
    train = [l for l, s in zip(lines, stems) if s not in sets[chosen]]
    validation = [l for l, s in zip(lines, stems) if s in sets[chosen]]
    return train, validation, chosen


def offset_statistics(lines: list[Line]) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of (dx, dy) over every row of `lines` (row 0 too)."""
    total, total_sq, n = np.zeros(2), np.zeros(2), 0
    for line in lines:
        d = line.strokes[:, :2].astype(np.float64)
        total += d.sum(axis=0)
        total_sq += np.square(d).sum(axis=0)
        n += len(d)
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - np.square(mean), 0.0))
    return mean.tolist(), std.tolist()


# ----------------------------------------------------------------- builder


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for IAM-OnDB lines as (dx, dy, end_of_stroke) offsets."""

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

    RELEASE_NOTES = {
        "1.0.0": "Initial release: CSR transcriptions, cleaned pen offsets, split by form.",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS


    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "strokes": tfds.features.Tensor(
                        shape=(None, 3),
                        dtype=np.float32,
                        doc="(dx, dy, end_of_stroke) per pen point, whiteboard units; "
                        "row 0 is (0, 0, e): the first point's offset from itself.",
                    ),
                    "text": tfds.features.Text(doc="CSR transcription of the line."),
                    "id": tfds.features.Text(doc="Line id, e.g. a01-000u-01."),
                    "form": tfds.features.Text(doc="Form (text) id, e.g. a01-000."),
                }
            ),
            supervised_keys=None,
            homepage=HOMEPAGE,
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = check_manual_dir(dl_manager.manual_dir)
        lines, dropped, counts = read_lines(manual_dir)
        if not lines:
            raise MissingDataError(f"IAM-OnDB: no transcribed line in {manual_dir}")
        official = official_split(lines, manual_dir)
        if official:
            train, validation, chosen = official
            method = f"official task files: validation = {chosen}, train = all other lines"
        else:
            train, validation = hash_split(lines)
            method = (
                "by form: forms in the order of the SHA-256 of their id go to validation "
                f"until it holds >= {VALIDATION_FRACTION:.4f} of the lines (1438/12179 as "
                "in the paper), the other forms to train"
            )
        mean, std = offset_statistics(train)
        corrupt = [d["id"] for d in dropped if d["reason"].startswith("corrupt")]
        if corrupt:
            logging.warning("IAM-OnDB: %d corrupt stroke files skipped: %s", len(corrupt), corrupt)
        logging.info(
            "IAM-OnDB: %d train and %d validation lines, %d stroke files dropped, cleaning %s",
            len(train), len(validation), len(dropped), counts.as_dict(),
        )
        self.info.metadata.update(
            {
                "offset_mean": mean,
                "offset_std": std,
                "offset_statistics": "(dx, dy) over every row of every train line",
                "cleaning": {
                    **counts.as_dict(),
                    "gap_min_intervals": GAP_MIN_INTERVALS,
                    "gap_min_stretch": GAP_MIN_STRETCH,
                    "neighbour_steps": NEIGHBOUR_STEPS,
                    "max_filled_points": MAX_FILLED_POINTS,
                    "max_step": MAX_STEP,
                },
                "dropped": dropped,
                "corrupt_files": corrupt,
                "split": {
                    "method": method,
                    "train_forms": len({l.form for l in train}),
                    "validation_forms": len({l.form for l in validation}),
                },
            }
        )
        return {
            "train": self._generate_examples(train),
            "validation": self._generate_examples(validation),
        }

    def _generate_examples(self, lines: list[Line]):
        for line in lines:
            yield line.id, {
                "strokes": line.strokes,
                "text": line.text,
                "id": line.id,
                "form": line.form,
            }
