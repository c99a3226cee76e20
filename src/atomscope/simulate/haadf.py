"""Single-crystal HAADF (and ABF-like) images of any structure along a zone axis."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .columns import tile
from .composite import apply_point_defects, structure_label
from .imaging import (
    Imaging,
    check_pixel_size,
    form_image,
    image_shape,
    make_rng,
    render_margin,
    seed_record,
)
from .noise import DEFAULT_DETECTOR_FRACTION
from .projection import format_zone, project
from .result import SimulationResult
from .structures import StructureSpec

__all__ = ["simulate_haadf", "simulate_to_dir"]


def simulate_haadf(
    structure: StructureSpec,
    *,
    zone: Any = (0, 0, 1),
    size: int | tuple[int, int] = 512,
    pixel_size: float = 0.02,
    thickness: float = 10,
    rotation: float = 0.0,
    shift: tuple[float, float] = (0.0, 0.0),
    max_repeat: float = 2.0,
    voltage: float = 300e3,
    convergence: float = 25e-3,
    defocus: float = 0.0,
    cs: float = 0.0,
    source_size: float = 0.05,
    exponent: float = 1.7,
    weights: Mapping[str, float] | None = None,
    debye_waller: float | Mapping[str, float] | None = None,
    vacancies: float | Mapping[str, float] | None = None,
    substitutions: Mapping[str, Any] | None = None,
    dose: float | None = None,
    counts: float | None = None,
    detector_fraction: float = DEFAULT_DETECTOR_FRACTION,
    read_noise: float = 0.0,
    background: float | Mapping[str, float] | None = None,
    drift: Any = None,
    jitter: Any = None,
    flyback: Any = None,
    contrast: str = "haadf",
    abf_depth: float = 0.5,
    order: int = 5,
    seed: int | np.random.Generator | None = None,
) -> SimulationResult:
    """Simulate a HAADF-STEM image of a crystal by incoherent linear imaging.

    ``image = probe intensity ⊛ Σᵢ wᵢ δ(r − rᵢ)``, rendered exactly at sub-pixel positions, with
    column weights ``wᵢ = thickness × Σ_atoms Z^exponent`` (per period along the beam).

    Parameters
    ----------
    structure : ase.Atoms, CIF path or built-in name
        E.g. 'SrTiO3', 'BaTiO3', 'YBa2Cu3O7', 'Si', 'GaAs', 'CdTe', 'Au', 'Pt', 'Cu', 'Ni',
        'ZnO' (wurtzite), 'MoS2' (monolayer), 'graphene'.
    zone : sequence of int or str
        Zone axis [uvw] in the basis of the structure's cell (``'1,1,0'``, ``(1, 1, -2, 0)``).
    size : int or (int, int)
        Image size, px (rows, cols).
    pixel_size : float
        nm per pixel (square pixels).
    thickness : float
        Number of periods (shortest repeats) along the beam; for 2-D materials, identical
        stacked layers. Columns add linearly.
    rotation : float
        In-plane rotation of the crystal, degrees, counter-clockwise as displayed. At 0, x is
        along the projection of a (of b when the beam is along a) and the zone axis points
        towards the viewer.
    shift : (float, float)
        Sub-pixel shift (x, y) of the lattice origin from the image centre ((W−1)/2, (H−1)/2),
        px. The lattice origin (site 0 of the projected cell) sits there.
    max_repeat : float
        Longest accepted repeat along the beam, nm; longer ones raise ParameterError.
    voltage, convergence, defocus, cs, source_size
        Probe: V, rad (semi-angle), nm, mm, nm (FWHM of the Gaussian source).
    exponent : float
        Z exponent of the column weights (1.7).
    weights : dict, optional
        Per-element weights overriding ``Z ** exponent``.
    debye_waller : float or dict, optional
        B factor(s), Å², blurring each column by σ² = B / 8π².
    vacancies, substitutions : optional
        Random point defects, see :func:`~atomscope.simulate.composite.apply_point_defects`.
    dose : float, optional
        Incident electrons per Å²; expected counts at the brightest pixel
        = dose × (pixel size in Å)² × ``detector_fraction``; Poisson noise.
    counts : float, optional
        Expected counts at the brightest pixel (instead of ``dose``).
    detector_fraction : float
        Fraction of the incident beam detected at the brightest pixel (0.05).
    read_noise : float
        Gaussian σ added after shot noise, in output units.
    background : float or dict, optional
        Smooth low-frequency background (amplitude relative to the mean intensity).
    drift, jitter, flyback : optional
        Scan distortions, px (see :class:`~atomscope.simulate.distort.ScanDistortion`).
    contrast : {'haadf', 'abf'}
        'abf' gives dark columns on a bright background.
    abf_depth : float
        Depth of the darkest ABF column (fraction of the background).
    order : {3, 5}
        Spline degree of the renderer.
    seed : int or numpy.random.Generator, optional
        Seed of every random step (noise, defects, distortion); same seed, same image.

    Returns
    -------
    SimulationResult
        ``image`` (Micrograph, float32, pixel size in nm, every parameter in
        ``metadata['simulation']``) and ``truth`` (columns whose centre lies inside the image,
        0 ≤ x ≤ W − 1 and 0 ≤ y ≤ H − 1; masks {'grain': all 1}).

    Raises
    ------
    ParameterError
        Unknown structure or bad zone, repeat along the beam longer than ``max_repeat``, or
        parameters out of range.
    """
    opts = Imaging(
        voltage=voltage,
        convergence=convergence,
        defocus=defocus,
        cs=cs,
        source_size=source_size,
        exponent=exponent,
        weights=dict(weights) if weights else None,
        debye_waller=dict(debye_waller) if isinstance(debye_waller, Mapping) else debye_waller,
        dose=dose,
        counts=counts,
        detector_fraction=detector_fraction,
        read_noise=read_noise,
        background=dict(background) if isinstance(background, Mapping) else background,
        drift=drift,
        jitter=jitter,
        flyback=flyback,
        contrast=contrast,
        abf_depth=abf_depth,
        order=order,
    )
    shape = image_shape(size)
    ps = check_pixel_size(pixel_size)
    rng = make_rng(seed)
    proj = project(structure, zone, max_repeat=max_repeat)
    margin = render_margin(opts, ps, shape)
    cols = tile(proj, shape, ps, rotation=rotation, shift=shift, margin=margin, thickness=thickness)
    cols = apply_point_defects(cols, vacancies=vacancies, substitutions=substitutions, rng=rng)
    params = {
        "structure": structure_label(structure),
        "formula": proj.formula,
        "zone": list(proj.zone),
        "zone_label": format_zone(proj.zone),
        "period_nm": None if proj.two_d else proj.period,
        "thickness": thickness,
        "thickness_nm": None if proj.two_d else thickness * proj.period,
        "projected_cell_nm": proj.lattice.tolist(),
        "rotation_deg": rotation,
        "shift_px": [float(shift[0]), float(shift[1])],
        "origin_px": [(shape[1] - 1) / 2 + float(shift[0]), (shape[0] - 1) / 2 + float(shift[1])],
        "max_repeat_nm": max_repeat,
        "vacancies": vacancies,
        "substitutions": substitutions,
        "seed": seed_record(seed),
        "sublattices": {
            int(k): s
            for k, s in sorted(set(zip(proj.sublattice.tolist(), proj.species, strict=True)))
        },
    }
    h, w = shape
    masks = {"grain": np.ones((h, w), np.uint8)}
    return form_image(
        cols,
        shape,
        ps,
        opts,
        rng,
        parameters=params,
        masks=masks,
        kind="haadf" if contrast == "haadf" else "abf",
    )


def simulate_to_dir(
    structure: StructureSpec,
    out_dir: str | os.PathLike[str],
    *,
    zone: Any = (0, 0, 1),
    size: int | tuple[int, int] = 512,
    pixel_size: float = 0.02,
    dose: float | None = None,
    thickness: float = 10,
    **kwargs: Any,
) -> Path:
    """Simulate with :func:`simulate_haadf` and save image and ground truth to ``out_dir``.

    Writes ``image.tif`` (float32 ImageJ TIFF, calibrated in nm), ``columns.csv``,
    ``mask_grain.tif``, ``field_noise_free.tif`` and ``truth.json``. Returns ``out_dir``.
    """
    result = simulate_haadf(
        structure,
        zone=zone,
        size=size,
        pixel_size=pixel_size,
        dose=dose,
        thickness=thickness,
        **kwargs,
    )
    return result.save(out_dir)
