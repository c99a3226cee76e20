"""Descriptor settings and the orchestration that computes them on one common grid.

Four descriptors (paper Sec. II A, plus the baseline):

``translation``     local correlation map: Pearson correlation of the patch with its shifted
                    copy for ``n_shifts`` shifts on a uniform grid in ±``window`` px
``rotation``        Pearson correlation of the circular patch (radius ``patch // 2``) with its
                    copy rotated by 180°, 120°, 90°, 60° (2-, 3-, 4-, 6-fold), top-k pooled
``reflection``      the same for ``n_mirrors`` mirror lines (180°/n_mirrors apart), top-k pooled
``power_spectrum``  log normalised power spectrum of the Hann-windowed patch

Descriptors can be combined (``descriptor=["translation", "reflection"]``): all are evaluated
at the same centres and each block is scaled to unit total variance before PCA, so none
dominates by its number of channels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import ParameterError
from .grid import Grid, make_grid, normalise
from .polar import PolarGeometry, polar_scores
from .pooling import kept_ranks, top_k_pool
from .power_spectrum import power_spectrum_features
from .translation import translation_features

__all__ = [
    "DESCRIPTORS",
    "DescriptorSettings",
    "parse_descriptors",
    "compute_features",
    "FeatureSet",
]

DESCRIPTORS = ("translation", "rotation", "reflection", "power_spectrum")
#: pooled values kept per channel when top_k is automatic (evenly spaced ranks of the upper half)
POOL_VALUES = 16
_ALIASES = {
    "translation": "translation",
    "translations": "translation",
    "local_correlation_map": "translation",
    "correlation": "translation",
    "rotation": "rotation",
    "rotational": "rotation",
    "rotational_symmetry": "rotation",
    "reflection": "reflection",
    "mirror": "reflection",
    "reflection_symmetry": "reflection",
    "power_spectrum": "power_spectrum",
    "power-spectrum": "power_spectrum",
    "powerspectrum": "power_spectrum",
    "fft": "power_spectrum",
    "power": "power_spectrum",
}


def parse_descriptors(descriptor: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Canonical names, in the order given; "a,b" strings are split."""
    items = descriptor.split(",") if isinstance(descriptor, str) else list(descriptor)
    out: list[str] = []
    for item in items:
        key = str(item).strip().lower().replace(" ", "_")
        if not key:
            continue
        if key not in _ALIASES:
            raise ParameterError(
                f"Unknown descriptor {item!r}; choose from {', '.join(DESCRIPTORS)} "
                "(or a list of them)"
            )
        if _ALIASES[key] not in out:
            out.append(_ALIASES[key])
    if not out:
        raise ParameterError("descriptor is empty; choose from " + ", ".join(DESCRIPTORS))
    return tuple(out)


@dataclass(frozen=True)
class DescriptorSettings:
    """Everything that defines the features (stored in a fitted model, so that frames of a
    movie get identical features).

    Attributes
    ----------
    descriptors : tuple of str
    stride : int
        Grid spacing of the centres, px.
    patch : int
        Side of the square patch (translation, power spectrum) and diameter of the circular
        patch (rotation, reflection; radius ``patch // 2``), px, odd.
    window : int
        Largest translation (translation) and half-width of the max-pooling window (rotation,
        reflection), px.
    n_shifts : int
        Number of translations (uniform sub-grid of the ±window square).
    n_radii, n_angles : int
        Polar grid of the circular patch.
    rotations : tuple of float
        Rotation angles, degrees.
    n_mirrors : int
        Number of mirror lines, 180°/n_mirrors apart starting along +x.
    top_k : int or None
        Values kept per channel by the max-pooling. None: the upper half of the window's
        values, summarised by ``POOL_VALUES`` evenly spaced ranks (see :attr:`pool_k`).
    score_step : int or None
        Spacing of the centres at which rotation and reflection scores are computed before
        pooling, px. None: ``ceil(stride / 2)``. pySTEM scores at the stride itself; when the
        stride is nearly commensurate with the lattice (4 × 5 px ≈ 19.5 px for SrTiO3) the
        samples then miss the symmetry centres over whole regions and the pooled scores show a
        moiré that k-means happily segments.
    normalize : {'local', 'global'}
        'local': the image is normalised to zero local mean and unit local variance
        (triangular weights of half-width ``window`` px) before the descriptors (see
        :func:`grid.normalise`);
        'global': zero mean, unit variance over the whole image (pySTEM's behaviour).
    antialias : float
        Before the rotation and reflection scores, the image is smoothed with a Gaussian of
        σ = ``antialias`` × score spacing px. The scores peak within 1–2 px of the symmetry
        centres; sampled every few px they alias against the lattice (the pooled maximum then
        depends on where the grid falls), and the smoothing widens the peaks towards the
        sampling step. 0 turns it off (pySTEM).
    """

    descriptors: tuple[str, ...] = ("translation",)
    stride: int = 5
    patch: int = 41
    window: int = 21
    n_shifts: int = 100
    n_radii: int = 20
    n_angles: int = 60
    rotations: tuple[float, ...] = (180.0, 120.0, 90.0, 60.0)
    n_mirrors: int = 10
    top_k: int | None = None
    normalize: str = "local"
    antialias: float = 0.35
    score_step: int | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.stride >= 1, f"stride must be ≥ 1 px, got {self.stride}"),
            (self.patch >= 3, f"patch must be ≥ 3 px, got {self.patch}"),
            (self.window >= 1, f"window must be ≥ 1 px, got {self.window}"),
            (self.n_shifts >= 4, f"n_shifts must be ≥ 4, got {self.n_shifts}"),
            (self.n_radii >= 1 and self.n_angles >= 4, "n_radii ≥ 1 and n_angles ≥ 4 needed"),
            (self.n_mirrors >= 1, f"n_mirrors must be ≥ 1, got {self.n_mirrors}"),
            (self.top_k is None or self.top_k >= 1, f"top_k must be ≥ 1, got {self.top_k}"),
            (
                self.score_step is None or self.score_step >= 1,
                f"score_step must be ≥ 1 px, got {self.score_step}",
            ),
            (len(self.rotations) >= 1, "rotations must name at least one angle"),
            (self.antialias >= 0, f"antialias must be ≥ 0, got {self.antialias}"),
            (
                self.normalize in ("local", "global"),
                f"normalize must be 'local' or 'global', got {self.normalize!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ParameterError(message)
        if self.patch % 2 == 0:
            object.__setattr__(self, "patch", self.patch + 1)

    @property
    def half_patch(self) -> int:
        return self.patch // 2

    @property
    def score_spacing(self) -> int:
        """Spacing of the rotation/reflection score centres, px."""
        return int(self.score_step) if self.score_step else max(1, -(-self.stride // 2))

    @property
    def pool_half(self) -> int:
        """Half-width of the pooling window in score centres (window // score spacing)."""
        return self.window // self.score_spacing

    @property
    def pool_k(self) -> int:
        """Values ranked per channel: ``top_k``, or the upper half of the (2h+1)² window when
        ``top_k`` is None. Ranking the upper half rather than the top few makes a window that
        straddles a boundary follow the majority of its area, not whichever grain scores higher
        (with pySTEM's top 10 of 81 the higher-scoring grain bleeds up to ~0.7 window widths into
        its neighbour)."""
        n = (2 * self.pool_half + 1) ** 2
        k = (n + 1) // 2 if self.top_k is None else self.top_k
        return int(min(k, n))

    @property
    def pool_keep(self) -> int | None:
        """Pooled values kept per channel: ``POOL_VALUES`` evenly spaced ranks of the upper half
        (top_k None), or all ``top_k``."""
        return POOL_VALUES if self.top_k is None else None

    @property
    def mirrors(self) -> tuple[float, ...]:
        return tuple(180.0 * i / self.n_mirrors for i in range(self.n_mirrors))

    @property
    def normalize_sigma(self) -> float | None:
        """σ (px) of the local normalisation, None for global."""
        return float(self.window) if self.normalize == "local" else None

    def geometry(self) -> PolarGeometry:
        return PolarGeometry(float(self.half_patch), self.n_radii, self.n_angles)

    def margin(self, name: str) -> int:
        """Pixels needed between an output centre and the image edge."""
        if name == "translation":
            return self.half_patch + self.window
        if name in ("rotation", "reflection"):
            return self.geometry().margin + (self.pool_half + 1) * self.score_spacing
        return self.half_patch

    def grid(self, shape: tuple[int, int]) -> Grid:
        return make_grid(shape, max(self.margin(d) for d in self.descriptors), self.stride)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["descriptors"] = list(self.descriptors)
        d["rotations"] = list(self.rotations)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DescriptorSettings:
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d["descriptors"] = tuple(d["descriptors"])
        d["rotations"] = tuple(float(v) for v in d["rotations"])
        return cls(**d)


@dataclass
class FeatureSet:
    """Features at the grid centres, one block per descriptor."""

    grid: Grid
    blocks: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (ny, nx, C)
    names: dict[str, list[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    blank: bool = False  # the normalised image is zero everywhere

    def matrix(self) -> np.ndarray:
        """(ny·nx, F) float32, blocks in descriptor order."""
        mats = [b.reshape(self.grid.size, -1) for b in self.blocks.values()]
        return np.ascontiguousarray(np.concatenate(mats, axis=1), dtype=np.float32)

    def block_slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for name, b in self.blocks.items():
            out[name] = slice(start, start + b.shape[-1])
            start += b.shape[-1]
        return out

    def feature_names(self) -> list[str]:
        return [n for name in self.blocks for n in self.names[name]]


def compute_features(
    data: np.ndarray, settings: DescriptorSettings, *, device: Any = None, n_threads: int = 1
) -> FeatureSet:
    """Normalise *data* (H, W) as *settings* say, then evaluate every descriptor on it
    (numpy on ``n_threads`` threads, or torch on ``device``)."""
    import time

    t0 = time.perf_counter()
    x = normalise(data, settings.normalize_sigma)
    grid = settings.grid(x.shape)
    fs = FeatureSet(grid, blank=not np.any(x))
    fs.timings["normalise"] = time.perf_counter() - t0
    polar = [d for d in settings.descriptors if d in ("rotation", "reflection")]
    pooled: dict[str, np.ndarray] = {}
    if polar:
        t0 = time.perf_counter()
        h, ss = settings.pool_half, settings.score_spacing
        xs = x
        if settings.antialias > 0:
            from scipy import ndimage

            xs = ndimage.gaussian_filter(x, settings.antialias * ss, mode="reflect")
        # score centres every ss px, h beyond the output grid on every side; the pooling window
        # of output centre j starts at round(j · stride / ss), so it is centred within ss/2 px
        ry = np.rint((grid.ys - grid.ys[0]) / ss).astype(np.int64)
        rx = np.rint((grid.xs - grid.xs[0]) / ss).astype(np.int64)
        sgrid = Grid(
            grid.ys[0] + ss * (np.arange(ry[-1] + 2 * h + 1) - h),
            grid.xs[0] + ss * (np.arange(rx[-1] + 2 * h + 1) - h),
            ss,
            grid.shape,
        )
        rot, ref = polar_scores(
            xs,
            sgrid,
            settings.geometry(),
            rotations=settings.rotations if "rotation" in polar else (),
            mirrors=settings.mirrors if "reflection" in polar else (),
            device=device,
            n_threads=n_threads,
        )
        kw = dict(rows=ry, cols=rx, n_keep=settings.pool_keep, device=device, n_threads=n_threads)
        if "rotation" in polar:
            pooled["rotation"] = top_k_pool(rot, h, settings.pool_k, **kw)
        if "reflection" in polar:
            pooled["reflection"] = top_k_pool(ref, h, settings.pool_k, **kw)
        dt = (time.perf_counter() - t0) / len(polar)
        for d in polar:
            fs.timings[d] = dt
    for name in settings.descriptors:
        t0 = time.perf_counter()
        if name == "translation":
            f, names, _ = translation_features(
                x,
                grid,
                patch=settings.patch,
                window=settings.window,
                n_shifts=settings.n_shifts,
                device=device,
                n_threads=n_threads,
            )
        elif name == "power_spectrum":
            f, names = power_spectrum_features(
                x, grid, patch=settings.patch, device=device, n_threads=n_threads
            )
        elif name == "rotation":
            f = pooled["rotation"]
            ranks = kept_ranks(settings.pool_k, settings.pool_keep)
            names = [f"rotation {_fold(a)} rank{j + 1}" for a in settings.rotations for j in ranks]
        else:
            f = pooled["reflection"]
            ranks = kept_ranks(settings.pool_k, settings.pool_keep)
            names = [f"mirror {a:g}° rank{j + 1}" for a in settings.mirrors for j in ranks]
        fs.blocks[name] = f
        fs.names[name] = names
        if name not in fs.timings:
            fs.timings[name] = time.perf_counter() - t0
    return fs


def _fold(angle: float) -> str:
    n = 360.0 / angle if angle else 0.0
    return f"{int(round(n))}-fold" if n and abs(n - round(n)) < 1e-6 else f"{angle:g}°"
