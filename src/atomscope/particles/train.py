"""Training particle-segmentation networks: on simulated frames with exact masks (how the
shipped models are made), on your frames with masks, or on classical pseudo-labels of your
frames (the paper's route)."""

from __future__ import annotations

import math
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import progress
from ..errors import ParameterError
from ..image import as_micrograph
from ..nn.augment import log_uniform
from ..nn.trained import TrainedModel, finish_training, training_record

__all__ = ["train", "simulated_training_set", "ARCH_DEFAULTS", "TRAIN_DEFAULTS"]

#: network settings per architecture (the paper's: 4-level U-Net, 8–64 channels, LeakyReLU +
#: batch norm; shallow: 32 filters + 1×1)
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "unet": {
        "base_channels": 8,
        "depth": 4,
        "batch_norm": True,
        "double_conv": False,
        "activation": "leaky_relu",
        "kernel_size": 3,
        "upsample": "transpose",
    },
    "shallow": {"n_filters": 32, "kernel_size": 9, "batch_norm": True, "activation": "leaky_relu"},
}

#: training settings used for the shipped models (fit in ≤ 15 min on 2 CPU cores)
TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "unet": {
        "epochs": 30,
        "steps_per_epoch": 50,
        "batch_size": 8,
        "patch_size": 128,
        "lr": 3e-3,
        "loss": "ce_dice",
        "n_frames": 320,
        "frame_size": 256,
        "positive_fraction": 0.2,
    },
    "shallow": {
        "epochs": 20,
        "steps_per_epoch": 50,
        "batch_size": 8,
        "patch_size": 128,
        "lr": 5e-3,
        "loss": "ce_dice",
        "n_frames": 320,
        "frame_size": 256,
        "positive_fraction": 0.2,
    },
}


def _sim_frame(
    rng: np.random.Generator, size: int, seed: int
) -> tuple[np.ndarray, np.ndarray, bool, dict[str, Any]]:
    """One varied simulated frame: (image, mask, bright, parameters)."""
    from ..simulate import simulate_particles_frame

    ps = log_uniform(rng, 0.1, 0.4)
    r_px = log_uniform(rng, 4.0, 28.0)
    sigma = float(rng.uniform(0.15, 0.4))
    coverage = float(rng.uniform(0.02, 0.3))
    n = int(
        np.clip(
            round(coverage * size * size / (math.pi * r_px**2 * math.exp(2 * sigma**2))), 1, 120
        )
    )
    fringes = bool(rng.random() < 0.3)
    kw = dict(
        size=size,
        pixel_size=ps,
        radius=(r_px * ps, sigma),
        min_gap=float(rng.uniform(0.5, 3.0)) * ps,
        contrast=float(rng.uniform(0.3, 0.7)),
        support_contrast=float(rng.uniform(0.03, 0.12)),
        support_length=float(rng.uniform(1.5, 5.0)) * ps,
        illumination=float(rng.uniform(0.0, 0.3)),
        fringes=fringes,
        fringe_spacing=float(rng.uniform(2.6, 5.0)) * ps,
        fringe_contrast=float(rng.uniform(0.05, 0.2)),
        blur=float(rng.uniform(1.0, 4.0)) * ps,
        counts=log_uniform(rng, 30.0, 400.0),
    )
    res = None
    while n >= 1:
        try:
            res = simulate_particles_frame(n_particles=n, seed=seed, **kw)
            break
        except ParameterError:  # too crowded: fewer particles
            n = n * 2 // 3
    if res is None:
        res = simulate_particles_frame(n_particles=0, seed=seed, **kw)
    img = res.image.data
    mask = res.truth.masks["particle"] > 0
    bright = bool(rng.random() < 0.2)
    if bright:  # HAADF-like: particles bright, noise that grows with the signal
        clean = res.truth.fields["noise_free"] / float(kw["counts"])
        counts_h = log_uniform(rng, 20.0, 200.0)
        haadf = np.clip(1.05 - clean, 0.02, None) * counts_h
        img = rng.poisson(haadf).astype(np.float32)
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}
    params.update(n_particles=n, bright=bright, seed=seed)
    return img.astype(np.float32), mask, bright, params


def simulated_training_set(
    n_frames: int = 320, *, size: int = 256, seed: int = 0, show_progress: bool = False
) -> tuple[list[np.ndarray], list[np.ndarray], list[bool], dict]:
    """Varied simulated frames with exact masks: the data recipe of the shipped models.

    Each frame draws its pixel size (0.1–0.4 nm), particle radius (4–28 px median, log-normal
    spread), coverage (2–30 %), particle contrast (0.3–0.7), support speckle, illumination
    ramp, blur, dose (30–400 e⁻/px), lattice fringes (30 %), and 20 % are rendered HAADF-like
    (bright particles, signal-dependent noise) from the same scene.

    Returns
    -------
    images, masks, bright flags, recipe (JSON-compatible description with per-frame parameters)
    """
    rng = np.random.default_rng([int(seed), 7])
    images, masks, brights, per_frame = [], [], [], []
    for i in progress(
        range(n_frames),
        show_progress=show_progress,
        desc="simulating",
        total=n_frames,
        unit="frame",
    ):
        img, m, b, p = _sim_frame(rng, size, seed * 100_000 + i)
        images.append(img)
        masks.append(m)
        brights.append(b)
        per_frame.append(p)
    recipe = {
        "kind": "simulated",
        "generator": "atomscope.particles.train.simulated_training_set"
        " (atomscope.simulate.simulate_particles_frame)",
        "n_frames": n_frames,
        "size": size,
        "seed": seed,
        "frames": per_frame,
        "ranges": {
            "pixel_size_nm": [0.1, 0.4],
            "radius_median_px": [4, 28],
            "radius_log_sigma": [0.15, 0.4],
            "coverage": [0.02, 0.3],
            "contrast": [0.3, 0.7],
            "support_contrast": [0.03, 0.12],
            "support_length_px": [1.5, 5],
            "illumination": [0, 0.3],
            "blur_fwhm_px": [1, 4],
            "counts": [30, 400],
            "fringes": 0.3,
            "haadf_like": 0.2,
            "haadf_counts": [20, 200],
        },
    }
    return images, masks, brights, recipe


def _frames_of(images: Any) -> list[np.ndarray]:
    if isinstance(images, list | tuple):
        out: list[np.ndarray] = []
        for im in images:
            mg = as_micrograph(im)
            out.extend(list(mg.data) if mg.is_stack else [mg.data])
        return out
    mg = as_micrograph(images)
    return list(mg.data) if mg.is_stack else [mg.data]


def _evaluate_simulated(
    model: Any, manifest: dict[str, Any], *, seed: int, n_threads: int | None, device: Any
) -> dict[str, Any]:
    """F1 on held-out simulated bright-field frames (512², the benchmark's noise levels)."""
    from ..simulate import simulate_particles_frame
    from .evaluate import pixel_scores
    from .segment import network_probability, otsu_threshold

    preds_otsu, preds_04, truths = [], [], []
    for i in range(3):
        r = simulate_particles_frame(
            size=512,
            pixel_size=0.18,
            n_particles=10 + 4 * i,
            radius=(2.0 + 0.7 * i, 0.3),
            counts=(50.0, 100.0, 200.0)[i],
            seed=np.random.default_rng([int(seed), 99, i]),
        )
        p = network_probability(
            r.image.data[None], model, manifest, bright=False, device=device, n_threads=n_threads
        )[0]
        preds_otsu.append(p > otsu_threshold(p))
        preds_04.append(p > 0.4)
        truths.append(r.truth.masks["particle"] > 0)
    t = np.stack(truths)
    return {
        "heldout_simulated_f1_otsu": pixel_scores(np.stack(preds_otsu), t)["f1"],
        "heldout_simulated_f1_0.4": pixel_scores(np.stack(preds_04), t)["f1"],
        "heldout": "3 simulated 512² bright-field frames (0.18 nm/px; 50/100/200 counts)",
    }


def train(
    *,
    architecture: str = "unet",
    images: Any = None,
    masks: Sequence[np.ndarray] | np.ndarray | None = None,
    bright: bool | None = None,
    n_frames: int | None = None,
    frame_size: int | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    batch_size: int | None = None,
    patch_size: int | None = None,
    lr: float | None = None,
    loss: str | None = None,
    blur_sigma: float = 0.0,
    augmentation: Any = None,
    config: dict[str, Any] | None = None,
    segment_length: int | None = None,
    val_fraction: float = 0.2,
    early_stopping: int | None = None,
    seed: int = 0,
    device: str | None = None,
    n_threads: int | None = None,
    out: str | Path | None = None,
    name: str | None = None,
    command: str | None = None,
    evaluate: bool = True,
    show_progress: bool = True,
) -> TrainedModel:
    """Train a particle-segmentation network.

    Data, in order of precedence:

    * *images* and *masks*: your frames with their masks (booleans or labels);
    * *images* only: pseudo-labels from the classical recipe (the paper's route; check them
      with :func:`atomscope.particles.segment` first);
    * neither: :func:`simulated_training_set` (*n_frames* frames of *frame_size*²) — how the
      shipped models are made.

    Parameters
    ----------
    architecture : {"unet", "shallow"}
        Network family (settings in :data:`ARCH_DEFAULTS`, overridden by *config*).
    images : array, Micrograph, list of them, optional
        Frames ((H, W) or (T, H, W)); a movie's frames stay in order so that the validation
        split keeps neighbouring frames together (*segment_length*).
    masks : optional
        One mask per frame.
    bright : bool, optional
        Polarity of your frames (default: detected per input); simulated frames know theirs.
    n_frames, frame_size : int, optional
        Size of the simulated set.
    epochs, steps_per_epoch, batch_size, patch_size, lr, loss : optional
        Training settings; defaults in :data:`TRAIN_DEFAULTS`.
    blur_sigma : float
        Gaussian pre-blur σ (px) applied to training and, through the manifest, inference
        inputs (the paper's blur study: 0, 1, 2).
    augmentation : atomscope.nn.Augmentation, optional
        Default: flips, 90° rotations, brightness/contrast, extra noise and blur.
    config : dict, optional
        Network settings overriding :data:`ARCH_DEFAULTS` (e.g. ``{"double_conv": True}``).
    segment_length : int, optional
        Frames kept together in the train/validation split (default: 10 for your movies, 1
        for independent simulated frames).
    val_fraction : float
        Fraction of frames for validation.
    early_stopping : int, optional
        Patience in epochs.
    seed : int
        Seeds data, initial weights, sampling and augmentation.
    device : str, optional
        "cpu" (default), "cuda", "auto".
    n_threads : int, optional
        torch CPU threads (restored afterwards).
    out : path, optional
        Where to save: a folder (``<name>.pt`` + ``<name>.json`` inside) or ``NAME.pt``.
    name : str, optional
        Model name (default ``particles-<architecture>``).
    command : str, optional
        The command line that reproduces this training (recorded in the manifest).
    evaluate : bool
        Score the trained network on held-out simulated frames (manifest ``metrics``).
    show_progress : bool
        Progress bars.

    Returns
    -------
    TrainedModel
    """
    from ..nn import Augmentation, build_model, train_model
    from ..nn.data import PREPROCESSING_VERSION, preprocess

    if architecture not in ARCH_DEFAULTS:
        raise ParameterError(f"architecture must be one of {', '.join(ARCH_DEFAULTS)}")
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    d = TRAIN_DEFAULTS[architecture]
    epochs = epochs or d["epochs"]
    steps_per_epoch = steps_per_epoch or d["steps_per_epoch"]
    batch_size = batch_size or d["batch_size"]
    patch_size = patch_size or d["patch_size"]
    lr = lr or d["lr"]
    loss = loss or d["loss"]
    positive_fraction = d.get("positive_fraction", 0.2)

    if images is None:
        n_frames = n_frames or d["n_frames"]
        frame_size = frame_size or d["frame_size"]
        raw, targets, brights, recipe = simulated_training_set(
            n_frames, size=frame_size, seed=seed, show_progress=show_progress
        )
        seg_len = segment_length or 1
        source = "simulated"
    else:
        raw = _frames_of(images)
        if masks is None:
            from .classical import classical_segment
            from .segment import detect_polarity

            pol = detect_polarity(as_micrograph(raw[0])) if bright is None else bright
            targets = [
                classical_segment(f, bright=pol).mask
                for f in progress(
                    raw,
                    show_progress=show_progress,
                    desc="pseudo-labels",
                    total=len(raw),
                    unit="frame",
                )
            ]
            source = "pseudo-labels (classical recipe)"
        else:
            m = np.asarray(masks) if not isinstance(masks, list | tuple) else masks
            targets = [
                np.asarray(t) > 0
                for t in (list(m) if np.ndim(m) == 3 or isinstance(m, list | tuple) else [m])
            ]
            source = "user masks"
            pol = bright
        if len(targets) != len(raw):
            raise ParameterError(f"{len(raw)} frames but {len(targets)} masks")
        if pol is None:
            from .segment import detect_polarity

            pol = detect_polarity(as_micrograph(raw[0]))
        brights = [bool(pol)] * len(raw)
        seg_len = segment_length or 10
        recipe = {
            "kind": source,
            "n_frames": len(raw),
            "shapes": sorted({tuple(f.shape) for f in raw}),
        }
    x = [preprocess(f, invert=b, blur_sigma=blur_sigma) for f, b in zip(raw, brights, strict=True)]
    y = [np.asarray(t).astype(np.int64) for t in targets]
    cfg = {**ARCH_DEFAULTS[architecture], **(config or {}), "in_channels": 1, "n_classes": 2}
    model = build_model(architecture, seed=seed, **cfg)
    aug = (
        augmentation
        if augmentation is not None
        else Augmentation(flips=True, rot90=True, noise=0.3, blur=1.0, brightness=0.3, contrast=0.3)
    )
    history = train_model(
        model,
        x,
        y,
        segment_length=seg_len,
        val_fraction=val_fraction,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        patch_size=patch_size,
        lr=lr,
        loss=loss,
        positive_fraction=positive_fraction,
        augmentation=aug,
        early_stopping=early_stopping,
        seed=seed,
        device=device,
        n_threads=n_threads,
        show_progress=show_progress,
    )
    name = name or f"particles-{architecture}"
    if command is None:
        command = " ".join(shlex.quote(a) for a in sys.argv) if sys.argv else ""
    manifest: dict[str, Any] = {
        "name": name,
        "task": "particles",
        "description": f"{architecture} particle segmentation (dark particles on a bright "
        "support; bright-particle images are inverted at inference)",
        "preprocessing": {
            "version": PREPROCESSING_VERSION,
            "normalization": "robust-z",
            "blur_sigma": blur_sigma,
            "bright_particles": False,
        },
        "output": {"n_classes": 2, "positive_class": 1, "activation": "softmax"},
        "training": training_record(
            history,
            command=command,
            seed=seed,
            source=source,
            data={k: v for k, v in recipe.items() if k != "frames"},
        ),
    }
    from ..nn import count_parameters

    manifest.update(
        architecture=architecture, config=dict(model.config), n_parameters=count_parameters(model)
    )
    model.manifest = manifest  # type: ignore[attr-defined]
    metrics: dict[str, Any] = {}
    last = history.records[-1] if history.records else {}
    if last.get("val_f1") is not None:
        best = history.records[(history.best_epoch or len(history.records)) - 1]
        metrics["validation_f1"] = best["val_f1"]
    if evaluate:
        metrics.update(
            _evaluate_simulated(model, manifest, seed=seed, n_threads=n_threads, device=device)
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
