"""The record of one optimisation run: every evaluation, the Pareto front and the "best" points."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError
from . import pareto as _pareto
from .space import SearchSpace

__all__ = ["OptimizationResult"]

PHASES = ("initial", "bo", "fallback")
_RESERVED = {"evaluation", "phase", "pareto", "best_euclidean", "best_chebyshev", "hypervolume"}


@dataclass
class OptimizationResult:
    """All evaluations of a multi-objective optimisation (every objective minimised).

    Attributes
    ----------
    params
        One dict per evaluation, in evaluation order.
    objectives
        Objective values, shape ``(n, m)``, as returned by the objective (NaN/inf kept).
    objective_names
        ``m`` names, used for table columns and axis labels.
    space
        The :class:`~atomscope.optimize.SearchSpace` searched.
    phase
        Per evaluation: ``"initial"`` (quasi-random design or user-given start points), ``"bo"``
        (proposed by the acquisition function) or ``"fallback"`` (a quasi-random point used
        because the model could not be fitted or proposed an already evaluated point; see
        :attr:`notes`).
    reference_point
        Reference point of the hypervolumes (objective units). ``None`` at construction means
        "infer from the data": the nadir of the final front plus 10 % of the front's extent.
    hypervolume_history
        Hypervolume of the first ``i + 1`` evaluations, for each ``i`` (computed when ``None``).
    timings
        Wall times in seconds: ``total_s``, ``initial_s`` and per BO iteration lists
        ``iteration_s``, ``fit_s``, ``acquisition_s``, ``evaluation_s``.
    notes
        Human-readable messages (fallbacks, skipped duplicates, early stops).
    stopped_reason
        ``"completed"``, ``"time budget"`` or ``"search space exhausted"``.
    seed, settings
        The seed and the optimiser settings, for the record.
    pareto_mask
        Non-dominated evaluations (computed; duplicates marked once, non-finite rows never).
    best_euclidean, best_chebyshev
        Index of the front point closest to the utopia point by Euclidean / Chebyshev distance
        after min–max normalisation over the front (``None`` when no evaluation is finite); see
        :func:`atomscope.optimize.pareto.choose_best`.
    """

    params: list[dict[str, Any]]
    objectives: np.ndarray
    objective_names: list[str]
    space: SearchSpace
    phase: list[str] | None = None
    reference_point: np.ndarray | None = None
    hypervolume_history: np.ndarray | None = None
    timings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stopped_reason: str = "completed"
    seed: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    pareto_mask: np.ndarray = field(init=False, repr=False)
    best_euclidean: int | None = field(init=False)
    best_chebyshev: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.space = SearchSpace(self.space)
        self.params = [dict(p) for p in self.params]
        Y = np.asarray(self.objectives, dtype=float)
        if Y.ndim == 1:
            Y = Y[:, None]
        self.objectives = Y
        self.objective_names = [str(n) for n in self.objective_names]
        n, m = Y.shape
        if len(self.params) != n:
            raise ParameterError(f"{len(self.params)} parameter sets but {n} objective rows")
        if len(self.objective_names) != m:
            raise ParameterError(f"{len(self.objective_names)} objective names for {m} objectives")
        clash = set(self.objective_names) & (set(self.space.names) | _RESERVED)
        if clash or len(set(self.objective_names)) != m:
            raise ParameterError(
                f"objective names must be unique and differ from the parameter names and from "
                f"{sorted(_RESERVED)}; got {self.objective_names}"
            )
        if self.phase is None:
            self.phase = ["initial"] * n
        self.phase = [str(p) for p in self.phase]
        if len(self.phase) != n or not set(self.phase) <= set(PHASES):
            raise ParameterError(f"phase must list one of {PHASES} per evaluation")
        finite_any = bool(np.all(np.isfinite(Y), axis=1).any()) if n else False
        if self.reference_point is None and finite_any:
            self.reference_point = _pareto.infer_reference_point(Y)
        if self.reference_point is not None:
            self.reference_point = np.asarray(self.reference_point, dtype=float).reshape(m)
        if self.hypervolume_history is None:
            self.hypervolume_history = self._hypervolume_history()
        self.hypervolume_history = np.asarray(self.hypervolume_history, dtype=float)
        self.pareto_mask = _pareto.pareto_mask(Y)
        if finite_any:
            norm = bool(self.settings.get("normalise", True)) if self.settings else True
            self.best_euclidean = _pareto.choose_best(
                Y, "euclidean", self.pareto_mask, normalise=norm
            )
            self.best_chebyshev = _pareto.choose_best(
                Y, "chebyshev", self.pareto_mask, normalise=norm
            )
        else:
            self.best_euclidean = self.best_chebyshev = None

    def _hypervolume_history(self) -> np.ndarray:
        n = self.objectives.shape[0]
        if self.reference_point is None:
            return np.zeros(n)
        return np.array(
            [_pareto.hypervolume(self.objectives[: i + 1], self.reference_point) for i in range(n)]
        )

    # -- convenience ----------------------------------------------------------------------
    @property
    def n_evaluations(self) -> int:
        return self.objectives.shape[0]

    @property
    def n_objectives(self) -> int:
        return self.objectives.shape[1]

    @property
    def hypervolume(self) -> float:
        """Hypervolume of all evaluations with respect to :attr:`reference_point`."""
        return float(self.hypervolume_history[-1]) if self.n_evaluations else 0.0

    @property
    def pareto_indices(self) -> np.ndarray:
        """Indices of the front, ordered by the first objective (then the second …)."""
        idx = np.flatnonzero(self.pareto_mask)
        Y = self.objectives[idx]
        return idx[np.lexsort(Y.T[::-1])] if idx.size else idx

    @property
    def pareto_params(self) -> list[dict[str, Any]]:
        return [dict(self.params[i]) for i in self.pareto_indices]

    @property
    def pareto_objectives(self) -> np.ndarray:
        return self.objectives[self.pareto_indices]

    def _best_index(self, method: str) -> int:
        if method not in ("euclidean", "chebyshev"):
            raise ParameterError(f"method must be 'euclidean' or 'chebyshev', got {method!r}")
        i = self.best_euclidean if method == "euclidean" else self.best_chebyshev
        if i is None:
            raise ParameterError(
                "no evaluation has finite values for every objective, so there "
                "is no best point; check the objective function"
            )
        return i

    def best(self, method: str = "euclidean") -> dict[str, Any]:
        """Parameters of the best point by ``"euclidean"`` or ``"chebyshev"`` distance."""
        return dict(self.params[self._best_index(method)])

    @property
    def best_euclidean_params(self) -> dict[str, Any]:
        return self.best("euclidean")

    @property
    def best_chebyshev_params(self) -> dict[str, Any]:
        return self.best("chebyshev")

    @property
    def best_euclidean_objectives(self) -> np.ndarray:
        return self.objectives[self._best_index("euclidean")].copy()

    @property
    def best_chebyshev_objectives(self) -> np.ndarray:
        return self.objectives[self._best_index("chebyshev")].copy()

    # -- tables and records ---------------------------------------------------------------
    def to_frame(self):
        """A pandas DataFrame, one row per evaluation.

        Columns: ``evaluation`` (0-based order), ``phase``, one per parameter, one per
        objective, ``pareto``, ``best_euclidean``, ``best_chebyshev`` (booleans) and
        ``hypervolume`` (of the evaluations so far).
        """
        import pandas as pd

        n = self.n_evaluations
        data: dict[str, Any] = {"evaluation": np.arange(n), "phase": list(self.phase)}
        for name in self.space.names:
            data[name] = [p[name] for p in self.params]
        for j, name in enumerate(self.objective_names):
            data[name] = self.objectives[:, j]
        data["pareto"] = self.pareto_mask.copy()
        data["best_euclidean"] = np.arange(n) == (
            -1 if self.best_euclidean is None else self.best_euclidean
        )
        data["best_chebyshev"] = np.arange(n) == (
            -1 if self.best_chebyshev is None else self.best_chebyshev
        )
        data["hypervolume"] = self.hypervolume_history
        return pd.DataFrame(data)

    def _point(self, i: int | None) -> dict[str, Any] | None:
        if i is None:
            return None
        return {
            "index": int(i),
            "params": dict(self.params[i]),
            "objectives": dict(zip(self.objective_names, self.objectives[i].tolist(), strict=True)),
        }

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly digest: counts, best points, the front, hypervolume and timings."""
        from .._fileio import to_jsonable

        return to_jsonable(
            {
                "n_evaluations": self.n_evaluations,
                "n_initial": self.phase.count("initial"),
                "n_bo": self.phase.count("bo"),
                "n_fallback": self.phase.count("fallback"),
                "n_nonfinite": int(np.sum(~np.all(np.isfinite(self.objectives), axis=1))),
                "objective_names": self.objective_names,
                "space": self.space.to_dict(),
                "best_euclidean": self._point(self.best_euclidean),
                "best_chebyshev": self._point(self.best_chebyshev),
                "pareto_front": [self._point(int(i)) for i in self.pareto_indices],
                "reference_point": self.reference_point,
                "hypervolume": self.hypervolume,
                "stopped_reason": self.stopped_reason,
                "seed": self.seed,
                "settings": self.settings,
                "timings": self.timings,
                "notes": self.notes,
            }
        )

    # -- figures --------------------------------------------------------------------------
    def plot_pareto(
        self, ax: Any = None, *, x: int | str = 0, y: int | str = 1, zoom: bool = True
    ) -> Any:
        """Draw the evaluations and the Pareto front in objective space.

        All evaluations are grey (circles: initial design, triangles: BO proposals), the front
        is coloured and connected as a staircase (two objectives), and the Euclidean and
        Chebyshev "best" points and the utopia point are marked.

        Parameters
        ----------
        ax
            Matplotlib axes (a new figure when ``None``).
        x, y
            Objectives on the axes (index or name), for three or more objectives.
        zoom
            Limit the axes to the front and its surroundings (up to 1.5 times the distance from
            the utopia to the reference point) when far-off evaluations would squash it; the
            number of points outside the view is written on the plot.

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = _new_axes(ax)
        if self.n_objectives == 1:
            return self.plot_history(ax, objective=0)
        jx, jy = self._objective_index(x), self._objective_index(y)
        Y = self.objectives
        finite = np.all(np.isfinite(Y), axis=1)
        phase = np.asarray(self.phase)
        for ph, marker, label in (
            ("initial", "o", "initial design"),
            ("bo", "^", "BO proposals"),
            ("fallback", "s", "fallback points"),
        ):
            sel = finite & (phase == ph)
            if sel.any():
                ax.scatter(
                    Y[sel, jx],
                    Y[sel, jy],
                    s=16,
                    marker=marker,
                    c="0.65",
                    lw=0,
                    label=label,
                    zorder=1,
                )
        front = self.pareto_indices
        if front.size:
            P = Y[front][:, [jx, jy]]
            if self.n_objectives == 2:
                order = np.lexsort((P[:, 1], P[:, 0]))
                ax.plot(
                    P[order, 0], P[order, 1], drawstyle="steps-post", color="C0", lw=1.2, zorder=2
                )
            ax.scatter(
                P[:, 0],
                P[:, 1],
                s=30,
                c="C0",
                edgecolors="k",
                lw=0.5,
                zorder=3,
                label=f"Pareto front ({front.size})",
            )
            ideal = Y[front].min(axis=0)
            ax.scatter(
                [ideal[jx]], [ideal[jy]], marker="x", s=50, c="k", zorder=4, label="utopia point"
            )
        if self.best_euclidean is not None:
            b = Y[self.best_euclidean]
            ax.scatter(
                [b[jx]],
                [b[jy]],
                marker="*",
                s=260,
                c="C3",
                edgecolors="k",
                lw=0.6,
                zorder=5,
                label="best (Euclidean)",
            )
        if self.best_chebyshev is not None:
            b = Y[self.best_chebyshev]
            ax.scatter(
                [b[jx]],
                [b[jy]],
                marker="D",
                s=70,
                facecolors="none",
                edgecolors="C2",
                lw=2.0,
                zorder=6,
                label="best (Chebyshev)",
            )
        ax.set_xlabel(self.objective_names[jx])
        ax.set_ylabel(self.objective_names[jy])
        hidden = int(np.sum(~finite))
        if zoom and front.size and self.reference_point is not None:
            hidden += self._zoom(ax, finite, jx, jy)
        if hidden:
            ax.text(
                0.99,
                0.99,
                f"{hidden} evaluation(s) not shown (outside view or non-finite)",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=7,
                color="0.3",
            )
        ax.set_title(
            f"{self.n_evaluations} evaluations, {front.size} on the Pareto front", fontsize=10
        )
        ax.legend(fontsize=7, loc="upper right", bbox_to_anchor=(1.0, 0.93), framealpha=0.8)
        return ax

    def _zoom(self, ax: Any, finite: np.ndarray, jx: int, jy: int) -> int:
        Y = self.objectives[finite]
        ideal = self.objectives[self.pareto_indices].min(axis=0)
        ref = self.reference_point
        lo_hi = []
        for j in (jx, jy):
            span = max(ref[j] - ideal[j], 1e-300)
            lo_hi.append((ideal[j] - 0.08 * span, ideal[j] + 1.5 * span))
        inside = (
            (Y[:, jx] >= lo_hi[0][0])
            & (Y[:, jx] <= lo_hi[0][1])
            & (Y[:, jy] >= lo_hi[1][0])
            & (Y[:, jy] <= lo_hi[1][1])
        )
        if inside.all():
            return 0
        ax.set_xlim(*lo_hi[0])
        ax.set_ylim(*lo_hi[1])
        return int(np.sum(~inside))

    def _objective_index(self, key: int | str) -> int:
        if isinstance(key, str):
            if key not in self.objective_names:
                raise ParameterError(f"unknown objective {key!r}; have {self.objective_names}")
            return self.objective_names.index(key)
        k = int(key)
        if not 0 <= k < self.n_objectives:
            raise ParameterError(f"objective index {k} out of range 0..{self.n_objectives - 1}")
        return k

    def plot_history(self, ax: Any = None, *, objective: int | str | None = None) -> Any:
        """Draw the run's progress against the evaluation number (1-based).

        With ``objective=None`` the hypervolume of the evaluations so far; with an objective's
        index or name, its values coloured by phase and its running minimum. A dashed line
        marks the end of the initial design.

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = _new_axes(ax)
        n = self.n_evaluations
        t = np.arange(1, n + 1)
        n_init = self.phase.count("initial")
        if objective is None:
            ax.step(t, self.hypervolume_history, where="post", color="C0")
            ax.set_ylabel("hypervolume")
            if self.reference_point is not None:
                ref = ", ".join(f"{v:.3g}" for v in self.reference_point)
                ax.set_title(f"hypervolume (reference point {ref})", fontsize=10)
        else:
            j = self._objective_index(objective)
            v = self.objectives[:, j]
            phase = np.asarray(self.phase)
            for ph, c in (("initial", "0.6"), ("bo", "C0"), ("fallback", "C1")):
                sel = (phase == ph) & np.isfinite(v)
                if sel.any():
                    ax.scatter(t[sel], v[sel], s=14, c=c, label=ph, zorder=2)
            with np.errstate(invalid="ignore"):
                running = np.fmin.accumulate(np.where(np.isfinite(v), v, np.nan))
            ax.step(t, running, where="post", color="k", lw=1, label="running minimum")
            if self.best_euclidean is not None:
                b = self.best_euclidean
                ax.scatter(
                    [b + 1],
                    [v[b]],
                    marker="*",
                    s=160,
                    c="C3",
                    edgecolors="k",
                    lw=0.6,
                    zorder=3,
                    label="best" if self.n_objectives == 1 else "best (Euclidean)",
                )
            ax.set_ylabel(self.objective_names[j])
            ax.legend(fontsize=7)
        if 0 < n_init < n:
            ax.axvline(n_init + 0.5, color="0.5", ls="--", lw=0.8)
        ax.set_xlabel("evaluation")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        return ax

    def save(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``optimization.csv``, ``optimization.json``, ``pareto.png`` and ``history.png``.

        Every file is written atomically (temporary name, then rename).

        Returns
        -------
        dict
            File role → path.
        """
        from .._fileio import atomic_path, write_json
        from ..report import figures  # selects Agg if no backend was chosen

        plt, save_figure = figures.plt, figures.save_figure

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        out: dict[str, Path] = {}
        with atomic_path(directory / "optimization.csv") as tmp:
            self.to_frame().to_csv(tmp, index=False)
        out["table"] = directory / "optimization.csv"
        out["summary"] = write_json(directory / "optimization.json", self.summary())
        fig, ax = plt.subplots(figsize=(5.5, 4.5), layout="constrained")
        self.plot_pareto(ax)
        out["pareto"] = save_figure(fig, directory / "pareto.png")
        rows = 1 + self.n_objectives
        fig, axes = plt.subplots(
            rows, 1, figsize=(6, 1.9 * rows), sharex=True, layout="constrained"
        )
        for j in range(self.n_objectives):
            self.plot_history(axes[j], objective=j)
            axes[j].set_xlabel("")
        self.plot_history(axes[-1])
        out["history"] = save_figure(fig, directory / "history.png")
        return out


def _new_axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    from ..report import figures  # noqa: F401  (selects Agg if no backend was chosen)

    plt = figures.plt

    _, ax = plt.subplots(figsize=(5.5, 4.5), layout="constrained")
    return ax
