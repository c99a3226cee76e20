import numpy as np
import pytest

from atomscope.atoms.lattice import Lattice, lattice_from_lengths
from atomscope.atoms.rewards import distance_sums, error_rate, irregularity, quality_count


def _grid(n=20, a=10.0):
    ij = np.stack(np.meshgrid(np.arange(n), np.arange(n)), -1).reshape(-1, 2)
    return ij * a


def test_quality_count_is_the_papers_equation_1():
    assert quality_count(110, 100) == pytest.approx(0.1)
    assert quality_count(90, 100) == pytest.approx(-0.1)


def test_error_rate_flags_crowded_detections_only():
    pts = _grid()
    lat = Lattice(lattice_from_lengths(10.0))
    ds = 0.85 * lat.distance_sum(4)
    assert lat.distance_sum(4) == pytest.approx(40.0)
    assert error_rate(pts, ds, len(pts)) == 0.0
    # a duplicate detection 2 px from a true column: both are flagged
    crowded = np.vstack([pts, pts[210] + [2.0, 0.0]])
    assert error_rate(crowded, ds, len(pts)) == pytest.approx(2 / len(pts))
    # a missing column does not count as an error
    assert error_rate(np.delete(pts, 210, axis=0), ds, len(pts)) == 0.0


def test_distance_sums_of_a_square_grid():
    pts = _grid(5)
    assert distance_sums(pts)[12] == pytest.approx(40.0)


def test_irregularity_penalises_misplaced_columns_at_the_right_count():
    pts = _grid()
    lat = Lattice(lattice_from_lengths(10.0))
    assert irregularity(pts, lat) == 0.0
    rng = np.random.default_rng(0)
    # the same number of points, a quarter of them moved off their sites
    moved = pts.copy()
    idx = rng.choice(len(pts), len(pts) // 4, replace=False)
    moved[idx] += rng.uniform(3.5, 5.0, (len(idx), 2)) * rng.choice([-1, 1], (len(idx), 2))
    assert quality_count(len(moved), len(pts)) == 0.0
    assert irregularity(moved, lat) > 0.2
