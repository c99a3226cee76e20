"""Descriptors against brute-force definitions, flat-patch rule, pooling, torch parity."""

import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from atomscope.segmentation import (
    PolarGeometry,
    make_grid,
    normalise,
    polar_scores,
    power_spectrum_features,
    shift_grid,
    top_k_pool,
    translation_features,
)
from atomscope.segmentation.polar import X_QUANT
from tests._segmentation_helpers import lattice


def _pearson(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if a.std() < 1e-4 or b.std() < 1e-4:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


@pytest.fixture(scope="module")
def textured():
    rng = np.random.default_rng(0)
    img = lattice((90, 110), 7.0, (10, 80)) + 0.5 * rng.standard_normal((90, 110))
    img[:, :30] = 3.0  # a flat (blank) band
    return normalise(img.astype(np.float32))


def test_shift_grid_is_uniform_and_within_window():
    s = shift_grid(21, 100)
    assert s.shape == (100, 2)
    assert np.abs(s).max() == 21
    assert len(np.unique(s[:, 0])) == 10
    assert len(shift_grid(2, 100)) == 25  # duplicates removed for a small window


def test_translation_matches_brute_force_pearson(textured):
    x = textured
    p, w = 7, 6
    grid = make_grid(x.shape, p + w, 3)
    f, names, shifts = translation_features(x, grid, patch=2 * p + 1, window=w, n_shifts=16)
    assert f.shape == (grid.ny, grid.nx, len(shifts)) and len(names) == len(shifts)
    assert np.isfinite(f).all()
    worst = 0.0
    for i, y in enumerate(grid.ys):
        for j, c in enumerate(grid.xs):
            a = x[y - p : y + p + 1, c - p : c + p + 1]
            for k, (dy, dx) in enumerate(shifts):
                b = x[y + dy - p : y + dy + p + 1, c + dx - p : c + dx + p + 1]
                worst = max(worst, abs(_pearson(a, b) - f[i, j, k]))
    assert worst < 1e-4
    # patches entirely in the blank band: correlation defined as 0, not NaN
    assert np.all(f[:, 0] == 0)


def test_translation_torch_matches_numpy(textured):
    torch = pytest.importorskip("torch")
    grid = make_grid(textured.shape, 13, 4)
    a, _, _ = translation_features(textured, grid, patch=15, window=6, n_shifts=25)
    b, _, _ = translation_features(
        textured, grid, patch=15, window=6, n_shifts=25, device=torch.device("cpu")
    )
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_translation_threads_do_not_change_results(textured):
    grid = make_grid(textured.shape, 13, 4)
    a, _, _ = translation_features(textured, grid, patch=15, window=6, n_shifts=25)
    b, _, _ = translation_features(textured, grid, patch=15, window=6, n_shifts=25, n_threads=2)
    np.testing.assert_array_equal(a, b)


def _brute_polar(x, y, c, geom):
    dy, dx = geom.offsets()
    xq = np.rint((c + dx) * X_QUANT) / X_QUANT
    f = map_coordinates(x.astype(np.float64), [y + dy, xq], order=1)
    return f.reshape(geom.n_radii, geom.n_angles)


def test_rotation_and_reflection_match_brute_force(textured):
    x = textured
    geom = PolarGeometry(8.0, 8, 60)
    grid = make_grid(x.shape, geom.margin, 5)
    rots = (180.0, 120.0, 90.0, 60.0)
    mirrors = tuple(18.0 * i for i in range(10))
    rot, ref = polar_scores(x, grid, geom, rotations=rots, mirrors=mirrors)
    assert rot.shape == (4, grid.ny, grid.nx) and ref.shape == (10, grid.ny, grid.nx)
    wts = np.repeat(geom.weights[:, None], geom.n_angles, 1)
    for i, j in [(3, 8), (5, 12), (grid.ny - 1, grid.nx - 1)]:
        f = _brute_polar(x, grid.ys[i], grid.xs[j], geom)
        mu = (wts * f).sum() / wts.sum()
        var = (wts * f * f).sum() / wts.sum() - mu**2
        for a, ang in enumerate(rots):
            g = np.roll(f, -int(round(ang / 6)), axis=1)
            expect = ((wts * f * g).sum() / wts.sum() - mu**2) / var
            assert rot[a, i, j] == pytest.approx(expect, abs=1e-4)
        for a, phi in enumerate(mirrors):
            g = f[:, (int(round(2 * phi / 6)) - np.arange(60)) % 60]
            expect = ((wts * f * g).sum() / wts.sum() - mu**2) / var
            assert ref[a, i, j] == pytest.approx(expect, abs=1e-4)
    # the blank band (columns < 30): flat patches score 0
    assert np.all(rot[:, :, grid.xs + geom.radius < 29] == 0)


def test_polar_torch_matches_numpy(textured):
    torch = pytest.importorskip("torch")
    geom = PolarGeometry(6.0, 6, 24)
    grid = make_grid(textured.shape, geom.margin, 4)
    a = polar_scores(textured, grid, geom, rotations=(180.0, 90.0), mirrors=(0.0, 45.0))
    b = polar_scores(
        textured,
        grid,
        geom,
        rotations=(180.0, 90.0),
        mirrors=(0.0, 45.0),
        device=torch.device("cpu"),
    )
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, v, atol=1e-4)


@pytest.mark.parametrize(
    "angles, strong, weak", [((0, 90), 90.0, 60.0), ((0, 60, 120), 60.0, 90.0)]
)
def test_rotation_scores_see_the_point_symmetry(angles, strong, weak):
    """At a lattice site, a square lattice is 4-fold and not 6-fold; a hexagonal one the
    reverse."""
    img = lattice((65, 65), 8.0, angles, phase=(32.0, 32.0)).astype(np.float32)
    x = normalise(img)
    geom = PolarGeometry(10.0, 10, 60)
    grid = make_grid(x.shape, 16, 16)  # centres at 16, 32, 48 px: lattice sites
    assert list(grid.ys) == [16, 32, 48]
    rot, ref = polar_scores(x, grid, geom, rotations=(strong, weak), mirrors=(0.0, 90.0))
    rot, ref = rot[:, 1], ref[:, 1]  # the row y = 32 px: lattice sites of both lattices
    assert rot[0].min() > 0.95
    assert rot[1].max() < 0.6
    assert ref.min() > 0.95  # both lattices have mirrors along x and y


def test_top_k_pool_matches_brute_force():
    rng = np.random.default_rng(1)
    maps = rng.random((3, 12, 15)).astype(np.float32)
    out = top_k_pool(maps, 2, 4)
    assert out.shape == (8, 11, 12)
    for i in range(8):
        for j in range(11):
            for c in range(3):
                win = maps[c, i : i + 5, j : j + 5].ravel()
                np.testing.assert_allclose(out[i, j, 4 * c : 4 * c + 4], np.sort(win)[::-1][:4])
    np.testing.assert_array_equal(top_k_pool(maps, 2, 4, n_threads=2), out)


def test_top_k_pool_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    maps = np.random.default_rng(2).random((2, 10, 10)).astype(np.float32)
    np.testing.assert_allclose(
        top_k_pool(maps, 1, 3, device=torch.device("cpu")), top_k_pool(maps, 1, 3)
    )


def test_power_spectrum_flat_patch_and_translation_invariance():
    img = lattice((80, 80), 8.0, (0, 90)).astype(np.float32)
    img[:, :40] = 1.0  # blank left half
    x = normalise(img)
    grid = make_grid(x.shape, 10, 8)
    f, names = power_spectrum_features(x, grid, patch=21)
    assert np.isfinite(f).all() and f.shape[-1] == len(names)
    flat = f[:, grid.xs + 10 < 40]
    assert flat.size and np.all(flat == flat.flat[0])  # flat patches: one constant value
    # one lattice period apart (8 px) on the lattice side: same spectrum
    right = f[:, grid.xs - 10 >= 40]
    np.testing.assert_allclose(right[0, 0], right[1, 1], atol=1e-3)
