"""Time the shared optimiser (``atomscope.optimize``) against the BoTorch figures in ANCHORS.md.

* import cost: ``import atomscope.optimize`` (must not pull torch) and the BoTorch modules the BO
  loop needs (anchor: 1.6 s);
* one BO iteration (fit two GPs + optimise qLogNEHVI, q = 1) with 2 objectives and 3 parameters
  at 16-21 evaluated points (anchor: 0.4-0.9 s on 2 cores), with our default of one torch thread
  and with torch's default thread count, and for a mixed real/integer/categorical space;
* a full 40-evaluation run (16 Sobol + 24 BO) on ZDT1, with its hypervolume against 40 Sobol
  points evaluated in the same process.

Writes ``benchmarks/results/optimize.json``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

from ._common import write_result

ANCHOR_IMPORT_S = 1.6
ANCHOR_ITERATION_S = (0.4, 0.9)


def _zdt1(p: dict[str, Any]) -> tuple[float, float]:
    f1 = p["x0"]
    g = 1 + 9 * (p["x1"] + p["x2"]) / 2
    return f1, g * (1 - np.sqrt(f1 / g))


def _mixed(p: dict[str, Any]) -> tuple[float, float]:
    pen = {"full": 0.0, "tied": 0.3, "diag": 0.6, "spherical": 0.9}[p["cov"]]
    pen += 0.1 * abs(p["k"] - 5)
    return p["x"] + pen, (1 - p["x"]) ** 2 + pen + 0.1 * p["y"]


def _import_time(statement: str, repeat: int) -> dict[str, Any]:
    code = "import time; t = time.perf_counter(); " + statement + "; print(time.perf_counter() - t)"
    times = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times}


def _iterations(
    objective,
    space,
    seeds,
    *,
    n_initial: int,
    n_iterations: int,
    acq_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from atomscope.optimize import minimize

    it, fit, acq = [], [], []
    for seed in seeds:
        res = minimize(
            objective,
            space,
            objective_names=["f1", "f2"],
            n_initial=n_initial,
            n_iterations=n_iterations,
            seed=seed,
            show_progress=False,
            acq_options=acq_options,
        )
        # the first iteration of a process pays one-off costs (lazy imports, kernel set-up)
        it += res.timings["iteration_s"][1:]
        fit += res.timings["fit_s"][1:]
        acq += res.timings["acquisition_s"][1:]
    return {
        "points_when_fitting": [n_initial, n_initial + n_iterations - 1],
        "n_iterations_timed": len(it),
        "median_iteration_s": statistics.median(it),
        "min_iteration_s": min(it),
        "max_iteration_s": max(it),
        "median_fit_s": statistics.median(fit),
        "median_acquisition_s": statistics.median(acq),
    }


def run(quick: bool = False) -> dict[str, Any]:
    from atomscope.optimize import (
        DEFAULT_ACQ_OPTIONS,
        Categorical,
        Integer,
        Real,
        SearchSpace,
        hypervolume,
        minimize,
    )

    repeat = 2 if quick else 5
    seeds = [0] if quick else [0, 1, 2]

    t_ours = _import_time("import atomscope.optimize", repeat)
    t_lean = _import_time(
        "import atomscope.optimize, sys; "
        "assert 'torch' not in sys.modules and 'botorch' not in sys.modules",
        1,
    )
    t_botorch = _import_time(
        "import botorch.models, botorch.fit, botorch.optim, "
        "botorch.acquisition.multi_objective.logei",
        repeat,
    )
    print(
        f"   import atomscope.optimize {t_ours['median_s']:.2f} s (no torch: "
        f"{t_lean['median_s']:.2f} s check passed); BoTorch modules "
        f"{t_botorch['median_s']:.2f} s (anchor {ANCHOR_IMPORT_S} s)"
    )

    zdt = SearchSpace([Real(f"x{i}", 0.0, 1.0) for i in range(3)])
    mixed = SearchSpace(
        [
            Real("x", 0.0, 1.0),
            Real("y", 0.0, 1.0),
            Integer("k", 1, 10),
            Categorical("cov", ["full", "tied", "diag", "spherical"]),
        ]
    )
    n_it = 3 if quick else 6
    one_thread = _iterations(_zdt1, zdt, seeds, n_initial=16, n_iterations=n_it)
    all_threads = _iterations(
        _zdt1, zdt, seeds[:1], n_initial=16, n_iterations=n_it, acq_options={"torch_threads": None}
    )
    mixed_it = _iterations(
        _mixed, mixed, seeds[:1] if quick else seeds[:2], n_initial=16, n_iterations=n_it
    )
    lo, hi = ANCHOR_ITERATION_S
    for label, r in (
        ("1 thread (default)", one_thread),
        ("torch default threads", all_threads),
        ("mixed space, 1 thread", mixed_it),
    ):
        print(
            f"   BO iteration, {label}: median {r['median_iteration_s']:.2f} s (fit "
            f"{r['median_fit_s']:.2f} + acquisition {r['median_acquisition_s']:.2f}); "
            f"anchor {lo}-{hi} s"
        )

    full = []
    for seed in seeds:
        t0 = time.perf_counter()
        res = minimize(
            _zdt1,
            zdt,
            objective_names=["f1", "f2"],
            n_initial=16,
            n_iterations=24,
            seed=seed,
            show_progress=False,
        )
        wall = time.perf_counter() - t0
        ref = [1.1, 1.1]
        sobol = np.array([_zdt1(p) for p in zdt.sobol(40, seed=seed)])
        full.append(
            {
                "seed": seed,
                "wall_s": wall,
                "n_evaluations": res.n_evaluations,
                "n_bo": res.phase.count("bo"),
                "n_fallback": res.phase.count("fallback"),
                "hypervolume_bo": hypervolume(res.objectives, ref),
                "hypervolume_initial_16": hypervolume(res.objectives[:16], ref),
                "hypervolume_sobol_40": hypervolume(sobol, ref),
            }
        )
        print(
            f"   40 evaluations (16 Sobol + 24 BO), seed {seed}: {wall:.1f} s; hypervolume "
            f"{full[-1]['hypervolume_bo']:.3f} vs 40 Sobol points "
            f"{full[-1]['hypervolume_sobol_40']:.3f} (best possible 0.877)"
        )

    payload = {
        "repeat": repeat,
        "seeds": seeds,
        "import": {
            "atomscope_optimize": t_ours,
            "botorch_modules": t_botorch,
            "anchor_botorch_import_s": ANCHOR_IMPORT_S,
            "torch_imported_by_atomscope_optimize": False,
        },
        "bo_iteration": {
            "problem": "ZDT1, 3 real parameters, 2 objectives, 16-21 evaluated points, q=1",
            "anchor_s": list(ANCHOR_ITERATION_S),
            "one_torch_thread": one_thread,
            "torch_default_threads": all_threads,
            "mixed_space": {
                "problem": "2 real + 1 integer (10 values) + 1 categorical (4)",
                **mixed_it,
            },
            "ratio_median_over_anchor_mid": one_thread["median_iteration_s"] / (0.5 * (lo + hi)),
        },
        "full_run_40": {
            "problem": "ZDT1, 16 Sobol + 24 BO evaluations, hypervolume ref (1.1, 1.1), "
            "best possible 0.877",
            "runs": full,
            "median_wall_s": statistics.median(r["wall_s"] for r in full),
            "median_hypervolume_bo": statistics.median(r["hypervolume_bo"] for r in full),
            "median_hypervolume_sobol_40": statistics.median(
                r["hypervolume_sobol_40"] for r in full
            ),
        },
        "settings": {"acq_options": dict(DEFAULT_ACQ_OPTIONS)},
    }
    write_result("optimize", payload, packages=("botorch", "gpytorch"))
    return payload
