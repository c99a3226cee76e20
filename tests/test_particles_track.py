"""track(): links, births, deaths, coalescences, splits; identities on a simulated movie."""

import numpy as np
import pandas as pd
import pytest

from atomscope.particles import analyze, identity_recovery, label_mask, measure, track
from atomscope.simulate import simulate_coarsening_movie


def _disk(shape, cx, cy, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _movie(frames):
    """frames: list of lists of (x, y, r) disks -> label stack and tables."""
    shape = (100, 140)
    labels, tables = [], []
    for f, disks in enumerate(frames):
        m = np.zeros(shape, bool)
        for x, y, r in disks:
            m |= _disk(shape, x, y, r)
        lab = label_mask(m)
        labels.append(lab)
        tables.append(measure(lab, 0.2, frame=f))
    return np.stack(labels), pd.concat(tables, ignore_index=True)


def test_moving_particles_keep_their_tracks():
    frames = [[(20 + 2 * t, 30, 6), (90, 60 - 2 * t, 9)] for t in range(6)]
    labels, table = _movie(frames)
    tr = track(table, labels=labels)
    assert tr.table["track_id"].nunique() == 2
    assert len(tr.events) == 0
    assert set(tr.tracks["n_frames"]) == {6}
    centroid_only = track(table)  # no masks: centroid distances
    assert centroid_only.table["track_id"].nunique() == 2


def test_coalescence_birth_death_and_split():
    frames = [
        [(40, 50, 8), (58, 50, 7), (110, 20, 5)],  # two neighbours and a small one
        [(49, 50, 14), (110, 20, 4)],  # the neighbours merged
        [(49, 50, 14)],  # the small one dissolved
        [(49, 50, 14), (115, 80, 6)],  # a new particle appears
        [(40, 50, 8), (58, 50, 7), (115, 80, 6)],  # the big one splits again (segmentation)
    ]
    labels, table = _movie(frames)
    tr = track(table, labels=labels, rejoin_frames=0)
    kinds = tr.events.groupby("kind")["frame"].apply(list).to_dict()
    assert kinds["coalescence"] == [1]
    assert kinds["death"] == [2]
    assert kinds["birth"] == [3]
    assert kinds["split"] == [4]
    co = tr.events[tr.events["kind"] == "coalescence"].iloc[0]
    survivor = tr.tracks.set_index("track_id").loc[co["other_track_id"]]
    assert survivor["n_frames"] == 5  # the larger partner keeps its identity
    assert tr.tracks.set_index("track_id").loc[co["track_id"], "end"] == "coalescence"
    # with re-joining, the particle that parts again gets its old track back
    rejoined = track(table, labels=labels, rejoin_frames=5)
    assert "split" not in set(rejoined.events["kind"])
    assert "coalescence" not in set(rejoined.events["kind"])
    assert rejoined.table["track_id"].nunique() == tr.table["track_id"].nunique() - 1


def test_gap_closing():
    frames = [[(30, 30, 6)], [(31, 30, 6)], [], [(33, 31, 6)], [(34, 31, 6)]]
    labels, table = _movie(frames)
    assert track(table, labels=labels).table["track_id"].nunique() == 2
    closed = track(table, labels=labels, max_gap=1)
    assert closed.table["track_id"].nunique() == 1
    assert len(closed.events) == 0


@pytest.fixture(scope="module")
def movie():
    return simulate_coarsening_movie(n_frames=12, size=256, pixel_size=0.18, seed=4)


def test_identities_recovered_on_a_simulated_coarsening_movie(movie):
    res = analyze(movie.image, method="classical")
    assert res.is_movie and res.labels.shape == movie.image.shape
    ir = identity_recovery(res.table, res.labels, movie.truth.masks["particle"])
    assert ir["identity_recovery"] >= 0.95, ir
    assert ir["link_accuracy"] >= 0.98, ir
    assert ir["detection_recall"] >= 0.8, ir
    pf = res.per_frame()
    assert len(pf) == 12 and (pf["count"] > 0).all()
    # coarsening: the mean size grows while particles disappear
    assert pf["mean_diameter"].iloc[-1] > pf["mean_diameter"].iloc[0]
    assert pf["count"].iloc[-1] < pf["count"].iloc[0]
