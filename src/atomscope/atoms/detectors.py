"""Column detectors: each turns a normalised image into a reusable candidate set whose
``select(params)`` is cheap, and declares the parameters an optimiser may tune.

The registry ``DETECTORS`` maps a method name to a factory; ``find_atoms(method=...)`` looks it
up, so a new detector (the CNN of a later release) is one more entry, not a change to callers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from ..errors import ParameterError
from ..optimize import Real, SearchSpace
from .scale_space import ScaleSpace, in_region

__all__ = [
    "Candidates",
    "Detector",
    "DETECTORS",
    "register_detector",
    "get_detector",
    "LocalMaxima",
    "DetectorSetup",
]


class Candidates(Protocol):
    """What a prepared detector offers to the atom finder."""

    cand_xy: np.ndarray
    cand_sigma: np.ndarray
    cand_response: np.ndarray

    def select(
        self,
        threshold: float,
        overlap: float = 0.5,
        min_sigma: float | None = None,
        max_sigma: float | None = None,
        region: tuple[slice, slice] | None = None,
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class DetectorSetup:
    """Scales (px) and the threshold range a detector is prepared for; learned detectors also
    get the model (file, shipped name or network; None: their default) and the torch device."""

    sigmas: np.ndarray
    threshold_range: tuple[float, float]
    nn_distance: float
    model: Any = None
    device: str | None = None


@dataclass(frozen=True)
class Detector:
    """A registered detector: how to prepare candidates and which parameters to tune."""

    name: str
    prepare: Callable[[np.ndarray, DetectorSetup], Candidates]
    search_space: Callable[[DetectorSetup], SearchSpace]
    defaults: Callable[[DetectorSetup], dict[str, Any]]
    description: str = ""
    #: False: the finder never tunes this detector's parameters (it uses its defaults)
    tunable: bool = True


def _scale_space_space(setup: DetectorSetup) -> SearchSpace:
    s = setup.sigmas
    mid = float(np.median(s))
    lo, hi = setup.threshold_range
    # the paper tunes threshold and overlap; the smallest scale is added because it is what
    # separates columns from pixel noise at low dose. The largest scale stays at the top of the
    # range (columns are never wider than 0.4 of their spacing).
    return SearchSpace(
        [
            Real("threshold", lo, hi, log=True),
            Real("overlap", 0.05, 0.95),
            Real("min_sigma", float(s[0]), mid),
        ]
    )


def _scale_space_defaults(setup: DetectorSetup) -> dict[str, Any]:
    lo, hi = setup.threshold_range
    return {
        "threshold": float(np.sqrt(lo * hi)),
        "overlap": 0.5,
        "min_sigma": float(setup.sigmas[0]),
    }


class LocalMaxima:
    """Local maxima of the image smoothed at the column scale, pruned by a minimum distance.

    ``overlap`` plays the role of the minimum distance as a fraction of the nearest-neighbour
    spacing: a maximum is dropped when a stronger one lies closer than
    ``(1 - overlap) * nn_distance``.
    """

    def __init__(self, image: np.ndarray, setup: DetectorSetup, max_candidates: int = 200_000):
        sigma = float(np.median(setup.sigmas))
        smooth = ndi.gaussian_filter(np.asarray(image, np.float32), sigma, mode="reflect")
        local_bg = ndi.minimum_filter(smooth, size=max(3, int(setup.nn_distance)), mode="reflect")
        peak = smooth == ndi.maximum_filter(smooth, size=3, mode="reflect")
        rows, cols = np.nonzero(peak)
        resp = (smooth - local_bg)[rows, cols].astype(np.float64)
        keep = resp > setup.threshold_range[0]
        rows, cols, resp = rows[keep], cols[keep], resp[keep]
        if resp.size > max_candidates:
            top = np.argpartition(resp, -max_candidates)[-max_candidates:]
            rows, cols, resp = rows[top], cols[top], resp[top]
        order = np.argsort(-resp, kind="stable")
        self.cand_xy = np.stack([cols[order], rows[order]], axis=1).astype(np.float64)
        self.cand_response = resp[order]
        self.cand_sigma = np.full(len(order), sigma)
        self.nn = setup.nn_distance
        if len(order) > 1:
            pairs = cKDTree(self.cand_xy).query_pairs(self.nn, output_type="ndarray")
        else:
            pairs = np.zeros((0, 2), int)
        self.pair_i, self.pair_j = pairs[:, 0], pairs[:, 1]
        self.pair_d = np.hypot(*(self.cand_xy[self.pair_i] - self.cand_xy[self.pair_j]).T)
        # candidates are sorted strongest first, so the larger index is the weaker one
        self.pair_loser = np.maximum(self.pair_i, self.pair_j)

    def select(self, threshold, overlap=0.5, min_sigma=None, max_sigma=None, region=None):
        active = (self.cand_response > threshold) & in_region(self.cand_xy, region)
        if self.pair_i.size:
            close = self.pair_d < (1.0 - overlap) * self.nn
            both = active[self.pair_i] & active[self.pair_j] & close
            active[self.pair_loser[both]] = False
        return np.flatnonzero(active)


def _localmax_space(setup: DetectorSetup) -> SearchSpace:
    lo, hi = setup.threshold_range
    return SearchSpace([Real("threshold", lo, hi, log=True), Real("overlap", 0.05, 0.9)])


def _localmax_defaults(setup: DetectorSetup) -> dict[str, Any]:
    lo, hi = setup.threshold_range
    return {"threshold": float(np.sqrt(lo * hi)), "overlap": 0.4}


DETECTORS: dict[str, Detector] = {}


def register_detector(detector: Detector) -> None:
    """Add a detector to the registry (used for built-ins and by extensions)."""
    DETECTORS[detector.name] = detector


def get_detector(name: str) -> Detector:
    if name not in DETECTORS:
        raise ParameterError(
            f"Unknown detection method {name!r}; available: {', '.join(sorted(DETECTORS))}"
        )
    return DETECTORS[name]


register_detector(
    Detector(
        "log",
        lambda img, setup: ScaleSpace(
            img, setup.sigmas, method="log", floor=setup.threshold_range[0]
        ),
        _scale_space_space,
        _scale_space_defaults,
        "Laplacian of Gaussian over a scale range (scale-normalised), 3-D local maxima, overlap "
        "pruning",
    )
)
register_detector(
    Detector(
        "dog",
        lambda img, setup: ScaleSpace(
            img, setup.sigmas, method="dog", floor=setup.threshold_range[0]
        ),
        _scale_space_space,
        _scale_space_defaults,
        "Difference of Gaussians (ratio 1.6) over a scale range",
    )
)
register_detector(
    Detector(
        "localmax",
        LocalMaxima,
        _localmax_space,
        _localmax_defaults,
        "Local maxima of the image smoothed at the column scale, pruned by minimum distance",
    )
)


# -- learned detector (atomscope.atoms.cnn; torch is imported only when it is used) ----------


def _cnn_prepare(image: np.ndarray, setup: DetectorSetup) -> Candidates:
    from .cnn import CNNCandidates

    return CNNCandidates(image, setup)


def _cnn_space(setup: DetectorSetup) -> SearchSpace:
    return SearchSpace([Real("threshold", 0.05, 0.95)])


def _cnn_defaults(setup: DetectorSetup) -> dict[str, Any]:
    return {"threshold": 0.5}


register_detector(
    Detector(
        "cnn",
        _cnn_prepare,
        _cnn_space,
        _cnn_defaults,
        "U-Net column-probability map trained on simulated images (shipped model atoms-unet); "
        "peaks of the map at probability > 0.5, nothing tuned",
        tunable=False,
    )
)
