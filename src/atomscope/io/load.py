"""``atomscope.load``: any microscope file, folder of frames, array or HyperSpy signal to a
:class:`~atomscope.image.Micrograph`."""

from __future__ import annotations

import importlib
import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import (
    AtomscopeError,
    CorruptFileError,
    InvalidImageError,
    MissingFileError,
    SignalNotFoundError,
    UnsupportedFormatError,
)
from ..image import Micrograph, Source, as_micrograph, normalise_pixel_size
from ._signal import RawSignal

__all__ = ["load", "read_signals", "list_signals", "SUPPORTED_EXTENSIONS", "natural_sort_key"]

# extension -> reader module under atomscope.io.readers (imported lazily)
_READERS: dict[str, str] = {
    ".dm3": "dm",
    ".dm4": "dm",
    ".emi": "tia",
    ".ser": "tia",
    ".emd": "emd",
    ".mrc": "mrc",
    ".mrcs": "mrc",
    ".rec": "mrc",
    ".st": "mrc",
    ".ali": "mrc",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".png": "raster",
    ".jpg": "raster",
    ".jpeg": "raster",
    ".bmp": "raster",
    ".gif": "raster",
    ".npy": "numpy_",
    ".npz": "numpy_",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
    ".hspy": "hdf5",
    ".zspy": "zspy",
}
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(sorted(_READERS))
# formats that may be stored as a folder (zarr directory stores)
_DIRECTORY_FORMATS = (".zspy",)

NonFinitePolicy = Literal["raise", "fill"]


def natural_sort_key(name: str) -> list[Any]:
    """Sort key that orders "frame2" before "frame10"."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def _reader_for(path: Path):
    ext = path.suffix.lower()
    module = _READERS.get(ext)
    if module is None:
        raise UnsupportedFormatError(
            f"{path.name}: unknown file extension {ext or '(none)'!r}. atomscope reads "
            + ", ".join(SUPPORTED_EXTENSIONS)
            + ", folders of frames and .zip archives of frames."
        )
    return importlib.import_module(f"{__package__}.readers.{module}")


def read_signals(path: str | os.PathLike[str]) -> list[RawSignal]:
    """Every signal a file holds, as the format reader returns them (raw dtype, calibrated).

    Raises
    ------
    MissingFileError, UnsupportedFormatError, CorruptFileError
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"No such file or folder: {path}")
    if path.is_dir() and path.suffix.lower() not in _DIRECTORY_FORMATS:
        raise UnsupportedFormatError(f"{path} is a folder; use atomscope.load() for folders")
    reader = _reader_for(path)
    if path.is_file() and path.stat().st_size == 0:
        raise CorruptFileError(f"{path.name} is empty (0 bytes).")
    try:
        signals = reader.read(path)
    except AtomscopeError:
        raise
    except MemoryError as exc:
        raise CorruptFileError(
            f"{path.name}: the header asks for more memory than available; the file is corrupt "
            f"or not a valid {path.suffix} file."
        ) from exc
    except Exception as exc:  # noqa: BLE001 - third-party readers raise anything on bad bytes
        raise CorruptFileError(
            f"{path.name} could not be read as {path.suffix.lstrip('.').upper()}: "
            f"{type(exc).__name__}: {exc}. The file may be truncated or corrupt."
        ) from exc
    if not signals:
        raise CorruptFileError(f"{path.name} holds no data that atomscope can read.")
    return signals


def list_signals(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Name, kind, shape and dtype of each signal in a file (for ``atomscope info``)."""
    out = []
    for sig in read_signals(path):
        out.append(
            {
                "name": sig.name,
                "kind": sig.kind,
                "shape": tuple(int(s) for s in sig.data.shape),
                "dtype": str(sig.data.dtype),
                "pixel_size_nm": sig.pixel_size,
            }
        )
    return out


_HAADF_RANK = (
    re.compile(r"^haadf$", re.I),
    re.compile(r"haadf", re.I),
    re.compile(r"(^|[^a-z])adf", re.I),
    re.compile(r"^(df|dark)", re.I),
)


def _image_like(sig: RawSignal) -> bool:
    shape = tuple(sig.data.shape[: sig.data.ndim - (1 if sig.rgb else 0)])
    while len(shape) > 2 and shape[0] == 1:
        shape = shape[1:]
    return sig.kind in ("image", "diffraction") and len(shape) >= 2 and min(shape) > 1


def _select_signal(signals: Sequence[RawSignal], signal: str | int | None, where: str) -> RawSignal:
    names = [s.name for s in signals]
    if signal is not None:
        if isinstance(signal, int):
            if not -len(signals) <= signal < len(signals):
                raise SignalNotFoundError(
                    f"{where} has {len(signals)} signal(s); index {signal} does not exist"
                )
            return signals[signal]
        for s in signals:
            if s.name == signal:
                return s
        for s in signals:
            if s.name.lower() == str(signal).lower():
                return s
        raise SignalNotFoundError(
            f"{where} has no signal named {signal!r}; it holds: {', '.join(names)}"
        )
    images = [s for s in signals if _image_like(s)]
    if not images:
        kinds = ", ".join(f"{s.name} ({s.kind}, shape {tuple(s.data.shape)})" for s in signals)
        raise InvalidImageError(f"{where} holds no image, only: {kinds}")
    for pattern in _HAADF_RANK:
        for s in images:
            if pattern.search(s.name):
                return s
    return images[0]


def _to_grey(data: np.ndarray, metadata: dict[str, Any]) -> np.ndarray:
    colour = data[..., :3] if data.shape[-1] >= 3 else data
    if colour.shape[-1] == 1 or all(
        np.array_equal(colour[..., 0], colour[..., k]) for k in range(1, colour.shape[-1])
    ):
        metadata["converted_from"] = "RGB with identical channels"
        return colour[..., 0]
    metadata["converted_from"] = "RGB (luminance, Rec. 709 weights)"
    weights = np.array([0.2126, 0.7152, 0.0722], dtype=np.float64)
    return colour.astype(np.float64) @ weights


def _squeeze_leading(data: np.ndarray) -> np.ndarray:
    while data.ndim > 2 and data.shape[0] == 1:
        data = data[0]
    return data


def _as_float32(data: np.ndarray, metadata: dict[str, Any]) -> np.ndarray:
    """float32 copy; integer data whose minimum exceeds its range are shifted to start at 0 so
    that float32 keeps every count distinct (``metadata["intensity_offset"]`` records the shift)."""
    if data.dtype.kind in "iu" and data.size:
        lo = int(data.min())
        hi = int(data.max())
        if hi > lo > 0 and lo > hi - lo:
            metadata["intensity_offset"] = lo
            return (data.astype(np.int64) - lo).astype(np.float32)
    if data.dtype.kind == "c":
        raise InvalidImageError(
            f"The signal is complex ({data.dtype}); take .real, .imag or abs() before analysis."
        )
    if data.dtype.kind not in "biuf":
        raise InvalidImageError(f"Image values have a non-numeric type ({data.dtype}).")
    if data.dtype.kind == "f" and data.dtype.itemsize > 4 and data.size:
        with np.errstate(invalid="ignore"):
            big = np.nanmax(np.abs(np.where(np.isfinite(data), data, 0)))
        if big > np.finfo(np.float32).max:
            raise InvalidImageError(
                f"Image values reach {big:.3g}, beyond the float32 range; rescale them first."
            )
    return np.asarray(data, dtype=np.float32)


def _fill_nonfinite(data: np.ndarray, metadata: dict[str, Any]) -> np.ndarray:
    bad = ~np.isfinite(data)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return data
    if n_bad == data.size:
        raise InvalidImageError(f"All {data.size} values are NaN or infinite.")
    data = data.copy()
    data[bad] = np.median(data[~bad])
    metadata["nonfinite_filled"] = n_bad
    return data


def _signal_to_micrograph(
    sig: RawSignal,
    *,
    frame: int | None,
    pixel_size: Any,
    nonfinite: NonFinitePolicy,
    source: Source,
) -> Micrograph:
    metadata = dict(sig.metadata)
    metadata.setdefault("signal", sig.name)
    if sig.kind == "diffraction":
        metadata.setdefault("kind", "diffraction")
    data = sig.data
    if sig.rgb:
        data = _to_grey(np.asarray(data), metadata)
    if data.ndim < 2 or (data.ndim >= 2 and min(data.shape) == 1 and data.ndim == 2):
        raise InvalidImageError(
            f"{source.describe()}: signal {sig.name!r} is {data.ndim}-D with shape "
            f"{tuple(data.shape)} (a spectrum or line profile), not an image."
        )
    data = _squeeze_leading(data)
    if data.ndim > 3:
        raise InvalidImageError(
            f"{source.describe()}: signal {sig.name!r} is {data.ndim}-D with shape "
            f"{tuple(data.shape)} (e.g. 4D-STEM or a spectrum image); atomscope needs one image "
            "(H, W) or a stack (T, H, W)."
        )
    if frame is not None:
        if data.ndim == 2:
            if frame not in (0, -1):
                raise InvalidImageError(
                    f"{source.describe()} is a single image; frame {frame} does not exist."
                )
        else:
            n = data.shape[0]
            if not -n <= frame < n:
                raise InvalidImageError(
                    f"{source.describe()} has {n} frames; frame {frame} does not exist."
                )
            frame %= n
            data = data[frame]
            source = Source(source.path, frame, source.signal, source.format)
    data = _as_float32(np.asarray(data), metadata)
    if nonfinite == "fill":
        data = _fill_nonfinite(data, metadata)
    elif nonfinite != "raise":
        raise ValueError("nonfinite must be 'raise' or 'fill'")
    ps = normalise_pixel_size(pixel_size) if pixel_size is not None else sig.pixel_size
    if pixel_size is not None and sig.pixel_size is not None:
        metadata["file_pixel_size_nm"] = list(sig.pixel_size)
    return Micrograph(data, ps, metadata, source)


def _frame_files(folder: Path) -> list[Path]:
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in _READERS
    ]
    # a TIA .emi and its .ser share one image: keep the .emi
    emi_stems = {p.stem for p in files if p.suffix.lower() == ".emi"}
    files = [
        p
        for p in files
        if not (p.suffix.lower() == ".ser" and re.sub(r"_\d+$", "", p.stem) in emi_stems)
    ]
    return sorted(files, key=lambda p: natural_sort_key(p.name))


def _stack_frames(
    frames: list[Micrograph], where: str, pixel_size: Any, source: Source
) -> Micrograph:
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise InvalidImageError(
            f"{where}: frames have different shapes {sorted(shapes)}; load one with frame=<index>."
        )
    data = np.concatenate([f.data if f.is_stack else f.data[None] for f in frames])
    first = frames[0]
    metadata = dict(first.metadata)
    metadata["frame_sources"] = [f.source.path for f in frames]
    ps = normalise_pixel_size(pixel_size) if pixel_size is not None else first.pixel_size
    return Micrograph(data, ps, metadata, source)


def _load_folder(
    folder: Path, frame: int | None, signal: Any, pixel_size: Any, nonfinite: NonFinitePolicy
) -> Micrograph:
    files = _frame_files(folder)
    if not files:
        raise InvalidImageError(
            f"{folder} holds no image files (looked for {', '.join(SUPPORTED_EXTENSIONS)})."
        )
    src = Source(str(folder), frame, None, "folder")
    if frame is not None:
        n = len(files)
        if not -n <= frame < n:
            raise InvalidImageError(f"{folder} has {n} frame files; frame {frame} does not exist.")
        mg = load(files[frame], signal=signal, pixel_size=pixel_size, nonfinite=nonfinite)
        return Micrograph(
            mg.data,
            mg.pixel_size,
            mg.metadata,
            Source(str(files[frame]), frame % n, mg.source.signal, "folder"),
        )
    frames = [load(p, signal=signal, pixel_size=pixel_size, nonfinite=nonfinite) for p in files]
    return _stack_frames(frames, str(folder), pixel_size, src)


def _load_zip(
    path: Path, frame: int | None, signal: Any, pixel_size: Any, nonfinite: NonFinitePolicy
) -> Micrograph:
    import tempfile

    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise CorruptFileError(f"{path.name} is not a readable zip archive: {exc}") from exc
    with archive, tempfile.TemporaryDirectory(prefix="atomscope-zip-") as tmp:
        members = [
            m
            for m in archive.infolist()
            if not m.is_dir()
            and not Path(m.filename).name.startswith(".")
            and "__MACOSX" not in m.filename
            and Path(m.filename).suffix.lower() in _READERS
        ]
        if not members:
            raise InvalidImageError(f"{path.name} holds no image files.")
        members.sort(key=lambda m: natural_sort_key(m.filename))
        chosen = members if frame is None else [members[frame % len(members)]]
        if frame is not None and not -len(members) <= frame < len(members):
            raise InvalidImageError(
                f"{path.name} has {len(members)} image files; frame {frame} does not exist."
            )
        frames = []
        for m in chosen:
            target = Path(tmp) / Path(m.filename).name
            target.write_bytes(archive.read(m))
            mg = load(target, signal=signal, pixel_size=pixel_size, nonfinite=nonfinite)
            mg = Micrograph(
                mg.data,
                mg.pixel_size,
                {**mg.metadata, "archive_member": m.filename},
                Source(f"{path}::{m.filename}", frame, mg.source.signal, "zip"),
            )
            frames.append(mg)
    if frame is not None:
        return frames[0]
    return _stack_frames(frames, path.name, pixel_size, Source(str(path), None, None, "zip"))


def load(
    source: Any,
    *,
    frame: int | None = None,
    signal: str | int | None = None,
    pixel_size: float | tuple[float, float] | None = None,
    nonfinite: NonFinitePolicy = "raise",
) -> Micrograph:
    """Load a microscope image, stack or movie as a calibrated :class:`Micrograph`.

    Parameters
    ----------
    source : path, folder, ndarray, Micrograph or HyperSpy-like signal
        A file (DM3/DM4, EMI/SER, EMD Velox/Berkeley, MRC, TIFF, PNG/JPEG, NPY/NPZ,
        HDF5/.hspy, .zspy), a folder of frames (sorted naturally: frame2 before frame10), a
        .zip of frames, a numpy array, or any object with HyperSpy's ``data`` and
        ``axes_manager``.
    frame : int, optional
        Load only this frame of a stack (or this file of a folder). None loads everything.
    signal : str or int, optional
        Signal (detector) of a multi-signal file, by name ("HAADF", "DF2", "BF" …) or index.
        By default the HAADF-like image signal.
    pixel_size : float or (float, float), optional
        Pixel size in nm, (row, col). Fills in (or overrides) the file's calibration.
    nonfinite : {"raise", "fill"}
        NaN/Inf values raise :class:`~atomscope.errors.InvalidImageError` (with their count), or
        are replaced by the median of the finite values (count in ``metadata``).

    Returns
    -------
    Micrograph
        float32 ``data`` of shape (H, W) or (T, H, W); ``pixel_size`` (row, col) in nm or None.

    Raises
    ------
    MissingFileError, UnsupportedFormatError, CorruptFileError, InvalidImageError,
    SignalNotFoundError, CalibrationError
        All derive from :class:`~atomscope.errors.AtomscopeError`.
    """
    if isinstance(source, str | os.PathLike):
        path = Path(source).expanduser()
        if not path.exists():
            raise MissingFileError(f"No such file or folder: {path}")
        if path.is_dir() and path.suffix.lower() not in _DIRECTORY_FORMATS:
            return _load_folder(path, frame, signal, pixel_size, nonfinite)
        if path.suffix.lower() == ".zip":
            return _load_zip(path, frame, signal, pixel_size, nonfinite)
        signals = read_signals(path)
        sig = _select_signal(signals, signal, path.name)
        src = Source(str(path), frame, sig.name, path.suffix.lower().lstrip("."))
        return _signal_to_micrograph(
            sig, frame=frame, pixel_size=pixel_size, nonfinite=nonfinite, source=src
        )
    if hasattr(source, "axes_manager") and hasattr(source, "data"):
        from .hyperspy import raw_signal_from_hyperspy

        sig = raw_signal_from_hyperspy(source)
        return _signal_to_micrograph(
            sig,
            frame=frame,
            pixel_size=pixel_size,
            nonfinite=nonfinite,
            source=Source(None, frame, sig.name, "hyperspy"),
        )
    if isinstance(source, Micrograph):
        mg = as_micrograph(source, pixel_size=pixel_size)
        sig = RawSignal(mg.data, mg.pixel_size, mg.source.signal or "image", mg.metadata)
        return _signal_to_micrograph(
            sig, frame=frame, pixel_size=None, nonfinite=nonfinite, source=mg.source
        )
    try:
        data = np.asarray(source)
    except Exception as exc:  # noqa: BLE001
        raise InvalidImageError(f"Cannot interpret {type(source).__name__} as an image") from exc
    if data.dtype == object:
        raise InvalidImageError(f"Cannot interpret {type(source).__name__} as a numeric image")
    sig = RawSignal(data, normalise_pixel_size(pixel_size), "image", {})
    return _signal_to_micrograph(
        sig, frame=frame, pixel_size=None, nonfinite=nonfinite, source=Source(format="array")
    )
