"""Bright-field (HRTEM-like) frames of nanoparticles on an amorphous support, and movies of
their coarsening (Ostwald ripening and coalescence), with exact masks and particle tables.

Image model (per frame, intensities relative to the bright background):
``I = B(r) · S(r) · T(r) ⊛ PSF``, then Poisson noise with ``counts`` expected electrons per
background pixel, plus Gaussian read noise. ``B`` is a smooth illumination ramp, ``S`` the
speckle of the amorphous support (band-limited noise of relative strength
``support_contrast``), ``T = exp(−κ t(r))`` the transmission of particles of projected thickness
``t`` (spheres: ``t = 2√(R² − ρ²)``), with ``κ`` set so the centre of a particle of the median
radius transmits ``1 − contrast``. Optional lattice fringes multiply ``T`` inside particles by
``1 + f cos(2π g·r + φ)`` (random orientation per particle). The PSF is a Gaussian of FWHM
``blur`` nm. The true mask of a particle is the set of pixels whose centre lies inside it.

Coarsening (per frame, explicit Euler): Ostwald ripening by the LSW law
``dR/dt = k / R · (1/R̄ − 1/R)`` (R̄ the mean radius; it conserves Σ R³), particles below
``min_radius`` dissolve; Brownian motion of step ``σ = diffusion × R_med / R``; two particles
that touch coalesce: the larger keeps its id, the pair relaxes into one sphere of the summed
volume over ``relax_frames`` frames (two lobes drawing together).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.fft

from ..errors import ParameterError
from ..image import Micrograph, Source
from .imaging import check_pixel_size, image_shape, make_rng, seed_record
from .noise import smooth_background
from .result import GroundTruth, SimulationResult

__all__ = ["simulate_particles_frame", "simulate_coarsening_movie", "Particle"]


@dataclass
class Particle:
    """A (possibly coalescing) particle: lobes of centres (px) and radii (nm)."""

    id: int
    centres: np.ndarray  # (L, 2) px
    radii: np.ndarray  # (L,) nm
    fringe_angle: float = 0.0
    fringe_phase: float = 0.0
    relax_left: int = 0
    history: list[str] = field(default_factory=list)

    @property
    def volume(self) -> float:
        return float(np.sum(self.radii**3))

    @property
    def radius(self) -> float:
        """Equivalent-volume radius, nm."""
        return self.volume ** (1.0 / 3.0)

    @property
    def centre(self) -> np.ndarray:
        v = self.radii**3
        return (self.centres * v[:, None]).sum(axis=0) / v.sum()


def _place(
    radii_px: np.ndarray, shape: tuple[int, int], gap_px: float, rng: np.random.Generator
) -> np.ndarray:
    """Random non-overlapping centres (largest first); raises if the field is too crowded."""
    h, w = shape
    order = np.argsort(-radii_px)
    pos = np.zeros((len(radii_px), 2))
    placed: list[int] = []
    for i in order:
        r = radii_px[i]
        for _ in range(2000):
            p = np.array([rng.uniform(0, w - 1), rng.uniform(0, h - 1)])
            if not placed:
                break
            d = np.hypot(*(pos[placed] - p).T)
            if np.all(d >= radii_px[placed] + r + gap_px):
                break
        else:
            raise ParameterError(
                f"cannot place {len(radii_px)} particles without overlap in a {w}x{h} px field; "
                "use fewer or smaller particles"
            )
        pos[i] = p
        placed.append(int(i))
    return pos


def _draw_radii(n: int, radius: Any, rng: np.random.Generator) -> np.ndarray:
    if isinstance(radius, tuple | list) and len(radius) == 2:
        median, sigma = float(radius[0]), float(radius[1])
        if median <= 0 or sigma < 0:
            raise ParameterError("radius=(median nm, log-sigma) needs median > 0, sigma ≥ 0")
        return median * np.exp(sigma * rng.standard_normal(n))
    r = float(radius)
    if r <= 0:
        raise ParameterError(f"radius must be positive (nm), got {radius!r}")
    return np.full(n, r)


def _check_optics(contrast: float, fringes: bool, fringe_spacing: float, ps: float) -> None:
    # Checked before particles are placed, so that a bad parameter is reported as such and not
    # hidden behind a placement failure that depends on the random draw.
    if not (0 < contrast < 1):
        raise ParameterError(f"contrast must be in (0, 1), got {contrast!r}")
    if fringes and fringe_spacing < 2.5 * ps:
        raise ParameterError(
            f"lattice fringes of {fringe_spacing} nm cannot be shown at {ps} nm/px "
            f"(need ≥ 2.5 px per period); use a smaller pixel_size or fringes=False"
        )


class _Renderer:
    """Renders frames of one field: static support and illumination, particles per frame."""

    def __init__(
        self,
        shape: tuple[int, int],
        ps: float,
        *,
        contrast: float,
        median_radius: float,
        support_contrast: float,
        support_length: float,
        illumination: float,
        fringes: bool,
        fringe_spacing: float,
        fringe_contrast: float,
        blur: float,
        rng: np.random.Generator,
    ) -> None:
        h, w = shape
        self.shape, self.ps = shape, ps
        self.kappa = -math.log(1.0 - contrast) / (2.0 * median_radius)  # per nm of thickness
        white = rng.standard_normal(shape)
        sig = max(support_length / ps / 2.0, 0.3)
        fy = np.fft.fftfreq(h)[:, None]
        fx = np.fft.rfftfreq(w)[None, :]
        speck = scipy.fft.irfft2(
            scipy.fft.rfft2(white) * np.exp(-2 * np.pi**2 * sig**2 * (fx**2 + fy**2)), s=shape
        )
        speck = (speck - speck.mean()) / (speck.std() + 1e-30)
        self.support = (1.0 + support_contrast * speck).astype(np.float32)
        ill = smooth_background(shape, length=max(h, w) / 2.0, rng=rng, gradient=1.0)
        self.illumination = (1.0 + illumination * (ill - 0.5)).astype(np.float32)
        self.fringes = fringes
        self.fringe_spacing = fringe_spacing
        self.fringe_contrast = fringe_contrast
        sb = blur / 2.3548 / ps
        self.blur_env = np.exp(-2 * np.pi**2 * sb**2 * (fx**2 + fy**2)).astype(np.float32)

    def render(self, particles: list[Particle]) -> tuple[np.ndarray, np.ndarray]:
        """(noise-free intensity, uint16 instance mask) of one frame."""
        h, w = self.shape
        ps = self.ps
        thick = np.zeros(self.shape, np.float32)
        labels = np.zeros(self.shape, np.uint16)
        fringe = np.ones(self.shape, np.float32) if self.fringes else None
        for p in particles:
            rpx = p.radii / ps
            lo = np.floor((p.centres - rpx[:, None]).min(axis=0)).astype(int)
            hi = np.ceil((p.centres + rpx[:, None]).max(axis=0)).astype(int)
            x0, y0 = max(lo[0], 0), max(lo[1], 0)
            x1, y1 = min(hi[0], w - 1), min(hi[1], h - 1)
            if x1 < x0 or y1 < y0:
                continue
            yy, xx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1].astype(np.float64)
            t = np.zeros(xx.shape)
            for (cx, cy), r in zip(p.centres, rpx, strict=True):
                d2 = (xx - cx) ** 2 + (yy - cy) ** 2
                t = np.maximum(t, 2.0 * np.sqrt(np.maximum(r * r - d2, 0.0)) * ps)
            inside = t > 0
            win = thick[y0 : y1 + 1, x0 : x1 + 1]
            lab = labels[y0 : y1 + 1, x0 : x1 + 1]
            take = inside & (t > win)
            win[take] = t[take]
            lab[take] = p.id
            if fringe is not None:
                g = 2 * np.pi / (self.fringe_spacing / ps)
                c, s = math.cos(p.fringe_angle), math.sin(p.fringe_angle)
                f = 1.0 + self.fringe_contrast * np.cos(g * (c * xx + s * yy) + p.fringe_phase)
                fw = fringe[y0 : y1 + 1, x0 : x1 + 1]
                fw[take] = f[take]
        trans = np.exp(-self.kappa * thick)
        if fringe is not None:
            trans = trans * fringe
        img = self.support * trans
        img = scipy.fft.irfft2(scipy.fft.rfft2(img) * self.blur_env, s=self.shape)
        img = img * self.illumination
        return np.clip(img, 0, None).astype(np.float32), labels


def _noise(
    clean: np.ndarray, counts: float | None, read_noise: float, rng: np.random.Generator
) -> np.ndarray:
    if counts is None:
        out = clean.copy()
    else:
        out = rng.poisson(np.clip(clean, 0, None) * counts).astype(np.float32)
    if read_noise:
        out = out + rng.normal(0, read_noise, clean.shape).astype(np.float32)
    return out.astype(np.float32)


def _table(particles: list[Particle], labels: np.ndarray, frame: int, ps: float) -> pd.DataFrame:
    areas = np.bincount(labels.ravel(), minlength=max([p.id for p in particles], default=0) + 1)
    rows = []
    for p in particles:
        c = p.centre
        rows.append(
            {
                "frame": frame,
                "id": p.id,
                "x": c[0],
                "y": c[1],
                "x_nm": c[0] * ps,
                "y_nm": c[1] * ps,
                "radius": p.radius / ps,
                "radius_nm": p.radius,
                "area": int(areas[p.id]) if p.id < len(areas) else 0,
                "area_nm2": float(areas[p.id] if p.id < len(areas) else 0) * ps * ps,
                "n_lobes": len(p.radii),
                "coalescing": p.relax_left > 0,
            }
        )
    cols = [
        "frame",
        "id",
        "x",
        "y",
        "x_nm",
        "y_nm",
        "radius",
        "radius_nm",
        "area",
        "area_nm2",
        "n_lobes",
        "coalescing",
    ]
    return pd.DataFrame(rows, columns=cols)


def _init_particles(
    n: int, radius: Any, shape: tuple[int, int], ps: float, gap: float, rng: np.random.Generator
) -> list[Particle]:
    if n < 0:
        raise ParameterError("n_particles must be ≥ 0")
    radii = _draw_radii(n, radius, rng)
    pos = _place(radii / ps, shape, gap / ps, rng)
    return [
        Particle(
            i + 1,
            pos[i][None, :].copy(),
            np.array([radii[i]]),
            rng.uniform(0, np.pi),
            rng.uniform(0, 2 * np.pi),
        )
        for i in range(n)
    ]


def _frame_params(**kw: Any) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}


def simulate_particles_frame(
    *,
    size: int | tuple[int, int] = 1024,
    pixel_size: float = 0.18,
    n_particles: int = 40,
    radius: float | tuple[float, float] = (3.0, 0.35),
    min_gap: float = 1.0,
    contrast: float = 0.5,
    support_contrast: float = 0.08,
    support_length: float = 0.5,
    illumination: float = 0.1,
    fringes: bool = False,
    fringe_spacing: float = 0.235,
    fringe_contrast: float = 0.15,
    blur: float = 0.5,
    counts: float | None = 100.0,
    read_noise: float = 0.0,
    seed: int | np.random.Generator | None = None,
) -> SimulationResult:
    """One bright-field frame of nanoparticles (dark) on an amorphous support (bright, noisy).

    Parameters
    ----------
    size : int or (int, int)
        Frame size, px.
    pixel_size : float
        nm per pixel (0.18 nm as in the in-situ data sets of the particle-segmentation paper).
    n_particles : int
        Number of particles (non-overlapping, centres inside the frame).
    radius : float or (float, float)
        Radius in nm, or (median nm, log-normal σ).
    min_gap : float
        Minimum surface-to-surface distance between particles, nm.
    contrast : float
        1 − transmission at the centre of a particle of the median radius.
    support_contrast, support_length : float
        Relative strength and correlation length (nm) of the support speckle.
    illumination : float
        Peak-to-peak relative variation of the illumination across the field.
    fringes : bool
        Add lattice fringes of ``fringe_spacing`` nm and ``fringe_contrast`` inside particles.
    blur : float
        FWHM of the Gaussian point-spread function, nm.
    counts : float or None
        Expected electrons per pixel on the bright background (Poisson noise); None: no noise.
    read_noise : float
        Gaussian σ in counts.
    seed : int or Generator, optional

    Returns
    -------
    SimulationResult
        ``truth.masks['particle']`` (uint16 instance ids, 0 = support), ``truth.particles``
        (frame, id, x, y, x_nm, y_nm, radius, radius_nm, area (px), area_nm2, n_lobes,
        coalescing); ``truth.fields['noise_free']``.
    """
    shape = image_shape(size)
    ps = check_pixel_size(pixel_size)
    rng = make_rng(seed)
    radii_median = radius[0] if isinstance(radius, tuple | list) else float(radius)
    _check_optics(contrast, fringes, fringe_spacing, ps)
    parts = _init_particles(n_particles, radius, shape, ps, min_gap, rng)
    ren = _Renderer(
        shape,
        ps,
        contrast=contrast,
        median_radius=radii_median,
        support_contrast=support_contrast,
        support_length=support_length,
        illumination=illumination,
        fringes=fringes,
        fringe_spacing=fringe_spacing,
        fringe_contrast=fringe_contrast,
        blur=blur,
        rng=rng,
    )
    clean, labels = ren.render(parts)
    scale = 1.0 if counts is None else float(counts)
    image = _noise(clean, counts, read_noise, rng)
    table = _table(parts, labels, 0, ps)
    params = _frame_params(
        kind="particles-bf",
        size=list(shape),
        pixel_size_nm=ps,
        n_particles=n_particles,
        radius=radius,
        min_gap_nm=min_gap,
        contrast=contrast,
        support_contrast=support_contrast,
        support_length_nm=support_length,
        illumination=illumination,
        fringes=fringes,
        fringe_spacing_nm=fringe_spacing,
        fringe_contrast=fringe_contrast,
        blur_fwhm_nm=blur,
        counts_per_background_pixel=counts,
        read_noise=read_noise,
        seed=seed_record(seed),
        model="see atomscope.simulate.particles",
    )
    meta = {"kind": "simulated", "signal": "BF (simulated)", "simulation": params}
    mg = Micrograph(image, ps, meta, Source(signal="BF (simulated)", format="atomscope.simulate"))
    truth = GroundTruth(
        pd.DataFrame(),
        {"particle": labels},
        table,
        {"noise_free": (clean * scale).astype(np.float32)},
        params,
    )
    return SimulationResult(mg, truth)


def _first_touching_pair(parts: list[Particle], ps: float) -> tuple[int, int] | None:
    """Indices (i, j) of two particles whose lobes touch, or None (KD-tree on lobe centres)."""
    from scipy.spatial import cKDTree

    if len(parts) < 2:
        return None
    owner = np.concatenate([np.full(len(p.radii), i) for i, p in enumerate(parts)])
    centres = np.vstack([p.centres for p in parts]) * ps
    radii = np.concatenate([p.radii for p in parts])
    pairs = cKDTree(centres).query_pairs(2.0 * float(radii.max()), output_type="ndarray")
    if len(pairs) == 0:
        return None
    a, b = pairs[:, 0], pairs[:, 1]
    d = np.linalg.norm(centres[a] - centres[b], axis=1)
    hit = (owner[a] != owner[b]) & (d <= radii[a] + radii[b])
    if not hit.any():
        return None
    k = int(np.argmax(hit))
    i, j = sorted((int(owner[a[k]]), int(owner[b[k]])))
    return i, j


def simulate_coarsening_movie(
    *,
    n_frames: int = 50,
    size: int | tuple[int, int] = 512,
    pixel_size: float = 0.18,
    n_particles: int | None = None,
    radius: float | tuple[float, float] = (2.0, 0.4),
    min_gap: float = 0.3,
    coarsening: float = 1.0,
    min_radius: float = 0.5,
    diffusion: float = 0.2,
    relax_frames: int = 6,
    frame_interval: float = 0.1,
    contrast: float = 0.5,
    support_contrast: float = 0.08,
    support_length: float = 0.5,
    illumination: float = 0.1,
    blur: float = 0.5,
    counts: float | None = 100.0,
    read_noise: float = 0.0,
    seed: int | np.random.Generator | None = None,
) -> SimulationResult:
    """A movie of nanoparticles coarsening on a support: small ones shrink and dissolve, large
    ones grow (Ostwald ripening), some touch and coalesce.

    Parameters
    ----------
    n_frames : int
        Number of frames.
    n_particles : int, optional
        Initial number of particles; default the density of 90 per 92 × 92 nm² (512² px at
        0.18 nm/px), scaled to the field.
    coarsening : float
        Ripening rate: the LSW constant is ``k = coarsening × R̄₀³ / n_frames`` (nm³/frame), so
        R̄³ grows by roughly ``(4/9) coarsening R̄₀³`` over the movie.
    min_radius : float
        Particles smaller than this (nm) dissolve.
    diffusion : float
        Brownian step σ (nm per frame) of a particle of the median radius (∝ 1/R).
    relax_frames : int
        Frames for two coalescing particles to become one sphere.
    frame_interval : float
        Seconds between frames (metadata only).
    Other parameters
        As in :func:`simulate_particles_frame` (the support and illumination are static; noise
        is independent in each frame).

    Returns
    -------
    SimulationResult
        ``image``: (T, H, W) Micrograph; ``truth.masks['particle']``: (T, H, W) uint16 ids
        (stable across frames); ``truth.particles``: one row per particle per frame;
        ``truth.parameters['events']``: dissolutions and coalescences with their frames.
    """
    if n_frames < 1:
        raise ParameterError("n_frames must be ≥ 1")
    shape = image_shape(size)
    ps = check_pixel_size(pixel_size)
    rng = make_rng(seed)
    median = radius[0] if isinstance(radius, tuple | list) else float(radius)
    if n_particles is None:
        n_particles = max(1, int(round(90 * shape[0] * shape[1] * ps * ps / (512 * 0.18) ** 2)))
    _check_optics(contrast, False, 1.0, ps)
    parts = _init_particles(n_particles, radius, shape, ps, min_gap, rng)
    ren = _Renderer(
        shape,
        ps,
        contrast=contrast,
        median_radius=median,
        support_contrast=support_contrast,
        support_length=support_length,
        illumination=illumination,
        fringes=False,
        fringe_spacing=1.0,
        fringe_contrast=0.0,
        blur=blur,
        rng=rng,
    )
    r0 = np.array([p.radius for p in parts])
    k = coarsening * float(np.mean(r0) ** 3) / n_frames if len(parts) else 0.0
    h, w = shape
    frames = np.zeros((n_frames, h, w), np.float32)
    clean_stack = np.zeros((n_frames, h, w), np.float32)
    masks = np.zeros((n_frames, h, w), np.uint16)
    tables = []
    events: list[dict[str, Any]] = []
    substeps = 10
    total_volume = float(np.sum(r0**3))
    for f in range(n_frames):
        if f > 0 and parts:
            # --- Ostwald ripening (LSW), volume-conserving --------------------------------
            R = np.array([p.radius for p in parts])
            alive = np.ones(len(parts), bool)
            for _ in range(substeps):
                idx = np.nonzero(alive)[0]
                if len(idx) == 0:
                    break
                Ra = R[idx]
                Ra = np.maximum(Ra + (k / substeps) / Ra * (1.0 / Ra.mean() - 1.0 / Ra), 0.0)
                gone = Ra < min_radius
                alive[idx[gone]] = False
                keep = idx[~gone]
                if len(keep):
                    R[keep] = Ra[~gone] * (total_volume / np.sum(Ra[~gone] ** 3)) ** (1 / 3)
            for p, ok in zip(parts, alive, strict=True):
                if not ok:
                    events.append({"frame": f, "event": "dissolved", "id": p.id})
            for p, ok, rnew in zip(parts, alive, R, strict=True):
                if ok:
                    p.radii = p.radii * (rnew / p.radius)
            parts = [p for p, ok in zip(parts, alive, strict=True) if ok]
            # --- Brownian motion and relaxation of coalescing pairs -------------------------
            for p in parts:
                step = rng.normal(0.0, diffusion * median / max(p.radius, 1e-3), 2) / ps
                p.centres = p.centres + step
                if p.relax_left > 0:
                    c = p.centre
                    p.relax_left -= 1
                    if p.relax_left == 0:
                        p.centres = c[None, :]
                        p.radii = np.array([p.radius])
                    else:
                        p.centres = c + (p.centres - c) * (p.relax_left / (p.relax_left + 1))
            # keep centres inside the field
            for p in parts:
                c = p.centre
                p.centres = p.centres + (np.clip(c, [0, 0], [w - 1, h - 1]) - c)
            # --- coalescence -------------------------------------------------------------
            while (pair := _first_touching_pair(parts, ps)) is not None:
                a, b = parts[pair[0]], parts[pair[1]]
                big, small = (a, b) if a.radius >= b.radius else (b, a)
                big.centres = np.vstack([big.centres, small.centres])
                big.radii = np.concatenate([big.radii, small.radii])
                big.relax_left = max(relax_frames, 1)
                events.append({"frame": f, "event": "coalescence", "id": small.id, "into": big.id})
                parts = [p for p in parts if p is not small]
        clean, labels = ren.render(parts)
        clean_stack[f] = clean * (1.0 if counts is None else counts)
        frames[f] = _noise(clean, counts, read_noise, rng)
        masks[f] = labels
        tables.append(_table(parts, labels, f, ps))
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    params = _frame_params(
        kind="coarsening-movie",
        n_frames=n_frames,
        size=list(shape),
        pixel_size_nm=ps,
        n_particles=n_particles,
        radius=radius,
        min_gap_nm=min_gap,
        coarsening=coarsening,
        lsw_k_nm3_per_frame=k,
        min_radius_nm=min_radius,
        diffusion_nm=diffusion,
        relax_frames=relax_frames,
        frame_interval_s=frame_interval,
        contrast=contrast,
        support_contrast=support_contrast,
        support_length_nm=support_length,
        illumination=illumination,
        blur_fwhm_nm=blur,
        counts_per_background_pixel=counts,
        read_noise=read_noise,
        seed=seed_record(seed),
        events=events,
        model="see atomscope.simulate.particles",
    )
    meta = {
        "kind": "simulated",
        "signal": "BF (simulated)",
        "frame_interval_s": frame_interval,
        "simulation": params,
    }
    mg = Micrograph(frames, ps, meta, Source(signal="BF (simulated)", format="atomscope.simulate"))
    truth = GroundTruth(
        pd.DataFrame(), {"particle": masks}, table, {"noise_free": clean_stack}, params
    )
    return SimulationResult(mg, truth)
