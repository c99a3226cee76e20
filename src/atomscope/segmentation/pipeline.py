"""``segment``: unsupervised segmentation of an atomic-resolution image by local symmetry.

Pipeline (Wang, Freysoldt & Liebscher, see ``docs/segmentation.md``): normalise → descriptors
on a strided grid of centres (translation / rotation / reflection / power spectrum, or several)
→ PCA → seeded k-means (number of clusters given, or chosen by silhouette or BIC) → labels
sorted by segment size → upsampled to every pixel at the grid's true offset.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .._progress import progress
from ..errors import InvalidImageError, ParameterError
from ..image import as_micrograph
from ._backend import resolve_device
from ._parallel import default_threads
from .cluster import (
    block_scales,
    choose_k,
    fit_pca,
    kmeans,
    silhouette,
    single_threaded,
    summarize_separability,
)
from .descriptors import DescriptorSettings, compute_features, parse_descriptors
from .result import Segmentation, SegmentationModel
from .upsample import UPSAMPLE_METHODS, upsample_labels

__all__ = ["segment", "auto_window", "DEFAULT_WINDOW"]

#: centres (seeded subsample) on which the silhouette and the Fisher separability are computed
SCORE_SAMPLE = 2000
#: pySTEM's default window (px), used when the image shows no lattice
DEFAULT_WINDOW = 21
#: automatic window = AUTO_PERIODS × the dominant lattice spacing, clipped to AUTO_LIMITS px
AUTO_PERIODS = 1.0
AUTO_LIMITS = (8, 32)
#: a radial power-spectrum peak must stand this many times above the background
MIN_PEAK_RATIO = 2.5


def dominant_spacing(
    data: np.ndarray,
    *,
    crop: int = 512,
    relative: float = 0.5,
) -> tuple[float | None, float]:
    """The lattice spacing (px) that dominates the image, from its radially averaged power
    spectrum; works with several grains or phases in the field of view.

    The central ``crop``² px are Hann-windowed; the radial power profile is divided by its
    running median (background); among the peaks at least ``relative`` × as prominent as the
    most prominent one (spacings 3 … crop/4 px), the one at the longest spacing is returned, with
    its prominence. ``(None, prominence)`` when no peak reaches ``MIN_PEAK_RATIO``.
    """
    from scipy import ndimage

    h, w = data.shape
    c = min(crop, h, w)
    c -= c % 2
    if c < 32:
        return None, 0.0
    y0, x0 = (h - c) // 2, (w - c) // 2
    a = np.asarray(data[y0 : y0 + c, x0 : x0 + c], np.float64)
    a = (a - a.mean()) * np.outer(np.hanning(c), np.hanning(c))
    power = np.abs(np.fft.fft2(a)) ** 2
    f = np.fft.fftfreq(c) * c
    rb = np.rint(np.hypot(f[:, None], f[None, :])).astype(np.int64).ravel()
    prof = (np.bincount(rb, power.ravel()) / np.maximum(np.bincount(rb), 1))[: c // 2]
    lo, hi = max(3, c // 64), int(c / 3)
    bg = ndimage.median_filter(prof, size=max(5, c // 32), mode="nearest")
    ratio = prof / np.maximum(bg, 1e-300)
    seg = ratio[lo:hi]
    peaks = [i for i in range(1, len(seg) - 1) if seg[i] >= seg[i - 1] and seg[i] >= seg[i + 1]]
    if not peaks:
        return None, 0.0
    best = float(max(seg[i] for i in peaks))
    if best < MIN_PEAK_RATIO:
        return None, best
    k = lo + min(i for i in peaks if seg[i] >= relative * best)
    return c / k, best


def auto_window(data: np.ndarray) -> tuple[int, dict[str, Any]]:
    """``AUTO_PERIODS`` × the dominant lattice spacing (:func:`dominant_spacing`), clipped to
    ``AUTO_LIMITS``; pySTEM's 21 px when the image shows no lattice."""
    spacing, prominence = dominant_spacing(data)
    if spacing is None:
        return DEFAULT_WINDOW, {
            "window_source": "default (no lattice peak found)",
            "lattice_peak_prominence": prominence,
        }
    win = int(np.clip(round(AUTO_PERIODS * spacing), *AUTO_LIMITS))
    return win, {
        "window_source": "lattice",
        "lattice_spacing_px": spacing,
        "lattice_peak_prominence": prominence,
    }


def _resolve_sizes(window: Any, patch: Any, data: np.ndarray) -> tuple[int, int, dict[str, Any]]:
    info: dict[str, Any] = {}
    auto_w = window is None or (isinstance(window, str) and window == "auto")
    auto_p = patch is None or (isinstance(patch, str) and patch == "auto")
    for name, v, auto in (("window", window, auto_w), ("patch", patch, auto_p)):
        if not auto and (isinstance(v, str) or not float(v).is_integer() or v < 1):
            raise ParameterError(f"{name} must be a positive number of pixels or 'auto', got {v!r}")
    if auto_w and auto_p:
        w, info = auto_window(data)
        p = 2 * w - 1
    elif auto_w:
        p = int(patch)
        w = max(1, (p + 1) // 2)
        info["window_source"] = "from patch"
    elif auto_p:
        w = int(window)
        p = 2 * w - 1
        info["window_source"] = "given"
    else:
        w, p = int(window), int(patch)
        info["window_source"] = "given"
    return w, max(p, 3), info


def segment(
    image: Any,
    *,
    descriptor: str | list[str] | tuple[str, ...] = "translation",
    n_clusters: int | None = None,
    stride: int = 5,
    window: int | str = "auto",
    patch: int | str = "auto",
    n_shifts: int = 100,
    n_radii: int = 20,
    n_angles: int = 60,
    rotations: tuple[float, ...] = (180.0, 120.0, 90.0, 60.0),
    n_mirrors: int = 10,
    top_k: int | None = None,
    n_components: int = 5,
    n_init: int = 5,
    k_range: tuple[int, int] = (2, 8),
    k_method: str = "silhouette",
    normalize: str = "local",
    antialias: float = 0.35,
    score_step: int | None = None,
    upsample: str = "linear",
    model: SegmentationModel | None = None,
    pixel_size: float | tuple[float, float] | None = None,
    device: Any = None,
    n_threads: int | None = None,
    seed: int = 0,
    separability: bool = True,
    show_progress: bool = False,
) -> Segmentation:
    """Segment an atomic-resolution image into regions of different local symmetry, without
    labels or training.

    Parameters
    ----------
    image : array_like (H, W), Micrograph or HyperSpy-like signal
        One image (for a movie, segment each frame with ``model=`` of the first).
    descriptor : str or list of str
        'translation' (local correlation map; separates different lattices and orientations),
        'rotation' (2/3/4/6-fold scores, top-k pooled; rotation-invariant: separates phases of
        different point symmetry, not grains of one phase), 'reflection' (mirror-line scores,
        top-k pooled; separates orientations), 'power_spectrum' (baseline), or several.
    n_clusters : int, optional
        Number of segments. None: chosen by ``k_method`` over ``k_range``.
    stride : int
        Spacing of the descriptor centres, px (pySTEM: 5). Smaller is finer and slower.
    window : int or 'auto'
        Largest translation / half-width of the max-pooling window, px (pySTEM: 21). 'auto':
        ``AUTO_PERIODS`` lattice spacings (estimated from the image), or from ``patch``.
    patch : int or 'auto'
        Side of the square patch and diameter of the circular patch, px (pySTEM: 41).
        'auto': ``2 · window − 1``.
    n_shifts : int
        Translations on a uniform grid in the ±window square (pySTEM: about 100).
    n_radii, n_angles : int
        Polar resampling of the circular patch (pySTEM: 20 × 60).
    rotations : tuple of float
        Rotation angles of the rotation descriptor, degrees.
    n_mirrors : int
        Mirror lines of the reflection descriptor, 180°/n apart (pySTEM: 10).
    top_k : int, optional
        Largest scores kept per channel by the max-pooling (pySTEM: 10). None: the upper half
        of the window's values (16 evenly spaced ranks of it), which keeps boundaries where
        they are (see ``DescriptorSettings.pool_k``).
    n_components : int
        PCA components fed to k-means (pySTEM: 5).
    n_init : int
        k-means restarts (seeded).
    k_range : (int, int)
        Smallest and largest number of clusters tried when ``n_clusters`` is None.
    k_method : {'silhouette', 'bic'}
        Silhouette (k ≥ 2, default) or the Bayesian information criterion of a Gaussian
        mixture (can choose k = 1).
    normalize : {'local', 'global'}
        'local' (default): zero local mean and unit local variance (Gaussian σ = window)
        before the descriptors, so bright and dim phases weigh equally at a boundary;
        'global': whole-image normalisation only (pySTEM).
    antialias : float
        Gaussian smoothing (σ = antialias × score_step px) before the rotation and reflection
        scores, so that sampled scores alias less (0: off, as pySTEM).
    score_step : int, optional
        Spacing of the rotation/reflection score centres before pooling, px (default
        ``ceil(stride / 2)``; pySTEM: the stride).
    upsample : {'linear', 'nearest'}
        'linear' interpolates the distances to the cluster centres between grid centres
        (sub-stride boundaries); 'nearest' copies the nearest centre's label.
    model : SegmentationModel, optional
        A model fitted on another image (``previous.model``): same descriptors, PCA and
        cluster centres, no refit — labels stay consistent across the frames of a movie.
        Descriptor settings then come from the model.
    pixel_size : float or (float, float), optional
        nm per pixel, overriding the image's calibration (used for areas and the scale bar).
    device : str or torch.device, optional
        Compute the descriptors with PyTorch on this device ('cuda', 'cpu' …).
    n_threads : int, optional
        Threads for the numpy descriptors (default: the usable CPUs, at most 2). BLAS and
        OpenMP are kept to one thread throughout: the linear algebra here is small.
    seed : int
        Seed of k-means, the randomized PCA and the subsamples (same input, same labels).
    separability : bool
        Compute the Fisher separability of the features (paper eq. 4).
    show_progress : bool
        Progress bar over the descriptors.

    Returns
    -------
    Segmentation
        ``labels`` (H, W), ``features``, ``model``, ``scores``; ``save(dir)``, ``plot(ax)``,
        ``summary()``, ``to_frame()``.

    Raises
    ------
    InvalidImageError
        For a stack (segment frames one by one).
    ParameterError
        For unusable parameters, or an image too small for the patch and window.
    """
    with single_threaded():
        return _segment(
            image,
            descriptor=descriptor,
            n_clusters=n_clusters,
            stride=stride,
            window=window,
            patch=patch,
            n_shifts=n_shifts,
            n_radii=n_radii,
            n_angles=n_angles,
            rotations=rotations,
            n_mirrors=n_mirrors,
            top_k=top_k,
            n_components=n_components,
            n_init=n_init,
            k_range=k_range,
            k_method=k_method,
            normalize=normalize,
            antialias=antialias,
            score_step=score_step,
            upsample=upsample,
            model=model,
            pixel_size=pixel_size,
            device=device,
            n_threads=n_threads,
            seed=seed,
            separability=separability,
            show_progress=show_progress,
        )


def _segment(
    image: Any,
    *,
    descriptor: Any,
    n_clusters: int | None,
    stride: int,
    window: Any,
    patch: Any,
    n_shifts: int,
    n_radii: int,
    n_angles: int,
    rotations: tuple[float, ...],
    n_mirrors: int,
    top_k: int | None,
    n_components: int,
    n_init: int,
    k_range: tuple[int, int],
    k_method: str,
    normalize: str,
    antialias: float,
    score_step: int | None,
    upsample: str,
    model: SegmentationModel | None,
    pixel_size: Any,
    device: Any,
    n_threads: int | None,
    seed: int,
    separability: bool,
    show_progress: bool,
) -> Segmentation:
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    mg = as_micrograph(image, pixel_size=pixel_size)
    if mg.is_stack:
        raise InvalidImageError(
            f"segment() takes one image; got a stack of {mg.n_frames} frames. Segment the "
            "first frame, then the others with model=result.model for consistent labels."
        )
    dev = resolve_device(device)
    threads = default_threads() if n_threads is None else max(1, int(n_threads))
    data = mg.data
    size_info: dict[str, Any] = {}
    if model is not None:
        settings = model.settings
        _check_model_args(settings, descriptor, stride, window, patch)
        if n_clusters is not None and n_clusters != model.n_clusters:
            raise ParameterError(
                f"n_clusters={n_clusters} conflicts with the model's {model.n_clusters} clusters"
            )
    else:
        names = parse_descriptors(descriptor)
        t0 = time.perf_counter()
        win, pat, size_info = _resolve_sizes(window, patch, data)
        if size_info.get("window_source") not in ("given", "from patch"):
            timings["auto_window"] = time.perf_counter() - t0
        settings = DescriptorSettings(
            descriptors=names,
            stride=int(stride),
            patch=pat,
            window=win,
            n_shifts=int(n_shifts),
            n_radii=int(n_radii),
            n_angles=int(n_angles),
            rotations=tuple(float(a) for a in rotations),
            n_mirrors=int(n_mirrors),
            top_k=None if top_k is None else int(top_k),
            normalize=str(normalize),
            antialias=float(antialias),
            score_step=None if score_step is None else int(score_step),
        )
    if n_clusters is not None and (not float(n_clusters).is_integer() or n_clusters < 1):
        raise ParameterError(f"n_clusters must be a positive integer, got {n_clusters!r}")
    if n_components < 1 or n_init < 1:
        raise ParameterError(f"n_components and n_init must be ≥ 1, got {n_components}, {n_init}")
    if upsample not in UPSAMPLE_METHODS:
        raise ParameterError(f"upsample must be one of {UPSAMPLE_METHODS}, got {upsample!r}")

    # -- descriptors -----------------------------------------------------------------------
    fs = None
    for _ in progress([0], show_progress=show_progress, desc="descriptors"):
        fs = compute_features(data, settings, device=dev, n_threads=threads)
    assert fs is not None
    blank = fs.blank
    for name, dt in fs.timings.items():
        timings[name if name == "normalise" else f"descriptor_{name}"] = dt
    X = fs.matrix()
    names_all = fs.feature_names()
    grid = fs.grid

    # -- PCA + clustering ------------------------------------------------------------------
    scores: dict[str, Any] = {}
    message = ""
    t0 = time.perf_counter()
    if model is None:
        pca = fit_pca(X, n_components, scale=block_scales(X, fs.block_slices()), seed=seed)
        Z = pca.transform(X)
        timings["pca"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if pca.n_components == 0:
            k, chosen_by = 1, "blank"
            message = (
                "The image has no texture (blank or flat): one segment. "
                if blank
                else "The descriptors do not vary over the image: one segment. "
            )
        elif n_clusters is not None:
            k, chosen_by = int(n_clusters), "user"
        else:
            k, k_scores = choose_k(Z, k_range, method=k_method, n_init=min(n_init, 3), seed=seed)
            chosen_by = k_method
            scores["k_scores"] = k_scores
        centres, grid_lab, inertia = kmeans(Z, k, n_init=n_init, seed=seed)
        model = SegmentationModel(settings, pca, centres, names_all)
        scores["inertia"] = inertia
    else:
        Z = model.transform(X)
        timings["pca"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        chosen_by = "model"
        grid_lab = model.distances(Z).argmin(axis=1)
        message = "Labels from a reused model (no refit)."
    scores["n_clusters_chosen_by"] = chosen_by
    scores["explained_variance_ratio"] = [float(v) for v in model.pca.explained_variance_ratio]
    if model.n_clusters > 1 and len(np.unique(grid_lab)) > 1 and Z.shape[1]:
        n = len(Z)
        idx = np.sort(
            np.random.default_rng(seed).choice(n, size=min(SCORE_SAMPLE, n), replace=False)
        )
        if len(np.unique(grid_lab[idx])) > 1:
            scores["silhouette"] = silhouette(Z[idx], grid_lab[idx])
        if separability:
            scores["fisher_separability"] = summarize_separability(
                X[idx], Z[idx], grid_lab[idx], names_all
            )
    timings["clustering"] = time.perf_counter() - t0

    # -- upsampling ------------------------------------------------------------------------
    t0 = time.perf_counter()
    dist = model.distances(Z).reshape(grid.ny, grid.nx, model.n_clusters)
    labels = upsample_labels(grid, dist, method=upsample)
    timings["upsampling"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    run_settings = {
        **settings.to_dict(),
        **size_info,
        "n_components": n_components,
        "n_init": n_init,
        "k_range": list(k_range),
        "k_method": k_method,
        "upsample": upsample,
        "seed": seed,
        "n_threads": threads,
        "device": None if dev is None else str(dev),
    }
    return Segmentation(
        labels=labels,
        image=mg,
        model=model,
        grid_labels=grid_lab.reshape(grid.ny, grid.nx).astype(np.int32),
        centres_y=grid.ys.copy(),
        centres_x=grid.xs.copy(),
        features=X,
        feature_names=names_all,
        pca_features=Z,
        scores=scores,
        settings=run_settings,
        timings=timings,
        message=message.strip(),
    )


def _check_model_args(
    settings: DescriptorSettings, descriptor: Any, stride: int, window: Any, patch: Any
) -> None:
    """A reused model fixes the descriptor settings; arguments that contradict it are errors
    (the defaults are accepted)."""
    problems = []
    if descriptor != "translation" and parse_descriptors(descriptor) != settings.descriptors:
        problems.append(f"descriptor {descriptor!r} (model: {list(settings.descriptors)})")
    if stride != 5 and int(stride) != settings.stride:
        problems.append(f"stride {stride} (model: {settings.stride})")
    if window not in ("auto", None) and int(window) != settings.window:
        problems.append(f"window {window} (model: {settings.window})")
    if patch not in ("auto", None) and int(patch) | 1 != settings.patch:
        problems.append(f"patch {patch} (model: {settings.patch})")
    if problems:
        raise ParameterError(
            "A reused model fixes the descriptor settings; these arguments contradict it: "
            + "; ".join(problems)
        )
