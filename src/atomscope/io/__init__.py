"""Microscope file input with calibration: :func:`load` returns a :class:`Micrograph`."""

from ._signal import RawSignal
from .load import SUPPORTED_EXTENSIONS, list_signals, load, natural_sort_key, read_signals
from .units import length_to_nm, normalise_unit, parse_length

__all__ = [
    "load",
    "read_signals",
    "list_signals",
    "RawSignal",
    "SUPPORTED_EXTENSIONS",
    "natural_sort_key",
    "length_to_nm",
    "normalise_unit",
    "parse_length",
]
