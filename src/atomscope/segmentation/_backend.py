"""Optional torch device for the descriptors (``device="cuda"``, ``"cpu"`` …).

torch is a dependency of atomscope, but it is imported only when a device is asked for, so the
default numpy path stays import-light. Results agree with the numpy path to float tolerance.
"""

from __future__ import annotations

from typing import Any

from ..errors import DependencyError, ParameterError

__all__ = ["resolve_device"]


def resolve_device(device: Any) -> Any:
    """None (numpy path) or a ``torch.device``; raise a clear error for unusable devices."""
    if device is None:
        return None
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a core dependency
        raise DependencyError("device= needs PyTorch (pip install torch)") from exc
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(f"Unknown device {device!r} (use 'cpu', 'cuda', 'cuda:0' …)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device={device!r} was asked for, but CUDA is not available here")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ParameterError(f"device={device!r} was asked for, but MPS is not available here")
    return dev


class Ops:
    """The few array operations the descriptors use, for numpy (``device=None``) or torch.

    Both namespaces share slicing with positive steps, ``reshape``, ``sum(axis)`` and
    ``cumsum(axis)`` (positional), so the kernels are written once.
    """

    def __init__(self, device: Any = None) -> None:
        self.device = device
        self.torch = device is not None
        if self.torch:
            import torch

            self._t = torch

    # conversions -----------------------------------------------------------------------
    def asarray(self, a: Any, dtype: str = "float32") -> Any:
        import numpy as np

        if self.torch:
            t = self._t
            tdt = {"float32": t.float32, "float64": t.float64, "int64": t.int64}[dtype]
            if isinstance(a, t.Tensor):
                return a.to(device=self.device, dtype=tdt)
            return t.as_tensor(np.asarray(a), dtype=tdt, device=self.device)
        return np.asarray(a, dtype=dtype)

    def to_numpy(self, a: Any) -> Any:
        if self.torch and isinstance(a, self._t.Tensor):
            return a.detach().cpu().numpy()
        return a

    # construction ------------------------------------------------------------------------
    def zeros(self, shape: tuple[int, ...], dtype: str = "float32") -> Any:
        import numpy as np

        if self.torch:
            t = self._t
            return t.zeros(shape, dtype=getattr(t, dtype), device=self.device)
        return np.zeros(shape, dtype=dtype)

    def cat(self, arrays: list[Any], axis: int = 0) -> Any:
        import numpy as np

        return self._t.cat(arrays, dim=axis) if self.torch else np.concatenate(arrays, axis)

    def stack(self, arrays: list[Any], axis: int = 0) -> Any:
        import numpy as np

        return self._t.stack(arrays, dim=axis) if self.torch else np.stack(arrays, axis)

    # maths -------------------------------------------------------------------------------
    def einsum(self, spec: str, *operands: Any) -> Any:
        import numpy as np

        return self._t.einsum(spec, *operands) if self.torch else np.einsum(spec, *operands)

    def permute(self, a: Any, axes: tuple[int, ...]) -> Any:
        """Transposed, contiguous copy."""
        import numpy as np

        if self.torch:
            return a.permute(*axes).contiguous()
        return np.ascontiguousarray(a.transpose(axes))

    def sqrt(self, a: Any) -> Any:
        import numpy as np

        return self._t.sqrt(a) if self.torch else np.sqrt(a)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        import numpy as np

        if self.torch:
            t = self._t
            b = t.as_tensor(b, dtype=a.dtype, device=a.device) if not isinstance(b, t.Tensor) else b
            return t.where(cond, a, b)
        return np.where(cond, a, b)

    def clip(self, a: Any, lo: float, hi: float) -> Any:
        import numpy as np

        return a.clamp(lo, hi) if self.torch else np.clip(a, lo, hi)

    def maximum(self, a: Any, value: float) -> Any:
        import numpy as np

        return a.clamp_min(value) if self.torch else np.maximum(a, value)
