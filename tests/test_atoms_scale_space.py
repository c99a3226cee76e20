import time

import numpy as np
import pytest
from skimage.feature import blob_log

from atomscope.atoms.scale_space import ScaleSpace, circle_overlap_fraction, normalise_image

from ._atoms_helpers import gaussian_lattice, match


def test_overlap_fraction():
    assert circle_overlap_fraction(0.0, 1.0, 2.0) == pytest.approx(1.0)
    assert circle_overlap_fraction(5.0, 1.0, 2.0) == 0.0
    half = circle_overlap_fraction(1e-9, 1.0, 1.0)
    assert half == pytest.approx(1.0)
    assert 0 < circle_overlap_fraction(1.0, 1.0, 1.0) < 1


def test_detection_matches_blob_log_at_equal_parameters():
    img, xy, _ = gaussian_lattice(
        size=256, amplitude=1.0, background=0.1, noise="gaussian", read_noise=0.02, seed=2
    )
    norm = normalise_image(img)
    sigmas = np.linspace(1.0, 4.0, 7)
    ss = ScaleSpace(norm, sigmas)
    ours = ss.detect(threshold=0.1, overlap=0.5)
    ref = blob_log(
        norm,
        min_sigma=1.0,
        max_sigma=4.0,
        num_sigma=7,
        threshold=0.1,
        overlap=0.5,
        exclude_border=False,
    )
    ref_xy = ref[:, [1, 0]]
    p, r, _, _ = match(ours.xy, ref_xy, 1.0, img.shape, margin=4)
    assert p >= 0.995 and r >= 0.995
    # and both find the true columns
    p, r, _, _ = match(ours.xy, xy, 3.6, img.shape, margin=6)
    assert p == 1.0 and r == 1.0


def test_sigma_subrange_is_the_scale_space_of_those_levels():
    img, _, _ = gaussian_lattice(size=192, amplitude=10.0, background=1.0, seed=3)
    norm = normalise_image(img)
    sigmas = np.geomspace(0.8, 5.0, 9)
    full = ScaleSpace(norm, sigmas)
    sub = ScaleSpace(norm, sigmas[3:7])
    a = full.detect(0.05, 0.5, min_sigma=sigmas[3], max_sigma=sigmas[6])
    b = sub.detect(0.05, 0.5)
    assert len(a) == len(b)
    assert np.allclose(np.sort(a.xy, axis=0), np.sort(b.xy, axis=0))


def test_low_threshold_on_noise_stays_bounded():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(512, 512)).astype(np.float32)
    ss = ScaleSpace(normalise_image(noise), np.geomspace(1, 6, 10), max_candidates=50_000)
    assert ss.n_candidates <= 50_000
    t0 = time.perf_counter()
    for threshold in np.geomspace(0.01, 0.3, 20):
        ss.select(threshold, 0.5)
    # selection is a filter over precomputed candidates: milliseconds, not a blow-up
    assert time.perf_counter() - t0 < 2.0


def test_dog_detects_the_lattice_too():
    img, xy, _ = gaussian_lattice(size=192, seed=4)
    ss = ScaleSpace(normalise_image(img), np.geomspace(1.0, 4.0, 8), method="dog")
    p, r, _, _ = match(ss.detect(0.08, 0.5).xy, xy, 3.6, img.shape, margin=6)
    assert p > 0.99 and r > 0.99
