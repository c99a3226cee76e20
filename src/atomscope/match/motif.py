"""Motif segmentation: label the regions of an image by their best-matching library motif.

1. **Tiles.** Overlapping square tiles (each covering the library field at any rotation) are
   ranked against the library (or a candidate subset) exactly as :func:`atomscope.match.rank`
   does; each tile keeps its best entry and fitted transform.
2. **Motifs.** Tiles are grouped by (entry, orientation): the fitted rotation modulo the
   entry's rotational symmetry (read from its Bragg amplitudes), within
   ``rotation_tolerance`` degrees. So two grains of one structure in different orientations are
   two motifs, and two phases are two motifs.
3. **Columns.** The image is represented by its columns (positions and intensities from the
   atom finder). Each column is compared with every motif's lattice, placed by the nearest tile
   of that motif: the registration residual is the distance from the column to the nearest
   visible column of the motif. Residuals are averaged over each column's neighbourhood
   (``smoothing`` nm) and the column takes the motif with the smallest one. Pixels take the
   label of their nearest column (0 beyond twice the column spacing: vacuum or amorphous).
4. **Same pattern.** Two motifs whose lattices each explain the other's columns (median
   smoothed residual within 1.5 × the motif's own, or ``pattern_tolerance`` × the column
   spacing if larger) show this image one column pattern at one orientation: entries that
   differ in column intensities (a zinc-blende and a half-Heusler [110], a perovskite and a
   double perovskite [001]) or in columns too faint to be detected (a superstructure). The
   residuals cannot separate them, so they are merged into the motif holding more columns (its
   entry names the region; the others are listed in ``same_pattern``) instead of splitting one
   grain into a patchwork. A lattice of another orientation or pattern leaves residuals near
   those of random points.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._fileio import atomic_path, write_json
from .._progress import progress
from ..errors import InvalidImageError, ParameterError
from ..image import Micrograph, as_micrograph

__all__ = ["segment_motifs", "MotifSegmentation", "label_accuracy"]


def _symmetry_order(peaks: np.ndarray, tol: float = 0.02) -> int:
    """Largest n in (6, 4, 3, 2) whose rotation maps the Bragg amplitude pattern onto itself."""
    if len(peaks) < 2:
        return 1
    g = np.concatenate([peaks[:, :2], -peaks[:, :2]]).astype(np.float64)
    a = np.concatenate([peaks[:, 2], peaks[:, 2]]).astype(np.float64)
    from scipy.spatial import cKDTree

    tree = cKDTree(g)
    strong = a >= 0.2 * a.max()
    for n in (6, 4, 3, 2):
        t = 2 * math.pi / n
        R = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        gr = g[strong] @ R.T
        d, j = tree.query(gr)
        ok = (d <= tol * np.hypot(gr[:, 0], gr[:, 1]) + 1e-9) & (
            np.abs(a[j] - a[strong]) <= 0.1 * a[strong] + 1e-9
        )
        if ok.all():
            return n
    return 1


def label_accuracy(labels: np.ndarray, truth: np.ndarray, *, ignore: int | None = 0) -> float:
    """Fraction of pixels whose label matches ``truth`` under the best one-to-one mapping of
    label values to truth values (Hungarian assignment on the confusion matrix). Pixels with
    ``truth == ignore`` are left out; unmatched labels count as wrong."""
    from scipy.optimize import linear_sum_assignment

    lab = np.asarray(labels).ravel()
    tru = np.asarray(truth).ravel()
    if ignore is not None:
        keep = tru != ignore
        lab, tru = lab[keep], tru[keep]
    if len(tru) == 0:
        return float("nan")
    lv, li = np.unique(lab, return_inverse=True)
    tv, ti = np.unique(tru, return_inverse=True)
    conf = np.zeros((len(lv), len(tv)), np.int64)
    np.add.at(conf, (li, ti), 1)
    r, c = linear_sum_assignment(-conf)
    return float(conf[r, c].sum() / len(tru))


@dataclass
class MotifSegmentation:
    """Regions of an image labelled by their best-matching library motif.

    Attributes
    ----------
    labels : ndarray (H, W) int
        Motif label per pixel (1, 2 …; 0 = no column nearby).
    columns : pandas.DataFrame
        ``x``, ``y`` (px), ``x_nm``, ``y_nm`` (when calibrated), ``intensity``, ``label`` and
        ``residual_nm`` (smoothed registration residual to the chosen motif).
    tiles : pandas.DataFrame
        One row per tile: ``x0``, ``y0``, ``size`` (px), ``entry``, ``name``, ``zone``,
        ``score`` (the metric), ``rotation_deg``, ``motif``.
    motifs : pandas.DataFrame
        One row per motif: ``motif``, ``entry``, ``name``, ``formula``, ``structure_type``,
        ``zone``, ``rotation_deg`` (of its first tile, modulo the motif's rotational
        symmetry), ``n_tiles``, ``n_columns``, ``area_fraction`` and ``same_pattern`` (labels
        of the entries merged into it: their lattices explain the same detected columns at the
        same orientation; "" if none).
    image : Micrograph
    metric : str
    timings : dict
    """

    labels: np.ndarray
    columns: pd.DataFrame
    tiles: pd.DataFrame
    motifs: pd.DataFrame
    image: Micrograph
    metric: str = "ssim"
    timings: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.columns.copy()

    def accuracy(self, truth: np.ndarray, *, ignore: int | None = 0) -> float:
        """Pixel accuracy against a true label mask (e.g. ``truth.masks['grain']``)."""
        return label_accuracy(self.labels, truth, ignore=ignore)

    def summary(self) -> dict[str, Any]:
        return {
            "n_motifs": int(len(self.motifs)),
            "n_columns": int(len(self.columns)),
            "n_tiles": int(len(self.tiles)),
            "metric": self.metric,
            "motifs": self.motifs.to_dict(orient="records"),
            "timings_s": self.timings,
            "settings": self.settings,
        }

    def plot(self, ax: Any = None, *, alpha: float = 0.35) -> Any:
        """The image with the motif regions tinted and the columns coloured by motif."""
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap

        from ..report.figures import show_image

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 6))
        show_image(ax, self.image)
        colours = ["#ff3b30", "#1e90ff", "#34c759", "#ffcc00", "#af52de", "#ff9500"]
        n = max(int(self.labels.max()), 1)
        cmap = ListedColormap([(0, 0, 0, 0)] + [colours[i % len(colours)] for i in range(n)])
        ax.imshow(self.labels, cmap=cmap, vmin=0, vmax=n, alpha=alpha, interpolation="nearest")
        c = self.columns
        if len(c):
            ax.scatter(
                c["x"],
                c["y"],
                s=3,
                c=[
                    colours[(int(v) - 1) % len(colours)] if v > 0 else "#888888" for v in c["label"]
                ],
            )
        from matplotlib.patches import Patch

        # one legend line per motif, in its colour, below the image (AFLOW names are long)
        handles = [
            Patch(
                color=colours[(int(r.motif) - 1) % len(colours)],
                label=f"{int(r.motif)}: {r['name']} {r.zone} ({r.rotation_deg:.0f}°)"
                + (f" = {r['same_pattern']}" if r.get("same_pattern") else ""),
            )
            for _, r in self.motifs.iterrows()
        ]
        if handles:
            ax.legend(
                handles=handles,
                loc="upper center",
                bbox_to_anchor=(0.5, -0.01),
                fontsize=7,
                frameon=False,
                handlelength=1.0,
            )
        return ax

    def save(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``labels.npy``, ``columns.csv``, ``tiles.csv``, ``motifs.csv``,
        ``segmentation.png`` and ``report.json``."""
        import matplotlib.pyplot as plt

        from ..report.figures import save_figure

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        out = {}
        with atomic_path(d / "labels.npy") as tmp:
            np.save(tmp, self.labels)
        out["labels"] = d / "labels.npy"
        for name, df in (("columns", self.columns), ("tiles", self.tiles), ("motifs", self.motifs)):
            with atomic_path(d / f"{name}.csv") as tmp:
                df.to_csv(tmp, index=False, float_format="%.6g")
            out[name] = d / f"{name}.csv"
        fig, ax = plt.subplots(figsize=(6, 6.3))
        self.plot(ax)
        out["figure"] = save_figure(fig, d / "segmentation.png", dpi=110)
        out["report"] = write_json(d / "report.json", self.summary())
        return out


def _cell_sites(library: Any, entry: int) -> tuple[np.ndarray, np.ndarray]:
    """Primitive lattice (nm, rows) and fractional positions of the visible columns."""
    st = library.settings
    L = np.asarray(library.meta[entry]["lattice_nm"], dtype=np.float64)
    v = library.visible[entry]
    c = (st.size - 1) / 2.0
    xi = (v[:, :2].astype(np.float64) - c) * st.pixel_size
    f = np.mod(xi @ np.linalg.inv(L), 1.0)
    # unique sites in the cell
    key = np.round(f * 200).astype(np.int64) % 200
    _, first = np.unique(key[:, 0] * 1000 + key[:, 1], return_index=True)
    return L, f[first]


def _residuals(
    xy_nm: np.ndarray,
    center_nm: np.ndarray,
    A: np.ndarray,
    t: np.ndarray,
    L: np.ndarray,
    sites: np.ndarray,
) -> np.ndarray:
    """Displacement (nm, library frame, (n, 2)) from the nearest site of a lattice placed by
    the transform η = A (ξ + t) about ``center_nm`` to each point."""
    eta = xy_nm - center_nm
    xi = eta @ np.linalg.inv(A).T - t
    f = xi @ np.linalg.inv(L)
    d = f[:, None, :] - sites[None, :, :]
    d -= np.rint(d)
    v = d @ L
    nearest = np.linalg.norm(v, axis=-1).argmin(axis=1)
    return v[np.arange(len(v)), nearest]


def _merge_same_pattern(
    residuals: np.ndarray, xy_nm: np.ndarray, motifs: list[dict[str, Any]], tolerance: float
) -> np.ndarray:
    """Indices of the motifs left after merging those that explain each other's columns.

    Motifs a and b merge when b's lattice leaves a's columns a median smoothed residual of at
    most 1.5 × a's own (or ``tolerance`` × the column spacing, if larger), and the same holds
    the other way round. A lattice of another orientation or another pattern leaves residuals
    near those of random points. The smaller motif (fewer columns) goes into the larger, the
    closest pair first; ``merged_into`` and ``absorbed`` record it."""
    from ..atoms.lattice import median_nn_distance

    alive = list(range(len(motifs)))
    if tolerance <= 0 or len(alive) < 2 or len(xy_nm) < 3:
        return np.array(alive)
    floor = tolerance * median_nn_distance(xy_nm)
    while len(alive) > 1:
        best = np.asarray(alive)[np.argmin(residuals[alive], axis=0)]
        owns = {a: best == a for a in alive}
        pick = None
        for i, a in enumerate(alive):
            for b in alive[i + 1 :]:
                own_a, own_b = owns[a], owns[b]
                if not own_a.any() or not own_b.any():
                    continue
                worst = max(
                    float(np.median(residuals[b, own_a]))
                    / max(1.5 * float(np.median(residuals[a, own_a])), floor),
                    float(np.median(residuals[a, own_b]))
                    / max(1.5 * float(np.median(residuals[b, own_b])), floor),
                )
                if worst <= 1.0 and (pick is None or worst < pick[0]):
                    keep, drop = (a, b) if own_a.sum() >= own_b.sum() else (b, a)
                    pick = (worst, keep, drop)
        if pick is None:
            break
        _, keep, drop = pick
        motifs[drop]["merged_into"] = motifs[keep]["motif"]
        motifs[keep].setdefault("absorbed", []).extend(
            [motifs[drop], *motifs[drop].get("absorbed", [])]
        )
        alive.remove(drop)
    return np.array(alive)


def segment_motifs(
    image: Any,
    library: Any,
    *,
    pixel_size: float | None = None,
    candidates: Any = None,
    metric: str = "ssim",
    tile: float | None = None,
    stride: float | None = None,
    shortlist: int = 32,
    scale_tolerance: float = 0.08,
    rotation_tolerance: float = 5.0,
    min_score: float | None = None,
    smoothing: float = 0.4,
    registration: float = 1.0,
    pattern_tolerance: float = 0.12,
    columns: Any = None,
    seed: int = 0,
    show_progress: bool = False,
) -> MotifSegmentation:
    """Label the regions of an image (grains, phases) by their best-matching library motif.

    Parameters
    ----------
    image : ndarray, Micrograph or HyperSpy-like
        A HAADF image.
    library : Library or path
    pixel_size : float, optional
        nm/px, overriding the image's calibration (needed when it has none).
    candidates : array of int or bool, optional
        Library entries allowed as motifs (default all).
    metric : {"ssim", "mse"}
        Metric that picks each tile's motif.
    tile, stride : float, optional
        Tile side and step, nm (default: the library field × √2 × (1 + scale_tolerance), and
        half of it).
    shortlist : int
        Entries aligned and scored per tile (after the first pass).
    scale_tolerance : float
        Relative scale range fitted around the calibration.
    rotation_tolerance : float
        Tiles of one entry whose rotations differ by less than this (degrees, modulo the
        entry's symmetry) belong to one motif.
    min_score : float, optional
        Tiles whose best score is worse than this are left out (SSIM default 0.2).
    smoothing : float
        Radius (nm) over which column residuals are averaged.
    registration : float
        Radius (nm) over which the mean displacement of the columns from each motif's
        lattice is taken off before the residuals (the lattice, placed by its nearest tile,
        drifts off the columns with scan distortion); 0 keeps the tile's placement.
    pattern_tolerance : float
        Motifs whose lattices explain each other's columns (median smoothed residual within
        1.5 × the motif's own, or this fraction of the column spacing if larger) are one
        pattern and are merged; 0 keeps every motif.
    columns : DataFrame or (N, 3) array, optional
        Columns (x, y px, intensity) instead of running the atom finder.
    seed : int
        Seed of the atom finder.
    show_progress : bool
        Progress bar over tiles.

    Returns
    -------
    MotifSegmentation
    """
    from scipy import ndimage as ndi
    from scipy.spatial import cKDTree
    from threadpoolctl import threadpool_limits

    from .analysis import load_library
    from .query import MIN_QUERY_PX, prepare_query
    from .ranking import first_pass, score_candidates

    t_start = time.perf_counter()
    if isinstance(library, str | os.PathLike):
        library = load_library(library)  # cached: a batch reads it once per process
    if metric not in ("ssim", "mse"):
        raise ParameterError("segment_motifs ranks tiles by 'ssim' or 'mse'")
    mg = as_micrograph(image, pixel_size=pixel_size)
    if mg.is_stack:
        raise InvalidImageError("segment_motifs works on one image; pass one frame")
    if mg.pixel_size is None:
        raise ParameterError("segment_motifs needs a pixel size (pixel_size=..., nm/px)")
    data = np.asarray(mg.data, dtype=np.float64)
    p = float(np.mean(mg.pixel_size))
    st = library.settings
    cand = None
    if candidates is not None:
        cand = np.asarray(candidates)
        cand = (np.nonzero(cand)[0] if cand.dtype == bool else cand).astype(np.int64)
    h, w = data.shape
    if min(h, w) < MIN_QUERY_PX:
        raise ParameterError(
            f"the image is too small ({h} x {w} px; motif segmentation needs at least "
            f"{MIN_QUERY_PX} px per side, and a few unit cells per tile)"
        )
    field_nm = st.size * st.pixel_size
    tile_px = int(math.ceil((tile or field_nm * math.sqrt(2) * (1 + scale_tolerance)) / p))
    tile_px = min(tile_px, h, w)
    stride_px = max(int(round((stride / p) if stride else tile_px / 2)), 4)
    bg = data - ndi.gaussian_filter(data, min(1.0 / p, max(h, w) / 4.0), mode="reflect")
    ys = list(range(0, max(h - tile_px, 0) + 1, stride_px))
    xs = list(range(0, max(w - tile_px, 0) + 1, stride_px))
    if ys[-1] != h - tile_px:
        ys.append(h - tile_px)
    if xs[-1] != w - tile_px:
        xs.append(w - tile_px)
    if min_score is None:
        min_score = 0.2 if metric == "ssim" else 1.5
    rows = []
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):  # many small matrix products: threads only contend
        for y0, x0 in progress(
            [(y, x) for y in ys for x in xs], show_progress=show_progress, desc="tiles", unit="tile"
        ):
            q = prepare_query(
                mg,
                st,
                region=(y0, y0 + tile_px, x0, x0 + tile_px),
                scale_tolerance=scale_tolerance,
                _preprocessed=bg,
            )
            fp = first_pass(q, library, scale_tolerance, cand)
            k = min(shortlist, len(fp["lp_score"]))
            order = np.argsort(-fp["lp_score"], kind="stable")[:k]
            ent = order if cand is None else cand[order]
            sc = score_candidates(
                q, library, ent, {kk: v[order] for kk, v in fp.items()}, metrics=("ssim", "mse")
            )
            vals = sc[metric]
            j = int(np.nanargmax(vals) if metric == "ssim" else np.nanargmin(vals))
            e = int(ent[j])
            rows.append(
                {
                    "x0": x0,
                    "y0": y0,
                    "size": tile_px,
                    "entry": e,
                    "name": library.meta[e]["name"],
                    "zone": library.meta[e]["zone_label"],
                    "score": float(vals[j]),
                    "rotation_deg": float(sc["rotation_deg"][j]),
                    "mirror": bool(sc["mirror"][j]),
                    "A": sc["A_nm"][j],
                    "t": np.array([sc["shift_x_nm"][j], sc["shift_y_nm"][j]]),
                    "cx": x0 + q.center[0],
                    "cy": y0 + q.center[1],
                }
            )
    timings["tiles"] = time.perf_counter() - t0
    tiles = pd.DataFrame(rows)
    good = (tiles["score"] >= min_score) if metric == "ssim" else (tiles["score"] <= min_score)
    # motifs: (entry, orientation modulo the entry's symmetry)
    motif_of = np.zeros(len(tiles), np.int64)
    motifs: list[dict[str, Any]] = []
    for idx in np.nonzero(good.to_numpy())[0]:
        e = int(tiles.at[idx, "entry"])
        n_sym = _symmetry_order(library.peaks[e])
        period = 360.0 / n_sym
        rot = tiles.at[idx, "rotation_deg"] % period
        found = 0
        for m in motifs:
            if m["entry"] != e:
                continue
            d = abs((rot - m["rot"] + period / 2) % period - period / 2)
            if d <= rotation_tolerance:
                found = m["motif"]
                m["tiles"].append(idx)
                break
        if not found:
            found = len(motifs) + 1
            motifs.append(
                {"motif": found, "entry": e, "rot": rot, "tiles": [idx], "period": period}
            )
        motif_of[idx] = found
    tiles["motif"] = motif_of
    # keep motifs holding at least two tiles, unless that leaves none
    big = [m for m in motifs if len(m["tiles"]) >= 2] or motifs
    # columns
    t0 = time.perf_counter()
    if columns is None:
        from .query import _detect_columns

        center = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
        cols = _detect_columns(bg, center, max(h, w), seed)
    elif isinstance(columns, pd.DataFrame):
        cols = columns[["x", "y", "intensity"]].copy()
    else:
        arr = np.asarray(columns, dtype=float)
        cols = pd.DataFrame({"x": arr[:, 0], "y": arr[:, 1], "intensity": arr[:, 2]})
    timings["columns"] = time.perf_counter() - t0
    xy = cols[["x", "y"]].to_numpy(float)
    xy_nm = xy * p
    labels_col = np.zeros(len(cols), np.int64)
    resid_best = np.full(len(cols), np.nan)
    if len(big) and len(cols):
        V = np.full((len(big), len(cols), 2), np.inf)
        tcent = tiles[["cx", "cy"]].to_numpy(float)
        for mi, m in enumerate(big):
            L, sites = _cell_sites(library, m["entry"])
            own = np.array(m["tiles"])
            tree = cKDTree(tcent[own])
            _, near = tree.query(xy)
            for j, ti in enumerate(own):
                sel = near == j
                if not sel.any():
                    continue
                V[mi, sel] = _residuals(
                    xy_nm[sel], tcent[ti] * p, tiles.at[ti, "A"], tiles.at[ti, "t"], L, sites
                )
        # A lattice placed by a tile drifts off the columns away from it (scan distortion):
        # the slowly varying part of its displacements (mean over `registration` nm) is
        # taken off, which re-registers the right lattice and leaves a wrong one's scatter.
        ctree = cKDTree(xy_nm)
        if registration > 0:
            V0 = V.copy()
            for i, nb in enumerate(ctree.query_ball_point(xy_nm, registration)):
                V[:, i] = V0[:, i] - V0[:, nb].mean(axis=1)
        R = np.linalg.norm(V, axis=-1)
        # neighbourhood average
        nbrs = ctree.query_ball_point(xy_nm, smoothing)
        Rs = np.empty_like(R)
        for i, nb in enumerate(nbrs):
            Rs[:, i] = R[:, nb].mean(axis=1)
        alive = _merge_same_pattern(Rs, xy_nm, big, pattern_tolerance)
        best = alive[np.argmin(Rs[alive], axis=0)]
        labels_col = np.array([big[b]["motif"] for b in best])
        resid_best = Rs[best, np.arange(len(cols))]
        # renumber motifs 1..n in order of first appearance
    used = sorted(set(labels_col.tolist()) - {0})
    renum = {old: i + 1 for i, old in enumerate(used)}
    labels_col = np.array([renum.get(v, 0) for v in labels_col], np.int64)
    # tiles of a merged motif belong to the motif that absorbed it
    home = {
        o["motif"]: m["motif"]
        for m in big
        if m.get("merged_into") is None
        for o in m.get("absorbed", [])
    }
    tiles["motif"] = [renum.get(home.get(v, v), 0) for v in tiles["motif"]]
    # pixel labels: nearest column, 0 far from any
    yy, xx = np.mgrid[0:h, 0:w]
    labels = np.zeros((h, w), np.int16)
    if len(cols):
        ctree_px = cKDTree(xy)
        d, j = ctree_px.query(np.column_stack([xx.ravel(), yy.ravel()]))
        nn = ctree_px.query(xy, k=2)[0][:, 1] if len(xy) > 1 else np.array([np.inf])
        spacing = float(np.median(nn)) if np.isfinite(nn).any() else np.inf
        lab = labels_col[j]
        lab[d > 2.5 * spacing] = 0
        labels = lab.reshape(h, w).astype(np.int16)
    out_cols = cols.copy()
    if mg.pixel_size is not None:
        out_cols["x_nm"] = xy_nm[:, 0]
        out_cols["y_nm"] = xy_nm[:, 1]
    out_cols["label"] = labels_col
    out_cols["residual_nm"] = resid_best
    mrows = []
    for m in big:
        new = renum.get(m["motif"], 0)
        if new == 0:  # no column chose it (merged motifs included)
            continue
        e = m["entry"]
        meta = library.meta[e]
        mrows.append(
            {
                "motif": new,
                "entry": e,
                "name": meta["name"],
                "formula": meta["formula"],
                "structure_type": meta["structure_type"],
                "zone": meta["zone_label"],
                # within ±half the symmetry period (a 0° grain is not shown as 90°)
                "rotation_deg": float((m["rot"] + m["period"] / 2) % m["period"] - m["period"] / 2),
                "n_tiles": int((tiles["motif"] == new).sum()),
                "n_columns": int(np.sum(labels_col == new)),
                "area_fraction": float(np.mean(labels == new)),
                "same_pattern": "; ".join(
                    dict.fromkeys(library.label(o["entry"]) for o in m.get("absorbed", []))
                ),
            }
        )
    motifs_df = pd.DataFrame(
        mrows,
        columns=[
            "motif",
            "entry",
            "name",
            "formula",
            "structure_type",
            "zone",
            "rotation_deg",
            "n_tiles",
            "n_columns",
            "area_fraction",
            "same_pattern",
        ],
    )
    motifs_df = motifs_df.sort_values("motif").reset_index(drop=True)
    tiles_out = tiles.drop(columns=["A", "t"])
    timings["total"] = time.perf_counter() - t_start
    return MotifSegmentation(
        labels,
        out_cols,
        tiles_out,
        motifs_df,
        mg,
        metric,
        timings,
        {
            "tile_px": tile_px,
            "stride_px": stride_px,
            "shortlist": shortlist,
            "rotation_tolerance": rotation_tolerance,
            "smoothing_nm": smoothing,
            "pattern_tolerance": pattern_tolerance,
            "min_score": min_score,
        },
    )
