"""Shared benchmark helpers: timing with medians, machine/version info, JSON results."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def shared_data() -> Path | None:
    """The shared test-data folder (``ATOMSCOPE_SHARED_DATA`` or ``../shared/data``)."""
    env = os.environ.get("ATOMSCOPE_SHARED_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for parent in [here, *here.parents]:
        cand = parent.parent / "shared" / "data"
        if cand.is_dir():
            return cand
    return None


def timeit(fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1) -> dict[str, Any]:
    """Median, min and all wall times (s) of *repeat* calls after *warmup* calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "times_s": times,
        "repeat": repeat,
    }


def versions(*packages: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in ("atomscope", "numpy", "scipy", "scikit-image", "torch", *packages):
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = None
    return out


def machine_info() -> dict[str, Any]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": affinity,
    }


def write_result(name: str, payload: dict[str, Any], *, packages: tuple[str, ...] = ()) -> Path:
    """Write ``benchmarks/results/<name>.json`` with machine info, versions and a timestamp."""
    from atomscope._fileio import write_json

    record = {
        "benchmark": name,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "versions": versions(*packages),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    write_json(path, record)
    return path
