"""The structure library: (structure, zone axis) entries rendered at one pixel scale.

Each entry holds

* a **motif image**: a ``size × size`` patch (default 96² at 0.025 nm/px, a 2.4 nm field) of
  the projected crystal, rendered by the convolution simulator
  (:func:`atomscope.simulate.render.render_columns`) with the library probe, the lattice origin
  at the patch centre, x along the projection of the cell vector a; zero mean, unit variance;
* its **columns**: every projected column within the patch's circumscribed disk (px in the
  patch frame, weight Σ Z^1.7 per period), and the *visible* columns used by the earth mover's
  distance (columns closer than ``merge_distance`` merged, those weaker than
  ``min_relative_weight`` of the brightest dropped);
* its **Bragg peaks**: reciprocal-lattice vectors g (1/nm, image frame) with amplitude
  ``|Σ_j w_j exp(−2πi g·r_j)| · OTF(|g|) / Σ_j w_j`` — the rotation/scale descriptor is
  rendered from them in log-polar coordinates at load time;
* metadata: name, formula, structure type, AFLOW prototype, source, zone axis, the zones it
  stands for, repeat along the beam, projected lattice.

All of it lives in one HDF5 file. Building is chunked and resumable: sources (structures)
already committed to the file are skipped, and an interrupted build leaves a consistent file
(the entry count is written after each chunk's data; on reopening, datasets are cut back to
it).
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._progress import progress_bar
from ..errors import AtomscopeError, CorruptFileError, MissingFileError, ParameterError
from ._structures import (
    Source,
    ase_element_sources,
    builtin_sources,
    cif_sources,
    distinct_zones,
    load_source,
)

__all__ = [
    "Library",
    "LibrarySettings",
    "FILE_FORMAT",
    "equivalent_entries",
    "merge_columns",
    "bragg_peaks",
    "primitive_lattice",
]

FILE_FORMAT = "atomscope-structure-library"
FILE_VERSION = 1


@dataclass(frozen=True)
class LibrarySettings:
    """How library entries are rendered and described (stored in the file).

    Parameters
    ----------
    pixel_size : float
        Common pixel scale of the motif images, nm/px (0.025).
    size : int
        Motif image side, px (96: a 2.4 nm field).
    voltage, convergence, source_size : float
        Library probe: V, rad, nm FWHM of the Gaussian source (300 kV, 25 mrad, 0.08 nm: a
        probe FWHM of 0.09 nm).
    smoothing : float
        Gaussian σ (nm) applied to every query before comparison; folded into the library
        probe (a Gaussian source of σ² = σ_source² + smoothing²), so both sides carry the same
        blur (0.03 nm).
    exponent : float
        Column weight per atom Z^exponent (1.7). Real columns in thick crystals often show
        compressed ratios (SrTiO3 [001] frames: Ti–O at ~0.6 of Sr, which Z^1.3 gives and
        Z^1.7 puts at 0.47); a library built at 1.3 ranks such images better, while 1.7 is
        the more robust choice when the contrast is unknown (``docs/match.md``).
    max_repeat : float
        Longest repeat along the beam, nm, for a zone axis to enter the library (1.0).
    zones : tuple of (u, v, w)
        Zone axes tried for each structure (default the simulator's 15 low-index zones);
        symmetry-equivalent ones are kept once.
    min_relative_weight : float
        Columns fainter than this fraction of the brightest are not "visible" for the EMD.
    merge_distance : float
        Visible columns closer than this (nm) merge into one (the probe cannot separate them).
    n_phi, n_rho, k_min, k_max : int, int, float, float
        Log-polar grid of the rotation/scale descriptor: angle bins over 180°, log-radius
        bins over ``[k_min, k_max]`` 1/nm.
    peak_floor : float
        Bragg peaks weaker than this fraction of the strongest are dropped.
    max_peaks : int
        At most this many Bragg peaks per entry (strongest first).
    """

    pixel_size: float = 0.025
    size: int = 96
    voltage: float = 300e3
    convergence: float = 25e-3
    source_size: float = 0.08
    smoothing: float = 0.03
    exponent: float = 1.7
    max_repeat: float = 1.0
    zones: tuple[tuple[int, int, int], ...] | None = None
    min_relative_weight: float = 0.15
    merge_distance: float = 0.08
    n_phi: int = 90
    n_rho: int = 64
    k_min: float = 0.4
    k_max: float = 12.0
    peak_floor: float = 0.01
    max_peaks: int = 120

    def __post_init__(self) -> None:
        if not (0.005 <= self.pixel_size <= 0.2):
            raise ParameterError(f"library pixel_size must be 0.005–0.2 nm, got {self.pixel_size}")
        if not (32 <= self.size <= 512) or self.size % 2:
            raise ParameterError(f"library size must be an even number 32–512, got {self.size}")
        if not (self.max_repeat > 0):
            raise ParameterError(f"max_repeat must be > 0 nm, got {self.max_repeat}")
        if not (0 < self.k_min < self.k_max):
            raise ParameterError("need 0 < k_min < k_max")
        if not (0.5 <= self.exponent <= 2.5):
            raise ParameterError(f"exponent {self.exponent:g} is outside 0.5–2.5")

    @property
    def zone_list(self) -> tuple[tuple[int, int, int], ...]:
        from ..simulate import LOW_INDEX_ZONES

        return tuple(self.zones) if self.zones else LOW_INDEX_ZONES

    @property
    def effective_source_size(self) -> float:
        """Source FWHM (nm) that folds the query smoothing into the library probe."""
        from ..simulate.probe import FWHM_PER_SIGMA

        s = self.source_size / FWHM_PER_SIGMA
        return math.sqrt(s * s + self.smoothing**2) * FWHM_PER_SIGMA

    def probe(self):
        """The probe the motif images are rendered with (smoothing included)."""
        from ..simulate import Probe

        return Probe(
            voltage=self.voltage,
            convergence=self.convergence,
            source_size=self.effective_source_size,
        )

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["zones"] = [list(z) for z in self.zone_list]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LibrarySettings:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if kw.get("zones") is not None:
            kw["zones"] = tuple(tuple(int(x) for x in z) for z in kw["zones"])
        return cls(**kw)


# -- one entry ------------------------------------------------------------------------------


def _lattice_points(
    lattice_px: np.ndarray, sites_px: np.ndarray, center: np.ndarray, half: float
) -> tuple[np.ndarray, np.ndarray]:
    """Column positions (px) of a tiled projected cell within a square of half-side ``half``
    around ``center`` (lattice origin at ``center``); also the site index of each."""
    corners = np.array([[-half, -half], [half, -half], [-half, half], [half, half]])
    frac = corners @ np.linalg.inv(lattice_px)
    lo = np.floor(frac.min(axis=0)).astype(int) - 1
    hi = np.ceil(frac.max(axis=0)).astype(int) + 1
    ii, jj = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    cells = np.stack([ii.ravel(), jj.ravel()], axis=1) @ lattice_px
    pos = (cells[:, None, :] + sites_px[None, :, :]).reshape(-1, 2)
    site = np.tile(np.arange(len(sites_px)), len(cells))
    keep = np.all(np.abs(pos) <= half, axis=1)
    return pos[keep] + center, site[keep]


def merge_columns(xy: np.ndarray, w: np.ndarray, distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge points closer than ``distance`` (connected components) into their weighted
    centroid with the summed weight."""
    if len(xy) < 2 or distance <= 0:
        return xy, w
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pairs = cKDTree(xy).query_pairs(distance, output_type="ndarray")
    if len(pairs) == 0:
        return xy, w
    n = len(xy)
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    k, lab = connected_components(g, directed=False)
    ws = np.bincount(lab, weights=w, minlength=k)
    x = np.bincount(lab, weights=w * xy[:, 0], minlength=k) / np.maximum(ws, 1e-30)
    y = np.bincount(lab, weights=w * xy[:, 1], minlength=k) / np.maximum(ws, 1e-30)
    return np.stack([x, y], axis=1), ws


def bragg_peaks(
    lattice_nm: np.ndarray,
    sites_nm: np.ndarray,
    weights: np.ndarray,
    probe: Any,
    k_min: float,
    k_max: float,
    floor: float,
    max_peaks: int,
) -> np.ndarray:
    """(n, 3) array of (gx, gy) in 1/nm (image frame, one of each Friedel pair) and the
    relative amplitude ``|F(g)| OTF(|g|) / Σw`` of the Bragg peaks of a projected crystal."""
    recip = np.linalg.inv(lattice_nm).T  # rows a*, b*: a·a* = 1
    lengths = np.linalg.norm(lattice_nm, axis=1)
    hmax = int(math.ceil(k_max * lengths.max() * 1.2)) + 1
    h, k = np.meshgrid(np.arange(-hmax, hmax + 1), np.arange(0, hmax + 1), indexing="ij")
    h, k = h.ravel(), k.ravel()
    half = (k > 0) | ((k == 0) & (h > 0))
    hk = np.stack([h[half], k[half]], axis=1).astype(np.float64)
    g = hk @ recip
    gl = np.hypot(g[:, 0], g[:, 1])
    sel = (gl >= k_min * 0.97) & (gl <= k_max)
    g, gl, hk = g[sel], gl[sel], hk[sel]
    if len(g) == 0:
        return np.zeros((0, 3), np.float32)
    frac = sites_nm @ np.linalg.inv(lattice_nm)  # fractional site coordinates
    # F(h, k) = Σ_j w_j e^{-2πi h x_j} e^{-2πi k y_j}: one complex matrix product
    hv = np.arange(-hmax, hmax + 1)
    kv = np.arange(0, hmax + 1)
    eh = np.exp(-2j * np.pi * np.outer(hv, frac[:, 0])) * weights[None, :]
    ek = np.exp(-2j * np.pi * np.outer(kv, frac[:, 1]))
    Fhk = eh @ ek.T  # (len(hv), len(kv))
    hi = hk[:, 0].astype(np.int64) + hmax
    ki = hk[:, 1].astype(np.int64)
    F = np.abs(Fhk[hi, ki]) / max(float(weights.sum()), 1e-30)
    amp = F * probe.otf(gl)
    top = amp.max() if len(amp) else 0.0
    if top <= 0:
        return np.zeros((0, 3), np.float32)
    keep = amp >= floor * top
    g, amp = g[keep], amp[keep]
    order = np.argsort(-amp, kind="stable")[:max_peaks]
    return np.column_stack([g[order], amp[order]]).astype(np.float32)


def primitive_lattice(
    lattice_nm: np.ndarray, sites_nm: np.ndarray, keys: Sequence[Any], tol: float = 0.005
) -> tuple[np.ndarray, int]:
    """The primitive 2-D lattice of a projected column pattern (translations mapping every
    column onto a column of the same composition), reduced; and the number of such
    translations per projected cell (the cell's multiplicity)."""
    from scipy.spatial import cKDTree

    from ..atoms.lattice import reduce_basis

    L = np.asarray(lattice_nm, dtype=np.float64)
    frac = np.mod(np.asarray(sites_nm, dtype=np.float64) @ np.linalg.inv(L), 1.0)
    frac[frac >= 1.0] = 0.0
    keys = np.asarray([str(k) for k in keys])
    groups = []
    for k in np.unique(keys):
        ref = frac[keys == k]
        groups.append((ref, cKDTree(ref, boxsize=1.0)))

    def is_translation(t: np.ndarray) -> bool:
        for ref, tree in groups:
            moved = np.mod(ref + t, 1.0)
            moved[moved >= 1.0] = 0.0
            _, idx = tree.query(moved)
            d = moved - ref[idx]
            d -= np.rint(d)
            if np.any(np.hypot(*(d @ L).T) > tol):
                return False
        return True

    uk, cnt = np.unique(keys, return_counts=True)
    rare = uk[np.argmin(cnt)]  # candidate translations: from one site of the rarest kind
    same = np.nonzero(keys == rare)[0]
    trans = [np.zeros(2)]
    for j in same[1:]:
        t = frac[j] - frac[same[0]]
        if is_translation(t):
            trans.append(np.mod(t, 1.0))
    if len(trans) == 1:
        return reduce_basis(L), 1
    T = np.array(trans)
    n = np.arange(-2, 3)
    grid = np.stack(np.meshgrid(n, n, indexing="ij"), -1).reshape(-1, 2)
    pts = (grid[:, None, :] + T[None, :, :]).reshape(-1, 2) @ L
    r = np.hypot(pts[:, 0], pts[:, 1])
    pts, r = pts[r > 1e-6], r[r > 1e-6]
    order = np.argsort(r, kind="stable")
    pts = pts[order]
    v1 = pts[0]
    area = abs(np.linalg.det(L)) / len(T)
    for v in pts[1:]:
        cross = abs(v1[0] * v[1] - v1[1] * v[0])
        if cross > 1e-6 and abs(cross - area) < 1e-3 * area:
            return reduce_basis(np.stack([v1, v])), len(T)
    return reduce_basis(L), 1  # pragma: no cover - numerical corner case


def _fingerprint(prim: np.ndarray, sites_nm: np.ndarray, w: np.ndarray) -> dict[str, Any]:
    """A rotation/mirror-invariant description of a projected pattern (for de-duplication):
    the primitive lattice, the sorted relative column weights, and each column's distances to
    its six nearest neighbours."""
    from scipy.spatial import cKDTree

    la, lb = np.linalg.norm(prim, axis=1)
    ang = math.degrees(math.acos(np.clip(abs(prim[0] @ prim[1]) / (la * lb), 0, 1)))
    wr = w / max(w.max(), 1e-30)
    # the sites of one primitive cell
    f = np.mod(sites_nm @ np.linalg.inv(prim) + 1e-6, 1.0)
    _, first = np.unique(np.round(f * 1000).astype(np.int64) % 1000, axis=0, return_index=True)
    sites_nm = np.mod(f[first], 1.0) @ prim
    wr = wr[first]
    # neighbours in a 5x5 block of primitive cells around the sites
    n = np.arange(-2, 3)
    shifts = np.stack(np.meshgrid(n, n, indexing="ij"), -1).reshape(-1, 2) @ prim
    pts = (sites_nm[None, :, :] + shifts[:, None, :]).reshape(-1, 2)
    pw = np.tile(wr, len(shifts))
    k = min(7, len(pts))
    d, j = cKDTree(pts).query(sites_nm, k=k)
    nb = np.concatenate([d[:, 1:, None], pw[j[:, 1:]][:, :, None]], axis=2)
    rows = sorted(
        (round(float(wr[i]), 2), *np.round(nb[i, :, 0], 4).tolist()) for i in range(len(sites_nm))
    )
    return {"a": float(la), "b": float(lb), "angle": float(ang), "rows": rows}


def _same_fingerprint(
    f1: dict[str, Any], f2: dict[str, Any], rel: float = 0.01, weight_tol: float = 0.03
) -> bool:
    """Same projected pattern up to rotation/mirror, with lattice lengths within ``rel``
    (relative) of each other, the cell shape within 1 % / 0.5°, and relative column weights
    within ``weight_tol``."""
    if abs(f1["a"] / f2["a"] - 1) > rel or abs(f1["b"] / f2["b"] - 1) > rel:
        return False
    if abs((f1["b"] / f1["a"]) / (f2["b"] / f2["a"]) - 1) > 0.01:
        return False
    if abs(f1["angle"] - f2["angle"]) > 0.5:
        return False
    r1, r2 = np.asarray(f1["rows"]), np.asarray(f2["rows"])
    # compare per primitive cell: the row multisets repeat with the cell multiplicity
    u1 = np.unique(r1.round(2), axis=0)
    u2 = np.unique(r2.round(2), axis=0)
    if u1.shape != u2.shape:
        return False
    scale = f1["a"] / f2["a"]
    return bool(
        np.allclose(u1[:, 0], u2[:, 0], atol=weight_tol + 0.005)
        and np.allclose(u1[:, 1:], u2[:, 1:] * scale, atol=0.011)
    )


def equivalent_entries(
    library: Library, index: int, *, scale_tolerance: float = 0.06, weight_tolerance: float = 0.05
) -> np.ndarray:
    """Entries whose projected column pattern equals entry ``index``'s up to a rotation, a
    mirror, a scale change within ``scale_tolerance`` and relative column weights within
    ``weight_tolerance`` (after normalisation to the brightest column): images that no
    calibrated-within-tolerance matcher can tell apart. Includes ``index`` itself."""
    f0 = library.meta[int(index)].get("fingerprint")
    if f0 is None:
        return np.array([int(index)])
    out = [int(index)]
    a0 = f0["a"]
    for j, m in enumerate(library.meta):
        if j == index:
            continue
        f = m.get("fingerprint")
        if f is None or abs(f["a"] / a0 - 1) > scale_tolerance:
            continue
        if _same_fingerprint(f0, f, rel=scale_tolerance, weight_tol=weight_tolerance):
            out.append(j)
    return np.array(out)


def make_entry(proj: Any, settings: LibrarySettings, probe: Any) -> dict[str, Any]:
    """Render one projection into a library entry (image, columns, peaks, fingerprint)."""
    from ..simulate.render import canvas_geometry, render_columns

    s = settings.size
    ps = settings.pixel_size
    center = np.array([(s - 1) / 2.0, (s - 1) / 2.0])
    lat_px = proj.lattice / ps
    sites_px = proj.sites / ps
    w_site = proj.column_weights(settings.exponent)
    _, _, tile_margin = canvas_geometry((s, s), probe, ps)
    xy, site = _lattice_points(lat_px, sites_px, center, s / 2.0 + tile_margin)
    w = w_site[site]
    img = render_columns(xy, w, (s, s), probe, pixel_size=ps, warn_undersampled=False)
    img = img.astype(np.float64)
    img -= img.mean()
    sd = img.std()
    img = (img / sd if sd > 0 else img).astype(np.float32)
    r_store = s / math.sqrt(2.0) + 12.0
    keep = np.hypot(xy[:, 0] - center[0], xy[:, 1] - center[1]) <= r_store
    cols = np.column_stack([xy[keep], w[keep]]).astype(np.float32)
    vxy, vw = merge_columns(xy[keep], w[keep], settings.merge_distance / ps)
    vw = vw / max(vw.max(), 1e-30)
    vis = vw >= settings.min_relative_weight
    visible = np.column_stack([vxy[vis], vw[vis]]).astype(np.float32)
    peaks = bragg_peaks(
        proj.lattice,
        proj.sites,
        w_site,
        probe,
        settings.k_min,
        settings.k_max,
        settings.peak_floor,
        settings.max_peaks,
    )
    # visible columns per projected cell (for reporting)
    cxy, cw = merge_columns(sites_px, w_site, settings.merge_distance / ps)
    n_vis_cell = int(np.sum(cw / max(cw.max(), 1e-30) >= settings.min_relative_weight))
    prim, mult = primitive_lattice(proj.lattice, proj.sites, proj.species)
    return {
        "image": img,
        "columns": cols,
        "visible": visible,
        "peaks": peaks,
        "fingerprint": _fingerprint(prim, proj.sites, w_site),
        "n_visible_per_cell": max(n_vis_cell // mult, 1),
        "primitive": prim,
    }


def entries_for_source(
    src: Source, settings: LibrarySettings
) -> tuple[list[dict[str, Any]], str | None]:
    """All library entries of one structure (one per symmetry-distinct zone), or a reason."""
    from ..simulate import project, zone_period
    from ..simulate.projection import format_zone

    try:
        atoms, info = load_source(src)
    except AtomscopeError as exc:
        return [], str(exc)
    probe = settings.probe()
    formula = atoms.get_chemical_formula(mode="metal", empirical=True)
    out = []
    reason = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        periodic = bool(np.asarray(atoms.pbc).all())
        cell = np.asarray(atoms.cell[:], dtype=np.float64)
        if periodic:
            zones = distinct_zones(atoms, settings.zone_list, settings.max_repeat)
        else:
            zones = [(z, [format_zone(z)]) for z in settings.zone_list]
        for zone, equiv in zones:
            try:
                length = float(np.linalg.norm(np.asarray(zone) @ cell)) / 10.0
                if (
                    periodic
                    and length > settings.max_repeat
                    and zone_period(atoms, zone) > settings.max_repeat
                ):
                    continue  # (project would refuse it, after a costly explanation)
                proj = project(atoms, zone, max_repeat=settings.max_repeat)
            except ParameterError as exc:
                reason = str(exc)
                continue
            e = make_entry(proj, settings, probe)
            red = e.pop("primitive")
            la, lb = np.linalg.norm(red, axis=1)
            gamma = math.degrees(math.acos(np.clip(red[0] @ red[1] / (la * lb), -1, 1)))
            e["meta"] = {
                **info,
                "formula": formula,
                "zone": [int(v) for v in proj.zone],
                "zone_label": format_zone(proj.zone),
                "equivalent_zones": equiv,
                "period_nm": None if proj.two_d else float(proj.period),
                "lattice_nm": np.round(red, 6).tolist(),
                "cell_nm": np.round(proj.lattice, 6).tolist(),
                "a_nm": float(la),
                "b_nm": float(lb),
                "gamma_deg": float(gamma),
                "n_sites": int(proj.n_sites),
                "n_visible_per_cell": e.pop("n_visible_per_cell"),
                "aliases": [],
            }
            out.append(e)
    if not out and reason is None:
        reason = f"no zone axis with a repeat ≤ {settings.max_repeat:g} nm"
    return out, (None if out else reason)


def _start_workers(workers: int) -> Any:
    """A process pool with its workers already running."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork (Linux): workers inherit the imported modules and need no __main__ guard
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    for fut in [executor.submit(int, 0) for _ in range(workers)]:
        fut.result()
    return executor


def _worker(args: tuple[list[Source], dict[str, Any]]) -> list[tuple[list[dict], str | None]]:
    sources, sdict = args
    settings = LibrarySettings.from_dict(sdict)
    return [entries_for_source(s, settings) for s in sources]


# -- HDF5 storage ---------------------------------------------------------------------------

_RAGGED = ("columns", "visible", "peaks")


def _open_for_append(path: Path, settings: LibrarySettings, overwrite: bool):
    import h5py

    if overwrite and path.exists():
        path.unlink()
    if path.exists():
        try:
            f = h5py.File(path, "a")
        except OSError as exc:
            raise CorruptFileError(f"cannot open library {path} for resuming: {exc}") from exc
        if f.attrs.get("format") != FILE_FORMAT:
            f.close()
            raise ParameterError(
                f"{path} is not an atomscope structure library; "
                "choose another output path or pass overwrite=True"
            )
        stored = json.loads(f.attrs["settings"])
        if stored != json.loads(json.dumps(settings.as_dict())):
            f.close()
            raise ParameterError(
                f"{path} was built with other settings; pass overwrite=True to rebuild it, or "
                "build into another file"
            )
        n = int(f.attrs["n_entries"])
        nsrc = int(f.attrs["n_sources"])
        # cut back anything written after the last committed chunk
        f["images"].resize(n, axis=0)
        f["meta"].resize(n, axis=0)
        for name in _RAGGED:
            off = f[f"{name}_offsets"]
            off.resize(n + 1, axis=0)
            f[name].resize(int(off[n]), axis=0)
        f["sources"].resize(nsrc, axis=0)
        f["source_counts"].resize(nsrc, axis=0)
        return f
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    f = h5py.File(path, "w")
    s = settings.size
    f.attrs["format"] = FILE_FORMAT
    f.attrs["version"] = FILE_VERSION
    f.attrs["settings"] = json.dumps(settings.as_dict())
    f.attrs["n_entries"] = 0
    f.attrs["n_sources"] = 0
    f.attrs["skipped"] = "{}"
    str_dt = h5py.string_dtype()
    f.create_dataset(
        "images",
        shape=(0, s, s),
        maxshape=(None, s, s),
        dtype=np.float16,
        chunks=(16, s, s),
        compression="gzip",
        compression_opts=1,
        shuffle=True,
    )
    f.create_dataset("meta", shape=(0,), maxshape=(None,), dtype=str_dt, chunks=(256,))
    for name in _RAGGED:
        f.create_dataset(name, shape=(0, 3), maxshape=(None, 3), dtype=np.float32, chunks=(4096, 3))
        f.create_dataset(
            f"{name}_offsets", data=np.zeros(1, np.int64), maxshape=(None,), chunks=(1024,)
        )
    f.create_dataset("sources", shape=(0,), maxshape=(None,), dtype=str_dt, chunks=(256,))
    f.create_dataset("source_counts", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(256,))
    f.flush()
    return f


def _append(
    f: Any,
    entries: list[dict[str, Any]],
    sources: list[str],
    counts: list[int],
    skipped: dict[str, str],
) -> None:
    n = int(f.attrs["n_entries"])
    k = len(entries)
    if k:
        f["images"].resize(n + k, axis=0)
        f["images"][n : n + k] = np.stack([e["image"] for e in entries]).astype(np.float16)
        f["meta"].resize(n + k, axis=0)
        f["meta"][n : n + k] = [json.dumps(e["meta"]) for e in entries]
        for name in _RAGGED:
            ds, off = f[name], f[f"{name}_offsets"]
            start = int(off[n])
            arrays = [e[name] for e in entries]
            lens = np.array([len(a) for a in arrays], np.int64)
            total = int(lens.sum())
            ds.resize(start + total, axis=0)
            if total:
                ds[start : start + total] = np.concatenate(arrays)
            off.resize(n + k + 1, axis=0)
            off[n + 1 : n + k + 1] = start + np.cumsum(lens)
    m = int(f.attrs["n_sources"])
    f["sources"].resize(m + len(sources), axis=0)
    f["sources"][m:] = sources
    f["source_counts"].resize(m + len(sources), axis=0)
    f["source_counts"][m:] = counts
    if skipped:
        old = json.loads(f.attrs["skipped"])
        old.update(skipped)
        f.attrs["skipped"] = json.dumps(old)
    f.flush()
    # commit: the counters are written last
    f.attrs["n_sources"] = m + len(sources)
    f.attrs["n_entries"] = n + k
    f.flush()


def _update_aliases(f: Any, index: int, meta: dict[str, Any]) -> None:
    f["meta"][index] = json.dumps(meta)


# -- the Library ----------------------------------------------------------------------------


@dataclass
class Library:
    """A library of simulated (structure, zone axis) motif images with their columns and
    Bragg peaks; see the module docstring.

    Attributes
    ----------
    settings : LibrarySettings
    table : pandas.DataFrame
        One row per entry: ``name``, ``formula``, ``structure_type``, ``prototype``,
        ``source``, ``zone`` (label such as ``[110]``), ``u``, ``v``, ``w``,
        ``equivalent_zones``, ``period_nm``, ``a_nm``, ``b_nm``, ``gamma_deg``, ``n_sites``,
        ``n_visible_per_cell``, ``aliases``.
    images : ndarray (N, size, size) float32
        Motif images (zero mean, unit variance).
    path : Path or None
        The HDF5 file it was loaded from or built into.
    """

    settings: LibrarySettings
    table: pd.DataFrame
    images: np.ndarray
    columns: list[np.ndarray]
    visible: list[np.ndarray]
    peaks: list[np.ndarray]
    meta: list[dict[str, Any]]
    path: Path | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.table)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        builtin: bool = True,
        ase_elements: bool | Sequence[str] = True,
        cif_dir: str | os.PathLike[str] | None = None,
        cifs: Sequence[str | os.PathLike[str]] | None = None,
        structures: Sequence[Any] | None = None,
        zones: Sequence[Any] | None = None,
        max_repeat: float | None = None,
        settings: LibrarySettings | None = None,
        workers: int = 1,
        chunk_size: int = 32,
        max_entries: int | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> Library:
        """Build (or resume building) a library and return it.

        Parameters
        ----------
        path : path, optional
            HDF5 file to write (``.h5``). If it exists and was built with the same settings,
            the build resumes: sources already in it are skipped. Without a path the library
            is built in a temporary file and loaded into memory.
        builtin : bool
            Include the simulator's built-in materials (SrTiO3, CdTe, Au, ZnO …).
        ase_elements : bool or list of str
            Include ASE's reference crystals (``ase.build.bulk``) of common elements (True),
            of the listed elements, or none (False).
        cif_dir : path, optional
            Include every ``*.cif`` in this folder (each parsed once, by ASE).
        cifs : list of paths, optional
            Further CIF files.
        structures : list, optional
            Further structures: ``ase.Atoms`` (named by formula), ``(name, ase.Atoms)`` pairs, or
            built-in names.
        zones : list of zone axes, optional
            Zones tried for every structure (default: the 15 low-index zones of
            :data:`atomscope.simulate.LOW_INDEX_ZONES`); symmetry-equivalent zones are kept
            once.
        max_repeat : float, optional
            Longest repeat along the beam (nm) for a zone to enter the library (default 1 nm,
            or that of ``settings``).
        settings : LibrarySettings, optional
            Rendering and descriptor settings (``zones`` and ``max_repeat`` override theirs).
        workers : int
            Processes that parse, project and render (the file is written by this process, in
            source order, so the content does not depend on ``workers``).
        chunk_size : int
            Sources per committed chunk.
        max_entries : int, optional
            Stop once at least this many entries are in the file (build the rest later by
            calling again).
        overwrite : bool
            Delete an existing file first instead of resuming.
        show_progress : bool
            Progress bar over sources.

        Returns
        -------
        Library
        """
        base = settings or LibrarySettings()
        kw = base.as_dict()
        if max_repeat is not None:
            kw["max_repeat"] = float(max_repeat)
        if zones is not None:
            from ..simulate import parse_zone

            kw["zones"] = [list(parse_zone(z)) for z in zones]
        settings = LibrarySettings.from_dict(kw)
        sources: list[Source] = []
        if builtin:
            sources += builtin_sources()
        sources += ase_element_sources(ase_elements)
        sources += cif_sources(cif_dir, cifs)
        for i, s in enumerate(structures or ()):
            from ase import Atoms

            if isinstance(s, tuple) and len(s) == 2:
                sources.append(Source(f"atoms:{s[0]}", "atoms", s[1]))
            elif isinstance(s, Atoms):
                f = s.get_chemical_formula(mode="metal", empirical=True)
                sources.append(Source(f"atoms:{f}#{i}", "atoms", s))
            elif isinstance(s, str):
                sources.append(Source(f"builtin:{s}", "builtin", s))
            else:
                raise ParameterError(f"cannot use {type(s).__name__} as a library structure")
        if not sources:
            raise ParameterError(
                "the library has no structures: enable builtin/ase_elements "
                "or give cif_dir, cifs or structures"
            )
        temporary = path is None
        if temporary:
            import tempfile

            tmpdir = tempfile.mkdtemp(prefix="atomscope-library-")
            path = Path(tmpdir) / "library.h5"
        path = Path(path)
        t0 = time.perf_counter()
        # worker processes start before the file is opened: a forked child holding the HDF5
        # file (and its lock) open would block reading it back
        executor = _start_workers(workers) if workers > 1 else None
        try:
            f = _open_for_append(path, settings, overwrite)
            try:
                done = set(f["sources"].asstr()[:].tolist()) if f["sources"].shape[0] else set()
                todo = [s for s in sources if s.key not in done]
                cls._build_into(
                    f,
                    todo,
                    settings,
                    executor=executor,
                    chunk_size=chunk_size,
                    max_entries=max_entries,
                    show_progress=show_progress,
                    total=len(sources),
                    already=len(sources) - len(todo),
                )
                f.attrs["build_seconds_last"] = time.perf_counter() - t0
            finally:
                f.close()
        finally:
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
        lib = cls.load(path)
        if temporary:
            lib.path = None
        return lib

    @staticmethod
    def _build_into(
        f: Any,
        todo: list[Source],
        settings: LibrarySettings,
        *,
        executor: Any,
        chunk_size: int,
        max_entries: int | None,
        show_progress: bool,
        total: int,
        already: int,
    ) -> None:
        # de-duplication across sources: same formula and same projection -> alias
        by_formula: dict[str, list[tuple[int, dict[str, Any], dict[str, Any]]]] = {}
        n_now = int(f.attrs["n_entries"])
        if n_now:
            metas = f["meta"].asstr()[:n_now]
            for i, m in enumerate(metas):
                meta = json.loads(m)
                by_formula.setdefault(meta["formula"], []).append((i, meta["fingerprint"], meta))
        chunks = [todo[i : i + chunk_size] for i in range(0, len(todo), chunk_size)]
        bar = progress_bar(
            show_progress=show_progress, total=total, desc="library", unit="structure"
        )
        bar.update(already)
        sdict = settings.as_dict()
        futures: list[Any] = []
        try:
            if executor is not None and len(chunks) > 1:
                futures = [executor.submit(_worker, (c, sdict)) for c in chunks]
                results = (fut.result() for fut in futures)
            else:
                results = (_worker((c, sdict)) for c in chunks)
            for chunk, res in zip(chunks, results, strict=False):
                entries: list[dict[str, Any]] = []
                counts: list[int] = []
                skipped: dict[str, str] = {}
                n_base = int(f.attrs["n_entries"])
                for src, (ents, reason) in zip(chunk, res, strict=True):
                    kept = 0
                    for e in ents:
                        meta = e["meta"]
                        meta["fingerprint"] = e["fingerprint"]
                        dup = None
                        for idx, fp, m in by_formula.get(meta["formula"], []):
                            if _same_fingerprint(fp, e["fingerprint"]):
                                dup = (idx, m)
                                break
                        if dup is not None:
                            idx, m = dup
                            m["aliases"].append(f"{meta['name']} {meta['zone_label']}")
                            if idx < n_base:
                                _update_aliases(f, idx, m)
                            continue
                        idx = n_base + len(entries)
                        by_formula.setdefault(meta["formula"], []).append(
                            (idx, e["fingerprint"], meta)
                        )
                        entries.append(e)
                        kept += 1
                    counts.append(kept)
                    if reason:
                        skipped[src.key] = reason[:300]
                _append(f, entries, [s.key for s in chunk], counts, skipped)
                bar.update(len(chunk))
                if max_entries is not None and int(f.attrs["n_entries"]) >= max_entries:
                    break
        finally:
            bar.close()
            for fut in futures:  # chunks beyond max_entries, or after an error
                fut.cancel()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Library:
        """Load a library file written by :meth:`build`.

        Raises
        ------
        MissingFileError, CorruptFileError
        """
        import h5py

        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"library file not found: {path}")
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise CorruptFileError(f"cannot read library {path}: {exc}") from exc
        with f:
            if f.attrs.get("format") != FILE_FORMAT:
                raise CorruptFileError(f"{path} is not an atomscope structure library")
            settings = LibrarySettings.from_dict(json.loads(f.attrs["settings"]))
            n = int(f.attrs["n_entries"])
            images = np.asarray(f["images"][:n], dtype=np.float32)
            metas = [json.loads(m) for m in f["meta"].asstr()[:n]]
            ragged = {}
            for name in _RAGGED:
                off = np.asarray(f[f"{name}_offsets"][: n + 1])
                data = np.asarray(f[name][: int(off[-1]) if n else 0])
                ragged[name] = [data[off[i] : off[i + 1]] for i in range(n)]
            skipped = json.loads(f.attrs.get("skipped", "{}"))
        return cls(
            settings,
            _table(metas),
            images,
            ragged["columns"],
            ragged["visible"],
            ragged["peaks"],
            metas,
            path,
            skipped,
        )

    def subset(self, indices: Sequence[int] | np.ndarray) -> Library:
        """A new in-memory library holding only the given entries (in that order)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.dtype == bool:
            idx = np.nonzero(idx)[0]
        metas = [self.meta[i] for i in idx]
        return Library(
            self.settings,
            _table(metas),
            self.images[idx],
            [self.columns[i] for i in idx],
            [self.visible[i] for i in idx],
            [self.peaks[i] for i in idx],
            metas,
            None,
            dict(self.skipped),
        )

    def select(self, **criteria: Any) -> Library:
        """Entries whose table columns equal the given values (lists mean "any of")."""
        m = np.ones(len(self), bool)
        for k, v in criteria.items():
            if k not in self.table:
                raise ParameterError(f"unknown library column {k!r}")
            vals = v if isinstance(v, list | tuple | set) else [v]
            m &= self.table[k].isin(list(vals)).to_numpy()
        return self.subset(np.nonzero(m)[0])

    # -- derived, cached --------------------------------------------------------------------
    def ssim_stats(
        self, sigma: float, indices: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Local means and variances (Gaussian window of ``sigma`` px) of the motif images
        (all, or those at ``indices``), computed once per entry and cached."""
        from .metrics import local_stats

        key = f"ssim:{sigma:g}"
        n = len(self.images)
        if key not in self._cache:
            s = self.settings.size
            self._cache[key] = (
                np.empty((n, s, s), np.float32),
                np.empty((n, s, s), np.float32),
                np.zeros(n, bool),
            )
        mu, var, done = self._cache[key]
        idx = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
        todo = np.unique(idx[~done[idx]])
        if len(todo):
            m, v = local_stats(self.images[todo], sigma)
            mu[todo], var[todo] = m, v
            done[todo] = True
        return mu[idx], var[idx]

    def polar(self):
        """The log-polar descriptors of every entry and their Fourier transforms (cached)."""
        if "polar" not in self._cache:
            from .align import PolarGrid, library_polar

            grid = PolarGrid.from_settings(self.settings)
            self._cache["polar"] = library_polar(self.peaks, grid)
        return self._cache["polar"]

    def entry(self, index: int) -> dict[str, Any]:
        """Metadata of one entry."""
        return dict(self.meta[int(index)])

    def structure(self, index: int) -> Any:
        """The ``ase.Atoms`` an entry was made from (built-ins and ASE crystals are rebuilt; CIF
        entries re-read from their path, which must still exist)."""
        m = self.meta[int(index)]
        kind, _, spec = m["source"].partition(":")
        if kind == "cif":
            spec = m.get("path", spec)
        elif kind == "atoms":
            raise ParameterError("entries built from ase.Atoms objects do not store them")
        return load_source(Source(m["source"], kind, spec))[0]

    def label(self, index: int) -> str:
        m = self.meta[int(index)]
        return f"{m['name']} {m['zone_label']}"

    def summary(self) -> dict[str, Any]:
        t = self.table
        return {
            "entries": len(t),
            "structures": int(t["source"].nunique()) if len(t) else 0,
            "by_source_kind": t["source"].str.split(":").str[0].value_counts().to_dict()
            if len(t)
            else {},
            "pixel_size_nm": self.settings.pixel_size,
            "image_size_px": self.settings.size,
            "exponent": self.settings.exponent,
            "max_repeat_nm": self.settings.max_repeat,
            "skipped_sources": len(self.skipped),
            "path": str(self.path) if self.path else None,
        }

    def rank(self, image: Any, **kwargs: Any):
        """Rank the library's entries against an image; see :func:`atomscope.match.rank`."""
        from .ranking import rank

        return rank(image, self, **kwargs)

    def render(
        self,
        index: int,
        transform: np.ndarray | None = None,
        shift_nm: tuple[float, float] = (0.0, 0.0),
        size: int | None = None,
    ) -> np.ndarray:
        """Render an entry (from its stored columns) in another frame: library nm ξ map to
        ``transform @ (ξ + shift_nm)``; returns a normalised ``size²`` image at the library
        pixel scale."""
        from ..simulate.render import render_columns

        s = self.settings.size if size is None else int(size)
        ps = self.settings.pixel_size
        c0 = (self.settings.size - 1) / 2.0
        c = (s - 1) / 2.0
        cols = self.columns[int(index)]
        A = np.eye(2) if transform is None else np.asarray(transform, dtype=np.float64)
        xi = (cols[:, :2] - c0) * ps + np.asarray(shift_nm)
        v = xi @ A.T / ps + c
        img = render_columns(
            v, cols[:, 2], (s, s), self.settings.probe(), pixel_size=ps, warn_undersampled=False
        ).astype(np.float64)
        img -= img.mean()
        sd = img.std()
        return (img / sd if sd > 0 else img).astype(np.float32)


def _table(metas: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for m in metas:
        rows.append(
            {
                "name": m["name"],
                "formula": m["formula"],
                "structure_type": m["structure_type"],
                "prototype": m.get("prototype", ""),
                "source": m["source"],
                "zone": m["zone_label"],
                "u": m["zone"][0],
                "v": m["zone"][1],
                "w": m["zone"][2],
                "equivalent_zones": " ".join(m.get("equivalent_zones", [])),
                "period_nm": m.get("period_nm"),
                "a_nm": m["a_nm"],
                "b_nm": m["b_nm"],
                "gamma_deg": m["gamma_deg"],
                "n_sites": m["n_sites"],
                "n_visible_per_cell": m["n_visible_per_cell"],
                "aliases": "; ".join(m.get("aliases", [])),
            }
        )
    cols = [
        "name",
        "formula",
        "structure_type",
        "prototype",
        "source",
        "zone",
        "u",
        "v",
        "w",
        "equivalent_zones",
        "period_nm",
        "a_nm",
        "b_nm",
        "gamma_deg",
        "n_sites",
        "n_visible_per_cell",
        "aliases",
    ]
    return pd.DataFrame(rows, columns=cols)
