import json

import numpy as np
import pandas as pd
import pytest
import tifffile

import atomscope
from atomscope.simulate import simulate_coarsening_movie, simulate_haadf, simulate_to_dir


def test_save_writes_calibrated_files(tmp_path):
    res = simulate_haadf("SrTiO3", size=64, pixel_size=0.0173, counts=20, seed=1)
    out = res.save(tmp_path / "sim")
    names = {p.name for p in out.iterdir()}
    assert {
        "image.tif",
        "columns.csv",
        "mask_grain.tif",
        "truth.json",
        "field_noise_free.tif",
    } <= names
    assert not any(n.startswith(".") for n in names)  # no temporary files left behind
    with tifffile.TiffFile(out / "image.tif") as tif:
        assert tif.imagej_metadata["unit"] == "nm"
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(0.0173, rel=1e-6)
        data = tif.asarray()
    assert data.dtype == np.float32
    np.testing.assert_array_equal(data, res.image.data)
    mg = atomscope.load(out / "image.tif")
    assert mg.pixel_size == pytest.approx((0.0173, 0.0173))
    cols = pd.read_csv(out / "columns.csv")
    assert len(cols) == len(res.truth.columns)
    np.testing.assert_allclose(cols.x, res.truth.columns.x)
    mask = tifffile.imread(out / "mask_grain.tif")
    assert mask.dtype == np.uint8
    meta = json.loads((out / "truth.json").read_text())
    assert meta["parameters"]["pixel_size_nm"] == 0.0173
    assert meta["parameters"]["noise"]["counts_at_max"] == 20


def test_movie_saves_stack_and_uint16_labels(tmp_path):
    res = simulate_coarsening_movie(n_frames=3, size=64, n_particles=6, seed=2)
    out = res.save(tmp_path / "movie")
    assert (out / "particles.csv").exists()
    mg = atomscope.load(out / "image.tif")
    assert mg.shape == (3, 64, 64)
    assert mg.pixel_size == pytest.approx((0.18, 0.18))
    assert res.to_frame() is res.truth.particles


def test_simulate_to_dir(tmp_path):
    out = simulate_to_dir(
        "Au", tmp_path / "au", zone=(1, 1, 0), size=48, pixel_size=0.015, dose=1e4, seed=3
    )
    assert (out / "image.tif").exists()
    summary = simulate_haadf("Au", zone=(1, 1, 0), size=48, pixel_size=0.015).summary()
    assert summary["n_columns"] > 0 and summary["zone"] == [1, 1, 0]


def test_plot_runs():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = simulate_haadf("SrTiO3", size=48)
    fig, ax = plt.subplots()
    res.plot(ax)
    plt.close(fig)
