"""atomscope: quantitative, automatically tuned analysis of atomic-resolution electron
micrographs and in-situ movies."""

from __future__ import annotations

from .errors import AtomscopeError
from .image import Micrograph, Source, as_micrograph
from .io import load

__version__ = "0.1.0"

__all__ = ["__version__", "AtomscopeError", "Micrograph", "Source", "as_micrograph", "load"]
