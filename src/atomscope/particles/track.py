"""Linking particles across the frames of a movie: tracks, births, deaths, coalescences and
splits.

Between consecutive frames, every pair of particles gets a cost: ``1 − IoU`` when their masks
overlap (IoU ≥ ``min_iou``), else ``1 + d / gate`` when their centroids are closer than the gate
(``max_distance_nm``, or by default half the larger equivalent diameter); the Hungarian
algorithm picks the cheapest one-to-one links. Unlinked particles are then explained:

* a particle of frame t whose mask lies mostly (≥ ``event_overlap`` of its area) inside a
  particle of frame t+1 that continues another track has **coalesced** into that track (the
  larger partner keeps its identity — the one whose mask overlaps the merged particle most);
* a particle of frame t+1 lying mostly inside a particle of frame t that continues elsewhere
  has **split** from it (new track, with its parent recorded);
* otherwise a particle that vanishes **dies** (dissolves, or leaves the field when it touched
  the edge) and one that appears is **born**.

Optionally (``max_gap`` > 0) a track that died is re-joined to a track born up to ``max_gap``
frames later near the same place (a particle missed in a frame or two keeps its identity).
Without label masks, overlaps are replaced by centroid distances (a particle whose centroid
lies inside another's equivalent circle counts as inside it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from ..errors import ParameterError

__all__ = ["track", "Tracks", "EVENT_KINDS", "EVENT_COLUMNS", "overlap_matrix"]

EVENT_KINDS = ("birth", "death", "coalescence", "split")
#: Columns of the events table (``other_track_id``: the partner of a coalescence or split).
EVENT_COLUMNS = (
    "frame",
    "kind",
    "track_id",
    "other_track_id",
    "x",
    "y",
    "x_nm",
    "y_nm",
    "at_border",
)
_BIG = 1e9


@dataclass
class Tracks:
    """Result of :func:`track`.

    Attributes
    ----------
    table : pandas.DataFrame
        The input particles with a ``track_id`` column.
    events : pandas.DataFrame
        ``frame`` (first frame showing the new state), ``kind`` (birth, death, coalescence,
        split), ``track_id`` (the track that starts or ends), ``other_track_id`` (coalescence:
        the track it merged into; split: the parent), ``x``, ``y`` (px), ``x_nm``, ``y_nm``,
        ``at_border`` (the particle touched the frame edge).
    tracks : pandas.DataFrame
        One row per track: ``track_id``, ``first_frame``, ``last_frame``, ``n_frames``,
        ``start`` (first_frame, birth, split), ``end`` (last_frame, death, coalescence),
        ``parent`` / ``merged_into`` track ids (−1 when none), ``diameter_start_nm``,
        ``diameter_end_nm``, ``diameter_mean_nm``.
    """

    table: pd.DataFrame
    events: pd.DataFrame
    tracks: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()


def overlap_matrix(
    a: np.ndarray, b: np.ndarray, ids_a: np.ndarray, ids_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel overlaps between the labels *ids_a* of image *a* and *ids_b* of image *b*.

    Returns (overlap (len(ids_a), len(ids_b)) counts, areas of ids_a, areas of ids_b).
    """
    a = np.asarray(a).ravel()
    b = np.asarray(b).ravel()
    ids_a = np.asarray(ids_a, np.int64)
    ids_b = np.asarray(ids_b, np.int64)
    na = int(max(a.max(initial=0), ids_a.max(initial=0))) + 1
    nb = int(max(b.max(initial=0), ids_b.max(initial=0))) + 1
    area_a = np.bincount(a, minlength=na)[ids_a] if len(ids_a) else np.zeros(0, int)
    area_b = np.bincount(b, minlength=nb)[ids_b] if len(ids_b) else np.zeros(0, int)
    both = (a > 0) & (b > 0)
    keys = a[both].astype(np.int64) * nb + b[both]
    uk, counts = np.unique(keys, return_counts=True)
    ov = np.zeros((len(ids_a), len(ids_b)), np.int64)
    if len(uk) and len(ids_a) and len(ids_b):
        pos_a = np.full(na, -1, np.int64)
        pos_a[ids_a] = np.arange(len(ids_a))
        pos_b = np.full(nb, -1, np.int64)
        pos_b[ids_b] = np.arange(len(ids_b))
        ia, ib = pos_a[uk // nb], pos_b[uk % nb]
        ok = (ia >= 0) & (ib >= 0)
        ov[ia[ok], ib[ok]] = counts[ok]
    return ov, area_a, area_b


def _frames_of(tables: pd.DataFrame | Sequence[pd.DataFrame]) -> pd.DataFrame:
    if isinstance(tables, pd.DataFrame):
        df = tables.copy()
    else:
        parts = []
        for i, t in enumerate(tables):
            t = t.copy()
            if "frame" not in t:
                t["frame"] = i
            parts.append(t)
        df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    for c in ("frame", "particle_id", "x", "y"):
        if c not in df and len(df):
            raise ParameterError(f"track needs a '{c}' column in the particle tables")
    if "frame" not in df:
        df["frame"] = pd.Series(dtype=int)
    return df


def track(
    tables: pd.DataFrame | Sequence[pd.DataFrame],
    *,
    labels: np.ndarray | Sequence[np.ndarray] | None = None,
    min_iou: float = 0.1,
    max_distance_nm: float | None = None,
    event_overlap: float = 0.5,
    max_gap: int = 0,
    rejoin_frames: int = 10,
    n_frames: int | None = None,
) -> Tracks:
    """Link particles across frames.

    Parameters
    ----------
    tables : DataFrame or list of DataFrame
        Particles with ``frame``, ``particle_id`` (label value in that frame's label image),
        ``x``, ``y`` (px) and, when present, ``diameter_px``, ``x_nm``, ``y_nm``,
        ``diameter_nm``, ``touches_border`` — e.g. :func:`atomscope.particles.measure` per
        frame, concatenated, or a list of such tables (frame = position in the list).
    labels : (T, H, W) array or list of (H, W) arrays, optional
        Label images per frame (values = ``particle_id``) for overlap-based linking; without
        them, centroid distances are used.
    min_iou : float
        Overlapping pairs with at least this intersection-over-union may link.
    max_distance_nm : float, optional
        Centroid gate for pairs that do not overlap enough (nm; px when the table has no
        ``x_nm``). Default: half the larger equivalent diameter of the pair.
    event_overlap : float
        Fraction of a particle's area that must lie inside its partner for a coalescence or
        split (mask mode).
    max_gap : int
        Re-join a track that died to one born up to this many frames later within the gate
        (0: no gap closing).
    rejoin_frames : int
        A particle that splits off within this many frames of a coalescence, close to where
        the merged partner was, gets that partner's track back (two particles that touched
        and parted, or were merged by the segmentation for a few frames); 0 disables.
    n_frames : int, optional
        Number of frames of the movie (default: from the tables/labels); frames without
        particles count.

    Returns
    -------
    Tracks
    """
    if not 0 <= min_iou <= 1 or not 0 < event_overlap <= 1:
        raise ParameterError("need 0 ≤ min_iou ≤ 1 and 0 < event_overlap ≤ 1")
    if max_gap < 0:
        raise ParameterError("max_gap must be ≥ 0")
    df = _frames_of(tables).reset_index(drop=True)
    if labels is not None:
        labels = (
            list(labels) if not isinstance(labels, np.ndarray) or labels.ndim == 3 else [labels]
        )
    T = n_frames
    if T is None:
        T = int(df["frame"].max()) + 1 if len(df) else 0
        if labels is not None:
            T = max(T, len(labels))
    use_nm = "x_nm" in df and df["x_nm"].notna().all() and len(df) > 0
    xcol, ycol = ("x_nm", "y_nm") if use_nm else ("x", "y")
    dcol = "diameter_nm" if use_nm and "diameter_nm" in df else "diameter_px"
    if dcol not in df:
        df[dcol] = np.sqrt(4 * df["area_px"] / np.pi) if "area_px" in df else 1.0
    gate_fixed = max_distance_nm  # nm, or px when the table is uncalibrated
    by_frame = {f: g.index.to_numpy() for f, g in df.groupby("frame")}
    track_of = np.full(len(df), -1, np.int64)
    next_id = 1
    events: list[dict[str, Any]] = []
    info: dict[int, dict[str, Any]] = {}
    # tracks that merged into a track: (track, last frame, x, y, diameter, event index)
    merged: dict[int, list[tuple[int, int, float, float, float, int]]] = {}

    def new_track(row: int, frame: int, start: str, parent: int = -1) -> int:
        nonlocal next_id
        tid = next_id
        next_id += 1
        track_of[row] = tid
        info[tid] = {
            "track_id": tid,
            "first_frame": frame,
            "start": start,
            "parent": parent,
            "end": "last_frame",
            "merged_into": -1,
        }
        return tid

    def event(frame: int, kind: str, tid: int, other: int, row: int) -> None:
        r = df.loc[row]
        events.append(
            {
                "frame": frame,
                "kind": kind,
                "track_id": tid,
                "other_track_id": other,
                "x": float(r["x"]),
                "y": float(r["y"]),
                "x_nm": float(r["x_nm"]) if "x_nm" in r else np.nan,
                "y_nm": float(r["y_nm"]) if "y_nm" in r else np.nan,
                "at_border": bool(r.get("touches_border", False)),
            }
        )

    empty = np.zeros(0, np.int64)
    first = by_frame.get(0, empty)
    for row in first:
        new_track(int(row), 0, "first_frame")
    for t in range(T - 1):
        ra = by_frame.get(t, empty)
        rb = by_frame.get(t + 1, empty)
        if len(ra) == 0:
            for row in rb:
                tid = new_track(int(row), t + 1, "birth")
                event(t + 1, "birth", tid, -1, int(row))
            continue
        xa, ya = df.loc[ra, xcol].to_numpy(float), df.loc[ra, ycol].to_numpy(float)
        xb, yb = df.loc[rb, xcol].to_numpy(float), df.loc[rb, ycol].to_numpy(float)
        da, db = df.loc[ra, dcol].to_numpy(float), df.loc[rb, dcol].to_numpy(float)
        dist = np.hypot(xa[:, None] - xb[None, :], ya[:, None] - yb[None, :])
        gate = (
            np.full(dist.shape, float(gate_fixed))
            if gate_fixed is not None
            else 0.5 * np.maximum(da[:, None], db[None, :])
        )
        gate = np.maximum(gate, 1e-9)
        if labels is not None and t + 1 < len(labels):
            ov, area_a, area_b = overlap_matrix(
                labels[t],
                labels[t + 1],
                df.loc[ra, "particle_id"].to_numpy(),
                df.loc[rb, "particle_id"].to_numpy(),
            )
            union = area_a[:, None] + area_b[None, :] - ov
            iou = np.where(union > 0, ov / np.maximum(union, 1), 0.0)
            frac_a = ov / np.maximum(area_a[:, None], 1)  # share of a inside b
            frac_b = ov / np.maximum(area_b[None, :], 1)  # share of b inside a
        else:
            iou = np.zeros(dist.shape)
            r_a, r_b = da[:, None] / 2, db[None, :] / 2
            frac_a = (dist < r_b).astype(float)
            frac_b = (dist < r_a).astype(float)
        cost = np.full(dist.shape, _BIG)
        near = dist <= gate
        cost[near] = 1.0 + dist[near] / gate[near]
        ok = iou >= max(min_iou, 1e-12)
        cost[ok] = 1.0 - iou[ok]
        matched_a = np.full(len(ra), -1)
        matched_b = np.full(len(rb), -1)
        if cost.size:
            ia, ib = linear_sum_assignment(cost)
            for i, j in zip(ia, ib, strict=True):
                if cost[i, j] < _BIG:
                    matched_a[i], matched_b[j] = j, i
                    track_of[rb[j]] = track_of[ra[i]]
        # unmatched particles of frame t: coalescence or death
        for i in np.nonzero(matched_a < 0)[0]:
            tid = int(track_of[ra[i]])
            j = int(np.argmax(frac_a[i])) if len(rb) else -1
            if j >= 0 and frac_a[i, j] >= event_overlap and matched_b[j] >= 0:
                into = int(track_of[rb[j]])
                info[tid].update(end="coalescence", merged_into=into)
                event(t + 1, "coalescence", tid, into, int(ra[i]))
                merged.setdefault(into, []).append(
                    (tid, t, float(xa[i]), float(ya[i]), float(da[i]), len(events) - 1)
                )
            else:
                info[tid]["end"] = "death"
                event(t + 1, "death", tid, -1, int(ra[i]))
            info[tid]["last_frame"] = t
        # unmatched particles of frame t+1: split or birth
        for j in np.nonzero(matched_b < 0)[0]:
            i = int(np.argmax(frac_b[:, j])) if len(ra) else -1
            if i >= 0 and frac_b[i, j] >= event_overlap and matched_a[i] >= 0:
                parent = int(track_of[ra[i]])
                old = _transient(
                    merged.get(parent, []),
                    t + 1,
                    float(xb[j]),
                    float(yb[j]),
                    float(db[j]),
                    rejoin_frames,
                    gate_fixed,
                )
                if old is not None:  # two particles touched and parted: same identities
                    tid, ev_index = old
                    track_of[rb[j]] = tid
                    info[tid].update(end="last_frame", merged_into=-1)
                    info[tid].pop("last_frame", None)
                    events[ev_index]["kind"] = "_dropped"
                    merged[parent] = [m for m in merged[parent] if m[0] != tid]
                    continue
                tid = new_track(int(rb[j]), t + 1, "split", parent)
                event(t + 1, "split", tid, parent, int(rb[j]))
            else:
                tid = new_track(int(rb[j]), t + 1, "birth")
                event(t + 1, "birth", tid, -1, int(rb[j]))

    events[:] = [e for e in events if e["kind"] != "_dropped"]
    if max_gap > 0 and events:
        _close_gaps(df, track_of, info, events, max_gap, xcol, ycol, dcol, gate_fixed)

    df["track_id"] = track_of
    ev = pd.DataFrame(events, columns=list(EVENT_COLUMNS))
    ev = ev.sort_values(["frame", "kind", "track_id"], kind="stable").reset_index(drop=True)
    tracks = _summarise(df, info, dcol)
    settings = {
        "min_iou": min_iou,
        "max_distance_nm": max_distance_nm,
        "event_overlap": event_overlap,
        "max_gap": max_gap,
        "rejoin_frames": rejoin_frames,
        "mode": "overlap" if labels is not None else "centroid",
        "n_frames": T,
    }
    return Tracks(df, ev, tracks, settings)


def _transient(
    candidates: list[tuple[int, int, float, float, float, int]],
    frame: int,
    x: float,
    y: float,
    d: float,
    window: int,
    gate_fixed: float | None,
) -> tuple[int, int] | None:
    """The most recent merged track within *window* frames whose last position is within
    the gate of (x, y); (track id, index of its coalescence event) or None."""
    best = None
    best_dist = np.inf
    for tid, last, cx, cy, cd, ev in candidates:
        if frame - last > window:
            continue
        gate = gate_fixed if gate_fixed is not None else 0.5 * max(cd, d)
        dist = float(np.hypot(x - cx, y - cy))
        if dist <= gate and dist < best_dist:
            best, best_dist = (tid, ev), dist
    return best


def _close_gaps(
    df: pd.DataFrame,
    track_of: np.ndarray,
    info: dict[int, dict[str, Any]],
    events: list[dict[str, Any]],
    max_gap: int,
    xcol: str,
    ycol: str,
    dcol: str,
    gate_fixed: float | None,
) -> None:
    """Join tracks that died to tracks born 2…max_gap+1 frames later near the same place."""
    deaths = [e for e in events if e["kind"] == "death"]
    births = [e for e in events if e["kind"] == "birth"]
    if not deaths or not births:
        return
    last = {}
    for tid in {e["track_id"] for e in deaths}:
        rows = np.nonzero(track_of == tid)[0]
        last[tid] = rows[np.argmax(df.loc[rows, "frame"].to_numpy())]
    first = {}
    for tid in {e["track_id"] for e in births}:
        rows = np.nonzero(track_of == tid)[0]
        first[tid] = rows[np.argmin(df.loc[rows, "frame"].to_numpy())]
    d_ids, b_ids = list(last), list(first)
    cost = np.full((len(d_ids), len(b_ids)), _BIG)
    for i, d in enumerate(d_ids):
        rd = df.loc[last[d]]
        for j, b in enumerate(b_ids):
            rb = df.loc[first[b]]
            gap = int(rb["frame"]) - int(rd["frame"])
            if not 2 <= gap <= max_gap + 1:
                continue
            dist = float(np.hypot(rd[xcol] - rb[xcol], rd[ycol] - rb[ycol]))
            gate = gate_fixed if gate_fixed is not None else 0.5 * max(rd[dcol], rb[dcol])
            if dist <= gate:
                cost[i, j] = dist / max(gate, 1e-9) + gap
    ia, ib = linear_sum_assignment(cost)
    joined: dict[int, int] = {}
    for i, j in zip(ia, ib, strict=True):
        if cost[i, j] < _BIG:
            joined[b_ids[j]] = d_ids[i]
    if not joined:
        return
    for born, dead in joined.items():
        track_of[track_of == born] = dead
        info[dead]["end"] = info[born]["end"]
        info[dead]["merged_into"] = info[born]["merged_into"]
        info[dead].pop("last_frame", None)
        if "last_frame" in info[born]:
            info[dead]["last_frame"] = info[born]["last_frame"]
        del info[born]
    dead_ids = set(joined.values())
    kept = [
        e
        for e in events
        if not (e["kind"] == "death" and e["track_id"] in dead_ids)
        and not (e["kind"] == "birth" and e["track_id"] in joined)
    ]
    for e in kept:  # events that name a re-joined track
        if e["track_id"] in joined:
            e["track_id"] = joined[e["track_id"]]
        if e["other_track_id"] in joined:
            e["other_track_id"] = joined[e["other_track_id"]]
    events[:] = kept
    for rec in info.values():
        if rec.get("merged_into") in joined:
            rec["merged_into"] = joined[rec["merged_into"]]
        if rec.get("parent") in joined:
            rec["parent"] = joined[rec["parent"]]


def _summarise(df: pd.DataFrame, info: dict[int, dict[str, Any]], dcol: str) -> pd.DataFrame:
    cols = [
        "track_id",
        "first_frame",
        "last_frame",
        "n_frames",
        "start",
        "end",
        "parent",
        "merged_into",
        "diameter_start_nm",
        "diameter_end_nm",
        "diameter_mean_nm",
    ]
    if not len(df):
        return pd.DataFrame(columns=cols)
    rows = []
    has_nm = "diameter_nm" in df and df["diameter_nm"].notna().any()
    for tid, g in df.sort_values("frame").groupby("track_id", sort=True):
        rec = dict(
            info.get(
                int(tid),
                {
                    "track_id": int(tid),
                    "start": "first_frame",
                    "end": "last_frame",
                    "parent": -1,
                    "merged_into": -1,
                },
            )
        )
        d = g["diameter_nm"] if has_nm else pd.Series(np.nan, index=g.index)
        rec.update(
            first_frame=int(g["frame"].iloc[0]),
            last_frame=int(g["frame"].iloc[-1]),
            n_frames=int(g["frame"].nunique()),
            diameter_start_nm=float(d.iloc[0]),
            diameter_end_nm=float(d.iloc[-1]),
            diameter_mean_nm=float(d.mean()),
        )
        rows.append(rec)
    return pd.DataFrame(rows)[cols]
