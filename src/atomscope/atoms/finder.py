"""``find_atoms``: every column of an atomic-resolution image, sub-pixel, without hand tuning.

Pipeline: normalise (invert for dark columns) → lattice (given, from a structure, or estimated
from the image) → region that carries the lattice → detector candidates computed once →
multi-objective Bayesian optimisation of the detector parameters against physics rewards
(|QC|, ER, and optionally irregularity), globally or per tile → knee point of the Pareto front
→ centre-of-mass and batched Gaussian refinement → sublattices → :class:`AtomTable`.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..errors import CalibrationError, InvalidImageError, ParameterError
from ..image import Micrograph, as_micrograph
from ..optimize import SearchSpace, minimize
from .detectors import DetectorSetup, get_detector
from .lattice import Lattice, estimate_lattice, support_mask
from .refine import fit_gaussians, refine_center_of_mass
from .rewards import (
    REWARDS,
    SiteMisfit,
    distance_sums,
    ideal_neighbour_vectors,
    irregularity,
    quality_count,
)
from .scale_space import normalise_image
from .sublattice import assign_sublattices
from .table import AtomTable

__all__ = ["find_atoms", "lattice_support", "parse_lattice"]

_COLUMNS = [
    "x",
    "y",
    "x_nm",
    "y_nm",
    "intensity",
    "amplitude",
    "sigma",
    "sigma_nm",
    "background",
    "residual",
    "uncertainty",
    "uncertainty_nm",
    "sublattice",
    "response",
    "window",
]


def parse_lattice(lattice: Any, pixel_size: float | None) -> tuple[float, float] | None:
    """Lattice lengths in px from "0.39nm", "0.39nm,0.4nm", a number (nm) or a pair (nm)."""
    if lattice is None:
        return None
    if isinstance(lattice, Lattice):
        return lattice.lengths_px
    from ..io.units import parse_length

    if isinstance(lattice, str):
        parts = [parse_length(p) for p in lattice.split(",") if p.strip()]
    elif isinstance(lattice, int | float):
        parts = [float(lattice)]
    else:
        parts = [float(v) for v in lattice]
    if not parts or len(parts) > 2:
        raise ParameterError(f"lattice must be one or two lengths, got {lattice!r}")
    if pixel_size is None:
        raise CalibrationError(
            "A lattice given in nm needs the image's pixel size; the image is uncalibrated. "
            "Give pixel_size= (CLI: --pixel-size)."
        )
    a = parts[0] / pixel_size
    b = (parts[1] if len(parts) == 2 else parts[0]) / pixel_size
    return a, b


def structure_density(
    structure: Any,
    zone: Any,
    pixel_size: float | None,
    *,
    dark: bool,
    min_relative_intensity: float,
) -> float:
    """Visible columns per px² of a structure projected along a zone axis.

    In HAADF (bright columns) a column is visible when its Z^1.7 weight is at least
    *min_relative_intensity* of the heaviest column's; in ABF (dark columns) every column is.
    """
    if pixel_size is None:
        raise CalibrationError(
            "Using a structure for the expected column count needs the pixel size; the image "
            "is uncalibrated. Give pixel_size= (CLI: --pixel-size)."
        )
    from ..simulate import projected_cell

    cell = projected_cell(structure, zone=zone if zone is not None else (0, 0, 1))
    weights = np.array([site["weight_per_period"] for site in cell["sites"]], dtype=float)
    visible = (
        np.ones(len(weights), bool) if dark else (weights >= min_relative_intensity * weights.max())
    )
    return float(visible.sum()) / cell["cell_area_nm2"] * pixel_size**2


def lattice_support(image: np.ndarray, lattice: Lattice) -> np.ndarray:
    """Pixels that carry the lattice (see :func:`~atomscope.atoms.lattice.support_mask`)."""
    if lattice.support is not None and lattice.support.shape == np.shape(image):
        return lattice.support
    return support_mask(image, lattice.vectors)


def _empty(mg: Micrograph, message: str, method: str, **kw: Any) -> AtomTable:
    return AtomTable(
        pd.DataFrame({c: pd.Series(dtype=float) for c in _COLUMNS}),
        mg,
        method=method,
        message=message,
        **kw,
    )


class _Objective:
    """Rewards of one detector selection, for one region of the image.

    Counts use the interior only (a margin of half a nearest-neighbour distance from the image
    edge), where N_expected = density × lattice-bearing area is exact; columns cut by the edge
    are found or missed at random and would bias the count reward.
    """

    def __init__(
        self,
        cands,
        lattice: Lattice,
        n_expected: float,
        ds_threshold: float,
        rewards: tuple[str, ...],
        region: tuple[slice, slice] | None,
        interior: tuple[float, float, float, float],
        misfit: SiteMisfit | None = None,
    ):
        self.cands = cands
        self.lattice = lattice
        self.n_expected = max(n_expected, 1e-9)
        self.ds_threshold = ds_threshold
        self.rewards = rewards
        self.region = region
        self.interior = interior
        self.ideal_vectors = ideal_neighbour_vectors(lattice, 1.5 * lattice.nn_distance_px)
        self.misfit = misfit
        self.count_tolerance = 0.0
        if misfit is not None:
            # with a site-wise reward present, a count within its own precision is exact: the
            # columns whose centres lie within ±0.5 px of the interior's edge are counted or
            # not at random
            x0, x1, y0, y1 = interior
            if region is not None:
                rs, cs = region
                x0, x1 = max(x0, cs.start), min(x1, cs.stop)
                y0, y1 = max(y0, rs.start), min(y1, rs.stop)
            perimeter = 2 * ((x1 - x0) + (y1 - y0))
            self.count_tolerance = perimeter * lattice.density_px / self.n_expected
            sites = misfit.sites
            x0, x1, y0, y1 = interior
            inside = (
                (sites[:, 0] >= x0)
                & (sites[:, 0] <= x1)
                & (sites[:, 1] >= y0)
                & (sites[:, 1] <= y1)
            )
            if region is not None:
                rs, cs = region
                inside &= (
                    (sites[:, 1] >= rs.start)
                    & (sites[:, 1] < rs.stop)
                    & (sites[:, 0] >= cs.start)
                    & (sites[:, 0] < cs.stop)
                )
            self.site_inner = inside

    def select(self, params: dict[str, Any]) -> np.ndarray:
        return self.cands.select(region=self.region, **params)

    def values(self, idx: np.ndarray) -> list[float]:
        xy = self.cands.cand_xy[idx]
        x0, x1, y0, y1 = self.interior
        inner = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
        out = []
        tree = cKDTree(xy) if len(xy) > 1 else None
        for r in self.rewards:
            if r == "count":
                qc = abs(quality_count(int(inner.sum()), self.n_expected))
                out.append(max(0.0, qc - self.count_tolerance))
            elif r == "error":
                if len(xy) > 4:
                    ds = distance_sums(xy, 4, tree)
                    out.append(float((ds[inner] < self.ds_threshold).sum()) / self.n_expected)
                else:
                    out.append(0.0)
            elif r == "irregularity":
                out.append(
                    irregularity(xy, self.lattice, ideal_vectors=self.ideal_vectors, tree=tree)
                )
            elif r == "misfit":
                out.append(self.misfit(xy, inner, self.site_inner, self.n_expected))
        return out

    def __call__(self, params: dict[str, Any]) -> list[float]:
        return self.values(self.select(params))


def _windows(shape: tuple[int, int], window: int) -> list[tuple[slice, slice]]:
    h, w = shape
    ny = max(1, round(h / window))
    nx = max(1, round(w / window))
    ys = np.linspace(0, h, ny + 1).round().astype(int)
    xs = np.linspace(0, w, nx + 1).round().astype(int)
    return [
        (slice(ys[i], ys[i + 1]), slice(xs[j], xs[j + 1])) for i in range(ny) for j in range(nx)
    ]


def _prune_across(cands, idx: np.ndarray, overlaps: np.ndarray) -> np.ndarray:
    """Apply the overlap rule between candidates kept by different windows."""
    if not hasattr(cands, "pair_i") or cands.pair_i.size == 0 or idx.size == 0:
        return idx
    active = np.zeros(len(cands.cand_response), bool)
    active[idx] = True
    ov = np.full(len(active), 1.0)
    ov[idx] = overlaps
    limit = np.minimum(ov[cands.pair_i], ov[cands.pair_j])
    metric = getattr(cands, "pair_overlap", None)
    if metric is None:  # distance-pruned detectors
        metric = 1.0 - cands.pair_d / cands.nn
    both = active[cands.pair_i] & active[cands.pair_j] & (metric > limit)
    active[cands.pair_loser[both]] = False
    return np.flatnonzero(active)


def _merge_duplicates(xy: np.ndarray, score: np.ndarray, min_distance: float) -> np.ndarray:
    """Indices to keep after merging columns that converged closer than *min_distance*."""
    if len(xy) < 2:
        return np.arange(len(xy))
    pairs = cKDTree(xy).query_pairs(min_distance, output_type="ndarray")
    drop = np.zeros(len(xy), bool)
    for i, j in pairs[np.argsort(-np.maximum(score[pairs[:, 0]], score[pairs[:, 1]]))]:
        if drop[i] or drop[j]:
            continue
        drop[j if score[i] >= score[j] else i] = True
    return np.flatnonzero(~drop)


def find_atoms(
    image: Any,
    *,
    lattice: Any = None,
    structure: Any = None,
    zone: Any = None,
    dark: bool = False,
    method: str = "log",
    optimize: bool = True,
    window: int | None = None,
    refine: str = "gaussian",
    rewards: tuple[str, ...] = ("count", "error"),
    choice: str = "euclidean",
    parameters: dict[str, Any] | None = None,
    n_initial: int = 32,
    n_iterations: int = 8,
    expected_count: float | None = None,
    ds_factor: float = 0.85,
    min_relative_intensity: float = 0.2,
    pixel_size: float | tuple[float, float] | None = None,
    seed: int = 0,
    show_progress: bool = False,
    device: str | None = None,
    model: Any = None,
) -> AtomTable:
    """Find every atomic column in an image, sub-pixel, with parameters tuned automatically.

    Parameters
    ----------
    image : ndarray, Micrograph or HyperSpy-like
        One 2-D image (for stacks, pass one frame or use ``atomscope batch``).
    lattice : str, float, (float, float) or Lattice, optional
        Known lattice lengths ("0.39nm" or "0.39nm,0.4nm"; numbers are nm). The orientation
        and the visible motif still come from the image.
    structure, zone : optional
        A structure (built-in name, CIF path or ``ase.Atoms``) and zone axis (u, v, w): the
        expected column density and spacing come from its projection.
    dark : bool
        Dark columns on a bright background (ABF): the image is inverted first.
    method : {"log", "dog", "localmax", "cnn"} or any registered detector
        Candidate detector; see :data:`atomscope.atoms.detectors.DETECTORS`. "cnn" is the
        network trained on simulated images (``docs/atoms_cnn.md``): its candidates are the
        peaks of a column-probability map and nothing is tuned (*optimize* has no effect).
    optimize : bool
        Tune the detector parameters by multi-objective Bayesian optimisation against the
        physics rewards. When False, *parameters* (or the detector defaults) are used.
    window : int, optional
        Sliding-window mode: parameters are tuned separately in tiles of about this many px
        (for contrast or focus that varies across the field); tiles own disjoint regions and
        overlaps across their borders are resolved globally, so merging has no seams.
    refine : {"gaussian", "elliptical", "com", "none"}
        Sub-pixel refinement: batched 2-D Gaussian fit (round or elliptical) after an
        iterated background-subtracted centre of mass, the centre of mass only, or none.
    rewards : tuple of {"count", "error", "irregularity"}
        Objectives minimised jointly: |QC| (paper eq. 1), ER (eq. 2) and the lattice
        irregularity of the found set.
    choice : {"euclidean", "chebyshev"}
        Which point of the Pareto front is used (closest to the utopia point after
        normalisation).
    parameters : dict, optional
        Detector parameters (e.g. ``{"threshold": 0.05, "overlap": 0.5}``) used when
        ``optimize=False``, or fixed during optimisation.
    n_initial, n_iterations : int
        Quasi-random initial design size and Bayesian-optimisation iterations (per window).
    expected_count : float, optional
        Expected number of columns in the field of view, overriding the lattice estimate.
    ds_factor : float
        ER threshold DS as a fraction of the ideal lattice's distance sum to 4 neighbours.
    min_relative_intensity : float
        Motif sites fainter than this (relative to the brightest) are not expected columns.
    pixel_size : float or (float, float), optional
        nm per pixel, when the image carries none.
    seed : int
        Seed of the optimiser.
    show_progress : bool
        Show progress bars.
    device : str, optional
        Torch device for the optimiser's models (and for learned detectors).
    model : str, path or torch.nn.Module, optional
        Learned detectors only: a model from ``atomscope train atoms`` (``NAME.pt``) or a
        shipped model name; default: the detector's shipped model.

    Returns
    -------
    AtomTable
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    mg = as_micrograph(image, pixel_size=pixel_size)
    if mg.is_stack:
        raise InvalidImageError(
            f"find_atoms works on one image; got a stack of {mg.n_frames} frames. Pass "
            "image.frame(i), or run `atomscope batch atoms` for every frame."
        )
    detector = get_detector(method)
    if refine not in ("gaussian", "elliptical", "com", "none"):
        raise ParameterError(f"refine must be gaussian, elliptical, com or none, not {refine!r}")
    for r in rewards:
        if r not in REWARDS:
            raise ParameterError(f"unknown reward {r!r}; use {', '.join(REWARDS)}")
    if choice not in ("euclidean", "chebyshev"):
        raise ParameterError("choice must be 'euclidean' or 'chebyshev'")
    settings = {
        "method": method,
        "dark": dark,
        "optimize": optimize,
        "window": window,
        "refine": refine,
        "rewards": list(rewards),
        "choice": choice,
        "seed": seed,
    }
    raw = mg.data.astype(np.float32)
    if float(raw.max() - raw.min()) <= 1e-12 * max(1.0, float(abs(raw).max())):
        return _empty(
            mg, "The image is constant: there are no columns to find.", method, settings=settings
        )
    work = -raw if dark else raw
    norm = normalise_image(work)
    ps = mg.pixel_size_nm

    # lattice: given lengths, structure projection, or estimated from the image
    t0 = time.perf_counter()
    lengths = (
        parse_lattice(lattice, ps)
        if lattice is not None and not isinstance(lattice, Lattice)
        else None
    )
    density_px = (
        structure_density(
            structure, zone, ps, dark=dark, min_relative_intensity=min_relative_intensity
        )
        if structure is not None
        else None
    )
    if isinstance(lattice, Lattice):
        lat = lattice
    elif min(norm.shape) < 32 and expected_count is None:
        return _empty(
            mg,
            f"The image is only {norm.shape[0]}×{norm.shape[1]} px: too small to estimate a "
            "lattice (it needs several unit cells, at least 32 px). Give lattice= or "
            "expected_count=, or analyse a larger field.",
            method,
            settings=settings,
            timings={"total": time.perf_counter() - t_start},
        )
    else:
        try:
            lat = estimate_lattice(
                norm,
                pixel_size=ps,
                lengths_px=lengths,
                min_relative_intensity=min_relative_intensity,
            )
        except ParameterError as exc:
            if expected_count is None:
                return _empty(
                    mg,
                    f"{exc} (If the image does hold columns, give lattice= or expected_count=.)",
                    method,
                    settings=settings,
                    timings={"total": time.perf_counter() - t_start},
                )
            # a user count without a lattice: a square lattice of the implied density
            area = float(np.prod(norm.shape))
            a = math.sqrt(area / expected_count)
            lat = Lattice(
                np.array([[a, 0.0], [0.0, a]]),
                pixel_size=ps,
                confidence=0.0,
                source="expected_count",
            )
    if density_px is None:
        density_px = lat.density_px
    timings["lattice"] = time.perf_counter() - t0
    if lat.confidence < 0.2 and lattice is None and structure is None and expected_count is None:
        return _empty(
            mg,
            f"No clear lattice in this image (confidence {lat.confidence:.2f}): it looks like "
            "noise or an amorphous region. Give lattice= or expected_count= to search anyway.",
            method,
            lattice=lat,
            settings=settings,
            timings={**timings, "total": time.perf_counter() - t_start},
        )
    nn = lat.nn_distance_px
    if nn < 2.0:
        return _empty(
            mg,
            f"Columns are {nn:.2f} px apart: too finely sampled to resolve. "
            "Use a higher magnification or a smaller pixel size.",
            method,
            lattice=lat,
            settings=settings,
        )

    support = lattice_support(norm, lat)
    support_area = float(support.sum())

    # candidates, computed once
    t0 = time.perf_counter()
    sig_lo = max(0.7, 0.06 * nn)
    sig_hi = max(sig_lo * 1.5, 0.4 * nn)
    sigmas = np.geomspace(sig_lo, sig_hi, 10)
    setup = DetectorSetup(
        sigmas=sigmas, threshold_range=(0.01, 0.5), nn_distance=nn, model=model, device=device
    )
    cands = detector.prepare(norm, setup)
    if getattr(cands, "model_info", None):  # learned detectors: which network was used
        settings["model"] = cands.model_info
    timings["candidates"] = time.perf_counter() - t0
    space = detector.search_space(setup)
    fixed = dict(parameters or {})
    unknown = set(fixed) - set(space.names)
    if unknown:
        raise ParameterError(
            f"Unknown parameter(s) {sorted(unknown)} for method {method!r}; it takes "
            f"{', '.join(space.names)}"
        )
    ds_threshold = ds_factor * lat.distance_sum(4)
    h, w = norm.shape
    regions = _windows((h, w), int(window)) if window else [None]

    t0 = time.perf_counter()
    chosen_idx: list[np.ndarray] = []
    chosen_overlap: list[np.ndarray] = []
    window_of: list[np.ndarray] = []
    optimizations = []
    chosen_params: list[dict[str, Any]] = []
    reward_values: list[dict[str, Any]] = []
    margin = 0.5 * nn
    interior = (margin, w - 1 - margin, margin, h - 1 - margin)
    inner_support = np.zeros_like(support)
    m0 = int(np.ceil(margin))
    inner_support[m0 : h - m0, m0 : w - m0] = support[m0 : h - m0, m0 : w - m0]
    misfit = None
    if "misfit" in rewards:
        # register the ideal lattice once, on a detection with the default parameters
        ref_idx = cands.select(**{**detector.defaults(setup), **fixed})
        misfit = SiteMisfit(lat, cands.cand_xy[ref_idx], (h, w), support)
    for k, region in enumerate(regions):
        area = float(inner_support[region].sum() if region is not None else inner_support.sum())
        n_exp = (
            expected_count * area / support_area
            if expected_count is not None
            else density_px * area
        )
        objective = _Objective(
            cands, lat, n_exp, ds_threshold, tuple(rewards), region, interior, misfit
        )
        if optimize and n_exp >= 1 and detector.tunable:
            free = SearchSpace([d for d in space.dimensions if d.name not in fixed])
            opt = minimize(
                lambda p, obj=objective: obj({**fixed, **p}),
                free,
                objective_names=[
                    {
                        "count": "|QC|",
                        "error": "ER",
                        "irregularity": "irregularity",
                        "misfit": "misfit",
                    }[r]
                    for r in rewards
                ],
                n_initial=n_initial,
                n_iterations=n_iterations if region is None else max(2, n_iterations // 2),
                seed=seed + k,
                show_progress=show_progress,
                device=device,
                initial_params=[
                    {n: v for n, v in detector.defaults(setup).items() if n in free.names}
                ],
                # the rewards are all fractions of the expected count: one unit, no rescaling
                # (rescaling to the front's span would let 0.1 % of ER weigh like 20 % of QC)
                normalise=False,
            )
            params = {**fixed, **opt.best(choice)}
            optimizations.append(opt)
        else:
            params = {**detector.defaults(setup), **fixed}
        idx = objective.select(params)
        vals = objective.values(idx)
        chosen_params.append(params)
        reward_values.append(
            {"n_expected": n_exp, "n_found": int(len(idx)), **dict(zip(rewards, vals, strict=True))}
        )
        chosen_idx.append(idx)
        chosen_overlap.append(np.full(len(idx), float(params.get("overlap", 0.5))))
        window_of.append(np.full(len(idx), k))
    timings["optimisation"] = time.perf_counter() - t0
    idx = np.concatenate(chosen_idx) if chosen_idx else np.zeros(0, int)
    wins = np.concatenate(window_of) if window_of else np.zeros(0, int)
    if window and len(regions) > 1:
        kept = _prune_across(cands, idx, np.concatenate(chosen_overlap))
        keep_mask = np.isin(idx, kept)
        idx, wins = idx[keep_mask], wins[keep_mask]

    xy = cands.cand_xy[idx].astype(float)
    sig = cands.cand_sigma[idx].astype(float)
    resp = cands.cand_response[idx].astype(float)
    if len(xy) == 0:
        return _empty(
            mg,
            "No columns passed the chosen threshold.",
            method,
            lattice=lat,
            parameters=chosen_params[0] if len(chosen_params) == 1 else {},
            rewards=reward_values[0] if len(reward_values) == 1 else {},
            optimization=optimizations or None,
            settings=settings,
            timings={**timings, "total": time.perf_counter() - t_start},
        )

    # refinement on the image itself (inverted for dark columns), not the normalised copy
    t0 = time.perf_counter()
    radius = float(np.clip(0.5 * nn, 2.0, 3.5 * sig_hi))
    n = len(xy)
    amplitude = np.interp(xy[:, 1], [0, 1], [0, 0])  # placeholder arrays filled below
    sigma_px = sig.copy()
    background = np.full(n, np.nan)
    residual = np.full(n, np.nan)
    uncertainty = np.full(n, np.nan)
    intensity = np.full(n, np.nan)
    if refine in ("gaussian", "elliptical", "com"):
        xy = refine_center_of_mass(work, xy, radius=max(1.5, 0.35 * nn))
    if refine in ("gaussian", "elliptical"):
        # columns sit on the lattice: the typical width from the detector is a good start
        s0 = np.clip(sig, 0.5, radius / 2)
        fit = fit_gaussians(work, xy, radius=radius, sigma0=s0, elliptical=(refine == "elliptical"))
        xy = fit.xy
        amplitude = fit.amplitude
        sigma_px = fit.sigma
        background = fit.background
        residual = fit.residual
        uncertainty = fit.uncertainty
        intensity = fit.integrated_intensity
    else:
        r = np.clip(np.rint(xy).astype(int), 0, [w - 1, h - 1])
        amplitude = work[r[:, 1], r[:, 0]].astype(float)
        intensity = amplitude * 2 * np.pi * sigma_px**2
    keep = _merge_duplicates(xy, np.nan_to_num(intensity, nan=-np.inf), 0.3 * nn)
    inside = (xy[:, 0] >= -0.5) & (xy[:, 0] <= w - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] <= h - 0.5)
    keep = keep[inside[keep]]
    xy, amplitude, sigma_px, background = (
        xy[keep],
        amplitude[keep],
        sigma_px[keep],
        background[keep],
    )
    residual, uncertainty, intensity = residual[keep], uncertainty[keep], intensity[keep]
    resp, wins = resp[keep], wins[keep]
    timings["refinement"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sub = assign_sublattices(xy, np.nan_to_num(intensity), lat)
    timings["sublattices"] = time.perf_counter() - t0

    data = {
        "x": xy[:, 0],
        "y": xy[:, 1],
        "intensity": intensity,
        "amplitude": amplitude,
        "sigma": sigma_px,
        "background": background,
        "residual": residual,
        "uncertainty": uncertainty,
        "sublattice": sub.astype(int),
        "response": resp,
        "window": wins.astype(int),
    }
    if mg.pixel_size is not None:
        pr, pc = mg.pixel_size
        data["x_nm"] = xy[:, 0] * pc
        data["y_nm"] = xy[:, 1] * pr
        data["sigma_nm"] = sigma_px * math.sqrt(pr * pc)
        data["uncertainty_nm"] = uncertainty * math.sqrt(pr * pc)
    table = pd.DataFrame(data)
    table = table[[c for c in _COLUMNS if c in table.columns]]
    timings["total"] = time.perf_counter() - t_start
    if len(regions) == 1:
        params_out: dict[str, Any] = chosen_params[0]
        rewards_out: dict[str, Any] = reward_values[0]
    else:
        params_out = {"windows": chosen_params}
        rewards_out = {"windows": reward_values}
    message = ""
    if lat.confidence < 0.3:
        message = (
            "The lattice is faint in this image; the expected column count (and so the "
            "tuning) is uncertain. Give lattice= or expected_count= if known."
        )
        warnings.warn(message, stacklevel=2)
    return AtomTable(
        table=table.reset_index(drop=True),
        image=mg,
        lattice=lat,
        method=method,
        parameters=params_out,
        rewards=rewards_out,
        optimization=(optimizations[0] if len(optimizations) == 1 else optimizations) or None,
        timings=timings,
        message=message,
        settings=settings,
    )
