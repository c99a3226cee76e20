"""HyperSpy zarr files (``.zspy``): a zarr ZipStore (one file) or a zarr directory store.

The tree is HyperSpy's ``.hspy`` layout in zarr (root attribute ``file_format == "ZSpy"``):
``Experiments/<title>/data`` plus ``axis-i`` groups and a ``metadata`` group; it is read by the
same code as ``.hspy`` (:func:`atomscope.io.readers.hdf5.read_hyperspy_tree`).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import CorruptFileError
from .._signal import RawSignal
from ._common import corrupt as _corrupt
from .hdf5 import max_in_memory_bytes, read_hyperspy_tree

__all__ = ["read"]

_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


def _load_array(arr: Any, label: str) -> np.ndarray:
    dtype = np.dtype(arr.dtype)
    nbytes = int(np.prod(arr.shape, dtype=np.int64)) * dtype.itemsize
    if nbytes > max_in_memory_bytes():
        raise CorruptFileError(
            f"{label}: the array claims {nbytes / 1e9:.1f} GB, more than this computer's memory; "
            "the file is corrupt or too large."
        )
    try:
        return np.asarray(arr[...])
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - codecs raise anything on damaged chunks
        raise CorruptFileError(
            f"{label}: the data could not be decoded ({type(exc).__name__}: {exc}); the file "
            "may be truncated or damaged."
        ) from exc


def _open_store(path: Path) -> Any:
    from zarr import storage

    if path.is_dir():
        return storage.LocalStore(path, read_only=True)
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head not in _ZIP_MAGICS:
        raise _corrupt(path, "not a .zspy file (neither a zip archive nor a zarr folder).")
    try:
        with zipfile.ZipFile(path) as zf:
            zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _corrupt(path, f"the zip archive is damaged or truncated ({exc}).") from exc
    return storage.ZipStore(path, mode="r")


def read(path: str | os.PathLike[str]) -> list[RawSignal]:
    """Read a HyperSpy ``.zspy`` file (zip) or folder.

    Parameters
    ----------
    path : path-like
        The ``.zspy`` ZipStore file or directory store.

    Returns
    -------
    list of RawSignal
        One signal per experiment, calibrated from its axes like ``.hspy`` (pixel size (row,
        col) in nm; kind "diffraction" for reciprocal units, "spectrum" for 1-D signals).

    Raises
    ------
    CorruptFileError
        Not a zip/zarr store, damaged archive, or no HyperSpy tree.
    """
    import zarr

    path = Path(path)
    store = _open_store(path)
    try:
        try:
            root = zarr.open_group(store=store, mode="r")
        except Exception as exc:  # noqa: BLE001 - zarr raises many types on bad metadata
            raise _corrupt(path, f"no readable zarr group ({type(exc).__name__}: {exc}).") from exc
        try:
            if "Experiments" not in root:
                raise _corrupt(path, "the zarr store holds no HyperSpy 'Experiments' group.")
            signals = read_hyperspy_tree(root, path.name, _load_array)
        except CorruptFileError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _corrupt(
                path, f"the zarr tree is damaged ({type(exc).__name__}: {exc})."
            ) from exc
    finally:
        try:
            store.close()
        except Exception:  # noqa: BLE001, S110 - closing a read-only store cannot lose data
            pass
    if not signals:
        raise _corrupt(path, "the HyperSpy tree holds no signal with a 'data' array.")
    return signals
