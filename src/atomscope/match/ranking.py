"""Rank library entries against a query image: :func:`rank` and its result, :class:`Ranking`.

Pipeline (each step once per candidate, no search loop):

1. pre-process the query (:mod:`atomscope.match.query`);
2. rotation, scale and mirror of **every** entry from one batched log-polar correlation of
   Bragg-peak descriptors (:func:`atomscope.match.align.correlate_polar`); its peak value is a
   rotation-, scale- and shift-invariant similarity (``lp_score``) that short-lists the
   ``shortlist`` best entries;
3. for the short-listed entries: least-squares refinement of the transform on paired Bragg
   peaks, shift (and the 180° ambiguity) by FFT cross-correlation of the resampled query with
   the motif image, then MSE, SSIM (with the library's precomputed local statistics) and EMD
   between the aligned column sets (:mod:`atomscope.match.metrics`).

Entries outside the short list keep their ``lp_score`` and have no metric values; they are
ranked after the short-listed ones, by ``lp_score``. ``shortlist=None`` scores every entry.
Short-listed entries whose least-squares scale lies beyond ``scale_tolerance`` (they fit only
if the calibration were further off than allowed) are scored at the limit and ranked after
the entries that fit within it (``scale_at_limit`` in the table).

BLAS is limited to one thread while ranking: the matrix products are many small ones, and on
a shared machine threads only contend.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._fileio import atomic_path, write_json
from ..errors import ParameterError
from .align import (
    PolarGrid,
    correlate_polar,
    reduce_shift,
    refine_transforms,
    resample,
    shift_candidates,
)
from .metrics import SSIM_SIGMA, emd, mse_batch, ssim_batch
from .query import Query, prepare_query

__all__ = ["rank", "Ranking", "METRICS", "score_candidates"]

METRICS = ("ssim", "emd", "mse")
#: alignment hypotheses: correlation peaks per 0°/180° turn, and how far below the best one
SHIFT_PEAKS = 3
SHIFT_PEAK_RATIO = 0.8
#: first-pass scores this close leave the mirror to real space
MIRROR_AMBIGUITY = 0.02
HIGHER_IS_BETTER = {"ssim": True, "emd": False, "mse": False, "lp_score": True}


def _rot(theta: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def _parse_metrics(metric: Any) -> tuple[str, tuple[str, ...]]:
    if isinstance(metric, str):
        m = metric.lower()
        if m == "all":
            return "ssim", METRICS
        if m not in METRICS:
            raise ParameterError(
                f"metric must be one of {', '.join(METRICS)} or 'all', got {metric!r}"
            )
        return m, tuple(x for x in METRICS if x == m or x in ("ssim", "mse"))
    ms = tuple(str(x).lower() for x in metric)
    bad = [x for x in ms if x not in METRICS]
    if bad or not ms:
        raise ParameterError(f"unknown metric(s) {bad}; use {', '.join(METRICS)}")
    return ms[0], tuple(x for x in METRICS if x in ms or x in ("ssim", "mse"))


def first_pass(
    q: Query, library: Any, scale_tolerance: float, candidates: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Rotation/scale/mirror and ``lp_score`` of every (or the given) entries."""
    grid = PolarGrid.from_settings(library.settings)
    pol = library.polar()
    fft = pol["fft"] if candidates is None else pol["fft"][:, candidates]
    n = fft.shape[1]
    if q.calibrated or q.lattice_px is None:
        centers = np.zeros(n)
    else:
        a_c = library.table["a_nm"].to_numpy(float)
        if candidates is not None:
            a_c = a_c[candidates]
        p_c = a_c / q.shortest_spacing_px  # the pixel size that would match each candidate
        centers = -np.log(q.pixel_size / p_c) / grid.d_rho
        centers = np.clip(centers, -grid.max_offset + 1, grid.max_offset - 1)
    hw = math.log(1.0 + scale_tolerance) / grid.d_rho
    s0, p0, r0 = correlate_polar(fft, q.desc, grid, centers, hw)
    s1, p1, r1 = correlate_polar(fft, q.desc_mirror, grid, centers, hw)
    mirror = s1 > s0 + 1e-6
    score = np.where(mirror, s1, s0)
    M = np.diag([-1.0, 1.0])

    def _map(p: np.ndarray, r: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
        B = _rot(p * grid.d_phi) / np.exp(-r * grid.d_rho)[:, None, None]
        B[mirrored] = M @ B[mirrored]
        return B

    p_best, r_best = np.where(mirror, p1, p0), np.where(mirror, r1, r0)
    B = _map(p_best, r_best, mirror)
    # The Bragg amplitudes cannot tell an entry from its mirror image when its amplitude
    # pattern is itself mirror-symmetric (e.g. a glide in projection): both then correlate
    # equally, and real space (score_candidates) decides between them.
    ambiguous = np.where(mirror, s0, s1) >= score - MIRROR_AMBIGUITY
    B_alt = _map(np.where(mirror, p0, p1), np.where(mirror, r0, r1), ~mirror)
    s_mid = np.exp(-centers * grid.d_rho)
    bounds = np.stack([s_mid / (1 + scale_tolerance), s_mid * (1 + scale_tolerance)], axis=1)
    return {
        "lp_score": score,
        "mirror": mirror,
        "B": B,
        "mirror_ambiguous": ambiguous,
        "B_alt": B_alt,
        "lp_theta": p_best * grid.d_phi,
        "lp_scale": np.exp(-r_best * grid.d_rho),
        "scale_bounds": bounds,
    }


def score_candidates(
    q: Query,
    library: Any,
    idx: np.ndarray,
    fp: dict[str, np.ndarray],
    *,
    metrics: tuple[str, ...],
    affine: bool = True,
    max_strain: float = 0.015,
    match_resolution: bool = True,
    emd_radius: float | None = None,
    emd_intensity: float = 0.1,
    emd_tau: float = 0.1,
    thorough: int = 64,
) -> dict[str, np.ndarray]:
    """Align the query with the entries ``idx`` and compute the metrics.

    ``fp`` holds the first-pass arrays for exactly these entries (same order, best first
    pass first). The first ``thorough`` entries choose their alignment among several
    hypotheses (mirror, 180° turn, correlation peaks) by SSIM, the others take the best
    correlation peak.
    """
    from scipy import ndimage as ndi

    st = library.settings
    S, p_lib = st.size, st.pixel_size
    idx = np.asarray(idx, dtype=np.int64)
    K = len(idx)
    out: dict[str, np.ndarray] = {}
    if K == 0:
        return out
    # both mirror hypotheses of the entries the first pass could not settle (alt = rows ≥ K)
    alt = np.nonzero(fp["mirror_ambiguous"])[0]
    hyp = np.concatenate([np.arange(K), alt])
    B0 = np.concatenate([fp["B"], fp["B_alt"][alt]])
    mirror0 = np.concatenate([fp["mirror"], ~fp["mirror"][alt]])
    bounds = fp.get("scale_bounds")
    B, npairs, blur, clamped = refine_transforms(
        q.peaks_g,
        q.peaks_w,
        [library.peaks[idx[k]] for k in hyp],
        B0,
        mirror0,
        affine=affine,
        max_strain=max_strain,
        scale_bounds=None if bounds is None else bounds[hyp],
    )
    A_nm = np.linalg.inv(B).transpose(0, 2, 1)
    A_px = A_nm * (p_lib / q.pixel_size)
    refs_h = library.images[idx[hyp]]
    patches, valid = resample(q.smooth, q.center, A_px, S)
    # Alignment hypotheses: the 180° ambiguity of the power spectrum, the mirror one where the
    # first pass could not settle it, and the strongest correlation peaks of each (a shift by
    # a sub-lattice vector can align the strong columns but not the weak ones). The entries
    # the first pass ranks highest choose among them by SSIM, the others by correlation.
    n_thorough = min(K, max(int(thorough), 0))
    shifts = np.zeros((len(hyp), 2 * SHIFT_PEAKS, 2))
    peaks = np.full((len(hyp), 2 * SHIFT_PEAKS), -np.inf)
    flipped = np.zeros((len(hyp), 2 * SHIFT_PEAKS), bool)
    flipped[:, SHIFT_PEAKS:] = True
    for rows_, n_pk in ((hyp < n_thorough, SHIFT_PEAKS), (hyp >= n_thorough, 1)):
        if rows_.any():
            sh_, pk_, _ = shift_candidates(patches[rows_], valid[rows_], refs_h[rows_], n_pk)
            cols = np.r_[0:n_pk, SHIFT_PEAKS : SHIFT_PEAKS + n_pk]
            shifts[np.ix_(rows_, cols)] = sh_
            peaks[np.ix_(rows_, cols)] = pk_
    peaks = np.nan_to_num(peaks, nan=-np.inf)
    lat_px = [np.asarray(library.meta[i]["lattice_nm"], dtype=np.float64) / p_lib for i in idx]
    sign = np.where(flipped, -1.0, 1.0)
    # each entry's best correlation peak over its rows (ties: the first row, the first peak)
    row_peak = peaks.max(axis=1)
    by_peak = np.lexsort((np.arange(len(hyp)), -row_peak))
    best_row = by_peak[np.unique(hyp[by_peak], return_index=True)[1]]
    best_peak = row_peak[best_row]
    choice = [(int(r), int(peaks[r].argmax())) for r in best_row]
    shift = np.array([reduce_shift(shifts[r, h], lat_px[k]) for k, (r, h) in enumerate(choice)])
    mu, var = library.ssim_stats(SSIM_SIGMA, idx)
    if n_thorough:
        tries: list[tuple[int, int, int, np.ndarray]] = []
        rows_of = [np.nonzero(hyp == k)[0] for k in range(n_thorough)]
        for k in range(n_thorough):
            floor = best_peak[k] - (1.0 - SHIFT_PEAK_RATIO) * abs(best_peak[k])
            seen: list[tuple[int, bool, np.ndarray]] = []
            for r in rows_of[k]:
                for h in np.nonzero(peaks[r] >= floor)[0]:
                    sh = reduce_shift(shifts[r, h], lat_px[k])
                    if any(
                        r == r2 and flipped[r, h] == f2 and np.hypot(*(sh - s2)) < 1.0
                        for r2, f2, s2 in seen
                    ):
                        continue
                    seen.append((r, bool(flipped[r, h]), sh))
                    tries.append((k, int(r), int(h), sh))
        if len(tries) > n_thorough:
            kk = np.array([t[0] for t in tries])
            A_try = np.array([sign[r, h] * A_px[r] for _, r, h, _ in tries])
            p_try, v_try = resample(
                q.smooth, q.center, A_try, S, shift=np.array([t[3] for t in tries])
            )
            score = ssim_batch(p_try, v_try, refs_h[kk], mu[kk], var[kk])
            best_score = np.full(n_thorough, -np.inf)
            for j, (k, r, h, sh) in enumerate(tries):
                if score[j] > best_score[k]:
                    best_score[k], choice[k], shift[k] = score[j], (r, h), sh
    rows = np.array([r for r, _ in choice])
    sgn = np.array([sign[r, h] for r, h in choice])
    A_px = A_px[rows] * sgn[:, None, None]
    A_nm = A_nm[rows] * sgn[:, None, None]
    peak = np.array([peaks[r, h] for r, h in choice])
    npairs, blur, clamped = npairs[rows], blur[rows], clamped[rows]
    refs = refs_h[:K]  # the first K rows are the entries in order
    # the peaks come from the unsmoothed query; the comparison uses it smoothed by σ_f
    blur = blur + st.smoothing**2
    if not match_resolution:
        blur = np.zeros(K)
    patches, valid = resample(q.smooth, q.center, A_px, S, shift=shift)
    # resolution matching: blur whichever side is sharper (fitted from the Bragg amplitudes)
    sig_px = np.sqrt(np.abs(blur)) / p_lib
    lib_blur = (blur > 0) & (sig_px >= 0.3)
    q_blur = (blur < 0) & (sig_px >= 0.3)
    if lib_blur.any():
        refs = refs.copy()
        for k in np.nonzero(lib_blur)[0]:
            r = ndi.gaussian_filter(refs[k].astype(np.float64), sig_px[k], mode="reflect")
            refs[k] = ((r - r.mean()) / max(r.std(), 1e-12)).astype(np.float32)
        from .metrics import local_stats

        m2, v2 = local_stats(refs[lib_blur], SSIM_SIGMA)
        mu[lib_blur], var[lib_blur] = m2, v2
    if q_blur.any():
        patches = patches.copy()
        for k in np.nonzero(q_blur)[0]:
            patches[k] = ndi.gaussian_filter(np.where(valid[k], patches[k], 0.0), sig_px[k])
    out["ssim"] = ssim_batch(patches, valid, refs, mu, var)
    out["mse"] = mse_batch(patches, valid, refs)
    out["valid_fraction"] = valid.mean(axis=(1, 2))
    out["shift_corr"] = peak
    out["n_peak_pairs"] = npairs
    out["scale_at_limit"] = clamped
    out["blur_nm"] = np.sign(blur) * np.sqrt(np.abs(blur))
    if "emd" in metrics:
        out["emd"] = emd_patches(
            patches, valid, refs, p_lib, radius=emd_radius, intensity=emd_intensity, tau=emd_tau
        )
    # transform summary
    M = np.diag([-1.0, 1.0])
    det = np.linalg.det(A_nm)
    mir = det < 0
    P = np.where(mir[:, None, None], A_nm @ M, A_nm)  # proper part: s R(θ) (+ strain)
    theta = np.arctan2(P[:, 1, 0] - P[:, 0, 1], P[:, 0, 0] + P[:, 1, 1])
    scale = np.sqrt(np.abs(det))
    sim = scale[:, None, None] * _rot(theta)
    strain = np.array(
        [
            np.linalg.svd(np.linalg.solve(sm, pp) - np.eye(2), compute_uv=False).max()
            for sm, pp in zip(sim, P, strict=True)
        ]
    )
    rot_deg = -np.degrees(theta)  # counter-clockwise as displayed (simulate's convention)
    out["rotation_deg"] = (rot_deg + 180.0) % 360.0 - 180.0
    out["mirror"] = mir
    out["scale"] = scale
    out["strain"] = strain
    out["shift_x_nm"] = shift[:, 0] * p_lib
    out["shift_y_nm"] = shift[:, 1] * p_lib
    out["pixel_size_fit_nm"] = q.pixel_size / scale
    out["A_nm"] = A_nm
    return out


def emd_patches(
    patches: np.ndarray,
    valid: np.ndarray,
    refs: np.ndarray,
    pixel_size: float,
    *,
    radius: float | None = None,
    intensity: float = 0.1,
    tau: float = 0.1,
) -> np.ndarray:
    """EMD between the columns of aligned, resolution-matched query patches and those of the
    library images: the same detector (:func:`atomscope.match.metrics.column_peaks`) on both,
    inside a disk of ``radius`` nm (default 0.45 × the field) around the patch centre."""
    from .metrics import column_peaks

    K, S, _ = patches.shape
    c = (S - 1) / 2.0
    R = 0.45 * S * pixel_size if radius is None else float(radius)
    res = np.full(K, np.nan)
    for k in range(K):
        feats = []
        for img, ok in ((patches[k], valid[k]), (refs[k], None)):
            pk = column_peaks(img, ok, pixel_size)
            xy = (pk[:, :2] - c) * pixel_size
            inside = np.hypot(xy[:, 0], xy[:, 1]) <= R
            inten = pk[inside, 2]
            inten = inten / max(np.percentile(inten, 90), 1e-30) if len(inten) else inten
            feats.append(np.column_stack([xy[inside], intensity * inten]))
        res[k] = emd(feats[0], feats[1], tau=tau)
    return res


def _ranks(
    values: np.ndarray, higher: bool, tiebreak: np.ndarray, demote: np.ndarray | None = None
) -> np.ndarray:
    """1-based ranks: scored entries by value, then ``demote``-d ones by value, then the
    unscored (NaN) by ``tiebreak`` (the first-pass similarity)."""
    v = np.where(np.isfinite(values), values, np.nan)
    key = -v if higher else v
    key = np.where(np.isfinite(key), key, np.inf)
    tier = np.zeros(len(v)) if demote is None else np.asarray(demote, float)
    order = np.lexsort((-tiebreak, key, tier))
    r = np.empty(len(v), np.int64)
    r[order] = np.arange(1, len(v) + 1)
    return r


def rank(
    image: Any,
    library: Any,
    *,
    metric: str | tuple[str, ...] = "ssim",
    pixel_size: float | None = None,
    region: Any = None,
    shortlist: int | None = 256,
    scale_tolerance: float = 0.08,
    affine: bool = True,
    max_strain: float = 0.015,
    match_resolution: bool = True,
    background: float = 1.0,
    emd_radius: float | None = None,
    emd_intensity: float = 0.1,
    emd_tau: float = 0.1,
    candidates: Any = None,
    thorough: int = 64,
    seed: int = 0,
) -> Ranking:
    """Rank the (structure, zone axis) entries of a library by how well they explain an image.

    Parameters
    ----------
    image : ndarray, Micrograph or HyperSpy-like
        A HAADF image (bright columns) of one crystal region.
    library : Library
        From :meth:`Library.build` or :meth:`Library.load` (or a path to a library file).
    metric : {"ssim", "emd", "mse", "all"} or tuple
        Metric that orders the table (the first of a tuple; SSIM for "all"). SSIM and MSE are
        always computed for short-listed entries (they share the alignment); the EMD when asked
        for.
    pixel_size : float, optional
        nm/px, overriding the image's calibration. Without any, the scale is estimated per
        candidate from the lattice.
    region : None, "auto" or (y0, y1, x0, x1)
        Image region to match ("auto": the most crystalline window, e.g. one grain).
    shortlist : int or None
        Entries (best first-pass similarity) that are aligned and scored; None: all.
    scale_tolerance : float
        Relative scale range fitted around the calibration (0.08 = ±8 %).
    affine : bool
        Let the alignment absorb up to ``max_strain`` of shear/stretch (scan drift).
    max_strain : float
        Largest deviation from a similarity transform accepted (0.015: linear scan drift of
        1.5 % across the frame). Beyond it the similarity alone is used, which over the
        library's small field costs little; a looser limit mostly lets wrong structures bend
        onto the query (on held-out simulated queries 0.05 cost 3 points of SSIM top-1 and 9
        of EMD top-1).
    match_resolution : bool
        Blur the sharper of query and entry to the other's resolution, as fitted from the decay
        of their Bragg amplitudes (a blurrier query otherwise favours entries with a smaller
        lattice, whose magnified columns look wider).
    background : float
        σ (nm) of the Gaussian background removed from the query.
    emd_radius : float, optional
        Radius (nm) of the disk compared by the EMD (default 0.45 × the library field).
    emd_intensity : float
        nm per unit of relative intensity in the EMD feature space (0.1).
    emd_tau : float
        Cost (nm) of leaving a column unmatched (0.1).
    candidates : array of int or bool, optional
        Restrict the ranking to these entries.
    thorough : int
        How many of the short-listed entries (best first pass first) choose their alignment
        among several hypotheses by SSIM: both mirror images where the Bragg amplitudes
        cannot tell them apart, the 180° turn, and the three strongest correlation peaks.
        The others take their strongest correlation peak. 0 is faster (about 0.8 s instead
        of 1.2 s against 3,000 entries) and less accurate (on held-out simulated queries,
        SSIM top-1 90.9 % instead of 92.7 %).
    seed : int
        Unused (the pipeline is deterministic); kept for a uniform signature.

    Returns
    -------
    Ranking
    """
    from threadpoolctl import threadpool_limits

    from .library import Library

    if not isinstance(thorough, int | np.integer) or thorough < 0:
        raise ParameterError(f"thorough must be a whole number ≥ 0 (got {thorough!r})")
    if isinstance(library, str | os.PathLike):
        library = Library.load(library)
    # the matrix products here are many small ones: BLAS threads only contend (on a loaded
    # 2-core machine a threaded batch of them runs ~15x slower than a single thread)
    with threadpool_limits(limits=1):
        return _rank(
            image,
            library,
            metric=metric,
            pixel_size=pixel_size,
            region=region,
            shortlist=shortlist,
            scale_tolerance=scale_tolerance,
            affine=affine,
            max_strain=max_strain,
            match_resolution=match_resolution,
            background=background,
            emd_radius=emd_radius,
            emd_intensity=emd_intensity,
            emd_tau=emd_tau,
            candidates=candidates,
            thorough=thorough,
        )


def _rank(
    image: Any,
    library: Any,
    *,
    metric: Any,
    pixel_size: float | None,
    region: Any,
    shortlist: int | None,
    scale_tolerance: float,
    affine: bool,
    max_strain: float,
    match_resolution: bool,
    background: float,
    emd_radius: float | None,
    emd_intensity: float,
    emd_tau: float,
    candidates: Any,
    thorough: int,
) -> Ranking:
    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    if len(library) == 0:
        raise ParameterError("the library is empty")
    primary, metrics = _parse_metrics(metric)
    cand = None
    if candidates is not None:
        cand = np.asarray(candidates)
        if cand.dtype == bool:
            cand = np.nonzero(cand)[0]
        cand = cand.astype(np.int64)
    t0 = time.perf_counter()
    q = prepare_query(
        image,
        library.settings,
        pixel_size=pixel_size,
        region=region,
        background=background,
        scale_tolerance=scale_tolerance,
    )
    timings["prepare"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fp = first_pass(q, library, scale_tolerance, cand)
    timings["first_pass"] = time.perf_counter() - t0
    n = len(fp["lp_score"])
    k = n if shortlist is None else int(min(max(shortlist, 1), n))
    order = np.argsort(-fp["lp_score"], kind="stable")[:k]
    ent = order if cand is None else cand[order]
    t0 = time.perf_counter()
    sc = score_candidates(
        q,
        library,
        ent,
        {k2: v[order] for k2, v in fp.items()},
        metrics=metrics,
        affine=affine,
        max_strain=max_strain,
        match_resolution=match_resolution,
        emd_radius=emd_radius,
        emd_intensity=emd_intensity,
        emd_tau=emd_tau,
        thorough=thorough,
    )
    timings["align_and_score"] = time.perf_counter() - t0
    base = library.table if cand is None else library.table.iloc[cand]
    table = base.reset_index(names="entry") if cand is None else base.reset_index(drop=True)
    if cand is not None:
        table.insert(0, "entry", cand)
    table["lp_score"] = fp["lp_score"]
    table["shortlisted"] = False
    table.loc[order, "shortlisted"] = True
    for name in (
        "ssim",
        "mse",
        "emd",
        "rotation_deg",
        "scale",
        "strain",
        "shift_x_nm",
        "shift_y_nm",
        "pixel_size_fit_nm",
        "blur_nm",
        "valid_fraction",
    ):
        if name in sc or name in metrics:
            col = np.full(n, np.nan)
            if name in sc:
                col[order] = sc[name]
            table[name] = col
    mir = np.zeros(n, bool)
    mir[order] = sc["mirror"]
    table["mirror"] = mir
    # an entry that fits only at a scale beyond the tolerance ranks after those that fit within
    at_limit = np.zeros(n, bool)
    at_limit[order] = sc["scale_at_limit"]
    table["scale_at_limit"] = at_limit
    for m in metrics:
        table[f"rank_{m}"] = _ranks(
            table[m].to_numpy(float),
            HIGHER_IS_BETTER[m],
            table["lp_score"].to_numpy(float),
            at_limit,
        )
    table = table.sort_values(f"rank_{primary}", kind="stable").reset_index(drop=True)
    transforms = {
        int(e): (sc["A_nm"][j], np.array([sc["shift_x_nm"][j], sc["shift_y_nm"][j]]))
        for j, e in enumerate(ent)
    }
    S = library.settings.size
    qpatch, qvalid = resample(
        q.smooth, q.center, np.eye(2)[None] * (library.settings.pixel_size / q.pixel_size), S
    )
    timings["total"] = time.perf_counter() - t_all
    return Ranking(
        table=table,
        metric=primary,
        metrics=metrics,
        query_patch=np.where(qvalid[0], qpatch[0], np.nan),
        query_pixel_size=q.pixel_size if q.calibrated else None,
        library_pixel_size=library.settings.pixel_size,
        transforms=transforms,
        timings=timings,
        query_info={
            "calibrated": q.calibrated,
            "pixel_size_nm": q.pixel_size,
            "region": list(q.region),
            "n_bragg_peaks": int(len(q.peaks_g)),
            "notes": q.notes,
        },
        settings={
            "metric": metric,
            "shortlist": shortlist,
            "scale_tolerance": scale_tolerance,
            "affine": affine,
            "max_strain": max_strain,
            "match_resolution": match_resolution,
            "emd_intensity": emd_intensity,
            "emd_tau": emd_tau,
            "emd_radius": emd_radius,
            "background": background,
            "library": str(library.path) if library.path else None,
            "library_entries": len(library),
        },
        _library=library,
        _query=q,
    )


@dataclass
class Ranking:
    """Library entries ranked against a query image.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per entry, best first by ``metric``: the library's columns (``entry``,
        ``name``, ``formula``, ``structure_type``, ``prototype``, ``zone`` …), ``lp_score``
        (first-pass log-polar similarity), ``shortlisted``, the metric values ``ssim``,
        ``mse``, ``emd`` (NaN when not computed), ``rank_<metric>`` (1 = best), and the fitted
        transform: ``rotation_deg`` (counter-clockwise as displayed), ``mirror`` (the image is
        the entry's mirror image, i.e. viewed along −[uvw]), ``scale`` (query / library
        lengths at the nominal pixel size), ``strain`` (deviation from a similarity),
        ``shift_x_nm``, ``shift_y_nm``, ``pixel_size_fit_nm`` (the query pixel size that makes
        the entry fit exactly), ``valid_fraction`` (share of the library field the query
        covers), ``blur_nm`` (fitted resolution difference, σ), ``scale_at_limit`` (the entry
        fits only with a calibration error beyond ``scale_tolerance``; such entries rank after
        the others).
    metric : str
        The metric ordering the table.
    metrics : tuple of str
        Metrics computed.
    query_patch : ndarray
        The pre-processed query at the library pixel scale (unrotated), for figures.
    """

    table: pd.DataFrame
    metric: str
    metrics: tuple[str, ...]
    query_patch: np.ndarray
    query_pixel_size: float | None
    library_pixel_size: float
    transforms: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    query_info: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    _library: Any = field(default=None, repr=False)
    _query: Any = field(default=None, repr=False)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def top(self, n: int = 5, metric: str | None = None) -> pd.DataFrame:
        """The ``n`` best entries by ``metric`` (default: the ranking's)."""
        m = metric or self.metric
        if f"rank_{m}" not in self.table:
            raise ParameterError(f"metric {m!r} was not computed; computed: {self.metrics}")
        return self.table.sort_values(f"rank_{m}", kind="stable").head(n)

    def best(self, metric: str | None = None) -> dict[str, Any]:
        return self.top(1, metric).iloc[0].to_dict()

    def rank_of(self, mask: Any, metric: str | None = None) -> int | None:
        """Best rank (1-based) among rows where ``mask`` (bool array or callable on the table)
        holds."""
        m = metric or self.metric
        sel = mask(self.table) if callable(mask) else np.asarray(mask)
        r = self.table.loc[sel, f"rank_{m}"]
        return int(r.min()) if len(r) else None

    def visible_columns(self, entry: int) -> np.ndarray | None:
        """The entry's visible columns placed on the query with its fitted transform: (n, 3)
        x, y (px of ``query_patch``) and relative weight, or None when the entry was not
        aligned (not short-listed)."""
        if self._library is None or int(entry) not in self.transforms:
            return None
        A, t = self.transforms[int(entry)]
        st = self._library.settings
        c = (st.size - 1) / 2.0
        v = self._library.visible[int(entry)]
        uv = ((v[:, :2] - c) * st.pixel_size + t) @ A.T / st.pixel_size + c
        return np.column_stack([uv, v[:, 2]])

    def same_pattern(
        self, n: int = 10, metric: str | None = None, *, tolerance: float = 0.12
    ) -> pd.Series:
        """For the ``n`` best entries by ``metric``: the rank (1-based) of the first better
        entry whose visible columns, each placed on the query by its own fitted transform,
        fall on the same positions (every column of each within ``tolerance`` × the
        nearest-neighbour distance of one of the other's, inside the central 0.8 of the
        library field), else its own rank. Entries with one rank here show the image the same
        column pattern and differ only in column intensities or chemistry (perovskite and
        double-perovskite [001], a monatomic and an ordered fcc [001] …): their order
        depends on the intensity model more than on the geometry. Indexed like
        :meth:`top`."""
        from scipy.spatial import cKDTree

        from ..atoms.lattice import median_nn_distance

        t = self.top(n, metric)
        group = list(range(1, len(t) + 1))
        if self._library is None:
            return pd.Series(group, index=t.index, name="same_pattern_as")
        size = self._library.settings.size
        r_in, c = 0.4 * size, (size - 1) / 2.0
        # per entry: its central columns, their spacing, and those a spacing inside the rim
        sets: list[tuple[np.ndarray, float, np.ndarray] | None] = []
        for e in t["entry"].astype(int):
            v = self.visible_columns(e)
            if v is not None:
                v = v[np.hypot(v[:, 0] - c, v[:, 1] - c) <= r_in, :2]
            if v is None or len(v) < 3:
                sets.append(None)
                continue
            nn = median_nn_distance(v)
            sets.append((v, nn, v[np.hypot(v[:, 0] - c, v[:, 1] - c) <= r_in - nn]))

        def covers(a: tuple[np.ndarray, float, np.ndarray], b: np.ndarray) -> bool:
            _, nn, inner = a
            return bool(np.all(cKDTree(b).query(inner)[0] <= tolerance * nn))

        for i, si in enumerate(sets):
            if si is None:
                continue
            for j, sj in enumerate(sets[:i]):
                if sj is not None and covers(si, sj[0]) and covers(sj, si[0]):
                    group[i] = group[j]
                    break
        return pd.Series(group, index=t.index, name="same_pattern_as")

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metric": self.metric,
            "metrics": list(self.metrics),
            "entries": int(len(self.table)),
            "scored": int(self.table["shortlisted"].sum()),
            "query": self.query_info,
            "timings_s": self.timings,
        }
        cols = [
            "entry",
            "name",
            "formula",
            "structure_type",
            "zone",
            "lp_score",
            *self.metrics,
            "rotation_deg",
            "mirror",
            "scale",
            "pixel_size_fit_nm",
        ]
        for m in self.metrics:
            t = self.top(5, m)
            same = self.same_pattern(5, m)
            out[f"top_{m}"] = [
                {**{c: t.iloc[i][c] for c in cols if c in t}, "same_pattern_as": int(same.iloc[i])}
                for i in range(len(t))
            ]
        return out

    def save(self, directory: str | os.PathLike[str], *, top: int = 5) -> dict[str, Path]:
        """Write ``ranking.csv`` (every entry, best first), ``matches.png`` (the query beside
        the top candidates of each metric) and ``report.json`` into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = {}
        with atomic_path(d / "ranking.csv") as tmp:
            self.table.to_csv(tmp, index=False, float_format="%.6g")
        paths["ranking"] = d / "ranking.csv"
        paths["matches"] = self.figure(top=top, path=d / "matches.png")
        paths["report"] = write_json(d / "report.json", self.summary())
        return paths

    def report_figures(self, top: int = 5) -> list[tuple[str, Any]]:
        """Figures for the HTML report: the query beside its top candidates per metric."""
        return [
            (
                f"query (left) beside its top {top} candidates per metric, each drawn with "
                "the fitted rotation, scale, shift and resolution",
                self.figure(top=top),
            )
        ]

    def _candidate_image(self, entry: int) -> np.ndarray | None:
        if self._library is None or int(entry) not in self.transforms:
            return None
        A, t = self.transforms[int(entry)]
        img = self._library.render(int(entry), transform=A, shift_nm=tuple(t))
        # at the resolution it was compared at: blurred when the image is the blurrier one
        row = self.table.loc[self.table["entry"] == int(entry)]
        blur = float(row["blur_nm"].iloc[0]) if "blur_nm" in row and len(row) else 0.0
        sig = blur / self.library_pixel_size if np.isfinite(blur) else 0.0
        if sig >= 0.3:
            from scipy import ndimage as ndi

            img = ndi.gaussian_filter(img.astype(np.float64), sig).astype(np.float32)
        return img

    def plot(self, ax: Any = None, *, metric: str | None = None) -> Any:
        """Draw the query (library scale) with the best entry's visible columns overlaid."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(4, 4))
        m = metric or self.metric
        best = self.best(m)
        q = self.query_patch
        ax.imshow(np.nan_to_num(q, nan=float(np.nanmin(q))), cmap="gray")
        v = self.visible_columns(int(best["entry"]))
        if v is not None:
            size = self._library.settings.size
            ok = np.all((v[:, :2] >= -0.5) & (v[:, :2] <= size - 0.5), axis=1)
            ax.scatter(
                v[ok, 0],
                v[ok, 1],
                s=12 * v[ok, 2] + 2,
                facecolors="none",
                edgecolors="#ff3b30",
                linewidths=0.8,
            )
        ax.set_axis_off()
        ax.set_title(f"{best['name']} {best['zone']}  ({m} {best[m]:.3g})", fontsize=9)
        return ax

    def figure(
        self,
        *,
        top: int = 5,
        metrics: tuple[str, ...] | None = None,
        path: str | os.PathLike[str] | None = None,
        dpi: int = 110,
    ) -> Any:
        """The paper's figure 1: per metric, the query beside its top candidates (each drawn
        in the query's frame with the fitted rotation, scale, shift and resolution). Saved
        when ``path`` is given (the path is returned), else the figure is returned."""
        import matplotlib.pyplot as plt

        from ..report.figures import add_scale_bar, save_figure

        ms = tuple(metrics or self.metrics)
        rows = len(ms)
        fig, axes = plt.subplots(
            rows, top + 1, figsize=(1.55 * (top + 1), 1.75 * rows + 0.2), squeeze=False
        )
        q = self.query_patch
        qshow = np.nan_to_num(q, nan=float(np.nanmin(q)))
        lo, hi = np.percentile(qshow, (0.5, 99.5))
        for r, m in enumerate(ms):
            ax = axes[r, 0]
            ax.imshow(qshow, cmap="gray", vmin=lo, vmax=hi)
            ax.set_title("query", fontsize=8)
            ax.set_ylabel(m.upper(), fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            if self.query_pixel_size is not None:
                add_scale_bar(ax, self.library_pixel_size, q.shape[1], fontsize=6)
            t = self.top(top, m)
            same = self.same_pattern(top, m)
            for j in range(top):
                ax = axes[r, j + 1]
                ax.set_xticks([])
                ax.set_yticks([])
                if j >= len(t):
                    ax.set_axis_off()
                    continue
                row = t.iloc[j]
                img = self._candidate_image(int(row["entry"]))
                if img is not None:
                    ax.imshow(img, cmap="gray")
                name = str(row["name"])
                name = name if len(name) <= 16 else name[:15] + "…"
                val = row[m]
                twin = f" (= {same.iloc[j]}.)" if same.iloc[j] != j + 1 else ""
                ax.set_title(f"{j + 1}. {name} {row['zone']}\n{m} {val:.3g}{twin}", fontsize=6.5)
        fig.tight_layout(pad=0.3)
        if path is None:
            return fig
        return save_figure(fig, path, dpi=dpi)
