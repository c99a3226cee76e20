"""``Segmentation`` (the result of :func:`atomscope.segment`) and ``SegmentationModel`` (the
fitted feature scaling, PCA and cluster centres, reusable on the frames of a movie)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._fileio import atomic_path, write_json
from ..errors import FileFormatError, MissingFileError, ParameterError
from ..image import Micrograph
from .cluster import FittedPCA, squared_distances
from .descriptors import DescriptorSettings

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Segmentation", "SegmentationModel", "SEGMENT_COLOURS"]

#: segment colours (label 0 first), colour-blind-friendly
SEGMENT_COLOURS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
]


@dataclass
class SegmentationModel:
    """Everything needed to label another image the same way.

    Pass it back as ``segment(frame, model=result.model)``: the descriptors are computed with
    the same settings, projected with the same PCA and assigned to the nearest of the same
    cluster centres (no refit), so a segment keeps its label from frame to frame.

    Attributes
    ----------
    settings : DescriptorSettings
    pca : FittedPCA
        Feature scaling, mean and principal axes.
    centres : ndarray (k, n_components)
        Cluster centres in PCA space, label 0 first (sorted by size when fitted).
    feature_names : list of str
    """

    settings: DescriptorSettings
    pca: FittedPCA
    centres: np.ndarray
    feature_names: list[str] = field(default_factory=list)

    @property
    def n_clusters(self) -> int:
        return int(len(self.centres))

    def transform(self, features: np.ndarray) -> np.ndarray:
        """PCA features (N, n_components) of raw descriptor features (N, F)."""
        if features.shape[1] != len(self.pca.mean):
            raise ParameterError(
                f"The model expects {len(self.pca.mean)} descriptor features, got "
                f"{features.shape[1]} (different descriptor settings?)"
            )
        return self.pca.transform(features)

    def distances(self, Z: np.ndarray) -> np.ndarray:
        """(N, k) squared distances to the cluster centres."""
        if Z.shape[1] == 0:
            return np.zeros((len(Z), self.n_clusters))
        return squared_distances(Z, self.centres)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.distances(self.transform(features)).argmin(axis=1)

    # -- persistence -----------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model as ``.npz`` (arrays + JSON settings), atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    settings=np.array(json.dumps(self.settings.to_dict())),
                    feature_names=np.array(json.dumps(self.feature_names)),
                    scale=self.pca.scale,
                    mean=self.pca.mean,
                    components=self.pca.components,
                    explained_variance=self.pca.explained_variance,
                    explained_variance_ratio=self.pca.explained_variance_ratio,
                    centres=self.centres,
                )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SegmentationModel:
        """Read a model written by :meth:`save` (e.g. ``model.npz`` of a saved result)."""
        path = Path(path)
        if path.is_dir():
            path = path / "model.npz"
        if not path.exists():
            raise MissingFileError(f"No such model file: {path}")
        try:
            with np.load(path, allow_pickle=False) as z:
                settings = DescriptorSettings.from_dict(json.loads(str(z["settings"])))
                pca = FittedPCA(
                    z["scale"],
                    z["mean"],
                    z["components"],
                    z["explained_variance"],
                    z["explained_variance_ratio"],
                )
                return cls(settings, pca, z["centres"], json.loads(str(z["feature_names"])))
        except (KeyError, ValueError, OSError) as exc:
            raise FileFormatError(f"{path} is not a segmentation model: {exc}") from exc

    def summary(self) -> dict[str, Any]:
        return {
            "settings": self.settings.to_dict(),
            "n_clusters": self.n_clusters,
            "n_components": self.pca.n_components,
            "explained_variance_ratio": [float(v) for v in self.pca.explained_variance_ratio],
            "n_features": int(len(self.pca.mean)),
        }


@dataclass
class Segmentation:
    """Labels for every pixel of an image, with the features and the model behind them.

    Attributes
    ----------
    labels : ndarray (H, W) int32
        Segment of every pixel, 0 … n_clusters − 1; label 0 is the largest segment when the
        model was fitted on this image (a reused model keeps its own order).
    image : Micrograph
        The analysed image.
    model : SegmentationModel
        Fitted scaling, PCA and cluster centres; reuse with ``segment(…, model=…)``.
    grid_labels : ndarray (ny, nx) int32
        Labels at the descriptor centres.
    centres_y, centres_x : ndarray
        Pixel coordinates of the descriptor centres (rows, columns).
    features : ndarray (ny·nx, F) float32
        Raw descriptor features at the centres (names in ``feature_names``).
    pca_features : ndarray (ny·nx, n_components)
    scores : dict
        ``n_clusters_chosen_by`` ('user', 'silhouette', 'bic', 'model', 'blank'),
        ``k_scores`` (score of each k tried), ``silhouette`` (at the chosen k, on a seeded
        subsample), ``inertia``, ``explained_variance_ratio``, ``fisher_separability``.
    settings : dict
        Descriptor settings and clustering parameters used.
    timings : dict
        Seconds per stage (and ``total``).
    message : str
        Notes a user should read (blank image, reused model …).
    """

    labels: np.ndarray
    image: Micrograph
    model: SegmentationModel
    grid_labels: np.ndarray
    centres_y: np.ndarray
    centres_x: np.ndarray
    features: np.ndarray
    feature_names: list[str]
    pca_features: np.ndarray
    scores: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    message: str = ""

    @property
    def n_clusters(self) -> int:
        return self.model.n_clusters

    def __len__(self) -> int:
        return self.n_clusters

    # -- tables ----------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per segment: label, pixels, area fraction, area_nm2 (calibrated), centroid
        (x, y px and nm), mean intensity, descriptor centres."""
        import pandas as pd

        lab = self.labels
        k = self.n_clusters
        counts = np.bincount(lab.ravel(), minlength=k)
        yy, xx = np.indices(lab.shape)
        sx = np.bincount(lab.ravel(), weights=xx.ravel(), minlength=k)
        sy = np.bincount(lab.ravel(), weights=yy.ravel(), minlength=k)
        si = np.bincount(
            lab.ravel(), weights=self.image.data.ravel().astype(np.float64), minlength=k
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            rows: dict[str, Any] = {
                "label": np.arange(k),
                "pixels": counts,
                "area_fraction": counts / lab.size,
                "x": sx / counts,
                "y": sy / counts,
                "mean_intensity": si / counts,
                "grid_points": np.bincount(self.grid_labels.ravel(), minlength=k),
            }
        ps = self.image.pixel_size
        if ps is not None:
            rows["area_nm2"] = counts * ps[0] * ps[1]
            rows["x_nm"] = rows["x"] * ps[1]
            rows["y_nm"] = rows["y"] * ps[0]
        cols = [
            "label",
            "pixels",
            "area_fraction",
            "area_nm2",
            "x",
            "y",
            "x_nm",
            "y_nm",
            "mean_intensity",
            "grid_points",
        ]
        return pd.DataFrame({c: rows[c] for c in cols if c in rows})

    def summary(self) -> dict[str, Any]:
        return {
            "n_clusters": self.n_clusters,
            "descriptors": list(self.model.settings.descriptors),
            "segments": self.to_frame().to_dict(orient="records"),
            "scores": self.scores,
            "settings": self.settings,
            "model": self.model.summary(),
            "grid": {
                "ny": int(len(self.centres_y)),
                "nx": int(len(self.centres_x)),
                "first_centre_yx_px": [int(self.centres_y[0]), int(self.centres_x[0])],
                "stride_px": self.model.settings.stride,
            },
            "timings_s": self.timings,
            "image": self.image.summary(),
            "message": self.message,
        }

    # -- drawing ---------------------------------------------------------------------------
    def plot(
        self,
        ax: Any = None,
        *,
        alpha: float = 0.35,
        legend: bool = True,
        boundaries: bool = True,
        title: str | None = None,
    ) -> Any:
        """Labels over the image (translucent colours, boundaries as thin lines), a legend
        with each segment's area fraction, and a scale bar when calibrated."""
        import matplotlib.pyplot as plt
        from matplotlib.colors import to_rgba
        from matplotlib.patches import Patch

        from ..report.figures import show_image
        from .metrics import boundary_pixels

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 6))
        show_image(ax, self.image, title=title)
        k = self.n_clusters
        colours = np.array([to_rgba(SEGMENT_COLOURS[i % len(SEGMENT_COLOURS)]) for i in range(k)])
        rgba = colours[self.labels].astype(np.float32)
        rgba[..., 3] = alpha if k > 1 else 0.0
        if boundaries and k > 1:
            b = boundary_pixels(self.labels)
            rgba[b] = (1.0, 1.0, 1.0, 0.9)
        h, w = self.labels.shape
        ax.imshow(rgba, interpolation="nearest", extent=(-0.5, w - 0.5, h - 0.5, -0.5))
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        if legend:
            frac = np.bincount(self.labels.ravel(), minlength=k) / self.labels.size
            handles = [
                Patch(
                    facecolor=colours[i],
                    edgecolor="black",
                    lw=0.5,
                    label=f"segment {i} ({100 * frac[i]:.1f} %)",
                )
                for i in range(k)
            ]
            ax.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.75)
        return ax

    # -- saving ----------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``labels.tif`` (uint16, full size, calibrated ImageJ TIFF), ``labels.npy``
        (int32), ``segments.csv`` (:meth:`to_frame`), ``overlay.png``, ``report.json`` and
        ``model.npz`` (reuse with ``SegmentationModel.load``), each atomically."""
        from ..report.figures import image_axes, save_figure
        from ..simulate.result import write_imagej_tiff

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        paths["labels.tif"] = write_imagej_tiff(
            out / "labels.tif", self.labels.astype(np.uint16), self.image.pixel_size
        )
        with atomic_path(out / "labels.npy") as tmp:
            np.save(tmp, self.labels.astype(np.int32))
        paths["labels.npy"] = out / "labels.npy"
        with atomic_path(out / "segments.csv") as tmp:
            self.to_frame().to_csv(tmp, index=False, float_format="%.6g")
        paths["segments.csv"] = out / "segments.csv"
        fig, ax = image_axes(self.labels.shape)
        self.plot(ax)
        paths["overlay.png"] = save_figure(fig, out / "overlay.png")
        paths["model.npz"] = self.model.save(out / "model.npz")
        paths["report.json"] = write_json(out / "report.json", self.summary())
        return paths
