"""atomscope.nn data preparation, augmentation and tiled inference."""

import numpy as np
import pytest
import torch

from atomscope.errors import ParameterError
from atomscope.nn import (
    Augmentation,
    ShallowCNN,
    UNet,
    grouped_split,
    normalize_image,
    predict,
    preprocess,
    random_patches,
    tile_positions,
)
from atomscope.nn.data import blend_window


def test_grouped_split_keeps_neighbouring_frames_together():
    n, seg = 60, 10
    train, val = grouped_split(n, segment_length=seg, val_fraction=0.25, seed=1)
    assert len(np.intersect1d(train, val)) == 0
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(n))
    assert 0 < len(val) < n
    # every segment of 10 consecutive frames is entirely on one side
    for start in range(0, n, seg):
        block = set(range(start, start + seg))
        assert block <= set(val.tolist()) or block <= set(train.tolist())
    # same seed, same split; another seed, (almost surely) another
    again = grouped_split(n, segment_length=seg, val_fraction=0.25, seed=1)
    assert np.array_equal(val, again[1])


def test_grouped_split_by_movie():
    groups = ["a"] * 5 + ["b"] * 5 + ["c"] * 5
    train, val = grouped_split(15, groups=groups, val_fraction=0.3, seed=0)
    labels_val = {groups[i] for i in val}
    labels_train = {groups[i] for i in train}
    assert labels_val and not labels_val & labels_train


def test_grouped_split_edge_cases():
    train, val = grouped_split(1, val_fraction=0.5)
    assert train.tolist() == [0] and val.size == 0
    with pytest.raises(ParameterError):
        grouped_split(5, val_fraction=1.0)
    with pytest.raises(ParameterError):
        grouped_split(3, groups=[0, 1])


def test_normalisation_is_robust_and_preprocess_inverts():
    rng = np.random.default_rng(0)
    img = (100 + 10 * rng.standard_normal((64, 64))).astype(np.float32)
    z = normalize_image(img)
    assert abs(float(np.median(z))) < 0.2 and 0.8 < float(z.std()) < 1.2
    assert np.allclose(preprocess(img, invert=True), normalize_image(-img))
    assert np.allclose(preprocess(img, blur_sigma=1.0).std(), 1.0, atol=0.6)
    assert np.isfinite(normalize_image(np.ones((16, 16)))).all()


def test_augmentation_is_seeded_and_moves_target_with_image():
    rng = np.random.default_rng(0)
    target = (rng.random((32, 32)) > 0.7).astype(np.int64)
    image = target.astype(np.float32)
    aug = Augmentation(flips=True, rot90=True, zoom=(0.8, 1.25))
    a_img, a_tgt = aug(image, target, np.random.default_rng(4))
    b_img, b_tgt = aug(image, target, np.random.default_rng(4))
    assert np.array_equal(a_img, b_img) and np.array_equal(a_tgt, b_tgt)
    geo = Augmentation(flips=True, rot90=True)
    for seed in range(6):
        g_img, g_tgt = geo(image, target, np.random.default_rng(seed))
        assert np.array_equal(g_img, g_tgt.astype(np.float32))
    noisy, _ = Augmentation(noise=0.5, blur=1.5, brightness=0.2, contrast=0.3)(
        image, target, np.random.default_rng(1)
    )
    assert noisy.shape == image.shape and not np.array_equal(noisy, image)
    assert Augmentation.from_dict(aug.to_dict()) == aug


def test_random_patches_pads_small_images():
    rng = np.random.default_rng(0)
    x, y = random_patches(
        [np.ones((20, 20), np.float32)],
        [np.ones((20, 20), np.int64)],
        patch_size=32,
        n_patches=3,
        rng=rng,
    )
    assert x.shape == (3, 32, 32) and y.shape == (3, 32, 32)


def test_tiles_cover_the_image_and_blend_windows():
    pos = tile_positions((300, 200), 128, 32)
    cover = np.zeros((300, 200), int)
    for y, x in pos:
        cover[y : y + 128, x : x + 128] += 1
    assert cover.min() >= 1
    assert tile_positions((50, 60), 128, 16) == [(0, 0)]
    w = blend_window((64, 64), 16, top=True, bottom=False, left=False, right=True)
    assert w[0, 32] == 0 and w[-1, 32] == 1 and w[32, -1] == 0 and w[32, 0] == 1
    with pytest.raises(ParameterError):
        tile_positions((10, 10), 8, 8)


def test_tiled_inference_matches_one_pass():
    torch.manual_seed(0)
    net = ShallowCNN(n_filters=4, kernel_size=5)
    net.eval()
    img = np.random.default_rng(1).standard_normal((150, 170)).astype(np.float32)
    whole = predict(net, img, tile=1024)
    tiled = predict(net, img, tile=64, overlap=24)
    assert whole.shape == (2, 150, 170)
    assert np.allclose(whole.sum(axis=0), 1, atol=1e-5)
    assert np.abs(whole - tiled).max() < 1e-3
    unet = UNet(base_channels=4, depth=2)
    stack = predict(unet, np.stack([img, img]), tile=96, overlap=32)
    assert stack.shape == (2, 2, 150, 170) and np.isfinite(stack).all()
