"""Translation descriptor: the local correlation map (paper eq. 3).

For each centre c and each shift t = (m, n) on a uniform sub-grid of the window
|m|, |n| ≤ ``window``, the Pearson correlation between the patch at c and the patch at c + t.

Whole-image formulation, O(shifts · H · W) and independent of the patch size: the window sums
of the image and its square are computed once (summed-area table); for each shift, the product
of the image with its shifted copy is reduced to window sums *only at the strided centres* —
rows first (block sums of ``stride`` rows fused with the product, then a prefix sum over
blocks), then columns, batched over shifts. No patch is ever extracted.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._backend import Ops
from .grid import Grid

__all__ = ["shift_grid", "translation_features", "FLAT_VARIANCE"]

#: a patch whose intensity variance is below this fraction of the image variance is "flat";
#: the Pearson correlation involving a flat patch is defined as 0 (no evidence of similarity),
#: the same value uncorrelated noise gives, so blank areas never produce NaN
FLAT_VARIANCE = 1e-6


def shift_grid(window: int, n_shifts: int) -> np.ndarray:
    """(N, 2) integer shifts (dy, dx): a uniform ``n × n`` grid on [-window, window]², with
    ``n = round(sqrt(n_shifts))`` (duplicates removed for small windows)."""
    n = max(2, int(round(math.sqrt(max(n_shifts, 4)))))
    v = np.unique(np.rint(np.linspace(-window, window, n)).astype(np.int64))
    dy, dx = np.meshgrid(v, v, indexing="ij")
    return np.stack([dy.ravel(), dx.ravel()], axis=1)


def _box_sums(x: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums of x and x² over the (2p+1)² window centred at every valid pixel, float64,
    shape (H - 2p, W - 2p); entry [i, j] belongs to the centre (i + p, j + p)."""
    P = 2 * p + 1
    out = []
    for v in (x.astype(np.float64), x.astype(np.float64) ** 2):
        c = np.zeros((v.shape[0] + 1, v.shape[1] + 1))
        np.cumsum(np.cumsum(v, axis=0), axis=1, out=c[1:, 1:])
        out.append(c[P:, P:] - c[:-P, P:] - c[P:, :-P] + c[:-P, :-P])
    return out[0], out[1]


def sliding_block_sums(V: Any, q: int, n_out: int, axis: int) -> Any:
    """Sums of q consecutive entries of V along ``axis`` (0 or 1), for starts 0 … n_out - 1,
    by binary doubling (about log2(q) vectorised additions, no prefix-sum cancellation)."""

    def take(a: Any, start: int, n: int) -> Any:
        return a[start : start + n] if axis == 0 else a[:, start : start + n]

    out = None
    offset = 0
    power = V  # sums of `width` consecutive entries
    width = 1
    qq = q
    while qq:
        if qq & 1:
            part = take(power, offset, n_out)
            out = part if out is None else out + part
            offset += width
        qq >>= 1
        if qq:
            n_next = power.shape[axis] - width
            power = take(power, 0, n_next) + take(power, width, n_next)
            width *= 2
    return out


def window_sums_axis0(X: Any, n_out: int, P: int, s: int) -> Any:
    """Sums over rows [i·s, i·s + P) for i < n_out (X has ≥ (n_out - 1)·s + P rows)."""
    q, r = divmod(P, s)
    out = None
    if q:
        nb = n_out - 1 + q
        V = X[: nb * s].reshape((nb, s) + tuple(X.shape[1:])).sum(1)
        out = sliding_block_sums(V, q, n_out, 0)
    for j in range(r):
        part = X[q * s + j : q * s + j + (n_out - 1) * s + 1 : s]
        out = part if out is None else out + part
    return out


def window_sums_axis1(X: Any, n_out: int, P: int, s: int) -> Any:
    """Sums over columns [j·s, j·s + P) for j < n_out of a 2-D array, with strided views
    (no transpose, no reduction over a short last axis)."""
    q, r = divmod(P, s)
    out = None
    if q:
        nb = n_out - 1 + q
        V = X[:, 0 : (nb - 1) * s + 1 : s]
        for j in range(1, s):
            V = V + X[:, j : j + (nb - 1) * s + 1 : s]
        out = sliding_block_sums(V, q, n_out, 1)
    for j in range(r):
        part = X[:, q * s + j : q * s + j + (n_out - 1) * s + 1 : s]
        out = part if out is None else out + part
    return out


def product_window_sums(ops: Ops, A: Any, B: Any, ny: int, nx: int, P: int, s: int) -> Any:
    """Sums of A·B over the P × P windows whose corners are at (i·s, j·s), i < ny, j < nx.

    The product is fused with the block sums of ``s`` rows (one einsum: the only full-size
    pass); everything after works on arrays about ``s`` times smaller.
    """
    q, r = divmod(P, s)
    w = A.shape[1]
    out = None
    if q:
        nb = ny - 1 + q
        V = ops.einsum("bsw,bsw->bw", A[: nb * s].reshape(nb, s, w), B[: nb * s].reshape(nb, s, w))
        out = sliding_block_sums(window_sums_axis1(V, nx, P, s), q, ny, 0)
    for j in range(r):
        lo, hi = q * s + j, q * s + j + (ny - 1) * s + 1
        part = window_sums_axis1(A[lo:hi:s] * B[lo:hi:s], nx, P, s)
        out = part if out is None else out + part
    return out


def translation_features(
    x: np.ndarray,
    grid: Grid,
    *,
    patch: int,
    window: int,
    n_shifts: int = 100,
    device: Any = None,
    n_threads: int = 1,
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Local-correlation-map descriptor at the grid centres.

    Parameters
    ----------
    x : ndarray (H, W)
        Normalised image (zero mean, unit variance; see :func:`grid.normalise`).
    grid : Grid
        Centres; each needs ``patch // 2 + window`` px of margin.
    patch : int
        Side of the square patch, px (odd; an even value is used as ``patch + 1``).
    window : int
        Largest shift along each axis, px.
    n_shifts : int
        Number of shifts (a uniform sub-grid, ``round(sqrt(n_shifts))`` per axis).
    device : torch.device, optional
        Compute with torch on this device.
    n_threads : int
        Threads for the numpy path (shifts are split between them).

    Returns
    -------
    features : ndarray (ny, nx, N) float32
        Pearson correlations in [-1, 1]; 0 where either patch is flat.
    names : list of str
    shifts : ndarray (N, 2)
        (dy, dx) of each feature, px.
    """
    p = patch // 2
    P = 2 * p + 1
    s = grid.stride
    ny, nx = grid.ny, grid.nx
    shifts = shift_grid(window, n_shifts)
    n_px = float(P * P)
    # window sums of x and x² at every valid centre, then variance
    s1, s2 = _box_sums(x, p)
    var = s2 - s1 * s1 / n_px
    flat = FLAT_VARIANCE * n_px

    def at(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
        y0, x0 = grid.ys[0] + dy - p, grid.xs[0] + dx - p
        return a[y0 : y0 + (ny - 1) * s + 1 : s, x0 : x0 + (nx - 1) * s + 1 : s]

    ops = Ops(device)
    xt = ops.asarray(x)
    r0, c0 = int(grid.ys[0] - p), int(grid.xs[0] - p)
    L, Wc = (ny - 1) * s + P, (nx - 1) * s + P
    A = xt[r0 : r0 + L, c0 : c0 + Wc]
    # Pearson correlation = (Σab − Σa·Σb/n) / sqrt(var_a·var_b); 1/sqrt(var) is 0 for flat
    # patches, which sets their correlation to 0
    mean = s1 / n_px
    inv_sd = np.where(var > flat, 1.0 / np.sqrt(np.maximum(var, flat)), 0.0)
    s1a, isa = at(s1, 0, 0), at(inv_sd, 0, 0)
    feats = np.empty((len(shifts), ny, nx), np.float32)

    def one(k: int) -> None:
        dy, dx = (int(v) for v in shifts[k])
        B = xt[r0 + dy : r0 + dy + L, c0 + dx : c0 + dx + Wc]
        sab = ops.to_numpy(product_window_sums(ops, A, B, ny, nx, P, s))
        feats[k] = (sab - s1a * at(mean, dy, dx)) * (isa * at(inv_sd, dy, dx))

    from ._parallel import run_blocks

    run_blocks(one, range(len(shifts)), 1 if device is not None else n_threads)
    np.clip(feats, -1.0, 1.0, out=feats)
    feats = np.ascontiguousarray(feats.transpose(1, 2, 0))
    names = [f"translation ({dy:+d}, {dx:+d}) px" for dy, dx in shifts]
    return feats, names, shifts
