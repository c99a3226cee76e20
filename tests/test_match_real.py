"""Real images (``../shared/data``): CdTe [110] (ingrained) and SrTiO3 [001] (ncempy) against a
library of built-ins, ASE crystals, look-alike AFLOW prototypes and a random sample of others."""

from __future__ import annotations

import pytest

from atomscope.io import load
from atomscope.match import rank

from ._match_helpers import distractor_library


@pytest.fixture(scope="module")
def library(shared_data):
    return distractor_library(str(shared_data))


def test_cdte_grain_is_zincblende_cdte_110(shared_data, library):
    mg = load(shared_data / "ingrained" / "CdTe_110_CdTe_110_tilt" / "HAADF149.dm3")
    # the lower grain of the tilt boundary
    rk = rank(mg, library, metric="all", region=(312, 512, 0, 512))
    for m in ("ssim", "emd", "mse"):
        best = rk.best(m)
        assert (best["name"], best["zone"]) == ("CdTe", "[110]"), rk.top(3, m)
    best = rk.best("ssim")
    # the file's calibration (0.016388 nm/px) holds to a few per cent
    assert best["pixel_size_fit_nm"] == pytest.approx(0.016388, rel=0.05)
    # a clear margin to every other structure
    second = rk.top(2, "ssim").iloc[1]
    assert best["ssim"] - second["ssim"] > 0.2


def test_srtio3_frame_is_a_perovskite_001(shared_data, library):
    mg = load(shared_data / "ncempy" / "tia_STEM_SrTiO3_atomic_1024.emi")
    rk = rank(mg, library, metric="ssim", region=(0, 512, 0, 512))
    top = rk.top(3, "ssim")
    assert set(top["structure_type"]) == {"perovskite"}, top[["name", "zone", "ssim"]]
    # cubic [001], or the orthorhombic cells' pseudo-cubic [001] ([010], [101] of Pnma)
    assert rk.best("ssim")["zone"] in ("[001]", "[010]", "[101]")
    assert rk.query_info["calibrated"]
