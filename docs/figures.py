"""Regenerate the pictures in the README: ``python docs/figures.py [atoms ...]``.

Each figure comes from a real file in ../shared/data (or the simulator) run through the public
API, so the pictures show what a user gets.
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


def _data() -> Path:
    sys.path.insert(0, str(HERE.parent))
    from benchmarks._common import shared_data

    data = shared_data()
    if data is None:
        raise SystemExit("../shared/data not found")
    return data


def _crop_plot(result, ax, box, title):
    result.plot(ax, marker_size=max(12.0, 9000.0 / box[2]))
    x0, y0, size = box
    ax.set_xlim(x0 - 0.5, x0 + size - 0.5)
    ax.set_ylim(y0 + size - 0.5, y0 - 0.5)
    ax.set_title(title, fontsize=9)
    leg = ax.get_legend()
    if leg is not None:
        leg.set_visible(True)


def atoms() -> None:
    import atomscope
    from atomscope.atoms import find_atoms
    from atomscope.report.figures import add_scale_bar

    data = _data()
    fig, axes = plt.subplots(2, 2, figsize=(11, 11))
    axes = axes.ravel()
    sto = find_atoms(atomscope.load(data / "ncempy/tia_STEM_SrTiO3_atomic_1024.emi"))
    _crop_plot(sto, axes[0], (0, 0, 320), f"SrTiO3 (TIA), {len(sto)} columns: Sr and Ti–O")
    add_scale_bar(axes[0], sto.image.pixel_size[1], 320)
    z = np.load(data / "statstem/statstem_examples_decoded.npz")
    dx = float(z["Example_PtIr__input__dx"][0, 0])
    ptir = find_atoms(z["Example_PtIr__input__obs"], pixel_size=dx / 10)
    _crop_plot(ptir, axes[1], (60, 60, 300), f"PtIr nanoparticle, {len(ptir)} columns")
    ref = z["Example_PtIr__output__coordinates"][:, :2] / dx - 1
    axes[1].scatter(ref[:, 0], ref[:, 1], s=60, facecolors="none", edgecolors="yellow",
                    linewidths=0.6, label="StatSTEM reference")
    axes[1].legend(loc="upper right", fontsize=7)
    mos2 = find_atoms(atomscope.load(data / "temul-toolkit/dm3_ADF_Se-implanted_MoS2_1024.dm3"))
    _crop_plot(mos2, axes[2], (400, 400, 200), "MoS2: Mo and the weak S2 sublattice")
    add_scale_bar(axes[2], mos2.image.pixel_size[1], 200)
    abf = find_atoms(atomscope.load(data / "atomap/hspy_ABF_STEM_atomic_400x380.hdf5"),
                     dark=True)
    _crop_plot(abf, axes[3], (0, 0, 380), f"ABF, dark columns (--dark): {len(abf)}")
    fig.tight_layout()
    fig.savefig(IMAGES / "atoms_overlays.png", dpi=70)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.5, 3.6))
    sto.optimization.plot_pareto(ax)
    ax.set_title("SrTiO3 (TIA): Pareto front of |QC| and ER", fontsize=9)
    fig.tight_layout()
    fig.savefig(IMAGES / "atoms_pareto.png", dpi=90)
    plt.close(fig)


def disorder() -> None:
    """Simulated perovskite and YBa2Cu3O7 with amorphous patches (true boundary in white), and
    the four YBa2Cu3O7 [100] atom types."""
    import warnings

    from atomscope import find_atoms, find_disorder
    from atomscope.simulate import simulate_amorphous_patches, simulate_haadf

    warnings.filterwarnings("ignore")
    cases = [
        ("SrTiO3 [001], 'random' film, 20 % area, 3e4 e/Å²",
         simulate_amorphous_patches("SrTiO3", zone=(0, 0, 1), fraction=0.2, n_patches=2,
                                    mode="random", size=512, pixel_size=0.02, dose=3e4,
                                    seed=11)),
        ("YBa2Cu3O7 [100], 'displace' film, 10 % area, 1e4 e/Å²",
         simulate_amorphous_patches("YBa2Cu3O7", zone=(1, 0, 0), fraction=0.1, n_patches=1,
                                    mode="displace", size=512, pixel_size=0.02, dose=1e4,
                                    seed=12)),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
    for ax, (title, sim) in zip(axes[:2], cases, strict=True):
        truth = sim.truth.masks["amorphous"].astype(bool)
        r = find_disorder(sim.image, find_atoms(sim.image, seed=0), seed=0)
        iou = (truth & r.mask).sum() / max((truth | r.mask).sum(), 1)
        r.plot(ax, show_types=False)
        ax.contour(truth.astype(float), levels=[0.5], colors="white", linewidths=1.0,
                   linestyles="--")
        ax.set_title(f"{title}\nIoU with the true mask {iou:.2f}", fontsize=9)
    ybco = simulate_haadf("YBa2Cu3O7", zone=(1, 0, 0), size=256, pixel_size=0.02, dose=3e4,
                          seed=13)
    r = find_disorder(ybco.image, n_types=4, optimize=False, seed=0)
    r.plot(axes[2])
    axes[2].set_title("YBa2Cu3O7 [100]: four atom types from the patch mixture", fontsize=9)
    fig.tight_layout()
    fig.savefig(IMAGES / "disorder_overlays.png", dpi=90, bbox_inches="tight")
    plt.close(fig)


FIGURES = {"atoms": atoms, "disorder": disorder}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(FIGURES):
        FIGURES[name]()
        print(f"wrote figures for {name}")
