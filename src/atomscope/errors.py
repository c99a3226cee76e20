"""The exceptions atomscope raises, each with a message a microscopist can act on.

Every error the package raises on purpose derives from :class:`AtomscopeError`, so a caller (or the
CLI) can catch one class and show the message without a traceback.
"""

from __future__ import annotations

__all__ = [
    "AtomscopeError",
    "FileFormatError",
    "MissingFileError",
    "UnsupportedFormatError",
    "CorruptFileError",
    "InvalidImageError",
    "CalibrationError",
    "SignalNotFoundError",
    "ParameterError",
    "DependencyError",
]


class AtomscopeError(Exception):
    """Base class of every error raised on purpose by atomscope."""


class FileFormatError(AtomscopeError, OSError):
    """A file could not be read as a microscope image."""


class MissingFileError(FileFormatError, FileNotFoundError):
    """The path does not exist."""


class UnsupportedFormatError(FileFormatError):
    """The file extension (or content) is not a format atomscope reads."""


class CorruptFileError(FileFormatError):
    """The file has a known format but is truncated or damaged."""


class InvalidImageError(AtomscopeError, ValueError):
    """The data are not a usable image: wrong dimensions, empty, NaN/Inf values …"""


class CalibrationError(AtomscopeError, ValueError):
    """A pixel size is needed but missing, or a calibration is malformed."""


class SignalNotFoundError(AtomscopeError, KeyError):
    """A named signal (detector) is not in a multi-signal file."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ParameterError(AtomscopeError, ValueError):
    """A parameter value is outside what the analysis can use."""


class DependencyError(AtomscopeError, ImportError):
    """An optional package needed for this feature is not installed."""
