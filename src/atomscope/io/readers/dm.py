"""Gatan DigitalMicrograph reader (``.dm3``/``.dm4``), built on :mod:`ncempy.io.dm`.

A DM file starts with a version number (3 or 4, big-endian), the length of its tag directory
and a byte-order flag, then a tree of tags. The tree holds an ``ImageList``: usually a small RGB
thumbnail first, then one entry per image (or line plot) with its data type, dimensions, per-axis
calibration (``Scale``, ``Units``, ``Origin``) and the acquisition tags (``ImageTags``).

ncempy parses the tag tree (``fileDM.allTags``); this module then reads each image's data block
itself, after checking that the block lies inside the file, so that a truncated or damaged file
raises :class:`~atomscope.errors.CorruptFileError` instead of allocating what a broken header
claims.

Axis conventions: DM dimension 1 is x (columns), dimension 2 is y (rows) and dimension 3 the
frame axis of a stack; data are stored with x fastest, so the numpy shape is (T, H, W). A pixel
size is returned as (row, col) = (dimension 2, dimension 1) in nm, each axis converted with its
own unit. Reciprocal units ("1/nm") mark a diffraction pattern: its calibration is kept in
``metadata["reciprocal_pixel_size"]`` and ``metadata["reciprocal_unit"]`` and ``pixel_size`` is
None.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import UnsupportedFormatError
from .._signal import RawSignal, SignalKind
from ..units import is_reciprocal_unit, length_to_nm, normalise_unit
from ._common import corrupt as _corrupt
from ._common import jsonable as _jsonable

__all__ = ["read"]

# DM image data types -> numpy dtypes (little-endian). 8 and 23 are packed RGBA (B, G, R, A bytes).
_DM_DTYPES: dict[int, str] = {
    1: "<i2",
    2: "<f4",
    3: "<c8",
    6: "u1",
    7: "<i4",
    9: "i1",
    10: "<u2",
    11: "<u4",
    12: "<f8",
    13: "<c16",
    14: "u1",  # binary (bool) image
    39: "<i8",
    40: "<u8",
}
_DM_RGBA = (8, 23)
# data blocks larger than this are memory-mapped instead of read into memory
_MMAP_THRESHOLD = 64 * 1024**2
# the full tag dictionary is kept in metadata["original"] only when it is this small
_ORIGINAL_MAX_ITEMS = 2000
_ORIGINAL_MAX_CHARS = 256_000
_FILETIME_EPOCH = _dt.datetime(1601, 1, 1, tzinfo=_dt.UTC)


def _check_header(path: Path) -> int:
    """Validate the 12/16-byte DM header; return the DM version (3 or 4)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(16)
    if len(head) < 16:
        raise _corrupt(path, f"only {len(head)} bytes; a DigitalMicrograph file is longer.")
    version = struct.unpack(">I", head[:4])[0]
    if version not in (3, 4):
        raise _corrupt(
            path,
            f"not a DigitalMicrograph file (version field {version}, expected 3 or 4).",
        )
    if version == 3:
        root_len, byte_order = struct.unpack(">II", head[4:12])
        header_len = 12
    else:
        root_len, byte_order = struct.unpack(">QI", head[4:16])
        header_len = 16
    if byte_order == 0:
        raise UnsupportedFormatError(
            f"{path.name}: big-endian (Macintosh) DigitalMicrograph files are not supported; "
            "re-save the image from DigitalMicrograph on a PC."
        )
    if byte_order != 1:
        raise _corrupt(path, f"invalid byte-order flag {byte_order} in the DM{version} header.")
    if header_len + root_len > size:
        raise _corrupt(
            path,
            f"the DM{version} header announces {root_len} bytes of tags but only "
            f"{size - header_len} follow: the file is truncated.",
        )
    return version


def _parse_tags(path: Path) -> dict[str, Any]:
    from ncempy.io import dm as ncem_dm

    try:
        with ncem_dm.fileDM(path, on_memory=True) as dmf:
            return dict(dmf.allTags)
    except RecursionError as exc:
        raise _corrupt(path, "the DM tag tree nests too deeply; the file is damaged.") from exc
    except Exception as exc:  # noqa: BLE001 - ncempy raises anything on damaged tag trees
        raise _corrupt(
            path,
            f"the DM tag directory is damaged or truncated ({type(exc).__name__}: {exc}).",
        ) from exc


def _images(tags: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Tags of each ``ImageList`` entry, keyed by its 1-based index, prefix stripped."""
    out: dict[int, dict[str, Any]] = {}
    pattern = re.compile(r"^\.ImageList\.(\d+)\.(.+)$")
    for key, value in tags.items():
        m = pattern.match(key)
        if m:
            out.setdefault(int(m.group(1)), {})[m.group(2)] = value
    return out


def _thumbnail_indices(tags: dict[str, Any], images: dict[int, dict[str, Any]]) -> set[int]:
    thumbs = set()
    for key, value in tags.items():
        if re.match(r"^\.Thumbnails\.\d+\.ImageIndex$", key):
            try:
                thumbs.add(int(value) + 1)  # ImageIndex is 0-based, ImageList entries 1-based
            except (TypeError, ValueError):
                continue
    if not thumbs and images:
        first = min(images)
        t = images[first]
        if _int(t.get("ImageData.DataType")) in _DM_RGBA and "ImageData.Dimensions.3" not in t:
            thumbs.add(first)
    return thumbs


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _float(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, np.ndarray):
        return None
    text = str(value).replace("\u2028", " ").strip()
    if not text or text.startswith(("Data unread", "Array unread")):
        return None
    return text


def _dims(t: dict[str, Any]) -> list[int]:
    dims = []
    k = 1
    while f"ImageData.Dimensions.{k}" in t:
        d = _int(t[f"ImageData.Dimensions.{k}"])
        if d is None or d < 0:
            return []
        dims.append(d)
        k += 1
    return dims


def _axis_calibration(t: dict[str, Any], k: int) -> tuple[float | None, str, float | None]:
    prefix = f"ImageData.Calibrations.Dimension.{k}."
    scale = _float(t.get(prefix + "Scale"))
    unit = _text(t.get(prefix + "Units")) or ""
    origin = _float(t.get(prefix + "Origin"))
    return scale, unit, origin


def _read_block(
    path: Path, t: dict[str, Any], dtype: np.dtype, count: int, where: str
) -> np.ndarray:
    offset = _int(t.get("ImageData.Data.arrayOffset"))
    stored = _int(t.get("ImageData.Data.arraySize"))
    if offset is None or offset < 0:
        raise _corrupt(path, f"{where} has no data block.")
    nbytes = count * dtype.itemsize
    if stored is not None and stored != nbytes:
        raise _corrupt(
            path,
            f"{where}: its dimensions need {nbytes} bytes but its data block holds {stored}.",
        )
    size = path.stat().st_size
    if offset + nbytes > size:
        raise _corrupt(
            path,
            f"{where}: the data block (bytes {offset}..{offset + nbytes}) runs past the end of "
            f"the file ({size} bytes): the file is truncated.",
        )
    if count == 0:
        return np.zeros(0, dtype=dtype)
    if nbytes > _MMAP_THRESHOLD:
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(count,))
    return np.fromfile(path, dtype=dtype, count=count, offset=offset)


def _axis_kind(unit: str) -> str:
    if is_reciprocal_unit(unit):
        return "reciprocal"
    if normalise_unit(unit) is not None:
        return "length"
    low = unit.lower()
    if low.endswith("ev"):
        return "energy"
    if low in ("s", "ms", "µs", "us", "ns", "sec", "seconds", "min"):
        return "time"
    return "none"


_TIME_TO_S = {
    "s": 1.0,
    "sec": 1.0,
    "seconds": 1.0,
    "ms": 1e-3,
    "µs": 1e-6,
    "us": 1e-6,
    "ns": 1e-9,
    "min": 60.0,
}


def _filetime_to_datetime(value: Any) -> _dt.datetime | None:
    v = _float(value)
    if v is None or v <= 0:
        return None
    try:
        return _FILETIME_EPOCH + _dt.timedelta(microseconds=v / 10.0)
    except OverflowError:
        return None


def _acquisition_datetime(date: str | None, time: str | None, utc: _dt.datetime | None) -> str:
    """ISO 8601 local date-time from DM's locale-dependent DataBar strings.

    DM writes the date in the Windows locale ("3/21/2018", "21.03.2018", "03-Jul-16"). Day/month
    ambiguity is resolved with the locale-free acquisition time in UTC when the file has one
    (local time is within 14 h of UTC); otherwise month-first (DM's default) is assumed.
    """
    if not date:
        return ""
    date_formats = (
        "%m/%d/%Y",
        "%d/%m/%Y",
        "%d.%m.%Y",
        "%Y-%m-%d",
        "%d-%b-%y",
        "%d-%b-%Y",
        "%m/%d/%y",
        "%d/%m/%y",
    )
    time_formats = ("%I:%M:%S %p", "%H:%M:%S", "%I:%M %p", "%H:%M")
    candidates: list[_dt.datetime] = []
    for fmt in date_formats:
        try:
            d = _dt.datetime.strptime(date.strip(), fmt)
        except ValueError:
            continue
        if d not in candidates:
            candidates.append(d)
    if not candidates:
        return f"{date} {time}".strip() if time else date
    clock = None
    for fmt in time_formats:
        try:
            clock = _dt.datetime.strptime((time or "").strip(), fmt).time()
            break
        except ValueError:
            continue
    full = [_dt.datetime.combine(d.date(), clock or _dt.time()) for d in candidates]
    chosen = full[0]
    if utc is not None and len(full) > 1:
        naive_utc = utc.replace(tzinfo=None)
        chosen = min(full, key=lambda d: abs((d - naive_utc).total_seconds()))
    if clock is None:
        return chosen.date().isoformat()
    return chosen.isoformat()


def _first(tags: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = tags.get(key)
        if isinstance(value, str):
            if _text(value):
                return _text(value)
        elif value is not None and not isinstance(value, np.ndarray):
            return value
    return None


def _tecnai_info(path: Path, t: dict[str, Any]) -> str | None:
    """The 'Tecnai Microscope Info' text block (UTF-16 characters stored as an array)."""
    key = "ImageTags.Tecnai.Microscope Info."
    offset = _int(t.get(key + "arrayOffset"))
    nbytes = _int(t.get(key + "arraySize"))
    if offset is None or nbytes is None or nbytes <= 0 or nbytes > 1_000_000:
        return None
    if offset + nbytes > path.stat().st_size:
        return None
    chars = np.fromfile(path, dtype="<u2", count=nbytes // 2, offset=offset)
    text = "".join(chr(c) for c in chars.tolist()).replace("\u2028", "; ").strip("\x00 ")
    return text or None


def _metadata(path: Path, version: int, t: dict[str, Any]) -> dict[str, Any]:
    tags = {k[len("ImageTags.") :]: v for k, v in t.items() if k.startswith("ImageTags.")}
    md: dict[str, Any] = {"format": f"DM{version}"}

    def put(key: str, value: Any) -> None:
        value = _jsonable(value)
        if value is not None and value != "":
            md[key] = value

    put(
        "microscope",
        _first(
            tags, "Session Info.Microscope", "Microscope Info.Microscope", "Microscope Info.Name"
        ),
    )
    voltage = _float(tags.get("Microscope Info.Voltage"))
    if voltage is None or voltage <= 0:
        formatted = _text(tags.get("Microscope Info.Formatted Voltage"))
        m = re.match(r"^\s*([\d.]+)\s*(k?)V", formatted or "", re.I)
        if m:
            voltage = float(m.group(1)) * (1000.0 if m.group(2) else 1.0)
    if voltage is not None and voltage > 0:
        md["voltage"] = voltage
    for key, tag in (
        ("magnification", "Microscope Info.Indicated Magnification"),
        ("actual_magnification", "Microscope Info.Actual Magnification"),
    ):
        v = _float(tags.get(tag))
        if v is not None and v > 0:
            md[key] = v
    put("mode", _first(tags, "Microscope Info.Operation Mode"))
    put("illumination_mode", _first(tags, "Microscope Info.Illumination Mode"))
    put("imaging_mode", _first(tags, "Microscope Info.Imaging Mode"))
    put(
        "detector",
        _first(tags, "DataBar.Signal Name", "Acquisition.Device.Name", "DataBar.Device Name"),
    )
    put("operator", _first(tags, "Session Info.Operator", "Microscope Info.Operator"))
    put("specimen", _first(tags, "Session Info.Specimen", "Microscope Info.Specimen"))
    exposure = _float(
        _first(tags, "DataBar.Exposure Time (s)", "Acquisition.Parameters.High Level.Exposure (s)")
    )
    if exposure is not None and exposure > 0:
        md["exposure_time_s"] = exposure
    dwell = _float(tags.get("DigiScan.Sample Time"))
    if dwell is not None and dwell > 0:
        md["dwell_time_s"] = dwell * 1e-6  # DigiScan writes µs
    utc = _filetime_to_datetime(tags.get("DataBar.Acquisition Time (OS)"))
    date = _text(tags.get("DataBar.Acquisition Date"))
    time = _text(tags.get("DataBar.Acquisition Time"))
    if date:
        md["acquisition_date"] = _acquisition_datetime(date, time, utc)
    elif utc is not None:
        md["acquisition_date"] = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    if utc is not None:
        md["acquisition_time_utc"] = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    put("gms_version", _first(tags, "GMS Version.Created"))
    tecnai = _tecnai_info(path, t)
    if tecnai:
        md["tecnai_microscope_info"] = tecnai
    original = {
        k: _jsonable(v)
        for k, v in tags.items()
        if not k.endswith((".arrayOffset", ".arraySize", ".arrayType"))
        and not (isinstance(v, str) and v.startswith(("Data unread", "Array unread")))
    }
    original = {k: v for k, v in original.items() if v is not None}
    text = json.dumps(original, ensure_ascii=False)
    if len(original) <= _ORIGINAL_MAX_ITEMS and len(text) <= _ORIGINAL_MAX_CHARS:
        md["original"] = original
    else:
        md["original_omitted"] = f"{len(original)} DM tags ({len(text)} characters as JSON)"
    return md


def _signal(
    path: Path, version: int, index: int, t: dict[str, Any], position: int
) -> RawSignal | None:
    where = f"image {position} (ImageList entry {index})"
    dims = _dims(t)
    code = _int(t.get("ImageData.DataType"))
    if not dims or code is None or "ImageData.Data.arrayOffset" not in t:
        return None  # an entry without pixel data (e.g. an empty placeholder)
    count = math.prod(dims)
    if code in _DM_RGBA:
        raw = _read_block(path, t, np.dtype("u1"), count * 4, where)
        data = raw.reshape(*dims[::-1], 4)[..., [2, 1, 0]]  # B, G, R, A -> R, G, B
        rgb = True
    elif code in _DM_DTYPES:
        dtype = np.dtype(_DM_DTYPES[code])
        data = _read_block(path, t, dtype, count, where).reshape(dims[::-1])
        rgb = False
    else:
        raise UnsupportedFormatError(
            f"{path.name}: {where} has DM data type {code}, which atomscope cannot read."
        )

    cal = [_axis_calibration(t, k) for k in range(1, len(dims) + 1)]
    kinds = [_axis_kind(unit) for _, unit, _ in cal]
    metadata = _metadata(path, version, t)
    # per data axis (C order: slowest first), as the file writes them
    metadata["calibration"] = {
        "scale": [_jsonable(s) for s, _, _ in cal[::-1]],
        "units": [u for _, u, _ in cal[::-1]],
        "origin": [_jsonable(o) for _, _, o in cal[::-1]],
    }

    kind: SignalKind = "image"
    pixel_size: tuple[float, float] | None = None
    real_dims = [d for d in dims if d > 1]
    if not rgb and (len(dims) == 1 or len(real_dims) <= 1):
        kind = "spectrum"
        data = data.reshape(-1)
    else:
        if any(k == "energy" for k in kinds):
            kind = "other"
            metadata["note"] = "spectrum image or line scan (an axis is in eV), not an image"
        elif len(dims) >= 4:
            kind = "other"
            metadata["note"] = f"{len(dims)}-D dataset (e.g. 4D-STEM)"
        (sx, ux, _), (sy, uy, _) = cal[0], cal[1]
        if kinds[0] == "reciprocal" and kinds[1] == "reciprocal":
            if kind == "image":
                kind = "diffraction"
            if sx and sy:
                metadata["reciprocal_pixel_size"] = [abs(sy), abs(sx)]
                metadata["reciprocal_unit"] = uy or ux
        else:
            row = length_to_nm(abs(sy), uy) if sy else None
            col = length_to_nm(abs(sx), ux) if sx else None
            if row is not None and col is not None:
                pixel_size = (row, col)
        if len(dims) == 3 and kinds[2] == "time":
            st, ut, _ = cal[2]
            if st and st > 0:
                metadata["frame_interval_s"] = st * _TIME_TO_S.get(ut.lower(), 1.0)

    # a one-frame stack (1, H, W) is an image
    while kind in ("image", "diffraction") and data.ndim > (3 if rgb else 2) and data.shape[0] == 1:
        data = data[0]
    name = _text(t.get("Name")) or f"image{position}"
    return RawSignal(
        data=data, pixel_size=pixel_size, name=name, metadata=metadata, kind=kind, rgb=rgb
    )


def read(path: str | Path) -> list[RawSignal]:
    """Read every image, stack and line plot of a DM3/DM4 file.

    Parameters
    ----------
    path : str or Path
        The ``.dm3`` or ``.dm4`` file.

    Returns
    -------
    list of RawSignal
        One signal per ``ImageList`` entry except the thumbnail: images (H, W), stacks (T, H, W)
        with frames first, 1-D plots as ``kind="spectrum"``, diffraction patterns (reciprocal
        units) as ``kind="diffraction"``. Data keep the file's dtype; ``pixel_size`` is (row, col)
        in nm or None. Names are the images' DM names, else ``"image0"``, ``"image1"`` …

    Raises
    ------
    CorruptFileError
        Not a DM file, or a truncated/damaged one.
    UnsupportedFormatError
        Big-endian files and unknown pixel data types.
    """
    path = Path(path)
    version = _check_header(path)
    tags = _parse_tags(path)
    images = _images(tags)
    thumbs = _thumbnail_indices(tags, images)
    keep = [i for i in sorted(images) if i not in thumbs] or sorted(images)
    signals: list[RawSignal] = []
    for index in keep:
        sig = _signal(path, version, index, images[index], len(signals))
        if sig is not None:
            signals.append(sig)
    if not signals:
        raise _corrupt(path, "the DM tag directory lists no image data.")
    seen: dict[str, int] = {}
    for sig in signals:
        n = seen.get(sig.name, 0)
        seen[sig.name] = n + 1
        if n:
            sig.name = f"{sig.name}_{n + 1}"
    return signals
