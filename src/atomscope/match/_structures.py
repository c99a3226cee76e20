"""Where library structures come from: built-ins, ASE elemental crystals, CIF folders; their
structure-type labels; and the symmetry-distinct low-index zone axes of each.

Zone axes related by a rotation of the crystal's point group give the same projection (up to an
in-plane rotation or a mirror, which the matcher fits), so only one of each orbit is kept. CIF
files carry their space-group operations (ASE reads them); for built-ins and ASE crystals the
point group is found by brute force over integer matrices that preserve the cell metric.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingFileError, ParameterError

__all__ = [
    "Source",
    "builtin_sources",
    "ase_element_sources",
    "cif_sources",
    "load_source",
    "distinct_zones",
    "STRUKTURBERICHT_TYPES",
    "ASE_ELEMENTS",
]

#: Strukturbericht designation -> common structure-type name
STRUKTURBERICHT_TYPES: dict[str, str] = {
    "A1": "fcc",
    "A2": "bcc",
    "A3": "hcp",
    "A4": "diamond",
    "A_h": "simple cubic",
    "A5": "beta-Sn",
    "A6": "In (bct)",
    "A7": "alpha-As",
    "A9": "graphite",
    "B1": "rocksalt",
    "B2": "CsCl",
    "B3": "zincblende",
    "B4": "wurtzite",
    "B8_1": "NiAs",
    "C1": "fluorite",
    "C3": "cuprite",
    "C4": "rutile",
    "C6": "CdI2",
    "C7": "MoS2",
    "C15": "Laves C15",
    "C14": "Laves C14",
    "D0_3": "BiF3",
    "E2_1": "perovskite",
    "H1_1": "spinel",
    "L1_0": "L1_0 (CuAu)",
    "L1_2": "L1_2 (Cu3Au)",
    "L2_1": "Heusler",
}

_BUILTIN_TYPES: dict[str, str] = {
    "SrTiO3": "perovskite",
    "BaTiO3": "perovskite",
    "YBa2Cu3O7": "layered perovskite (YBCO)",
    "Si": "diamond",
    "GaAs": "zincblende",
    "CdTe": "zincblende",
    "Au": "fcc",
    "Pt": "fcc",
    "Cu": "fcc",
    "Ni": "fcc",
    "ZnO": "wurtzite",
    "MoS2": "MoS2 monolayer",
    "graphene": "graphene",
}

#: elements whose ASE reference crystal is included by default (common solids: no noble gases,
#: no radioactive elements, no molecular crystals)
ASE_ELEMENTS: tuple[str, ...] = (
    "Li",
    "Be",
    "C",
    "Na",
    "Mg",
    "Al",
    "Si",
    "K",
    "Ca",
    "Sc",
    "Ti",
    "V",
    "Cr",
    "Fe",
    "Co",
    "Ni",
    "Cu",
    "Zn",
    "Ge",
    "As",
    "Rb",
    "Sr",
    "Y",
    "Zr",
    "Nb",
    "Mo",
    "Ru",
    "Rh",
    "Pd",
    "Ag",
    "Cd",
    "In",
    "Sn",
    "Sb",
    "Cs",
    "Ba",
    "La",
    "Ce",
    "Pr",
    "Nd",
    "Sm",
    "Eu",
    "Gd",
    "Tb",
    "Dy",
    "Ho",
    "Er",
    "Tm",
    "Yb",
    "Lu",
    "Hf",
    "Ta",
    "W",
    "Re",
    "Os",
    "Ir",
    "Pt",
    "Au",
    "Tl",
    "Pb",
    "Bi",
)

_ASE_TYPES = {
    "fcc": "fcc",
    "bcc": "bcc",
    "hcp": "hcp",
    "diamond": "diamond",
    "sc": "simple cubic",
    "bct": "bct",
    "rhombohedral": "rhombohedral",
}


@dataclass(frozen=True)
class Source:
    """One structure to put in the library.

    ``key`` is unique and stable (``builtin:SrTiO3``, ``ase:Fe``, ``cif:AB_cF8_216_c_a.cif``);
    it is how a resumed build recognises what is already in the file.
    """

    key: str
    kind: str  # builtin | ase | cif | atoms
    spec: Any  # name, path or ase.Atoms


def builtin_sources() -> list[Source]:
    from ..simulate import builtin_structures

    return [Source(f"builtin:{n}", "builtin", n) for n in builtin_structures()]


def ase_element_sources(elements: Any = True) -> list[Source]:
    """ASE reference crystals (``ase.build.bulk(symbol)``) of ``elements`` (True: the default
    list :data:`ASE_ELEMENTS`)."""
    if elements is True:
        elements = ASE_ELEMENTS
    elif not elements:
        return []
    from ase.data import atomic_numbers, reference_states

    out = []
    for el in elements:
        if el not in atomic_numbers:
            raise ParameterError(f"unknown element {el!r} in ase_elements")
        rs = reference_states[atomic_numbers[el]]
        if rs is None or rs.get("symmetry") not in _ASE_TYPES:
            continue
        out.append(Source(f"ase:{el}", "ase", el))
    return out


def cif_sources(cif_dir: Any = None, cifs: Any = None) -> list[Source]:
    """Every ``*.cif`` of a folder (sorted by name) plus explicitly listed files."""
    paths: list[Path] = []
    if cif_dir is not None:
        d = Path(cif_dir)
        if not d.is_dir():
            raise MissingFileError(f"CIF folder not found: {d}")
        paths.extend(sorted(d.glob("*.cif")))
        if not paths:
            raise ParameterError(f"no *.cif files in {d}")
    for p in cifs or ():
        p = Path(p)
        if not p.is_file():
            raise MissingFileError(f"CIF file not found: {p}")
        paths.append(p)
    seen: set[str] = set()
    out = []
    for p in paths:
        key = f"cif:{p.name}"
        if key in seen:  # same file name twice: key on the full path instead
            key = f"cif:{p.resolve()}"
        seen.add(key)
        out.append(Source(key, "cif", str(p.resolve())))
    return out


_TAG = re.compile(
    r"^\s*(_aflow_proto|_aflow_Strukturbericht|_chemical_name_mineral)\s+(.*)$", re.MULTILINE
)


def _cif_tags(path: str) -> dict[str, str]:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return {}
    out = {}
    for key, value in _TAG.findall(text):
        v = value.strip().strip("'\"").strip()
        if v and v.lower() != "none":
            out[key] = v
    return out


def _cif_type(tags: dict[str, str], label: str) -> str:
    sb = tags.get("_aflow_Strukturbericht")
    if sb and sb in STRUKTURBERICHT_TYPES:
        return STRUKTURBERICHT_TYPES[sb]
    mineral = tags.get("_chemical_name_mineral", "")
    if "perovskite" in mineral.lower() and "post" not in mineral.lower():
        return "perovskite"
    return sb or label


def load_source(src: Source) -> tuple[Any, dict[str, Any]]:
    """(ase.Atoms, info) for a source; info has name, structure_type, prototype, source."""
    from ..simulate import load_structure

    if src.kind == "builtin":
        atoms = load_structure(src.spec)
        info = {
            "name": src.spec,
            "structure_type": _BUILTIN_TYPES.get(src.spec, src.spec),
            "prototype": "",
            "source": src.key,
        }
    elif src.kind == "ase":
        from ase.build import bulk
        from ase.data import atomic_numbers, reference_states

        sym = reference_states[atomic_numbers[src.spec]]["symmetry"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atoms = bulk(src.spec, cubic=sym in ("fcc", "bcc", "diamond", "sc"))
        info = {
            "name": f"{src.spec} ({sym})",
            "structure_type": _ASE_TYPES.get(sym, sym),
            "prototype": "",
            "source": src.key,
        }
    elif src.kind == "cif":
        atoms = load_structure(src.spec)
        label = Path(src.spec).stem
        tags = _cif_tags(src.spec)
        info = {
            "name": label,
            "structure_type": _cif_type(tags, label),
            "prototype": tags.get("_aflow_proto", ""),
            "mineral": tags.get("_chemical_name_mineral", ""),
            "source": src.key,
            "path": str(src.spec),
        }
    elif src.kind == "atoms":
        atoms = load_structure(src.spec)
        formula = atoms.get_chemical_formula(mode="metal", empirical=True)
        name = src.key.split(":", 1)[1] if ":" in src.key else formula
        info = {"name": name, "structure_type": name, "prototype": "", "source": src.key}
    else:  # pragma: no cover - internal
        raise ParameterError(f"unknown source kind {src.kind!r}")
    sg = atoms.info.get("spacegroup")
    if sg is not None:
        info["spacegroup"] = int(getattr(sg, "no", 0) or 0)
    return atoms, info


# -- symmetry -------------------------------------------------------------------------------

_CANDIDATE_MATS: np.ndarray | None = None


def _candidate_matrices() -> np.ndarray:
    global _CANDIDATE_MATS
    if _CANDIDATE_MATS is None:
        m = np.array(list(itertools.product((-1, 0, 1), repeat=9)), dtype=np.int64)
        m = m.reshape(-1, 3, 3)
        det = np.rint(np.linalg.det(m)).astype(int)
        _CANDIDATE_MATS = m[np.abs(det) == 1]
    return _CANDIDATE_MATS


def _point_group(atoms: Any, tol: float = 0.02) -> list[np.ndarray]:
    """Rotations (integer, acting on fractional column vectors) that map the crystal onto
    itself with some translation; brute force over metric-preserving {-1, 0, 1} matrices."""
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    G = cell @ cell.T
    mats = _candidate_matrices()
    GR = np.einsum("nji,jk,nkl->nil", mats, G, mats)
    ok = np.all(np.abs(GR - G) <= 1e-3 * max(np.abs(G).max(), 1.0), axis=(1, 2))
    frac = np.mod(atoms.get_scaled_positions(wrap=True), 1.0)
    numbers = np.asarray(atoms.numbers)
    out = []
    first = int(np.argmin(np.bincount(numbers)[numbers]))  # an atom of the rarest species
    same = np.nonzero(numbers == numbers[first])[0]
    for R in mats[ok]:
        rf = frac @ R.T
        for j in same:
            t = frac[j] - rf[first]
            moved = rf + t
            d = moved[:, None, :] - frac[None, :, :]
            d -= np.rint(d)
            dist = np.linalg.norm(d @ cell, axis=-1)
            dist[numbers[:, None] != numbers[None, :]] = np.inf
            if np.all(dist.min(axis=1) < tol * 10):
                out.append(R)
                break
    return out or [np.eye(3, dtype=np.int64)]


def _rotations(atoms: Any) -> list[np.ndarray]:
    sg = atoms.info.get("spacegroup")
    if sg is not None:
        try:
            return [np.rint(r).astype(np.int64) for r in sg.rotations]
        except Exception:  # noqa: BLE001 - fall back to the brute force
            pass
    if len(atoms) > 64:
        return [np.eye(3, dtype=np.int64)]
    return _point_group(atoms)


def distinct_zones(
    atoms: Any, zones: Any, max_repeat: float
) -> list[tuple[tuple[int, int, int], list[str]]]:
    """Symmetry-distinct zones of ``zones`` (in order) whose repeat is at most ``max_repeat``.

    Returns
    -------
    list of (zone, equivalent zone labels)
        The first zone of each orbit under the point group (and ``[uvw] ~ [-u-v-w]``), with the
        labels of the other listed zones it stands for.
    """
    from ..simulate.projection import format_zone, parse_zone

    rots = _rotations(atoms)
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    periodic = bool(np.asarray(atoms.pbc).all())
    out: list[tuple[tuple[int, int, int], list[str]]] = []
    assigned: dict[tuple[int, ...], int] = {}
    for z in zones:
        z = parse_zone(z)
        if z in assigned:
            k = assigned[z]
            if k >= 0:
                out[k][1].append(format_zone(z))
            continue
        orbit = set()
        for R in rots:
            v = tuple(int(x) for x in R @ np.asarray(z))
            g = math.gcd(*v) or 1
            v = tuple(x // g for x in v)
            orbit.add(v)
            orbit.add(tuple(-x for x in v))
        if periodic:
            length = float(np.linalg.norm(np.asarray(z) @ cell)) / 10.0
            if length / 12.0 > max_repeat:  # cannot reach the limit even with centring
                for v in orbit:
                    assigned.setdefault(v, -1)
                continue
        for v in orbit:
            assigned.setdefault(v, len(out))
        out.append((z, [format_zone(z)]))
    return out
