"""FEI/Thermo Fisher TIA reader (``.emi`` + ``.ser``).

TIA writes one ``.emi`` file (display settings and an XML ``<ObjectInfo>`` block of microscope
metadata) plus one series file per signal, ``<stem>_1.ser``, ``<stem>_2.ser`` … (for example the
BF and DF images of one STEM acquisition). Opening the ``.emi`` returns every series next to it;
opening a ``.ser`` returns that series, with the metadata of the matching ``.emi`` (the stem
without its ``_N`` suffix) when it is present.

The ``.ser`` layout follows the description used by ncempy (:mod:`ncempy.io.ser`, whose MIT
licensed I/O module documents it): a little-endian header (byte order 0x4949, series id 0x0197,
version 0x0210 with 32-bit or 0x0220 with 64-bit offsets, data type 0x4120 for 1-D or 0x4122 for
2-D elements, tag type, total and valid element counts, offset of the offset arrays, series
dimensions), then per element a calibration (offset, delta in metres, reference element for x and
y), a data-type code, the array size and the pixels. This module parses it with explicit bounds
checks, so a truncated or damaged file raises :class:`~atomscope.errors.CorruptFileError`
instead of allocating what a broken header claims. As in ncempy, image rows are flipped so that
row 0 is the top of the image as TIA displays it.

A series of N images is a stack (N, H, W), frames first. Signal names ("HAADF", "BF", "DF4",
"CCD" …) come from the display names stored in the ``.emi``; without one they are "ser1",
"ser2" …
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO, Any

import numpy as np

from ...errors import CorruptFileError, MissingFileError
from .._signal import RawSignal, SignalKind
from ..units import length_to_nm
from ._common import corrupt as _corrupt

__all__ = ["read"]

_SER_DTYPES: dict[int, str] = {
    1: "u1",
    2: "<u2",
    3: "<u4",
    4: "i1",
    5: "<i2",
    6: "<i4",
    7: "<f4",
    8: "<f8",
    9: "<c8",
    10: "<c16",
}
# series version -> struct format of file offsets (32-bit before TIA 4.7.3, 64-bit after)
_VERSIONS = {0x0210: "<i", 0x0220: "<q"}
_DATA_1D, _DATA_2D = 0x4120, 0x4122
_TAG_TIME, _TAG_TIME_POS = 0x4152, 0x4142
_MAX_XML = 4 * 1024**2
_ACQUIRE_WORDS = (
    "Acquire",
    "Preview",
    "Search",
    "Focus",
    "Record",
    "Exposure",
    "View",
    "Spectrum",
    "Scanning",
    "CCD",
)


class _Reader:
    """Bounded reads from an open file: every read checks that it stays inside the file."""

    def __init__(self, path: Path, fh: IO[bytes]) -> None:
        self.path = path
        self.fh = fh
        self.size = path.stat().st_size

    def bytes(self, offset: int, n: int, what: str) -> bytes:
        if offset < 0 or n < 0 or offset + n > self.size:
            raise _corrupt(
                self.path,
                f"{what} (bytes {offset}..{offset + n}) lies outside the file "
                f"({self.size} bytes): the file is truncated or damaged.",
            )
        self.fh.seek(offset)
        return self.fh.read(n)

    def unpack(self, fmt: str, offset: int, what: str) -> tuple[Any, ...]:
        return struct.unpack(fmt, self.bytes(offset, struct.calcsize(fmt), what))


# -- .ser ------------------------------------------------------------------------------------
def _read_ser(path: Path) -> dict[str, Any]:
    """Header, calibration and pixel data of one series file."""
    with path.open("rb") as fh:
        r = _Reader(path, fh)
        if r.size < 30:
            raise _corrupt(path, f"only {r.size} bytes; a TIA series file is longer.")
        byte_order, series_id, version = r.unpack("<3H", 0, "header")
        if byte_order != 0x4949 or series_id != 0x0197:
            raise _corrupt(path, "not a TIA series (.ser) file (wrong magic number).")
        if version not in _VERSIONS:
            raise _corrupt(path, f"unknown TIA series version {version:#06x}.")
        off_fmt = _VERSIONS[version]
        data_type_id, tag_type_id, total, valid = r.unpack("<4i", 6, "header")
        if data_type_id not in (_DATA_1D, _DATA_2D):
            raise _corrupt(path, f"unknown TIA data type id {data_type_id:#06x}.")
        if tag_type_id not in (_TAG_TIME, _TAG_TIME_POS):
            raise _corrupt(path, f"unknown TIA tag type id {tag_type_id:#06x}.")
        if total < 0 or valid < 0 or valid > total:
            raise _corrupt(path, f"invalid element counts (total {total}, valid {valid}).")
        if valid == 0:
            raise _corrupt(path, "the series holds no data element (acquisition stopped early?).")
        pos = 22
        (offset_array,) = r.unpack(off_fmt, pos, "header")
        pos += struct.calcsize(off_fmt)
        (n_dims,) = r.unpack("<i", pos, "header")
        pos += 4
        if not 0 <= n_dims <= 8:
            raise _corrupt(path, f"implausible number of series dimensions ({n_dims}).")
        dims = []
        for k in range(n_dims):
            size, cal_offset, cal_delta, cal_element, desc_len = r.unpack(
                "<iddii", pos, f"series dimension {k}"
            )
            pos += 28
            if not 0 <= desc_len <= 65536:
                raise _corrupt(path, f"series dimension {k} has a damaged description.")
            desc = r.bytes(pos, desc_len, "dimension description").decode("latin-1")
            pos += desc_len
            (unit_len,) = r.unpack("<i", pos, "dimension units")
            pos += 4
            if not 0 <= unit_len <= 65536:
                raise _corrupt(path, f"series dimension {k} has damaged units.")
            unit = r.bytes(pos, unit_len, "dimension units").decode("latin-1")
            pos += unit_len
            dims.append(
                {
                    "size": size,
                    "offset": cal_offset,
                    "delta": cal_delta,
                    "element": cal_element,
                    "description": desc,
                    "units": unit,
                }
            )

        isz = struct.calcsize(off_fmt)
        raw = r.bytes(offset_array, 2 * total * isz, "offset arrays")
        np_fmt = "<i4" if isz == 4 else "<i8"
        offsets = np.frombuffer(raw, dtype=np_fmt, count=2 * total)
        data_offsets = [int(v) for v in offsets[:valid]]
        tag_offsets = [int(v) for v in offsets[total : total + valid]]

        elements = []
        first: tuple[Any, ...] | None = None
        for i, off in enumerate(data_offsets):
            if data_type_id == _DATA_2D:
                head = r.unpack("<ddiddihii", off, f"element {i} header")
                x_off, x_delta, x_el, y_off, y_delta, y_el, code, sx, sy = head
                start = off + 50
                shape: tuple[int, ...] = (sy, sx)
                cal = {"x": (x_off, x_delta, x_el), "y": (y_off, y_delta, y_el)}
            else:
                x_off, x_delta, x_el, code, n = r.unpack("<ddihi", off, f"element {i} header")
                start = off + 26
                shape = (n,)
                cal = {"x": (x_off, x_delta, x_el)}
            if code not in _SER_DTYPES:
                raise _corrupt(path, f"element {i} has unknown data type code {code}.")
            if any(s <= 0 for s in shape):
                raise _corrupt(path, f"element {i} has an invalid size {shape}.")
            key = (code, shape)
            if first is None:
                first = key
            elif key != first:
                raise _corrupt(
                    path,
                    f"element {i} has shape {shape} / type {code} but element 0 has "
                    f"{first[1]} / type {first[0]}; TIA series elements must match.",
                )
            dtype = np.dtype(_SER_DTYPES[code])
            nbytes = math.prod(shape) * dtype.itemsize
            if start + nbytes > r.size:
                raise _corrupt(
                    path,
                    f"element {i} needs bytes {start}..{start + nbytes} but the file has only "
                    f"{r.size} bytes: the file is truncated.",
                )
            elements.append((start, cal))

        assert first is not None
        code, shape = first
        dtype = np.dtype(_SER_DTYPES[code])
        count = math.prod(shape)
        data = np.empty((valid, *shape), dtype=dtype)
        for i, (start, _) in enumerate(elements):
            block = np.frombuffer(
                r.bytes(start, count * dtype.itemsize, f"element {i}"), dtype=dtype, count=count
            ).reshape(shape)
            data[i] = block[::-1] if len(shape) == 2 else block

        times = []
        for off in tag_offsets:
            try:
                tag_id, t = r.unpack("<ii", off, "tag")
            except CorruptFileError:
                break
            if (tag_id & 0xFFFF) != tag_type_id:
                break
            times.append(t)

    return {
        "version": version,
        "data_type_id": data_type_id,
        "total": total,
        "valid": valid,
        "dims": dims,
        "data": data,
        "calibration": elements[0][1],
        "times": times,
    }


# -- .emi ------------------------------------------------------------------------------------
def _check_emi(path: Path) -> bytes:
    blob = path.read_bytes()
    if not (blob.startswith(b"JK") or b"<ObjectInfo>" in blob):
        raise _corrupt(path, "not a TIA .emi file (no TIA signature and no <ObjectInfo> block).")
    return blob


def _strings(blob: bytes) -> list[tuple[int, str]]:
    """Length-prefixed ASCII strings of an .emi file, with their positions."""
    out = []
    for m in re.finditer(rb"[\x20-\x7e]{2,}", blob):
        start = m.start()
        if start < 4:
            continue
        length = int.from_bytes(blob[start - 4 : start], "little")
        if 2 <= length <= len(m.group()):
            out.append((start, m.group()[:length].decode("ascii")))
    return out


def _display_name(text: str) -> str | None:
    """'Acquire BF Scanning Display1' -> 'BF'; 'Preview CCD Image Display' -> 'CCD'."""
    if "Display" not in text or text.startswith("Normal"):
        return None
    base = re.sub(r"\s*(Scanning|Image|Spectrum|Profile)?\s*Display\s*\d*\s*$", "", text).strip()
    words = base.split()
    if len(words) >= 2 and words[0] in _ACQUIRE_WORDS:
        words = words[1:]
    name = " ".join(words).strip()
    return name or None


def _xml_info(xml: bytes) -> dict[str, Any]:
    """Metadata from one <ObjectInfo> XML block."""
    root = ET.fromstring(xml)
    md: dict[str, Any] = {}
    experimental: dict[str, Any] = {}
    for data in root.iterfind("ExperimentalDescription/Root/Data"):
        label = (data.findtext("Label") or "").strip()
        value = (data.findtext("Value") or "").strip()
        unit = (data.findtext("Unit") or "").strip()
        if label:
            experimental[f"{label} [{unit}]" if unit else label] = _number(value)
    conditions = {
        el.tag: _number((el.text or "").strip())
        for el in root.iterfind("ExperimentalConditions/MicroscopeConditions/*")
    }
    acquire = {el.tag: _number((el.text or "").strip()) for el in root.iterfind("AcquireInfo/*")}

    voltage = conditions.get("AcceleratingVoltage")
    if not isinstance(voltage, int | float) or voltage <= 0:
        ht = experimental.get("High tension [kV]")
        voltage = ht * 1000.0 if isinstance(ht, int | float) and ht > 0 else None
    if voltage:
        md["voltage"] = float(voltage)
    microscope = experimental.get("Microscope")
    if isinstance(microscope, str) and microscope:
        md["microscope"] = re.sub(r"^Microscope\s+", "", microscope)
    mag = acquire.get("Magnification")
    if isinstance(mag, str):
        m = re.match(r"^\s*([\d.eE+-]+)", mag)
        mag = float(m.group(1)) if m else None
    if not mag:
        mag = experimental.get("Magnification [x]")
    if isinstance(mag, int | float) and mag > 0:
        md["magnification"] = float(mag)
    mode = experimental.get("Mode")
    if isinstance(mode, str) and mode.strip():
        md["mode"] = mode.strip()
    user = experimental.get("User")
    if isinstance(user, str) and user:
        md["operator"] = user
    date = (root.findtext("AcquireDate") or "").strip()
    if date:
        try:
            md["acquisition_date"] = _dt.datetime.strptime(date, "%a %b %d %H:%M:%S %Y").isoformat()
        except ValueError:
            md["acquisition_date"] = date
    camera = acquire.get("CameraNamePath")
    if isinstance(camera, str) and camera:
        md["camera"] = camera
    # DwellTimePath is the pixel dwell time of a scan, or the exposure time of a camera image
    dwell_key = "exposure_time_s" if md.get("camera") else "dwell_time_s"
    for key, tag in ((dwell_key, "DwellTimePath"), ("frame_time_s", "FrameTime")):
        v = acquire.get(tag)
        if isinstance(v, int | float) and v > 0:
            md[key] = float(v)
    manufacturer = (root.findtext("Manufacturer") or "").strip()
    if manufacturer:
        md["manufacturer"] = manufacturer
    md["original"] = {
        "MicroscopeConditions": conditions,
        "ExperimentalDescription": experimental,
        "AcquireInfo": acquire,
        "Uuid": (root.findtext("Uuid") or "").strip(),
    }
    return md


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = float(text)
        return v if math.isfinite(v) else text
    except ValueError:
        return text


def _parse_emi(blob: bytes) -> dict[int, dict[str, Any]]:
    """Per series index N: {"name": str | None, "metadata": dict, "reciprocal": bool}.

    Index 0 holds what applies to series without their own entry (the first XML block).
    """
    strings = _strings(blob)
    refs = []
    for pos, text in strings:
        m = re.search(r"_(\d+)\.ser$", text, re.I)
        if m:
            refs.append((pos, int(m.group(1))))
    names = [(pos, n) for pos, text in strings if (n := _display_name(text))]
    blocks = []
    for m in re.finditer(rb"<ObjectInfo>", blob):
        end = blob.find(b"</ObjectInfo>", m.start())
        if end < 0 or end - m.start() > _MAX_XML:
            continue
        blocks.append((m.start(), blob[m.start() : end + len(b"</ObjectInfo>")]))

    def xml_md(xml: bytes) -> dict[str, Any]:
        try:
            return _xml_info(xml)
        except Exception as exc:  # noqa: BLE001 - metadata only; the images are in the .ser
            return {"emi_warning": f"metadata XML unreadable ({type(exc).__name__}: {exc})"}

    out: dict[int, dict[str, Any]] = {
        0: {
            "name": names[0][1] if names else None,
            "metadata": xml_md(blocks[0][1]) if blocks else {},
            "reciprocal": False,
        }
    }
    bounds = [pos for pos, _ in refs] + [len(blob)]
    for k, (pos, index) in enumerate(refs):
        prev = bounds[k - 1] if k else 0
        before = [n for p, n in names if p < pos]
        after_blocks = [b for p, b in blocks if pos < p < bounds[k + 1]]
        segment = [t for p, t in strings if prev <= p < bounds[k + 1]]
        out[index] = {
            "name": before[-1] if before else None,
            "metadata": xml_md(after_blocks[0]) if after_blocks else out[0]["metadata"],
            "reciprocal": any("Reciprocal" in t for t in segment),
        }
    if not refs and names:  # .ser paths not recorded: assign display names in order
        for k, (_, n) in enumerate(names, start=1):
            out[k] = {"name": n, "metadata": out[0]["metadata"], "reciprocal": False}
    return out


# -- signals ---------------------------------------------------------------------------------
def _series_files(emi: Path) -> list[tuple[int, Path]]:
    pattern = re.compile(re.escape(emi.stem) + r"_(\d+)\.ser$", re.I)
    found = []
    for p in emi.parent.iterdir():
        m = pattern.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def _signal(ser_path: Path, index: int, emi: dict[int, dict[str, Any]] | None) -> RawSignal:
    ser = _read_ser(ser_path)
    info = (emi or {}).get(index) or (emi or {}).get(0) or {}
    metadata: dict[str, Any] = {"format": "TIA SER"}
    metadata.update({k: v for k, v in info.get("metadata", {}).items()})
    data = ser["data"]
    cal = ser["calibration"]
    kind: SignalKind = "image"
    pixel_size = None
    if ser["data_type_id"] == _DATA_2D:
        x_delta, y_delta = cal["x"][1], cal["y"][1]
        if info.get("reciprocal"):
            kind = "diffraction"
            if x_delta and y_delta:
                # TIA stores reciprocal calibrations in 1/m
                metadata["reciprocal_pixel_size"] = [abs(y_delta) * 1e-9, abs(x_delta) * 1e-9]
                metadata["reciprocal_unit"] = "1/nm"
        else:
            row = length_to_nm(abs(y_delta), "m") if y_delta else None
            col = length_to_nm(abs(x_delta), "m") if x_delta else None
            if row is not None and col is not None:
                pixel_size = (row, col)
        metadata["calibration"] = {
            "delta_m": [y_delta, x_delta],
            "offset_m": [cal["y"][0], cal["x"][0]],
        }
        if data.shape[0] == 1:
            data = data[0]
        elif len(ser["dims"]) >= 2 and ser["valid"] == math.prod(d["size"] for d in ser["dims"]):
            shape = tuple(d["size"] for d in ser["dims"][::-1])
            data = data.reshape(*shape, *data.shape[1:])
            kind = "other"
            metadata["note"] = "a scanned map of images (e.g. 4D-STEM), not a time series"
    else:
        metadata["calibration"] = {"delta": cal["x"][1], "offset": cal["x"][0]}
        if data.shape[0] == 1:
            data = data[0]
            kind = "spectrum"
        else:
            kind = "other"
            metadata["note"] = "a series of spectra (line scan or spectrum image)"
    times = ser["times"]
    if times:
        metadata["element_times_unix"] = times if len(times) <= 10_000 else times[:10_000]
    if data.ndim == 3 and kind == "image":
        # element times are whole seconds: use them only when rounding matters little
        frame_time = metadata.get("frame_time_s")
        span = times[-1] - times[0] if len(times) > 1 else 0
        if span >= 10 or (span > 0 and not frame_time):
            metadata["frame_interval_s"] = span / (len(times) - 1)
        elif frame_time:
            metadata["frame_interval_s"] = frame_time
    metadata["series_dimensions"] = [
        {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in d.items()}
        for d in ser["dims"]
    ]
    name = info.get("name") or f"ser{index}"
    metadata.setdefault("detector", info.get("metadata", {}).get("camera") or name)
    return RawSignal(data=data, pixel_size=pixel_size, name=name, metadata=metadata, kind=kind)


def read(path: str | Path) -> list[RawSignal]:
    """Read a TIA acquisition from its ``.emi`` file or one of its ``.ser`` files.

    Parameters
    ----------
    path : str or Path
        ``<stem>.emi`` (every ``<stem>_N.ser`` next to it is read) or ``<stem>_N.ser``.

    Returns
    -------
    list of RawSignal
        One signal per series file: an image (H, W) or a stack (T, H, W) in the file's dtype,
        ``pixel_size`` (row, col) in nm from the element calibration (metres in the file).
        Metadata (voltage in V, magnification, mode, acquisition date, dwell and frame time in s)
        come from the ``.emi`` XML when it is present.

    Raises
    ------
    MissingFileError
        An ``.emi`` without any ``<stem>_N.ser`` next to it.
    CorruptFileError
        Not a TIA file, or a truncated/damaged one.
    """
    path = Path(path)
    if path.suffix.lower() == ".emi":
        blob = _check_emi(path)
        series = _series_files(path)
        if not series:
            start = blob.find(b"<ObjectInfo>")
            if start < 0 or blob.find(b"</ObjectInfo>", start) < 0:
                raise _corrupt(
                    path,
                    "its metadata block (<ObjectInfo>) is missing or cut off, so the file is "
                    f"truncated or damaged, and no {path.stem}_1.ser (the images) is next to it.",
                )
            raise MissingFileError(
                f"{path.name}: the .emi file holds only metadata; its images are in "
                f"{path.stem}_1.ser (and _2.ser …), which is not next to it in {path.parent}."
            )
        emi = _parse_emi(blob)
        signals = [_signal(p, n, emi) for n, p in series]
    else:
        m = re.match(r"^(.*)_(\d+)$", path.stem)
        index = int(m.group(2)) if m else 1
        emi = None
        warning = None
        if m:
            emi_path = path.with_name(m.group(1) + ".emi")
            if not emi_path.exists():
                emi_path = path.with_name(m.group(1) + ".EMI")
            if emi_path.exists():
                try:
                    emi = _parse_emi(_check_emi(emi_path))
                except Exception as exc:  # noqa: BLE001 - metadata is optional for a .ser
                    warning = f"{emi_path.name} unreadable ({type(exc).__name__}: {exc})"
        signals = [_signal(path, index, emi)]
        if warning:
            signals[0].metadata["emi_warning"] = warning
    seen: dict[str, int] = {}
    for sig in signals:
        n = seen.get(sig.name, 0)
        seen[sig.name] = n + 1
        if n:
            sig.name = f"{sig.name}_{n + 1}"
    return signals
