"""`atomscope particles` and `atomscope train particles`, run as a user would."""

import json

import numpy as np
import pandas as pd
import pytest
import zarr

from atomscope.cli import main
from atomscope.simulate import simulate_particles_frame


def run_cli(*args, expect=0):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
        raise SystemExit(0)
    assert exc.value.code == expect, f"exit {exc.value.code} != {expect}"


def test_help(capsys):
    run_cli("particles", "--help")
    out = capsys.readouterr().out
    assert "--method" in out and "--threshold" in out
    run_cli("train", "--help")
    assert "particles" in capsys.readouterr().out
    run_cli("train", "particles", "--help")
    assert "--simulated" in capsys.readouterr().out


def test_particles_on_the_real_series(shared_data, tmp_path, capsys):
    out = tmp_path / "out"
    run_cli(
        "particles",
        shared_data / "rsciio/tia_STEM_nanoparticles_5frames.emi",
        "-o",
        out,
        "--no-progress",
    )
    text = capsys.readouterr().out
    assert "particles in 5 frames" in text and "bright" in text
    for name in (
        "particles.csv",
        "overlay.png",
        "size_vs_time.png",
        "size_histograms.png",
        "report.json",
        "report.html",
        "tracks.csv",
        "events.csv",
        "per_frame.csv",
    ):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "particles.csv")
    for col in (
        "frame",
        "particle_id",
        "track_id",
        "area_nm2",
        "diameter_nm",
        "major_nm",
        "minor_nm",
        "x_nm",
        "y_nm",
    ):
        assert col in table
    masks = zarr.open_array(str(out / "masks.zarr"), mode="r")
    assert masks.shape == (5, 128, 128)
    f0 = np.asarray(masks[0])
    assert set(np.unique(f0[f0 > 0])) == set(table.loc[table["frame"] == 0, "particle_id"])
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["n_frames"] == 5 and report["summary"]["bright_particles"]
    page = (out / "report.html").read_text()
    assert "particle size and count vs time" in page and page.count("data:image/png") >= 3


def test_single_image_unet_with_threshold(tmp_path, capsys):
    res = simulate_particles_frame(size=256, n_particles=6, radius=(3.0, 0.2), seed=2)
    path = tmp_path / "frame.npy"
    np.save(path, res.image.data)
    out = tmp_path / "out"
    run_cli(
        "particles",
        path,
        "-o",
        out,
        "--method",
        "unet",
        "--threshold",
        "0.4",
        "--pixel-size",
        "0.18nm",
        "--dark",
        "--threads",
        "2",
        "--no-progress",
    )
    assert (out / "mask.tif").is_file() and not (out / "masks.zarr").exists()
    table = pd.read_csv(out / "particles.csv")
    assert len(table) == 6  # the six simulated particles, no specks at the frame edges
    assert table["diameter_nm"].between(3, 10).all()
    run_cli("particles", path, "-o", out, "--threshold", "high", "--no-progress", expect=2)


def test_train_then_use_the_model(tmp_path, capsys):
    model_dir = tmp_path / "model"
    run_cli(
        "train",
        "particles",
        "--simulated",
        "-o",
        model_dir,
        "--arch",
        "shallow",
        "--epochs",
        "1",
        "--steps",
        "2",
        "--frames",
        "4",
        "--frame-size",
        "96",
        "--patch-size",
        "64",
        "--batch-size",
        "2",
        "--threads",
        "2",
        "--no-progress",
    )
    text = capsys.readouterr().out
    assert "Model written to" in text
    pt = model_dir / "particles-shallow.pt"
    manifest = json.loads(pt.with_suffix(".json").read_text())
    command = manifest["training"]["command"]
    assert command.startswith("atomscope train particles --simulated")
    assert "--epochs 1 --steps 2 --frames 4" in command and command.endswith("--threads 2")
    assert "--blur" not in command and "--dark" not in command
    assert manifest["training"]["seed"] == 0 and manifest["architecture"] == "shallow"
    res = simulate_particles_frame(size=128, n_particles=3, radius=(2.5, 0.2), seed=9)
    img = tmp_path / "img.npy"
    np.save(img, res.image.data)
    run_cli(
        "particles",
        img,
        "-o",
        tmp_path / "o2",
        "--method",
        "shallow",
        "--model",
        pt,
        "--no-progress",
    )
    assert (tmp_path / "o2" / "report.json").is_file()
    report = json.loads((tmp_path / "o2" / "report.json").read_text())
    assert report["summary"]["model"]["path"].endswith("particles-shallow.pt")


def test_train_from_a_folder_with_pseudo_labels(tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        r = simulate_particles_frame(size=96, n_particles=3, radius=(2.0, 0.2), seed=40 + i)
        np.save(folder / f"frame{i}.npy", r.image.data)
    run_cli(
        "train",
        "particles",
        "--from-folder",
        folder,
        "-o",
        tmp_path / "m",
        "--arch",
        "shallow",
        "--epochs",
        "1",
        "--steps",
        "1",
        "--patch-size",
        "64",
        "--batch-size",
        "2",
        "--segment-length",
        "2",
        "--dark",
        "--no-progress",
    )
    manifest = json.loads((tmp_path / "m" / "particles-shallow.json").read_text())
    assert manifest["training"]["source"].startswith("pseudo-labels")
    run_cli("train", "particles", "-o", tmp_path / "x", "--no-progress", expect=2)
