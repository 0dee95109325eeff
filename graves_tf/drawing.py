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


def straighten(strokes):
    """Rotates a line's strokes about their centre so that the least-squares line
    through all its points is horizontal (a slanting baseline made level)."""
    if not strokes:
        return strokes
    points = np.concatenate(strokes)
    if len(points) < 2 or np.ptp(points[:, 0]) == 0:
        return strokes
    slope = np.polyfit(points[:, 0], points[:, 1], 1)[0]
    angle = -np.arctan(slope)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = points.mean(axis=0)
    return [(stroke - centre) @ rotation.T + centre for stroke in strokes]


def savgol_nearest(values, window, order):
    """``scipy.signal.savgol_filter(values, window, order, mode="nearest")`` for an odd window, in NumPy:
    importing scipy.signal took longer than the rest of drawing a page (a cold ``write``)."""
    half = window // 2
    positions = np.arange(-half, half + 1, dtype=np.float64)
    powers = positions[None, :] ** np.arange(order + 1)[:, None]  # (order + 1, window)
    unit = np.zeros(order + 1)
    unit[0] = 1.0
    coefficients = np.linalg.lstsq(powers, unit, rcond=None)[0]  # the fitted polynomial's value at the centre
    return np.convolve(np.pad(values, half, mode="edge"), coefficients[::-1], mode="valid")


def denoise(strokes, window=5, order=2):
    """Savitzky-Golay smoothing of each stroke's x and y: the tablet's jitter
    removed, the shape kept (strokes shorter than the window are left as they are)."""
    if window % 2 == 0:
        from scipy.signal import savgol_filter

        smooth = lambda values: savgol_filter(values, window, order, mode="nearest")  # noqa: E731
    else:
        smooth = lambda values: savgol_nearest(values, window, order)  # noqa: E731
    smoothed = []
    for stroke in strokes:
        if len(stroke) >= window:
            stroke = np.stack([smooth(stroke[:, k]) for k in range(2)], axis=1)
        smoothed.append(stroke)
    return smoothed


def curve_points(stroke, per_segment=6):
    """Points along the smooth curve that :func:`smooth_path` draws through a
    stroke (quadratic Beziers through the midpoints), for raster renderers."""
    stroke = np.asarray(stroke, np.float64)
    if len(stroke) < 3:
        return stroke
    out = [stroke[:1]]
    start = stroke[0]
    u = np.linspace(0, 1, per_segment + 1)[1:, None]
    for control, following in zip(stroke[1:-1], stroke[2:]):
        end = (control + following) / 2
        out.append((1 - u) ** 2 * start + 2 * (1 - u) * u * control + u**2 * end)
        start = end
    out.append(np.linspace(start, stroke[-1], per_segment + 1)[1:])
    return np.concatenate(out)


def prepared_strokes(offsets, smooth=True, level=True):
    """The strokes of a line as they are drawn: jitter smoothed and baseline
    levelled by default (``smooth``, ``level``)."""
    strokes = offsets_to_strokes(offsets)
    if smooth:
        strokes = denoise(strokes)
    if level:
        strokes = straighten(strokes)
    return strokes


def baseline(strokes):
    """Where a line's letters sit: the 80th percentile of its points' y (y down)."""
    return float(np.percentile(np.concatenate(strokes)[:, 1], 80)) if strokes else 0.0


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


def rasterize(offsets, scale=0.25, line_width=3, margin=20, smooth=True, level=True):
    """A line of handwriting as a white ``PIL.Image`` (mode "L") with black strokes.

    ``scale`` is pixels per whiteboard unit, so lines drawn with the same
    scale keep their relative sizes (for OCR, real and sampled lines alike).
    Strokes are drawn as :func:`save_lines` draws them (:func:`prepared_strokes`,
    smooth curves).
    """
    from PIL import Image, ImageDraw

    strokes = [curve_points(s) for s in prepared_strokes(offsets, smooth, level)]
    if not strokes:
        return Image.new("L", (2 * margin, 2 * margin), 255)
    points = np.concatenate(strokes)
    low = points.min(axis=0)
    size = np.ceil((points.max(axis=0) - low) * scale).astype(int) + 2 * margin
    image = Image.new("L", (int(size[0]), int(size[1])), 255)
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        xy = [tuple(p) for p in (stroke - low) * scale + margin]
        if len(xy) == 1:
            xy = xy * 2
        draw.line(xy, fill=0, width=line_width, joint="curve")
    return image


def smooth_path(points):
    """An SVG path through ``points``: straight ends, quadratic curves through the midpoints."""
    if len(points) == 1:
        x, y = points[0]
        return f"M{x:.2f},{y:.2f} l0.01,0"
    commands = [f"M{points[0][0]:.2f},{points[0][1]:.2f}"]
    for (x0, y0), (x1, y1) in zip(points[1:-1], points[2:]):
        commands.append(f"Q{x0:.2f},{y0:.2f} {(x0 + x1) / 2:.2f},{(y0 + y1) / 2:.2f}")
    commands.append(f"L{points[-1][0]:.2f},{points[-1][1]:.2f}")
    return " ".join(commands)


def page_layout(lines, smooth=True, level=True, line_spacing=None):
    """Places lines of offsets on one page, at one scale: ``(strokes, height, width)``.

    Each line is drawn as :func:`prepared_strokes` prepares it, moved so that
    it starts at x = 0 and its baseline lies ``line_spacing`` whiteboard units
    below the one before (default: 1.6 x the tallest line's height above its
    baseline, at least 1.2 x the tallest line), so every line keeps its size
    relative to the others.
    """
    prepared = [prepared_strokes(offsets, smooth, level) for offsets in lines]
    extents = []
    for strokes in prepared:
        points = np.concatenate(strokes) if strokes else np.zeros((1, 2))
        extents.append((points.min(axis=0), points.max(axis=0), baseline(strokes) if strokes else 0.0))
    above = max([base - lo[1] for lo, hi, base in extents] + [1.0])
    below = max([hi[1] - base for lo, hi, base in extents] + [0.0])
    spacing = line_spacing or max(1.6 * above, 1.2 * (above + below))
    placed, width = [], 0.0
    for row, (strokes, (lo, hi, base)) in enumerate(zip(prepared, extents)):
        shift = np.array([-lo[0], above + row * spacing - base])
        placed.append([stroke + shift for stroke in strokes])
        width = max(width, hi[0] - lo[0])
    height = above + (len(lines) - 1) * spacing + below
    return placed, height, width


def lines_to_svg(lines, margin=40.0, stroke_width=2.5, scale=0.5, smooth=True, level=True, line_spacing=None):
    """An SVG document of one or more lines of offsets, stacked down the page at one scale.

    Args:
        lines: list of ``(T, 3)`` offsets in whiteboard units (y pointing down).
        stroke_width: pen width in SVG pixels.
        scale: whiteboard units to SVG pixels.
        smooth, level: see :func:`prepared_strokes`.
        line_spacing: baseline to baseline, whiteboard units (default: :func:`page_layout`'s).
    """
    placed, height, width = page_layout(lines, smooth, level, line_spacing)
    paths = [smooth_path(stroke * scale + margin) for strokes in placed for stroke in strokes]
    total_width, total_height = width * scale + 2 * margin, height * scale + 2 * margin
    body = "\n".join(
        f'  <path d="{d}" fill="none" stroke="black" stroke-width="{stroke_width}" '
        'stroke-linecap="round" stroke-linejoin="round"/>'
        for d in paths
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_width:.0f}" height="{total_height:.0f}" '
        f'viewBox="0 0 {total_width:.0f} {total_height:.0f}">\n'
        f'  <rect width="100%" height="100%" fill="white"/>\n{body}\n</svg>\n'
    )


def save_lines(lines, path, stroke_width=2.5, smooth=True, level=True, line_spacing=None):
    """Writes lines of offsets to ``path`` as one page at one scale: ``.svg`` as
    plain SVG, ``.png`` through matplotlib; strokes drawn as smooth curves,
    ``stroke_width`` in SVG pixels (the PNG's pen is as wide relative to the letters)."""
    path = str(path)
    if path.lower().endswith(".svg"):
        with open(path, "w") as f:
            f.write(lines_to_svg(lines, stroke_width=stroke_width, smooth=smooth, level=level, line_spacing=line_spacing))
        return path
    if path.lower().endswith(".png"):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        placed, height, width = page_layout(lines, smooth, level, line_spacing)
        scale = 0.5  # SVG pixels per whiteboard unit, as lines_to_svg
        inches = 10.0 / max(width * scale + 80, 1.0)  # the PNG is 10 inches wide
        figure = plt.figure(figsize=(10, max(0.5, (height * scale + 80) * inches)))
        axes = figure.add_axes([0, 0, 1, 1])
        for strokes in placed:
            for stroke in strokes:
                curve = curve_points(stroke)
                axes.plot(curve[:, 0], -curve[:, 1], "k-", linewidth=stroke_width * inches * 72,
                          solid_capstyle="round", solid_joinstyle="round")
        margin = 40 / scale
        axes.set_xlim(-margin, width + margin)
        axes.set_ylim(-(height + margin), margin)
        axes.set_aspect("equal")
        axes.axis("off")
        figure.savefig(path, dpi=120, facecolor="white")
        plt.close(figure)
        return path
    raise ValueError(f"output must end in .svg or .png, got {path!r}")


def plot_attention(phi, text, path, offsets=None):
    """The window weights phi(t, u) as a heat map (the paper's fig. 13), the writing above it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phi = np.asarray(phi)
    rows = 2 if offsets is not None else 1
    figure, axes = plt.subplots(rows, 1, figsize=(10, 2.5 * rows), squeeze=False)
    if offsets is not None:
        for stroke in offsets_to_strokes(offsets):
            axes[0, 0].plot(stroke[:, 0], -stroke[:, 1], "k-", linewidth=1.2)
        axes[0, 0].set_aspect("equal")
        axes[0, 0].axis("off")
    ax = axes[-1, 0]
    ax.imshow(phi.T, aspect="auto", origin="lower", cmap="magma", interpolation="nearest")
    ax.set_yticks(range(len(text)))
    ax.set_yticklabels(list(text), fontsize=7)
    ax.set_xlabel("timestep t")
    ax.set_title("window weights phi(t, u)")
    figure.savefig(path, dpi=120, bbox_inches="tight", facecolor="white")
    plt.close(figure)
    return path


def plot_density(y_hat, offsets, offset_mean, offset_std, path, grid=200):
    """Predicted pen-position densities summed over the sequence, and the mixture weights
    over time (the paper's figs. 10 and 14).

    Args:
        y_hat: ``(T, 1 + 6M)`` outputs; step t predicts the offset from point t.
        offsets: ``(T, 3)`` the sequence's offsets in whiteboard units (its points
            place the predictions).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from graves_tf.layers.mixture_density_head import mixture_parameters

    params = {k: np.asarray(v) for k, v in mixture_parameters(np.asarray(y_hat, np.float32)).items()}
    mean, std = np.asarray(offset_mean), np.asarray(offset_std)
    points = np.cumsum(np.asarray(offsets)[:, :2], axis=0)
    origins = np.concatenate([np.zeros((1, 2)), points[:-1]])  # where each prediction starts from
    lo, hi = points.min(axis=0) - 3 * std, points.max(axis=0) + 3 * std
    xs, ys = np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid // 3)
    gx, gy = np.meshgrid(xs, ys)
    density = np.zeros_like(gx)
    pi = np.exp(params["log_pi"])
    for t in range(len(origins)):
        mu_x = origins[t, 0] + params["mu1"][t] * std[0] + mean[0]
        mu_y = origins[t, 1] + params["mu2"][t] * std[1] + mean[1]
        s_x, s_y = np.exp(params["log_sigma1"][t]) * std[0], np.exp(params["log_sigma2"][t]) * std[1]
        rho = params["rho"][t]
        for j in np.flatnonzero(pi[t] > 1e-3):
            zx, zy = (gx - mu_x[j]) / s_x[j], (gy - mu_y[j]) / s_y[j]
            z = zx**2 + zy**2 - 2 * rho[j] * zx * zy
            norm = 2 * np.pi * s_x[j] * s_y[j] * np.sqrt(1 - rho[j] ** 2)
            density += pi[t, j] * np.exp(-z / (2 * (1 - rho[j] ** 2))) / norm
    figure, axes = plt.subplots(2, 1, figsize=(10, 5))
    axes[0].imshow(np.log1p(density / density.max() * 1e3), extent=(lo[0], hi[0], -hi[1], -lo[1]), aspect="equal", cmap="magma")
    axes[0].set_title("predicted densities (summed over t)")
    axes[0].axis("off")
    axes[1].imshow(pi.T, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
    axes[1].set_xlabel("timestep t")
    axes[1].set_ylabel("component j")
    axes[1].set_title("mixture weights pi(t, j)")
    figure.savefig(path, dpi=120, bbox_inches="tight", facecolor="white")
    plt.close(figure)
    return path


def plot_rows(rows, path, title=None):
    """Labelled rows of handwriting, e.g. one text at several biases (the paper's fig. 16)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(rows), 1, figsize=(10, 1.3 * len(rows)), squeeze=False)
    for ax, (label, offsets) in zip(axes[:, 0], rows):
        for stroke in prepared_strokes(offsets):
            curve = curve_points(stroke)
            ax.plot(curve[:, 0], -curve[:, 1], "k-", linewidth=1.2, solid_capstyle="round")
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.savefig(path, dpi=120, bbox_inches="tight", facecolor="white")
    plt.close(figure)
    return path
