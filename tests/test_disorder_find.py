"""find_disorder end to end on simulated images: accuracy against the simulator's truth,
"flag nothing" on a crystal, determinism, options, bad inputs and the saved files."""

import json

import numpy as np
import pandas as pd
import pytest

from atomscope import find_disorder
from atomscope.disorder import DisorderMap
from atomscope.errors import InvalidImageError, MissingFileError, ParameterError

from ._disorder_helpers import atom_f1, crystal_case, iou, patches_case

FAST = {"n_initial": 12, "n_iterations": 2}


@pytest.mark.parametrize("structure, mode", [("SrTiO3", "random"), ("YBa2Cu3O7", "displace")])
def test_amorphous_patch_found(structure, mode):
    sim, atoms = patches_case(structure, mode)
    r = find_disorder(sim.image, atoms, **FAST)
    truth = sim.truth.masks["amorphous"]
    assert iou(truth, r.mask) >= 0.8
    assert atom_f1(r, truth) >= 0.9
    assert abs(r.area_fraction - truth.mean()) < 0.05
    assert r.n_regions >= 1
    assert r.optimization is not None and r.optimization.n_evaluations >= 12
    assert set(r.parameters) == {"threshold", "covariance"}


def test_crystal_flags_nothing():
    sim, cols = crystal_case("SrTiO3")
    r = find_disorder(sim.image, cols[["x", "y"]], **FAST)
    assert r.area_fraction < 0.01
    assert "No disordered region" in r.message


def test_small_crystal_without_optimisation_flags_nothing():
    # a few dozen columns per type: the default covariance must not overfit the crystal
    from atomscope import find_atoms

    sim, _ = crystal_case("YBa2Cu3O7", size=256, dose=3e4, seed=13)
    atoms = find_atoms(sim.image, seed=0)
    r = find_disorder(sim.image, atoms, n_types=4, optimize=False)
    assert r.area_fraction < 0.01 and r.parameters["covariance"] == "spherical"
    # a wide disorder component must not claim the low scores (that flagged everything)
    r = find_disorder(sim.image, atoms, n_types=4, optimize=False, covariance="tied")
    assert r.area_fraction < 0.5


def test_same_seed_same_result():
    sim, atoms = patches_case("SrTiO3", "random")
    a = find_disorder(sim.image, atoms, optimize=False, seed=4)
    b = find_disorder(sim.image, atoms, optimize=False, seed=4)
    assert np.array_equal(a.mask, b.mask)
    pd.testing.assert_frame_equal(a.table, b.table)


def test_fixed_parameters_sublattice_and_paper_rewards():
    sim, atoms = patches_case("SrTiO3", "random")
    truth = sim.truth.masks["amorphous"]
    r = find_disorder(sim.image, atoms, optimize=False, covariance="diag", threshold=6.0)
    assert r.optimization is None and r.parameters == {"threshold": 6.0, "covariance": "diag"}
    assert iou(truth, r.mask) > 0.7
    # only the brightest type (Sr): the others are "not analysed"
    s = find_disorder(sim.image, atoms, sublattice=0, optimize=False)
    labels = set(s.table["label"])
    assert "not analysed" in labels and s.table["analysed"].mean() < 0.8
    assert iou(truth, s.mask) > 0.6
    with pytest.raises(ParameterError, match="sublattice 7"):
        find_disorder(sim.image, atoms, sublattice=7, optimize=False)
    p = find_disorder(sim.image, atoms, rewards="paper", n_initial=8, n_iterations=0)
    assert p.optimization.objective_names == ["1 - compactness", "perimeter"]


def test_atoms_as_csv_path_and_saved_files(tmp_path):
    import tifffile

    sim, atoms = patches_case("YBa2Cu3O7", "displace")
    atoms.to_csv(tmp_path / "atoms.csv", index=False)
    r = find_disorder(sim.image, tmp_path / "atoms.csv", **FAST)
    assert isinstance(r, DisorderMap) and len(r) == len(atoms)
    paths = r.save(tmp_path / "out")
    assert set(paths) == {
        "disorder.csv",
        "amorphous_mask.tif",
        "overlay.png",
        "pareto.png",
        "report.json",
    }
    table = pd.read_csv(paths["disorder.csv"])
    assert {"x", "y", "x_nm", "type", "score", "disordered", "label"} <= set(table.columns)
    mask = tifffile.imread(paths["amorphous_mask.tif"])
    assert mask.shape == r.mask.shape and mask.dtype == np.uint8
    assert np.array_equal(mask.astype(bool), r.mask)
    report = json.loads(paths["report.json"].read_text())
    assert report["n_atoms"] == len(atoms) and "optimization" in report
    assert not list((tmp_path / "out").glob(".*tmp*"))  # atomic writes leave no temporaries
    frame = r.to_frame()
    assert frame is not r.table and len(frame) == len(r)


def test_bad_inputs_give_clear_errors_or_explained_empty_results(tmp_path):
    sim, atoms = patches_case("SrTiO3", "random")
    img = sim.image
    empty = find_disorder(img, pd.DataFrame({"x": [], "y": []}))
    assert not empty.mask.any() and len(empty) == 0 and "0 atom" in empty.message
    blank = find_disorder(np.zeros((96, 96), np.float32))  # the atom finder finds nothing
    assert blank.area_fraction == 0 and blank.message
    with pytest.raises(ParameterError, match="too few"):
        find_disorder(img, atoms.iloc[:40], n_types=20, optimize=False)
    with pytest.raises(ParameterError, match="x and y"):
        find_disorder(img, pd.DataFrame({"col": [1.0]}))
    with pytest.raises(MissingFileError):
        find_disorder(img, tmp_path / "missing.csv")
    with pytest.raises(InvalidImageError):
        find_disorder(np.zeros((2, 64, 64), np.float32), atoms)
    with pytest.raises(ParameterError):
        find_disorder(img, atoms, rewards="fancy")
    with pytest.raises(ParameterError):
        find_disorder(img, atoms, choice="manhattan")
    with pytest.raises(ParameterError):
        find_disorder(img, atoms, optimize=False, covariance="banded")
    with pytest.raises(ParameterError):
        find_disorder(img, atoms, patch_size=3)
