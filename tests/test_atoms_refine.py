import numpy as np
import pytest

from atomscope.atoms.crb import gaussian_column_crb
from atomscope.atoms.refine import (
    estimate_noise_model,
    fit_gaussians,
    noise_model_from_residuals,
    refine_center_of_mass,
)

from ._atoms_helpers import gaussian_lattice, match


def _start(xy, seed=1):
    return np.rint(xy + np.random.default_rng(seed).normal(0, 0.3, xy.shape))


@pytest.mark.parametrize(("amplitude", "background"), [(100.0, 10.0), (10.0, 1.0)])
def test_poisson_fit_reaches_cramer_rao_bound(amplitude, background):
    img, xy, _ = gaussian_lattice(size=320, amplitude=amplitude, background=background, seed=3)
    start = refine_center_of_mass(img, _start(xy), 4.0)
    fit = fit_gaussians(img, start, radius=6.0, sigma0=2.0)
    _, recall, rmse, _ = match(fit.xy, xy, 3.6, img.shape, margin=8)
    crb = gaussian_column_crb(amplitude, 2.0, background)
    assert recall == 1.0
    assert rmse <= 1.1 * crb, (rmse, crb)
    # the reported uncertainty is an honest estimate of the actual error
    per_coordinate = rmse / np.sqrt(2)
    assert np.median(fit.uncertainty) == pytest.approx(per_coordinate, rel=0.2)


def test_gaussian_noise_fit_and_noise_model():
    img, xy, _ = gaussian_lattice(
        size=256, amplitude=1.0, background=0.1, noise="gaussian", read_noise=0.02, seed=4
    )
    fit = fit_gaussians(img, _start(xy), radius=6.0, sigma0=2.0)
    _, _, rmse, _ = match(fit.xy, xy, 3.6, img.shape, margin=8)
    assert rmse <= 1.1 * gaussian_column_crb(1.0, 2.0, 0.1, noise="gaussian", read_noise=0.02)
    # additive noise: the fitted model has (almost) no intensity dependence
    assert fit.noise.gain * 1.0 < 0.2 * fit.noise.var0 + 1e-12
    assert np.sqrt(fit.noise.var0) == pytest.approx(0.02, rel=0.1)


def test_noise_model_recovers_poisson_gain():
    rng = np.random.default_rng(0)
    mu = rng.uniform(5, 200, 200_000)
    counts = 3.0 * rng.poisson(mu)  # gain 3: variance = 3 × intensity
    model = noise_model_from_residuals(3.0 * mu, counts - 3.0 * mu)
    assert model.gain == pytest.approx(3.0, rel=0.05)
    assert model.variance(np.array([0.0]))[0] > 0


def test_weak_columns_beside_bright_ones_reach_their_bound():
    img, xy, lab = gaussian_lattice(
        size=384, spacing=16.0, sigma=2.2, amplitude=100.0, background=10.0, b_site=0.35, seed=5
    )
    fit = fit_gaussians(img, _start(xy), radius=5.6, sigma0=2.2)
    err = np.hypot(*(fit.xy - xy).T)
    inner = (xy.min(axis=1) > 10) & (xy.max(axis=1) < 373)
    rmse_b = np.sqrt(np.mean(err[inner & (lab == 1)] ** 2))
    assert rmse_b <= 1.1 * gaussian_column_crb(35.0, 2.2, 10.0)
    no_subtraction = fit_gaussians(img, _start(xy), radius=5.6, sigma0=2.2, neighbour_passes=0)
    err0 = np.hypot(*(no_subtraction.xy - xy).T)
    assert rmse_b < np.sqrt(np.mean(err0[inner & (lab == 1)] ** 2))


def test_oversampled_images_are_binned_without_losing_accuracy():
    img, xy, _ = gaussian_lattice(
        size=384, spacing=30.0, sigma=5.0, amplitude=100.0, background=10.0, seed=6
    )
    fit = fit_gaussians(img, _start(xy), radius=14.0, sigma0=5.0)
    assert fit.binning >= 2
    _, recall, rmse, _ = match(fit.xy, xy, 9.0, img.shape, margin=15)
    assert recall == 1.0
    assert rmse <= 1.1 * gaussian_column_crb(100.0, 5.0, 10.0)
    assert np.median(fit.sigma) == pytest.approx(5.0, rel=0.05)


def test_elliptical_fit_recovers_shape():
    yy, xx = np.mgrid[0:64, 0:64]
    u, v = xx - 31.3, yy - 32.6
    ang = np.radians(30)
    a = (u * np.cos(ang) + v * np.sin(ang)) / 3.0
    b = (-u * np.sin(ang) + v * np.cos(ang)) / 1.8
    img = 200 * np.exp(-0.5 * (a**2 + b**2)) + 5
    fit = fit_gaussians(
        img, np.array([[31.0, 33.0]]), radius=12.0, sigma0=2.0, elliptical=True, max_binning=1
    )
    assert fit.xy[0] == pytest.approx([31.3, 32.6], abs=1e-3)
    assert fit.sigma_major[0] == pytest.approx(3.0, rel=1e-3)
    assert fit.sigma_minor[0] == pytest.approx(1.8, rel=1e-3)
    assert fit.angle_deg[0] == pytest.approx(30.0, abs=0.1)


def test_center_of_mass_removes_background_bias():
    yy, xx = np.mgrid[0:40, 0:40]
    img = 100 * np.exp(-((xx - 20.3) ** 2 + (yy - 19.6) ** 2) / 8.0) + 50 + 0.5 * xx
    com = refine_center_of_mass(img, np.array([[20.0, 20.0]]), 5.0)
    assert com[0] == pytest.approx([20.3, 19.6], abs=0.05)


def test_empty_input():
    fit = fit_gaussians(np.zeros((16, 16)), np.zeros((0, 2)), radius=4, sigma0=1.5)
    assert len(fit.xy) == 0


def test_noise_estimate_from_image_is_positive():
    img, _, _ = gaussian_lattice(size=128, seed=7)
    model = estimate_noise_model(img)
    assert model.variance(np.array([10.0, 100.0])).min() > 0
