"""Time ``atomscope.load`` on the 1024² real files against a plain read with the raw library.

The ratio shows what calibration, signal selection, validation and float32 conversion cost on
top of the format library itself. Writes ``benchmarks/results/io_load.json``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import shared_data, timeit, write_result


def _raw_readers(data) -> list[tuple[str, Any, Any]]:
    import ncempy.io as nio
    import tifffile

    return [
        (
            "TIA EMI/SER (ncempy)",
            data / "ncempy/tia_STEM_SrTiO3_atomic_1024.emi",
            lambda: nio.ser.serReader(str(data / "ncempy/tia_STEM_SrTiO3_atomic_1024_1.ser")),
        ),
        (
            "Berkeley EMD (ncempy)",
            data / "ncempy/ncem_emd_atomic_1024.emd",
            lambda: nio.read(str(data / "ncempy/ncem_emd_atomic_1024.emd")),
        ),
        (
            "DM3 uint32 (ncempy)",
            data / "temul-toolkit/dm3_ADF_Se-implanted_MoS2_1024.dm3",
            lambda: nio.read(str(data / "temul-toolkit/dm3_ADF_Se-implanted_MoS2_1024.dm3")),
        ),
        (
            "NPY (numpy)",
            data / "pystem/high_entropy_alloy.npy",
            lambda: np.load(data / "pystem/high_entropy_alloy.npy"),
        ),
        (
            "RGB TIFF (tifffile)",
            data / "ingrained/Ni_001_M3B2_001/HAADF91.tif",
            lambda: tifffile.imread(data / "ingrained/Ni_001_M3B2_001/HAADF91.tif"),
        ),
    ]


def run(quick: bool = False) -> dict[str, Any]:
    import atomscope

    data = shared_data()
    if data is None:
        raise RuntimeError("../shared/data not found (set ATOMSCOPE_SHARED_DATA)")
    repeat = 3 if quick else 15
    rows = []
    for label, path, raw in _raw_readers(data):
        t_raw = timeit(raw, repeat=repeat)
        t_ours = timeit(lambda p=path: atomscope.load(p), repeat=repeat)
        mg = atomscope.load(path)
        rows.append(
            {
                "file": str(path.relative_to(data)),
                "reader": label,
                "shape": list(mg.shape),
                "pixel_size_nm": list(mg.pixel_size) if mg.pixel_size else None,
                "atomscope_load_median_s": t_ours["median_s"],
                "raw_reader_median_s": t_raw["median_s"],
                "ratio_atomscope_over_raw": t_ours["median_s"] / t_raw["median_s"],
            }
        )
        print(
            f"   {label:<24} load {t_ours['median_s'] * 1e3:7.2f} ms   raw "
            f"{t_raw['median_s'] * 1e3:7.2f} ms   x{rows[-1]['ratio_atomscope_over_raw']:.2f}"
        )
    payload = {"repeat": repeat, "files": rows}
    write_result("io_load", payload, packages=("ncempy", "tifffile", "h5py"))
    return payload
