"""Reading rendered handwriting back with Tesseract, and scoring what it reads."""

import os
import shutil
import subprocess
import tempfile


def edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[:], i
        for j, cb in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb))
    return row[-1]


def normalise_text(text):
    return " ".join(text.split())


class Reader:
    """Renders offsets and reads them back with Tesseract (one text line per image)."""

    def __init__(self, scale, line_width, images_dir=None):
        if shutil.which("tesseract") is None:
            raise SystemExit("tesseract is not on the PATH (Debian/Ubuntu: apt install tesseract-ocr)")
        self.scale, self.line_width = scale, line_width
        self.folder = images_dir or tempfile.mkdtemp(prefix="legibility_")
        os.makedirs(self.folder, exist_ok=True)

    def read(self, offsets, name):
        from graves_tf import drawing

        path = os.path.join(self.folder, f"{name}.png")
        drawing.rasterize(offsets, self.scale, self.line_width).save(path)
        result = subprocess.run(["tesseract", path, "stdout", "--psm", "7"], capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"tesseract failed on {path}: {result.stderr.strip()}")
        return normalise_text(result.stdout)


def character_error_rate(pairs):
    errors = sum(edit_distance(read, truth) for read, truth in pairs)
    return errors / sum(len(truth) for _, truth in pairs)
