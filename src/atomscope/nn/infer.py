"""Inference on whole micrographs: tiles with overlap blending, CPU by default.

Large frames are cut into tiles of ``tile`` px that share ``overlap`` px with their neighbours;
each tile's prediction is weighted by a raised-cosine window over the shared band and the
weighted sum is normalised, so tile borders leave no seams. A frame no larger than ``tile``
is predicted in one pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .._progress import progress_bar
from ..errors import InvalidImageError, ParameterError
from ._device import resolve_device, torch_threads
from .data import blend_window, tile_positions
from .networks import probabilities

__all__ = ["predict", "predict_logits"]


def _run_tiles(
    model: nn.Module,
    image: np.ndarray,
    *,
    tile: int,
    overlap: int,
    batch_size: int,
    device: torch.device,
    out_fn: Any,
    n_out: int,
    bar: Any,
) -> np.ndarray:
    h, w = image.shape
    t_h, t_w = min(tile, h), min(tile, w)
    positions = tile_positions((h, w), tile, overlap)
    acc = np.zeros((n_out, h, w), np.float32)
    wsum = np.zeros((h, w), np.float32) if len(positions) > 1 else None
    mf = torch.channels_last if device.type == "cpu" else torch.contiguous_format
    for s in range(0, len(positions), batch_size):
        chunk = positions[s : s + batch_size]
        batch = np.stack([image[y : y + t_h, x : x + t_w] for y, x in chunk])[:, None]
        x_t = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
        x_t = x_t.contiguous(memory_format=mf)
        out = out_fn(model(x_t)).float().cpu().numpy()
        for (y, x), o in zip(chunk, out, strict=True):
            if wsum is None:
                acc[:, y : y + t_h, x : x + t_w] = o
            else:
                win = blend_window(
                    (t_h, t_w),
                    overlap,
                    top=y > 0,
                    bottom=y + t_h < h,
                    left=x > 0,
                    right=x + t_w < w,
                )
                acc[:, y : y + t_h, x : x + t_w] += o * win
                wsum[y : y + t_h, x : x + t_w] += win
        bar.update(len(chunk))
    if wsum is not None:
        acc /= np.maximum(wsum, 1e-12)
    return acc


def _predict(
    model: nn.Module,
    images: np.ndarray,
    *,
    tile: int,
    overlap: int,
    batch_size: int,
    device: Any,
    n_threads: int | None,
    show_progress: bool,
    out_fn: Any,
    pad: int = 0,
) -> np.ndarray:
    arr = np.asarray(images, dtype=np.float32)
    single = arr.ndim == 2
    if single:
        arr = arr[None]
    if arr.ndim != 3:
        raise InvalidImageError(f"predict expects (H, W) or (N, H, W) images, got {arr.shape}")
    if tile < 16:
        raise ParameterError("tile must be ≥ 16 px")
    overlap = min(overlap, tile // 2)
    if pad < 0:
        raise ParameterError("pad must be ≥ 0")
    h0, w0 = arr.shape[1:]
    if pad:
        p = (min(pad, h0 - 1), min(pad, w0 - 1))
        arr = np.pad(arr, ((0, 0), (p[0], p[0]), (p[1], p[1])), mode="reflect")
        tile += 2 * max(p)  # a frame of ≤ tile px still goes through in one pass
    dev = resolve_device(device)
    n_out = int(getattr(model, "config", {}).get("n_classes", 0)) or None
    outs = []
    n_tiles = len(tile_positions(arr.shape[1:], tile, overlap)) * len(arr)
    was_training = model.training
    model.eval()
    model.to(dev)
    if dev.type == "cpu":
        model.to(memory_format=torch.channels_last)
    bar = progress_bar(show_progress=show_progress, total=n_tiles, desc="inference", unit="tile")
    try:
        with torch_threads(n_threads), torch.inference_mode():
            if n_out is None:  # probe the number of outputs once
                n_out = int(model(torch.zeros(1, 1, 16, 16, device=dev)).shape[1])
            for frame in arr:
                outs.append(
                    _run_tiles(
                        model,
                        frame,
                        tile=tile,
                        overlap=overlap,
                        batch_size=batch_size,
                        device=dev,
                        out_fn=out_fn,
                        n_out=n_out,
                        bar=bar,
                    )
                )
    finally:
        bar.close()
        model.to(memory_format=torch.contiguous_format)
        model.train(was_training)
    out = np.stack(outs)
    if pad:
        out = out[..., p[0] : p[0] + h0, p[1] : p[1] + w0]
    return out[0] if single else out


def predict(
    model: nn.Module,
    images: np.ndarray,
    *,
    tile: int = 1024,
    overlap: int = 64,
    pad: int = 0,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    n_threads: int | None = None,
    show_progress: bool = False,
) -> np.ndarray:
    """Per-pixel class probabilities of preprocessed image(s).

    Parameters
    ----------
    model : torch.nn.Module
        Network returning (N, C, H, W) logits.
    images : ndarray
        (H, W) or (N, H, W), already preprocessed (:func:`atomscope.nn.data.preprocess`).
    tile, overlap : int
        Tile side and shared band, px. Frames no larger than *tile* go through in one pass.
    pad : int
        Mirror the frame by this many px on each side before predicting (and crop after), so
        that the network sees image-like context at the frame edges instead of its own zero
        padding (networks trained on patches cut from larger frames otherwise misfire there).
    batch_size : int
        Tiles per forward pass.
    device : str, optional
        "cpu" (default), "cuda", "auto" …
    n_threads : int, optional
        CPU threads for torch during inference (restored afterwards).
    show_progress : bool
        Progress bar over tiles.

    Returns
    -------
    ndarray, float32
        (C, H, W) for one image or (N, C, H, W): softmax over classes (sigmoid for one class).
    """
    return _predict(
        model,
        images,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        device=device,
        n_threads=n_threads,
        show_progress=show_progress,
        out_fn=probabilities,
        pad=pad,
    )


def predict_logits(
    model: nn.Module,
    images: np.ndarray,
    *,
    tile: int = 1024,
    overlap: int = 64,
    pad: int = 0,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    n_threads: int | None = None,
    show_progress: bool = False,
) -> np.ndarray:
    """Like :func:`predict` but the raw logits (blended across tiles)."""
    return _predict(
        model,
        images,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        device=device,
        n_threads=n_threads,
        show_progress=show_progress,
        out_fn=lambda t: t,
        pad=pad,
    )
