"""Per-particle measurements from a mask: connected components, sizes and positions in nm."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ..errors import InvalidImageError, ParameterError
from ..image import normalise_pixel_size

__all__ = ["measure", "label_mask", "MEASURE_COLUMNS"]

#: columns of :func:`measure` (``_nm`` columns are NaN when the image is uncalibrated)
MEASURE_COLUMNS = (
    "frame",
    "particle_id",
    "x",
    "y",
    "x_nm",
    "y_nm",
    "area_px",
    "area_nm2",
    "diameter_px",
    "diameter_nm",
    "major_px",
    "minor_px",
    "major_nm",
    "minor_nm",
    "orientation_deg",
    "eccentricity",
    "touches_border",
    "bbox_y0",
    "bbox_x0",
    "bbox_y1",
    "bbox_x1",
)


def label_mask(mask: np.ndarray, *, connectivity: int = 1) -> np.ndarray:
    """Connected components of a boolean mask (int32 labels, 0 = background).

    *connectivity* 1 (default) joins edge-neighbours only, so particles that meet at a corner
    stay apart; 2 also joins diagonal neighbours.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise InvalidImageError(f"label_mask expects one 2-D mask, got shape {m.shape}")
    structure = ndi.generate_binary_structure(2, connectivity)
    lab, _ = ndi.label(m.astype(bool), structure=structure)
    return lab.astype(np.int32)


def _empty(frame: int) -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=float) for c in MEASURE_COLUMNS})
    df["frame"] = df["frame"].astype(int)
    df["particle_id"] = df["particle_id"].astype(int)
    df["touches_border"] = df["touches_border"].astype(bool)
    return df


def measure(
    mask: np.ndarray,
    pixel_size: float | tuple[float, float] | None = None,
    *,
    labels: np.ndarray | None = None,
    min_diameter_nm: float | None = None,
    min_area_px: int = 0,
    exclude_border: bool = False,
    frame: int = 0,
    connectivity: int = 1,
) -> pd.DataFrame:
    """Measure every particle of a mask (or label image).

    Parameters
    ----------
    mask : ndarray
        Boolean mask (H, W) (its connected components are the particles), or an integer label
        image (0 = background; used as is when it has labels above 1).
    pixel_size : float or (float, float), optional
        nm per pixel, (row, col). Without it the ``_nm`` columns are NaN.
    labels : ndarray, optional
        Label image to use instead of the connected components of *mask*.
    min_diameter_nm : float, optional
        Drop particles whose equivalent diameter is smaller (needs *pixel_size*).
    min_area_px : int
        Drop particles with fewer pixels.
    exclude_border : bool
        Drop particles that touch the frame edge (their size is unknown).
    frame : int
        Written to the ``frame`` column.
    connectivity : int
        For the connected components (see :func:`label_mask`).

    Returns
    -------
    pandas.DataFrame
        One row per kept particle: ``frame``, ``particle_id`` (its label value), ``x``, ``y``
        (centroid, px; x = column), ``x_nm``, ``y_nm``, ``area_px``, ``area_nm2``,
        ``diameter_px``/``diameter_nm`` (equivalent-circle diameter ``√(4A/π)``),
        ``major_*``/``minor_*`` (axes of the ellipse with the same second moments),
        ``orientation_deg`` (angle of the major axis from the +x axis, degrees in (−90, 90],
        positive towards −y, i.e. counter-clockwise on screen), ``eccentricity``,
        ``touches_border``, bounding box
        ``bbox_y0, bbox_x0, bbox_y1, bbox_x1`` (px, end exclusive).
    """
    from skimage.measure import regionprops_table

    m = np.asarray(mask)
    if m.ndim != 2:
        raise InvalidImageError(f"measure expects one 2-D mask, got shape {m.shape}")
    if labels is not None:
        lab = np.asarray(labels)
        if lab.shape != m.shape:
            raise ParameterError("labels must have the mask's shape")
    elif m.dtype.kind in "iu" and m.size and m.max() > 1:
        lab = m  # already a label image
    else:
        lab = label_mask(m > (0.5 if m.dtype.kind == "f" else 0), connectivity=connectivity)
    ps = normalise_pixel_size(pixel_size)
    if min_diameter_nm is not None and ps is None:
        raise ParameterError("min_diameter_nm needs a pixel size (or use min_area_px)")
    if lab.max() == 0:
        return _empty(frame)
    props: dict[str, Any] = regionprops_table(
        lab,
        properties=(
            "label",
            "area",
            "centroid",
            "axis_major_length",
            "axis_minor_length",
            "orientation",
            "eccentricity",
            "bbox",
        ),
    )
    df = pd.DataFrame(
        {
            "frame": frame,
            "particle_id": props["label"].astype(int),
            "x": props["centroid-1"],
            "y": props["centroid-0"],
            "area_px": props["area"].astype(float),
            "major_px": props["axis_major_length"],
            "minor_px": props["axis_minor_length"],
            # skimage: angle between the row axis and the major axis; convert to the x axis
            "orientation_deg": np.degrees(props["orientation"]) - 90.0,
            "eccentricity": props["eccentricity"],
            "bbox_y0": props["bbox-0"],
            "bbox_x0": props["bbox-1"],
            "bbox_y1": props["bbox-2"],
            "bbox_x1": props["bbox-3"],
        }
    )
    df["orientation_deg"] = (df["orientation_deg"] + 90.0) % 180.0 - 90.0
    df["diameter_px"] = np.sqrt(4.0 * df["area_px"] / math.pi)
    h, w = lab.shape
    df["touches_border"] = (
        (df["bbox_y0"] == 0) | (df["bbox_x0"] == 0) | (df["bbox_y1"] == h) | (df["bbox_x1"] == w)
    )
    if ps is None:
        for c in ("x_nm", "y_nm", "area_nm2", "diameter_nm", "major_nm", "minor_nm"):
            df[c] = np.nan
    else:
        pr, pc = ps
        df["x_nm"] = df["x"] * pc
        df["y_nm"] = df["y"] * pr
        df["area_nm2"] = df["area_px"] * pr * pc
        df["diameter_nm"] = np.sqrt(4.0 * df["area_nm2"] / math.pi)
        if math.isclose(pr, pc, rel_tol=1e-6):
            df["major_nm"] = df["major_px"] * pc
            df["minor_nm"] = df["minor_px"] * pc
        else:  # anisotropic pixels: second moments in nm
            pn = regionprops_table(
                lab,
                properties=("label", "axis_major_length", "axis_minor_length"),
                spacing=(pr, pc),
            )
            df["major_nm"] = pn["axis_major_length"]
            df["minor_nm"] = pn["axis_minor_length"]
    keep = df["area_px"] >= max(int(min_area_px), 1)
    if min_diameter_nm is not None:
        keep &= df["diameter_nm"] >= float(min_diameter_nm)
    if exclude_border:
        keep &= ~df["touches_border"]
    df = df.loc[keep].reset_index(drop=True)
    return df[list(MEASURE_COLUMNS)]
