"""Time Atomap's per-column 2-D Gaussian refinement (run with the anchor venv's python).

Usage: python atomap_refine.py IMAGE.npz SEPARATION OUT.json
IMAGE.npz holds `image` and `xy` (start positions, x = column). Prints nothing; writes timings
and the refined positions to OUT.json.
"""

import json
import sys
import time

import numpy as np


def main() -> None:
    path, separation, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    import atomap.api as am

    z = np.load(path)
    image = z["image"].astype(float)
    xy = z["xy"].astype(float)
    sublattice = am.Sublattice(xy, image)
    sublattice.find_nearest_neighbors()
    t0 = time.perf_counter()
    sublattice.refine_atom_positions_using_center_of_mass(show_progressbar=False)
    t_com = time.perf_counter() - t0
    t0 = time.perf_counter()
    sublattice.refine_atom_positions_using_2d_gaussian(show_progressbar=False)
    t_gauss = time.perf_counter() - t0
    pos = np.stack([sublattice.x_position, sublattice.y_position], axis=1)
    json.dump(
        {
            "n_columns": len(xy),
            "com_s": t_com,
            "gauss_s": t_gauss,
            "xy": pos.tolist(),
            "separation": separation,
        },
        open(out, "w"),
    )


if __name__ == "__main__":
    main()
