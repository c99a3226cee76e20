"""Similarity metrics between an aligned query and library entries, batched.

* **MSE** (baseline): mean squared difference of the zero-mean, unit-variance patches over the
  valid (inside-the-query) pixels. Lower is better.
* **SSIM** (Wang et al. 2004): Gaussian window (σ = 1.5 px), ``K1 = 0.01``, ``K2 = 0.03`` and a
  data range of 8 (the patches are standardised), averaged over valid pixels at least 3σ from
  the invalid region. The library's local means and variances are computed once per library
  (:meth:`Library.ssim_stats`); per candidate only the query's local moments and the cross term
  are filtered. Higher is better. It equals ``skimage.metrics.structural_similarity`` with
  ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False`` on the same arrays
  (tested).
* **EMD**: earth mover's distance between the query's columns (positions from the atom finder,
  intensities) and the entry's visible columns, both within a disk around the patch centre,
  after the alignment. Each column is a unit mass at (x, y, λ·I) (nm; I relative to the
  brightest sublattice); a column left unmatched costs ``τ``. With unit masses the optimal
  transport plan is a permutation (Birkhoff), so the exact EMD of the two sets augmented with
  dummy points is a linear assignment, solved by ``scipy.optimize.linear_sum_assignment``.
  The value is the total cost divided by the mean number of columns (nm). Lower is better.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment

__all__ = [
    "local_stats",
    "ssim_batch",
    "mse_batch",
    "emd",
    "emd_batch",
    "column_peaks",
    "ssim_scikit_image",
    "SSIM_SIGMA",
    "SSIM_RANGE",
]

SSIM_SIGMA = 1.5
SSIM_RANGE = 8.0
K1, K2 = 0.01, 0.03


def _gauss(a: np.ndarray, sigma: float) -> np.ndarray:
    return ndi.gaussian_filter(a, sigma=(0, sigma, sigma), mode="reflect", truncate=3.5)


def local_stats(images: np.ndarray, sigma: float = SSIM_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """Local mean and variance (Gaussian window) of a stack (N, H, W), float32.

    Filtered by FFT (:func:`_gauss_fft`): equal to a direct Gaussian filter wherever the kernel
    does not reach the border, which is the only region :func:`ssim_batch` averages over."""
    imgs = np.asarray(images, dtype=np.float32)
    out_mu = np.empty_like(imgs)
    out_var = np.empty_like(imgs)
    for s in range(0, len(imgs), 256):
        x = imgs[s : s + 256]
        mu = _gauss_fft(x, sigma)
        out_mu[s : s + 256] = mu
        out_var[s : s + 256] = _gauss_fft(x * x, sigma) - mu * mu
    return out_mu, out_var


def _standardise(q: np.ndarray, valid: np.ndarray) -> np.ndarray:
    n = np.maximum(valid.sum(axis=(1, 2)), 1)
    qv = np.where(valid, q, 0.0)
    m = qv.sum(axis=(1, 2)) / n
    d = np.where(valid, q - m[:, None, None], 0.0)
    sd = np.sqrt((d * d).sum(axis=(1, 2)) / n)
    return (d / np.maximum(sd, 1e-12)[:, None, None]).astype(np.float32)


def _eval_mask(valid: np.ndarray, sigma: float) -> np.ndarray:
    """Valid pixels at least 3σ from an invalid one (square erosion, separable)."""
    r = int(np.ceil(3 * sigma))
    if valid.all():
        return valid
    v = valid.astype(np.uint8)
    v = ndi.minimum_filter1d(v, 2 * r + 1, axis=1, mode="nearest")
    v = ndi.minimum_filter1d(v, 2 * r + 1, axis=2, mode="nearest")
    return v.astype(bool)


def mse_batch(patches: np.ndarray, valid: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """MSE of standardised patches vs standardised references over valid pixels."""
    q = _standardise(patches, valid)
    d = np.where(valid, q - refs, 0.0)
    return (d * d).sum(axis=(1, 2)) / np.maximum(valid.sum(axis=(1, 2)), 1)


def _gauss_fft(a: np.ndarray, sigma: float, truncate: float = 3.5) -> np.ndarray:
    """Gaussian filter of a stack by FFT with the same truncated kernel as ``_gauss``; equal to
    it wherever the kernel does not reach the border (the region SSIM is averaged over)."""
    import scipy.fft

    r = int(truncate * sigma + 0.5)
    x = np.arange(-r, r + 1)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    H, W = a.shape[-2:]
    ky = np.zeros(H)
    kx = np.zeros(W)
    ky[x % H] += k
    kx[x % W] += k
    T = (scipy.fft.fft(ky)[:, None] * scipy.fft.rfft(kx)[None, :]).real.astype(np.float32)
    return scipy.fft.irfft2(scipy.fft.rfft2(a, axes=(-2, -1)) * T, s=(H, W), axes=(-2, -1)).astype(
        np.float32
    )


def ssim_batch(
    patches: np.ndarray,
    valid: np.ndarray,
    refs: np.ndarray,
    ref_mu: np.ndarray,
    ref_var: np.ndarray,
    sigma: float = SSIM_SIGMA,
    data_range: float = SSIM_RANGE,
    standardise: bool = True,
) -> np.ndarray:
    """Mean SSIM of each patch with its reference, with precomputed reference statistics.

    Parameters
    ----------
    patches, valid : (K, H, W)
        Query patches in each candidate's frame and where they hold data.
    refs, ref_mu, ref_var : (K, H, W)
        Library images and their local means and variances (same Gaussian window).

    Returns
    -------
    ndarray (K,)
    """
    q = _standardise(patches, valid) if standardise else np.where(valid, patches, 0.0)
    q = q.astype(np.float32)
    mu_q = _gauss_fft(q, sigma)
    var_q = _gauss_fft(q * q, sigma) - mu_q * mu_q
    cov = _gauss_fft(q * refs, sigma) - mu_q * ref_mu
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    s = ((2 * mu_q * ref_mu + c1) * (2 * cov + c2)) / (
        (mu_q * mu_q + ref_mu * ref_mu + c1) * (var_q + ref_var + c2)
    )
    m = _eval_mask(valid, sigma)
    r = int(3.5 * sigma + 0.5)  # the filter radius: as scikit-image crops (and beyond which
    # the FFT filter's wrap-around does not reach)
    m = m.copy()
    m[:, :r] = m[:, -r:] = False
    m[:, :, :r] = m[:, :, -r:] = False
    return (s * m).sum(axis=(1, 2)) / np.maximum(m.sum(axis=(1, 2)), 1)


def ssim_scikit_image(a: np.ndarray, b: np.ndarray, sigma: float = SSIM_SIGMA) -> float:
    """Mean SSIM of two images by ``skimage.metrics.structural_similarity`` with this module's
    Gaussian window, constants and data range, over the pixels :func:`ssim_batch` averages
    (a border of the filter radius cropped): the reference the batched SSIM is checked and
    timed against, one call per pair."""
    from skimage.metrics import structural_similarity

    _, full = structural_similarity(
        np.asarray(a, dtype=np.float64),
        np.asarray(b, dtype=np.float64),
        gaussian_weights=True,
        sigma=sigma,
        use_sample_covariance=False,
        data_range=SSIM_RANGE,
        full=True,
    )
    r = int(3.5 * sigma + 0.5)
    return float(full[r:-r, r:-r].mean())


def emd(a: np.ndarray, b: np.ndarray, *, tau: float = 0.1) -> float:
    """EMD between two sets of unit-mass points (rows = feature vectors), with unmatched
    points costing ``tau``; total cost / mean set size. Exact (linear assignment)."""
    n, m = len(a), len(b)
    if n == 0 and m == 0:
        return 0.0
    if n == 0 or m == 0:
        return float(tau * (n + m) / (0.5 * (n + m)))
    c = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))
    big = np.empty((n + m, m + n))
    big[:n, :m] = np.minimum(c, 2 * tau)  # a pair farther than 2τ is no better than 2 dummies
    big[:n, m:] = np.where(np.eye(n, dtype=bool), tau, 1e6)
    big[n:, :m] = np.where(np.eye(m, dtype=bool), tau, 1e6)
    big[n:, m:] = 0.0
    r, cidx = linear_sum_assignment(big)
    return float(big[r, cidx].sum() / (0.5 * (n + m)))


def emd_batch(
    query_feats: list[np.ndarray], lib_feats: list[np.ndarray], *, tau: float = 0.1
) -> np.ndarray:
    """:func:`emd` for pairs of feature sets."""
    return np.array([emd(a, b, tau=tau) for a, b in zip(query_feats, lib_feats, strict=True)])


def column_peaks(
    image: np.ndarray,
    valid: np.ndarray | None,
    pixel_size: float,
    *,
    spacing: float = 0.2,
    merge: float = 0.08,
    relative: float = 0.15,
    smoothing: float = 0.0125,
) -> np.ndarray:
    """Columns of a library-scale patch: the atom finder's local-maximum detector
    (:class:`atomscope.atoms.detectors.LocalMaxima`; response = height above the local minimum
    within ``spacing`` nm), maxima closer than ``merge`` nm pruned, responses below
    ``relative`` × the strongest dropped, sub-pixel by a quadratic fit.

    Returns
    -------
    ndarray (n, 3)
        x, y (px) and response of each column.
    """
    from ..atoms.detectors import DetectorSetup, LocalMaxima

    img = np.asarray(image, dtype=np.float32)
    if valid is not None:
        img = np.where(valid, img, float(img[valid].min()) if valid.any() else 0.0)
    nn = max(spacing / pixel_size, 3.0)
    sig = max(smoothing / pixel_size, 0.3)
    setup = DetectorSetup(sigmas=np.array([sig]), threshold_range=(1e-6, 1.0), nn_distance=nn)
    lm = LocalMaxima(img, setup)
    resp = lm.cand_response
    if len(resp) == 0:
        return np.zeros((0, 3))
    top = float(np.mean(np.sort(resp)[-3:]))
    sel = lm.select(relative * top, overlap=1.0 - min(merge / pixel_size / nn, 0.95))
    xy = lm.cand_xy[sel].astype(np.int64)
    r = resp[sel]
    sm = ndi.gaussian_filter(img, sig, mode="reflect")
    h, w = sm.shape
    ix, iy = xy[:, 0], xy[:, 1]
    inner = (ix > 0) & (ix < w - 1) & (iy > 0) & (iy < h - 1)
    if valid is not None:
        inner &= valid[np.clip(iy, 0, h - 1), np.clip(ix, 0, w - 1)]
    ix, iy, r = ix[inner], iy[inner], r[inner]

    def _par(a0, a1, a2):
        d = a0 - 2 * a1 + a2
        return np.where(d < 0, np.clip(0.5 * (a0 - a2) / np.where(d < 0, d, -1), -0.5, 0.5), 0)

    dx = _par(sm[iy, ix - 1], sm[iy, ix], sm[iy, ix + 1])
    dy = _par(sm[iy - 1, ix], sm[iy, ix], sm[iy + 1, ix])
    return np.column_stack([ix + dx, iy + dy, r])
