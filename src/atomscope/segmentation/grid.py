"""The strided grid of descriptor centres, and the normalised image the descriptors read.

Every descriptor is evaluated at exactly the same centres, ``(ys[i], xs[j])`` in pixel
coordinates of the full image (pixel (r, c) has its centre at x = c, y = r). Upsampling maps
labels back through these coordinates, so the offset between the grid and the image is right
by construction for every descriptor (pySTEM guessed it, and was off by up to 20 px for the
rotation and reflection descriptors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError

__all__ = ["Grid", "make_grid", "normalise"]


@dataclass(frozen=True)
class Grid:
    """Centres ``ys`` (rows) × ``xs`` (columns), px, spaced by ``stride`` px."""

    ys: np.ndarray
    xs: np.ndarray
    stride: int
    shape: tuple[int, int]  # (H, W) of the image

    @property
    def ny(self) -> int:
        return int(len(self.ys))

    @property
    def nx(self) -> int:
        return int(len(self.xs))

    @property
    def size(self) -> int:
        return self.ny * self.nx

    def expanded(self, n: int) -> Grid:
        """The same lattice of centres, ``n`` points larger on every side (for pooling)."""
        s = self.stride
        ys = self.ys[0] - n * s + s * np.arange(self.ny + 2 * n)
        xs = self.xs[0] - n * s + s * np.arange(self.nx + 2 * n)
        return Grid(ys, xs, s, self.shape)


def _axis(length: int, margin: int, stride: int) -> np.ndarray:
    span = length - 1 - 2 * margin
    if span < 0:
        return np.zeros(0, dtype=np.int64)
    n = span // stride + 1
    start = margin + (span - (n - 1) * stride) // 2  # centred: equal margins on both sides
    return start + stride * np.arange(n, dtype=np.int64)


def make_grid(shape: tuple[int, int], margin: int, stride: int) -> Grid:
    """Centres at least ``margin`` px from every edge, ``stride`` px apart, centred.

    Raises
    ------
    ParameterError
        If the image is too small for the patch and window (fewer than 2 centres per axis).
    """
    if stride < 1:
        raise ParameterError(f"stride must be a positive number of pixels, got {stride!r}")
    h, w = shape
    ys, xs = _axis(h, margin, stride), _axis(w, margin, stride)
    if len(ys) < 2 or len(xs) < 2:
        raise ParameterError(
            f"The image ({h} x {w} px) is too small for this patch/window: the descriptors need "
            f"{margin} px of margin on every side. Use a smaller patch or window (or a larger "
            "image), e.g. patch=21, window=10."
        )
    return Grid(ys, xs, int(stride), (int(h), int(w)))


def normalise(data: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Zero mean, unit variance float32 copy (all zeros for a blank image).

    With ``sigma`` (px), the image is first normalised locally: the local mean (a box of side
    2σ + 1 applied twice: triangular weights without the box's side lobes, which would
    modulate the contrast at the lattice period; O(1) per pixel) is subtracted and the result
    divided by the local standard deviation (same weights). A
    patch that straddles a bright, high-contrast phase and a dim, low-contrast one is then no
    longer dominated by the bright one, which would push the boundary into the dim phase; slow
    thickness and intensity gradients disappear too. Global normalisation alone leaves Pearson
    correlations unchanged and keeps float32 sums well conditioned.
    """
    x = np.asarray(data, dtype=np.float64)
    if sigma is not None and sigma > 0:
        from scipy import ndimage

        size = 2 * int(round(sigma)) + 1

        def smooth(a: np.ndarray) -> np.ndarray:
            a = ndimage.uniform_filter(a, size, mode="reflect")
            return ndimage.uniform_filter(a, size, mode="reflect")

        x = x.astype(np.float32)
        x = x - smooth(x)
        var = smooth(x * x).astype(np.float64)
        floor = 1e-3 * float(var.mean()) if var.mean() > 0 else 1.0
        x = x / np.sqrt(np.maximum(var, floor))
    mean = float(x.mean())
    std = float(x.std())
    if not np.isfinite(std) or std <= 1e-12 * max(abs(mean), 1.0):
        return np.zeros(x.shape, np.float32)
    return ((x - mean) / std).astype(np.float32)
