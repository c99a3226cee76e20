"""The image container shared by every analysis: :class:`Micrograph`.

Conventions (see ``docs/architecture.md``): data are float32, shape (H, W) for one image or
(T, H, W) for a stack or movie; ``pixel_size`` is (row, col) in nm, or None when uncalibrated;
pixel (r, c) has its centre at x = c, y = r.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import CalibrationError, InvalidImageError

__all__ = ["Micrograph", "Source", "as_micrograph", "normalise_pixel_size", "check_finite"]


@dataclass(frozen=True)
class Source:
    """Where an image came from."""

    path: str | None = None
    frame: int | None = None
    signal: str | None = None
    format: str | None = None

    def describe(self) -> str:
        parts = [self.path or "<array>"]
        if self.signal:
            parts.append(f"signal {self.signal!r}")
        if self.frame is not None:
            parts.append(f"frame {self.frame}")
        return ", ".join(parts)


def normalise_pixel_size(pixel_size: Any) -> tuple[float, float] | None:
    """Turn a scalar or a (row, col) pair in nm into a validated (row, col) tuple.

    Raises
    ------
    CalibrationError
        If a value is not a positive finite number.
    """
    if pixel_size is None:
        return None
    if isinstance(pixel_size, int | float | np.floating | np.integer):
        values = (float(pixel_size), float(pixel_size))
    else:
        try:
            values = tuple(float(v) for v in pixel_size)
        except (TypeError, ValueError) as exc:
            raise CalibrationError(
                f"pixel_size must be a number or a (row, col) pair in nm, got {pixel_size!r}"
            ) from exc
        if len(values) == 1:
            values = (values[0], values[0])
        if len(values) != 2:
            raise CalibrationError(
                f"pixel_size must be a number or a (row, col) pair in nm, got {len(values)} values"
            )
    for v in values:
        if not (math.isfinite(v) and v > 0):
            raise CalibrationError(f"pixel_size must be positive and finite (nm), got {values}")
    return values  # type: ignore[return-value]


def check_finite(data: np.ndarray, what: str = "image") -> None:
    """Raise :class:`InvalidImageError` naming how many values are NaN or infinite."""
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        n_nan = int(np.isnan(data).sum())
        n_inf = int(np.isinf(data).sum())
        parts = []
        if n_nan:
            parts.append(f"{n_nan} NaN")
        if n_inf:
            parts.append(f"{n_inf} infinite")
        raise InvalidImageError(
            f"The {what} contains {' and '.join(parts)} value(s) out of {data.size}. "
            "Replace them (e.g. load(..., nonfinite='fill')) or crop them away first."
        )


@dataclass(eq=False)
class Micrograph:
    """An image or image stack with its calibration.

    Parameters
    ----------
    data : ndarray
        Intensities, converted to float32, shape (H, W) or (T, H, W).
    pixel_size : float or (float, float) or None
        Pixel size in nm, (row, col); a scalar means square pixels. None when the file holds no
        calibration.
    metadata : dict
        Whatever the file holds (microscope, voltage, magnification, date, signal name …).
    source : Source
        File path, frame and signal the data came from.
    """

    data: np.ndarray
    pixel_size: tuple[float, float] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: Source = field(default_factory=Source)

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.dtype.kind not in "biuf":
            raise InvalidImageError(
                f"Image data must be real numbers, got dtype {data.dtype}"
                + (" (complex: take .real, .imag or abs() first)" if data.dtype.kind == "c" else "")
            )
        if data.ndim not in (2, 3):
            raise InvalidImageError(
                f"An image must be 2-D (H, W) or a 3-D stack (T, H, W); got {data.ndim}-D data "
                f"of shape {data.shape}."
            )
        if data.size == 0:
            raise InvalidImageError(f"The image is empty (shape {data.shape}).")
        if data.dtype != np.float32:
            data = data.astype(np.float32)
        check_finite(data)
        self.data = data
        self.pixel_size = normalise_pixel_size(self.pixel_size)
        self.metadata = dict(self.metadata)

    # -- shape -----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def is_stack(self) -> bool:
        """True for (T, H, W) data."""
        return self.data.ndim == 3

    @property
    def n_frames(self) -> int:
        return self.data.shape[0] if self.is_stack else 1

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W) of one frame."""
        return self.data.shape[-2:]  # type: ignore[return-value]

    def frame(self, index: int) -> Micrograph:
        """One frame of a stack as a 2-D Micrograph (a 2-D image is its own frame 0)."""
        if not self.is_stack:
            if index not in (0, -1):
                raise IndexError(f"frame {index} requested from a single image")
            return self
        n = self.n_frames
        if not -n <= index < n:
            raise IndexError(f"frame {index} out of range for a stack of {n} frames")
        index %= n
        return replace(self, data=self.data[index], source=replace(self.source, frame=index))

    def frames(self) -> Iterator[Micrograph]:
        """Iterate over 2-D frames (a single image yields itself)."""
        for i in range(self.n_frames):
            yield self.frame(i)

    # -- calibration -----------------------------------------------------------------------
    @property
    def calibrated(self) -> bool:
        return self.pixel_size is not None

    @property
    def is_isotropic(self) -> bool:
        if self.pixel_size is None:
            return True
        r, c = self.pixel_size
        return math.isclose(r, c, rel_tol=1e-3)

    def require_pixel_size(self, purpose: str = "this analysis") -> tuple[float, float]:
        """The (row, col) pixel size in nm, or a :class:`CalibrationError` naming *purpose*."""
        if self.pixel_size is None:
            where = self.source.describe()
            raise CalibrationError(
                f"{purpose} needs a pixel size, but {where} has no calibration. "
                "Give one with pixel_size=<nm per pixel> (CLI: --pixel-size 0.02nm)."
            )
        return self.pixel_size

    @property
    def pixel_size_nm(self) -> float | None:
        """Mean pixel size in nm (geometric mean of row and column), or None."""
        if self.pixel_size is None:
            return None
        return math.sqrt(self.pixel_size[0] * self.pixel_size[1])

    @property
    def field_of_view_nm(self) -> tuple[float, float] | None:
        """(height, width) of one frame in nm, or None when uncalibrated."""
        if self.pixel_size is None:
            return None
        h, w = self.image_shape
        return h * self.pixel_size[0], w * self.pixel_size[1]

    # -- conveniences ----------------------------------------------------------------------
    def with_data(self, data: np.ndarray, **metadata: Any) -> Micrograph:
        """A copy with new data (same calibration and source) and extra metadata."""
        return Micrograph(data, self.pixel_size, {**self.metadata, **metadata}, self.source)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is None:
            return self.data
        return self.data.astype(dtype)

    def summary(self) -> dict[str, Any]:
        """A small JSON-friendly description (shape, dtype, calibration, source)."""
        return {
            "shape": list(self.shape),
            "dtype": str(self.data.dtype),
            "pixel_size_nm": list(self.pixel_size) if self.pixel_size else None,
            "field_of_view_nm": list(self.field_of_view_nm) if self.field_of_view_nm else None,
            "source": self.source.describe(),
            "signal": self.source.signal,
            "min": float(self.data.min()),
            "max": float(self.data.max()),
            "mean": float(self.data.mean()),
        }

    def __repr__(self) -> str:
        cal = (
            "uncalibrated"
            if self.pixel_size is None
            else (
                f"{self.pixel_size[0]:.5g} nm/px"
                if self.is_isotropic
                else f"{self.pixel_size[0]:.5g} x {self.pixel_size[1]:.5g} nm/px"
            )
        )
        return f"Micrograph(shape={self.shape}, {cal}, source={self.source.describe()!r})"


def _looks_like_hyperspy(obj: Any) -> bool:
    return hasattr(obj, "data") and hasattr(obj, "axes_manager")


def as_micrograph(
    image: Any,
    *,
    pixel_size: float | tuple[float, float] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Micrograph:
    """Coerce an array, a Micrograph or a HyperSpy-like signal to a :class:`Micrograph`.

    Parameters
    ----------
    image : array_like, Micrograph, or object with ``data`` and ``axes_manager``
        The image. HyperSpy signals are recognised by their attributes (HyperSpy itself is never
        imported).
    pixel_size : float or (float, float), optional
        Pixel size in nm; overrides any calibration carried by *image*.
    metadata : mapping, optional
        Extra metadata merged into the result.
    """
    if isinstance(image, Micrograph):
        mg = image
        if pixel_size is not None or metadata:
            mg = Micrograph(
                mg.data,
                pixel_size if pixel_size is not None else mg.pixel_size,
                {**mg.metadata, **(metadata or {})},
                mg.source,
            )
        return mg
    if _looks_like_hyperspy(image):
        from .io.hyperspy import from_hyperspy

        mg = from_hyperspy(image)
        if pixel_size is not None or metadata:
            return as_micrograph(mg, pixel_size=pixel_size, metadata=metadata)
        return mg
    try:
        data = np.asarray(image)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not an image"
        raise InvalidImageError(f"Cannot interpret {type(image).__name__} as an image") from exc
    if data.dtype == object:
        raise InvalidImageError(f"Cannot interpret {type(image).__name__} as a numeric image")
    return Micrograph(data, pixel_size, dict(metadata or {}), Source())
