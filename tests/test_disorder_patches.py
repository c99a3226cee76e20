"""Patch extraction (sub-pixel centres, edges, normalisation) and invariant features."""

import numpy as np
import pytest

from atomscope.disorder.patches import extract_patches, invariant_features
from atomscope.errors import ParameterError


def _blob(shape, x, y, sigma=2.0):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))


def test_subpixel_centre_gives_a_centred_patch():
    img = _blob((40, 50), 20.3, 17.6)
    p = extract_patches(img, np.array([[20.3, 17.6]]), 6, normalise="none")
    d = p.data[0]
    assert p.inside.all() and d.shape == (13, 13)
    assert np.unravel_index(np.argmax(d), d.shape) == (6, 6)
    # bilinear interpolation of a smooth blob: nearly symmetric about the centre
    assert np.abs(d - d[::-1, ::-1]).max() < 0.05 * d.max()


def test_edge_patches_flagged_and_partial_patches_cut():
    img = _blob((40, 40), 20, 20)
    xy = np.array([[20.0, 20.0], [2.0, 20.0], [20.0, 38.5]])
    p = extract_patches(img, xy, 5)
    assert p.inside.tolist() == [True, False, False]
    assert np.all(p.data[1] == 0)
    q = extract_patches(img, xy, 5, partial=True)
    assert q.data[1].any()  # cut, with edge values outside the image


def test_normalisation_modes():
    rng = np.random.default_rng(0)
    img = 100 + 50 * _blob((30, 30), 15, 15) + rng.normal(0, 1, (30, 30))
    xy = np.array([[15.0, 15.0]])
    a = extract_patches(img, xy, 4, normalise="image").data[0]
    assert -0.2 < a.min() < 0.3 and 0.9 < a.max() < 1.5
    b = extract_patches(img, xy, 4, normalise="patch").data[0]
    assert abs(b.mean()) < 1e-9 and abs(np.sqrt((b**2).sum()) - 1) < 1e-9


@pytest.mark.parametrize("kwargs", [{"half_size": 0}, {"half_size": 3, "normalise": "zscore"}])
def test_bad_arguments(kwargs):
    with pytest.raises(ParameterError):
        extract_patches(np.zeros((10, 10)), np.zeros((1, 2)), **kwargs)
    with pytest.raises(ParameterError):
        extract_patches(np.zeros((2, 10, 10)), np.zeros((1, 2)), 2)


def test_invariant_features_ignore_rotation_and_mirror():
    rng = np.random.default_rng(1)
    img = sum(
        _blob((31, 31), 15 + dx, 15 + dy, 1.5) * a
        for dx, dy, a in [(0, 0, 1.0), (6, 1, 0.5), (-3, 7, 0.8)]
    )
    P = np.stack([img, np.rot90(img), img[:, ::-1], img + rng.normal(0, 1e-3, img.shape)])
    F = invariant_features(P)
    assert np.allclose(F[0], F[1], atol=0.02 * np.abs(F[0]).max())
    assert np.allclose(F[0], F[2], atol=0.02 * np.abs(F[0]).max())
    # a different arrangement differs
    other = invariant_features(_blob((31, 31), 15, 15, 1.5)[None])[0]
    assert np.abs(other - F[0]).max() > 0.05
