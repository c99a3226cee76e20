"""Accuracy of a segmentation against known masks: adjusted Rand index and boundary offset."""

from __future__ import annotations

import numpy as np

__all__ = ["adjusted_rand_index", "boundary_pixels", "boundary_offset", "matched_accuracy"]


def adjusted_rand_index(labels: np.ndarray, truth: np.ndarray) -> float:
    """Adjusted Rand index of two label maps (1 = identical partitions, ~0 = chance);
    independent of how the labels are numbered."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(np.asarray(truth).ravel(), np.asarray(labels).ravel()))


def boundary_pixels(labels: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour has another label (one pixel per boundary
    crossing, on the upper/left side, whatever the labels' numbering)."""
    lab = np.asarray(labels)
    b = np.zeros(lab.shape, bool)
    b[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    b[:-1, :] |= lab[:-1, :] != lab[1:, :]
    return b


def boundary_offset(labels: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Distances (px) between the predicted and the true boundaries.

    Returns ``mean`` (symmetric: the average of the two directed means), ``pred_to_true``,
    ``true_to_pred``, and ``p95`` (95th percentile over both directions). NaN values when one
    map has no boundary.
    """
    from scipy import ndimage

    bp, bt = boundary_pixels(labels), boundary_pixels(truth)
    if not bp.any() or not bt.any():
        nan = float("nan")
        return {"mean": nan, "pred_to_true": nan, "true_to_pred": nan, "p95": nan}
    d_to_true = ndimage.distance_transform_edt(~bt)
    d_to_pred = ndimage.distance_transform_edt(~bp)
    a, b = d_to_true[bp], d_to_pred[bt]
    return {
        "mean": float(0.5 * (a.mean() + b.mean())),
        "pred_to_true": float(a.mean()),
        "true_to_pred": float(b.mean()),
        "p95": float(np.percentile(np.concatenate([a, b]), 95)),
    }


def matched_accuracy(labels: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of pixels correctly labelled after the best one-to-one matching of labels."""
    from scipy.optimize import linear_sum_assignment

    lab, tr = np.asarray(labels).ravel(), np.asarray(truth).ravel()
    lu, li = np.unique(lab, return_inverse=True)
    tu, ti = np.unique(tr, return_inverse=True)
    counts = np.zeros((len(lu), len(tu)), np.int64)
    np.add.at(counts, (li, ti), 1)
    r, c = linear_sum_assignment(-counts)
    return float(counts[r, c].sum() / lab.size)
