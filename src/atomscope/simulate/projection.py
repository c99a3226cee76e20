"""Project a crystal along a zone axis into atom columns.

Steps (all exact integer lattice algebra, then floating point for positions):

1. The zone axis ``[uvw]`` (direct-lattice indices in the basis of the given cell; four-index
   ``[uvtw]`` is converted) is reduced by its gcd and completed to a unimodular integer basis
   ``(b1, b2, t)`` of the same lattice (extended Euclid), so ``t = u a + v b + w c`` is the third
   cell vector of an equivalent cell.
2. The true period along the beam: conventional cells are centred, so ``t`` may be a multiple of
   the shortest translation along the beam. ``t / n`` (n = 2 … 12) is tested as a symmetry of the
   structure (every atom maps onto an atom of the same element within ``tolerance``); the period
   is ``|t| / m`` with ``m`` the largest such n. Zone axes whose period exceeds ``max_repeat`` are
   refused: atoms do not line up into columns along them.
3. The projected 2-D lattice is spanned by the projections of ``b1`` and ``b2`` on the plane
   normal to ``t`` (Lagrange–Gauss reduced); atoms are projected and merged into columns when
   their projections lie within ``tolerance``. A column's composition is counted per period
   along the beam (fcc [110] from the conventional cell: one atom per column per period).

Image frame: the zone axis points out of the screen, towards the viewer (the usual convention:
the beam travels into the screen); x is to the right and y downwards, as image pixel
coordinates. x is along the projection of the cell vector a (of b when the beam is along a).
So for SrTiO3 [001], a points right and b points up.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from ..errors import ParameterError
from .structures import StructureSpec, load_structure

__all__ = [
    "Projection",
    "project",
    "projected_cell",
    "zone_period",
    "parse_zone",
    "unimodular_basis",
    "format_zone",
    "LOW_INDEX_ZONES",
    "candidate_zones",
    "element_weights",
]

#: the low-index zone axes tried for a structure (3-index, cell basis), in order
LOW_INDEX_ZONES: tuple[tuple[int, int, int], ...] = (
    (0, 0, 1),
    (1, 0, 0),
    (0, 1, 0),
    (1, 1, 0),
    (1, -1, 0),
    (1, 0, 1),
    (1, 0, -1),
    (0, 1, 1),
    (0, 1, -1),
    (1, 1, 1),
    (1, 1, -1),
    (1, -1, 1),
    (-1, 1, 1),
    (2, 1, 0),
    (1, 2, 0),
)


def parse_zone(zone: Any) -> tuple[int, int, int]:
    """Parse a zone axis into reduced 3-index integers.

    Parameters
    ----------
    zone : sequence of 3 or 4 ints, or str
        ``(0, 0, 1)``, ``"0,0,1"``, ``"001"``, ``"[1-10]"``, ``"1 -1 0"``; four indices
        ``[uvtw]`` (hexagonal Miller–Bravais, ``u + v + t = 0``) become ``[u−t, v−t, w]``.

    Returns
    -------
    tuple of int
        ``(u, v, w)`` divided by their greatest common divisor.
    """
    if isinstance(zone, str):
        text = zone.strip().strip("[]<>()").strip()
        if re.fullmatch(r"[-+]?\d+([,\s]+[-+]?\d+){2,3}", text):
            vals = [int(t) for t in re.split(r"[,\s]+", text)]
        elif re.fullmatch(r"(-?\d){3,4}", text):
            vals = [int(t) for t in re.findall(r"-?\d", text)]
        else:
            raise ParameterError(
                f"cannot read zone axis {zone!r}: write it as 0,0,1 or [1-10] or 1,1,-2,0"
            )
    else:
        try:
            vals = [int(v) for v in zone]
            if any(float(v) != int(v) for v in zone):
                raise ValueError
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"a zone axis is 3 (or 4) integers, got {zone!r}") from exc
    if len(vals) == 4:
        u, v, t, w = vals
        if u + v + t != 0:
            raise ParameterError(f"four-index zone [uvtw] needs u + v + t = 0, got {vals}")
        vals = [u - t, v - t, w]
    if len(vals) != 3:
        raise ParameterError(f"a zone axis has 3 (or 4) indices, got {vals}")
    g = math.gcd(*vals)
    if g == 0:
        raise ParameterError("the zone axis [000] is not a direction")
    return tuple(v // g for v in vals)  # type: ignore[return-value]


def format_zone(zone: Sequence[int]) -> str:
    """``(1, -1, 0)`` -> ``'[1-10]'`` (``'[1,-1,10]'`` style when an index has two digits)."""
    z = [int(v) for v in zone]
    if all(-9 <= v <= 9 for v in z):
        return "[" + "".join(str(v) for v in z) + "]"
    return "[" + ",".join(str(v) for v in z) + "]"


def unimodular_basis(zone: Sequence[int]) -> np.ndarray:
    """An integer 3x3 matrix of determinant +1 whose third row is the (primitive) ``zone``.

    Extended Euclid on the entries: integer row operations ``U`` bring ``zone`` to ``e3``;
    then ``M = (U⁻¹)ᵀ`` has ``zone`` as third row.
    """
    v = [int(x) for x in zone]
    if math.gcd(*v) != 1:
        raise ParameterError(f"zone {v} is not primitive (divide by the gcd first)")
    u = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    while sum(1 for x in v if x != 0) > 1:
        i = min((k for k in range(3) if v[k] != 0), key=lambda k: abs(v[k]))
        for j in range(3):
            if j != i and v[j] != 0:
                q = v[j] // v[i]
                v[j] -= q * v[i]
                u[j] = [a - q * b for a, b in zip(u[j], u[i], strict=True)]
    i = next(k for k in range(3) if v[k] != 0)
    if i != 2:
        u[i], u[2] = u[2], u[i]
        v[i], v[2] = v[2], v[i]
    if v[2] < 0:
        u[2] = [-a for a in u[2]]
    U = np.array(u, dtype=np.int64)
    M = np.rint(np.linalg.inv(U).T).astype(np.int64)
    if round(np.linalg.det(M)) < 0:
        M[0] = -M[0]
    assert tuple(M[2]) == tuple(int(x) for x in zone), (M, zone)
    return M


def _gauss_reduce(p1: np.ndarray, p2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lagrange–Gauss reduction of a 2-D basis; returns (q1, q2, R) with [q1; q2] = R [p1; p2]."""
    R = np.eye(2, dtype=np.int64)
    q = [p1.astype(float), p2.astype(float)]
    for _ in range(200):
        if q[0] @ q[0] > q[1] @ q[1]:
            q.reverse()
            R = R[::-1].copy()
        m = int(round((q[0] @ q[1]) / (q[0] @ q[0])))
        if m == 0:
            break
        q[1] = q[1] - m * q[0]
        R[1] -= m * R[0]
    # canonical choice among equivalent reduced bases: q1 the shortest vector closest to +x,
    # q2 the shortest vector not parallel to q1 closest to +y, then cross(q1, q2) > 0
    base = np.vstack(q)
    ij = np.array([(i, j) for i in range(-2, 3) for j in range(-2, 3) if (i, j) != (0, 0)])
    vec = ij @ base
    length = np.linalg.norm(vec, axis=1)
    lmin = length.min()
    ang = np.arctan2(vec[:, 1], vec[:, 0])
    first = np.nonzero(length <= lmin * (1 + 1e-6))[0]
    a = first[np.argmin(np.abs(ang[first]))]
    cross = ij[:, 0] * ij[a, 1] - ij[:, 1] * ij[a, 0]
    other = np.nonzero(np.abs(cross) == 1)[0]
    l2 = length[other].min()
    second = other[length[other] <= l2 * (1 + 1e-6)]
    b = second[np.argmin(np.abs(ang[second] - np.pi / 2))]
    T = np.vstack([ij[a], ij[b]]).astype(np.int64)
    if vec[a][0] * vec[b][1] - vec[a][1] * vec[b][0] < 0:
        T[1] = -T[1]
    R = T @ R
    return T[0] @ base, T[1] @ base, R


def _fingerprint(atoms: Any) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update(np.round(np.asarray(atoms.positions, dtype=np.float64), 6).tobytes())
    h.update(np.round(np.asarray(atoms.cell[:], dtype=np.float64), 6).tobytes())
    h.update(np.asarray(atoms.pbc, dtype=bool).tobytes())
    return h.hexdigest()


class _SymmetryChecker:
    """Tests translations of a structure (fractional coordinates in cell ``cell``)."""

    def __init__(self, frac: np.ndarray, numbers: np.ndarray, cell: np.ndarray, tol: float) -> None:
        self.cell, self.tol = cell, tol
        self.groups = []
        for z in np.unique(numbers):
            ref = np.mod(frac[numbers == z], 1.0)
            ref[ref >= 1.0] = 0.0
            self.groups.append((ref, cKDTree(ref, boxsize=1.0)))

    def is_translation(self, shift: np.ndarray) -> bool:
        """Does adding ``shift`` (fractional) map every atom onto an atom of the same element
        within ``tol`` Å?"""
        for ref, tree in self.groups:
            moved = np.mod(ref + shift, 1.0)
            moved[moved >= 1.0] = 0.0
            _, idx = tree.query(moved)
            d = moved - ref[idx]
            d -= np.rint(d)
            if np.any(np.einsum("ij,ij->i", d @ self.cell, d @ self.cell) > self.tol**2):
                return False
        return True


def _true_divisor(frac: np.ndarray, numbers: np.ndarray, cell: np.ndarray, tol: float) -> int:
    """Largest m with t/m (t = third cell vector) a symmetry translation of the structure."""
    counts = np.unique(numbers, return_counts=True)[1]
    g = int(np.gcd.reduce(counts))
    cands = [n for n in range(2, 13) if g % n == 0]
    if not cands:
        return 1
    check = _SymmetryChecker(frac, numbers, cell, tol)
    passing = [n for n in cands if check.is_translation(np.array([0.0, 0.0, 1.0 / n]))]
    m = 1
    for n in passing:
        m = m * n // math.gcd(m, n)
    return m


def _merge_columns(g: np.ndarray, lattice: np.ndarray, tol: float) -> np.ndarray:
    """Cluster label for each projected atom (fractional g in the 2-D lattice), periodic."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(g)
    shifts = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=float)
    rep = (g[None, :, :] + shifts[:, None, :]).reshape(-1, 2) @ lattice
    pairs = cKDTree(rep).query_pairs(tol, output_type="ndarray") % n
    if len(pairs) == 0:
        return np.arange(n)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


@dataclass(frozen=True, eq=False)
class Projection:
    """Atom columns of a crystal seen along a zone axis (all lengths in nm).

    Attributes
    ----------
    zone : tuple of int
        Reduced 3-index zone axis in the basis of the given cell.
    period : float
        Shortest repeat of the structure along the beam (nm); the thickness unit. For 2-D
        materials (non-periodic along the beam), the layer: ``period`` is then NaN.
    lattice : ndarray, shape (2, 2)
        Rows q1, q2: the reduced projected 2-D lattice vectors in the image frame
        (x right, y down), nm.
    sites : ndarray, shape (S, 2)
        Column positions in the projected cell, image frame, nm.
    elements : tuple of str
        Element symbols, columns of ``composition``.
    composition : ndarray, shape (S, E)
        Atoms of each element per column per period along the beam.
    species : tuple of str
        Per site, the elements present, heaviest first, joined by '+' (e.g. 'Ti+O').
    sublattice : ndarray of int, shape (S,)
        Distinct column compositions, numbered brightest (by Z^1.7) first.
    frame : ndarray, shape (3, 3)
        Rows e_x, e_y, e_z (unit vectors, Cartesian frame of the structure): image x, image y
        (down) and the zone axis (towards the viewer).
    basis : ndarray of int, shape (3, 3)
        Rows: integer coordinates of b1, b2, t in the given cell basis (det +1).
    divisor : int
        ``|t| / period`` (centring translations along the beam).
    two_d : bool
        True for a 2-D material viewed along its normal.
    """

    zone: tuple[int, int, int]
    period: float
    lattice: np.ndarray
    sites: np.ndarray
    elements: tuple[str, ...]
    numbers: np.ndarray
    composition: np.ndarray
    species: tuple[str, ...]
    sublattice: np.ndarray
    frame: np.ndarray
    basis: np.ndarray
    divisor: int
    two_d: bool = False
    formula: str = ""
    tolerance: float = 0.005
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_sites(self) -> int:
        return len(self.sites)

    @property
    def cell_area(self) -> float:
        """Area of the projected cell, nm²."""
        return float(abs(np.linalg.det(self.lattice)))

    def column_weights(
        self, exponent: float = 1.7, weights: dict[str, float] | None = None
    ) -> np.ndarray:
        """Weight of each site per period: Σ atoms × (Z^exponent or ``weights[element]``)."""
        return self.composition @ element_weights(self.elements, exponent, weights)

    def summary(self) -> dict[str, Any]:
        return {
            "formula": self.formula,
            "zone": list(self.zone),
            "period_nm": None if self.two_d else self.period,
            "two_d": self.two_d,
            "lattice_nm": self.lattice.tolist(),
            "n_sites": self.n_sites,
            "sites": [
                {
                    "x_nm": float(x),
                    "y_nm": float(y),
                    "species": s,
                    "sublattice": int(k),
                    "composition": {
                        e: float(c) for e, c in zip(self.elements, row, strict=True) if c > 0
                    },
                }
                for (x, y), s, k, row in zip(
                    self.sites, self.species, self.sublattice, self.composition, strict=True
                )
            ],
        }


def element_weights(
    elements: Sequence[str], exponent: float = 1.7, weights: dict[str, float] | None = None
) -> np.ndarray:
    """Per-element scattering weight: ``weights[el]`` when given, else ``Z ** exponent``."""
    from ase.data import atomic_numbers

    weights = weights or {}
    unknown = [k for k in weights if k not in atomic_numbers]
    if unknown:
        raise ParameterError(f"weights name unknown elements: {unknown}")
    out = []
    for el in elements:
        if el in weights:
            w = float(weights[el])
            if not (math.isfinite(w) and w >= 0):
                raise ParameterError(f"weight of {el} must be ≥ 0, got {w!r}")
            out.append(w)
        else:
            out.append(float(atomic_numbers[el]) ** float(exponent))
    return np.asarray(out, dtype=np.float64)


def project(
    structure: StructureSpec,
    zone: Any = (0, 0, 1),
    *,
    max_repeat: float = 2.0,
    tolerance: float = 0.005,
) -> Projection:
    """Project a structure along a zone axis into a 2-D cell of atom columns.

    Parameters
    ----------
    structure : ase.Atoms, CIF path or built-in name
        See :func:`~atomscope.simulate.structures.load_structure`.
    zone : sequence of int or str
        Zone axis ``[uvw]`` in the basis of the structure's cell (four-index accepted).
    max_repeat : float
        Longest acceptable repeat along the beam, nm (default 2 nm). Longer repeats mean the
        atoms do not form columns; such zone axes raise :class:`ParameterError`.
    tolerance : float
        Distance (nm) within which projected atoms merge into one column and within which a
        translation must map atoms onto atoms (default 0.005 nm = 0.05 Å).

    Returns
    -------
    Projection
        Cached per (structure content, zone, max_repeat, tolerance).

    Raises
    ------
    ParameterError
        Bad zone, repeat along the beam longer than ``max_repeat``, or a 2-D material viewed
        along another direction than its normal.
    """
    atoms = load_structure(structure)
    z = parse_zone(zone)
    if not (math.isfinite(max_repeat) and max_repeat > 0):
        raise ParameterError(f"max_repeat must be a positive length in nm, got {max_repeat!r}")
    if not (math.isfinite(tolerance) and 0 < tolerance < 0.1):
        raise ParameterError(f"tolerance must be in (0, 0.1) nm, got {tolerance!r}")
    return _project_cached(
        _fingerprint(atoms), _AtomsBox(atoms), z, float(max_repeat), float(tolerance)
    )


class _AtomsBox:
    """Hashes as a constant so lru_cache keys on the fingerprint only."""

    __slots__ = ("atoms",)

    def __init__(self, atoms: Any) -> None:
        self.atoms = atoms

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _AtomsBox)


@functools.lru_cache(maxsize=4096)
def _project_cached(
    fp: str, box: _AtomsBox, zone: tuple[int, int, int], max_repeat: float, tolerance: float
) -> Projection:
    return _project(box.atoms, zone, max_repeat, tolerance)


def _basis_and_frac(
    atoms: Any, zone: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(M, B, frac): unimodular basis, new cell (Å) and wrapped fractional coordinates."""
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    M = unimodular_basis(zone)
    B = M @ cell
    frac = np.mod(atoms.positions @ np.linalg.inv(B), 1.0)
    return M, B, frac


def _zone_period(atoms: Any, zone: tuple[int, int, int], tolerance: float) -> tuple[float, int]:
    """(period nm, divisor) of a 3-D periodic structure along ``zone``."""
    M, B, frac = _basis_and_frac(atoms, zone)
    divisor = _true_divisor(frac, np.asarray(atoms.numbers, dtype=np.int64), B, tolerance * 10)
    return float(np.linalg.norm(B[2])) / divisor / 10.0, divisor


def zone_period(structure: StructureSpec, zone: Any, *, tolerance: float = 0.005) -> float:
    """Shortest repeat (nm) of a 3-D crystal along a zone axis (centring taken into account).

    Cheaper than :func:`project`; used to choose zone axes and to explain refusals.
    """
    atoms = load_structure(structure)
    if not np.asarray(atoms.pbc).all():
        raise ParameterError("zone_period needs a structure periodic in 3-D")
    return _zone_period(atoms, parse_zone(zone), tolerance)[0]


def _project(
    atoms: Any, zone: tuple[int, int, int], max_repeat: float, tolerance: float
) -> Projection:
    cell = np.asarray(atoms.cell[:], dtype=np.float64)  # Å, rows a, b, c
    pbc = np.asarray(atoms.pbc, dtype=bool)
    numbers = np.asarray(atoms.numbers, dtype=np.int64)
    tol_a = tolerance * 10.0  # Å
    formula = atoms.get_chemical_formula(mode="metal", empirical=True)

    two_d = False
    if not pbc.all():
        nonper = np.nonzero(~pbc)[0]
        if len(nonper) > 1:
            raise ParameterError(
                "the structure is periodic in fewer than two directions; the column simulator "
                "needs a crystal (3-D) or a 2-D material"
            )
        j = int(nonper[0])
        if sum(1 for v in zone if v != 0) != 1 or zone[j] == 0:
            raise ParameterError(
                f"{formula} is a 2-D material (non-periodic along cell vector {'abc'[j]}); it "
                f"can only be viewed along that normal, zone {format_zone(np.eye(3, dtype=int)[j])}"
            )
        normal = np.cross(cell[(j + 1) % 3], cell[(j + 2) % 3])
        normal /= np.linalg.norm(normal)
        if np.linalg.norm(cell[j]) < 1e-6:
            extent = np.ptp(atoms.positions @ normal) + 10.0
            cell = cell.copy()
            cell[j] = normal * extent
        M = np.roll(np.eye(3, dtype=np.int64), 2 - j, axis=0)
        if np.linalg.det(M) < 0:
            M[0] = -M[0]
        two_d = True
        B = M @ cell
        frac = np.mod(atoms.positions @ np.linalg.inv(B), 1.0)
    else:
        M, B, frac = _basis_and_frac(atoms, zone)
    if abs(np.linalg.det(B)) < 1e-9:
        raise ParameterError("degenerate cell: its vectors are linearly dependent")
    t = B[2] if not two_d else (np.sign(zone[int(np.argmax(np.abs(zone)))]) * B[2])
    t_len = float(np.linalg.norm(t))
    if two_d:
        divisor = 1
        period = float("nan")
    else:
        divisor = _true_divisor(frac, numbers, B, tol_a)
        period = t_len / divisor / 10.0  # nm
        if period > max_repeat:
            raise ParameterError(
                f"{formula} along {format_zone(zone)} repeats only every {period:.3g} nm "
                f"(limit max_repeat={max_repeat:g} nm): the atoms do not line up in columns "
                "along this direction. Choose a lower-index zone axis"
                + _suggest(atoms, max_repeat, tolerance, exclude=zone)
            )

    # image frame: e_z = zone axis (towards the viewer), e_x = projection of a (or b, c)
    e_z = t / t_len
    e_x = None
    for v in cell:
        p = v - (v @ e_z) * e_z
        if np.linalg.norm(p) > 1e-6 * np.linalg.norm(v):
            e_x = p / np.linalg.norm(p)
            break
    assert e_x is not None
    e_y = np.cross(e_x, e_z)  # x right, y down, z out of the screen
    frame = np.vstack([e_x, e_y, e_z])

    P = B[:2] @ frame[:2].T  # projected b1, b2 in the image frame (Å)
    q1, q2, R = _gauss_reduce(P[0], P[1])
    lattice = np.vstack([q1, q2])  # Å
    g = np.mod(frac[:, :2] @ np.linalg.inv(R.astype(float)), 1.0)
    labels = _merge_columns(g, lattice, tol_a)
    n_sites = int(labels.max()) + 1

    elements_z = np.unique(numbers)[::-1]  # heaviest first
    from ase.data import chemical_symbols

    elements = tuple(chemical_symbols[int(zz)] for zz in elements_z)
    el_index = {zz: i for i, zz in enumerate(elements_z.tolist())}
    comp = np.zeros((n_sites, len(elements)), dtype=np.float64)
    np.add.at(comp, (labels, np.array([el_index[int(zz)] for zz in numbers])), 1.0 / divisor)
    # site position: mean of the members, unwrapped relative to the first member of each site
    first = np.full(n_sites, -1)
    first[labels[::-1]] = np.arange(len(labels))[::-1]
    d = g - g[first[labels]]
    d -= np.rint(d)
    cnt = np.bincount(labels, minlength=n_sites)
    mean_d = (
        np.stack([np.bincount(labels, weights=d[:, k], minlength=n_sites) for k in (0, 1)], axis=1)
        / cnt[:, None]
    )
    sites = np.mod(g[first] + mean_d, 1.0)
    sites[sites > 1.0 - 1e-9] = 0.0
    sites_xy = sites @ lattice / 10.0  # nm
    species = tuple(
        "+".join(el for el, c in zip(elements, row, strict=True) if c > 1e-9) for row in comp
    )
    # sublattices: distinct compositions, brightest (Z^1.7) first
    key = np.round(comp, 6)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    bright = uniq @ (elements_z.astype(float) ** 1.7)
    order = np.argsort(-bright, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    sublattice = rank[inv.ravel()].astype(np.int64)
    return Projection(
        zone=zone,
        period=period,
        lattice=lattice / 10.0,
        sites=sites_xy,
        elements=elements,
        numbers=elements_z,
        composition=comp,
        species=species,
        sublattice=sublattice,
        frame=frame,
        basis=M,
        divisor=divisor,
        two_d=two_d,
        formula=formula,
        tolerance=tolerance,
    )


def candidate_zones(
    structure: StructureSpec,
    *,
    max_repeat: float = 2.0,
    tolerance: float = 0.005,
    zones: Sequence[Sequence[int]] = LOW_INDEX_ZONES,
) -> list[tuple[tuple[int, int, int], float]]:
    """Low-index zone axes along which ``structure`` forms columns, shortest repeat first.

    Returns
    -------
    list of (zone, period_nm)
        Zones whose repeat along the beam is at most ``max_repeat`` nm; equivalent directions
        (``[uvw]`` and ``[-u-v-w]``) appear once.
    """
    atoms = load_structure(structure)
    return _candidates(atoms, max_repeat, tolerance, tuple(tuple(z) for z in zones))


def _candidates(
    atoms: Any, max_repeat: float, tolerance: float, zones: tuple[tuple[int, ...], ...]
) -> list[tuple[tuple[int, int, int], float]]:
    out = []
    for zone in zones:
        try:
            p = project(atoms, zone, max_repeat=max_repeat, tolerance=tolerance)
        except ParameterError:
            continue
        out.append((p.zone, p.period))
    out.sort(key=lambda zp: zp[1] if math.isfinite(zp[1]) else 0.0)
    return out


def _suggest(atoms: Any, max_repeat: float, tolerance: float, exclude: tuple[int, int, int]) -> str:
    cand = []
    for z in LOW_INDEX_ZONES:
        if z == exclude:
            continue
        p = _zone_period(atoms, z, tolerance)[0]
        if p <= max_repeat:
            cand.append((p, z))
    cand.sort()
    if not cand:
        listed = ", ".join(format_zone(z) for z in LOW_INDEX_ZONES[:10])
        return (
            f"; none of the low-index axes {listed} … has a repeat below {max_repeat:g} nm "
            "either (raise max_repeat to force it)"
        )
    return " such as " + ", ".join(f"{format_zone(z)} ({p:.3g} nm)" for p, z in cand[:4])


def projected_cell(
    structure: StructureSpec,
    *,
    zone: Any = (0, 0, 1),
    max_repeat: float = 2.0,
    exponent: float = 1.7,
) -> dict[str, Any]:
    """Summary of the projected cell of a structure along a zone axis (for analyses that need
    the expected column lattice: counts, spacings).

    Parameters
    ----------
    structure : ase.Atoms, CIF path or built-in name
    zone : zone axis
    max_repeat : float
        As in :func:`project`, nm.
    exponent : float
        Z exponent for the per-site weights reported.

    Returns
    -------
    dict
        ``lattice_nm`` (2x2 rows, image frame), ``cell_area_nm2``, ``n_columns`` per cell,
        ``density_per_nm2`` (all columns), ``density_heavy_per_nm2`` (columns holding an atom
        heavier than F, Z > 9: what HAADF shows), ``nn_distance_nm`` (nearest column spacing;
        buckled planes can give very short ones), ``nn_distance_heavy_nm`` (among heavy columns),
        ``period_nm``, ``zone``, ``formula`` and ``sites`` (x_nm, y_nm, species, sublattice,
        weight per period).
    """
    p = project(structure, zone, max_repeat=max_repeat)
    area = p.cell_area
    heavy = np.array(
        [any(z > 9 for z, c in zip(p.numbers, row, strict=True) if c > 0) for row in p.composition]
    )
    # nearest distance between sites, periodic (neighbouring cells included)
    shifts = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)]) @ p.lattice
    d = p.sites[:, None, None, :] - p.sites[None, :, None, :] + shifts[None, None, :, :]
    dist = np.linalg.norm(d, axis=-1)
    dist[dist < 1e-9] = np.inf
    dh = dist[np.ix_(heavy, heavy)] if heavy.any() else dist
    w = p.column_weights(exponent)
    return {
        "formula": p.formula,
        "zone": list(p.zone),
        "period_nm": None if p.two_d else p.period,
        "lattice_nm": p.lattice.tolist(),
        "cell_area_nm2": area,
        "n_columns": p.n_sites,
        "density_per_nm2": p.n_sites / area,
        "density_heavy_per_nm2": int(heavy.sum()) / area,
        "nn_distance_nm": float(dist.min()),
        "nn_distance_heavy_nm": float(dh.min()),
        "sites": [
            {
                "x_nm": float(x),
                "y_nm": float(y),
                "species": s,
                "sublattice": int(k),
                "weight_per_period": float(wi),
                "heavy": bool(h),
            }
            for (x, y), s, k, wi, h in zip(p.sites, p.species, p.sublattice, w, heavy, strict=True)
        ],
    }
