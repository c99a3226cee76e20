"""The classical recipe (and its pseudo-labels) on simulated frames with exact masks."""

import numpy as np
import pytest

from atomscope.particles import classical_segment, pixel_scores, segment
from atomscope.simulate import simulate_particles_frame


@pytest.fixture(scope="module")
def frame():
    return simulate_particles_frame(
        size=512, pixel_size=0.18, n_particles=14, radius=(2.7, 0.3), counts=100.0, seed=11
    )


def test_classical_f1_on_a_simulated_bright_field_frame(frame):
    truth = frame.truth.masks["particle"] > 0
    out = classical_segment(frame.image.data)
    s = pixel_scores(out.mask, truth)
    assert s["f1"] >= 0.94, s
    # the refinement is what brings the edges in: the bare recipe is worse
    bare = classical_segment(frame.image.data, refine=False)
    assert pixel_scores(bare.mask, truth)["f1"] < s["f1"]


def test_bright_particles_by_inversion(frame):
    truth = frame.truth.masks["particle"] > 0
    haadf = frame.image.data.max() - frame.image.data
    s = pixel_scores(classical_segment(haadf, bright=True).mask, truth)
    assert s["f1"] >= 0.94
    # the wrong polarity finds (almost) nothing of the particles
    wrong = classical_segment(haadf, bright=False).mask
    assert pixel_scores(wrong, truth)["f1"] < 0.5


def test_particles_cut_by_the_frame_edge_are_found():
    res = simulate_particles_frame(
        size=256, pixel_size=0.18, n_particles=8, radius=(3.0, 0.2), counts=100.0, seed=5
    )
    lab = res.truth.masks["particle"]
    edge_ids = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    edge_ids = edge_ids[edge_ids > 0]
    mask = segment(res.image, method="classical").mask
    for i in edge_ids:
        assert mask[lab == i].mean() > 0.7


def test_a_frame_without_particles_gives_an_empty_mask():
    res = simulate_particles_frame(size=512, n_particles=0, counts=50.0, seed=3)
    assert classical_segment(res.image.data).mask.sum() == 0
    flat = np.full((64, 64), 7.0, np.float32)
    assert classical_segment(flat).mask.sum() == 0
