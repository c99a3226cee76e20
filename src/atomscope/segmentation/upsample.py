"""Labels at full resolution from labels (or cluster distances) on the grid of centres.

The grid knows where its centres are in the image (``Grid.ys``, ``Grid.xs``, px), so every
descriptor maps back at the right offset; pixels outside the grid's hull take the value of the
nearest edge centre.

``linear`` (default): the squared distance to each cluster centre is interpolated bilinearly
between grid centres and every pixel takes the closest cluster — boundaries fall between grid
points, at sub-stride precision. ``nearest``: every pixel takes the label of its nearest centre.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from .grid import Grid

__all__ = ["upsample_labels", "UPSAMPLE_METHODS"]

UPSAMPLE_METHODS = ("linear", "nearest")


def _axis_weights(coords: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For pixel positions 0 … n-1: lower grid index, upper grid index, weight of the upper."""
    pos = np.arange(n, dtype=np.float64)
    if len(coords) == 1:
        z = np.zeros(n, np.int64)
        return z, z, np.zeros(n)
    step = coords[1] - coords[0]
    t = np.clip((pos - coords[0]) / step, 0.0, len(coords) - 1.0)
    i0 = np.minimum(np.floor(t).astype(np.int64), len(coords) - 2)
    return i0, i0 + 1, t - i0


def upsample_labels(
    grid: Grid,
    distances: np.ndarray,
    *,
    method: str = "linear",
) -> np.ndarray:
    """Full-resolution labels.

    Parameters
    ----------
    grid : Grid
        The centres.
    distances : ndarray (ny, nx, k)
        Squared distance of each centre's features to each cluster centre.
    method : {'linear', 'nearest'}

    Returns
    -------
    ndarray (H, W) int32
    """
    if method not in UPSAMPLE_METHODS:
        raise ParameterError(f"upsample must be one of {UPSAMPLE_METHODS}, got {method!r}")
    h, w = grid.shape
    ny, nx, k = distances.shape
    if k == 1:
        return np.zeros((h, w), np.int32)
    if method == "nearest":
        lab = distances.argmin(axis=-1).astype(np.int32)
        yi = np.clip(np.rint((np.arange(h) - grid.ys[0]) / grid.stride), 0, ny - 1).astype(int)
        xi = np.clip(np.rint((np.arange(w) - grid.xs[0]) / grid.stride), 0, nx - 1).astype(int)
        return lab[yi][:, xi]
    y0, y1, fy = _axis_weights(grid.ys, h)
    x0, x1, fx = _axis_weights(grid.xs, w)
    fy32 = fy.astype(np.float32)[:, None]
    fx32 = fx.astype(np.float32)[None, :]

    def full(m: np.ndarray) -> np.ndarray:
        """Bilinear interpolation of a (ny, nx) map to (H, W), separable."""
        r = m[y0] * (1 - fy32) + m[y1] * fy32  # (H, nx)
        return r[:, x0] * (1 - fx32) + r[:, x1] * fx32

    d = distances.astype(np.float32)
    if k == 2:  # interpolation is linear: one map of the difference is enough
        return (full(d[..., 1] - d[..., 0]) < 0).astype(np.int32)
    best = full(d[..., 0])
    out = np.zeros((h, w), np.int32)
    for c in range(1, k):
        cur = full(d[..., c])
        closer = cur < best
        out[closer] = c
        np.minimum(best, cur, out=best)
    return out
