"""Lattice estimation from the image alone: basis vectors from Fourier peaks, the visible motif
from the unit-cell average, and the column density that the count reward needs.

Coordinates are pixels, (x, y) = (column, row). Lattice vectors are rows of a (2, 2) array.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi

from ..errors import ParameterError

__all__ = [
    "Lattice",
    "estimate_lattice",
    "reduce_basis",
    "lattice_from_lengths",
    "fold_cell",
    "median_nn_distance",
]


def reduce_basis(vectors: np.ndarray) -> np.ndarray:
    """Lagrange–Gauss reduction: the shortest basis of the same 2-D lattice, |a| <= |b|,
    with the angle between them in [60°, 120°] and a right-handed (x, y) orientation."""
    a, b = (np.asarray(v, dtype=np.float64) for v in vectors)
    for _ in range(100):
        if a @ a > b @ b:
            a, b = b, a
        mu = round(float(a @ b) / float(a @ a))
        if mu == 0:
            break
        b = b - mu * a
    if a @ a > b @ b:
        a, b = b, a
    if a[0] * b[1] - a[1] * b[0] < 0:
        b = -b
    return np.stack([a, b])


@dataclass
class Lattice:
    """A 2-D projected lattice with its visible motif.

    Attributes
    ----------
    vectors : ndarray, shape (2, 2)
        Basis vectors a and b (rows) in pixels, (x, y).
    motif : ndarray, shape (m, 2)
        Fractional coordinates of the visible columns in the cell.
    motif_intensity : ndarray, shape (m,)
        Relative peak height of each motif site in the cell average (brightest = 1).
    pixel_size : float or None
        nm per pixel, for reporting lengths in nm.
    confidence : float
        0…1: how clearly the image shows this lattice (Fourier peak prominence and the
        contrast of the unit-cell average).
    cell_average : ndarray or None
        The unit-cell average image (fractional grid, rows = b, columns = a).
    """

    vectors: np.ndarray
    motif: np.ndarray = field(default_factory=lambda: np.zeros((1, 2)))
    motif_intensity: np.ndarray = field(default_factory=lambda: np.ones(1))
    pixel_size: float | None = None
    confidence: float = 1.0
    cell_average: np.ndarray | None = None
    source: str = "image"
    support: np.ndarray | None = None  # pixels that carry the lattice (bool image)

    @property
    def cell_area_px(self) -> float:
        return float(abs(np.linalg.det(self.vectors)))

    @property
    def n_motif(self) -> int:
        return int(len(self.motif))

    @property
    def density_px(self) -> float:
        """Visible columns per square pixel."""
        return self.n_motif / self.cell_area_px

    @property
    def lengths_px(self) -> tuple[float, float]:
        return tuple(float(np.hypot(*v)) for v in self.vectors)  # type: ignore[return-value]

    @property
    def angle_deg(self) -> float:
        a, b = self.vectors
        cosang = float(a @ b) / (np.hypot(*a) * np.hypot(*b))
        return math.degrees(math.acos(max(-1.0, min(1.0, cosang))))

    @property
    def lengths_nm(self) -> tuple[float, float] | None:
        if self.pixel_size is None:
            return None
        a, b = self.lengths_px
        return a * self.pixel_size, b * self.pixel_size

    def expected_count(self, area_px: float) -> float:
        """Columns expected in an area of *area_px* square pixels."""
        return self.density_px * area_px

    def ideal_positions(
        self, shape: tuple[int, int], origin: tuple[float, float] = (0.0, 0.0), margin: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ideal column positions (x, y) covering an image of *shape*, and their motif index."""
        h, w = shape
        inv = np.linalg.inv(self.vectors)
        corners = np.array(
            [
                [-margin, -margin],
                [w + margin, -margin],
                [-margin, h + margin],
                [w + margin, h + margin],
            ]
        ) - np.asarray(origin)
        frac = corners @ inv
        lo = np.floor(frac.min(axis=0)) - 1
        hi = np.ceil(frac.max(axis=0)) + 1
        ii, jj = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1))
        cells = np.stack([ii.ravel(), jj.ravel()], axis=1)
        pts = (cells[:, None, :] + self.motif[None, :, :]).reshape(-1, 2) @ self.vectors
        pts = pts + np.asarray(origin)
        site = np.tile(np.arange(self.n_motif), len(cells))
        keep = (
            (pts[:, 0] >= -margin)
            & (pts[:, 0] <= w - 1 + margin)
            & (pts[:, 1] >= -margin)
            & (pts[:, 1] <= h - 1 + margin)
        )
        return pts[keep], site[keep]

    def neighbour_distances(self, k: int = 4) -> np.ndarray:
        """For each motif site, the sorted distances (px) to its *k* nearest ideal neighbours."""
        from scipy.spatial import cKDTree

        cells = np.array(list(itertools.product(range(-3, 4), repeat=2)), dtype=float)
        pts = (cells[:, None, :] + self.motif[None, :, :]).reshape(-1, 2) @ self.vectors
        centre = self.motif @ self.vectors
        d, _ = cKDTree(pts).query(centre, k=k + 1)
        return d[:, 1:]

    @property
    def nn_distance_px(self) -> float:
        """Shortest distance between two visible columns (px)."""
        return float(self.neighbour_distances(1).min())

    def distance_sum(self, k: int = 4) -> float:
        """Smallest sum of distances to the *k* nearest neighbours over the motif sites (px):
        the "distance sum" of the ideal lattice that the error reward compares against."""
        return float(self.neighbour_distances(k).sum(axis=1).min())

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "a_px": self.lengths_px[0],
            "b_px": self.lengths_px[1],
            "angle_deg": self.angle_deg,
            "vectors_px": self.vectors.tolist(),
            "motif_fractional": self.motif.tolist(),
            "motif_relative_intensity": self.motif_intensity.tolist(),
            "columns_per_cell": self.n_motif,
            "density_per_nm2": (self.density_px / self.pixel_size**2) if self.pixel_size else None,
            "nn_distance_px": self.nn_distance_px,
            "confidence": self.confidence,
            "source": self.source,
        }
        if self.lengths_nm:
            out["a_nm"], out["b_nm"] = self.lengths_nm
        return out


def _windowed_power(image: np.ndarray) -> np.ndarray:
    h, w = image.shape
    img = image - ndi.uniform_filter(image, size=max(8, min(h, w) // 4), mode="reflect")
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    spec = sfft.fft2(img * win, workers=-1)
    return np.abs(sfft.fftshift(spec)) ** 2


def _fourier_peaks(power: np.ndarray, k_min: float, k_max: float, n_max: int = 60):
    """Strong local maxima of the (shifted) power spectrum in the annulus k_min <= |k| <= k_max
    (cycles per pixel); returns sub-pixel frequency vectors (kx, ky) and powers, strongest first."""
    h, w = power.shape
    ky = (np.arange(h) - h // 2) / h
    kx = (np.arange(w) - w // 2) / w
    kr = np.hypot(kx[None, :], ky[:, None])
    annulus = (kr >= k_min) & (kr <= k_max)
    # only one half-plane (Friedel pairs)
    half = (ky[:, None] > 0) | ((ky[:, None] == 0) & (kx[None, :] > 0))
    logp = np.log(power + 1e-30)
    local_max = logp == ndi.maximum_filter(logp, size=5, mode="wrap")
    cand = local_max & annulus & half
    rows, cols = np.nonzero(cand)
    if rows.size == 0:
        return np.zeros((0, 2)), np.zeros(0), 0.0
    vals = power[rows, cols]
    order = np.argsort(vals)[::-1][:n_max]
    rows, cols, vals = rows[order], cols[order], vals[order]
    # prominence against the typical power at the same |k| (the diffuse background)
    ring_bins = np.clip((kr / max(k_max, 1e-9) * 64).astype(int), 0, 64)
    # typical (geometric-mean) power in each ring: robust to the few Bragg peaks in it
    ring_sum = np.bincount(ring_bins.ravel(), weights=logp.ravel(), minlength=65)
    ring_n = np.bincount(ring_bins.ravel(), minlength=65)
    ring_level = np.exp(ring_sum / np.maximum(ring_n, 1))
    background = ring_level[ring_bins[rows, cols]] + 1e-30
    prominence = vals / background
    # sub-pixel peak position: centroid of the 3x3 neighbourhood of the power
    peaks = []
    for r, c in zip(rows, cols, strict=True):
        rr = np.arange(r - 1, r + 2) % h
        cc = np.arange(c - 1, c + 2) % w
        patch = power[np.ix_(rr, cc)]
        wsum = patch.sum()
        dy = float((patch.sum(axis=1) * np.array([-1, 0, 1])).sum() / wsum)
        dx = float((patch.sum(axis=0) * np.array([-1, 0, 1])).sum() / wsum)
        peaks.append(((c + dx - w // 2) / w, (r + dy - h // 2) / h))
    return np.asarray(peaks), prominence, float(np.median(prominence))


def _index_quality(basis: np.ndarray, peaks: np.ndarray, weights: np.ndarray, tol: float):
    """Fraction of peak weight indexed by integer combinations of a reciprocal *basis*."""
    try:
        hk = peaks @ np.linalg.inv(basis)
    except np.linalg.LinAlgError:
        return 0.0, None
    resid = np.abs(hk - np.round(hk)).max(axis=1)
    ok = resid < tol
    return float(weights[ok].sum() / weights.sum()), ok


def _reciprocal_basis(peaks: np.ndarray, prominence: np.ndarray) -> np.ndarray | None:
    """Reciprocal basis that indexes the most (log-prominence-weighted) strong Fourier peaks.

    Candidate bases are pairs of the twelve most prominent peaks. A peak counts when its
    indices are integers within 0.1 and at most 4 in size, so a second crystal domain or a twin
    adds peaks no basis of the first explains, without pulling the basis towards a huge cell.
    Among bases that explain (almost) as much, the largest reciprocal cell (the smallest real
    cell) wins: a basis of half the size indexes the same peaks but describes a fictitious
    supercell.
    """
    strong = prominence >= max(8.0, 0.02 * prominence.max())
    p = peaks[strong]
    wts = np.log(prominence[strong])
    if len(p) < 2:
        return None
    top = np.argsort(-wts)[:12]
    results = []
    for i, j in itertools.combinations(top, 2):
        g1, g2 = p[i], p[j]
        cross = abs(g1[0] * g2[1] - g1[1] * g2[0])
        if cross < 0.25 * np.hypot(*g1) * np.hypot(*g2):  # nearly collinear
            continue
        basis = np.stack([g1, g2])
        hk = p @ np.linalg.inv(basis)
        ok = (np.abs(hk - np.round(hk)).max(axis=1) < 0.1) & (np.abs(np.round(hk)).max(axis=1) <= 4)
        results.append((float(wts[ok].sum()), cross, basis, ok))
    if not results:
        return None
    best_score = max(r[0] for r in results)
    near_best = [r for r in results if r[0] >= 0.97 * best_score]
    score, cross, best, ok = max(near_best, key=lambda r: r[1])
    # least-squares refinement with every indexed peak
    hk = np.round(p[ok] @ np.linalg.inv(best))
    if ok.sum() >= 3:
        sol, *_ = np.linalg.lstsq(hk, p[ok], rcond=None)
        if abs(np.linalg.det(sol)) > 1e-12:
            best = sol
    return best


def _acf_peaks(image: np.ndarray, max_spacing: float, min_spacing: float, n: int = 30):
    """Strongest local maxima of the autocorrelation (one half-plane), sub-pixel, with their
    heights relative to the zero-shift value."""
    h, w = image.shape
    x = image - ndi.uniform_filter(image, size=max(8, min(h, w) // 4), mode="reflect")
    x = x * np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    spec = sfft.rfft2(x, s=(2 * h, 2 * w), workers=-1)
    ac = sfft.fftshift(sfft.irfft2(np.abs(spec) ** 2, s=(2 * h, 2 * w), workers=-1))
    ac = ac / ac[h, w]
    peak = ac == ndi.maximum_filter(ac, size=5, mode="constant", cval=-np.inf)
    ys, xs = np.nonzero(peak)
    v = np.stack([xs - w, ys - h], axis=1).astype(float)
    d = np.hypot(v[:, 0], v[:, 1])
    half = (v[:, 1] > 0) | ((v[:, 1] == 0) & (v[:, 0] > 0))
    sel = half & (d >= min_spacing) & (d <= max_spacing)
    ys, xs, v, vals = ys[sel], xs[sel], v[sel], ac[ys[sel], xs[sel]]
    order = np.argsort(-vals)[:n]
    ys, xs, v, vals = ys[order], xs[order], v[order], vals[order]
    # parabolic sub-pixel refinement along each axis
    for k, (r, c) in enumerate(zip(ys, xs, strict=True)):
        if 0 < r < 2 * h - 1 and 0 < c < 2 * w - 1:
            for axis, (m1, p0, p1) in enumerate(
                [(ac[r, c - 1], ac[r, c], ac[r, c + 1]), (ac[r - 1, c], ac[r, c], ac[r + 1, c])]
            ):
                den = m1 - 2 * p0 + p1
                if den < 0:
                    v[k, axis] += 0.5 * (m1 - p1) / den
    return v, vals


def _acf_basis(v: np.ndarray, vals: np.ndarray) -> np.ndarray | None:
    """Real-space basis from the autocorrelation peaks (split peaks from two domains or a bent
    crystal count once): the shortest of the tallest peaks, and the shortest peak not within
    30° of collinear with it among those nearly as tall; refined by least squares on the
    nearby peaks it indexes.

    Lattice vectors give the tallest peaks. A weak motif site (the B site of a perovskite) only
    adds a lower cross-term peak, so the basis stays that of the true cell and the unit-cell
    average finds the weak site as a second motif column.
    """
    if len(v) < 2:
        return None
    keep: list[int] = []
    for k in np.argsort(-vals):
        d_k = np.hypot(*v[k])
        if all(np.hypot(*(v[k] - v[m])) > 0.15 * max(d_k, np.hypot(*v[m])) for m in keep):
            keep.append(int(k))
    v, vals = v[keep], vals[keep]
    length = np.hypot(v[:, 0], v[:, 1])
    # a: the shortest of the (nearly) tallest peaks; b: the shortest non-collinear peak among
    # those nearly as tall as a, lowering the bar step by step (a strained particle has weaker
    # second-direction peaks; a perovskite's faint centring peak stays below the first bar)
    tall = np.flatnonzero(vals >= 0.85 * vals.max())
    a_idx = tall[np.argmin(length[tall])]
    a = v[a_idx]
    b = None
    for bar in (0.8, 0.7, 0.6, 0.5):
        cand = [
            k
            for k in np.flatnonzero(vals >= bar * vals[a_idx])
            if k != a_idx
            and abs(a[0] * v[k, 1] - a[1] * v[k, 0]) >= 0.5 * length[a_idx] * length[k]
        ]
        if cand:
            b = v[min(cand, key=lambda k: length[k])]
            break
    if b is None:
        return None
    basis = reduce_basis(np.stack([a, b]))
    hk = v @ np.linalg.inv(basis)
    near = np.abs(np.round(hk)).max(axis=1) <= 2
    resid = np.hypot(*((hk - np.round(hk)) @ basis).T)
    ok = near & (resid < max(1.5, 0.08 * min(np.hypot(*basis[0]), np.hypot(*basis[1]))))
    h_int = np.round(hk[ok])
    if ok.sum() >= 3 and np.linalg.matrix_rank(h_int) == 2:
        sol, *_ = np.linalg.lstsq(h_int, v[ok], rcond=None)
        if abs(np.linalg.det(sol)) > 1e-9:
            basis = sol
    return reduce_basis(basis)


def _superlattice(vectors: np.ndarray, peaks: np.ndarray, prominence: np.ndarray) -> np.ndarray:
    """A supercell when strong Fourier peaks sit at half-integer indices of the current cell.

    When two motif sites of different brightness (A and B of a perovskite) give autocorrelation
    peaks of similar height, the basis found is the centred sub-cell; its weaker "superlattice"
    reflections then index only in a cell of twice the area, which is the true one.
    """
    if len(peaks) == 0:
        return vectors
    recip = np.linalg.inv(vectors).T
    strong = prominence >= max(12.0, 0.03 * prominence.max())
    hk = peaks[strong] @ np.linalg.inv(recip)
    # superlattice reflections sit at half-integer indices of the sub-cell
    half = np.abs(hk - np.round(hk)).max(axis=1) > 0.35
    unindexed = half & (np.abs(2 * hk - np.round(2 * hk)).max(axis=1) < 0.15)
    if unindexed.sum() < 2:
        return vectors
    best, best_count = vectors, 1
    for m in (np.array([[1, 1], [1, -1]]), np.array([[2, 0], [0, 1]]), np.array([[1, 0], [0, 2]])):
        cell = m @ vectors
        hk2 = peaks[strong] @ np.linalg.inv(np.linalg.inv(cell).T)
        indexed = (np.abs(hk2 - np.round(hk2)).max(axis=1) < 0.12) & unindexed
        if indexed.sum() > best_count:
            best, best_count = cell, int(indexed.sum())
    return best


def _refine_with_fourier(
    vectors: np.ndarray, peaks: np.ndarray, prominence: np.ndarray
) -> np.ndarray:
    """Least-squares refinement of a real-space basis with the Fourier peaks it indexes
    (sub-pixel peak positions in reciprocal space are more precise than autocorrelation
    maxima)."""
    if len(peaks) < 2:
        return vectors
    recip = np.linalg.inv(vectors).T
    hk = peaks @ np.linalg.inv(recip)
    strong = prominence >= 8.0
    ok = (
        strong
        & (np.abs(hk - np.round(hk)).max(axis=1) < 0.12)
        & (np.abs(np.round(hk)).max(axis=1) <= 6)
    )
    if ok.sum() < 2:
        return vectors
    h_int = np.round(hk[ok])
    if np.linalg.matrix_rank(h_int) < 2:
        return vectors
    sol, *_ = np.linalg.lstsq(h_int, peaks[ok], rcond=None)
    refined = np.linalg.inv(sol).T
    # accept only a small correction
    if np.abs(refined - vectors).max() > 0.05 * np.abs(vectors).max():
        return vectors
    return refined


def _fold_index(
    shape: tuple[int, int], vectors: np.ndarray, bins: int, origin: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Flat (bins × bins) cell-bin index of every pixel (rows along b, columns along a)."""
    h, w = shape
    inv = np.linalg.inv(vectors)
    x = np.arange(w, dtype=np.float64) - origin[0]
    y = np.arange(h, dtype=np.float64) - origin[1]
    fa = ((x[None, :] * inv[0, 0] + y[:, None] * inv[1, 0]) % 1.0) * bins
    fb = ((x[None, :] * inv[0, 1] + y[:, None] * inv[1, 1]) % 1.0) * bins
    ia = np.minimum(fa.astype(np.int64), bins - 1)
    ib = np.minimum(fb.astype(np.int64), bins - 1)
    return (ib * bins + ia).ravel()


def _fold(
    values: np.ndarray, index: np.ndarray, bins: int, weights: np.ndarray | None
) -> np.ndarray:
    wts = np.ones(index.size) if weights is None else weights.ravel().astype(np.float64)
    total = np.bincount(index, weights=values.ravel() * wts, minlength=bins * bins)
    count = np.bincount(index, weights=wts, minlength=bins * bins)
    # normalised convolution: pixels sample the cell unevenly (a moiré with the pixel grid),
    # so sums and counts are smoothed alike before dividing
    sm_total = ndi.gaussian_filter(total.reshape(bins, bins), 0.7, mode="wrap")
    sm_count = ndi.gaussian_filter(count.reshape(bins, bins), 0.7, mode="wrap")
    if not (sm_count > 0).any():
        return np.zeros((bins, bins))
    return np.where(
        sm_count > 1e-9 * sm_count.max(),
        sm_total / np.maximum(sm_count, 1e-300),
        float(total.sum() / max(count.sum(), 1e-300)),
    )


def fold_cell(
    image: np.ndarray,
    vectors: np.ndarray,
    bins: int = 32,
    origin: tuple[float, float] = (0.0, 0.0),
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Average the image over all unit cells: a (bins, bins) map on fractional coordinates
    (rows along b, columns along a), periodic."""
    img = np.asarray(image, dtype=np.float64)
    index = _fold_index(img.shape, np.asarray(vectors, float), bins, origin)
    return _fold(img, index, bins, None if mask is None else mask.astype(np.float64))


def _motif_from_cell(
    cell: np.ndarray,
    vectors: np.ndarray,
    min_relative: float,
    min_separation_px: float,
    smooth_px: float = 1.0,
    noise_cell: np.ndarray | None = None,
    min_snr: float = 6.0,
) -> tuple[np.ndarray, np.ndarray, float]:
    bins = cell.shape[0]
    a_len, b_len = np.hypot(vectors[:, 0], vectors[:, 1])
    # smooth by about one image pixel: averages the noise left in each bin without merging
    # columns that the probe resolves
    sigma = (smooth_px * bins / b_len, smooth_px * bins / a_len)
    smooth = ndi.gaussian_filter(cell, sigma, mode="wrap")
    lo, hi = float(smooth.min()), float(smooth.max())
    contrast = hi - lo
    if contrast <= 0:
        return np.zeros((1, 2)), np.ones(1), 0.0
    rel = (smooth - lo) / contrast
    peaks = (smooth == ndi.maximum_filter(smooth, size=3, mode="wrap")) & (rel >= min_relative)
    if noise_cell is not None:
        # a motif site must stand out of the fold's own noise (estimated from the difference
        # of two half-folds, smoothed the same way)
        noise = float(np.std(ndi.gaussian_filter(noise_cell, sigma, mode="wrap")))
        peaks &= (smooth - lo) >= min_snr * noise
    ib, ia = np.nonzero(peaks)
    heights = rel[ib, ia]
    # sub-bin centroid on the torus
    frac = []
    for b0, a0 in zip(ib, ia, strict=True):
        rr = np.arange(b0 - 1, b0 + 2) % bins
        cc = np.arange(a0 - 1, a0 + 2) % bins
        patch = rel[np.ix_(rr, cc)] - rel[np.ix_(rr, cc)].min()
        s = patch.sum() or 1.0
        db = float((patch.sum(axis=1) * np.array([-1, 0, 1])).sum() / s)
        da = float((patch.sum(axis=0) * np.array([-1, 0, 1])).sum() / s)
        frac.append((((a0 + 0.5 + da) / bins) % 1.0, ((b0 + 0.5 + db) / bins) % 1.0))
    frac = np.asarray(frac, dtype=float).reshape(-1, 2)
    order = np.argsort(heights)[::-1]
    frac, heights = frac[order], heights[order]
    # merge sites closer than min_separation (periodic), keeping the brighter
    keep: list[int] = []
    for i in range(len(frac)):
        ok = True
        for j in keep:
            d = frac[i] - frac[j]
            d -= np.round(d)
            if np.hypot(*(d @ vectors)) < min_separation_px:
                ok = False
                break
        if ok:
            keep.append(i)
    frac, heights = frac[keep], heights[keep]
    # contrast of the cell average relative to its own fluctuation scale
    return frac, heights, contrast


def _directional_amplitude(
    spec: np.ndarray, shape: tuple[int, int], recip: np.ndarray, sigma: float
) -> np.ndarray:
    """Local amplitude of the lattice's Bragg components g1, g2, g1 ± g2: demodulating at g and
    smoothing over σ px is a Gaussian band-pass around g in Fourier space."""
    h, w = shape
    ky = sfft.fftfreq(h)[:, None]
    kx = sfft.fftfreq(w)[None, :]
    amplitude = np.zeros(shape, np.float64)
    for g in (recip[0], recip[1], recip[0] + recip[1], recip[0] - recip[1]):
        dk2 = (kx - g[0]) ** 2 + (ky - g[1]) ** 2
        amplitude += np.abs(sfft.ifft2(spec * np.exp(-2 * np.pi**2 * sigma**2 * dk2), workers=-1))
    return amplitude


def _ring_energy(
    spec: np.ndarray, shape: tuple[int, int], radii: list[float], sigma: float
) -> np.ndarray:
    """Local energy of an isotropic ring band-pass at the lattice's spatial frequencies: lattice
    at any orientation (a second grain) counts."""
    h, w = shape
    ky = sfft.fftfreq(h)[:, None]
    kx = sfft.fftfreq(w)[None, :]
    kr = np.hypot(kx, ky)
    ring = np.zeros_like(kr)
    for g in radii:
        ring = np.maximum(ring, np.exp(-0.5 * ((kr - g) / (0.2 * g)) ** 2))
    band = sfft.ifft2(spec * ring, workers=-1).real
    return ndi.gaussian_filter(band * band, sigma)


def support_mask(image: np.ndarray, vectors: np.ndarray, min_fraction: float = 0.05) -> np.ndarray:
    """Pixels that carry the lattice.

    The local amplitude of the lattice's Bragg components (g1, g2, g1 ± g2) measures how much
    of this lattice is present at each point, independent of slow intensity changes and of
    noise at other frequencies. When that map is clearly two-valued, its upper Otsu class,
    grown by half a cell, is the support (a particle on vacuum or on an amorphous support) —
    unless the excluded part still has as much energy at the lattice's spacings in other
    directions (another grain of the same structure), in which case the whole image is.
    """
    from skimage.filters import threshold_otsu

    img = np.asarray(image, np.float32)
    recip = np.linalg.inv(np.asarray(vectors, float)).T
    cell = float(min(np.hypot(*vectors[0]), np.hypot(*vectors[1])))
    spec = sfft.fft2(img - img.mean(), workers=-1)
    amplitude = _directional_amplitude(spec, img.shape, recip, 0.7 * cell)
    try:
        t = threshold_otsu(amplitude)
    except ValueError:
        return np.ones(img.shape, bool)
    mask = amplitude > t
    frac = mask.mean()
    if frac > 0.9 or frac < min_fraction:
        return np.ones(img.shape, bool)
    if amplitude[mask].mean() < 3.0 * max(amplitude[~mask].mean(), 1e-12):
        return np.ones(img.shape, bool)
    radii = sorted({round(float(np.hypot(*g)), 4) for g in (recip[0], recip[1])})
    energy = _ring_energy(spec, img.shape, radii, 0.7 * cell)
    if energy[~mask].mean() > 0.5 * energy[mask].mean():
        return np.ones(img.shape, bool)
    mask = ndi.binary_closing(mask, iterations=max(1, int(0.5 * cell)))
    mask = ndi.binary_fill_holes(mask)
    return ndi.binary_dilation(mask, iterations=max(1, int(0.5 * cell)))


def lattice_from_lengths(
    a_px: float, b_px: float | None = None, angle_deg: float = 90.0, rotation_deg: float = 0.0
) -> np.ndarray:
    """Basis vectors (px) of a lattice with given lengths, angle and in-plane rotation."""
    b_px = a_px if b_px is None else b_px
    th = math.radians(rotation_deg)
    ga = math.radians(angle_deg)
    a = np.array([math.cos(th), math.sin(th)]) * a_px
    b = np.array([math.cos(th + ga), math.sin(th + ga)]) * b_px
    return np.stack([a, b])


def _align_to_lengths(found: np.ndarray, lengths_px: tuple[float, float]) -> np.ndarray:
    """Scale an image-derived basis to user-given lengths (keeps the image's orientation)."""
    found = reduce_basis(found)
    a_len, b_len = sorted(lengths_px)
    fa, fb = sorted(np.hypot(found[:, 0], found[:, 1]))
    # the user may give the true cell while the image shows a sub-cell or vice versa:
    # only rescale when the two agree within 25 %
    if abs(fa / a_len - 1) < 0.25 and abs(fb / b_len - 1) < 0.25:
        return np.stack([found[0] * a_len / fa, found[1] * b_len / fb])
    return found


def estimate_lattice(
    image: np.ndarray,
    *,
    pixel_size: float | None = None,
    lengths_px: tuple[float, float] | None = None,
    min_spacing_px: float = 3.0,
    max_spacing_px: float | None = None,
    min_relative_intensity: float = 0.2,
    mask: np.ndarray | None = None,
) -> Lattice:
    """Estimate the projected lattice and its visible motif from an image.

    Parameters
    ----------
    image : ndarray (H, W)
        Image with bright columns (invert dark-column images first).
    pixel_size : float, optional
        nm per pixel, only for reporting.
    lengths_px : (float, float), optional
        Known lattice lengths in pixels (e.g. from ``--lattice``); the orientation still comes
        from the image, and the lengths replace the image's when they agree within 25 %.
    min_spacing_px, max_spacing_px : float
        Range of lattice spacings searched (px). Default maximum: a quarter of the image.
    min_relative_intensity : float
        Motif sites fainter than this fraction of the brightest site's contrast in the unit-cell
        average are not counted as visible columns.
    mask : ndarray of bool, optional
        Pixels to use for the unit-cell average (e.g. the crystalline region).

    Returns
    -------
    Lattice

    Raises
    ------
    ParameterError
        If the image shows no periodic lattice.
    """
    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape
    if min(h, w) < 16:
        raise ParameterError(f"Image of shape {img.shape} is too small to estimate a lattice.")
    max_spacing_px = max_spacing_px or min(h, w) / 4
    power = _windowed_power(img)
    peaks, prominence, _ = _fourier_peaks(power, 1.0 / max_spacing_px, 1.0 / min_spacing_px)
    acf_v, acf_vals = _acf_peaks(img, max_spacing_px, min_spacing_px)
    vectors = _acf_basis(acf_v, acf_vals) if len(acf_v) else None
    if vectors is not None and len(peaks):
        vectors = reduce_basis(_refine_with_fourier(vectors, peaks, prominence))
        larger = _superlattice(vectors, peaks, prominence)
        if larger is not vectors:
            vectors = reduce_basis(_refine_with_fourier(reduce_basis(larger), peaks, prominence))
    if vectors is None:
        basis_k = _reciprocal_basis(peaks, prominence) if len(peaks) else None
        if basis_k is None:
            raise ParameterError(
                "No periodic lattice found in the image (no pair of strong autocorrelation or "
                "Fourier peaks). Give the lattice (lattice=...) or the expected number of "
                "columns."
            )
        vectors = reduce_basis(np.linalg.inv(basis_k).T)
    if lengths_px is not None:
        vectors = _align_to_lengths(vectors, lengths_px)
    a_len, b_len = np.hypot(vectors[:, 0], vectors[:, 1])
    if mask is None:
        # a particle on vacuum: average only where the lattice is
        mask = support_mask(img, vectors)
    bins = int(np.clip(max(a_len, b_len), 16, 48))
    index = _fold_index(img.shape, vectors, bins)
    values = img.astype(np.float64)
    m = np.ones(img.shape, bool) if mask is None else mask.astype(bool)
    cell = _fold(values, index, bins, m)
    # noise of the fold: half the difference of the folds of two random halves of the pixels
    half = np.random.default_rng(0).random(img.shape) < 0.5
    noise_cell = 0.5 * (
        _fold(values, index, bins, m & half) - _fold(values, index, bins, m & ~half)
    )
    # two visible columns of one cell are at least ~0.3 of the shortest cell edge apart (Si or
    # GaAs [110] dumbbells: 0.35); closer maxima of the average are one smeared column
    nn_guess = 0.3 * min(a_len, b_len)
    motif, heights, contrast = _motif_from_cell(
        cell, vectors, min_relative_intensity, nn_guess, noise_cell=noise_cell
    )
    if len(motif) == 0:
        motif, heights = np.zeros((1, 2)), np.ones(1)
    # shift the motif so that the brightest site is at the origin
    motif = (motif - motif[0]) % 1.0
    noise = float(np.std(img - ndi.gaussian_filter(img, 1.0))) + 1e-12
    n_cells = (h * w) / (a_len * b_len)
    snr_cell = contrast / (noise / math.sqrt(max(n_cells, 1.0) * (a_len * b_len) / bins**2))
    k_prom = float(np.sort(prominence)[::-1][:4].mean()) if len(prominence) else 0.0
    confidence = float(np.clip(min(math.log10(max(k_prom, 1.0)) / 3.0, snr_cell / 20.0), 0, 1))
    return Lattice(vectors, motif, heights, pixel_size, confidence, cell, "image", mask)


def median_nn_distance(xy: np.ndarray, *, min_points: int = 2) -> float:
    """Median nearest-neighbour distance of a point set (its units), NaN with fewer than
    ``min_points`` points."""
    from scipy.spatial import cKDTree

    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    if len(xy) < max(min_points, 2):
        return float("nan")
    d, _ = cKDTree(xy).query(xy, 2)
    return float(np.median(d[:, 1]))
