"""Atom-column finding: detectors, physics rewards, Bayesian tuning, sub-pixel refinement."""

from .detectors import DETECTORS, get_detector, register_detector
from .finder import find_atoms
from .lattice import Lattice, estimate_lattice
from .refine import fit_gaussians, refine_center_of_mass
from .sublattice import assign_sublattices
from .table import AtomTable

__all__ = [
    "find_atoms",
    "AtomTable",
    "Lattice",
    "estimate_lattice",
    "fit_gaussians",
    "refine_center_of_mass",
    "assign_sublattices",
    "DETECTORS",
    "get_detector",
    "register_detector",
]
