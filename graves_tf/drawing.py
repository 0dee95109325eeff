"""Pictures of handwriting: pen offsets -> strokes -> PNG arrays and SVG files."""

import io

import numpy as np


def offsets_to_strokes(offsets):
    """``(T, 3)`` (dx, dy, end_of_stroke) offsets -> list of ``(n, 2)`` absolute point arrays.

    A stroke ends at every point whose end-of-stroke bit is set; the pen is
    lifted between strokes.
    """
    offsets = np.asarray(offsets, dtype=np.float64)
    if len(offsets) == 0:
        return []
    points = np.cumsum(offsets[:, :2], axis=0)
    ends = np.flatnonzero(offsets[:, 2] > 0.5)
    strokes, start = [], 0
    for end in list(ends) + [len(points) - 1]:
        if end >= start:
            strokes.append(points[start : end + 1])
        start = end + 1
    return [s for s in strokes if len(s)]


def render_array(offsets, title=None, width=8.0, line_width=1.5):
    """Renders offsets to an ``(H, W, 4)`` uint8 RGBA image (y axis pointing down, as on the whiteboard)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strokes = offsets_to_strokes(offsets)
    figure, axes = plt.subplots(figsize=(width, width / 4))
    for stroke in strokes:
        axes.plot(stroke[:, 0], -stroke[:, 1], "k-", linewidth=line_width, solid_capstyle="round")
    axes.set_aspect("equal")
    axes.axis("off")
    if title:
        axes.set_title(title, fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    buffer.seek(0)
    image = plt.imread(buffer)
    return (image * 255).astype(np.uint8)
