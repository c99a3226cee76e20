"""atomscope: quantitative, automatically tuned analysis of atomic-resolution electron
micrographs and in-situ movies."""

from __future__ import annotations

from typing import Any

from .errors import AtomscopeError
from .image import Micrograph, Source, as_micrograph
from .io import load

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "AtomscopeError",
    "Micrograph",
    "Source",
    "as_micrograph",
    "load",
    "find_atoms",
    "segment",
    "find_disorder",
    "match_image",
]

# analyses are imported on first use, so `import atomscope` (and the CLI) stays fast
_LAZY = {
    "find_atoms": ("atomscope.atoms", "find_atoms"),
    # the function; the subpackage is atomscope.segmentation
    "segment": ("atomscope.segmentation", "segment"),
    "find_disorder": ("atomscope.disorder", "find_disorder"),
    "match_image": ("atomscope.match", "match_image"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'atomscope' has no attribute {name!r}")
