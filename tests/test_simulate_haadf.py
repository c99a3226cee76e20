import math

import numpy as np
import pytest

from atomscope.errors import ParameterError
from atomscope.simulate import Probe, render_columns, simulate_haadf

A = 0.3905


def test_srtio3_001_positions_in_the_image():
    ps = 0.02
    res = simulate_haadf("SrTiO3", size=128, pixel_size=ps, shift=(0.37, -0.21))
    cols = res.truth.columns
    ox, oy = 63.5 + 0.37, 63.5 - 0.21
    sr = cols[cols.species == "Sr"]
    # Sr columns at the lattice points a·(i, j) around the origin, to 1e-3 Å (5e-4 px)
    fi = (sr.x - ox) / (A / ps)
    fj = (sr.y - oy) / (A / ps)
    assert np.abs(fi - np.rint(fi)).max() * A / ps * ps * 10 < 1e-3
    assert np.abs(fj - np.rint(fj)).max() * A * 10 < 1e-3
    tio = cols[cols.species == "Ti+O"]
    assert (
        np.abs((tio.x - ox) / (A / ps) - 0.5 - np.rint((tio.x - ox) / (A / ps) - 0.5)).max() < 1e-6
    )
    # inside-the-image convention, nm columns
    assert cols.x.min() >= 0 and cols.x.max() <= 127 and cols.y.min() >= 0
    np.testing.assert_allclose(cols.x_nm, cols.x * ps)
    assert set(cols.columns) >= {
        "x",
        "y",
        "x_nm",
        "y_nm",
        "species",
        "weight",
        "sublattice",
        "grain",
    }
    # the rendered image peaks on the Sr columns
    img = res.image.data
    r, c = int(round(sr.y.iloc[5])), int(round(sr.x.iloc[5]))
    assert img[r, c] == img[r - 2 : r + 3, c - 2 : c + 3].max()


def test_rotation_rotates_about_the_origin():
    ps = 0.02
    res = simulate_haadf("SrTiO3", size=96, pixel_size=ps, rotation=30)
    sr = res.truth.columns.query("species == 'Sr'")
    v = np.stack([sr.x - 47.5, sr.y - 47.5], axis=1) * ps
    t = math.radians(30)
    # inverse rotation brings them back onto the square lattice
    back = v @ np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
    f = back / A
    assert np.abs(f - np.rint(f)).max() < 1e-9


def test_intensity_ratio_follows_z_power_law():
    """Fit the rendered image as a linear combination of per-sublattice unit images: the
    amplitudes must be the Z^n column weights (Sr : Ti+O : O)."""
    ps, size = 0.02, 64
    for n in (1.7, 2.0):
        res = simulate_haadf("SrTiO3", size=size, pixel_size=ps, exponent=n, thickness=7)
        cols = res.truth.columns
        probe = Probe()
        basis = []
        # re-render each sublattice with unit weights (same columns, inside and outside the
        # field, as the simulation used)
        from atomscope.simulate import Imaging, project, tile
        from atomscope.simulate.imaging import render_margin

        proj = project("SrTiO3", (0, 0, 1))
        margin = render_margin(Imaging(), ps, (size, size))
        allc = tile(proj, (size, size), ps, margin=margin, thickness=7)
        for s in ("Sr", "Ti+O", "O"):
            sel = allc.species == s
            basis.append(
                render_columns(
                    allc.xy[sel], np.ones(sel.sum()), (size, size), probe, pixel_size=ps
                ).ravel()
            )
        coef, *_ = np.linalg.lstsq(
            np.stack(basis, axis=1).astype(np.float64),
            res.image.data.ravel().astype(np.float64),
            rcond=None,
        )
        expected = np.array([38**n, 22**n + 8**n, 8**n]) * 7
        np.testing.assert_allclose(coef, expected, rtol=1e-5)
        w = cols.groupby("species").weight.first()
        assert w["Sr"] / w["Ti+O"] == pytest.approx(38**n / (22**n + 8**n))


def test_thickness_is_linear_and_weights_override():
    a = simulate_haadf("SrTiO3", size=64, thickness=5).image.data
    b = simulate_haadf("SrTiO3", size=64, thickness=10).image.data
    np.testing.assert_allclose(b, 2 * a, rtol=1e-5, atol=1e-5 * a.max())
    w = simulate_haadf("SrTiO3", size=64, thickness=1, weights={"Sr": 1.0, "Ti": 0.3, "O": 0.0})
    cols = w.truth.columns
    assert set(np.round(cols.weight, 9)) == {1.0, 0.3, 0.0}


def test_seeded_and_noise_statistics():
    kw = dict(size=128, counts=50.0)
    a = simulate_haadf("SrTiO3", seed=7, **kw)
    b = simulate_haadf("SrTiO3", seed=7, **kw)
    c = simulate_haadf("SrTiO3", seed=8, **kw)
    np.testing.assert_array_equal(a.image.data, b.image.data)
    assert not np.array_equal(a.image.data, c.image.data)
    lam = a.truth.fields["noise_free"].astype(np.float64)
    assert lam.max() == pytest.approx(50.0, rel=1e-5)
    img = a.image.data.astype(np.float64)
    # Poisson: mean and variance equal the expectation
    assert img.mean() == pytest.approx(lam.mean(), rel=0.02)
    resid = img - lam
    assert resid.var() == pytest.approx(lam.mean(), rel=0.05)
    assert np.all(img == np.rint(img))


def test_dose_definition_and_read_noise():
    ps = 0.02
    dose = 2.0e4  # e/Å²
    res = simulate_haadf(
        "SrTiO3", size=128, pixel_size=ps, dose=dose, detector_fraction=0.1, read_noise=3.0, seed=1
    )
    noise = res.truth.parameters["noise"]
    expected_peak = dose * (ps * 10) ** 2 * 0.1  # = 80 counts at the brightest pixel
    assert noise["counts_at_max"] == pytest.approx(expected_peak)
    lam = res.truth.fields["noise_free"].astype(np.float64)
    assert lam.max() == pytest.approx(expected_peak, rel=1e-5)
    resid = res.image.data - lam
    assert resid.var() == pytest.approx(lam.mean() + 9.0, rel=0.05)
    with pytest.raises(ParameterError):
        simulate_haadf("SrTiO3", size=32, dose=10, counts=10)


def test_background_and_abf():
    res = simulate_haadf("SrTiO3", size=96, background=0.5, seed=2)
    bg = res.truth.fields["background"]
    clean = simulate_haadf("SrTiO3", size=96).image.data
    np.testing.assert_allclose(res.image.data, clean + bg, rtol=1e-5, atol=1e-4)
    assert bg.max() == pytest.approx(0.5 * clean.mean(), rel=1e-4)
    abf = simulate_haadf("SrTiO3", size=96, contrast="abf", exponent=0.5)
    sr = abf.truth.columns.query("species == 'Sr'").iloc[3]
    img = abf.image.data
    r, c = int(round(sr.y)), int(round(sr.x))
    assert img[r, c] == img[r - 2 : r + 3, c - 2 : c + 3].min()
    assert img.max() <= 1.0 + 1e-6 and img.min() == pytest.approx(0.5, abs=1e-3)


def _fit_centre(img, x, y, half=4):
    from scipy.optimize import least_squares

    r, c = int(round(y)), int(round(x))
    yy, xx = np.mgrid[r - half : r + half + 1, c - half : c + half + 1]
    d = img[r - half : r + half + 1, c - half : c + half + 1]

    def res(q):
        return (
            q[0] * np.exp(-((xx - q[1]) ** 2 + (yy - q[2]) ** 2) / (2 * q[3] ** 2)) + q[4] - d
        ).ravel()

    q = least_squares(res, [d.max(), c, r, 1.5, 0.0]).x
    return q[1], q[2]


@pytest.mark.parametrize(
    "kw,bound,bound_x",
    [
        (dict(drift=(4.0, -2.5), flyback=(1.0, 15.0)), 0.005, 0.005),
        # row jitter tears columns; a symmetric fit then also moves in y by ~0.03 px (estimator
        # effect: x-jitter shifts nothing in y), while x follows the jitter-averaged truth
        (dict(jitter=0.5, drift=(-2.0, 3.0)), 0.06, 0.02),
    ],
)
def test_scan_distortion_positions_are_where_columns_appear(kw, bound, bound_x):
    """With scan distortions, the truth positions (x, y) are where a fit finds the columns;
    x_sample, y_sample keep the undistorted lattice."""
    res = simulate_haadf("SrTiO3", size=128, pixel_size=0.015, seed=3, **kw)
    cols = res.truth.columns
    assert not np.allclose(cols.x, cols.x_sample)
    img = res.image.data.astype(np.float64)
    sr = cols.query("species == 'Sr' and x > 8 and x < 119 and y > 8 and y < 119")
    d = np.array(
        [np.subtract(_fit_centre(img, row.x, row.y), (row.x, row.y)) for _, row in sr.iterrows()]
    )
    assert np.median(np.hypot(d[:, 0], d[:, 1])) < bound
    assert np.median(np.abs(d[:, 0])) < bound_x
    assert res.truth.parameters["scan_distortion"]["drift"] == kw["drift"]


def test_metadata_records_parameters():
    res = simulate_haadf("Si", zone="110", size=64, pixel_size=0.01, seed=5)
    meta = res.image.metadata
    assert meta["kind"] == "simulated"
    sim = meta["simulation"]
    for key in (
        "zone",
        "period_nm",
        "thickness",
        "pixel_size_nm",
        "imaging",
        "probe_fwhm_nm",
        "noise",
        "seed",
        "rotation_deg",
        "shift_px",
    ):
        assert key in sim
    assert sim["imaging"]["probe"]["voltage_V"] == 300e3
    assert res.image.pixel_size == (0.01, 0.01)


def test_refusals():
    with pytest.raises(ParameterError, match="repeats only every"):
        simulate_haadf("SrTiO3", zone=(3, 2, 5), size=32)
    with pytest.raises(ParameterError):
        simulate_haadf("SrTiO3", size=4)
    with pytest.raises(ParameterError):
        simulate_haadf("SrTiO3", size=32, pixel_size=-1)
    with pytest.raises(ParameterError):
        simulate_haadf("SrTiO3", size=32, contrast="sem")


def test_distortion_path_keeps_intensities():
    """The oversampled + resampled path (used with scan distortions) agrees with the exact
    renderer when the distortion vanishes (≤ 1e-3 of the peak at a 3.1 px probe)."""
    a = simulate_haadf("SrTiO3", size=96).image.data
    b = simulate_haadf("SrTiO3", size=96, drift=(1e-9, 0.0)).image.data
    assert np.abs(a - b).max() < 2e-3 * a.max()
    assert b.sum() == pytest.approx(a.sum(), rel=3e-3)
