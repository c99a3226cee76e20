import math

import pytest

from atomscope.errors import CalibrationError
from atomscope.io.units import is_reciprocal_unit, length_to_nm, normalise_unit, parse_length


@pytest.mark.parametrize(
    ("unit", "canon"),
    [
        ("m", "m"),
        ("nm", "nm"),
        ("n_m", "nm"),
        ("[n_m]", "nm"),
        (b"n_m", "nm"),
        ("A", "A"),
        ("Å", "A"),
        ("\u212b", "A"),
        ("angstrom", "A"),
        ("Angstrom", "A"),
        ("ang", "A"),
        ("µm", "um"),
        ("μm", "um"),
        ("um", "um"),
        ("micron", "um"),
        ("pm", "pm"),
        ("NM", "nm"),
        ("mm", "mm"),
    ],
)
def test_normalise_unit_spellings(unit, canon):
    assert normalise_unit(unit) == canon


@pytest.mark.parametrize("unit", [None, "", "[]", "px", "pixel", "s", "eV", "1/nm"])
def test_non_length_units_give_none(unit):
    assert normalise_unit(unit) is None
    assert length_to_nm(0.5, unit) is None


@pytest.mark.parametrize(
    ("value", "unit", "nm"),
    [
        (1.0013e-11, "m", 0.010013),
        (0.0122, "n_m", 0.0122),
        (56.79, "A", 5.679),
        (0.1687, "µm", 168.7),
        (99.6, "pm", 0.0996),
        (3.372e-6, "m", 3372.0),
    ],
)
def test_length_to_nm(value, unit, nm):
    assert math.isclose(length_to_nm(value, unit), nm, rel_tol=1e-9)


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf"), "x"])
def test_uncalibrated_values_give_none(value):
    assert length_to_nm(value, "nm") is None


def test_reciprocal_units():
    assert is_reciprocal_unit("1/nm")
    assert is_reciprocal_unit("nm^-1")
    assert not is_reciprocal_unit("nm")
    assert not is_reciprocal_unit(None)


@pytest.mark.parametrize(
    ("text", "nm"),
    [
        ("0.39nm", 0.39),
        ("3.9 A", 0.39),
        ("3.9Å", 0.39),
        ("390pm", 0.39),
        ("0.39", 0.39),
        (0.39, 0.39),
        ("1e-2 nm", 0.01),
        ("0.02nm/px", 0.02),
    ],
)
def test_parse_length(text, nm):
    assert math.isclose(parse_length(text), nm, rel_tol=1e-12)


@pytest.mark.parametrize("text", ["", "abc", "-1nm", "0nm", "3 furlongs", "1/nm"])
def test_parse_length_rejects(text):
    with pytest.raises(CalibrationError):
        parse_length(text)
