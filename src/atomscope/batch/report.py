"""The batch report: inputs, failures, combined statistics and time series over frames."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

__all__ = ["write_batch_report"]


def _embed_png(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def write_batch_report(out: Path, spec: dict[str, Any], tasks: list, summary: Any) -> Path:
    """``report.html`` for a batch folder (self-contained)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from ..report.html import figure_to_data_uri, write_html

    sections: list[tuple[str, str]] = []
    done = [t for t in tasks if (out / ".done" / f"{t.key}.json").exists()]
    if done:
        first = out / done[0].key / "overlay.png"
        if first.exists():
            sections.append(("First result", _embed_png(first, f"{done[0].describe()}")))
    combined = out / "combined.parquet"
    if combined.exists():
        df = pd.read_parquet(combined)
        per_input = df.groupby("key", sort=False).size()
        numeric = [c for c in df.select_dtypes("number").columns if c not in ("frame_index",)][:4]
        fig, axes = plt.subplots(
            1, 1 + len(numeric), figsize=(4.2 * (1 + len(numeric)), 3.2), squeeze=False
        )
        x = range(len(per_input))
        axes[0, 0].plot(x, per_input.to_numpy(), marker=".")
        axes[0, 0].set_xlabel("input (task order)")
        axes[0, 0].set_ylabel("rows (objects found)")
        for ax, col in zip(axes[0, 1:], numeric, strict=False):
            means = df.groupby("key", sort=False)[col].mean().reindex(per_input.index)
            ax.plot(x, means.to_numpy(), marker=".")
            ax.set_xlabel("input (task order)")
            ax.set_ylabel(f"mean {col}")
        fig.tight_layout()
        sections.append(
            (
                "Time series over the inputs",
                (
                    f'<figure><img alt="time series" src="{figure_to_data_uri(fig)}">'
                    "<figcaption>Per input: number of rows and means of the first numeric columns"
                    "</figcaption></figure>"
                ),
            )
        )
        stats = df.select_dtypes("number").describe().T
        sections.append(
            ("Combined statistics", stats.to_html(float_format=lambda v: f"{v:.4g}", border=0))
        )
    if summary.failures:
        sections.append(("Failures", pd.DataFrame(summary.failures).to_html(index=False, border=0)))
    seconds = []
    for t in done:
        rec = json.loads((out / ".done" / f"{t.key}.json").read_text())
        seconds.append(rec.get("seconds", float("nan")))
    inputs = {
        "analysis": spec["name"],
        "inputs": summary.total,
        "done": summary.done,
        "skipped (already done)": summary.skipped,
        "failed": summary.failed,
        "workers": summary.workers,
        "tasks per chunk": summary.chunk_size,
    }
    timings = {"wall time": summary.seconds}
    if seconds:
        import numpy as np

        timings["median per input"] = float(np.nanmedian(seconds))
    return write_html(
        {},
        out / "report.html",
        title=f"atomscope batch: {spec['name']}",
        inputs=inputs,
        timings=timings,
        extra_sections=sections,
        notes=summary.lines()[1:] if summary.interrupted else (),
    )
