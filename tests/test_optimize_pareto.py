"""Pareto masks, best-point choice and hypervolumes on hand-made sets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from atomscope.errors import ParameterError
from atomscope.optimize import choose_best, hypervolume, pareto_mask
from atomscope.optimize.pareto import (
    distance_to_utopia,
    hypervolume_2d,
    infer_reference_point,
    normalise,
)


def test_pareto_mask_two_objectives_with_duplicates():
    Y = np.array([[1, 2], [2, 1], [2, 2], [1, 2], [0.5, 3], [3, 3]], dtype=float)
    assert pareto_mask(Y).tolist() == [True, True, False, False, True, False]
    # without deduplication both copies of (1, 2) are on the front
    assert pareto_mask(Y, deduplicate=False).tolist() == [True, True, False, True, True, False]


def test_pareto_mask_single_point_one_objective_and_nonfinite():
    assert pareto_mask(np.array([[3.0, 4.0]])).tolist() == [True]
    assert pareto_mask(np.array([3.0, 1.0, 1.0, 2.0])).tolist() == [False, True, False, False]
    Y = np.array([[np.nan, 0.0], [1.0, 1.0], [-np.inf, 5.0], [2.0, 0.5]])
    assert pareto_mask(Y).tolist() == [False, True, False, True]
    assert pareto_mask(np.full((3, 2), np.nan)).tolist() == [False] * 3
    assert pareto_mask(np.empty((0, 2))).shape == (0,)


def test_pareto_mask_three_objectives():
    Y = np.array([[1, 2, 3], [3, 2, 1], [2, 2, 2], [2, 3, 3], [1, 2, 3.5], [2, 2, 2]], float)
    assert pareto_mask(Y).tolist() == [True, True, True, False, False, False]


def _brute_force_front(Y):
    n = len(Y)
    out = []
    for i in range(n):
        dominated = any(np.all(Y[j] <= Y[i]) and np.any(Y[j] < Y[i]) for j in range(n))
        first = not any(np.array_equal(Y[j], Y[i]) for j in range(i))
        out.append(not dominated and first)
    return out


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 25), st.integers(1, 3)),
        elements=st.integers(0, 4).map(float),
    )
)
def test_pareto_mask_matches_brute_force(Y):
    assert pareto_mask(Y).tolist() == _brute_force_front(Y)


def _constructed_front():
    """Normalised front (0, 1), A = (0.1, 0.55), B = (0.45, 0.45), (1, 0) in odd units.

    A is nearer the utopia point in Euclidean distance (0.559 vs 0.636), B in Chebyshev
    distance (0.45 vs 0.55). Dominated points far away must not change the normalisation.
    """
    Z = np.array([[0, 1], [0.1, 0.55], [0.45, 0.45], [1, 0]])
    Y = np.column_stack([10 + 90 * Z[:, 0], 0.5 * Z[:, 1]])
    far = np.array([[5000.0, 40.0], [101.0, 0.6]])
    return np.vstack([far[:1], Y, far[1:]])


def test_choose_best_euclidean_and_chebyshev_differ():
    Y = _constructed_front()
    assert choose_best(Y, "euclidean") == 2
    assert choose_best(Y, "chebyshev") == 3
    d = distance_to_utopia(Y, "euclidean")
    assert np.isnan(d[0]) and np.isnan(d[5])
    assert d[2] == pytest.approx(np.hypot(0.1, 0.55))
    assert distance_to_utopia(Y, "chebyshev")[3] == pytest.approx(0.45)
    # weighting the second objective 1.5x moves the Euclidean choice to B
    assert choose_best(Y, "euclidean", weights=[1, 1.5]) == 3


def test_choose_best_ties_and_constant_objective():
    # two-point front: both at Chebyshev distance 1 and Euclidean distance 1 -> lower index
    Y = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert choose_best(Y, "chebyshev") == 0
    assert choose_best(Y[::-1], "chebyshev") == 0
    # an objective constant over the candidates is ignored, without division by zero
    Y = np.array([[3.0, 5.0], [1.0, 5.0], [2.0, 5.0]])
    with np.errstate(all="raise"):
        assert choose_best(Y, "euclidean", mask=np.ones(3, bool)) == 1
        assert choose_best(Y, "chebyshev", mask=np.ones(3, bool)) == 1
    assert choose_best(np.array([[7.0, 7.0]])) == 0


def test_choose_best_errors():
    with pytest.raises(ParameterError, match="finite"):
        choose_best(np.full((2, 2), np.nan))
    with pytest.raises(ParameterError, match="method"):
        choose_best(np.ones((2, 2)), "manhattan")


def test_normalise():
    Y = np.array([[0.0, 2.0], [10.0, 2.0], [5.0, np.nan]])
    Z = normalise(Y)
    np.testing.assert_allclose(Z[:, 0], [0, 1, 0.5])
    assert Z[0, 1] == 0 and Z[1, 1] == 0 and np.isnan(Z[2, 1])  # constant column -> 0
    np.testing.assert_allclose(
        normalise(Y, np.array([[0, 0], [20, 4]]))[:2], [[0, 0.5], [0.5, 0.5]]
    )


def test_hypervolume_2d_hand_computed():
    Y = np.array([[1, 3], [2, 2], [3, 1], [3, 3], [5, 0], [np.nan, 0]], dtype=float)
    # staircase of (1,3), (2,2), (3,1) under (4,4): 3 + 2 + 1
    assert hypervolume_2d(Y, [4, 4]) == pytest.approx(6.0)
    assert hypervolume(Y, [4, 4]) == pytest.approx(6.0)
    assert hypervolume(Y, [0, 0]) == 0.0
    assert hypervolume_2d(np.array([[1.0, 1.0]]), [3, 2]) == pytest.approx(2.0)
    with pytest.raises(ParameterError):
        hypervolume_2d(np.ones((2, 3)), [2, 2, 2])
    with pytest.raises(ParameterError, match="reference"):
        hypervolume(Y, [4, np.inf])


def test_hypervolume_one_three_and_four_objectives():
    assert hypervolume(np.array([[2.0], [1.0]]), [4.0]) == pytest.approx(3.0)
    assert hypervolume(np.array([[1.0, 1, 1]]), [2, 2, 2]) == pytest.approx(1.0)
    # boxes 2x2x1 and 1x1x2 overlapping in a unit cube: 4 + 2 - 1
    assert hypervolume(np.array([[0.0, 0, 1], [1, 1, 0]]), [2, 2, 2]) == pytest.approx(5.0)
    assert hypervolume(np.array([[0.5, 0.5, 0.5, 0.5]]), [1, 1, 1, 1]) == pytest.approx(0.0625)


def test_hypervolume_3d_matches_monte_carlo():
    rng = np.random.default_rng(1)
    Y = rng.random((12, 3))
    ref = np.array([1.1, 1.1, 1.1])
    S = rng.random((200_000, 3)) * ref
    dominated = np.zeros(len(S), bool)
    for y in Y:
        dominated |= np.all(S >= y, axis=1)
    mc = dominated.mean() * np.prod(ref)
    assert hypervolume(Y, ref) == pytest.approx(mc, rel=0.01)


def test_infer_reference_point():
    Y = np.array([[0.0, 10.0], [1.0, 0.0], [5.0, 50.0]])
    np.testing.assert_allclose(infer_reference_point(Y), [1.1, 11.0])
    np.testing.assert_allclose(infer_reference_point(Y, scale=0.5), [1.5, 15.0])
    # a single-point front falls back to the spread of all observations
    Y = np.array([[0.0, 0.0], [2.0, 4.0]])
    np.testing.assert_allclose(infer_reference_point(Y), [0.2, 0.4])


def test_choice_without_rescaling_keeps_the_objectives_units():
    from atomscope.optimize import choose_best

    # objectives in one unit: a small ER spread must not weigh like a large count spread
    Y = np.array([[0.0, 0.003], [0.05, 0.001], [0.3, 0.0]])
    assert choose_best(Y, "euclidean") == 1  # rescaled to the front: the middle point
    assert choose_best(Y, "euclidean", normalise=False) == 0
