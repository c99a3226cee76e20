"""Nanoparticle segmentation and in-situ particle statistics.

After Horwath et al., *Understanding important features of deep learning models for
segmentation of high-resolution transmission electron microscopy images* (the classical
pseudo-label recipe, the batch-normalised U-Net and the shallow wide CNN), for supported
nanoparticles filmed while they coarsen:

* :func:`segment` — masks (and probability maps) by the classical recipe, the U-Net or the
  shallow CNN (shipped models trained on atomscope's simulator; or your own);
* :func:`measure` — area, equivalent diameter, axes and centroid of every particle, in nm;
* :func:`track` — identities across frames, with births, deaths, coalescences and splits;
* :func:`train` — train a network on simulated frames, on your frames with masks, or on
  classical pseudo-labels;
* :func:`analyze` — all of it in one call, returning a :class:`ParticleTable` (CSV, masks,
  overlays, coarsening curves).
"""

from .classical import CLASSICAL_DEFAULTS, classical_segment
from .evaluate import identity_recovery, match_labels, pixel_scores, threshold_curve
from .measure import label_mask, measure
from .movie import analyze
from .result import ParticleTable
from .segment import SegmentationResult, detect_polarity, segment
from .track import Tracks, track
from .train import TrainedModel, simulated_training_set, train

__all__ = [
    "analyze",
    "segment",
    "measure",
    "track",
    "train",
    "ParticleTable",
    "SegmentationResult",
    "Tracks",
    "TrainedModel",
    "classical_segment",
    "CLASSICAL_DEFAULTS",
    "label_mask",
    "detect_polarity",
    "simulated_training_set",
    "pixel_scores",
    "threshold_curve",
    "match_labels",
    "identity_recovery",
]
