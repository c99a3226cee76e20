"""TIFF reader (``.tif``/``.tiff``) built on :mod:`tifffile`.

Calibration is taken from the first of these that the file holds:

1. Thermo Fisher / FEI SEM and FIB metadata (tag 34680 ``FEI_SFEG`` or 34682 ``FEI_HELIOS``,
   parsed by tifffile to a dict): ``[Scan] PixelWidth``/``PixelHeight`` in metres, else the
   horizontal/vertical field width of the active beam divided by the scan resolution.
2. Gatan DigitalMicrograph exports: DM writes its calibration into private tags: 65003/65004
   hold the x/y unit strings ("µm"), 65006/65007 the origins, 65009/65010 the x/y scales per
   pixel, 65005/65008/65011 the same for a third (stack) axis, 65012-65014 long unit names
   ("micrometer"); 65027 holds the image's DM tag tree (DM3/DM4 binary tag-group layout), which
   gives the microscope metadata (voltage, magnification, acquisition date).
3. OME-TIFF ``PhysicalSizeX``/``PhysicalSizeY`` (µm unless another unit is given).
4. ImageJ: ``unit=`` in the ImageJ description, with XResolution/YResolution as pixels per unit;
   ``spacing`` and ``finterval`` describe the stack axis.
5. Plain TIFF resolution tags with a metric ResolutionUnit (centimetre; tifffile's millimetre and
   micrometre extensions). Inch or "none" is the screen/printer DPI of desktop software, not a
   microscope calibration, and leaves the image uncalibrated.
"""

from __future__ import annotations

import logging
import math
import os
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import CorruptFileError
from .._signal import RawSignal
from ..units import is_reciprocal_unit, length_to_nm, normalise_unit
from ._common import corrupt as _corrupt

__all__ = ["read"]

_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# uncompressed data larger than this is memory-mapped rather than read
_MMAP_THRESHOLD = 64 * 1024**2

# Gatan DigitalMicrograph private TIFF tags
_DM_UNIT = {"x": 65003, "y": 65004, "z": 65005}
_DM_SCALE = {"x": 65009, "y": 65010, "z": 65011}
_DM_LONG_UNIT = {"x": 65012, "y": 65013, "z": 65014}
_DM_TAG_TREE = 65027


def _max_in_memory_bytes() -> int:
    """Physical memory in bytes (16 GiB when unknown): no decoded array may claim more."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return 16 * 1024**3


def _check_magic(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(16)
    if len(head) < 8:
        raise _corrupt(path, f"only {len(head)} bytes long; a TIFF header needs at least 8.")
    if head[:4] not in _TIFF_MAGICS:
        raise _corrupt(
            path,
            f"not a TIFF file (starts with {head[:4]!r}, expected b'II*\\x00' or b'MM\\x00*').",
        )


# TIFF field types -> bytes per value
_TIFF_TYPE_SIZE = {
    1: 1,
    2: 1,
    3: 2,
    4: 4,
    5: 8,
    6: 1,
    7: 1,
    8: 2,
    9: 4,
    10: 8,
    11: 4,
    12: 8,
    13: 4,
    16: 8,
    17: 8,
    18: 8,
}
_MAX_IFDS = 1_000_000


def _check_ifd_chain(path: Path, filesize: int) -> None:
    """Walk the IFD chain and raise when an IFD, a tag value or the next-IFD pointer lies
    beyond the end of the file (a truncated file; tifffile would only log and drop the tag
    or the remaining pages)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
        bo = "<" if head[:2] == b"II" else ">"
        big = struct.unpack(bo + "H", head[2:4])[0] == 43
        if big:
            if len(head) < 16:
                raise _corrupt(path, "the BigTIFF header is truncated.")
            offset = struct.unpack(bo + "Q", head[8:16])[0]
            count_fmt, entry_size, inline, next_fmt = "Q", 20, 8, "Q"
        else:
            offset = struct.unpack(bo + "I", head[4:8])[0]
            count_fmt, entry_size, inline, next_fmt = "H", 12, 4, "I"
        count_size = struct.calcsize(count_fmt)
        next_size = struct.calcsize(next_fmt)
        seen: set[int] = set()
        while offset and offset not in seen and len(seen) < _MAX_IFDS:
            seen.add(offset)
            if offset + count_size > filesize:
                raise _corrupt(
                    path,
                    f"an image directory (IFD) starts at byte {offset}, past the end of the file "
                    f"({filesize} bytes): the file is truncated.",
                )
            fh.seek(offset)
            n = struct.unpack(bo + count_fmt, fh.read(count_size))[0]
            end = offset + count_size + n * entry_size + next_size
            if end > filesize:
                raise _corrupt(
                    path,
                    f"the image directory at byte {offset} ({n} tags) runs past the end of the "
                    f"file ({filesize} bytes): the file is truncated.",
                )
            table = fh.read(n * entry_size)
            for k in range(n):
                entry = table[k * entry_size : (k + 1) * entry_size]
                if big:
                    code, dtype, count = struct.unpack(bo + "HHQ", entry[:12])
                    value = struct.unpack(bo + "Q", entry[12:20])[0]
                else:
                    code, dtype, count = struct.unpack(bo + "HHI", entry[:8])
                    value = struct.unpack(bo + "I", entry[8:12])[0]
                size = _TIFF_TYPE_SIZE.get(dtype, 0) * count
                if size > inline and value + size > filesize:
                    raise _corrupt(
                        path,
                        f"the value of TIFF tag {code} ({size} bytes at offset {value}) lies past "
                        f"the end of the file ({filesize} bytes): the file is truncated.",
                    )
            offset = struct.unpack(bo + next_fmt, fh.read(next_size))[0]
            if offset > filesize:
                raise _corrupt(
                    path,
                    f"the next image directory would start at byte {offset}, past the end of the "
                    f"file ({filesize} bytes): the file is truncated.",
                )


# --------------------------------------------------------------------------------------------
# small value helpers


def _positive(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _jsonable(value: Any, depth: int = 0) -> Any:
    if depth > 30:
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, depth + 1) for v in value[:256]]
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 256 else f"<array {value.shape} {value.dtype}>"
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value
    return str(value)


def _tag_value(page: Any, code: int) -> Any:
    tag = page.tags.get(code)
    return None if tag is None else tag.value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("latin-1")
    return str(value).replace("\x00", "").strip()


def _decode_imagej_unit(unit: Any) -> str:
    """ImageJ writes non-ASCII units as ``\\u00B5m`` / ``\\u00C5`` escapes."""
    text = _text(unit)
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


# --------------------------------------------------------------------------------------------
# DigitalMicrograph tag tree (tag 65027)

_DM_SIMPLE = {
    2: "h",
    3: "i",
    4: "H",
    5: "I",
    6: "f",
    7: "d",
    8: "?",
    9: "b",
    10: "B",
    11: "q",
    12: "Q",
}


class _TagTreeError(Exception):
    pass


def _parse_dm_tag_tree(blob: bytes, max_entries: int = 20000) -> dict[str, Any]:
    """Parse a DM3/DM4 tag tree (header + root tag group) into a nested dict.

    Layout: version (uint32 BE, 3 or 4), root length (uint32/uint64 BE), byte order of the values
    (uint32 BE, 1 = little endian), then the root group. A group is (sorted, open: 1 byte each,
    number of tags: uint32/uint64 BE) followed by its tags; a tag is its type (20 group, 21 data),
    name length (uint16 BE), name, (DM4: uint64 byte size), then a group or "%%%%", the number of
    type-description words, the words (type first), and the value(s). Long numeric arrays are
    summarised; uint16 arrays are text. Raises ``_TagTreeError`` on any inconsistency.
    """
    buf = memoryview(blob)
    n = len(buf)
    pos = 0

    def take(k: int) -> bytes:
        nonlocal pos
        if k < 0 or pos + k > n:
            raise _TagTreeError("runs past the end of the tag block")
        out = bytes(buf[pos : pos + k])
        pos += k
        return out

    version = struct.unpack(">I", take(4))[0]
    if version not in (3, 4):
        raise _TagTreeError(f"unknown tag-tree version {version}")
    width = 8 if version == 4 else 4
    word = ">Q" if width == 8 else ">I"

    def uint() -> int:
        return struct.unpack(word, take(width))[0]

    uint()  # length of the root group
    endian = "<" if struct.unpack(">I", take(4))[0] == 1 else ">"
    count = 0

    def scalar(code: int) -> Any:
        fmt = _DM_SIMPLE.get(code)
        if fmt is None:
            raise _TagTreeError(f"unknown value type {code}")
        return struct.unpack(endian + fmt, take(struct.calcsize(fmt)))[0]

    def value(info: list[int]) -> Any:
        kind = info[0]
        if kind in _DM_SIMPLE:
            return scalar(kind)
        if kind == 18 and len(info) >= 2:  # string
            return take(info[1]).decode("latin-1")
        if kind == 15 and len(info) >= 3:  # struct: [15, name len, n fields, (name len, type)*]
            nfields = info[2]
            if len(info) < 3 + 2 * nfields:
                raise _TagTreeError("short struct description")
            return [scalar(info[4 + 2 * k]) for k in range(nfields)]
        if kind == 20 and len(info) >= 3:  # array
            element = info[1]
            if element in _DM_SIMPLE:
                length = info[2]
                fmt = _DM_SIMPLE[element]
                raw = take(length * struct.calcsize(fmt))
                if element == 4:
                    return raw.decode("utf-16-le" if endian == "<" else "utf-16-be", "replace")
                if length > 64:
                    return f"<array of {length}>"
                return list(struct.unpack(endian + fmt * length, raw))
            if element == 15 and len(info) >= 4:
                nfields = info[3]
                if len(info) < 5 + 2 * nfields:
                    raise _TagTreeError("short struct-array description")
                types = [info[5 + 2 * k] for k in range(nfields)]
                length = info[5 + 2 * nfields]
                size = 0
                for t in types:
                    if t not in _DM_SIMPLE:
                        raise _TagTreeError(f"unknown struct field type {t}")
                    size += struct.calcsize(_DM_SIMPLE[t])
                take(length * size)
                return f"<array of {length} structs>"
        raise _TagTreeError(f"unsupported value description {info[:4]}")

    def group(depth: int) -> dict[str, Any]:
        nonlocal count
        if depth > 40:
            raise _TagTreeError("tag groups nested too deep")
        take(2)
        ntags = uint()
        out: dict[str, Any] = {}
        for i in range(ntags):
            count += 1
            if count > max_entries:
                raise _TagTreeError("too many tags")
            kind = take(1)[0]
            name = take(struct.unpack(">H", take(2))[0]).decode("latin-1") or str(i)
            if version == 4:
                uint()
            if kind == 20:
                out[name] = group(depth + 1)
            elif kind == 21:
                if take(4) != b"%%%%":
                    raise _TagTreeError("missing '%%%%' data marker")
                ninfo = uint()
                if ninfo > 4096:
                    raise _TagTreeError("implausible type description")
                out[name] = value([uint() for _ in range(ninfo)])
            else:
                raise _TagTreeError(f"unknown tag kind {kind}")
        return out

    return group(0)


def _dm_tree_metadata(tree: dict[str, Any]) -> dict[str, Any]:
    md: dict[str, Any] = {}
    info = tree.get("Microscope Info")
    if isinstance(info, dict):
        volt = _positive(info.get("Voltage"))
        if volt is not None:
            md["voltage"] = volt
        mag = _positive(info.get("Indicated Magnification")) or _positive(
            info.get("Actual Magnification")
        )
        if mag is not None:
            md["magnification"] = mag
        for key in ("Name", "Microscope"):
            if isinstance(info.get(key), str) and info[key].strip():
                md["microscope"] = info[key].strip()
                break
    databar = tree.get("DataBar")
    if isinstance(databar, dict):
        if databar.get("Acquisition Date"):
            md["date"] = str(databar["Acquisition Date"])
        if databar.get("Acquisition Time"):
            md["time"] = str(databar["Acquisition Time"])
        exposure = _positive(databar.get("Exposure Time (s)"))
        if exposure is not None:
            md["exposure_time"] = exposure
    return md


# --------------------------------------------------------------------------------------------
# calibration sources; each returns (pixel_size, kind, metadata) or None when absent


def _fei_calibration(fei: dict[str, Any], shape: tuple[int, ...]) -> tuple[Any, str, dict]:
    md: dict[str, Any] = {"tiff_flavour": "fei", "fei": _jsonable(fei)}
    beam = fei.get("Beam") if isinstance(fei.get("Beam"), dict) else {}
    beam_name = _text(beam.get("Beam")) if beam else ""
    beam_sec = fei.get(beam_name) if isinstance(fei.get(beam_name), dict) else {}
    scan_name = _text(beam.get("Scan")) if beam else ""
    image = fei.get("Image") if isinstance(fei.get("Image"), dict) else {}

    volt = _positive(beam.get("HV")) or _positive(beam_sec.get("HV"))
    if volt is None:
        for sec in ("EBeam", "IBeam"):
            if isinstance(fei.get(sec), dict):
                volt = _positive(fei[sec].get("HV"))
                if volt is not None:
                    break
    if volt is not None:
        md["voltage"] = volt
    user = fei.get("User") if isinstance(fei.get("User"), dict) else {}
    if user.get("Date"):
        md["date"] = _text(user["Date"])
    if user.get("Time"):
        md["time"] = _text(user["Time"])
    system = fei.get("System") if isinstance(fei.get("System"), dict) else {}
    if system.get("SystemType"):
        md["microscope"] = _text(system["SystemType"])
    detectors = fei.get("Detectors") if isinstance(fei.get("Detectors"), dict) else {}
    if detectors.get("Name"):
        md["detector"] = _text(detectors["Name"])
    res_y = _positive(image.get("ResolutionY"))
    if res_y is not None and len(shape) >= 2 and shape[-2] > res_y:
        md["databar_rows"] = int(shape[-2] - res_y)  # FEI appends a data bar below the image

    pixel_size = None
    for name in ("Scan", scan_name, "EScan", "IScan"):
        sec = fei.get(name) if name else None
        if isinstance(sec, dict):
            pw, ph = _positive(sec.get("PixelWidth")), _positive(sec.get("PixelHeight"))
            if pw is not None:
                pixel_size = ((ph or pw) * 1e9, pw * 1e9)
                md["calibration_source"] = f"FEI [{name}] PixelWidth/PixelHeight"
                break
    if pixel_size is None and beam_sec:
        hfw, vfw = _positive(beam_sec.get("HFW")), _positive(beam_sec.get("VFW"))
        res_x = _positive(image.get("ResolutionX"))
        if hfw is not None and res_x is not None:
            col = hfw / res_x * 1e9
            row = vfw / res_y * 1e9 if vfw is not None and res_y is not None else col
            pixel_size = (row, col)
            md["calibration_source"] = f"FEI [{beam_name}] HFW/VFW over [Image] resolution"
    return pixel_size, "image", md


def _dm_calibration(page: Any) -> tuple[Any, str, dict] | None:
    if page.tags.get(_DM_SCALE["x"]) is None or page.tags.get(_DM_SCALE["y"]) is None:
        return None
    md: dict[str, Any] = {"tiff_flavour": "digitalmicrograph"}
    scale: dict[str, float | None] = {}
    unit: dict[str, str] = {}
    for ax in ("x", "y", "z"):
        scale[ax] = _positive(_tag_value(page, _DM_SCALE[ax]))
        short = _text(_tag_value(page, _DM_UNIT[ax]))
        long = _text(_tag_value(page, _DM_LONG_UNIT[ax]))
        unit[ax] = short if normalise_unit(short) or is_reciprocal_unit(short) else long or short
    blob = _tag_value(page, _DM_TAG_TREE)
    if isinstance(blob, bytes | bytearray) and len(blob) >= 16:
        try:
            tree = _parse_dm_tag_tree(bytes(blob))
        except (_TagTreeError, struct.error, UnicodeDecodeError):
            tree = {}
        if tree:
            md.update(_dm_tree_metadata(tree))
            md["dm_tags"] = _jsonable(tree)
    if scale["z"] is not None and unit["z"]:
        if unit["z"].lower() in ("s", "sec", "second", "seconds"):
            md["frame_interval"] = scale["z"]
        else:
            md["frame_spacing"] = scale["z"]
            md["frame_spacing_unit"] = unit["z"]
    sx, sy = scale["x"], scale["y"]
    if sx is None or sy is None:
        return None, "image", md
    if is_reciprocal_unit(unit["x"]) and is_reciprocal_unit(unit["y"]):
        md["reciprocal_pixel_size"] = [sy, sx]
        md["reciprocal_units"] = unit["x"]
        return None, "diffraction", md
    row, col = length_to_nm(sy, unit["y"]), length_to_nm(sx, unit["x"])
    if row is None or col is None:
        if not (sx == 1.0 and sy == 1.0):
            md["uncalibrated_scale"] = [sy, sx]
        return None, "image", md
    md["original_units"] = unit["x"]
    return (row, col), "image", md


def _ome_calibration(ome_xml: str) -> tuple[Any, str, dict] | None:
    try:
        root = ET.fromstring(ome_xml)
    except ET.ParseError:
        return None
    pixels = next((el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None
    md: dict[str, Any] = {"tiff_flavour": "ome"}
    px, py = _positive(pixels.get("PhysicalSizeX")), _positive(pixels.get("PhysicalSizeY"))
    if px is None:
        return None, "image", md
    ux = pixels.get("PhysicalSizeXUnit", "µm")
    uy = pixels.get("PhysicalSizeYUnit", ux)
    col = length_to_nm(px, ux)
    row = length_to_nm(py, uy) if py is not None else col
    if col is None or row is None:
        return None, "image", md
    md["original_units"] = ux
    return (row, col), "image", md


def _imagej_calibration(page: Any, ij: dict[str, Any]) -> tuple[Any, str, dict]:
    md: dict[str, Any] = {"tiff_flavour": "imagej"}
    unit = _decode_imagej_unit(ij.get("unit"))
    yunit = _decode_imagej_unit(ij.get("yunit")) or unit
    finterval = _positive(ij.get("finterval"))
    if finterval is not None:
        md["frame_interval"] = finterval
    spacing = _positive(ij.get("spacing"))
    if spacing is not None:
        md["frame_spacing"] = spacing
        md["frame_spacing_unit"] = _decode_imagej_unit(ij.get("zunit")) or unit or "pixel"
    xres = _rational(_tag_value(page, 282))
    yres = _rational(_tag_value(page, 283)) or xres
    if not unit or xres is None:
        return None, "image", md
    if is_reciprocal_unit(unit):
        md["reciprocal_pixel_size"] = [1.0 / yres, 1.0 / xres]
        md["reciprocal_units"] = unit
        return None, "diffraction", md
    col, row = length_to_nm(1.0 / xres, unit), length_to_nm(1.0 / yres, yunit)
    if col is None or row is None:
        return None, "image", md
    md["original_units"] = unit
    return (row, col), "image", md


def _rational(value: Any) -> float | None:
    if isinstance(value, tuple | list) and len(value) == 2:
        num, den = value
        if not den:
            return None
        return _positive(num / den)
    return _positive(value)


_RESUNIT_NM = {3: 1e7, 4: 1e6, 5: 1e3}  # centimetre, millimetre, micrometre (tifffile extension)


def _resolution_calibration(page: Any) -> tuple[Any, str, dict] | None:
    xres = _rational(_tag_value(page, 282))
    if xres is None:
        return None
    yres = _rational(_tag_value(page, 283)) or xres
    unit = _tag_value(page, 296)
    code = int(unit) if unit is not None else 2
    nm = _RESUNIT_NM.get(code)
    if nm is None:
        return None, "image", {"tiff_resolution_dpi": [yres, xres]} if code == 2 else {}
    return (nm / yres, nm / xres), "image", {"calibration_source": "TIFF resolution tags"}


# --------------------------------------------------------------------------------------------
# data


def _check_extent(path: Path, series: Any, filesize: int) -> None:
    """Raise when the data the series points at lie beyond the end of the file."""
    nbytes = int(np.prod(series.shape, dtype=np.int64)) * np.dtype(series.dtype).itemsize
    offset = series.dataoffset
    if offset is not None:
        if offset + nbytes > filesize:
            raise _corrupt(
                path,
                f"the image data ({nbytes} bytes at offset {offset}) run past the end of the "
                f"file ({filesize} bytes): the file is truncated.",
            )
        return
    if nbytes > _max_in_memory_bytes():
        raise _corrupt(
            path,
            f"the header claims {nbytes / 1e9:.1f} GB of image data, more than this computer's "
            "memory; the file is corrupt.",
        )
    for page in series.pages:
        if page is None:
            continue
        offsets = getattr(page, "dataoffsets", ()) or ()
        counts = getattr(page, "databytecounts", ()) or ()
        end = max((o + c for o, c in zip(offsets, counts, strict=False) if c), default=0)
        if end > filesize:
            raise _corrupt(
                path,
                f"image strips/tiles end at byte {end}, past the end of the file "
                f"({filesize} bytes): the file is truncated.",
            )


def _read_series(path: Path, tf: Any, index: int, filesize: int) -> np.ndarray:
    import tifffile

    series = tf.series[index]
    _check_extent(path, series, filesize)
    nbytes = int(np.prod(series.shape, dtype=np.int64)) * np.dtype(series.dtype).itemsize
    if series.dataoffset is not None and nbytes >= _MMAP_THRESHOLD:
        try:
            return tifffile.memmap(str(path), series=index, mode="r")
        except (ValueError, OSError):
            pass
    return series.asarray()


def _arrange(data: np.ndarray, axes: str, photometric: int | None) -> tuple[np.ndarray, bool, str]:
    """Frames first, colour last: returns (data, rgb, original axes)."""
    original = axes
    rgb = False
    if "S" in axes:
        s = axes.index("S")
        n = data.shape[s]
        if n == 1:
            data = np.take(data, 0, axis=s)
            axes = axes.replace("S", "")
        elif n in (3, 4) and photometric in (2, 6, None) and s >= len(axes) - 3:
            data = np.moveaxis(data, s, -1)
            axes = axes.replace("S", "") + "S"
            rgb = True
        else:  # extra samples that are not colour: treat them as frames
            data = np.moveaxis(data, s, 0)
            axes = "S" + axes.replace("S", "")
    spatial = data.ndim - (1 if rgb else 0)
    if spatial > 3:
        lead = int(np.prod(data.shape[: spatial - 2]))
        data = data.reshape((lead, *data.shape[spatial - 2 :]))
    return data, rgb, original


def read(path: str | os.PathLike[str]) -> list[RawSignal]:
    """Read a TIFF file (plain, ImageJ, DigitalMicrograph, FEI/Thermo, OME).

    Parameters
    ----------
    path : path-like
        The ``.tif``/``.tiff`` file.

    Returns
    -------
    list of RawSignal
        One signal per image series, named "image" (further series "image_1" …). Data keep
        the file's dtype, frames first (T, H, W); colour images have ``rgb=True``. Pixel size
        (row, col) in nm, or None when the file holds no length calibration.

    Raises
    ------
    CorruptFileError
        If the file is not a TIFF, or is truncated or damaged.
    """
    import tifffile

    path = Path(path)
    _check_magic(path)
    with _quiet_tifffile():
        return _read(path, tifffile)


class _quiet_tifffile:  # noqa: N801 - used as a context manager
    """Drop tifffile's log records (it logs, rather than raises, on many damaged files)."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("tifffile")
        self._filter = lambda record: False
        self._logger.addFilter(self._filter)

    def __exit__(self, *exc: object) -> None:
        self._logger.removeFilter(self._filter)


def _read(path: Path, tifffile: Any) -> list[RawSignal]:
    filesize = path.stat().st_size
    _check_ifd_chain(path, filesize)
    try:
        tf = tifffile.TiffFile(str(path))
    except (tifffile.TiffFileError, ValueError, struct.error, OSError, IndexError) as exc:
        raise _corrupt(path, f"the TIFF structure is damaged ({exc}).") from exc
    signals: list[RawSignal] = []
    with tf:
        try:
            series_list = list(tf.series)
        except Exception as exc:  # noqa: BLE001 - tifffile raises many types on bad IFDs
            raise _corrupt(path, f"the TIFF structure is damaged ({exc}).") from exc
        if not series_list:
            raise _corrupt(path, "the TIFF holds no image.")
        for index, series in enumerate(series_list):
            page = getattr(series, "keyframe", None)  # a TiffPage (with tags) for the series
            if page is None or not hasattr(page, "tags"):
                page = tf.pages.first
            if index > 0 and int(getattr(page, "subfiletype", 0) or 0) & 1:
                continue  # reduced-resolution thumbnail
            try:
                data = _read_series(path, tf, index, filesize)
            except CorruptFileError:
                raise
            except MemoryError as exc:
                raise _corrupt(path, "the image is larger than the available memory.") from exc
            except Exception as exc:  # noqa: BLE001 - decoders raise anything on bad bytes
                raise _corrupt(
                    path, f"could not decode the image data ({type(exc).__name__}: {exc})."
                ) from exc
            photometric = getattr(page, "photometric", None)
            data, rgb, axes = _arrange(
                data, series.axes, int(photometric) if photometric is not None else None
            )
            pixel_size, kind, md = _calibrate(tf, page, data.shape[:-1] if rgb else data.shape)
            md["tiff_axes"] = axes
            if photometric is not None and int(photometric) == 3:
                md["palette_indices"] = True
            name = "image" if not signals else f"image_{len(signals)}"
            signals.append(RawSignal(data, pixel_size, name, md, kind, rgb))
    return signals


def _calibrate(tf: Any, page: Any, shape: tuple[int, ...]) -> tuple[Any, str, dict[str, Any]]:
    fei = None
    try:
        fei = tf.fei_metadata
    except Exception:  # noqa: BLE001 - malformed FEI text: treat as absent
        fei = None
    if isinstance(fei, dict) and fei:
        return _fei_calibration(fei, shape)
    dm = _dm_calibration(page)
    if dm is not None:
        return dm
    if getattr(tf, "is_ome", False):
        try:
            ome = _ome_calibration(tf.ome_metadata or "")
        except Exception:  # noqa: BLE001
            ome = None
        if ome is not None:
            return ome
    ij = None
    try:
        ij = tf.imagej_metadata
    except Exception:  # noqa: BLE001
        ij = None
    if isinstance(ij, dict):
        return _imagej_calibration(page, ij)
    res = _resolution_calibration(page)
    if res is not None:
        ps, kind, md = res
        return ps, kind, {"tiff_flavour": "plain", **md}
    return None, "image", {"tiff_flavour": "plain"}
