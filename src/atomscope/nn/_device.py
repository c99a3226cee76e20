"""Device selection and CPU thread limits for torch work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ..errors import ParameterError

__all__ = ["resolve_device", "torch_threads"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/"cpu" → CPU (the default everywhere); "auto" → CUDA when available, else CPU;
    "cuda", "cuda:1", "mps" … as given, with a clear error when unavailable."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ParameterError(
                f"Unknown device {device!r} (use cpu, cuda, cuda:N, mps or auto)"
            ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(
            "device='cuda' was asked for, but torch sees no CUDA GPU; "
            "use device='cpu' (the default) or 'auto'."
        )
    if dev.type == "mps" and not (
        hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    ):
        raise ParameterError("device='mps' was asked for, but it is not available here.")
    return dev


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Use *n* CPU threads for torch inside the block (None: leave the setting alone); the
    previous setting is restored afterwards."""
    if n is None:
        yield
        return
    if n < 1:
        raise ParameterError(f"n_threads must be ≥ 1, got {n}")
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)
