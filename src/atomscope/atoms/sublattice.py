"""Sublattice assignment from geometry (the site in the unit cell) and intensity, without
zone-axis indices chosen by hand."""

from __future__ import annotations

import numpy as np

from .lattice import Lattice

__all__ = ["assign_sublattices", "register_sites"]


def _wrap(d: np.ndarray) -> np.ndarray:
    return d - np.round(d)


def _normalised(values: np.ndarray) -> np.ndarray:
    lo, hi = np.nanpercentile(values, [5, 95]) if values.size else (0.0, 1.0)
    return np.clip((values - lo) / max(hi - lo, 1e-12), -0.5, 1.5)


def _site_distances(
    frac: np.ndarray, origin: np.ndarray, motif: np.ndarray, metric: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distances (px) from each column to each motif site, and the wrapped offsets."""
    d = _wrap(frac[:, None, :] - origin - motif[None, :, :])
    return np.sqrt(np.einsum("nmi,ij,nmj->nm", d, metric, d)), d


def _global_origin(
    frac: np.ndarray,
    inten: np.ndarray,
    motif: np.ndarray,
    motif_inten: np.ndarray,
    metric: np.ndarray,
    width: float,
    grid: int = 24,
) -> np.ndarray:
    """The cell origin that puts the most columns on motif sites of similar brightness.

    Geometry alone cannot tell sites related by a translation apart (the A and B sites of a
    perovskite); the brightness term makes the brightest columns sit on the brightest site.
    """
    g = (np.arange(grid) + 0.5) / grid
    trial = np.stack(np.meshgrid(g, g, indexing="xy"), axis=-1).reshape(-1, 2)
    use_intensity = len(motif) > 1 and np.ptp(motif_inten) > 0.15
    best, best_score = trial[0], -np.inf
    for chunk in np.array_split(trial, max(1, len(trial) // 48)):
        d = _wrap(frac[None, :, None, :] - chunk[:, None, None, :] - motif[None, None, :, :])
        dist2 = np.einsum("tnmi,ij,tnmj->tnm", d, metric, d)
        match = np.exp(-0.5 * dist2 / width**2)
        if use_intensity:
            match = match * np.exp(
                -0.5 * (inten[None, :, None] - motif_inten[None, None, :]) ** 2 / 0.2**2
            )
        score = match.max(axis=2).sum(axis=1)
        k = int(np.argmax(score))
        if score[k] > best_score:
            best, best_score = chunk[k], score[k]
    return best


def _mean_shift(
    frac: np.ndarray,
    origin: np.ndarray,
    motif: np.ndarray,
    metric: np.ndarray,
    width: float,
    max_shift: np.ndarray,
) -> np.ndarray:
    """Refine an origin locally (it cannot jump to another site)."""
    start = origin.copy()
    for _ in range(6):
        dist, d = _site_distances(frac, origin, motif, metric)
        m = np.argmin(dist, axis=1)
        rows = np.arange(len(frac))
        w = np.exp(-0.5 * dist[rows, m] ** 2 / width**2)
        if w.sum() <= 1e-9:
            break
        origin = origin + (d[rows, m] * w[:, None]).sum(axis=0) / w.sum()
        origin = start + np.clip(_wrap(origin - start), -max_shift, max_shift)
    return origin


def assign_sublattices(
    xy: np.ndarray,
    intensity: np.ndarray,
    lattice: Lattice,
    *,
    tolerance: float = 0.3,
    tile_cells: int = 8,
) -> np.ndarray:
    """Label each column with its motif site; sublattice 0 is the brightest on average.

    One origin of the cell is found for the whole image from geometry and brightness together
    (so the labels are consistent everywhere), then refined locally in tiles of about
    *tile_cells* × *tile_cells* cells, so that slow scan distortions which shift the lattice
    across the field do not scramble the labels. Columns further than *tolerance* × the
    nearest-neighbour distance from every motif site get -1 (off-lattice: interstitials,
    amorphous regions, other grains).

    Parameters
    ----------
    xy : ndarray (N, 2)
        Column positions (x, y) in px.
    intensity : ndarray (N,)
        Integrated intensity (or amplitude) of each column.
    lattice : Lattice
        Lattice with its visible motif.

    Returns
    -------
    ndarray of int (N,)
    """
    xy = np.asarray(xy, dtype=float)
    n = len(xy)
    labels = np.full(n, -1, dtype=int)
    if n == 0:
        return labels
    nn = lattice.nn_distance_px
    _, local, tile, motif = _origins(xy, intensity, lattice, tile_cells)
    ti = np.floor(xy[:, 0] / tile).astype(int)
    tj = np.floor(xy[:, 1] / tile).astype(int)
    for key, (o_px, basis) in local.items():
        sel = np.flatnonzero((ti == key[0]) & (tj == key[1]))
        if sel.size == 0:
            continue
        f = (xy[sel] - o_px) @ np.linalg.inv(basis)
        dist, _ = _site_distances(f, np.zeros(2), motif, basis @ basis.T)
        site = np.argmin(dist, axis=1)
        ok = dist[np.arange(sel.size), site] <= tolerance * nn
        labels[sel[ok]] = site[ok]
    # order sublattices by mean intensity, brightest first
    raw = np.asarray(intensity, dtype=float)
    present = [s for s in range(len(motif)) if np.any(labels == s)]
    means = {s: float(np.nanmean(raw[labels == s])) for s in present}
    order = sorted(present, key=lambda s: -means[s])
    out = labels.copy()
    for k, s in enumerate(order):
        out[labels == s] = k
    return out


def _origins(xy: np.ndarray, intensity: np.ndarray, lattice: Lattice, tile_cells: int):
    """Global origin, and per-tile origins found afresh in every tile.

    Scan distortions can shift the lattice by a good fraction of a cell across the field, more
    than a local refinement of one global origin can follow; each tile therefore searches its
    own origin (from geometry and brightness, so the brightest columns sit on the brightest
    site), using the columns of its 3 × 3 tile neighbourhood.
    """
    motif = np.asarray(lattice.motif, dtype=float)
    vectors = np.asarray(lattice.vectors, dtype=float)
    metric = vectors @ vectors.T
    nn = lattice.nn_distance_px
    width = 0.25 * nn
    frac = xy @ np.linalg.inv(vectors)
    inten = _normalised(np.nan_to_num(np.asarray(intensity, dtype=float)))
    heights = np.asarray(lattice.motif_intensity, dtype=float)
    motif_inten = (
        (heights - heights.min()) / max(np.ptp(heights), 1e-12) if len(heights) > 1 else np.ones(1)
    )
    n = len(xy)
    sample = np.linspace(0, n - 1, min(n, 600)).astype(int)
    origin = _global_origin(frac[sample] % 1.0, inten[sample], motif, motif_inten, metric, width)
    origin = _mean_shift(frac[sample] % 1.0, origin, motif, metric, width, np.full(2, 0.5))
    tile = tile_cells * max(lattice.lengths_px)
    ti = np.floor(xy[:, 0] / tile).astype(int)
    tj = np.floor(xy[:, 1] / tile).astype(int)
    local = {}
    for key in set(zip(ti.tolist(), tj.tolist(), strict=True)):
        near = np.flatnonzero((np.abs(ti - key[0]) <= 1) & (np.abs(tj - key[1]) <= 1))
        if near.size > 200:
            near = near[np.linspace(0, near.size - 1, 200).astype(int)]
        if near.size < 6:
            local[key] = origin
            continue
        o = _global_origin(
            frac[near] % 1.0, inten[near], motif, motif_inten, metric, width, grid=16
        )
        local[key] = _mean_shift(frac[near] % 1.0, o, motif, metric, width, np.full(2, 0.1))
    # refine the motif with the columns, each measured from its own tile's origin
    rel = np.empty_like(frac)
    for key, o in local.items():
        sel = (ti == key[0]) & (tj == key[1])
        rel[sel] = (frac[sel] - o) % 1.0
    motif = _refine_motif(rel[sample], np.zeros(2), motif, metric, width)
    # then an affine lattice per tile: (origin in px, basis vectors)
    affine = {}
    for key, o in local.items():
        near = np.flatnonzero((np.abs(ti - key[0]) <= 1) & (np.abs(tj - key[1]) <= 1))
        affine[key] = _local_basis(xy[near], o, motif, vectors, width)
    return origin, affine, tile, motif


def _local_basis(
    xy: np.ndarray,
    frac_origin: np.ndarray,
    motif: np.ndarray,
    vectors: np.ndarray,
    width: float,
    iterations: int = 2,
):
    """Least-squares lattice vectors and origin (px) of one tile: scan distortions change the
    lattice across the field, so each tile gets its own affine lattice."""
    origin_px = frac_origin @ vectors
    basis = vectors.copy()
    for _ in range(iterations):
        frac = (xy - origin_px) @ np.linalg.inv(basis)
        d = frac[:, None, :] - motif[None, :, :]
        cell = np.round(d)
        resid = (d - cell) @ basis
        dist = np.hypot(resid[..., 0], resid[..., 1])
        site = np.argmin(dist, axis=1)
        rows = np.arange(len(xy))
        ok = dist[rows, site] < 2.0 * width
        if ok.sum() < 6:
            break
        ideal = cell[rows, site][ok] + motif[site[ok]]
        # xy = origin + ideal @ basis: linear in (origin, basis)
        design = np.hstack([np.ones((ok.sum(), 1)), ideal])
        sol, *_ = np.linalg.lstsq(design, xy[ok], rcond=None)
        new_basis = sol[1:]
        if (
            abs(np.linalg.det(new_basis)) < 0.5 * abs(np.linalg.det(vectors))
            or np.abs(new_basis - vectors).max() > 0.1 * np.abs(vectors).max()
        ):
            break
        origin_px, basis = sol[0], new_basis
    return origin_px, basis


def _refine_motif(
    frac: np.ndarray, origin: np.ndarray, motif: np.ndarray, metric: np.ndarray, width: float
) -> np.ndarray:
    """Move each motif site (but the first, which anchors the origin) to the mean position of
    the columns that sit on it: the unit-cell average places a faint site less precisely than
    the columns themselves do."""
    motif = motif.copy()
    for _ in range(3):
        dist, d = _site_distances(frac, origin, motif, metric)
        site = np.argmin(dist, axis=1)
        close = dist[np.arange(len(frac)), site] < 2.0 * width
        for m in range(1, len(motif)):
            sel = close & (site == m)
            if sel.sum() >= 3:
                motif[m] = motif[m] + d[sel, m].mean(axis=0)
    return motif % 1.0


def register_sites(
    lattice: Lattice,
    xy: np.ndarray,
    shape: tuple[int, int],
    *,
    intensity: np.ndarray | None = None,
    tile_cells: int = 8,
) -> np.ndarray:
    """Ideal site positions (x, y) px covering an image, registered to found columns *xy*
    (one origin for the image, refined per tile of *tile_cells* cells)."""
    xy = np.asarray(xy, dtype=float)
    if len(xy) < 3:
        return np.zeros((0, 2))
    intensity = np.ones(len(xy)) if intensity is None else intensity
    origin, local, tile, motif = _origins(xy, intensity, lattice, tile_cells)
    vectors = np.asarray(lattice.vectors, dtype=float)
    h, w = shape
    out = []
    for ti in range(int(np.floor((w - 1) / tile)) + 1):
        for tj in range(int(np.floor((h - 1) / tile)) + 1):
            o_px, basis = local.get((ti, tj), (np.asarray(origin) @ vectors, vectors))
            x0, y0 = ti * tile, tj * tile
            lat = Lattice(basis, motif)
            pts, _ = lat.ideal_positions((h, w), origin=tuple(o_px))
            keep = (
                (pts[:, 0] >= x0)
                & (pts[:, 0] < x0 + tile)
                & (pts[:, 1] >= y0)
                & (pts[:, 1] < y0 + tile)
            )
            out.append(pts[keep])
    return np.concatenate(out) if out else np.zeros((0, 2))
