"""Run independent blocks of work on a few threads (numpy and scipy.fft release the GIL)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["default_threads", "run_blocks"]

T = TypeVar("T")


def default_threads() -> int:
    """Threads for the descriptors: the CPUs this process may use, at most 2 (more threads
    help little on these memory-bound kernels)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS/Windows
        n = os.cpu_count() or 1
    return max(1, min(2, n))


def run_blocks(fn: Callable[[Any], T], blocks: Iterable[Any], n_threads: int) -> list[T]:
    """``[fn(b) for b in blocks]``, on ``n_threads`` threads when more than one."""
    items = list(blocks)
    if n_threads <= 1 or len(items) <= 1:
        return [fn(b) for b in items]
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        return list(pool.map(fn, items))
