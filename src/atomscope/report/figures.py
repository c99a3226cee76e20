"""Image display with robust contrast and a calibrated scale bar; atomic figure saving."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from .._fileio import atomic_path  # noqa: E402
from ..image import Micrograph, as_micrograph  # noqa: E402

__all__ = [
    "nice_scale_bar_length",
    "format_length",
    "add_scale_bar",
    "show_image",
    "image_axes",
    "save_figure",
]


def nice_scale_bar_length(field_nm: float, fraction: float = 0.2) -> float:
    """A round length (1, 2 or 5 × 10^n nm) close to *fraction* of a field of *field_nm*."""
    target = max(field_nm * fraction, 1e-12)
    exponent = math.floor(math.log10(target))
    best = 10.0**exponent
    for m in (1.0, 2.0, 5.0, 10.0):
        cand = m * 10.0**exponent
        if cand <= target * 1.5:
            best = cand
    return best


def format_length(nm: float) -> str:
    """Human label for a length in nm: Å below 1 nm, µm from 1000 nm."""
    if nm >= 1000:
        return f"{nm / 1000:g} µm"
    if nm < 1:
        return f"{nm * 10:g} Å"
    return f"{nm:g} nm"


def add_scale_bar(
    ax: Any,
    pixel_size_nm: float,
    image_width_px: int,
    *,
    length_nm: float | None = None,
    location: str = "lower right",
    color: str = "white",
    fontsize: float = 9,
) -> float:
    """Draw a scale bar on an image axis (data coordinates in pixels). Returns its length in nm."""
    width_nm = pixel_size_nm * image_width_px
    length = length_nm if length_nm is not None else nice_scale_bar_length(width_nm)
    length_px = length / pixel_size_nm
    x0, x1 = sorted(ax.get_xlim())
    y_lo, y_hi = sorted(ax.get_ylim())
    height = y_hi - y_lo
    margin = 0.04 * (x1 - x0)
    bar_h = max(0.012 * height, 1.0)
    # image axes have y growing downwards: the visually lower edge is y_hi
    y = y_hi - 0.06 * height
    x = x1 - margin - length_px if "right" in location else x0 + margin
    import matplotlib.patheffects as pe

    outline = [pe.withStroke(linewidth=2.5, foreground="black")]
    bar = Rectangle((x, y), length_px, bar_h, color=color, lw=0.8, ec="black")
    ax.add_patch(bar)
    ax.text(
        x + length_px / 2,
        y - 0.01 * height,
        format_length(length),
        color=color,
        ha="center",
        va="bottom",
        fontsize=fontsize,
        fontweight="bold",
        path_effects=outline,
    )
    return length


def show_image(
    ax: Any,
    image: Micrograph | np.ndarray,
    *,
    cmap: str = "gray",
    percentiles: tuple[float, float] = (0.5, 99.5),
    scale_bar: bool = True,
    title: str | None = None,
) -> Any:
    """Show one frame with robust contrast and (when calibrated) a scale bar."""
    mg = as_micrograph(image)
    data = mg.data[0] if mg.is_stack else mg.data
    lo, hi = np.percentile(data, percentiles)
    if hi <= lo:
        lo, hi = float(data.min()), float(data.max()) + 1e-12
    im = ax.imshow(data, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    if scale_bar and mg.pixel_size is not None:
        add_scale_bar(ax, mg.pixel_size[1], data.shape[1])
    return im


def image_axes(shape: tuple[int, int], *, width_in: float = 6.0, extra_width: float = 0.0):
    """A figure and axis sized to an image's aspect ratio."""
    h, w = shape
    fig = plt.figure(figsize=(width_in + extra_width, width_in * h / max(w, 1)))
    ax = fig.add_axes((0, 0, width_in / (width_in + extra_width), 1))
    return fig, ax


#: zlib level for PNG figures: micrographs are noisy and barely compress, and level 3 writes
#: them in half the time of the default 6 at the same size (it dominates a batch task's overhead)
PNG_COMPRESS_LEVEL = 3


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 150) -> Path:
    """Save and close a figure atomically."""
    with atomic_path(path) as tmp:
        kw = {"pil_kwargs": {"compress_level": PNG_COMPRESS_LEVEL}}
        fig.savefig(tmp, dpi=dpi, **(kw if str(path).lower().endswith(".png") else {}))
    plt.close(fig)
    return Path(path)
