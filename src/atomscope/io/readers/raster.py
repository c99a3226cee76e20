"""PNG / JPEG / BMP / GIF reader via :mod:`imageio.v3` (always uncalibrated).

Screen formats carry no microscope calibration (a PNG's pHYs or a JPEG's DPI describe printing),
so ``pixel_size`` is always None. Greyscale images come back 2-D in their own dtype (8- or 16-bit);
RGB, RGBA and palette images come back (H, W, 3|4) with ``rgb=True`` (the loader converts them
to grey); grey + alpha keeps the grey channel. Animated GIFs are stacks (T, H, W[, 3|4]).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._signal import RawSignal
from ._common import corrupt as _corrupt

__all__ = ["read"]

_MAGICS: dict[str, tuple[bytes, ...]] = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "BMP": (b"BM",),
    "GIF": (b"GIF87a", b"GIF89a"),
}
# colour modes Pillow decodes to something other than grey/RGB(A): ask for RGB instead
_CONVERT_MODES = {"CMYK", "YCbCr", "LAB", "HSV", "PA", "La"}
_MAX_PIXELS = 1 << 31


def _sniff(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(16)
    for fmt, magics in _MAGICS.items():
        if any(head.startswith(m) for m in magics):
            return fmt
    raise _corrupt(
        path,
        f"not a PNG, JPEG, BMP or GIF image (the file starts with {head[:8]!r}).",
    )


def read(path: str | os.PathLike[str]) -> list[RawSignal]:
    """Read a PNG, JPEG, BMP or GIF image.

    Parameters
    ----------
    path : path-like
        The image file. Its content decides the format (a PNG named .jpg still reads).

    Returns
    -------
    list of RawSignal
        One uncalibrated signal named "image".

    Raises
    ------
    CorruptFileError
        Unknown signature, truncated or undecodable data, or an image too large to decode.
    """
    import imageio.v3 as iio

    path = Path(path)
    fmt = _sniff(path)
    try:
        props = iio.improps(path)
        meta: dict[str, Any] = iio.immeta(path)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on bad headers
        raise _corrupt(path, f"the {fmt} header is damaged ({type(exc).__name__}: {exc}).") from exc
    npix = int(np.prod(props.shape, dtype=np.int64))
    if npix > _MAX_PIXELS:
        raise _corrupt(path, f"the header claims an image of {props.shape} values; refusing.")
    mode = str(meta.get("mode", ""))
    kwargs: dict[str, Any] = {}
    if mode in _CONVERT_MODES:
        kwargs["mode"] = "RGBA" if mode in ("PA", "La") else "RGB"
    try:
        data = np.asarray(iio.imread(path, **kwargs))
    except Exception as exc:  # noqa: BLE001
        raise _corrupt(
            path,
            f"the {fmt} data could not be decoded ({type(exc).__name__}: {exc}); the file "
            "may be truncated.",
        ) from exc
    metadata: dict[str, Any] = {"raster_format": fmt, "colour_mode": mode}
    batch = bool(getattr(props, "is_batch", False)) and data.ndim >= 3
    spatial = data.ndim - (1 if batch else 0)
    rgb = False
    if spatial == 3:
        channels = data.shape[-1]
        if channels == 2:  # grey + alpha
            data = data[..., 0]
        elif channels == 1:
            data = data[..., 0]
        elif channels in (3, 4):
            rgb = True
        else:
            raise _corrupt(path, f"unexpected {channels}-channel image.")
    if data.ndim < 2:
        raise _corrupt(path, f"decoded to shape {data.shape}, not an image.")
    return [RawSignal(data, None, "image", metadata, "image", rgb)]
