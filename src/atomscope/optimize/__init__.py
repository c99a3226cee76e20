"""Shared optimiser: search spaces, multi-objective Bayesian optimisation, Pareto fronts.

Analyses describe their tunable parameters as a :class:`SearchSpace` and call :func:`minimize`
with physics-based objectives (all minimised); the result holds every evaluation, the Pareto
front and the "best" compromise by Euclidean and by Chebyshev distance to the utopia point.
This package knows nothing about images; torch and BoTorch are imported only when
:func:`minimize` runs.

Examples
--------
>>> from atomscope.optimize import Categorical, Integer, Real, SearchSpace, minimize
>>> space = SearchSpace([Real("threshold", 0.01, 0.5, log=True), Integer("num_sigma", 3, 12),
...                      Categorical("covariance", ["full", "tied", "diag", "spherical"])])
>>> result = minimize(my_rewards, space, objective_names=["count_error", "spacing_error"],
...                   n_initial=32, n_iterations=16)  # doctest: +SKIP
>>> result.best("euclidean"), result.save("out/")  # doctest: +SKIP
"""

from __future__ import annotations

from .mobo import DEFAULT_ACQ_OPTIONS, minimize
from .pareto import (
    choose_best,
    distance_to_utopia,
    hypervolume,
    hypervolume_2d,
    infer_reference_point,
    normalise,
    pareto_mask,
)
from .result import OptimizationResult
from .space import Categorical, Integer, Real, SearchSpace

__all__ = [
    "Real",
    "Integer",
    "Categorical",
    "SearchSpace",
    "minimize",
    "OptimizationResult",
    "DEFAULT_ACQ_OPTIONS",
    "pareto_mask",
    "choose_best",
    "distance_to_utopia",
    "normalise",
    "hypervolume",
    "hypervolume_2d",
    "infer_reference_point",
]
