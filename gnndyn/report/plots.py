"""Plot helpers shared by the experiments' figure functions (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

COLORS = {"gnn": "#1f77b4", "mlp": "#d62728"}


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 3.6):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    return fig, axes.ravel()


def band(ax, x: Sequence[float], values: np.ndarray, *, label: str, color: str | None = None, lw: float = 1.8,
         **kwargs) -> None:
    """Median over the first axis of ``values`` (seeds × points) with a 10–90 % band when several seeds."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    med = np.nanmedian(values, axis=0)
    (line,) = ax.plot(x, med, label=label, color=color, lw=lw, **kwargs)
    if values.shape[0] > 1:
        lo, hi = np.nanpercentile(values, [10, 90], axis=0)
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, lw=0)


def by_seed(df: pd.DataFrame, index: str = "layer") -> tuple[np.ndarray, np.ndarray]:
    """Pivot rows of one quantity/series into (x, seeds × x values)."""
    if df.empty:
        return np.zeros(0), np.zeros((0, 0))
    pv = df.pivot_table(index="seed", columns=index, values="value", aggfunc="first").sort_index(axis=1)
    return pv.columns.to_numpy(), pv.to_numpy()


def log_values(ax, x, y, fmt: str = "o-", *, floor, label: str | None = None, color: str | None = None,
               scatter: bool = False, **kwargs) -> str:
    """Plot ``y`` against ``x`` on a log y-axis without losing a value: finite values above ``floor`` (a
    number or one per point: a resolution, or a tiny fraction of the largest value) are drawn as usual;
    finite values at or below it (zero, negative, below the resolution) are drawn as "≈ 0" markers (▼) at
    the floor instead of vanishing from the axis; non-finite values are not drawn. Call
    :func:`finish_log_axis` once the axis is complete. Returns the colour used."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    fl = np.broadcast_to(np.asarray(floor, dtype=float), y.shape)
    fin = np.isfinite(y)
    high = fin & (y > fl)
    low = fin & ~high
    if scatter:
        art = ax.scatter(x[high], y[high], label=label, color=color, **kwargs)
        color = color or (art.get_facecolor()[0] if len(art.get_facecolor()) else None)
        if color is None:
            color = art.get_edgecolor()[0]
    else:
        (line,) = ax.plot(x, np.where(high, y, np.nan), fmt, label=label, color=color, **kwargs)
        color = line.get_color()
    if low.any():
        ax.scatter(x[low], fl[low], marker="v", s=42, color=color, edgecolors="black", linewidths=0.6, zorder=4,
                   clip_on=False)
        marks = getattr(ax, "_gnndyn_near_zero", [])
        marks.extend(float(v) for v in fl[low])
        ax._gnndyn_near_zero = marks
    return color


def finish_log_axis(ax, what: str = "≈ 0 (at or below the dotted floor)") -> None:
    """Log scale; where :func:`log_values` drew "≈ 0" markers, the axis reaches below them, a dotted line
    marks the floor and the legend says what ▼ means."""
    ax.set_yscale("log")
    marks = getattr(ax, "_gnndyn_near_zero", [])
    if not marks:
        return
    lo = min(marks)
    bottom, top = ax.get_ylim()
    ax.set_ylim(min(bottom, lo / 4), max(top, lo * 10))
    ax.scatter([], [], marker="v", s=42, color="white", edgecolors="black", linewidths=0.6, label=what)
    for level in sorted(set(marks)):
        ax.axhline(level, ls=":", lw=0.8, color="0.55", zorder=1)
