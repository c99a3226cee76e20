"""The classical particle segmentation, which also makes the pseudo-labels for training.

The recipe of Horwath et al. (``dataset_prep/label_training_set.py`` of their code; ANCHORS.md)
for dark particles on a bright support:

1. Gaussian smoothing (σ = 2 px);
2. morphological reconstruction by dilation from the image border (removes bright specks);
3. reconstruction by erosion from the border (fills the dark "holes": the particles), giving
   the background;
4. difference + its Sobel gradient (sharper particle edges);
5. grey opening with a disk of 5 px (removes small specks);
6. Otsu threshold.

Bright particles (HAADF) are handled by inverting the image first.

What is changed here, and why (measured on simulated frames with exact masks, see
``docs/particles.md``):

* **Speed.** Steps 2–6 run on the smoothed image block-averaged by ``downsample`` (4 = 2σ by
  default; the σ = 2 px smoothing has already removed most of what the averaging drops), the
  two reconstructions being the cost; the rest is vectorised numpy/scipy. The objects found
  there are only seeds: edges are placed at full resolution (next point).
* **Particles cut by the frame edge.** The border seed of the reconstructions treats any
  particle touching the edge as background and never finds it; the smoothed image is padded
  with a band at the background level first, so such particles are holes like the others.
* **Edges.** The reconstruction fills each particle only up to its lowest "pour point" on the
  surrounding support, and the Sobel term widens objects, so the Otsu objects are biased.
  With ``refine=True`` (default) the Otsu objects are used as seeds only: the background is
  re-estimated from the pixels outside them (a normalised-convolution smooth), and each
  particle is re-thresholded at ``edge_fraction`` of its own peak contrast above that local
  background (the component connected to its seed, at most ``max_growth`` px beyond it).
  ``refine=False`` returns the paper's recipe unchanged (at the working resolution).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from ..errors import InvalidImageError, ParameterError

__all__ = ["classical_segment", "ClassicalOutput", "CLASSICAL_DEFAULTS"]

#: default parameters of :func:`classical_segment` (px are full-resolution pixels)
CLASSICAL_DEFAULTS: dict[str, Any] = {
    "sigma": 2.0,
    "opening_radius": 5.0,
    "refine": True,
    "edge_fraction": 0.25,
    "max_growth": 10.0,
    "min_contrast": 6.5,
    "downsample": None,
    "fill_holes": True,
}


@dataclass
class ClassicalOutput:
    """Result of :func:`classical_segment`.

    Attributes
    ----------
    mask : ndarray of bool
        Particle pixels, full resolution.
    seeds : ndarray of bool
        The recipe's Otsu objects (working resolution).
    score : ndarray of float32
        The recipe's opened difference+Sobel map (working resolution) that Otsu thresholds.
    threshold : float
        The Otsu threshold on *score*.
    downsample : int
        Working-resolution factor used.
    info : dict
        Background noise, number of seeds kept/dropped …
    """

    mask: np.ndarray
    seeds: np.ndarray
    score: np.ndarray
    threshold: float
    downsample: int
    info: dict[str, Any] = field(default_factory=dict)


def _block(a: np.ndarray, f: int, how: str) -> np.ndarray:
    """Block mean/min by an integer factor (edge-padded to a multiple of *f*)."""
    if f == 1:
        return a
    h, w = a.shape
    ph, pw = (-h) % f, (-w) % f
    if ph or pw:
        a = np.pad(a, ((0, ph), (0, pw)), mode="edge")
    v = a.reshape(a.shape[0] // f, f, a.shape[1] // f, f)
    return (v.mean(axis=(1, 3)) if how == "mean" else v.min(axis=(1, 3))).astype(np.float32)


def _upsample(a: np.ndarray, f: int, shape: tuple[int, int]) -> np.ndarray:
    if f == 1:
        return a
    return np.repeat(np.repeat(a, f, axis=0), f, axis=1)[: shape[0], : shape[1]]


def _disk(radius: int) -> np.ndarray:
    r = int(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (xx * xx + yy * yy) <= r * r + 1e-9


def _otsu(values: np.ndarray) -> float | None:
    from skimage.filters import threshold_otsu

    v = values[np.isfinite(values)]
    if v.size == 0 or float(v.max()) - float(v.min()) <= 1e-12:
        return None
    return float(threshold_otsu(v))


def _background(
    small: np.ndarray, outside: np.ndarray, scale: int = 4, sigma: float = 3.0
) -> np.ndarray:
    """Smooth background from the pixels marked *outside* (normalised convolution on a grid
    coarser by *scale*), interpolated back to the shape of *small*."""
    h, w = small.shape
    num = _block(small * outside, scale, "mean")
    den = _block(outside.astype(np.float32), scale, "mean")
    num = ndi.gaussian_filter(num, sigma, mode="nearest")
    den = ndi.gaussian_filter(den, sigma, mode="nearest")
    fallback = float(np.median(small[outside > 0])) if outside.any() else float(np.median(small))
    bg = np.where(den > 1e-3, num / np.maximum(den, 1e-3), fallback).astype(np.float32)
    if scale == 1:
        return bg
    zoom = (h / bg.shape[0], w / bg.shape[1])
    out = ndi.zoom(bg, zoom, order=1, mode="nearest", grid_mode=True)
    if out.shape != (h, w):  # guard against rounding in zoom's output shape
        out = np.pad(
            out, ((0, max(h - out.shape[0], 0)), (0, max(w - out.shape[1], 0))), mode="edge"
        )[:h, :w]
    return out.astype(np.float32)


def classical_segment(
    image: np.ndarray,
    *,
    bright: bool = False,
    sigma: float = 2.0,
    opening_radius: float = 5.0,
    refine: bool = True,
    edge_fraction: float = 0.25,
    max_growth: float = 10.0,
    min_contrast: float = 6.5,
    downsample: int | None = None,
    fill_holes: bool = True,
) -> ClassicalOutput:
    """Segment particles with the paper's classical recipe (plus edge refinement).

    Parameters
    ----------
    image : ndarray
        One 2-D frame.
    bright : bool
        Bright particles on a dark support (HAADF): the image is inverted first.
    sigma : float
        Gaussian smoothing, px (the recipe: 2).
    opening_radius : float
        Radius of the grey-opening disk, px (the recipe: 5); objects much narrower vanish.
    refine : bool
        Re-threshold each object at *edge_fraction* of its contrast above the local background
        (see the module notes); False gives the recipe's Otsu objects.
    edge_fraction : float
        Fraction of a particle's peak contrast at which its edge is placed.
    max_growth : float
        How far (px) a refined particle may extend beyond its seed.
    min_contrast : float
        Seeds whose peak contrast is below this many background standard deviations (of the
        smoothed, block-minimum image) are dropped. Noise blobs on particle-free simulated
        frames reach ≈ 6, the faintest simulated particles ≈ 8.
    downsample : int, optional
        Working-resolution factor for steps 2–6; default ``2·sigma`` (4 for the default σ = 2 px),
        at most 4 and keeping the working image ≥ 128 px.
    fill_holes : bool
        Fill holes inside particles (lattice fringes can leave some).

    Returns
    -------
    ClassicalOutput
    """
    from skimage.filters import sobel
    from skimage.morphology import reconstruction

    x = np.asarray(image, dtype=np.float32)
    if x.ndim != 2:
        raise InvalidImageError(f"classical_segment expects one 2-D frame, got {x.shape}")
    if sigma < 0 or opening_radius < 0 or not 0 < edge_fraction < 1:
        raise ParameterError("need sigma ≥ 0, opening_radius ≥ 0 and 0 < edge_fraction < 1")
    H, W = x.shape
    if downsample:
        f = int(downsample)
    else:  # block-averaging by ≤ 2σ after a σ smoothing loses little; keep ≥ 128 px
        f = int(max(1, min(int(2 * sigma), 4, min(H, W) // 128)))
    if f < 1:
        raise ParameterError("downsample must be ≥ 1")
    if bright:
        x = -x
    sub = x[::4, ::4] if min(H, W) >= 64 else x
    lo, hi = np.percentile(sub, [0.5, 99.5])
    scale = float(hi - lo) or 1.0
    x = (x - float(lo)) / scale
    im_f = ndi.gaussian_filter(x, sigma).astype(np.float32) if sigma > 0 else x
    small = _block(im_f, f, "mean")
    h, w = small.shape

    # -- the recipe (working resolution) -------------------------------------------------
    pad = 2
    level = float(np.median(small))
    padded = np.pad(small, pad, constant_values=level)
    seed = padded.copy()
    seed[1:-1, 1:-1] = padded.min()
    dil = reconstruction(seed, padded, method="dilation")
    seed = dil.copy()
    seed[1:-1, 1:-1] = dil.max()
    ero = reconstruction(seed, dil, method="erosion")
    diff = (ero - dil)[pad:-pad, pad:-pad].astype(np.float32)
    score = diff + sobel(diff).astype(np.float32)
    r_open = int(round(opening_radius / f))
    if r_open >= 1:
        score = ndi.grey_opening(score, footprint=_disk(r_open))
    thr = _otsu(score)
    info: dict[str, Any] = {"downsample": f}
    if thr is None:
        empty = np.zeros((H, W), bool)
        return ClassicalOutput(
            empty, np.zeros((h, w), bool), score, float("nan"), f, {**info, "n_seeds": 0}
        )
    seeds = score > thr
    if not refine:
        mask = _upsample(seeds, f, (H, W))
        if fill_holes:
            mask = ndi.binary_fill_holes(mask)
        return ClassicalOutput(
            mask, seeds, score, thr, f, {**info, "n_seeds": int(ndi.label(seeds)[1])}
        )

    # -- refinement: local background and per-particle edge level ------------------------
    outside = ~ndi.binary_dilation(seeds, iterations=2)
    bg = _background(small, outside.astype(np.float32))
    contrast = bg - _block(im_f, f, "min")
    noise = contrast[outside]
    if noise.size > 16:
        med = float(np.median(noise))
        sd = float(np.median(np.abs(noise - med))) * 1.4826
    else:
        sd = 0.0
    floor = max(min_contrast * sd, 1e-6)
    lab, n = ndi.label(seeds)
    idx = np.arange(1, n + 1)
    peak = np.asarray(ndi.maximum(contrast, lab, idx), np.float32) if n else np.zeros(0)
    ok = peak > floor
    info.update(n_seeds=int(ok.sum()), n_dropped=int((~ok).sum()), background_sd=sd)
    seeds = np.concatenate([[False], ok])[lab]
    if not ok.any():
        empty = np.zeros((H, W), bool)
        return ClassicalOutput(empty, seeds, score, thr, f, info)
    lab = np.where(seeds, lab, 0)
    dist, inds = ndi.distance_transform_edt(lab == 0, return_indices=True)
    near = lab[inds[0], inds[1]]
    per_label = np.concatenate([[-np.inf], np.where(ok, edge_fraction * peak, np.nan)])
    depth = per_label[near].astype(np.float32)
    level_map = bg - depth  # a pixel is particle where the smoothed image is below this
    level_map[(dist > max_growth / f) | ~np.isfinite(level_map)] = -np.inf
    cand = im_f < _upsample(level_map, f, (H, W))
    comp, _ = ndi.label(cand)
    good_seeds = _upsample(seeds, f, (H, W))
    keep = np.zeros(comp.max() + 1, bool)
    keep[np.unique(comp[good_seeds & cand])] = True
    keep[0] = False
    mask = keep[comp]
    if fill_holes:
        mask = ndi.binary_fill_holes(mask)
    return ClassicalOutput(mask, seeds, score, thr, f, info)
