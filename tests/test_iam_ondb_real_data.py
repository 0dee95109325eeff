"""The iam_ondb TFDS builder on the real IAM-OnDB archives (skipped when absent).

The data folder is `<repo root>/../shared/data`, or $GRAVES_TF_DATA; the
archives are in its `iam-ondb/` folder. The fast test streams the strokes
archive up to three lines (about 2 s); the slow one builds the whole dataset
into a temporary data_dir (about a minute on the 2-core machine).
"""

import os
import pathlib
import shutil
import tarfile
import time
import xml.etree.ElementTree as ET

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from graves_tf.tfds_builders.iam_ondb import iam_ondb_dataset_builder as iam  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(os.environ.get("GRAVES_TF_DATA", REPO_ROOT.parent / "shared" / "data"))
IAM = DATA / "iam-ondb"
ARCHIVES = (IAM / iam.STROKES_ARCHIVE, IAM / iam.ASCII_ARCHIVE)

pytestmark = pytest.mark.real_data

# What the builder makes of the real data (README.md, "The data").
TRANSCRIBED = 12_187  # stroke files with a CSR line
DROPPED = {
    "a08-551z-09": "no CSR line 9 (a08-551z.txt has 8 CSR lines)",
    "z00-001-01": "placeholder transcription 'Please Enter Transcription here'",
    "z01-000z-01": "placeholder transcription 'Please Enter Transcription here'",
    **{
        f"z01-000z-{n:02d}": f"no CSR line {n} (z01-000z.txt has 1 CSR lines)"
        for n in range(2, 9)
    },
}
SPLITS = {"train": 10_742, "validation": 1_443}
CLEANING = {
    "points_read": 7_650_901,
    "points_written": 7_686_166,
    "gaps_filled": 15_941,
    "points_interpolated": 35_265,
    "lines_interpolated": 5_327,
    "steps_removed": 9,
    "lines_with_steps_removed": 7,
}
# Lines read by the fast test (next to each other in the archive) and what the
# cleaning does to them.
FAST_LINES = {
    "a01-000u-01": dict(points_interpolated=1, steps_removed=0),
    "a01-001z-09": dict(points_interpolated=0, steps_removed=3),
    "a01-004w-07": dict(points_interpolated=3, steps_removed=1),
}


def _need_data():
    missing = [str(p) for p in ARCHIVES if not p.exists()]
    if missing:
        pytest.skip(f"real data absent: {', '.join(missing)} (set GRAVES_TF_DATA)")


def _stream_members(archive, stems):
    """{stem: bytes} of the archive's members with those file stems; stops when all are found."""
    found = {}
    with tarfile.open(archive, mode="r|gz") as tar:
        for member in tar:
            stem = pathlib.PurePosixPath(member.name).stem
            if member.isfile() and stem in stems:
                found[stem] = tar.extractfile(member).read()
                if len(found) == len(stems):
                    break
    return found


def _xml_strokes(data):
    """The XML's strokes as (x, y) arrays, read with ElementTree (not the builder's parser)."""
    root = ET.fromstring(data)
    return [
        np.array([(float(p.get("x")), float(p.get("y"))) for p in s.iter("Point")])
        for s in root.iter("Stroke")
    ]


def test_line_a01_000u_01_and_its_cleaning_from_the_archives():
    _need_data()
    xml = _stream_members(IAM / iam.STROKES_ARCHIVE, set(FAST_LINES))
    assert set(xml) == set(FAST_LINES)
    texts = _stream_members(IAM / iam.ASCII_ARCHIVE, {"a01-000u"})
    assert iam.parse_transcription(texts["a01-000u"])[0] == "A MOVE to stop Mr . Gaitskell"
    assert iam.parse_line_id("a01-000u-01")[0] == "a01-000"

    for line_id, expected in FAST_LINES.items():
        strokes = _xml_strokes(xml[line_id])
        original = np.concatenate(strokes)
        original_ends = np.cumsum([len(s) for s in strokes]) - 1
        offsets, counts = iam.line_offsets(xml[line_id])
        assert offsets.dtype == np.float32 and offsets.shape[1] == 3
        assert counts.points_interpolated == expected["points_interpolated"], line_id
        assert counts.steps_removed == expected["steps_removed"], line_id
        np.testing.assert_array_equal(offsets[0, :2], [0, 0])
        points = original[0] + np.cumsum(offsets[:, :2].astype(np.float64), axis=0)
        assert len(points) == len(original) + counts.points_interpolated

        # The XML's points are all there, unmoved, in order; the others are
        # the interpolated ones, each on the chord between two XML points.
        kept = []
        for point in original:
            start = kept[-1] + 1 if kept else 0
            index = start + int(np.flatnonzero(np.all(np.abs(points[start:] - point) < 1e-2, axis=1))[0])
            kept.append(index)
        kept = np.array(kept)
        inserted = np.setdiff1d(np.arange(len(points)), kept)
        assert len(inserted) == counts.points_interpolated
        for i in inserted:
            before, after = kept[kept < i].max(), kept[kept > i].min()
            a, b, p = points[before], points[after], points[i]
            cross = (b - a)[0] * (p - a)[1] - (b - a)[1] * (p - a)[0]
            assert abs(cross) <= 1e-3 * np.hypot(*(b - a)) ** 2
            assert 0 < np.dot(p - a, b - a) < np.dot(b - a, b - a)

        # end_of_stroke: the XML's stroke ends plus one per removed step, each
        # before a pen-down step longer than MAX_STEP.
        ends = np.flatnonzero(offsets[:, 2] == 1)
        assert set(kept[original_ends]) <= set(ends)
        extra = sorted(set(ends) - set(kept[original_ends]))
        assert len(extra) == counts.steps_removed
        for e in extra:
            assert np.hypot(*offsets[e + 1, :2]) > iam.MAX_STEP
        assert set(np.unique(offsets[:, 2])) <= {0.0, 1.0}

        # Row by row: a row between two XML points is their difference, exactly;
        # the rows across a filled gap are equal and add up to the XML step.
        for k in range(1, len(original)):
            rows = offsets[kept[k - 1] + 1 : kept[k] + 1, :2].astype(np.float64)
            step = original[k] - original[k - 1]
            if len(rows) == 1:
                np.testing.assert_array_equal(rows[0], step.astype(np.float32))
            else:
                np.testing.assert_allclose(rows, np.tile(step / len(rows), (len(rows), 1)), atol=1e-4)

    # a01-000u-01: 568 XML points in 31 strokes; the cleaning filled one gap of
    # 30 ms (2 intervals) whose 41.6-unit step is twice its neighbours' (20.6).
    strokes = _xml_strokes(xml["a01-000u-01"])
    offsets, counts = iam.line_offsets(xml["a01-000u-01"])
    assert (len(strokes), sum(map(len, strokes)), len(offsets)) == (31, 568, 569)
    assert (counts.gaps_filled, counts.points_interpolated, counts.steps_removed) == (1, 1, 0)


@pytest.mark.slow
def test_full_build(tmp_path):
    _need_data()
    start = time.perf_counter()
    builder = iam.Builder(data_dir=tmp_path)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(IAM)))
    seconds = time.perf_counter() - start
    print(f"iam_ondb full build: {seconds:.0f} s")

    splits = {name: info.num_examples for name, info in builder.info.splits.items()}
    assert splits == SPLITS
    assert sum(splits.values()) == TRANSCRIBED - 2  # the two placeholder transcriptions
    assert 10_500 < splits["train"] < 11_000 and 1_300 < splits["validation"] < 1_600  # paper: 10,741 / 1,438

    metadata = tfds.builder("iam_ondb", data_dir=tmp_path).info.metadata  # as the pipeline reads it
    assert {d["id"]: d["reason"] for d in metadata["dropped"]} == DROPPED
    assert metadata["corrupt_files"] == []
    assert {k: metadata["cleaning"][k] for k in CLEANING} == CLEANING
    assert metadata["cleaning"]["max_step"] == iam.MAX_STEP

    skip_strokes = {"strokes": tfds.decode.SkipDecoding()}
    forms, texts = {}, {}
    for split in SPLITS:
        ds = builder.as_dataset(split=split, decoders=skip_strokes)
        forms[split] = set()
        for ex in tfds.as_numpy(ds.map(lambda ex: {k: ex[k] for k in ("id", "form", "text")})):
            forms[split].add(ex["form"].decode())
            texts[ex["id"].decode()] = ex["text"].decode()
    assert not forms["train"] & forms["validation"]
    assert len(texts) == sum(SPLITS.values())
    assert texts["a01-000u-01"] == "A MOVE to stop Mr . Gaitskell"

    # Statistics: over every row of every train line, and only those.
    total, total_sq, rows = np.zeros(2), np.zeros(2), 0
    for ex in tfds.as_numpy(builder.as_dataset(split="train").map(lambda ex: ex["strokes"][:, :2])):
        d = ex.astype(np.float64)
        total, total_sq, rows = total + d.sum(0), total_sq + (d * d).sum(0), rows + len(d)
    mean = total / rows
    np.testing.assert_allclose(metadata["offset_mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(metadata["offset_std"], np.sqrt(total_sq / rows - mean**2), rtol=1e-6)
    assert len(metadata["offset_mean"]) == len(metadata["offset_std"]) == 2
    shutil.rmtree(tmp_path / "iam_ondb", ignore_errors=True)  # ~90 MB
