"""OptimizationResult: table, summary, figures and files, built from hand-made evaluations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from atomscope.errors import ParameterError
from atomscope.optimize import Categorical, OptimizationResult, Real, SearchSpace

SPACE = SearchSpace(
    [Real("threshold", 0.01, 1.0, log=True), Categorical("covariance", ["full", "tied"])]
)


def _result(**kw) -> OptimizationResult:
    # normalised front (0, 1), A = (0.1, 0.55), B = (0.45, 0.45), (1, 0): Euclidean picks A,
    # Chebyshev picks B (see test_optimize_pareto); plus a dominated point, a duplicate of A
    # and a failed evaluation
    Y = np.array([[0, 1], [0.1, 0.55], [0.45, 0.45], [1, 0], [2, 3], [0.1, 0.55], [np.nan, 0.2]])
    params = [
        {"threshold": t, "covariance": c}
        for t, c in zip(
            [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0], ["full", "tied"] * 3 + ["full"], strict=True
        )
    ]
    phase = ["initial"] * 4 + ["bo", "bo", "fallback"]
    return OptimizationResult(
        params=params,
        objectives=Y,
        objective_names=["count_error", "spacing_error"],
        space=SPACE,
        phase=phase,
        **kw,
    )


def test_front_and_best_points():
    res = _result()
    assert res.pareto_mask.tolist() == [True, True, True, True, False, False, False]
    assert res.best_euclidean == 1 and res.best_chebyshev == 2
    assert res.best("euclidean") == {"threshold": 0.02, "covariance": "tied"}
    assert res.best_chebyshev_params == {"threshold": 0.05, "covariance": "full"}
    np.testing.assert_array_equal(res.best_euclidean_objectives, [0.1, 0.55])
    np.testing.assert_array_equal(res.best_chebyshev_objectives, [0.45, 0.45])
    assert res.pareto_indices.tolist() == [0, 1, 2, 3]
    assert res.pareto_objectives.shape == (4, 2)
    # inferred reference point: nadir of the front + 10 % of its extent
    np.testing.assert_allclose(res.reference_point, [1.1, 1.1])
    h = res.hypervolume_history
    assert h.shape == (7,) and np.all(np.diff(h) >= 0)
    # strips under (1.1, 1.1): 1.1 * 0.1 + 1.0 * 0.45 + 0.65 * 0.1 + 0.1 * 0.45
    assert res.hypervolume == pytest.approx(0.67)


def test_hypervolume_with_given_reference_point():
    res = _result(reference_point=[1.0, 1.0])
    # staircase of (0,1), (0.1,0.55), (0.45,0.45), (1,0) under (1,1)
    expected = 0.9 * 0.45 + 0.55 * 0.1 + 0.0
    assert res.hypervolume == pytest.approx(expected)


def test_to_frame():
    df = _result().to_frame()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == [
        "evaluation",
        "phase",
        "threshold",
        "covariance",
        "count_error",
        "spacing_error",
        "pareto",
        "best_euclidean",
        "best_chebyshev",
        "hypervolume",
    ]
    assert df["pareto"].sum() == 4 and df["best_euclidean"].sum() == 1
    assert df.loc[6, "phase"] == "fallback" and np.isnan(df.loc[6, "count_error"])


def test_summary_is_json_ready():
    s = _result().summary()
    text = json.dumps(s, allow_nan=False)
    assert '"covariance": "tied"' in text
    assert s["n_evaluations"] == 7 and s["n_bo"] == 2 and s["n_fallback"] == 1
    assert s["n_nonfinite"] == 1
    assert s["best_euclidean"]["objectives"] == {"count_error": 0.1, "spacing_error": 0.55}
    assert [p["index"] for p in s["pareto_front"]] == [0, 1, 2, 3]
    assert s["space"][1]["choices"] == ["full", "tied"]


def test_plots():
    import matplotlib.pyplot as plt

    res = _result()
    fig, ax = plt.subplots()
    assert res.plot_pareto(ax) is ax
    labels = ax.get_legend_handles_labels()[1]
    for want in ("Pareto front (4)", "best (Euclidean)", "best (Chebyshev)", "utopia point"):
        assert want in labels
    assert ax.get_xlabel() == "count_error" and ax.get_ylabel() == "spacing_error"
    ax2 = res.plot_history()
    assert ax2.get_ylabel() == "hypervolume"
    ax3 = res.plot_history(objective="spacing_error")
    assert ax3.get_ylabel() == "spacing_error"
    with pytest.raises(ParameterError, match="unknown objective"):
        res.plot_history(objective="nope")
    plt.close("all")


def test_save_writes_all_files_atomically(tmp_path):
    out = _result().save(tmp_path / "opt")
    names = sorted(p.name for p in (tmp_path / "opt").iterdir())
    assert names == ["history.png", "optimization.csv", "optimization.json", "pareto.png"]
    assert set(out) == {"table", "summary", "pareto", "history"}
    df = pd.read_csv(out["table"])
    assert len(df) == 7 and df["pareto"].sum() == 4
    data = json.loads(out["summary"].read_text())
    assert data["best_chebyshev"]["index"] == 2
    assert out["pareto"].read_bytes()[:4] == b"\x89PNG"


def test_validation():
    Y = np.zeros((2, 2))
    p = [{"threshold": 0.1, "covariance": "full"}] * 2
    with pytest.raises(ParameterError, match="objective rows"):
        OptimizationResult(params=p[:1], objectives=Y, objective_names=["a", "b"], space=SPACE)
    with pytest.raises(ParameterError, match="names"):
        OptimizationResult(params=p, objectives=Y, objective_names=["a"], space=SPACE)
    with pytest.raises(ParameterError, match="differ"):
        OptimizationResult(params=p, objectives=Y, objective_names=["threshold", "b"], space=SPACE)
    with pytest.raises(ParameterError, match="phase"):
        OptimizationResult(
            params=p,
            objectives=Y,
            objective_names=["a", "b"],
            space=SPACE,
            phase=["initial", "random"],
        )
    empty = OptimizationResult(
        params=[], objectives=np.empty((0, 2)), objective_names=["a", "b"], space=SPACE
    )
    assert empty.best_euclidean is None and empty.hypervolume == 0.0
    assert empty.to_frame().empty
