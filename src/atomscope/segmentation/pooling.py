"""Top-k max-pooling: the translation-invariant summary of a symmetry-score map.

Rotation and reflection scores peak at the symmetry centres of the motif and drop between them,
so a score at one position says little; the k largest scores within a window around each
centre (sorted, largest first) are the same anywhere in a grain (paper, Sec. II A 2 and Fig. 3).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["top_k_pool", "kept_ranks"]


def kept_ranks(k: int, n_keep: int | None) -> np.ndarray:
    """Ranks (0 = largest) kept of the top k: all, or ``n_keep`` evenly spaced ones from the
    largest to the k-th largest."""
    if n_keep is None or n_keep >= k:
        return np.arange(k)
    return np.unique(np.rint(np.linspace(0, k - 1, n_keep)).astype(np.int64))


def top_k_pool(
    maps: np.ndarray,
    half: int,
    k: int,
    *,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
    n_keep: int | None = None,
    device: Any = None,
    n_threads: int = 1,
) -> np.ndarray:
    """The ``k`` largest values of each channel in (2·half+1)² windows.

    Parameters
    ----------
    maps : ndarray (C, NY, NX)
        Score maps on a grid of centres.
    half : int
        Half-width of the pooling window, in grid points.
    k : int
        Largest values per channel and window (at most the window size).
    rows, cols : ndarray of int, optional
        First row / column (grid index) of each output window; default every window
        (0 … NY − 2·half − 1). Window [r, r + 2·half] is centred on grid row r + half, so
        pooling moves nothing.
    n_keep : int, optional
        Keep only this many of the k values, at evenly spaced ranks (see :func:`kept_ranks`).
    device : torch.device, optional
        Use ``torch.topk`` on this device.
    n_threads : int
        Threads for the numpy path (channels are split between them).

    Returns
    -------
    ndarray (len(rows), len(cols), C·n) float32
        Per channel, largest first; n = k or the kept ranks.
    """
    c, ny, nx = maps.shape
    size = 2 * half + 1
    k = int(min(k, size * size))
    rows = np.arange(ny - 2 * half) if rows is None else np.asarray(rows, np.int64)
    cols = np.arange(nx - 2 * half) if cols is None else np.asarray(cols, np.int64)
    keep = kept_ranks(k, n_keep)
    oy, ox, nk = len(rows), len(cols), len(keep)
    if device is not None:
        import torch

        t = torch.as_tensor(np.ascontiguousarray(maps), dtype=torch.float32, device=device)
        u = t.unfold(1, size, 1).unfold(2, size, 1)  # (C, NY', NX', size, size)
        r = torch.as_tensor(rows, device=device)
        q = torch.as_tensor(cols, device=device)
        u = u[:, r][:, :, q].reshape(c, oy, ox, size * size)
        top = torch.topk(u, k, dim=-1, largest=True, sorted=True).values
        top = top[..., torch.as_tensor(keep, device=device)]
        return top.permute(1, 2, 0, 3).reshape(oy, ox, c * nk).cpu().numpy()
    out = np.empty((oy, ox, c, nk), np.float32)
    chunk = max(1, 2_000_000 // max(ox * size * size, 1))  # bound the temporary copy

    def channel(ch: int) -> None:
        view = sliding_window_view(maps[ch], (size, size))  # no copy
        for r0 in range(0, oy, chunk):
            block = view[rows[r0 : r0 + chunk]][:, cols].reshape(-1, ox, size * size)
            part = np.partition(block, size * size - k, axis=-1)[..., -k:]
            part.sort(axis=-1)
            out[r0 : r0 + chunk, :, ch] = part[..., ::-1][..., keep]

    from ._parallel import run_blocks

    run_blocks(channel, range(c), n_threads)
    return out.reshape(oy, ox, c * nk)
