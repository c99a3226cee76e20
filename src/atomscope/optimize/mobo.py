"""Multi-objective Bayesian optimisation (BoTorch, qLogNEHVI) over a :class:`SearchSpace`.

The loop, in short:

1. **Initial design.** Optional user start points (e.g. an analysis's defaults), then a scrambled
   Sobol design, skipping repeats, up to ``n_initial`` evaluations. When evaluations are cheap
   (milliseconds, as for an atom finder with a cached scale space) a large design such as
   ``n_initial=64`` costs almost nothing and makes the model much better.
2. **Model.** The observed objectives are min–max normalised (non-finite values first replaced
   by the worst finite value of that objective, so a failed evaluation reads as "bad"),
   negated (BoTorch maximises) and modelled by one ``SingleTaskGP`` per objective (a
   ``ModelListGP``) in float64, hyper-parameters by ``fit_gpytorch_mll`` (warm-started from
   the previous iteration). Reals and integers use BoTorch's default RBF kernel on the unit
   cube; with categoricals the kernel is ``RBF(ordinal) x CategoricalKernel(categorical)``
   (see :meth:`_Run._kernel` for why not ``MixedSingleTaskGP``). The model step runs on one
   torch thread (restored afterwards).
3. **Acquisition.** ``qLogNoisyExpectedHypervolumeImprovement`` (``qLogNoisyExpectedImprovement``
   for one objective) with the reference point given by the user or, in normalised units, the
   nadir of the current front plus half its extent. Candidates come one at a time (q = 1); a
   ``batch_size > 1`` is built by sequential greedy conditioning, never by a joint q-batch
   optimisation (a joint q = 8 took 138 s on 2 CPU cores). The acquisition is optimised by
   L-BFGS-B from a few restarts (``optimize_acqf``); with categoricals the restarts are drawn
   from raw points over the whole mixed space and keep their categories (one optimisation
   whatever the number of category combinations); small discrete spaces are enumerated
   (``optimize_acqf_discrete``). Integers are optimised relaxed and snapped afterwards.
4. **Safety.** A candidate that repeats an evaluated point is replaced by the next restart's
   optimum; when every restart repeats one (the GP allows for noise, so an evaluated corner
   can stay the acquisition optimum), and when an iteration's model cannot be fitted, the
   next unused Sobol point is evaluated instead (phase ``"fallback"``, with a note). That
   explored better on ZDT1 than acquisition-scored points sprayed around the repeated one.
   The user's run never stops because of a numerical problem in the model; errors raised by
   the objective itself do propagate.

torch and botorch are imported only when :func:`minimize` runs, so ``import atomscope.optimize``
stays cheap.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ParameterError
from . import pareto as _pareto
from .result import OptimizationResult
from .space import Dimension, SearchSpace, _SobolStream

__all__ = ["minimize", "DEFAULT_ACQ_OPTIONS"]

#: Settings of the acquisition optimisation; override single entries with ``acq_options=``.
DEFAULT_ACQ_OPTIONS: dict[str, Any] = {
    # L-BFGS-B starts per acquisition optimisation, and the quasi-random points scored to pick
    # them. On ZDT1 (3 parameters, 20 evaluations) 4/128 let every start fall back to an
    # evaluated corner in 1 iteration of 4; 8/256 cut that to 1 in 10 for 15 % more time.
    "num_restarts": 8,
    "raw_samples": 256,
    "maxiter": 100,  # L-BFGS-B iterations per start
    "mc_samples": 64,  # quasi-MC samples of the posterior inside qLogNEHVI
    "max_discrete_enumeration": 4096,  # discrete spaces up to this size are enumerated
    # inferred reference point of the acquisition: front nadir + margin x front extent (in
    # objectives min-max normalised over the observations). 0.5 found 2x more of the true
    # front than the usual 0.1 on ZDT1 (24 evaluations): a tight box stops the front growing.
    "reference_margin": 0.5,
    # torch threads during the model step (restored afterwards); the matrices are tiny, and on
    # a busy 2-core machine two threads made one iteration up to 10x slower. None: unchanged.
    "torch_threads": 1,
    # start each GP fit from the previous iteration's hyper-parameters: halves the fit time,
    # same hypervolume on ZDT1
    "warm_start": True,
}


def minimize(
    objective: Callable[[dict[str, Any]], Sequence[float]] | None,
    space: SearchSpace | Sequence[Dimension],
    *,
    objective_names: Sequence[str],
    n_initial: int = 16,
    n_iterations: int = 24,
    batch_size: int = 1,
    seed: int = 0,
    reference_point: Sequence[float] | None = None,
    evaluate_batch: Callable[[list[dict[str, Any]]], np.ndarray] | None = None,
    initial_params: Sequence[Mapping[str, Any]] | None = None,
    time_budget_s: float | None = None,
    show_progress: bool = True,
    device: str | None = None,
    acq_options: Mapping[str, Any] | None = None,
    normalise: bool = True,
) -> OptimizationResult:
    """Minimise several objectives jointly over a search space by Bayesian optimisation.

    Parameters
    ----------
    objective
        ``objective(params) -> sequence of m floats``, all to be minimised. May return NaN or
        inf for parameters where the analysis fails (recorded as given; modelled as the worst
        finite value seen for that objective). May be ``None`` when *evaluate_batch* is given.
    space
        The :class:`SearchSpace` (or a list of :class:`Real` / :class:`Integer` /
        :class:`Categorical`).
    objective_names
        Names of the ``m`` objectives (table columns, axis labels).
    n_initial
        Size of the initial design, including *initial_params*. Cheap objectives (milliseconds)
        afford 64 or more.
    n_iterations
        Number of BO iterations; each proposes and evaluates *batch_size* points, so at most
        ``n_initial + n_iterations * batch_size`` evaluations in all.
    batch_size
        Points per iteration (sequential greedy; useful with *evaluate_batch*).
    seed
        Seed of the Sobol design and of every random step of the model; the same seed gives the
        same evaluations. Global numpy and torch random states are left untouched.
    reference_point
        Hypervolume reference point in objective units (worse than any interesting point). By
        default it is inferred at every iteration from the current front (nadir + 10 % of the
        front's extent) and, for the recorded hypervolume history, from the final front.
    evaluate_batch
        ``evaluate_batch(list_of_params) -> (k, m) array``: evaluates several parameter sets in
        one call (vectorised objectives, a process pool …); used instead of *objective*.
    initial_params
        Parameter sets evaluated first (e.g. ``space.default()``), so the result is never worse
        than a known starting point.
    time_budget_s
        Wall-clock budget in seconds. Checked before each evaluation of the initial design and
        before each BO iteration; the run may overrun by one iteration.
    show_progress
        Show a progress bar (one tick per evaluation).
    device
        Torch device for the model (``None``: CPU). Results agree with CPU to float tolerance.
    acq_options
        Overrides of :data:`DEFAULT_ACQ_OPTIONS`.
    normalise
        How the "best" points are chosen: True rescales every objective to [0, 1] over the
        front first; False keeps their own units (when they share one).

    Returns
    -------
    OptimizationResult
        Every evaluation, the Pareto front, the best points by Euclidean and Chebyshev distance,
        hypervolume history and timings.

    Raises
    ------
    ParameterError
        For invalid arguments or an objective that returns the wrong number of values.

    Examples
    --------
    >>> from atomscope.optimize import Real, SearchSpace, minimize
    >>> space = SearchSpace([Real("x", 0, 1), Real("y", 0, 1)])
    >>> res = minimize(lambda p: (p["x"], 1 - p["x"] + p["y"] ** 2), space,
    ...                objective_names=["f1", "f2"], n_initial=8, n_iterations=4,
    ...                show_progress=False)  # doctest: +SKIP
    >>> res.best("chebyshev")  # doctest: +SKIP
    """
    run = _Run(
        objective,
        space,
        objective_names,
        n_initial,
        n_iterations,
        batch_size,
        seed,
        reference_point,
        evaluate_batch,
        initial_params,
        time_budget_s,
        show_progress,
        device,
        acq_options,
    )
    run.normalise = bool(normalise)
    return run.execute()


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class _Run:
    """State of one :func:`minimize` call (kept in one object to keep the loop readable)."""

    def __init__(
        self,
        objective,
        space,
        objective_names,
        n_initial,
        n_iterations,
        batch_size,
        seed,
        reference_point,
        evaluate_batch,
        initial_params,
        time_budget_s,
        show_progress,
        device,
        acq_options,
    ) -> None:
        self.space = SearchSpace(space)
        if isinstance(objective_names, str):
            objective_names = [objective_names]
        self.names = [str(n) for n in objective_names]
        self.m = len(self.names)
        if self.m == 0:
            raise ParameterError("objective_names must name at least one objective")
        if len(set(self.names)) != self.m or set(self.names) & set(self.space.names):
            raise ParameterError(
                f"objective names must be unique and differ from the parameter names "
                f"{self.space.names}; got {self.names}"
            )
        if objective is None and evaluate_batch is None:
            raise ParameterError("give an objective function or evaluate_batch")
        if objective is not None and not callable(objective):
            raise ParameterError(f"objective must be callable, got {objective!r}")
        if evaluate_batch is not None and not callable(evaluate_batch):
            raise ParameterError(f"evaluate_batch must be callable, got {evaluate_batch!r}")
        self.objective = objective
        self.evaluate_batch = evaluate_batch
        self.n_initial = _check_int(n_initial, "n_initial", 1)
        self.n_iterations = _check_int(n_iterations, "n_iterations", 0)
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        self.seed = _check_int(seed, "seed", 0)
        if reference_point is not None:
            r = np.asarray(reference_point, dtype=float).reshape(-1)
            if r.shape != (self.m,) or not np.all(np.isfinite(r)):
                raise ParameterError(
                    f"reference_point must be {self.m} finite numbers, got {reference_point!r}"
                )
            reference_point = r
        self.reference_point = reference_point
        self.initial_params = [self.space.validate(p) for p in (initial_params or [])]
        if time_budget_s is not None:
            if not isinstance(time_budget_s, int | float) or not time_budget_s > 0:
                raise ParameterError(
                    f"time_budget_s must be a positive number of seconds, got {time_budget_s!r}"
                )
        self.time_budget_s = time_budget_s
        self.show_progress = show_progress
        self.device = device
        unknown = set(acq_options or {}) - set(DEFAULT_ACQ_OPTIONS)
        if unknown:
            raise ParameterError(
                f"unknown acq_options {sorted(unknown)}; known: {sorted(DEFAULT_ACQ_OPTIONS)}"
            )
        self.opts = {**DEFAULT_ACQ_OPTIONS, **(acq_options or {})}
        # state
        self.rng = np.random.default_rng(self.seed)
        self.sobol = _SobolStream(len(self.space), self.rng)
        self.X: list[np.ndarray] = []  # encoded rows
        self.Y: list[np.ndarray] = []  # objective rows
        self.params: list[dict[str, Any]] = []
        self.phase: list[str] = []
        self.keys: set[tuple] = set()
        self.notes: list[str] = []
        self.timings: dict[str, Any] = {
            "initial_s": 0.0,
            "iteration_s": [],
            "fit_s": [],
            "acquisition_s": [],
            "evaluation_s": [],
        }
        self.t0 = 0.0
        self.bar = None
        self._hyper: list[dict[str, Any]] = []  # GP hyper-parameters of the last fit

    # -- helpers --------------------------------------------------------------------------
    def _over_budget(self) -> bool:
        return (
            self.time_budget_s is not None and time.perf_counter() - self.t0 >= self.time_budget_s
        )

    def _exhausted(self) -> bool:
        card = self.space.cardinality
        return card is not None and len(self.keys) >= card

    def _new_sobol_points(self, k: int, exclude: set[tuple]) -> np.ndarray:
        """Up to *k* encoded Sobol points not in ``self.keys`` nor *exclude*."""
        out: list[np.ndarray] = []
        taken = set(exclude)
        tries = 0
        while len(out) < k and tries < 64:
            cand = self.space.from_unit(self.sobol.draw(max(k - len(out), 8)))
            for row, key in zip(cand, self.space.keys(cand), strict=True):
                if key not in self.keys and key not in taken:
                    out.append(row)
                    taken.add(key)
                    if len(out) == k:
                        break
            tries += 1
        if len(out) < k and self.space.cardinality is not None:
            # small discrete space: Sobol keeps repeating itself, take unseen points directly
            allp = self.space.enumerate_encoded()
            for i in self.rng.permutation(allp.shape[0]):
                key = self.space.keys(allp[i])[0]
                if key not in self.keys and key not in taken:
                    out.append(allp[i])
                    taken.add(key)
                    if len(out) == k:
                        break
        return np.array(out).reshape(-1, len(self.space))

    def _evaluate(self, X: np.ndarray, phase: Sequence[str]) -> float:
        """Evaluate encoded rows, record them; returns the wall time in seconds."""
        t = time.perf_counter()
        params = self.space.decode(X)
        if self.evaluate_batch is not None:
            Y = np.asarray(self.evaluate_batch([dict(p) for p in params]), dtype=float)
            if self.m == 1 and Y.ndim == 1:
                Y = Y[:, None]
            if Y.shape != (len(params), self.m):
                raise ParameterError(
                    f"evaluate_batch returned shape {Y.shape} for {len(params)} parameter sets "
                    f"and {self.m} objectives; expected ({len(params)}, {self.m})"
                )
            rows = list(Y)
        else:
            rows = []
            for p in params:
                y = np.asarray(self.objective(dict(p)), dtype=float).reshape(-1)
                if y.shape != (self.m,):
                    raise ParameterError(
                        f"the objective returned {y.size} value(s) for {p}; expected {self.m} "
                        f"({', '.join(self.names)})"
                    )
                rows.append(y)
                if self.bar is not None:
                    self.bar.update(1)
        if self.evaluate_batch is not None and self.bar is not None:
            self.bar.update(len(params))
        snapped = self.space.snap(X)
        for x, key, p, y, ph in zip(
            snapped, self.space.keys(snapped), params, rows, phase, strict=True
        ):
            self.X.append(x)
            self.Y.append(np.array(y, dtype=float))
            self.params.append(p)
            self.phase.append(ph)
            self.keys.add(key)
        return time.perf_counter() - t

    # -- main loop ------------------------------------------------------------------------
    def execute(self) -> OptimizationResult:
        from .._progress import progress_bar

        self.t0 = time.perf_counter()
        total = self.n_initial + self.n_iterations * self.batch_size
        if self.space.cardinality is not None:
            total = min(total, self.space.cardinality)
        self.bar = progress_bar(
            show_progress=self.show_progress, total=total, desc="optimising parameters", unit="eval"
        )
        stopped = "completed"
        try:
            stopped = self._initial_design()
            if stopped == "completed":
                stopped = self._bo_loop()
        finally:
            self.bar.close()
        self.timings["total_s"] = time.perf_counter() - self.t0
        its = self.timings["iteration_s"]
        self.timings["mean_iteration_s"] = float(np.mean(its)) if its else None
        if stopped != "completed":
            self.notes.append(f"stopped early: {stopped}")
        Y = np.array(self.Y, dtype=float).reshape(-1, self.m)
        return OptimizationResult(
            params=self.params,
            objectives=Y,
            objective_names=self.names,
            space=self.space,
            phase=self.phase,
            reference_point=self.reference_point,
            timings=self.timings,
            notes=self.notes,
            stopped_reason=stopped,
            seed=self.seed,
            settings={
                "n_initial": self.n_initial,
                "n_iterations": self.n_iterations,
                "batch_size": self.batch_size,
                "time_budget_s": self.time_budget_s,
                "acquisition": ("qLogNEHVI" if self.m > 1 else "qLogNEI"),
                "acq_options": self.opts,
                "normalise": getattr(self, "normalise", True),
                "device": None if self.device is None else str(self.device),
            },
        )

    def _initial_design(self) -> str:
        t = time.perf_counter()
        rows: list[np.ndarray] = []
        seen: set[tuple] = set()
        if self.initial_params:
            E = self.space.encode(self.initial_params)
            for row, key in zip(E, self.space.keys(E), strict=True):
                if key not in seen:
                    rows.append(row)
                    seen.add(key)
        n_sobol = self.n_initial - len(rows)
        if n_sobol > 0:
            rows.extend(self._new_sobol_points(n_sobol, seen))
        X0 = np.array(rows).reshape(-1, len(self.space))
        stopped = "completed"
        if self.evaluate_batch is not None or self.time_budget_s is None:
            self._evaluate(X0, ["initial"] * len(X0))
        else:
            for i in range(len(X0)):
                if i > 0 and self._over_budget():
                    stopped = "time budget"
                    break
                self._evaluate(X0[i : i + 1], ["initial"])
        self.timings["initial_s"] = time.perf_counter() - t
        return stopped

    def _bo_loop(self) -> str:
        import torch

        dev = torch.device(self.device) if self.device is not None else torch.device("cpu")
        devices = [dev.index or 0] if dev.type == "cuda" else []
        for it in range(self.n_iterations):
            if self._over_budget():
                return "time budget"
            if self._exhausted():
                return "search space exhausted"
            t_it = time.perf_counter()
            torch_seed = int(self.rng.integers(2**31 - 1))
            t_fit = t_acq = 0.0
            cand = None
            threads = torch.get_num_threads()
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(torch_seed)
                if self.opts["torch_threads"]:
                    torch.set_num_threads(int(self.opts["torch_threads"]))
                try:
                    cand, t_fit, t_acq = self._propose(dev)
                except Exception as exc:  # numerical trouble must not end the user's run
                    msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                    self.notes.append(f"iteration {it}: model failed ({msg}); used Sobol points")
                    self._hyper = []  # next fit starts afresh
                finally:
                    torch.set_num_threads(threads)
            if cand is None:
                cand = np.empty((0, len(self.space)))
            cand = self.space.snap(cand) if len(cand) else cand
            # candidates come in order of preference (for q = 1 every restart's optimum, best
            # first): take the first ones that are not already evaluated
            keep, taken, repeats = [], set(), 0
            for row, key in zip(cand, self.space.keys(cand) if len(cand) else [], strict=True):
                if len(keep) == self.batch_size:
                    break
                if key in self.keys or key in taken:
                    repeats += 1
                    continue
                keep.append(row)
                taken.add(key)
            phases = ["bo"] * len(keep)
            n_fill = self.batch_size - len(keep)
            if n_fill > 0 and repeats:
                self.notes.append(
                    f"iteration {it}: the proposals repeated evaluated points; "
                    f"used {n_fill} Sobol point(s) instead"
                )
            if n_fill > 0:
                fill = self._new_sobol_points(n_fill, taken)
                keep.extend(fill)
                phases.extend(["fallback"] * len(fill))
            if not keep:
                return "search space exhausted"
            t_eval = self._evaluate(np.array(keep), phases)
            self.timings["fit_s"].append(t_fit)
            self.timings["acquisition_s"].append(t_acq)
            self.timings["evaluation_s"].append(t_eval)
            self.timings["iteration_s"].append(time.perf_counter() - t_it)
        return "completed"

    # -- one proposal ---------------------------------------------------------------------
    def _model_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Normalised, negated objectives for the model, and the matching reference point."""
        Y = np.array(self.Y, dtype=float)
        finite = np.isfinite(Y)
        if not finite.any(axis=0).all():
            raise ParameterError("an objective has no finite value yet")
        worst = np.where(finite, Y, -np.inf).max(axis=0)
        Yf = np.where(finite, Y, worst)
        lo, hi = Yf.min(axis=0), Yf.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        Yn = (Yf - lo) / span
        if self.m == 1:
            ref = None
        elif self.reference_point is not None:
            ref = (self.reference_point - lo) / span
        else:
            ref = _pareto.infer_reference_point(Yn, scale=float(self.opts["reference_margin"]))
        return Yn, -Yn, None if ref is None else -ref

    def _propose(self, dev) -> tuple[np.ndarray, float, float]:
        import torch
        from botorch.acquisition.logei import qLogNoisyExpectedImprovement
        from botorch.acquisition.multi_objective.logei import (
            qLogNoisyExpectedHypervolumeImprovement,
        )
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import ModelListGP, SingleTaskGP
        from botorch.sampling.normal import SobolQMCNormalSampler
        from gpytorch.mlls import ExactMarginalLogLikelihood

        tk = {"dtype": torch.float64, "device": dev}
        t = time.perf_counter()
        _, Z, ref = self._model_data()
        X = torch.as_tensor(np.array(self.X), **tk)
        Zt = torch.as_tensor(Z, **tk)
        with warnings.catch_warnings():
            _quiet_warnings()
            # one GP per objective: fitting a ModelListGP one model at a time is about twice
            # as fast as one batched multi-output GP on 2 cores
            models = []
            for j in range(self.m):
                gp = SingleTaskGP(X, Zt[:, j : j + 1], covar_module=self._kernel())
                if self.opts["warm_start"] and j < len(self._hyper):
                    # start from the previous iteration's hyper-parameters
                    gp.load_state_dict(self._hyper[j], strict=False)
                fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
                models.append(gp)
            self._hyper = [
                {k: v.detach().clone() for k, v in gp.named_parameters()} for gp in models
            ]
            model = models[0] if self.m == 1 else ModelListGP(*models)
            t_fit = time.perf_counter() - t
            t = time.perf_counter()
            sampler = SobolQMCNormalSampler(
                sample_shape=torch.Size([int(self.opts["mc_samples"])]),
                seed=int(self.rng.integers(2**31 - 1)),
            )
            if self.m == 1:
                acq = qLogNoisyExpectedImprovement(
                    model, X_baseline=X, sampler=sampler, prune_baseline=True
                )
            else:
                acq = qLogNoisyExpectedHypervolumeImprovement(
                    model,
                    ref_point=torch.as_tensor(ref, **tk),
                    X_baseline=X,
                    sampler=sampler,
                    prune_baseline=True,
                )
            cand = self._optimise(acq, tk)
        return cand, t_fit, time.perf_counter() - t

    def _kernel(self):
        """GP kernel: BoTorch's default for ordinal dims, times a categorical kernel if needed.

        ``None`` (SingleTaskGP's default RBF kernel with dimension-scaled priors) when there are
        no categoricals. With categoricals, the product ``RBF(ordinal) x Categorical(cat)``:
        on 2 CPU cores its hyper-parameters fit 5-25 times faster than ``MixedSingleTaskGP``'s
        sum-plus-product kernel, with equal or higher marginal likelihood on our test problems.
        """
        from botorch.models.kernels.categorical import CategoricalKernel
        from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
        from gpytorch.constraints import GreaterThan

        cat = self.space.cat_dims
        if not cat:
            return None
        ordinal = [i for i in range(len(self.space)) if i not in cat]
        kernel = CategoricalKernel(
            ard_num_dims=len(cat), active_dims=cat, lengthscale_constraint=GreaterThan(1e-6)
        )
        if ordinal:
            kernel = (
                get_covar_module_with_dim_scaled_prior(
                    ard_num_dims=len(ordinal), active_dims=ordinal
                )
                * kernel
            )
        return kernel

    def _optimise(self, acq, tk) -> np.ndarray:
        import torch
        from botorch.optim import optimize_acqf, optimize_acqf_discrete

        space, q, o = self.space, self.batch_size, self.opts
        card = space.cardinality
        if card is not None and (card <= o["max_discrete_enumeration"] or not space.int_dims):
            choices = self._discrete_choices()
            if choices.shape[0] == 0:
                return np.empty((0, len(space)))
            cand, _ = optimize_acqf_discrete(
                acq, q=min(q, choices.shape[0]), choices=torch.as_tensor(choices, **tk), unique=True
            )
            return cand.detach().cpu().numpy()

        bounds = torch.as_tensor(space.bounds, **tk)
        # score all raw samples in one batch (the default, batch_limit at a time, made choosing
        # the starts cost as much as the L-BFGS-B runs themselves)
        options = {
            "maxiter": int(o["maxiter"]),
            "batch_limit": int(o["num_restarts"]),
            "init_batch_limit": int(o["raw_samples"]),
        }
        if not space.cat_dims:

            def snap(Xt):
                return torch.as_tensor(
                    space.snap(Xt.detach().cpu().numpy().reshape(-1, len(space))).reshape(Xt.shape),
                    **tk,
                )

            post = snap if space.int_dims else None
            if q == 1:  # keep every restart's optimum, best first, as fall-backs for repeats
                cand, vals = optimize_acqf(
                    acq,
                    bounds,
                    q=1,
                    num_restarts=int(o["num_restarts"]),
                    raw_samples=int(o["raw_samples"]),
                    options=options,
                    return_best_only=False,
                    post_processing_func=post,
                )
                return _by_value(cand, vals)
            cand, _ = optimize_acqf(
                acq,
                bounds,
                q=q,
                num_restarts=int(o["num_restarts"]),
                raw_samples=int(o["raw_samples"]),
                options=options,
                sequential=True,
                post_processing_func=post,
            )
            return cand.detach().cpu().numpy()
        return self._optimise_mixed(acq, bounds, options, tk)

    def _optimise_mixed(self, acq, bounds, options, tk) -> np.ndarray:
        """Acquisition optimisation with categoricals in one L-BFGS-B call per candidate.

        Quasi-random raw points over the whole mixed space are scored, the starts are drawn
        from the best of them (each keeps its categories), and all starts are optimised
        together with the categorical columns frozen (their gradient is cut), so the cost does
        not grow with the number of category combinations as enumerating them
        (``optimize_acqf_mixed``) would. Sequential greedy for ``batch_size > 1``.
        """
        import torch
        from botorch.acquisition import AcquisitionFunction
        from botorch.optim import optimize_acqf
        from botorch.optim.initializers import initialize_q_batch

        space, o = self.space, self.opts
        frozen = torch.zeros(len(space), dtype=torch.bool, device=tk["device"])
        frozen[space.cat_dims] = True

        class _FrozenCategories(AcquisitionFunction):
            def __init__(self, inner):
                super().__init__(model=inner.model)
                self.inner = inner

            def forward(self, X):
                return self.inner(torch.where(frozen, X.detach(), X))

        wrapped = _FrozenCategories(acq)
        n_restarts = int(o["num_restarts"])
        picked: list[np.ndarray] = []
        base_pending = acq.X_pending
        for _ in range(self.batch_size):
            raw = space.from_unit(self.rng.random((int(o["raw_samples"]), len(space))))
            raw_t = torch.as_tensor(raw, **tk).unsqueeze(-2)
            with torch.no_grad():
                vals = torch.cat([acq(chunk) for chunk in raw_t.split(256)])
            starts, _ = initialize_q_batch(raw_t, vals, n=min(n_restarts, raw.shape[0]))
            cand, vals = optimize_acqf(
                wrapped,
                bounds,
                q=1,
                num_restarts=starts.shape[0],
                batch_initial_conditions=starts,
                options=options,
                return_best_only=False,
            )
            ranked = space.snap(_by_value(cand, vals))
            if self.batch_size == 1:
                return ranked
            picked.append(ranked[0])
            pending = torch.as_tensor(np.array(picked), **tk)
            if base_pending is not None:
                pending = torch.cat([base_pending, pending])
            acq.set_X_pending(pending)
        return np.array(picked)

    def _discrete_choices(self) -> np.ndarray:
        space = self.space
        limit = int(self.opts["max_discrete_enumeration"])
        if space.cardinality <= limit:
            allp = space.enumerate_encoded()
        else:  # large all-categorical space: a random sample of it
            allp = space.from_unit(self.rng.random((limit, len(space))))
        keys = space.keys(allp)
        fresh = [i for i, k in enumerate(keys) if k not in self.keys]
        return allp[fresh]


def _by_value(cand, vals) -> np.ndarray:
    """Restart results ``(r, 1, d)`` as rows ordered by decreasing acquisition value."""
    X = cand.detach().cpu().numpy().reshape(-1, cand.shape[-1])
    v = vals.detach().cpu().numpy().reshape(-1)
    return X[np.argsort(-v, kind="stable")]


def _quiet_warnings() -> None:
    """Silence BoTorch/GPyTorch's advisory warnings inside the model step (errors still raise)."""
    from botorch.exceptions.warnings import BotorchWarning
    from gpytorch.utils.warnings import GPInputWarning, NumericalWarning

    for cat in (BotorchWarning, GPInputWarning, NumericalWarning, RuntimeWarning):
        warnings.simplefilter("ignore", category=cat)
