"""HyperSpy signals and HyperSpy's axis conventions, without importing HyperSpy.

:func:`from_hyperspy` turns any object with HyperSpy's ``data`` and ``axes_manager`` attributes
into a :class:`~atomscope.image.Micrograph`. The helpers below (:class:`AxisInfo`,
:func:`signal_from_axes`, :func:`hyperspy_metadata`) are shared with the ``.hspy`` and ``.zspy``
file readers, which store the same axes as groups of attributes.

HyperSpy conventions used here: ``data`` is in numpy order, navigation axes first and signal
axes last, each group in reverse of HyperSpy's natural order; ``axes_manager.signal_axes[0]``
is x (the last numpy axis, columns) and ``[1]`` is y (rows). Axis units are free text ("nm",
"µm", "1/nm" …); HyperSpy writes ``"_None_"`` or ``<undefined>`` when they are not set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidImageError
from ..image import Micrograph, Source
from ._signal import RawSignal, SignalKind
from .units import is_reciprocal_unit, length_to_nm, normalise_unit

__all__ = [
    "from_hyperspy",
    "raw_signal_from_hyperspy",
    "AxisInfo",
    "signal_from_axes",
    "hyperspy_metadata",
    "jsonable",
    "default_signal_name",
]

_UNSET = {"", "_none_", "none", "<undefined>", "undefined", "px", "pixel", "pixels", "a.u."}
_TIME_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "min": 60.0,
}


@dataclass
class AxisInfo:
    """One axis as HyperSpy describes it.

    Attributes
    ----------
    size : int or None
        Number of points.
    scale, offset : float
        Calibration per point and origin, in ``units``.
    units : str or None
        Unit text as stored, None when unset.
    name : str or None
        Axis name ("x", "y", "time" …).
    navigate : bool or None
        True for navigation axes (frames, scan positions), False for signal axes, None if unknown.
    """

    size: int | None = None
    scale: float = 1.0
    offset: float = 0.0
    units: str | None = None
    name: str | None = None
    navigate: bool | None = None

    @classmethod
    def from_mapping(cls, attrs: Mapping[str, Any]) -> AxisInfo:
        """Build from the attributes of an ``axis-i`` group of a .hspy/.zspy file."""
        return cls(
            size=_int_or_none(attrs.get("size")),
            scale=_float_or(attrs.get("scale"), 1.0),
            offset=_float_or(attrs.get("offset"), 0.0),
            units=clean_text(attrs.get("units")),
            name=clean_text(attrs.get("name")),
            navigate=_bool_or_none(attrs.get("navigate")),
        )

    @classmethod
    def from_object(cls, axis: Any, navigate: bool | None = None) -> AxisInfo:
        """Build from a HyperSpy ``DataAxis``-like object (duck-typed)."""
        return cls(
            size=_int_or_none(getattr(axis, "size", None)),
            scale=_float_or(getattr(axis, "scale", 1.0), 1.0),
            offset=_float_or(getattr(axis, "offset", 0.0), 0.0),
            units=clean_text(getattr(axis, "units", None)),
            name=clean_text(getattr(axis, "name", None)),
            navigate=navigate
            if navigate is not None
            else _bool_or_none(getattr(axis, "navigate", None)),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "scale": self.scale,
            "offset": self.offset,
            "units": self.units,
        }


# --------------------------------------------------------------------------------------------
# value cleaning


def clean_text(value: Any) -> str | None:
    """Text of an attribute, None for HyperSpy's "unset" markers."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        return clean_text(value.item())
    text = str(value).strip()
    if text.lower() in ("", "_none_", "none", "<undefined>", "undefined"):
        return None
    return text


def _float_or(value: Any, default: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _bool_or_none(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | str):
        text = clean_text(value)
        if text is None:
            return None
        return text.lower() in ("true", "1", "yes")
    try:
        return bool(value)
    except (TypeError, ValueError):
        return None


def jsonable(value: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """A JSON-friendly copy of *value* (nested dicts, lists, str, numbers, bool, None).

    Numpy scalars become Python numbers, bytes become text, arrays of more than 256 values a
    short description, HyperSpy's "_None_" None; unknown objects their ``str``. Nesting and the
    total number of entries are bounded.
    """
    if budget is None:
        budget = [20000]
    budget[0] -= 1
    if depth > 30 or budget[0] < 0:
        return None
    if hasattr(value, "as_dictionary") and callable(value.as_dictionary):
        try:
            value = value.as_dictionary()
        except Exception:  # noqa: BLE001 - foreign object: fall through to str()
            return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth + 1, budget) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, depth + 1, budget) for v in value[:1024]]
    if isinstance(value, bytes | bytearray):
        return clean_text(value)
    if isinstance(value, np.ndarray):
        if value.size <= 256:
            return jsonable(value.tolist(), depth + 1, budget)
        return f"<array shape={value.shape} dtype={value.dtype}>"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return clean_text(value) if value.strip() == "_None_" else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int):
        return value
    return str(value)


def _get(tree: Mapping[str, Any], *keys: str) -> Any:
    node: Any = tree
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def hyperspy_metadata(tree: Mapping[str, Any] | None) -> dict[str, Any]:
    """atomscope metadata from a HyperSpy ``metadata`` tree.

    The tree is kept, nested, under its own keys ("General", "Acquisition_instrument",
    "Signal" …; HyperSpy's private "_HyperSpy" branch is dropped), and the common facts are
    added as flat keys: ``title``, ``date``, ``time``, ``voltage`` (V, from ``beam_energy``
    in kV), ``magnification``, ``microscope``, ``camera_length``, ``signal_type``.
    """
    if not tree:
        return {}
    clean = jsonable(tree)
    if not isinstance(clean, dict):
        return {}
    md: dict[str, Any] = {k: v for k, v in clean.items() if k != "_HyperSpy"}
    for key in ("title", "date", "time"):
        value = _get(clean, "General", key)
        if isinstance(value, str) and value.strip():
            md[key] = value
    for inst in ("TEM", "SEM"):
        energy = _get(clean, "Acquisition_instrument", inst, "beam_energy")
        if "voltage" not in md and isinstance(energy, int | float) and energy > 0:
            md["voltage"] = float(energy) * 1e3
        for key in ("magnification", "microscope", "camera_length"):
            value = _get(clean, "Acquisition_instrument", inst, key)
            if key not in md and value not in (None, ""):
                md[key] = value
    signal_type = _get(clean, "Signal", "signal_type")
    if isinstance(signal_type, str) and signal_type:
        md["signal_type"] = signal_type
    return md


# --------------------------------------------------------------------------------------------
# axes -> RawSignal


def _units_known(units: str | None) -> bool:
    return units is not None and units.strip().lower() not in _UNSET


def _calibrate_image_axes(
    row: AxisInfo, col: AxisInfo
) -> tuple[tuple[float, float] | None, SignalKind, dict[str, Any]]:
    md: dict[str, Any] = {}
    ur, uc = row.units, col.units
    if is_reciprocal_unit(ur) or is_reciprocal_unit(uc):
        md["reciprocal_pixel_size"] = [row.scale, col.scale]
        md["reciprocal_units"] = uc or ur
        return None, "diffraction", md
    # one axis with a length unit and the other unset but equally scaled: same unit
    if normalise_unit(uc) and not _units_known(ur) and math.isclose(row.scale, col.scale):
        ur = uc
    elif normalise_unit(ur) and not _units_known(uc) and math.isclose(row.scale, col.scale):
        uc = ur
    r_nm, c_nm = length_to_nm(row.scale, ur), length_to_nm(col.scale, uc)
    if r_nm is not None and c_nm is not None:
        md["original_units"] = uc
        return (r_nm, c_nm), "image", md
    if not (row.scale == 1.0 and col.scale == 1.0):
        md["uncalibrated_scale"] = [row.scale, col.scale]
        if _units_known(uc) or _units_known(ur):
            md["uncalibrated_units"] = uc or ur
    return None, "image", md


def _signal_dims(axes: Sequence[AxisInfo], ndim: int, metadata: Mapping[str, Any]) -> int:
    flags = [a.navigate for a in axes]
    if len(flags) == ndim and all(f is not None for f in flags):
        return sum(1 for f in flags if not f)
    record_by = _get(metadata, "Signal", "record_by")
    if record_by == "spectrum":
        return min(1, ndim)
    return min(2, ndim)


def signal_from_axes(
    data: np.ndarray,
    axes: Sequence[AxisInfo | None],
    metadata: Mapping[str, Any] | None,
    name: str,
) -> RawSignal:
    """A :class:`RawSignal` from data in numpy order and one :class:`AxisInfo` per dimension.

    Parameters
    ----------
    data : ndarray
        Raw data, numpy order (navigation axes, then signal axes).
    axes : sequence of AxisInfo or None
        ``axes[i]`` describes ``data.shape[i]``; None for an undescribed axis.
    metadata : mapping or None
        HyperSpy ``metadata`` tree (see :func:`hyperspy_metadata`).
    name : str
        Signal name.

    Returns
    -------
    RawSignal
        2 signal dimensions: "image" (or "diffraction" for reciprocal units), (H, W) or frames
        first (T, H, W) for one navigation axis; more navigation axes keep their shape (the
        loader refuses them with a clear message). 1 signal dimension: "spectrum". Pixel size
        (row, col) in nm; a scale without a length unit is kept in
        ``metadata["uncalibrated_scale"]``.
    """
    tree = metadata or {}
    md = hyperspy_metadata(tree)
    axes = list(axes)[: data.ndim]
    axes += [None] * (data.ndim - len(axes))
    full = [a if a is not None else AxisInfo(size=data.shape[i]) for i, a in enumerate(axes)]
    n_sig = _signal_dims(full, data.ndim, tree)
    flags = [a.navigate for a in full]
    if len(flags) == data.ndim and all(f is not None for f in flags):
        # HyperSpy stores navigation axes first; honour the flags if a file disagrees
        order = [i for i, f in enumerate(flags) if f] + [i for i, f in enumerate(flags) if not f]
        if order != list(range(data.ndim)):
            data = np.transpose(data, order)
            full = [full[i] for i in order]
    nav, sig = full[: data.ndim - n_sig], full[data.ndim - n_sig :]
    md["hyperspy_axes"] = [{**a.describe(), "navigate": i < len(nav)} for i, a in enumerate(full)]
    if n_sig == 2:
        pixel_size, kind, extra = _calibrate_image_axes(sig[0], sig[1])
        md.update(extra)
        signal_type = str(md.get("signal_type", "")).lower()
        if kind == "image" and pixel_size is None and "diffraction" in signal_type:
            kind = "diffraction"
        if len(nav) == 1:
            frame = nav[0]
            md["frame_axis"] = frame.describe()
            factor = _TIME_UNITS.get((frame.units or "").strip().lower())
            if factor is not None and frame.scale > 0:
                md["frame_interval"] = frame.scale * factor
        return RawSignal(data, pixel_size, name, md, kind)
    if n_sig == 1:
        md["spectrum_axis"] = sig[0].describe() if sig else None
        return RawSignal(data, None, name, md, "spectrum")
    return RawSignal(data, None, name, md, "other")


def default_signal_name(kind: str) -> str:
    """Name of an untitled signal: "image", "diffraction", "spectrum" or "signal"."""
    return kind if kind in ("image", "diffraction", "spectrum") else "signal"


# --------------------------------------------------------------------------------------------
# HyperSpy objects


def raw_signal_from_hyperspy(obj: Any) -> RawSignal:
    """The :class:`RawSignal` of a HyperSpy-like signal (raw dtype, no checks on its shape).

    Parameters
    ----------
    obj : object
        Anything with ``data`` (numpy order) and ``axes_manager`` with ``signal_axes`` and
        ``navigation_axes`` (HyperSpy's natural order: x first); ``metadata.as_dictionary()``
        is used when present.

    Raises
    ------
    InvalidImageError
        When the object lacks ``data``/``axes_manager`` or they disagree on the dimensions.
    """
    try:
        data = np.asarray(obj.data)
        am = obj.axes_manager
        sig_axes = list(getattr(am, "signal_axes", ()) or ())
        nav_axes = list(getattr(am, "navigation_axes", ()) or ())
    except Exception as exc:  # noqa: BLE001 - arbitrary foreign object
        raise InvalidImageError(
            f"Cannot read {type(obj).__name__} as a HyperSpy signal: {exc}"
        ) from exc
    if not sig_axes and not nav_axes:
        raise InvalidImageError(
            f"{type(obj).__name__} has an axes_manager without signal or navigation axes."
        )
    axes = [AxisInfo.from_object(a, True) for a in reversed(nav_axes)]
    axes += [AxisInfo.from_object(a, False) for a in reversed(sig_axes)]
    if len(axes) != data.ndim:
        raise InvalidImageError(
            f"{type(obj).__name__}: data have {data.ndim} dimensions {tuple(data.shape)} but the "
            f"axes_manager describes {len(axes)} axes."
        )
    for i, (axis, size) in enumerate(zip(axes, data.shape, strict=True)):
        if axis.size is not None and axis.size != size:
            raise InvalidImageError(
                f"{type(obj).__name__}: numpy axis {i} has {size} points but its HyperSpy axis "
                f"{axis.name or '(unnamed)'} has {axis.size}; data must be in numpy order "
                "(navigation axes, then y, then x)."
            )
    tree: Any = None
    md_obj = getattr(obj, "metadata", None)
    if md_obj is not None:
        if hasattr(md_obj, "as_dictionary") and callable(md_obj.as_dictionary):
            try:
                tree = md_obj.as_dictionary()
            except Exception:  # noqa: BLE001
                tree = None
        elif isinstance(md_obj, Mapping):
            tree = md_obj
    tree = jsonable(tree) if tree else {}
    title = _get(tree, "General", "title") if isinstance(tree, Mapping) else None
    name = title if isinstance(title, str) and title.strip() else ""
    sig = signal_from_axes(data, axes, tree if isinstance(tree, Mapping) else {}, name)
    if not sig.name:
        sig.name = default_signal_name(sig.kind)
    return sig


def from_hyperspy(obj: Any) -> Micrograph:
    """Convert a HyperSpy ``Signal2D`` (or any object that looks like one) to a Micrograph.

    Parameters
    ----------
    obj : object
        A HyperSpy signal, or any object with ``data`` and ``axes_manager`` (HyperSpy itself is
        never imported). Two signal axes and no navigation axis give one image (H, W); one
        navigation axis gives a stack (T, H, W).

    Returns
    -------
    Micrograph
        float32 data, ``pixel_size`` (row, col) in nm from the signal axes' scale and units
        (``signal_axes[0]`` is x = columns, ``[1]`` is y = rows), or None when the axes carry no
        length unit; metadata from ``obj.metadata``; ``source.format == "hyperspy"``.

    Raises
    ------
    InvalidImageError
        For 1-D signals (spectra), signals with more than two signal dimensions, signals with
        two or more navigation dimensions (4D-STEM, spectrum images), or non-finite values.
    """
    sig = raw_signal_from_hyperspy(obj)
    n_nav = sig.data.ndim - 2
    if sig.kind == "spectrum":
        raise InvalidImageError(
            f"The HyperSpy signal {sig.name!r} is one-dimensional (a spectrum or line profile, "
            f"data shape {tuple(sig.data.shape)}); atomscope needs a Signal2D image."
        )
    if sig.kind == "other":
        raise InvalidImageError(
            f"The HyperSpy signal {sig.name!r} has {sig.data.ndim} signal dimensions (data shape "
            f"{tuple(sig.data.shape)}); atomscope needs a Signal2D image or image stack."
        )
    if n_nav > 1:
        raise InvalidImageError(
            f"The HyperSpy signal {sig.name!r} has {n_nav} navigation dimensions (data shape "
            f"{tuple(sig.data.shape)}, e.g. 4D-STEM); atomscope needs one image or a stack with "
            "one navigation axis. Slice it first, e.g. s.inav[0, 0]."
        )
    metadata = dict(sig.metadata)
    metadata.setdefault("signal", sig.name)
    if sig.kind == "diffraction":
        metadata.setdefault("kind", "diffraction")
    titled = sig.name not in ("image", "diffraction")
    source = Source(None, None, sig.name if titled else None, "hyperspy")
    return Micrograph(sig.data, sig.pixel_size, metadata, source)
