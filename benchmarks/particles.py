"""Benchmark of :mod:`atomscope.particles` (nanoparticle segmentation, measurement, tracking).

Measures, in one process run, on the simulator's suites (exact masks):

* pixel F1 (precision, recall) of the classical pipeline, the paper's bare recipe, the shipped
  U-Net and the shipped shallow CNN on the ``nanoparticle_frames`` suite (1024² bright-field,
  0.18 nm/px, 50/100/200 counts per background pixel), pooled and per frame; anchor: the
  re-implemented recipe's F1 0.96 (ANCHORS.md), target ≥ 0.95;
* F1/precision/recall versus threshold (0.1…0.9 and Otsu) for the networks;
* equivalent-diameter errors of matched particles ≥ 10 px across (not cut by the frame edge),
  target within 5 %;
* tracking identity recovery on the 50-frame ``coarsening_movie`` (target ≥ 95 %);
* time per 1024² frame: classical (target ≤ 0.5 s; anchor 4.0 s for the recipe), the bare
  recipe at full resolution, U-Net and shallow inference (target ≤ 1.5 s), with 2 torch threads;
* the training time of the shipped models (from their manifests).

The machine is shared: ``os.getloadavg()`` is recorded at the start and the end.

``python -m benchmarks particles [--quick]`` writes ``benchmarks/results/particles.json``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from ._common import timeit, write_result
from .datasets import generate

ANCHOR_RECIPE_SECONDS = 4.0
ANCHOR_RECIPE_F1 = 0.96
THREADS = 2


def _scores(pred: list[np.ndarray], truth: list[np.ndarray]) -> dict[str, Any]:
    from atomscope.particles import pixel_scores

    pooled = pixel_scores(np.stack(pred), np.stack(truth))
    per = [pixel_scores(p, t) for p, t in zip(pred, truth, strict=True)]
    return {
        "pooled": pooled,
        "per_frame_f1": [s["f1"] for s in per],
        "mean_f1": float(np.mean([s["f1"] for s in per])),
        "min_f1": float(np.min([s["f1"] for s in per])),
    }


def _diameter_errors(results: list[Any], labels: list[np.ndarray]) -> dict[str, Any]:
    from atomscope.particles import match_labels, measure

    errs, sizes = [], []
    for res, lab in zip(results, labels, strict=True):
        ps = res.image.pixel_size_nm
        table = measure(lab, ps).set_index("particle_id")
        truth = res.truth.masks["particle"]
        tp = res.truth.particles.set_index("id")
        m = match_labels(lab, truth)
        for label, tid in zip(m["label"], m["truth_id"], strict=True):
            true_d = 2.0 * float(tp.loc[tid, "radius_nm"])
            row = table.loc[label]
            if true_d / ps < 10 or bool(row["touches_border"]):
                continue
            errs.append((float(row["diameter_nm"]) - true_d) / true_d)
            sizes.append(true_d / ps)
    e = np.asarray(errs)
    a = np.abs(e)
    if not len(e):
        return {"n": 0}
    return {
        "n": int(len(e)),
        "median_abs": float(np.median(a)),
        "mean_abs": float(a.mean()),
        "p90_abs": float(np.percentile(a, 90)),
        "max_abs": float(a.max()),
        "mean_signed": float(e.mean()),
        "fraction_within_5pct": float((a < 0.05).mean()),
        "size_range_px": [float(min(sizes)), float(max(sizes))],
    }


def run(quick: bool = False) -> dict[str, Any]:
    import torch

    from atomscope.nn import list_models, load_model, predict, preprocess
    from atomscope.particles import (
        analyze,
        classical_segment,
        identity_recovery,
        label_mask,
        segment,
        threshold_curve,
    )

    load_start = os.getloadavg()
    t_start = time.perf_counter()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        frames = generate("nanoparticle_frames", quick=quick)
        movie = generate("coarsening_movie", quick=quick)[0]
        truths = [r.truth.masks["particle"] > 0 for r in frames]
        methods: dict[str, Any] = {}
        curves: dict[str, Any] = {}
        diameters: dict[str, Any] = {}
        segs: dict[str, list[Any]] = {}
        for name, kw in (
            ("classical", {"method": "classical"}),
            (
                "recipe (paper, full resolution, no refinement)",
                {"method": "classical", "classical": {"refine": False, "downsample": 1}},
            ),
            ("unet", {"method": "unet"}),
            ("shallow", {"method": "shallow"}),
        ):
            out = [segment(r.image, n_threads=THREADS, **kw) for r in frames]
            segs[name] = out
            masks = [s.mask for s in out]
            methods[name] = {"threshold": "otsu", **_scores(masks, truths)}
            diameters[name] = _diameter_errors(frames, [label_mask(m) for m in masks])
            if out[0].probability is not None:
                prob = np.stack([s.probability for s in out])
                curves[name] = threshold_curve(prob, np.stack(truths)).to_dict("records")
                fixed = [s.probability > 0.4 for s in out]
                methods[f"{name} (threshold 0.4)"] = {"threshold": 0.4, **_scores(fixed, truths)}
        # -- timings per frame (2 torch threads) ------------------------------------------
        img = frames[0].image.data
        rep = 2 if quick else 5
        timings: dict[str, Any] = {"frame_shape": list(img.shape), "torch_threads": THREADS}
        timings["classical"] = timeit(lambda: classical_segment(img), repeat=rep)
        timings["recipe_full_resolution"] = timeit(
            lambda: classical_segment(img, refine=False, downsample=1), repeat=1 if quick else 2
        )
        for arch in ("unet", "shallow"):
            net, manifest = load_model(f"particles-{arch}")
            x = preprocess(img)
            timings[f"{arch}_inference"] = timeit(
                lambda net=net, x=x: predict(net, x, n_threads=THREADS), repeat=rep
            )
            timings[f"{arch}_segment_end_to_end"] = timeit(
                lambda arch=arch: segment(img, method=arch, bright=False, n_threads=THREADS),
                repeat=rep,
            )
        timings["speedup_classical_vs_anchor_recipe"] = (
            ANCHOR_RECIPE_SECONDS / timings["classical"]["median_s"]
        )
        timings["speedup_classical_vs_recipe_same_run"] = (
            timings["recipe_full_resolution"]["median_s"] / timings["classical"]["median_s"]
        )
        # -- tracking on the coarsening movie ---------------------------------------------
        tracking: dict[str, Any] = {
            "n_frames": movie.image.n_frames,
            "shape": list(movie.image.shape),
        }
        truth_labels = movie.truth.masks["particle"]
        events = movie.truth.parameters.get("events", [])
        tracking["truth_events"] = {
            k: sum(e["event"] == k for e in events) for k in ("dissolved", "coalescence")
        }
        for method in ("classical", "unet"):
            t0 = time.perf_counter()
            res = analyze(movie.image, method=method, n_threads=THREADS)
            dt = time.perf_counter() - t0
            rec = identity_recovery(res.table, res.labels, truth_labels)
            rec["seconds_total"] = dt
            rec["seconds_per_frame"] = dt / movie.image.n_frames
            rec["events"] = res.summary().get("events", {})
            pf = res.per_frame()
            true_pf = movie.truth.particles.groupby("frame")
            rec["mean_diameter_nm_first_last"] = [
                float(pf["mean_diameter"].iloc[0]),
                float(pf["mean_diameter"].iloc[-1]),
            ]
            rec["true_mean_diameter_nm_first_last"] = [
                float(2 * true_pf["radius_nm"].mean().iloc[0]),
                float(2 * true_pf["radius_nm"].mean().iloc[-1]),
            ]
            rec["count_first_last"] = [int(pf["count"].iloc[0]), int(pf["count"].iloc[-1])]
            rec["true_count_first_last"] = [
                int(true_pf.size().iloc[0]),
                int(true_pf.size().iloc[-1]),
            ]
            tracking[method] = rec
        # -- training speed here and now (the shipped runs shared the machine) ------------
        from atomscope.nn import Augmentation, build_model, train_model
        from atomscope.particles.train import TRAIN_DEFAULTS, simulated_training_set

        t0 = time.perf_counter()
        n_sim = 16 if quick else 32
        sim_x, sim_y, _, _ = simulated_training_set(n_sim, size=256, seed=123)
        sim_seconds = (time.perf_counter() - t0) / n_sim
        step_timing: dict[str, Any] = {"simulate_seconds_per_256_frame": sim_seconds}
        xs = [preprocess(a) for a in sim_x]
        ys = [b.astype(np.int64) for b in sim_y]
        for arch in ("unet", "shallow"):
            d = TRAIN_DEFAULTS[arch]
            net = build_model(arch, seed=0)
            n_steps = 4 if quick else 20
            hist = train_model(
                net,
                xs,
                ys,
                epochs=1,
                steps_per_epoch=n_steps,
                batch_size=d["batch_size"],
                patch_size=d["patch_size"],
                val_patches=0,
                seed=0,
                show_progress=False,
                n_threads=THREADS,
                augmentation=Augmentation(noise=0.3, blur=1.0, brightness=0.3, contrast=0.3),
            )
            per_step = hist.seconds / n_steps
            total_steps = d["epochs"] * d["steps_per_epoch"]
            step_timing[arch] = {
                "seconds_per_step": per_step,
                "cpu_seconds_per_step": hist.cpu_seconds / n_steps,
                "steps_in_recipe": total_steps,
                "extrapolated_minutes": (per_step * total_steps + sim_seconds * d["n_frames"])
                / 60.0,
                "load_average_now": list(os.getloadavg()),
            }
        # -- training of the shipped models -----------------------------------------------
        training = {"measured_now": step_timing}
        for name, manifest in list_models().items():
            tr = manifest.get("training", {})
            training[name] = {
                k: tr.get(k)
                for k in (
                    "command",
                    "seconds",
                    "cpu_seconds",
                    "seconds_total",
                    "cpu_seconds_total",
                    "threads",
                    "load_average_1min_at_end",
                    "best_epoch",
                )
            }
            training[name]["n_parameters"] = manifest.get("n_parameters")
            training[name]["metrics"] = manifest.get("metrics")
            training[name]["epochs"] = len(tr.get("history", []))
    finally:
        torch.set_num_threads(old_threads)
    payload = {
        "quick": quick,
        "suite": {
            "counts_per_background_pixel": [
                r.image.metadata["simulation"]["counts_per_background_pixel"] for r in frames
            ],
            "frame_shape": list(frames[0].image.shape),
            "pixel_size_nm": frames[0].image.pixel_size_nm,
        },
        "f1": methods,
        "threshold_curves": curves,
        "diameter_errors": diameters,
        "tracking": tracking,
        "timings": timings,
        "training": training,
        "anchors": {
            "recipe_seconds_per_1024_frame": ANCHOR_RECIPE_SECONDS,
            "recipe_f1": ANCHOR_RECIPE_F1,
        },
        "targets": {
            "f1": 0.95,
            "diameter_error": 0.05,
            "identity_recovery": 0.95,
            "classical_seconds": 0.5,
            "unet_seconds": 1.5,
            "training_minutes": 15,
        },
        "load_average_start": list(load_start),
        "load_average_end": list(os.getloadavg()),
        "seconds": time.perf_counter() - t_start,
    }
    path = write_result("particles", payload)
    print(
        f"   F1 classical {methods['classical']['pooled']['f1']:.3f}, "
        f"unet {methods['unet']['pooled']['f1']:.3f}, "
        f"shallow {methods['shallow']['pooled']['f1']:.3f}; classical "
        f"{timings['classical']['median_s']:.3f} s, unet "
        f"{timings['unet_inference']['median_s']:.3f} s per frame; identity recovery "
        f"{tracking['classical']['identity_recovery']:.3f} -> {path}"
    )
    return payload


def figures(out: str | os.PathLike[str] | None = None) -> list[str]:
    """The pictures of ``docs/particles.md``: ``particles_real.png`` (the real 5-frame STEM
    series), ``particles_sim.png`` (a simulated frame: truth vs classical vs U-Net, the U-Net
    probability and F1 vs threshold), ``particles_kernels.png`` (the shallow CNN's learned
    kernels, the paper's interpretability figure) and ``particles_size_vs_time.png`` (the
    coarsening movie, measured vs true)."""
    from pathlib import Path

    import matplotlib.pyplot as plt
    import torch

    import atomscope
    from atomscope.particles import analyze, segment, threshold_curve
    from atomscope.report import save_figure, show_image

    from ._common import shared_data

    out_dir = Path(out) if out else Path(__file__).resolve().parents[1] / "docs" / "images"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    old = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        root = shared_data()
        if root is not None and (root / "rsciio/tia_STEM_nanoparticles_5frames.emi").exists():
            series = atomscope.load(root / "rsciio/tia_STEM_nanoparticles_5frames.emi")
            cl = analyze(series, method="classical")
            un = analyze(series, method="unet", n_threads=THREADS)
            fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.9))
            cl.plot(axes[0], frame=0)
            axes[0].set_title(f"classical, frame 0: {len(cl.frame_table(0))} particles", fontsize=9)
            cl.plot(axes[1], frame=4)
            axes[1].set_title(
                f"classical, frame 4: {len(cl.frame_table(4))} (same track ids)", fontsize=9
            )
            un.plot(axes[2], frame=0)
            axes[2].set_title(f"U-Net, frame 0: {len(un.frame_table(0))} particles", fontsize=9)
            fig.suptitle(
                "Real STEM-HAADF series (TIA, 128², 0.384 nm/px): outlines coloured "
                "and numbered by track",
                fontsize=9,
            )
            fig.tight_layout()
            written.append(str(save_figure(fig, out_dir / "particles_real.png", dpi=100)))

        frame = generate("nanoparticle_frames")[0]
        truth = frame.truth.masks["particle"] > 0
        cl = segment(frame.image, method="classical")
        un = segment(frame.image, method="unet", n_threads=THREADS)
        sh = segment(frame.image, method="shallow", n_threads=THREADS)
        sl = (slice(60, 260), slice(290, 490))  # three particles, edges visible
        crop = frame.image.with_data(frame.image.data[sl])
        fig, axes = plt.subplots(1, 3, figsize=(12, 4.1))
        show_image(axes[0], crop)
        for m, colour, label in (
            (truth, "lime", "truth"),
            (cl.mask, "red", "classical"),
            (un.mask, "deepskyblue", "U-Net"),
        ):
            axes[0].contour(m[sl], [0.5], colors=colour, linewidths=0.7)
            axes[0].plot([], [], color=colour, label=label)
        axes[0].legend(fontsize=7, loc="upper left")
        axes[0].set_title("simulated BF frame (200² crop of 1024²), 50 counts/px", fontsize=9)
        im = axes[1].imshow(un.probability[sl], vmin=0, vmax=1, cmap="magma")
        axes[1].set_axis_off()
        axes[1].set_title("U-Net particle probability", fontsize=9)
        fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.02)
        for res, colour, label in ((un, "tab:blue", "U-Net"), (sh, "tab:orange", "shallow")):
            c = threshold_curve(res.probability, truth)
            fixed = c[c["label"] != "otsu"]
            axes[2].plot(
                fixed["threshold"], fixed["f1"], "o-", ms=3, color=colour, label=f"{label} F1"
            )
            axes[2].plot(fixed["threshold"], fixed["precision"], ":", color=colour, lw=1)
            axes[2].plot(fixed["threshold"], fixed["recall"], "--", color=colour, lw=1)
            o = c[c["label"] == "otsu"].iloc[0]
            axes[2].plot([o["threshold"]], [o["f1"]], "*", ms=9, color=colour)
        from atomscope.particles import pixel_scores

        f1c = pixel_scores(cl.mask, truth)["f1"]
        axes[2].axhline(f1c, color="tab:red", lw=1, label=f"classical F1 {f1c:.3f}")
        axes[2].set_xlabel("probability threshold (★ Otsu)")
        axes[2].set_ylabel("F1 (—), precision (··), recall (--)")
        axes[2].set_ylim(0.5, 1.0)
        axes[2].legend(fontsize=7, loc="lower center")
        axes[2].set_title("this frame: scores vs threshold", fontsize=9)
        fig.tight_layout()
        written.append(str(save_figure(fig, out_dir / "particles_sim.png", dpi=90)))

        from atomscope.nn import load_model, plot_kernels

        shallow, _ = load_model("particles-shallow")
        fig = plot_kernels(shallow)
        fig.suptitle(
            "shipped shallow CNN: the 32 learned 9×9 kernels and their mean "
            "(input: dark particles on a bright support)",
            fontsize=9,
        )
        written.append(str(save_figure(fig, out_dir / "particles_kernels.png", dpi=90)))

        movie = generate("coarsening_movie")[0]
        fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
        true_pf = movie.truth.particles.groupby("frame")
        frames = np.arange(movie.image.n_frames)
        axes[0].plot(
            frames,
            2 * true_pf["radius_nm"].mean().reindex(frames),
            "k-",
            lw=2,
            label="truth (all particles)",
        )
        tp = movie.truth.particles
        big = tp[2 * tp["radius"] >= 10].groupby("frame")["radius_nm"].mean() * 2
        axes[0].plot(frames, big.reindex(frames), "k:", lw=1.5, label="truth (≥ 10 px across)")
        axes[1].plot(frames, true_pf.size().reindex(frames), "k-", lw=2, label="truth")
        for method, colour in (("classical", "tab:red"), ("unet", "tab:blue")):
            res = analyze(movie.image, method=method, n_threads=THREADS)
            pf = res.per_frame()
            axes[0].plot(pf["frame"], pf["mean_diameter"], "-", color=colour, label=method)
            axes[0].fill_between(
                pf["frame"],
                pf["mean_diameter"] - pf["std_diameter"],
                pf["mean_diameter"] + pf["std_diameter"],
                color=colour,
                alpha=0.12,
            )
            axes[1].plot(pf["frame"], pf["count"], "-", color=colour, label=method)
        axes[0].set_xlabel("frame")
        axes[0].set_ylabel("mean diameter (nm)")
        axes[0].set_title("coarsening curve (± std)", fontsize=9)
        axes[0].legend(fontsize=7)
        axes[1].set_xlabel("frame")
        axes[1].set_ylabel("particles in the field")
        axes[1].set_title("count vs time", fontsize=9)
        axes[1].legend(fontsize=7)
        fig.suptitle(
            "Simulated 50-frame coarsening movie (512², 0.18 nm/px): measured vs true", fontsize=9
        )
        fig.tight_layout()
        written.append(str(save_figure(fig, out_dir / "particles_size_vs_time.png", dpi=90)))
    finally:
        torch.set_num_threads(old)
    return written


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.particles")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--figures", action="store_true", help="only write the docs/images/particles_*.png pictures"
    )
    args = parser.parse_args()
    if args.figures:
        for p in figures():
            print(p)
    else:
        run(quick=args.quick)
