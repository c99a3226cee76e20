"""Trimmed Gaussian mixtures and atom-type classification (incl. YBa2Cu3O7 [100] four types)."""

import itertools

import numpy as np
import pytest

from atomscope.disorder import find_disorder
from atomscope.disorder.types import classify_types, crystalline_core, trimmed_gmm
from atomscope.errors import ParameterError

from ._disorder_helpers import crystal_case, ybco_classes


def _clusters(seed=0, n=150, outliers=0.3):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 1.0], [0.0, 5.0, -1.0]])
    X = np.concatenate([c + 0.3 * rng.normal(size=(n, 3)) for c in centres])
    lab = np.repeat(np.arange(3), n)
    k = int(outliers * len(X) / (1 - outliers))
    out = rng.uniform(-4, 9, (k, 3))
    return np.concatenate([X, out]), np.concatenate([lab, np.full(k, -1)])


def _agreement(a, b, k):
    return max(np.mean(np.array(p)[a] == b) for p in itertools.permutations(range(k)))


def test_trimmed_gmm_ignores_a_30_percent_diffuse_population():
    X, lab = _clusters()
    fit = trimmed_gmm(X, 3, alpha=0.35, seed=0)
    good = lab >= 0
    assert _agreement(fit.labels[good], lab[good], 3) > 0.98
    # the diffuse points are mostly outside the reweighted inlier set
    assert fit.inliers[~good].mean() < 0.35 and fit.inliers[good].mean() > 0.9
    # deterministic
    again = trimmed_gmm(X, 3, alpha=0.35, seed=0)
    assert np.array_equal(again.labels, fit.labels)


def test_core_and_bic_choose_three_types():
    X, lab = _clusters(seed=2)
    core = crystalline_core(X, k=8)
    assert core[lab >= 0].mean() > 0.9 and core[lab < 0].mean() < 0.2
    types = classify_types(X, X[:, 0], core=core, seed=0)
    assert types.n_types == 3
    # numbered by brightness (here: the first coordinate), brightest first
    assert np.all(np.diff(types.brightness) < 0)


def test_too_many_types_for_the_atoms_is_a_clear_error():
    X, _ = _clusters(n=5, outliers=0.0)
    with pytest.raises(ParameterError, match="too few"):
        classify_types(X, X[:, 0], n_types=6)
    with pytest.raises(ParameterError):
        classify_types(X, X[:, 0], n_types=0)


def test_ybco_100_four_types_agree_with_the_species():
    sim, cols = crystal_case("YBa2Cu3O7")
    r = find_disorder(sim.image, cols[["x", "y"]], n_types=4, optimize=False)
    assert r.types["n_types"] == 4
    names, truth = np.unique(ybco_classes(cols), return_inverse=True)
    assert len(names) == 4
    agree = _agreement(r.table["type"].to_numpy(), truth, 4)
    assert agree >= 0.95, agree
    # Ba (brightest) is type 0
    assert np.mean(ybco_classes(cols)[r.table["type"].to_numpy() == 0] == "Ba") > 0.95


def test_translation_partners_separate_crystal_from_random_packing():
    from atomscope.disorder.types import translation_partners

    rng = np.random.default_rng(3)
    vectors = np.array([[10.0, 0.0], [3.0, 9.5]])
    ij = np.stack(np.meshgrid(np.arange(-5, 30), np.arange(-5, 30)), -1).reshape(-1, 2)
    motif = np.array([[0.0, 0.0], [5.0, 4.0]])  # two columns per cell
    crystal = (ij @ vectors)[:, None, :] + motif[None]
    crystal = crystal.reshape(-1, 2) + rng.normal(0, 0.3, (len(ij) * 2, 2))
    crystal = crystal[(crystal >= 0).all(1) & (crystal < 200).all(1)]
    frac = translation_partners(crystal, vectors, (200, 200), tolerance=1.5)
    assert np.nanmean(frac >= 0.75) > 0.98
    random = rng.uniform(0, 200, (len(crystal), 2))
    frac_r = translation_partners(random, vectors, (200, 200), tolerance=1.5)
    assert np.nanmean(frac_r >= 0.75) < 0.1
