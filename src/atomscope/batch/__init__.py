"""Run any registered analysis over folders, globs and stacks, on one machine or a Dask
cluster, with resumable, atomic outputs."""

from .inputs import Task, expand_inputs
from .run import BatchSummary, run_batch

__all__ = ["Task", "expand_inputs", "run_batch", "BatchSummary"]
