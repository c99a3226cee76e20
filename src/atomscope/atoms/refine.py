"""Sub-pixel refinement of column positions, for all columns at once.

* :func:`refine_center_of_mass`: iterated centre of mass in a disk with the local background
  (an annulus median) removed.
* :func:`fit_gaussians`: a batched Levenberg–Marquardt fit of 2-D Gaussians plus a constant
  background, isotropic (x, y, A, σ, B) or elliptical (x, y, A, precision matrix, B). Every
  column's normal equations are built and solved together as (N, n, n) arrays, so there is no
  Python loop over columns. Pixels are weighted by the inverse of a noise model
  ``var = gain · intensity + var0`` estimated from the image (Poisson-like and read noise), which
  brings the position error to the Cramér–Rao bound at low dose where plain least squares does
  not. Weak columns beside bright ones are refitted after subtracting their fitted neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "NoiseModel",
    "estimate_noise_model",
    "refine_center_of_mass",
    "GaussianFit",
    "fit_gaussians",
    "render_gaussians",
]


@dataclass(frozen=True)
class NoiseModel:
    """Pixel variance as a function of the noise-free intensity: ``max(gain * I + var0,
    floor)``; the floor (half the smallest variance observed) keeps weights finite where the
    linear model is extrapolated below the observed intensities."""

    gain: float
    var0: float
    floor: float = 0.0

    def variance(self, intensity: np.ndarray) -> np.ndarray:
        v = self.gain * np.maximum(intensity, 0.0) + self.var0
        floor = max(self.floor, 1e-12, 1e-6 * abs(self.var0))
        return np.maximum(v, floor)


def noise_model_from_residuals(
    model: np.ndarray, resid: np.ndarray, n_bins: int = 16
) -> NoiseModel:
    """Fit ``var = gain * I + var0`` to squared residuals binned by model intensity I.

    Medians of squared residuals (robust to outliers and to the odd misfit column) are
    converted to variances (a χ²(1) median is 0.455 × its mean) and regressed on intensity;
    a non-positive gain means intensity-independent noise.
    """
    m = np.asarray(model, dtype=np.float64).ravel()
    r2 = np.asarray(resid, dtype=np.float64).ravel() ** 2
    ok = np.isfinite(m) & np.isfinite(r2)
    m, r2 = m[ok], r2[ok]
    if m.size < 20:
        return NoiseModel(0.0, float(max(np.mean(r2) if r2.size else 1.0, 1e-12)))
    edges = np.unique(np.percentile(m, np.linspace(0, 100, n_bins + 1)))
    if len(edges) < 3:
        return NoiseModel(0.0, float(max(np.median(r2) / 0.4549, 1e-12)))
    idx = np.clip(np.digitize(m, edges) - 1, 0, len(edges) - 2)
    centres, variances, wts = [], [], []
    for b in range(len(edges) - 1):
        sel = idx == b
        if sel.sum() < 20:
            continue
        centres.append(m[sel].mean())
        variances.append(np.median(r2[sel]) / 0.4549)
        wts.append(np.sqrt(sel.sum()))
    c, v, w = (np.asarray(a) for a in (centres, variances, wts))
    if len(c) < 3:
        return NoiseModel(0.0, float(max(np.median(r2) / 0.4549, 1e-12)))
    a_mat = np.stack([c, np.ones_like(c)], axis=1) * w[:, None]
    (gain, var0), *_ = np.linalg.lstsq(a_mat, v * w, rcond=None)
    vmin = float(v.min())
    if not np.isfinite(gain) or gain <= 0 or gain * (c.max() - c.min()) < 0.2 * vmin:
        return NoiseModel(0.0, float(max(np.average(v, weights=w), 1e-12)))
    # the variance must stay positive over the observed intensities
    var0 = max(float(var0), -gain * float(c.min()) + 0.05 * vmin)
    return NoiseModel(float(gain), var0, 0.5 * vmin)


def estimate_noise_model(image: np.ndarray, n_bins: int = 24) -> NoiseModel:
    """Estimate ``var = gain * I + var0`` from the image itself.

    The residual of a light Gaussian smoothing (σ = 1 px) is mostly noise for well-sampled
    atomic-resolution images; its squared median in bins of smoothed intensity, scaled for the
    filter, is regressed on intensity. A non-positive gain means intensity-independent noise.
    """
    img = np.asarray(image, dtype=np.float64)
    smooth = ndi.gaussian_filter(img, 1.0, mode="reflect")
    resid = img - smooth
    # variance of (x - G*x) for white noise: 1 - 2 h0 + Σ h², h the Gaussian kernel (σ = 1)
    k = np.exp(-0.5 * np.arange(-4, 5) ** 2)
    k /= k.sum()
    h2 = np.outer(k, k)
    factor = 1 - 2 * h2[4, 4] + (h2**2).sum()
    lo, hi = np.percentile(smooth, [1, 99])
    if not hi > lo:
        v = float(np.var(resid) / factor)
        return NoiseModel(0.0, max(v, 1e-12))
    edges = np.linspace(lo, hi, n_bins + 1)
    idx = np.clip(np.digitize(smooth.ravel(), edges) - 1, 0, n_bins - 1)
    r2 = resid.ravel() ** 2
    counts = np.bincount(idx, minlength=n_bins)
    centres, variances, wts = [], [], []
    for b in range(n_bins):
        if counts[b] < 50:
            continue
        sel = idx == b
        # median of a χ²(1) variable is 0.455 × its mean
        variances.append(np.median(r2[sel]) / 0.4549 / factor)
        centres.append(smooth.ravel()[sel].mean())
        wts.append(np.sqrt(counts[b]))
    if len(centres) < 3:
        v = float(np.var(resid) / factor)
        return NoiseModel(0.0, max(v, 1e-12))
    c = np.asarray(centres)
    v = np.asarray(variances)
    w = np.asarray(wts)
    a_mat = np.stack([c, np.ones_like(c)], axis=1) * w[:, None]
    (gain, var0), *_ = np.linalg.lstsq(a_mat, v * w, rcond=None)
    vmin = float(v.min())
    if gain <= 0 or gain * c.max() < 0.1 * vmin:
        return NoiseModel(0.0, float(np.average(v, weights=w)))
    # keep the variance positive over the observed range
    var0 = max(var0, -gain * lo + 0.05 * vmin)
    return NoiseModel(float(gain), float(var0))


def _patches(image: np.ndarray, xy: np.ndarray, half: int):
    """Integer-centred windows of size (2·half+1)² around each position.

    Returns pixel values (N, P), x and y pixel coordinates (N, P) and a validity mask (N, P)
    that is False outside the image.
    """
    h, w = image.shape
    cx = np.rint(xy[:, 0]).astype(np.int64)
    cy = np.rint(xy[:, 1]).astype(np.int64)
    off = np.arange(-half, half + 1)
    oy, ox = np.meshgrid(off, off, indexing="ij")
    gx = cx[:, None] + ox.ravel()[None, :]
    gy = cy[:, None] + oy.ravel()[None, :]
    valid = (gx >= 0) & (gx < w) & (gy >= 0) & (gy < h)
    vals = image[np.clip(gy, 0, h - 1), np.clip(gx, 0, w - 1)].astype(np.float64)
    return vals, gx.astype(np.float64), gy.astype(np.float64), valid


def refine_center_of_mass(
    image: np.ndarray,
    xy: np.ndarray,
    radius: float,
    *,
    n_iter: int = 4,
) -> np.ndarray:
    """Iterated centre of mass of each column in a disk of *radius* px, with the local
    background (a plane fitted to the surrounding annulus) subtracted first.

    The window is cut once around the starting position; the disk and the background annulus
    then follow the centre of mass inside it. Columns that wander further than
    min(*radius*, 2 px) from their start are reset to the start.
    """
    xy0 = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(xy0) == 0:
        return xy0.copy()
    img = np.asarray(image, dtype=np.float32)
    half = int(np.ceil(radius + 2))
    vals, gx, gy, valid = _patches(img, xy0, half)
    cur = xy0.copy()
    for _ in range(n_iter):
        dx = gx - cur[:, :1]
        dy = gy - cur[:, 1:]
        d2 = dx * dx + dy * dy
        ring = valid & (d2 > radius**2) & (d2 <= (radius + 1.5) ** 2)
        # local background: a plane fitted to the annulus around the current centre (so a
        # slope across the column does not pull the centre of mass)
        ones = ring.astype(np.float32)
        sx, sy = dx * ones, dy * ones
        ata = np.stack(
            [
                np.stack([ones.sum(1), sx.sum(1), sy.sum(1)], -1),
                np.stack([sx.sum(1), (sx * dx).sum(1), (sx * dy).sum(1)], -1),
                np.stack([sy.sum(1), (sy * dx).sum(1), (sy * dy).sum(1)], -1),
            ],
            axis=1,
        ) + 1e-9 * np.eye(3)
        rv = np.where(ring, vals, 0.0)
        atb = np.stack([rv.sum(1), (rv * dx).sum(1), (rv * dy).sum(1)], -1)
        coef = np.linalg.solve(ata, atb[..., None])[..., 0]
        plane = coef[:, :1] + coef[:, 1:2] * dx + coef[:, 2:3] * dy
        wts = np.where(valid & (d2 <= radius**2), np.maximum(vals - plane, 0.0), 0.0)
        s_w = wts.sum(axis=1)
        ok = s_w > 0
        new = cur.copy()
        new[ok, 0] = (wts[ok] * gx[ok]).sum(axis=1) / s_w[ok]
        new[ok, 1] = (wts[ok] * gy[ok]).sum(axis=1) / s_w[ok]
        # the window was cut around the start: a centre that leaves it is not trusted
        moved = np.hypot(*(new - xy0).T) > min(radius, 2.0)
        new[moved] = xy0[moved]
        step = np.max(np.abs(new - cur), initial=0)
        cur = new
        if step < 1e-3:
            break
    return cur


@dataclass
class GaussianFit:
    """Per-column results of :func:`fit_gaussians` (all arrays of length N, pixels)."""

    xy: np.ndarray
    amplitude: np.ndarray
    sigma: np.ndarray  # geometric-mean width (px)
    sigma_major: np.ndarray
    sigma_minor: np.ndarray
    angle_deg: np.ndarray  # orientation of the major axis, degrees from +x
    background: np.ndarray
    integrated_intensity: np.ndarray  # 2π A σx σy
    residual: np.ndarray  # reduced χ² of the weighted fit (≈ 1 when the noise model holds)
    uncertainty: np.ndarray  # standard error of each coordinate (px), sqrt((var_x+var_y)/2)
    converged: np.ndarray
    iterations: int
    noise: NoiseModel | None = None
    binning: int = 1


class _Windows:
    """Disk-shaped fit windows around integer centres, as (N, P) arrays of pixel values and
    offsets (P,) shared by every column; pixels outside the image get zero weight."""

    def __init__(self, image: np.ndarray, centres: np.ndarray, radius: float):
        h, w = image.shape
        half = int(np.ceil(radius))
        off = np.arange(-half, half + 1)
        oy, ox = np.meshgrid(off, off, indexing="ij")
        disk = ox**2 + oy**2 <= radius**2
        # float32 halves the memory traffic of the batched fit; offsets and intensities stay
        # far from float32's precision limits (positions are relative to the window centre)
        self.ox = ox[disk].astype(np.float32)
        self.oy = oy[disk].astype(np.float32)
        self.cx = centres[:, 0].astype(np.int64)
        self.cy = centres[:, 1].astype(np.int64)
        gx = self.cx[:, None] + self.ox.astype(np.int64)[None, :]
        gy = self.cy[:, None] + self.oy.astype(np.int64)[None, :]
        self.valid = (gx >= 0) & (gx < w) & (gy >= 0) & (gy < h)
        self.flat = np.clip(gy, 0, h - 1) * w + np.clip(gx, 0, w - 1)
        self.values = image.ravel()[self.flat].astype(np.float32)

    def sample(self, image: np.ndarray) -> np.ndarray:
        return image.ravel()[self.flat]


def _model(p: np.ndarray, win: _Windows, elliptical: bool, with_jac: bool = True):
    """Model (N, P) and Jacobian as a list of (N, P) arrays. ``p[:, 0:2]`` are offsets of the
    centre from the window's integer centre (px)."""
    p = p.astype(np.float32)
    u = win.ox[None, :] - p[:, 0:1]
    v = win.oy[None, :] - p[:, 1:2]
    amp = p[:, 2:3]
    if not elliptical:
        inv_s2 = 1.0 / (p[:, 3:4] * p[:, 3:4])
        r2 = u * u + v * v
        e = np.exp(-0.5 * inv_s2 * r2)
        ae = amp * e
        f = ae + p[:, 4:5]
        if not with_jac:
            return f, None
        aes = ae * inv_s2
        return f, [aes * u, aes * v, e, aes * r2 / p[:, 3:4], None]
    a, b, c = p[:, 3:4], p[:, 4:5], p[:, 5:6]
    au_bv = a * u + b * v
    bu_cv = b * u + c * v
    e = np.exp(-0.5 * (u * au_bv + v * bu_cv))
    ae = amp * e
    f = ae + p[:, 6:7]
    if not with_jac:
        return f, None
    return f, [ae * au_bv, ae * bu_cv, e, -0.5 * ae * u * u, -ae * u * v, -0.5 * ae * v * v, None]


def _normal_equations(jac: list, w: np.ndarray, r: np.ndarray):
    """J^T W J (N, n, n) and J^T W r (N, n); ``None`` in *jac* stands for a column of ones."""
    n_par = len(jac)
    n_cols = w.shape[0]
    w = w.astype(np.float32, copy=False)
    r = r.astype(np.float32, copy=False)
    wj = [w if j is None else w * j for j in jac]
    hess = np.empty((n_cols, n_par, n_par))
    grad = np.empty((n_cols, n_par))
    for i in range(n_par):
        grad[:, i] = np.einsum("np,np->n", wj[i], r)
        for k in range(i, n_par):
            if jac[k] is None:
                val = wj[i].sum(axis=1)
            else:
                val = np.einsum("np,np->n", wj[i], jac[k])
            hess[:, i, k] = val
            hess[:, k, i] = val
    return hess, grad


def _valid_params(p: np.ndarray, elliptical: bool, max_sigma: float) -> np.ndarray:
    # columns are peaks: a positive amplitude, and a width between 0.3 px and the window
    if elliptical:
        a, b, c = p[:, 3], p[:, 4], p[:, 5]
        lim = 1.0 / max_sigma**2
        return (
            (a > lim)
            & (c > lim)
            & (a * c - b * b > lim * lim * 0.01)
            & (p[:, 2] > 0)
            & np.isfinite(p).all(1)
        )
    return (p[:, 3] > 0.3) & (p[:, 3] < max_sigma) & (p[:, 2] > 0) & np.isfinite(p).all(1)


def _subset(win: _Windows, idx: np.ndarray) -> _Windows:
    sub = object.__new__(_Windows)
    sub.ox, sub.oy = win.ox, win.oy
    return sub


def _lm(p, data, win, weights, elliptical, max_sigma, n_iter, *, start, max_shift, tol=1e-3):
    """Batched Levenberg–Marquardt on every column at once (weights = 1/variance).

    Steps that leave the valid parameter region (width, positive definiteness) or move a
    column further than *max_shift* px from *start* are rejected and the damping grows."""
    n_cols, n_par = p.shape
    lam = np.full(n_cols, 1e-3)
    f, jac = _model(p, win, elliptical)
    r = f - data
    cost = np.einsum("np,np->n", weights, r * r)
    converged = np.zeros(n_cols, bool)
    eye = np.eye(n_par)
    it = 0
    active = np.arange(n_cols)
    for it in range(1, n_iter + 1):  # noqa: B007 - the count is returned
        if active.size == 0:
            break
        jac_a = [None if j is None else j[active] for j in jac]
        hess, grad = _normal_equations(jac_a, weights[active], r[active])
        diag = np.einsum("nii->ni", hess)
        damped = hess + lam[active, None, None] * (diag[:, :, None] * eye) + 1e-12 * eye
        step = -np.linalg.solve(damped, grad[..., None])[..., 0]
        trial = p[active] + step
        sub = _subset(win, active)
        ft, jt = _model(trial, sub, elliptical)
        rt = ft - data[active]
        ct = np.einsum("np,np->n", weights[active], rt * rt)
        shift = np.hypot(*(trial[:, :2] - start[active]).T)
        ok = (
            (ct <= cost[active])
            & _valid_params(trial, elliptical, max_sigma)
            & (shift <= max_shift)
        )
        acc = active[ok]
        p[acc] = trial[ok]
        r[acc] = rt[ok]
        for j, jn in zip(jac, jt, strict=True):
            if j is not None:
                j[acc] = jn[ok]
        rel = (cost[acc] - ct[ok]) / np.maximum(cost[acc], 1e-300)
        cost[acc] = ct[ok]
        lam[acc] = np.maximum(lam[acc] / 5.0, 1e-9)
        rej = active[~ok]
        lam[rej] = lam[rej] * 8.0
        done = np.zeros(active.size, bool)
        done[ok] = (np.abs(step[ok, :2]).max(axis=1) < tol) | (rel < 1e-7)
        done[~ok] = lam[rej] > 1e6
        converged[active[done]] = True
        active = active[~done]
    f, jac = _model(p, win, elliptical)
    return p, cost, jac, converged, it


def render_gaussians(
    shape: tuple[int, int],
    xy: np.ndarray,
    amplitude: np.ndarray,
    precision: np.ndarray,
    reach: float = 4.0,
    max_radius: float | None = None,
) -> np.ndarray:
    """Sum of 2-D Gaussians (no background) on an image grid.

    *precision* is (N, 3): entries (a, b, c) of ``exp(-(a u² + 2 b u v + c v²) / 2)``. Each
    Gaussian is drawn out to *reach* times the widest σ, but no further than *max_radius* px.
    """
    h, w = shape
    out = np.zeros(h * w)
    if len(xy) == 0:
        return out.reshape(h, w)
    a, b, c = precision.T
    max_s = float(np.sqrt(1.0 / np.maximum(np.minimum(a, c), 1e-6)).max())
    half = int(np.ceil(reach * min(max_s, max_radius / reach if max_radius else 50.0)))
    cx = np.rint(xy[:, 0]).astype(np.int64)
    cy = np.rint(xy[:, 1]).astype(np.int64)
    off = np.arange(-half, half + 1)
    oy, ox = np.meshgrid(off, off, indexing="ij")
    disk = ox**2 + oy**2 <= (half + 0.5) ** 2
    ox, oy = ox[disk], oy[disk]
    for start in range(0, len(xy), 4096):
        sl = slice(start, start + 4096)
        u = (cx[sl, None] - xy[sl, :1]) + ox[None, :]
        v = (cy[sl, None] - xy[sl, 1:]) + oy[None, :]
        q = a[sl, None] * u * u + 2 * b[sl, None] * u * v + c[sl, None] * v * v
        val = amplitude[sl, None] * np.exp(-0.5 * q)
        gx = cx[sl, None] + ox[None, :]
        gy = cy[sl, None] + oy[None, :]
        ok = (gx >= 0) & (gx < w) & (gy >= 0) & (gy < h)
        out += np.bincount((gy * w + gx)[ok], weights=val[ok], minlength=h * w)
    return out.reshape(h, w)


def fit_gaussians(
    image: np.ndarray,
    xy: np.ndarray,
    *,
    radius: float,
    sigma0: float | np.ndarray,
    elliptical: bool = False,
    noise: NoiseModel | None = None,
    neighbour_passes: int = 1,
    n_iter: int = 15,
    max_binning: int = 4,
) -> GaussianFit:
    """Fit a 2-D Gaussian plus constant background to every column at once.

    Heavily oversampled images (column σ of several pixels) are first binned by summing
    b × b blocks, with b chosen so that the binned σ stays ≥ 1.6 px: the position information
    is essentially unchanged (sums of counts keep their Poisson statistics) while the number of
    pixels per fit drops by b². Positions, widths and uncertainties are reported in the
    original pixels.

    Parameters
    ----------
    image : ndarray (H, W)
        Intensities (bright columns).
    xy : ndarray (N, 2)
        Starting positions (x, y) in px.
    radius : float
        Fit window radius in px (about half the nearest-neighbour distance).
    sigma0 : float or ndarray
        Starting Gaussian width in px.
    elliptical : bool
        Fit an elliptical Gaussian (free widths and orientation) instead of a round one.
    noise : NoiseModel, optional
        Pixel variance model. When None, an unweighted first fit is made and the model is
        estimated from its residuals.
    neighbour_passes : int
        Extra passes in which each column is refitted after subtracting its fitted neighbours
        (helps weak columns beside bright ones).
    n_iter : int
        Maximum Levenberg–Marquardt iterations per pass.
    max_binning : int
        Largest binning factor (1 disables binning).

    Returns
    -------
    GaussianFit
    """
    s_med = float(np.median(np.atleast_1d(sigma0))) if np.size(sigma0) else 1.0
    b = int(min(max_binning, max(1, np.floor(s_med / 1.6))))
    img = np.asarray(image, dtype=np.float64)
    if b < 2 or min(img.shape) < 8 * b:
        return _fit_gaussians(
            img,
            xy,
            radius=radius,
            sigma0=sigma0,
            elliptical=elliptical,
            noise=noise,
            neighbour_passes=neighbour_passes,
            n_iter=n_iter,
        )
    h, w = (img.shape[0] // b) * b, (img.shape[1] // b) * b
    binned = img[:h, :w].reshape(h // b, b, w // b, b).sum(axis=(1, 3))
    # block (i, j) covers pixels i*b … i*b+b-1: its centre is at i*b + (b-1)/2
    shift = (b - 1) / 2.0
    xy_b = (np.asarray(xy, dtype=np.float64) - shift) / b
    fit = _fit_gaussians(
        binned,
        xy_b,
        radius=max(radius / b, 2.0),
        sigma0=np.asarray(sigma0, dtype=np.float64) / b,
        elliptical=elliptical,
        noise=None,
        neighbour_passes=neighbour_passes,
        n_iter=n_iter,
    )
    fit.xy = fit.xy * b + shift
    for name in ("sigma", "sigma_major", "sigma_minor", "uncertainty"):
        setattr(fit, name, getattr(fit, name) * b)
    # amplitude and background per original pixel; the integrated intensity is unchanged
    fit.amplitude = fit.amplitude / b**2
    fit.background = fit.background / b**2
    fit.binning = b
    return fit


def _fit_gaussians(
    image: np.ndarray,
    xy: np.ndarray,
    *,
    radius: float,
    sigma0: float | np.ndarray,
    elliptical: bool = False,
    noise: NoiseModel | None = None,
    neighbour_passes: int = 1,
    n_iter: int = 15,
) -> GaussianFit:
    """:func:`fit_gaussians` at the image's own sampling."""
    img = np.asarray(image, dtype=np.float64)
    xy0 = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    n = len(xy0)
    if n == 0:
        z = np.zeros(0)
        return GaussianFit(np.zeros((0, 2)), z, z, z, z, z, z, z, z, z, np.zeros(0, bool), 0)
    centres = np.rint(xy0)
    win = _Windows(img, centres, radius)
    valid = win.valid
    vals = win.values
    start = xy0 - centres
    s0 = np.broadcast_to(np.asarray(sigma0, dtype=np.float64), (n,)).copy()
    filled = np.where(valid, vals, np.inf)
    k = max(1, int(0.1 * vals.shape[1]))
    bg0 = np.partition(filled, k, axis=1)[:, k]
    bg0 = np.where(np.isfinite(bg0), bg0, 0.0)
    amp0 = np.maximum(np.where(valid, vals, -np.inf).max(axis=1) - bg0, 1e-6)
    if elliptical:
        inv = 1.0 / s0**2
        p = np.stack([start[:, 0], start[:, 1], amp0, inv, np.zeros(n), inv, bg0], axis=1)
    else:
        p = np.stack([start[:, 0], start[:, 1], amp0, s0, bg0], axis=1)
    max_sigma = max(radius, 1.5 * float(s0.max()))
    iterations = 0
    if noise is None:
        # unweighted first fit; its residuals give the noise model for the weighted fits
        p, _, _, _, it = _lm(
            p,
            vals,
            win,
            valid.astype(np.float64),
            elliptical,
            max_sigma,
            min(n_iter, 12),
            start=start,
            max_shift=radius,
            tol=1e-2,
        )
        iterations += it
        f, _ = _model(p, win, elliptical, with_jac=False)
        noise = noise_model_from_residuals(f[valid], (vals - f)[valid])
    others = np.zeros_like(vals)
    for pass_no in range(neighbour_passes + 1):
        data = vals - others
        # weighted least squares with weights = 1 / variance of the current model (the model
        # is already close after the first fit, so one reweighting suffices)
        f, _ = _model(p, win, elliptical, with_jac=False)
        weights = np.where(valid, 1.0 / noise.variance(f + others), 0.0)
        p, cost, jac, converged, it = _lm(
            p,
            data,
            win,
            weights,
            elliptical,
            max_sigma,
            n_iter,
            start=start,
            max_shift=radius,
        )
        iterations += it
        if pass_no == neighbour_passes:
            break
        prec = _precision(p, elliptical)
        full = render_gaussians(
            img.shape, p[:, :2] + centres, p[:, 2], prec, max_radius=2.0 * radius
        )
        own, _ = _model(p, win, elliptical, with_jac=False)
        new_others = np.where(valid, win.sample(full) - (own - p[:, -1:]), 0.0)
        # neighbours that leave less than 1 % of a column's amplitude (or of the noise) in its
        # window change nothing: skip the refit
        limit = np.maximum(0.01 * p[:, 2], 0.2 * np.sqrt(noise.floor or noise.var0 or 1e-12))
        if np.all(np.abs(new_others - others).max(axis=1) < limit):
            break
        others = new_others
    n_par = p.shape[1]
    dof = np.maximum(valid.sum(axis=1) - n_par, 1)
    red_chi2 = cost / dof
    hess, _ = _normal_equations(jac, weights, np.zeros_like(weights))
    try:
        cov = np.linalg.inv(hess + 1e-12 * np.eye(n_par))
        var_xy = 0.5 * (cov[:, 0, 0] + cov[:, 1, 1])
        # weights are 1/variance, so cov is in px²; inflate only when the scatter exceeds the
        # noise model
        unc = np.sqrt(np.maximum(var_xy, 0) * np.maximum(red_chi2, 1.0))
    except np.linalg.LinAlgError:
        unc = np.full(n, np.nan)
    prec = _precision(p, elliptical)
    mats = np.stack(
        [np.stack([prec[:, 0], prec[:, 1]], -1), np.stack([prec[:, 1], prec[:, 2]], -1)], axis=1
    )
    evals, evecs = np.linalg.eigh(np.linalg.inv(mats))
    s_minor = np.sqrt(np.maximum(evals[:, 0], 0))
    s_major = np.sqrt(np.maximum(evals[:, 1], 0))
    angle = np.degrees(np.arctan2(evecs[:, 1, 1], evecs[:, 0, 1])) % 180.0
    amp = p[:, 2]
    return GaussianFit(
        xy=p[:, :2] + centres,
        amplitude=amp,
        sigma=np.sqrt(s_major * s_minor),
        sigma_major=s_major,
        sigma_minor=s_minor,
        angle_deg=angle,
        background=p[:, -1],
        integrated_intensity=2 * np.pi * amp * s_major * s_minor,
        residual=red_chi2,
        uncertainty=unc,
        converged=converged,
        iterations=iterations,
        noise=noise,
    )


def _precision(params: np.ndarray, elliptical: bool) -> np.ndarray:
    if elliptical:
        return params[:, 3:6].copy()
    inv = 1.0 / params[:, 3] ** 2
    return np.stack([inv, np.zeros_like(inv), inv], axis=1)
