import numpy as np
import pytest

from atomscope.errors import ParameterError
from atomscope.simulate import simulate_coarsening_movie, simulate_particles_frame


def test_particle_frame_masks_and_table():
    res = simulate_particles_frame(size=256, n_particles=12, radius=(2.5, 0.2), seed=1)
    lab = res.truth.masks["particle"]
    tab = res.truth.particles
    assert lab.dtype == np.uint16
    assert set(np.unique(lab)) - {0} == set(tab.id)
    areas = np.bincount(lab.ravel())
    for _, row in tab.iterrows():
        assert areas[row.id] == row.area
        assert row.area_nm2 == pytest.approx(row.area * 0.18**2)
        # disk area ≈ π R² (pixel-centre sampling), unless cut by the border
        if (
            3 * row.radius < row.x < 253 - 3 * row.radius
            and 3 * row.radius < row.y < 253 - 3 * row.radius
        ):
            assert row.area == pytest.approx(np.pi * row.radius**2, rel=0.15)
            # the true mask is centred on the particle
            yy, xx = np.nonzero(lab == row.id)
            assert xx.mean() == pytest.approx(row.x, abs=0.6)
            assert yy.mean() == pytest.approx(row.y, abs=0.6)
    # particles are darker than the support
    img = res.truth.fields["noise_free"]
    assert img[lab > 0].mean() < 0.85 * img[lab == 0].mean()
    # Poisson counts around the requested level on the support
    assert res.image.data[lab == 0].mean() == pytest.approx(100, rel=0.1)


def test_fringes_need_resolution():
    with pytest.raises(ParameterError, match="fringes"):
        simulate_particles_frame(size=64, n_particles=2, fringes=True, pixel_size=0.18)
    # the resolution check comes before placement, so a crowded field still names the fringes
    for seed in range(5):
        with pytest.raises(ParameterError, match="fringes"):
            simulate_particles_frame(
                size=32, n_particles=40, fringes=True, pixel_size=0.18, seed=seed
            )
    with pytest.raises(ParameterError, match="contrast"):
        simulate_particles_frame(size=32, n_particles=40, contrast=1.5, seed=0)
    res = simulate_particles_frame(
        size=256, pixel_size=0.05, n_particles=3, radius=1.0, fringes=True, counts=None, seed=2
    )
    assert res.truth.fields["noise_free"].std() > 0


def test_coarsening_movie_conserves_volume_and_ids():
    res = simulate_coarsening_movie(n_frames=20, size=192, seed=3, coarsening=2.0)
    assert res.image.shape == (20, 192, 192)
    masks = res.truth.masks["particle"]
    assert masks.shape == (20, 192, 192)
    tab = res.truth.particles
    vol = tab.groupby("frame").radius_nm.apply(lambda r: (r**3).sum())
    np.testing.assert_allclose(vol, vol.iloc[0], rtol=1e-9)
    counts = tab.groupby("frame").size()
    assert counts.iloc[-1] < counts.iloc[0]  # small particles dissolve or merge
    mean_r = tab.groupby("frame").radius_nm.mean()
    assert mean_r.iloc[-1] > mean_r.iloc[0]
    ids0 = set(tab[tab.frame == 0].id)
    assert set(tab.id) <= ids0  # ids are stable, never reused
    events = res.truth.parameters["events"]
    assert any(e["event"] == "dissolved" for e in events)
    gone = {e["id"] for e in events}
    for e in events:
        later = tab[(tab.frame >= e["frame"]) & (tab.id == e["id"])]
        assert later.empty
    assert gone <= ids0


def test_movie_has_coalescence_with_defaults():
    res = simulate_coarsening_movie(n_frames=50, size=256, seed=0)
    ev = res.truth.parameters["events"]
    assert sum(e["event"] == "coalescence" for e in ev) >= 1
    assert sum(e["event"] == "dissolved" for e in ev) >= 1
