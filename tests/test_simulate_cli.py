import json

import pytest

from atomscope.cli import main


def test_cli_simulate_writes_files(tmp_path, capsys):
    out = tmp_path / "sim"
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "simulate",
                "SrTiO3",
                "--zone",
                "1,1,0",
                "--size",
                "64",
                "--pixel-size",
                "0.2A",
                "--dose",
                "5000",
                "--thickness",
                "8",
                "--seed",
                "3",
                "-o",
                str(out),
            ]
        )
    assert exc.value.code in (0, None)
    for name in ("image.tif", "columns.csv", "mask_grain.tif", "truth.json"):
        assert (out / name).exists()
    params = json.loads((out / "truth.json").read_text())["parameters"]
    assert params["pixel_size_nm"] == pytest.approx(0.02)
    assert params["zone"] == [1, 1, 0] and params["seed"] == 3 and params["thickness"] == 8


def test_cli_simulate_refuses_clearly(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "SrTiO3", "--zone", "7,5,3", "-o", str(tmp_path / "x")])
    assert exc.value.code == 2
    assert "repeats only every" in capsys.readouterr().err
