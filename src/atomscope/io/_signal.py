"""What a format reader hands to :func:`atomscope.load`: one :class:`RawSignal` per signal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

SignalKind = Literal["image", "diffraction", "spectrum", "other"]


@dataclass
class RawSignal:
    """One signal (detector / dataset) of a file, as the reader found it.

    Attributes
    ----------
    data : ndarray
        Raw values in the file's dtype (numpy array or memory map). Axes are (H, W), (T, H, W)
        with frames first, or with a trailing colour axis of 3 or 4 when ``rgb`` is true. Readers
        reorder frames-last layouts (Velox) so that frames come first.
    pixel_size : (float, float) or None
        Real-space pixel size in nm, (row, col), or None when the file has no usable length
        calibration.
    name : str
        Signal name as the file calls it ("HAADF", "DF2", "BF", "Ceta" …), or a positional name.
    metadata : dict
        Flat or nested dict of what the file says (microscope, voltage in V, magnification,
        acquisition date, frame interval in s, original units …). JSON-friendly values only.
    kind : {"image", "diffraction", "spectrum", "other"}
        "diffraction" for reciprocal-space calibrations, "spectrum" for 1-D signals.
    rgb : bool
        True when the last axis holds colour channels.
    """

    data: np.ndarray
    pixel_size: tuple[float, float] | None
    name: str
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: SignalKind = "image"
    rgb: bool = False
