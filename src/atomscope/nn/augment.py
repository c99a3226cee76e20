"""Data augmentation for training on micrographs (the particle-segmentation paper's set).

Geometric transforms (flips, 90° rotations, zoom) are applied identically to the image and
its target; intensity transforms (noise, blur, brightness, contrast) only to the image. Every
random choice comes from the ``numpy.random.Generator`` passed in, so a seeded generator gives
identical augmented batches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..errors import ParameterError

__all__ = [
    "Augmentation",
    "log_uniform",
    "flip_rotate",
    "add_noise",
    "random_blur",
    "brightness_contrast",
    "random_zoom",
]


def flip_rotate(
    image: np.ndarray,
    target: np.ndarray,
    rng: np.random.Generator,
    *,
    flips: bool = True,
    rot90: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """One of the 8 symmetries of the square (or flips only / rotations only)."""
    k = int(rng.integers(0, 4)) if rot90 else 0
    flip = bool(rng.integers(0, 2)) if flips else False
    if k:
        image, target = np.rot90(image, k), np.rot90(target, k)
    if flip:
        image, target = image[:, ::-1], target[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(target)


def add_noise(image: np.ndarray, rng: np.random.Generator, max_sigma: float) -> np.ndarray:
    """Add white Gaussian noise of σ drawn uniformly in [0, *max_sigma*] (image units)."""
    if max_sigma <= 0:
        return image
    s = float(rng.uniform(0, max_sigma))
    return (image + s * rng.standard_normal(image.shape)).astype(np.float32)


def random_blur(image: np.ndarray, rng: np.random.Generator, max_sigma: float) -> np.ndarray:
    """Gaussian blur of σ drawn uniformly in [0, *max_sigma*] px."""
    if max_sigma <= 0:
        return image
    s = float(rng.uniform(0, max_sigma))
    if s < 0.2:
        return image
    return ndi.gaussian_filter(image, s).astype(np.float32)


def brightness_contrast(
    image: np.ndarray, rng: np.random.Generator, brightness: float, contrast: float
) -> np.ndarray:
    """``image · g + b`` with gain ``g = exp(U(−c, c))`` and offset ``b = U(−b, b)``."""
    g = float(np.exp(rng.uniform(-contrast, contrast))) if contrast > 0 else 1.0
    b = float(rng.uniform(-brightness, brightness)) if brightness > 0 else 0.0
    if g == 1.0 and b == 0.0:
        return image
    return (image * g + b).astype(np.float32)


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One draw, uniform in log between *lo* and *hi* (both > 0)."""
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def random_zoom(
    image: np.ndarray,
    target: np.ndarray,
    rng: np.random.Generator,
    scale_range: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Rescale by a factor drawn log-uniformly in *scale_range*, keeping the size (centre crop
    or reflect padding). Image: linear interpolation; target: nearest neighbour."""
    lo, hi = scale_range
    if lo <= 0 or hi < lo:
        raise ParameterError(f"zoom range must satisfy 0 < lo ≤ hi, got {scale_range}")
    if hi == lo == 1.0:
        return image, target
    s = log_uniform(rng, lo, hi)
    h, w = image.shape
    img = ndi.zoom(image, s, order=1, mode="reflect")
    tgt = ndi.zoom(target, s, order=0, mode="reflect")

    def fit(a: np.ndarray) -> np.ndarray:
        ah, aw = a.shape
        if ah < h or aw < w:
            a = np.pad(a, ((0, max(h - ah, 0)), (0, max(w - aw, 0))), mode="reflect")
            ah, aw = a.shape
        y0, x0 = (ah - h) // 2, (aw - w) // 2
        return a[y0 : y0 + h, x0 : x0 + w]

    return fit(img).astype(np.float32), fit(tgt).astype(target.dtype)


@dataclass
class Augmentation:
    """A random augmentation pipeline (the paper's: flips/rotations and shifts; plus noise,
    blur, brightness/contrast and zoom).

    Parameters
    ----------
    flips, rot90 : bool
        Random mirror flips and 90° rotations.
    noise : float
        Maximum σ of added Gaussian noise (image units, i.e. background standard deviations
        after :func:`atomscope.nn.data.normalize_image`).
    blur : float
        Maximum σ (px) of a random Gaussian blur.
    brightness : float
        Maximum absolute offset.
    contrast : float
        Maximum |log gain|.
    zoom : (float, float) or None
        Range of random rescaling factors (the paper's crop-and-enlarge augmentation).
    """

    flips: bool = True
    rot90: bool = True
    noise: float = 0.0
    blur: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    zoom: tuple[float, float] | None = None

    def __call__(
        self, image: np.ndarray, target: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        image = np.asarray(image, np.float32)
        if self.zoom is not None:
            image, target = random_zoom(image, target, rng, tuple(self.zoom))
        if self.flips or self.rot90:
            image, target = flip_rotate(image, target, rng, flips=self.flips, rot90=self.rot90)
        image = random_blur(image, rng, self.blur)
        image = brightness_contrast(image, rng, self.brightness, self.contrast)
        image = add_noise(image, rng, self.noise)
        return image, target

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["zoom"] is not None:
            d["zoom"] = list(d["zoom"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Augmentation:
        if not d:
            return cls()
        d = dict(d)
        if d.get("zoom") is not None:
            d["zoom"] = tuple(d["zoom"])
        return cls(**d)

    @classmethod
    def none(cls) -> Augmentation:
        """No augmentation at all."""
        return cls(flips=False, rot90=False)
