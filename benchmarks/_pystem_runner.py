"""Time pySTEM (GPL, the paper's own code) on one image: run by ``benchmarks/segment.py``
with the interpreter of a separate virtual environment where pySTEM is installed.

Nothing of pySTEM is imported by atomscope; this script only calls its public class
``segmentationSTEM`` and must not import atomscope.

Usage: ``python _pystem_runner.py JOB.json`` where the job holds ``image`` (.npy), ``out``
(folder for the label maps) and ``runs``: [{"name", "params" (segmentationSTEM keywords),
"repeat"}]. Prints one JSON object: {"pystem_version", "runs": {name: {...}}}.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    from pystem import segmentationSTEM

    image = np.load(job["image"]).astype(np.float32)
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    result = {"pystem_version": importlib.metadata.version("pystem"), "runs": {}}
    for run in job["runs"]:
        rec = {"descriptor_s": [], "rest_s": [], "total_s": [], "cpu_s": [], "error": None}
        labels = None
        for _ in range(int(run.get("repeat", 1))):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    w0, c0 = time.perf_counter(), time.process_time()
                    seg = segmentationSTEM(**run["params"])
                    desc = seg.get_descriptors(image)
                    w1 = time.perf_counter()
                    labels = seg.perform_clustering(image, descriptors=desc)
                    w2, c2 = time.perf_counter(), time.process_time()
            except Exception as exc:  # report, go on with the next run
                rec["error"] = f"{type(exc).__name__}: {exc}"
                break
            rec["descriptor_s"].append(w1 - w0)
            rec["rest_s"].append(w2 - w1)
            rec["total_s"].append(w2 - w0)
            rec["cpu_s"].append(c2 - c0)
        if labels is not None:
            path = out / f"{run['name']}.npy"
            np.save(path, np.asarray(labels).astype(np.int32))
            rec["labels"] = str(path)
        result["runs"][run["name"]] = rec
        print(
            f"pystem {run['name']}: {rec['total_s']} {rec['error'] or ''}",
            file=sys.stderr,
            flush=True,
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
