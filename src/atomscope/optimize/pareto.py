"""Pareto fronts, the "best" compromise on a front, and hypervolumes — pure numpy.

Every function here treats **all objectives as minimised**. Rows containing NaN or ±inf are
never on a front and never contribute to a hypervolume (an analysis that fails for some
parameters can report ``nan`` without derailing the bookkeeping).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from ..errors import ParameterError

__all__ = [
    "pareto_mask",
    "normalise",
    "distance_to_utopia",
    "choose_best",
    "hypervolume_2d",
    "hypervolume",
    "infer_reference_point",
]


def _as_objectives(Y: np.ndarray) -> np.ndarray:
    Y = np.asarray(Y, dtype=float)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2:
        raise ParameterError(f"objective values must be an (n, m) array, got shape {Y.shape}")
    return Y


def pareto_mask(Y: np.ndarray, *, deduplicate: bool = True) -> np.ndarray:
    """Boolean mask of the non-dominated rows of *Y* (every column minimised).

    Row *i* is dominated when some row *j* is ``<=`` in every objective and ``<`` in at least
    one. Rows with a non-finite value are never on the front.

    Parameters
    ----------
    Y
        Objective values, shape ``(n, m)`` (or ``(n,)`` for one objective).
    deduplicate
        When several rows have exactly the same non-dominated values, mark only the first of
        them (lowest index), so the front lists each objective vector once; with ``False`` all
        copies are marked.

    Returns
    -------
    numpy.ndarray
        Boolean array of shape ``(n,)``.
    """
    Y = _as_objectives(Y)
    n, m = Y.shape
    mask = np.zeros(n, dtype=bool)
    finite = np.all(np.isfinite(Y), axis=1)
    idx = np.flatnonzero(finite)
    if idx.size == 0:
        return mask
    F = Y[idx]
    k = F.shape[0]
    keep = np.ones(k, dtype=bool)
    chunk = max(1, (1 << 22) // max(k * m, 1))
    for start in range(0, k, chunk):
        block = F[start : start + chunk]  # (c, m)
        le = np.all(F[None, :, :] <= block[:, None, :], axis=2)  # (c, k): F[j] <= block[i]
        lt = np.any(F[None, :, :] < block[:, None, :], axis=2)
        dominated = np.any(le & lt, axis=1)
        if deduplicate:
            eq = le & ~lt  # F[j] == block[i]
            earlier = np.arange(k)[None, :] < (start + np.arange(block.shape[0]))[:, None]
            dominated |= np.any(eq & earlier, axis=1)
        keep[start : start + block.shape[0]] = ~dominated
    mask[idx[keep]] = True
    return mask


def normalise(Y: np.ndarray, bounds: np.ndarray | None = None) -> np.ndarray:
    """Min–max scale each column of *Y* to [0, 1].

    Parameters
    ----------
    Y
        Values, shape ``(n, m)``.
    bounds
        ``(2, m)`` array of per-column (low, high); by default the minimum and maximum of the
        finite values of each column. A column whose high equals its low (a constant
        objective) is mapped to 0 rather than divided by zero.

    Returns
    -------
    numpy.ndarray
        ``(Y - low) / (high - low)``; non-finite entries stay non-finite.
    """
    Y = _as_objectives(Y)
    if bounds is None:
        lo, hi = _finite_min_max(Y)
    else:
        b = np.asarray(bounds, dtype=float)
        if b.shape != (2, Y.shape[1]):
            raise ParameterError(f"bounds must have shape (2, {Y.shape[1]}), got {b.shape}")
        lo, hi = b[0], b[1]
    span = hi - lo
    span = np.where(np.isfinite(span) & (span > 0), span, 1.0)
    lo = np.where(np.isfinite(lo), lo, 0.0)
    return (Y - lo) / span


def _finite_min_max(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    F = np.where(np.isfinite(Y), Y, np.nan)
    with np.errstate(all="ignore"):
        all_nan = np.all(np.isnan(F), axis=0)
        F[:, all_nan] = 0.0
        return np.nanmin(F, axis=0), np.nanmax(F, axis=0)


Method = Literal["euclidean", "chebyshev"]


def distance_to_utopia(
    Y: np.ndarray,
    method: Method = "euclidean",
    mask: np.ndarray | None = None,
    weights: Sequence[float] | None = None,
    normalise: bool = True,
) -> np.ndarray:
    """Normalised distance of each front point to the utopia point (NaN off the front).

    The utopia point is the per-objective minimum over the front (which is also the minimum over
    all finite rows). Each objective is min–max normalised **over the front** — the front's
    minimum maps to 0 and its maximum (the nadir) to 1 — so the choice depends neither on the
    units of the objectives nor on how bad the dominated evaluations were. An objective that is
    constant over the front maps to 0 and does not influence the choice.

    Parameters
    ----------
    Y
        Objective values, shape ``(n, m)``, all minimised.
    method
        ``"euclidean"`` (root of the sum of squares) or ``"chebyshev"`` (largest coordinate).
    mask
        Rows to consider (default: :func:`pareto_mask` of *Y*). Rows with non-finite values are
        always left out.
    weights
        Optional non-negative per-objective factors applied after normalisation.
    normalise
        False keeps the objectives' own units (distances from the utopia point without
        rescaling): right when the objectives share a unit, e.g. fractions of one count.
    """
    Y = _as_objectives(Y)
    if method not in ("euclidean", "chebyshev"):
        raise ParameterError(f"method must be 'euclidean' or 'chebyshev', got {method!r}")
    front = pareto_mask(Y) if mask is None else np.asarray(mask, dtype=bool).copy()
    if front.shape != (Y.shape[0],):
        raise ParameterError(f"mask must have shape ({Y.shape[0]},), got {front.shape}")
    front &= np.all(np.isfinite(Y), axis=1)
    out = np.full(Y.shape[0], np.nan)
    if not front.any():
        return out
    P = Y[front]
    Z = (
        normalise_objectives(P, np.stack([P.min(axis=0), P.max(axis=0)]))
        if normalise
        else P - P.min(axis=0)
    )
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        if w.shape != (Y.shape[1],) or np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ParameterError(
                f"weights must be {Y.shape[1]} non-negative numbers, got {weights}"
            )
        Z = Z * w
    out[front] = np.sqrt(np.sum(Z**2, axis=1)) if method == "euclidean" else np.max(Z, axis=1)
    return out


def choose_best(
    Y: np.ndarray,
    method: Method = "euclidean",
    mask: np.ndarray | None = None,
    weights: Sequence[float] | None = None,
    normalise: bool = True,
) -> int:
    """Index of the front point closest to the utopia point after normalisation.

    See :func:`distance_to_utopia` for the normalisation (min–max over the front, constant
    objectives ignored). Ties — frequent for Chebyshev, where both ends of a front sit at
    distance 1 — are broken by the Euclidean distance and then by the lower index, so the
    result is deterministic.

    Parameters
    ----------
    Y
        Objective values, shape ``(n, m)``, all minimised.
    method
        ``"euclidean"`` or ``"chebyshev"``.
    mask
        Candidate rows (default: the Pareto front of *Y*).
    weights
        Optional per-objective factors applied after normalisation.

    Returns
    -------
    int
        Row index into *Y*.

    Raises
    ------
    ParameterError
        When no candidate row has only finite values.
    """
    Y = _as_objectives(Y)
    d = distance_to_utopia(Y, method, mask, weights, normalise)
    cand = np.flatnonzero(np.isfinite(d))
    if cand.size == 0:
        raise ParameterError("no evaluation has finite values for every objective")
    eu = distance_to_utopia(Y, "euclidean", np.isfinite(d), weights, normalise)
    order = np.lexsort((cand, np.round(eu[cand], 12), np.round(d[cand], 12)))
    return int(cand[order[0]])


def _check_ref(Y: np.ndarray, ref: Sequence[float] | np.ndarray) -> np.ndarray:
    r = np.asarray(ref, dtype=float).reshape(-1)
    if r.shape != (Y.shape[1],) or not np.all(np.isfinite(r)):
        raise ParameterError(
            f"the reference point must be {Y.shape[1]} finite numbers, got {ref!r}"
        )
    return r


def _dominating(Y: np.ndarray, r: np.ndarray) -> np.ndarray:
    ok = np.all(np.isfinite(Y), axis=1) & np.all(Y < r, axis=1)
    return Y[ok]


def _hv2(P: np.ndarray, r: np.ndarray) -> float:
    if P.shape[0] == 0:
        return 0.0
    order = np.lexsort((P[:, 1], P[:, 0]))
    x, y = P[order, 0], P[order, 1]
    running = np.minimum.accumulate(y)
    prev = np.concatenate([[r[1]], running[:-1]])
    return float(np.sum((r[0] - x) * np.clip(prev - y, 0.0, None)))


def hypervolume_2d(Y: np.ndarray, ref: Sequence[float] | np.ndarray) -> float:
    """Exact area dominated by the rows of *Y* (two minimised objectives) and bounded by *ref*.

    Only points strictly better than *ref* in both objectives contribute; dominated points and
    non-finite rows are ignored. Units: product of the two objectives' units.
    """
    Y = _as_objectives(Y)
    if Y.shape[1] != 2:
        raise ParameterError(f"hypervolume_2d needs two objectives, got {Y.shape[1]}")
    r = _check_ref(Y, ref)
    return _hv2(_dominating(Y, r), r)


def _hv3(P: np.ndarray, r: np.ndarray) -> float:
    if P.shape[0] == 0:
        return 0.0
    P = P[np.argsort(P[:, 2], kind="stable")]
    z = np.append(P[:, 2], r[2])
    hv = 0.0
    for k in range(P.shape[0]):
        dz = z[k + 1] - z[k]
        if dz > 0:
            hv += _hv2(P[: k + 1, :2], r[:2]) * dz
    return float(hv)


def hypervolume(Y: np.ndarray, ref: Sequence[float] | np.ndarray) -> float:
    """Hypervolume dominated by the rows of *Y* (all objectives minimised), bounded by *ref*.

    Exact in numpy for one to three objectives (sweep for two, slicing for three); for more it
    uses BoTorch's exact ``Hypervolume`` (imported only then).

    Parameters
    ----------
    Y
        Objective values, shape ``(n, m)``.
    ref
        Reference point, ``m`` finite values worse than every point that should count.
    """
    Y = _as_objectives(Y)
    r = _check_ref(Y, ref)
    P = _dominating(Y, r)
    if P.shape[0] == 0:
        return 0.0
    P = P[pareto_mask(P)]
    m = Y.shape[1]
    if m == 1:
        return float(r[0] - P[:, 0].min())
    if m == 2:
        return _hv2(P, r)
    if m == 3:
        return _hv3(P, r)
    import torch
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    hv = Hypervolume(ref_point=-torch.as_tensor(r, dtype=torch.float64))
    return float(hv.compute(-torch.as_tensor(P, dtype=torch.float64)))


def infer_reference_point(Y: np.ndarray, scale: float = 0.1) -> np.ndarray:
    """A reference point slightly worse than the nadir of the Pareto front of *Y*.

    ``nadir + scale * (nadir - ideal)`` per objective, with nadir and ideal taken over the
    front. Where the front has no extent in an objective, the extent of all finite values is
    used, and failing that ``max(|nadir|, 1)``.
    """
    Y = _as_objectives(Y)
    front = pareto_mask(Y)
    if not front.any():
        raise ParameterError("no evaluation has finite values for every objective")
    P = Y[front]
    nadir, ideal = P.max(axis=0), P.min(axis=0)
    span = nadir - ideal
    lo, hi = _finite_min_max(Y)
    span = np.where(span > 0, span, hi - lo)
    span = np.where(span > 0, span, np.maximum(np.abs(nadir), 1.0))
    return nadir + scale * span


normalise_objectives = normalise
