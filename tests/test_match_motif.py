"""atomscope.match.segment_motifs: regions labelled by their best-matching library motif."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from atomscope.errors import ParameterError
from atomscope.image import Micrograph
from atomscope.match import segment_motifs
from atomscope.match.motif import label_accuracy

from ._match_helpers import small_library


def _bicrystal(structure, structure2=None, zone=(0, 0, 1), zone2=None, rotation2=30.0, seed=1):
    """A bicrystal with the library's column contrast: SrTiO3 and BaTiO3 [001] differ only in
    the ratio of their column intensities, which a contrast mismatch would swap."""
    from atomscope.simulate import simulate_bicrystal

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate_bicrystal(
            structure,
            structure2,
            zone=zone,
            zone2=zone2,
            rotation=0.0,
            rotation2=rotation2,
            size=288,
            pixel_size=0.02,
            dose=5e4,
            exponent=small_library().settings.exponent,
            seed=seed,
        )


def test_label_accuracy_is_permutation_invariant():
    truth = np.array([[1, 1, 2, 2], [1, 1, 2, 2]])
    assert label_accuracy(3 - truth, truth) == 1.0
    assert label_accuracy(np.ones_like(truth), truth) == 0.5
    assert label_accuracy(np.array([[0, 1, 2, 2], [1, 1, 2, 2]]), truth) == pytest.approx(7 / 8)


def test_bicrystal_grains_of_one_structure_are_two_motifs():
    lib = small_library()
    r = _bicrystal("SrTiO3", rotation2=30.0)
    seg = segment_motifs(r.image, lib)
    assert seg.accuracy(r.truth.masks["grain"]) >= 0.9
    m = seg.motifs
    assert len(m) == 2 and set(m["name"]) == {"SrTiO3"} and set(m["zone"]) == {"[001]"}
    # the two orientations differ by the 30° tilt (modulo the 90° symmetry of [001])
    d = abs(m["rotation_deg"].iloc[0] - m["rotation_deg"].iloc[1]) % 90
    assert min(d, 90 - d) == pytest.approx(30.0, abs=3.0)
    assert m["area_fraction"].sum() > 0.95
    assert {"x", "y", "label", "residual_nm"} <= set(seg.columns)


def test_two_phases_are_told_apart(tmp_path):
    lib = small_library()
    r = _bicrystal("Au", "CdTe", zone=(1, 1, 0), zone2=(1, 1, 0), rotation2=20.0, seed=2)
    seg = segment_motifs(r.image, lib)
    assert seg.accuracy(r.truth.masks["grain"]) >= 0.9
    names = set(seg.motifs["name"])
    assert "CdTe" in names and names & {"Au", "Pt", "Cu", "Al (fcc)", "Ni"}
    paths = seg.save(tmp_path)
    assert (tmp_path / "labels.npy").exists() and (tmp_path / "segmentation.png").exists()
    assert np.load(paths["labels"]).shape == r.image.data.shape
    import matplotlib.pyplot as plt

    plt.close("all")


def test_motif_segmentation_needs_a_pixel_size():
    with pytest.raises(ParameterError, match="pixel size"):
        segment_motifs(Micrograph(np.zeros((64, 64))), small_library())
    with pytest.raises(ParameterError, match="ssim"):
        segment_motifs(Micrograph(np.zeros((64, 64)), 0.02), small_library(), metric="emd")
