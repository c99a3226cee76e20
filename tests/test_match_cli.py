"""``atomscope library build``, ``atomscope match`` and ``atomscope batch match`` as a user runs
them."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

from atomscope.cli import main

from ._match_helpers import tmp_dir


def _run(args, capsys):
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def cli_library():
    """A tiny library built through the CLI: built-ins and two elements at three zones."""
    path = tmp_dir("cli") / "lib.h5"
    try:
        main(
            [
                "library",
                "build",
                "-o",
                str(path),
                "--elements",
                "Fe,Cu",
                "--zones",
                "001 110 111",
                "--no-progress",
            ]
        )
    except SystemExit as exc:  # typer exits 0 after a command
        assert exc.code in (0, None)
    return path


@pytest.fixture(scope="module")
def cdte_image():
    from atomscope.simulate import simulate_to_dir

    d = tmp_dir("cli") / "cdte"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        simulate_to_dir(
            "CdTe", d, zone="1,1,0", size=160, pixel_size=0.02, dose=5e4, rotation=12.0, seed=4
        )
    return d / "image.tif"


def test_library_build_and_info(cli_library, capsys):
    from atomscope.match import Library

    lib = Library.load(cli_library)
    assert set(lib.table["zone"]) <= {"[001]", "[110]", "[111]", "[100]", "[010]", "[1-10]"}
    assert "ase:Fe" in set(lib.table["source"])
    # ASE's Cu projects like the built-in Cu: kept once, as an alias
    assert lib.table["aliases"].str.contains("Cu (fcc)", regex=False).any()
    code, out, _ = _run(["library", "info", str(cli_library), "--json"], capsys)
    assert code in (0, None)
    info = json.loads(out)
    assert info["entries"] == len(lib) and info["settings"]["pixel_size"] == 0.025
    # building again resumes: nothing to add, same file
    code, out, _ = _run(
        [
            "library",
            "build",
            "-o",
            str(cli_library),
            "--elements",
            "Fe,Cu",
            "--zones",
            "001 110 111",
            "--no-progress",
        ],
        capsys,
    )
    assert code in (0, None) and f"{len(lib)} entries" in out


def test_match_writes_ranking_figure_and_report(cli_library, cdte_image, capsys):
    out_dir = tmp_dir("cli") / "match"
    code, out, err = _run(
        [
            "match",
            str(cdte_image),
            "--library",
            str(cli_library),
            "-o",
            str(out_dir),
            "--metric",
            "all",
            "--top",
            "3",
        ],
        capsys,
    )
    assert code in (0, None), err
    assert "1. CdTe [110] (zincblende)" in out
    for name in ("ranking.csv", "matches.png", "report.json", "report.html"):
        assert (out_dir / name).is_file(), name
    t = pd.read_csv(out_dir / "ranking.csv")
    assert t.iloc[0]["name"] == "CdTe" and {"ssim", "emd", "mse", "rank_emd"} <= set(t)
    html = (out_dir / "report.html").read_text()
    assert "data:image/png;base64" in html and "CdTe" in html


def test_match_errors_are_one_line_messages(cli_library, cdte_image, capsys):
    out_dir = tmp_dir("cli") / "bad"
    code, _, err = _run(
        ["match", str(cdte_image), "--library", str(out_dir / "none.h5"), "-o", str(out_dir)],
        capsys,
    )
    assert code == 2 and "library file not found" in err and "Traceback" not in err
    code, _, err = _run(
        [
            "match",
            str(cdte_image),
            "--library",
            str(cli_library),
            "-o",
            str(out_dir),
            "--metric",
            "psnr",
        ],
        capsys,
    )
    assert code == 2 and "metric must be one of" in err
    code, _, err = _run(
        [
            "match",
            str(cdte_image),
            "--library",
            str(cli_library),
            "-o",
            str(out_dir),
            "--region",
            "left",
        ],
        capsys,
    )
    assert code == 2 and "y0:y1,x0:x1" in err
    code, _, err = _run(
        [
            "library",
            "build",
            "-o",
            str(out_dir / "x.h5"),
            "--cif-dir",
            str(out_dir / "no-such-folder"),
            "--no-progress",
        ],
        capsys,
    )
    assert code == 2 and "CIF folder not found" in err


def test_batch_match_over_a_folder(cli_library, cdte_image):
    import shutil

    from atomscope.batch import run_batch

    folder = tmp_dir("cli") / "frames"
    folder.mkdir(exist_ok=True)
    for i in range(2):
        shutil.copy(cdte_image, folder / f"frame{i}.tif")
    out = tmp_dir("cli") / "batch"
    s = run_batch(
        "match",
        [str(folder)],
        out,
        options={"library": str(cli_library)},
        show_progress=False,
        reports=False,
    )
    assert s.done == 2 and s.failed == 0
    combined = pd.read_csv(out / "combined.csv")
    best = combined[combined.groupby("key")["rank_ssim"].transform("min") == combined["rank_ssim"]]
    assert len(best) == 2 and set(best["name"]) == {"CdTe"}
    # the option parser of `atomscope batch match … --library lib.h5` passes it through
    from atomscope.batch.options import parse_analysis_options
    from atomscope.match import match_image

    assert parse_analysis_options(match_image, ["--library", "lib.h5", "--metric", "all"]) == {
        "library": "lib.h5",
        "metric": "all",
    }
    # segment_motifs takes the library as its second positional parameter, and needs it
    from atomscope.errors import ParameterError
    from atomscope.match import segment_motifs

    opts = parse_analysis_options(segment_motifs, ["--library", "l.h5", "--pattern-tolerance", "0"])
    assert opts == {"library": "l.h5", "pattern_tolerance": 0.0}
    with pytest.raises(ParameterError, match="needs --library"):
        parse_analysis_options(segment_motifs, ["--metric", "mse"])


def test_library_exponent_option(cli_library, capsys):
    """``--exponent`` sets the column weights Z^n of the motifs; it is a library setting, so
    resuming a file built with another one is refused, and a nonsense value is a message."""
    import numpy as np

    from atomscope.match import Library

    out_dir = tmp_dir("cli") / "exponent"
    args = ["library", "build", "--no-progress", "--elements", "none", "--zones", "001"]
    code, out, _ = _run([*args, "-o", str(out_dir / "z13.h5"), "--exponent", "1.3"], capsys)
    assert code in (0, None) and "Z^1.3" in out
    z13 = Library.load(out_dir / "z13.h5")
    z17 = Library.load(cli_library)
    assert z13.settings.exponent == 1.3 and z17.settings.exponent == 1.7

    def ti_over_sr(lib):
        # SrTiO3 [001]: relative weight of the Ti-O columns to the Sr columns
        i = int(np.nonzero((lib.table["name"] == "SrTiO3") & (lib.table["zone"] == "[001]"))[0][0])
        w = np.unique(np.round(lib.visible[i][:, 2], 3))
        return w[w < 0.99].max()

    expected = lambda n: (22**n + 8**n) / 38**n  # noqa: E731
    assert ti_over_sr(z13) == pytest.approx(expected(1.3), abs=0.02)
    assert ti_over_sr(z17) == pytest.approx(expected(1.7), abs=0.02)
    code, _, err = _run([*args, "-o", str(out_dir / "z13.h5")], capsys)  # default: Z^1.7
    assert code == 2 and "other settings" in err
    code, _, err = _run([*args, "-o", str(out_dir / "x.h5"), "--exponent", "-1"], capsys)
    assert code == 2 and "--exponent" in err and "Traceback" not in err


def test_motifs_command_labels_two_grains(cli_library, capsys):
    import numpy as np

    from atomscope.simulate import simulate_bicrystal

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = simulate_bicrystal(
            "SrTiO3", rotation=0.0, rotation2=30.0, size=256, pixel_size=0.02, dose=5e4, seed=3
        )
    path = tmp_dir("cli") / "bicrystal.npy"
    np.save(path, r.image.data)
    out_dir = tmp_dir("cli") / "motifs"
    args = ["motifs", str(path), "--library", str(cli_library), "-o", str(out_dir)]
    code, _, err = _run(args + ["--no-progress"], capsys)
    assert code == 2 and "pixel size" in err  # a .npy file carries no calibration
    code, out, err = _run(args + ["--pixel-size", "0.02", "--no-progress"], capsys)
    assert code in (0, None), err
    assert out.startswith("2 motif(s)") and out.count("SrTiO3 [001]") == 2
    for name in ("labels.npy", "motifs.csv", "segmentation.png", "report.json", "report.html"):
        assert (out_dir / name).is_file(), name
    labels = np.load(out_dir / "labels.npy")
    from atomscope.match.motif import label_accuracy

    assert label_accuracy(labels, r.truth.masks["grain"]) >= 0.9
    flat = tmp_dir("cli") / "flat.npy"
    np.save(flat, np.zeros((96, 96)))
    code, out, err = _run(
        ["motifs", str(flat), "-l", str(cli_library), "-o", str(out_dir / "flat")]
        + ["--pixel-size", "0.02", "--no-progress"],
        capsys,
    )
    assert code in (0, None) and out.startswith("0 motif(s)") and "no tile matched" in out
    code, _, err = _run(args + ["--pixel-size", "0.02", "--metric", "emd"], capsys)
    assert code == 2 and "ssim" in err and "Traceback" not in err
    # the registered analysis: `atomscope batch motifs` over a stack of two frames
    from atomscope.batch import run_batch

    stack = tmp_dir("cli") / "bicrystal_stack.npy"
    np.save(stack, np.stack([r.image.data, r.image.data[:, ::-1]]))
    out = tmp_dir("cli") / "batch_motifs"
    s = run_batch(
        "motifs",
        [str(stack)],
        out,
        options={"library": str(cli_library)},
        pixel_size=0.02,
        show_progress=False,
        reports=False,
    )
    assert s.done == 2 and s.failed == 0
    combined = pd.read_csv(out / "combined.csv")
    assert len(combined) == 4 and set(combined["name"]) == {"SrTiO3"}
    import zarr

    assert zarr.open(str(out / "labels.zarr"), mode="r").shape[0] == 2
