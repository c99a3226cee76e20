"""``atomscope.segment`` end to end: accuracy on simulated images, grid offsets for every
descriptor, blank images, model reuse, automatic k, determinism, the Result API, errors."""

import json

import numpy as np
import pytest

import atomscope
from atomscope.errors import InvalidImageError, ParameterError
from atomscope.segmentation import (
    Segmentation,
    SegmentationModel,
    adjusted_rand_index,
    boundary_offset,
    choose_k,
    fisher_separability,
    kmeans,
    make_grid,
    segment,
    upsample_labels,
)
from atomscope.segmentation.grid import Grid
from tests._segmentation_helpers import bicrystal, lattice, square_hex

DESCRIPTORS = ("translation", "rotation", "reflection", "power_spectrum")


def _check(res, truth, ari=0.95, offset=2.0):
    a = adjusted_rand_index(res.labels, truth)
    b = boundary_offset(res.labels, truth)["mean"]
    assert a >= ari and b <= offset, f"ARI {a:.3f} (≥ {ari}), boundary offset {b:.2f} px"
    return a, b


# -- accuracy on simulated HAADF images (exact masks) ------------------------------------------
@pytest.mark.parametrize(
    "kind, descriptor, offset",
    [
        ("two_grain", "translation", 2.0),  # same structure, grains 25° apart
        ("two_grain", "reflection", 2.0),  # mirror lines turn with the grain
        ("two_phase", "translation", 2.0),  # Pt [001] / CdTe [110]
        ("two_phase", "reflection", 2.0),
        ("square_hex", "translation", 2.5),  # SrTiO3 [001] / ZnO [001]: 14–20 px lattices
        # 4-fold against 6-fold; the ±14 px pooling window blurs the boundary by a few px
        ("square_hex", "rotation", 3.5),
    ],
)
def test_accuracy_on_simulated_images(kind, descriptor, offset):
    sim = bicrystal(kind)
    res = segment(sim.image, descriptor=descriptor, n_clusters=2, stride=4)
    _check(res, sim.truth.masks["grain"], offset=offset)


def test_accuracy_on_a_stepped_grain_boundary():
    sim = bicrystal("stepped")
    res = segment(sim.image, n_clusters=2, stride=4)
    _check(res, sim.truth.masks["grain"], offset=2.5)  # the steps' corners are rounded


def test_combined_descriptors():
    sim = bicrystal("two_phase")
    res = segment(sim.image, descriptor=["translation", "reflection"], n_clusters=2, stride=4)
    assert res.model.settings.descriptors == ("translation", "reflection")
    assert any(n.startswith("mirror") for n in res.feature_names)
    _check(res, sim.truth.masks["grain"])


# -- the grid offset is right for every descriptor --------------------------------------------
@pytest.mark.parametrize("descriptor", DESCRIPTORS)
def test_boundary_lands_where_it_is_for_every_descriptor(descriptor):
    """Square lattice left of column 117, hexagonal right, odd width: the descriptors' grids
    start 20–40 px from the edge, so labels mapped back with a wrong offset (pySTEM's defect)
    would move the boundary by that much."""
    img, truth = square_hex()
    res = segment(img, descriptor=descriptor, n_clusters=2, stride=4, window=8)
    lab = res.labels
    cols = (lab[:, 1:] != lab[:, :-1]).argmax(axis=1) + 1  # first column of the right segment
    assert abs(np.median(cols) - 117) <= 2
    _check(res, truth, offset=2.5)
    margin = res.model.settings.margin(descriptor)
    assert res.centres_x[0] >= margin and res.centres_x[-1] <= img.shape[1] - 1 - margin
    # the same labels placed as if the first centre sat at the image edge are far off
    shift = int(res.centres_x[0])
    wrong = np.roll(lab, -shift, axis=1)
    assert boundary_offset(wrong, truth)["mean"] > 2 * 2.5


def test_linear_upsampling_places_the_boundary_between_centres():
    grid = Grid(np.arange(10, 91, 10), np.arange(7, 98, 10), 10, (100, 105))
    xs = grid.xs.astype(float)
    # distance to cluster 1 minus distance to cluster 0 changes sign at x = 52.5
    d = np.zeros((grid.ny, grid.nx, 2))
    d[..., 1] = (52.5 - xs)[None, :]
    lab = upsample_labels(grid, d)
    assert (lab[:, :53] == 0).all() and (lab[:, 53:] == 1).all()
    near = upsample_labels(grid, d, method="nearest")
    assert (near[:, :52] == 0).all() and (near[:, 53:] == 1).all()
    # outside the grid's hull the edge centres' labels continue
    assert lab.shape == (100, 105) and (lab[:, :7] == 0).all() and (lab[:, 98:] == 1).all()


# -- blank and half-blank images -----------------------------------------------------------------
@pytest.mark.parametrize("value", [0.0, 7.5])
def test_blank_image_gives_one_segment(value):
    res = segment(np.full((128, 140), value, np.float32), n_clusters=2, window=10)
    assert res.n_clusters == 1 and (res.labels == 0).all()
    assert res.scores["n_clusters_chosen_by"] == "blank"
    assert np.isfinite(res.features).all()
    assert "no texture" in res.message
    assert segment(np.zeros((128, 128)), window=10).n_clusters == 1  # automatic k too


@pytest.mark.parametrize("descriptor", DESCRIPTORS)
def test_half_blank_image(descriptor):
    """pySTEM returns NaN for flat patches and PCA fails; here a flat patch scores 0 and the
    blank half is a segment of its own (its edge moves into the blank side by up to a patch,
    since a patch that holds any lattice correlates like the lattice)."""
    img, _ = square_hex(noise=0.0)
    img[:, :117] = 0.0
    res = segment(img, descriptor=descriptor, n_clusters=2, stride=4, window=8)
    assert np.isfinite(res.features).all() and np.isfinite(res.pca_features).all()
    lab = res.labels
    blank, crystal = lab[:, :80], lab[:, 140:]
    assert len(np.unique(blank)) == 1 and len(np.unique(crystal)) == 1
    assert blank[0, 0] != crystal[0, 0]


# -- model reuse across frames -------------------------------------------------------------------
def test_model_reuse_keeps_labels_across_frames():
    from atomscope.simulate import simulate_bicrystal

    first = bicrystal("two_grain")
    fitted = segment(first.image, n_clusters=2, stride=4)
    g1_label = np.bincount(fitted.labels[first.truth.masks["grain"] == 1]).argmax()
    # next "frame": new noise, and the boundary moved so that grain 2 is now the larger one
    # (a refit would sort it to label 0)
    nxt = simulate_bicrystal(
        "Pt",
        zone=(0, 0, 1),
        rotation=10,
        rotation2=35,
        size=320,
        pixel_size=0.02,
        dose=1e5,
        seed=11,
        boundary_offset=-1.2,
    )
    truth = nxt.truth.masks["grain"]
    assert (truth == 2).mean() > 0.6
    reused = segment(nxt.image, model=fitted.model)
    assert reused.scores["n_clusters_chosen_by"] == "model"
    _check(reused, truth)
    assert np.bincount(reused.labels[truth == 1]).argmax() == g1_label
    assert reused.model is fitted.model
    refit = segment(nxt.image, n_clusters=2, stride=4)
    assert np.bincount(refit.labels[truth == 2]).argmax() == 0  # sorted by size instead


def test_model_round_trip_and_conflicts(tmp_path):
    sim = bicrystal("two_grain")
    res = segment(sim.image, n_clusters=2, stride=4)
    path = res.model.save(tmp_path / "model.npz")
    loaded = SegmentationModel.load(tmp_path)  # a folder: its model.npz
    assert loaded.settings == res.model.settings
    again = segment(sim.image, model=loaded)
    np.testing.assert_array_equal(again.labels, res.labels)
    with pytest.raises(ParameterError, match="contradict"):
        segment(sim.image, model=loaded, stride=8)
    with pytest.raises(ParameterError, match="contradict"):
        segment(sim.image, model=loaded, descriptor="rotation")
    with pytest.raises(ParameterError):
        segment(sim.image, model=loaded, n_clusters=3)
    assert path.exists()


# -- number of clusters, determinism ---------------------------------------------------------------
def test_automatic_number_of_clusters_on_a_clear_bicrystal():
    res = segment(bicrystal("two_grain").image, stride=4)
    assert res.n_clusters == 2
    assert res.scores["n_clusters_chosen_by"] == "silhouette"
    ks = res.scores["k_scores"]
    assert set(ks) == set(range(2, 9)) and max(ks, key=ks.get) == 2
    bic = segment(bicrystal("two_grain").image, stride=4, k_method="bic", k_range=(1, 4))
    assert set(bic.scores["k_scores"]) == {1, 2, 3, 4} and bic.n_clusters >= 2


def test_same_seed_same_labels_and_torch_device():
    img = bicrystal("two_phase").image
    a = segment(img, n_clusters=3, stride=6, seed=3)
    b = segment(img, n_clusters=3, stride=6, seed=3, n_threads=1)
    np.testing.assert_array_equal(a.labels, b.labels)
    pytest.importorskip("torch")
    c = segment(img, n_clusters=3, stride=6, seed=3, device="cpu")
    assert (c.labels == a.labels).mean() > 0.999


def test_kmeans_sorted_by_size_and_seeded():
    rng = np.random.default_rng(0)
    Z = np.concatenate(
        [
            rng.normal(0, 0.3, (50, 2)),
            rng.normal(5, 0.3, (300, 2)),
            rng.normal((0, 5), 0.3, (120, 2)),
        ]
    )
    c1, l1, _ = kmeans(Z, 3, seed=1)
    c2, l2, _ = kmeans(Z, 3, seed=1)
    np.testing.assert_array_equal(l1, l2)
    assert list(np.bincount(l1)) == [300, 120, 50]
    k, scores = choose_k(Z, (2, 5))
    assert k == 3 and scores[3] == max(scores.values())


def test_fisher_separability():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 500)
    good = labels * 4.0 + rng.normal(0, 1, 1000)
    noise = rng.normal(0, 1, 1000)
    s = fisher_separability(np.c_[good, noise, np.ones(1000)], labels)
    assert s[0] == pytest.approx(4.0, rel=0.2)  # N1 N2 (Δμ)² / N / (σ² N) = 16/4
    assert s[1] < 0.05 and s[2] == 0


# -- the Result API ------------------------------------------------------------------------------
def test_result_api(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import tifffile

    sim = bicrystal("two_grain")
    res = atomscope.segment(sim.image, n_clusters=2, stride=4)  # the lazy top-level export
    assert isinstance(res, Segmentation)
    assert res.labels.shape == sim.image.image_shape and res.labels.dtype == np.int32
    df = res.to_frame()
    assert list(df.label) == [0, 1] and df.area_fraction.sum() == pytest.approx(1.0)
    assert df.pixels.iloc[0] >= df.pixels.iloc[1]  # label 0 is the larger segment
    assert "area_nm2" in df and "x_nm" in df
    s = res.summary()
    assert s["n_clusters"] == 2 and "fisher_separability" in s["scores"]
    assert s["scores"]["fisher_separability"]["variance_separability_spearman"] > 0
    paths = res.save(tmp_path / "out")
    for name in (
        "labels.tif",
        "labels.npy",
        "segments.csv",
        "overlay.png",
        "report.json",
        "model.npz",
    ):
        assert paths[name].exists(), name
    tif = tifffile.imread(paths["labels.tif"])
    np.testing.assert_array_equal(tif, res.labels)
    np.testing.assert_array_equal(np.load(paths["labels.npy"]), res.labels)
    report = json.loads(paths["report.json"].read_text())
    assert report["n_clusters"] == 2 and report["descriptors"] == ["translation"]
    ax = res.plot()
    assert ax.get_legend() is not None


def test_registry_entry():
    from atomscope.analyses import get_analysis

    a = get_analysis("segment")
    assert a.function is segment and a.result_type is Segmentation


# -- errors ----------------------------------------------------------------------------------------
def test_errors():
    img = lattice((120, 120), 8.0, (0, 90)).astype(np.float32)
    with pytest.raises(InvalidImageError, match="stack"):
        segment(np.stack([img, img]))
    with pytest.raises(ParameterError, match="Unknown descriptor"):
        segment(img, descriptor="wavelet")
    with pytest.raises(ParameterError, match="too small"):
        segment(img[:40, :40], window=21)
    with pytest.raises(ParameterError):
        segment(img, window=10, n_clusters=0)
    with pytest.raises(ParameterError):
        segment(img, window=10, stride=0)
    with pytest.raises(ParameterError):
        segment(img, window="big")
    with pytest.raises(ParameterError):
        segment(img, window=10, upsample="cubic")
    assert make_grid((120, 120), 10, 5).ny == 20
