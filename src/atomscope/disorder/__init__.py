"""Disordered and amorphous regions: Gaussian mixtures on atom-centred patches, with the
threshold and covariance type tuned by multi-objective Bayesian optimisation against
compactness, perimeter and misfit rewards (after Barakati et al., Digital Discovery 2024).

>>> from atomscope import find_disorder
>>> result = find_disorder(image)                 # doctest: +SKIP
>>> result.area_fraction, result.n_regions        # doctest: +SKIP
>>> result.save("out/")                           # doctest: +SKIP
"""

from .finder import find_disorder, search_space
from .model import COVARIANCE_TYPES, DisorderModel, ScoreMixture
from .patches import Patches, extract_patches, invariant_features
from .result import DisorderMap
from .rewards import REWARD_SETS
from .types import AtomTypes, classify_types

__all__ = [
    "find_disorder",
    "DisorderMap",
    "search_space",
    "COVARIANCE_TYPES",
    "REWARD_SETS",
    "DisorderModel",
    "ScoreMixture",
    "Patches",
    "extract_patches",
    "invariant_features",
    "AtomTypes",
    "classify_types",
]
