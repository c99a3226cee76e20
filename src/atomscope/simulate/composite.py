"""Composite samples: point defects, two grains meeting at a boundary, amorphous patches."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from ..errors import ParameterError
from .columns import ColumnSet, tile
from .imaging import (
    _species_from_counts,
    check_pixel_size,
    form_image,
    image_shape,
    imaging_from_kwargs,
    make_rng,
    render_margin,
    seed_record,
)
from .projection import format_zone, project
from .result import SimulationResult
from .structures import StructureSpec, load_structure

__all__ = [
    "apply_point_defects",
    "simulate_bicrystal",
    "simulate_amorphous_patches",
    "boundary_side",
    "patch_mask",
    "structure_label",
]


def structure_label(structure: StructureSpec) -> str:
    """A short name for a structure specification (for metadata)."""
    if isinstance(structure, str):
        return structure
    try:
        import os

        if isinstance(structure, os.PathLike):
            return os.fspath(structure)
    except Exception:  # noqa: BLE001
        pass
    atoms = load_structure(structure)
    return atoms.get_chemical_formula(mode="metal", empirical=True)


def apply_point_defects(
    columns: ColumnSet,
    *,
    vacancies: float | Mapping[str, float] | None = None,
    substitutions: Mapping[str, Any] | None = None,
    rng: np.random.Generator,
) -> ColumnSet:
    """Remove and replace atoms inside columns at random (per atom, independently).

    Parameters
    ----------
    columns : ColumnSet
        Columns with integer atom counts (thickness × atoms per period; non-integers are
        rounded for the draw).
    vacancies : float or dict, optional
        Probability that an atom is missing: one value for every element, or per element
        (``{'O': 0.05}``).
    substitutions : dict, optional
        ``{host: (dopant, probability)}`` or ``{host: {dopant: probability, …}}``: each host atom
        becomes the dopant with that probability (after vacancies).
    rng : numpy.random.Generator

    Returns
    -------
    ColumnSet
        Updated counts and species; ``extra`` gains ``n_vacancies`` and ``n_substitutions``.
    """
    from ase.data import atomic_numbers

    if not vacancies and not substitutions:
        return columns
    cols = columns
    els = list(cols.elements)
    if substitutions:
        dopants = set()
        for host, spec in substitutions.items():
            if host not in atomic_numbers:
                raise ParameterError(f"unknown host element {host!r} in substitutions")
            items = spec.items() if isinstance(spec, Mapping) else [tuple(spec)]
            for dop, _p in items:
                if dop not in atomic_numbers:
                    raise ParameterError(f"unknown dopant element {dop!r} in substitutions")
                dopants.add(dop)
        els = sorted(set(els) | dopants, key=lambda e: -atomic_numbers[e])
        cols = cols.with_elements(els)
    counts = np.rint(cols.counts).astype(np.int64)
    n_vac = np.zeros(len(cols), np.int64)
    n_sub = np.zeros(len(cols), np.int64)
    if vacancies:
        if isinstance(vacancies, Mapping):
            probs = {e: float(p) for e, p in vacancies.items()}
        else:
            probs = {e: float(vacancies) for e in cols.elements}
        for e, p in probs.items():
            if not (0 <= p <= 1):
                raise ParameterError(f"vacancy probability of {e} must be in [0, 1], got {p}")
            if e not in cols.elements:
                continue
            j = cols.elements.index(e)
            lost = rng.binomial(counts[:, j], p)
            counts[:, j] -= lost
            n_vac += lost
    if substitutions:
        for host, spec in substitutions.items():
            if host not in cols.elements:
                continue
            j = cols.elements.index(host)
            items = list(spec.items()) if isinstance(spec, Mapping) else [tuple(spec)]
            remaining_p = 1.0
            for dop, p in items:
                p = float(p)
                if not (0 <= p <= 1):
                    raise ParameterError(f"substitution probability must be in [0, 1], got {p}")
                q = min(p / remaining_p, 1.0) if remaining_p > 0 else 0.0
                k = rng.binomial(counts[:, j], q)
                counts[:, j] -= k
                counts[:, cols.elements.index(dop)] += k
                n_sub += k
                remaining_p -= p
    changed = (n_vac > 0) | (n_sub > 0)
    species = cols.species.copy()
    if changed.any():
        species[changed] = _species_from_counts(cols.elements, counts[changed])
    extra = dict(cols.extra)
    extra["n_vacancies"] = n_vac
    extra["n_substitutions"] = n_sub
    out = ColumnSet(
        cols.xy,
        cols.elements,
        counts.astype(np.float64),
        species,
        cols.sublattice,
        cols.site,
        cols.grain,
        cols.phase,
        cols.amorphous,
        None,
        None,
        extra,
    )
    return out


def boundary_side(
    x: np.ndarray,
    y: np.ndarray,
    *,
    shape: tuple[int, int],
    angle: float,
    offset: float,
    kind: str = "straight",
    step_height: float = 0.0,
    step_period: float = 0.0,
) -> np.ndarray:
    """Signed distance-like value: < 0 on grain 1's side of the boundary, ≥ 0 on grain 2's.

    Parameters (px and degrees): the boundary passes ``offset`` px from the image centre along
    its normal; ``angle`` is the direction of the boundary line, counter-clockwise from +x as
    displayed (90 = vertical). ``kind='stepped'`` shifts the boundary by ``step_height`` px along
    its normal on alternate segments of length ``step_period`` px (square-wave terraces).
    """
    h, w = shape
    t = math.radians(angle)
    d = np.array([math.cos(t), -math.sin(t)])  # along the boundary (y down)
    n = np.array([d[1], -d[0]])  # normal
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    u = (x - cx) * d[0] + (y - cy) * d[1]
    v = (x - cx) * n[0] + (y - cy) * n[1] - offset
    if kind == "stepped":
        if step_period <= 0:
            raise ParameterError("a stepped boundary needs step_period > 0 px")
        v = v - step_height * (np.floor(u / step_period) % 2)
    elif kind != "straight":
        raise ParameterError(f"boundary must be 'straight' or 'stepped', got {kind!r}")
    return v


def simulate_bicrystal(
    structure: StructureSpec = "SrTiO3",
    structure2: StructureSpec | None = None,
    *,
    zone: Any = (0, 0, 1),
    zone2: Any | None = None,
    rotation: float = 0.0,
    rotation2: float = 30.0,
    shift2: tuple[float, float] = (0.0, 0.0),
    boundary: str = "straight",
    boundary_angle: float = 90.0,
    boundary_offset: float = 0.0,
    step_height: float = 1.0,
    step_period: float = 5.0,
    min_separation: float = 0.1,
    size: int | tuple[int, int] = 512,
    pixel_size: float = 0.02,
    thickness: float = 10,
    thickness2: float | None = None,
    max_repeat: float = 2.0,
    vacancies: float | Mapping[str, float] | None = None,
    substitutions: Mapping[str, Any] | None = None,
    amorphous: float | None = None,
    amorphous_patches: int = 1,
    amorphous_mode: str = "random",
    seed: int | np.random.Generator | None = None,
    **imaging: Any,
) -> SimulationResult:
    """Two grains (same or different structures / orientations) meeting at a boundary.

    Parameters
    ----------
    structure, structure2 : structure specifications
        Grain 1 and grain 2 (``structure2`` defaults to ``structure``: a bicrystal; a different
        one makes a two-phase image).
    zone, zone2 : zone axes
        ``zone2`` defaults to ``zone``.
    rotation, rotation2 : float
        In-plane rotations of the grains, degrees (counter-clockwise as displayed).
    shift2 : (float, float)
        Rigid shift of grain 2's lattice, px.
    boundary : {'straight', 'stepped'}
        Boundary shape; 'stepped' has square-wave terraces of ``step_height`` nm every
        ``step_period`` nm.
    boundary_angle : float
        Direction of the boundary line, degrees from +x (90 = vertical boundary, grain 1 left).
    boundary_offset : float
        Distance of the boundary from the image centre along its normal, nm.
    min_separation : float
        Grain-2 columns closer than this (nm) to a grain-1 column are removed at the boundary.
    size, pixel_size, thickness, max_repeat, seed
        As in :func:`~atomscope.simulate.simulate_haadf` (``thickness2`` for grain 2).
    vacancies, substitutions
        Point defects, see :func:`apply_point_defects`.
    amorphous : float, optional
        Area fraction turned amorphous (see :func:`add_amorphous_patches`), in
        ``amorphous_patches`` blobs, ``amorphous_mode`` 'random' or 'displace'.
    **imaging
        Microscope, noise and scan settings (see :class:`~atomscope.simulate.imaging.Imaging`).

    Returns
    -------
    SimulationResult
        Masks: 'grain' (1 or 2 per pixel, 0 where amorphous) and 'phase' (1 or 2: which
        structure), and 'amorphous' when requested; columns carry grain and phase.
    """
    opts = imaging_from_kwargs(imaging)
    shape = image_shape(size)
    ps = check_pixel_size(pixel_size)
    rng = make_rng(seed)
    structure2 = structure if structure2 is None else structure2
    zone2 = zone if zone2 is None else zone2
    p1 = project(structure, zone, max_repeat=max_repeat)
    p2 = project(structure2, zone2, max_repeat=max_repeat)
    same = p1 is p2 or (structure2 is structure and tuple(p1.zone) == tuple(p2.zone))
    margin = render_margin(opts, ps, shape)
    kw = dict(shape=shape, pixel_size=ps, margin=margin)
    c1 = tile(p1, rotation=rotation, thickness=thickness, grain=1, phase=1, **kw)
    c2 = tile(
        p2,
        rotation=rotation2,
        shift=shift2,
        grain=2,
        phase=1 if same else 2,
        thickness=thickness if thickness2 is None else thickness2,
        **kw,
    )
    bkw = dict(
        shape=shape,
        angle=boundary_angle,
        offset=boundary_offset / ps,
        kind=boundary,
        step_height=step_height / ps,
        step_period=step_period / ps,
    )
    c1 = c1.select(boundary_side(c1.xy[:, 0], c1.xy[:, 1], **bkw) < 0)
    c2 = c2.select(boundary_side(c2.xy[:, 0], c2.xy[:, 1], **bkw) >= 0)
    if len(c1) and len(c2) and min_separation > 0:
        d, _ = cKDTree(c1.xy).query(c2.xy, distance_upper_bound=min_separation / ps)
        c2 = c2.select(~np.isfinite(d))
    if not same:
        # keep sublattice ids distinct between the phases
        c2.sublattice = c2.sublattice + (int(p1.sublattice.max()) + 1)
    cols = ColumnSet.concat([c1, c2])
    cols = apply_point_defects(cols, vacancies=vacancies, substitutions=substitutions, rng=rng)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    side = boundary_side(xx.astype(float), yy.astype(float), **bkw) >= 0
    grain_mask = np.where(side, 2, 1).astype(np.uint8)
    phase_mask = grain_mask if not same else np.ones(shape, np.uint8)
    amorphous_mask = None
    if amorphous:
        cols, amorphous_mask = add_amorphous_patches(
            cols,
            shape,
            amorphous,
            n_patches=amorphous_patches,
            mode=amorphous_mode,
            displacement=0.06 / ps,
            packing_distance=0.22 / ps,
            crystal_density=p1.n_sites / (p1.cell_area / ps**2),
            rng=rng,
        )
        grain_mask = np.where(amorphous_mask, 0, grain_mask).astype(np.uint8)
    params = {
        "structure": structure_label(structure),
        "structure2": structure_label(structure2),
        "zone": list(p1.zone),
        "zone2": list(p2.zone),
        "zone_label": format_zone(p1.zone),
        "zone2_label": format_zone(p2.zone),
        "period_nm": p1.period,
        "period2_nm": p2.period,
        "thickness": thickness,
        "thickness2": thickness if thickness2 is None else thickness2,
        "rotation_deg": rotation,
        "rotation2_deg": rotation2,
        "shift2_px": list(shift2),
        "boundary": boundary,
        "boundary_angle_deg": boundary_angle,
        "boundary_offset_nm": boundary_offset,
        "step_height_nm": step_height,
        "step_period_nm": step_period,
        "min_separation_nm": min_separation,
        "vacancies": vacancies,
        "substitutions": substitutions,
        "seed": seed_record(seed),
        "max_repeat_nm": max_repeat,
        "same_phase": same,
        "amorphous_fraction": amorphous,
        "amorphous_patches": amorphous_patches,
        "amorphous_mode": amorphous_mode,
    }
    masks = {"grain": grain_mask, "phase": phase_mask.astype(np.uint8)}
    if amorphous_mask is not None:
        masks["amorphous"] = amorphous_mask.astype(np.uint8)
    return form_image(
        cols,
        shape,
        ps,
        opts,
        rng,
        parameters=params,
        masks=masks,
        kind="bicrystal" if same else "two-phase",
    )


def patch_mask(
    shape: tuple[int, int],
    fraction: float,
    *,
    n_patches: int = 3,
    roughness: float = 0.3,
    rng: np.random.Generator,
) -> np.ndarray:
    """A boolean mask of smooth random blobs covering ``fraction`` of the image (to within a
    pixel): a sum of Gaussian bumps at ``n_patches`` random centres with radii ~ the size a
    patch needs, modulated by smooth noise of relative strength ``roughness``, thresholded at
    the (1 − fraction) quantile."""
    h, w = shape
    if not (0 < fraction < 1):
        raise ParameterError(f"patch fraction must be in (0, 1), got {fraction!r}")
    if n_patches < 1:
        raise ParameterError("n_patches must be ≥ 1")
    from .noise import smooth_background

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    radius = math.sqrt(fraction * h * w / (math.pi * n_patches))
    field = np.zeros(shape)
    for _ in range(n_patches):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = radius * rng.uniform(0.7, 1.3)
        field += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    field /= field.max()
    if roughness > 0:
        field += roughness * (
            smooth_background(shape, length=max(radius / 2, 2.0), rng=rng, gradient=0.0) - 0.5
        )
    k = int(round(fraction * h * w))
    thresh = np.partition(field.ravel(), h * w - k)[h * w - k]
    return field >= thresh


def _random_packing(
    mask_fn: Any,
    bounds: tuple[float, float, float, float],
    dmin: float,
    rng: np.random.Generator,
    existing: np.ndarray | None = None,
    max_rounds: int = 40,
) -> np.ndarray:
    """Random sequential addition of points at least ``dmin`` apart inside a region."""
    x0, x1, y0, y1 = bounds
    area = (x1 - x0) * (y1 - y0)
    target = int(area / (0.5 * dmin * dmin)) + 10
    pts = np.zeros((0, 2))
    for _ in range(max_rounds):
        cand = np.column_stack([rng.uniform(x0, x1, target), rng.uniform(y0, y1, target)])
        cand = cand[mask_fn(cand)]
        if existing is not None and len(existing) and len(cand):
            d, _ = cKDTree(existing).query(cand, distance_upper_bound=dmin)
            cand = cand[~np.isfinite(d)]
        if len(pts) and len(cand):
            d, _ = cKDTree(pts).query(cand, distance_upper_bound=dmin)
            cand = cand[~np.isfinite(d)]
        if len(cand) == 0:
            break
        # greedy acceptance among the candidates themselves
        tree = cKDTree(cand)
        conflict = tree.query_ball_point(cand, dmin)
        taken = np.zeros(len(cand), bool)
        blocked = np.zeros(len(cand), bool)
        for i in range(len(cand)):
            if blocked[i]:
                continue
            taken[i] = True
            blocked[conflict[i]] = True
        new = cand[taken]
        pts = np.vstack([pts, new])
        if len(new) < 0.01 * target:
            break
    return pts


def simulate_amorphous_patches(
    structure: StructureSpec = "SrTiO3",
    *,
    zone: Any = (0, 0, 1),
    fraction: float = 0.15,
    n_patches: int = 3,
    mode: str = "random",
    displacement: float = 0.06,
    packing_distance: float = 0.22,
    size: int | tuple[int, int] = 512,
    pixel_size: float = 0.02,
    thickness: float = 10,
    rotation: float = 0.0,
    shift: tuple[float, float] = (0.0, 0.0),
    max_repeat: float = 2.0,
    vacancies: float | Mapping[str, float] | None = None,
    substitutions: Mapping[str, Any] | None = None,
    seed: int | np.random.Generator | None = None,
    **imaging: Any,
) -> SimulationResult:
    """A crystal with amorphous patches covering ``fraction`` of the field.

    Parameters
    ----------
    structure, zone, size, pixel_size, thickness, rotation, shift, max_repeat, seed
        As in :func:`~atomscope.simulate.simulate_haadf`.
    fraction : float
        Area fraction of the amorphous patches (exact to a pixel), e.g. 0.05–0.3.
    n_patches : int
        Number of blobs (they may merge).
    mode : {'random', 'displace'}
        'random': crystal columns inside the patches are replaced by a random dense packing of
        columns at least ``packing_distance`` nm apart, each with the mean column composition
        times a random factor (Gamma, mean 1, shape 4) — a projected amorphous film.
        'displace': the crystal columns stay but are displaced by Gaussian noise of
        ``displacement`` nm per axis and get random weight factors (same Gamma law).
    **imaging
        Microscope, noise and scan settings.

    Returns
    -------
    SimulationResult
        Masks 'amorphous' (1 inside patches) and 'grain' (1 crystal, 0 amorphous); amorphous
        columns have grain 0, sublattice −1, species 'amorphous' and ``amorphous=True``.
    """
    if mode not in ("random", "displace"):
        raise ParameterError(f"mode must be 'random' or 'displace', got {mode!r}")
    opts = imaging_from_kwargs(imaging)
    shape = image_shape(size)
    ps = check_pixel_size(pixel_size)
    rng = make_rng(seed)
    proj = project(structure, zone, max_repeat=max_repeat)
    margin = render_margin(opts, ps, shape)
    cols = tile(proj, shape, ps, rotation=rotation, shift=shift, margin=margin, thickness=thickness)
    cols = apply_point_defects(cols, vacancies=vacancies, substitutions=substitutions, rng=rng)
    crystal_density = proj.n_sites / (proj.cell_area / ps**2)  # columns per px²
    all_cols, mask = add_amorphous_patches(
        cols,
        shape,
        fraction,
        n_patches=n_patches,
        mode=mode,
        displacement=displacement / ps,
        packing_distance=packing_distance / ps,
        crystal_density=crystal_density,
        rng=rng,
    )
    params = {
        "structure": structure_label(structure),
        "zone": list(proj.zone),
        "zone_label": format_zone(proj.zone),
        "period_nm": proj.period,
        "thickness": thickness,
        "rotation_deg": rotation,
        "shift_px": list(shift),
        "fraction_requested": fraction,
        "fraction_actual": float(mask.mean()),
        "n_patches": n_patches,
        "mode": mode,
        "displacement_nm": displacement,
        "packing_distance_nm": packing_distance,
        "vacancies": vacancies,
        "substitutions": substitutions,
        "seed": seed_record(seed),
        "max_repeat_nm": max_repeat,
    }
    masks = {"amorphous": mask.astype(np.uint8), "grain": (~mask).astype(np.uint8)}
    return form_image(
        all_cols, shape, ps, opts, rng, parameters=params, masks=masks, kind="amorphous-patches"
    )


def add_amorphous_patches(
    cols: ColumnSet,
    shape: tuple[int, int],
    fraction: float,
    *,
    n_patches: int,
    mode: str,
    displacement: float,
    packing_distance: float,
    crystal_density: float,
    rng: np.random.Generator,
) -> tuple[ColumnSet, np.ndarray]:
    """Turn patches covering *fraction* of the field into amorphous material.

    Lengths in px. 'random' replaces the columns inside the patches by a random dense packing
    (points at least *packing_distance* apart, the crystal's mean column composition times a
    Gamma(4, 1/4) factor, at the crystal's projected density of columns per px²); 'displace'
    moves them by Gaussian noise of *displacement* per axis with the same weight factors.
    Returns the new columns and the boolean patch mask.
    """
    if mode not in ("random", "displace"):
        raise ParameterError(f"mode must be 'random' or 'displace', got {mode!r}")
    mask = patch_mask(shape, fraction, n_patches=n_patches, rng=rng)
    h, w = shape

    def in_mask(xy: np.ndarray) -> np.ndarray:
        ix = np.clip(np.rint(xy[:, 0]).astype(int), 0, w - 1)
        iy = np.clip(np.rint(xy[:, 1]).astype(int), 0, h - 1)
        inside = (
            (xy[:, 0] >= -0.5) & (xy[:, 0] < w - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] < h - 0.5)
        )
        return inside & mask[iy, ix]

    amorph = in_mask(cols.xy)
    mean_counts = cols.counts[~amorph].mean(axis=0) if (~amorph).any() else cols.counts.mean(0)
    if mode == "displace":
        n = int(amorph.sum())
        cols.xy = cols.xy.copy()
        cols.xy[amorph] += rng.normal(0.0, displacement, (n, 2))
        factor = rng.gamma(4.0, 0.25, n)
        cols.counts = cols.counts.copy()
        cols.counts[amorph] *= factor[:, None]
        cols.amorphous = amorph.copy()
        cols.grain = np.where(amorph, 0, cols.grain)
        cols.sublattice = np.where(amorph, -1, cols.sublattice)
        cols.species = np.where(amorph, "amorphous", cols.species).astype(object)
        all_cols = cols
    else:
        crystal = cols.select(~amorph)
        pts = _random_packing(
            in_mask, (-0.5, w - 0.5, -0.5, h - 0.5), packing_distance, rng, existing=crystal.xy
        )
        n = len(pts)
        factor = rng.gamma(4.0, 0.25, n)
        # keep the projected atom density: the film has the crystal's mean atoms per area
        packing_density = n / max(float(mask.sum()), 1.0) if n else 1.0
        density_ratio = crystal_density / max(packing_density, 1e-12)
        counts = mean_counts[None, :] * factor[:, None] * density_ratio
        amorphous = ColumnSet(
            pts,
            cols.elements,
            counts,
            np.full(n, "amorphous", dtype=object),
            np.full(n, -1, np.int64),
            np.full(n, -1, np.int64),
            np.zeros(n, np.int64),
            np.ones(n, np.int64),
            np.ones(n, bool),
            extra={k: np.zeros(n, v.dtype) for k, v in cols.extra.items()},
        )
        all_cols = ColumnSet.concat([crystal, amorphous])
    return all_cols, mask
