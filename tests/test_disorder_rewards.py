"""The score mixture, the misfit reward, the paper's rewards and the Pareto choice."""

import numpy as np

from atomscope.disorder.model import ScoreMixture
from atomscope.disorder.rewards import choose_point, misfit


def test_score_mixture_finds_no_disorder_in_a_crystal():
    s = np.random.default_rng(0).normal(0, 1, 2000)
    mix = ScoreMixture(s)
    assert mix.expected_disordered == 0 and mix.weight == 0


def test_score_mixture_separates_an_outlier_population():
    rng = np.random.default_rng(1)
    s = np.concatenate([rng.normal(0, 1, 800), rng.normal(20, 5, 200)])
    mix = ScoreMixture(s)
    assert 0.15 < mix.weight < 0.25
    assert (mix.posterior[800:] > 0.5).mean() > 0.98 and (mix.posterior[:800] > 0.5).mean() < 0.01


def test_misfit_rewards_the_outliers_not_a_blob():
    post = np.r_[np.zeros(900), np.ones(100)]
    assert misfit(post > 0.5, post) == 0.0
    one = np.zeros(1000, bool)
    one[950] = True  # one flagged atom among 100 outliers: the compactness hack
    assert misfit(one, post) > 0.95
    assert misfit(np.zeros(1000, bool), post) == 1.0
    # no disorder in the scores: flagging nothing is perfect, flagging anything is not
    assert misfit(np.zeros(1000, bool), np.zeros(1000)) == 0.0
    assert misfit(one, np.zeros(1000)) == 1.0


def test_choice_uses_misfit_first_and_spatial_rewards_among_equals():
    Y = np.array(
        [
            [0.00, 0.5, 0.40],  # best misfit
            [0.00, 0.3, 0.35],  # same misfit, better shape: chosen
            [0.90, 0.0, 0.01],  # tiny round blob: best paper rewards
            [1.00, 0.0, 0.00],
        ]
    )  # nothing flagged
    pareto = np.array([False, True, True, True])
    assert choose_point(Y, pareto, "robust", "euclidean", tolerance=0.01) == 1
    assert choose_point(Y[:, 1:], np.array([False, False, True, False]), "paper", "chebyshev") == 2
    assert choose_point(np.full((3, 2), np.nan), np.zeros(3, bool), "paper", "euclidean") is None
