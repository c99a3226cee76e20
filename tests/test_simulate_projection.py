import itertools
import math

import numpy as np
import pytest

from atomscope.errors import ParameterError
from atomscope.simulate import parse_zone, project
from atomscope.simulate.projection import format_zone, unimodular_basis, zone_period

A_STO = 0.3905  # nm
A_SI = 0.5431


def _match(sites: np.ndarray, lattice: np.ndarray, expected: list[tuple[float, float]]) -> float:
    """Largest distance (nm) between expected positions and the nearest site, modulo lattice."""
    worst = 0.0
    for e in expected:
        best = np.inf
        for s in sites:
            d = np.asarray(e) - s
            f = d @ np.linalg.inv(lattice)
            f -= np.rint(f)
            best = min(best, float(np.linalg.norm(f @ lattice)))
        worst = max(worst, best)
    return worst


def test_parse_zone_forms():
    assert parse_zone("0,0,1") == (0, 0, 1)
    assert parse_zone("[1-10]") == (1, -1, 0)
    assert parse_zone((2, 2, 0)) == (1, 1, 0)
    assert parse_zone("1 1 -2 0") == (1, 1, 0)  # [11-20] -> [110]
    assert parse_zone((1, -1, 0, 0)) == (1, -1, 0)
    assert format_zone((1, -1, 0)) == "[1-10]"
    for bad in ("abc", (0, 0, 0), (1, 1, 1, 1), (1.5, 0, 0)):
        with pytest.raises(ParameterError):
            parse_zone(bad)


@pytest.mark.parametrize(
    "zone", [z for z in itertools.product(range(-3, 4), repeat=3) if math.gcd(*z) == 1][::7]
)
def test_unimodular_basis(zone):
    m = unimodular_basis(zone)
    assert round(np.linalg.det(m)) == 1
    assert tuple(m[2]) == zone


def test_srtio3_001_columns_match_crystallography():
    p = project("SrTiO3", (0, 0, 1))
    assert p.period == pytest.approx(A_STO, abs=1e-12)
    np.testing.assert_allclose(np.abs(p.lattice), np.eye(2) * A_STO, atol=1e-12)
    species = dict(zip(p.species, range(p.n_sites), strict=False))
    assert set(p.species) == {"Sr", "Ti+O", "O"}
    tol = 1e-4  # nm = 1e-3 Å
    h = A_STO / 2
    assert (
        _match(p.sites[[i for i, s in enumerate(p.species) if s == "Sr"]], p.lattice, [(0, 0)])
        < tol
    )
    assert _match(p.sites[[species["Ti+O"]]], p.lattice, [(h, h)]) < tol
    o = p.sites[[i for i, s in enumerate(p.species) if s == "O"]]
    assert _match(o, p.lattice, [(h, 0), (0, h)]) < tol
    comp = dict(zip(p.species, p.composition.sum(axis=1), strict=False))
    assert comp == {"Sr": 1, "Ti+O": 2, "O": 1}


def test_srtio3_110_columns_match_crystallography():
    p = project("SrTiO3", "110")
    a = A_STO
    assert p.period == pytest.approx(a * math.sqrt(2), abs=1e-12)
    np.testing.assert_allclose(np.abs(p.lattice), np.diag([a / math.sqrt(2), a]), atol=1e-12)
    tol = 1e-4
    by = {s: p.sites[[i for i, t in enumerate(p.species) if t == s]] for s in set(p.species)}
    assert set(by) == {"Sr+O", "Ti", "O"}
    assert _match(by["Sr+O"], p.lattice, [(0, 0)]) < tol
    assert _match(by["Ti"], p.lattice, [(0, a / 2)]) < tol
    assert _match(by["O"], p.lattice, [(a / (2 * math.sqrt(2)), a / 2)]) < tol


def test_si_110_dumbbells():
    p = project("Si", "110")
    assert p.divisor == 2  # conventional cell: the true repeat along [110] is a/√2
    assert p.period == pytest.approx(A_SI / math.sqrt(2), abs=1e-12)
    assert p.n_sites == 4
    np.testing.assert_allclose(p.composition.sum(axis=1), 1.0)
    # nearest site-to-site distance: the dumbbell, a/4 = 1.358 Å
    d = []
    for i in range(4):
        for j in range(4):
            if i != j:
                v = (p.sites[i] - p.sites[j]) @ np.linalg.inv(p.lattice)
                v -= np.rint(v)
                d.append(np.linalg.norm(v @ p.lattice))
    assert min(d) == pytest.approx(A_SI / 4, abs=1e-4)  # 1e-3 Å
    expected = [
        (0, 0),
        (0, A_SI / 4),
        (A_SI / (2 * math.sqrt(2)), A_SI / 2),
        (A_SI / (2 * math.sqrt(2)), 3 * A_SI / 4),
    ]
    assert _match(p.sites, p.lattice, expected) < 1e-4


def test_fcc_110_not_refused_nor_double_weighted():
    p = project("Au", (1, 1, 0), max_repeat=0.3)  # |t| = 0.577 nm, true period 0.288 nm
    assert p.divisor == 2
    assert p.period == pytest.approx(0.40782 / math.sqrt(2), rel=1e-6)
    np.testing.assert_allclose(p.composition.sum(axis=1), 1.0)
    w = p.column_weights(1.7)
    assert w == pytest.approx(np.full(2, 79**1.7))


def test_hexagonal_and_2d():
    p = project("ZnO", (1, 1, -2, 0))
    assert p.zone == (1, 1, 0)
    assert p.period == pytest.approx(0.32495, abs=1e-6)
    assert sorted(set(p.species)) == ["O", "Zn"]
    m = project("MoS2", (0, 0, 1))
    assert m.two_d and set(m.species) == {"Mo", "S"}
    assert dict(zip(m.species, m.composition.sum(1), strict=False)) == {"Mo": 1, "S": 2}
    with pytest.raises(ParameterError, match="2-D material"):
        project("graphene", (1, 0, 0))


def test_long_repeat_refused_with_suggestions():
    with pytest.raises(ParameterError, match=r"repeats only every 3\.56 nm.*\[001\]"):
        project("SrTiO3", (7, 5, 3))
    # allowed when the limit is raised
    p = project("SrTiO3", (7, 5, 3), max_repeat=4.0)
    assert p.period == pytest.approx(A_STO * math.sqrt(83), rel=1e-9)
    assert zone_period("SrTiO3", (1, 1, 1)) == pytest.approx(A_STO * math.sqrt(3))


def test_sublattices_brightest_first():
    p = project("SrTiO3", (0, 0, 1))
    sub = dict(zip(p.species, p.sublattice, strict=False))
    assert sub["Sr"] == 0 and sub["Ti+O"] == 1 and sub["O"] == 2


def test_projected_cell_summary():
    from atomscope.simulate import projected_cell

    c = projected_cell("YBa2Cu3O7", zone=(1, 0, 0))
    # 6 cation columns per b × c cell: ~0.13 columns per Å²
    assert c["density_heavy_per_nm2"] == pytest.approx(6 / (0.38872 * 1.16802), rel=1e-6)
    assert c["n_columns"] == 13
    s = projected_cell("SrTiO3")
    assert s["density_per_nm2"] == pytest.approx(4 / A_STO**2)
    assert s["nn_distance_nm"] == pytest.approx(A_STO / 2)
