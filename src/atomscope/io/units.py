"""Length units as microscope files spell them, normalised to nm.

Files write metres ("m"), nanometres ("nm", and once "n_m"), ångström ("A", "Å", "Ang",
"angstrom"), micrometres ("µm", "um", "micron") and picometres ("pm"). "A" is a length here, never
an ampere. Reciprocal units ("1/nm") are not lengths: they mark diffraction patterns.
"""

from __future__ import annotations

import math
import re

from ..errors import CalibrationError

__all__ = ["NM_PER_UNIT", "normalise_unit", "length_to_nm", "parse_length", "is_reciprocal_unit"]

NM_PER_UNIT: dict[str, float] = {
    "m": 1e9,
    "cm": 1e7,
    "mm": 1e6,
    "um": 1e3,
    "nm": 1.0,
    "A": 0.1,
    "pm": 1e-3,
}

_ALIASES: dict[str, str] = {
    "meter": "m",
    "meters": "m",
    "metre": "m",
    "metres": "m",
    "centimeter": "cm",
    "centimeters": "cm",
    "centimetre": "cm",
    "centimetres": "cm",
    "millimeter": "mm",
    "millimeters": "mm",
    "millimetre": "mm",
    "millimetres": "mm",
    "µm": "um",
    "μm": "um",
    "micron": "um",
    "microns": "um",
    "micrometer": "um",
    "micrometers": "um",
    "micrometre": "um",
    "micrometres": "um",
    "u": "um",
    "µ": "um",
    "nanometer": "nm",
    "nanometers": "nm",
    "nanometre": "nm",
    "nanometres": "nm",
    "a": "A",
    "å": "A",
    "\u00c5": "A",
    "\u212b": "A",
    "ang": "A",
    "angs": "A",
    "angstrom": "A",
    "angstroms": "A",
    "ångström": "A",
    "ångstrom": "A",
    "picometer": "pm",
    "picometers": "pm",
    "picometre": "pm",
    "picometres": "pm",
}


def normalise_unit(unit: object) -> str | None:
    """Canonical spelling of a length unit ("m", "cm", "mm", "um", "nm", "A", "pm") or None.

    Bytes are decoded; brackets, underscores and spaces are dropped ("[n_m]" -> "nm").
    Unknown or empty strings give None.
    """
    if unit is None:
        return None
    if isinstance(unit, bytes | bytearray):
        unit = unit.decode("utf-8", "replace")
    text = str(unit).strip().strip("[]()").replace("_", "").replace(" ", "")
    if not text:
        return None
    if text in NM_PER_UNIT:
        return text
    if text in _ALIASES:
        return _ALIASES[text]
    low = text.lower()
    if low in NM_PER_UNIT and low != "a":
        return low
    return _ALIASES.get(low)


def is_reciprocal_unit(unit: object) -> bool:
    """True for units such as "1/nm", "nm^-1" or "1/Å" (diffraction-space calibrations)."""
    if unit is None:
        return False
    if isinstance(unit, bytes | bytearray):
        unit = unit.decode("utf-8", "replace")
    text = str(unit).replace(" ", "")
    return text.startswith("1/") or bool(re.search(r"\^-1$|-1$|⁻¹$", text))


def length_to_nm(value: float, unit: object) -> float | None:
    """Convert a calibration *value* in *unit* to nm.

    Returns None when the unit is unknown, missing or reciprocal, or when the value is not a
    positive finite number (files use 0, 1 or -1 to mean "uncalibrated").
    """
    canon = normalise_unit(unit)
    if canon is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(v) and v > 0):
        return None
    return v * NM_PER_UNIT[canon]


_LENGTH_RE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\d\s].*)?$")


def parse_length(text: str | float, default_unit: str = "nm") -> float:
    """Parse "0.39nm", "3.9 Å", "390pm" or a bare number (in *default_unit*) to nm.

    Raises
    ------
    CalibrationError
        If the text is not a positive length.
    """
    if isinstance(text, int | float):
        value, unit = float(text), default_unit
    else:
        m = _LENGTH_RE.match(str(text))
        if not m:
            raise CalibrationError(f"Cannot read {text!r} as a length (e.g. '0.39nm', '3.9A').")
        value = float(m.group(1))
        unit = (m.group(2) or default_unit).strip()
        if unit.endswith("/px") or unit.endswith("/pixel"):
            unit = unit.rsplit("/", 1)[0]
    nm = length_to_nm(value, unit)
    if nm is None:
        raise CalibrationError(
            f"Cannot read {text!r} as a positive length; known units: m, mm, um/µm, nm, A/Å, pm."
        )
    return nm
