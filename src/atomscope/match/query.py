"""Pre-processing of a query image for matching.

1. **Region.** The whole image, a given window, or (``region="auto"``) the window whose
   amplitude spectrum holds the largest share of Bragg-peak power (one grain of a bicrystal:
   a window straddling a boundary splits its power between two lattices).
2. **Calibration** to the library scale: from the pixel size when the image has one (the scale
   is still fitted per candidate within ``± scale_tolerance``, for calibrations a few per cent
   off); otherwise from the lattice: :func:`atomscope.atoms.estimate_lattice` gives the
   shortest lattice vector in px, and each candidate's scale search is centred where its own
   shortest projected lattice vector would match it.
3. **Background removal**: subtraction of a Gaussian blur of σ = ``background`` nm (1 nm:
   thickness and contamination gradients, not lattice contrast).
4. **Normalisation**: Gaussian smoothing of σ = the library's ``smoothing`` (the same blur is
   folded into the library probe) and standardisation (zero mean, unit variance).
5. **Bragg peaks** (for the rotation/scale descriptor) from the background-removed region, and
   **columns** (for the EMD) from the atom finder around the patch centre.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ..errors import InvalidImageError, ParameterError
from ..image import as_micrograph
from .align import PolarGrid, fourier_peaks, query_polar

__all__ = ["Query", "prepare_query", "auto_region", "standardise_image"]

#: nominal length (nm) given to the shortest lattice vector of an uncalibrated image
NOMINAL_SPACING_NM = 0.3
#: below this :attr:`atomscope.atoms.Lattice.confidence` an uncalibrated image is refused
#: (pure noise scores 0.03–0.05, a crystal image about 1)
MIN_LATTICE_CONFIDENCE = 0.3
#: fewest px per side of a query region (and of an image for motif segmentation)
MIN_QUERY_PX = 16


@dataclass
class Query:
    """A pre-processed query (see the module docstring). Pixel coordinates refer to
    ``image`` (the region), ``offset`` gives its top-left corner in the input image."""

    image: np.ndarray  # background removed, native pixels
    smooth: np.ndarray  # smoothed and standardised: what is resampled for SSIM / MSE
    pixel_size: float  # nominal nm/px (given, or from the lattice)
    calibrated: bool
    center: np.ndarray  # (x, y) px: the point matched to the library patch centre
    offset: tuple[int, int]  # (x0, y0) of the region in the input image
    region: tuple[int, int, int, int]  # (y0, y1, x0, x1)
    peaks_g: np.ndarray
    peaks_w: np.ndarray
    peaks_rel: np.ndarray
    desc: np.ndarray
    desc_mirror: np.ndarray
    lattice_px: np.ndarray | None = None
    columns: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def shortest_spacing_px(self) -> float | None:
        if self.lattice_px is None:
            return None
        return float(np.min(np.linalg.norm(self.lattice_px, axis=1)))


def standardise_image(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    sd = a.std()
    return ((a - a.mean()) / (sd if sd > 0 else 1.0)).astype(np.float32)


def _bragg_fraction(tile: np.ndarray, pixel_size: float, grid: PolarGrid) -> float:
    g, w, _ = fourier_peaks(tile, pixel_size, k_min=grid.k_min, k_max=grid.k_max, max_peaks=40)
    if len(w) == 0:
        return 0.0
    win = np.hanning(tile.shape[0])[:, None] * np.hanning(tile.shape[1])[None, :]
    a = np.abs(np.fft.rfft2((tile - tile.mean()) * win))
    return float(np.sum(w**2) / max(np.sum(a[1:] ** 2), 1e-30))


def auto_region(
    image: np.ndarray, pixel_size: float, size_px: int, grid: PolarGrid
) -> tuple[int, int, int, int]:
    """The square window of ``size_px`` (stride size/4) with the largest Bragg-power share."""
    h, w = image.shape
    s = int(min(size_px, h, w))
    if s >= min(h, w):
        y0 = (h - s) // 2
        x0 = (w - s) // 2
        return (y0, y0 + s, x0, x0 + s)
    step = max(s // 4, 8)
    best, best_r = -1.0, (0, s, 0, s)
    ys = list(range(0, h - s + 1, step))
    xs = list(range(0, w - s + 1, step))
    if ys[-1] != h - s:
        ys.append(h - s)
    if xs[-1] != w - s:
        xs.append(w - s)
    for y0 in ys:
        for x0 in xs:
            f = _bragg_fraction(image[y0 : y0 + s, x0 : x0 + s], pixel_size, grid)
            if f > best:
                best, best_r = f, (y0, y0 + s, x0, x0 + s)
    return best_r


def _detect_columns(
    image: np.ndarray, center: np.ndarray, radius_px: float, seed: int
) -> pd.DataFrame:
    from ..atoms import find_atoms

    h, w = image.shape
    r = int(math.ceil(radius_px)) + 4
    x0 = max(int(center[0]) - r, 0)
    x1 = min(int(center[0]) + r + 1, w)
    y0 = max(int(center[1]) - r, 0)
    y1 = min(int(center[1]) + r + 1, h)
    sub = image[y0:y1, x0:x1]
    if min(sub.shape) < 16:
        return pd.DataFrame({"x": [], "y": [], "intensity": []})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            at = find_atoms(sub - float(sub.min()), optimize=False, seed=seed)
        except Exception as exc:  # noqa: BLE001 - no columns is a result, not a failure
            return pd.DataFrame({"x": [], "y": [], "intensity": [], "error": [str(exc)]})
    t = at.table
    if len(t) == 0:
        return pd.DataFrame({"x": [], "y": [], "intensity": []})
    inten = t["intensity"].to_numpy(float) if "intensity" in t else t["amplitude"].to_numpy(float)
    ok = np.isfinite(inten) & (inten > 0)
    return pd.DataFrame(
        {
            "x": t["x"].to_numpy(float)[ok] + x0,
            "y": t["y"].to_numpy(float)[ok] + y0,
            "intensity": inten[ok],
        }
    )


def prepare_query(
    image: Any,
    settings: Any,
    *,
    pixel_size: float | None = None,
    region: Any = None,
    background: float = 1.0,
    scale_tolerance: float = 0.08,
    columns: bool | pd.DataFrame | np.ndarray = False,
    seed: int = 0,
    _preprocessed: np.ndarray | None = None,
) -> Query:
    """Pre-process a query image (see the module docstring).

    Parameters
    ----------
    image : ndarray, Micrograph or HyperSpy-like
        One 2-D HAADF image (bright columns).
    settings : LibrarySettings
        The library's settings (pixel scale, smoothing, log-polar grid).
    pixel_size : float, optional
        nm/px; overrides the image's calibration. None and no calibration: estimated per
        candidate from the lattice.
    region : None, "auto" or (y0, y1, x0, x1)
        Part of the image to match.
    background : float
        σ (nm) of the Gaussian blur subtracted as background.
    scale_tolerance : float
        Relative scale range fitted around the calibration.
    columns : bool or table
        Detect columns for the EMD (True), use the given table / (N, 3) array of x, y,
        intensity in input-image px, or none (False).
    seed : int
        Seed of the atom finder.

    Returns
    -------
    Query
    """
    mg = as_micrograph(image, pixel_size=pixel_size)
    if mg.is_stack:
        raise InvalidImageError(
            f"matching works on one image; got a stack of {mg.n_frames} frames (pass one frame)"
        )
    data = np.asarray(mg.data, dtype=np.float64)
    grid = PolarGrid.from_settings(settings)
    notes: list[str] = []
    calibrated = mg.pixel_size is not None
    lattice_px = None
    if calibrated:
        pr, pc = mg.pixel_size  # type: ignore[misc]
        if abs(pr / pc - 1) > 0.02:
            notes.append(f"anisotropic pixels ({pr:.4g} x {pc:.4g} nm); their mean is used")
        p = 0.5 * (pr + pc)
    else:
        p = float("nan")
    h, w = data.shape
    need_nm = settings.size * settings.pixel_size * math.sqrt(2.0) * (1 + scale_tolerance)
    if _preprocessed is not None:
        bg_removed = _preprocessed
    else:
        sig_bg = background / p if calibrated else max(h, w) / 16.0
        sig_bg = min(sig_bg, max(h, w) / 4.0)
        bg_removed = data - ndi.gaussian_filter(data, sig_bg, mode="reflect")
    if region is None:
        y0, y1, x0, x1 = 0, h, 0, w
    elif isinstance(region, str):
        if region != "auto":
            raise ParameterError(f"region must be None, 'auto' or (y0, y1, x0, x1), got {region!r}")
        p_guess = p if calibrated else None
        if p_guess is None:
            try:
                from ..atoms import estimate_lattice

                lat = estimate_lattice(data.astype(np.float32))
                p_guess = NOMINAL_SPACING_NM / float(np.min(np.linalg.norm(lat.vectors, axis=1)))
            except Exception:  # noqa: BLE001
                p_guess = 0.02
        size_px = int(math.ceil(1.6 * need_nm / p_guess))
        y0, y1, x0, x1 = auto_region(bg_removed, p_guess, size_px, grid)
        notes.append(f"auto region rows {y0}:{y1}, columns {x0}:{x1}")
    else:
        try:
            y0, y1, x0, x1 = (int(v) for v in region)
        except (TypeError, ValueError) as exc:
            raise ParameterError("region must be (y0, y1, x0, x1) in px") from exc
        y0, y1 = max(y0, 0), min(y1, h)
        x0, x1 = max(x0, 0), min(x1, w)
    if y1 - y0 < MIN_QUERY_PX or x1 - x0 < MIN_QUERY_PX:
        what = "the image" if region is None else f"region {region}"
        raise ParameterError(
            f"{what} is too small ({y1 - y0} x {x1 - x0} px; a query needs at least "
            f"{MIN_QUERY_PX} px per side, and a few unit cells to match)"
        )
    crop = np.ascontiguousarray(bg_removed[y0:y1, x0:x1])
    raw_crop = data[y0:y1, x0:x1]
    if not calibrated:
        from ..atoms import estimate_lattice

        try:
            lat = estimate_lattice(raw_crop.astype(np.float32))
        except ParameterError as exc:
            raise ParameterError(
                "the image has no pixel size and no lattice could be estimated from it; give "
                f"pixel_size (nm per px). ({exc})"
            ) from exc
        if lat.confidence < MIN_LATTICE_CONFIDENCE:
            raise ParameterError(
                "the image has no pixel size and shows no clear lattice to estimate the scale "
                f"from (confidence {lat.confidence:.2f}); give pixel_size (nm per px, "
                "--pixel-size on the command line)"
            )
        lattice_px = np.asarray(lat.vectors, dtype=np.float64)
        p = NOMINAL_SPACING_NM / float(np.min(np.linalg.norm(lattice_px, axis=1)))
        notes.append(
            "no pixel size: scale estimated per candidate from the lattice "
            f"(shortest spacing {np.min(np.linalg.norm(lattice_px, axis=1)):.2f} px)"
        )
    ch, cw = crop.shape
    if min(ch, cw) * p < settings.size * settings.pixel_size * 0.7:
        notes.append(
            "the query region is smaller than the library field: metrics use the part it covers"
        )
    # Bragg peaks from a centred square of at most 1024 px
    side = min(ch, cw, 1024)
    fy0, fx0 = (ch - side) // 2, (cw - side) // 2
    g, wts, rel = fourier_peaks(
        crop[fy0 : fy0 + side, fx0 : fx0 + side], p, k_min=grid.k_min, k_max=grid.k_max
    )
    if len(g) < 2:
        notes.append("fewer than two Bragg peaks found: the rotation and scale are unreliable")
    desc = query_polar(g, wts, rel, grid)
    desc_m = query_polar(g, wts, rel, grid, mirror=True)
    smooth = ndi.gaussian_filter(crop, settings.smoothing / p, mode="reflect")
    smooth = standardise_image(smooth)
    center = np.array([(cw - 1) / 2.0, (ch - 1) / 2.0])
    q = Query(
        crop.astype(np.float32),
        smooth,
        float(p),
        calibrated,
        center,
        (x0, y0),
        (y0, y1, x0, x1),
        g,
        wts,
        rel,
        desc,
        desc_m,
        lattice_px,
        None,
        notes,
    )
    if isinstance(columns, pd.DataFrame | np.ndarray):
        arr = (
            columns[["x", "y", "intensity"]].to_numpy(float)
            if isinstance(columns, pd.DataFrame)
            else np.asarray(columns, float)
        )
        q.columns = pd.DataFrame({"x": arr[:, 0] - x0, "y": arr[:, 1] - y0, "intensity": arr[:, 2]})
    elif columns:
        radius = (
            settings.size * settings.pixel_size * 0.5 * math.sqrt(2.0) * (1 + scale_tolerance) / p
            + 4
        )
        # detect on the smoothed region (the library's blur): noise maxima vanish
        q.columns = _detect_columns(
            ndi.gaussian_filter(crop, settings.smoothing / p), center, radius, seed
        )
    return q
