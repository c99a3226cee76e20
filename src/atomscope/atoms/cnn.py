"""A learned column detector: a small U-Net maps an image to a column-probability map.

The network is trained only on images from :mod:`atomscope.simulate` (see
:mod:`atomscope.atoms.train` and ``docs/atoms_cnn.md``). Its input is put on a fixed scale before
it sees it, so that one set of weights serves any magnification:

1. the image (already scaled to about [0, 1] by the atom finder, inverted for dark columns) is
   resampled (bilinear, anti-aliased) so that the nearest-neighbour column distance becomes
   :data:`TARGET_NN_PX` px;
2. a smooth background (Gaussian of σ = 2 × :data:`TARGET_NN_PX`) is subtracted;
3. the result is scaled by robust percentiles (1 % → 0, 99.5 % → 1).

Columns are the local maxima of the network's probability map, averaged over the target's
own footprint first (Gaussian of σ = :data:`PEAK_SMOOTHING_PX`, half the radius of the disks the
network was trained to mark, so that a one-pixel noise spike cannot pass for a column), at most
one per ``0.35 × TARGET_NN_PX`` px, mapped back to the original pixels; the atom finder then
applies the same sub-pixel refinement as for the scale-space detectors. Nothing is tuned per
image: the only parameter, the probability threshold, defaults to 0.5.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from ..errors import ParameterError
from .scale_space import in_region

__all__ = [
    "TARGET_NN_PX",
    "MODEL_NAME",
    "PEAK_SMOOTHING_PX",
    "resample",
    "prepare_input",
    "to_original",
    "to_resampled",
    "column_mask",
    "load_atom_model",
    "logit_map",
    "probability_map",
    "find_peaks",
    "CNNCandidates",
]

#: nearest-neighbour column distance (px) the network sees
TARGET_NN_PX = 9.0
#: the shipped model
MODEL_NAME = "atoms-unet"
#: σ (px, network scale) of the averaging applied to the probability map before peak picking
PEAK_SMOOTHING_PX = 1.0
#: input tiles (px, at the network's scale), their shared band and the mirrored frame margin
TILE_PX = 512
OVERLAP_PX = 48
PAD_PX = 16

_CACHE: dict[tuple[str, float, str], tuple[Any, dict[str, Any]]] = {}
_LOCK = threading.Lock()


def resample(image: np.ndarray, factor: float) -> tuple[np.ndarray, tuple[float, float]]:
    """Resample by *factor* (> 1 enlarges) with bilinear interpolation, anti-aliased when
    shrinking.

    Returns
    -------
    (ndarray, (fy, fx))
        The float32 image and the exact per-axis factors (new size / old size), which map
        positions by ``x' = (x + 0.5) · fx − 0.5``.
    """
    import torch
    import torch.nn.functional as F

    img = np.asarray(image, np.float32)
    h, w = img.shape
    nh, nw = max(1, round(h * factor)), max(1, round(w * factor))
    if (nh, nw) == (h, w):
        return img.copy(), (1.0, 1.0)
    t = torch.from_numpy(np.ascontiguousarray(img))[None, None]
    out = F.interpolate(
        t, size=(nh, nw), mode="bilinear", align_corners=False, antialias=factor < 1
    )
    return out[0, 0].numpy(), (nh / h, nw / w)


def to_resampled(xy: np.ndarray, factors: tuple[float, float]) -> np.ndarray:
    """Positions (x, y) in original pixels → pixels of the resampled image."""
    fy, fx = factors
    xy = np.asarray(xy, float).reshape(-1, 2)
    return np.stack([(xy[:, 0] + 0.5) * fx - 0.5, (xy[:, 1] + 0.5) * fy - 0.5], axis=1)


def to_original(xy: np.ndarray, factors: tuple[float, float]) -> np.ndarray:
    """Positions (x, y) in resampled pixels → original pixels."""
    fy, fx = factors
    xy = np.asarray(xy, float).reshape(-1, 2)
    return np.stack([(xy[:, 0] + 0.5) / fx - 0.5, (xy[:, 1] + 0.5) / fy - 0.5], axis=1)


def prepare_input(
    image: np.ndarray, nn_px: float, *, target_nn: float = TARGET_NN_PX
) -> tuple[np.ndarray, tuple[float, float]]:
    """What the network sees: resampled to *target_nn* px per column spacing, background
    removed, robustly scaled.

    Parameters
    ----------
    image : ndarray (H, W)
        Bright columns (invert dark-column images first), any units.
    nn_px : float
        Nearest-neighbour column distance in the image, px.
    target_nn : float
        Column distance after resampling, px.

    Returns
    -------
    (ndarray, (fy, fx))
        float32 network input and the resampling factors (see :func:`resample`).
    """
    if not (np.isfinite(nn_px) and nn_px > 0):
        raise ParameterError(f"the column distance must be a positive number of px, got {nn_px}")
    x, factors = resample(image, target_nn / float(nn_px))
    x = x - ndi.gaussian_filter(x, 2.0 * target_nn, mode="reflect")
    lo, hi = np.percentile(x, (1.0, 99.5))
    if not hi > lo:
        lo, hi = float(x.min()), float(x.max())
    scale = hi - lo if hi > lo else 1.0
    return ((x - lo) / scale).astype(np.float32), factors


def column_mask(shape: tuple[int, int], xy: np.ndarray, radius: float) -> np.ndarray:
    """Training target: 1 inside a disk of *radius* px around every (x, y), else 0 (uint8)."""
    h, w = shape
    out = np.zeros((h, w), np.uint8)
    r = int(np.ceil(radius))
    oy, ox = np.mgrid[-r : r + 1, -r : r + 1]
    for x, y in np.asarray(xy, float).reshape(-1, 2):
        cx, cy = int(round(x)), int(round(y))
        yy, xx = cy + oy, cx + ox
        ok = (
            ((xx - x) ** 2 + (yy - y) ** 2 <= radius**2)
            & (yy >= 0)
            & (yy < h)
            & (xx >= 0)
            & (xx < w)
        )
        out[yy[ok], xx[ok]] = 1
    return out


def _model_key(model: Any) -> tuple[str, float] | None:
    if model is None:
        model = MODEL_NAME
    if not isinstance(model, str | os.PathLike):
        return None
    from ..nn.weights import model_files

    pt, _ = model_files(model)
    return str(Path(pt).resolve()), Path(pt).stat().st_mtime


def load_atom_model(model: Any = None, *, device: Any = None) -> tuple[Any, dict[str, Any]]:
    """The column network and its manifest (cached per file and device).

    Parameters
    ----------
    model : str, path or torch.nn.Module, optional
        A shipped model name, a ``NAME.pt`` from ``atomscope train atoms``, or a network;
        default: the shipped :data:`MODEL_NAME`.
    device : str, optional
        "cpu" (default), "cuda", "auto" …
    """
    from ..nn import load_model, resolve_device

    dev = resolve_device(device)
    key = _model_key(model)
    if key is None:  # a network object
        manifest = getattr(model, "manifest", None) or {}
        return model.to(dev).eval(), manifest
    with _LOCK:
        cached = _CACHE.get((*key, str(dev)))
        if cached is None:
            net, manifest = load_model(key[0], device=dev)
            if manifest.get("task") not in (None, "atoms"):
                raise ParameterError(
                    f"{Path(key[0]).name} is a {manifest.get('task')!r} model, "
                    "not an atom-column model"
                )
            cached = (net, manifest)
            _CACHE[(*key, str(dev))] = cached
    return cached


def _target_nn(manifest: dict[str, Any]) -> float:
    return float((manifest.get("preprocessing") or {}).get("target_nn_px", TARGET_NN_PX))


def logit_map(
    image: np.ndarray,
    nn_px: float,
    *,
    model: Any = None,
    device: Any = None,
    n_threads: int | None = None,
) -> tuple[np.ndarray, tuple[float, float], float]:
    """Column logits at the network's scale.

    Returns
    -------
    (ndarray, (fy, fx), float)
        Logits (h', w') of the resampled image, the resampling factors and the column
        distance at that scale (px).
    """
    from ..nn import predict_logits

    net, manifest = load_atom_model(model, device=device)
    target = _target_nn(manifest)
    x, factors = prepare_input(image, nn_px, target_nn=target)
    logits = predict_logits(
        net, x, tile=TILE_PX, overlap=OVERLAP_PX, pad=PAD_PX, device=device, n_threads=n_threads
    )
    return logits[0], factors, target


def probability_map(
    image: np.ndarray,
    nn_px: float,
    *,
    model: Any = None,
    device: Any = None,
    n_threads: int | None = None,
) -> np.ndarray:
    """Column probability per pixel of *image* (float32, same shape), for display and export.

    Parameters
    ----------
    image : ndarray (H, W) or Micrograph
        Bright columns (negate ABF images first).
    nn_px : float
        Nearest-neighbour column distance, px (e.g. ``find_atoms(...).lattice.nn_distance_px``).
    model, device, n_threads
        See :func:`load_atom_model`; *n_threads* limits torch's CPU threads.
    """
    import torch
    import torch.nn.functional as F

    image = np.asarray(getattr(image, "data", image), np.float32)
    logits, _, _ = logit_map(image, nn_px, model=model, device=device, n_threads=n_threads)
    h, w = np.shape(image)
    t = F.interpolate(
        torch.from_numpy(np.ascontiguousarray(logits, np.float32))[None, None],
        size=(h, w),
        mode="bilinear",
        align_corners=False,
    )
    return torch.sigmoid(t)[0, 0].numpy()


def find_peaks(
    logits: np.ndarray, *, min_distance: float, floor: float = 0.05, smooth: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Columns of a logit map: 3 × 3 local maxima whose probability is at least *floor*,
    thinned so that no two lie closer than *min_distance* px (the weaker goes), with a
    probability-weighted sub-pixel centroid over the 3 × 3 neighbourhood.

    Parameters
    ----------
    logits : ndarray (H, W)
        Network output before the sigmoid.
    min_distance : float
        Smallest distance between two columns, px.
    floor : float
        Smallest peak probability kept as a candidate.
    smooth : float
        σ (px) of a Gaussian average of the probabilities before the peaks are read (0: none).

    Returns
    -------
    (ndarray (N, 2), ndarray (N,))
        Positions (x, y) in the map's pixels and the peak probabilities, strongest first.
    """
    z = np.asarray(logits, np.float32)
    if smooth > 0:
        p = ndi.gaussian_filter(1.0 / (1.0 + np.exp(-z.astype(np.float64))), smooth, mode="nearest")
        p = np.clip(p, 1e-7, 1 - 1e-7)
        z = np.log(p / (1.0 - p)).astype(np.float32)
    h, w = z.shape
    zf = float(np.log(floor / (1.0 - floor)))
    peak = (z == ndi.maximum_filter(z, size=3, mode="nearest")) & (z >= zf)
    rows, cols = np.nonzero(peak)
    if rows.size == 0:
        return np.zeros((0, 2)), np.zeros(0)
    resp = 1.0 / (1.0 + np.exp(-z[rows, cols].astype(np.float64)))
    order = np.argsort(-resp, kind="stable")
    rows, cols, resp = rows[order], cols[order], resp[order]
    xy = np.stack([cols, rows], axis=1).astype(np.float64)
    if len(xy) > 1:
        pairs = cKDTree(xy).query_pairs(min_distance, output_type="ndarray")
        if pairs.size:
            drop = np.zeros(len(xy), bool)
            for i, j in pairs[np.argsort(pairs.min(axis=1), kind="stable")]:
                if not drop[min(i, j)]:
                    drop[max(i, j)] = True
            keep = ~drop
            xy, rows, cols, resp = xy[keep], rows[keep], cols[keep], resp[keep]
    # sub-pixel: probability-weighted centroid of the 3 × 3 neighbourhood
    p = 1.0 / (1.0 + np.exp(-np.pad(z, 1, mode="edge").astype(np.float64)))
    num_x = np.zeros(len(xy))
    num_y = np.zeros(len(xy))
    den = np.zeros(len(xy))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            v = p[rows + 1 + dy, cols + 1 + dx]
            num_x += v * dx
            num_y += v * dy
            den += v
    xy = xy + np.stack([num_x, num_y], axis=1) / np.maximum(den, 1e-12)[:, None]
    xy[:, 0] = np.clip(xy[:, 0], 0, w - 1)
    xy[:, 1] = np.clip(xy[:, 1], 0, h - 1)
    return xy, resp


def _column_sigma(
    image: np.ndarray, xy: np.ndarray, sigmas: np.ndarray, max_columns: int = 200
) -> float:
    """Typical column width (px): the scale of the largest scale-normalised LoG response,
    median over up to *max_columns* columns (what the scale-space detectors report)."""
    sigmas = np.asarray(sigmas, float)
    if len(xy) == 0 or len(sigmas) == 0:
        return float(np.median(sigmas)) if len(sigmas) else 1.0
    img = np.asarray(image, np.float32)
    h, w = img.shape
    sel = xy if len(xy) <= max_columns else xy[np.linspace(0, len(xy) - 1, max_columns).astype(int)]
    r = int(np.ceil(3 * float(sigmas.max())))
    pad = np.pad(img, r, mode="reflect")
    oy, ox = np.mgrid[-r : r + 1, -r : r + 1]
    c = np.clip(np.rint(sel).astype(int), 0, [w - 1, h - 1])
    patches = pad[(c[:, 1] + r)[:, None, None] + oy, (c[:, 0] + r)[:, None, None] + ox]
    r2 = (ox**2 + oy**2).ravel().astype(np.float32)
    s2 = (sigmas**2).astype(np.float32)[:, None]
    g = np.exp(-r2[None, :] / (2 * s2))
    g /= g.sum(axis=1, keepdims=True)
    kern = -(r2[None, :] / s2 - 2.0) * g  # −σ²∇²G (scale-normalised), made zero-mean
    kern -= kern.mean(axis=1, keepdims=True)
    resp = patches.reshape(len(sel), -1) @ kern.T
    return float(np.median(sigmas[np.argmax(resp, axis=1)]))


class CNNCandidates:
    """Column candidates from the network, in the form the atom finder expects.

    Parameters
    ----------
    image : ndarray (H, W)
        The finder's normalised image (bright columns).
    setup : atomscope.atoms.detectors.DetectorSetup
        ``nn_distance`` sets the resampling; ``sigmas`` the range for the width estimate;
        ``model`` and ``device`` choose the network.
    """

    def __init__(self, image: np.ndarray, setup: Any) -> None:
        model = getattr(setup, "model", None)
        device = getattr(setup, "device", None)
        logits, factors, target = logit_map(image, setup.nn_distance, model=model, device=device)
        xy_r, resp = find_peaks(logits, min_distance=0.35 * target, smooth=PEAK_SMOOTHING_PX)
        self.factors = factors
        self.cand_xy = to_original(xy_r, factors)
        self.cand_response = resp
        sigma = _column_sigma(image, self.cand_xy[resp > 0.5], np.asarray(setup.sigmas))
        self.cand_sigma = np.full(len(resp), sigma)
        _, manifest = load_atom_model(model, device=device)
        self.model_info = {
            "name": manifest.get("name"),
            "sha256": manifest.get("sha256"),
            "target_nn_px": target,
        }

    def select(
        self,
        threshold: float = 0.5,
        overlap: float = 0.5,
        min_sigma: float | None = None,
        max_sigma: float | None = None,
        region: tuple[slice, slice] | None = None,
    ) -> np.ndarray:
        """Indices of candidates whose peak probability exceeds *threshold* (in *region*);
        *overlap* and the sigma bounds are accepted for interface compatibility and unused
        (peaks are already thinned to one per column)."""
        return np.flatnonzero((self.cand_response > threshold) & in_region(self.cand_xy, region))
