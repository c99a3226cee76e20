"""Rotation and reflection scores on circular patches, for all centres at once.

Each centre's circular patch is resampled on a polar grid (``n_radii`` rings × ``n_angles``
angles, bilinear). A rotation by α and a reflection about a line at angle φ map the polar grid
onto itself, so the rotated or reflected patch has the same samples, the same mean and the same
variance; its Pearson correlation with the original needs only Σ f·Of. Per ring, with
F(k) the angular Fourier transform of the ring's samples (length n):

* rotation by α:    Σ_θ f(θ) f(θ + α)   = (1/n) Σ_k |F(k)|² cos(k α)
* reflection at φ:  Σ_θ f(θ) f(2φ − θ)  = (1/n) Σ_k Re[F(k)² e^{ik2φ}]

so one real FFT per ring gives every rotation and every mirror line (exact when the angles are
multiples of 360°/n, trigonometric interpolation otherwise). Rings are weighted by their radius
(the polar area element), so the score approximates the correlation over the disc's area.

Whole-image, batched gather: for every polar offset, the samples of *all* centres of a block of
grid rows are one strided slice of a pre-shifted copy of the image (x positions rounded to
1/16 px, y interpolated linearly), so there is no Python loop over centres, and ``device=``
does the same with ``torch.nn.functional.grid_sample``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .grid import Grid
from .translation import FLAT_VARIANCE

__all__ = ["PolarGeometry", "polar_scores", "X_QUANT"]

#: x positions of polar samples are rounded to 1/X_QUANT px (error ≤ 0.016 px) so that one
#: horizontally pre-interpolated copy of the image serves many offsets
X_QUANT = 32


@dataclass(frozen=True)
class PolarGeometry:
    """Rings (radii, px) and angles of the polar resampling."""

    radius: float
    n_radii: int = 20
    n_angles: int = 60

    @property
    def radii(self) -> np.ndarray:
        return (np.arange(self.n_radii) + 0.5) * self.radius / self.n_radii

    @property
    def weights(self) -> np.ndarray:
        r = self.radii
        return r / r.sum()

    def offsets(self) -> tuple[np.ndarray, np.ndarray]:
        """(dy, dx) of every sample, shape (n_radii · n_angles,), ring-major; angles counter-
        clockwise as displayed (y grows downwards)."""
        th = 2 * np.pi * np.arange(self.n_angles) / self.n_angles
        r = self.radii[:, None]
        return (-r * np.sin(th)[None]).ravel(), (r * np.cos(th)[None]).ravel()

    @property
    def margin(self) -> int:
        """Pixels needed around a centre (ring radius + 1 for bilinear interpolation)."""
        return int(math.ceil(self.radius)) + 1


def _score_matrices(
    geom: PolarGeometry, rotations: tuple[float, ...], mirrors: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real matrices turning (P, Re S, Im S) spectra (K frequencies) into Σ f·Of per ring sum.

    Returns M_P (n_rot + 1, K) — the first row is lag 0 (Σ f²) — and M_re, M_im (n_mir, K).
    """
    n = geom.n_angles
    K = n // 2 + 1
    k = np.arange(K)
    c = np.full(K, 2.0)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    lags = np.deg2rad(np.array((0.0,) + tuple(rotations)))
    m_p = c[None] * np.cos(np.outer(lags, k)) / n
    two_phi = 2 * np.deg2rad(np.array(mirrors, dtype=float))
    m_re = c[None] * np.cos(np.outer(two_phi, k)) / n
    m_im = -c[None] * np.sin(np.outer(two_phi, k)) / n
    return m_p, m_re, m_im


def _dft_matrices(geom: PolarGeometry) -> np.ndarray:
    """(n_radii, 2K, n_angles) real DFT matrices (cos rows, then −sin rows), each scaled by
    sqrt(ring weight) so that products of transformed rings carry the ring weights."""
    n = geom.n_angles
    K = n // 2 + 1
    ang = 2 * np.pi * np.outer(np.arange(K), np.arange(n)) / n
    d = np.concatenate([np.cos(ang), -np.sin(ang)])
    return (np.sqrt(geom.weights)[:, None, None] * d[None]).astype(np.float32)


def _spectra_numpy(
    x: np.ndarray, grid: Grid, geom: PolarGeometry, block_rows: int = 32, n_threads: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Radius-weighted ring spectra at every centre: P = Σ_r w_r |F_r|², S = Σ_r w_r F_r², and
    the weighted DC Σ_r w_r F_r(0). Shapes (K, ny, nx) (S complex)."""
    s = grid.stride
    ny, nx = grid.ny, grid.nx
    h, w = x.shape
    n_r, n_t = geom.n_radii, geom.n_angles
    K = n_t // 2 + 1
    dy, dx = geom.offsets()
    Q = X_QUANT
    rm = geom.margin
    iy = np.floor(rm + dy).astype(np.int64)  # row within a strip starting at ys[i0] - rm
    fy = (rm + dy - iy).astype(np.float32)
    xq = np.rint((grid.xs[0] + dx) * Q).astype(np.int64)
    ix, qx = np.divmod(xq, Q)
    dft = _dft_matrices(geom)
    sqw = np.sqrt(geom.weights).astype(np.float32)
    P = np.empty((K, ny, nx), np.float32)
    S = np.empty((K, ny, nx), np.complex64)
    D = np.empty((ny, nx), np.float32)
    ws = -(-(w + 1) // s) * s
    order = np.argsort(qx, kind="stable")  # visit offsets grouped by x fraction

    def block(i0: int) -> None:
        nb = min(block_rows, ny - i0)
        ra = int(grid.ys[i0]) - rm
        hs = -(-((nb - 1) * s + 2 * rm + 3) // s) * s
        strip = np.zeros((hs, ws + 1), np.float32)
        rows = x[max(ra, 0) : min(ra + hs, h)]
        strip[max(-ra, 0) : max(-ra, 0) + len(rows), :w] = rows
        f = np.empty((n_r * n_t, nb, nx), np.float32)
        tmp = np.empty((nb, nx), np.float32)
        q_cur = -1
        sub = strip
        for o in order:
            q = int(qx[o])
            if q != q_cur:
                t = np.float32(q / Q)
                shifted = strip[:, :ws] * (1 - t) + strip[:, 1 : ws + 1] * t if q else strip[:, :ws]
                # residue classes: sub[a, b, i, j] = shifted[i·s + a, j·s + b]
                sub = np.ascontiguousarray(
                    shifted.reshape(hs // s, s, ws // s, s).transpose(1, 3, 0, 2)
                )
                q_cur = q
            y0, x0 = int(iy[o]), int(ix[o])
            a = sub[y0 % s, x0 % s, y0 // s : y0 // s + nb, x0 // s : x0 // s + nx]
            b = sub[
                (y0 + 1) % s, x0 % s, (y0 + 1) // s : (y0 + 1) // s + nb, x0 // s : x0 // s + nx
            ]
            np.subtract(b, a, out=tmp)
            tmp *= fy[o]
            np.add(tmp, a, out=f[o])
        G = np.matmul(dft, f.reshape(n_r, n_t, nb * nx))  # (n_r, 2K, M): √w·Re F, √w·Im F
        re, im = G[:, :K], G[:, K:]
        rr = np.einsum("rkm,rkm->km", re, re)
        ii = np.einsum("rkm,rkm->km", im, im)
        ri = np.einsum("rkm,rkm->km", re, im)
        P[:, i0 : i0 + nb] = (rr + ii).reshape(K, nb, nx)
        S[:, i0 : i0 + nb] = (rr - ii + 2j * ri).reshape(K, nb, nx)
        D[i0 : i0 + nb] = (sqw @ re[:, 0]).reshape(nb, nx)

    from ._parallel import run_blocks

    run_blocks(block, range(0, ny, block_rows), n_threads)
    return P, S, D


def _spectra_torch(
    x: np.ndarray, grid: Grid, geom: PolarGeometry, device: Any, block_rows: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`_spectra_numpy`, with ``grid_sample`` at the same (x-rounded) positions."""
    import torch
    import torch.nn.functional as F_

    h, w = x.shape
    n_r, n_t = geom.n_radii, geom.n_angles
    dy, dx = geom.offsets()
    Q = X_QUANT
    img = torch.as_tensor(x, dtype=torch.float32, device=device)[None, None]
    wts = torch.as_tensor(geom.weights, dtype=torch.float32, device=device)
    xs = torch.as_tensor(
        np.rint((grid.xs[:, None] + dx[None]) * Q) / Q, dtype=torch.float32, device=device
    )  # (nx, O)
    dyt = torch.as_tensor(dy, dtype=torch.float32, device=device)
    Ps, Ss, Ds = [], [], []
    for i0 in range(0, grid.ny, block_rows):
        yc = torch.as_tensor(grid.ys[i0 : i0 + block_rows], dtype=torch.float32, device=device)
        nb = len(yc)
        yy = (yc[:, None, None] + dyt[None, None]).expand(nb, grid.nx, -1)
        xx = xs[None].expand(nb, -1, -1)
        # align_corners=True: -1 and 1 are the centres of the first and last pixels
        g = torch.stack([xx * (2 / (w - 1)) - 1, yy * (2 / (h - 1)) - 1], dim=-1)
        f = F_.grid_sample(
            img,
            g.reshape(1, nb * grid.nx, -1, 2),
            mode="bilinear",
            padding_mode="border",
            align_corners=True,
        )
        f = f.reshape(nb, grid.nx, n_r, n_t)
        Fr = torch.fft.rfft(f, dim=-1)  # (nb, nx, n_r, K)
        Ps.append(torch.einsum("abrk,r->kab", Fr.real**2 + Fr.imag**2, wts))
        Ss.append(torch.einsum("abrk,r->kab", Fr * Fr, wts.to(Fr.dtype)))
        Ds.append(torch.einsum("abr,r->ab", Fr[..., 0].real, wts))
    return (
        torch.cat(Ps, 1).cpu().numpy(),
        torch.cat(Ss, 1).cpu().numpy(),
        torch.cat(Ds, 0).cpu().numpy(),
    )


def polar_scores(
    x: np.ndarray,
    grid: Grid,
    geom: PolarGeometry,
    *,
    rotations: tuple[float, ...] = (),
    mirrors: tuple[float, ...] = (),
    device: Any = None,
    n_threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of each circular patch with its rotated / reflected copy.

    Parameters
    ----------
    x : ndarray (H, W)
        Normalised image.
    grid : Grid
        Centres (each needs ``geom.margin`` px of margin).
    geom : PolarGeometry
    rotations : tuple of float
        Rotation angles, degrees (e.g. 180, 120, 90, 60 for 2-, 3-, 4-, 6-fold axes).
    mirrors : tuple of float
        Directions of the mirror lines, degrees counter-clockwise from +x as displayed.
    device : torch.device, optional
    n_threads : int
        Threads for the numpy path (blocks of grid rows are split between them).

    Returns
    -------
    rot : ndarray (len(rotations), ny, nx) and ref : ndarray (len(mirrors), ny, nx)
        Scores in [-1, 1]; 0 where the patch is flat (variance below ``FLAT_VARIANCE`` of the
        image's).
    """
    if device is None:
        P, S, D = _spectra_numpy(x, grid, geom, n_threads=n_threads)
    else:
        P, S, D = _spectra_torch(x, grid, geom, device)
    m_p, m_re, m_im = _score_matrices(geom, tuple(rotations), tuple(mirrors))
    K = P.shape[0]
    n = geom.n_angles
    Pf = P.reshape(K, -1).astype(np.float64)
    auto = m_p @ Pf  # (1 + n_rot, N): weighted Σ f·f(θ+α)
    mean = D.reshape(-1).astype(np.float64) / n
    e2 = auto[0] / n
    var = e2 - mean * mean
    ok = var > FLAT_VARIANCE
    inv = np.where(ok, 1.0 / np.maximum(var, FLAT_VARIANCE), 0.0)
    rot = (auto[1:] / n - mean * mean) * inv
    if len(mirrors):
        Sf = S.reshape(K, -1)
        conv = m_re @ Sf.real.astype(np.float64) + m_im @ Sf.imag.astype(np.float64)
        ref = (conv / n - mean * mean) * inv
    else:
        ref = np.zeros((0, Pf.shape[1]))
    shape = (grid.ny, grid.nx)
    rot = np.clip(rot, -1, 1).astype(np.float32).reshape((-1,) + shape)
    ref = np.clip(ref, -1, 1).astype(np.float32).reshape((-1,) + shape)
    return rot, ref
