"""Disorder detection (``atomscope.find_disorder``) against the simulator's ground truth.

* **Amorphous patches** — the ``amorphous_patches`` suite (SrTiO3 [001] and YBa2Cu3O7 [100],
  5–30 % amorphous area, 'random' and 'displace' films) at several doses. Atoms are found once
  per image by ``find_atoms`` and the same atoms go to both reward sets:
  - ``robust`` (default): misfit + the paper's compactness and normalised perimeter;
  - ``paper``: compactness and normalised perimeter only (the anchor, same process).
  Metrics: IoU of the mask with the true amorphous mask; per-atom F1 of "disordered" (an atom is
  truly disordered when its position lies in the true mask); area fraction.
* **Crystals** — perfect SrTiO3 and YBa2Cu3O7 images: the reported area must be < 1 %.
* **Atom types** — YBa2Cu3O7 [100], four types (Ba, Y, Cu chain, Cu plane) against the
  simulated species and sites, up to label permutation.
* **Timing** — a full run (``find_atoms`` included) on a 1024² image.

``python -m benchmarks disorder [--quick]`` writes ``benchmarks/results/disorder.json``.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
import warnings
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from ._common import write_result

TARGETS = {"iou": 0.8, "f1": 0.9, "crystal_area": 0.01, "type_agreement": 0.95, "time_1024_s": 30.0}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return float((a & b).sum() / max((a | b).sum(), 1))


def _atom_f1(result, truth: np.ndarray) -> float:
    xy = result.table[["x", "y"]].to_numpy()
    h, w = truth.shape
    ix = np.clip(np.rint(xy).astype(int), 0, [w - 1, h - 1])
    t = truth[ix[:, 1], ix[:, 0]].astype(bool)
    f = result.disordered
    if not t.any() and not f.any():
        return 1.0
    return float(2 * (t & f).sum() / max(t.sum() + f.sum(), 1))


def _summary(values: list[float]) -> dict[str, float]:
    v = [x for x in values if np.isfinite(x)]
    if not v:
        return {}
    return {
        "mean": float(np.mean(v)),
        "median": float(statistics.median(v)),
        "min": float(np.min(v)),
        "max": float(np.max(v)),
        "n": len(v),
    }


def _patch_suite(doses, size: int, fractions) -> list[dict[str, Any]]:
    from atomscope import find_atoms, find_disorder

    from .datasets import amorphous_patches

    rows = []
    for d_i, dose in enumerate(doses):
        sims = amorphous_patches(fractions, size=size, dose=dose, seed=d_i)
        for sim in sims:
            p = sim.truth.parameters
            truth = sim.truth.masks["amorphous"].astype(bool)
            t0 = time.perf_counter()
            atoms = find_atoms(sim.image, seed=0)
            t_atoms = time.perf_counter() - t0
            row: dict[str, Any] = {
                "structure": p["structure"],
                "mode": p["mode"],
                "dose": dose,
                "fraction": float(truth.mean()),
                "n_patches": p["n_patches"],
                "n_atoms": len(atoms),
                "find_atoms_s": t_atoms,
            }
            for rewards in ("robust", "paper"):
                t0 = time.perf_counter()
                r = find_disorder(sim.image, atoms, rewards=rewards, seed=0)
                row[rewards] = {
                    "iou": _iou(truth, r.mask),
                    "f1": _atom_f1(r, truth),
                    "area_fraction": r.area_fraction,
                    "n_regions": r.n_regions,
                    "parameters": r.parameters,
                    "seconds": time.perf_counter() - t0,
                }
            print(
                f"   {row['structure']:<10} {row['mode']:<8} dose {dose:8.0f} "
                f"f={row['fraction']:.2f}: robust IoU {row['robust']['iou']:.3f} "
                f"F1 {row['robust']['f1']:.3f} | paper IoU {row['paper']['iou']:.3f} "
                f"F1 {row['paper']['f1']:.3f}",
                flush=True,
            )
            rows.append(row)
    return rows


def _crystals(doses, size: int) -> list[dict[str, Any]]:
    from atomscope import find_atoms, find_disorder
    from atomscope.simulate import simulate_haadf

    rows = []
    k = 0
    for structure, zone in (("SrTiO3", (0, 0, 1)), ("YBa2Cu3O7", (1, 0, 0))):
        for dose in doses:
            sim = simulate_haadf(
                structure, zone=zone, size=size, pixel_size=0.02, dose=dose, seed=500 + k
            )
            k += 1
            atoms = find_atoms(sim.image, seed=0)
            row: dict[str, Any] = {"structure": structure, "dose": dose}
            for rewards in ("robust", "paper"):
                r = find_disorder(sim.image, atoms, rewards=rewards, seed=0)
                row[rewards] = {
                    "area_fraction": r.area_fraction,
                    "n_regions": r.n_regions,
                    "n_disordered_atoms": int(r.disordered.sum()),
                }
            print(
                f"   crystal {structure:<10} dose {dose:8.0f}: robust area "
                f"{100 * row['robust']['area_fraction']:.2f} %, paper "
                f"{100 * row['paper']['area_fraction']:.2f} %",
                flush=True,
            )
            rows.append(row)
    return rows


def _types(doses, size: int) -> list[dict[str, Any]]:
    from atomscope import find_atoms, find_disorder
    from atomscope.simulate import simulate_haadf

    rows = []
    for j, dose in enumerate(doses):
        sim = simulate_haadf(
            "YBa2Cu3O7", zone=(1, 0, 0), size=size, pixel_size=0.02, dose=dose, seed=700 + j
        )
        atoms = find_atoms(sim.image, seed=0)
        r = find_disorder(sim.image, atoms, n_types=4, optimize=False, seed=0)
        tc = sim.truth.columns
        vis = tc[tc.species != "O"].reset_index(drop=True)
        d, idx = cKDTree(vis[["x", "y"]].to_numpy()).query(r.table[["x", "y"]].to_numpy())
        ok = d < 3.0
        sp = vis.species.to_numpy()[idx]
        cls = np.where(
            sp == "Cu", np.where(vis.site.to_numpy()[idx] == 3, "Cu chain", "Cu plane"), sp
        )
        names, truth = np.unique(cls[ok], return_inverse=True)
        lab = r.table["type"].to_numpy()[ok]
        best, mapping = 0.0, None
        for perm in itertools.permutations(range(4)):
            acc = float(np.mean(np.array(perm)[lab] == truth))
            if acc > best:
                best, mapping = acc, perm
        row = {
            "dose": dose,
            "n_matched": int(ok.sum()),
            "n_found": len(r),
            "agreement": best,
            "types": r.types,
            "type_to_species": {int(t): str(names[mapping[t]]) for t in range(4)},
        }
        print(
            f"   YBCO [100] types, dose {dose:8.0f}: agreement {best:.3f} "
            f"({row['type_to_species']})",
            flush=True,
        )
        rows.append(row)
    return rows


def _timing(size: int, repeat: int) -> dict[str, Any]:
    from atomscope import find_disorder
    from atomscope.simulate import simulate_amorphous_patches

    sim = simulate_amorphous_patches(
        "SrTiO3", fraction=0.15, n_patches=3, size=size, pixel_size=0.02, dose=1e5, seed=900
    )
    truth = sim.truth.masks["amorphous"].astype(bool)
    runs = []
    for _ in range(repeat):
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        t0 = time.perf_counter()
        r = find_disorder(sim.image, seed=0)  # atoms found inside: the whole pipeline
        runs.append(
            {
                "seconds": time.perf_counter() - t0,
                "stages_s": r.timings,
                "load_average_1min_before": load,
                "iou": _iou(truth, r.mask),
                "f1": _atom_f1(r, truth),
                "n_atoms": len(r),
            }
        )
        print(
            f"   {size}² full run: {runs[-1]['seconds']:.1f} s (load {load}), IoU "
            f"{runs[-1]['iou']:.3f}",
            flush=True,
        )
    times = [x["seconds"] for x in runs]
    return {
        "size": size,
        "median_s": float(statistics.median(times)),
        "min_s": min(times),
        "runs": runs,
    }


def run(quick: bool = False) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    t_start = time.perf_counter()
    if quick:
        doses, size, fractions = (1e4, 1e5), 256, (0.05, 0.3)
        crystal_doses, type_doses, t_size, t_repeat = (1e4,), (1e5,), 1024, 1
    else:
        doses, size, fractions = (1e4, 3e4, 1e5), 512, (0.05, 0.1, 0.2, 0.3)
        crystal_doses, type_doses, t_size, t_repeat = (1e4, 1e5), (1e4, 3e4, 1e5), 1024, 3
    print("   amorphous-patch suite", flush=True)
    patches = _patch_suite(doses, size, fractions)
    print("   crystals", flush=True)
    crystals = _crystals(crystal_doses, size)
    print("   atom types", flush=True)
    types = _types(type_doses, size)
    print("   timing", flush=True)
    timing = _timing(t_size, t_repeat)

    summary: dict[str, Any] = {}
    for rewards in ("robust", "paper"):
        summary[rewards] = {
            "iou": _summary([r[rewards]["iou"] for r in patches]),
            "f1": _summary([r[rewards]["f1"] for r in patches]),
            "iou_at_least_0.8": float(np.mean([r[rewards]["iou"] >= 0.8 for r in patches])),
            "f1_at_least_0.9": float(np.mean([r[rewards]["f1"] >= 0.9 for r in patches])),
            "crystal_area_max": float(max(c[rewards]["area_fraction"] for c in crystals)),
            "seconds_median": float(statistics.median(r[rewards]["seconds"] for r in patches)),
        }
    for key in ("structure", "dose", "mode"):
        groups: dict[str, list] = {}
        for r in patches:
            groups.setdefault(str(r[key]), []).append(r)
        summary["robust"][f"by_{key}"] = {
            g: {
                "iou_mean": float(np.mean([x["robust"]["iou"] for x in v])),
                "f1_mean": float(np.mean([x["robust"]["f1"] for x in v])),
                "iou_min": float(np.min([x["robust"]["iou"] for x in v])),
                "n": len(v),
            }
            for g, v in groups.items()
        }
    by_fraction: dict[str, list] = {}
    for r in patches:
        by_fraction.setdefault(f"{r['fraction']:.2f}", []).append(r)
    summary["robust"]["by_fraction"] = {
        g: {
            "iou_mean": float(np.mean([x["robust"]["iou"] for x in v])),
            "f1_mean": float(np.mean([x["robust"]["f1"] for x in v])),
            "n": len(v),
        }
        for g, v in sorted(by_fraction.items())
    }
    payload = {
        "quick": quick,
        "targets": TARGETS,
        "settings": {
            "doses_e_per_A2": list(doses),
            "size": size,
            "fractions": list(fractions),
            "atoms": "find_atoms(seed=0), shared by both reward sets",
            "find_disorder": "defaults (seed 0); rewards robust vs paper",
        },
        "summary": summary,
        "type_agreement": {"min": float(min(t["agreement"] for t in types)), "runs": types},
        "timing_1024": timing,
        "patch_suite": patches,
        "crystals": crystals,
        "wall_s": time.perf_counter() - t_start,
        "command": "python -m benchmarks disorder" + (" --quick" if quick else ""),
    }
    path = write_result("disorder", payload, packages=("scikit-learn", "botorch"))
    rb = summary["robust"]
    print(
        f"   robust: IoU mean {rb['iou']['mean']:.3f} (min {rb['iou']['min']:.3f}), F1 mean "
        f"{rb['f1']['mean']:.3f} (min {rb['f1']['min']:.3f}); paper: IoU mean "
        f"{summary['paper']['iou']['mean']:.3f}, F1 mean {summary['paper']['f1']['mean']:.3f}"
    )
    print(f"   wrote {path}")
    return payload


if __name__ == "__main__":
    run()
