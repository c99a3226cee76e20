"""``analyze``: the one-call particle analysis of an image or a movie (segment every frame,
measure every particle, link them into tracks), returning a :class:`ParticleTable`."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from .._progress import progress
from ..errors import ParameterError
from ..image import as_micrograph
from .measure import MEASURE_COLUMNS, label_mask, measure
from .result import TABLE_COLUMNS, ParticleTable
from .segment import segment
from .track import EVENT_COLUMNS, track

__all__ = ["analyze"]


def _relabel(lab: np.ndarray, keep_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep *keep_ids* of *lab*, renumbered 1…N in the given order; returns (labels, new ids)."""
    lut = np.zeros(int(lab.max(initial=0)) + 1, np.int32)
    new = np.arange(1, len(keep_ids) + 1, dtype=np.int32)
    lut[np.asarray(keep_ids, int)] = new
    return lut[lab], new


def analyze(
    image: Any,
    *,
    method: str = "classical",
    bright: bool | None = None,
    threshold: str | float = "otsu",
    model: Any = None,
    pixel_size: float | tuple[float, float] | None = None,
    min_diameter_nm: float | None = None,
    min_area_px: int = 10,
    exclude_border: bool = False,
    track_particles: bool = True,
    max_distance_nm: float | None = None,
    max_gap: int = 1,
    classical: dict[str, Any] | None = None,
    device: str | None = None,
    n_threads: int | None = None,
    tile: int = 1024,
    overlap: int = 64,
    keep_probability: bool = False,
    show_progress: bool = False,
) -> ParticleTable:
    """Find, measure and (for movies) track every particle.

    Parameters
    ----------
    image : ndarray, Micrograph or HyperSpy-like
        One image (H, W) or a movie/stack (T, H, W), e.g. ``atomscope.load(folder)``.
    method : {"classical", "unet", "shallow"}
        Segmentation method (see :func:`atomscope.particles.segment`).
    bright : bool, optional
        Bright particles (HAADF) or dark (bright-field); default: detected.
    threshold : "otsu" or float
        Probability threshold for the networks.
    model : str, path or torch.nn.Module, optional
        Network model file (from ``atomscope train particles``) or shipped model name.
    pixel_size : float or (float, float), optional
        nm per pixel, overriding the file's calibration.
    min_diameter_nm : float, optional
        Drop particles with a smaller equivalent diameter (needs a calibration).
    min_area_px : int
        Drop particles with fewer pixels (noise specks).
    exclude_border : bool
        Drop particles touching the frame edge (their size is unknown).
    track_particles : bool
        Link particles across the frames of a movie.
    max_distance_nm, max_gap : optional
        Tracking gate for non-overlapping links and gap closing (see
        :func:`atomscope.particles.track`).
    classical : dict, optional
        Parameters of the classical recipe.
    device : str, optional
        Network device ("cpu" default, "cuda", "auto").
    n_threads : int, optional
        torch CPU threads during inference (restored afterwards).
    tile, overlap : int
        Tiled inference settings.
    keep_probability : bool
        Keep the probability maps in the result (memory: 4 bytes per pixel per frame).
    show_progress : bool
        Progress bars.

    Returns
    -------
    ParticleTable
    """
    t0 = time.perf_counter()
    mg = as_micrograph(image, pixel_size=pixel_size)
    if min_diameter_nm is not None and mg.pixel_size is None:
        raise ParameterError(
            "min_diameter_nm needs a calibrated image (give pixel_size=…); "
            "or filter with min_area_px"
        )
    seg = segment(
        mg,
        method=method,
        bright=bright,
        threshold=threshold,
        model=model,
        classical=classical,
        device=device,
        n_threads=n_threads,
        tile=tile,
        overlap=overlap,
        show_progress=show_progress,
    )
    t_seg = time.perf_counter() - t0
    masks = seg.mask if mg.is_stack else seg.mask[None]
    labels = np.zeros(masks.shape, np.int32)
    tables = []
    t1 = time.perf_counter()
    for i in progress(
        range(len(masks)),
        show_progress=show_progress and len(masks) > 1,
        desc="measure",
        total=len(masks),
        unit="frame",
    ):
        lab = label_mask(masks[i])
        df = measure(
            lab,
            mg.pixel_size,
            min_diameter_nm=min_diameter_nm,
            min_area_px=min_area_px,
            exclude_border=exclude_border,
            frame=i,
        )
        labels[i], new = _relabel(lab, df["particle_id"].to_numpy())
        df["particle_id"] = new
        tables.append(df)
    table = (
        pd.concat(tables, ignore_index=True)
        if tables
        else pd.DataFrame(columns=list(MEASURE_COLUMNS))
    )
    t_measure = time.perf_counter() - t1
    events = pd.DataFrame(columns=list(EVENT_COLUMNS))
    tracks = pd.DataFrame()
    t2 = time.perf_counter()
    if mg.is_stack and track_particles and len(masks) > 1:
        tr = track(
            table,
            labels=labels,
            max_distance_nm=max_distance_nm,
            max_gap=max_gap,
            n_frames=len(masks),
        )
        table, events, tracks = tr.table, tr.events, tr.tracks
    else:
        table["track_id"] = (
            table["particle_id"] if not mg.is_stack else np.arange(1, len(table) + 1)
        )
    t_track = time.perf_counter() - t2
    cols = list(TABLE_COLUMNS)
    dt = mg.metadata.get("frame_interval_s")
    if mg.is_stack and dt:
        table["time_s"] = table["frame"] * float(dt)
        cols.insert(1, "time_s")
    table = table[cols]
    table = table.astype(
        {"frame": int, "particle_id": int, "track_id": int, "touches_border": bool}
    )
    top = int(labels.max(initial=0))
    labels_out = labels.astype(np.uint16) if top <= 65535 else labels
    message = ""
    if len(table) == 0:
        message = (
            "No particles found. Check the contrast: particles are taken to be "
            f"{'bright' if seg.bright else 'dark'} (use bright=… / --bright or --dark), "
            "and the size filters."
        )
    params = {
        "method": method,
        "bright": seg.bright,
        "threshold": threshold,
        "min_diameter_nm": min_diameter_nm,
        "min_area_px": min_area_px,
        "exclude_border": exclude_border,
        "track": bool(mg.is_stack and track_particles),
        "max_distance_nm": max_distance_nm,
        "max_gap": max_gap,
        "classical": classical or {},
        "device": device or "cpu",
    }
    timings = {
        "segment": t_seg,
        "segment_per_frame_median": float(np.median(seg.seconds)) if seg.seconds else 0.0,
        "measure": t_measure,
        "track": t_track,
        "total": time.perf_counter() - t0,
    }
    prob = None
    if keep_probability and seg.probability is not None:
        prob = seg.probability
    return ParticleTable(
        table=table,
        labels=labels_out if mg.is_stack else labels_out[0],
        image=mg,
        method=method,
        bright=seg.bright,
        thresholds=seg.thresholds,
        events=events,
        tracks=tracks,
        probability=prob,
        parameters=params,
        timings=timings,
        model=seg.model,
        message=message,
    )
