"""Network definitions shared by atomscope's learned analyses.

Two families, after Horwath et al. (the particle-segmentation paper; see ``docs/particles.md``):

* :class:`UNet` — an encoder/decoder with skip connections. Each level is a 3×3 convolution,
  an activation and (optionally) batch normalisation, in the paper's order (activation, then
  normalisation), followed by 2×2 max pooling; the decoder upsamples with transposed
  convolutions (or bilinear interpolation + convolution), concatenates the encoder features of
  the same resolution and, in the ``double_conv`` ("TwoConv") variant, adds one more
  convolution after each concatenation. The paper's best 1024² model is ``depth=4``,
  ``base_channels=8`` (8–64 channels), LeakyReLU, batch normalisation, one convolution per
  level (≈ 87 k parameters in the paper's layout; ≈ 70 k here).
* :class:`ShallowCNN` — one wide convolution layer (32 filters) followed by a 1×1 convolution
  that combines the features; its kernels can be shown as images (:meth:`ShallowCNN.kernels`).

Every network records how to rebuild itself (``architecture`` and ``config``), so a weight file
plus its JSON manifest is enough to restore it (:mod:`atomscope.nn.weights`). Networks output
logits of shape (N, n_classes, H, W) for any input size H, W ≥ 1 (the U-Net pads internally
when a side is not a multiple of ``2 ** depth``); :func:`probabilities` turns them into
per-pixel class probabilities (softmax, or a sigmoid for one output channel).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ParameterError

__all__ = [
    "UNet",
    "ShallowCNN",
    "ARCHITECTURES",
    "build_model",
    "register_architecture",
    "count_parameters",
    "probabilities",
    "ACTIVATIONS",
]

#: activation name -> factory
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=True),
    "elu": lambda: nn.ELU(inplace=True),
    "gelu": lambda: nn.GELU(),
    "identity": lambda: nn.Identity(),
}


def _activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ParameterError(
            f"Unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}"
        ) from None


class _ConvUnit(nn.Sequential):
    """conv → activation → batch norm (the paper's order)."""

    def __init__(self, cin: int, cout: int, k: int, batch_norm: bool, activation: str) -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, padding=k // 2), _activation(activation)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(cout))
        super().__init__(*layers)


class _Up(nn.Module):
    """Upsample ×2 to the size of the skip tensor, with a transposed convolution (paper) or
    bilinear interpolation followed by a convolution."""

    def __init__(
        self, cin: int, cout: int, k: int, mode: str, batch_norm: bool, activation: str
    ) -> None:
        super().__init__()
        self.mode = mode
        if mode == "transpose":
            self.conv: nn.Module = nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2)
        elif mode == "bilinear":
            self.conv = nn.Conv2d(cin, cout, k, padding=k // 2)
        else:
            raise ParameterError(f"upsample must be 'transpose' or 'bilinear', got {mode!r}")
        self.act = _activation(activation)
        self.bn: nn.Module = nn.BatchNorm2d(cout) if batch_norm else nn.Identity()

    def forward(self, x: torch.Tensor, size: torch.Size) -> torch.Tensor:
        if self.mode == "transpose":
            y = self.conv(x, output_size=size)
        else:
            y = self.conv(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
        return self.bn(self.act(y))


class UNet(nn.Module):
    """A U-Net for per-pixel classification (segmentation, probability maps).

    Parameters
    ----------
    in_channels : int
        Input channels (1 for a micrograph).
    n_classes : int
        Output channels: 2 for a softmax over background/foreground (the paper), 1 for a
        sigmoid probability, more for several classes.
    base_channels : int
        Channels of the first level; level ``i`` has ``base_channels * 2**i``.
    depth : int
        Number of encoder levels (each followed by 2×2 max pooling); the paper uses 3 for 512²
        and 4 for 1024² images.
    batch_norm : bool
        Batch normalisation after every activation (the paper's most important ingredient).
    double_conv : bool
        One more convolution after each skip concatenation (the paper's "TwoConv" variant).
    activation : {"leaky_relu", "relu", "elu", "gelu"}
        Non-linearity (LeakyReLU in the paper's best models).
    kernel_size : int
        Convolution kernel size (odd).
    upsample : {"transpose", "bilinear"}
        Transposed convolutions (paper) or bilinear interpolation + convolution.
    """

    architecture = "unet"

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 2,
        base_channels: int = 8,
        depth: int = 4,
        batch_norm: bool = True,
        double_conv: bool = False,
        activation: str = "leaky_relu",
        kernel_size: int = 3,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        if depth < 1 or base_channels < 1 or in_channels < 1 or n_classes < 1:
            raise ParameterError("UNet needs depth, base_channels, in_channels, n_classes ≥ 1")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ParameterError(f"kernel_size must be odd, got {kernel_size}")
        self.config: dict[str, Any] = {
            "in_channels": in_channels,
            "n_classes": n_classes,
            "base_channels": base_channels,
            "depth": depth,
            "batch_norm": batch_norm,
            "double_conv": double_conv,
            "activation": activation,
            "kernel_size": kernel_size,
            "upsample": upsample,
        }
        k = kernel_size
        ch = [base_channels * 2**i for i in range(depth)]
        self.encoder = nn.ModuleList()
        cin = in_channels
        for c in ch:
            self.encoder.append(_ConvUnit(cin, c, k, batch_norm, activation))
            cin = c
        self.pool = nn.MaxPool2d(2, 2)
        # decoder, deepest first: upsample to half the skip's channels (at least base),
        # concatenate the skip, optionally one more convolution
        self.ups = nn.ModuleList()
        self.merges = nn.ModuleList()
        for i in reversed(range(depth)):
            cout = max(ch[i] // 2, base_channels)
            self.ups.append(_Up(cin, cout, k, upsample, batch_norm, activation))
            cin = cout + ch[i]
            if double_conv:
                self.merges.append(_ConvUnit(cin, cin, k, batch_norm, activation))
            else:
                self.merges.append(nn.Identity())
        self.final = _ConvUnit(cin, base_channels, k, batch_norm, activation)
        self.head = nn.Conv2d(base_channels, n_classes, 1)

    @property
    def size_multiple(self) -> int:
        """Input sides that are multiples of this need no internal padding."""
        return 2 ** int(self.config["depth"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = self.size_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:  # reflect-pad so that every pooling level keeps whole pixels
            mode = "reflect" if (ph < h and pw < w) else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        skips = []
        for enc in self.encoder:
            x = enc(x)
            skips.append(x)
            x = self.pool(x)
        for up, merge, skip in zip(self.ups, self.merges, reversed(skips), strict=True):
            x = up(x, skip.shape[-2:])
            x = merge(torch.cat((x, skip), dim=1))
        x = self.head(self.final(x))
        return x[..., :h, :w] if (ph or pw) else x


class ShallowCNN(nn.Module):
    """The paper's shallow, wide network: one convolution layer of ``n_filters`` filters of
    ``kernel_size``² pixels, an activation (and optional batch normalisation), then a 1×1
    convolution combining the features into class logits.

    Parameters
    ----------
    in_channels, n_classes : int
        As for :class:`UNet`.
    n_filters : int
        Filters of the wide layer (32 in the paper; 1 gives the single-filter model of the
        paper's interpretability figure).
    kernel_size : int
        Odd kernel size (9 and 7 in the paper).
    batch_norm : bool
        Batch normalisation after the activation.
    activation : str
        Non-linearity.
    """

    architecture = "shallow"

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 2,
        n_filters: int = 32,
        kernel_size: int = 9,
        batch_norm: bool = True,
        activation: str = "leaky_relu",
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ParameterError(f"kernel_size must be odd, got {kernel_size}")
        if n_filters < 1:
            raise ParameterError("n_filters must be ≥ 1")
        self.config: dict[str, Any] = {
            "in_channels": in_channels,
            "n_classes": n_classes,
            "n_filters": n_filters,
            "kernel_size": kernel_size,
            "batch_norm": batch_norm,
            "activation": activation,
        }
        self.features = _ConvUnit(in_channels, n_filters, kernel_size, batch_norm, activation)
        self.head = nn.Conv2d(n_filters, n_classes, 1)

    size_multiple = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def kernels(self) -> Any:
        """The learned filters of the wide layer, (n_filters, in_channels, k, k) numpy array."""
        return self.features[0].weight.detach().cpu().numpy().copy()


#: architecture name -> class; extend with :func:`register_architecture`
ARCHITECTURES: dict[str, type[nn.Module]] = {"unet": UNet, "shallow": ShallowCNN}


def register_architecture(name: str, cls: type[nn.Module]) -> None:
    """Make *cls* (which must take its config as keyword arguments and expose ``config``)
    loadable from weight files under *name*."""
    ARCHITECTURES[name] = cls


def build_model(architecture: str, *, seed: int | None = None, **config: Any) -> nn.Module:
    """Build a registered network; with *seed*, its initial weights are reproducible (the
    global torch random state is restored afterwards)."""
    try:
        cls = ARCHITECTURES[architecture]
    except KeyError:
        raise ParameterError(
            f"Unknown architecture {architecture!r}; available: {', '.join(ARCHITECTURES)}"
        ) from None
    if seed is None:
        return cls(**config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return cls(**config)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Per-pixel class probabilities: softmax over channels, or a sigmoid for one channel."""
    if logits.shape[1] == 1:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=1)
