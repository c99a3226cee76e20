"""measure(): sizes and positions in nm; diameters of simulated particles within 5 %."""

import math

import numpy as np
import pytest

from atomscope.errors import ParameterError
from atomscope.particles import label_mask, match_labels, measure, segment
from atomscope.simulate import simulate_particles_frame


def _disk(shape, cx, cy, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_disks_and_an_ellipse():
    m = _disk((120, 160), 40.3, 50.7, 15) | _disk((120, 160), 120, 60, 8)
    yy, xx = np.mgrid[:120, :160]
    m |= ((xx - 80) / 12.0) ** 2 + ((yy - 100) / 5.0) ** 2 <= 1
    df = measure(m, 0.25)
    assert len(df) == 3
    big = df.loc[df["area_px"].idxmax()]
    assert big["x"] == pytest.approx(40.3, abs=0.1) and big["y"] == pytest.approx(50.7, abs=0.1)
    assert big["diameter_px"] == pytest.approx(30, rel=0.02)
    assert big["diameter_nm"] == pytest.approx(7.5, rel=0.02)
    assert big["x_nm"] == pytest.approx(40.3 * 0.25, abs=0.03)
    ell = df.loc[(df["y"] - 100).abs().idxmin()]
    assert ell["major_px"] == pytest.approx(24, rel=0.05)
    assert ell["minor_px"] == pytest.approx(10, rel=0.1)
    assert abs(ell["orientation_deg"]) < 1
    assert not df["touches_border"].any()


def test_calibration_filters_and_border():
    m = _disk((100, 100), 50, 50, 10) | _disk((100, 100), 2, 2, 6) | _disk((100, 100), 80, 20, 2)
    df = measure(m)
    assert len(df) == 3 and df["diameter_nm"].isna().all()
    assert df["touches_border"].sum() == 1
    assert len(measure(m, exclude_border=True)) == 2
    assert len(measure(m, 0.5, min_diameter_nm=3.0)) == 2
    assert len(measure(m, min_area_px=30)) == 2
    with pytest.raises(ParameterError):
        measure(m, min_diameter_nm=1.0)
    aniso = measure(_disk((100, 100), 50, 50, 10), (0.2, 0.1))
    assert aniso["area_nm2"].iloc[0] == pytest.approx(aniso["area_px"].iloc[0] * 0.02)
    assert aniso["major_nm"].iloc[0] == pytest.approx(4.0, rel=0.05)  # 20 px × 0.2 nm rows
    assert len(measure(np.zeros((10, 10), bool))) == 0


def test_labels_are_used_as_given_and_corners_stay_apart():
    lab = np.zeros((20, 20), np.int32)
    lab[2:6, 2:6] = 3
    lab[6:10, 6:10] = 7  # touches label 3 at a corner only
    df = measure(lab)
    assert sorted(df["particle_id"]) == [3, 7]
    assert label_mask(lab > 0).max() == 2
    assert label_mask(lab > 0, connectivity=2).max() == 1


def test_diameters_within_5_percent_for_particles_of_10_px_and_more():
    res = simulate_particles_frame(
        size=512, pixel_size=0.18, n_particles=16, radius=(2.5, 0.35), counts=100.0, seed=31
    )
    ps = res.image.pixel_size_nm
    truth = res.truth.masks["particle"]
    lab = label_mask(segment(res.image, method="classical").mask)
    table = measure(lab, ps)
    matches = match_labels(lab, truth)
    tp = res.truth.particles.set_index("id")
    errors = []
    for label, tid in zip(matches["label"], matches["truth_id"], strict=True):
        true_d = 2 * tp.loc[tid, "radius_nm"]
        if true_d / ps < 10:
            continue
        row = table.loc[table["particle_id"] == label].iloc[0]
        if row["touches_border"]:  # cut by the frame: its size is unknown
            continue
        d = row["diameter_nm"]
        errors.append(abs(d - true_d) / true_d)
    errors = np.asarray(errors)
    assert len(errors) >= 10
    assert np.median(errors) < 0.03, errors
    assert (errors < 0.05).mean() >= 0.85, errors
    assert math.isfinite(table["major_nm"].sum())
