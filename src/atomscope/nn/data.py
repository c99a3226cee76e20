"""Preparing images for networks: normalisation, random patches, tiles, and a train/validation
split that keeps neighbouring frames of a movie together.

Consecutive frames of an in-situ movie are nearly identical; a random frame-level split puts
near-copies of validation frames in the training set and makes validation scores meaningless
(the particle-segmentation paper warns of this). :func:`grouped_split` assigns whole segments
of consecutive frames (and whole movies, when ``groups`` are given) to one side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..errors import InvalidImageError, ParameterError

__all__ = [
    "normalize_image",
    "preprocess",
    "random_patches",
    "tile_positions",
    "blend_window",
    "grouped_split",
    "PREPROCESSING_VERSION",
]

#: recorded in weight manifests; bump when :func:`preprocess` changes meaning
PREPROCESSING_VERSION = 1


def normalize_image(image: np.ndarray, *, sample: int = 4) -> np.ndarray:
    """Robust z-score: ``(x − median) / (1.4826 · MAD)`` over the frame (float32).

    The scale is the noise-plus-texture level of the dominant phase (the support when
    particles cover less than half of the field), so that contrast is expressed in units of
    background fluctuation whatever the detector's counts. *sample* sub-samples the pixels used
    for the statistics (every *sample*-th row and column) for speed.
    """
    x = np.asarray(image, dtype=np.float32)
    if x.ndim != 2:
        raise InvalidImageError(f"normalize_image expects one 2-D frame, got shape {x.shape}")
    s = x[::sample, ::sample] if min(x.shape) >= 8 * sample else x
    med = float(np.median(s))
    mad = float(np.median(np.abs(s - med))) * 1.4826
    if not np.isfinite(mad) or mad <= 1e-12 * max(abs(med), 1.0):
        mad = float(s.std()) or 1.0
    return ((x - med) / mad).astype(np.float32)


def preprocess(
    image: np.ndarray,
    *,
    invert: bool = False,
    blur_sigma: float = 0.0,
    normalization: str = "robust-z",
) -> np.ndarray:
    """What a network sees: optional inversion (bright objects made dark), optional Gaussian
    pre-blur of σ = *blur_sigma* px (the paper's blur study), then normalisation.

    Parameters
    ----------
    image : ndarray
        One 2-D frame (any units).
    invert : bool
        Negate the intensities first (e.g. HAADF particles for a model trained on bright-field).
    blur_sigma : float
        Gaussian pre-blur, px (0: none).
    normalization : {"robust-z", "none"}
        See :func:`normalize_image`.
    """
    x = np.asarray(image, dtype=np.float32)
    if invert:
        x = -x
    if blur_sigma and blur_sigma > 0:
        x = ndi.gaussian_filter(x, float(blur_sigma)).astype(np.float32)
    if normalization == "robust-z":
        return normalize_image(x)
    if normalization == "none":
        return x
    raise ParameterError(f"normalization must be 'robust-z' or 'none', got {normalization!r}")


def random_patches(
    images: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    *,
    patch_size: int,
    n_patches: int,
    rng: np.random.Generator,
    weights: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """*n_patches* random square crops (the same window from an image and its target).

    Images smaller than *patch_size* are reflect-padded. Returns (N, P, P) float32 images and
    (N, P, P) targets (dtype of *targets*).
    """
    if len(images) == 0 or len(images) != len(targets):
        raise ParameterError("random_patches needs as many targets as images (at least one)")
    p = int(patch_size)
    xs = np.empty((n_patches, p, p), np.float32)
    ys = np.empty((n_patches, p, p), np.asarray(targets[0]).dtype)
    prob = None
    if weights is not None:
        w = np.asarray(weights, float)
        prob = w / w.sum()
    which = rng.choice(len(images), size=n_patches, p=prob)
    for k, i in enumerate(which):
        img, tgt = np.asarray(images[i]), np.asarray(targets[i])
        h, w = img.shape
        if h < p or w < p:
            ph, pw = max(p - h, 0), max(p - w, 0)
            img = np.pad(img, ((0, ph), (0, pw)), mode="reflect")
            tgt = np.pad(tgt, ((0, ph), (0, pw)), mode="reflect")
            h, w = img.shape
        y0 = int(rng.integers(0, h - p + 1))
        x0 = int(rng.integers(0, w - p + 1))
        xs[k] = img[y0 : y0 + p, x0 : x0 + p]
        ys[k] = tgt[y0 : y0 + p, x0 : x0 + p]
    return xs, ys


def tile_positions(shape: tuple[int, int], tile: int, overlap: int) -> list[tuple[int, int]]:
    """Top-left corners (y0, x0) of tiles of side ≤ *tile* covering *shape* with at least
    *overlap* px shared between neighbours; the last tile of a row/column is flush with the
    edge. A side shorter than *tile* is one tile."""
    if tile < 1 or overlap < 0 or overlap >= tile:
        raise ParameterError(f"need tile ≥ 1 and 0 ≤ overlap < tile, got {tile}, {overlap}")

    def starts(n: int) -> list[int]:
        if n <= tile:
            return [0]
        step = tile - overlap
        s = list(range(0, n - tile, step))
        s.append(n - tile)
        return s

    h, w = shape
    return [(y, x) for y in starts(h) for x in starts(w)]


def blend_window(
    shape: tuple[int, int], overlap: int, *, top: bool, bottom: bool, left: bool, right: bool
) -> np.ndarray:
    """Weights for overlap blending on the sides that have a neighbour (flags True): zero over
    the outer quarter of the shared band (where a tile's prediction suffers from its edge),
    then a raised-cosine ramp to 1, so that neighbouring tiles cross-fade."""
    h, w = shape

    def ramp(n: int, lo: bool, hi: bool) -> np.ndarray:
        r = np.ones(n, np.float32)
        m = min(overlap, n // 2)
        if m > 0:
            z = m // 4
            s = np.clip((np.arange(m) + 0.5 - z) / max(m - z, 1), 0.0, 1.0)
            t = (0.5 - 0.5 * np.cos(np.pi * s)).astype(np.float32)
            if lo:
                r[:m] = np.minimum(r[:m], t)
            if hi:
                r[n - m :] = np.minimum(r[n - m :], t[::-1])
        return r

    return np.outer(ramp(h, top, bottom), ramp(w, left, right)).astype(np.float32)


def grouped_split(
    n_items: int,
    *,
    groups: Sequence[Any] | None = None,
    segment_length: int | None = None,
    val_fraction: float = 0.2,
    seed: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation indices that keep neighbouring frames together.

    Items are first grouped (by *groups*, e.g. the movie each frame belongs to; default: one
    group), then each group is cut into segments of *segment_length* consecutive items (default:
    the whole group is one segment). Whole segments are assigned at random to validation until
    about *val_fraction* of the items are there, so no validation frame has a neighbour from the
    same segment in the training set.

    Parameters
    ----------
    n_items : int
        Number of frames (items are taken in their given order).
    groups : sequence, optional
        Group label per item.
    segment_length : int, optional
        Length of the segments of consecutive items that stay together.
    val_fraction : float
        Target fraction of items in validation (at least one segment when there are two or
        more segments; none when 0).
    seed : int or Generator
        Random seed.

    Returns
    -------
    train_idx, val_idx : ndarray of int
    """
    if n_items < 1:
        raise ParameterError("grouped_split needs at least one item")
    if not 0 <= val_fraction < 1:
        raise ParameterError(f"val_fraction must be in [0, 1), got {val_fraction}")
    g = np.zeros(n_items, int) if groups is None else np.asarray(groups)
    if len(g) != n_items:
        raise ParameterError("groups must have one label per item")
    segments: list[np.ndarray] = []
    for label in dict.fromkeys(g.tolist()):  # first-appearance order
        idx = np.nonzero(g == label)[0]
        if segment_length is None or segment_length >= len(idx):
            segments.append(idx)
        else:
            if segment_length < 1:
                raise ParameterError("segment_length must be ≥ 1")
            segments.extend(idx[i : i + segment_length] for i in range(0, len(idx), segment_length))
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    order = rng.permutation(len(segments))
    target = val_fraction * n_items
    val: list[np.ndarray] = []
    n_val = 0
    if val_fraction > 0 and len(segments) > 1:
        for k in order:
            if n_val >= target or len(val) == len(segments) - 1:
                break
            val.append(segments[k])
            n_val += len(segments[k])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, int)
    train_idx = np.setdiff1d(np.arange(n_items), val_idx)
    return train_idx, val_idx
