"""HAADF-STEM image simulation by incoherent linear imaging (the "convolution method"), with
exact ground truth; the engine behind every accuracy benchmark of atomscope.

``image = probe intensity ⊛ Σᵢ wᵢ δ(r − rᵢ)``; see ``docs/simulation.md`` for the physics, what
the model leaves out, and when a multislice code (abTEM, optional, GPL) is needed instead.
"""

from __future__ import annotations

from .columns import ColumnSet, tile
from .composite import apply_point_defects, simulate_amorphous_patches, simulate_bicrystal
from .haadf import simulate_haadf, simulate_to_dir
from .imaging import Imaging
from .particles import simulate_coarsening_movie, simulate_particles_frame
from .probe import Probe, electron_wavelength
from .projection import (
    LOW_INDEX_ZONES,
    Projection,
    candidate_zones,
    parse_zone,
    project,
    projected_cell,
    zone_period,
)
from .render import render_columns
from .result import GroundTruth, SimulationResult
from .structures import builtin_structures, load_structure

__all__ = [
    "simulate_haadf",
    "simulate_to_dir",
    "simulate_bicrystal",
    "simulate_amorphous_patches",
    "simulate_particles_frame",
    "simulate_coarsening_movie",
    "render_columns",
    "project",
    "candidate_zones",
    "parse_zone",
    "projected_cell",
    "zone_period",
    "load_structure",
    "builtin_structures",
    "Probe",
    "electron_wavelength",
    "Projection",
    "ColumnSet",
    "tile",
    "apply_point_defects",
    "Imaging",
    "GroundTruth",
    "SimulationResult",
    "LOW_INDEX_ZONES",
]
