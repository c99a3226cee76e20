"""Neural networks shared by atomscope's learned analyses (particle segmentation, column
probability maps …): network definitions, augmentation, data preparation, a reproducible
training loop, tiled inference and model files with their registry.

CPU is the default everywhere; pass ``device="cuda"`` (or "auto") to use a GPU.

Names are resolved on first use, so that importing an analysis does not import PyTorch until a
network is actually needed.
"""

from __future__ import annotations

import importlib
from typing import Any

_SOURCES = {
    "resolve_device": "_device",
    "torch_threads": "_device",
    "Augmentation": "augment",
    "log_uniform": "augment",
    "grouped_split": "data",
    "normalize_image": "data",
    "preprocess": "data",
    "random_patches": "data",
    "tile_positions": "data",
    "predict": "infer",
    "predict_logits": "infer",
    "ARCHITECTURES": "networks",
    "ShallowCNN": "networks",
    "UNet": "networks",
    "build_model": "networks",
    "count_parameters": "networks",
    "probabilities": "networks",
    "register_architecture": "networks",
    "TrainedModel": "trained",
    "TrainingHistory": "train",
    "pixel_scores": "scores",
    "train_model": "train",
    "first_layer_kernels": "visualize",
    "plot_kernels": "visualize",
    "list_models": "weights",
    "model_files": "weights",
    "load_model": "weights",
    "read_manifest": "weights",
    "save_model": "weights",
    "shipped_model_path": "weights",
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_SOURCES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCES))
