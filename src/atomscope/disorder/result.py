"""``DisorderMap``: the result of :func:`atomscope.find_disorder`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._fileio import atomic_path, write_json
from ..image import Micrograph

__all__ = ["DisorderMap"]

_TYPE_COLOURS = [
    "#1e90ff",
    "#34c759",
    "#ffcc00",
    "#af52de",
    "#ff9500",
    "#5ac8fa",
    "#ff2d55",
    "#8e8e93",
]


@dataclass
class DisorderMap:
    """Disordered (amorphous) regions of an atomic-resolution image.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per atom: ``x``, ``y`` (px), ``x_nm``, ``y_nm`` (when calibrated), ``type``
        (atom type from patch clustering, 0 = brightest; -1 when not analysed), ``cluster``
        (crystalline cluster within the type, e.g. mirror-related sites), ``analysed`` (in the
        chosen sublattice), ``scored`` (its patch lies inside the image), ``score`` (disorder
        score in robust standard deviations of the crystal; NaN when not scored),
        ``posterior`` (probability of the disorder component of the score model),
        ``disordered`` (bool, the final flag after spatial regularisation) and ``label``
        ("disordered" / "crystalline" / "not analysed").
    mask : ndarray of bool (H, W)
        Per-pixel amorphous mask.
    image : Micrograph
        The analysed image.
    area_fraction : float
        Fraction of the image in the mask.
    n_regions : int
        Connected regions of the mask.
    parameters : dict
        The chosen threshold (robust σ) and covariance type.
    rewards : dict
        Reward values at the chosen parameters, and the mask's shape measures.
    types : dict
        Atom-type classification summary (counts, brightness, BIC per number of types).
    optimization : OptimizationResult or None
        The optimiser's record (None when ``optimize=False``).
    settings : dict
        Settings of the run (patch size, sublattice, reward set …).
    timings : dict
        Seconds per stage.
    message : str
        Why the result is empty, or notes a user should read.
    """

    table: pd.DataFrame
    mask: np.ndarray
    image: Micrograph
    area_fraction: float = 0.0
    n_regions: int = 0
    parameters: dict[str, Any] = field(default_factory=dict)
    rewards: dict[str, Any] = field(default_factory=dict)
    types: dict[str, Any] = field(default_factory=dict)
    optimization: Any = None
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    message: str = ""

    def __len__(self) -> int:
        return len(self.table)

    @property
    def disordered(self) -> np.ndarray:
        """Boolean flag per atom."""
        return (
            self.table["disordered"].to_numpy(dtype=bool) if len(self.table) else np.zeros(0, bool)
        )

    @property
    def area_nm2(self) -> float | None:
        """Mask area in nm² (None when uncalibrated)."""
        ps = self.image.pixel_size
        return None if ps is None else float(self.mask.sum()) * ps[0] * ps[1]

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def summary(self) -> dict[str, Any]:
        t = self.table
        out: dict[str, Any] = {
            "n_atoms": int(len(t)),
            "n_analysed": int(t["analysed"].sum()) if len(t) else 0,
            "n_scored": int(t["scored"].sum()) if len(t) else 0,
            "n_disordered": int(t["disordered"].sum()) if len(t) else 0,
            "area_fraction": float(self.area_fraction),
            "area_nm2": self.area_nm2,
            "n_regions": int(self.n_regions),
            "parameters": self.parameters,
            "rewards": self.rewards,
            "types": self.types,
            "settings": self.settings,
            "timings_s": self.timings,
            "image": self.image.summary(),
            "message": self.message,
        }
        if self.optimization is not None:
            out["optimization"] = self.optimization.summary()
        return out

    # -- drawing -----------------------------------------------------------------------
    def plot(
        self, ax: Any = None, *, marker_size: float | None = None, show_types: bool = True
    ) -> Any:
        """The image with the amorphous mask (red, outlined) and the atoms: crystalline ones
        as small circles coloured by type, disordered ones as red crosses."""
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D

        from ..report.figures import show_image

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 6))
        show_image(ax, self.image)
        h, w = self.image.image_shape
        if self.mask.any():
            overlay = np.zeros((h, w, 4))
            overlay[self.mask] = (1.0, 0.23, 0.19, 0.28)
            ax.imshow(overlay, interpolation="nearest")
            ax.contour(self.mask.astype(float), levels=[0.5], colors="#ff3b30", linewidths=1.2)
        t = self.table
        handles = []
        if len(t):
            size = marker_size or float(np.clip(6000.0 / max(len(t), 1), 2, 30))
            crystal = ~t["disordered"].to_numpy(bool) & t["analysed"].to_numpy(bool)
            if show_types:
                for k in sorted(int(v) for v in t.loc[crystal, "type"].unique()):
                    sel = crystal & (t["type"].to_numpy() == k)
                    colour = _TYPE_COLOURS[k % len(_TYPE_COLOURS)] if k >= 0 else "#cccccc"
                    ax.scatter(
                        t.loc[sel, "x"],
                        t.loc[sel, "y"],
                        s=size,
                        facecolors="none",
                        edgecolors=colour,
                        linewidths=0.7,
                    )
                    handles.append(
                        Line2D(
                            [],
                            [],
                            ls="",
                            marker="o",
                            mfc="none",
                            mec=colour,
                            label=f"type {k} ({int(sel.sum())})",
                        )
                    )
            dis = t["disordered"].to_numpy(bool)
            if dis.any():
                ax.scatter(
                    t.loc[dis, "x"],
                    t.loc[dis, "y"],
                    s=size,
                    marker="x",
                    c="#ff3b30",
                    linewidths=0.8,
                )
                handles.append(
                    Line2D(
                        [],
                        [],
                        ls="",
                        marker="x",
                        color="#ff3b30",
                        label=f"disordered ({int(dis.sum())})",
                    )
                )
        handles.append(
            Line2D(
                [],
                [],
                color="#ff3b30",
                label=f"amorphous {100 * self.area_fraction:.1f} %, {self.n_regions} region(s)",
            )
        )
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.75)
        return ax

    # -- saving ------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``disorder.csv``, ``amorphous_mask.tif`` (uint8, 1 = amorphous, calibrated
        ImageJ TIFF), ``overlay.png``, ``pareto.png`` (when optimised) and ``report.json``,
        each atomically."""
        import matplotlib.pyplot as plt
        import tifffile

        from ..report.figures import image_axes, save_figure

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        with atomic_path(out / "disorder.csv") as tmp:
            self.table.to_csv(tmp, index=False, float_format="%.6g")
        paths["disorder.csv"] = out / "disorder.csv"
        kwargs: dict[str, Any] = {"imagej": True}
        meta: dict[str, Any] = {"axes": "YX"}
        if self.image.pixel_size is not None:
            pr, pc = self.image.pixel_size
            kwargs["resolution"] = (1.0 / pc, 1.0 / pr)
            meta["unit"] = "nm"
        with atomic_path(out / "amorphous_mask.tif") as tmp:
            tifffile.imwrite(tmp, self.mask.astype(np.uint8), metadata=meta, **kwargs)
        paths["amorphous_mask.tif"] = out / "amorphous_mask.tif"
        fig, ax = image_axes(self.image.image_shape)
        self.plot(ax)
        paths["overlay.png"] = save_figure(fig, out / "overlay.png")
        if self.optimization is not None:
            opt = self.optimization
            pairs = [(0, 1)] if opt.n_objectives == 2 else [(1, 2), (0, 1), (0, 2)]
            fig, axes = plt.subplots(1, len(pairs), figsize=(4.6 * len(pairs), 4.0), squeeze=False)
            chosen = opt.settings.get("chosen_index")
            for (i, j), a in zip(pairs, axes.ravel(), strict=True):
                opt.plot_pareto(a, x=i, y=j)
                if chosen is not None:
                    y = opt.objectives[chosen]
                    a.scatter(
                        [y[i]],
                        [y[j]],
                        marker="o",
                        s=140,
                        facecolors="none",
                        edgecolors="k",
                        linewidths=2.0,
                        zorder=7,
                        label="chosen",
                    )
                    a.legend(fontsize=7, loc="upper right", framealpha=0.8)
            fig.tight_layout()
            paths["pareto.png"] = save_figure(fig, out / "pareto.png")
        paths["report.json"] = write_json(out / "report.json", self.summary())
        return paths
