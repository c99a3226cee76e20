"""From flagged atoms to a per-pixel amorphous mask, and the mask's shape measures.

**Atoms.** Flags are first made spatially coherent on the neighbour graph of the atoms (edges
between atoms closer than ``link`` px): atoms too close to the image edge to be scored take the
majority label of their scored neighbours; flagged groups of fewer than ``min_atoms`` atoms
(a spurious detection, a point defect) are not an amorphous *region* and are cleared; crystal
groups of fewer than ``min_atoms`` atoms enclosed by flagged ones are flagged.

**Pixels.** Every pixel takes the label of its nearest atom (a Voronoi partition, so the
boundary between a flagged and a crystalline column falls half-way between them, unbiased).
Pixels farther than ``empty_radius`` from every atom are amorphous too: the atom finder may
find nothing at all in an amorphous film, and such a hole in the lattice is not crystal. The
mask boundary is then smoothed (Gaussian of σ ≈ half a column spacing, thresholded at one half),
small specks and holes are removed, and the mask is dilated by ``dilation`` px
(the paper's "slightly dilated" masks; 0 by default, because the Voronoi boundary is already
centred).

**Shape.** Perimeters are crack lengths between mask and background pixels, the image border
included (as for regions labelled in the image, after the paper), scaled by π/4 so that a
digital disk of radius r has perimeter ≈ 2πr; compactness is 4π·area/perimeter² (≈ 1 for a
disk, 1/n for n equal disks; a digital disk can exceed 1 slightly, so it is capped at 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

__all__ = ["AtomGraph", "MaskBuilder", "MaskStats", "mask_stats", "disk"]


def disk(radius: float) -> np.ndarray:
    """Boolean disk structuring element of the given radius (px)."""
    r = max(0, int(np.floor(radius)))
    g = np.arange(-r, r + 1)
    return (g[:, None] ** 2 + g[None, :] ** 2) <= radius**2 + 1e-9


@dataclass
class AtomGraph:
    """Neighbour graph of atom positions (edges between atoms closer than *link* px)."""

    xy: np.ndarray
    link: float

    def __post_init__(self) -> None:
        n = len(self.xy)
        if n > 1:
            pairs = cKDTree(self.xy).query_pairs(self.link, output_type="ndarray")
        else:
            pairs = np.zeros((0, 2), int)
        self.pairs = pairs
        self.n = n

    def _components(self, select: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Component label of every selected atom (-1 elsewhere) and component sizes."""
        idx = np.flatnonzero(select)
        lab = np.full(self.n, -1)
        if idx.size == 0:
            return lab, np.zeros(0, int)
        pos = np.full(self.n, -1)
        pos[idx] = np.arange(idx.size)
        p = self.pairs
        keep = select[p[:, 0]] & select[p[:, 1]] if len(p) else np.zeros(0, bool)
        a, b = pos[p[keep, 0]], pos[p[keep, 1]]
        g = coo_matrix((np.ones(len(a)), (a, b)), shape=(idx.size, idx.size))
        k, comp = connected_components(g, directed=False)
        lab[idx] = comp
        return lab, np.bincount(comp, minlength=k)

    def neighbour_mean(self, values: np.ndarray, among: np.ndarray) -> np.ndarray:
        """Mean of *values* over each atom's neighbours that are in *among* (NaN if none)."""
        s = np.zeros(self.n)
        c = np.zeros(self.n)
        p = self.pairs
        if len(p):
            v = np.asarray(values, float)
            for i, j in ((0, 1), (1, 0)):
                ok = among[p[:, j]]
                np.add.at(s, p[ok, i], v[p[ok, j]])
                np.add.at(c, p[ok, i], 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c > 0, s / np.maximum(c, 1), np.nan)

    def regularise(self, flags: np.ndarray, scored: np.ndarray, min_atoms: int) -> np.ndarray:
        """Spatially coherent flags (see the module notes)."""
        f = np.asarray(flags, bool) & scored
        if self.n == 0:
            return f
        if (~scored).any():
            m = self.neighbour_mean(f.astype(float), scored)
            f = np.where(scored, f, np.nan_to_num(m, nan=0.0) > 0.5)
        if min_atoms > 1 and f.any():
            f = f & ~self._small(f, min_atoms)
            if f.any() and (~f).any():
                f = f | self._small(~f, min_atoms)
        return f

    def _small(self, select: np.ndarray, min_atoms: int) -> np.ndarray:
        lab, size = self._components(select)
        return (lab >= 0) & (size[np.maximum(lab, 0)] < min_atoms)


@dataclass
class MaskStats:
    """Shape measures of a binary mask (lengths in px, areas in px²)."""

    area: float
    area_fraction: float
    perimeter: float
    n_regions: int
    compactness: float  # 4π A / P², NaN for an empty mask

    def to_dict(self) -> dict[str, float]:
        return {
            "area_px": self.area,
            "area_fraction": self.area_fraction,
            "perimeter_px": self.perimeter,
            "n_regions": self.n_regions,
            "compactness": self.compactness,
        }


def mask_stats(mask: np.ndarray) -> MaskStats:
    """Area, interface perimeter, region count and compactness of *mask*."""
    m = np.asarray(mask, bool)
    area = float(m.sum())
    # the image border counts as boundary, as for regions labelled in the image (the paper)
    pad = np.pad(m, 1)
    cracks = float(
        np.count_nonzero(pad[1:, :] != pad[:-1, :]) + np.count_nonzero(pad[:, 1:] != pad[:, :-1])
    )
    perimeter = cracks * np.pi / 4.0
    n_regions = int(ndi.label(m)[1]) if area else 0
    if area == 0:
        comp = float("nan")
    else:
        comp = float(min(1.0, 4.0 * np.pi * area / max(perimeter, 1e-12) ** 2))
    return MaskStats(area, area / m.size if m.size else 0.0, perimeter, n_regions, comp)


class MaskBuilder:
    """Precomputed nearest-atom map of an image, turning atom flags into a pixel mask fast.

    Parameters
    ----------
    shape : (int, int)
        Image shape (H, W).
    xy : ndarray (n, 2)
        Atom positions (x, y) in px.
    empty_radius : float
        Pixels farther than this from every atom are amorphous (no column found there).
    smooth : float
        Standard deviation (px) of the Gaussian that smooths the mask boundary.
    min_area : float
        Specks and holes smaller than this (px²) are removed.
    dilation : float
        Final dilation radius (px).
    spacing : float, optional
        Nearest-neighbour distance (px); regions without atoms are grown to half a spacing
        from the nearest column.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        xy: np.ndarray,
        *,
        empty_radius: float,
        smooth: float,
        min_area: float,
        dilation: float = 0.0,
        spacing: float | None = None,
    ) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        h, w = self.shape
        self.n = len(xy)
        seeds = np.ones(self.shape, bool)
        if self.n:
            ij = np.clip(np.rint(np.asarray(xy)[:, ::-1]).astype(int), 0, [h - 1, w - 1])
            # several atoms may round to one pixel: the last wins, which is harmless here
            seeds[ij[:, 0], ij[:, 1]] = False
            owner = np.full(self.shape, -1)
            owner[ij[:, 0], ij[:, 1]] = np.arange(self.n)
            dist, (ri, ci) = ndi.distance_transform_edt(seeds, return_indices=True)
            self.nearest = owner[ri, ci]
            self.dist = dist
        else:
            self.nearest = np.full(self.shape, -1)
            self.dist = np.full(self.shape, np.inf)
        self.empty_radius = float(empty_radius)
        self.empty = self.dist > self.empty_radius
        # the boundary of a hole lies about half a spacing from the last columns, not
        # empty_radius from them: grow the hole by the difference
        grow = self.empty_radius - 0.5 * float(spacing) if spacing else 0.0
        if grow > 0 and self.empty.any() and not self.empty.all():
            self.empty = ndi.distance_transform_edt(~self.empty) <= grow
        self.smooth = float(smooth)
        self.min_area = float(min_area)
        self.dilation = float(dilation)

    def build(self, flags: np.ndarray) -> np.ndarray:
        """Boolean amorphous mask for per-atom *flags*."""
        f = np.asarray(flags, bool)
        if self.n:
            raw = np.where(self.nearest >= 0, f[np.maximum(self.nearest, 0)], False)
        else:
            raw = np.zeros(self.shape, bool)
        m = raw | self.empty
        if not m.any():
            return m
        if self.smooth > 0:
            # a Gaussian-smoothed indicator thresholded at one half: removes the polygonal
            # jaggedness of the Voronoi boundary without moving a smooth boundary; reflected at
            # the image edge so that regions there are not eroded
            m = ndi.gaussian_filter(m.astype(np.float32), self.smooth, mode="reflect") > 0.5
        if self.min_area > 0:
            m = _remove_small(m, self.min_area)
            m = ~_remove_small(~m, self.min_area)
        if self.dilation >= 1:
            m = ndi.binary_dilation(m, structure=disk(self.dilation))
        return m


def _remove_small(m: np.ndarray, min_area: float) -> np.ndarray:
    lab, n = ndi.label(m)
    if n == 0:
        return m
    sizes = np.bincount(lab.ravel())
    keep = sizes >= min_area
    keep[0] = False
    return keep[lab]
