"""The object a training run returns (no PyTorch import needed to describe it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TrainedModel", "training_record", "finish_training"]


@dataclass
class TrainedModel:
    """A trained network with its history and manifest.

    Attributes
    ----------
    model : torch.nn.Module
    history : atomscope.nn.TrainingHistory
    manifest : dict
        What :func:`atomscope.nn.save_model` writes next to the weights.
    path : Path or None
        The ``.pt`` file when saved.
    """

    model: Any
    history: Any
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def summary(self) -> dict[str, Any]:
        """Path, architecture, size, metrics and training recipe (without the loss history)."""
        return {
            "path": str(self.path) if self.path else None,
            "architecture": self.manifest.get("architecture"),
            "n_parameters": self.manifest.get("n_parameters"),
            "metrics": self.manifest.get("metrics"),
            "training": {
                k: v for k, v in self.manifest.get("training", {}).items() if k != "history"
            },
        }


def training_record(
    history: Any, *, command: str, seed: int, source: str, data: dict[str, Any]
) -> dict[str, Any]:
    """The manifest's ``training`` entry: how to rebuild the model and how training went.

    Parameters
    ----------
    history : atomscope.nn.TrainingHistory
    command : str
        The command line that retrains the model.
    seed : int
    source : str
        Where the training data came from ("simulated", "user positions" …).
    data : dict
        The data recipe (JSON-serialisable; no arrays).
    """
    return {
        "command": command,
        "seed": seed,
        "source": source,
        "data": data,
        "settings": history.settings,
        "history": history.records,
        "best_epoch": history.best_epoch,
        "seconds": round(history.seconds, 1),
        "cpu_seconds": round(history.cpu_seconds, 1),
    }


def finish_training(
    model: Any,
    history: Any,
    manifest: dict[str, Any],
    *,
    out: str | Path | None,
    name: str,
    n_threads: int | None,
    wall_start: float,
    cpu_start: float,
) -> TrainedModel:
    """Record total wall and CPU time (s, from ``time.perf_counter`` / ``time.process_time``
    starts), threads and load in the manifest; save ``NAME.pt`` + ``NAME.json`` when ``out``
    is a folder (or the ``.pt`` path itself); return the :class:`TrainedModel`."""
    import os
    import time

    import torch

    from .weights import save_model

    record = manifest.setdefault("training", {})
    record["seconds_total"] = round(time.perf_counter() - wall_start, 1)
    record["cpu_seconds_total"] = round(time.process_time() - cpu_start, 1)
    record["threads"] = n_threads or torch.get_num_threads()
    if hasattr(os, "getloadavg"):
        record["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    path = None
    if out is not None:
        p = Path(out)
        path = save_model(model, p if p.suffix == ".pt" else p / f"{name}.pt", manifest=manifest)
    return TrainedModel(model, history, manifest, path)
