"""One progress-bar wrapper for the whole package, honouring ``show_progress=``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(
    iterable: Iterable[T],
    *,
    show_progress: bool = True,
    desc: str | None = None,
    total: int | None = None,
    unit: str = "it",
) -> Iterator[T]:
    """Wrap *iterable* in a tqdm bar when *show_progress* is true; otherwise return it unchanged."""
    if not show_progress:
        return iter(iterable)
    return iter(tqdm(iterable, desc=desc, total=total, unit=unit, dynamic_ncols=True, leave=False))


def progress_bar(
    *,
    show_progress: bool = True,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
):
    """A manually updated bar (``bar.update(n)``), disabled when *show_progress* is false."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=not show_progress,
        dynamic_ncols=True,
        leave=False,
    )
