"""segment(): methods, thresholds, polarity, the shipped networks and F1 curves."""

import numpy as np
import pytest

from atomscope.errors import ParameterError
from atomscope.particles import detect_polarity, pixel_scores, segment, threshold_curve
from atomscope.simulate import simulate_particles_frame


@pytest.fixture(scope="module")
def frame():
    return simulate_particles_frame(
        size=384, pixel_size=0.18, n_particles=10, radius=(2.5, 0.3), counts=100.0, seed=21
    )


def test_shipped_unet_segments_a_simulated_frame(frame):
    truth = frame.truth.masks["particle"] > 0
    res = segment(frame.image, method="unet", n_threads=2)
    assert res.probability is not None and res.probability.shape == truth.shape
    assert res.model["name"] == "particles-unet"
    assert pixel_scores(res.mask, truth)["f1"] >= 0.94
    fixed = segment(frame.image, method="unet", threshold=0.4, n_threads=2)
    assert fixed.thresholds == [0.4]
    assert pixel_scores(fixed.mask, truth)["f1"] >= 0.9


def test_shipped_shallow_cnn_is_usable(frame):
    truth = frame.truth.masks["particle"] > 0
    res = segment(frame.image, method="shallow", min_area_px=20, n_threads=2)
    assert pixel_scores(res.mask, truth)["f1"] >= 0.85


def test_threshold_curve_has_the_papers_thresholds_and_otsu(frame):
    truth = frame.truth.masks["particle"] > 0
    res = segment(frame.image, method="unet", n_threads=2)
    curve = threshold_curve(res.probability, truth)
    assert list(curve["label"]) == [f"{t:g}" for t in np.arange(1, 10) / 10] + ["otsu"]
    assert curve["f1"].between(0, 1).all()
    fixed = curve[curve["label"] != "otsu"]
    assert fixed["recall"].is_monotonic_decreasing
    assert fixed["precision"].is_monotonic_increasing


def test_stacks_are_segmented_frame_by_frame(frame):
    stack = np.stack([frame.image.data, frame.image.data[::-1]])
    res = segment(stack, method="classical", bright=False)
    assert res.mask.shape == stack.shape and len(res.thresholds) == 2
    assert np.array_equal(res.mask[1], res.mask[0][::-1])


def test_polarity_detection(frame):
    assert detect_polarity(frame.image) is False  # signal "BF (simulated)"
    arr = frame.image.data
    assert detect_polarity(arr) is False  # histogram: a tail of dark particles
    assert detect_polarity(arr.max() - arr) is True


def test_bad_arguments(frame):
    with pytest.raises(ParameterError):
        segment(frame.image, method="watershed")
    with pytest.raises(ParameterError):
        segment(frame.image, method="unet", threshold=1.5)
    with pytest.raises(ParameterError):
        segment(frame.image, method="unet", threshold="median")
    with pytest.raises(ParameterError):
        segment(frame.image, classical={"sigmaa": 2})
