"""Cramér–Rao bounds on column positions: the floor any unbiased estimator can reach, used to
judge refinement accuracy in tests and benchmarks."""

from __future__ import annotations

import numpy as np

__all__ = ["gaussian_column_crb"]


def gaussian_column_crb(
    amplitude: float,
    sigma: float,
    background: float,
    *,
    noise: str = "poisson",
    gain: float = 1.0,
    read_noise: float = 0.0,
    window: float | None = None,
    oversample: int = 1,
) -> float:
    """Radial Cramér–Rao bound (px) of an isolated 2-D Gaussian column's position.

    The model ``A exp(-r²/2σ²) + B`` is sampled at pixel centres within *window* px (default
    5σ); all five parameters (x, y, A, σ, B) are unknown. The returned value is
    ``sqrt(var_x + var_y)``, the bound on the RMS radial error.

    Parameters
    ----------
    amplitude, sigma, background : float
        Peak height above background, width (px) and background, in image units.
    noise : {"poisson", "gaussian"}
        Pixel variance ``gain × intensity + read_noise²`` (Poisson-like) or ``read_noise²``.
    gain : float
        Variance per unit intensity for Poisson-like noise (1 for counts).
    read_noise : float
        Standard deviation of additive noise, image units.
    window : float, optional
        Radius of the pixels that carry information (px).
    oversample : int
        Accepted for API symmetry; the bound uses point sampling at pixel centres.
    """
    window = 5.0 * sigma if window is None else window
    half = int(np.ceil(window)) + 1
    off = np.arange(-half, half + 1, dtype=np.float64)
    yy, xx = np.meshgrid(off, off, indexing="ij")
    keep = xx**2 + yy**2 <= window**2
    u, v = xx[keep], yy[keep]
    r2 = u * u + v * v
    e = np.exp(-0.5 * r2 / sigma**2)
    mu = amplitude * e + background
    if noise == "poisson":
        var = gain * np.maximum(mu, 0.0) + read_noise**2
    elif noise == "gaussian":
        var = np.full_like(mu, read_noise**2)
    else:
        raise ValueError("noise must be 'poisson' or 'gaussian'")
    var = np.maximum(var, 1e-300)
    jac = np.stack(
        [
            amplitude * e * u / sigma**2,
            amplitude * e * v / sigma**2,
            e,
            amplitude * e * r2 / sigma**3,
            np.ones_like(e),
        ],
        axis=1,
    )
    fisher = (jac / var[:, None]).T @ jac
    cov = np.linalg.inv(fisher)
    return float(np.sqrt(cov[0, 0] + cov[1, 1]))
