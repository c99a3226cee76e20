"""The learned column detector (``find_atoms(method="cnn")``) against LoG* (the default,
optimised ``find_atoms``) on exact ground truth, real images, speed, and the reward paper's
noise study.

Writes ``benchmarks/results/atoms_cnn.json`` and ``docs/images/atoms_cnn_noise.png``. Sections:

* ``dose_ladder`` — SrTiO3 [001] from 2 to 2000 counts at the brightest pixel, and a perovskite
  whose B columns are 35 % as bright as A: interior precision / recall / RMSE of both methods.
* ``synthetic_benchmark`` — the four images of ``data/synthetic-atomfind-benchmark``.
* ``heldout`` — fresh images from the training generator (seeds never used in training) and
  structures never used in training, both methods.
* ``noise_study`` — Gaussian noise of σ = level × (image range) added to a simulated image,
  levels 0…1: counts, precision and recall of LoG* (re-optimised at every level) and the CNN.
* ``timing`` — per 256² image: CNN inference and the whole CNN ``find_atoms`` against a full
  LoG* optimisation; the network alone on a 512² input.
* ``real_images`` — agreement of the two methods' columns on the real SrTiO3 frames, the
  Atomap ADF image, StatSTEM PtIr and the MoS2 image (plus the Au nanoparticle and ABF).

``python -m benchmarks atoms_cnn [--quick]``. The machine's load is recorded: on a shared
2-core machine the timings are inflated.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from ._common import shared_data, timeit, write_result

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
NOISE_LEVELS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)


def _find(img: Any, method: str, **kw: Any):
    from atomscope.atoms import find_atoms

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        res = find_atoms(img, method=method, **kw)
        return res, time.perf_counter() - t0


def _both(img: Any, truth: np.ndarray, nn: float, **kw: Any) -> dict[str, Any]:
    from atomscope.atoms.train import match_columns

    shape = np.shape(img.data if hasattr(img, "data") else img)
    out: dict[str, Any] = {}
    for method in ("log", "cnn"):
        res, wall = _find(img, method, **kw)
        m = match_columns(res.xy, truth, 0.3 * nn, shape, nn)
        out[method] = {**m, "seconds": wall}
    r_log, r_cnn = out["log"]["rmse_px"], out["cnn"]["rmse_px"]
    out["rmse_ratio_cnn_over_log"] = r_cnn / r_log if r_log and np.isfinite(r_log) else None
    return out


def _fmt(label: str, row: dict[str, Any]) -> str:
    a, b = row["log"], row["cnn"]
    return (
        f"   {label:<34} LoG* P {a['precision']:.4f} R {a['recall']:.4f} RMSE "
        f"{a['rmse_px']:.4f} ({a['seconds']:.1f} s) | CNN P {b['precision']:.4f} R "
        f"{b['recall']:.4f} RMSE {b['rmse_px']:.4f} ({b['seconds']:.2f} s)"
    )


def dose_ladder(quick: bool) -> list[dict[str, Any]]:
    from atomscope.simulate import simulate_haadf

    from .datasets import weak_b_perovskite

    doses = (3e3, 1e4, 1e5) if quick else (1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6)
    rows = []
    for i, dose in enumerate(doses):
        sim = simulate_haadf(
            "SrTiO3",
            zone=(0, 0, 1),
            size=384,
            pixel_size=0.02,
            thickness=10,
            shift=(0.31, -0.17),
            rotation=8.0,
            dose=dose,
            seed=100 + i,
        )
        cols = sim.truth.columns
        vis = cols[cols.species != "O"][["x", "y"]].to_numpy()
        row = {
            "image": "SrTiO3 [001] 384²",
            "dose_e_per_A2": dose,
            "peak_counts": float(sim.truth.parameters["noise"]["counts_at_max"]),
            **_both(sim.image, vis, 13.8),
        }
        rows.append(row)
        print(_fmt(f"SrTiO3 dose {dose:.0e} ({row['peak_counts']:.0f} counts)", row))
    for sim in weak_b_perovskite(0.35, doses=(1e4, 1e5)):
        cols = sim.truth.columns
        vis = cols[cols.species != "O"][["x", "y"]].to_numpy()
        dose = sim.truth.parameters["noise"]["dose_e_per_A2"]
        row = {
            "image": "perovskite, B at 35 % of A, 256²",
            "dose_e_per_A2": dose,
            "peak_counts": float(sim.truth.parameters["noise"]["counts_at_max"]),
            **_both(sim.image, vis, 13.8),
        }
        rows.append(row)
        print(_fmt(f"weak-B perovskite dose {dose:.0e}", row))
    return rows


def synthetic_benchmark(data: Path) -> list[dict[str, Any]]:
    import json

    rows = []
    folder = data / "synthetic-atomfind-benchmark"
    for name in json.loads((folder / "meta.json").read_text()):
        z = np.load(folder / f"{name}.npz")
        img, xy, nn = z["image"], z["xy"], float(z["nn_spacing"])
        row = {"image": name, "n_truth": int(len(xy)), **_both(img, xy, nn)}
        rows.append(row)
        print(_fmt(name, row))
    return rows


def heldout(quick: bool) -> dict[str, Any]:
    from atomscope.atoms.train import (
        HELDOUT_STRUCTURES,
        STRUCTURES,
        match_columns,
        simulate_training_image,
    )

    out: dict[str, Any] = {}
    for label, structures, n, stream in (
        ("training_structures_new_seeds", STRUCTURES, 16, 97),
        ("unseen_structures", HELDOUT_STRUCTURES, 8, 96),
    ):
        n = max(4, n // 2) if quick else n
        rng = np.random.default_rng([0, 11, stream])
        rows = []
        for i in range(n):
            img, xy, amb, nn, p = simulate_training_image(
                rng, seed=stream * 100_000 + i, structures=structures
            )
            row: dict[str, Any] = {
                k: p[k]
                for k in (
                    "structure",
                    "zone",
                    "contrast",
                    "counts_at_max",
                    "particle",
                    "extra_gaussian_noise",
                    "pixel_size",
                )
            }
            for method in ("log", "cnn"):
                res, wall = _find(img, method)
                row[method] = {
                    **match_columns(res.xy, xy, 0.3 * nn, img.shape, nn, amb),
                    "seconds": wall,
                }
            rows.append(row)
            print(
                f"   {label[:8]} {p['structure']:>9} {p['zone']} {p['contrast']} "
                f"counts {p['counts_at_max'] or 0:7.1f} LoG* P {row['log']['precision']:.3f} "
                f"R {row['log']['recall']:.3f} | CNN P {row['cnn']['precision']:.3f} "
                f"R {row['cnn']['recall']:.3f}"
            )
        summary = {
            m: {k: float(np.mean([r[m][k] for r in rows])) for k in ("precision", "recall")}
            for m in ("log", "cnn")
        }
        for m in ("log", "cnn"):
            summary[m]["images_with_p_and_r_ge_0.99"] = int(
                sum(r[m]["precision"] >= 0.99 and r[m]["recall"] >= 0.99 for r in rows)
            )
        out[label] = {"n_images": n, "mean": summary, "images": rows}
    return out


def noise_study(quick: bool) -> dict[str, Any]:
    """The reward paper's noise study on simulated images with exact truth."""
    from atomscope.atoms.train import match_columns
    from atomscope.simulate import simulate_haadf

    levels = NOISE_LEVELS[::2] if quick else NOISE_LEVELS
    cases = {
        "SrTiO3 [001] 256², 0.02 nm/px": dict(
            structure="SrTiO3", zone=(0, 0, 1), pixel_size=0.02, dose=1e5, nn=13.8
        )
    }
    if not quick:
        cases["Au [110] 256², 0.015 nm/px"] = dict(
            structure="Au", zone=(1, 1, 0), pixel_size=0.015, dose=1e5, nn=0.288 / 0.015
        )
    out: dict[str, Any] = {
        "levels": list(levels),
        "definition": "σ of added Gaussian noise = level × (max − min) of "
        "the image before adding it; 3 noise draws per level",
        "cases": {},
    }
    for label, c in cases.items():
        sim = simulate_haadf(
            c["structure"],
            zone=c["zone"],
            size=256,
            pixel_size=c["pixel_size"],
            dose=c["dose"],
            rotation=6.0,
            shift=(0.2, 0.3),
            seed=5,
        )
        cols = sim.truth.columns
        vis = cols[cols.weight >= 0.2 * cols.weight.max()][["x", "y"]].to_numpy()
        base = sim.image.data.astype(np.float64)
        span = float(np.ptp(base))
        rows = []
        for level in levels:
            reps = []
            for rep in range(1 if quick else 3):
                rng = np.random.default_rng([int(level * 1000), rep, 3])
                img = (base + rng.normal(0, level * span, base.shape)).astype(np.float32)
                entry = {}
                for method in ("log", "cnn"):
                    res, wall = _find(img, method, pixel_size=c["pixel_size"])
                    m = match_columns(res.xy, vis, 0.3 * c["nn"], img.shape, c["nn"])
                    entry[method] = {
                        **m,
                        "count": int(len(res)),
                        "seconds": wall,
                        "message": res.message,
                    }
                reps.append(entry)
            row = {"level": level}
            for method in ("log", "cnn"):
                row[method] = {
                    k: float(np.mean([r[method][k] for r in reps]))
                    for k in ("precision", "recall", "count", "seconds")
                }
                row[method]["runs"] = [r[method] for r in reps]
            rows.append(row)
            print(
                f"   {label[:14]} noise {level:4.2f}: LoG* n {row['log']['count']:6.1f} "
                f"P {row['log']['precision']:.3f} R {row['log']['recall']:.3f} | CNN n "
                f"{row['cnn']['count']:6.1f} P {row['cnn']['precision']:.3f} "
                f"R {row['cnn']['recall']:.3f}"
            )
        n_truth = int(match_columns(vis, vis, 1.0, base.shape, 0.0)["n_truth"])
        out["cases"][label] = {
            "n_truth_columns": n_truth,
            "rows": rows,
            "example": {"base": base, "span": span},
        }
    return out


def plot_noise(study: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = study["cases"]
    fig, axes = plt.subplots(len(cases), 4, figsize=(15, 3.6 * len(cases)), squeeze=False)
    for row_axes, (label, case) in zip(axes, cases.items(), strict=True):
        rows = case["rows"]
        lv = [r["level"] for r in rows]
        ex = case["example"]
        rng = np.random.default_rng([300, 0, 3])
        noisy = ex["base"] + rng.normal(0, 0.3 * ex["span"], ex["base"].shape)
        row_axes[0].imshow(noisy[:128, :128], cmap="gray")
        row_axes[0].set_title(f"{label}\nnoise level 0.3 (crop)", fontsize=9)
        row_axes[0].axis("off")
        ax = row_axes[1]
        for m, lab, mk in (("log", "LoG* (re-optimised)", "o-"), ("cnn", "CNN", "s-")):
            ax.plot(lv, [r[m]["count"] for r in rows], mk, ms=4, label=lab)
        ax.axhline(
            case["n_truth_columns"], color="k", lw=0.8, ls="--", label="true columns (whole field)"
        )
        ax.set_xlabel("noise σ / image range")
        ax.set_ylabel("columns found")
        ax.legend(fontsize=8)
        for ax, key in ((row_axes[2], "precision"), (row_axes[3], "recall")):
            for m, lab, mk in (("log", "LoG*", "o-"), ("cnn", "CNN", "s-")):
                # precision of an empty detection is undefined: not drawn
                ys = [r[m][key] if (key == "recall" or r[m]["count"] > 0) else np.nan for r in rows]
                ax.plot(lv, ys, mk, ms=4, label=lab)
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel("noise σ / image range")
            ax.set_ylabel(f"{key} (interior)")
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def timing(quick: bool) -> dict[str, Any]:
    import torch

    from atomscope.atoms.cnn import load_atom_model, logit_map
    from atomscope.simulate import simulate_haadf

    repeat = 2 if quick else 5
    out: dict[str, Any] = {"torch_threads": torch.get_num_threads()}
    sim = simulate_haadf("SrTiO3", size=256, pixel_size=0.02, dose=1e5, rotation=5, seed=1)
    img = sim.image
    _find(img, "cnn")
    t_cnn_inf = timeit(lambda: logit_map(img.data, 13.8), repeat=repeat, warmup=1)
    t_cnn_all = timeit(lambda: _find(img, "cnn"), repeat=repeat, warmup=0)
    t_log = timeit(lambda: _find(img, "log"), repeat=max(1, repeat // 2), warmup=0)
    out["per_256_image"] = {
        "cnn_inference_s": t_cnn_inf["median_s"],
        "cnn_find_atoms_s": t_cnn_all["median_s"],
        "log_star_find_atoms_s": t_log["median_s"],
        "speedup_find_atoms": t_log["median_s"] / t_cnn_all["median_s"],
        "note": "CNN inference = resampling to 9 px per column distance + network + peaks "
        "(0.65× for this image: 166² network input); find_atoms = lattice + detection "
        "+ refinement (+ optimisation for LoG*)",
    }
    net, _ = load_atom_model()
    # as atomscope.nn.predict runs it on a CPU: channels-last memory format
    x = torch.randn(1, 1, 512, 512).contiguous(memory_format=torch.channels_last)

    def forward() -> None:
        with torch.inference_mode():
            net.to(memory_format=torch.channels_last)(x)

    t_net = timeit(forward, repeat=repeat, warmup=1)
    net.to(memory_format=torch.contiguous_format)
    sim512 = simulate_haadf("SrTiO3", size=512, pixel_size=0.02, dose=1e5, rotation=5, seed=2)
    t_512 = timeit(lambda: logit_map(sim512.image.data, 13.8), repeat=repeat, warmup=1)
    sim512b = simulate_haadf(
        "Au", zone=(1, 1, 0), size=512, pixel_size=0.02, dose=1e5, rotation=5, seed=2
    )
    t_512b = timeit(lambda: logit_map(sim512b.image.data, 9.0), repeat=repeat, warmup=1)
    out["per_512_image"] = {
        "network_forward_512_input_s": t_net["median_s"],
        "cnn_inference_SrTiO3_0.02nm_s": t_512["median_s"],
        "cnn_inference_at_scale_1_s": t_512b["median_s"],
    }
    print(
        f"   256²: CNN inference {t_cnn_inf['median_s']:.3f} s, CNN find_atoms "
        f"{t_cnn_all['median_s']:.2f} s, LoG* find_atoms {t_log['median_s']:.2f} s; "
        f"network on 512² {t_net['median_s']:.3f} s, CNN inference 512² SrTiO3 "
        f"{t_512['median_s']:.3f} s, 512² at scale 1 {t_512b['median_s']:.3f} s"
    )
    return out


def _agreement(a: np.ndarray, b: np.ndarray, nn: float, shape: tuple[int, int]) -> dict[str, Any]:
    """How many columns of one set have a partner in the other (within 0.3 nn), interior."""
    h, w = shape
    m = 0.5 * nn

    def inner(p: np.ndarray) -> np.ndarray:
        return (p[:, 0] >= m) & (p[:, 0] <= w - 1 - m) & (p[:, 1] >= m) & (p[:, 1] <= h - 1 - m)

    a_in, b_in = a[inner(a)], b[inner(b)]
    if len(a_in) == 0 or len(b_in) == 0:
        return {"n_log": int(len(a_in)), "n_cnn": int(len(b_in)), "agreement": 0.0}
    a_hit = cKDTree(b).query(a_in)[0] < 0.3 * nn
    b_hit = cKDTree(a).query(b_in)[0] < 0.3 * nn
    return {
        "n_log": int(len(a_in)),
        "n_cnn": int(len(b_in)),
        "log_found_by_cnn": float(a_hit.mean()),
        "cnn_found_by_log": float(b_hit.mean()),
        "only_log": int((~a_hit).sum()),
        "only_cnn": int((~b_hit).sum()),
        "agreement": float((a_hit.sum() + b_hit.sum()) / (len(a_in) + len(b_in))),
    }


def _reference(found: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    nn = float(np.median(cKDTree(ref).query(ref, 2)[0][:, 1]))
    if len(found) == 0:
        return {"reference": int(len(ref)), "matched_fraction": 0.0, "extra": 0}
    d = cKDTree(found).query(ref)[0]
    d2 = cKDTree(ref).query(found)[0]
    return {
        "reference": int(len(ref)),
        "matched_fraction": float((d < 0.3 * nn).mean()),
        "extra": int((d2 >= 0.3 * nn).sum()),
    }


def real_images(data: Path) -> dict[str, Any]:
    """Both methods on the real images: their agreement, the count the image's own lattice
    implies (support area × density, whole field), and published reference positions where
    they exist (StatSTEM's PtIr fit, Atomap's Au nanoparticle)."""
    import atomscope

    cases: list[tuple[str, Any, dict[str, Any], np.ndarray | None]] = []
    for key, rel in (
        ("SrTiO3_TIA", "ncempy/tia_STEM_SrTiO3_atomic_1024.emi"),
        ("SrTiO3_EMD", "ncempy/ncem_emd_atomic_1024.emd"),
    ):
        cases.append((key, atomscope.load(data / rel), {}, None))
    cases.append(
        ("Atomap_ADF", atomscope.load(data / "atomap/hspy_ADF_STEM_atomic_400x380.hdf5"), {}, None)
    )
    z = np.load(data / "statstem/statstem_examples_decoded.npz")
    dx = float(z["Example_PtIr__input__dx"][0, 0])
    ref = z["Example_PtIr__output__coordinates"][:, :2] / dx - 1
    cases.append(("PtIr_StatSTEM", z["Example_PtIr__input__obs"], {"pixel_size": dx / 10}, ref))
    cases.append(
        (
            "MoS2",
            atomscope.load(data / "temul-toolkit/dm3_ADF_Se-implanted_MoS2_1024.dm3"),
            {},
            None,
        )
    )
    cases.append(
        (
            "Au_nanoparticle",
            atomscope.load(data / "temul-toolkit/atomap_AtomLattice_AuNP_479x504.hdf5"),
            {},
            np.load(data / "temul-toolkit/AuNP_atom_positions_141x2.npy"),
        )
    )
    cases.append(
        (
            "Atomap_ABF",
            atomscope.load(data / "atomap/hspy_ABF_STEM_atomic_400x380.hdf5"),
            {"dark": True},
            None,
        )
    )
    out: dict[str, Any] = {}
    for key, img, kw, ref in cases:
        r_log, t_log = _find(img, "log", **kw)
        r_cnn, t_cnn = _find(img, "cnn", **kw)
        lat = r_log.lattice
        nn = lat.nn_distance_px if lat is not None else float("nan")
        arr = np.asarray(img.data if hasattr(img, "data") else img)
        implied = (
            lat.expected_count(float(lat.support.sum()))
            if lat is not None and lat.support is not None
            else None
        )
        row = {
            "shape": list(arr.shape),
            "nn_px": nn,
            "log_seconds": t_log,
            "cnn_seconds": t_cnn,
            "found_log": len(r_log),
            "found_cnn": len(r_cnn),
            "implied_by_lattice": implied,
            **_agreement(r_log.xy, r_cnn.xy, nn, arr.shape),
            "in_target_set": key
            in ("SrTiO3_TIA", "SrTiO3_EMD", "Atomap_ADF", "PtIr_StatSTEM", "MoS2"),
        }
        if r_log.rewards and "count" in r_log.rewards:
            row["log_count_reward_QC"] = float(r_log.rewards["count"])
        if ref is not None:
            row["reference_log"] = _reference(r_log.xy, ref)
            row["reference_cnn"] = _reference(r_cnn.xy, ref)
        out[key] = row
        print(
            f"   {key:<16} LoG* {len(r_log):5d} ({t_log:.1f} s)  CNN {len(r_cnn):5d} "
            f"({t_cnn:.1f} s)  lattice implies {implied or float('nan'):.0f}  agreement "
            f"{row['agreement']:.4f} (only LoG* {row.get('only_log')}, only CNN "
            f"{row.get('only_cnn')})"
            + (
                f"; reference: LoG* {row['reference_log']}, CNN {row['reference_cnn']}"
                if ref is not None
                else ""
            )
        )
        out[key]["_xy"] = (r_log.xy, r_cnn.xy, arr)
    return out


def plot_real(real: dict[str, Any], path: Path, crop: int = 150) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in real if "_xy" in real[k]]
    ncol = (len(keys) + 1) // 2
    fig, axes = plt.subplots(2, ncol, figsize=(3.6 * ncol, 7.6), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, key in zip(axes.ravel(), keys, strict=False):
        a, b, img = real[key]["_xy"]
        h, w = np.shape(img)
        s = min(h, w, crop)
        cx, cy = np.median(a, axis=0) if len(a) else (w / 2, h / 2)
        x0 = int(np.clip(cx - s / 2, 0, w - s))
        y0 = int(np.clip(cy - s / 2, 0, h - s))
        ax.imshow(np.asarray(img)[y0 : y0 + s, x0 : x0 + s], cmap="gray")
        for xy, mk, col, lab in ((a, "o", "tab:orange", "LoG*"), (b, "+", "tab:cyan", "CNN")):
            sel = (xy[:, 0] >= x0) & (xy[:, 0] < x0 + s) & (xy[:, 1] >= y0) & (xy[:, 1] < y0 + s)
            ax.plot(
                xy[sel, 0] - x0,
                xy[sel, 1] - y0,
                mk,
                ms=9 if mk == "o" else 8,
                mfc="none",
                color=col,
                label=lab,
                mew=1.4,
            )
        r = real[key]
        ax.set_title(
            f"{key}\nLoG* {r['found_log']}, CNN {r['found_cnn']}, agreement {r['agreement']:.3f}",
            fontsize=9,
        )
    axes[0][0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return path


def run(quick: bool = False) -> dict[str, Any]:
    data = shared_data()
    payload: dict[str, Any] = {
        "load_average_start": os.getloadavg(),
        "note": "2 shared CPU cores: wall times are inflated by other jobs; see load_average_*",
    }
    from atomscope.atoms.cnn import load_atom_model

    _, manifest = load_atom_model()
    payload["model"] = {k: manifest.get(k) for k in ("name", "sha256", "n_parameters")}
    payload["timing"] = timing(quick)
    payload["dose_ladder"] = dose_ladder(quick)
    if data is not None:
        payload["synthetic_benchmark"] = synthetic_benchmark(data)
    payload["heldout"] = heldout(quick)
    study = noise_study(quick)
    plot_noise(study, IMAGES / "atoms_cnn_noise.png")
    for case in study["cases"].values():
        case.pop("example")
    payload["noise_study"] = study
    if data is not None:
        real = real_images(data)
        plot_real(real, IMAGES / "atoms_cnn_real.png")
        for row in real.values():
            row.pop("_xy", None)
        payload["real_images"] = real
    payload["load_average_end"] = os.getloadavg()
    write_result("atoms_cnn", payload, packages=("botorch",))
    return payload
