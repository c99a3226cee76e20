"""The ``atomscope`` command line: a thin layer over the public Python functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from . import __version__
from .errors import AtomscopeError, ParameterError

app = typer.Typer(
    name="atomscope",
    help="Quantitative analysis of atomic-resolution electron micrographs and in-situ movies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"atomscope {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = None,
) -> None:
    """atomscope: automatic, physically checked analysis of electron micrographs."""


def write_report(name: str, result: Any, image: Any, out: Path) -> Path:
    """``report.html`` next to a single-image command's outputs."""
    from .report.html import write_html

    inputs = {
        "input": image.source.describe(),
        "shape": list(image.shape),
        "pixel size (nm)": list(image.pixel_size) if image.pixel_size else "uncalibrated",
    }
    for key in ("microscope", "voltage", "magnification", "detector", "acquisition_date"):
        if key in image.metadata:
            inputs[key] = image.metadata[key]
    return write_html(
        {name: result},
        Path(out) / "report.html",
        title=f"atomscope {name}: {Path(image.source.path or 'image').name}",
        inputs=inputs,
        timings=getattr(result, "timings", None),
    )


def parse_pixel_size(text: str | None) -> tuple[float, float] | None:
    """'0.02nm', '0.2A' or '0.02nm,0.021nm' (row, col) to nm."""
    if text is None:
        return None
    from .io.units import parse_length

    parts = [p for p in text.split(",") if p.strip()]
    values = [parse_length(p) for p in parts]
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise typer.BadParameter("give one length or two (row,col), e.g. 0.02nm or 0.02nm,0.021nm")


PixelSizeOption = Annotated[
    str | None,
    typer.Option(
        "--pixel-size",
        help="Pixel size when the file has none (or to override it), e.g. 0.02nm, 0.2A, "
        "or row,col.",
    ),
]
LibraryOption = Annotated[
    Path, typer.Option("--library", "-l", help="Structure library from `atomscope library build`")
]
ScaleToleranceOption = Annotated[
    float, typer.Option(help="Relative scale range fitted around the calibration")
]


def _load_one_frame(
    image: Path,
    *,
    frame: int | None,
    signal: str | None,
    pixel_size: str | None,
    doing: str,
    hint: str,
) -> Any:
    """Load IMAGE as one frame: frame 0 of a stack, with a note on stderr naming ``hint``."""
    from .io import load

    mg = load(image, frame=frame, signal=signal, pixel_size=parse_pixel_size(pixel_size))
    if mg.is_stack:
        typer.echo(
            f"{image} is a stack of {mg.n_frames} frames; {doing} frame 0 ({hint}).", err=True
        )
        mg = mg.frame(0)
    return mg


def _format_pixel_size(ps: tuple[float, float] | None) -> str:
    if ps is None:
        return "uncalibrated"
    from .report.figures import format_length

    r, c = ps
    if abs(r - c) <= 1e-3 * max(r, c):
        return f"{r:.6g} nm/px" + (f" ({format_length(r)} per pixel)" if r < 1 else "")
    return f"{r:.6g} nm (rows) x {c:.6g} nm (columns) per pixel"


_KEY_METADATA = (
    "signal",
    "microscope",
    "voltage",
    "magnification",
    "mode",
    "detector",
    "date",
    "time",
    "acquisition_date",
    "frame_interval_s",
    "intensity_offset",
    "converted_from",
    "kind",
)


@app.command()
def info(
    file: Annotated[Path, typer.Argument(help="Image file, folder of frames or .zip")],
    signal: Annotated[str | None, typer.Option(help="Signal (detector) name or index")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    all_metadata: Annotated[bool, typer.Option("--all", help="Print every metadata entry")] = False,
) -> None:
    """Shape, dtype, pixel size with units, signals and key metadata of a file."""
    from .io import list_signals, load

    sig: str | int | None = int(signal) if signal is not None and signal.isdigit() else signal
    mg = load(file, signal=sig)
    signals = list_signals(file) if file.is_file() and file.suffix.lower() != ".zip" else []
    record: dict[str, Any] = {
        "file": str(file),
        "shape": list(mg.shape),
        "frames": mg.n_frames,
        "dtype (as loaded)": str(mg.data.dtype),
        "pixel_size_nm": list(mg.pixel_size) if mg.pixel_size else None,
        "field_of_view_nm": list(mg.field_of_view_nm) if mg.field_of_view_nm else None,
        "signal": mg.source.signal,
        "signals": [
            {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.items()} for s in signals
        ],
        "intensity": {
            "min": float(mg.data.min()),
            "max": float(mg.data.max()),
            "mean": float(mg.data.mean()),
        },
        "metadata": mg.metadata
        if all_metadata
        else {k: mg.metadata[k] for k in _KEY_METADATA if k in mg.metadata},
    }
    if as_json:
        from ._fileio import to_jsonable

        typer.echo(json.dumps(to_jsonable(record), indent=2))
        return
    typer.echo(f"file:          {file}")
    typer.echo(f"shape:         {mg.shape}" + (f"  ({mg.n_frames} frames)" if mg.is_stack else ""))
    raw_dtypes = {s["name"]: s["dtype"] for s in signals}
    if mg.source.signal in raw_dtypes:
        typer.echo(f"dtype:         {raw_dtypes[mg.source.signal]} (loaded as float32)")
    cal = _format_pixel_size(mg.pixel_size)
    if mg.pixel_size is None and "reciprocal_pixel_size" in mg.metadata:
        rec = mg.metadata["reciprocal_pixel_size"]
        rec = rec[0] if isinstance(rec, list | tuple) else rec
        cal += f" (diffraction pattern: {rec:.6g} {mg.metadata.get('reciprocal_unit', '1/nm')}"
        cal += " per pixel)"
    elif mg.pixel_size is None and "uncalibrated_scale" in mg.metadata:
        cal += f" (the file gives a scale of {mg.metadata['uncalibrated_scale']} with no unit)"
    typer.echo(f"pixel size:    {cal}")
    if mg.field_of_view_nm:
        h, w = mg.field_of_view_nm
        typer.echo(f"field of view: {h:.4g} nm x {w:.4g} nm")
    if len(signals) > 1:
        typer.echo("signals:")
        for s in signals:
            mark = "*" if s["name"] == mg.source.signal else " "
            typer.echo(f"  {mark} {s['name']:<12} {s['kind']:<11} {tuple(s['shape'])} {s['dtype']}")
    typer.echo(
        f"intensity:     min {record['intensity']['min']:.6g}, max "
        f"{record['intensity']['max']:.6g}, mean {record['intensity']['mean']:.6g}"
    )
    meta = record["metadata"]
    if meta:
        typer.echo("metadata:")
        for k, v in meta.items():
            text = str(v)
            typer.echo(f"  {k}: {text if len(text) < 200 else text[:197] + '...'}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder")] = Path("out/demo"),
    seed: Annotated[int, typer.Option(help="Random seed of the simulated sample")] = 0,
    show_progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Simulate a sample, run the analyses on it and write the results to OUT."""
    from .demo import run_demo

    summary = run_demo(out, seed=seed, show_progress=show_progress)
    for line in summary["lines"]:
        typer.echo(line)
    typer.echo(f"Results written to {Path(out).resolve()}")


@app.command()
def atoms(
    image: Annotated[Path, typer.Argument(help="Image file (or folder/stack with --frame)")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder")],
    lattice: Annotated[
        str | None, typer.Option(help="Known lattice lengths, e.g. 0.39nm or 0.39nm,0.4nm")
    ] = None,
    structure: Annotated[
        str | None,
        typer.Option(help="Structure (built-in name or CIF) for the expected column count"),
    ] = None,
    zone: Annotated[str | None, typer.Option(help="Zone axis of --structure, e.g. 0,0,1")] = None,
    dark: Annotated[bool, typer.Option("--dark", help="Dark columns (ABF)")] = False,
    optimize: Annotated[
        bool,
        typer.Option(
            "--optimize/--no-optimize", help="Tune detector parameters by Bayesian optimisation"
        ),
    ] = True,
    window: Annotated[
        int | None, typer.Option(help="Sliding-window tuning: tile size in px")
    ] = None,
    method: Annotated[
        str, typer.Option(help="Detector: log, dog, localmax, cnn (network, nothing tuned)")
    ] = "log",
    refine: Annotated[
        str, typer.Option(help="Refinement: gaussian, elliptical, com, none")
    ] = "gaussian",
    rewards: Annotated[
        str, typer.Option(help="Rewards to minimise, comma-separated: count, error, irregularity")
    ] = "count,error",
    choice: Annotated[
        str, typer.Option(help="Pareto choice: euclidean or chebyshev")
    ] = "euclidean",
    threshold: Annotated[
        float | None,
        typer.Option(help="Detector threshold (with --no-optimize, or fixed while optimising)"),
    ] = None,
    pixel_size: PixelSizeOption = None,
    signal: Annotated[str | None, typer.Option(help="Signal of a multi-signal file")] = None,
    frame: Annotated[int | None, typer.Option(help="Frame of a stack")] = None,
    seed: Annotated[int, typer.Option(help="Optimiser seed")] = 0,
    show_progress: Annotated[bool, typer.Option("--progress/--no-progress")] = False,
    # -- learned detector (--method cnn) --
    model: Annotated[
        str | None,
        typer.Option(
            help="--method cnn: model from `atomscope train atoms` (NAME.pt) or a shipped model "
            "name (default atoms-unet)"
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="Torch device: cpu (default), cuda or auto")
    ] = None,
) -> None:
    """Find every atomic column: atoms.csv, overlay.png, pareto.png, report.json in OUT."""
    from .atoms import find_atoms

    mg = _load_one_frame(
        image,
        frame=frame,
        signal=signal,
        pixel_size=pixel_size,
        doing="analysing",
        hint="use --frame N, or `atomscope batch atoms` for all",
    )
    result = find_atoms(
        mg,
        lattice=lattice,
        structure=structure,
        zone=tuple(int(v) for v in zone.split(",")) if zone else None,
        dark=dark,
        method=method,
        optimize=optimize,
        window=window,
        refine=refine,
        rewards=tuple(r.strip() for r in rewards.split(",") if r.strip()),
        choice=choice,
        parameters={"threshold": threshold} if threshold is not None else None,
        seed=seed,
        show_progress=show_progress,
        model=model,
        device=device,
    )
    result.save(out)
    write_report("atoms", result, mg, out)
    typer.echo(f"{len(result)} columns found in {result.timings.get('total', 0):.2f} s")
    if result.lattice is not None:
        lat = result.lattice.summary()
        lengths = (
            f"{lat['a_nm']:.4g} x {lat['b_nm']:.4g} nm"
            if "a_nm" in lat
            else f"{lat['a_px']:.4g} x {lat['b_px']:.4g} px"
        )
        typer.echo(
            f"lattice {lengths}, {lat['angle_deg']:.1f} deg, "
            f"{lat['columns_per_cell']} column(s) per cell"
        )
    if result.rewards and "n_expected" in result.rewards:
        rw = result.rewards
        typer.echo(
            "rewards: "
            + ", ".join(f"{k} {v:.4g}" for k, v in rw.items() if isinstance(v, float | int))
        )
    if result.message:
        typer.echo(result.message)
    typer.echo(f"Results written to {out.resolve()}")


@app.command()
def simulate(
    structure: Annotated[
        str, typer.Argument(help="Built-in name (SrTiO3, Si, Au, ZnO, MoS2, …) or a CIF path")
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder")],
    zone: Annotated[str, typer.Option(help="Zone axis, e.g. 0,0,1 or 1,1,0 or 1,1,-2,0")] = "0,0,1",
    size: Annotated[int, typer.Option(help="Image size in pixels (square)")] = 512,
    pixel_size: Annotated[
        str, typer.Option("--pixel-size", help="Pixel size, e.g. 0.02, 0.02nm or 0.2A")
    ] = "0.02nm",
    thickness: Annotated[float, typer.Option(help="Repeats along the beam")] = 10,
    dose: Annotated[
        float | None, typer.Option(help="Electron dose in e/Å² (Poisson noise); none = noise-free")
    ] = None,
    rotation: Annotated[float, typer.Option(help="In-plane rotation, degrees")] = 0.0,
    exponent: Annotated[float, typer.Option(help="Column weight Z^exponent")] = 1.7,
    seed: Annotated[int | None, typer.Option(help="Random seed")] = None,
) -> None:
    """Simulate a HAADF-STEM image of STRUCTURE and write image.tif, columns.csv, masks and
    truth.json to OUT."""
    from .simulate import simulate_to_dir

    text = pixel_size.strip()
    ps = parse_pixel_size(text if any(ch.isalpha() for ch in text) else text + "nm")
    assert ps is not None
    if abs(ps[0] - ps[1]) > 1e-9 * max(ps):
        raise typer.BadParameter("simulate needs square pixels: give one pixel size")
    path = Path(structure)
    spec: str = str(path) if path.suffix.lower() == ".cif" or path.is_file() else structure
    out_dir = simulate_to_dir(
        spec,
        out,
        zone=zone,
        size=size,
        pixel_size=ps[0],
        dose=dose,
        thickness=thickness,
        rotation=rotation,
        exponent=exponent,
        seed=seed,
    )
    typer.echo(
        f"Simulated {structure} along [{zone}] ({size}x{size} px, {ps[0]:g} nm/px); "
        f"wrote {Path(out_dir).resolve()}"
    )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def batch(
    ctx: typer.Context,
    analysis: Annotated[
        str,
        typer.Argument(
            help="Analysis: atoms, disorder, segment, particles, match (or module:function)"
        ),
    ],
    inputs: Annotated[list[str], typer.Argument(help="Files, folders, globs, stacks")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder")],
    workers: Annotated[
        int | None, typer.Option(help="Local worker processes (default: run in this process)")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address, e.g. tcp://host:8786")
    ] = None,
    frames: Annotated[
        str | None, typer.Option(help="Frames of stacks to analyse, as start:stop[:step]")
    ] = None,
    pixel_size: PixelSizeOption = None,
    signal: Annotated[str | None, typer.Option(help="Signal of multi-signal files")] = None,
    reports: Annotated[
        bool, typer.Option("--reports/--no-reports", help="Write report.html for every input")
    ] = True,
    show_progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Run ANALYSIS over many images (resumable; Dask for several workers or a cluster).

    Options of the analysis follow, e.g. `atomscope batch atoms frames/ -o out --dark`.
    """
    from .batch import run_batch
    from .batch.options import parse_analysis_options
    from .batch.run import _function, resolve_analysis

    spec = resolve_analysis(analysis)
    # unknown options land among the inputs: everything from the first --option on belongs to
    # the analysis
    tokens = list(inputs) + list(ctx.args)
    first = next((i for i, t in enumerate(tokens) if t.startswith("--")), len(tokens))
    inputs, extra = tokens[:first], tokens[first:]
    if not inputs:
        raise typer.BadParameter("give at least one input file, folder or pattern")
    options = parse_analysis_options(_function(spec["function"]), extra)
    frame_slice = None
    if frames:
        parts = [int(p) if p else None for p in frames.split(":")]
        frame_slice = slice(*parts)
    summary = run_batch(
        analysis,
        inputs,
        out,
        options=options,
        workers=workers,
        scheduler=scheduler,
        signal=signal,
        frames=frame_slice,
        pixel_size=parse_pixel_size(pixel_size),
        reports=reports,
        show_progress=show_progress,
    )
    for line in summary.lines():
        typer.echo(line)
    if summary.interrupted:
        raise typer.Exit(130)


@app.command()
def particles(
    image: Annotated[Path, typer.Argument(help="Image, stack/movie file or folder of frames")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder")],
    method: Annotated[str, typer.Option(help="classical, unet or shallow")] = "classical",
    threshold: Annotated[
        str, typer.Option(help="Network probability threshold: otsu or a number such as 0.4")
    ] = "otsu",
    model: Annotated[
        str | None,
        typer.Option(
            help="Model file from `atomscope train particles` (NAME.pt) or a shipped model name"
        ),
    ] = None,
    bright: Annotated[
        bool | None,
        typer.Option(
            "--bright/--dark",
            help="Particles brighter (HAADF) or darker (bright-field) than the "
            "support; default: detected from the signal name and histogram",
        ),
    ] = None,
    min_diameter: Annotated[
        float | None, typer.Option(help="Drop particles with a smaller equivalent diameter (nm)")
    ] = None,
    min_area: Annotated[int, typer.Option(help="Drop particles with fewer pixels")] = 10,
    exclude_border: Annotated[
        bool, typer.Option("--exclude-border", help="Drop particles touching the frame edge")
    ] = False,
    track: Annotated[
        bool, typer.Option("--track/--no-track", help="Link particles across frames (movies)")
    ] = True,
    max_gap: Annotated[
        int, typer.Option(help="Frames a particle may be missed and keep its track")
    ] = 1,
    pixel_size: PixelSizeOption = None,
    signal: Annotated[str | None, typer.Option(help="Signal of a multi-signal file")] = None,
    device: Annotated[str, typer.Option(help="Network device: cpu, cuda or auto")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="CPU threads for the networks")] = None,
    show_progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Segment, measure and track nanoparticles: particles.csv, mask.tif or masks.zarr,
    overlay.png, size_vs_time.png and size_histograms.png (movies), report.json in OUT."""
    from .io import load
    from .particles import analyze

    mg = load(image, signal=signal, pixel_size=parse_pixel_size(pixel_size))
    result = analyze(
        mg,
        method=method,
        bright=bright,
        threshold=threshold,
        model=model,
        min_diameter_nm=min_diameter,
        min_area_px=min_area,
        exclude_border=exclude_border,
        track_particles=track,
        max_gap=max_gap,
        device=device,
        n_threads=threads,
        show_progress=show_progress,
    )
    result.save(out)
    write_report("particles", result, mg, out)
    s = result.summary()
    unit = s["diameter_unit"]
    frames = f" in {result.n_frames} frames" if result.is_movie else ""
    typer.echo(
        f"{len(result)} particles{frames} ({method}, "
        f"{'bright' if result.bright else 'dark'} particles)"
    )
    if "diameter" in s:
        d = s["diameter"]
        typer.echo(
            f"diameter {d['mean']:.3g} ± {d['std']:.2g} {unit} "
            f"(median {d['median']:.3g}, range {d['min']:.3g}–{d['max']:.3g})"
        )
    if result.is_movie and len(result):
        ev = ", ".join(f"{v} {k}" for k, v in s.get("events", {}).items()) or "no events"
        typer.echo(
            f"{s['n_tracks']} tracks; {ev}; mean diameter "
            f"{s['mean_diameter_first_frame']:.3g} → {s['mean_diameter_last_frame']:.3g} "
            f"{unit}"
        )
    if result.message:
        typer.echo(result.message)
    typer.echo(f"Results written to {out.resolve()}")


train_app = typer.Typer(
    name="train",
    help="Train the networks that atomscope's analyses use (models that --model accepts).",
    no_args_is_help=True,
)
app.add_typer(train_app, name="train")


def _command_line(fixed: list[str], options: list[tuple[str, Any]]) -> str:
    """The command as one would type it again (recorded in a model's manifest): the fixed parts,
    then every option that was given; an option whose value is True is a bare flag."""
    given = [
        flag if value is True else f"{flag} {value}" for flag, value in options if value is not None
    ]
    return " ".join([*fixed, *given])


@train_app.command("particles")
def train_particles(
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder for the model")],
    simulated: Annotated[
        bool,
        typer.Option(
            "--simulated",
            help="Train on simulated frames with exact masks (the shipped models' recipe)",
        ),
    ] = False,
    from_folder: Annotated[
        Path | None,
        typer.Option(
            "--from-folder",
            help="Train on your frames (folder, stack or file); labels from "
            "--masks or else classical pseudo-labels",
        ),
    ] = None,
    masks: Annotated[
        Path | None,
        typer.Option(help="Masks for --from-folder (folder, stack or file; one per frame)"),
    ] = None,
    arch: Annotated[str, typer.Option(help="unet or shallow")] = "unet",
    epochs: Annotated[int | None, typer.Option(help="Epochs (default per architecture)")] = None,
    steps: Annotated[int | None, typer.Option(help="Steps per epoch")] = None,
    frames: Annotated[int | None, typer.Option(help="Simulated frames")] = None,
    frame_size: Annotated[int | None, typer.Option(help="Simulated frame size, px")] = None,
    patch_size: Annotated[int | None, typer.Option(help="Training patch size, px")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Patches per step")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate")] = None,
    loss: Annotated[str | None, typer.Option(help="ce, ce_dice or dice")] = None,
    blur: Annotated[
        float,
        typer.Option(
            help="Gaussian pre-blur σ in px for training and inference (the paper's blur study)"
        ),
    ] = 0.0,
    bright: Annotated[
        bool | None,
        typer.Option(
            "--bright/--dark", help="Polarity of --from-folder frames (default: detected)"
        ),
    ] = None,
    segment_length: Annotated[
        int | None, typer.Option(help="Consecutive frames kept together in the validation split")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    name: Annotated[str | None, typer.Option(help="Model name (file stem)")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch")] = None,
    show_progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Train a particle-segmentation network and write NAME.pt + NAME.json to OUT."""
    from .particles import train

    if simulated == (from_folder is not None):
        raise typer.BadParameter("choose exactly one of --simulated and --from-folder")
    if masks is not None and from_folder is None:
        raise typer.BadParameter("--masks goes with --from-folder")
    images = mask_data = None
    if from_folder is not None:
        from .io import load

        images = load(from_folder)
        if masks is not None:
            mask_data = load(masks).data
    command = _command_line(
        [
            "atomscope train particles",
            "--simulated" if simulated else f"--from-folder {from_folder}",
            f"-o {out}",
            f"--arch {arch}",
            f"--seed {seed}",
        ],
        [
            ("--masks", masks),
            ("--epochs", epochs),
            ("--steps", steps),
            ("--frames", frames),
            ("--frame-size", frame_size),
            ("--patch-size", patch_size),
            ("--batch-size", batch_size),
            ("--lr", lr),
            ("--loss", loss),
            ("--segment-length", segment_length),
            ("--name", name),
            ("--threads", threads),
            ("--blur", blur or None),
            ("--bright" if bright else "--dark", None if bright is None else True),
        ],
    )
    trained = train(
        architecture=arch,
        images=images,
        masks=mask_data,
        bright=bright,
        n_frames=frames,
        frame_size=frame_size,
        epochs=epochs,
        steps_per_epoch=steps,
        batch_size=batch_size,
        patch_size=patch_size,
        lr=lr,
        loss=loss,
        blur_sigma=blur,
        segment_length=segment_length,
        seed=seed,
        device=device,
        n_threads=threads,
        out=out,
        name=name,
        command=command,
        show_progress=show_progress,
    )
    m = trained.manifest
    metrics = ", ".join(
        f"{k} {v:.3f}" for k, v in (m.get("metrics") or {}).items() if isinstance(v, float)
    )
    typer.echo(
        f"{m['architecture']} with {m['n_parameters']} parameters trained in "
        f"{m['training']['seconds_total']:.0f} s" + (f"; {metrics}" if metrics else "")
    )
    typer.echo(f"Model written to {Path(trained.path).resolve()}")
    typer.echo(
        f"Use it with: atomscope particles IMAGE -o OUT --method {arch} --model {trained.path}"
    )


# -- train atoms (the column network of `atomscope atoms --method cnn`) ---------------------
@train_app.command("atoms")
def train_atoms_cmd(
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder for the model")],
    image: Annotated[
        Path | None,
        typer.Argument(help="With --from-positions: the image those positions belong to"),
    ] = None,
    from_positions: Annotated[
        Path | None,
        typer.Option(
            "--from-positions",
            help="Fine-tune on your labelled columns: CSV with x, y in px "
            "(e.g. an edited atoms.csv); every column in the region they cover must be listed",
        ),
    ] = None,
    dark: Annotated[bool, typer.Option("--dark", help="Dark columns (ABF)")] = False,
    model: Annotated[
        str | None, typer.Option(help="Model to fine-tune (default: the shipped atoms-unet)")
    ] = None,
    images: Annotated[int | None, typer.Option(help="Simulated training images")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs")] = None,
    steps: Annotated[int | None, typer.Option(help="Steps per epoch")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Patches per step")] = None,
    patch_size: Annotated[int | None, typer.Option(help="Training patch size, px")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate")] = None,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    name: Annotated[str | None, typer.Option(help="Model name (file stem)")] = None,
    pixel_size: PixelSizeOption = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch")] = None,
    evaluate: Annotated[
        bool,
        typer.Option(
            "--evaluate/--no-evaluate", help="Score the model afterwards (manifest metrics)"
        ),
    ] = True,
    show_progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Train the atom-column network on simulated images (the shipped model's recipe), or
    fine-tune it on your own image and positions; writes NAME.pt + NAME.json to OUT."""
    from .atoms.train import train_atoms

    if (from_positions is None) != (image is None):
        raise typer.BadParameter(
            "--from-positions and IMAGE go together (fine-tuning); give "
            "neither to train on simulated images"
        )
    mg = None
    if image is not None:
        from .io import load

        mg = load(image, pixel_size=parse_pixel_size(pixel_size))
    fixed = ["atomscope train atoms", f"-o {out}", f"--seed {seed}"]
    if from_positions is not None:
        fixed[1:1] = [f"--from-positions {from_positions}", str(image)]
    command = _command_line(
        fixed,
        [
            ("--model", model),
            ("--images", images),
            ("--epochs", epochs),
            ("--steps", steps),
            ("--batch-size", batch_size),
            ("--patch-size", patch_size),
            ("--lr", lr),
            ("--name", name),
            ("--threads", threads),
            ("--dark", dark or None),
        ],
    )
    trained = train_atoms(
        image=mg,
        positions=from_positions,
        dark=dark,
        base_model=model,
        n_images=images,
        epochs=epochs,
        steps_per_epoch=steps,
        batch_size=batch_size,
        patch_size=patch_size,
        lr=lr,
        seed=seed,
        device=device,
        n_threads=threads,
        out=out,
        name=name,
        command=command,
        evaluate=evaluate,
        show_progress=show_progress,
    )
    m = trained.manifest
    typer.echo(
        f"{m['architecture']} with {m['n_parameters']} parameters trained in "
        f"{m['training']['seconds_total']:.0f} s"
    )
    for key, value in (m.get("metrics") or {}).items():
        if isinstance(value, dict) and "precision_mean" in value:
            typer.echo(
                f"{key}: precision {value['precision_mean']:.4f}, recall "
                f"{value['recall_mean']:.4f} ({value['n_images']} images)"
            )
        elif isinstance(value, dict) and "precision" in value:
            typer.echo(f"{key}: precision {value['precision']:.4f}, recall {value['recall']:.4f}")
    typer.echo(f"Model written to {Path(trained.path).resolve()}")
    typer.echo(f"Use it with: atomscope atoms IMAGE -o OUT --method cnn --model {trained.path}")


# -- end train atoms ---------------------------------------------------------------------------


@app.command()
def segment(
    image: Annotated[Path, typer.Argument(help="Image file (or a stack with --frame)")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder")],
    descriptor: Annotated[
        str,
        typer.Option(
            help="translation, rotation, reflection, power_spectrum, or several comma-separated"
        ),
    ] = "translation",
    clusters: Annotated[
        int | None,
        typer.Option("--clusters", "-k", help="Number of segments (default: chosen automatically)"),
    ] = None,
    stride: Annotated[int, typer.Option(help="Spacing of the descriptor centres, px")] = 5,
    window: Annotated[
        str, typer.Option(help="Largest translation / max-pooling half-width, px, or auto")
    ] = "auto",
    patch: Annotated[
        str, typer.Option(help="Patch side (diameter of the circular patch), px, or auto")
    ] = "auto",
    components: Annotated[int, typer.Option(help="PCA components")] = 5,
    k_method: Annotated[
        str, typer.Option("--k-method", help="Automatic number of segments: silhouette or bic")
    ] = "silhouette",
    normalize: Annotated[
        str, typer.Option(help="Intensity normalisation: local or global")
    ] = "local",
    model: Annotated[
        Path | None,
        typer.Option(
            help="Reuse a fitted model (model.npz, or the output folder of an earlier run) so that "
            "segments keep their labels, e.g. across the frames of a movie"
        ),
    ] = None,
    pixel_size: PixelSizeOption = None,
    signal: Annotated[str | None, typer.Option(help="Signal of a multi-signal file")] = None,
    frame: Annotated[int | None, typer.Option(help="Frame of a stack")] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="Torch device for the descriptors, e.g. cuda (default: numpy on the CPU)"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of k-means and the subsamples")] = 0,
) -> None:
    """Unsupervised segmentation by local symmetry: labels.tif, labels.npy, segments.csv,
    overlay.png, model.npz and report.json in OUT."""
    from .segmentation import SegmentationModel
    from .segmentation import segment as run_segment

    mg = _load_one_frame(
        image,
        frame=frame,
        signal=signal,
        pixel_size=pixel_size,
        doing="segmenting",
        hint="use --frame N, with --model OUT/model.npz for labels consistent with frame 0",
    )

    def size(text: str) -> int | str:
        return text if text == "auto" else int(text)

    fitted = SegmentationModel.load(model) if model is not None else None
    kwargs: dict[str, Any] = (
        {}
        if fitted is not None
        else {
            "descriptor": descriptor,
            "stride": stride,
            "window": size(window),
            "patch": size(patch),
            "normalize": normalize,
        }
    )
    result = run_segment(
        mg,
        n_clusters=clusters,
        n_components=components,
        k_method=k_method,
        model=fitted,
        device=device,
        seed=seed,
        **kwargs,
    )
    result.save(out)
    write_report("segment", result, mg, out)
    sc = result.scores
    how = sc.get("n_clusters_chosen_by")
    line = (
        f"{result.n_clusters} segments ({', '.join(result.model.settings.descriptors)}, "
        f"window {result.model.settings.window} px, patch {result.model.settings.patch} px, "
        f"stride {result.model.settings.stride} px) in {result.timings['total']:.2f} s"
    )
    if how in ("silhouette", "bic"):
        k_scores = ", ".join(f"{k}: {v:.3g}" for k, v in sc.get("k_scores", {}).items())
        line += f"; number chosen by {how} ({k_scores})"
    typer.echo(line)
    frame_ = result.to_frame()
    typer.echo(
        "areas: "
        + ", ".join(
            f"segment {int(r.label)} {100 * r.area_fraction:.1f} %" for r in frame_.itertuples()
        )
    )
    if result.message:
        typer.echo(result.message)
    typer.echo(f"Results written to {out.resolve()}")


@app.command()
def disorder(
    image: Annotated[Path, typer.Argument(help="Image file (or a stack with --frame)")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder")],
    atoms_csv: Annotated[
        Path | None,
        typer.Option(
            "--atoms", help="atoms.csv with x, y columns in px (default: found by atomscope atoms)"
        ),
    ] = None,
    sublattice: Annotated[
        int | None,
        typer.Option(help="Analyse only this atom type (0 = brightest, as in report.json)"),
    ] = None,
    types: Annotated[
        int | None, typer.Option("--types", help="Number of atom types (default: chosen by BIC)")
    ] = None,
    optimize: Annotated[
        bool,
        typer.Option(
            "--optimize/--no-optimize",
            help="Tune threshold and covariance type by Bayesian optimisation",
        ),
    ] = True,
    threshold: Annotated[
        float | None, typer.Option(help="Score threshold in robust sigmas (with --no-optimize)")
    ] = None,
    covariance: Annotated[
        str | None, typer.Option(help="full, tied, diag or spherical (with --no-optimize)")
    ] = None,
    rewards: Annotated[str, typer.Option(help="robust or paper")] = "robust",
    choice: Annotated[
        str, typer.Option(help="Pareto choice: euclidean or chebyshev")
    ] = "euclidean",
    patch_size: Annotated[
        int | None,
        typer.Option("--patch-size", help="Patch side in px (default 2.5 x the column spacing)"),
    ] = None,
    pixel_size: PixelSizeOption = None,
    signal: Annotated[str | None, typer.Option(help="Signal of a multi-signal file")] = None,
    frame: Annotated[int | None, typer.Option(help="Frame of a stack")] = None,
    seed: Annotated[int, typer.Option(help="Seed of clustering and optimiser")] = 0,
    show_progress: Annotated[bool, typer.Option("--progress/--no-progress")] = False,
) -> None:
    """Disordered / amorphous regions: disorder.csv, amorphous_mask.tif, overlay.png,
    pareto.png and report.json in OUT."""
    from .disorder import find_disorder

    mg = _load_one_frame(
        image,
        frame=frame,
        signal=signal,
        pixel_size=pixel_size,
        doing="analysing",
        hint="use --frame N",
    )
    result = find_disorder(
        mg,
        atoms_csv,
        sublattice=sublattice,
        n_types=types,
        optimize=optimize,
        threshold=threshold,
        covariance=covariance,
        rewards=rewards,
        choice=choice,
        patch_size=patch_size,
        seed=seed,
        show_progress=show_progress,
    )
    result.save(out)
    write_report("disorder", result, mg, out)
    s = result.summary()
    typer.echo(
        f"{s['n_disordered']} of {s['n_analysed']} columns disordered; amorphous area "
        f"{100 * result.area_fraction:.2f} % in {result.n_regions} region(s) "
        f"({result.timings.get('total', 0):.1f} s)"
    )
    if result.parameters:
        p = result.parameters
        typer.echo(
            f"threshold {p['threshold']:.3g} robust sigma, covariance {p['covariance']}; "
            f"{result.types.get('n_types', 0)} atom type(s)"
        )
    if result.message:
        typer.echo(result.message)
    typer.echo(f"Results written to {out.resolve()}")


# -- structure matching (atomscope.match) -------------------------------------------------------

library_app = typer.Typer(
    name="library",
    help="Structure libraries for `atomscope match`: simulated (structure, zone axis) motifs.",
    no_args_is_help=True,
)
app.add_typer(library_app, name="library")


def _split_zones(text: str | None) -> list[str] | None:
    """'001 110 1-10' or '0,0,1;1,1,0' to a list of zone strings."""
    if text is None:
        return None
    parts = text.split(";") if ";" in text else text.split()
    zones = [p.strip() for p in parts if p.strip()]
    if not zones:
        raise typer.BadParameter("give at least one zone, e.g. --zones '001 110 111'")
    return zones


@library_app.command("build")
def library_build(
    out: Annotated[Path, typer.Option("-o", "--out", help="Library file to write (.h5)")],
    cif_dir: Annotated[
        Path | None, typer.Option("--cif-dir", help="Add every *.cif of this folder")
    ] = None,
    cif: Annotated[
        list[Path] | None, typer.Option("--cif", help="Add this CIF file (repeatable)")
    ] = None,
    builtin: Annotated[
        bool,
        typer.Option("--builtin/--no-builtin", help="Include the simulator's built-in materials"),
    ] = True,
    elements: Annotated[
        str,
        typer.Option(
            help="ASE elemental crystals to include: all, none, or a list such as Fe,Cu,Au"
        ),
    ] = "all",
    zones: Annotated[
        str | None,
        typer.Option(
            help="Zone axes tried for every structure, e.g. '001 110 111' or '0,0,1;1,1,0' "
            "(default: the 15 low-index zones)"
        ),
    ] = None,
    max_repeat: Annotated[
        float | None,
        typer.Option(help="Longest repeat along the beam (nm) for a zone to enter the library (1)"),
    ] = None,
    exponent: Annotated[
        float | None,
        typer.Option(
            help="Column weight Z^exponent of the motif images (default 1.7; 1.3 suits "
            "thick crystals whose heavy and light columns differ less than Z^1.7 predicts)"
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Rebuild from scratch instead of resuming an existing file"
        ),
    ] = False,
    show_progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Build (or resume building) a structure library: one HDF5 file with a simulated motif
    image, its columns and Bragg peaks for every symmetry-distinct low-index zone axis."""
    from .match import Library, LibrarySettings

    try:
        settings = None if exponent is None else LibrarySettings(exponent=exponent)
    except ParameterError as exc:
        raise typer.BadParameter(str(exc), param_hint="--exponent") from None
    low = elements.strip().lower()
    ase_elements: bool | list[str] = (
        True
        if low == "all"
        else False
        if low in ("none", "")
        else [e.strip() for e in elements.split(",") if e.strip()]
    )
    lib = Library.build(
        out,
        builtin=builtin,
        ase_elements=ase_elements,
        cif_dir=cif_dir,
        cifs=cif,
        zones=_split_zones(zones),
        max_repeat=max_repeat,
        settings=settings,
        workers=workers,
        overwrite=overwrite,
        show_progress=show_progress,
    )
    s = lib.summary()
    kinds = ", ".join(f"{v} {k}" for k, v in s["by_source_kind"].items())
    typer.echo(
        f"{s['entries']} entries ({kinds}) from {s['structures']} structures at "
        f"{s['pixel_size_nm']:g} nm/px, {s['image_size_px']} px motifs, column weights "
        f"Z^{s['exponent']:g}"
    )
    if s["skipped_sources"]:
        typer.echo(
            f"{s['skipped_sources']} structure(s) gave no entry (no zone axis with a "
            f"repeat <= {s['max_repeat_nm']:g} nm, or unreadable)"
        )
    typer.echo(f"Library written to {Path(out).resolve()}")


@library_app.command("info")
def library_info(
    path: Annotated[Path, typer.Argument(help="Library file (.h5)")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Size, settings and sources of a structure library."""
    from .match import Library

    lib = Library.load(path)
    s = lib.summary()
    if as_json:
        from ._fileio import to_jsonable

        typer.echo(json.dumps(to_jsonable({**s, "settings": lib.settings.as_dict()}), indent=2))
        return
    for k, v in s.items():
        typer.echo(f"{k + ':':<18}{v}")


@app.command()
def match(
    image: Annotated[Path, typer.Argument(help="Image file (or a stack with --frame)")],
    library: LibraryOption,
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder")],
    metric: Annotated[str, typer.Option(help="ssim, emd, mse or all")] = "ssim",
    top: Annotated[int, typer.Option(help="Candidates shown per metric in matches.png")] = 10,
    region: Annotated[
        str | None,
        typer.Option(
            help="Part of the image to match: y0:y1,x0:x1 in px, or auto (most crystalline window)"
        ),
    ] = None,
    shortlist: Annotated[
        int, typer.Option(help="Entries aligned and scored after the first pass")
    ] = 256,
    scale_tolerance: ScaleToleranceOption = 0.08,
    pixel_size: PixelSizeOption = None,
    signal: Annotated[str | None, typer.Option(help="Signal of a multi-signal file")] = None,
    frame: Annotated[int | None, typer.Option(help="Frame of a stack")] = None,
) -> None:
    """Rank the library's (structure, zone axis) entries against IMAGE: ranking.csv,
    matches.png, report.json and report.html in OUT."""
    from .match import match_image

    mg = _load_one_frame(
        image,
        frame=frame,
        signal=signal,
        pixel_size=pixel_size,
        doing="matching",
        hint="use --frame N, or `atomscope batch match` for all",
    )
    result = match_image(
        mg,
        library=library,
        metric=metric,
        region=region,
        shortlist=shortlist,
        scale_tolerance=scale_tolerance,
    )
    result.save(out, top=top)
    write_report("match", result, mg, out)
    info_ = result.query_info
    cal = (
        f"{info_['pixel_size_nm']:.4g} nm/px"
        if info_["calibrated"]
        else "no pixel size (scale from the lattice)"
    )
    typer.echo(
        f"{result.summary()['scored']} of {len(result.table)} entries scored by "
        f"{', '.join(result.metrics)} in {result.timings.get('total', 0):.2f} s ({cal})"
    )
    for note in info_.get("notes", []):
        typer.echo(f"note: {note}")
    best = result.top(min(5, len(result.table)))
    same = result.same_pattern(len(best))
    for i, (_, r) in enumerate(best.iterrows()):
        vals = ", ".join(f"{m} {r[m]:.3g}" for m in result.metrics)
        typer.echo(
            f"{i + 1}. {r['name']} {r['zone']} ({r['structure_type']}): {vals}; "
            f"rotation {r['rotation_deg']:.1f} deg, scale {r['scale']:.3f}"
            + (", mirrored" if r["mirror"] else "")
            + (f"; same column pattern as {same.iloc[i]}." if same.iloc[i] != i + 1 else "")
        )
    typer.echo(f"Results written to {out.resolve()}")


@app.command()
def motifs(
    image: Annotated[Path, typer.Argument(help="Image file (or a stack with --frame)")],
    library: LibraryOption,
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder")],
    metric: Annotated[
        str, typer.Option(help="Metric that picks each tile's motif: ssim or mse")
    ] = "ssim",
    pattern_tolerance: Annotated[
        float,
        typer.Option(
            help="Merge motifs that explain each other's columns (fraction of the column "
            "spacing; 0 keeps look-alikes apart)"
        ),
    ] = 0.12,
    scale_tolerance: ScaleToleranceOption = 0.08,
    pixel_size: PixelSizeOption = None,
    signal: Annotated[str | None, typer.Option(help="Signal of a multi-signal file")] = None,
    frame: Annotated[int | None, typer.Option(help="Frame of a stack")] = None,
    show_progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Label the grains and phases of IMAGE by their best-matching library motif: labels.npy,
    columns.csv, tiles.csv, motifs.csv, segmentation.png, report.json and report.html in
    OUT."""
    from .match import segment_motifs

    mg = _load_one_frame(
        image,
        frame=frame,
        signal=signal,
        pixel_size=pixel_size,
        doing="segmenting",
        hint="use --frame N, or `atomscope batch motifs` for all",
    )
    seg = segment_motifs(
        mg,
        library,
        metric=metric,
        pattern_tolerance=pattern_tolerance,
        scale_tolerance=scale_tolerance,
        show_progress=show_progress,
    )
    seg.save(out)
    write_report("motifs", seg, mg, out)
    typer.echo(
        f"{len(seg.motifs)} motif(s) from {len(seg.tiles)} tiles and {len(seg.columns)} columns "
        f"in {seg.timings.get('total', 0):.1f} s"
    )
    if seg.motifs.empty and len(seg.tiles):
        ssim = seg.metric == "ssim"
        score = seg.tiles["score"].max() if ssim else seg.tiles["score"].min()
        typer.echo(
            f"note: no tile matched a library motif (best tile {seg.metric} {score:.3g}, a "
            f"motif needs {'>=' if ssim else '<='} {seg.settings['min_score']:g}): no resolved "
            "crystal, or a structure the library does not hold"
        )
    for _, r in seg.motifs.iterrows():
        typer.echo(
            f"{int(r['motif'])}. {r['name']} {r['zone']} ({r['structure_type']}), rotation "
            f"{r['rotation_deg']:.1f} deg: {100 * r['area_fraction']:.1f} % of the image"
            + (f"; same columns as {r['same_pattern']}" if r["same_pattern"] else "")
        )
    typer.echo(f"Results written to {out.resolve()}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning atomscope errors into one-line messages (exit code 2)."""
    try:
        app(args=argv, prog_name="atomscope")
    except AtomscopeError as exc:
        typer.echo(f"atomscope: error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
