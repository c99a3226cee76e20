"""NumPy ``.npy`` / ``.npz`` reader (uncalibrated unless an ``.npz`` holds a pixel size).

The module is called ``numpy_`` so that it never shadows NumPy itself.

``.npy``
    One array, memory-mapped (``np.load(..., mmap_mode="r")``); pickled object arrays are
    refused (``allow_pickle=False``).
``.npz``
    The main image is the only array, else the array named "image", "data", "images",
    "frames" or "stack", else the first 2-D/3-D numeric array. Every other array becomes a
    further signal named by its key. A scalar (or (row, col) pair) stored as "pixel_size_nm" or
    "pixel_size" is the pixel size in nm ("pixel_size_unit" may name another length unit); it
    applies to the signals whose frames have the main image's shape. Other scalars go to the
    metadata.

A 3-D array whose last axis has 3 or 4 entries and whose first two are at least 8 long is read
as colour (H, W, 3|4), not as a stack. Table-shaped 2-D arrays (short side under 8 and at most a
quarter of the long side, such as (141, 2) atom positions) are kind "other", never an image.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import CorruptFileError, UnsupportedFormatError
from .._signal import RawSignal
from ..units import length_to_nm
from ._common import corrupt as _corrupt
from .hdf5 import looks_like_table

__all__ = ["read", "MAIN_KEYS", "PIXEL_SIZE_KEYS"]

MAIN_KEYS: tuple[str, ...] = ("image", "data", "images", "frames", "stack")
PIXEL_SIZE_KEYS: tuple[str, ...] = ("pixel_size_nm", "pixel_size")
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


def _max_in_memory_bytes() -> int:
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return 16 * 1024**3


def _is_rgb(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3 and shape[-1] in (3, 4) and min(shape[:2]) >= 8


def _kind(arr: np.ndarray) -> str:
    if arr.dtype.kind not in "biuf":
        return "other"
    if arr.ndim == 1:
        return "spectrum"
    rgb = _is_rgb(arr.shape[-3:])
    frame = arr.shape[-3:-1] if rgb else arr.shape[-2:]
    if looks_like_table(frame):
        return "other"
    if arr.ndim in (2, 3) or (arr.ndim == 4 and rgb):
        return "image"
    return "other"


def _read_header(fh: Any, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from an .npy header (no data read)."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(fh)
        if version in ((2, 0), (3, 0)):
            return np.lib.format.read_array_header_2_0(fh)
    except (ValueError, OSError, SyntaxError, TypeError) as exc:
        raise CorruptFileError(f"{where}: the .npy header is damaged ({exc}).") from exc
    raise CorruptFileError(f"{where}: unknown .npy format version {version}.")


def _expected_bytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def _read_npy(path: Path) -> list[RawSignal]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if fh.read(6) != _NPY_MAGIC:
            raise _corrupt(path, "not a NumPy .npy file (missing the \\x93NUMPY signature).")
        fh.seek(0)
        shape, _fortran, dtype = _read_header(fh, path.name)
        header_len = fh.tell()
    if dtype.hasobject:
        raise UnsupportedFormatError(
            f"{path.name} holds Python objects, which would need unpickling; atomscope never "
            "unpickles files. Save a numeric array instead."
        )
    need = _expected_bytes(shape, dtype)
    if header_len + need > size:
        raise _corrupt(
            path,
            f"the header announces {need} bytes of {dtype} data {shape}, but only "
            f"{size - header_len} follow: the file is truncated.",
        )
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as exc:
        raise _corrupt(path, f"could not map the array ({exc}).") from exc
    kind = _kind(arr)
    rgb = kind == "image" and _is_rgb(arr.shape)
    name = "image" if kind == "image" else "array"
    return [RawSignal(arr, None, name, {}, kind, rgb)]  # type: ignore[arg-type]


def _scalar_value(arr: np.ndarray) -> Any:
    if arr.dtype.kind in "biuf":
        return arr.item()
    if arr.dtype.kind in "US":
        v = arr.item()
        return v.decode("latin-1") if isinstance(v, bytes) else v
    return None


def _pixel_size(values: dict[str, np.ndarray]) -> tuple[float, float] | None:
    unit = "nm"
    for key in ("pixel_size_unit", "pixel_size_units", "unit", "units"):
        if key in values and values[key].ndim == 0 and values[key].dtype.kind in "US":
            unit = str(_scalar_value(values[key]))
            break
    for key in PIXEL_SIZE_KEYS:
        if key not in values:
            continue
        arr = values[key]
        if arr.dtype.kind not in "iuf" or arr.size not in (1, 2):
            continue
        flat = [float(v) for v in np.ravel(arr)]
        nm = [length_to_nm(v, "nm" if key == "pixel_size_nm" else unit) for v in flat]
        if any(v is None for v in nm):
            return None
        return (nm[0], nm[-1])  # type: ignore[return-value]
    return None


def _read_npz(path: Path) -> list[RawSignal]:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head not in _ZIP_MAGICS:
        raise _corrupt(path, "not a NumPy .npz archive (no zip signature).")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _corrupt(path, f"the .npz (zip) archive is damaged or truncated ({exc}).") from exc
    limit = _max_in_memory_bytes()
    arrays: dict[str, np.ndarray] = {}
    skipped: list[str] = []
    with archive:
        members = [m for m in archive.infolist() if m.filename.endswith(".npy")]
        if not members:
            raise _corrupt(path, "the archive holds no .npy arrays.")
        total = 0
        for member in members:
            key = member.filename[: -len(".npy")]
            where = f"{path.name}::{member.filename}"
            try:
                with archive.open(member) as fh:
                    shape, fortran, dtype = _read_header(fh, where)
                    header_len = fh.tell()
                    if dtype.hasobject:
                        skipped.append(key)
                        continue
                    need = _expected_bytes(shape, dtype)
                    if header_len + need > member.file_size:
                        raise CorruptFileError(
                            f"{where}: the header announces {need} bytes but the member holds "
                            f"{member.file_size - header_len}; the archive is damaged."
                        )
                    total += need
                    if total > limit:
                        raise CorruptFileError(
                            f"{path.name}: the arrays need {total / 1e9:.1f} GB, more than this "
                            "computer's memory."
                        )
                    raw = fh.read(need)
                    if len(raw) != need:
                        raise CorruptFileError(f"{where}: the array data are truncated.")
            except CorruptFileError:
                raise
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                raise _corrupt(
                    path, f"member {member.filename} is damaged or truncated ({exc})."
                ) from exc
            arr = np.frombuffer(raw, dtype=dtype)
            if fortran:
                arr = arr.reshape(shape[::-1]).transpose()
            else:
                arr = arr.reshape(shape)
            arrays[key] = arr
    if not arrays:
        raise UnsupportedFormatError(
            f"{path.name} holds only Python-object arrays ({', '.join(skipped)}), which would "
            "need unpickling; atomscope never unpickles files."
        )
    return _npz_signals(path, arrays, skipped)


def _npz_signals(path: Path, arrays: dict[str, np.ndarray], skipped: list[str]) -> list[RawSignal]:
    metadata: dict[str, Any] = {}
    scalars = {k: a for k, a in arrays.items() if a.ndim == 0 or (k in PIXEL_SIZE_KEYS)}
    for key, arr in scalars.items():
        if arr.ndim == 0:
            value = _scalar_value(arr)
            if value is not None:
                metadata[key] = value
    candidates = {k: a for k, a in arrays.items() if k not in scalars}
    if not candidates:
        raise _corrupt(path, "the archive holds only scalars, no image array.")
    main = None
    if len(candidates) == 1:
        main = next(iter(candidates))
    else:
        for key in MAIN_KEYS:
            if key in candidates:
                main = key
                break
        if main is None:
            main = next(
                (k for k, a in candidates.items() if _kind(a) == "image" and a.ndim in (2, 3)),
                next(iter(candidates)),
            )
    pixel_size = _pixel_size(arrays)
    if skipped:
        metadata["skipped_object_arrays"] = skipped
    main_arr = candidates[main]
    main_frame = main_arr.shape[-3:-1] if _is_rgb(main_arr.shape[-3:]) else main_arr.shape[-2:]
    order = [main, *(k for k in candidates if k != main)]
    signals = []
    for key in order:
        arr = candidates[key]
        kind = _kind(arr)
        rgb = kind == "image" and _is_rgb(arr.shape[-3:])
        frame = arr.shape[-3:-1] if rgb else arr.shape[-2:]
        ps = pixel_size if kind == "image" and frame == main_frame else None
        signals.append(RawSignal(arr, ps, key, dict(metadata), kind, rgb))  # type: ignore[arg-type]
    return signals


def read(path: str | os.PathLike[str]) -> list[RawSignal]:
    """Read a ``.npy`` array or the arrays of a ``.npz`` archive.

    Parameters
    ----------
    path : path-like
        ``.npy`` or ``.npz`` file.

    Returns
    -------
    list of RawSignal
        Raw dtype data; for ``.npy`` one signal named "image" (memory-mapped); for ``.npz`` the
        main image first, then the other arrays by key. Pixel size (row, col) in nm from a
        ``pixel_size_nm``/``pixel_size`` entry, else None.

    Raises
    ------
    CorruptFileError
        Bad signature, damaged header, truncated data.
    UnsupportedFormatError
        Arrays of Python objects (would need unpickling).
    """
    path = Path(path)
    if path.suffix.lower() == ".npz":
        return _read_npz(path)
    return _read_npy(path)
