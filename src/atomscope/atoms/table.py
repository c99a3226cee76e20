"""``AtomTable``: the result of :func:`atomscope.find_atoms`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._fileio import atomic_path, write_json
from ..image import Micrograph
from .lattice import Lattice

__all__ = ["AtomTable"]

_SUBLATTICE_COLOURS = [
    "#ff3b30",
    "#1e90ff",
    "#34c759",
    "#ffcc00",
    "#af52de",
    "#ff9500",
    "#5ac8fa",
    "#ff2d55",
]


@dataclass
class AtomTable:
    """Columns found in an image, with the evidence behind them.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per column: ``x``, ``y`` (px; x = column index, pixel (r, c) centred at
        x = c, y = r), ``x_nm``, ``y_nm`` (when calibrated), ``intensity`` (integrated
        Gaussian intensity, image units × px²), ``amplitude``, ``sigma`` (px), ``sigma_nm``,
        ``background``, ``residual`` (reduced χ² of the fit), ``uncertainty`` (standard error
        of each coordinate, px) and ``uncertainty_nm``, ``sublattice`` (0 = brightest site;
        -1 = off-lattice), ``response`` (detector response), ``window`` (tile index in
        sliding-window mode).
    image : Micrograph
        The analysed image.
    lattice : Lattice or None
        The lattice used for the rewards (estimated or given).
    parameters : dict
        Detector parameters used (chosen by the optimiser, or given).
    rewards : dict
        Reward values at the chosen parameters (|QC|, ER, irregularity …) and N_expected.
    optimization : OptimizationResult or list or None
        The optimiser's full record (one per window in sliding-window mode).
    timings : dict
        Seconds per stage.
    message : str
        Why the table is empty, or notes a user should read.
    """

    table: pd.DataFrame
    image: Micrograph
    lattice: Lattice | None = None
    method: str = "log"
    parameters: dict[str, Any] = field(default_factory=dict)
    rewards: dict[str, Any] = field(default_factory=dict)
    optimization: Any = None
    timings: dict[str, float] = field(default_factory=dict)
    message: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def xy(self) -> np.ndarray:
        """(N, 2) positions in px."""
        return self.table[["x", "y"]].to_numpy(dtype=float)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def summary(self) -> dict[str, Any]:
        t = self.table
        out: dict[str, Any] = {
            "n_columns": int(len(t)),
            "method": self.method,
            "parameters": self.parameters,
            "rewards": self.rewards,
            "timings_s": self.timings,
            "image": self.image.summary(),
            "message": self.message,
            "settings": self.settings,
        }
        if self.lattice is not None:
            out["lattice"] = self.lattice.summary()
        if len(t):
            out["sublattices"] = {
                int(s): {
                    "count": int((t["sublattice"] == s).sum()),
                    "mean_intensity": float(t.loc[t["sublattice"] == s, "intensity"].mean()),
                }
                for s in sorted(t["sublattice"].unique())
            }
            out["median_uncertainty_px"] = float(np.nanmedian(t["uncertainty"]))
            if "uncertainty_nm" in t:
                out["median_uncertainty_pm"] = float(np.nanmedian(t["uncertainty_nm"]) * 1e3)
        if self.optimization is not None:
            opts = self.optimization if isinstance(self.optimization, list) else [self.optimization]
            out["optimization"] = [o.summary() for o in opts]
        return out

    # -- drawing -----------------------------------------------------------------------
    def plot(self, ax: Any = None, *, marker_size: float | None = None) -> Any:
        """Columns over the image, coloured by sublattice, with a scale bar."""
        import matplotlib.pyplot as plt

        from ..report.figures import show_image

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 6))
        show_image(ax, self.image)
        t = self.table
        if len(t):
            h, w = self.image.image_shape
            size = marker_size or float(np.clip(8000.0 / max(len(t), 1), 2, 40))
            for s in sorted(t["sublattice"].unique()):
                sel = t["sublattice"] == s
                colour = "#cccccc" if s < 0 else _SUBLATTICE_COLOURS[s % len(_SUBLATTICE_COLOURS)]
                label = "off-lattice" if s < 0 else f"sublattice {s}"
                ax.scatter(
                    t.loc[sel, "x"],
                    t.loc[sel, "y"],
                    s=size,
                    facecolors="none",
                    edgecolors=colour,
                    linewidths=0.8,
                    label=f"{label} ({sel.sum()})",
                )
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
            ax.legend(loc="upper right", fontsize=7, framealpha=0.7)
        return ax

    # -- saving ------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``atoms.csv``, ``overlay.png``, ``pareto.png`` (when optimised) and
        ``report.json`` atomically."""
        import matplotlib.pyplot as plt

        from ..report.figures import image_axes, save_figure

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        with atomic_path(out / "atoms.csv") as tmp:
            self.table.to_csv(tmp, index=False, float_format="%.6g")
        paths["atoms.csv"] = out / "atoms.csv"
        fig, ax = image_axes(self.image.image_shape)
        self.plot(ax)
        paths["overlay.png"] = save_figure(fig, out / "overlay.png")
        opts = (
            self.optimization
            if isinstance(self.optimization, list)
            else ([self.optimization] if self.optimization is not None else [])
        )
        if opts:
            n = len(opts)
            cols = min(n, 4)
            rows = (n + cols - 1) // cols
            fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
            for k, (opt, a) in enumerate(zip(opts, axes.ravel(), strict=False)):
                opt.plot_pareto(a)
                if n > 1:
                    a.set_title(f"window {k}", fontsize=9)
            for a in axes.ravel()[n:]:
                a.set_visible(False)
            fig.tight_layout()
            paths["pareto.png"] = save_figure(fig, out / "pareto.png")
        paths["report.json"] = write_json(out / "report.json", self.summary())
        return paths
