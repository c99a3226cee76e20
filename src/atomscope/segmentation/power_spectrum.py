"""Windowed power spectrum of the patch at each centre: the baseline descriptor.

The patch (Hann-windowed, weighted mean removed, zero-padded to a fast FFT length) is Fourier
transformed; the features are log10 of the power normalised by the patch's total power, so a
change of contrast or thickness does not move a patch to another cluster. Spectra longer than
``BIN_ABOVE`` frequencies per axis are summed in 2 × 2 frequency bins (a 41 px patch gives
~250 features instead of ~1000: PCA stays an exact covariance eigendecomposition, and the
Hann window's leakage makes neighbouring frequencies redundant anyway). The power spectrum is
invariant to translation, so no pooling is needed. A flat patch (windowed variance below
``FLAT_VARIANCE`` of the image's) gets the constant feature log10(ε), whatever rounding noise
it holds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .grid import Grid
from .translation import FLAT_VARIANCE

__all__ = ["power_spectrum_features", "EPS"]

#: floor of the normalised power before the logarithm
EPS = 1e-6
#: FFT lengths above this are binned 2 × 2
BIN_ABOVE = 24


def _hann(P: int) -> np.ndarray:
    h = np.hanning(P + 2)[1:-1]
    return np.outer(h, h).astype(np.float32)


def power_spectrum_features(
    x: np.ndarray,
    grid: Grid,
    *,
    patch: int,
    device: Any = None,
    block_rows: int = 8,
    n_threads: int = 1,
) -> tuple[np.ndarray, list[str]]:
    """Log normalised power spectra at the grid centres.

    Parameters
    ----------
    x : ndarray (H, W)
        Normalised image.
    grid : Grid
        Centres; each needs ``patch // 2`` px of margin.
    patch : int
        Side of the square patch, px (odd).
    device : torch.device, optional
    n_threads : int
        Threads for the numpy path.

    Returns
    -------
    features : ndarray (ny, nx, L·(L//2 + 1)) float32
        L = the FFT length (``scipy.fft.next_fast_len(patch)``); half plane (the power spectrum
        of a real patch is centro-symmetric).
    names : list of str
        ``"power (ky, kx)"`` in cycles per FFT length.
    """
    import scipy.fft as sfft

    p = patch // 2
    P = 2 * p + 1
    L = sfft.next_fast_len(P, real=True)
    hann = _hann(P)
    hsum = float(hann.sum())
    flat = FLAT_VARIANCE * float((hann * hann).sum())  # windowed Σ(x − mean)² of a flat patch
    ny, nx = grid.ny, grid.nx
    b = 2 if L > BIN_ABOVE else 1
    nky, nkx = L // b, (L // 2 + 1) // b
    nk = nky * nkx
    feats = np.empty((ny, nx, nk), np.float32)

    def binned(power: Any) -> Any:
        """(..., L, L//2+1) -> (..., nky·nkx), summing b × b bins."""
        pw = power[..., : nky * b, : nkx * b]
        if b > 1:
            pw = pw.reshape(pw.shape[:-2] + (nky, b, nkx, b)).sum(-1).sum(-2)
        return pw.reshape(pw.shape[:-2] + (nk,))

    view = sliding_window_view(x, (P, P))
    yi, xi = grid.ys - p, grid.xs - p
    torch_mod = None
    if device is not None:
        import torch as torch_mod

        hann_t = torch_mod.as_tensor(hann, device=device)

    def block(i0: int) -> None:
        patches = view[yi[i0 : i0 + block_rows]][:, xi]  # (nb, nx, P, P) copy
        if torch_mod is not None:
            t = torch_mod.as_tensor(patches, device=device)
            mean = (t * hann_t).sum((-2, -1), keepdim=True) / hsum
            win = (t - mean) * hann_t
            ok = ((win * win).sum((-2, -1)) > flat)[..., None]
            F = torch_mod.fft.rfft2(win, s=(L, L))
            power = binned(F.real**2 + F.imag**2)
            total = power.sum(-1, keepdim=True)
            norm = torch_mod.where(ok, power / total.clamp_min(1e-30), torch_mod.zeros_like(power))
            feats[i0 : i0 + block_rows] = torch_mod.log10(norm + EPS).cpu().numpy()
            return
        mean = np.einsum("abij,ij->ab", patches, hann)[..., None, None] / hsum
        win = (patches - mean) * hann
        ok = (np.einsum("abij,abij->ab", win, win) > flat)[..., None]
        F = sfft.rfft2(win, s=(L, L))
        power = binned(F.real**2 + F.imag**2)
        total = power.sum(-1, keepdims=True)
        norm = np.divide(power, total, out=np.zeros_like(power), where=ok & (total > 0))
        feats[i0 : i0 + block_rows] = np.log10(norm + EPS)

    from ._parallel import run_blocks

    run_blocks(block, range(0, ny, block_rows), 1 if device is not None else n_threads)
    ky = np.fft.fftfreq(L, 1.0 / L).astype(int)[: nky * b : b]
    kx = np.arange(0, nkx * b, b)
    names = [
        f"power (ky {a:+d}, kx {c:d})" + (f" (+{b - 1})" if b > 1 else "") for a in ky for c in kx
    ]
    return feats, names
