"""Batch throughput: one worker against two on the same frames, and the per-task overhead.

* **particles** — 200 simulated bright-field frames of 512² (one TIFF stack, each frame a task),
  classical method: a short analysis (≈0.1 s per frame), so the per-task overhead shows.
* **atoms** — 200 simulated SrTiO3 [001] HAADF frames of 512² (varied dose, rotation, shift),
  ``find_atoms`` with ``optimize=False`` (≈1 s per frame); and a shorter run with the full
  Bayesian optimisation (≈5 s per frame), the default of ``atomscope batch atoms``.

Each configuration runs ``atomscope.batch.run_batch`` into a fresh folder three ways: in this
process (what ``--workers 1`` does; numpy and torch may use both cores there), and on a Dask
LocalCluster of 1 and of 2 single-threaded worker processes (what ``--workers 2`` and a cluster
do). The target's speed-up is 2 worker processes against 1, cluster start included; the speed-up
against the in-process run is reported beside it. The per-task overhead is the in-process batch's
wall time minus the analysis's own time (the analysis called directly on frames in memory,
median of 10), divided by the number of tasks: reading the frame, writing its results
atomically, the combined tables, bookkeeping.

``python -m benchmarks batch [--quick]`` writes ``benchmarks/results/batch.json``. Run it on an
otherwise idle machine: two workers can only be faster if two cores are free.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._common import write_result

TARGET_SPEEDUP = 1.7


def _particle_stack(n: int, size: int, path: Path) -> Path:
    import tifffile

    from atomscope.simulate import simulate_particles_frame

    frames = np.empty((n, size, size), np.float32)
    for i in range(n):
        frames[i] = simulate_particles_frame(
            size=size,
            pixel_size=0.18,
            n_particles=12 + i % 8,
            counts=(50.0, 100.0, 200.0)[i % 3],
            seed=1000 + i,
        ).image.data
    tifffile.imwrite(
        path, frames, imagej=True, resolution=(1 / 0.18, 1 / 0.18), metadata={"unit": "nm"}
    )
    return path


def _atom_stack(n: int, size: int, path: Path) -> Path:
    import tifffile

    from atomscope.simulate import simulate_haadf

    frames = np.empty((n, size, size), np.float32)
    rng = np.random.default_rng(0)
    for i in range(n):
        frames[i] = simulate_haadf(
            "SrTiO3",
            zone=(0, 0, 1),
            size=size,
            pixel_size=0.02,
            dose=float(rng.choice([1e4, 3e4, 1e5])),
            rotation=float(rng.uniform(0, 90)),
            seed=2000 + i,
        ).image.data
    tifffile.imwrite(
        path, frames, imagej=True, resolution=(1 / 0.02, 1 / 0.02), metadata={"unit": "nm"}
    )
    return path


def _direct_seconds(analysis: str, stack: Path, options: dict[str, Any], n: int) -> float:
    """Median seconds of the analysis called directly on frames already in memory."""
    import importlib

    import atomscope
    from atomscope.analyses import ANALYSES

    module, _, attr = ANALYSES[analysis].function_path.partition(":")
    fn = getattr(importlib.import_module(module), attr)
    mg = atomscope.load(stack)
    times = []
    for i in np.linspace(0, mg.n_frames - 1, n).round().astype(int):
        frame = mg.frame(int(i))
        t0 = time.perf_counter()
        fn(frame, **options)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _run(
    analysis: str, stack: Path, options: dict[str, Any], processes: int, root: Path
) -> dict[str, Any]:
    """One batch; ``processes`` = 0 runs in this process, else on a LocalCluster of that many
    single-threaded worker processes (started inside the timed region)."""
    from atomscope.batch import run_batch

    out = root / f"{analysis}-{processes}p-{abs(hash(str(options))) % 10**6}"
    shutil.rmtree(out, ignore_errors=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    t0 = time.perf_counter()
    if processes == 0:
        s = run_batch(
            analysis, [stack], out, options=options, workers=1, reports=False, show_progress=False
        )
    else:
        from dask.distributed import LocalCluster

        with LocalCluster(
            n_workers=processes,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,
        ) as cluster:
            s = run_batch(
                analysis,
                [stack],
                out,
                options=options,
                scheduler=cluster.scheduler_address,
                reports=False,
                show_progress=False,
            )
    wall = time.perf_counter() - t0
    label = "in-process" if processes == 0 else f"{processes} worker process(es)"
    row = {
        "workers": max(processes, 1),
        "mode": label,
        "wall_s": wall,
        "tasks": s.total,
        "done": s.done,
        "failed": s.failed,
        "chunk_size": s.chunk_size,
        "frames_per_s": s.done / wall if wall > 0 else None,
        "load_average_1min_before": load,
    }
    print(
        f"   {analysis:<9} {label:<22} {wall:7.1f} s for {s.done} frames "
        f"({row['frames_per_s']:.2f}/s, {s.failed} failed, chunk {s.chunk_size})",
        flush=True,
    )
    return row


def _dask_task_cost(n: int = 400) -> dict[str, float]:
    """Round-trip cost of an empty task on a 2-process LocalCluster (ms per task)."""
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.gather(client.map(abs, range(-20, 0)))
        t0 = time.perf_counter()
        client.gather(client.map(abs, range(-n - 100, -100)))
        per = (time.perf_counter() - t0) / n
    return {"ms_per_task": 1e3 * per, "n": n}


def run(quick: bool = False) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    t_start = time.perf_counter()
    n, size = (16, 256) if quick else (200, 512)
    n_opt = 8 if quick else 24
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="atomscope-batch-bench-") as tmp:
        root = Path(tmp)
        print("   simulating frames", flush=True)
        pstack = _particle_stack(n, size, root / "particles.tif")
        astack = _atom_stack(n, size, root / "atoms.tif")
        ostack = root / "atoms-opt.tif"
        import tifffile

        tifffile.imwrite(
            ostack,
            tifffile.imread(astack)[:n_opt],
            imagej=True,
            resolution=(1 / 0.02, 1 / 0.02),
            metadata={"unit": "nm"},
        )
        configs = {
            "particles": ("particles", pstack, {"method": "classical", "show_progress": False}),
            "atoms": ("atoms", astack, {"optimize": False}),
            "atoms (optimised)": ("atoms", ostack, {}),
        }
        for name, (analysis, stack, options) in configs.items():
            direct = _direct_seconds(analysis, stack, options, 5 if quick else 10)
            rows = [_run(analysis, stack, options, p, root) for p in (0, 1, 2)]
            speedup = rows[1]["wall_s"] / rows[2]["wall_s"]
            n_done = max(rows[0]["done"], 1)
            results[name] = {
                "analysis": analysis,
                "options": options,
                "frames": rows[0]["tasks"],
                "runs": rows,
                "speedup": speedup,
                "speedup_vs_in_process": rows[0]["wall_s"] / rows[2]["wall_s"],
                "meets_target": bool(speedup >= TARGET_SPEEDUP),
                "direct_s_per_frame": direct,
                "overhead_s_per_task_in_process": (rows[0]["wall_s"] - direct * n_done) / n_done,
            }
            print(
                f"   {name}: 2 worker processes against 1: {speedup:.2f}x; against the "
                f"in-process run {results[name]['speedup_vs_in_process']:.2f}x",
                flush=True,
            )
    task_cost = _dask_task_cost()
    print(f"   empty Dask task: {task_cost['ms_per_task']:.2f} ms", flush=True)
    payload = {
        "quick": quick,
        "settings": {
            "frames": n,
            "size": size,
            "optimised_atoms_frames": n_opt,
            "runs": ["in-process", "1 worker process", "2 worker processes"],
            "reports": False,
        },
        "target_speedup": TARGET_SPEEDUP,
        "results": results,
        "dask_empty_task": task_cost,
        "wall_s": time.perf_counter() - t_start,
        "command": "python -m benchmarks batch" + (" --quick" if quick else ""),
    }
    path = write_result("batch", payload, packages=("dask", "distributed", "zarr"))
    print(f"   wrote {path}")
    return payload


if __name__ == "__main__":
    run()
