"""Plot helpers shared by the experiments' figure functions (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

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
    seen = ~np.isnan(values).all(axis=0)  # a point no seed recorded (a diverged seed's tail) stays NaN, unwarned
    med = np.full(values.shape[1], np.nan)
    med[seen] = np.nanmedian(values[:, seen], axis=0)
    (line,) = ax.plot(x, med, label=label, color=color, lw=lw, **kwargs)
    if values.shape[0] > 1:
        lo, hi = np.full(values.shape[1], np.nan), np.full(values.shape[1], np.nan)
        lo[seen], hi[seen] = np.nanpercentile(values[:, seen], [10, 90], axis=0)
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, lw=0)


def by_seed(df: pd.DataFrame, index: str = "layer") -> tuple[np.ndarray, np.ndarray]:
    """Pivot rows of one quantity/series into (x, seeds × x values)."""
    if df.empty:
        return np.zeros(0), np.zeros((0, 0))
    pv = df.pivot_table(index="seed", columns=index, values="value", aggfunc="first").sort_index(axis=1)
    return pv.columns.to_numpy(), pv.to_numpy()


def finish_figure(fig, name: str, axes: Iterable = (), *, title: str | None = None, fontsize: float = 7,
                  grid: bool = True, legend: Literal["always", "labelled"] = "always", below: Iterable = ()) -> dict:
    """The last steps of a figure function: on each panel of ``axes`` a legend (font size ``fontsize``) and,
    with ``grid``, a light grid; the figure's title (``suptitle``) when given; a tight layout.

    A panel with no labelled artist gets no legend (matplotlib would warn and draw an empty box). With
    ``legend="always"`` such a panel — one that should have had labelled curves: nothing was recorded for it,
    as in a failed or diverged run — says so in its middle; ``legend="labelled"`` leaves it as it is.
    Panels not in ``axes`` are left as they are (e.g. a legend placed by hand). Every log axis of the figure
    without a positive value to show is made linear (:func:`log_scale`). Returns ``{name: fig}``, the form a
    figure function returns. The panels in ``below`` (also in ``axes``) have their legend under the plot, in two
    columns: for panels whose curves fill every corner."""
    below = list(below)
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            if any(ax is b for b in below):
                ax.legend(fontsize=fontsize, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, frameon=False)
            else:
                ax.legend(fontsize=fontsize)
        elif legend == "always":
            note_empty(ax)
        if grid:
            ax.grid(alpha=0.3)
    for ax in fig.get_axes():
        for axis in ("x", "y"):
            if ax.get_visible() and getattr(ax, f"get_{axis}scale")() == "log":
                log_scale(ax, axis)
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout()
    return {name: fig}


def has_positive(ax, axis: str = "y") -> bool:
    """Whether the data drawn on ``ax`` so far has a positive finite value along ``axis`` (what a log axis
    needs: matplotlib keeps the smallest positive value of its data limits, ``dataLim.minposx|y``). An axis
    shared with other panels (``twinx``, ``sharex``) counts the data of all of them: they share one scale."""
    shared = ax.get_shared_y_axes() if axis == "y" else ax.get_shared_x_axes()
    return any(bool(np.isfinite(a.dataLim.minposy if axis == "y" else a.dataLim.minposx))
               for a in shared.get_siblings(ax))


def log_scale(ax, axis: str = "y") -> bool:
    """Put ``axis`` ("x" or "y") of ``ax`` on a log scale when its data has a positive value to show, else
    leave it (or make it) linear: data that is all zero, negative or not finite — a failed or diverged run,
    a gradient that is exactly 0 — stays visible, and matplotlib has no reason to warn ("Data has no positive
    values, and therefore cannot be log-scaled"). Call it after the data is drawn, in place of
    ``ax.set(yscale="log")``. Returns whether the axis is logarithmic."""
    log = has_positive(ax, axis)
    getattr(ax, f"set_{axis}scale")("log" if log else "linear")
    return log


def note_empty(ax, text: str = "nothing to draw: no finite value recorded") -> None:
    """Say in the middle of a panel that it has no data (a failed or diverged run), in place of a legend."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=8, color="0.45")


#: values beyond this magnitude are not drawn: a log axis adds margins of several decades around its data, and
#: limits near the float64 range (1e308) overflow to inf in matplotlib's tick computations
DRAWABLE = 1e200
#: nor are non-zero values below this magnitude (the same overflow towards 0 on a log axis)
TINY = 1e-200


def drawable(fig) -> list[str]:
    """Make a figure drawable whatever its data: values that are ±inf or beyond :data:`DRAWABLE` in lines
    and scatter points are left out, and an axes whose limits came out non-finite is rescaled on what
    remains. NaN is left as it is (a gap: matplotlib draws around it, and :func:`log_values` puts NaN where it
    draws a ▼ instead). Axes with only finite data are untouched. Returns a note per axes that lost points
    (the report shows them), e.g. after a divergence."""
    import numpy as np

    notes = []
    for ax in fig.get_axes():
        lost = 0
        for line in ax.get_lines():  # NaN is a gap in a line (log_values puts one where it draws ▼), not a loss
            x = np.asarray(line.get_xdata(), dtype=float)
            y = np.asarray(line.get_ydata(), dtype=float)
            bad = (np.abs(x) >= DRAWABLE) | (np.abs(y) >= DRAWABLE)
            if x.shape == y.shape and bad.any():
                lost += int(bad.sum())
                line.set_data(np.where(bad, np.nan, x), np.where(bad, np.nan, y))
        for coll in ax.collections:
            off = np.asarray(coll.get_offsets(), dtype=float)
            if off.ndim == 2 and off.size:
                bad = (np.abs(off) >= DRAWABLE).any(1)
                if bad.any():
                    lost += int(bad.sum())
                    coll.set_offsets(off[~bad])
        lims = np.array([*ax.get_xlim(), *ax.get_ylim()], dtype=float)
        if lost or not (np.isfinite(lims).all() and (np.abs(lims) < DRAWABLE).all()):
            ax.relim()
            ax.autoscale_view()
            lims = np.array([*ax.get_xlim(), *ax.get_ylim()], dtype=float)
            if not (np.isfinite(lims).all() and (np.abs(lims) < DRAWABLE).all()):
                ax.set_xlim(0, 1) if not np.isfinite(lims[:2]).all() or (np.abs(lims[:2]) >= DRAWABLE).any() else None
                ax.set_ylim(1e-300 if ax.get_yscale() == "log" else 0, 1)
        if lost:
            notes.append(f"{plain_text(ax.get_title()) or 'a panel'}: {lost} infinite or overflowing point(s) not drawn")
    return notes


_TEX = {r"\lambda": "λ", r"\sigma": "σ", r"\mu": "μ", r"\eta": "η", r"\rho": "ρ", r"\beta": "β", r"\alpha": "α",
        r"\partial": "∂", r"\mathcal{E}": "ℰ", r"\mathcal{L}": "𝓛", r"\ell": "ℓ", r"\|": "‖", r"\min": "min",
        r"\max": "max", r"\leq": "≤", r"\geq": "≥", r"\approx": "≈", r"\cdot": "·", r"\to": "→"}


def plain_text(label: str) -> str:
    r"""A matplotlib label as text for a sentence: the ``$…$`` mathtext without dollars, commands or braces
    (``(2b) $\lambda_T$ over time`` → ``(2b) λ_T over time``)."""
    import re

    out = label
    for tex, u in _TEX.items():
        out = out.replace(tex + " ", u).replace(tex, u)
    out = re.sub(r"\\(?:mathrm|mathbf|operatorname|text)\{([^{}]*)\}", r"\1", out)
    out = re.sub(r"\\[A-Za-z]+", "", out)
    return out.replace("$", "").replace("{", "").replace("}", "")


def log_bar_limits(ax, values) -> None:
    """A log axis for bars that start at its bottom: the bottom a factor 5 below the smallest positive bar,
    so that every bar shows its height (matplotlib's default can put the bottom just below the smallest bar,
    which then looks like nothing)."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size:
        ax.set_ylim(v.min() / 5, v.max() * 2)


_MINOR_STEPS = ((2.0, 5.0), (3.0,))  # minor label sets tried in turn on a log axis with < 2 decades shown


def _thin_log_minor(axis) -> None:
    """One thinning step for the minor labels of a log axis. Where two or more decades (major labels) are in
    view the minor labels go. Where fewer are, the minor labels are the only numbers on the axis: they are
    thinned to 2 and 5 per decade, then to 3, and go only when even that overlaps."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    lo, hi = sorted(axis.get_view_interval())
    majors = [v for v in axis.get_majorticklocs() if lo <= v <= hi]
    step = getattr(axis, "_gnndyn_minor_step", -1) + 1
    if len(majors) >= 2 or step >= len(_MINOR_STEPS):
        axis.set_minor_formatter(NullFormatter())
        return
    axis._gnndyn_minor_step = step
    axis.set_minor_locator(LogLocator(base=10.0, subs=_MINOR_STEPS[step]))
    axis.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(np.inf, np.inf)))


def tidy_ticks(fig, *, rounds: int = 4) -> None:
    """Tick labels that would overlap are thinned, after the figure is laid out: on a log axis the minor
    labels go where two decades or more are labelled (matplotlib labels some minor ticks on an axis
    spanning about a decade: 2×10⁻³ 3×10⁻³ …) and are thinned where they are the axis's only numbers (see
    :func:`_thin_log_minor`); on a linear one the major ticks are halved (long labels such as 0.0001
    0.0002 …), up to ``rounds`` times."""
    from matplotlib.ticker import MaxNLocator, NullFormatter

    for _ in range(rounds):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        changed = False
        for ax in fig.get_axes():
            if not ax.get_visible():
                continue
            for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
                labels = [t for t in axis.get_ticklabels(which="both") if t.get_visible() and t.get_text()]
                boxes = sorted((t.get_window_extent(renderer) for t in labels),
                               key=lambda b: b.x0 if name == "x" else b.y0)
                if not any(a.overlaps(b) for a, b in zip(boxes, boxes[1:])):
                    continue
                if axis.get_scale() == "log" and axis.get_minor_formatter() is not None and \
                        not isinstance(axis.get_minor_formatter(), NullFormatter):
                    _thin_log_minor(axis)
                elif axis.get_scale() == "linear":
                    inside = [v for v in axis.get_majorticklocs()
                              if min(axis.get_view_interval()) <= v <= max(axis.get_view_interval())]
                    axis.set_major_locator(MaxNLocator(nbins=max(2, len(inside) // 2)))
                else:
                    continue
                changed = True
        if not changed:
            return


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
