"""``segment``: particle masks by the classical recipe or a trained network (U-Net, shallow
CNN), with probability maps and thresholds (fixed or Otsu)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .._progress import progress
from ..errors import ParameterError
from ..image import Micrograph, as_micrograph
from .classical import CLASSICAL_DEFAULTS, classical_segment

__all__ = [
    "segment",
    "SegmentationResult",
    "METHODS",
    "DEFAULT_MODELS",
    "detect_polarity",
    "otsu_threshold",
    "load_particle_model",
    "network_probability",
]

METHODS = ("classical", "unet", "shallow")
#: shipped model used by each network method when no ``model=`` is given
DEFAULT_MODELS = {"unet": "particles-unet", "shallow": "particles-shallow"}

_BRIGHT_SIGNALS = ("HAADF", "ADF", "DF", "SE", "Z-CONTRAST")
_DARK_SIGNALS = ("BF", "ABF", "TEM", "CCD", "CAMERA")


@dataclass
class SegmentationResult:
    """Masks (and probability maps) of one image or a stack.

    Attributes
    ----------
    mask : ndarray of bool
        (H, W) or (T, H, W) particle pixels.
    probability : ndarray of float32 or None
        Particle probability per pixel (network methods), same shape as *mask*.
    thresholds : list of float
        Threshold applied per frame (probability for networks; the recipe's Otsu level on its
        score map for the classical method).
    method : str
    bright : bool
        Particles brighter than the support (HAADF) or darker (bright-field).
    model : dict or None
        Name, path and metrics of the network used.
    seconds : list of float
        Segmentation time per frame.
    info : list of dict
        Per-frame details (classical: seeds kept, background noise …).
    """

    mask: np.ndarray
    probability: np.ndarray | None
    thresholds: list[float]
    method: str
    bright: bool
    model: dict[str, Any] | None = None
    seconds: list[float] = field(default_factory=list)
    info: list[dict[str, Any]] = field(default_factory=list)


def detect_polarity(image: Any) -> bool:
    """Guess whether particles are bright (True, HAADF/dark-field) or dark (False, bright-field).

    The signal name (``source.signal`` or ``metadata['signal'|'detector']``) decides when it
    names a detector (HAADF/ADF/DF → bright; BF/ABF/TEM → dark); otherwise particles are taken
    to be the minority phase, i.e. on the side of the longer tail of the smoothed intensity
    histogram (skewness sign).
    """
    mg = as_micrograph(image)
    names = [mg.source.signal, mg.metadata.get("signal"), mg.metadata.get("detector")]
    for name in names:
        if not name:
            continue
        tokens = str(name).upper().replace("-", " ").replace("_", " ").replace("(", " ").split()
        if any(t in _BRIGHT_SIGNALS for t in tokens):
            return True
        if any(t in _DARK_SIGNALS for t in tokens):
            return False
    frame = mg.data[0] if mg.is_stack else mg.data
    step = max(1, min(frame.shape) // 256)
    x = ndi.gaussian_filter(frame[::step, ::step].astype(np.float64), 2.0).ravel()
    x = x - np.median(x)
    m3 = float(np.mean(x**3))
    return m3 > 0


def otsu_threshold(prob: np.ndarray, lo: float = 0.1, hi: float = 0.9) -> float:
    """Otsu threshold of a probability map, clipped to [*lo*, *hi*] (a map without particles
    has no second mode; the clip keeps Otsu from splitting the background noise)."""
    from skimage.filters import threshold_otsu

    p = np.asarray(prob, np.float32)
    if p.size == 0 or float(p.max()) - float(p.min()) < 1e-6:
        return 0.5
    step = max(1, int(np.sqrt(p.size / 2**18)))
    return float(np.clip(threshold_otsu(p[::step, ::step]), lo, hi))


_MODEL_CACHE: dict[tuple[str, float, str], tuple[Any, dict[str, Any]]] = {}


def load_particle_model(model: Any, method: str, device: Any = None) -> tuple[Any, dict]:
    """(network, manifest) for *model*: a torch module, a path, a shipped name, or None (the
    shipped default of *method*). Loaded files are cached."""
    from ..nn import load_model
    from ..nn.weights import model_files

    if model is not None and not isinstance(model, str | os.PathLike):
        manifest = dict(getattr(model, "manifest", {}) or {})
        manifest.setdefault("name", type(model).__name__)
        return model, manifest
    source = model if model is not None else DEFAULT_MODELS.get(method)
    if source is None:
        raise ParameterError(f"method {method!r} needs a model")
    pt, _ = model_files(source)
    key = (str(pt.resolve()), pt.stat().st_mtime, str(device))
    if key not in _MODEL_CACHE:
        _MODEL_CACHE.clear()
        net, manifest = load_model(source, device=device)
        manifest = {**manifest, "path": str(pt)}
        _MODEL_CACHE[key] = (net, manifest)
    return _MODEL_CACHE[key]


def network_probability(
    frames: np.ndarray,
    net: Any,
    manifest: dict[str, Any],
    *,
    bright: bool,
    device: Any = None,
    tile: int = 1024,
    overlap: int = 64,
    batch_size: int = 1,
    n_threads: int | None = None,
    edge_pad: int = 16,
    show_progress: bool = False,
) -> np.ndarray:
    """Particle probability of each frame of *frames* (T, H, W) with a network and the
    preprocessing its manifest records; frames are mirrored by *edge_pad* px at their edges
    during inference (see :func:`atomscope.nn.predict`)."""
    from ..nn import predict, preprocess

    pre = manifest.get("preprocessing", {}) or {}
    trained_bright = bool(pre.get("bright_particles", False))
    invert = bool(bright) != trained_bright
    blur = float(pre.get("blur_sigma", 0.0) or 0.0)
    norm = pre.get("normalization", "robust-z")
    positive = int((manifest.get("output") or {}).get("positive_class", 1))
    out = np.empty(frames.shape, np.float32)
    for i, frame in enumerate(frames):
        x = preprocess(frame, invert=invert, blur_sigma=blur, normalization=norm)
        prob = predict(
            net,
            x,
            tile=tile,
            overlap=overlap,
            pad=edge_pad,
            batch_size=batch_size,
            device=device,
            n_threads=n_threads,
            show_progress=False,
        )
        out[i] = prob[min(positive, prob.shape[0] - 1)]
    return out


def _postprocess(mask: np.ndarray, min_area_px: int, fill_holes: bool) -> np.ndarray:
    if fill_holes:
        mask = ndi.binary_fill_holes(mask)
    if min_area_px > 1:
        lab, n = ndi.label(mask)
        if n:
            sizes = np.bincount(lab.ravel())
            small = sizes < min_area_px
            small[0] = False
            mask = mask & ~small[lab]
    return mask


def segment(
    image: Any,
    *,
    method: str = "classical",
    bright: bool | None = None,
    threshold: str | float = "otsu",
    model: Any = None,
    min_area_px: int = 0,
    fill_holes: bool = True,
    classical: dict[str, Any] | None = None,
    device: str | None = None,
    tile: int = 1024,
    overlap: int = 64,
    batch_size: int = 1,
    n_threads: int | None = None,
    show_progress: bool = False,
) -> SegmentationResult:
    """Segment particles in one image or in every frame of a stack.

    Parameters
    ----------
    image : ndarray, Micrograph or HyperSpy-like
        (H, W) or (T, H, W).
    method : {"classical", "unet", "shallow"}
        The paper's classical recipe (with edge refinement; no training needed), the U-Net, or
        the shallow wide CNN. The networks use the models shipped with atomscope (trained on
        simulated bright-field frames) unless *model* is given.
    bright : bool, optional
        Particles brighter than the support (HAADF/ADF); default: from the signal name, else
        from the intensity histogram (:func:`detect_polarity`).
    threshold : "otsu" or float
        Networks: probability threshold, fixed (the paper settles on 0.4) or Otsu's per frame
        (clipped to 0.1–0.9). Ignored by the classical method (it always uses Otsu).
    model : str, path or torch.nn.Module, optional
        A model file written by :func:`atomscope.particles.train` (``NAME.pt`` with its
        ``NAME.json``), a shipped model name, or a network.
    min_area_px : int
        Remove objects with fewer pixels from the masks.
    fill_holes : bool
        Fill holes inside objects.
    classical : dict, optional
        Parameters of :func:`atomscope.particles.classical.classical_segment`.
    device : str, optional
        Network device: "cpu" (default), "cuda", "auto".
    tile, overlap, batch_size : int
        Tiled inference settings (frames ≤ *tile* go through in one pass).
    n_threads : int, optional
        torch CPU threads during inference (restored afterwards).
    show_progress : bool
        Progress bar over frames.

    Returns
    -------
    SegmentationResult
    """
    if method not in METHODS:
        raise ParameterError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "classical" and model is not None:
        raise ParameterError(
            "a model file goes with method='unet' or 'shallow' (the classical recipe has no model)"
        )
    mg: Micrograph = as_micrograph(image)
    if bright is None:
        bright = detect_polarity(mg)
    frames = mg.data if mg.is_stack else mg.data[None]
    thr_fixed: float | None = None
    if isinstance(threshold, str):
        if threshold.lower() != "otsu":
            try:
                thr_fixed = float(threshold)
            except ValueError:
                raise ParameterError(
                    f"threshold must be 'otsu' or a number in (0, 1), got {threshold!r}"
                ) from None
    else:
        thr_fixed = float(threshold)
    if thr_fixed is not None and not 0 < thr_fixed < 1:
        raise ParameterError(f"threshold must be in (0, 1), got {thr_fixed}")
    masks = np.zeros(frames.shape, bool)
    probs = None
    thresholds: list[float] = []
    seconds: list[float] = []
    info: list[dict[str, Any]] = []
    model_info: dict[str, Any] | None = None
    it = progress(
        range(len(frames)),
        show_progress=show_progress and len(frames) > 1,
        desc=f"segment ({method})",
        total=len(frames),
        unit="frame",
    )
    if method == "classical":
        params = {**CLASSICAL_DEFAULTS, **(classical or {})}
        unknown = set(params) - set(CLASSICAL_DEFAULTS)
        if unknown:
            raise ParameterError(f"unknown classical parameter(s): {', '.join(sorted(unknown))}")
        params["fill_holes"] = fill_holes
        for i in it:
            t0 = time.perf_counter()
            out = classical_segment(frames[i], bright=bright, **params)
            masks[i] = _postprocess(out.mask, min_area_px, False)
            seconds.append(time.perf_counter() - t0)
            thresholds.append(out.threshold)
            info.append(out.info)
    else:
        net, manifest = load_particle_model(model, method, device)
        model_info = {
            k: manifest.get(k)
            for k in ("name", "path", "architecture", "task", "n_parameters", "metrics")
        }
        probs = np.zeros(frames.shape, np.float32)
        for i in it:
            t0 = time.perf_counter()
            probs[i] = network_probability(
                frames[i : i + 1],
                net,
                manifest,
                bright=bright,
                device=device,
                tile=tile,
                overlap=overlap,
                batch_size=batch_size,
                n_threads=n_threads,
            )[0]
            thr = thr_fixed if thr_fixed is not None else otsu_threshold(probs[i])
            masks[i] = _postprocess(probs[i] > thr, min_area_px, fill_holes)
            seconds.append(time.perf_counter() - t0)
            thresholds.append(float(thr))
            info.append({})
    if not mg.is_stack:
        masks = masks[0]
        probs = probs[0] if probs is not None else None
    return SegmentationResult(
        masks, probs, thresholds, method, bool(bright), model_info, seconds, info
    )
