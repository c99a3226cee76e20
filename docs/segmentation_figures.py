"""Regenerate the overlays of ``docs/segmentation.md``:
``python docs/segmentation_figures.py [hea] [cdte] [bicrystal]``.

Each figure runs real files from ../shared/data (or simulated images with exact masks) through
the public API, so the pictures show what a user gets. PNGs are palette-quantised to stay small.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
IMAGES = HERE / "images"
sys.path.insert(0, str(HERE.parent))


def _data() -> Path:
    from benchmarks._common import shared_data

    data = shared_data()
    if data is None:
        raise SystemExit("../shared/data not found")
    return data


def _save(fig, name: str, dpi: int = 80, colors: int = 128) -> Path:
    """Save, then quantise to a small palette (an 8-bit PNG a few times smaller)."""
    from PIL import Image

    from atomscope.report.figures import save_figure

    path = IMAGES / name
    save_figure(fig, path, dpi=dpi)
    img = Image.open(path).convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    img.save(path, optimize=True)
    print(f"{path}: {path.stat().st_size / 1024:.0f} kB")
    return path


def hea() -> Path:
    from atomscope.report.figures import show_image
    from atomscope.segmentation import segment

    image = np.load(_data() / "pystem" / "high_entropy_alloy.npy")
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    show_image(axes[0], image, title="high-entropy alloy (pySTEM example), 1024² px")
    for ax, d in zip(axes[1:], ("translation", "reflection"), strict=True):
        res = segment(image, descriptor=d, n_clusters=2)
        res.plot(ax, title=f"{d} descriptor, 2 segments, window {res.settings['window']} px")
    fig.tight_layout()
    return _save(fig, "segment_hea.png")


def cdte() -> Path:
    import atomscope
    from atomscope.segmentation import segment

    folder = _data() / "ingrained"
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.3))
    for i, (case, name) in enumerate((("tilt", "CdTe_110_CdTe_110_tilt/HAADF149.dm3"),
                                      ("twin", "CdTe_110_CdTe_110_twin/HAADF26.dm3"))):
        mg = atomscope.load(folder / name)
        auto = segment(mg)
        auto.plot(axes[2 * i], title=f"CdTe {case}: {auto.n_clusters} segments chosen "
                                     f"(silhouette {auto.scores['silhouette']:.2f})")
        three = segment(mg, n_clusters=3)
        three.plot(axes[2 * i + 1], title=f"CdTe {case}: 3 segments (grains + boundary)")
    fig.tight_layout()
    return _save(fig, "segment_cdte.png")


def bicrystal() -> Path:
    from benchmarks.datasets import two_grain, two_phase
    from benchmarks.segment import pystem_params, pystem_python, run_pystem

    from atomscope.segmentation import adjusted_rand_index, boundary_offset, segment

    sims = [("two-grain (Au [001], stepped boundary)", two_grain(2)[1]),
            ("two-phase (Pt [001] / CdTe [110])", two_phase(4)[3])]
    python = pystem_python()
    ncols = 3 if python else 2
    fig, axes = plt.subplots(1, ncols, figsize=(4.4 * ncols, 4.9))

    def draw(ax, labels_or_res, truth, title):
        lab = labels_or_res.labels if hasattr(labels_or_res, "labels") else labels_or_res
        ari = adjusted_rand_index(lab, truth)
        off = boundary_offset(lab, truth)["mean"]
        if hasattr(labels_or_res, "plot"):
            labels_or_res.plot(ax, legend=False)
        else:
            from atomscope.report.figures import show_image

            show_image(ax, sims[0][1].image)
            ax.contour(lab, [0.5], colors="#00e5ff", linewidths=1.2)
        ax.contour(truth, [1.5], colors="red", linewidths=1.0, linestyles="--")
        ax.set_title(f"{title}\nARI {ari:.3f}, boundary offset {off:.1f} px", fontsize=9)

    for ax, (title, sim) in zip(axes[:2], sims, strict=True):
        res = segment(sim.image, n_clusters=2)
        draw(ax, res, sim.truth.masks["grain"], f"atomscope, {title}")
    if python:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            got = run_pystem(python, sims[0][1].image.data,
                             [{"name": "translation", "params": pystem_params("translation"),
                               "repeat": 1}], Path(tmp))
            if got and got["runs"]["translation"].get("labels"):
                lab = np.load(got["runs"]["translation"]["labels"])
                draw(axes[2], lab, sims[0][1].truth.masks["grain"],
                     "pySTEM 0.0.26 (notebook settings), left image")
    fig.text(0.5, 0.01, "red dashed: true boundary (mask); colours / cyan: segmentation",
             ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    return _save(fig, "segment_bicrystal.png")


FIGURES = {"hea": hea, "cdte": cdte, "bicrystal": bicrystal}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(FIGURES):
        FIGURES[name]()
