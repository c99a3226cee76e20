"""EMD reader (``.emd``): Thermo Fisher Velox files and Berkeley/NCEM EMD 1.0 files, via h5py.

Both flavours are HDF5 files with different layouts:

**Velox** (Thermo Fisher). Every image signal is a group ``/Data/Image/<uuid>`` with

* ``Data``: shape (H, W, T), frames last (reordered here to (T, H, W); T = 1 is dropped);
  DPC results are a compound (``realFloat``, ``imagFloat``) dataset, returned as complex64
  with ``kind="other"``;
* ``Metadata``: a uint8 array (N, T) whose columns are UTF-8 JSON documents, one per frame:
  ``BinaryResult.PixelSize`` (``width``/``height`` with ``PixelUnitX``/``PixelUnitY``),
  ``BinaryResult.Detector``, ``Optics.AccelerationVoltage`` (V), the scan's ``FrameTime`` and
  ``DwellTime`` (s), the camera's ``ExposureTime`` and per-frame ``TimeStamp`` (µs),
  ``Acquisition.AcquisitionStartDatetime`` (Unix time) …

Signals are named by their detector ("HAADF", "DF2", "DF4", "BF", "BM-Ceta"); the segment
images of a DPC acquisition take the names of the Velox operations that made them ("DF4-A",
"A-C", "DPC", "iDPC", "filtered iDPC").

**Berkeley EMD 1.0** (NCEM, also written by Prismatic and py4DSTEM): any group with the attribute
``emd_group_type == 1`` holds a data set (``data``, or the one non-``dim`` data set such as
Prismatic's ``realslice``) and one vector ``dim1`` … ``dimN`` per axis with ``name`` and
``units`` attributes. The calibration of an axis is the spacing of its vector; units such as
"n_m" or "[n_m]" are nanometres, "[]" or none mean uncalibrated. In a 3-D data set whose two
length axes are not the first two (Prismatic's (x, y, detector-angle) output), the other axis is
moved first and treated as the frame axis.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import UnsupportedFormatError
from .._signal import RawSignal, SignalKind
from ..units import NM_PER_UNIT, is_reciprocal_unit, length_to_nm, normalise_unit
from ._common import corrupt as _corrupt
from ._common import jsonable as _jsonable

__all__ = ["read"]

# uncompressed contiguous data larger than this are memory-mapped instead of read
_MMAP_THRESHOLD = 64 * 1024**2
_ORIGINAL_MAX_CHARS = 256_000
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _text(value: Any) -> str:
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value).strip()


def _float(value: Any) -> float | None:
    try:
        v = float(_text(value) if isinstance(value, bytes | np.bytes_ | str) else value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _check_hdf5(path: Path) -> None:
    import h5py

    with path.open("rb") as fh:
        head = fh.read(8)
    # the superblock is at 0 or after a user block of 512, 1024, 2048 … bytes
    if head != _HDF5_SIGNATURE and not h5py.is_hdf5(path):
        raise _corrupt(path, "not an HDF5 file (EMD files are HDF5); it is damaged or mislabelled.")


def _dataset_array(path: Path, ds: Any) -> np.ndarray:
    """The whole data set: memory-mapped when large, contiguous and uncompressed."""
    nbytes = ds.size * ds.dtype.itemsize
    if (
        nbytes > _MMAP_THRESHOLD
        and ds.chunks is None
        and ds.compression is None
        and ds.dtype.kind in "biufc"
    ):
        offset = ds.id.get_offset()
        if offset is not None and offset + nbytes <= path.stat().st_size:
            return np.memmap(path, dtype=ds.dtype, mode="r", offset=offset, shape=ds.shape)
    if nbytes > _physical_memory():
        raise UnsupportedFormatError(
            f"{path.name}: {ds.name} holds {nbytes / 1e9:.1f} GB of chunked or compressed data, "
            "more than this computer's memory; atomscope cannot read it in one piece."
        )
    return ds[()]


def _physical_memory() -> int:
    """Physical memory in bytes (16 GiB when unknown)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return 16 * 1024**3


def _reciprocal_per_nm(value: float, unit: str) -> tuple[float, str]:
    """A reciprocal calibration in 1/nm when its length unit is known, else as given."""
    base = re.sub(r"^1\s*/\s*|\s*\^?-1$|⁻¹$", "", unit.strip())
    canon = normalise_unit(base)
    if canon is None:
        return value, unit
    return value / NM_PER_UNIT[canon], "1/nm"


# -- Velox -----------------------------------------------------------------------------------
def _json_dataset(f: Any, name: str) -> Any:
    try:
        raw = f[name][0]
        return json.loads(_text(raw))
    except Exception:  # noqa: BLE001 - optional, free-form metadata
        return None


def _velox_metadata_columns(group: Any) -> list[dict[str, Any]]:
    if "Metadata" not in group:
        return []
    arr = np.asarray(group["Metadata"][()])
    if arr.ndim == 1:
        arr = arr[:, None]
    out = []
    for col in range(arr.shape[1]):
        raw = arr[:, col].tobytes().split(b"\x00", 1)[0]
        try:
            doc = json.loads(raw.decode("utf-8", "replace"))
        except ValueError:
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out


def _velox_operations(f: Any) -> tuple[dict[str, str], dict[str, int]]:
    """Names that Velox operations give to data sets, and the order Velox lists them in."""
    if "Operations" not in f:
        return {}, {}
    ops: dict[str, tuple[str, dict[str, Any]]] = {}
    for kind, grp in f["Operations"].items():
        if not hasattr(grp, "items"):
            continue
        for uid in grp:
            doc = _json_dataset(grp, uid)
            if isinstance(doc, dict):
                ops[f"/Operations/{kind}/{uid}"] = (kind, doc)
    inputs: dict[str, list[tuple[int, str]]] = {}
    for op_path, (_, doc) in ops.items():
        outputs = doc.get("outputs")
        if not isinstance(outputs, list):
            continue
        for out in outputs:
            if isinstance(out, dict) and out.get("operation"):
                try:
                    idx = int(out.get("inputIndex", 0))
                except (TypeError, ValueError):
                    idx = 0
                inputs.setdefault(out["operation"], []).append((idx, op_path))

    names: dict[str, str] = {}
    produced: dict[str, str] = {}
    for op_path, (kind, doc) in ops.items():
        data_path = doc.get("dataPath") or ""
        if kind == "StemInputOperation" and doc.get("detector"):
            produced[op_path] = str(doc["detector"])
        elif kind == "CameraInputOperation" and doc.get("cameraName"):
            produced[op_path] = str(doc["cameraName"])
            continue
        elif kind == "DpcOperation":
            produced[op_path] = "DPC"
        elif kind == "SurfaceReconstructionOperation":
            filtered = str(doc.get("enableFilter", "")).lower() == "true"
            produced[op_path] = "filtered iDPC" if filtered else "iDPC"
            if doc.get("unfilteredDataPath"):
                names[doc["unfilteredDataPath"]] = "iDPC"
        if data_path and op_path in produced:
            names[data_path] = produced[op_path]
    symbols = {"Subtraction": "-", "Addition": "+", "Multiplication": "*", "Division": "/"}
    for op_path, (kind, doc) in ops.items():
        if kind != "MathematicsOperation" or not doc.get("dataPath"):
            continue
        args = [produced.get(p) for _, p in sorted(inputs.get(op_path, []))]
        if len(args) != 2 or not all(args):
            continue
        a, b = str(args[0]), str(args[1])
        if "-" in a and "-" in b and a.split("-", 1)[0] == b.split("-", 1)[0]:
            a, b = a.split("-", 1)[1], b.split("-", 1)[1]  # "DF4-A", "DF4-C" -> "A", "C"
        mode = str(doc.get("mathematicsMode", ""))
        sym = symbols.get(mode)
        names[doc["dataPath"]] = f"{a}{sym}{b}" if sym else f"{mode}({a}, {b})"

    order: dict[str, int] = {}
    listing = _json_dataset(f, "Operations/Operations")
    entries = listing.get("operations", []) if isinstance(listing, dict) else []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        for op_path in entry.values():
            doc = ops.get(op_path, ("", {}))[1]
            for key in ("dataPath", "unfilteredDataPath"):
                if doc.get(key) and doc[key] not in order:
                    order[doc[key]] = len(order)
    return names, order


def _unix_iso(value: Any) -> str | None:
    v = _float(value)
    if v is None or v <= 0:
        return None
    try:
        return _dt.datetime.fromtimestamp(v, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return None


def _get(doc: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _velox_signal_metadata(
    columns: list[dict[str, Any]], n_frames: int
) -> tuple[dict[str, Any], tuple[float, float] | None, dict[str, Any]]:
    """(metadata, pixel size in nm or None, reciprocal calibration) from the JSON documents."""
    md: dict[str, Any] = {}
    if not columns:
        return md, None, {}
    doc = columns[0]
    binary = doc.get("BinaryResult") if isinstance(doc.get("BinaryResult"), dict) else {}
    instrument = doc.get("Instrument") if isinstance(doc.get("Instrument"), dict) else {}
    optics = doc.get("Optics") if isinstance(doc.get("Optics"), dict) else {}
    scan = doc.get("Scan") if isinstance(doc.get("Scan"), dict) else {}
    custom = doc.get("CustomProperties") if isinstance(doc.get("CustomProperties"), dict) else {}

    model = _text(instrument.get("InstrumentModel"))
    if model:
        md["microscope"] = model
    if _text(instrument.get("InstrumentId")):
        md["instrument_id"] = _text(instrument.get("InstrumentId"))
    voltage = _float(optics.get("AccelerationVoltage"))
    if voltage and voltage > 0:
        md["voltage"] = voltage
    mag = None
    stem_mag = custom.get("StemMagnification")
    if isinstance(stem_mag, dict) and _text(stem_mag.get("type")) != "bool":
        mag = _float(stem_mag.get("value"))
    if not mag:
        mag = _float(optics.get("NominalMagnification"))
    if mag and mag > 0:
        md["magnification"] = mag
    mode = {"1": "TEM", "2": "STEM"}.get(_text(optics.get("OperatingMode")))
    if mode:
        sub = _text(optics.get("TemOperatingSubMode"))
        md["mode"] = f"{mode} {sub}" if mode == "TEM" and sub and sub != "None" else mode
    cl = _float(optics.get("CameraLength"))
    if cl and cl > 0:
        md["camera_length_m"] = cl
    detector = _text(binary.get("Detector"))
    if detector:
        md["detector"] = detector
    date = _unix_iso(_get(doc, "Acquisition", "AcquisitionStartDatetime", "DateTime"))
    if date:
        md["acquisition_date"] = date
    dwell = _float(scan.get("DwellTime"))
    if dwell and dwell > 0:
        md["dwell_time_s"] = dwell
    frame_time = _float(scan.get("FrameTime"))
    if frame_time and frame_time > 0:
        md["frame_time_s"] = frame_time
    # the detector entry of this signal (camera exposure time)
    detectors = doc.get("Detectors") if isinstance(doc.get("Detectors"), dict) else {}
    det_doc = detectors.get(f"Detector-{_text(binary.get('DetectorIndex'))}")
    if not isinstance(det_doc, dict) or _text(det_doc.get("DetectorName")) != detector:
        det_doc = next(
            (
                d
                for d in detectors.values()
                if isinstance(d, dict) and _text(d.get("DetectorName")) == detector
            ),
            None,
        )
    exposure = _float(det_doc.get("ExposureTime")) if isinstance(det_doc, dict) else None
    if exposure and exposure > 0 and _text(det_doc.get("DetectorType")) == "ImagingDetector":
        md["exposure_time_s"] = exposure

    if n_frames > 1:
        stamps = []
        for col in columns:
            props = col.get("CustomProperties") if isinstance(col, dict) else None
            if not isinstance(props, dict):
                continue
            entry = props.get(f"Detectors[{detector}].TimeStamp")
            value = _float(entry.get("value")) if isinstance(entry, dict) else None
            if value is not None:
                stamps.append(value)
        if len(stamps) > 1 and stamps[-1] > stamps[0]:
            md["frame_interval_s"] = (stamps[-1] - stamps[0]) / (len(stamps) - 1) * 1e-6
        elif "frame_time_s" in md:
            md["frame_interval_s"] = md["frame_time_s"]
        elif "exposure_time_s" in md:
            md["frame_interval_s"] = md["exposure_time_s"]

    size = binary.get("PixelSize") if isinstance(binary.get("PixelSize"), dict) else {}
    width, height = _float(size.get("width")), _float(size.get("height"))
    ux, uy = _text(binary.get("PixelUnitX")), _text(binary.get("PixelUnitY"))
    pixel_size = None
    reciprocal: dict[str, Any] = {}
    if width and height:
        if is_reciprocal_unit(ux) and is_reciprocal_unit(uy):
            ry, unit = _reciprocal_per_nm(abs(height), uy)
            rx, _ = _reciprocal_per_nm(abs(width), ux)
            reciprocal = {"reciprocal_pixel_size": [ry, rx], "reciprocal_unit": unit}
        else:
            row, col = length_to_nm(abs(height), uy), length_to_nm(abs(width), ux)
            if row is not None and col is not None:
                pixel_size = (row, col)
        md["calibration"] = {"pixel_size": [height, width], "units": [uy, ux]}
    text = json.dumps(doc)
    if len(text) <= _ORIGINAL_MAX_CHARS:
        md["original"] = doc
    return md, pixel_size, reciprocal


def _read_velox(path: Path, f: Any) -> list[RawSignal]:
    data_group = f["Data"]
    if "Image" not in data_group or not len(data_group["Image"]):
        present = ", ".join(sorted(data_group)) or "nothing"
        raise UnsupportedFormatError(
            f"{path.name}: this Velox file holds no image (its /Data group has: {present}); "
            "atomscope reads the images of Velox EMD files, not spectra."
        )
    names, order = _velox_operations(f)
    version = _json_dataset(f, "Version")
    groups = list(data_group["Image"].items())
    groups.sort(key=lambda kv: order.get(f"/Data/Image/{kv[0]}", len(order)))
    signals: list[RawSignal] = []
    for uid, group in groups:
        if not hasattr(group, "keys") or "Data" not in group:
            continue
        ds = group["Data"]
        columns = _velox_metadata_columns(group)
        raw = _dataset_array(path, ds)
        kind: SignalKind = "image"
        note = None
        if raw.dtype.names and {"realFloat", "imagFloat"} <= set(raw.dtype.names):
            data = (raw["realFloat"] + 1j * raw["imagFloat"]).astype(np.complex64)
            kind = "other"
            note = "complex (DPC vector) image; take .real/.imag or abs() to analyse it"
        elif raw.dtype.kind not in "biufc":
            raise UnsupportedFormatError(
                f"{path.name}: image {uid} has a data type ({raw.dtype}) atomscope cannot read."
            )
        else:
            data = raw
            if data.dtype.kind == "c":
                kind = "other"
                note = "complex image; take .real/.imag or abs() to analyse it"
        if data.ndim == 3:
            data = data[..., 0] if data.shape[2] == 1 else np.moveaxis(data, 2, 0)
        elif data.ndim > 3:
            kind = "other"
            note = f"{data.ndim}-D Velox data set"
        n_frames = data.shape[0] if data.ndim == 3 else 1
        md, pixel_size, reciprocal = _velox_signal_metadata(columns, n_frames)
        if reciprocal:
            md.update(reciprocal)
            if kind == "image":
                kind = "diffraction"
        metadata: dict[str, Any] = {"format": "Velox EMD"}
        if isinstance(version, dict) and version.get("version"):
            metadata["velox_file_version"] = _text(version.get("version"))
        metadata.update(md)
        metadata["uuid"] = uid
        if note:
            metadata["note"] = note
        name = names.get(f"/Data/Image/{uid}") or md.get("detector") or f"image{len(signals)}"
        signals.append(
            RawSignal(
                data=data, pixel_size=pixel_size, name=str(name), metadata=metadata, kind=kind
            )
        )
    return signals


# -- Berkeley EMD 1.0 ------------------------------------------------------------------------
def _emd_groups(f: Any) -> list[Any]:
    import h5py

    found: list[Any] = []

    def visit(_name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group) and "emd_group_type" in obj.attrs:
            try:
                if int(_text(obj.attrs["emd_group_type"]) or -1) == 1:
                    found.append(obj)
            except (TypeError, ValueError):
                return

    f.visititems(visit)
    return found


def _attrs(obj: Any) -> dict[str, Any]:
    out = {}
    for key, value in obj.attrs.items():
        v = _jsonable(value)
        if v is not None and v != "":
            out[str(key)] = v
    return out


def _tree(group: Any, depth: int = 0) -> dict[str, Any]:
    """Attributes of a metadata group and its sub-groups (small JSON-friendly dict)."""
    import h5py

    out: dict[str, Any] = _attrs(group)
    if depth < 4:
        for key, item in group.items():
            if isinstance(item, h5py.Group):
                sub = _tree(item, depth + 1)
                if sub:
                    out[str(key)] = sub
            elif isinstance(item, h5py.Dataset) and item.size <= 16:
                out[str(key)] = _jsonable(item[()])
    return out


def _berkeley_metadata(f: Any) -> dict[str, Any]:
    import h5py

    md: dict[str, Any] = {"format": "Berkeley EMD"}
    version = [_text(f.attrs.get(k)) for k in ("version_major", "version_minor")]
    if all(version):
        md["emd_version"] = ".".join(version)
    original: dict[str, Any] = {}
    for key in ("microscope", "sample", "user", "stage", "comments", "simulation"):
        if key in f and isinstance(f[key], h5py.Group):
            tree = _tree(f[key])
            if tree:
                original[key] = tree
    micro = original.get("microscope", {})
    name = _text(micro.get("name"))
    if name:
        md["microscope"] = name
    for key in ("high tension", "voltage", "accelerating voltage", "high_tension"):
        v = _float(micro.get(key))
        if v and v > 0:
            md["voltage"] = v if v >= 1000 else v * 1000.0  # kV values are < 1000
            break
    mag = _float(micro.get("magnification"))
    if mag and mag > 0:
        md["magnification"] = mag
    user = original.get("user", {})
    operator = _text(user.get("User name")) or _text(user.get("name"))
    if operator:
        md["operator"] = operator
    sample = original.get("sample", {})
    specimen = (
        _text(sample.get("sample name"))
        or _text(sample.get("name"))
        or _text(sample.get("material"))
    )
    if specimen:
        md["specimen"] = specimen
    if original and len(json.dumps(original)) <= _ORIGINAL_MAX_CHARS:
        md["original"] = original
    return md


def _prismatic_parameters(group: Any) -> dict[str, Any] | None:
    """Simulation parameters of a Prismatic/py4DSTEM file (``metadata_0/original/...``)."""
    root = group.file
    for path in (
        "4DSTEM_simulation/metadata/metadata_0/original/simulation_parameters",
        "metadata/metadata_0/original/simulation_parameters",
    ):
        if path in root:
            return _attrs(root[path])
    return None


def _axis(group: Any, k: int, n: int) -> dict[str, Any]:
    info: dict[str, Any] = {"name": "", "units": "", "spacing": None}
    dim = group.get(f"dim{k + 1}")
    if dim is None or not hasattr(dim, "shape"):
        return info
    info["name"] = _text(dim.attrs.get("name"))
    info["units"] = _text(dim.attrs.get("units"))
    if dim.ndim == 1 and dim.shape[0] >= 2:
        v = np.asarray(dim[:2], dtype=np.float64)
        spacing = float(v[1] - v[0])
        if math.isfinite(spacing) and spacing != 0:
            info["spacing"] = abs(spacing)
    if dim.ndim == 1 and dim.shape[0] != n:
        info["note"] = f"dim{k + 1} has {dim.shape[0]} values for an axis of {n}"
    return info


def _axis_kind(info: dict[str, Any]) -> str:
    unit = info["units"]
    if info["spacing"] is None:
        return "none"
    if is_reciprocal_unit(unit.strip("[]")):
        return "reciprocal"
    if normalise_unit(unit) is not None:
        return "length"
    return "none"


def _data_dataset(group: Any) -> Any:
    import h5py

    if "data" in group and isinstance(group["data"], h5py.Dataset):
        return group["data"]
    candidates = [
        item
        for key, item in group.items()
        if isinstance(item, h5py.Dataset) and not re.fullmatch(r"dim\d+", key) and item.ndim >= 1
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda d: d.size)


def _read_berkeley(path: Path, f: Any, groups: list[Any]) -> list[RawSignal]:
    base_md = _berkeley_metadata(f)
    signals: list[RawSignal] = []
    for group in groups:
        ds = _data_dataset(group)
        if ds is None:
            continue
        if ds.dtype.kind not in "biufc":
            raise UnsupportedFormatError(
                f"{path.name}: {group.name} holds data of type {ds.dtype}, not numbers."
            )
        axes = [_axis(group, k, n) for k, n in enumerate(ds.shape)]
        kinds = [_axis_kind(a) for a in axes]
        data = _dataset_array(path, ds)
        metadata = dict(base_md)
        metadata["emd_group"] = group.name
        metadata["axes"] = [
            {"name": a["name"], "units": a["units"], "spacing": a["spacing"]} for a in axes
        ]
        params = _prismatic_parameters(group)
        if params:
            metadata["simulation_parameters"] = params
            energy = _float(params.get("E"))
            if energy and energy > 0 and "voltage" not in metadata:
                metadata["voltage"] = energy * 1000.0  # Prismatic's E is in keV
            metadata["simulated"] = True
        kind: SignalKind = "image"
        spatial: list[int] = []
        if data.ndim == 1:
            kind = "spectrum"
        elif data.ndim == 2:
            spatial = [0, 1]
        elif data.ndim == 3:
            for wanted in ("length", "reciprocal"):
                hits = [i for i, k in enumerate(kinds) if k == wanted]
                if len(hits) == 2:
                    spatial = hits
                    break
            if not spatial:
                spatial = [1, 2]
            frame_axis = next(i for i in range(3) if i not in spatial)
            if frame_axis != 0:
                data = np.moveaxis(data, frame_axis, 0)
                metadata["frame_axis_moved_from"] = frame_axis
            frame = axes[frame_axis]
            metadata["frame_axis"] = {
                "name": frame["name"],
                "units": frame["units"],
                "spacing": frame["spacing"],
            }
            if frame["spacing"] and frame["units"].strip("[]") in ("s", "sec", "seconds"):
                metadata["frame_interval_s"] = frame["spacing"]
        else:
            kind = "other"
            metadata["note"] = f"{data.ndim}-D data set (e.g. a 4D-STEM datacube)"
        pixel_size = None
        if len(spatial) == 2:
            a_row, a_col = axes[spatial[0]], axes[spatial[1]]
            k_row, k_col = kinds[spatial[0]], kinds[spatial[1]]
            if k_row == k_col == "length":
                row = length_to_nm(a_row["spacing"], a_row["units"])
                col = length_to_nm(a_col["spacing"], a_col["units"])
                if row is not None and col is not None:
                    pixel_size = (row, col)
            elif k_row == k_col == "reciprocal":
                ry, unit = _reciprocal_per_nm(a_row["spacing"], a_row["units"].strip("[]"))
                rx, _ = _reciprocal_per_nm(a_col["spacing"], a_col["units"].strip("[]"))
                metadata["reciprocal_pixel_size"] = [ry, rx]
                metadata["reciprocal_unit"] = unit
                kind = "diffraction"
        if data.ndim == 3 and data.shape[0] == 1 and kind in ("image", "diffraction"):
            data = data[0]  # a one-frame stack is an image
        if data.dtype.kind == "c" and kind in ("image", "diffraction"):
            kind = "other"
            metadata["note"] = "complex data; take .real/.imag or abs() to analyse it"
        name = group.name.rstrip("/").rsplit("/", 1)[-1] or f"image{len(signals)}"
        signals.append(
            RawSignal(data=data, pixel_size=pixel_size, name=name, metadata=metadata, kind=kind)
        )
    return signals


def read(path: str | Path) -> list[RawSignal]:
    """Read every image signal of a Velox or Berkeley EMD file.

    Parameters
    ----------
    path : str or Path
        The ``.emd`` file.

    Returns
    -------
    list of RawSignal
        Data in the file's dtype (Velox DPC vector images as complex64, ``kind="other"``),
        frames first; ``pixel_size`` (row, col) in nm or None. Metadata: voltage (V),
        magnification, detector, acquisition date, dwell/frame/exposure times and the frame
        interval in s where the file has them.

    Raises
    ------
    CorruptFileError
        Not an HDF5 file, a truncated one, or an HDF5 file with neither EMD layout.
    UnsupportedFormatError
        A Velox file without images (spectra only) or data that are not numbers.
    """
    import h5py

    path = Path(path)
    _check_hdf5(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise _corrupt(path, f"the HDF5 structure is damaged or truncated ({exc}).") from exc
    try:
        with f:
            if "Data" in f and isinstance(f["Data"], h5py.Group):
                signals = _read_velox(path, f)
            else:
                groups = _emd_groups(f)
                if not groups:
                    raise _corrupt(
                        path,
                        "an HDF5 file, but neither a Velox EMD (/Data/Image) nor a Berkeley EMD "
                        "(groups with emd_group_type = 1).",
                    )
                signals = _read_berkeley(path, f, groups)
    except (OSError, KeyError, RuntimeError) as exc:
        raise _corrupt(path, f"the HDF5 data are damaged or unreadable ({exc}).") from exc
    if not signals:
        raise _corrupt(path, "the EMD file lists no data set.")
    seen: dict[str, int] = {}
    for sig in signals:
        n = seen.get(sig.name, 0)
        seen[sig.name] = n + 1
        if n:
            sig.name = f"{sig.name}_{n + 1}"
    return signals
