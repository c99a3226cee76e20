"""Neural networks shared by atomscope's learned analyses (particle segmentation, column
probability maps …): network definitions, augmentation, data preparation, a reproducible
training loop, tiled inference and model files with their registry.

CPU is the default everywhere; pass ``device="cuda"`` (or "auto") to use a GPU.
"""

from ._device import resolve_device, torch_threads
from .augment import Augmentation
from .data import grouped_split, normalize_image, preprocess, random_patches, tile_positions
from .infer import predict, predict_logits
from .networks import (
    ARCHITECTURES,
    ShallowCNN,
    UNet,
    build_model,
    count_parameters,
    probabilities,
    register_architecture,
)
from .train import TrainingHistory, pixel_scores, train_model
from .visualize import first_layer_kernels, plot_kernels
from .weights import list_models, load_model, read_manifest, save_model, shipped_model_path

__all__ = [
    "UNet", "ShallowCNN", "ARCHITECTURES", "build_model", "register_architecture",
    "count_parameters", "probabilities", "Augmentation", "normalize_image", "preprocess",
    "random_patches", "tile_positions", "grouped_split", "train_model", "TrainingHistory",
    "pixel_scores", "predict", "predict_logits", "save_model", "load_model", "read_manifest",
    "list_models", "shipped_model_path", "resolve_device", "torch_threads",
    "first_layer_kernels", "plot_kernels",
]
