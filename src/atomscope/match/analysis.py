"""The registry-facing entry point: :func:`match_image` (one image in, a :class:`Ranking` out),
as called by ``atomscope match``, ``atomscope batch match`` and the HTML report.

A library file is loaded once per process and kept (keyed on its path, size and modification
time), so a batch over many frames reads it, and computes its descriptors, once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from .library import Library
from .ranking import Ranking, rank

__all__ = ["match_image", "load_library"]

_LOADED: dict[tuple[str, int, int], Library] = {}


def load_library(path: str | os.PathLike[str]) -> Library:
    """:meth:`Library.load`, cached per process (the cached descriptors are kept with it)."""
    p = Path(path)
    if p.is_file():
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
        if key not in _LOADED:
            _LOADED.clear()  # one library at a time: they are large
            _LOADED[key] = Library.load(p)
        return _LOADED[key]
    return Library.load(p)  # raises MissingFileError with the path


def match_image(
    image: Any,
    *,
    library: Library | str | os.PathLike[str] | None = None,
    metric: str = "ssim",
    pixel_size: float | None = None,
    region: Any = None,
    shortlist: int = 256,
    scale_tolerance: float = 0.08,
    affine: bool = True,
    background: float = 1.0,
) -> Ranking:
    """Rank the entries of a structure library against one image.

    Parameters
    ----------
    image : ndarray, Micrograph or HyperSpy-like
        One HAADF image (bright columns).
    library : Library or path
        A library from :meth:`Library.build`, or the path of its HDF5 file (required).
    metric : {"ssim", "emd", "mse", "all"}
        Metric that orders the ranking (see :func:`atomscope.match.rank`).
    pixel_size : float, optional
        nm/px, overriding the image's calibration.
    region : None, "auto" or (y0, y1, x0, x1)
        Part of the image to match; a string "y0:y1,x0:x1" is accepted too.
    shortlist : int
        Entries aligned and scored after the first pass.
    scale_tolerance : float
        Relative scale range fitted around the calibration.
    affine : bool
        Let the alignment absorb a small shear/stretch (scan drift).
    background : float
        σ (nm) of the Gaussian background removed from the image.

    Returns
    -------
    Ranking
    """
    if library is None:
        raise ParameterError(
            "matching needs a structure library: build one with `atomscope library build -o "
            "lib.h5` (or atomscope.match.Library.build) and pass library=lib.h5 "
            "(--library lib.h5 on the command line)"
        )
    lib = library if isinstance(library, Library) else load_library(library)
    return rank(
        image,
        lib,
        metric=metric,
        pixel_size=pixel_size,
        region=parse_region(region),
        shortlist=shortlist,
        scale_tolerance=scale_tolerance,
        affine=affine,
        background=background,
    )


def parse_region(region: Any) -> Any:
    """None, "auto", (y0, y1, x0, x1) or the text "y0:y1,x0:x1" (px)."""
    if not isinstance(region, str):
        return region
    text = region.replace(" ", "").lower()
    if text in ("", "none"):
        return None
    if text == "auto":
        return "auto"
    try:
        rows, cols = text.split(",")
        y0, y1 = (int(v) for v in rows.split(":"))
        x0, x1 = (int(v) for v in cols.split(":"))
    except ValueError:
        raise ParameterError(
            f"cannot read region {region!r}: write it as y0:y1,x0:x1 in pixels "
            "(e.g. 300:512,0:512) or auto"
        ) from None
    return (y0, y1, x0, x1)
