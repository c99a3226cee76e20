"""Physics rewards for atom finding, all to be minimised.

* ``quality_count`` — the paper's QC = (N_found − N_expected) / N_expected (eq. 1); the optimiser
  minimises |QC|.
* ``error_rate`` — the paper's ER (eq. 2): the fraction (of N_expected) of found columns whose
  sum of distances to their 4 nearest neighbours is below the threshold DS derived from the ideal
  lattice (implausibly crowded detections).
* ``irregularity`` — beyond the paper: the fraction of found columns whose neighbour vectors do
  not match the ideal lattice's neighbour vectors. It cannot be satisfied by a count alone: noise
  blobs at the right density still sit at wrong places.
* ``misfit`` — beyond the paper: found columns on no lattice site plus lattice sites with no
  column, per expected column (:class:`SiteMisfit`). It penalises a missed column even when a
  noise blob elsewhere keeps the count right.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .lattice import Lattice

__all__ = [
    "SiteMisfit",
    "quality_count",
    "distance_sums",
    "error_rate",
    "ideal_neighbour_vectors",
    "irregularity",
    "REWARDS",
]


def quality_count(n_found: int, n_expected: float) -> float:
    """QC = (N_found − N_expected) / N_expected (paper eq. 1)."""
    return (n_found - n_expected) / max(n_expected, 1e-12)


def distance_sums(xy: np.ndarray, k: int = 4, tree: cKDTree | None = None) -> np.ndarray:
    """Sum of the distances (px) from each point to its *k* nearest neighbours."""
    xy = np.asarray(xy, dtype=float)
    if len(xy) <= k:
        return np.full(len(xy), np.inf)
    tree = tree or cKDTree(xy)
    d, _ = tree.query(xy, k=k + 1)
    return d[:, 1:].sum(axis=1)


def error_rate(xy: np.ndarray, ds_threshold: float, n_expected: float, k: int = 4) -> float:
    """ER = #(distance sum to k nearest neighbours < DS) / N_expected (paper eq. 2)."""
    if len(xy) <= k:
        return 0.0
    return float((distance_sums(xy, k) < ds_threshold).sum()) / max(n_expected, 1e-12)


def ideal_neighbour_vectors(lattice: Lattice, radius: float) -> np.ndarray:
    """All vectors (px) from any ideal column to any other within *radius*."""
    reach = int(np.ceil(radius / min(lattice.lengths_px))) + 2
    ii, jj = np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1))
    cells = np.stack([ii.ravel(), jj.ravel()], axis=1)
    vecs = []
    for site in lattice.motif:
        pts = (cells[:, None, :] + lattice.motif[None, :, :] - site).reshape(-1, 2)
        v = pts @ lattice.vectors
        d = np.hypot(v[:, 0], v[:, 1])
        vecs.append(v[(d > 1e-9) & (d <= radius)])
    return np.unique(np.round(np.concatenate(vecs), 6), axis=0)


def irregularity(
    xy: np.ndarray,
    lattice: Lattice,
    tolerance: float = 0.25,
    ideal_vectors: np.ndarray | None = None,
    tree: cKDTree | None = None,
) -> float:
    """Fraction of columns whose neighbour vectors do not fit the ideal lattice.

    For each column, every neighbour within 1.15 × the nearest-neighbour distance of the ideal
    lattice is compared with the ideal neighbour vectors; a column is irregular when the median
    mismatch exceeds *tolerance* × the nearest-neighbour distance, or when it has no neighbour
    at all in a lattice that should give it some.
    """
    xy = np.asarray(xy, dtype=float)
    n = len(xy)
    if n < 3:
        return 1.0 if n else 0.0
    nn = lattice.nn_distance_px
    radius = 1.15 * nn
    if ideal_vectors is None:
        ideal_vectors = ideal_neighbour_vectors(lattice, 1.5 * nn)
    tree = tree or cKDTree(xy)
    pairs = tree.query_pairs(radius, output_type="ndarray")
    if len(pairs) == 0:
        return 1.0
    vec = xy[pairs[:, 1]] - xy[pairs[:, 0]]
    mismatch, _ = cKDTree(ideal_vectors).query(vec)
    both = np.concatenate([pairs[:, 0], pairs[:, 1]])
    mis2 = np.concatenate([mismatch, mismatch])
    order = np.argsort(both, kind="stable")
    both, mis2 = both[order], mis2[order]
    starts = np.flatnonzero(np.r_[True, both[1:] != both[:-1]])
    counts = np.diff(np.r_[starts, len(both)])
    # median mismatch per column via sorting within groups
    med = np.empty(len(starts))
    for g, (s, c) in enumerate(zip(starts, counts, strict=True)):
        med[g] = np.median(mis2[s : s + c])
    irregular = np.ones(n, bool)
    irregular[both[starts]] = med > tolerance * nn
    return float(irregular.mean())


class SiteMisfit:
    """Fraction of the lattice that the found set does not reproduce: found columns that sit on
    no ideal site or on a site already taken, plus ideal sites (inside the lattice-bearing
    region) with no column, divided by the expected count.

    The ideal sites come from the lattice registered to the image once (per tile of a few
    cells, so slow distortions are followed); each evaluation is then two nearest-neighbour
    queries. A count can be right with columns missing in one place and noise in another; the
    misfit cannot.
    """

    def __init__(
        self,
        lattice: Lattice,
        reference_xy: np.ndarray,
        shape: tuple[int, int],
        support: np.ndarray | None = None,
        tolerance: float = 0.3,
        tile_cells: int = 8,
    ):
        from .sublattice import register_sites

        self.nn = lattice.nn_distance_px
        self.tolerance = tolerance * self.nn
        sites = register_sites(lattice, reference_xy, shape, tile_cells=tile_cells)
        if support is not None and len(sites):
            r = np.clip(np.rint(sites[:, 1]).astype(int), 0, shape[0] - 1)
            c = np.clip(np.rint(sites[:, 0]).astype(int), 0, shape[1] - 1)
            sites = sites[support[r, c]]
        self.sites = sites
        self.tree = cKDTree(sites) if len(sites) else None

    def __call__(
        self, xy: np.ndarray, inner: np.ndarray, site_inner: np.ndarray, n_expected: float
    ) -> float:
        if self.tree is None:
            return 1.0
        if len(xy) == 0:
            return float(site_inner.sum()) / max(n_expected, 1e-12)
        d_found, site = self.tree.query(xy[inner])
        on = d_found <= self.tolerance
        # a site claimed by two columns holds one of them too many
        off_site = int((~on).sum()) + int(on.sum() - np.unique(site[on]).size)
        d_site, _ = cKDTree(xy).query(self.sites[site_inner])
        empty = int((d_site > self.tolerance).sum())
        return (off_site + empty) / max(n_expected, 1e-12)


REWARDS = ("count", "error", "irregularity", "misfit")
