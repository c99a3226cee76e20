import math

import numpy as np
import pytest

from atomscope.errors import ParameterError
from atomscope.simulate.probe import Probe, _chinese_hat, _radial_otf, electron_wavelength


def test_wavelength_relativistic():
    # tabulated relativistic wavelengths: 1.9687 pm at 300 kV, 2.5079 pm at 200 kV
    assert electron_wavelength(300e3) == pytest.approx(1.9687e-3, rel=2e-4)
    assert electron_wavelength(200e3) == pytest.approx(2.5079e-3, rel=2e-4)
    with pytest.raises(ParameterError):
        electron_wavelength(-1)


def test_otf_limits_and_aberration_free_form():
    p = Probe(source_size=0.0)
    k = np.linspace(0, 3 * p.k_max, 200)
    otf = p.otf(k)
    assert otf[0] == pytest.approx(1.0)
    assert np.all(otf[k > 2 * p.k_max + 1e-9] == 0)
    np.testing.assert_allclose(otf, _chinese_hat(k / (2 * p.k_max)), atol=1e-3)


def test_numerical_otf_matches_analytic_without_aberrations():
    lam = electron_wavelength(300e3)
    k, prof = _radial_otf.__wrapped__(lam, 25e-3, 1e-12, 0.0)  # forces the numerical path
    err = np.abs(prof - _chinese_hat(k / (2 * 25e-3 / lam))).max()
    assert err < 3e-3


def test_source_envelope_and_fwhm():
    p0 = Probe(source_size=0.0)
    p1 = Probe(source_size=0.05)
    # Airy FWHM = 0.5145 λ/α
    assert p0.fwhm == pytest.approx(0.5145 * p0.wavelength / p0.convergence, rel=5e-3)
    assert p1.fwhm > p0.fwhm
    k = 10.0
    ratio = p1.otf(k) / p0.otf(k)
    sigma = 0.05 / (2 * math.sqrt(2 * math.log(2)))
    assert ratio == pytest.approx(math.exp(-2 * math.pi**2 * sigma**2 * k**2), rel=1e-9)


def test_probe_intensity_normalised():
    p = Probe(defocus=-3.0)
    r = np.linspace(0, 3.0, 6000)
    total = np.trapezoid(2 * np.pi * r * p.intensity(r), r)
    assert total == pytest.approx(1.0, abs=0.02)


def test_bad_parameters():
    with pytest.raises(ParameterError):
        Probe(convergence=25)  # mrad given as rad
    with pytest.raises(ParameterError):
        Probe(source_size=-1)
