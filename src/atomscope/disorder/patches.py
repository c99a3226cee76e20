"""Atom-centred patches: vectorised extraction at sub-pixel centres.

A patch is the image resampled on a square grid of ``(2 h + 1)²`` points centred on a column
(bilinear interpolation, so a column at x = 10.3 px gives the same patch as one at x = 10 px
in an image shifted by 0.3 px). Patches that would reach outside the image are flagged, not
padded: a mirrored or constant border is not a lattice and would read as disorder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..errors import ParameterError

__all__ = ["Patches", "extract_patches", "robust_scale"]


@dataclass
class Patches:
    """Patches cut around a set of centres.

    Attributes
    ----------
    data : ndarray, shape (n, 2 h + 1, 2 h + 1)
        Patch values (normalised as requested). With ``partial=True`` patches that reach
        outside the image hold the nearest edge value there (never used: see ``inside``);
        otherwise they are zeros.
    inside : ndarray of bool, shape (n,)
        The whole patch lies inside the image.
    half_size : int
        h, in px: the patch spans ``[x − h, x + h]``.
    centres : ndarray, shape (n, 2)
        (x, y) centres in px.
    """

    data: np.ndarray
    inside: np.ndarray
    half_size: int
    centres: np.ndarray

    @property
    def size(self) -> int:
        return 2 * self.half_size + 1

    def flat(self) -> np.ndarray:
        """(n, size²) view for clustering."""
        return self.data.reshape(len(self.data), -1)


def robust_scale(image: np.ndarray) -> tuple[float, float]:
    """Offset and scale that map an image's 1st percentile to 0 and its 99.5th to 1."""
    lo, hi = np.percentile(image, [1.0, 99.5])
    return float(lo), float(max(hi - lo, 1e-12))


def extract_patches(
    image: np.ndarray,
    centres: np.ndarray,
    half_size: int,
    *,
    normalise: str = "image",
    order: int = 1,
    partial: bool = False,
) -> Patches:
    """Cut a square patch around every centre.

    Parameters
    ----------
    image : ndarray (H, W)
        The image (float).
    centres : ndarray (n, 2)
        (x, y) in px, x = column.
    half_size : int
        Half the patch side in px (the patch is ``2 h + 1`` px wide).
    normalise : {"image", "patch", "none"}
        "image": the whole image mapped to [0, 1] by robust percentiles (keeps brightness
        differences between columns, which tell species apart); "patch": every patch to zero
        mean and unit norm (shape only); "none": raw values.
    order : int
        Spline order of the interpolation (1 = bilinear; 0 = nearest pixel).
    partial : bool
        Also cut patches that reach outside the image (centres inside it), for scores that
        use only the part of a patch inside the image (see
        :func:`~atomscope.disorder.model.half_plane_masks`).

    Returns
    -------
    Patches
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ParameterError(f"extract_patches needs a 2-D image, got shape {img.shape}")
    h = int(half_size)
    if h < 1:
        raise ParameterError(f"patch half-size must be at least 1 px, got {half_size!r}")
    if normalise not in ("image", "patch", "none"):
        raise ParameterError(f"normalise must be 'image', 'patch' or 'none', not {normalise!r}")
    xy = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    n = len(xy)
    size = 2 * h + 1
    H, W = img.shape
    inside = (
        (xy[:, 0] - h >= 0)
        & (xy[:, 0] + h <= W - 1)
        & (xy[:, 1] - h >= 0)
        & (xy[:, 1] + h <= H - 1)
    )
    data = np.zeros((n, size, size))
    if n:
        if normalise == "image":
            lo, scale = robust_scale(img)
            img = (img - lo) / scale
        off = np.arange(-h, h + 1, dtype=np.float64)
        cut = (
            inside
            if not partial
            else (
                (xy[:, 0] >= -0.5)
                & (xy[:, 0] <= W - 0.5)
                & (xy[:, 1] >= -0.5)
                & (xy[:, 1] <= H - 0.5)
            )
        )
        sel = np.flatnonzero(cut)
        # chunks keep the coordinate arrays small on large images
        for start in range(0, len(sel), 4096):
            idx = sel[start : start + 4096]
            rows = xy[idx, 1][:, None, None] + off[None, :, None]
            cols = xy[idx, 0][:, None, None] + off[None, None, :]
            rows, cols = np.broadcast_arrays(rows, cols)
            data[idx] = ndi.map_coordinates(
                img, [rows.ravel(), cols.ravel()], order=order, mode="nearest"
            ).reshape(len(idx), size, size)
        if normalise == "patch" and sel.size:
            # with partial patches the normalisation would mix in edge values: use the
            # inside ones only, the others keep image normalisation
            sel = np.flatnonzero(inside)
            d = data[sel]
            d = d - d.mean(axis=(1, 2), keepdims=True)
            norm = np.sqrt((d**2).sum(axis=(1, 2), keepdims=True))
            data[sel] = d / np.maximum(norm, 1e-12)
    return Patches(data=data, inside=inside, half_size=h, centres=xy)


def invariant_features(data: np.ndarray, harmonics: tuple[int, ...] = (1, 2, 3, 4)) -> np.ndarray:
    """Rotation- and mirror-invariant description of patches: per 1-px ring, the mean value
    and the magnitude of the angular Fourier harmonics *harmonics*.

    Two columns of one species whose surroundings are mirror images (the two Ba sites of
    YBa2Cu3O7 [100], say) get the same features, so types follow chemistry and coordination,
    not orientation; odd harmonics tell centrosymmetric sites (Cu chain, Y) from the others.

    Parameters
    ----------
    data : ndarray (n, s, s)
        Square patches (s odd).
    harmonics : tuple of int
        Angular orders m ≥ 1 whose magnitudes are kept, for rings of radius ≥ 2 px.

    Returns
    -------
    ndarray (n, n_features)
    """
    P = np.asarray(data, dtype=np.float64)
    n, s = P.shape[0], P.shape[1]
    h = s // 2
    g = np.arange(-h, h + 1, dtype=float)
    X, Y = np.meshgrid(g, g)
    R = np.hypot(X, Y)
    A = np.arctan2(Y, X)
    ring = np.rint(R).astype(int)
    flat = P.reshape(n, -1)
    feats = []
    for r in range(0, h + 1):
        m = (ring == r).ravel()
        if not m.any():
            continue
        v = flat[:, m]
        feats.append(v.mean(axis=1))
        if r >= 2:
            ang = A.ravel()[m]
            for k in harmonics:
                c = v @ np.exp(1j * k * ang) / m.sum()
                feats.append(np.abs(c))
    return np.column_stack(feats) if feats else np.zeros((n, 0))
