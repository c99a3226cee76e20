"""The demo: simulate a sample with known ground truth, run the analyses on it, check them
against the truth and write the results (``atomscope demo`` / ``make demo``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ._fileio import write_json

__all__ = ["simulate_demo_sample", "run_demo"]


def simulate_demo_sample(seed: int = 0) -> dict[str, Any]:
    """The built-in sample: a SrTiO3 [001] bicrystal (a 30° tilt boundary) with an amorphous
    patch, imaged at a realistic dose, and a short movie of coarsening nanoparticles."""
    from .simulate import simulate_bicrystal, simulate_coarsening_movie

    bicrystal = simulate_bicrystal(
        "SrTiO3",
        zone=(0, 0, 1),
        rotation=5.0,
        rotation2=35.0,
        boundary="stepped",
        size=384,
        pixel_size=0.02,
        thickness=20,
        dose=2e4,
        amorphous=0.08,
        seed=seed,
    )
    movie = simulate_coarsening_movie(n_frames=12, size=256, pixel_size=0.18, seed=seed)
    return {"bicrystal": bicrystal, "movie": movie}


def run_demo(
    out: str | Path = "out/demo", *, seed: int = 0, show_progress: bool = True
) -> dict[str, Any]:
    """Simulate the demo sample into *out*, load it back, analyse it and write a summary.

    Returns a dict with ``lines`` (what to print) and the paths written.
    """
    import matplotlib.pyplot as plt

    from .io import load
    from .report.figures import save_figure, show_image

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sample = simulate_demo_sample(seed)
    lines = []
    written: dict[str, str] = {}
    for name, sim in sample.items():
        folder = out / "sample" / name
        sim.save(folder)
        written[f"sample/{name}"] = str(folder)
    # read the saved files back as a user would: the calibration must survive the round trip
    image = load(out / "sample" / "bicrystal" / "image.tif")
    movie = load(out / "sample" / "movie" / "image.tif")
    truth_ps = sample["bicrystal"].image.pixel_size
    if image.pixel_size is None or not np.allclose(image.pixel_size, truth_ps, rtol=1e-6):
        raise RuntimeError(f"calibration lost in the round trip: {image.pixel_size} vs {truth_ps}")
    lines.append(
        f"simulated SrTiO3 [001] bicrystal {image.shape}, {image.pixel_size[0]:.3g} nm/px, "
        f"{len(sample['bicrystal'].truth.columns)} true columns"
    )
    lines.append(f"simulated nanoparticle movie {movie.shape}, {movie.pixel_size[0]:.3g} nm/px")

    # atom finding on the bicrystal, checked against the simulator's truth
    from scipy.spatial import cKDTree

    from .atoms import find_atoms

    atoms = find_atoms(image, seed=seed, show_progress=show_progress)
    atoms.save(out / "atoms")
    written["atoms"] = str(out / "atoms")
    truth = sample["bicrystal"].truth.columns
    visible = truth[truth.species != "O"][["x", "y"]].to_numpy()
    nn = atoms.lattice.nn_distance_px if atoms.lattice is not None else 5.0

    def found_fraction(xy: np.ndarray) -> float:
        """Share of the visible true columns with a found column within 0.3 × the spacing."""
        if len(xy) == 0:
            return 0.0
        d, _ = cKDTree(xy).query(visible)
        return float((d < 0.3 * nn).mean())

    lines.append(
        f"atoms: {len(atoms)} columns found ({len(visible)} visible in the truth, "
        f"{100 * found_fraction(atoms.xy):.1f} % of them found) in "
        f"{atoms.timings.get('total', 0):.1f} s"
    )
    notes = [lines[-1]]

    # the same columns without any tuning: the shipped network (CPU)
    t_cnn = time.perf_counter()
    atoms_cnn = find_atoms(image, method="cnn", seed=seed, show_progress=False)
    lines.append(
        f"atoms, CNN (no parameters): {len(atoms_cnn)} columns, "
        f"{100 * found_fraction(atoms_cnn.xy):.1f} % of the visible ones found, in "
        f"{time.perf_counter() - t_cnn:.1f} s"
    )
    notes.append(lines[-1])

    masks = sample["bicrystal"].truth.masks
    results: dict[str, Any] = {"atoms (bicrystal)": atoms}

    # amorphous patch: disorder on the same columns, against the true mask
    from .disorder import find_disorder

    disorder = find_disorder(image, atoms, seed=seed)
    disorder.save(out / "disorder")
    written["disorder"] = str(out / "disorder")
    true_amorphous = np.asarray(masks["amorphous"], bool)
    union = (true_amorphous | disorder.mask).sum()
    iou = float((true_amorphous & disorder.mask).sum() / union) if union else 1.0
    results["disorder (bicrystal)"] = disorder
    lines.append(
        f"disorder: {100 * disorder.area_fraction:.1f} % amorphous in "
        f"{disorder.n_regions} region(s) (truth {100 * true_amorphous.mean():.1f} %, "
        f"IoU {iou:.2f}) in {disorder.timings.get('total', 0):.1f} s"
    )
    notes.append(lines[-1])

    # the two grains: unsupervised symmetry segmentation, against the true grain map
    from .segmentation import segment
    from .segmentation.metrics import matched_accuracy

    t_seg = time.perf_counter()
    segments = segment(image, n_clusters=2, seed=seed)
    segments.save(out / "segment")
    written["segment"] = str(out / "segment")
    grain = np.asarray(masks["grain"])
    accuracy = matched_accuracy(segments.labels, grain)
    results["segment (bicrystal)"] = segments
    lines.append(
        f"segment: {segments.n_clusters} segments, {100 * accuracy:.1f} % of pixels "
        f"on the right grain in {time.perf_counter() - t_seg:.1f} s"
    )
    notes.append(lines[-1])

    # the movie: particles measured in nm and tracked
    from .particles import analyze

    particles = analyze(movie, method="classical", show_progress=False)
    particles.save(out / "particles")
    written["particles"] = str(out / "particles")
    s = particles.summary()
    results["particles (movie)"] = particles
    lines.append(
        f"particles: {s['count_first_frame']} → {s['count_last_frame']} particles, "
        f"mean diameter {s['mean_diameter_first_frame']:.2f} → "
        f"{s['mean_diameter_last_frame']:.2f} nm over {movie.n_frames} frames, "
        f"{s['n_tracks']} tracks"
    )
    notes.append(lines[-1])

    fig, axes = plt.subplots(2, 3, figsize=(13, 9.2))
    atoms.plot(axes[0, 0])
    axes[0, 0].set_title("bicrystal (simulated HAADF) and found columns", fontsize=10)
    disorder.plot(axes[0, 1])
    axes[0, 1].set_title("disordered columns and amorphous mask", fontsize=10)
    segments.plot(axes[0, 2])
    axes[0, 2].set_title("symmetry segmentation", fontsize=10)
    show_image(axes[1, 0], movie.frame(0), title="movie: first frame")
    particles.plot(axes[1, 1], frame=movie.n_frames - 1)
    particles.plot_size_vs_time([axes[1, 2], axes[1, 2].twinx()])
    axes[1, 2].set_title("coarsening: size and count vs frame", fontsize=10)
    fig.tight_layout()
    written["overview.png"] = str(save_figure(fig, out / "overview.png"))

    from .report.html import write_html

    report = write_html(
        results,
        out / "report.html",
        title="atomscope demo: simulated SrTiO3 bicrystal and nanoparticle movie",
        inputs={
            "bicrystal": str(out / "sample" / "bicrystal" / "image.tif"),
            "pixel size (nm)": list(image.pixel_size),
            "movie": str(out / "sample" / "movie" / "image.tif"),
            "movie frames": movie.n_frames,
        },
        notes=notes,
    )
    written["report.html"] = str(report)
    lines.append(f"HTML report: {report}")

    summary = {
        "seed": seed,
        "sample": {k: v.summary() for k, v in sample.items()},
        "files": written,
        "seconds": time.perf_counter() - t0,
    }
    written["summary.json"] = str(write_json(out / "summary.json", summary))
    lines.append(f"overview with scale bars: {out / 'overview.png'}")
    return {"lines": lines, "files": written, "summary": summary}
