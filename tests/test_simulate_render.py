import warnings

import numpy as np
import pytest
from scipy.optimize import least_squares

from atomscope.errors import ParameterError
from atomscope.simulate import Probe, render_columns
from atomscope.simulate.render import render_direct, splat

PROBE = Probe()  # 300 kV, 25 mrad, 0.05 nm source: FWHM 0.063 nm


@pytest.mark.parametrize(
    "pixel_size,order,bound",
    [
        (0.02, 5, 1.0e-3),  # FWHM 3.1 px (measured ~7e-4)
        (0.02, 3, 5.0e-3),  # measured ~3e-3
        (0.015, 5, 1.0e-4),  # FWHM 4.2 px (measured ~5e-5)
        (0.015, 3, 1.0e-3),  # measured ~6e-4
    ],
)
def test_fast_renderer_matches_direct_evaluation(pixel_size, order, bound):
    """The B-spline splat + FFT renderer against an exact non-uniform DFT on a periodic canvas;
    the error is measured relative to the image peak."""
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 64, (50, 2))
    w = rng.uniform(0.5, 2.0, 50)
    fast = render_columns(xy, w, (64, 64), PROBE, pixel_size=pixel_size, margin=0, order=order)
    ref = render_direct(xy, w, (64, 64), PROBE, pixel_size=pixel_size)
    err = np.abs(fast - ref).max() / ref.max()
    assert err < bound


def test_total_intensity_conserved():
    rng = np.random.default_rng(2)
    xy = rng.uniform(-3, 67, (40, 2))
    w = rng.uniform(0, 3, 40)
    img = render_columns(xy, w, (64, 64), PROBE, pixel_size=0.02, margin=0)
    assert img.sum(dtype=np.float64) == pytest.approx(w.sum(), rel=1e-5)
    # with padding: an isolated column in the middle keeps all but its far tail
    one = render_columns([[40.3, 39.7]], [5.0], (81, 81), PROBE, pixel_size=0.02)
    assert one.sum(dtype=np.float64) == pytest.approx(5.0, rel=0.02)
    # Debye-Waller blur groups conserve the total too
    blurred = render_columns(
        xy, w, (64, 64), PROBE, pixel_size=0.02, margin=0, blur=rng.uniform(0, 1.0, 40)
    )
    assert blurred.sum(dtype=np.float64) == pytest.approx(w.sum(), rel=1e-5)


def test_splat_sum_and_wrap():
    g = splat(np.array([[0.2, 0.7], [9.9, 5.5]]), np.array([1.0, 2.0]), (10, 10), order=5)
    assert g.sum() == pytest.approx(3.0)
    assert g.min() >= 0


def _gauss_fit(img: np.ndarray, c: int, r: int, half: int = 4) -> tuple[float, float]:
    yy, xx = np.mgrid[r - half : r + half + 1, c - half : c + half + 1]
    data = img[r - half : r + half + 1, c - half : c + half + 1].astype(np.float64)

    def res(q):
        a, x, y, s, b = q
        return (a * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * s * s)) + b - data).ravel()

    q = least_squares(res, [data.max(), c, r, 1.3, 0.0]).x
    return q[1], q[2]


def test_subpixel_position_recovered_by_gaussian_fit():
    """A 2-D Gaussian fit of an isolated rendered column recovers its position to < 0.005 px
    for random sub-pixel offsets (measured worst case ~0.002 px)."""
    rng = np.random.default_rng(3)
    worst = 0.0
    for _ in range(12):
        x0, y0 = 30 + rng.uniform(-0.5, 0.5), 30 + rng.uniform(-0.5, 0.5)
        img = render_columns([[x0, y0]], [1.0], (61, 61), PROBE, pixel_size=0.02)
        r, c = np.unravel_index(np.argmax(img), img.shape)
        x, y = _gauss_fit(img, c, r)
        worst = max(worst, float(np.hypot(x - x0, y - y0)))
    assert worst < 0.005


def test_subpixel_position_exact_in_fourier_phase():
    """On a periodic canvas the first Fourier coefficient's phase gives the position exactly."""
    rng = np.random.default_rng(4)
    for _ in range(5):
        x0, y0 = rng.uniform(0, 48, 2)
        img = render_columns([[x0, y0]], [1.0], (48, 48), PROBE, pixel_size=0.02, margin=0)
        f = np.fft.fft2(img.astype(np.float64))
        x = (-np.angle(f[0, 1]) * 48 / (2 * np.pi)) % 48
        y = (-np.angle(f[1, 0]) * 48 / (2 * np.pi)) % 48
        assert abs((x - x0 + 24) % 48 - 24) < 1e-4
        assert abs((y - y0 + 24) % 48 - 24) < 1e-4


def test_columns_outside_the_field_contribute_tails_without_wrapping():
    # a column 3 px left of the image shows in column 0, not at the right edge
    img = render_columns([[-3.0, 20.0]], [1.0], (41, 41), PROBE, pixel_size=0.02)
    peak = render_columns([[20.0, 20.0]], [1.0], (41, 41), PROBE, pixel_size=0.02).max()
    assert img[20, 0] > 0.05 * peak
    assert img[20, -1] < 1e-4 * peak  # 43 px away; the padded canvas keeps wrap-around below


def test_gaussian_probe_and_warnings():
    img = render_columns([[10, 10]], [1.0], (21, 21), 4.0)
    assert np.unravel_index(np.argmax(img), img.shape) == (10, 10)
    with pytest.warns(UserWarning, match="undersampled"):
        render_columns([[10, 10]], [1.0], (21, 21), PROBE, pixel_size=0.04)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        render_columns([[10, 10]], [1.0], (21, 21), PROBE, pixel_size=0.02)
    with pytest.raises(ParameterError):
        render_columns([[np.nan, 0]], [1.0], (21, 21), 3.0)
    with pytest.raises(ParameterError):
        render_columns([[1, 1]], [1.0], (21, 21), PROBE)  # no pixel size
    assert render_columns(np.zeros((0, 2)), [], (16, 16), 3.0).sum() == 0
