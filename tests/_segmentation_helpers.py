"""Synthetic textures and simulated images for the segmentation tests."""

from __future__ import annotations

from functools import cache

import numpy as np


def lattice(
    shape: tuple[int, int],
    period: float,
    angles: tuple[float, ...],
    phase: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Sum of plane waves of one period along the given directions (degrees): (0, 90) is a
    square lattice (4mm), (0, 60, 120) a hexagonal one (6mm)."""
    yy, xx = np.indices(shape).astype(float)
    out = np.zeros(shape)
    for a in angles:
        k = 2 * np.pi / period * np.array([np.cos(np.deg2rad(a)), np.sin(np.deg2rad(a))])
        out += np.cos(k[0] * (xx - phase[0]) + k[1] * (yy - phase[1]))
    return out


def square_hex(
    h: int = 200,
    w: int = 263,
    boundary: int = 117,
    period: float = 9.0,
    noise: float = 0.3,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Square lattice left of column ``boundary``, hexagonal lattice right of it (all four
    descriptors separate them); odd width and an off-centre boundary so that a grid offset
    error cannot cancel. Returns image, truth (0 left, 1 right)."""
    sq = lattice((h, w), period, (0, 90))
    hx = lattice((h, w), period, (0, 60, 120))
    left = np.arange(w)[None, :] < boundary
    img = np.where(left, sq, hx) + noise * np.random.default_rng(seed).standard_normal((h, w))
    truth = np.broadcast_to(np.where(left, 0, 1), (h, w)).astype(np.int32)
    return img.astype(np.float32), truth


@cache
def bicrystal(kind: str, seed: int = 3):
    """Simulated 320² px HAADF images (0.02 nm/px, 1e5 e/Å²) with exact masks."""
    from atomscope.simulate import simulate_bicrystal

    specs = {
        # same structure, two orientations (grain boundary, straight)
        "two_grain": dict(structure="Pt", zone=(0, 0, 1), rotation=10, rotation2=35),
        # two structures with different lattices
        "two_phase": dict(structure="Pt", structure2="CdTe", zone=(0, 0, 1), zone2=(1, 1, 0)),
        # 4mm against 6mm: the rotation descriptor applies
        "square_hex": dict(structure="SrTiO3", structure2="ZnO", zone=(0, 0, 1), zone2=(0, 0, 1)),
        # stepped grain boundary
        "stepped": dict(
            structure="Au",
            zone=(0, 0, 1),
            rotation=5,
            rotation2=35,
            boundary="stepped",
            step_height=0.6,
            step_period=2.5,
        ),
    }
    return simulate_bicrystal(
        size=320, pixel_size=0.02, dose=1e5, seed=seed, boundary_offset=0.3, **specs[kind]
    )
