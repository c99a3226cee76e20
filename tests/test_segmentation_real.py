"""Real images: the high-entropy alloy of pySTEM's examples and the CdTe bicrystals of
*ingrained* (``../shared/data``)."""

import numpy as np
import pytest

import atomscope
from atomscope.segmentation import segment

# (x, y) px, read off the overlays (docs/images/segment_hea.png): two lamellae and the
# matrix between and beside them, on rows 300, 600 and 800
HEA_LAMELLA = [(565, 600), (775, 600), (633, 800), (840, 800), (460, 300)]
HEA_MATRIX = [(665, 600), (920, 600), (470, 800), (733, 800), (970, 800), (800, 300)]


@pytest.fixture(scope="module")
def hea(shared_data):
    return np.load(shared_data / "pystem" / "high_entropy_alloy.npy")


@pytest.mark.parametrize("descriptor", ["translation", "reflection"])
def test_hea_lamellae_are_separated_from_the_matrix(hea, descriptor):
    res = segment(hea, descriptor=descriptor, n_clusters=2)
    lab = res.labels
    lamella = {int(lab[y, x]) for x, y in HEA_LAMELLA}
    matrix = {int(lab[y, x]) for x, y in HEA_MATRIX}
    assert len(lamella) == 1 and len(matrix) == 1 and lamella != matrix
    assert res.settings["window_source"] == "lattice"
    assert 5 < res.settings["lattice_spacing_px"] < 8  # ~6.5 px period


def _load(shared_data, case):
    folder = shared_data / "ingrained"
    path = {
        "tilt": folder / "CdTe_110_CdTe_110_tilt" / "HAADF149.dm3",
        "twin": folder / "CdTe_110_CdTe_110_twin" / "HAADF26.dm3",
    }[case]
    return atomscope.load(path)


def _sides(case, shape):
    """Masks well inside each grain (the boundary runs near y = 240 px for the tilt image and
    from (176, 0) to (370, 511) for the twin)."""
    yy, xx = np.indices(shape)
    if case == "tilt":
        return yy < 190, yy > 300, np.abs(yy - 240) < 25
    xb = 176 + (370 - 176) * yy / 511
    return xx < xb - 50, xx > xb + 50, np.abs(xx - xb) < 25


@pytest.mark.parametrize("case", ["tilt", "twin"])
def test_cdte_grains_and_boundary(shared_data, case):
    mg = _load(shared_data, case)
    assert mg.pixel_size is not None
    res = segment(mg)  # number of segments chosen automatically
    assert res.n_clusters == 2
    a, b, near = _sides(case, res.labels.shape)
    la = np.bincount(res.labels[a]).argmax()
    lb = np.bincount(res.labels[b]).argmax()
    assert la != lb
    assert (res.labels[a] == la).mean() > 0.97 and (res.labels[b] == lb).mean() > 0.97
    # three segments: the two grains and a band along the boundary
    res3 = segment(mg, n_clusters=3)
    band = np.argmin(np.bincount(res3.labels.ravel(), minlength=3))
    in_band = res3.labels == band
    assert 0.02 < in_band.mean() < 0.15
    assert in_band[near].mean() > 0.3 and in_band[a | b].mean() < 0.02
