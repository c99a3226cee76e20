"""Structure identification: rank simulated (structure, zone axis) library entries against an
atomic-resolution image by SSIM, EMD and MSE after FFT alignment, and segment an image into
regions of different motifs.

* :class:`Library` — ``Library.build(...)`` from built-in materials, ASE elemental crystals and
  CIF folders (one HDF5 file, resumable), ``Library.load(path)``, ``library.rank(image)``;
* :func:`rank` (alias :func:`match_structure`) — returns a :class:`Ranking`;
* :func:`segment_motifs` — label the regions of an image by their best-matching motif;
* :func:`match_image` — the registry entry (``atomscope match``, ``atomscope batch match``).

See ``docs/match.md`` for the method and measured figures.
"""

from .analysis import load_library, match_image
from .library import Library, LibrarySettings
from .motif import MotifSegmentation, segment_motifs
from .ranking import METRICS, Ranking, rank

match_structure = rank

__all__ = [
    "Library",
    "LibrarySettings",
    "rank",
    "match_structure",
    "Ranking",
    "METRICS",
    "segment_motifs",
    "MotifSegmentation",
    "match_image",
    "load_library",
]
