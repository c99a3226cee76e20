"""Blob detection in a scale space that is computed once per image.

The stack of scale-normalised Laplacian-of-Gaussian (or difference-of-Gaussian) responses and its
3-D local maxima are computed once; every later detection with a different threshold, overlap or
sigma range is a filter over the precomputed candidates and candidate pairs, so an optimiser can
evaluate hundreds of parameter sets in milliseconds each. The number of candidates is capped, so
a low threshold on a noisy image cannot explode the pruning step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy.spatial import cKDTree

from ..errors import ParameterError

__all__ = ["ScaleSpace", "Blobs", "normalise_image", "circle_overlap_fraction"]


def normalise_image(
    image: np.ndarray, percentiles: tuple[float, float] = (0.1, 99.9)
) -> np.ndarray:
    """Scale to about [0, 1] by robust percentiles (outliers clipped), float32."""
    img = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(img, percentiles)
    if not hi > lo:
        lo, hi = float(img.min()), float(img.max())
    if not hi > lo:
        return np.zeros_like(img)
    return np.clip((img - lo) / (hi - lo), -0.5, 1.5).astype(np.float32)


def circle_overlap_fraction(d: np.ndarray, r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """Area of intersection of two disks divided by the area of the smaller one."""
    d = np.asarray(d, float)
    r1 = np.asarray(r1, float)
    r2 = np.asarray(r2, float)
    rs = np.minimum(r1, r2)
    rl = np.maximum(r1, r2)
    out = np.zeros(np.broadcast(d, r1, r2).shape)
    inside = d <= rl - rs
    out = np.where(inside, 1.0, out)
    part = (d < r1 + r2) & ~inside
    if np.any(part):
        dd, a, b = np.broadcast_arrays(d, rs, rl)
        dd, a, b = dd[part], a[part], b[part]
        c1 = np.clip((dd**2 + a**2 - b**2) / (2 * dd * a), -1, 1)
        c2 = np.clip((dd**2 + b**2 - a**2) / (2 * dd * b), -1, 1)
        area = (
            a**2 * np.arccos(c1)
            + b**2 * np.arccos(c2)
            - 0.5
            * np.sqrt(np.clip((-dd + a + b) * (dd + a - b) * (dd - a + b) * (dd + a + b), 0, None))
        )
        out[part] = area / (np.pi * a**2)
    return out


def in_region(xy: np.ndarray, region: tuple[slice, slice] | None) -> np.ndarray:
    """Which (x, y) points lie in a (row slice, column slice) region (all when None)."""
    if region is None:
        return np.ones(len(xy), bool)
    rs, cs = region
    x, y = xy[:, 0], xy[:, 1]
    return (
        (y >= (rs.start or 0))
        & (y < (rs.stop if rs.stop is not None else np.inf))
        & (x >= (cs.start or 0))
        & (x < (cs.stop if cs.stop is not None else np.inf))
    )


def _max3x3(a: np.ndarray) -> np.ndarray:
    """3 × 3 maximum filter with edge replication, as two passes of shifted maxima (several
    times faster than a generic filter for this tiny footprint)."""
    rows = a.copy()
    np.maximum(rows[1:], a[:-1], out=rows[1:])
    np.maximum(rows[:-1], a[1:], out=rows[:-1])
    out = rows.copy()
    np.maximum(out[:, 1:], rows[:, :-1], out=out[:, 1:])
    np.maximum(out[:, :-1], rows[:, 1:], out=out[:, :-1])
    return out


@dataclass
class Blobs:
    """Detected blobs: positions (x, y) in px (integer pixel centres), scale sigma (px), and
    the normalised scale-space response."""

    xy: np.ndarray
    sigma: np.ndarray
    response: np.ndarray

    def __len__(self) -> int:
        return len(self.sigma)


class ScaleSpace:
    """Scale-normalised blob responses of one image at a fixed set of sigmas.

    Parameters
    ----------
    image : ndarray (H, W)
        Image with bright blobs, already normalised to about [0, 1] (see
        :func:`normalise_image`) so that thresholds mean the same on every image.
    sigmas : sequence of float
        Scales in px.
    method : {"log", "dog"}
        Laplacian of Gaussian (``-σ² ∇²G``) or difference of Gaussians (ratio 1.6 between
        consecutive scales, normalised to the same peak response).
    floor : float
        Lowest threshold that will ever be asked for; weaker maxima are dropped.
    max_candidates : int
        Cap on the number of candidate maxima kept (strongest first).
    """

    def __init__(
        self,
        image: np.ndarray,
        sigmas: np.ndarray,
        *,
        method: str = "log",
        floor: float = 0.002,
        max_candidates: int = 200_000,
        min_levels: int | None = None,
    ) -> None:
        img = np.asarray(image, dtype=np.float32)
        if img.ndim != 2:
            raise ParameterError(f"ScaleSpace needs a 2-D image, got shape {img.shape}")
        sigmas = np.asarray(sorted(float(s) for s in sigmas))
        if sigmas.size == 0 or sigmas[0] <= 0:
            raise ParameterError("sigmas must be positive")
        if method not in ("log", "dog"):
            raise ParameterError(f"method must be 'log' or 'dog', got {method!r}")
        self.method = method
        self.sigmas = sigmas
        self.shape = img.shape
        self.floor = float(floor)
        self.stack = self._responses(img, sigmas, method)
        # levels that may serve as the lower end of a selected sigma range (the upper end is
        # always the top level): by default the lower half of the scales
        n_lev = len(sigmas)
        self.min_levels = int(min_levels) if min_levels is not None else max(1, (n_lev + 1) // 2)
        self._find_candidates(max_candidates)
        self._pairs_for(self.sigmas.max())

    # -- scale space ---------------------------------------------------------------------
    @staticmethod
    def _responses(img: np.ndarray, sigmas: np.ndarray, method: str) -> np.ndarray:
        h, w = img.shape
        pad = int(np.ceil(3 * sigmas.max())) + 2
        padded = np.pad(img, pad, mode="symmetric")
        ph, pw = padded.shape
        fh, fw = sfft.next_fast_len(ph, real=True), sfft.next_fast_len(pw, real=True)
        spec = sfft.rfft2(padded, s=(fh, fw), workers=-1)
        ky = sfft.fftfreq(fh)[:, None].astype(np.float32)
        kx = sfft.rfftfreq(fw)[None, :].astype(np.float32)
        k2 = kx**2 + ky**2
        two_pi2 = np.float32(2 * np.pi**2)
        out = np.empty((len(sigmas), h, w), dtype=np.float32)
        for i, s in enumerate(sigmas):
            if method == "log":
                kernel = np.float32(s * s) * (2 * two_pi2) * k2 * np.exp(-two_pi2 * s * s * k2)
            else:
                ratio = 1.6
                g1 = np.exp(-two_pi2 * s * s * k2)
                g2 = np.exp(-two_pi2 * (ratio * s) ** 2 * k2)
                # -(G(kσ) - G(σ)) ≈ (k - 1) σ² ∇²G: normalise to the LoG's scale
                kernel = (g1 - g2) / np.float32(ratio - 1) * np.float32(2.0 / (ratio + 1))
            resp = sfft.irfft2(spec * kernel, s=(fh, fw), workers=-1)
            out[i] = resp[pad : pad + h, pad : pad + w]
        return out

    def _find_candidates(self, max_candidates: int) -> None:
        """Maxima that can be 3-D scale-space maxima of a sub-stack [i, top], for any lower end
        i among the first ``min_levels`` levels: a 2-D maximum at level l qualifies when it
        beats level l+1 (or l is the top) and, unless l may be the lower end, level l-1; each
        is tagged with whether it beats level l-1. A kept maximum is a 3-D maximum of [i, top]
        exactly when i <= l and (l == i or it beats level l-1), so the lower end of the sigma
        range can be chosen later without recomputing anything."""
        st = self.stack
        n_lev = st.shape[0]
        spatial = np.empty_like(st)
        for lev in range(n_lev):
            spatial[lev] = _max3x3(st[lev])
        parts = []
        for lev in range(n_lev):
            peak = (st[lev] == spatial[lev]) & (st[lev] > self.floor)
            # the top level is always the upper end of the range: a maximum must beat the level
            # above; it must beat the level below unless its level can be the lower end
            if lev < n_lev - 1:
                peak &= st[lev] >= spatial[lev + 1]
            if lev > 0 and lev >= self.min_levels:
                peak &= st[lev] >= spatial[lev - 1]
            rows, cols = np.nonzero(peak)
            val = st[lev, rows, cols]
            beats_below = (
                (val >= spatial[lev - 1, rows, cols]) if lev > 0 else np.ones(len(val), bool)
            )
            beats_above = np.ones(len(val), bool)
            parts.append((np.full(len(val), lev), rows, cols, val, beats_below, beats_above))
        s_idx, rows, cols, resp, below, above = (
            np.concatenate(p) for p in zip(*parts, strict=True)
        )
        if resp.size > max_candidates:
            keep = np.argpartition(resp, -max_candidates)[-max_candidates:]
            s_idx, rows, cols, resp = s_idx[keep], rows[keep], cols[keep], resp[keep]
            below, above = below[keep], above[keep]
            self.capped = True
        else:
            self.capped = False
        order = np.argsort(-resp, kind="stable")
        self.cand_xy = np.stack([cols[order], rows[order]], axis=1).astype(np.float64)
        self.cand_level = s_idx[order]
        self.cand_sigma = self.sigmas[self.cand_level]
        self.cand_response = resp[order].astype(np.float64)
        self.cand_beats_below = below[order]
        self.cand_beats_above = above[order]

    def _pairs_for(self, max_sigma: float) -> None:
        """Every pair of candidates whose disks (radius √2·σ) overlap."""
        n = len(self.cand_response)
        if n < 2:
            self.pair_i = self.pair_j = self.pair_loser = np.zeros(0, int)
            self.pair_overlap = np.zeros(0)
            return
        radius = 2 * np.sqrt(2) * max_sigma
        pairs = cKDTree(self.cand_xy).query_pairs(radius, output_type="ndarray")
        i, j = pairs[:, 0], pairs[:, 1]
        d = np.hypot(*(self.cand_xy[i] - self.cand_xy[j]).T)
        r_i = np.sqrt(2) * self.cand_sigma[i]
        r_j = np.sqrt(2) * self.cand_sigma[j]
        near = d < r_i + r_j
        i, j, d, r_i, r_j = i[near], j[near], d[near], r_i[near], r_j[near]
        self.pair_i, self.pair_j = i, j
        self.pair_overlap = circle_overlap_fraction(d, r_i, r_j)
        # the one to drop when a pair overlaps too much: the smaller blob, or the weaker one
        si, sj = self.cand_sigma[i], self.cand_sigma[j]
        ri, rj = self.cand_response[i], self.cand_response[j]
        drop_i = (si < sj) | ((si == sj) & (ri < rj))
        self.pair_loser = np.where(drop_i, i, j)

    def level_range(self, min_sigma: float | None, max_sigma: float | None) -> tuple[int, int]:
        """Indices of the first and last precomputed level inside [min_sigma, max_sigma].

        The lower end is limited to the first ``min_levels`` levels; a *max_sigma* below the
        top level only drops larger-scale maxima (an approximation of recomputing the stack).
        """
        lo = 0 if min_sigma is None else int(np.searchsorted(self.sigmas, min_sigma - 1e-9))
        lo = min(lo, self.min_levels - 1)
        hi = (
            len(self.sigmas) - 1
            if max_sigma is None
            else int(np.searchsorted(self.sigmas, max_sigma + 1e-9, side="right")) - 1
        )
        lo = min(max(lo, 0), len(self.sigmas) - 1)
        hi = max(min(hi, len(self.sigmas) - 1), lo)
        return lo, hi

    # -- detection -------------------------------------------------------------------------
    @property
    def n_candidates(self) -> int:
        return int(len(self.cand_response))

    def select(
        self,
        threshold: float,
        overlap: float = 0.5,
        min_sigma: float | None = None,
        max_sigma: float | None = None,
        region: tuple[slice, slice] | None = None,
    ) -> np.ndarray:
        """Indices of the candidates kept for these parameters (strongest first).

        A candidate is kept when it is a 3-D maximum of the scale space restricted to the
        levels in [min_sigma, max_sigma], its response exceeds *threshold*, and no larger (or,
        at equal scale, stronger) selected blob overlaps it by more than *overlap* (fraction of
        the smaller disk's area).
        """
        lo, hi = self.level_range(min_sigma, max_sigma)
        lev = self.cand_level
        active = (
            (self.cand_response > threshold)
            & (lev >= lo)
            & (lev <= hi)
            & ((lev == lo) | self.cand_beats_below)
            & ((lev == hi) | self.cand_beats_above)
            & in_region(self.cand_xy, region)
        )
        if self.pair_i.size:
            both = active[self.pair_i] & active[self.pair_j] & (self.pair_overlap > overlap)
            active[self.pair_loser[both]] = False
        return np.flatnonzero(active)

    def detect(
        self,
        threshold: float,
        overlap: float = 0.5,
        min_sigma: float | None = None,
        max_sigma: float | None = None,
    ) -> Blobs:
        idx = self.select(threshold, overlap, min_sigma, max_sigma)
        return Blobs(
            self.cand_xy[idx].copy(), self.cand_sigma[idx].copy(), self.cand_response[idx].copy()
        )
