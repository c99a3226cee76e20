"""Looking inside networks: the learned first-layer kernels (the particle-segmentation paper's
interpretability figure: a shallow network's filters, and their mean, read as images)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from ..errors import ParameterError

__all__ = ["first_layer_kernels", "plot_kernels"]


def first_layer_kernels(model: nn.Module) -> np.ndarray:
    """Weights of the first convolution, (n_filters, k, k) (input channels summed)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            w = module.weight.detach().cpu().numpy()
            return w.sum(axis=1)
    raise ParameterError("the network has no convolution layer")


def plot_kernels(
    model: nn.Module, fig: Any = None, *, max_kernels: int = 32, with_mean: bool = True
) -> Any:
    """Draw the first-layer kernels in a grid (each on its own symmetric colour scale) and,
    with *with_mean*, their mean (the paper's Supplementary Figs. 7–8). Returns the figure."""
    import matplotlib.pyplot as plt

    k = first_layer_kernels(model)[:max_kernels]
    n = len(k) + (1 if with_mean else 0)
    cols = min(n, 11)
    rows = int(np.ceil(n / cols))
    if fig is None:
        fig = plt.figure(figsize=(0.85 * cols, 0.95 * rows + 0.45))
    axes = fig.subplots(rows, cols, squeeze=False)
    panels = list(k) + ([k.mean(axis=0)] if with_mean else [])
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i >= len(panels):
            continue
        v = float(np.abs(panels[i]).max()) or 1.0
        ax.imshow(panels[i], cmap="RdBu_r", vmin=-v, vmax=v, interpolation="nearest")
        ax.set_title("mean" if with_mean and i == len(panels) - 1 else str(i), fontsize=6, pad=2)
    fig.suptitle(f"first-layer kernels ({k.shape[-1]}×{k.shape[-1]} px)", fontsize=9)
    return fig
