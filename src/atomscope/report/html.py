"""One self-contained HTML report for any analysis result (or a batch of them).

The report only uses the Result API every analysis shares (``summary()``, ``to_frame()``,
``plot(ax)``, and, when present, ``optimization`` and ``report_figures()``), so a new analysis
gets a report without code here. Images are embedded as base64 PNG; there are no scripts and no
external resources, so the file opens offline and can be mailed around.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import os
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._fileio import to_jsonable, write_text

__all__ = ["write_html", "figure_to_data_uri", "result_section"]

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.6em;border-bottom:2px solid #444;padding-bottom:.2em}
h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #bbb}
h3{font-size:1.05em;margin-top:1.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}
th{background:#f0f0f0}
td.k,th.k{text-align:left}
figure{margin:.8em 0}
figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .8em}
.meta{font-size:.85em;color:#555}
"""


def figure_to_data_uri(fig: Any, *, dpi: int = 90) -> str:
    """Render a matplotlib figure to a ``data:image/png;base64,…`` URI and close it."""
    import matplotlib.pyplot as plt

    from .figures import PNG_COMPRESS_LEVEL

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(uri: str, caption: str) -> str:
    return (
        f'<figure><img alt="{html.escape(caption)}" src="{uri}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if not np.isfinite(value):
            return "–"
        return f"{value:.4g}"
    if (
        isinstance(value, list | tuple)
        and len(value) <= 6
        and all(isinstance(v, int | float) for v in value)
    ):
        return ", ".join(_fmt(v) for v in value)
    text = json.dumps(to_jsonable(value)) if isinstance(value, dict | list | tuple) else str(value)
    return text if len(text) <= 300 else text[:297] + "…"


def _key_value_table(data: Mapping[str, Any], skip: Iterable[str] = ()) -> str:
    rows = []
    for key, value in data.items():
        if key in skip or value is None:
            continue
        if (
            isinstance(value, Mapping)
            and value
            and all(not isinstance(v, Mapping | list) for v in value.values())
        ):
            inner = ", ".join(
                f"{html.escape(str(k))}: {html.escape(_fmt(v))}" for k, v in value.items()
            )
            rows.append(
                f'<tr><td class="k">{html.escape(str(key))}</td><td class="k">{inner}</td></tr>'
            )
        else:
            rows.append(
                f'<tr><td class="k">{html.escape(str(key))}</td>'
                f'<td class="k">{html.escape(_fmt(value))}</td></tr>'
            )
    return "<table>" + "".join(rows) + "</table>" if rows else ""


def _frame_tables(frame: Any, max_rows: int = 15) -> str:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame) or frame.empty:
        return "<p>No rows.</p>"
    parts = [
        f"<p>{len(frame)} rows, columns: {html.escape(', '.join(map(str, frame.columns)))}</p>"
    ]
    numeric = frame.select_dtypes("number")
    if not numeric.empty:
        stats = numeric.describe().T[["mean", "std", "min", "50%", "max"]]
        parts.append("<h3>Summary statistics</h3>")
        parts.append(stats.to_html(float_format=lambda v: f"{v:.4g}", border=0))
    parts.append(f"<h3>First {min(max_rows, len(frame))} rows</h3>")
    parts.append(
        frame.head(max_rows).to_html(float_format=lambda v: f"{v:.4g}", border=0, index=False)
    )
    return "".join(parts)


def result_section(name: str, result: Any) -> str:
    """HTML for one result: overlay, optimisation front, extra figures, summary, table."""
    import matplotlib.pyplot as plt

    parts = [f"<h2>{html.escape(name)}</h2>"]
    summary = result.summary() if hasattr(result, "summary") else {}
    message = summary.get("message") if isinstance(summary, Mapping) else None
    if message:
        parts.append(f'<p class="note">{html.escape(str(message))}</p>')
    if hasattr(result, "plot"):
        try:
            image = getattr(result, "image", None)
            shape = getattr(image, "image_shape", (6, 6))
            aspect = shape[0] / max(shape[1], 1)
            fig, ax = plt.subplots(figsize=(7.0, 7.0 * aspect))
            result.plot(ax)
            fig.tight_layout()
            parts.append(_img(figure_to_data_uri(fig), f"{name}: overlay"))
        except Exception as exc:  # noqa: BLE001 - a figure must not cost the whole report
            plt.close("all")
            parts.append(f'<p class="note">overlay not drawn: {html.escape(str(exc))}</p>')
    opt = getattr(result, "optimization", None)
    opts = opt if isinstance(opt, list) else ([opt] if opt is not None else [])
    for k, o in enumerate(opts[:4]):
        if hasattr(o, "plot_pareto"):
            fig, ax = plt.subplots(figsize=(5.0, 4.0))
            o.plot_pareto(ax)
            fig.tight_layout()
            label = "Pareto front of the rewards" + (f" (window {k})" if len(opts) > 1 else "")
            parts.append(_img(figure_to_data_uri(fig), label))
    if hasattr(result, "report_figures"):
        for caption, fig in result.report_figures():
            parts.append(_img(figure_to_data_uri(fig), caption))
    if isinstance(summary, Mapping) and summary:
        parts.append("<h3>Summary</h3>")
        parts.append(_key_value_table(summary, skip=("optimization", "message")))
        recorded = summary.get("optimization") or []
        # one optimisation (a dict) or one per window (a list): the first one's choice is shown
        for o in ([recorded] if isinstance(recorded, Mapping) else list(recorded))[:1]:
            best = o.get("best_euclidean") if isinstance(o, Mapping) else None
            if best:
                parts.append("<h3>Parameters chosen by the optimiser</h3>")
                parts.append(
                    _key_value_table({**best.get("params", {}), **best.get("objectives", {})})
                )
    if hasattr(result, "to_frame"):
        try:
            parts.append(_frame_tables(result.to_frame()))
        except Exception as exc:  # noqa: BLE001
            parts.append(f'<p class="note">table not available: {html.escape(str(exc))}</p>')
    return "\n".join(parts)


def write_html(
    results: Any,
    path: str | os.PathLike[str],
    *,
    title: str = "atomscope report",
    inputs: Mapping[str, Any] | None = None,
    timings: Mapping[str, float] | None = None,
    notes: Iterable[str] = (),
    extra_sections: Iterable[tuple[str, str]] = (),
) -> Path:
    """Write one self-contained HTML report.

    Parameters
    ----------
    results : Result, list of Results, or mapping name -> Result
        Anything with the shared Result API (``summary``, ``to_frame``, ``plot``).
    path : path
        Output file (written atomically).
    title : str
        Page title.
    inputs : mapping, optional
        Input description (files, calibration, frames) shown first.
    timings : mapping, optional
        Seconds per stage.
    notes : iterable of str
        Remarks shown at the top.
    extra_sections : iterable of (heading, html)
        Pre-rendered sections (e.g. time-series plots of a batch).

    Returns
    -------
    Path
    """
    from .. import __version__

    if isinstance(results, Mapping):
        items = list(results.items())
    elif isinstance(results, list | tuple):
        items = [
            (type(r).__name__ + (f" {i}" if len(results) > 1 else ""), r)
            for i, r in enumerate(results)
        ]
    else:
        items = [(type(results).__name__, results)]
    now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">atomscope {html.escape(__version__)} · Python '
        f"{html.escape(platform.python_version())} · {html.escape(now)}</p>",
    ]
    for note in notes:
        body.append(f'<p class="note">{html.escape(note)}</p>')
    if inputs:
        body.append("<h2>Inputs and calibration</h2>")
        body.append(_key_value_table(inputs))
    for name, result in items:
        body.append(result_section(name, result))
    for heading, fragment in extra_sections:
        body.append(f"<h2>{html.escape(heading)}</h2>{fragment}")
    if timings:
        body.append("<h2>Timings</h2>")
        body.append(_key_value_table({k: f"{v:.3g} s" for k, v in timings.items()}))
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    return write_text(path, page)
