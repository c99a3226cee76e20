"""``ParticleTable``: the result of :func:`atomscope.particles.analyze` — particles per frame,
their label masks, tracks and events, and how to save and draw them."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._fileio import atomic_path, write_json
from ..image import Micrograph

__all__ = ["ParticleTable", "TABLE_COLUMNS"]

#: columns of ``ParticleTable.table`` (in this order; ``time_s`` only for movies with a frame
#: interval)
TABLE_COLUMNS = (
    "frame",
    "particle_id",
    "track_id",
    "area_nm2",
    "diameter_nm",
    "major_nm",
    "minor_nm",
    "x_nm",
    "y_nm",
    "x",
    "y",
    "area_px",
    "diameter_px",
    "major_px",
    "minor_px",
    "orientation_deg",
    "eccentricity",
    "touches_border",
    "bbox_y0",
    "bbox_x0",
    "bbox_y1",
    "bbox_x1",
)


def _colours(ids: np.ndarray) -> np.ndarray:
    """A stable colour (RGB 0–1) per integer id."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return np.asarray([cmap((int(i) * 7) % 20)[:3] for i in ids], float)


def _write_zarr(path: Path, data: np.ndarray, attrs: dict[str, Any]) -> Path:
    """Write a (T, H, W) array as a zarr store (one chunk per frame), atomically (temporary
    folder, then rename)."""
    import zarr

    from .._fileio import to_jsonable

    tmp = path.parent / f".{path.name}.tmp{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        arr = zarr.create_array(
            store=str(tmp),
            shape=data.shape,
            dtype=data.dtype,
            chunks=(1, *data.shape[1:]),
            fill_value=0,
        )
        arr[...] = data
        arr.attrs.update(to_jsonable(attrs))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


@dataclass
class ParticleTable:
    """Particles of an image or a movie.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per particle per frame: ``frame``, ``particle_id`` (its value in
        ``labels[frame]``), ``track_id`` (same particle across frames; equals particle_id for a
        single image), ``area_nm2``, ``diameter_nm`` (equivalent circle), ``major_nm``,
        ``minor_nm`` (moment ellipse axes), ``x_nm``, ``y_nm`` (centroid), the same in px
        (``x`` = column, ``y`` = row), ``orientation_deg``, ``eccentricity``,
        ``touches_border``, bounding box, and ``time_s`` for movies with a frame interval.
        ``_nm`` columns are NaN for uncalibrated images.
    labels : ndarray
        Label images, (H, W) or (T, H, W); 0 = support.
    image : Micrograph
        The analysed image or movie.
    method : str
        "classical", "unet" or "shallow".
    bright : bool
        Particles brighter than the support.
    thresholds : list of float
        Per frame (see :class:`~atomscope.particles.segment.SegmentationResult`).
    events : pandas.DataFrame
        Movies: births, deaths, coalescences and splits (see :func:`~atomscope.particles.track`).
    tracks : pandas.DataFrame
        Movies: one row per track.
    probability : ndarray or None
        Particle probability maps (network methods); not written by :meth:`save`.
    parameters, timings, model : dict
        Settings used, seconds per stage, the network's name/metrics.
    message : str
        Notes a user should read (e.g. why the table is empty).
    """

    table: pd.DataFrame
    labels: np.ndarray
    image: Micrograph
    method: str = "classical"
    bright: bool = False
    thresholds: list[float] = field(default_factory=list)
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    tracks: pd.DataFrame = field(default_factory=pd.DataFrame)
    probability: np.ndarray | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    model: dict[str, Any] | None = None
    message: str = ""

    # -- basics --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.table)

    @property
    def is_movie(self) -> bool:
        return self.labels.ndim == 3

    @property
    def n_frames(self) -> int:
        return self.labels.shape[0] if self.is_movie else 1

    @property
    def calibrated(self) -> bool:
        return self.image.pixel_size is not None

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def frame_table(self, frame: int) -> pd.DataFrame:
        """Particles of one frame."""
        return self.table[self.table["frame"] == frame].reset_index(drop=True)

    def per_frame(self) -> pd.DataFrame:
        """Statistics per frame: ``count``, ``mean``/``median``/``std`` of the diameter (nm,
        or px when uncalibrated), ``mean_area``, ``coverage`` (particle area fraction) and
        ``time_s`` when the frame interval is known."""
        col = "diameter_nm" if self.calibrated else "diameter_px"
        acol = "area_nm2" if self.calibrated else "area_px"
        frames = np.arange(self.n_frames)
        g = self.table.groupby("frame")
        out = pd.DataFrame({"frame": frames})
        out["count"] = g.size().reindex(frames, fill_value=0).to_numpy()
        for name, fn in (("mean", "mean"), ("median", "median"), ("std", "std")):
            out[f"{name}_diameter"] = getattr(g[col], fn)().reindex(frames).to_numpy()
        out["mean_area"] = g[acol].mean().reindex(frames).to_numpy()
        lab = self.labels if self.is_movie else self.labels[None]
        out["coverage"] = (lab > 0).reshape(len(lab), -1).mean(axis=1)
        dt = self.image.metadata.get("frame_interval_s")
        if self.is_movie and dt:
            out["time_s"] = frames * float(dt)
        out.attrs["unit"] = "nm" if self.calibrated else "px"
        return out

    def summary(self) -> dict[str, Any]:
        t = self.table
        col = "diameter_nm" if self.calibrated else "diameter_px"
        unit = "nm" if self.calibrated else "px"
        out: dict[str, Any] = {
            "n_particles": int(len(t)),
            "n_frames": self.n_frames,
            "method": self.method,
            "bright_particles": self.bright,
            "thresholds": [float(v) for v in self.thresholds],
            "diameter_unit": unit,
            "image": self.image.summary(),
            "model": self.model,
            "parameters": self.parameters,
            "timings_s": self.timings,
            "message": self.message,
        }
        if len(t):
            d = t[col]
            out["diameter"] = {
                "mean": float(d.mean()),
                "median": float(d.median()),
                "std": float(d.std()) if len(d) > 1 else 0.0,
                "min": float(d.min()),
                "max": float(d.max()),
            }
        if self.is_movie:
            pf = self.per_frame()
            out["count_first_frame"] = int(pf["count"].iloc[0])
            out["count_last_frame"] = int(pf["count"].iloc[-1])
            out["mean_diameter_first_frame"] = float(pf["mean_diameter"].iloc[0])
            out["mean_diameter_last_frame"] = float(pf["mean_diameter"].iloc[-1])
            out["n_tracks"] = int(t["track_id"].nunique()) if len(t) else 0
            out["events"] = (
                {k: int(v) for k, v in self.events["kind"].value_counts().items()}
                if len(self.events)
                else {}
            )
        return out

    # -- drawing -------------------------------------------------------------------------
    def plot(self, ax: Any = None, *, frame: int = 0, annotate: bool | None = None) -> Any:
        """Particle outlines (coloured by track) over one frame, with a scale bar."""
        import matplotlib.pyplot as plt
        from skimage.segmentation import find_boundaries

        from ..report.figures import show_image

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 6))
        img = self.image.frame(frame) if self.image.is_stack else self.image
        show_image(ax, img)
        lab = self.labels[frame] if self.is_movie else self.labels
        ft = self.frame_table(frame)
        if len(ft):
            h, w = lab.shape
            track_of = np.zeros(int(lab.max()) + 1, np.int64)
            track_of[ft["particle_id"].to_numpy(int)] = ft["track_id"].to_numpy(int)
            edge = find_boundaries(lab, mode="inner") & (lab > 0)
            tids = track_of[lab[edge]]
            rgba = np.zeros((h, w, 4), np.float32)
            colours = _colours(np.unique(tids))
            lut = {int(u): c for u, c in zip(np.unique(tids), colours, strict=True)}
            rgba[edge, :3] = np.asarray([lut[int(v)] for v in tids]) if len(tids) else 0
            rgba[edge, 3] = 1.0
            ax.imshow(rgba, interpolation="nearest")
            if annotate is None:
                annotate = len(ft) <= 60
            if annotate:
                fs = float(np.clip(600 / max(w, 1) * 6, 5, 8))
                for r in ft.itertuples(index=False):
                    ax.text(
                        r.x,
                        r.y,
                        str(int(r.track_id)),
                        color="yellow",
                        fontsize=fs,
                        ha="center",
                        va="center",
                    )
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
        title = f"{len(ft)} particles ({self.method})"
        if self.is_movie:
            title = f"frame {frame}: " + title
        ax.set_title(title, fontsize=9)
        return ax

    def plot_size_vs_time(self, axes: Any = None) -> Any:
        """The coarsening curve (mean ± std and median diameter per frame) and the particle
        count per frame."""
        import matplotlib.pyplot as plt

        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        pf = self.per_frame()
        unit = pf.attrs.get("unit", "nm")
        x = pf["time_s"] if "time_s" in pf else pf["frame"]
        xlabel = "time (s)" if "time_s" in pf else "frame"
        a0, a1 = axes[0], axes[1]
        a0.plot(x, pf["mean_diameter"], "-", color="tab:blue", label="mean")
        a0.fill_between(
            x,
            pf["mean_diameter"] - pf["std_diameter"].fillna(0),
            pf["mean_diameter"] + pf["std_diameter"].fillna(0),
            alpha=0.2,
            color="tab:blue",
            label="± std",
        )
        a0.plot(x, pf["median_diameter"], "--", color="tab:orange", label="median")
        a0.set_xlabel(xlabel)
        a0.set_ylabel(f"diameter ({unit})")
        a0.set_title("particle size vs time", fontsize=9)
        a0.legend(fontsize=7)
        a1.plot(x, pf["count"], "-", color="tab:green")
        a1.set_xlabel(xlabel)
        a1.set_ylabel("particles in the field")
        a1.set_title("count vs time", fontsize=9)
        return axes

    def plot_size_histograms(self, axes: Any = None, *, n_panels: int = 4) -> Any:
        """Diameter histograms of a few frames spread over the movie (common bins)."""
        import matplotlib.pyplot as plt

        col = "diameter_nm" if self.calibrated else "diameter_px"
        unit = "nm" if self.calibrated else "px"
        n = min(n_panels, self.n_frames)
        frames = np.unique(np.linspace(0, self.n_frames - 1, n).round().astype(int))
        if axes is None:
            _, axes = plt.subplots(
                1, len(frames), figsize=(2.6 * len(frames), 2.6), sharey=True, squeeze=False
            )
            axes = axes[0]
        d = self.table[col].dropna()
        bins = np.linspace(0, float(d.max()) * 1.05 if len(d) else 1.0, 21)
        for ax, f in zip(axes, frames, strict=False):
            v = self.table.loc[self.table["frame"] == f, col].dropna()
            ax.hist(v, bins=bins, color="tab:blue", alpha=0.8)
            ax.set_title(f"frame {f} (n = {len(v)})", fontsize=8)
            ax.set_xlabel(f"diameter ({unit})", fontsize=8)
        axes[0].set_ylabel("particles")
        return axes

    def report_figures(self) -> list[tuple[str, Any]]:
        """Extra figures for the HTML report: the coarsening curve and size histograms of a
        movie (none for one image)."""
        import matplotlib.pyplot as plt

        if not self.is_movie or not len(self.table):
            return []
        fig1, axes1 = plt.subplots(1, 2, figsize=(9, 3.4))
        self.plot_size_vs_time(axes1)
        fig1.tight_layout()
        n = min(4, self.n_frames)
        fig2, axes2 = plt.subplots(1, n, figsize=(2.6 * n, 2.6), sharey=True, squeeze=False)
        self.plot_size_histograms(axes2[0], n_panels=n)
        fig2.tight_layout()
        return [
            ("particle size and count vs time", fig1),
            ("diameter histograms across the movie", fig2),
        ]

    # -- saving --------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write, atomically: ``particles.csv``; ``mask.tif`` (one image) or ``masks.zarr``
        (movie; label images, one chunk per frame); ``overlay.png``; for movies also
        ``size_vs_time.png``, ``size_histograms.png``, ``per_frame.csv``, ``tracks.csv``,
        ``events.csv``; and ``report.json``."""
        import matplotlib.pyplot as plt

        from ..report.figures import image_axes, save_figure
        from ..simulate.result import write_imagej_tiff

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        with atomic_path(out / "particles.csv") as tmp:
            self.table.to_csv(tmp, index=False, float_format="%.6g")
        paths["particles.csv"] = out / "particles.csv"
        lab = self.labels
        top = int(lab.max(initial=0))
        dtype = np.uint16 if top <= 65535 else np.uint32
        attrs = {
            "description": "particle label images (0 = support); values = particle_id "
            "in particles.csv",
            "pixel_size_nm": self.image.pixel_size,
            "source": self.image.source.describe(),
        }
        if self.is_movie:
            paths["masks.zarr"] = _write_zarr(out / "masks.zarr", lab.astype(dtype), attrs)
        elif dtype == np.uint16:
            paths["mask.tif"] = write_imagej_tiff(
                out / "mask.tif", lab.astype(dtype), self.image.pixel_size
            )
        else:
            import tifffile

            with atomic_path(out / "mask.tif") as tmp:
                tifffile.imwrite(tmp, lab.astype(dtype))
            paths["mask.tif"] = out / "mask.tif"
        h, w = self.image.image_shape
        if self.is_movie and self.n_frames > 1:
            fig = plt.figure(figsize=(11, 5.5 * h / max(w, 1) + 0.4))
            a0 = fig.add_axes((0.0, 0.0, 0.495, 0.93))
            a1 = fig.add_axes((0.505, 0.0, 0.495, 0.93))
            self.plot(a0, frame=0)
            self.plot(a1, frame=self.n_frames - 1)
        else:
            fig, ax = image_axes((h, w))
            self.plot(ax)
        paths["overlay.png"] = save_figure(fig, out / "overlay.png")
        if self.is_movie:
            fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
            self.plot_size_vs_time(axes)
            fig.tight_layout()
            paths["size_vs_time.png"] = save_figure(fig, out / "size_vs_time.png")
            n = min(4, self.n_frames)
            fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 2.6), sharey=True, squeeze=False)
            self.plot_size_histograms(axes[0], n_panels=n)
            fig.tight_layout()
            paths["size_histograms.png"] = save_figure(fig, out / "size_histograms.png")
            for name, df in (
                ("per_frame.csv", self.per_frame()),
                ("tracks.csv", self.tracks),
                ("events.csv", self.events),
            ):
                with atomic_path(out / name) as tmp:
                    df.to_csv(tmp, index=False, float_format="%.6g")
                paths[name] = out / name
        record = {
            "summary": self.summary(),
            "files": sorted([*paths, "report.json"]),
            "columns": list(self.table.columns),
            "conventions": {
                "coordinates": "x = column index, y = row index, pixel (r, c) centred at "
                "x = c, y = r; *_nm = px × pixel size",
                "diameter": "equivalent-circle diameter sqrt(4 area / pi)",
                "major_minor": "axes of the ellipse with the same second moments",
            },
        }
        paths["report.json"] = write_json(out / "report.json", record)
        return paths
