"""Search spaces: validation, encoding round trips, Sobol designs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from atomscope.errors import ParameterError
from atomscope.optimize import Categorical, Integer, Real, SearchSpace


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace(
        [
            Real("threshold", 0.001, 0.5, log=True),
            Real("overlap", 0.0, 1.0),
            Integer("num_sigma", 3, 12),
            Categorical("covariance", ["full", "tied", "diag", "spherical"]),
            Categorical("flag", [False, True]),
        ]
    )


def test_encode_decode_round_trip(space):
    params = [
        {"threshold": 0.001, "overlap": 0.0, "num_sigma": 3, "covariance": "full", "flag": False},
        {
            "threshold": 0.5,
            "overlap": 1.0,
            "num_sigma": 12,
            "covariance": "spherical",
            "flag": True,
        },
        {"threshold": 0.0234, "overlap": 0.37, "num_sigma": 7, "covariance": "diag", "flag": True},
    ]
    X = space.encode(params)
    assert X.shape == (3, 5)
    assert np.all(X[:, :3] >= 0) and np.all(X[:, :3] <= 1)
    assert X[:, 3].tolist() == [0, 3, 2]  # categorical index columns
    back = space.decode(X)
    for p, q in zip(params, back, strict=True):
        assert q["threshold"] == pytest.approx(p["threshold"], rel=1e-12)
        assert q["overlap"] == pytest.approx(p["overlap"], abs=1e-12)
        assert q["num_sigma"] == p["num_sigma"] and isinstance(q["num_sigma"], int)
        assert q["covariance"] == p["covariance"]
        assert q["flag"] is p["flag"]
    np.testing.assert_allclose(space.encode(back), X, atol=1e-12)


def test_log_scale_encoding_is_geometric():
    s = SearchSpace([Real("t", 0.01, 1.0, log=True)])
    assert s.encode({"t": 0.1})[0, 0] == pytest.approx(0.5)
    assert s.decode(np.array([[0.5]]))[0]["t"] == pytest.approx(0.1)
    assert s.default()["t"] == pytest.approx(0.1)


def test_integers_own_equal_bins_and_round():
    s = SearchSpace([Integer("k", 1, 4)])
    centres = s.encode([{"k": k} for k in range(1, 5)])[:, 0]
    np.testing.assert_allclose(centres, [0.125, 0.375, 0.625, 0.875])
    u = np.array([[0.0], [0.2499], [0.25], [0.74], [0.999], [1.0], [1.7], [-0.3]])
    assert [p["k"] for p in s.decode(u)] == [1, 1, 2, 3, 4, 4, 4, 1]
    # snap(X) is the canonical form: decode is unchanged and encode(decode) reproduces it
    S = s.snap(u)
    assert s.decode(S) == s.decode(u)
    np.testing.assert_allclose(s.encode(s.decode(u)), S)


def test_sobol_is_seeded_in_bounds_and_covers_categories(space):
    a = space.sobol(32, seed=3)
    b = space.sobol(32, seed=3)
    c = space.sobol(32, seed=4)
    assert a == b
    assert a != c
    for p in a:
        space.validate(p)  # raises if out of range
    assert {p["covariance"] for p in a} == {"full", "tied", "diag", "spherical"}
    assert {p["num_sigma"] for p in a} >= {3, 12}
    t = np.array([p["threshold"] for p in a])
    # log-uniform: about half the points below the geometric centre
    assert 10 <= np.sum(t < math.sqrt(0.001 * 0.5)) <= 22


def test_default_and_overrides(space):
    d = space.default()
    assert d["threshold"] == pytest.approx(math.sqrt(0.001 * 0.5))
    assert d["overlap"] == 0.5 and d["num_sigma"] == 7 and d["covariance"] == "full"
    assert space.default(num_sigma=10)["num_sigma"] == 10
    s = SearchSpace([Real("x", 0, 1, default=0.2), Categorical("c", ["a", "b"], default="b")])
    assert s.default() == {"x": 0.2, "c": "b"}
    with pytest.raises(ParameterError, match="unknown"):
        space.default(sigma=3)
    with pytest.raises(ParameterError, match="outside"):
        space.default(overlap=2.0)


def test_description_and_bounds(space):
    assert space.names == ["threshold", "overlap", "num_sigma", "covariance", "flag"]
    assert space.cat_dims == [3, 4] and space.int_dims == [2] and space.real_dims == [0, 1]
    np.testing.assert_array_equal(space.bounds, [[0, 0, 0, 0, 0], [1, 1, 1, 3, 1]])
    assert space.cardinality is None
    assert isinstance(space["num_sigma"], Integer)
    desc = space.to_dict()
    assert desc[0] == {
        "type": "real",
        "name": "threshold",
        "low": 0.001,
        "high": 0.5,
        "log": True,
        "default": None,
    }
    finite = SearchSpace([Integer("k", 1, 3), Categorical("c", ["a", "b"])])
    assert finite.cardinality == 6
    E = finite.enumerate_encoded()
    assert E.shape == (6, 2)
    assert len(set(finite.keys(E))) == 6
    assert SearchSpace(finite) == finite


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Real("x", 1.0, 1.0), "smaller than high"),
        (lambda: Real("x", 0.0, 1.0, log=True), "low > 0"),
        (lambda: Real("x", 0.0, float("nan")), "finite"),
        (lambda: Real("", 0.0, 1.0), "name"),
        (lambda: Integer("k", 1.5, 4), "whole number"),
        (lambda: Integer("k", 4, 2), "smaller than high"),
        (lambda: Categorical("c", []), "at least one"),
        (lambda: Categorical("c", "abc"), "list"),
        (lambda: Categorical("c", ["a", "a"]), "repeated"),
        (lambda: Categorical("c", ["a", "b"], default="z"), "not one of"),
        (lambda: SearchSpace([]), "at least one"),
        (lambda: SearchSpace([Real("x", 0, 1), Integer("x", 0, 3)]), "twice"),
        (lambda: SearchSpace(["x"]), "Real, Integer or Categorical"),
    ],
)
def test_invalid_definitions(make, match):
    with pytest.raises(ParameterError, match=match):
        make()


def test_invalid_values(space):
    good = space.default()
    with pytest.raises(ParameterError, match="lacks"):
        space.encode({k: v for k, v in good.items() if k != "overlap"})
    with pytest.raises(ParameterError, match="unknown"):
        space.encode({**good, "sigma": 2})
    with pytest.raises(ParameterError, match="outside"):
        space.encode({**good, "threshold": 0.9})
    with pytest.raises(ParameterError, match="whole number"):
        space.encode({**good, "num_sigma": 4.5})
    with pytest.raises(ParameterError, match="not one of"):
        space.encode({**good, "covariance": "FULL"})
    with pytest.raises(ParameterError, match="not one of"):
        space.encode({**good, "flag": 1})  # 1 is not True here
    with pytest.raises(ParameterError, match="shape"):
        space.decode(np.zeros((2, 3)))
    with pytest.raises(ParameterError):
        space.decode(np.full((1, 5), np.nan))
    assert space.validate({**good, "num_sigma": 5.0})["num_sigma"] == 5
