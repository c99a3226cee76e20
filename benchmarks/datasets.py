"""Deterministic (seeded) evaluation suites built with :mod:`atomscope.simulate`.

Every generator returns :class:`~atomscope.simulate.SimulationResult` objects (image + exact
ground truth) and is reproducible: the same arguments give identical images. Item ``i`` of a
suite uses the seed ``seed * 1000 + i``.

Suites
------
``dose_ladder``          one lattice (SrTiO3 [001]) across a ladder of doses
``weak_b_perovskite``    perovskite whose B (Ti–O) columns are a set fraction of the A brightness
``two_grain``            bicrystals (same structure, two orientations; straight/stepped boundary)
``two_phase``            two different structures meeting at a boundary
``amorphous_patches``    perovskite and YBCO-like crystals with 5–30 % amorphous area
``nanoparticle_frames``  1024² bright-field frames of particles on a support, with masks
``coarsening_movie``     a 50-frame movie of particles coarsening (ripening + coalescence)

``python -m benchmarks.datasets OUT_DIR [--quick]`` writes every suite to disk.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from atomscope.simulate import (
    SimulationResult,
    simulate_amorphous_patches,
    simulate_bicrystal,
    simulate_coarsening_movie,
    simulate_haadf,
    simulate_particles_frame,
)

__all__ = [
    "dose_ladder",
    "weak_b_perovskite",
    "two_grain",
    "two_phase",
    "amorphous_patches",
    "nanoparticle_frames",
    "coarsening_movie",
    "SUITES",
    "generate",
]

#: doses in e⁻/Å²; at 0.02 nm/px and detector_fraction 0.05 the brightest pixel receives
#: 2, 6, 20, 60, 200, 600 and 2000 counts
DOSES: tuple[float, ...] = (1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6)


def _seed(seed: int, i: int) -> int:
    return seed * 1000 + i


def dose_ladder(
    structure: str = "SrTiO3",
    zone: Any = (0, 0, 1),
    *,
    doses: Sequence[float] = DOSES,
    size: int = 256,
    pixel_size: float = 0.02,
    thickness: float = 10,
    seed: int = 0,
    **kwargs: Any,
) -> list[SimulationResult]:
    """One lattice at each dose (e⁻/Å²), same sub-pixel shift, independent noise."""
    return [
        simulate_haadf(
            structure,
            zone=zone,
            size=size,
            pixel_size=pixel_size,
            thickness=thickness,
            dose=d,
            shift=(0.31, -0.17),
            seed=_seed(seed, i),
            **kwargs,
        )
        for i, d in enumerate(doses)
    ]


def weak_b_perovskite(
    b_brightness: float = 0.35,
    *,
    doses: Sequence[float] = (1e4, 1e5),
    size: int = 256,
    pixel_size: float = 0.02,
    seed: int = 0,
) -> list[SimulationResult]:
    """SrTiO3 [001] whose Ti–O column weight is ``b_brightness`` × the Sr column weight
    (per-element weights: Sr 1, O (8/38)^1.7, Ti the rest)."""
    w_o = (8 / 38) ** 1.7
    if not (w_o < b_brightness):
        raise ValueError(f"b_brightness must exceed the O weight {w_o:.3f}")
    weights = {"Sr": 1.0, "Ti": b_brightness - w_o, "O": w_o}
    return [
        simulate_haadf(
            "SrTiO3",
            zone=(0, 0, 1),
            size=size,
            pixel_size=pixel_size,
            weights=weights,
            dose=d,
            shift=(0.23, 0.41),
            seed=_seed(seed, i),
        )
        for i, d in enumerate(doses)
    ]


def two_grain(
    n: int = 6,
    *,
    size: int = 512,
    pixel_size: float = 0.02,
    dose: float | None = 1e5,
    seed: int = 0,
) -> list[SimulationResult]:
    """Bicrystals: SrTiO3 [001] / Au [001] / Si [110] grains misoriented by 15–45°, straight and
    stepped boundaries at various angles."""
    specs = [("SrTiO3", (0, 0, 1)), ("Au", (0, 0, 1)), ("Si", (1, 1, 0))]
    out = []
    for i in range(n):
        s, z = specs[i % len(specs)]
        out.append(
            simulate_bicrystal(
                s,
                zone=z,
                rotation=5.0 * i,
                rotation2=5.0 * i + 15 + 10 * (i % 4),
                boundary="stepped" if i % 2 else "straight",
                boundary_angle=90 + 20 * (i % 3),
                boundary_offset=0.5 * (i % 3 - 1),
                step_height=0.8,
                step_period=3.0,
                size=size,
                pixel_size=pixel_size,
                dose=dose,
                seed=_seed(seed, i),
            )
        )
    return out


def two_phase(
    n: int = 4,
    *,
    size: int = 512,
    pixel_size: float = 0.02,
    dose: float | None = 1e5,
    seed: int = 0,
) -> list[SimulationResult]:
    """Two structures meeting at a boundary (mask 'phase' = 1 / 2)."""
    pairs = [
        (("SrTiO3", (0, 0, 1)), ("ZnO", (0, 0, 1))),
        (("Au", (1, 1, 0)), ("Si", (1, 1, 0))),
        (("GaAs", (1, 1, 0)), ("SrTiO3", (1, 1, 0))),
        (("Pt", (0, 0, 1)), ("CdTe", (1, 1, 0))),
    ]
    out = []
    for i in range(n):
        (s1, z1), (s2, z2) = pairs[i % len(pairs)]
        out.append(
            simulate_bicrystal(
                s1,
                s2,
                zone=z1,
                zone2=z2,
                rotation=7.0 * i,
                rotation2=11.0 * i,
                boundary="stepped" if i % 2 else "straight",
                boundary_angle=80 + 25 * (i % 3),
                size=size,
                pixel_size=pixel_size,
                dose=dose,
                seed=_seed(seed, i),
            )
        )
    return out


def amorphous_patches(
    fractions: Sequence[float] = (0.05, 0.1, 0.2, 0.3),
    *,
    size: int = 512,
    pixel_size: float = 0.02,
    dose: float | None = 1e5,
    seed: int = 0,
) -> list[SimulationResult]:
    """SrTiO3 [001] and YBa2Cu3O7 [100] with amorphous patches of each area fraction
    (alternating the 'random' and 'displace' amorphous models)."""
    out = []
    i = 0
    for structure, zone in (("SrTiO3", (0, 0, 1)), ("YBa2Cu3O7", (1, 0, 0))):
        for f in fractions:
            out.append(
                simulate_amorphous_patches(
                    structure,
                    zone=zone,
                    fraction=f,
                    n_patches=1 + i % 3,
                    mode="random" if i % 2 == 0 else "displace",
                    size=size,
                    pixel_size=pixel_size,
                    dose=dose,
                    seed=_seed(seed, i),
                )
            )
            i += 1
    return out


def nanoparticle_frames(
    n: int = 4, *, size: int = 1024, pixel_size: float = 0.18, seed: int = 0
) -> list[SimulationResult]:
    """Bright-field frames of 30–60 particles (median radius 2–4 nm) at 50–200 counts/px."""
    out = []
    for i in range(n):
        out.append(
            simulate_particles_frame(
                size=size,
                pixel_size=pixel_size,
                n_particles=30 + 10 * (i % 4),
                radius=(2.0 + 0.7 * (i % 3), 0.3),
                counts=(50.0, 100.0, 200.0)[i % 3],
                seed=_seed(seed, i),
            )
        )
    return out


def coarsening_movie(
    n_frames: int = 50, *, size: int = 512, pixel_size: float = 0.18, seed: int = 0
) -> SimulationResult:
    """A movie of coarsening particles (Ostwald ripening + coalescence), masks per frame."""
    return simulate_coarsening_movie(
        n_frames=n_frames, size=size, pixel_size=pixel_size, seed=_seed(seed, 0)
    )


#: name -> (full generator, quick generator)
SUITES: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
    "dose_ladder": (dose_ladder, lambda: dose_ladder(doses=DOSES[::3], size=128)),
    "weak_b_perovskite": (weak_b_perovskite, lambda: weak_b_perovskite(size=128)),
    "two_grain": (two_grain, lambda: two_grain(2, size=192)),
    "two_phase": (two_phase, lambda: two_phase(2, size=192)),
    "amorphous_patches": (amorphous_patches, lambda: amorphous_patches((0.05, 0.3), size=192)),
    "nanoparticle_frames": (nanoparticle_frames, lambda: nanoparticle_frames(1, size=256)),
    "coarsening_movie": (coarsening_movie, lambda: coarsening_movie(6, size=128)),
}


def generate(name: str, *, quick: bool = False) -> list[SimulationResult]:
    """Results of one suite (a list, also for the movie)."""
    full, fast = SUITES[name]
    res = (fast if quick else full)()
    return res if isinstance(res, list) else [res]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.datasets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("names", nargs="*", help=f"suites (default all: {list(SUITES)})")
    parser.add_argument("--quick", action="store_true", help="small versions")
    args = parser.parse_args(argv)
    for name in args.names or list(SUITES):
        for i, res in enumerate(generate(name, quick=args.quick)):
            res.save(args.out / name / f"{i:03d}")
        print(f"{name}: written to {args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
