"""Helpers every format reader shares."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import CorruptFileError

__all__ = ["corrupt", "jsonable"]


def corrupt(path: Path, problem: str) -> CorruptFileError:
    """The error for a damaged file, naming the file and the problem."""
    return CorruptFileError(f"{path.name}: {problem}")


def jsonable(value: Any) -> Any:
    """Python scalars/strings/lists for numpy and h5py values; None where JSON has nothing
    (non-finite floats, arrays of more than 64 values)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, complex):
        return [value.real, value.imag]
    if isinstance(value, np.ndarray):
        if value.size > 64:
            return None
        return [jsonable(v) for v in value.ravel().tolist()]
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)
