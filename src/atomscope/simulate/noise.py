"""Detector noise, dose scaling and a smooth background.

Dose, defined once (recorded in the ground truth):

* ``counts`` — expected detected electrons at the brightest pixel of the noise-free image
  (after contrast, distortion and background). Every pixel's expected count is proportional to
  its noise-free intensity: ``λ(r, c) = counts × I(r, c) / max I``.
* ``dose`` — incident electrons per Å². A pixel of side ``p`` Å receives ``N = dose × p²``
  electrons, of which the detector records a fraction that is proportional to the noise-free
  intensity and equals ``detector_fraction`` at the brightest pixel; so
  ``counts = dose × p² × detector_fraction``. (HAADF detectors collect a few per cent of the
  beam on heavy columns; the default ``detector_fraction = 0.05`` is of that order.)

The recorded image is ``Poisson(λ) + Normal(0, read_noise²)``, in detected electrons (counts).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.fft

from ..errors import ParameterError

__all__ = [
    "dose_to_counts",
    "expected_counts",
    "add_shot_noise",
    "add_read_noise",
    "smooth_background",
    "DEFAULT_DETECTOR_FRACTION",
]

DEFAULT_DETECTOR_FRACTION = 0.05


def dose_to_counts(
    dose: float, pixel_size: float, detector_fraction: float = DEFAULT_DETECTOR_FRACTION
) -> float:
    """Expected counts at the brightest pixel for an incident ``dose`` (e⁻/Å²) and a pixel of
    ``pixel_size`` nm: ``dose × (10 · pixel_size)² × detector_fraction``."""
    if not (math.isfinite(dose) and dose > 0):
        raise ParameterError(f"dose must be a positive number of electrons per Å², got {dose!r}")
    if not (math.isfinite(detector_fraction) and 0 < detector_fraction <= 1):
        raise ParameterError(f"detector_fraction must be in (0, 1], got {detector_fraction!r}")
    return float(dose) * (10.0 * float(pixel_size)) ** 2 * float(detector_fraction)


def expected_counts(
    signal: np.ndarray,
    *,
    dose: float | None = None,
    counts: float | None = None,
    pixel_size: float | None = None,
    detector_fraction: float = DEFAULT_DETECTOR_FRACTION,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Scale a noise-free image to expected counts per pixel (see the module docstring).

    Parameters
    ----------
    signal : ndarray
        Noise-free intensity (any units, ≥ 0).
    dose : float, optional
        Incident electrons per Å² (needs ``pixel_size`` in nm).
    counts : float, optional
        Expected counts at the brightest pixel (give ``dose`` or ``counts``, not both).
    detector_fraction : float
        Fraction of the incident electrons detected at the brightest pixel (with ``dose``).

    Returns
    -------
    (ndarray, dict)
        Expected counts λ per pixel (float64) and a record of the definition and scale.
    """
    if dose is not None and counts is not None:
        raise ParameterError(
            "give either dose (e⁻/Å²) or counts (at the brightest pixel), not both"
        )
    if dose is not None:
        if pixel_size is None:
            raise ParameterError("a dose in e⁻/Å² needs the pixel size")
        peak = dose_to_counts(dose, pixel_size, detector_fraction)
    elif counts is not None:
        if not (math.isfinite(counts) and counts > 0):
            raise ParameterError(f"counts must be positive, got {counts!r}")
        peak = float(counts)
    else:
        raise ParameterError("expected_counts needs dose or counts")
    smax = float(np.max(signal))
    if not smax > 0:
        raise ParameterError("the noise-free image is empty (maximum ≤ 0); nothing to detect")
    scale = peak / smax
    info = {
        "dose_e_per_A2": dose,
        "counts_at_max": peak,
        "detector_fraction": detector_fraction if dose is not None else None,
        "incident_e_per_pixel": (dose * (10.0 * pixel_size) ** 2)
        if dose is not None and pixel_size
        else None,
        "counts_per_unit_intensity": scale,
        "definition": "expected counts per pixel = counts_at_max × I / max(I); with a dose, "
        "counts_at_max = dose [e/Å²] × (pixel size [Å])² × detector_fraction",
    }
    return np.asarray(signal, dtype=np.float64) * scale, info


def add_shot_noise(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson counts with the given expectation (float32)."""
    lam = np.clip(np.asarray(expected, dtype=np.float64), 0.0, None)
    return rng.poisson(lam).astype(np.float32)


def add_read_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add zero-mean Gaussian noise of standard deviation ``sigma`` (image units)."""
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ParameterError(f"read_noise must be ≥ 0, got {sigma!r}")
    if sigma == 0:
        return image
    return (image + rng.normal(0.0, sigma, image.shape)).astype(np.float32)


def smooth_background(
    shape: tuple[int, int], *, length: float, rng: np.random.Generator, gradient: float = 0.5
) -> np.ndarray:
    """A smooth random field in [0, 1]: Gaussian-correlated noise (correlation ``length`` px)
    plus a random linear ramp of relative strength ``gradient``, min–max normalised."""
    h, w = shape
    if not (math.isfinite(length) and length > 0):
        raise ParameterError(f"background length must be positive (px), got {length!r}")
    white = rng.standard_normal((h, w))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    sig = length / 2.0
    spec = scipy.fft.rfft2(white) * np.exp(-2.0 * np.pi**2 * sig**2 * (fx**2 + fy**2))
    field = scipy.fft.irfft2(spec, s=(h, w))
    field = (field - field.mean()) / (field.std() + 1e-30)
    yy, xx = np.mgrid[0:h, 0:w]
    ang = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(ang) * (xx - w / 2) / max(w, 1) + np.sin(ang) * (yy - h / 2) / max(h, 1)
    field = field + gradient * 4.0 * ramp
    lo, hi = field.min(), field.max()
    return ((field - lo) / (hi - lo + 1e-30)).astype(np.float32)
