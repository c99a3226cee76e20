"""Shared image formation: columns -> probe convolution -> contrast -> scan distortion ->
background -> dose and noise -> SimulationResult with ground truth."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..image import Micrograph, Source
from .columns import ColumnSet
from .distort import ScanDistortion
from .noise import (
    DEFAULT_DETECTOR_FRACTION,
    add_read_noise,
    add_shot_noise,
    expected_counts,
    smooth_background,
)
from .probe import FWHM_PER_SIGMA, Probe
from .render import canvas_geometry, probe_margin_px, render_columns
from .result import GroundTruth, SimulationResult

__all__ = ["Imaging", "IMAGING_KEYS", "form_image", "make_rng", "seed_record", "image_shape"]


@dataclass(frozen=True)
class Imaging:
    """Microscope, scattering, detector and scan settings shared by all HAADF-type simulators.

    Parameters
    ----------
    voltage : float
        Accelerating voltage, V.
    convergence : float
        Probe convergence semi-angle, rad.
    defocus : float
        Probe defocus, nm (negative = underfocus).
    cs : float
        Spherical aberration, mm.
    source_size : float
        FWHM of the Gaussian effective source, nm.
    exponent : float
        Column weight per atom ``Z ** exponent`` (HAADF: 1.5–2; default 1.7).
    weights : dict, optional
        Per-element weight overriding ``Z ** exponent`` for the listed elements.
    debye_waller : float or dict, optional
        Isotropic B factor(s) in Å² (blur σ² = B / 8π² per direction).
    dose : float, optional
        Incident electrons per Å² (see :mod:`atomscope.simulate.noise`).
    counts : float, optional
        Expected counts at the brightest pixel (alternative to ``dose``).
    detector_fraction : float
        Fraction of incident electrons detected at the brightest pixel (with ``dose``).
    read_noise : float
        Gaussian read-noise σ, in output units (counts when a dose is given).
    background : float or dict, optional
        Low-frequency background: its maximum is ``amplitude`` × the mean noise-free intensity.
        A float is the amplitude; a dict may give ``amplitude``, ``length_nm`` (correlation
        length, default a third of the field) and ``gradient`` (ramp strength, default 0.5).
    drift, jitter, flyback : optional
        Scan distortions in px, see :class:`~atomscope.simulate.distort.ScanDistortion`.
    contrast : {'haadf', 'abf'}
        'abf' inverts the contrast: ``1 − abf_depth × I / max I`` (dark columns on a bright
        background; use a small ``exponent`` such as 0.5 to see light columns).
    abf_depth : float
        Fractional depth of the darkest column in ABF mode.
    order : {3, 5}
        B-spline degree of the renderer (5: ≤ 1e-3 of the peak for a probe FWHM ≥ 3 px).
    """

    voltage: float = 300e3
    convergence: float = 25e-3
    defocus: float = 0.0
    cs: float = 0.0
    source_size: float = 0.05
    exponent: float = 1.7
    weights: dict[str, float] | None = None
    debye_waller: float | dict[str, float] | None = None
    dose: float | None = None
    counts: float | None = None
    detector_fraction: float = DEFAULT_DETECTOR_FRACTION
    read_noise: float = 0.0
    background: float | dict[str, float] | None = None
    drift: Any = None
    jitter: Any = None
    flyback: Any = None
    contrast: str = "haadf"
    abf_depth: float = 0.5
    order: int = 5

    def __post_init__(self) -> None:
        if self.contrast not in ("haadf", "abf"):
            raise ParameterError(f"contrast must be 'haadf' or 'abf', got {self.contrast!r}")
        if not (0 < self.abf_depth <= 1):
            raise ParameterError(f"abf_depth must be in (0, 1], got {self.abf_depth!r}")
        if not (math.isfinite(self.exponent) and self.exponent >= 0):
            raise ParameterError(f"exponent must be ≥ 0, got {self.exponent!r}")

    @property
    def probe(self) -> Probe:
        return Probe(self.voltage, self.convergence, self.defocus, self.cs, self.source_size)

    def as_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in ("weights", "debye_waller", "background"):
            if isinstance(d[k], dict):
                d[k] = dict(d[k])
        d["probe"] = self.probe.as_dict()
        return d


IMAGING_KEYS = frozenset(f.name for f in fields(Imaging))


def imaging_from_kwargs(kwargs: dict[str, Any]) -> Imaging:
    """Build :class:`Imaging` from keyword arguments, naming any unknown keyword."""
    unknown = sorted(set(kwargs) - IMAGING_KEYS)
    if unknown:
        raise ParameterError(
            f"unknown imaging parameter(s) {unknown}; known: {sorted(IMAGING_KEYS)}"
        )
    return Imaging(**kwargs)


def make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy Generator from an int seed, a Generator (used as is) or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not isinstance(seed, int | np.integer):
        raise ParameterError(f"seed must be an int, a numpy Generator or None, got {seed!r}")
    return np.random.default_rng(seed)


def seed_record(seed: Any) -> Any:
    return (
        int(seed)
        if isinstance(seed, int | np.integer)
        else ("numpy.random.Generator" if isinstance(seed, np.random.Generator) else None)
    )


def image_shape(size: int | tuple[int, int]) -> tuple[int, int]:
    """(rows, cols) from an int or a pair; both ≥ 8."""
    if isinstance(size, int | np.integer):
        shape = (int(size), int(size))
    else:
        try:
            shape = tuple(int(s) for s in size)  # type: ignore[union-attr]
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"size must be an int or (rows, cols), got {size!r}") from exc
        if len(shape) != 2:
            raise ParameterError(f"size must be an int or (rows, cols), got {size!r}")
    if min(shape) < 8 or max(shape) > 16384:
        raise ParameterError(f"image size must be between 8 and 16384 px, got {shape}")
    return shape  # type: ignore[return-value]


def check_pixel_size(pixel_size: Any) -> float:
    try:
        ps = float(pixel_size)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"pixel_size is one number in nm per pixel (square pixels), got {pixel_size!r}"
        ) from exc
    if not (math.isfinite(ps) and 0 < ps < 100):
        raise ParameterError(f"pixel_size must be a positive length in nm, got {pixel_size!r}")
    return ps


def render_margin(opts: Imaging, pixel_size: float, shape: tuple[int, int]) -> int:
    """Padding in px around the image inside which columns must be generated."""
    dist = ScanDistortion.create(opts.drift, opts.jitter, opts.flyback)
    if dist is not None:
        # rendered at 2x finer pixels on a canvas padded by the displacement, then resampled
        mf = probe_margin_px(opts.probe, pixel_size / 2)
        m = int(math.ceil(dist.max_displacement)) + 4 + mf // 2 + 16
    else:
        m = canvas_geometry(shape, opts.probe, pixel_size)[2]
    if opts.debye_waller is not None:
        b = (
            max(opts.debye_waller.values(), default=0.0)
            if isinstance(opts.debye_waller, dict)
            else float(opts.debye_waller)
        )
        m += int(math.ceil(4 * math.sqrt(max(b, 0) / (8 * math.pi**2)) / 10 / pixel_size))
    return m


def _species_from_counts(elements: tuple[str, ...], counts: np.ndarray) -> np.ndarray:
    out = np.empty(len(counts), dtype=object)
    for i, row in enumerate(counts):
        out[i] = "+".join(e for e, c in zip(elements, row, strict=True) if c > 1e-9) or "vacant"
    return out


def form_image(
    columns: ColumnSet,
    shape: tuple[int, int],
    pixel_size: float,
    opts: Imaging,
    rng: np.random.Generator,
    *,
    parameters: dict[str, Any],
    masks: dict[str, np.ndarray] | None = None,
    kind: str = "haadf",
    source_name: str | None = None,
) -> SimulationResult:
    """Render columns into a finished, noisy image with its ground truth.

    ``columns`` must cover the image plus :func:`render_margin` px; weights are computed here.
    """
    h, w = shape
    ps = float(pixel_size)
    probe = opts.probe
    cols = columns.with_weights(opts.exponent, opts.weights, opts.debye_waller)
    blur_px = None if cols.blur is None else cols.blur / ps
    dist = ScanDistortion.create(opts.drift, opts.jitter, opts.flyback)
    probe_fwhm_px = probe.fwhm / ps
    if dist is None:
        clean = render_columns(
            cols.xy, cols.weight, shape, probe, pixel_size=ps, blur=blur_px, order=opts.order
        )
        xy_obs = cols.xy
        jitter_rows = None
    else:
        from scipy.ndimage import map_coordinates

        s = 2
        m = int(math.ceil(dist.max_displacement)) + 4
        fine_shape = ((h + 2 * m) * s, (w + 2 * m) * s)
        # per-pixel intensity at pixel area (1/s)²: a column integrates to w over fine pixels,
        # so the coarse-pixel value is s² × the fine one
        fine = render_columns(
            (cols.xy + m) * s,
            cols.weight * (s * s),
            fine_shape,
            probe,
            pixel_size=ps / s,
            blur=None if blur_px is None else blur_px * s,
            order=opts.order,
            warn_undersampled=False,
        )
        jitter_rows = dist.row_jitter(h, rng)
        X, Y = dist.sample_positions(shape, jitter_rows)
        clean = map_coordinates(fine, [(Y + m) * s, (X + m) * s], order=3, mode="nearest").astype(
            np.float32
        )
        xy_obs = dist.observed(cols.xy, shape, jitter_rows, probe_fwhm_px / FWHM_PER_SIGMA)
        if probe_fwhm_px < 2.5:
            warnings.warn(
                f"the probe FWHM is {probe_fwhm_px:.2f} px (< 2.5 px): undersampled",
                UserWarning,
                stacklevel=3,
            )

    signal = clean
    if opts.contrast == "abf":
        peak = float(signal.max())
        signal = (
            1.0 - opts.abf_depth * signal / peak if peak > 0 else np.ones_like(signal)
        ).astype(np.float32)

    fields_out: dict[str, np.ndarray] = {}
    bg_record = None
    if opts.background is not None:
        bg = (
            opts.background
            if isinstance(opts.background, dict)
            else {"amplitude": float(opts.background)}
        )
        unknown = set(bg) - {"amplitude", "length_nm", "gradient"}
        if unknown:
            raise ParameterError(f"unknown background keys {sorted(unknown)}")
        amp = float(bg.get("amplitude", 0.0))
        if not (math.isfinite(amp) and amp >= 0):
            raise ParameterError(f"background amplitude must be ≥ 0, got {amp!r}")
        length_nm = float(bg.get("length_nm", max(h, w) * ps / 3.0))
        field = smooth_background(
            shape, length=length_nm / ps, rng=rng, gradient=float(bg.get("gradient", 0.5))
        )
        background = (amp * float(signal.mean()) * field).astype(np.float32)
        signal = signal + background
        bg_record = {
            "amplitude": amp,
            "length_nm": length_nm,
            "gradient": float(bg.get("gradient", 0.5)),
            "definition": "max of the added field = amplitude × mean noise-free intensity",
        }
    else:
        background = None

    noise_record: dict[str, Any] = {"read_noise": opts.read_noise, "shot_noise": False}
    if opts.dose is not None or opts.counts is not None:
        lam, info = expected_counts(
            signal,
            dose=opts.dose,
            counts=opts.counts,
            pixel_size=ps,
            detector_fraction=opts.detector_fraction,
        )
        image = add_shot_noise(lam, rng)
        noise_free = lam.astype(np.float32)
        scale = info["counts_per_unit_intensity"]
        if background is not None:
            background = (background * scale).astype(np.float32)
        noise_record.update(info, shot_noise=True, units="counts (detected electrons)")
    else:
        image = signal.astype(np.float32, copy=True)
        noise_free = signal.astype(np.float32, copy=False)
        scale = 1.0
        noise_record["units"] = (
            "weight per pixel (Σ Z^n)"
            if opts.contrast == "haadf"
            else "fraction of the bright-field background"
        )
    image = add_read_noise(image, float(opts.read_noise), rng)
    fields_out["noise_free"] = noise_free
    if background is not None:
        fields_out["background"] = background

    # -- ground truth ------------------------------------------------------------------------
    inside = (
        (xy_obs[:, 0] >= 0)
        & (xy_obs[:, 0] <= w - 1)
        & (xy_obs[:, 1] >= 0)
        & (xy_obs[:, 1] <= h - 1)
    )
    idx = np.nonzero(inside)[0]
    table: dict[str, Any] = {
        "x": xy_obs[idx, 0],
        "y": xy_obs[idx, 1],
        "x_nm": xy_obs[idx, 0] * ps,
        "y_nm": xy_obs[idx, 1] * ps,
        "species": pd.Series(cols.species[idx], dtype=object),
        "weight": cols.weight[idx],
        "sublattice": cols.sublattice[idx],
        "grain": cols.grain[idx],
        "phase": cols.phase[idx],
        "site": cols.site[idx],
        "amorphous": cols.amorphous[idx],
        "n_atoms": cols.counts[idx].sum(axis=1) if cols.counts.shape[1] else np.zeros(len(idx)),
        "x_sample": cols.xy[idx, 0],
        "y_sample": cols.xy[idx, 1],
    }
    for k, v in cols.extra.items():
        table[k] = v[idx]
    frame = pd.DataFrame(table)

    params = dict(parameters)
    params.update(
        {
            "kind": kind,
            "shape": [h, w],
            "pixel_size_nm": ps,
            "imaging": opts.as_dict(),
            "probe_fwhm_nm": probe.fwhm,
            "probe_fwhm_px": probe_fwhm_px,
            "noise": noise_record,
            "background": bg_record,
            "scan_distortion": None
            if dist is None
            else {
                **dist.as_dict(),
                "jitter_rows_px": None if jitter_rows is None else jitter_rows.tolist(),
                "model": "see atomscope.simulate.distort",
            },
            "weight_units": "Σ atoms × Z^exponent (or weights); a column integrates to weight × "
            "intensity_scale in the noise-free HAADF image",
            "intensity_scale": scale,
        }
    )
    from .. import __version__

    params["atomscope_version"] = __version__
    signal_name = "HAADF (simulated)" if opts.contrast == "haadf" else "ABF (simulated)"
    meta = {
        "kind": "simulated",
        "signal": signal_name,
        "voltage": opts.voltage,
        "simulation": params,
    }
    mg = Micrograph(
        image,
        ps,
        meta,
        Source(path=None, signal=signal_name, format=source_name or "atomscope.simulate"),
    )
    return SimulationResult(mg, GroundTruth(frame, dict(masks or {}), None, fields_out, params))
