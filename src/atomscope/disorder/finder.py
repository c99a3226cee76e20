"""``find_disorder``: amorphous and disordered regions from atom-centred patches.

Pipeline (after Barakati et al., Digital Discovery 2024, second half): atoms (found, or given)
→ patches centred on every column → a crystalline core (patches with close twins) → atom types
by a trimmed Gaussian mixture on rotation-invariant patch features → per type, crystalline
clusters and their Gaussian models → per-atom disorder score (one-sided Mahalanobis distance,
calibrated) → threshold and covariance type tuned by multi-objective Bayesian optimisation
against compactness, perimeter and misfit rewards → spatially coherent flags → per-pixel mask.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from ..atoms.lattice import median_nn_distance
from ..errors import InvalidImageError, MissingFileError, ParameterError
from ..image import Micrograph, as_micrograph
from ..optimize import Categorical, Real, SearchSpace, minimize
from .mask import AtomGraph, MaskBuilder
from .model import COVARIANCE_TYPES, DisorderModel, view_validity
from .patches import extract_patches, invariant_features
from .result import DisorderMap
from .rewards import REWARD_SETS, DisorderObjective, choose_point
from .types import classify_types, crystalline_core, pca_features, translation_partners

__all__ = ["find_disorder", "search_space", "THRESHOLD_LOW", "ACQ_OPTIONS"]

#: lowest threshold searched, in robust standard deviations of the crystalline scores
THRESHOLD_LOW = 2.0

#: acquisition settings for this search (one real and one categorical parameter, evaluations
#: of milliseconds): fewer posterior samples and restarts than the optimiser's defaults, because
#: with three objectives the hypervolume box decompositions dominate an iteration's time
ACQ_OPTIONS: dict[str, Any] = {"mc_samples": 16, "num_restarts": 4, "raw_samples": 128}

#: columns fainter than this fraction of the faint end (5th percentile) of the crystalline
#: columns' brightness are spurious detections: not scored
FAINT_FRACTION = 0.5

#: a lattice-translation partner lies within this fraction of the nearest-neighbour distance
PARTNER_TOLERANCE = 0.25

#: atoms with fewer than this fraction of their translation partners are not in the
#: crystalline core (a random dense packing has ~4 % chance to pass, a crystal column ~100 %)
PARTNER_FRACTION = 0.75

#: lattices (grains of different orientation) tried by the translation-partner test
MAX_LATTICES = 3

#: σ of the mask smoothing, in nearest-neighbour distances
SMOOTH = 0.5


def search_space(
    max_score: float, covariance_types: tuple[str, ...] = COVARIANCE_TYPES
) -> SearchSpace:
    """The optimiser's action space: the score threshold (robust σ, log scale) and the
    covariance type of the crystalline model.

    The threshold runs from :data:`THRESHOLD_LOW` to 1.25 × the largest score, so the top of the
    range flags nothing: "no disorder" is always a reachable answer.
    """
    hi = max(1.25 * float(max_score), 2.0 * THRESHOLD_LOW)
    dims: list[Any] = [Real("threshold", THRESHOLD_LOW, hi, log=True)]
    if len(covariance_types) > 1:
        dims.append(Categorical("covariance", list(covariance_types)))
    return SearchSpace(dims)


def _load_atoms(atoms: Any) -> tuple[pd.DataFrame, Any]:
    """(table with x, y, lattice or None) from an AtomTable, a DataFrame or a CSV path."""
    lattice = None
    if isinstance(atoms, str | os.PathLike):
        path = Path(atoms)
        if not path.exists():
            raise MissingFileError(f"atom table {path} does not exist")
        try:
            table = pd.read_csv(path)
        except Exception as exc:  # pandas raises several types for malformed files
            raise ParameterError(f"could not read the atom table {path}: {exc}") from exc
    elif isinstance(atoms, pd.DataFrame):
        table = atoms
    elif hasattr(atoms, "table") and isinstance(atoms.table, pd.DataFrame):
        table = atoms.table
        lattice = getattr(atoms, "lattice", None)
    else:
        raise ParameterError(
            "atoms must be an AtomTable (from find_atoms), a DataFrame with x and y columns "
            f"(px), or the path of an atoms.csv; got {type(atoms).__name__}"
        )
    missing = {"x", "y"} - set(table.columns)
    if missing:
        raise ParameterError(
            f"the atom table needs columns x and y (px); it lacks {', '.join(sorted(missing))}"
        )
    xy = table[["x", "y"]].to_numpy(dtype=float)
    ok = np.all(np.isfinite(xy), axis=1)
    return table.loc[ok].reset_index(drop=True), lattice


def _empty(
    mg: Micrograph,
    table: pd.DataFrame,
    message: str,
    settings: dict[str, Any],
    timings: dict[str, float],
) -> DisorderMap:
    n = len(table)
    out = pd.DataFrame(
        {
            "x": table["x"].to_numpy(float) if n else np.zeros(0),
            "y": table["y"].to_numpy(float) if n else np.zeros(0),
        }
    )
    _add_nm(out, mg)
    out["type"] = np.full(n, -1)
    out["cluster"] = np.full(n, -1)
    out["analysed"] = np.zeros(n, bool)
    out["scored"] = np.zeros(n, bool)
    out["score"] = np.full(n, np.nan)
    out["posterior"] = np.full(n, np.nan)
    out["disordered"] = np.zeros(n, bool)
    out["label"] = np.full(n, "not analysed", dtype=object)
    return DisorderMap(
        out, np.zeros(mg.image_shape, bool), mg, settings=settings, timings=timings, message=message
    )


def _periodic_core(
    core: np.ndarray, mg: Micrograph, lattice: Any, xy_all: np.ndarray, rows: np.ndarray, nn: float
) -> tuple[np.ndarray, bool]:
    """Keep in the crystalline core only atoms with most of their lattice-translation
    partners: a large, uniform amorphous region has look-alike patches too, and would
    otherwise become an atom type of its own (and so "crystalline").

    Grains of other orientations fail the first lattice's test; the lattice of the failing
    region is estimated in turn (up to :data:`MAX_LATTICES` lattices), so every grain keeps its
    columns while an amorphous region passes none. Skipped (core unchanged, False) when no
    lattice can be found or when the test would leave too little of the core.
    """
    from ..atoms.lattice import estimate_lattice

    data = mg.data.astype(np.float32)
    h, w = mg.image_shape
    tol = PARTNER_TOLERANCE * nn
    periodic = np.zeros(len(xy_all), bool)
    for k in range(MAX_LATTICES):
        failing = np.flatnonzero(~periodic)
        if k == 0 and lattice is not None:
            vectors = lattice.vectors
        else:
            # the failing columns' own region, the rest of the image flattened to its median
            region = np.zeros((h, w), bool)
            ij = np.clip(np.rint(xy_all[failing]).astype(int), 0, [w - 1, h - 1])
            region[ij[:, 1], ij[:, 0]] = True
            region = ndi.binary_dilation(region, iterations=max(1, int(round(nn))))
            if region.sum() < 400:
                break
            img = np.where(region, data, np.median(data[region]))
            try:
                vectors = estimate_lattice(img).vectors
            except Exception:  # noqa: BLE001 - no further lattice: the rest is not periodic
                break
        partners = translation_partners(xy_all, vectors, (h, w), tolerance=tol)
        periodic |= ~(partners < PARTNER_FRACTION)  # NaN (no partner in the image) passes
        if (~periodic[rows]).sum() < max(10, 0.02 * len(rows)):
            break
    new = core & periodic[rows]
    if new.sum() < max(10, 0.3 * core.sum()):
        return core, False
    return new, True


def _add_nm(table: pd.DataFrame, mg: Micrograph) -> None:
    if mg.pixel_size is not None:
        pr, pc = mg.pixel_size
        table["x_nm"] = table["x"] * pc
        table["y_nm"] = table["y"] * pr


def find_disorder(
    image: Any,
    atoms: Any = None,
    *,
    sublattice: int | None = None,
    optimize: bool = True,
    n_types: int | None = None,
    max_types: int = 6,
    patch_size: int | None = None,
    normalise: str = "image",
    n_components: int = 10,
    one_sided: bool = True,
    rewards: str = "robust",
    choice: str = "euclidean",
    tolerance: float = 0.01,
    covariance_types: tuple[str, ...] = COVARIANCE_TYPES,
    threshold: float | None = None,
    covariance: str | None = None,
    min_atoms: int = 4,
    dilation: float = 0.0,
    n_initial: int = 24,
    n_iterations: int = 4,
    pixel_size: float | tuple[float, float] | None = None,
    seed: int = 0,
    show_progress: bool = False,
    atoms_options: dict[str, Any] | None = None,
    acq_options: dict[str, Any] | None = None,
    blas_threads: int | None = 1,
) -> DisorderMap:
    """Find disordered (amorphous) regions: per-atom disorder scores and a per-pixel mask.

    Parameters
    ----------
    image : ndarray, Micrograph or HyperSpy-like
        One 2-D image.
    atoms : AtomTable, DataFrame, str or path, optional
        The columns: the result of :func:`atomscope.find_atoms`, a table with ``x``, ``y``
        (px) columns, or the path of an ``atoms.csv``. Found with
        :func:`~atomscope.atoms.find_atoms` (seeded with *seed*) when None.
    sublattice : int, optional
        Analyse only the atoms of this type (0 = brightest; the paper uses the Ba columns of
        YBa2Cu3O7). Other atoms are reported as "not analysed" and the mask follows the
        analysed atoms only.
    optimize : bool
        Tune the threshold and covariance type by multi-objective Bayesian optimisation. When
        False, *threshold* (default: where the score model's disorder posterior reaches 0.5)
        and *covariance* (default "full", or "spherical" when a type has too few columns to
        estimate a full covariance) are used.
    n_types : int, optional
        Number of atom types (4 for YBa2Cu3O7 [100]: CuO2 planes, CuO chains, Ba, Y); chosen
        by BIC when None.
    max_types : int
        Largest number of types the BIC tries.
    patch_size : int, optional
        Patch side in px (odd); default 2.5 × the nearest-neighbour distance.
    normalise : {"image", "patch", "none"}
        Patch normalisation (see :func:`~atomscope.disorder.patches.extract_patches`).
    n_components : int
        Principal components of the crystalline models.
    one_sided : bool
        Score the least disordered half of each patch (sharp region boundaries), instead of
        the whole patch.
    rewards : {"robust", "paper"}
        "paper": compactness and normalised perimeter only; "robust": plus the misfit against
        the score distribution, which cannot be won by flagging one round blob (see
        :mod:`atomscope.disorder.rewards`).
    choice : {"euclidean", "chebyshev"}
        Distance to the utopia point used to pick the Pareto point.
    tolerance : float
        Robust mode: Pareto points within this misfit of the best are statistically
        equivalent and the spatial rewards choose among them.
    covariance_types : tuple of str
        Covariance types the optimiser may choose from.
    threshold : float, optional
        Score threshold (robust σ) with ``optimize=False``.
    covariance : {"full", "tied", "diag", "spherical"}, optional
        Covariance type with ``optimize=False``.
    min_atoms : int
        Smallest group of flagged atoms that counts as a region (smaller groups — a spurious
        detection, a point defect — are cleared; smaller crystal islands inside a region are
        flagged).
    dilation : float
        Dilation of the final mask in px (the paper dilates slightly; the default 0 keeps the
        Voronoi boundary, which is centred between flagged and crystalline columns).
    n_initial, n_iterations : int
        Initial design size and Bayesian-optimisation iterations.
    pixel_size : float or (float, float), optional
        nm per pixel, when the image carries none.
    seed : int
        Seed of every random step (atom finding, clustering, optimiser).
    show_progress : bool
        Show progress bars.
    atoms_options : dict, optional
        Extra keyword arguments for :func:`~atomscope.atoms.find_atoms` when *atoms* is None.
    acq_options : dict, optional
        Overrides of the optimiser's acquisition settings
        (:data:`atomscope.optimize.DEFAULT_ACQ_OPTIONS`); see :data:`ACQ_OPTIONS`.
    blas_threads : int or None
        BLAS threads during the analysis (restored afterwards); None leaves them unchanged.

    Returns
    -------
    DisorderMap

    Raises
    ------
    InvalidImageError
        For a stack of frames.
    ParameterError
        For invalid options, or fewer atoms than the requested types need.
    """
    from threadpoolctl import threadpool_limits

    # one BLAS thread: the matrices are small, and on a shared 2-core machine two OpenBLAS
    # threads made the model step 10x slower (15 s instead of 1.2 s on 384² px)
    with threadpool_limits(limits=blas_threads):
        return _find_disorder(
            **{k: v for k, v in locals().items() if k not in ("threadpool_limits", "blas_threads")}
        )


def _find_disorder(
    image,
    atoms,
    *,
    sublattice,
    optimize,
    n_types,
    max_types,
    patch_size,
    normalise,
    n_components,
    one_sided,
    rewards,
    choice,
    tolerance,
    covariance_types,
    threshold,
    covariance,
    min_atoms,
    dilation,
    n_initial,
    n_iterations,
    pixel_size,
    seed,
    show_progress,
    atoms_options,
    acq_options,
) -> DisorderMap:
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    mg = as_micrograph(image, pixel_size=pixel_size)
    if mg.is_stack:
        raise InvalidImageError(
            f"find_disorder works on one image; got a stack of {mg.n_frames} frames. Pass "
            "image.frame(i), or run it on every frame in a loop."
        )
    if rewards not in REWARD_SETS:
        raise ParameterError(f"rewards must be one of {', '.join(REWARD_SETS)}, not {rewards!r}")
    if choice not in ("euclidean", "chebyshev"):
        raise ParameterError(f"choice must be 'euclidean' or 'chebyshev', not {choice!r}")
    covariance_types = tuple(covariance_types)
    bad = [c for c in covariance_types if c not in COVARIANCE_TYPES]
    if bad or not covariance_types:
        raise ParameterError(
            f"covariance types must be among {', '.join(COVARIANCE_TYPES)}; "
            f"got {list(covariance_types)}"
        )
    if covariance is not None and covariance not in COVARIANCE_TYPES:
        raise ParameterError(
            f"covariance must be one of {', '.join(COVARIANCE_TYPES)}, not {covariance!r}"
        )
    if threshold is not None and not np.isfinite(threshold):
        raise ParameterError(f"threshold must be a finite number, got {threshold!r}")
    if min_atoms < 1:
        raise ParameterError(f"min_atoms must be at least 1, got {min_atoms!r}")
    if sublattice is not None and (isinstance(sublattice, bool) or int(sublattice) < 0):
        raise ParameterError(f"sublattice must be a type number ≥ 0, got {sublattice!r}")
    settings: dict[str, Any] = {
        "sublattice": sublattice,
        "optimize": optimize,
        "n_types": n_types,
        "patch_size": patch_size,
        "normalise": normalise,
        "n_components": n_components,
        "one_sided": one_sided,
        "rewards": rewards,
        "choice": choice,
        "tolerance": tolerance,
        "covariance_types": list(covariance_types),
        "min_atoms": min_atoms,
        "dilation": dilation,
        "n_initial": n_initial,
        "n_iterations": n_iterations,
        "seed": seed,
    }

    # -- atoms ---------------------------------------------------------------------------
    t0 = time.perf_counter()
    atoms_message = ""
    if atoms is None:
        from ..atoms import find_atoms

        found = find_atoms(mg, seed=seed, show_progress=show_progress, **(atoms_options or {}))
        table, lattice = found.table, found.lattice
        atoms_message = found.message
    else:
        table, lattice = _load_atoms(atoms)
    timings["atoms"] = time.perf_counter() - t0
    h_img, w_img = mg.image_shape
    xy_all = table[["x", "y"]].to_numpy(dtype=float) if len(table) else np.zeros((0, 2))
    if len(xy_all) < 8:
        why = atoms_message or "too few atomic columns were found"
        return _empty(
            mg,
            table,
            f"No disorder analysis: {len(xy_all)} atom(s). {why}".strip(),
            settings,
            {**timings, "total": time.perf_counter() - t_start},
        )
    nn = float(lattice.nn_distance_px) if lattice is not None else median_nn_distance(xy_all)
    if not np.isfinite(nn) or nn < 2.0:
        return _empty(
            mg,
            table,
            f"Columns are {nn:.2f} px apart: too close for patches.",
            settings,
            {**timings, "total": time.perf_counter() - t_start},
        )

    # -- patches, core, types ------------------------------------------------------------
    t0 = time.perf_counter()
    if patch_size is None:
        half = int(round(1.25 * nn))
    else:
        if int(patch_size) < 5:
            raise ParameterError(f"patch_size must be at least 5 px, got {patch_size!r}")
        half = int(patch_size) // 2
    data = mg.data.astype(np.float64)
    partial = one_sided and normalise != "patch"
    patches = extract_patches(data, xy_all, half, normalise=normalise, partial=partial)
    settings["patch_size"] = 2 * half + 1
    settings["nn_distance_px"] = nn
    views = DisorderModel.view_masks(half, nn, one_sided)
    valid = view_validity(xy_all, views, (h_img, w_img))
    if not partial:
        valid &= patches.inside[:, None]
    full = patches.inside
    if full.sum() < 10:
        return _empty(
            mg,
            table,
            f"Only {int(full.sum())} atom(s) lie a patch half-width ({half} px) away from the "
            "image edge; at least 10 are needed. Use a larger field or a smaller patch_size.",
            settings,
            {**timings, "total": time.perf_counter() - t_start},
        )
    r = max(1, int(round(0.2 * nn)))
    brightness = patches.data[:, half - r : half + r + 1, half - r : half + r + 1].mean(
        axis=(1, 2)
    ) - np.percentile(patches.data.reshape(len(xy_all), -1), 10, axis=1)
    z0 = pca_features(patches.data[full].reshape(int(full.sum()), -1), 12, seed=seed)
    core0 = crystalline_core(z0)
    # spurious detections (noise, a light column caught here and there) are far fainter than
    # every crystalline column; they are neither crystal nor disorder and are not scored
    # (like atoms at the very edge, they take the label of their scored neighbours)
    faint_level = FAINT_FRACTION * float(np.percentile(brightness[full][core0], 5))
    bright = brightness >= faint_level
    settings["faint_level"] = faint_level
    settings["n_faint"] = int((~bright).sum())
    full_b = np.flatnonzero(full & bright)  # atoms whose whole patch is usable
    if len(full_b) < 10:
        return _empty(
            mg,
            table,
            f"Only {len(full_b)} columns can be scored; at least 10 are needed.",
            settings,
            {**timings, "total": time.perf_counter() - t_start},
        )
    P = patches.data[full_b]
    n_full = len(P)
    flat = P.reshape(n_full, -1)
    z_full = pca_features(flat, 12, seed=seed)
    core = crystalline_core(z_full)
    core, settings["periodic_core"] = _periodic_core(core, mg, lattice, xy_all, full_b, nn)
    z_inv = pca_features(invariant_features(P), 8, fit_rows=core, standardise=True, seed=seed)
    types = classify_types(
        z_inv, brightness[full_b], core=core, n_types=n_types, max_types=max_types, seed=seed
    )
    timings["types"] = time.perf_counter() - t0

    # -- the analysed atoms and their model -------------------------------------------------
    type_all = np.full(len(xy_all), -1)
    type_all[full_b] = types.labels
    inlier_all = np.zeros(len(xy_all), bool)
    inlier_all[full_b] = types.inliers
    candidates = bright & valid.any(axis=1)  # atoms that can be scored
    if sublattice is not None and int(sublattice) >= types.n_types:
        raise ParameterError(
            f"sublattice {sublattice} does not exist: the atoms fall into {types.n_types} "
            f"type(s), numbered 0 (brightest) to {types.n_types - 1}"
        )
    t0 = time.perf_counter()
    if sublattice is None:
        m_idx = np.flatnonzero(candidates)
        model = DisorderModel(
            patches.data[m_idx],
            type_all[m_idx],
            inlier_all[m_idx],
            types.n_types,
            valid[m_idx],
            nn,
            n_components=n_components,
            one_sided=one_sided,
            seed=seed,
        )
    else:
        # one type: its own crystalline model; edge atoms are typed against all types first
        full_model = DisorderModel(
            patches.data[candidates],
            type_all[candidates],
            inlier_all[candidates],
            types.n_types,
            valid[candidates],
            nn,
            n_components=n_components,
            one_sided=one_sided,
            seed=seed,
        )
        type_all[candidates] = full_model.best_types()[0]
    # every atom gets a type: edge atoms by their best-matching cluster, faint or very-edge
    # atoms from the nearest typed neighbour
    if sublattice is None:
        type_all[m_idx], best_cluster = model.best_types()
    untyped = np.flatnonzero(type_all < 0)
    typed = np.flatnonzero(type_all >= 0)
    if untyped.size and typed.size:
        _, j = cKDTree(xy_all[typed]).query(xy_all[untyped])
        type_all[untyped] = type_all[typed[j]]
    if sublattice is not None:
        analysed = type_all == int(sublattice)
        m_idx = np.flatnonzero(candidates & analysed)
        if len(m_idx) < 10:
            return _empty(
                mg,
                table,
                f"Only {len(m_idx)} atom(s) of type {sublattice} can be "
                "scored; at least 10 are needed.",
                settings,
                {**timings, "total": time.perf_counter() - t_start},
            )
        lab = np.where(patches.inside[m_idx] & bright[m_idx], 0, -1)
        model = DisorderModel(
            patches.data[m_idx],
            lab,
            inlier_all[m_idx],
            1,
            valid[m_idx],
            nn,
            n_components=n_components,
            one_sided=one_sided,
            seed=seed,
        )
    else:
        analysed = np.ones(len(xy_all), bool)
    for cov in covariance_types:
        model.scores(cov)
    timings["model"] = time.perf_counter() - t0
    a_idx = np.flatnonzero(analysed)  # analysed atoms, indices into all atoms
    xy_a = xy_all[a_idx]
    pos_in_a = np.full(len(xy_all), -1)
    pos_in_a[a_idx] = np.arange(len(a_idx))
    scored_a = pos_in_a[m_idx]  # model order -> index among analysed atoms

    # -- mask machinery ------------------------------------------------------------------
    t0 = time.perf_counter()
    nn_a = nn if sublattice is None else median_nn_distance(xy_a)
    graph = AtomGraph(xy_a, 1.6 * nn_a)
    pre = MaskBuilder((h_img, w_img), xy_a, empty_radius=np.inf, smooth=0, min_area=0)
    cell_radius = _cell_radius(pre, model.fitted_on, scored_a, (h_img, w_img), half)
    empty_radius = max(1.2 * cell_radius, 0.75 * nn_a)
    area_per_atom = float(h_img * w_img) / max(len(xy_a), 1)
    builder = MaskBuilder(
        (h_img, w_img),
        xy_a,
        empty_radius=empty_radius,
        smooth=SMOOTH * nn_a,
        min_area=min_atoms * area_per_atom,
        dilation=dilation,
        spacing=nn_a,
    )
    objective = DisorderObjective(
        model, scored_a, graph, builder, rewards=rewards, min_atoms=min_atoms
    )
    settings.update(
        {
            "link_px": 1.6 * nn_a,
            "empty_radius_px": empty_radius,
            "min_area_px": min_atoms * area_per_atom,
        }
    )
    timings["mask_setup"] = time.perf_counter() - t0

    # -- threshold and covariance ----------------------------------------------------------
    t0 = time.perf_counter()
    max_score = max(float(np.max(model.scores(c))) for c in covariance_types)
    space = search_space(max_score, covariance_types)
    opt = None
    if optimize:

        def point(t: float, c: str) -> dict[str, Any]:
            p = {"threshold": float(np.clip(t, space["threshold"].low, space["threshold"].high))}
            if len(covariance_types) > 1:
                p["covariance"] = c
            return p

        starts = [point(_bayes_threshold(objective, c), c) for c in covariance_types]
        starts.append(point(space["threshold"].high, covariance_types[0]))
        opt = minimize(
            lambda p: objective(_with_cov(p, covariance_types)),
            space,
            objective_names=list(REWARD_SETS[rewards]),
            n_initial=max(n_initial, len(starts)),
            n_iterations=n_iterations,
            seed=seed,
            initial_params=starts,
            show_progress=show_progress,
            acq_options={**ACQ_OPTIONS, **(acq_options or {})},
        )
        k = choose_point(opt.objectives, opt.pareto_mask, rewards, choice, tolerance)
        if k is None:  # nothing was ever flagged: the top of the threshold range
            params = _with_cov(starts[-1], covariance_types)
        else:
            params = _with_cov(opt.params[k], covariance_types)
        opt.settings["chosen_index"] = None if k is None else int(k)
    else:
        cov = covariance or _default_covariance(
            model, inlier_all[m_idx], type_all[m_idx], n_components, covariance_types
        )
        t = threshold if threshold is not None else _bayes_threshold(objective, cov)
        params = {"threshold": float(t), "covariance": cov}
    ev = objective.evaluate(params)
    timings["optimisation"] = time.perf_counter() - t0

    # -- result --------------------------------------------------------------------------
    cov = params["covariance"]
    n_all = len(xy_all)
    out = pd.DataFrame({"x": xy_all[:, 0], "y": xy_all[:, 1]})
    _add_nm(out, mg)
    out["type"] = type_all
    cluster = np.full(n_all, -1)
    score = np.full(n_all, np.nan)
    post = np.full(n_all, np.nan)
    cluster[m_idx] = model.best_types()[1]
    score[m_idx] = model.scores(cov)
    post[m_idx] = objective.mixture(cov).posterior
    disordered = np.zeros(n_all, bool)
    disordered[a_idx] = ev.flags
    out["cluster"] = cluster
    out["analysed"] = analysed
    scored = np.zeros(n_all, bool)
    scored[m_idx] = True
    out["scored"] = scored
    out["score"] = score
    out["posterior"] = post
    out["disordered"] = disordered
    out["label"] = np.where(
        ~analysed, "not analysed", np.where(disordered, "disordered", "crystalline")
    ).astype(object)
    st = ev.stats
    rewards_out: dict[str, Any] = dict(ev.objectives)
    rewards_out.update(st.to_dict())
    rewards_out.update(objective.mixture(cov).summary())
    types_out = types.summary()
    types_out["clusters_per_type"] = model.n_clusters
    message = atoms_message
    if not ev.mask.any():
        note = "No disordered region found."
        message = f"{message} {note}".strip()
    timings["total"] = time.perf_counter() - t_start
    return DisorderMap(
        table=out,
        mask=ev.mask,
        image=mg,
        area_fraction=st.area_fraction,
        n_regions=st.n_regions,
        parameters=params,
        rewards=rewards_out,
        types=types_out,
        optimization=opt,
        settings=settings,
        timings=timings,
        message=message,
    )


def _with_cov(p: dict[str, Any], covariance_types: tuple[str, ...]) -> dict[str, Any]:
    return {"covariance": covariance_types[0], **p}


def _default_covariance(
    model: DisorderModel,
    inliers: np.ndarray,
    types: np.ndarray,
    n_components: int,
    covariance_types: tuple[str, ...],
) -> str:
    """Without optimisation: "full" when every crystalline cluster has enough inliers to
    estimate a full covariance (10 per dimension), else "spherical". With a few dozen columns
    per type a full (or diagonal) covariance overfits, and the crystal's own columns then
    score as outliers."""
    counts = [int((inliers & (types == t)).sum()) for t in np.unique(types[types >= 0])]
    n_clusters = max(int(sum(model.n_clusters)), 1)
    per_cluster = min(counts) * len(counts) / n_clusters if counts else 0
    for cov in (("full",) if per_cluster >= 10 * (n_components + 1) else ()) + (
        "spherical",
        "diag",
        "full",
        "tied",
    ):
        if cov in covariance_types:
            return cov
    return covariance_types[0]


def _bayes_threshold(objective: DisorderObjective, covariance: str) -> float:
    """Lowest score whose disorder posterior exceeds 0.5 (inf when there is none)."""
    s = objective.model.scores(covariance)
    post = objective.mixture(covariance).posterior
    hit = post > 0.5
    if not hit.any():
        return float("inf")
    return float(np.min(s[hit])) - 1e-9


def _cell_radius(
    builder: MaskBuilder,
    inliers: np.ndarray,
    scored_a: np.ndarray,
    shape: tuple[int, int],
    margin: int,
) -> float:
    """99th percentile, over crystalline inlier atoms away from the edge, of the largest
    distance from a pixel of the atom's Voronoi cell to the atom: how far from any column a
    pixel of perfect crystal can be."""
    h, w = shape
    idx = scored_a[inliers] if inliers.any() else scored_a
    if idx.size == 0 or builder.n == 0:
        return 0.0
    inner = np.zeros(shape, bool)
    inner[margin : h - margin, margin : w - margin] = True
    lab = np.where(inner, builder.nearest + 1, 0)
    m = ndi.maximum(builder.dist, labels=lab, index=idx + 1)
    m = np.asarray(m, float)
    m = m[np.isfinite(m) & (m > 0)]
    return float(np.percentile(m, 99)) if m.size else 0.0
