"""MRC reader (``.mrc``, ``.mrcs``, ``.rec``, ``.st``, ``.ali``), built on :mod:`mrcfile`.

An MRC file is a 1024-byte header (grid size ``nx, ny, nz``, data ``mode``, unit-cell size
``cella`` in ångström over ``mx, my, mz`` grid intervals, map id ``"MAP "`` and a machine stamp),
an optional extended header of ``nsymbt`` bytes, then the data with x fastest: numpy shape
(nz, ny, nx) = (T, H, W) for an image stack or movie.

The header is checked here before mrcfile touches the file, so that a header claiming more data
(or a longer extended header) than the file holds raises
:class:`~atomscope.errors.CorruptFileError` instead of allocating it. The data are then
memory-mapped with :func:`mrcfile.mmap` (``permissive=True`` for the odd headers some programs
write), so large movies are not read into memory.

Calibration: the voxel size ``cella / (mx, my, mz)`` in Å becomes (row, col) = (y, x) in nm. A
zero, negative or non-finite size means "uncalibrated", and so does exactly 1 Å with ``cella``
equal to the grid size, which is what programs write when they have no calibration.

Thermo Fisher (Velox, EPU) files with an ``FEI1``/``FEI2`` extended header add the acceleration
voltage, magnification, detector name, dwell and frame time and acquisition time to
``metadata``.
"""

from __future__ import annotations

import datetime as _dt
import math
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._signal import RawSignal, SignalKind
from ..units import length_to_nm
from ._common import corrupt as _corrupt

__all__ = ["read"]

# MRC modes -> numpy dtype (native mrcfile names them the same way)
_MODES: dict[int, str] = {
    0: "i1",
    1: "i2",
    2: "f4",
    3: "c8",
    4: "c8",
    6: "u2",
    12: "f2",
    16: "u1",
    101: "u1",
}
_HEADER_BYTES = 1024
_FEI_FIELDS = {
    # extended-header field -> (metadata key, scale)
    "HT": ("voltage", 1.0),
    "Magnification": ("magnification", 1.0),
    "Dwell time": ("dwell_time_s", 1.0),
    "Frame time": ("frame_time_s", 1.0),
    "Integration time": ("exposure_time_s", 1.0),
    "Camera length": ("camera_length_m", 1.0),
}


def _check_header(path: Path) -> tuple[int, int, int]:
    """Validate the fixed header against the file size; return the data shape (nz, ny, nx)."""
    size = path.stat().st_size
    if size < _HEADER_BYTES:
        raise _corrupt(path, f"only {size} bytes; an MRC file has a {_HEADER_BYTES}-byte header.")
    with path.open("rb") as fh:
        head = fh.read(_HEADER_BYTES)
    stamp = head[212:216]
    orders = [">"] if stamp[:2] in (b"\x11\x11", b"\x11\x10") else ["<", ">"]
    for order in orders:
        nx, ny, nz, mode = struct.unpack(order + "4i", head[:16])
        if mode in _MODES:
            break
    else:
        raise _corrupt(
            path,
            f"not an MRC file, or a damaged one: data mode {mode} is not one of {sorted(_MODES)}.",
        )
    nsymbt = struct.unpack(order + "i", head[92:96])[0]
    if min(nx, ny, nz) <= 0:
        raise _corrupt(path, f"invalid grid size nx={nx}, ny={ny}, nz={nz} in the MRC header.")
    if nsymbt < 0 or _HEADER_BYTES + nsymbt > size:
        raise _corrupt(
            path,
            f"the header announces a {nsymbt}-byte extended header but the file has only "
            f"{size - _HEADER_BYTES} bytes after the main header: truncated or damaged.",
        )
    dtype = np.dtype(_MODES[mode]).newbyteorder(order)
    count = nx * ny * nz
    if mode == 101:  # 4-bit data, two pixels per byte (rows padded to whole bytes)
        nbytes = (nx + 1) // 2 * ny * nz
    elif mode == 16:
        nbytes = count * 3
    else:
        nbytes = count * dtype.itemsize
    offset = _HEADER_BYTES + nsymbt
    if offset + nbytes > size:
        raise _corrupt(
            path,
            f"the header describes {nz} x {ny} x {nx} values of mode {mode} ({nbytes} bytes) "
            f"but only {size - offset} bytes of data follow: the file is truncated.",
        )
    return nz, ny, nx


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace").strip("\x00 ")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _ole_date(days: float) -> str | None:
    """FEI timestamps are OLE automation dates: days since 1899-12-30."""
    if not (math.isfinite(days) and 1 < days < 2_958_465):
        return None
    moment = _dt.datetime(1899, 12, 30) + _dt.timedelta(days=days)
    return moment.replace(microsecond=0).isoformat()


def _fei_metadata(mrc: Any, n_frames: int) -> dict[str, Any]:
    try:
        table = mrc.indexed_extended_header
    except Exception:  # noqa: BLE001 - only FEI1/FEI2 headers are understood
        return {}
    if table is None or not getattr(table, "dtype", None) or not table.dtype.names:
        return {}
    if table.size == 0:
        return {}
    entry = table[0]
    names = set(table.dtype.names)
    md: dict[str, Any] = {}
    for field, (key, scale) in _FEI_FIELDS.items():
        if field in names:
            v = _jsonable(entry[field])
            if isinstance(v, int | float) and v != 0:
                md[key] = float(v) * scale
    for field, key in (
        ("Microscope type", "microscope"),
        ("Application", "application"),
        ("Application version", "application_version"),
        ("D-Number", "instrument_id"),
    ):
        if field in names:
            text = _jsonable(entry[field])
            if isinstance(text, str) and text:
                md[key] = text
    mode = _jsonable(entry["Instrument mode"]) if "Instrument mode" in names else None
    stem_det = _jsonable(entry["STEM Detector name"]) if "STEM Detector name" in names else ""
    camera = _jsonable(entry["Camera name"]) if "Camera name" in names else ""
    if mode == 2:
        md["mode"] = "STEM"
        if stem_det:
            md["detector"] = stem_det
    elif mode == 1:
        md["mode"] = "TEM"
        if camera:
            md["detector"] = camera
    elif stem_det or camera:
        md["detector"] = stem_det or camera
    if "Timestamp" in names:
        date = _ole_date(float(entry["Timestamp"]))
        if date:
            md["acquisition_date"] = date
    for field in ("Pixel size X", "Pixel size Y"):
        if field in names:
            v = _jsonable(entry[field])
            if isinstance(v, float) and v > 0:
                md.setdefault("fei_pixel_size_m", []).append(v)
    if n_frames > 1 and "Timestamp" in names:
        stamps = np.asarray(table["Timestamp"][:n_frames], dtype=np.float64)
        stamps = stamps[np.isfinite(stamps) & (stamps > 1)]
        if stamps.size > 1 and stamps[-1] > stamps[0]:
            md["frame_interval_s"] = float((stamps[-1] - stamps[0]) / (stamps.size - 1) * 86400)
    return md


def read(path: str | Path) -> list[RawSignal]:
    """Read an MRC image, stack or movie.

    Parameters
    ----------
    path : str or Path
        The MRC file (``.mrc``, ``.mrcs``, ``.rec``, ``.st``, ``.ali``).

    Returns
    -------
    list of RawSignal
        One signal: (H, W) or (T, H, W) (a single section comes back as (1, H, W), which
        :func:`atomscope.load` squeezes) in the file's dtype, memory-mapped; ``pixel_size``
        (row, col) in nm or None. Named by the detector of an FEI extended header, else "image".

    Raises
    ------
    CorruptFileError
        Not an MRC file, or a header that describes more data than the file holds.
    """
    import mrcfile

    path = Path(path)
    shape = _check_header(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with mrcfile.mmap(path, mode="r", permissive=True) as mrc:
                header = mrc.header
                data = mrc.data
                fei = _fei_metadata(mrc, shape[0])
                mx, my, mz = (int(header.mx), int(header.my), int(header.mz))
                cella = (float(header.cella.x), float(header.cella.y), float(header.cella.z))
                exttyp = _jsonable(header.exttyp) or ""
                labels = [
                    _jsonable(lab) for lab in header.label[: max(0, min(int(header.nlabl), 10))]
                ]
                ispg = int(header.ispg)
                map_id = _jsonable(header.map)
        except ValueError as exc:
            raise _corrupt(path, f"the MRC header is damaged ({exc}).") from exc
    problems = sorted({str(w.message) for w in caught})
    if data is None:
        raise _corrupt(path, "mrcfile could not map the data block: " + "; ".join(problems))

    voxel = [c / m if m > 0 else 0.0 for c, m in zip(cella, (mx, my, mz), strict=True)]
    metadata: dict[str, Any] = {
        "format": "MRC",
        "mrc_voxel_size_A": [v if math.isfinite(v) else None for v in voxel],
        "mrc_grid": [mx, my, mz],
        "mrc_space_group": ispg,
    }
    if exttyp:
        metadata["mrc_extended_header_type"] = exttyp
    labels = [lab for lab in labels if isinstance(lab, str) and lab]
    if labels:
        metadata["mrc_labels"] = labels
    if not (isinstance(map_id, str) and map_id.startswith("MAP")):
        problems.append("map id 'MAP ' missing (pre-2014 MRC or another program's variant)")
    if problems:
        metadata["mrc_warnings"] = problems
    metadata.update(fei)

    vx, vy = voxel[0], voxel[1]
    default_unit_cell = (
        math.isclose(vx, 1.0)
        and math.isclose(vy, 1.0)
        and (math.isclose(cella[0], shape[2]) and math.isclose(cella[1], shape[1]))
    )
    pixel_size = None
    if default_unit_cell:
        metadata["calibration_note"] = (
            "voxel size 1 Å equal to the grid, the default of programs that write no "
            "calibration: treated as uncalibrated"
        )
    else:
        row, col = length_to_nm(vy, "A"), length_to_nm(vx, "A")
        if row is not None and col is not None:
            pixel_size = (row, col)

    kind: SignalKind = "image"
    rgb = False
    if data.dtype.kind == "c":
        kind = "other"
        metadata["note"] = "complex data (e.g. an FFT); take .real/.imag or abs() to analyse it"
    if data.dtype.names:  # mode 16: RGB triplets
        data = data.view(np.uint8).reshape(*data.shape, 3)
        rgb = True
    if data.ndim - (1 if rgb else 0) > 3:
        kind = "other"
        metadata["note"] = f"{data.ndim}-D volume stack"
    if data.ndim == 3 and data.shape[0] > 1 and not rgb and "frame_interval_s" not in metadata:
        z = voxel[2]
        if mz > 0 and z > 0 and ispg == 1:
            metadata["section_spacing_nm"] = z * 0.1
    # a single section (1, H, W) is an image: atomscope.load only picks signals whose axes are
    # all longer than 1
    while data.ndim > (3 if rgb else 2) and data.shape[0] == 1:
        data = data[0]
    name = str(metadata.get("detector") or "image")
    return [
        RawSignal(
            data=data, pixel_size=pixel_size, name=name, metadata=metadata, kind=kind, rgb=rgb
        )
    ]
