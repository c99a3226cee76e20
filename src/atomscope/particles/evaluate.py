"""Scoring segmentations and tracks against ground truth (simulated frames, hand labels).

Used by the tests, the benchmark and anyone validating a model on their own labelled frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..nn.scores import pixel_scores
from .track import overlap_matrix

__all__ = ["pixel_scores", "threshold_curve", "match_labels", "identity_recovery", "THRESHOLDS"]

#: the paper's threshold sweep
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def threshold_curve(
    probability: np.ndarray,
    truth: np.ndarray,
    *,
    thresholds: Sequence[float] = THRESHOLDS,
    otsu: bool = True,
) -> pd.DataFrame:
    """Precision, recall, F1 and IoU of ``probability > t`` for each threshold (pixels pooled
    over all frames given), plus a row ``"otsu"`` (Otsu threshold per frame) when *otsu*."""
    from .segment import otsu_threshold

    p = np.asarray(probability, np.float32)
    g = np.asarray(truth).astype(bool)
    rows: list[dict[str, Any]] = []
    for t in thresholds:
        rows.append({"threshold": float(t), "label": f"{t:g}", **pixel_scores(p > t, g)})
    if otsu:
        frames = p if p.ndim == 3 else p[None]
        ts = [otsu_threshold(f) for f in frames]
        pred = np.stack([f > t for f, t in zip(frames, ts, strict=True)])
        rows.append(
            {
                "threshold": float(np.mean(ts)),
                "label": "otsu",
                **pixel_scores(pred.reshape(g.shape), g),
            }
        )
    return pd.DataFrame(rows)


def match_labels(
    labels: np.ndarray, truth_labels: np.ndarray, *, min_iou: float = 0.5
) -> pd.DataFrame:
    """Mutual best matches between detected and true particles of one frame.

    Returns a DataFrame ``label``, ``truth_id``, ``iou``, ``area``, ``truth_area`` (px) of
    the pairs that are each other's best overlap with IoU ≥ *min_iou*.
    """
    lab = np.asarray(labels)
    tru = np.asarray(truth_labels)
    ids = np.unique(lab[lab > 0])
    tids = np.unique(tru[tru > 0])
    cols = ["label", "truth_id", "iou", "area", "truth_area"]
    if len(ids) == 0 or len(tids) == 0:
        return pd.DataFrame(columns=cols)
    ov, a, b = overlap_matrix(lab, tru, ids, tids)
    iou = ov / np.maximum(a[:, None] + b[None, :] - ov, 1)
    best_t = iou.argmax(axis=1)
    best_d = iou.argmax(axis=0)
    rows = []
    for i, j in enumerate(best_t):
        if best_d[j] == i and iou[i, j] >= min_iou:
            rows.append((int(ids[i]), int(tids[j]), float(iou[i, j]), int(a[i]), int(b[j])))
    return pd.DataFrame(rows, columns=cols)


def identity_recovery(
    table: pd.DataFrame, labels: np.ndarray, truth_labels: np.ndarray, *, min_iou: float = 0.5
) -> dict[str, Any]:
    """How well tracks follow the true particle identities of a simulated movie.

    Each frame's detections are matched to true particles (mutual best IoU ≥ *min_iou*).

    * ``link_accuracy``: of the true frame-to-frame links (a true particle present in frames t
      and t+1) whose both ends were matched, the fraction carrying the same ``track_id``;
    * ``link_recall``: the same over all true links (a missed detection counts as lost);
    * ``identity_recovery``: of the true particles matched in ≥ 2 frames, the fraction whose
      matched detections all carry one track id that no other true particle's detections
      carry (no switch, no swap, no fragmentation);
    * ``detection_recall``: matched (particle, frame) pairs / true (particle, frame) pairs.

    Parameters
    ----------
    table : DataFrame
        ``frame``, ``particle_id`` (label value), ``track_id``.
    labels, truth_labels : (T, H, W) int arrays
        Detected and true label images.
    """
    T = len(truth_labels)
    key = {
        (int(f), int(p)): int(t)
        for f, p, t in table[["frame", "particle_id", "track_id"]].itertuples(index=False)
    }
    track_of_truth: list[dict[int, int]] = []
    n_truth = 0
    for f in range(T):
        m = match_labels(labels[f], truth_labels[f], min_iou=min_iou)
        d = {}
        for lab_id, tid in zip(m["label"], m["truth_id"], strict=True):
            tr = key.get((f, int(lab_id)))
            if tr is not None:
                d[int(tid)] = tr
        track_of_truth.append(d)
        n_truth += int(len(np.unique(truth_labels[f][truth_labels[f] > 0])))
    n_links = n_links_matched = n_correct = 0
    for f in range(T - 1):
        present = np.intersect1d(np.unique(truth_labels[f]), np.unique(truth_labels[f + 1]))
        for tid in present[present > 0]:
            n_links += 1
            a, b = track_of_truth[f].get(int(tid)), track_of_truth[f + 1].get(int(tid))
            if a is not None and b is not None:
                n_links_matched += 1
                n_correct += int(a == b)
    tracks_per_truth: dict[int, set[int]] = {}
    n_matched_frames: dict[int, int] = {}
    truths_per_track: dict[int, set[int]] = {}
    for d in track_of_truth:
        for tid, tr in d.items():
            tracks_per_truth.setdefault(tid, set()).add(tr)
            n_matched_frames[tid] = n_matched_frames.get(tid, 0) + 1
            truths_per_track.setdefault(tr, set()).add(tid)
    eligible = [t for t, n in n_matched_frames.items() if n >= 2]
    recovered = [
        t
        for t in eligible
        if len(tracks_per_truth[t]) == 1
        and len(truths_per_track[next(iter(tracks_per_truth[t]))]) == 1
    ]
    n_det = sum(len(d) for d in track_of_truth)
    return {
        "link_accuracy": n_correct / n_links_matched if n_links_matched else float("nan"),
        "link_recall": n_correct / n_links if n_links else float("nan"),
        "identity_recovery": len(recovered) / len(eligible) if eligible else float("nan"),
        "n_true_particles": int(
            len(
                {t for d in track_of_truth for t in d}
                | set(np.unique(truth_labels[truth_labels > 0]).tolist())
            )
        ),
        "n_identities_evaluated": len(eligible),
        "n_identities_recovered": len(recovered),
        "n_links": n_links,
        "n_links_matched": n_links_matched,
        "detection_recall": n_det / n_truth if n_truth else float("nan"),
    }
