"""Training the atom-column network: on simulated images with exact column positions (how the
shipped model ``atoms-unet`` is made), or fine-tuning it on your own image and positions.

Simulated data (:func:`simulated_atom_set`): every image draws a structure and zone axis
(:data:`STRUCTURES`), a pixel size of 0.01–0.05 nm, the probe (voltage, convergence, source
size, defocus), thermal blur, thickness, rotation, vacancies, scan distortions, a background
ramp, an amorphous speckle, HAADF or ABF-like contrast, a particle-in-vacuum shape, and the dose
(Poisson) plus extra Gaussian noise. The target is a disk around every *visible* column
(effective weight ≥ :data:`VISIBLE_FRACTION` × the heaviest column's), in the network's scale
(see :func:`atomscope.atoms.cnn.prepare_input`); columns between :data:`IGNORE_FRACTION` and
:data:`VISIBLE_FRACTION` (light columns, thin particle edges) are left out of the loss, so the
network is not taught an arbitrary cut. The column distance used for the resampling is the true
one times a random factor of 0.8–1.25, so the network tolerates errors of the lattice estimate
that sets it at inference.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from .._progress import progress
from ..errors import ParameterError
from ..nn.augment import log_uniform
from ..nn.trained import TrainedModel, finish_training, training_record
from .cnn import MODEL_NAME, TARGET_NN_PX, column_mask, prepare_input, to_resampled
from .lattice import median_nn_distance
from .scale_space import normalise_image

__all__ = [
    "STRUCTURES",
    "HELDOUT_STRUCTURES",
    "TRAIN_DEFAULTS",
    "ARCH",
    "TrainedModel",
    "simulate_training_image",
    "simulated_atom_set",
    "training_pair",
    "read_positions",
    "train_atoms",
    "evaluate_simulated",
    "match_columns",
]

#: (structure, zone) pairs of the training images
STRUCTURES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("SrTiO3", (0, 0, 1)),
    ("SrTiO3", (1, 1, 0)),
    ("BaTiO3", (0, 0, 1)),
    ("BaTiO3", (1, 1, 0)),
    ("YBa2Cu3O7", (1, 0, 0)),
    ("YBa2Cu3O7", (1, 1, 0)),
    ("Si", (1, 1, 0)),
    ("Si", (0, 0, 1)),
    ("GaAs", (1, 1, 0)),
    ("GaAs", (0, 0, 1)),
    ("CdTe", (1, 1, 0)),
    ("Au", (1, 1, 0)),
    ("Au", (0, 0, 1)),
    ("Pt", (1, 1, 0)),
    ("Pt", (0, 0, 1)),
    ("Cu", (1, 1, 0)),
    ("Ni", (0, 0, 1)),
    ("ZnO", (1, 1, 0)),
    ("ZnO", (0, 0, 1)),
    ("ZnO", (1, 0, 0)),
    ("MoS2", (0, 0, 1)),
    ("graphene", (0, 0, 1)),
)
#: never in the training set: used to test generalisation to unseen structures and zones
HELDOUT_STRUCTURES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("Cu", (0, 0, 1)),
    ("CdTe", (0, 0, 1)),
    ("Ni", (1, 1, 0)),
    ("BaTiO3", (1, 0, 1)),
)
#: network of the shipped model: a 4-level U-Net, 16–128 channels, one output (sigmoid)
ARCH: dict[str, Any] = {
    "base_channels": 16,
    "depth": 4,
    "batch_norm": True,
    "double_conv": False,
    "activation": "leaky_relu",
    "kernel_size": 3,
    "upsample": "transpose",
    "in_channels": 1,
    "n_classes": 1,
}
#: training settings of the shipped model (about 10–15 min on 2 idle CPU cores)
TRAIN_DEFAULTS: dict[str, Any] = {
    "n_images": 640,
    "epochs": 64,
    "steps_per_epoch": 40,
    "batch_size": 12,
    "patch_size": 128,
    "lr": 3e-3,
    "loss": "bce_dice",
    "positive_fraction": 0.5,
}
#: fine-tuning settings (``--from-positions``)
FINETUNE_DEFAULTS: dict[str, Any] = {
    "epochs": 6,
    "steps_per_epoch": 20,
    "batch_size": 8,
    "patch_size": 128,
    "lr": 5e-4,
    "loss": "bce_dice",
    "positive_fraction": 0.5,
}
#: visible columns: effective weight ≥ this × the heaviest column's
VISIBLE_FRACTION = 0.25
#: columns between this and VISIBLE_FRACTION are ambiguous: ignored in the loss and the scores
IGNORE_FRACTION = 0.1
#: target disk radius at the network's scale, px (ignored columns: one px more)
DISK_RADIUS_PX = 2.0
#: target value of ignored pixels
IGNORE_VALUE = 255


@lru_cache(maxsize=128)
def _structure_nn_nm(structure: str, zone: tuple[int, int, int], exponent: float) -> float:
    """Distance between visible columns (nm) of a structure along a zone (clean 0.02 nm/px)."""
    from ..simulate import simulate_haadf

    r = simulate_haadf(
        structure, zone=zone, size=160, pixel_size=0.02, exponent=exponent, rotation=7.0
    )
    c = r.truth.columns
    vis = c[c.weight >= VISIBLE_FRACTION * c.weight.max()]
    return median_nn_distance(vis[["x", "y"]].to_numpy(), min_points=3) * 0.02


def _particle_mask(shape: tuple[int, int], nn_px: float, rng: np.random.Generator) -> np.ndarray:
    """A random particle covering 25–75 % of the field: 1 inside, 0 outside, with a soft edge
    and, half of the time, a thickness that falls towards the edge (a dome)."""
    h, w = shape
    field_ = ndi.gaussian_filter(rng.standard_normal((h, w)), max(h, w) / 5.0, mode="wrap")
    t = np.quantile(field_, rng.uniform(0.25, 0.75))
    inside = field_ > t
    mask = ndi.gaussian_filter(inside.astype(np.float32), 0.1 * nn_px)
    if rng.random() < 0.5:
        depth = ndi.distance_transform_edt(inside)
        dome = np.sqrt(np.clip(depth / max(float(depth.max()), 1.0), 0, 1))
        mask = mask * ndi.gaussian_filter(dome, 0.5 * nn_px)
    return mask.astype(np.float32)


def simulate_training_image(
    rng: np.random.Generator,
    *,
    seed: int,
    structures: Sequence[tuple[str, tuple[int, int, int]]] = STRUCTURES,
    out_size: float = 192.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, dict[str, Any]]:
    """One varied simulated image with its visible columns.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws every imaging parameter.
    seed : int
        Seed of the simulator's own random steps (noise-free image, defects, distortions).
    structures : sequence of (name, zone)
        Structures to draw from.
    out_size : float
        Approximate side of the image after resampling to the network's scale, px.

    Returns
    -------
    (image, xy, ambiguous_xy, nn_px, parameters)
        The image with bright columns (ABF-like images already inverted, as the atom finder does
        with ``dark=True``), visible column positions (x, y) in px, ambiguous ones (effective
        weight between :data:`IGNORE_FRACTION` and :data:`VISIBLE_FRACTION` of the heaviest),
        the visible columns' true nearest-neighbour distance in px, and the drawn parameters.
    """
    from ..simulate import simulate_haadf
    from ..simulate.noise import smooth_background

    structure, zone = structures[int(rng.integers(len(structures)))]
    abf = bool(rng.random() < 0.2)
    exponent = float(rng.uniform(0.35, 0.6) if abf else rng.uniform(1.5, 2.0))
    nn_nm = _structure_nn_nm(structure, tuple(zone), round(exponent, 1))
    ps = log_uniform(rng, 0.01, 0.05)
    nn_px = nn_nm / ps
    if nn_px < 3.5 or nn_px > 32:  # keep columns resolvable and the field affordable
        nn_px = float(np.clip(nn_px, 3.5, 32.0))
        ps = nn_nm / nn_px
    size = int(np.clip(round(out_size * nn_px / TARGET_NN_PX), 96, 640))
    two_d = structure in ("MoS2", "graphene")
    distort = bool(rng.random() < 0.25 and size <= 384)
    kw: dict[str, Any] = dict(
        zone=zone,
        size=size,
        pixel_size=ps,
        exponent=exponent,
        thickness=float(rng.integers(1, 3)) if two_d else round(log_uniform(rng, 2, 40)),
        rotation=float(rng.uniform(0, 360)),
        shift=tuple(rng.uniform(-0.5, 0.5, 2)),
        voltage=float(rng.choice([80e3, 200e3, 300e3])),
        convergence=float(rng.uniform(18e-3, 32e-3)),
        source_size=log_uniform(rng, 0.03, 0.15),
        defocus=float(rng.normal(0, 3.0)) if rng.random() < 0.3 else 0.0,
        debye_waller=float(rng.uniform(0.2, 1.5)) if rng.random() < 0.3 else None,
        vacancies=float(rng.uniform(0, 0.15)) if rng.random() < 0.3 else None,
        drift=tuple(rng.uniform(-3, 3, 2)) if distort else None,
        jitter=float(rng.uniform(0.05, 0.5)) if distort else None,
        seed=int(seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undersampled probes are part of the range
        sim = simulate_haadf(structure, **kw)
    clean = sim.truth.fields["noise_free"].astype(np.float64)
    cols = sim.truth.columns
    xy = cols[["x", "y"]].to_numpy()
    weight = cols["weight"].to_numpy().astype(float)
    wmax = float(weight.max()) if len(weight) else 1.0
    h, w = clean.shape
    particle = bool(rng.random() < 0.25)
    if particle:
        mask = _particle_mask((h, w), nn_px, rng)
        clean = clean * mask
        ij = np.clip(np.rint(xy).astype(int), 0, [w - 1, h - 1])
        weight = weight * mask[ij[:, 1], ij[:, 0]]
    visible = weight >= VISIBLE_FRACTION * wmax
    ambiguous = ~visible & (weight >= IGNORE_FRACTION * wmax)
    depth = float(rng.uniform(0.15, 0.7))
    signal = (1.0 - depth * clean / clean.max()) if abf else clean / clean.max()
    offset = float(rng.uniform(0.5, 5.0)) if rng.random() < 0.3 else 0.0
    signal = signal + offset * float(signal.mean())  # low-contrast columns (diffuse signal)
    bg_amp = float(rng.uniform(0.05, 2.0)) if rng.random() < 0.5 else 0.0
    if bg_amp:
        length = float(rng.uniform(0.1, 0.6)) * max(h, w)
        signal = signal + bg_amp * float(signal.mean()) * smooth_background(
            (h, w), length=length, rng=rng, gradient=float(rng.uniform(0, 1))
        )
    speckle = float(rng.uniform(0.01, 0.12)) if rng.random() < 0.3 else 0.0
    if speckle:  # amorphous surface layer / support: probe-sized random texture
        fwhm_px = float(sim.truth.parameters["probe_fwhm_px"])
        tex = ndi.gaussian_filter(rng.standard_normal((h, w)), max(0.6, fwhm_px / 2.355))
        signal = signal + speckle * tex / (tex.std() + 1e-12)
    signal = np.clip(signal, 0.0, None)
    counts = log_uniform(rng, 1.5, 3000.0) if rng.random() < 0.9 else None
    img = (
        rng.poisson(signal / max(signal.max(), 1e-12) * counts).astype(np.float64)
        if counts is not None
        else signal
    )
    extra = float(rng.uniform(0, 0.6)) if rng.random() < 0.3 else 0.0
    if extra:
        img = img + rng.normal(0, extra * float(np.ptp(img)) + 1e-12, img.shape)
    if abf:
        img = -img
    vis_xy = xy[visible]
    nn_true = median_nn_distance(vis_xy, min_points=3)
    if not np.isfinite(nn_true):
        nn_true = nn_px
    params = {
        "structure": structure,
        "zone": list(zone),
        "contrast": "abf" if abf else "haadf",
        "abf_depth": depth if abf else None,
        "particle": particle,
        "offset": offset,
        "background": bg_amp,
        "speckle": speckle,
        "counts_at_max": counts,
        "extra_gaussian_noise": extra,
        "n_visible": int(visible.sum()),
        "n_ambiguous": int(ambiguous.sum()),
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()},
    }
    return img.astype(np.float32), vis_xy, xy[ambiguous], float(nn_true), params


def training_pair(
    image: np.ndarray, xy: np.ndarray, nn_px: float, ambiguous_xy: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(network input, target) for an image with bright columns at *xy* (px) whose column
    distance is taken to be *nn_px*: target 1 in a disk around each column, 0 elsewhere and
    :data:`IGNORE_VALUE` around *ambiguous_xy*."""
    x, factors = prepare_input(normalise_image(image), nn_px)
    y = column_mask(x.shape, to_resampled(xy, factors), DISK_RADIUS_PX)
    if ambiguous_xy is not None and len(ambiguous_xy):
        amb = column_mask(x.shape, to_resampled(ambiguous_xy, factors), DISK_RADIUS_PX + 1)
        y[(amb > 0) & (y == 0)] = IGNORE_VALUE
    return x, y


def simulated_atom_set(
    n_images: int = 640,
    *,
    seed: int = 0,
    show_progress: bool = False,
    structures: Sequence[tuple[str, tuple[int, int, int]]] = STRUCTURES,
    stream: int = 0,
) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, Any]]:
    """The data recipe of the shipped model: *n_images* (input, target) pairs.

    Returns
    -------
    inputs, targets, recipe (JSON-compatible description, with per-image parameters)
    """
    rng = np.random.default_rng([int(seed), 11, int(stream)])
    xs, ys, per_image = [], [], []
    for i in progress(
        range(n_images),
        show_progress=show_progress,
        desc="simulating",
        total=n_images,
        unit="image",
    ):
        img, xy, amb, nn, p = simulate_training_image(
            rng, seed=int(seed) * 1_000_000 + int(stream) * 100_000 + i, structures=structures
        )
        jitter = log_uniform(rng, 0.8, 1.25)
        x, y = training_pair(img, xy, nn * jitter, amb)
        xs.append(x)
        ys.append(y)
        per_image.append({**p, "nn_px": nn, "scale_jitter": jitter})
    recipe = {
        "kind": "simulated",
        "generator": "atomscope.atoms.train.simulated_atom_set (atomscope.simulate.simulate_haadf)",
        "n_images": n_images,
        "seed": seed,
        "structures": [[s, list(z)] for s, z in structures],
        "heldout_structures": [[s, list(z)] for s, z in HELDOUT_STRUCTURES],
        "ranges": {
            "pixel_size_nm": [0.01, 0.05],
            "nn_px": [3.5, 32],
            "abf_fraction": 0.2,
            "exponent_haadf": [1.5, 2.0],
            "exponent_abf": [0.35, 0.6],
            "voltage_kV": [80, 200, 300],
            "convergence_mrad": [18, 32],
            "source_fwhm_nm": [0.03, 0.15],
            "defocus_nm_sd": 3.0,
            "debye_waller_A2": [0.2, 1.5],
            "thickness_periods": [2, 40],
            "vacancies": [0, 0.15],
            "drift_px": [-3, 3],
            "jitter_px": [0.05, 0.5],
            "particle_fraction": 0.25,
            "particle_dome": 0.5,
            "diffuse_offset_of_mean": [0.5, 5.0],
            "diffuse_offset_fraction": 0.3,
            "background_amplitude": [0.05, 2.0],
            "speckle": [0.01, 0.12],
            "counts_at_max": [1.5, 3000],
            "noise_free_fraction": 0.1,
            "extra_gaussian_sigma_of_range": [0, 0.6],
            "scale_jitter": [0.8, 1.25],
        },
        "target": {
            "visible_fraction": VISIBLE_FRACTION,
            "ignore_fraction": IGNORE_FRACTION,
            "disk_radius_px": DISK_RADIUS_PX,
            "target_nn_px": TARGET_NN_PX,
            "ignore_value": IGNORE_VALUE,
        },
        "images": per_image,
    }
    return xs, ys, recipe


def read_positions(path: str | os.PathLike[str]) -> np.ndarray:
    """Column positions (x, y) in px from a CSV with columns ``x`` and ``y`` (e.g. the
    ``atoms.csv`` that ``atomscope atoms`` writes, edited by hand)."""
    p = Path(path)
    if not p.is_file():
        from ..errors import MissingFileError

        raise MissingFileError(f"positions file not found: {p}")
    try:
        table = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ParameterError(f"{p.name} could not be read as CSV: {exc}") from exc
    cols = {c.strip().lower(): c for c in table.columns.astype(str)}
    if "x" not in cols or "y" not in cols:
        raise ParameterError(
            f"{p.name} needs columns 'x' and 'y' (column positions in px); "
            f"it has {', '.join(map(str, table.columns)) or 'none'}"
        )
    xy = table[[cols["x"], cols["y"]]].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    if len(xy) < 3 or not np.isfinite(xy).all():
        raise ParameterError(f"{p.name} needs at least 3 rows of numeric x, y positions")
    return xy


def _positions_set(
    image: np.ndarray, xy: np.ndarray, *, dark: bool
) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, Any]]:
    """Training pairs from one labelled image: the region the positions cover (plus half a
    column distance), at three scales around the positions' own column distance."""
    img = np.asarray(image, np.float32)
    if img.ndim != 2:
        raise ParameterError(f"fine-tuning needs one 2-D image, got shape {img.shape}")
    h, w = img.shape
    xy = np.asarray(xy, float)
    inside = (xy[:, 0] >= -0.5) & (xy[:, 0] <= w - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] <= h - 0.5)
    if inside.sum() < 3:
        raise ParameterError(
            f"only {int(inside.sum())} of the {len(xy)} positions lie inside "
            f"the {h}×{w} image; are x and y in px of this image?"
        )
    xy = xy[inside]
    nn = median_nn_distance(xy, min_points=3)
    m = 0.5 * nn
    x0, y0 = max(0, int(np.floor(xy[:, 0].min() - m))), max(0, int(np.floor(xy[:, 1].min() - m)))
    x1 = min(w, int(np.ceil(xy[:, 0].max() + m)) + 1)
    y1 = min(h, int(np.ceil(xy[:, 1].max() + m)) + 1)
    crop = img[y0:y1, x0:x1]
    crop = -crop if dark else crop
    local = xy - [x0, y0]
    xs, ys = [], []
    for s in (0.85, 1.0, 1.18):
        x, y = training_pair(crop, local, nn * s)
        xs.append(x)
        ys.append(y)
    info = {
        "kind": "user positions",
        "n_positions": int(len(xy)),
        "nn_px": nn,
        "crop_xyxy": [x0, y0, x1, y1],
        "dark": dark,
        "scales": [0.85, 1.0, 1.18],
    }
    return xs, ys, info


def match_columns(
    found: np.ndarray,
    truth: np.ndarray,
    radius: float,
    shape: tuple[int, int],
    margin: float,
    ambiguous: np.ndarray | None = None,
) -> dict[str, float]:
    """Precision, recall and position RMSE (px) of *found* against *truth*, counting only
    columns at least *margin* px inside the image (a match is within *radius* px); found
    columns on *ambiguous* positions (and not on a true one) count neither way. An empty
    detection has precision 1 (no false column) and recall 0."""
    h, w = shape

    def inner(p: np.ndarray) -> np.ndarray:
        return (
            (p[:, 0] >= margin)
            & (p[:, 0] <= w - 1 - margin)
            & (p[:, 1] >= margin)
            & (p[:, 1] <= h - 1 - margin)
        )

    found = np.asarray(found, float).reshape(-1, 2)
    truth = np.asarray(truth, float).reshape(-1, 2)
    if ambiguous is not None and len(ambiguous) and len(found):
        on_amb = cKDTree(np.asarray(ambiguous, float)).query(found)[0] < radius
        on_true = (cKDTree(truth).query(found)[0] < radius) if len(truth) else on_amb & False
        found = found[~on_amb | on_true]
    t_in = truth[inner(truth)]
    f_in = found[inner(found)]
    if len(found) == 0 or len(t_in) == 0:
        return {
            "precision": 0.0 if len(f_in) else 1.0,
            "recall": 0.0 if len(t_in) else 1.0,
            "rmse_px": float("nan"),
            "n_truth": int(len(t_in)),
            "n_found": int(len(f_in)),
        }
    d, _ = cKDTree(found).query(t_in)
    tp = d < radius
    precision = float((cKDTree(truth).query(f_in)[0] < radius).mean()) if len(f_in) else 1.0
    return {
        "precision": precision,
        "recall": float(tp.mean()),
        "rmse_px": float(np.sqrt(np.mean(d[tp] ** 2))) if tp.any() else float("nan"),
        "n_truth": int(len(t_in)),
        "n_found": int(len(f_in)),
    }


def evaluate_simulated(
    model: Any,
    *,
    seed: int = 0,
    n_images: int = 12,
    structures: Sequence[tuple[str, tuple[int, int, int]]] = STRUCTURES,
    stream: int = 99,
    device: Any = None,
) -> dict[str, Any]:
    """Precision and recall of ``find_atoms(method="cnn")`` on fresh simulated images (seeds
    never used in training), interior columns, matched within 0.3 × their distance."""
    from .finder import find_atoms

    rng = np.random.default_rng([int(seed), 11, int(stream)])
    rows = []
    for i in range(n_images):
        img, xy, amb, nn, p = simulate_training_image(
            rng, seed=int(seed) * 1_000_000 + int(stream) * 100_000 + i, structures=structures
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = find_atoms(img, method="cnn", model=model, device=device)
        m = match_columns(res.xy, xy, 0.3 * nn, img.shape, nn, amb)
        rows.append(
            {
                "structure": p["structure"],
                "zone": p["zone"],
                "contrast": p["contrast"],
                "counts_at_max": p["counts_at_max"],
                "particle": p["particle"],
                **m,
            }
        )
    prec = [r["precision"] for r in rows]
    rec = [r["recall"] for r in rows]
    return {
        "n_images": n_images,
        "precision_mean": float(np.mean(prec)),
        "recall_mean": float(np.mean(rec)),
        "precision_median": float(np.median(prec)),
        "recall_median": float(np.median(rec)),
        "images": rows,
    }


def train_atoms(
    *,
    image: Any = None,
    positions: Any = None,
    dark: bool = False,
    base_model: Any = None,
    n_images: int | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    batch_size: int | None = None,
    patch_size: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    device: str | None = None,
    n_threads: int | None = None,
    out: str | os.PathLike[str] | None = None,
    name: str | None = None,
    command: str | None = None,
    evaluate: bool = True,
    show_progress: bool = True,
) -> TrainedModel:
    """Train the column network on simulated images, or fine-tune it on labelled positions.

    Parameters
    ----------
    image : array or Micrograph, optional
        Your image (one 2-D frame), with *positions*: fine-tuning.
    positions : (N, 2) array or CSV path, optional
        Column positions (x, y) in px of *image*; label every column in the region they cover
        (the training crop is their bounding box plus half a column distance).
    dark : bool
        Dark columns (ABF): the image is inverted, as ``find_atoms(dark=True)`` does.
    base_model : str, path or torch.nn.Module, optional
        Network to start fine-tuning from (default: the shipped ``atoms-unet``).
    n_images : int, optional
        Simulated training images (default 640).
    epochs, steps_per_epoch, batch_size, patch_size : int, optional
        Training length and batches (defaults: :data:`TRAIN_DEFAULTS`, or
        :data:`FINETUNE_DEFAULTS` when fine-tuning).
    lr : float, optional
        Adam learning rate.
    seed : int
        Seeds the data, initial weights, sampling and augmentation.
    device : str, optional
        "cpu" (default), "cuda", "auto".
    n_threads : int, optional
        torch CPU threads during training (restored afterwards).
    out : path, optional
        Folder (``NAME.pt`` + ``NAME.json`` inside) or ``NAME.pt``.
    name : str, optional
        Model name (default ``atoms-unet``, or ``atoms-finetuned`` when fine-tuning).
    command : str, optional
        Command line that reproduces the training (recorded in the manifest).
    evaluate : bool
        Score on fresh simulated images (manifest ``metrics``); for fine-tuning, also the
        training image's own positions.
    show_progress : bool
        Progress bars.

    Returns
    -------
    TrainedModel
    """

    from ..image import as_micrograph
    from ..nn import Augmentation, build_model, count_parameters, train_model
    from .cnn import load_atom_model

    t_start = time.perf_counter()
    cpu_start = time.process_time()
    finetune = positions is not None
    if finetune != (image is not None):
        raise ParameterError("fine-tuning needs both an image and its positions")
    d = FINETUNE_DEFAULTS if finetune else TRAIN_DEFAULTS
    epochs = epochs or d["epochs"]
    steps_per_epoch = steps_per_epoch or d["steps_per_epoch"]
    batch_size = batch_size or d["batch_size"]
    patch_size = patch_size or d["patch_size"]
    lr = lr or d["lr"]
    if finetune:
        mg = as_micrograph(image)
        if mg.is_stack:
            raise ParameterError("fine-tuning takes one image, not a stack; pick a frame")
        xy = (
            read_positions(positions)
            if isinstance(positions, str | os.PathLike)
            else np.asarray(positions, float).reshape(-1, 2)
        )
        xs, ys, recipe = _positions_set(mg.data, xy, dark=dark)
        if isinstance(positions, str | os.PathLike):
            recipe["positions_file"] = Path(positions).name
        base, base_manifest = load_atom_model(base_model, device=None)
        model = build_model("unet", **base.config)
        model.load_state_dict(base.state_dict())
        recipe["base_model"] = {
            "name": base_manifest.get("name"),
            "sha256": base_manifest.get("sha256"),
        }
        val_fraction = 0.0
    else:
        t0 = time.perf_counter()
        xs, ys, recipe = simulated_atom_set(
            n_images or TRAIN_DEFAULTS["n_images"], seed=seed, show_progress=show_progress
        )
        recipe["seconds_simulating"] = round(time.perf_counter() - t0, 1)
        model = build_model("unet", seed=seed, **ARCH)
        val_fraction = 0.1
    aug = Augmentation(flips=True, rot90=True, noise=0.05, blur=0.0, brightness=0.1, contrast=0.2)
    history = train_model(
        model,
        xs,
        ys,
        val_fraction=val_fraction,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        patch_size=patch_size,
        lr=lr,
        loss=d["loss"],
        positive_fraction=d["positive_fraction"],
        augmentation=aug,
        val_patches=48 if val_fraction else 0,
        seed=seed,
        device=device,
        n_threads=n_threads,
        show_progress=show_progress,
        ignore_index=IGNORE_VALUE,
    )
    model.to("cpu")
    name = name or ("atoms-finetuned" if finetune else MODEL_NAME)
    if command is None:
        command = " ".join(shlex.quote(a) for a in sys.argv) if sys.argv else ""
    manifest: dict[str, Any] = {
        "name": name,
        "task": "atoms",
        "description": "U-Net column-probability map (one sigmoid output: inside a disk of "
        f"{DISK_RADIUS_PX} px around a visible column, at the network's scale)",
        "preprocessing": {
            "target_nn_px": TARGET_NN_PX,
            "resampling": "bilinear, anti-aliased",
            "background_sigma_px": 2 * TARGET_NN_PX,
            "normalization": "percentiles 1 → 0, 99.5 → 1",
            "bright_columns": True,
        },
        "output": {"n_classes": 1, "activation": "sigmoid", "threshold": 0.5},
        "training": training_record(
            history,
            command=command,
            seed=seed,
            source="user positions" if finetune else "simulated",
            data={k: v for k, v in recipe.items() if k != "images"},
        ),
    }
    manifest.update(
        architecture="unet", config=dict(model.config), n_parameters=count_parameters(model)
    )
    model.manifest = manifest  # type: ignore[attr-defined]
    metrics: dict[str, Any] = {}
    if history.best_epoch is not None:
        best = history.records[history.best_epoch - 1]
        metrics["validation_pixel_f1"] = best["val_f1"]
    if evaluate:
        if finetune:
            from .finder import find_atoms

            res = find_atoms(mg, method="cnn", model=model, dark=dark, device=device)
            x0, y0, x1, y1 = recipe["crop_xyxy"]
            inside = (
                (res.xy[:, 0] >= x0)
                & (res.xy[:, 0] < x1)
                & (res.xy[:, 1] >= y0)
                & (res.xy[:, 1] < y1)
            )
            nn = recipe["nn_px"]
            m = match_columns(
                res.xy[inside] - [x0, y0], xy - [x0, y0], 0.3 * nn, (y1 - y0, x1 - x0), 0.5 * nn
            )
            metrics["training_image"] = m
        else:
            metrics["heldout_simulated"] = evaluate_simulated(model, seed=seed, device=device)
            metrics["heldout_structures"] = evaluate_simulated(
                model,
                seed=seed,
                structures=HELDOUT_STRUCTURES,
                n_images=8,
                stream=98,
                device=device,
            )
    manifest["metrics"] = metrics
    return finish_training(
        model,
        history,
        manifest,
        out=out,
        name=name,
        n_threads=n_threads,
        wall_start=t_start,
        cpu_start=cpu_start,
    )
