"""Crystal structures for the simulator: built-in materials, CIF files and any ``ase.Atoms``.

Built-in structures are conventional cells (so zone-axis indices mean what a microscopist
expects: fcc [110] is the face diagonal of the cubic cell) with literature lattice constants at
room temperature. 2-D materials (MoS2 monolayer, graphene) are non-periodic along c
(``pbc = (True, True, False)``) and can only be viewed along their normal, [001].
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingFileError, ParameterError

__all__ = ["load_structure", "builtin_structures", "BUILTIN_REFERENCES", "StructureSpec"]

StructureSpec = Any  # ase.Atoms | str | os.PathLike


def _perovskite(a_el: str, b_el: str, a: float, c: float | None = None):
    from ase import Atoms

    c = a if c is None else c
    cell = np.diag([a, a, c])
    frac = [(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.0, 0.5, 0.5)]
    return Atoms([a_el, b_el, "O", "O", "O"], scaled_positions=frac, cell=cell, pbc=True)


def _ybco():
    from ase.spacegroup import crystal

    # Pmmm, YBa2Cu3O7 (orthorhombic, ~93 K superconductor), room-temperature cell
    return crystal(
        ["Y", "Ba", "Cu", "Cu", "O", "O", "O", "O"],
        basis=[
            (0.5, 0.5, 0.5),
            (0.5, 0.5, 0.1843),
            (0, 0, 0),
            (0, 0, 0.3556),
            (0, 0.5, 0),
            (0.5, 0, 0.3779),
            (0, 0.5, 0.3790),
            (0, 0, 0.1590),
        ],
        spacegroup=47,
        cellpar=[3.8227, 3.8872, 11.6802, 90, 90, 90],
    )


def _bulk(name: str, kind: str, **kw: Any):
    from ase.build import bulk

    cubic = kind in ("fcc", "diamond", "zincblende", "rocksalt", "bcc")
    return bulk(name, kind, cubic=cubic, **kw)


def _layer(
    symbols: list[str],
    frac_xy: list[tuple[float, float]],
    z: list[float],
    a: float,
    vacuum: float = 10.0,
):
    """A hexagonal monolayer, non-periodic along c (cell c = layer extent + vacuum)."""
    from ase import Atoms

    zz = np.asarray(z, dtype=float)
    c = float(zz.max() - zz.min()) + vacuum
    cell = np.array([[a, 0, 0], [-a / 2, a * math.sqrt(3) / 2, 0], [0, 0, c]])
    pos = np.array([fx * cell[0] + fy * cell[1] for fx, fy in frac_xy])
    pos[:, 2] = zz - zz.min() + vacuum / 2
    return Atoms(symbols, positions=pos, cell=cell, pbc=(True, True, False))


#: name -> (builder, reference for the lattice constants)
_BUILTINS: dict[str, tuple[Callable[[], Any], str]] = {
    "SrTiO3": (lambda: _perovskite("Sr", "Ti", 3.905), "cubic Pm-3m, a = 3.905 Å"),
    "BaTiO3": (
        lambda: _perovskite("Ba", "Ti", 3.9925, 4.0365),
        "tetragonal P4mm, a = 3.9925, c = 4.0365 Å (polar displacements < 0.1 Å omitted)",
    ),
    "YBa2Cu3O7": (_ybco, "orthorhombic Pmmm, a = 3.8227, b = 3.8872, c = 11.6802 Å"),
    "Si": (lambda: _bulk("Si", "diamond", a=5.431), "diamond, a = 5.431 Å"),
    "GaAs": (lambda: _bulk("GaAs", "zincblende", a=5.6533), "zinc blende, a = 5.6533 Å"),
    "CdTe": (lambda: _bulk("CdTe", "zincblende", a=6.481), "zinc blende, a = 6.481 Å"),
    "Au": (lambda: _bulk("Au", "fcc", a=4.0782), "fcc, a = 4.0782 Å"),
    "Pt": (lambda: _bulk("Pt", "fcc", a=3.9242), "fcc, a = 3.9242 Å"),
    "Cu": (lambda: _bulk("Cu", "fcc", a=3.6149), "fcc, a = 3.6149 Å"),
    "Ni": (lambda: _bulk("Ni", "fcc", a=3.5240), "fcc, a = 3.5240 Å"),
    "ZnO": (
        lambda: _bulk("ZnO", "wurtzite", a=3.2495, c=5.2069, u=0.382),
        "wurtzite P6_3mc, a = 3.2495, c = 5.2069 Å, u = 0.382",
    ),
    "MoS2": (
        lambda: _layer(
            ["Mo", "S", "S"],
            [(0, 0), (1 / 3, 2 / 3), (1 / 3, 2 / 3)],
            [0.0, 1.586, -1.586],
            a=3.160,
        ),
        "2H-MoS2 monolayer, a = 3.160 Å, S–S height 3.172 Å",
    ),
    "graphene": (
        lambda: _layer(["C", "C"], [(0, 0), (1 / 3, 2 / 3)], [0.0, 0.0], a=2.46),
        "graphene, a = 2.46 Å",
    ),
}

_ALIASES: dict[str, str] = {
    "sto": "SrTiO3",
    "srtio3": "SrTiO3",
    "bto": "BaTiO3",
    "batio3": "BaTiO3",
    "ybco": "YBa2Cu3O7",
    "yba2cu3o7": "YBa2Cu3O7",
    "yba2cu3o7-x": "YBa2Cu3O7",
    "si": "Si",
    "silicon": "Si",
    "gaas": "GaAs",
    "cdte": "CdTe",
    "au": "Au",
    "gold": "Au",
    "pt": "Pt",
    "platinum": "Pt",
    "cu": "Cu",
    "copper": "Cu",
    "ni": "Ni",
    "nickel": "Ni",
    "zno": "ZnO",
    "wurtzite zno": "ZnO",
    "zno-wurtzite": "ZnO",
    "mos2": "MoS2",
    "mos2 monolayer": "MoS2",
    "mos2-monolayer": "MoS2",
    "graphene": "graphene",
}

BUILTIN_REFERENCES: dict[str, str] = {k: v[1] for k, v in _BUILTINS.items()}


def builtin_structures() -> list[str]:
    """Names of the built-in structures (case-insensitive aliases such as 'STO', 'YBCO' work)."""
    return list(_BUILTINS)


@functools.lru_cache(maxsize=32)
def _builtin(name: str):
    return _BUILTINS[name][0]()


@functools.lru_cache(maxsize=4096)
def _read_file(path: str, mtime_ns: int, size: int):
    import ase.io

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fmt = "cif" if path.lower().endswith(".cif") else None
        try:
            atoms = ase.io.read(path, format=fmt)
        except Exception as exc:  # noqa: BLE001 - ASE raises many types for bad files
            raise ParameterError(
                f"ASE could not read a structure from {path}: {type(exc).__name__}: {exc}"
            ) from exc
    if isinstance(atoms, list):  # pragma: no cover - ase.io.read returns the last image
        atoms = atoms[-1]
    if len(atoms) == 0:
        raise ParameterError(f"{path} holds no atoms")
    return atoms


def load_structure(spec: StructureSpec):
    """Turn a structure specification into an ``ase.Atoms``.

    Parameters
    ----------
    spec : ase.Atoms, str or path
        An ``ase.Atoms`` (returned as is), a path to a CIF (or any file ASE reads), or the name
        of a built-in structure (see :func:`builtin_structures`; case-insensitive).

    Returns
    -------
    ase.Atoms
        The structure; Cartesian positions and cell in Å (ASE units). Files are parsed once
        and cached (keyed by path, modification time and size); treat the result as read-only.

    Raises
    ------
    ParameterError
        Unknown name, or a file ASE cannot read.
    MissingFileError
        A path-like spec that does not exist and is not a built-in name.
    """
    from ase import Atoms

    if isinstance(spec, Atoms):
        if len(spec) == 0:
            raise ParameterError("the structure holds no atoms")
        return spec
    if isinstance(spec, str | os.PathLike):
        text = os.fspath(spec)
        key = text.strip().lower()
        if key in _ALIASES or text in _BUILTINS:
            return _builtin(_ALIASES.get(key, text))
        path = Path(text)
        if path.is_file():
            st = path.stat()
            return _read_file(str(path.resolve()), st.st_mtime_ns, st.st_size)
        if path.suffix or os.sep in text:
            raise MissingFileError(f"structure file not found: {text}")
        raise ParameterError(
            f"unknown structure {text!r}: give a CIF path, an ase.Atoms, or one of "
            + ", ".join(builtin_structures())
        )
    raise ParameterError(
        f"a structure must be an ase.Atoms, a CIF path or a built-in name, got "
        f"{type(spec).__name__}"
    )
