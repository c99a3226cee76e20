"""Alignment of a query with library entries by FFT correlation, once per candidate.

1. **Rotation and scale** (Fourier–Mellin). The power spectrum is shift-invariant; in
   log-polar coordinates (angle mod 180°, ln |k|) a rotation and a scale change become
   translations. The Bragg peaks of the query (measured) and of each entry (computed from its
   projected cell) are drawn as Gaussian blobs on one log-polar grid, and one batched 2-D FFT
   cross-correlation with every entry gives, for each, the rotation (mod 180°), the scale and a
   rotation/scale/shift-invariant similarity (the correlation peak of unit-norm descriptors).
   The mirror image (projection along −[uvw]) is a second query descriptor.
2. **Refinement.** The query peaks are paired with the entry's peaks predicted by the coarse
   transform, and a weighted least-squares fit of the reciprocal-space map (similarity, or a
   general linear map with ≤ ``max_strain`` deviation from it, which absorbs scan drift and
   shear) gives the final rotation, scale and strain. One linear solve, no search.
3. **Shift.** The query is resampled into the entry's frame (one ``map_coordinates`` call
   for all candidates), and an FFT cross-correlation with the motif image gives the shift and
   resolves the 180° ambiguity left by the power spectrum (the flipped patch is the same
   array reversed). The shift is reduced modulo the entry's lattice.

Conventions: image coordinates (x, y) = (column, row), y down; a transform ``A`` (2×2) maps
library nm ξ (relative to the patch centre) to query nm η = A (ξ + t). Reciprocal vectors
follow g_query = A⁻ᵀ g_library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft
from scipy import ndimage as ndi

__all__ = [
    "PolarGrid",
    "library_polar",
    "query_polar",
    "fourier_peaks",
    "correlate_polar",
    "refine_transforms",
    "resample",
    "shift_candidates",
    "reduce_shift",
]


@dataclass(frozen=True)
class PolarGrid:
    """Log-polar grid: ``n_phi`` angle bins over [0, π) and ``n_rho`` bins of ln k over
    [ln k_min, ln k_max] (k in 1/nm)."""

    n_phi: int = 90
    n_rho: int = 64
    k_min: float = 0.4
    k_max: float = 12.0
    sigma: float = 1.0  # blob σ in bins (library peaks; the minimum for query peaks)
    gamma: float = 0.5  # blob weight = amplitude ** gamma

    @classmethod
    def from_settings(cls, s: Any) -> PolarGrid:
        return cls(s.n_phi, s.n_rho, s.k_min, s.k_max)

    @property
    def d_phi(self) -> float:
        return math.pi / self.n_phi

    @property
    def d_rho(self) -> float:
        return math.log(self.k_max / self.k_min) / (self.n_rho - 1)

    @property
    def n_pad(self) -> int:
        return self.n_rho + self.n_rho // 2

    @property
    def max_offset(self) -> int:
        """Largest |δρ| (bins) the padded correlation holds without wrap-around."""
        return self.n_pad - self.n_rho

    def bins(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        phi = np.mod(np.arctan2(g[:, 1], g[:, 0]), math.pi) / self.d_phi
        rho = (
            np.log(np.maximum(np.hypot(g[:, 0], g[:, 1]), 1e-12)) - math.log(self.k_min)
        ) / self.d_rho
        return phi, rho


def _splat(
    grid: PolarGrid,
    owner: np.ndarray,
    phi: np.ndarray,
    rho: np.ndarray,
    weight: np.ndarray,
    sig_phi: np.ndarray,
    sig_rho: np.ndarray,
    n: int,
) -> np.ndarray:
    """Gaussian blobs on (n, n_phi, n_rho); φ periodic, ρ clipped.

    Every blob is drawn on its (2r+1)² neighbourhood at once (one ``bincount`` per block of
    owners, so the work is proportional to the number of peaks, not to ``n · n_phi · n_rho``
    per offset)."""
    cells = grid.n_phi * grid.n_rho
    out = np.zeros((n, grid.n_phi, grid.n_rho), np.float64)
    if len(phi) == 0:
        return out
    r = int(math.ceil(3 * max(float(np.max(sig_phi)), float(np.max(sig_rho)), 1.0)))
    r = min(r, 12)
    offs = np.arange(-r, r + 1)
    ip = np.floor(phi).astype(np.int64)
    ir = np.floor(rho).astype(np.int64)
    jp = ip[:, None] + offs[None, :]  # (P, 2r+1)
    jr = ir[:, None] + offs[None, :]
    wp = np.exp(-0.5 * ((jp - phi[:, None]) / np.asarray(sig_phi)[..., None]) ** 2)
    wr = np.exp(-0.5 * ((jr - rho[:, None]) / np.asarray(sig_rho)[..., None]) ** 2)
    wr = np.where((jr >= 0) & (jr < grid.n_rho), wr, 0.0)
    jp = np.mod(jp, grid.n_phi)
    jr = np.clip(jr, 0, grid.n_rho - 1)
    owner = np.asarray(owner, dtype=np.int64)
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(0, n + 1, 256))
    bounds = np.append(bounds, len(owner)) if bounds[-1] != len(owner) else bounds
    flat_out = out.reshape(-1)
    for b in range(len(bounds) - 1):
        sel = order[bounds[b] : bounds[b + 1]]
        if len(sel) == 0:
            continue
        o0 = int(owner[sel].min())
        o1 = int(owner[sel].max()) + 1
        flat = ((owner[sel, None, None] - o0) * grid.n_phi + jp[sel, :, None]) * grid.n_rho + jr[
            sel, None, :
        ]
        val = (weight[sel, None, None] * wp[sel, :, None]) * wr[sel, None, :]
        flat_out[o0 * cells : o1 * cells] += np.bincount(
            flat.ravel(), weights=val.ravel(), minlength=(o1 - o0) * cells
        )
    return out


def _normalise(desc: np.ndarray) -> np.ndarray:
    """Unit L2 norm per descriptor (in place for float arrays)."""
    flat = desc.reshape(len(desc), -1) if desc.ndim == 3 else desc.reshape(1, -1)
    norm = np.sqrt(np.einsum("ij,ij->i", flat, flat))
    flat /= np.where(norm > 0, norm, 1.0)[:, None]
    return desc


def library_polar(peaks: list[np.ndarray], grid: PolarGrid) -> dict[str, np.ndarray]:
    """Log-polar descriptors of library entries from their Bragg peaks, and their FFTs."""
    n = len(peaks)
    lens = np.array([len(p) for p in peaks], np.int64)
    allp = np.concatenate(peaks) if n and lens.sum() else np.zeros((0, 3), np.float32)
    owner = np.repeat(np.arange(n), lens)
    phi, rho = grid.bins(allp[:, :2].astype(np.float64))
    w = np.maximum(allp[:, 2].astype(np.float64), 0) ** grid.gamma
    sig = np.full(len(phi), grid.sigma)
    desc = _normalise(_splat(grid, owner, phi, rho, w, sig, sig, n).astype(np.float32))
    # Fourier transform along the angle only, conjugated, laid out (n_phi//2+1, N, n_rho) for
    # one batched matrix product per query
    fphi = scipy.fft.rfft(desc, axis=1)
    np.conjugate(fphi, out=fphi)
    return {"desc": desc, "fft": np.ascontiguousarray(fphi.transpose(1, 0, 2))}


def query_polar(
    g: np.ndarray, weight: np.ndarray, rel_err: np.ndarray, grid: PolarGrid, mirror: bool = False
) -> np.ndarray:
    """Log-polar descriptor (n_phi, n_rho) of measured peaks; each blob is as wide as the
    peak position is uncertain (``rel_err`` = δk/k), at least ``grid.sigma`` bins."""
    g = np.asarray(g, dtype=np.float64).reshape(-1, 2)
    if mirror:
        g = g * np.array([-1.0, 1.0])
    phi, rho = grid.bins(g)
    w = np.maximum(np.asarray(weight, dtype=np.float64), 0) ** grid.gamma
    sp = np.maximum(grid.sigma, rel_err / grid.d_phi)
    sr = np.maximum(grid.sigma, rel_err / grid.d_rho)
    d = _splat(grid, np.zeros(len(phi), np.int64), phi, rho, w, sp, sr, 1)[0]
    return _normalise(d).astype(np.float32)


def _ring_stats(
    values: np.ndarray, ring: np.ndarray, n_rings: int
) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD of ``values`` per integer ring index."""
    order = np.lexsort((values, ring))
    v = values[order]
    r = ring[order]
    starts = np.searchsorted(r, np.arange(n_rings))
    ends = np.searchsorted(r, np.arange(n_rings), side="right")
    cnt = ends - starts
    med = np.zeros(n_rings)
    mad = np.ones(n_rings)
    ok = cnt > 0
    mid = starts + cnt // 2
    med[ok] = v[np.minimum(mid[ok], len(v) - 1)]
    dev = np.abs(v - med[r])
    order2 = np.lexsort((dev, r))
    d2 = dev[order2]
    mad[ok] = d2[np.minimum(mid[ok], len(v) - 1)]
    # smooth along the radius (rings with few pixels are noisy)
    med = ndi.uniform_filter1d(med, 3, mode="nearest")
    mad = np.maximum(ndi.uniform_filter1d(mad, 3, mode="nearest"), 1e-6)
    return med, mad


def fourier_peaks(
    image: np.ndarray,
    pixel_size: float,
    *,
    k_min: float,
    k_max: float,
    threshold: float = 5.0,
    max_peaks: int = 80,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bragg peaks of an image: local maxima of the Hann-windowed amplitude spectrum standing
    ``threshold`` robust standard deviations (1.4826 × MAD) above the median of their ring of
    equal |k|, and at least 1 % of the strongest peak.

    Parameters
    ----------
    image : ndarray (H, W)
    pixel_size : float
        nm/px (frequencies are reported in 1/nm).
    k_min, k_max : float
        Frequency range, 1/nm.
    threshold : float
        Peak significance in robust σ of the amplitude per ring.
    max_peaks : int
        Strongest peaks kept.

    Returns
    -------
    g : ndarray (n, 2)
        Peak vectors (1/nm, image frame; one of each Friedel pair), sub-pixel (centroid).
    weight : ndarray (n,)
        Amplitude above the ring median, summed over the 3×3 pixels around the peak (less
        sensitive to where the peak falls between frequency pixels).
    rel_err : ndarray (n,)
        Relative position uncertainty δk/k (half a frequency pixel over the radius).
    """
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape
    win = np.hanning(h)[:, None] * np.hanning(w)[None, :]
    a = np.abs(scipy.fft.rfft2((img - img.mean()) * win))
    a = np.fft.fftshift(a, axes=0)  # rows: fy from -1/2 (row 0) to < 1/2; fy = 0 at row h//2
    fy = (np.arange(h) - h // 2) / h
    fx = np.arange(a.shape[1]) / w
    r_px = np.hypot(fy[:, None] * h, fx[None, :] * w)  # radius in frequency pixels (approx.)
    scale = max(h, w)
    kk = np.hypot(fy[:, None], fx[None, :]) / pixel_size
    ring = np.rint(np.hypot(fy[:, None], fx[None, :]) * scale).astype(np.int64)
    med, mad = _ring_stats(a.ravel(), ring.ravel(), int(ring.max()) + 1)
    floor = 1e-6 * float(a.max()) + 1e-30  # noise-free images have no noise floor
    z = (a - med[ring]) / (1.4826 * np.maximum(mad[ring], floor))
    zmax = ndi.maximum_filter(z, size=5, mode="nearest")
    cand = (z >= zmax) & (z > threshold) & (kk >= k_min) & (kk <= k_max)
    # one of each Friedel pair: rfft keeps fx >= 0; on fx = 0 keep fy > 0
    cand &= ~((np.arange(a.shape[1])[None, :] == 0) & (fy[:, None] <= 0))
    iy, ix = np.nonzero(cand)
    if len(iy) == 0:
        return np.zeros((0, 2)), np.zeros(0), np.zeros(0)
    excess = np.maximum(a - med[ring], 0.0)
    weight = excess[iy, ix]
    strong = weight >= 1e-2 * weight.max()
    iy, ix, weight = iy[strong], ix[strong], weight[strong]
    order = np.argsort(-weight, kind="stable")[:max_peaks]
    iy, ix, weight = iy[order], ix[order], weight[order]
    # centroid and integrated amplitude over 3x3; a neighbour left of fx = 0 is the conjugate
    # point (−fy, 1 − …) of the half-plane spectrum
    num_x = np.zeros(len(iy))
    num_y = np.zeros(len(iy))
    den = np.zeros(len(iy))
    c0 = h // 2
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            yy = iy + dy
            xx = ix + dx
            mirror = xx < 0
            yy = np.where(mirror, 2 * c0 - yy, yy)
            xx = np.where(mirror, -xx, xx)
            ok = (yy >= 0) & (yy < h) & (xx < a.shape[1])
            v = np.where(ok, excess[np.clip(yy, 0, h - 1), np.clip(xx, 0, a.shape[1] - 1)], 0.0)
            num_x += v * dx
            num_y += v * dy
            den += v
    den = np.maximum(den, 1e-30)
    fxp = (ix + num_x / den) / w
    fyp = (iy - h // 2 + num_y / den) / h
    g = np.stack([fxp, fyp], axis=1) / pixel_size
    rel = 0.5 / np.maximum(r_px[iy, ix], 1.0)
    return g, den, rel


def correlate_polar(
    lib_fft: np.ndarray,
    query_desc: np.ndarray,
    grid: PolarGrid,
    centers: np.ndarray,
    half_width: float,
    chunk: int = 1024,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best (δφ, δρ) of every entry, searching δρ within ``centers ± half_width`` bins.

    The correlation ``C(δφ, δρ) = Σ L(φ, ρ) Q(φ + δφ, ρ + δρ)`` is circular in φ (FFT along
    the angle) and evaluated only at the δρ each entry may take: for every offset one batched
    matrix product over ρ, then one inverse FFT along φ.

    Parameters
    ----------
    lib_fft : (n_phi//2 + 1, N, n_rho) complex
        Conjugated angular FFTs of the library descriptors (:func:`library_polar`).

    Returns
    -------
    score, dphi, drho : ndarray (N,)
        Correlation peak of the unit-norm descriptors (cosine similarity at the best
        rotation/scale); offsets in bins, sub-bin by parabolic interpolation.
        ``θ = dphi · d_phi`` (rad) and ``ln s = −drho · d_rho``.
    """
    nk, n, nr = lib_fft.shape
    qf = scipy.fft.rfft(query_desc.astype(np.float64), axis=0).astype(np.complex64)  # (nk, nr)
    hw = int(math.ceil(half_width))
    centers = np.broadcast_to(np.asarray(centers, dtype=np.float64), (n,))
    cc = np.rint(centers).astype(np.int64)
    lim = grid.max_offset
    offs_all = np.arange(max(int(cc.min()) - hw, -lim), min(int(cc.max()) + hw, lim) + 1)
    # Q shifted by each offset along ρ (zero outside): (nk, nr, n_off)
    qs = np.zeros((nk, nr, len(offs_all)), np.complex64)
    for j, d in enumerate(offs_all):
        if d >= 0:
            qs[:, : nr - d, j] = qf[:, d:] if d < nr else 0
        else:
            qs[:, -d:, j] = qf[:, : nr + d] if -d < nr else 0
    score = np.zeros(n)
    dphi = np.zeros(n)
    drho = np.zeros(n)
    n_off = 2 * hw + 1
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        m = e - s
        # (nk, m, nr) @ (nk, nr, n_off_all) -> (nk, m, n_off_all)
        prod = np.matmul(lib_fft[:, s:e, :], qs)
        col = cc[s:e, None] + np.arange(-hw, hw + 1)[None, :] - offs_all[0]  # (m, n_off)
        valid = (col >= 0) & (col < len(offs_all))
        col = np.clip(col, 0, len(offs_all) - 1)
        sub_f = prod[:, np.arange(m)[:, None], col]  # (nk, m, n_off)
        c = scipy.fft.irfft(sub_f, n=grid.n_phi, axis=0)  # (n_phi, m, n_off)
        c = np.moveaxis(c, 0, 1)  # (m, n_phi, n_off)
        offs = offs_all[col]  # (m, n_off)
        within = valid & (np.abs(offs - centers[s:e, None]) <= half_width + 0.25)
        c = np.where(within[:, None, :], c, -np.inf)
        flat = c.reshape(m, -1).argmax(axis=1)
        ip, jr = np.unravel_index(flat, (grid.n_phi, n_off))
        k = np.arange(m)
        best = c[k, ip, jr]
        p0 = c[k, (ip - 1) % grid.n_phi, jr]
        p2 = c[k, (ip + 1) % grid.n_phi, jr]
        r0 = np.where(jr > 0, c[k, ip, np.maximum(jr - 1, 0)], -np.inf)
        r2 = np.where(jr < n_off - 1, c[k, ip, np.minimum(jr + 1, n_off - 1)], -np.inf)
        with np.errstate(invalid="ignore", divide="ignore"):  # -inf neighbours: no sub-bin
            den = p0 - 2 * best + p2
            fp = np.where(
                np.isfinite(den) & (den < 0), 0.5 * (p0 - p2) / np.where(den < 0, den, -1), 0.0
            )
            den = r0 - 2 * best + r2
            fr = np.where(
                np.isfinite(den) & (den < 0), 0.5 * (r0 - r2) / np.where(den < 0, den, -1), 0.0
            )
        score[s:e] = best
        dphi[s:e] = ip + np.clip(fp, -0.5, 0.5)
        drho[s:e] = offs[k, jr] + np.clip(fr, -0.5, 0.5)
    dphi = np.where(dphi >= grid.n_phi / 2, dphi - grid.n_phi, dphi)
    return score, dphi, drho


def _similarity(g_l: np.ndarray, g_q: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Least-squares g_q ≈ B g_l with B = a I + b J (rotation·scale)."""
    zl = g_l[:, 0] + 1j * g_l[:, 1]
    zq = g_q[:, 0] + 1j * g_q[:, 1]
    z = np.sum(w * np.conj(zl) * zq) / max(float(np.sum(w * np.abs(zl) ** 2)), 1e-30)
    return np.array([[z.real, -z.imag], [z.imag, z.real]])


def refine_transforms(
    query_g: np.ndarray,
    query_w: np.ndarray,
    lib_peaks: list[np.ndarray],
    B0: np.ndarray,
    mirror: np.ndarray,
    *,
    tolerance: float = 0.04,
    max_strain: float = 0.015,
    affine: bool = True,
    blur_range: tuple[float, float] = (-0.003, 0.008),
    scale_bounds: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Refine reciprocal-space maps by least squares on paired peaks.

    Parameters
    ----------
    query_g, query_w : (n, 2), (n,)
        Measured peaks (1/nm) and weights.
    lib_peaks : list of (m, 3)
        Each candidate's peaks (gx, gy, amplitude).
    B0 : (K, 2, 2)
        Coarse maps ``g_query ≈ B0 g_library`` (the mirror, when present, included:
        ``B0 = M · similarity`` with ``M = diag(−1, 1)``).
    mirror : (K,) bool
        Whether the candidate's map includes the mirror.
    tolerance : float
        A predicted peak pairs with the nearest measured one within this relative distance.
    max_strain : float
        Largest deviation from a similarity (singular values of S⁻¹B − I) accepted for the
        general linear fit; beyond it (or with fewer than 3 pairs, or ``affine=False``) the
        similarity is used.

    blur_range : (float, float)
        Limits (nm²) of the fitted resolution difference.
    scale_bounds : (K, 2), optional
        Allowed range of the real-space scale (query / library lengths) of each candidate; a
        fit outside it is scaled back to the nearest bound.

    Returns
    -------
    B : (K, 2, 2)
        Refined maps.
    n_pairs : (K,)
        Number of paired peaks.
    blur : (K,)
        Resolution difference Δ = σ_query² − σ_library² (nm², library frame) from the decay of
        the amplitude ratio of paired peaks, ``ln(A_q / A_l) = c − 2π² Δ |g|²`` (weighted
        least squares); 0 when fewer than 3 pairs span enough |g|.
    clamped : (K,) bool
        The least-squares scale lay outside ``scale_bounds`` and was scaled back: the entry
        fits only with a calibration error beyond the tolerance.
    """
    K = len(B0)
    out = np.array(B0, dtype=np.float64, copy=True)
    npairs = np.zeros(K, np.int64)
    blur = np.zeros(K)
    clamped = np.zeros(K, bool)
    if len(query_g) < 2:
        return out, npairs, blur, clamped
    qg = np.concatenate([query_g, -query_g])
    qw = np.concatenate([query_w, query_w])
    from scipy.spatial import cKDTree

    tree = cKDTree(qg)
    M = np.diag([-1.0, 1.0])
    for i in range(K):
        p = lib_peaks[i]
        if len(p) < 2:
            continue
        gl = p[:, :2].astype(np.float64)
        pred = gl @ B0[i].T
        d, j = tree.query(pred)
        ok = d <= tolerance * np.hypot(pred[:, 0], pred[:, 1]) + 1e-9
        if ok.sum() < 2:
            continue
        jj = j[ok]
        # one pairing per measured peak: its nearest prediction
        order = np.argsort(d[ok], kind="stable")
        _, first = np.unique(jj[order], return_index=True)
        sel = order[first]
        gl_ok = gl[ok][sel]
        gq_ok = qg[jj[sel]]
        aq = qw[jj[sel]]
        al = np.maximum(p[ok, 2][sel].astype(np.float64), 1e-30)
        w = np.sqrt(aq * al + 1e-30)
        if len(sel) >= 3:
            x = (gl_ok * gl_ok).sum(axis=1)
            if x.max() > 1.3 * x.min():
                y = np.log(np.maximum(aq, 1e-30)) - np.log(al)
                X = np.column_stack([np.ones_like(x), x])
                sw = np.sqrt(w)
                coef = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]
                blur[i] = float(np.clip(-coef[1] / (2 * np.pi**2), *blur_range))
        npairs[i] = len(sel)
        if len(sel) < 2:
            continue
        Mi = M if mirror[i] else np.eye(2)
        gq_m = gq_ok @ Mi.T  # undo the mirror: a proper similarity maps gl onto it
        S = _similarity(gl_ok, gq_m, w)
        B = S
        if affine and len(sel) >= 3:
            G = (gl_ok * w[:, None]).T @ gl_ok
            if np.linalg.cond(G) < 1e4:
                Ba = ((gq_m * w[:, None]).T @ gl_ok) @ np.linalg.inv(G)
                strain = np.linalg.svd(np.linalg.solve(S, Ba) - np.eye(2), compute_uv=False)
                if strain.max() <= max_strain:
                    B = Ba
        if scale_bounds is not None:
            s_real = 1.0 / math.sqrt(abs(np.linalg.det(B)))
            lo, hi = scale_bounds[i]
            if s_real < lo or s_real > hi:
                clamped[i] = True
                B = B * (s_real / min(max(s_real, lo), hi))
        out[i] = Mi @ B
    return out, npairs, blur, clamped


def resample(
    image: np.ndarray,
    center: np.ndarray,
    A_px: np.ndarray,
    size: int,
    shift: np.ndarray | None = None,
    order: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``image`` at ``center + A_px (u + shift − c)`` for every patch pixel u.

    Parameters
    ----------
    image : ndarray (H, W)
    center : (2,)
        Query point (x, y, px) that the patch centre ``c = ((size−1)/2, (size−1)/2)`` maps to.
    A_px : (K, 2, 2)
        Query px per library px, one map per candidate.
    size : int
    shift : (K, 2), optional
        Library-px shift of each candidate.

    Returns
    -------
    patches : (K, size, size) float32
    valid : (K, size, size) bool
        Inside the image.
    """
    K = len(A_px)
    c = (size - 1) / 2.0
    v = np.arange(size, dtype=np.float32) - np.float32(c)
    A = np.asarray(A_px, dtype=np.float32)
    sh = np.zeros((K, 2), np.float32) if shift is None else np.asarray(shift, np.float32)
    # X = A (u + shift) + center: per candidate an offset plus two separable terms (float32:
    # 1e-4 px at 1,000 px, far below what bilinear interpolation resolves)
    off = np.einsum("kij,kj->ki", A, sh) + np.asarray(center, np.float32)
    X0 = (
        A[:, 0, 0, None, None] * v[None, None, :]
        + A[:, 0, 1, None, None] * v[None, :, None]
        + off[:, 0, None, None]
    )
    X1 = (
        A[:, 1, 0, None, None] * v[None, None, :]
        + A[:, 1, 1, None, None] * v[None, :, None]
        + off[:, 1, None, None]
    )
    h, w = image.shape
    valid = (X0 >= 0) & (X0 <= w - 1) & (X1 >= 0) & (X1 <= h - 1)
    if order != 1 or min(h, w) < 2:
        out = ndi.map_coordinates(
            np.asarray(image, dtype=np.float64), [X1, X0], order=order, mode="constant", cval=0.0
        )
        return np.where(valid, out, 0.0).astype(np.float32), valid
    # bilinear, vectorised gather (zero outside)
    np.clip(X0, 0, w - 1.001, out=X0)
    np.clip(X1, 0, h - 1.001, out=X1)
    x0 = X0.astype(np.int32)
    y0 = X1.astype(np.int32)
    X0 -= x0
    X1 -= y0
    flat = np.ascontiguousarray(image, dtype=np.float32).ravel()
    base = y0 * w + x0
    top = flat[base]
    top += X0 * (flat[base + 1] - top)
    bot = flat[base + w]
    bot += X0 * (flat[base + w + 1] - bot)
    top += X1 * (bot - top)
    top[~valid] = 0.0
    return top, valid


def _hann2(size: int) -> np.ndarray:
    h = np.hanning(size + 2)[1:-1]
    return (h[:, None] * h[None, :]).astype(np.float32)


def shift_candidates(
    patches: np.ndarray, valid: np.ndarray, refs: np.ndarray, n_peaks: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shifts δ (px) with ``patch(u + δ) ≈ ref(u)``: the ``n_peaks`` highest local maxima of
    the windowed cross-correlation, for the patch and for its 180° rotation.

    Returns
    -------
    shifts : (K, 2 n_peaks, 2)
        (x, y) of each hypothesis; the first ``n_peaks`` for the patch as it is, the others
        for its 180° rotation, each group by decreasing peak.
    peaks : (K, 2 n_peaks)
        Normalised correlation at each (−inf where the map has fewer maxima).
    flipped : (K, 2 n_peaks) bool
        The hypothesis rotates the patch by 180°.
    """
    K, S, _ = patches.shape
    win = _hann2(S)
    q = np.where(valid, patches, 0.0).astype(np.float32)
    wv = win[None] * valid
    qm = (q * wv).sum(axis=(1, 2)) / np.maximum(wv.sum(axis=(1, 2)), 1e-9)
    q = (q - qm[:, None, None]) * wv
    r = refs * win[None]
    r = r - (r.sum(axis=(1, 2)) / win.sum())[:, None, None] * win[None]
    fr = np.conj(scipy.fft.rfft2(r, axes=(1, 2)))
    norm = np.maximum(np.sqrt((r * r).sum(axis=(1, 2)) * (q * q).sum(axis=(1, 2))), 1e-30)
    m = np.arange(K)[:, None]
    shifts, peaks = [], []
    for qq in (q, q[:, ::-1, ::-1]):
        c = scipy.fft.irfft2(fr * scipy.fft.rfft2(qq, axes=(1, 2)), s=(S, S), axes=(1, 2))
        c = c / norm[:, None, None]
        if n_peaks == 1:
            flat = c.reshape(K, -1).argmax(axis=1)[:, None]
        else:
            is_max = c >= ndi.maximum_filter(c, size=(1, 3, 3), mode="wrap")
            cm = np.where(is_max, c, -np.inf).reshape(K, -1)
            flat = np.argpartition(-cm, n_peaks - 1, axis=1)[:, :n_peaks]
            flat = np.take_along_axis(
                flat, np.argsort(-np.take_along_axis(cm, flat, axis=1), axis=1), axis=1
            )
        iy, ix = np.unravel_index(flat, (S, S))
        best = c[m, iy, ix]
        if n_peaks > 1:
            best = np.where(np.take_along_axis(cm, flat, axis=1) > -np.inf, best, -np.inf)

        def _par(a0, a2, best=best):
            den = a0 - 2 * best + a2
            ok = np.isfinite(den) & (den < 0)
            return np.where(ok, 0.5 * (a0 - a2) / np.where(ok, den, -1), 0.0)

        fx = _par(c[m, iy, (ix - 1) % S], c[m, iy, (ix + 1) % S])
        fy = _par(c[m, (iy - 1) % S, ix], c[m, (iy + 1) % S, ix])
        sx = np.where(ix > S // 2, ix - S, ix) + np.clip(fx, -0.5, 0.5)
        sy = np.where(iy > S // 2, iy - S, iy) + np.clip(fy, -0.5, 0.5)
        shifts.append(np.stack([sx, sy], axis=-1))
        peaks.append(best)
    flipped = np.zeros((K, 2 * n_peaks), bool)
    flipped[:, n_peaks:] = True
    return np.concatenate(shifts, axis=1), np.concatenate(peaks, axis=1), flipped


def reduce_shift(shift: np.ndarray, lattice_px: np.ndarray) -> np.ndarray:
    """The shortest vector equivalent to ``shift`` modulo the lattice (rows = vectors)."""
    frac = shift @ np.linalg.inv(lattice_px)
    base = shift - np.rint(frac) @ lattice_px
    best = base
    bn = np.hypot(*base)
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            cand = base + i * lattice_px[0] + j * lattice_px[1]
            n = np.hypot(*cand)
            if n < bn - 1e-9:
                best, bn = cand, n
    return best
