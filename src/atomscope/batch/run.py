"""Resumable batch execution on one machine or a Dask cluster.

Every task writes its result folder under a temporary name and renames it into place, then
writes a small "done" marker; a rerun skips tasks with a marker, so a crash or Ctrl-C loses
nothing that was finished. A failing task records its error and does not stop the others.
Workers load their own frames (memory-mapped where the format allows), so a stack is never read
whole. Combined tables and label stacks are rebuilt from the per-task folders at the end, in
task order, so an interrupted-and-resumed batch gives exactly the same combined outputs as an
uninterrupted one.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._fileio import atomic_path, write_json
from ..errors import ParameterError
from .inputs import Task, expand_inputs

__all__ = ["BatchSummary", "run_batch", "resolve_analysis"]

_DONE = ".done"
_FAILED = ".failed"
_PARTIAL = ".partial"


@dataclass
class BatchSummary:
    """What a batch did."""

    out: Path
    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)
    combined: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    chunk_size: int = 1
    workers: str = "in-process"

    def lines(self) -> list[str]:
        out = [
            f"{self.total} input(s): {self.done} done, {self.skipped} skipped (already "
            f"done), {self.failed} failed, in {self.seconds:.1f} s ({self.workers}, "
            f"{self.chunk_size} task(s) per chunk)"
        ]
        if self.interrupted:
            out.append(
                "Interrupted: finished results are kept; run the same command again to "
                "complete the rest."
            )
        for f in self.failures[:10]:
            out.append(f"  failed: {f['input']}: {f['error']}")
        if len(self.failures) > 10:
            out.append(f"  … and {len(self.failures) - 10} more (see {self.out / 'failures.csv'})")
        for name, path in self.combined.items():
            out.append(f"{name}: {path}")
        return out


def resolve_analysis(name: str) -> dict[str, Any]:
    """The analysis function and its output file names, by registry name or "module:function"."""
    from ..analyses import ANALYSES

    if name in ANALYSES:
        a = ANALYSES[name]
        return {
            "name": name,
            "function": a.function_path,
            "table_file": a.table_file,
            "labels_file": a.labels_file,
        }
    if ":" in name:
        fn = _function(name)
        return {
            "name": name,
            "function": name,
            "table_file": getattr(fn, "table_file", "table.csv"),
            "labels_file": getattr(fn, "labels_file", None),
        }
    raise ParameterError(
        f"Unknown analysis {name!r}; available: {', '.join(sorted(ANALYSES))} "
        "(or a 'module:function' returning a result with save())"
    )


def _function(path: str) -> Callable[..., Any]:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def _marker(out: Path, kind: str, key: str) -> Path:
    return out / kind / f"{key}.json"


def _process(
    task: Task,
    spec: dict[str, Any],
    out: Path,
    options: dict[str, Any],
    load_options: dict[str, Any],
    report: bool,
) -> dict[str, Any]:
    """Analyse one task in this process; never raises."""
    from ..io import load

    done = _marker(out, _DONE, task.key)
    if done.exists():
        return {"key": task.key, "status": "skipped"}
    t0 = time.perf_counter()
    partial = out / _PARTIAL / f"{task.key}.{os.getpid()}"
    final = out / task.key
    try:
        mg = load(task.path, frame=task.frame, signal=task.signal, **load_options)
        if mg.is_stack:
            mg = mg.frame(0)
        result = _function(spec["function"])(mg, **options)
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        result.save(partial)
        if report:
            from ..report.html import write_html

            write_html(
                {spec["name"]: result},
                partial / "report.html",
                title=f"atomscope {spec['name']}: {task.describe()}",
                inputs={
                    "input": task.describe(),
                    "pixel size (nm)": mg.pixel_size,
                    "shape": list(mg.shape),
                },
            )
        if final.exists():  # left by a run that died between rename and marker
            shutil.rmtree(final)
        os.replace(partial, final)
        seconds = time.perf_counter() - t0
        summary = result.summary() if hasattr(result, "summary") else {}
        write_json(
            done,
            {
                "key": task.key,
                "input": task.path,
                "frame": task.frame,
                "seconds": seconds,
                "summary": summary,
            },
        )
        failed = _marker(out, _FAILED, task.key)
        if failed.exists():
            failed.unlink()
        return {"key": task.key, "status": "done", "seconds": seconds}
    except Exception as exc:  # noqa: BLE001 - one bad input must not stop the batch
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
        message = f"{type(exc).__name__}: {exc}"
        write_json(
            _marker(out, _FAILED, task.key),
            {
                "key": task.key,
                "input": task.describe(),
                "error": message,
                "traceback": traceback.format_exc(),
            },
        )
        return {
            "key": task.key,
            "status": "failed",
            "error": message,
            "seconds": time.perf_counter() - t0,
        }


def _run_chunk(
    tasks: list[Task],
    spec: dict[str, Any],
    out: str,
    options: dict[str, Any],
    load_options: dict[str, Any],
    report: bool,
) -> list[dict[str, Any]]:
    """A worker's unit of work: several tasks, so the per-task overhead is amortised."""
    return [_process(t, spec, Path(out), options, load_options, report) for t in tasks]


def _manifest(
    out: Path,
    spec: dict[str, Any],
    options: dict[str, Any],
    load_options: dict[str, Any],
    tasks: list[Task],
) -> None:
    path = out / "batch.json"
    record = {
        "analysis": spec["name"],
        "options": options,
        "load_options": load_options,
        "tasks": [{"key": t.key, "input": t.path, "frame": t.frame} for t in tasks],
    }
    from .._fileio import to_jsonable

    record = to_jsonable(record)
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("analysis") != record["analysis"] or old.get("options") != record["options"]:
            raise ParameterError(
                f"{out} holds a batch of {old.get('analysis')!r} with other options "
                f"({old.get('options')}); use another output folder or remove it"
            )
        keys = {t["key"] for t in old.get("tasks", [])}
        record["tasks"] = old["tasks"] + [t for t in record["tasks"] if t["key"] not in keys]
    write_json(path, record)


def _combine(out: Path, spec: dict[str, Any], tasks: list[Task]) -> dict[str, str]:
    """Combined table (Parquet and CSV) and label stack (zarr) from the finished folders."""
    import numpy as np
    import pandas as pd

    written: dict[str, str] = {}
    frames = []
    labels = []
    for t in tasks:
        if not _marker(out, _DONE, t.key).exists():
            continue
        folder = out / t.key
        table_path = folder / spec["table_file"] if spec.get("table_file") else None
        if table_path is not None and table_path.exists():
            df = pd.read_csv(table_path)
            df.insert(0, "frame_index", -1 if t.frame is None else t.frame)
            df.insert(0, "input", t.path)
            df.insert(0, "key", t.key)
            frames.append(df)
        if spec.get("labels_file"):
            lp = folder / spec["labels_file"]
            if lp.exists():
                labels.append((t.key, np.load(lp) if lp.suffix == ".npy" else _read_tif(lp)))
    if frames:
        combined = pd.concat(frames, ignore_index=True)
        with atomic_path(out / "combined.parquet") as tmp:
            combined.to_parquet(tmp, index=False)
        with atomic_path(out / "combined.csv") as tmp:
            combined.to_csv(tmp, index=False, float_format="%.6g")
        written["combined table"] = str(out / "combined.parquet")
    if labels and len({a.shape for _, a in labels}) == 1:
        import zarr

        h, w = labels[0][1].shape[-2:]
        tmp = out / f".labels.zarr.{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        arr = zarr.open_array(
            str(tmp),
            mode="w",
            shape=(len(labels), h, w),
            chunks=(1, h, w),
            dtype=labels[0][1].dtype,
        )
        for i, (_, a) in enumerate(labels):
            arr[i] = a
        arr.attrs["keys"] = [k for k, _ in labels]
        final = out / "labels.zarr"
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        written["label stack"] = str(final)
    return written


def _read_tif(path: Path):
    import tifffile

    return tifffile.imread(path)


def _failures(out: Path, tasks: list[Task]) -> list[dict[str, str]]:
    rows = []
    for t in tasks:
        m = _marker(out, _FAILED, t.key)
        if m.exists():
            rec = json.loads(m.read_text())
            rows.append(
                {"key": t.key, "input": rec.get("input", t.path), "error": rec.get("error", "")}
            )
    return rows


def run_batch(
    analysis: str,
    inputs: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    options: dict[str, Any] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    signal: str | None = None,
    frames: slice | None = None,
    pixel_size: float | tuple[float, float] | None = None,
    reports: bool = True,
    show_progress: bool = True,
    chunk_seconds: float = 0.2,
) -> BatchSummary:
    """Run *analysis* on every image of *inputs*, writing one folder per image into *out*.

    Parameters
    ----------
    analysis : str
        A registered analysis name (``atoms``, ``disorder``, ``segment``, ``particles``,
        ``match`` …) or "module:function" (function(Micrograph, **options) -> result with
        ``save(dir)``).
    inputs : list of paths
        Files, folders, glob patterns, stacks (each frame is a task).
    out : path
        Output folder: ``<key>/`` per input, ``combined.parquet`` / ``combined.csv``,
        ``labels.zarr`` when the analysis makes label images, ``failures.csv``,
        ``report.html`` and ``batch.json``.
    options : dict
        Keyword arguments of the analysis function.
    workers : int, optional
        Local worker processes (Dask LocalCluster). None or 1: run in this process.
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler (``tcp://host:port``); workers
        must see the same file system.
    signal, frames, pixel_size
        Passed to :func:`atomscope.load` for every input; *frames* selects frames of stacks.
    reports : bool
        Write a ``report.html`` into every per-input folder.
    show_progress : bool
        Progress bar with rate and ETA.
    chunk_seconds : float
        Target work per Dask task; quick analyses are grouped so each task runs at least this
        long (a process cluster costs 3–7 ms per task).

    Returns
    -------
    BatchSummary
    """
    from .._progress import progress_bar

    t_start = time.perf_counter()
    spec = resolve_analysis(analysis)
    options = dict(options or {})
    load_options: dict[str, Any] = {}
    if pixel_size is not None:
        load_options["pixel_size"] = pixel_size
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = expand_inputs(list(inputs), signal=signal, frames=frames)
    _manifest(out, spec, options, load_options, tasks)
    summary = BatchSummary(out=out, total=len(tasks))
    pending = [t for t in tasks if not _marker(out, _DONE, t.key).exists()]
    summary.skipped = len(tasks) - len(pending)
    bar = progress_bar(
        show_progress=show_progress, total=len(tasks), desc=f"batch {analysis}", unit="image"
    )
    bar.update(summary.skipped)

    def record(results: list[dict[str, Any]]) -> None:
        for r in results:
            if r["status"] == "done":
                summary.done += 1
            elif r["status"] == "failed":
                summary.failed += 1
            else:
                summary.skipped += 1
            bar.update(1)

    try:
        if pending:
            # the first task runs here: it measures the work per task for the chunk size
            first = _process(pending[0], spec, out, options, load_options, reports)
            record([first])
            rest = pending[1:]
            per_task = max(first.get("seconds", 0.0), 1e-3)
            chunk = max(1, int(math.ceil(chunk_seconds / per_task)))
            summary.chunk_size = chunk
            chunks = [rest[i : i + chunk] for i in range(0, len(rest), chunk)]
            if scheduler is None and (workers is None or workers <= 1):
                for c in chunks:
                    record(_run_chunk(c, spec, str(out), options, load_options, reports))
            else:
                _run_dask(
                    chunks,
                    spec,
                    out,
                    options,
                    load_options,
                    reports,
                    workers,
                    scheduler,
                    record,
                    summary,
                )
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
    summary.failures = _failures(out, tasks)
    summary.failed = len(summary.failures)
    if summary.failures:
        import pandas as pd

        with atomic_path(out / "failures.csv") as tmp:
            pd.DataFrame(summary.failures).to_csv(tmp, index=False)
    elif (out / "failures.csv").exists():
        (out / "failures.csv").unlink()
    summary.combined = _combine(out, spec, tasks)
    summary.seconds = time.perf_counter() - t_start
    if reports:
        from .report import write_batch_report

        summary.combined["report"] = str(write_batch_report(out, spec, tasks, summary))
    return summary


def _run_dask(
    chunks, spec, out, options, load_options, reports, workers, scheduler, record, summary
) -> None:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is not None:
        client = Client(scheduler)
        summary.workers = f"scheduler {scheduler}"
    else:
        cluster = LocalCluster(
            n_workers=int(workers),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,
        )
        client = Client(cluster)
        summary.workers = f"{workers} local worker processes"
    futures = []
    try:
        futures = [
            client.submit(_run_chunk, c, spec, str(out), options, load_options, reports, pure=False)
            for c in chunks
        ]
        for fut in as_completed(futures):
            record(fut.result())
    finally:
        for f in futures:
            f.cancel()
        client.close()
        if cluster is not None:
            cluster.close()
