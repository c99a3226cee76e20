"""Synthetic lattices of Gaussian columns with exact positions, for atom-finding tests."""

import numpy as np
from scipy.spatial import cKDTree


def gaussian_lattice(
    size=256,
    spacing=12.0,
    sigma=2.0,
    amplitude=100.0,
    background=10.0,
    rotation_deg=7.0,
    jitter=0.3,
    noise="poisson",
    read_noise=0.0,
    seed=0,
    b_site=None,
):
    """Square lattice (optionally with a B site at the cell centre, amplitude b_site × A),
    rendered exactly at pixel centres; returns image, positions (x, y), labels (0 A, 1 B)."""
    rng = np.random.default_rng(seed)
    th = np.radians(rotation_deg)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    n = int(size / spacing) + 4
    ij = np.stack(np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1)), -1).reshape(-1, 2)
    sites = [(ij * spacing, 0)]
    if b_site is not None:
        sites.append(((ij + 0.5) * spacing, 1))
    xy_all, lab_all, amp_all = [], [], []
    for pts, lab in sites:
        p = pts @ rot.T + size / 2 + 0.37
        p = p + rng.normal(0, jitter, p.shape)
        xy_all.append(p)
        lab_all.append(np.full(len(p), lab))
        amp_all.append(np.full(len(p), amplitude * (1.0 if lab == 0 else b_site)))
    xy = np.concatenate(xy_all)
    lab = np.concatenate(lab_all)
    amp = np.concatenate(amp_all)
    inside = (
        (xy[:, 0] >= -3 * sigma)
        & (xy[:, 0] <= size - 1 + 3 * sigma)
        & (xy[:, 1] >= -3 * sigma)
        & (xy[:, 1] <= size - 1 + 3 * sigma)
    )
    xy, lab, amp = xy[inside], lab[inside], amp[inside]
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.full((size, size), float(background))
    for (x, y), a in zip(xy, amp, strict=True):
        r = int(np.ceil(5 * sigma))
        x0, y0 = int(round(x)), int(round(y))
        ys = slice(max(0, y0 - r), min(size, y0 + r + 1))
        xs = slice(max(0, x0 - r), min(size, x0 + r + 1))
        img[ys, xs] += a * np.exp(-((xx[ys, xs] - x) ** 2 + (yy[ys, xs] - y) ** 2) / (2 * sigma**2))
    if noise == "poisson":
        img = rng.poisson(img).astype(float)
    elif noise == "gaussian":
        img = img + rng.normal(0, read_noise, img.shape)
    keep = (xy[:, 0] >= 0) & (xy[:, 0] <= size - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= size - 1)
    return img, xy[keep], lab[keep]


def match(found, truth, radius, shape, margin):
    """Interior precision, recall and RMSE (px) of matched positions."""
    h, w = shape

    def inner(p):
        return (
            (p[:, 0] >= margin)
            & (p[:, 0] <= w - 1 - margin)
            & (p[:, 1] >= margin)
            & (p[:, 1] <= h - 1 - margin)
        )

    t_in = truth[inner(truth)]
    f_in = found[inner(found)] if len(found) else found
    if len(found) == 0:
        return 0.0, 0.0, np.inf, np.zeros(len(t_in), bool)
    d, _ = cKDTree(found).query(t_in)
    tp = d < radius
    d2, _ = cKDTree(truth).query(f_in)
    precision = float((d2 < radius).mean()) if len(f_in) else 0.0
    rmse = float(np.sqrt(np.mean(d[tp] ** 2))) if tp.any() else np.inf
    return precision, float(tp.mean()), rmse, tp
