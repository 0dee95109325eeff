"""Writes the iam_ondb dummy data: tiny IAM-OnDB archives in the original layout.

    python tfds_builders/iam_ondb/dummy_data/make_dummy_data.py

writes `lineStrokes-all.tar.gz` and `ascii-all.tar.gz` next to this script
(byte-identical on every run). Every text and pen trace is made up; none
comes from the real database. What they hold, and what the builder makes of it:

| stroke file       | form    | what it tests                                   | outcome        |
|-------------------|---------|-------------------------------------------------|----------------|
| a01-000u-01..03   | a01-000 | plain lines; -01 has a gap of 3 lost readings,  | 3 lines        |
|                   |         | -02 a 600-unit pen-down jump                    |                |
| a01-000u-04       | a01-000 | a01-000u.txt has only 3 CSR lines               | dropped        |
| a01-001w-01       | a01-001 | CRLF transcription file                         | 1 line         |
| a01-001w-02       | a01-001 | truncated XML                                   | dropped, corrupt |
| b02-010x-01..02   | b02-010 |                                                 | 2 lines        |
| c03-020-01..02    | c03-020 | form without a writer letter                    | 2 lines        |
| d04-030z-01..02   | d04-030 |                                                 | 2 lines        |

10 transcribed lines. In the SHA-256 order of the form ids c03-020 comes
first, so validation gets its 2 lines (>= 11.8% of 10) and train the other 8.
The timestamps step by 15 ms, written with 2 decimals as in the real files.
"""

import gzip
import io
import math
import pathlib
import tarfile

HERE = pathlib.Path(__file__).parent
INTERVAL = 0.015  # pen sampling interval (s), as in IAM-OnDB

TEXTS = {  # transcription file stem -> (OCR lines, CSR lines)
    "a01-000u": (
        ["A NOTE to send Ms . Parkhurst from", "collecting any more"],
        ["A NOTE to send", "Ms . Parkhurst from", "collecting any more"],
    ),
    "a01-001w": (["Where the birds gather", "some bright blue paint"], ["Where the birds gather", "some bright blue paint"]),
    "b02-010x": (["He said .", "It is so ."], ["He said .", "It is so ."]),
    "c03-020": (["The art", "of it"], ["The art", "of it"]),
    "d04-030z": (["one two", "three"], ["one two", "three"]),
}
CRLF_FILES = {"a01-001w"}
# stroke file -> special content
GAP_LINE = "a01-000u-01"  # 3 readings lost in the middle of stroke 0
JUMP_LINE = "a01-000u-02"  # a 600-unit pen-down step inside stroke 1
CORRUPT_LINE = "a01-001w-02"
LINES = [
    "a01-000u-01", "a01-000u-02", "a01-000u-03", "a01-000u-04",
    "a01-001w-01", "a01-001w-02",
    "b02-010x-01", "b02-010x-02",
    "c03-020-01", "c03-020-02",
    "d04-030z-01", "d04-030z-02",
]


def stroke_points(seed, n, x0, y0, t0):
    """n points of a wavy stroke, steps of ~15-18 units: (x, y, time), 2-decimal times."""
    points = []
    for i in range(n):
        x = x0 + 15 * i
        y = y0 + round(25 * math.sin(0.4 * i + seed))
        points.append([x, y, round(t0 + i * INTERVAL, 2)])
    return points


def line_strokes(line_id, k):
    t0 = 100.0 + 10 * k
    strokes = [
        stroke_points(k, 12, 1000, 1200, t0),
        stroke_points(k + 1, 10, 1300, 1200, t0 + 0.5),
        stroke_points(k + 2, 3, 1500, 1100, t0 + 0.9),  # a short stroke (an i-dot)
    ]
    if line_id == GAP_LINE:
        # Lose the readings 5, 6 and 7 of stroke 0: a 4-interval gap (dt 0.06 s)
        # over ~4 steps of distance; rule 1 puts 3 points back on the chord.
        del strokes[0][5:8]
    if line_id == JUMP_LINE:
        # The second half of stroke 1 is 600 units lower, reached in one reading.
        for p in strokes[1][5:]:
            p[1] += 600
    return strokes


def stroke_xml(strokes):
    out = [
        '<?xml version="1.0" encoding="ISO-8859-1"?>',
        "<WhiteboardCaptureSession>",
        "  <WhiteboardDescription>",
        '    <SensorLocation corner="top_left"/>',
        '    <DiagonallyOppositeCoords x="6512" y="1376"/>',
        '    <VerticallyOppositeCoords x="966" y="1376"/>',
        '    <HorizontallyOppositeCoords x="6512" y="787"/>',
        "  </WhiteboardDescription>",
        "  <StrokeSet>",
    ]
    for s in strokes:
        out.append(f'    <Stroke colour="black" start_time="{s[0][2]:.2f}" end_time="{s[-1][2]:.2f}">')
        out += [f'      <Point x="{x}" y="{y}" time="{t:.2f}"/>' for x, y, t in s]
        out.append("    </Stroke>")
    out += ["  </StrokeSet>", "</WhiteboardCaptureSession>", ""]
    return "\n".join(out).encode("latin-1")


def transcription(ocr, csr, crlf=False):
    text = "OCR:\n\n" + "\n".join(ocr) + "\n\nCSR:\n\n" + "\n".join(csr) + "\n"
    return (text.replace("\n", "\r\n") if crlf else text).encode("latin-1")


def stroke_files():
    """{archive member name: content} of lineStrokes-all.tar.gz."""
    files = {}
    for k, line_id in enumerate(LINES):
        form = line_id[:7]
        data = stroke_xml(line_strokes(line_id, k))
        if line_id == CORRUPT_LINE:
            data = data[: len(data) // 2]  # truncated mid-file
        files[f"lineStrokes/{form[:3]}/{form}/{line_id}.xml"] = data
    return files


def ascii_files():
    """{archive member name: content} of ascii-all.tar.gz."""
    return {
        f"ascii/{stem[:3]}/{stem[:7]}/{stem}.txt": transcription(ocr, csr, stem in CRLF_FILES)
        for stem, (ocr, csr) in TEXTS.items()
    }


def write_archive(path, files):
    """A reproducible .tar.gz (fixed times, owners and order) with folder entries."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        folders = sorted({str(pathlib.PurePosixPath(n).parents[i]) for n in files for i in range(3)} - {"."})
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[name]))
    with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
        gz.write(buffer.getvalue())


def write_folders(root):
    """The same files extracted: `root/lineStrokes/...` and `root/ascii/...`."""
    for name, data in {**stroke_files(), **ascii_files()}.items():
        path = pathlib.Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def write_archives(root):
    write_archive(pathlib.Path(root) / "lineStrokes-all.tar.gz", stroke_files())
    write_archive(pathlib.Path(root) / "ascii-all.tar.gz", ascii_files())


if __name__ == "__main__":
    write_archives(HERE)
    for name in ("lineStrokes-all.tar.gz", "ascii-all.tar.gz"):
        print(name, (HERE / name).stat().st_size, "bytes")
