"""Each command run as a user would (through the entry point), plus error handling."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from atomscope.cli import _load_one_frame, main, parse_pixel_size


def run_cli(*args, expect=0, capsys=None):
    with pytest.raises(SystemExit) as exc:
        main(list(args))
        raise SystemExit(0)
    assert exc.value.code == expect, f"exit {exc.value.code} != {expect}"


def test_help_everywhere(capsys):
    run_cli("--help")
    assert "info" in capsys.readouterr().out
    for cmd in ("info", "demo", "atoms", "simulate"):
        run_cli(cmd, "--help")
        assert "--help" in capsys.readouterr().out


def test_version(capsys):
    run_cli("--version")
    assert "atomscope" in capsys.readouterr().out


def test_info_on_array_file(tmp_path, capsys):
    path = tmp_path / "img.npy"
    np.save(path, np.arange(64, dtype=np.uint16).reshape(8, 8))
    run_cli("info", str(path))
    out = capsys.readouterr().out
    assert "(8, 8)" in out and "uncalibrated" in out
    run_cli("info", str(path), "--json")
    record = json.loads(capsys.readouterr().out)
    assert record["shape"] == [8, 8]
    assert record["pixel_size_nm"] is None


def test_info_on_real_file(shared_data, capsys):
    run_cli("info", str(shared_data / "ncempy/velox_STEM_HAADF_DF4_DF2_BF_128.emd"))
    out = capsys.readouterr().out
    assert "87.37" in out
    for name in ("HAADF", "DF2", "DF4", "BF"):
        assert name in out


def test_single_frame_commands_take_frame_0_of_a_stack_and_say_so(tmp_path, capsys):
    path = tmp_path / "movie.npy"
    frames = np.arange(3 * 8 * 8, dtype=np.float32).reshape(3, 8, 8)
    np.save(path, frames)
    mg = _load_one_frame(
        path, frame=None, signal=None, pixel_size="0.02", doing="matching", hint="use --frame N"
    )
    assert not mg.is_stack
    np.testing.assert_array_equal(mg.data, frames[0])
    err = capsys.readouterr().err
    assert "stack of 3 frames; matching frame 0 (use --frame N)" in err
    mg = _load_one_frame(path, frame=2, signal=None, pixel_size=None, doing="x", hint="y")
    np.testing.assert_array_equal(mg.data, frames[2])
    assert capsys.readouterr().err == ""


def test_missing_file_is_a_one_line_error(tmp_path, capsys):
    run_cli("info", str(tmp_path / "absent.dm3"), expect=2)
    err = capsys.readouterr().err
    assert err.startswith("atomscope: error: No such file")
    assert "Traceback" not in err


def test_usage_error_exit_code(capsys):
    run_cli("info", expect=2)


def test_parse_pixel_size():
    assert parse_pixel_size("0.02nm") == (0.02, 0.02)
    assert parse_pixel_size("2A,1nm") == pytest.approx((0.2, 1.0))
    assert parse_pixel_size(None) is None


def test_console_script_runs(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "atomscope.cli", "info", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "No such file" in proc.stderr


def test_atoms_command_on_a_simulated_image(tmp_path, capsys):
    run_cli(
        "simulate",
        "SrTiO3",
        "--size",
        "192",
        "--dose",
        "1e5",
        "--seed",
        "1",
        "-o",
        str(tmp_path / "sim"),
    )
    run_cli("atoms", str(tmp_path / "sim" / "image.tif"), "-o", str(tmp_path / "atoms"))
    out = capsys.readouterr().out
    assert "columns found" in out and "2 column(s) per cell" in out
    for name in ("atoms.csv", "overlay.png", "pareto.png", "report.json", "report.html"):
        assert (tmp_path / "atoms" / name).exists()
    report = json.loads((tmp_path / "atoms" / "report.json").read_text())
    assert report["n_columns"] > 50
    assert report["lattice"]["a_nm"] == pytest.approx(0.3905, rel=0.01)


def test_atoms_command_needs_calibration_for_a_lattice_in_nm(tmp_path, capsys):
    path = tmp_path / "img.npy"
    np.save(path, np.random.default_rng(0).normal(size=(64, 64)))
    run_cli("atoms", str(path), "-o", str(tmp_path / "o"), "--lattice", "0.39nm", expect=2)
    assert "pixel size" in capsys.readouterr().err


def test_demo_runs_end_to_end(tmp_path, capsys):
    run_cli("demo", "-o", str(tmp_path / "demo"), "--no-progress")
    out = capsys.readouterr().out
    assert "atoms:" in out
    assert (tmp_path / "demo" / "overview.png").exists()
    assert (tmp_path / "demo" / "atoms" / "atoms.csv").exists()
    for line in ("disorder:", "segment:", "particles:"):
        assert line in out
    for name in (
        "disorder/amorphous_mask.tif",
        "segment/labels.tif",
        "particles/particles.csv",
        "report.html",
    ):
        assert (tmp_path / "demo" / name).exists(), name
    # the demo checks itself against the simulator's truth; these are loose, honest floors
    cnn_found = float(re.search(r"CNN \(no parameters\): \d+ columns, ([0-9.]+) %", out).group(1))
    assert cnn_found > 90
    iou = float(re.search(r"IoU ([0-9.]+)", out).group(1))
    grain = float(re.search(r"segment: \d+ segments, ([0-9.]+) %", out).group(1))
    assert iou > 0.5 and grain > 80
    page = (tmp_path / "demo" / "report.html").read_text()
    for section in (
        "atoms (bicrystal)",
        "disorder (bicrystal)",
        "segment (bicrystal)",
        "particles (movie)",
    ):
        assert section in page
