"""The real 5-frame STEM nanoparticle series (bright particles, 0.384 nm/px) end to end."""

import numpy as np
import pytest

import atomscope
from atomscope.particles import analyze

SERIES = "rsciio/tia_STEM_nanoparticles_5frames.emi"


@pytest.fixture(scope="module")
def series(shared_data):
    return atomscope.load(shared_data / SERIES)


@pytest.mark.parametrize("method", ["classical", "unet"])
def test_real_series_gives_a_plausible_particle_table(series, method):
    assert series.shape == (5, 128, 128)
    res = analyze(series, method=method, n_threads=2)
    assert res.bright  # HAADF signal: bright particles, detected
    pf = res.per_frame()
    # about a dozen particles per 49 nm field, 20-45 % of the area
    assert pf["count"].between(6, 25).all(), pf
    assert pf["coverage"].between(0.15, 0.5).all(), pf
    t = res.table
    assert t["diameter_nm"].median() == pytest.approx(8.0, rel=0.5)  # a few nm, not Å or µm
    assert t["diameter_nm"].max() < 40
    # the same particles in successive frames (0.38 s apart) keep their tracks
    whole = t[~t["touches_border"]]
    lasting = whole.groupby("track_id")["frame"].nunique()
    assert (lasting == 5).mean() > 0.6
    assert np.isfinite(t[["x_nm", "y_nm", "major_nm", "minor_nm"]].to_numpy()).all()
