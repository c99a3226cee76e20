"""The object a training run returns (no PyTorch import needed to describe it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TrainedModel"]


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
