"""Flags → spatially coherent flags → per-pixel mask, and the mask's shape measures."""

import numpy as np

from atomscope.disorder.mask import AtomGraph, MaskBuilder, mask_stats


def _disk(shape, cx, cy, r):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_disk_perimeter_and_compactness():
    st = mask_stats(_disk((200, 200), 100, 100, 40))
    assert abs(st.perimeter - 2 * np.pi * 40) / (2 * np.pi * 40) < 0.05
    assert st.compactness > 0.9 and st.n_regions == 1
    two = mask_stats(_disk((200, 200), 50, 50, 20) | _disk((200, 200), 150, 150, 20))
    assert 0.4 < two.compactness < 0.55 and two.n_regions == 2
    empty = mask_stats(np.zeros((10, 10), bool))
    assert np.isnan(empty.compactness) and empty.area == 0 and empty.perimeter == 0
    # the image border is part of a region's boundary
    half = mask_stats(np.arange(100)[None, :].repeat(100, 0) < 50)
    assert abs(half.perimeter - np.pi / 4 * 300) < 1e-9


def _grid(n=12, step=10.0):
    g = np.arange(n) * step + 5
    return np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)


def test_regularise_clears_isolated_flags_fills_islands_and_inherits():
    xy = _grid()
    graph = AtomGraph(xy, 1.6 * 10)
    scored = np.ones(len(xy), bool)
    flags = np.zeros(len(xy), bool)
    flags[5] = True  # an isolated outlier
    block = (xy[:, 0] > 50) & (xy[:, 1] > 50)
    flags |= block
    hole = np.flatnonzero((xy[:, 0] == 85) & (xy[:, 1] == 85))
    flags[hole] = False  # a one-atom crystal island inside the region
    out = graph.regularise(flags, scored, 4)
    assert not out[5]
    assert out[hole].all()
    assert out[block].all() and out.sum() == block.sum()
    # an unscored atom at the edge of the region takes its neighbours' label
    scored2 = scored.copy()
    edge = np.flatnonzero((xy[:, 0] == 115) & (xy[:, 1] == 115))
    scored2[edge] = False
    out2 = graph.regularise(flags & scored2, scored2, 4)
    assert out2[edge].all()


def test_mask_follows_voronoi_and_fills_holes_without_atoms():
    xy = _grid(12, 10.0)
    # a hole: no atoms at all in a disk (e.g. a film where the finder found nothing)
    hole = (xy[:, 0] - 60) ** 2 + (xy[:, 1] - 60) ** 2 < 25**2
    builder = MaskBuilder(
        (120, 120), xy[~hole], empty_radius=9.0, smooth=3.0, min_area=200, spacing=10.0
    )
    m = builder.build(np.zeros((~hole).sum(), bool))
    assert m[60, 60] and not m[5, 5]
    assert 0.6 < m.sum() / _disk((120, 120), 60, 60, 25).sum() < 1.5
    # flagged atoms: their Voronoi cells
    b2 = MaskBuilder((120, 120), xy, empty_radius=20.0, smooth=3.0, min_area=200)
    flags = xy[:, 0] < 60
    m2 = b2.build(flags)
    assert m2[:, :55].all() and not m2[:, 65:].any()
    assert not b2.build(np.zeros(len(xy), bool)).any()
