import numpy as np
import pytest
from scipy.spatial import cKDTree

from atomscope.errors import ParameterError
from atomscope.simulate import (
    apply_point_defects,
    project,
    simulate_amorphous_patches,
    simulate_bicrystal,
    simulate_haadf,
    tile,
)
from atomscope.simulate.composite import boundary_side, patch_mask


def test_bicrystal_masks_agree_with_column_labels():
    res = simulate_bicrystal(
        "SrTiO3",
        size=128,
        rotation2=25,
        boundary="stepped",
        boundary_angle=90,
        step_height=0.3,
        step_period=0.8,
        seed=1,
    )
    cols = res.truth.columns
    grain = res.truth.masks["grain"]
    assert set(np.unique(grain)) == {1, 2}
    assert set(cols.grain) == {1, 2}
    # a column's grain is the mask value under it (columns at the boundary may straddle)
    r = np.clip(np.rint(cols.y).astype(int), 0, 127)
    c = np.clip(np.rint(cols.x).astype(int), 0, 127)
    agree = (grain[r, c] == cols.grain.to_numpy()).mean()
    assert agree > 0.97
    assert set(np.unique(res.truth.masks["phase"])) == {1}
    # no grain-2 column overlaps a grain-1 column
    g1 = cols[cols.grain == 1][["x", "y"]].to_numpy()
    g2 = cols[cols.grain == 2][["x", "y"]].to_numpy()
    d, _ = cKDTree(g1).query(g2)
    assert d.min() * 0.02 >= 0.1 - 1e-9


def test_stepped_boundary_shape():
    v = boundary_side(
        np.array([0.0, 0.0]),
        np.array([0.0, 20.0]),
        shape=(41, 41),
        angle=90,
        offset=0.0,
        kind="stepped",
        step_height=5,
        step_period=10,
    )
    assert v.shape == (2,)
    with pytest.raises(ParameterError):
        boundary_side(np.zeros(1), np.zeros(1), shape=(8, 8), angle=0, offset=0, kind="zigzag")


def test_two_phase_labels():
    res = simulate_bicrystal("SrTiO3", "ZnO", zone2=(0, 0, 1), size=96, seed=2)
    cols = res.truth.columns
    assert set(cols.phase) == {1, 2}
    assert set(np.unique(res.truth.masks["phase"])) == {1, 2}
    assert set(cols[cols.phase == 2].species) <= {"Zn+O"}
    assert res.truth.parameters["kind"] == "two-phase"
    # sublattice ids do not collide between the phases
    assert not set(cols[cols.phase == 1].sublattice) & set(cols[cols.phase == 2].sublattice)


@pytest.mark.parametrize("mode", ["random", "displace"])
def test_amorphous_patch_fraction_and_labels(mode):
    res = simulate_amorphous_patches(
        "SrTiO3", size=128, fraction=0.2, n_patches=2, mode=mode, seed=3
    )
    mask = res.truth.masks["amorphous"]
    assert mask.mean() == pytest.approx(0.2, abs=1 / mask.size)
    cols = res.truth.columns
    am = cols[cols.amorphous]
    assert len(am) > 0
    assert (am.grain == 0).all() and (am.sublattice == -1).all()
    r = np.clip(np.rint(am.y).astype(int), 0, 127)
    c = np.clip(np.rint(am.x).astype(int), 0, 127)
    if mode == "random":
        assert mask[r, c].all()
    cr = cols[~cols.amorphous]
    r = np.clip(np.rint(cr.y).astype(int), 0, 127)
    c = np.clip(np.rint(cr.x).astype(int), 0, 127)
    assert (mask[r, c] == 0).mean() > 0.99
    assert (res.truth.masks["grain"] == 1 - mask).all()


def test_patch_mask_exact_fraction():
    rng = np.random.default_rng(0)
    for f in (0.05, 0.3):
        m = patch_mask((100, 120), f, n_patches=3, rng=rng)
        assert m.sum() == round(f * 12000)


def test_point_defects_statistics():
    proj = project("SrTiO3", (0, 0, 1))
    cols = tile(proj, (256, 256), 0.02, thickness=20)
    rng = np.random.default_rng(4)
    out = apply_point_defects(
        cols, vacancies={"O": 0.1}, substitutions={"Ti": ("Nb", 0.2)}, rng=rng
    )
    o = out.elements.index("O")
    assert out.counts[:, o].sum() / cols.counts[:, cols.elements.index("O")].sum() == pytest.approx(
        0.9, abs=0.01
    )
    nb = out.counts[:, out.elements.index("Nb")].sum()
    ti0 = cols.counts[:, cols.elements.index("Ti")].sum()
    assert nb / ti0 == pytest.approx(0.2, abs=0.01)
    assert "Nb+Ti+O" in set(out.species)
    assert out.extra["n_vacancies"].sum() == round(
        cols.counts[:, cols.elements.index("O")].sum() - out.counts[:, o].sum()
    )
    res = simulate_haadf("MoS2", size=64, thickness=1, vacancies={"S": 0.5}, seed=1)
    assert {"n_vacancies", "n_substitutions"} <= set(res.truth.columns.columns)
    assert "vacant" in set(res.truth.columns.species) or (res.truth.columns.n_vacancies > 0).any()


def test_bicrystal_with_an_amorphous_patch():
    from atomscope.simulate import simulate_bicrystal

    res = simulate_bicrystal("SrTiO3", rotation=5, rotation2=35, size=192, amorphous=0.15, seed=4)
    masks = res.truth.masks
    assert masks["amorphous"].mean() == pytest.approx(0.15, abs=0.01)
    # the patch is neither grain
    assert not np.any((masks["amorphous"] == 1) & (masks["grain"] > 0))
    cols = res.truth.columns
    assert cols.amorphous.any() and (cols.grain[cols.amorphous] == 0).all()
    assert set(cols.grain[~cols.amorphous]) == {1, 2}
