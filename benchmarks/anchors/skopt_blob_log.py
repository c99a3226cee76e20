"""The paper-style baseline: scikit-optimize's gp_minimize driving skimage's blob_log, which
recomputes the whole scale space at every call (run with the anchor venv's python).

Usage: python skopt_blob_log.py IMAGE.npy N_EXPECTED DS_THRESHOLD N_CALLS OUT.json
Minimises |QC| + ER (the paper's two rewards, scalarised because gp_minimize is
single-objective) over threshold and overlap.
"""

import json
import sys
import time

import numpy as np


def main() -> None:
    path, n_expected, ds, n_calls, out = (
        sys.argv[1],
        float(sys.argv[2]),
        float(sys.argv[3]),
        int(sys.argv[4]),
        sys.argv[5],
    )
    from scipy.spatial import cKDTree
    from skimage.feature import blob_log
    from skopt import gp_minimize

    image = np.load(path).astype(float)
    lo, hi = np.percentile(image, [0.1, 99.9])
    image = np.clip((image - lo) / (hi - lo), -0.5, 1.5)
    min_sigma, max_sigma = float(sys.argv[6]), float(sys.argv[7])

    def objective(params):
        threshold, overlap = params
        blobs = blob_log(
            image,
            min_sigma=min_sigma,
            max_sigma=max_sigma,
            num_sigma=10,
            threshold=threshold,
            overlap=overlap,
        )
        n = len(blobs)
        qc = abs(n - n_expected) / n_expected
        if n > 4:
            d, _ = cKDTree(blobs[:, :2]).query(blobs[:, :2], k=5)
            er = float((d[:, 1:].sum(axis=1) < ds).sum()) / n_expected
        else:
            er = 0.0
        return qc + er

    t0 = time.perf_counter()
    res = gp_minimize(
        objective, [(0.01, 0.5, "log-uniform"), (0.05, 0.95)], n_calls=n_calls, random_state=0
    )
    wall = time.perf_counter() - t0
    json.dump(
        {
            "wall_s": wall,
            "n_calls": n_calls,
            "best": list(map(float, res.x)),
            "best_value": float(res.fun),
        },
        open(out, "w"),
    )


if __name__ == "__main__":
    main()
