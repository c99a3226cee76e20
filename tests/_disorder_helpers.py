"""Simulated images with amorphous patches and their visible columns, for disorder tests.

Atom positions come from the simulator's truth (the columns a HAADF image shows: every column
but pure-oxygen ones, plus the amorphous film's columns), so that most tests do not depend on
the atom finder; one test in tests/test_disorder_cli.py runs the finder too.
"""

from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from atomscope.simulate import simulate_amorphous_patches, simulate_haadf


def visible_columns(sim, shape):
    tc = sim.truth.columns
    vis = tc[(tc.species != "O")]
    h, w = shape
    inside = (vis.x >= 0) & (vis.x <= w - 1) & (vis.y >= 0) & (vis.y <= h - 1)
    return vis[inside].reset_index(drop=True)


@lru_cache(maxsize=8)
def patches_case(structure="SrTiO3", mode="random", fraction=0.2, size=320, dose=1e5, seed=3):
    zone = (0, 0, 1) if structure == "SrTiO3" else (1, 0, 0)
    sim = simulate_amorphous_patches(
        structure,
        zone=zone,
        fraction=fraction,
        n_patches=1,
        mode=mode,
        size=size,
        pixel_size=0.02,
        dose=dose,
        seed=seed,
    )
    cols = visible_columns(sim, (size, size))
    return sim, pd.DataFrame({"x": cols.x, "y": cols.y})


@lru_cache(maxsize=4)
def crystal_case(structure="SrTiO3", size=320, dose=1e5, seed=5):
    zone = (0, 0, 1) if structure == "SrTiO3" else (1, 0, 0)
    sim = simulate_haadf(structure, zone=zone, size=size, pixel_size=0.02, dose=dose, seed=seed)
    cols = visible_columns(sim, (size, size))
    return sim, cols


def iou(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return float((a & b).sum() / max((a | b).sum(), 1))


def atom_f1(result, truth_mask):
    xy = result.table[["x", "y"]].to_numpy()
    h, w = truth_mask.shape
    ix = np.clip(np.rint(xy).astype(int), 0, [w - 1, h - 1])
    truth = truth_mask[ix[:, 1], ix[:, 0]].astype(bool)
    flag = result.disordered
    return float(2 * (truth & flag).sum() / max(truth.sum() + flag.sum(), 1))


def ybco_classes(cols):
    """Ba, Y, Cu-chain (site 3) and Cu-plane classes of YBa2Cu3O7 [100] visible columns."""
    sp = cols.species.to_numpy()
    return np.where(sp == "Cu", np.where(cols.site.to_numpy() == 3, "Cu-chain", "Cu-plane"), sp)


def match_truth(xy, cols, radius=3.0):
    d, j = cKDTree(cols[["x", "y"]].to_numpy()).query(xy)
    return d < radius, j
