"""``atomscope segment`` run as a user would."""

import json

import numpy as np
import pytest
import tifffile

from atomscope.cli import main
from tests._segmentation_helpers import bicrystal


def run_cli(*args, expect=0):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
        raise SystemExit(0)
    assert exc.value.code == expect, f"exit {exc.value.code} != {expect}"


def test_segment_command(tmp_path, capsys):
    sim = bicrystal("two_grain")
    path = tmp_path / "frame.npy"
    np.save(path, sim.image.data)
    out = tmp_path / "out"
    run_cli("segment", path, "-o", out, "--clusters", 2, "--stride", 4, "--pixel-size", "0.02nm")
    text = capsys.readouterr().out
    assert "2 segments (translation" in text and "Results written" in text
    for name in (
        "labels.tif",
        "labels.npy",
        "segments.csv",
        "overlay.png",
        "report.json",
        "model.npz",
        "report.html",
    ):
        assert (out / name).exists(), name
    labels = tifffile.imread(out / "labels.tif")
    assert labels.shape == sim.image.image_shape
    np.testing.assert_array_equal(labels, np.load(out / "labels.npy"))
    report = json.loads((out / "report.json").read_text())
    assert report["image"]["pixel_size_nm"] == [0.02, 0.02]
    # the next frame, labelled with the first frame's model
    out2 = tmp_path / "out2"
    run_cli("segment", path, "-o", out2, "--model", out)
    assert "reused model" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(out2 / "labels.npy"), labels)


def test_segment_command_automatic_k_and_errors(tmp_path, capsys):
    path = tmp_path / "frame.npy"
    np.save(path, bicrystal("two_phase").image.data)
    run_cli(
        "segment",
        path,
        "-o",
        tmp_path / "auto",
        "--stride",
        6,
        "--descriptor",
        "translation,reflection",
    )
    text = capsys.readouterr().out
    assert "number chosen by silhouette" in text and "translation, reflection" in text
    run_cli("segment", path, "-o", tmp_path / "bad", "--descriptor", "wavelet", expect=2)
    assert "Unknown descriptor" in capsys.readouterr().err
    run_cli("segment", "--help")
    assert "--clusters" in capsys.readouterr().out
