"""Turn user inputs (files, folders, globs, stacks) into per-frame tasks, without reading pixels."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidImageError, MissingFileError
from ..io.load import SUPPORTED_EXTENSIONS, _frame_files, natural_sort_key, read_signals

__all__ = ["Task", "expand_inputs", "frame_count"]


@dataclass(frozen=True)
class Task:
    """One image to analyse: a file, and a frame of it when it is a stack."""

    key: str
    path: str
    frame: int | None = None
    signal: str | None = None

    def describe(self) -> str:
        return self.path + (f" [frame {self.frame}]" if self.frame is not None else "")


def frame_count(path: Path, signal: str | None = None) -> int:
    """Frames in a file (1 for a single image). Reads headers; pixel data stay on disk where the
    reader memory-maps them."""
    from ..io.load import _select_signal

    signals = read_signals(path)
    sig = _select_signal(signals, signal, path.name)
    shape = tuple(sig.data.shape[: sig.data.ndim - (1 if sig.rgb else 0)])
    while len(shape) > 2 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) == 2:
        return 1
    if len(shape) == 3:
        return int(shape[0])
    raise InvalidImageError(f"{path.name}: {len(shape)}-D data is not an image or a stack")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "input"


def expand_inputs(
    inputs: list[str | os.PathLike[str]], *, signal: str | None = None, frames: slice | None = None
) -> list[Task]:
    """Tasks for every image in *inputs*, in a stable order.

    Files give one task, stacks one task per frame (``frames`` selects a slice), folders their
    image files (naturally sorted; a TIA ``.emi`` stands for its ``.ser``), and glob patterns
    the files they match.

    Raises
    ------
    MissingFileError
        When an input matches nothing.
    """
    files: list[Path] = []
    for item in inputs:
        text = os.fspath(item)
        path = Path(text).expanduser()
        if any(ch in text for ch in "*?["):
            matches = sorted(
                (Path(p) for p in glob.glob(text, recursive=True)),
                key=lambda p: natural_sort_key(str(p)),
            )
            matches = [
                p for p in matches if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS
            ]
            if not matches:
                raise MissingFileError(f"No image files match {text!r}")
            files.extend(matches)
        elif path.is_dir() and path.suffix.lower() != ".zspy":
            found = _frame_files(path)
            if not found:
                raise InvalidImageError(f"{path} holds no image files")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise MissingFileError(f"No such file or folder: {path}")
    stems: dict[str, int] = {}
    for f in files:
        stems[f.stem] = stems.get(f.stem, 0) + 1
    tasks: list[Task] = []
    seen: set[str] = set()
    for f in files:
        base = _safe(f.stem if stems[f.stem] == 1 else f"{f.parent.name}_{f.stem}")
        n = frame_count(f, signal)
        indices = list(range(n))[frames] if (frames is not None and n > 1) else range(n)
        for k in indices:
            key = base if n == 1 else f"{base}_f{k:05d}"
            while key in seen:
                key += "_"
            seen.add(key)
            tasks.append(Task(key, str(f), None if n == 1 else k, signal))
    return tasks
