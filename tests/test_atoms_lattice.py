import numpy as np
import pytest

import atomscope
from atomscope.atoms.lattice import (
    Lattice,
    estimate_lattice,
    fold_cell,
    lattice_from_lengths,
    reduce_basis,
    support_mask,
)
from atomscope.atoms.scale_space import normalise_image
from atomscope.errors import ParameterError
from atomscope.simulate import simulate_haadf

from ._atoms_helpers import gaussian_lattice


def test_reduce_basis_gives_shortest_vectors():
    red = reduce_basis(np.array([[10.0, 0.0], [37.0, 10.0]]))
    lengths = sorted(np.hypot(*red.T))
    assert lengths == pytest.approx([10.0, np.hypot(3.0, 10.0)])
    assert abs(np.linalg.det(red)) == pytest.approx(100.0)


def test_square_lattice_from_image():
    img, xy, _ = gaussian_lattice(size=256, spacing=12.0, rotation_deg=7.0, seed=1)
    lat = estimate_lattice(normalise_image(img))
    assert lat.lengths_px == pytest.approx((12.0, 12.0), rel=2e-3)
    assert lat.angle_deg == pytest.approx(90.0, abs=0.3)
    assert lat.n_motif == 1
    assert lat.expected_count(256 * 256) == pytest.approx(256**2 / 144, rel=5e-3)


def test_perovskite_motif_has_a_and_b_sites_but_not_oxygen():
    sim = simulate_haadf(
        "SrTiO3", zone=(0, 0, 1), size=384, pixel_size=0.02, rotation=12, dose=5e4, seed=2
    )
    lat = estimate_lattice(normalise_image(sim.image.data), pixel_size=0.02)
    assert lat.lengths_nm == pytest.approx((0.3905, 0.3905), rel=3e-3)
    # Sr and Ti–O columns are visible; pure O columns (Z^1.7 weight 7 % of Sr) are not
    assert lat.n_motif == 2
    assert lat.motif_intensity[1] < 0.8
    frac = lat.motif[1]
    assert np.allclose(np.abs(frac - 0.5), 0.0, atol=0.03)


def test_hexagonal_motif_of_mos2():
    sim = simulate_haadf("MoS2", zone=(0, 0, 1), size=384, pixel_size=0.015, dose=2e5, seed=3)
    lat = estimate_lattice(normalise_image(sim.image.data), pixel_size=0.015)
    assert lat.angle_deg == pytest.approx(60.0, abs=1.0) or lat.angle_deg == pytest.approx(
        120.0, abs=1.0
    )
    assert lat.lengths_nm[0] == pytest.approx(0.316, rel=0.01)
    assert lat.n_motif == 2


def test_given_lengths_replace_the_image_lengths():
    img, _, _ = gaussian_lattice(size=256, spacing=12.0, seed=1)
    lat = estimate_lattice(normalise_image(img), lengths_px=(12.5, 12.5))
    assert lat.lengths_px == pytest.approx((12.5, 12.5), rel=1e-6)


def test_noise_has_no_lattice():
    rng = np.random.default_rng(0)
    with pytest.raises(ParameterError, match="lattice"):
        est = estimate_lattice(rng.normal(size=(256, 256)).astype(np.float32))
        # a lattice "found" in white noise must at least be flagged as unreliable
        if est.confidence < 0.3:
            raise ParameterError("no lattice (low confidence)")


def test_support_of_a_particle_on_vacuum(shared_data):
    mg = atomscope.load(shared_data / "temul-toolkit/atomap_AtomLattice_AuNP_479x504.hdf5")
    img = normalise_image(mg.data)
    lat = estimate_lattice(img)
    ref = np.load(shared_data / "temul-toolkit/AuNP_atom_positions_141x2.npy")
    mask = support_mask(img, lat.vectors)
    assert 0.3 < mask.mean() < 0.7
    # the particle's columns lie inside the support (the outermost ring, where the lattice
    # fades, partly outside), and the expected count matches them
    inside = mask[np.rint(ref[:, 1]).astype(int), np.rint(ref[:, 0]).astype(int)]
    assert inside.mean() > 0.85
    assert lat.expected_count(mask.sum()) == pytest.approx(len(ref), rel=0.1)


def test_fold_cell_of_a_pure_lattice_is_its_motif():
    vec = lattice_from_lengths(10.0, 10.0, 90.0)
    yy, xx = np.mgrid[0:200, 0:200]
    img = np.cos(2 * np.pi * xx / 10.0) + np.cos(2 * np.pi * yy / 10.0)
    cell = fold_cell(img, vec, bins=20)
    assert np.unravel_index(np.argmax(cell), cell.shape) in [(0, 0), (0, 19), (19, 0), (19, 19)]


def test_ideal_positions_and_distance_sum():
    lat = Lattice(
        lattice_from_lengths(10.0), np.array([[0.0, 0.0], [0.5, 0.5]]), np.array([1.0, 0.5])
    )
    pts, site = lat.ideal_positions((100, 100))
    assert len(pts) == pytest.approx(200, abs=25)
    assert lat.nn_distance_px == pytest.approx(10 / np.sqrt(2))
    assert lat.distance_sum(4) == pytest.approx(4 * 10 / np.sqrt(2))
