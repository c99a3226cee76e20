"""Model files: a small ``.pt`` state dict plus a JSON manifest, and the registry of models
shipped inside the package (``atomscope/nn/models/``).

A model file ``NAME.pt`` always has a sibling ``NAME.json``::

    {
      "format": "atomscope-model", "format_version": 1,
      "name": "particles-unet", "task": "particles",
      "architecture": "unet", "config": {...},          # rebuilds the network
      "preprocessing": {...},                           # what the network expects as input
      "output": {...},                                  # classes, positive class
      "training": {"command": ..., "seed": ..., "data": ..., "history": ..., "seconds": ...},
      "metrics": {...}, "n_parameters": ..., "sha256": "<of NAME.pt>", ...
    }

Weights are loaded with ``torch.load(weights_only=True)`` (no pickled code) and checked against
the manifest's SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._fileio import to_jsonable, write_bytes, write_json
from ..errors import CorruptFileError, MissingFileError, ParameterError
from ._device import resolve_device
from .networks import build_model, count_parameters

__all__ = [
    "save_model",
    "load_model",
    "read_manifest",
    "list_models",
    "model_files",
    "shipped_model_path",
    "MODEL_FORMAT",
]

MODEL_FORMAT = "atomscope-model"
FORMAT_VERSION = 1


def _models_dir() -> Path:
    return Path(str(resources.files("atomscope.nn") / "models"))


def _pair(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(weights .pt, manifest .json) for a .pt/.json file, a folder holding one model, or a
    stem."""
    p = Path(path)
    if p.is_dir():
        pts = sorted(p.glob("*.pt"))
        if len(pts) != 1:
            raise MissingFileError(
                f"{p} holds {len(pts)} .pt files; give the model file itself (NAME.pt)"
            )
        p = pts[0]
    if p.suffix == ".json":
        return p.with_suffix(".pt"), p
    if p.suffix == ".pt":
        return p, p.with_suffix(".json")
    return p.with_suffix(".pt"), p.with_suffix(".json")


def save_model(
    model: nn.Module, path: str | os.PathLike[str], *, manifest: dict[str, Any] | None = None
) -> Path:
    """Write ``NAME.pt`` (state dict) and ``NAME.json`` (manifest) atomically.

    Parameters
    ----------
    model : torch.nn.Module
        A network built by :func:`atomscope.nn.build_model` (it must have ``architecture`` and
        ``config``).
    path : path
        ``NAME.pt``, or a folder (the file is then ``model.pt`` inside it).
    manifest : dict, optional
        Extra manifest entries (name, task, preprocessing, output, training, metrics …).

    Returns
    -------
    Path
        The ``.pt`` file.
    """
    arch = getattr(model, "architecture", None)
    config = getattr(model, "config", None)
    if arch is None or config is None:
        raise ParameterError(
            "save_model needs a network with 'architecture' and 'config' "
            "(build it with atomscope.nn.build_model)"
        )
    p = Path(path)
    if p.suffix != ".pt":
        p = p / "model.pt"
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    record: dict[str, Any] = {
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "name": p.stem,
        **(manifest or {}),
        "architecture": arch,
        "config": dict(config),
        "n_parameters": count_parameters(model),
        "sha256": hashlib.sha256(data).hexdigest(),
        "file": p.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "torch_version": torch.__version__,
    }
    try:
        from .. import __version__

        record["atomscope_version"] = __version__
    except ImportError:  # pragma: no cover
        pass
    write_bytes(p, data)
    write_json(p.with_suffix(".json"), to_jsonable(record))
    for f in (p, p.with_suffix(".json")):  # model files are meant to be shared
        os.chmod(f, 0o644)
    return p


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON manifest of a model file (or of a shipped model by name)."""
    _, js = model_files(path)
    try:
        manifest = json.loads(js.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingFileError(
            f"No model manifest {js} (a model needs NAME.pt + NAME.json)"
        ) from None
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{js.name} is not valid JSON: {exc}") from exc
    if manifest.get("format") != MODEL_FORMAT:
        raise CorruptFileError(f"{js.name} is not an atomscope model manifest")
    return manifest


def model_files(source: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The weights (``.pt``) and manifest (``.json``) of a shipped model name or a model path.

    Raises
    ------
    MissingFileError
        When neither a shipped model of that name nor the file exists.
    """
    s = str(source)
    shipped = _models_dir() / f"{s}.pt"
    if os.sep not in s and "/" not in s and not s.endswith((".pt", ".json")) and shipped.exists():
        return shipped, shipped.with_suffix(".json")
    p = Path(source)
    if not p.exists() and not p.with_suffix(".pt").exists():
        known = ", ".join(sorted(list_models())) or "none"
        raise MissingFileError(
            f"No model file or shipped model named {s!r} (shipped models: {known})"
        )
    return _pair(p)


def load_model(
    source: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    check_hash: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a network from a model file or a shipped model name, in eval mode.

    Parameters
    ----------
    source : str or path
        A shipped model name (see :func:`list_models`), ``NAME.pt``, ``NAME.json`` or a folder
        with one model.
    device : str, optional
        Where to put the weights ("cpu" default).
    check_hash : bool
        Verify the weights against the manifest's SHA-256.

    Returns
    -------
    (model, manifest)
    """
    pt, js = model_files(source)
    manifest = read_manifest(js)
    if not pt.exists():
        raise MissingFileError(f"Model weights {pt} are missing (manifest {js.name} found)")
    data = pt.read_bytes()
    if (
        check_hash
        and manifest.get("sha256")
        and hashlib.sha256(data).hexdigest() != manifest["sha256"]
    ):
        raise CorruptFileError(
            f"{pt.name} does not match the SHA-256 in {js.name}; the "
            "weights were changed or truncated"
        )
    dev = resolve_device(device)
    try:
        state = torch.load(io.BytesIO(data), map_location=dev, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds on bad bytes
        raise CorruptFileError(f"{pt.name} could not be read as torch weights: {exc}") from exc
    model = build_model(manifest["architecture"], **manifest.get("config", {}))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CorruptFileError(
            f"{pt.name} does not fit its manifest's architecture: {exc}"
        ) from exc
    model.to(dev)
    model.eval()
    return model, manifest


def list_models() -> dict[str, dict[str, Any]]:
    """Shipped models: name → manifest (task, architecture, metrics, training command …)."""
    out: dict[str, dict[str, Any]] = {}
    d = _models_dir()
    if not d.is_dir():
        return out
    for js in sorted(d.glob("*.json")):
        try:
            m = json.loads(js.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if m.get("format") == MODEL_FORMAT and js.with_suffix(".pt").exists():
            out[js.stem] = m
    return out


def shipped_model_path(name: str) -> Path:
    """Path of a shipped model's ``.pt`` file."""
    p = _models_dir() / f"{name}.pt"
    if not p.exists():
        raise MissingFileError(
            f"No shipped model {name!r}; available: {', '.join(sorted(list_models())) or 'none'}"
        )
    return p
