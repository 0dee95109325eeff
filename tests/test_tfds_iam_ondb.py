"""Tests of the iam_ondb builder (tfds_builders/iam_ondb/) on its dummy_data/ (see dummy_data/make_dummy_data.py).

The dummy archives hold 12 stroke files in 5 forms: 10 transcribed lines, one
stroke file without a CSR line, one truncated XML file; one line has a gap of 3
lost readings, one a 600-unit pen-down jump.
"""

import importlib.util
import logging
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from graves_tf.tfds_builders.iam_ondb import iam_ondb_dataset_builder as iam

DUMMY = pathlib.Path(iam.__file__).parent / "dummy_data"
TRAIN_LINES = 8
VALIDATION_LINES = 2


def _load_dummy_maker():
    spec = importlib.util.spec_from_file_location("make_dummy_data", DUMMY / "make_dummy_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_dummy_data = _load_dummy_maker()


class IamOndbTest(tfds.testing.DatasetBuilderTestCase):
    """Builds the dummy archives and checks the splits, features and metadata."""

    DATASET_CLASS = iam.Builder
    EXAMPLE_DIR = DUMMY
    SPLITS = {"train": TRAIN_LINES, "validation": VALIDATION_LINES}

    def _download_and_prepare_as_dataset(self, builder):
        super()._download_and_prepare_as_dataset(builder)
        metadata = builder.info.metadata
        # The corrupt file and the untranscribed one are dropped, and said so.
        self.assertEqual(metadata["corrupt_files"], ["a01-001w-02"])
        self.assertEqual(
            {d["id"]: d["reason"].split(":")[0] for d in metadata["dropped"]},
            {"a01-000u-04": "no CSR line 4 (a01-000u.txt has 3 CSR lines)", "a01-001w-02": "corrupt XML"},
        )
        cleaning = metadata["cleaning"]
        self.assertEqual(cleaning["gaps_filled"], 1)
        self.assertEqual(cleaning["points_interpolated"], 3)
        self.assertEqual(cleaning["lines_interpolated"], 1)
        self.assertEqual(cleaning["steps_removed"], 1)
        self.assertEqual(cleaning["lines_with_steps_removed"], 1)
        self.assertEqual(cleaning["points_written"], cleaning["points_read"] + 3)
        self.assertEqual(metadata["split"]["validation_forms"], 1)

        # Statistics: over every row of the train split only.
        train = _rows(builder, "train")
        everything = np.concatenate([train, _rows(builder, "validation")])
        np.testing.assert_allclose(metadata["offset_mean"], train.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(metadata["offset_std"], train.std(axis=0), rtol=1e-6)
        assert not np.allclose(metadata["offset_mean"], everything.mean(axis=0), rtol=1e-6)

        examples = {ex["id"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split="train"))}
        first = examples["a01-000u-01"]
        self.assertEqual(first["text"].decode(), "A NOTE to send")
        self.assertEqual(first["form"].decode(), "a01-000")
        self.assertEqual(first["strokes"].dtype, np.float32)
        np.testing.assert_array_equal(first["strokes"][0], [0, 0, 0])


def _rows(builder, split):
    return np.concatenate(
        [ex["strokes"][:, :2] for ex in tfds.as_numpy(builder.as_dataset(split=split))]
    ).astype(np.float64)


# ------------------------------------------------------------ reading / errors


def test_corrupt_file_is_skipped_counted_and_logged(caplog):
    with caplog.at_level(logging.WARNING):
        lines, dropped, _ = iam.read_lines(DUMMY)
    assert len(lines) == TRAIN_LINES + VALIDATION_LINES
    assert "a01-001w-02" not in {l.id for l in lines}
    corrupt = [d for d in dropped if d["reason"].startswith("corrupt XML")]
    assert [d["id"] for d in corrupt] == ["a01-001w-02"]
    assert any("a01-001w-02" in r.getMessage() and "corrupt" in r.getMessage() for r in caplog.records)


def test_untranscribed_stroke_file_is_dropped_with_reason():
    _, dropped, _ = iam.read_lines(DUMMY)
    assert {"id": "a01-000u-04", "reason": "no CSR line 4 (a01-000u.txt has 3 CSR lines)"} in dropped


def test_missing_manual_dir_names_the_files(tmp_path):
    builder = iam.Builder(data_dir=tmp_path / "data")
    config = tfds.download.DownloadConfig(manual_dir=str(tmp_path / "absent"))
    with pytest.raises(AssertionError) as error:
        builder.download_and_prepare(download_config=config)
    for word in ("lineStrokes-all.tar.gz", "ascii-all.tar.gz", iam.HOMEPAGE, "registration"):
        assert word in str(error.value)


def test_missing_archive_names_the_files(tmp_path):
    shutil.copy(DUMMY / "ascii-all.tar.gz", tmp_path)  # the strokes archive is missing
    with pytest.raises(iam.MissingDataError) as error:
        iam.read_lines(tmp_path)
    message = str(error.value)
    assert "lineStrokes-all.tar.gz not found" in message
    for word in ("ascii-all.tar.gz", iam.HOMEPAGE, "registration"):
        assert word in message


def test_extracted_folders_read_like_the_archives(tmp_path):
    make_dummy_data.write_folders(tmp_path)
    from_folders, dropped_folders, counts_folders = iam.read_lines(tmp_path)
    from_archives, dropped_archives, counts_archives = iam.read_lines(DUMMY)
    assert [(l.id, l.form, l.text) for l in from_folders] == [(l.id, l.form, l.text) for l in from_archives]
    for a, b in zip(from_folders, from_archives):
        np.testing.assert_array_equal(a.strokes, b.strokes)
    assert dropped_folders == dropped_archives
    assert counts_folders == counts_archives


def test_dummy_archives_are_what_the_script_writes(tmp_path):
    make_dummy_data.write_archives(tmp_path)
    for name in ("lineStrokes-all.tar.gz", "ascii-all.tar.gz"):
        assert (tmp_path / name).read_bytes() == (DUMMY / name).read_bytes()


# ------------------------------------------------------------------- parsing


def test_parse_transcription_reads_the_csr_section():
    data = b"OCR:\r\n\r\nthe OCR line\r\n\r\nCSR:\r\n\r\nfirst line \r\nsecond  line\r\n\r\n"
    assert iam.parse_transcription(data) == ["first line", "second  line"]
    assert iam.parse_transcription(b"OCR:\n\nonly ocr\n") is None


def test_parse_line_id():
    assert iam.parse_line_id("a01-000u-01") == ("a01-000", "a01-000u", 1)
    assert iam.parse_line_id("g01-039-12") == ("g01-039", "g01-039", 12)
    with pytest.raises(ValueError):
        iam.parse_line_id("readme")


def test_fast_parser_agrees_with_elementtree():
    data = make_dummy_data.stroke_xml(make_dummy_data.line_strokes("b02-010x-01", 3))
    fast, tree = iam.parse_stroke_xml(data), iam._parse_stroke_xml_tree(data)
    assert len(fast) == len(tree) == 3
    for a, b in zip(fast, tree):
        np.testing.assert_array_equal(a, b)
    # Another attribute order is not read by the fast path: the fallback is.
    swapped = data.replace(b'<Point x="', b'<Point q="1" x="')
    for a, b in zip(iam.parse_stroke_xml(swapped), tree):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "data",
    [b"<WhiteboardCaptureSession><StrokeSet><Stroke>", b"<StrokeSet></StrokeSet>", b'<S><Point x="a" y="1" time="2"/></S>'],
)
def test_corrupt_xml_raises(data):
    with pytest.raises(iam.CorruptFile):
        iam.parse_stroke_xml(data)


# ------------------------------------------------------------------ cleaning


def _stroke(xs, ys, ts):
    return np.stack([xs, ys, ts], axis=1).astype(np.float64)


def _clean_strokes(n=2):
    """Gap-free strokes sampled every 15 ms: with them the line's interval is 15 ms."""
    i = np.arange(8.0)
    return [_stroke(5000 + 10 * i + 200 * k, 0 * i, 200 + k + 0.015 * i) for k in range(n)]


def test_gap_of_missing_readings_is_interpolated():
    # 20 readings 15 ms apart moving 10 units right; readings 8, 9 and 10 lost.
    i = np.arange(20.0)
    full = _stroke(10 * i, 0 * i, 100 + 0.015 * i)
    stroke = np.delete(full, [8, 9, 10], axis=0)
    others = _clean_strokes()
    points, end_of_stroke, counts = iam.clean_line([stroke] + others)
    np.testing.assert_allclose(points[:20], full[:, :2])  # the lost points are back on the chord
    np.testing.assert_array_equal(points[20:], np.concatenate(others)[:, :2])
    assert counts.gaps_filled == 1 and counts.points_interpolated == 3
    assert counts.lines_interpolated == 1 and counts.steps_removed == 0
    assert np.flatnonzero(end_of_stroke).tolist() == [19, 27, 35]


def test_gap_needs_both_time_and_distance():
    i = np.arange(20.0)
    # A long time gap with an ordinary step (the pen paused): no points added.
    paused = _stroke(10 * i, 0 * i, 100 + 0.015 * i + 0.2 * (i >= 10))
    # A long step with an ordinary time step (a fast stroke): no points added.
    fast = _stroke(10 * i + 60 * (i >= 10), 0 * i, 100 + 0.015 * i)
    for stroke in (paused, fast):
        points, _, counts = iam.clean_line([stroke] + _clean_strokes())
        np.testing.assert_array_equal(points[:20], stroke[:, :2])
        assert counts.points_interpolated == 0


def test_gap_filling_is_capped():
    i = np.arange(20.0)
    stroke = _stroke(10 * i + 990 * (i >= 10), 0 * i, 100 + 0.015 * i + 1.5 * (i >= 10))
    _, _, counts = iam.clean_line([stroke] + _clean_strokes())
    assert counts.gaps_filled == 1 and counts.points_interpolated == iam.MAX_FILLED_POINTS


def test_outlier_step_is_removed_from_the_pen_trace():
    i = np.arange(10.0)
    # A 600-unit jump between readings 4 and 5, inside one stroke, no time gap.
    stroke = _stroke(10 * i, 600.0 * (i >= 5), 100 + 0.015 * i)
    second = _stroke(200 + 10 * i[:3], 0 * i[:3], 101 + 0.015 * i[:3])
    points, end_of_stroke, counts = iam.clean_line([stroke, second])
    np.testing.assert_array_equal(points, np.concatenate([stroke, second])[:, :2])  # nothing moved
    assert np.flatnonzero(end_of_stroke).tolist() == [4, 9, 12]  # the stroke now ends before the jump
    assert counts.steps_removed == 1 and counts.lines_with_steps_removed == 1
    offsets = iam.to_offsets(points, end_of_stroke)
    assert offsets[5].tolist() == [10.0, 600.0, 0.0]  # the jump is kept as a pen-up move


def test_pen_up_moves_are_not_outliers():
    i = np.arange(5.0)
    strokes = [_stroke(10 * i, 0 * i, 100 + 0.015 * i), _stroke(3000 + 10 * i, 0 * i, 101 + 0.015 * i)]
    _, _, counts = iam.clean_line(strokes)
    assert counts.steps_removed == 0


def test_offsets_row_zero_and_end_of_stroke():
    points = np.array([[5.0, 7.0], [6.0, 9.0], [10.0, 10.0], [11.0, 12.0]])
    end_of_stroke = np.array([False, True, False, True])
    offsets = iam.to_offsets(points, end_of_stroke)
    assert offsets.dtype == np.float32
    assert offsets.tolist() == [[0, 0, 0], [1, 2, 1], [4, 1, 0], [1, 2, 1]]
    np.testing.assert_array_equal(np.cumsum(offsets[:, :2], axis=0), points - points[0])


# -------------------------------------------------------------------- splits


def _line(line_id, rows):
    return iam.Line(line_id, iam.parse_line_id(line_id)[0], "t", np.asarray(rows, np.float32))


def test_hash_split_keeps_forms_whole_and_near_the_paper_fraction():
    lines = [_line(f"a{f:02d}-{f:03d}u-{n:02d}", [[0, 0, 0]]) for f in range(40) for n in range(1, 8)]
    train, validation = iam.hash_split(lines)
    assert not {l.form for l in train} & {l.form for l in validation}
    assert len(train) + len(validation) == len(lines)
    target = iam.VALIDATION_FRACTION * len(lines)
    assert target <= len(validation) < target + 7


def test_offset_statistics_use_only_the_lines_given():
    train = [_line("a01-000u-01", [[0, 0, 0], [2, 4, 1]]), _line("a01-000u-02", [[0, 0, 0], [4, -4, 1]])]
    mean, std = iam.offset_statistics(train)
    np.testing.assert_allclose(mean, [1.5, 0.0])
    np.testing.assert_allclose(std, np.std([[0, 0], [2, 4], [0, 0], [4, -4]], axis=0))


def test_official_split_files_choose_the_smaller_validation_set(tmp_path):
    for name in ("lineStrokes-all.tar.gz", "ascii-all.tar.gz"):
        shutil.copy(DUMMY / name, tmp_path)
    (tmp_path / "trainset.txt").write_text("a01-000u\nc03-020\n")
    (tmp_path / "testset_v.txt").write_text("a01-001w\nb02-010x\n")  # 3 transcribed lines
    (tmp_path / "testset_t.txt").write_text("d04-030z\n")  # 2 lines: the smaller
    (tmp_path / "testset_f.txt").write_text("\n")
    lines, _, _ = iam.read_lines(tmp_path)
    train, validation, chosen = iam.official_split(lines, tmp_path)
    assert chosen == "testset_t.txt"
    assert [l.id for l in validation] == ["d04-030z-01", "d04-030z-02"]
    assert len(train) == len(lines) - 2
    assert iam.official_split(lines, DUMMY) is None  # no task files: hash split
