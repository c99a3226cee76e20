"""Unsupervised segmentation of atomic-resolution images by local symmetry descriptors.

``atomscope.segment(image, descriptor=…, n_clusters=…)`` is the public function (this package
is called ``segmentation`` so that ``atomscope.segment`` can be the function); it returns a
:class:`Segmentation`. See ``docs/segmentation.md``.
"""

from .cluster import choose_k, fisher_separability, fit_pca, kmeans
from .descriptors import DESCRIPTORS, DescriptorSettings, compute_features, parse_descriptors
from .grid import Grid, make_grid, normalise
from .metrics import adjusted_rand_index, boundary_offset, matched_accuracy
from .pipeline import auto_window, segment
from .polar import PolarGeometry, polar_scores
from .pooling import top_k_pool
from .power_spectrum import power_spectrum_features
from .result import Segmentation, SegmentationModel
from .translation import shift_grid, translation_features
from .upsample import upsample_labels

__all__ = [
    "segment",
    "Segmentation",
    "SegmentationModel",
    "DescriptorSettings",
    "DESCRIPTORS",
    "parse_descriptors",
    "compute_features",
    "auto_window",
    "translation_features",
    "shift_grid",
    "polar_scores",
    "PolarGeometry",
    "power_spectrum_features",
    "top_k_pool",
    "fit_pca",
    "kmeans",
    "choose_k",
    "fisher_separability",
    "upsample_labels",
    "Grid",
    "make_grid",
    "normalise",
    "adjusted_rand_index",
    "boundary_offset",
    "matched_accuracy",
]
