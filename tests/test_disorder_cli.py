"""`atomscope disorder` as a user runs it, with and without an atoms.csv."""

import json

import pytest

from atomscope.cli import main
from atomscope.simulate import simulate_amorphous_patches

from ._disorder_helpers import visible_columns


def run_cli(*args, expect=0):
    with pytest.raises(SystemExit) as exc:
        main(list(args))
        raise SystemExit(0)
    assert exc.value.code == expect, f"exit {exc.value.code} != {expect}"


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("disorder_cli")
    sim = simulate_amorphous_patches(
        "SrTiO3", fraction=0.25, n_patches=1, size=256, pixel_size=0.02, dose=1e5, seed=11
    )
    sim.save(d / "sim")
    cols = visible_columns(sim, (256, 256))
    cols[["x", "y"]].to_csv(d / "atoms.csv", index=False)
    return d


def test_cli_with_atoms_csv(image_dir, capsys):
    out = image_dir / "out"
    run_cli(
        "disorder",
        str(image_dir / "sim" / "image.tif"),
        "-o",
        str(out),
        "--atoms",
        str(image_dir / "atoms.csv"),
    )
    text = capsys.readouterr().out
    assert "amorphous area" in text and "Results written" in text
    for name in (
        "disorder.csv",
        "amorphous_mask.tif",
        "overlay.png",
        "pareto.png",
        "report.json",
        "report.html",
    ):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert 0.15 < report["area_fraction"] < 0.35
    page = (out / "report.html").read_text()
    assert "Pareto front" in page and "Parameters chosen by the optimiser" in page


def test_cli_finds_atoms_itself(image_dir, capsys):
    out = image_dir / "out2"
    run_cli(
        "disorder",
        str(image_dir / "sim" / "image.tif"),
        "-o",
        str(out),
        "--no-optimize",
        "--sublattice",
        "0",
    )
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["sublattice"] == 0 and report["n_atoms"] > 50
    assert 0.1 < report["area_fraction"] < 0.4


def test_cli_errors_are_one_line(image_dir, capsys):
    run_cli(
        "disorder",
        str(image_dir / "sim" / "image.tif"),
        "-o",
        str(image_dir / "bad"),
        "--atoms",
        str(image_dir / "nope.csv"),
        expect=2,
    )
    assert "atomscope: error:" in capsys.readouterr().err
