"""atomscope.match.metrics and .align: batched SSIM, exact EMD, Fourier–Mellin alignment."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from atomscope.match.align import (
    PolarGrid,
    correlate_polar,
    fourier_peaks,
    library_polar,
    query_polar,
    reduce_shift,
    resample,
    shift_candidates,
)
from atomscope.match.library import bragg_peaks
from atomscope.match.metrics import (
    SSIM_SIGMA,
    emd,
    local_stats,
    mse_batch,
    ssim_batch,
    ssim_scikit_image,
)


def _smooth_noise(rng, shape, sigma=2.0):
    from scipy import ndimage as ndi

    a = ndi.gaussian_filter(rng.normal(size=shape), sigma)
    return ((a - a.mean()) / a.std()).astype(np.float32)


def test_batched_ssim_equals_scikit_image():
    rng = np.random.default_rng(0)
    refs = np.stack([_smooth_noise(rng, (64, 64)) for _ in range(3)])
    q = np.stack(
        [
            refs[0] + 0.3 * _smooth_noise(rng, (64, 64), 1.0),
            _smooth_noise(rng, (64, 64)),
            refs[2] * 0.5 + 0.2,
        ]
    )
    q = (q - q.mean(axis=(1, 2), keepdims=True)) / q.std(axis=(1, 2), keepdims=True)
    valid = np.ones(q.shape, bool)
    mu, var = local_stats(refs, SSIM_SIGMA)
    ours = ssim_batch(q, valid, refs, mu, var)
    for k in range(3):
        assert ours[k] == pytest.approx(ssim_scikit_image(q[k], refs[k]), abs=2e-4)
    # identical images score 1, unrelated ones far less
    assert ssim_batch(refs, valid, refs, mu, var) == pytest.approx(np.ones(3), abs=1e-4)
    assert ours[1] < 0.3 < ours[0]
    # MSE of standardised patches: 0 for identical, 2 (1 − ρ) in general
    assert mse_batch(refs, valid, refs) == pytest.approx(np.zeros(3), abs=1e-5)


def test_ssim_ignores_pixels_outside_the_query():
    rng = np.random.default_rng(1)
    ref = _smooth_noise(rng, (64, 64))[None]
    mu, var = local_stats(ref)
    valid = np.ones_like(ref, bool)
    valid[:, :, 40:] = False
    q1 = np.where(valid, ref, rng.normal(size=ref.shape).astype(np.float32) * 5)
    q2 = np.where(valid, ref, 0.0).astype(np.float32)
    # what the patch holds where the query has no data does not matter …
    s1 = ssim_batch(q1, valid, ref, mu, var)[0]
    assert s1 == pytest.approx(ssim_batch(q2, valid, ref, mu, var)[0], abs=1e-6)
    assert s1 > 0.8
    # … nor for the MSE
    assert mse_batch(q1, valid, ref)[0] == pytest.approx(mse_batch(q2, valid, ref)[0], abs=1e-6)


def _emd_linprog(a, b, tau):
    """Reference: the same partial transport written as a linear programme."""
    n, m = len(a), len(b)
    c = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    c = np.minimum(c, 2 * tau)
    # variables: flows f_ij (n*m), unmatched u_i (n), v_j (m); each point ships one unit
    cost = np.concatenate([c.ravel(), np.full(n + m, tau)])
    A = np.zeros((n + m, n * m + n + m))
    for i in range(n):
        A[i, i * m : (i + 1) * m] = 1
        A[i, n * m + i] = 1
    for j in range(m):
        A[n + j, j : n * m : m] = 1
        A[n + j, n * m + n + j] = 1
    res = linprog(cost, A_eq=A, b_eq=np.ones(n + m), bounds=(0, None), method="highs")
    return res.fun / (0.5 * (n + m))


def test_emd_is_exact_and_behaves_like_a_distance():
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 1, (12, 3))
    assert emd(a, a) == 0.0
    # a small rigid shift costs its length per point
    d = np.array([0.01, -0.02, 0.0])
    assert emd(a, a + d, tau=0.1) == pytest.approx(np.hypot(0.01, 0.02), rel=1e-9)
    # symmetric, and equal to the linear programme for sets of different sizes
    b = rng.uniform(0, 1, (9, 3))
    assert emd(a, b, tau=0.15) == pytest.approx(emd(b, a, tau=0.15))
    assert emd(a, b, tau=0.15) == pytest.approx(_emd_linprog(a, b, 0.15), rel=1e-6)
    # each missing point costs tau
    assert emd(a, a[:10], tau=0.1) == pytest.approx(2 * 0.1 / 11)
    assert emd(a[:0], a, tau=0.1) == pytest.approx(0.2)


def _lattice_image(theta_deg=0.0, scale=1.0, size=192, a_px=12.0, seed=0):
    """Two-site square lattice image (bright and weak columns), rotated and scaled."""
    rng = np.random.default_rng(seed)
    t = np.radians(theta_deg)
    R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) * a_px * scale
    n = np.arange(-20, 21)
    ij = np.stack(np.meshgrid(n, n), -1).reshape(-1, 2).astype(float)
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    img = np.zeros((size, size))
    for offset, w in (((0, 0), 1.0), ((0.5, 0.5), 0.4)):
        p = (ij + offset) @ R.T + size / 2
        p = p[(p > -5).all(1) & (p < size + 5).all(1)]
        for x, y in p:
            img += w * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.8**2))
    return img + rng.normal(0, 0.02, img.shape)


def test_fourier_peaks_find_the_reciprocal_lattice():
    ps = 0.02
    img = _lattice_image(theta_deg=20.0)
    g, w, rel = fourier_peaks(img, ps, k_min=0.5, k_max=10.0)
    k100 = 1.0 / (12 * ps)  # 1/nm
    lengths = np.hypot(g[:, 0], g[:, 1])
    strongest = lengths[np.argmax(w)]
    assert strongest == pytest.approx(k100, rel=0.02) or strongest == pytest.approx(
        k100 * np.sqrt(2), rel=0.02
    )
    ang = (
        np.degrees(
            np.arctan2(
                g[np.argmin(np.abs(lengths - k100)), 1], g[np.argmin(np.abs(lengths - k100)), 0]
            )
        )
        % 90
    )
    assert min(abs(ang - 20), abs(ang - 20 - 90), abs(ang + 70)) < 1.5
    assert (rel > 0).all() and (rel < 0.05).all()


def test_log_polar_correlation_recovers_rotation_and_scale():
    from atomscope.simulate import Probe, project

    grid = PolarGrid()
    proj = project("SrTiO3", (0, 0, 1))
    w = proj.column_weights(1.7)
    probe = Probe(source_size=0.1)
    peaks = bragg_peaks(proj.lattice, proj.sites, w, probe, grid.k_min, grid.k_max, 0.01, 120)
    lib = library_polar([peaks], grid)
    theta, s = np.radians(17.0), 1.05  # query lattice rotated by 17° and 5 % larger
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    gq = peaks[:, :2] @ R.T / s
    q = query_polar(gq, peaks[:, 2], np.full(len(gq), 0.005), grid)
    score, dphi, drho = correlate_polar(lib["fft"], q, grid, np.zeros(1), 3.0)
    assert score[0] > 0.9
    assert np.degrees(dphi[0] * grid.d_phi) % 90 == pytest.approx(17.0, abs=1.0)
    assert np.exp(-drho[0] * grid.d_rho) == pytest.approx(s, rel=0.01)


def test_resample_and_reduce_shift():
    rng = np.random.default_rng(3)
    img = rng.normal(size=(40, 50)).astype(np.float32)
    # identity map centred on a pixel reproduces the image window
    p, v = resample(img, np.array([24.5, 19.5]), np.eye(2)[None], 10)
    assert v.all()
    assert np.allclose(p[0], img[15:25, 20:30], atol=1e-5)
    # outside the image: invalid and zero
    p, v = resample(img, np.array([0.0, 0.0]), np.eye(2)[None], 10)
    assert not v[0, 0, 0] and p[0, 0, 0] == 0 and v[0, -1, -1]
    lat = np.array([[10.0, 0.0], [0.0, 8.0]])
    assert np.allclose(reduce_shift(np.array([23.0, -15.0]), lat), [3.0, 1.0])


def test_shift_candidates_rank_correlation_peaks_and_the_180_degree_turn():
    # a centred pattern: strong columns on a centred square lattice, weak ones on one side only,
    # so that the centring translation matches the strong columns but not the weak ones
    S = 64
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float64)

    def columns(points, weight):
        return sum(weight * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 4.0) for x, y in points)

    strong = [(x, y) for x in range(0, S, 16) for y in range(0, S, 16)]
    strong += [(x + 8, y + 8) for x, y in strong]
    weak = [(x + 5, y) for x, y in strong[: len(strong) // 2]]
    ref = (columns(strong, 1.0) + columns(weak, 0.3)).astype(np.float32)
    true_shift = np.array([3.0, -2.0])
    # patch(u + δ) = ref(u)
    patch = np.roll(ref, (int(true_shift[1]), int(true_shift[0])), axis=(0, 1))
    valid = np.ones((1, S, S), bool)
    shifts, peaks, flipped = shift_candidates(patch[None], valid, ref[None], n_peaks=3)
    assert shifts.shape == (1, 6, 2) and peaks.shape == flipped.shape == (1, 6)
    assert flipped[0, 3:].all() and not flipped[0, :3].any()
    best = int(np.argmax(peaks[0]))
    assert not flipped[0, best]
    assert np.allclose(shifts[0, best], true_shift, atol=0.1)
    # the runner-up of the unturned patch is another alignment of the strong columns
    assert peaks[0, 1] < peaks[0, 0] and np.hypot(*(shifts[0, 1] - true_shift)) > 4
    # one peak per hypothesis: the best of each
    s1, p1, f1 = shift_candidates(patch[None], valid, ref[None])
    assert np.allclose(s1[0, 0], true_shift, atol=0.1) and p1[0, 0] == pytest.approx(peaks[0, 0])
