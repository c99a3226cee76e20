"""A set of projected atom columns in image coordinates, and tiling a projection over a field."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import ParameterError
from .projection import Projection, element_weights

__all__ = ["ColumnSet", "tile", "rotation_matrix"]


def rotation_matrix(degrees: float) -> np.ndarray:
    """2x2 matrix rotating (x, y-down) vectors counter-clockwise *as displayed* by ``degrees``.

    ``v' = v @ rotation_matrix(θ)``; (1, 0) goes to (cos θ, −sin θ), i.e. towards the top of the
    screen for θ = 90°.
    """
    t = math.radians(float(degrees))
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, -s], [s, c]])


@dataclass
class ColumnSet:
    """Atom columns placed in an image (pixel coordinates, x = column index, y = row index).

    Attributes
    ----------
    xy : ndarray (N, 2)
        Column centres in the sample frame, px (x, y).
    elements : tuple of str
        Element symbols indexing the columns of ``counts``.
    counts : ndarray (N, E)
        Atoms of each element in each column (through the whole thickness).
    species, sublattice, site, grain, phase, amorphous : ndarray (N,)
        Labels: element string ('Ti+O'), composition type, site index in the projected cell,
        grain id (1, 2 … ; 0 for amorphous material), phase id (which structure), amorphous flag.
    weight : ndarray (N,) or None
        Column weights (Σ atoms × per-atom weight); filled by :meth:`with_weights`.
    blur : ndarray (N,) or None
        Debye–Waller Gaussian σ of each column, nm (None when no thermal blur).
    extra : dict of str -> ndarray (N,)
        Further per-column fields that go into the ground-truth table (e.g. n_vacancies).
    """

    xy: np.ndarray
    elements: tuple[str, ...]
    counts: np.ndarray
    species: np.ndarray
    sublattice: np.ndarray
    site: np.ndarray
    grain: np.ndarray
    phase: np.ndarray
    amorphous: np.ndarray
    weight: np.ndarray | None = None
    blur: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.xy)

    @classmethod
    def empty(cls, elements: Sequence[str] = ()) -> ColumnSet:
        n = 0
        return cls(
            np.zeros((n, 2)),
            tuple(elements),
            np.zeros((n, len(elements))),
            np.zeros(n, dtype=object),
            np.zeros(n, np.int64),
            np.zeros(n, np.int64),
            np.zeros(n, np.int64),
            np.zeros(n, np.int64),
            np.zeros(n, bool),
            np.zeros(n),
            None,
        )

    def select(self, mask: np.ndarray) -> ColumnSet:
        """The columns where ``mask`` (bool or index array) selects."""
        return ColumnSet(
            self.xy[mask],
            self.elements,
            self.counts[mask],
            self.species[mask],
            self.sublattice[mask],
            self.site[mask],
            self.grain[mask],
            self.phase[mask],
            self.amorphous[mask],
            None if self.weight is None else self.weight[mask],
            None if self.blur is None else self.blur[mask],
            {k: v[mask] for k, v in self.extra.items()},
        )

    def with_elements(self, elements: Sequence[str]) -> ColumnSet:
        """The same columns with ``counts`` re-indexed to a superset of elements."""
        elements = tuple(elements)
        if elements == self.elements:
            return self
        missing = [e for e in self.elements if e not in elements]
        if missing:
            raise ValueError(f"elements {missing} missing from {elements}")
        counts = np.zeros((len(self), len(elements)))
        for i, e in enumerate(self.elements):
            counts[:, elements.index(e)] = self.counts[:, i]
        return replace(self, elements=elements, counts=counts)

    @staticmethod
    def concat(sets: Sequence[ColumnSet]) -> ColumnSet:
        """Join column sets (element lists are merged, heaviest first)."""
        from ase.data import atomic_numbers

        sets = [s for s in sets if s is not None]
        if not sets:
            return ColumnSet.empty()
        els = sorted({e for s in sets for e in s.elements}, key=lambda e: -atomic_numbers[e])
        sets = [s.with_elements(els) for s in sets]

        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(s, name) for s in sets])

        weight = None if any(s.weight is None for s in sets) else cat("weight")
        blur = None
        if any(s.blur is not None for s in sets):
            blur = np.concatenate(
                [s.blur if s.blur is not None else np.zeros(len(s)) for s in sets]
            )
        keys = sorted({k for s in sets for k in s.extra})
        extra = {k: np.concatenate([s.extra.get(k, np.zeros(len(s))) for s in sets]) for k in keys}
        return ColumnSet(
            cat("xy"),
            tuple(els),
            cat("counts"),
            cat("species"),
            cat("sublattice"),
            cat("site"),
            cat("grain"),
            cat("phase"),
            cat("amorphous"),
            weight,
            blur,
            extra,
        )

    def with_weights(
        self,
        exponent: float = 1.7,
        weights: dict[str, float] | None = None,
        debye_waller: float | dict[str, float] | None = None,
    ) -> ColumnSet:
        """Compute ``weight`` (Σ counts × Z^exponent or ``weights[el]``) and the thermal blur.

        ``debye_waller``: isotropic B factor in Å² (one value or per element); the projected
        position spread is σ² = B / (8π²) per direction, averaged over a column's atoms with
        their scattering weights.
        """
        ew = element_weights(self.elements, exponent, weights)
        per_el = self.counts * ew[None, :]
        weight = per_el.sum(axis=1)
        blur = None
        if debye_waller is not None:
            if isinstance(debye_waller, dict):
                b = np.array([float(debye_waller.get(e, 0.0)) for e in self.elements])
            else:
                b = np.full(len(self.elements), float(debye_waller))
            if np.any(~np.isfinite(b)) or np.any(b < 0):
                raise ParameterError(f"debye_waller B factors must be ≥ 0 Å², got {debye_waller}")
            sig2 = b / (8.0 * np.pi**2) / 100.0  # nm²
            with np.errstate(invalid="ignore", divide="ignore"):
                s2 = np.where(weight > 0, (per_el @ sig2) / weight, 0.0)
            blur = np.sqrt(np.maximum(s2, 0.0))
        return replace(self, weight=weight, blur=blur)


def tile(
    projection: Projection,
    shape: tuple[int, int],
    pixel_size: float,
    *,
    rotation: float = 0.0,
    origin: tuple[float, float] | None = None,
    shift: tuple[float, float] = (0.0, 0.0),
    margin: float = 0.0,
    thickness: float = 1.0,
    grain: int = 1,
    phase: int = 1,
) -> ColumnSet:
    """Tile the projected cell over an image field.

    Parameters
    ----------
    projection : Projection
        From :func:`~atomscope.simulate.projection.project`.
    shape : (int, int)
        Image (rows, cols).
    pixel_size : float
        nm per pixel.
    rotation : float
        In-plane rotation of the crystal, degrees, counter-clockwise as displayed.
    origin : (float, float), optional
        Where the lattice origin (a column of site 0) goes, px (x, y); default the image centre
        ``((W − 1) / 2, (H − 1) / 2)``.
    shift : (float, float)
        Extra sub-pixel shift of the lattice, px (x, y).
    margin : float
        Columns are produced within ``margin`` px outside the image as well.
    thickness : float
        Number of periods along the beam (multiplies the atoms per column).
    grain, phase : int
        Labels given to all columns.

    Returns
    -------
    ColumnSet
        Columns with ``-margin ≤ x ≤ W − 1 + margin`` (same for y); no weights yet.
    """
    h, w = int(shape[0]), int(shape[1])
    if not (math.isfinite(pixel_size) and pixel_size > 0):
        raise ParameterError(f"pixel_size must be a positive length in nm, got {pixel_size!r}")
    if not (math.isfinite(thickness) and thickness > 0):
        raise ParameterError(f"thickness must be a positive number of repeats, got {thickness!r}")
    ox, oy = (
        ((w - 1) / 2.0, (h - 1) / 2.0) if origin is None else (float(origin[0]), float(origin[1]))
    )
    ox += float(shift[0])
    oy += float(shift[1])
    rot = rotation_matrix(rotation)
    # lattice vectors in px, rotated
    lat = projection.lattice @ rot / pixel_size
    sites = projection.sites @ rot / pixel_size
    corners = np.array(
        [
            [-margin, -margin],
            [w - 1 + margin, -margin],
            [-margin, h - 1 + margin],
            [w - 1 + margin, h - 1 + margin],
        ]
    )
    frac = (corners - [ox, oy]) @ np.linalg.inv(lat)
    lo = np.floor(frac.min(axis=0)).astype(int) - 1
    hi = np.ceil(frac.max(axis=0)).astype(int) + 1
    ii, jj = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    cells = np.stack([ii.ravel(), jj.ravel()], axis=1) @ lat + [ox, oy]
    pos = (cells[:, None, :] + sites[None, :, :]).reshape(-1, 2)
    site = np.tile(np.arange(projection.n_sites), len(cells))
    keep = (
        (pos[:, 0] >= -margin)
        & (pos[:, 0] <= w - 1 + margin)
        & (pos[:, 1] >= -margin)
        & (pos[:, 1] <= h - 1 + margin)
    )
    pos, site = pos[keep], site[keep]
    n = len(pos)
    species = np.asarray(projection.species, dtype=object)
    return ColumnSet(
        xy=pos,
        elements=projection.elements,
        counts=projection.composition[site] * float(thickness),
        species=species[site],
        sublattice=projection.sublattice[site],
        site=site.astype(np.int64),
        grain=np.full(n, int(grain), np.int64),
        phase=np.full(n, int(phase), np.int64),
        amorphous=np.zeros(n, bool),
    )


def columns_from_arrays(xy: Any, weights: Any, *, species: Any = None) -> ColumnSet:
    """A ColumnSet from plain arrays (px positions and weights), for custom column lists."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), (len(xy),)).copy()
    n = len(xy)
    sp = np.full(n, "X", dtype=object) if species is None else np.asarray(species, dtype=object)
    return ColumnSet(
        xy,
        (),
        np.zeros((n, 0)),
        sp,
        np.zeros(n, np.int64),
        np.zeros(n, np.int64),
        np.ones(n, np.int64),
        np.ones(n, np.int64),
        np.zeros(n, bool),
        w,
        None,
    )
