"""Simulation results: the image (a Micrograph) and its ground truth, and how they are saved."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._fileio import atomic_path, write_json, write_text
from ..image import Micrograph

__all__ = [
    "GroundTruth",
    "SimulationResult",
    "COLUMN_FIELDS",
    "PARTICLE_FIELDS",
    "write_imagej_tiff",
]

#: columns of ``GroundTruth.columns`` (x, y: where the column appears in the image, px;
#: x_sample, y_sample: undistorted position, equal to x, y without scan distortion)
COLUMN_FIELDS = (
    "x",
    "y",
    "x_nm",
    "y_nm",
    "species",
    "weight",
    "sublattice",
    "grain",
    "phase",
    "site",
    "amorphous",
    "n_atoms",
    "x_sample",
    "y_sample",
)
#: columns of ``GroundTruth.particles``
PARTICLE_FIELDS = (
    "frame",
    "id",
    "x",
    "y",
    "x_nm",
    "y_nm",
    "radius",
    "radius_nm",
    "area",
    "area_nm2",
    "alive",
)


@dataclass
class GroundTruth:
    """What was simulated, exactly.

    Attributes
    ----------
    columns : pandas.DataFrame
        One row per atom column whose centre lies inside the image (0 ≤ x ≤ W − 1,
        0 ≤ y ≤ H − 1, px). Fields: x, y (px, where the column appears; pixel (r, c) is centred
        at x = c, y = r), x_nm, y_nm, species ('Ti+O'), weight (Σ atoms × Z^n), sublattice
        (composition type, brightest first), grain (1, 2 …; 0 = amorphous), phase (structure
        index), site (index in the projected cell), amorphous, n_atoms, x_sample, y_sample
        (undistorted position). Empty for particle frames.
    masks : dict of str -> ndarray
        Per-pixel integer label maps: 'grain', 'phase', 'amorphous', 'particle' (instance ids,
        (T, H, W) for movies) — whichever apply.
    particles : pandas.DataFrame or None
        Per-particle table for particle frames and movies (frame, id, x, y, x_nm, y_nm, radius,
        radius_nm, area (px), area_nm2, alive).
    fields : dict of str -> ndarray
        Float maps: 'noise_free' (the image before noise) and 'background' when added.
    parameters : dict
        Every simulation parameter and derived quantity (JSON-compatible).
    """

    columns: pd.DataFrame
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    particles: pd.DataFrame | None = None
    fields: dict[str, np.ndarray] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class SimulationResult:
    """A simulated image and its ground truth.

    Attributes
    ----------
    image : Micrograph
        float32 image (or (T, H, W) movie), calibrated in nm; ``image.metadata['simulation']``
        records every parameter.
    truth : GroundTruth
        Columns, masks, particles and parameters.
    """

    image: Micrograph
    truth: GroundTruth

    # -- Result API ----------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """The ground-truth table (columns, or particles for particle images)."""
        if self.truth.particles is not None and len(self.truth.columns) == 0:
            return self.truth.particles
        return self.truth.columns

    def summary(self) -> dict[str, Any]:
        """Short JSON-friendly description."""
        p = self.truth.parameters
        out: dict[str, Any] = {
            "kind": p.get("kind"),
            "shape": list(self.image.shape),
            "pixel_size_nm": self.image.pixel_size[0] if self.image.pixel_size else None,
            "n_columns": int(len(self.truth.columns)),
            "masks": sorted(self.truth.masks),
        }
        if self.truth.particles is not None:
            out["n_particles"] = int(len(self.truth.particles))
        if "structure" in p:
            out["structure"] = p["structure"]
        if "zone" in p:
            out["zone"] = p["zone"]
        return out

    def plot(self, ax: Any = None, *, marker_size: float = 6.0, show_columns: bool = True) -> Any:
        """Draw the image with the true column positions (coloured by sublattice)."""
        import matplotlib.pyplot as plt

        from ..report.figures import show_image

        if ax is None:
            _, ax = plt.subplots()
        show_image(ax, self.image)
        cols = self.truth.columns
        if show_columns and len(cols):
            ax.scatter(
                cols["x"],
                cols["y"],
                s=marker_size,
                c=cols["sublattice"],
                cmap="tab10",
                vmin=0,
                vmax=9,
                linewidths=0,
            )
        return ax

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the image and its ground truth to ``directory`` (created), atomically.

        Files: ``image.tif`` (float32 ImageJ TIFF, unit 'nm', resolution 1/pixel size),
        ``columns.csv`` (when there are columns), ``particles.csv`` (when there are particles),
        ``mask_<name>.tif`` (uint8, or uint16 above 255 labels), ``field_<name>.tif`` (float32)
        and ``truth.json`` (all parameters and the list of files).
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        ps = self.image.pixel_size
        files = ["image.tif"]
        write_imagej_tiff(out / "image.tif", self.image.data, ps)
        if len(self.truth.columns):
            write_text(out / "columns.csv", self.truth.columns.to_csv(index=False))
            files.append("columns.csv")
        if self.truth.particles is not None:
            write_text(out / "particles.csv", self.truth.particles.to_csv(index=False))
            files.append("particles.csv")
        for name, mask in self.truth.masks.items():
            m = np.asarray(mask)
            dtype = np.uint8 if m.max(initial=0) <= 255 else np.uint16
            if m.max(initial=0) > 65535:
                dtype = np.uint32
            write_imagej_tiff(out / f"mask_{name}.tif", m.astype(dtype), ps)
            files.append(f"mask_{name}.tif")
        for name, arr in self.truth.fields.items():
            write_imagej_tiff(out / f"field_{name}.tif", np.asarray(arr, np.float32), ps)
            files.append(f"field_{name}.tif")
        record = {
            "summary": self.summary(),
            "files": files + ["truth.json"],
            "parameters": self.truth.parameters,
            "columns_fields": list(self.truth.columns.columns),
            "conventions": {
                "coordinates": "x = column index, y = row index, pixel (r, c) centred at "
                "x = c, y = r; *_nm = px × pixel size",
                "columns_included": "centre inside the image: 0 ≤ x ≤ W-1, 0 ≤ y ≤ H-1",
            },
        }
        write_json(out / "truth.json", record)
        return out


def write_imagej_tiff(
    path: str | os.PathLike[str], data: np.ndarray, pixel_size: tuple[float, float] | None
) -> Path:
    """Write an ImageJ-hyperstack TIFF atomically, calibrated in nm (unit 'nm', resolution =
    pixels per nm). (T, H, W) arrays are written as a time series."""
    import tifffile

    arr = np.ascontiguousarray(data)
    kwargs: dict[str, Any] = {"imagej": True}
    meta: dict[str, Any] = {"axes": "TYX" if arr.ndim == 3 else "YX"}
    if pixel_size is not None:
        kwargs["resolution"] = (1.0 / pixel_size[1], 1.0 / pixel_size[0])
        meta["unit"] = "nm"
    kwargs["metadata"] = meta
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, arr, **kwargs)
    return Path(path)
