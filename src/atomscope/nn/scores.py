"""Pixel-wise scores of a binary prediction (no PyTorch import: analyses use them on arrays)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["pixel_scores"]


def _as_bool(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor, possibly on a GPU
        a = a.detach().cpu().numpy()
    return np.asarray(a).astype(bool, copy=False)


def pixel_scores(pred: Any, truth: Any) -> dict[str, float]:
    """Precision, recall, F1 and IoU of a boolean prediction against a boolean truth.

    Parameters
    ----------
    pred, truth : array-like or torch.Tensor of the same shape
        Nonzero = positive.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1``, ``iou``; an empty prediction of an empty truth scores
        1 everywhere.
    """
    p = _as_bool(pred)
    t = _as_bool(truth)
    tp = float(np.count_nonzero(p & t))
    fp = float(np.count_nonzero(p & ~t))
    fn = float(np.count_nonzero(~p & t))
    precision = tp / (tp + fp) if tp + fp else (1.0 if tp + fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    iou = tp / (tp + fp + fn) if tp + fp + fn else 1.0
    return {"precision": precision, "recall": recall, "f1": f1, "iou": iou}
