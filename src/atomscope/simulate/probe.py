"""The STEM probe: aberration function, probe intensity and its optical transfer function (OTF).

Physics (incoherent imaging, written from first principles):

* relativistic electron wavelength ``λ = h / sqrt(2 m0 e V (1 + e V / (2 m0 c²)))``;
* aperture function ``A(k) = 1`` for ``|k| ≤ α/λ`` (``α`` the convergence semi-angle), else 0;
* aberration phase ``χ(k) = π λ Δf k² + ½ π Cs λ³ k⁴`` (``Δf < 0`` is underfocus in this sign
  convention; the Scherzer-like probe defocus for a positive ``Cs`` is ``Δf ≈ −1.2 √(Cs λ)``);
* probe amplitude ``ψ(r) = IFT[A(k) e^{−iχ(k)}]``, probe intensity ``|ψ(r)|²``, normalised to unit
  integral;
* its Fourier transform, the OTF, is the autocorrelation of the pupil ``A e^{−iχ}``; it is exactly
  zero beyond ``|k| = 2α/λ``. Without aberrations it is the "chinese hat"
  ``(2/π)(arccos s − s √(1 − s²))``, ``s = |k| λ / (2α)``;
* a Gaussian (partially coherent) source of intensity FWHM ``d`` multiplies the OTF by
  ``exp(−2π² σ² k²)``, ``σ = d / (2 √(2 ln 2))``.

Only round aberrations (defocus, Cs) are modelled, so the OTF is radially symmetric and is stored
as a 1-D radial profile; :meth:`Probe.transfer` evaluates it on any FFT grid.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np
import scipy.fft
from scipy import constants

from ..errors import ParameterError

__all__ = ["Probe", "electron_wavelength", "FWHM_PER_SIGMA"]

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def electron_wavelength(voltage: float) -> float:
    """Relativistic electron wavelength in nm for an accelerating voltage in volts.

    Parameters
    ----------
    voltage : float
        Accelerating voltage (V), e.g. ``300e3``.

    Returns
    -------
    float
        Wavelength in nm (0.0019687 nm at 300 kV).
    """
    if not (math.isfinite(voltage) and voltage > 0):
        raise ParameterError(f"voltage must be a positive number of volts, got {voltage!r}")
    m0, e, c, h = constants.m_e, constants.e, constants.c, constants.h
    ev = e * voltage
    return h / math.sqrt(2.0 * m0 * ev * (1.0 + ev / (2.0 * m0 * c * c))) * 1e9


def _chinese_hat(s: np.ndarray) -> np.ndarray:
    """Autocorrelation of a unit disk, normalised to 1 at 0; ``s = k / (2 k_max)``."""
    s = np.clip(np.abs(s), 0.0, 1.0)
    return (2.0 / np.pi) * (np.arccos(s) - s * np.sqrt(1.0 - s * s))


@functools.lru_cache(maxsize=64)
def _radial_otf(
    wavelength: float,
    alpha: float,
    defocus: float,
    cs_nm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Radial OTF of the coherent probe (no source envelope) as (k [1/nm], otf) samples."""
    kmax = alpha / wavelength
    if defocus == 0.0 and cs_nm == 0.0:
        k = np.linspace(0.0, 2.0 * kmax, 2049)
        return k, _chinese_hat(k / (2.0 * kmax))
    # k-sampling: at least 128 pixels across the aperture radius (pixelation error ~2e-3), and
    # a phase step of at most 0.15 rad per k-pixel at the aperture edge (equivalently a
    # real-space window several times the geometric probe size)
    grad = 2.0 * np.pi * (wavelength * abs(defocus) * kmax + abs(cs_nm) * wavelength**3 * kmax**3)
    r_k = int(max(128, math.ceil(grad * kmax / 0.15)))
    if r_k > 768:
        raise ParameterError(
            f"defocus {defocus:g} nm and Cs {cs_nm * 1e-6:g} mm spread the probe too much to "
            "compute it (the convolution model is meant for focused probes); use |defocus| "
            "below ~50 nm at 25 mrad, or a smaller aberration"
        )
    n = scipy.fft.next_fast_len(4 * r_k + 8)
    dk = kmax / r_k
    f = np.fft.fftfreq(n, d=1.0 / n) * dk
    kx, ky = np.meshgrid(f, f, indexing="xy")
    k2 = kx * kx + ky * ky
    kabs = np.sqrt(k2)
    # anti-aliased aperture edge: fractional coverage across one k-pixel
    aperture = np.clip(0.5 + (kmax - kabs) / dk, 0.0, 1.0)
    chi = np.pi * wavelength * defocus * k2 + 0.5 * np.pi * cs_nm * wavelength**3 * k2 * k2
    pupil = aperture * np.exp(-1j * chi)
    psi = scipy.fft.ifft2(pupil)
    intensity = (psi * psi.conj()).real
    otf2d = scipy.fft.fft2(intensity).real
    otf2d /= otf2d[0, 0]
    # radial average in bins of width dk, each placed at the mean |k| of its members
    bins = np.rint(kabs / dk).astype(np.int64).ravel()
    keep = bins <= 2 * r_k + 2
    count = np.bincount(bins[keep])
    ok = count > 0
    k = np.bincount(bins[keep], weights=kabs.ravel()[keep])[ok] / count[ok]
    prof = np.bincount(bins[keep], weights=otf2d.ravel()[keep])[ok] / count[ok]
    k[0], prof[0] = 0.0, 1.0
    prof[k >= 2.0 * kmax] = 0.0
    return k, prof


@dataclass(frozen=True)
class Probe:
    """An aberration-limited STEM probe with a Gaussian source-size envelope.

    Parameters
    ----------
    voltage : float
        Accelerating voltage in V (default 300 kV).
    convergence : float
        Convergence semi-angle α in rad (default 25 mrad).
    defocus : float
        Defocus Δf in nm; ``χ = π λ Δf k² + ½ π Cs λ³ k⁴`` (negative = underfocus).
    cs : float
        Spherical aberration C3 in mm (default 0: an aberration-corrected probe).
    source_size : float
        Full width at half maximum of the Gaussian effective source, in nm (default 0.05 nm,
        σ = FWHM / 2.3548). It blurs the probe intensity, as partial spatial coherence does.
    """

    voltage: float = 300e3
    convergence: float = 25e-3
    defocus: float = 0.0
    cs: float = 0.0
    source_size: float = 0.05

    def __post_init__(self) -> None:
        for name in ("voltage", "convergence"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise ParameterError(f"probe {name} must be positive, got {v!r}")
        if not (0 < self.convergence < 0.2):
            raise ParameterError(
                f"convergence is the semi-angle in rad (e.g. 25e-3), got {self.convergence!r}"
            )
        for name in ("defocus", "cs", "source_size"):
            v = float(getattr(self, name))
            if not math.isfinite(v):
                raise ParameterError(f"probe {name} must be finite, got {v!r}")
        if self.source_size < 0:
            raise ParameterError(f"source_size must be ≥ 0 nm, got {self.source_size!r}")

    # -- derived quantities -------------------------------------------------------------------
    @property
    def wavelength(self) -> float:
        """Electron wavelength λ in nm."""
        return electron_wavelength(self.voltage)

    @property
    def k_max(self) -> float:
        """Aperture radius α/λ in 1/nm; the OTF vanishes beyond 2 k_max."""
        return self.convergence / self.wavelength

    @property
    def source_sigma(self) -> float:
        """Standard deviation of the Gaussian source in nm."""
        return self.source_size / FWHM_PER_SIGMA

    def as_dict(self) -> dict[str, float]:
        """Parameters with units in the key names (for metadata)."""
        d = asdict(self)
        return {
            "voltage_V": d["voltage"],
            "convergence_rad": d["convergence"],
            "defocus_nm": d["defocus"],
            "cs_mm": d["cs"],
            "source_size_fwhm_nm": d["source_size"],
            "wavelength_nm": self.wavelength,
        }

    def otf(self, k: np.ndarray | float) -> np.ndarray:
        """Optical transfer function at spatial frequencies ``|k|`` in 1/nm (OTF(0) = 1).

        Includes the source-size envelope ``exp(−2π²σ²k²)``.
        """
        kk, prof = _radial_otf(
            self.wavelength, self.convergence, float(self.defocus), float(self.cs) * 1e6
        )
        k = np.abs(np.asarray(k, dtype=np.float64))
        out = np.interp(k, kk, prof, right=0.0)
        if self.source_size > 0:
            out = out * np.exp(-2.0 * np.pi**2 * self.source_sigma**2 * k * k)
        return out

    @property
    def _profile(self) -> tuple[np.ndarray, np.ndarray]:
        return _profile(self)

    def intensity(self, r: np.ndarray | float) -> np.ndarray:
        """Probe intensity at distances ``r`` (nm) from its centre, normalised to unit area
        (units 1/nm²)."""
        rr, prof = self._profile
        return np.interp(np.abs(np.asarray(r, dtype=np.float64)), rr, prof, right=0.0)

    @property
    def fwhm(self) -> float:
        """Full width at half maximum of the probe intensity, in nm."""
        return _fwhm(self)

    def radius(self, level: float = 1e-4) -> float:
        """Radius (nm) beyond which the probe intensity stays below ``level`` × its peak."""
        r, prof = self._profile
        above = np.nonzero(np.abs(prof) >= level * prof[0])[0]
        return float(r[min(above[-1] + 1, r.size - 1)])

    # -- transfer function on an FFT grid ------------------------------------------------------
    def transfer(self, shape: tuple[int, int], pixel_size: float) -> np.ndarray:
        """OTF on the ``rfft2`` grid of an image of ``shape`` (rows, cols) with square pixels of
        ``pixel_size`` nm; float64 array of shape ``(rows, cols // 2 + 1)``."""
        return _transfer(self, (int(shape[0]), int(shape[1])), float(pixel_size))


@functools.lru_cache(maxsize=32)
def _transfer(probe: Probe, shape: tuple[int, int], pixel_size: float) -> np.ndarray:
    ky = np.fft.fftfreq(shape[0], d=pixel_size)
    kx = np.fft.rfftfreq(shape[1], d=pixel_size)
    k = np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    out = probe.otf(k.ravel()).reshape(k.shape)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=64)
def _profile(probe: Probe) -> tuple[np.ndarray, np.ndarray]:
    """Radial probe intensity I(r) (r in nm, unit integral, 1/nm²) by a Hankel transform of
    the radial OTF: ``I(r) = 2π ∫ q J0(2π q r) OTF(q) dq``."""
    from scipy.special import j0

    q = np.linspace(0.0, 2.0 * probe.k_max, 801)
    t = probe.otf(q)
    extent = (
        30.0 / probe.k_max + 4.0 * abs(probe.defocus) * probe.convergence + 6.0 * probe.source_sigma
    )
    r = np.linspace(0.0, extent, 700)
    integrand = j0(2.0 * np.pi * np.outer(r, q)) * (q * t)[None, :]
    prof = 2.0 * np.pi * np.trapezoid(integrand, q, axis=1)
    prof.flags.writeable = False
    return r, prof


@functools.lru_cache(maxsize=64)
def _fwhm(probe: Probe) -> float:
    r, prof = _profile(probe)
    half = 0.5 * prof[0]
    i = int(np.argmax(prof < half))
    r0, r1, p0, p1 = r[i - 1], r[i], prof[i - 1], prof[i]
    return float(2.0 * (r0 + (half - p0) * (r1 - r0) / (p1 - p0)))
