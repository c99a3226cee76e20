"""The analysis registry: each capability's name, public function and Result type.

The CLI, ``batch``, the demo and the HTML report iterate this table instead of repeating glue
code per capability. Entries are import paths, resolved lazily, so importing atomscope stays
cheap and the table is plain data (no import-time side effects).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Analysis", "ANALYSES", "get_analysis", "available_analyses"]


@dataclass(frozen=True)
class Analysis:
    """One registered capability."""

    name: str
    function_path: str  # "module:function": function(Micrograph, **options) -> Result
    result_type_path: str  # "module:Class"
    description: str
    table_file: str | None = None  # the per-image table that batches combine
    labels_file: str | None = None  # a per-image label image that batches stack (zarr)

    @staticmethod
    def _resolve(path: str) -> Any:
        module, _, attr = path.partition(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def function(self) -> Callable[..., Any]:
        return self._resolve(self.function_path)

    @property
    def result_type(self) -> type:
        return self._resolve(self.result_type_path)


# Capabilities add their entry here when they land.
ANALYSES: dict[str, Analysis] = {
    "particles": Analysis(
        "particles",
        "atomscope.particles:analyze",
        "atomscope.particles:ParticleTable",
        "Nanoparticles of images and in-situ movies: segmented (classical recipe, U-Net or "
        "shallow CNN), measured in nm, tracked across frames with coalescence events",
        table_file="particles.csv",
        labels_file="mask.tif",
    ),
    "atoms": Analysis(
        "atoms",
        "atomscope.atoms:find_atoms",
        "atomscope.atoms:AtomTable",
        "Every atomic column, sub-pixel, with detector parameters tuned by multi-objective "
        "Bayesian optimisation against physics rewards",
        table_file="atoms.csv",
    ),
    "segment": Analysis(
        "segment",
        "atomscope.segmentation:segment",
        "atomscope.segmentation:Segmentation",
        "Unsupervised segmentation by local symmetry descriptors (translation, rotation, "
        "reflection, power spectrum): PCA, seeded k-means, labels at every pixel",
        table_file="segments.csv",
        labels_file="labels.tif",
    ),
    "disorder": Analysis(
        "disorder",
        "atomscope.disorder:find_disorder",
        "atomscope.disorder:DisorderMap",
        "Disordered and amorphous regions: Gaussian mixtures on atom-centred patches, threshold "
        "and covariance tuned by multi-objective Bayesian optimisation (compactness, perimeter, "
        "misfit rewards); per-atom scores and a per-pixel mask",
        table_file="disorder.csv",
        labels_file="amorphous_mask.tif",
    ),
    "match": Analysis(
        "match",
        "atomscope.match:match_image",
        "atomscope.match:Ranking",
        "Structure identification: (structure, zone axis) entries of a simulated library "
        "ranked by SSIM, EMD and MSE after FFT alignment (needs library=lib.h5)",
        table_file="ranking.csv",
    ),
    "motifs": Analysis(
        "motifs",
        "atomscope.match:segment_motifs",
        "atomscope.match:MotifSegmentation",
        "Grains and phases labelled by their best-matching library motif (entry and "
        "orientation), look-alikes the columns cannot separate merged (needs library=lib.h5)",
        table_file="motifs.csv",
        labels_file="labels.npy",
    ),
}


def register(analysis: Analysis) -> None:
    """Add (or replace) an entry; used by the table below and by plugins."""
    ANALYSES[analysis.name] = analysis


def get_analysis(name: str) -> Analysis:
    from .errors import ParameterError

    try:
        return ANALYSES[name]
    except KeyError:
        raise ParameterError(
            f"Unknown analysis {name!r}; available: {', '.join(sorted(ANALYSES)) or 'none'}"
        ) from None


def available_analyses() -> list[str]:
    return sorted(ANALYSES)
