"""Rewards for the disorder threshold and covariance type, and the choice on the Pareto front.

The paper's two rewards (both minimised here):

``1 - compactness``  compactness = 4π·area / perimeter² of the whole flagged mask (1 for one
                     disk, 1/n for n equal disks); undefined (NaN, i.e. worst) for an empty
                     mask, as area/perimeter² is;
``perimeter``        total interface length normalised by the image's own perimeter 2(H + W).

**Why they are not enough.** Both are optimised by flagging almost nothing: one round blob
around the single most unusual column has compactness ≈ 1 and a tiny perimeter, whatever the
image holds. The optimiser finds that corner reliably (see ``benchmarks/disorder.py``).

**The added reward** (``rewards="robust"``, the default) ties the flagged set to the evidence:

``misfit``           1 − soft F1 of the flagged atoms against the posterior probability that
                     each atom belongs to the disorder component of a two-component model of
                     the score distribution (:class:`~atomscope.disorder.model.ScoreMixture`):
                     ``1 − 2 Σ_flagged p / (n_flagged + Σ p)``, where p is kept only for atoms
                     in groups of at least ``min_atoms`` likely-disordered atoms (an isolated
                     outlier is not a region). Flagging one blob when a
                     hundred atoms are outliers scores ≈ 1; flagging the outliers scores ≈ 0.
                     When the scores show no disorder component (Σ p = 0), an empty flag set
                     scores 0 and any flag scores 1, so "flag nothing" is optimal.

In robust mode the spatial rewards are evaluated as 0 for an empty mask (no region: nothing
irregular) — the misfit alone decides whether there is a region at all.

**Choice.** Robust mode treats the misfit as a constraint (ε-constraint method): among Pareto
points whose misfit is within ``tolerance`` of the best, the spatial rewards choose, by the
shared Euclidean or Chebyshev distance to the utopia point. Paper mode uses that distance
on its two rewards directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..optimize import choose_best
from .mask import AtomGraph, MaskBuilder, MaskStats, mask_stats
from .model import DisorderModel, ScoreMixture

__all__ = ["REWARD_SETS", "misfit", "DisorderObjective", "choose_point"]

#: objective names per reward set (all minimised)
REWARD_SETS: dict[str, tuple[str, ...]] = {
    "paper": ("1 - compactness", "perimeter"),
    "robust": ("misfit", "1 - compactness", "perimeter"),
}


def misfit(flags: np.ndarray, posterior: np.ndarray) -> float:
    """1 − soft F1 of *flags* against the disorder *posterior* (see module notes)."""
    f = np.asarray(flags, bool)
    p = np.asarray(posterior, float)
    total = f.sum() + p.sum()
    if total <= 1e-9:
        return 0.0
    return float(1.0 - 2.0 * p[f].sum() / total)


@dataclass
class Evaluation:
    """Everything one parameter set produces."""

    flags: np.ndarray  # per atom (all atoms, after regularisation)
    mask: np.ndarray
    stats: MaskStats
    objectives: dict[str, float]


@dataclass
class DisorderObjective:
    """Threshold + covariance type → flags → mask → rewards, with everything precomputed.

    Parameters
    ----------
    model : DisorderModel
        Scores per covariance type (cached).
    scored_index : ndarray of int
        Index (into all atoms) of every scored atom, in the model's order.
    graph : AtomGraph
        Neighbour graph of all analysed atoms.
    builder : MaskBuilder
        Nearest-atom map of the image.
    rewards : {"robust", "paper"}
        Reward set.
    min_atoms : int
        Smallest flagged group kept (see :meth:`AtomGraph.regularise`).
    """

    model: DisorderModel
    scored_index: np.ndarray
    graph: AtomGraph
    builder: MaskBuilder
    rewards: str = "robust"
    min_atoms: int = 4
    _mixtures: dict[str, ScoreMixture] = field(init=False, default_factory=dict, repr=False)
    _cache: dict[tuple, Evaluation] = field(init=False, default_factory=dict, repr=False)
    _region: dict[str, np.ndarray] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.rewards not in REWARD_SETS:
            raise ParameterError(
                f"rewards must be one of {', '.join(REWARD_SETS)}, not {self.rewards!r}"
            )
        self.names = REWARD_SETS[self.rewards]
        self.scored = np.zeros(self.graph.n, bool)
        self.scored[self.scored_index] = True

    def mixture(self, covariance: str) -> ScoreMixture:
        if covariance not in self._mixtures:
            self._mixtures[covariance] = ScoreMixture(self.model.scores(covariance))
        return self._mixtures[covariance]

    def region_posterior(self, covariance: str) -> np.ndarray:
        """The disorder posterior of atoms that belong to a group of at least ``min_atoms``
        likely-disordered atoms (posterior > 0.5); zero elsewhere. Isolated outliers (a
        spurious detection, a point defect) are not an amorphous region, and a reward that
        asked for them to be flagged would forbid "flag nothing" on a perfect crystal."""
        if covariance not in self._region:
            post = self.mixture(covariance).posterior
            likely = np.zeros(self.graph.n, bool)
            likely[self.scored_index] = post > 0.5
            grouped = (
                likely & ~self.graph._small(likely, self.min_atoms) if likely.any() else likely
            )
            self._region[covariance] = np.where(grouped[self.scored_index], post, 0.0)
        return self._region[covariance]

    def flags(self, threshold: float, covariance: str) -> np.ndarray:
        s = self.model.scores(covariance)
        raw = np.zeros(self.graph.n, bool)
        raw[self.scored_index] = s > threshold
        return self.graph.regularise(raw, self.scored, self.min_atoms)

    def evaluate(self, params: dict[str, Any]) -> Evaluation:
        cov = str(params["covariance"])
        f = self.flags(float(params["threshold"]), cov)
        key = (cov, np.packbits(f).tobytes())
        if key in self._cache:
            return self._cache[key]
        mask = self.builder.build(f)
        st = mask_stats(mask)
        h, w = mask.shape
        per = st.perimeter / (2.0 * (h + w))
        if st.area == 0:
            irr = float("nan") if self.rewards == "paper" else 0.0
        else:
            irr = 1.0 - st.compactness
        obj = {"1 - compactness": irr, "perimeter": per}
        if self.rewards == "robust":
            obj["misfit"] = misfit(f[self.scored_index], self.region_posterior(cov))
        ev = Evaluation(f, mask, st, {k: obj[k] for k in self.names})
        self._cache[key] = ev
        return ev

    def __call__(self, params: dict[str, Any]) -> list[float]:
        ev = self.evaluate(params)
        return [ev.objectives[k] for k in self.names]


def choose_point(
    objectives: np.ndarray, pareto: np.ndarray, rewards: str, method: str, tolerance: float = 0.01
) -> int | None:
    """Index of the chosen evaluation (see the module notes); None when no evaluation has
    finite rewards (with the paper's rewards: nothing was ever flagged)."""
    Y = np.asarray(objectives, float)
    front = np.asarray(pareto, bool) & np.all(np.isfinite(Y), axis=1)
    if not front.any():
        return None  # paper rewards: every evaluation flagged nothing (compactness undefined)
    if rewards == "paper":
        return choose_best(Y, method, front)
    best = float(Y[front, 0].min())
    cand = front & (Y[:, 0] <= best + tolerance)
    if cand.sum() == 1:
        return int(np.flatnonzero(cand)[0])
    # the spatial rewards choose among statistically equivalent points; a constant column is
    # ignored by the shared normalisation
    return choose_best(Y[:, 1:], method, cand)
