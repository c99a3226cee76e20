"""HDF5 reader: HyperSpy ``.hspy``/``.hdf5`` files, and a generic fallback for other HDF5 files.

HyperSpy layout (root attribute ``file_format == "HyperSpy"``): one group per signal under
``/Experiments/<title>/`` holding the ``data`` dataset (numpy order), ``axis-0`` … ``axis-n``
groups whose attributes describe ``data.shape[i]`` (``scale``, ``offset``, ``units``, ``size``,
``name``, ``navigate``), and a ``metadata`` group tree (attributes = leaves). Older files call it
``mapped_parameters``. Axis interpretation is shared with :mod:`atomscope.io.hyperspy`.

Any other HDF5 file (or a HyperSpy file without a readable signal): every 2-D/3-D numeric
dataset becomes an uncalibrated signal named by its path; image-shaped datasets come first as
kind "image" (shallowest path first); table-shaped ones (short side under 8 and at most a quarter
of the long side, e.g. (141, 2) positions) are kind "other". This finds the image of an Atomap
``Atom_Lattice`` file, for instance.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import CorruptFileError
from .._signal import RawSignal
from ..hyperspy import AxisInfo, clean_text, default_signal_name, jsonable, signal_from_axes
from ._common import corrupt as _corrupt

__all__ = ["read", "read_hyperspy_tree", "is_hdf5"]

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MMAP_THRESHOLD = 64 * 1024**2


def looks_like_table(frame: tuple[int, ...]) -> bool:
    """True for (rows, columns) shapes of coordinate tables, e.g. (141, 2) or (5000, 3).

    A frame whose short side is under 8 and at most a quarter of its long side is a table of
    values (positions, parameters), not an image.
    """
    short, long = min(frame), max(frame)
    return short < 8 and long >= 4 * short


def max_in_memory_bytes() -> int:
    """Physical memory in bytes (16 GiB when unknown): no array may claim more."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return 16 * 1024**3


def is_hdf5(path: Path) -> bool:
    """True when the HDF5 signature sits at byte 0, 512, 1024, 2048 … (user-block sizes)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        offset = 0
        while offset + 8 <= size:
            fh.seek(offset)
            if fh.read(8) == HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


# --------------------------------------------------------------------------------------------
# tree access shared by h5py and zarr groups


def _is_array(node: Any) -> bool:
    return hasattr(node, "shape") and hasattr(node, "dtype")


def _children(group: Any) -> Iterator[tuple[str, Any]]:
    if hasattr(group, "members") and callable(group.members):  # zarr 3
        yield from group.members()
    else:  # h5py
        yield from group.items()


def _attrs(node: Any) -> dict[str, Any]:
    try:
        return {str(k): v for k, v in node.attrs.items()}
    except Exception:  # noqa: BLE001 - unreadable attribute types: skip them all
        return {}


_PREFIXES = ("_list_", "_tuple_", "_bs_")


def tree_to_dict(group: Any, depth: int = 0, budget: list[int] | None = None) -> dict[str, Any]:
    """A HyperSpy metadata group (attributes, sub-groups, small datasets) as a nested dict."""
    if budget is None:
        budget = [5000]
    out: dict[str, Any] = {}
    if depth > 20 or budget[0] <= 0:
        return out
    for key, value in _attrs(group).items():
        budget[0] -= 1
        out[_strip_prefix(key)] = jsonable(value)
    for key, node in _children(group):
        budget[0] -= 1
        if budget[0] <= 0:
            break
        if key.startswith("_sig_"):
            continue  # a whole signal stored inside the metadata: not needed
        if _is_array(node):
            size = int(np.prod(node.shape, dtype=np.int64))
            if size <= 256:
                try:
                    out[_strip_prefix(key)] = jsonable(np.asarray(node[()]))
                except Exception:  # noqa: BLE001
                    continue
        else:
            out[_strip_prefix(key)] = tree_to_dict(node, depth + 1, budget)
    return out


def _strip_prefix(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def read_hyperspy_tree(
    root: Any, where: str, load_array: Callable[[Any, str], np.ndarray]
) -> list[RawSignal]:
    """Signals of a HyperSpy file tree (h5py or zarr root group).

    Parameters
    ----------
    root : h5py.Group or zarr.Group
        The file's root group.
    where : str
        File name for messages.
    load_array : callable
        ``load_array(dataset, label) -> ndarray``: reads (or memory-maps) a dataset after checking
        its size; raises :class:`CorruptFileError`.
    """
    if "Experiments" not in root:
        return []
    signals: list[RawSignal] = []
    for group_name, group in _children(root["Experiments"]):
        if _is_array(group) or "data" not in group:
            continue
        ds = group["data"]
        if not _is_array(ds):
            continue
        axes: list[AxisInfo | None] = []
        for i in range(len(ds.shape)):
            key = f"axis-{i}"
            axes.append(AxisInfo.from_mapping(_attrs(group[key])) if key in group else None)
        tree: dict[str, Any] = {}
        for md_key in ("metadata", "mapped_parameters"):
            if md_key in group and not _is_array(group[md_key]):
                tree = tree_to_dict(group[md_key])
                break
        general = tree.get("General")
        title = general.get("title") if isinstance(general, dict) else None
        if group_name != "__unnamed__":
            name = group_name
        elif isinstance(title, str) and title.strip():
            name = title
        else:
            name = ""
        data = load_array(ds, f"{where}: Experiments/{group_name}/data")
        sig = signal_from_axes(data, axes, tree, name)
        if not sig.name:
            sig.name = default_signal_name(sig.kind)
        sig.metadata["hyperspy_file_format"] = clean_text(_attrs(root).get("file_format"))
        version = clean_text(_attrs(root).get("file_format_version"))
        if version:
            sig.metadata["hyperspy_file_format_version"] = version
        signals.append(sig)
    return signals


# --------------------------------------------------------------------------------------------
# h5py specifics


def _h5_loader(path: Path) -> Callable[[Any, str], np.ndarray]:
    filesize = path.stat().st_size
    limit = max_in_memory_bytes()

    def load(ds: Any, label: str) -> np.ndarray:
        dtype = np.dtype(ds.dtype)
        nbytes = int(np.prod(ds.shape, dtype=np.int64)) * dtype.itemsize
        offset = None
        if ds.chunks is None and ds.compression is None and not ds.shape == ():
            try:
                offset = ds.id.get_offset()
            except Exception:  # noqa: BLE001
                offset = None
        if offset is not None:
            if offset + nbytes > filesize:
                raise CorruptFileError(
                    f"{label}: {nbytes} bytes at offset {offset} run past the end of the file "
                    f"({filesize} bytes); the file is truncated."
                )
            if nbytes >= _MMAP_THRESHOLD and dtype.kind in "biuf":
                return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=ds.shape)
        if nbytes > limit:
            raise CorruptFileError(
                f"{label}: the dataset claims {nbytes / 1e9:.1f} GB, more than this computer's "
                "memory; the file is corrupt or too large."
            )
        try:
            return np.asarray(ds[()])
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - HDF5 filters raise OSError and others
            raise CorruptFileError(
                f"{label}: the data could not be read ({type(exc).__name__}: {exc}); the file "
                "may be truncated or damaged."
            ) from exc

    return load


def _generic_signals(f: Any, path: Path, load: Callable[[Any, str], np.ndarray]) -> list[RawSignal]:
    found: list[tuple[str, Any]] = []

    def visit(name: str, node: Any) -> None:
        if _is_array(node) and len(node.shape) in (2, 3):
            try:
                kind = np.dtype(node.dtype).kind
            except TypeError:
                return
            if kind in "biuf":
                found.append((name, node))

    f.visititems(visit)
    images, others = [], []
    for order, (name, ds) in enumerate(found):
        entry = (name.count("/"), order, name, ds)
        (others if looks_like_table(ds.shape[-2:]) else images).append(entry)
    signals: list[RawSignal] = []
    for group, kind in ((sorted(images), "image"), (others, "other")):
        for _depth, _order, name, ds in group:
            data = load(ds, f"{path.name}: {name}")
            md = {"hdf5_path": "/" + name}
            attrs = jsonable(_attrs(ds))
            if attrs:
                md["hdf5_attrs"] = attrs
            signals.append(RawSignal(data, None, name, md, kind))  # type: ignore[arg-type]
    return signals


def read(path: str | os.PathLike[str]) -> list[RawSignal]:
    """Read a HyperSpy ``.hspy``/``.hdf5`` file, or the 2-D/3-D datasets of any HDF5 file.

    Parameters
    ----------
    path : path-like
        ``.hspy``, ``.hdf5``, ``.h5`` or ``.hdf`` file.

    Returns
    -------
    list of RawSignal
        HyperSpy files: one signal per experiment, calibrated from its signal axes (pixel size
        (row, col) in nm; reciprocal units give kind "diffraction", one signal axis "spectrum").
        Other files: one uncalibrated signal per 2-D/3-D numeric dataset, named by its path.

    Raises
    ------
    CorruptFileError
        No HDF5 signature, or a truncated/damaged file.
    """
    import h5py

    path = Path(path)
    if not is_hdf5(path):
        raise _corrupt(path, "not an HDF5 file (no HDF5 signature found).")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise _corrupt(
            path, f"the HDF5 library cannot open it ({exc}); the file is truncated or damaged."
        ) from exc
    load = _h5_loader(path)
    with f:
        try:
            fmt = clean_text(_attrs(f).get("file_format")) or ""
            signals: list[RawSignal] = []
            if fmt.lower() == "hyperspy" or "Experiments" in f:
                signals = read_hyperspy_tree(f, path.name, load)
            if not signals:
                signals = _generic_signals(f, path, load)
        except CorruptFileError:
            raise
        except (OSError, KeyError, RuntimeError, ValueError) as exc:
            raise _corrupt(
                path, f"the HDF5 structure is damaged ({type(exc).__name__}: {exc})."
            ) from exc
    return signals
