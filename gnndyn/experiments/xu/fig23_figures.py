r"""Figures of ``xu-fig2`` and ``xu-fig3`` (Xu et al. 2021, Figs. 2 and 3), drawn from a finished run's
tables: ``fig2_conditions`` / ``fig3_conditions`` with (a) σ²_min per dataset × operator × H
(unresolved values drawn as ≈ 0 at the tolerance), (b) λ_T over time along gradient descent and the flow,
(c) λ_T at the last iteration across settings (hollow where descent diverged); and ``fig2_bound`` /
``fig3_bound``, the measured loss gap L − L* against the bound of Thm 1 (eq. 8) or Thm 2 (i) along
each time-setting run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gnndyn.store.run import RunStore


def figures_fig23(store: RunStore) -> dict:
    from matplotlib.ticker import MaxNLocator

    from gnndyn.report.plots import finish_log_axis, log_values, new_figure

    spec = store.spec()
    multiscale = spec["experiment"] == "xu-fig3"
    tag = "3" if multiscale else "2"
    figs = {}
    sig = store.table("sigma2")
    fig, axes = new_figure(3, width=4.6)
    ax = axes[0]
    for (ds, opn), d in sig.groupby(["dataset", "operator"]):
        d = d.sort_values("H")
        y = np.where(d["resolved"], d["sigma2_min"], 0.0)  # unresolved: σ_min = 0, drawn as ≈ 0
        color = log_values(ax, d["H"], y, "o-", floor=d["tol"], label=f"{ds}/{opn}")
        unres = d[~d["resolved"]]
        if len(unres):
            log_values(ax, unres["H"], unres["sigma2_small"], "x--", floor=unres["tol"], color=color,
                       label=f"{ds}/{opn}: " + r"$\sigma^2_{\mathrm{small}}$ ($\sigma_{\min} = 0$)")
    finish_log_axis(ax, "≈ 0 (below the rank tolerance)")
    ax.set(xlabel="H", ylabel=r"$\sigma^2_{\min}$", title=f"({tag}a) graph condition")
    ax.legend(fontsize=7)
    df = store.metrics()
    ax = axes[1]
    lam_series = [s for s in df[df.quantity == "lambda"]["series"].unique() if "sweep" not in s]
    for s in lam_series:
        d = df[(df.series == s) & (df.quantity == "lambda") & (df.seed == df.seed.min())]
        pv = d.pivot_table(index="time", columns="layer", values="value", aggfunc="first").sort_index()
        rd = df[(df.series == s) & (df.quantity == "lambda_resolution") & (df.seed == df.seed.min())]
        rv = rd.pivot_table(index="time", columns="layer", values="value", aggfunc="first").reindex(
            index=pv.index, columns=pv.columns).to_numpy()
        vals = pv.to_numpy()
        # the plotted λ_T (layer H; the smallest layer for multiscale) and the resolution of that same value
        k = np.nanargmin(np.where(np.isnan(vals), np.inf, vals), axis=1) if multiscale else np.full(len(vals), -1)
        now = vals[np.arange(len(vals)), k]
        now_res = rv[np.arange(len(vals)), k]
        lam, floor = np.minimum.accumulate(now), np.empty(len(now))
        best = 0
        for t in range(len(now)):  # the running minimum and the resolution of the value it holds
            best = t if not now[t] >= now[best] else best
            floor[t] = now_res[best]
        fallback = 1e-13 * float(np.nanmax(np.abs(lam), initial=0.0))
        floor = np.where(np.isfinite(floor), floor, fallback)
        log_values(ax, pv.index, lam, "-", floor=floor, label=s)
    finish_log_axis(ax, "≈ 0 (below the resolution)")
    ax.set(xlabel="time t (= kη for gradient descent)", ylabel=r"$\lambda_T$", title=f"({tag}b) " + r"$\lambda_T$ over time")
    ax.legend(fontsize=7)
    ax = axes[2]
    try:
        lt = store.table("lambda_T")
    except FileNotFoundError:
        lt = pd.DataFrame()
    if not lt.empty:
        markers = dict(zip(sorted(lt["dataset"].unique()), "osD^v<>"))
        colors = dict(zip(sorted(lt["operator"].unique()), [f"C{i}" for i in range(10)]))
        offsets = {o: 0.08 * (i - (len(colors) - 1) / 2) for i, o in enumerate(colors)}
        for (ds, opn), d in lt.groupby(["dataset", "operator"]):
            x = (d["H"] + offsets[opn]).to_numpy(dtype=float)
            y = d["lambda_T_last"].to_numpy(dtype=float)
            res = d["lambda_resolution"].to_numpy(dtype=float)
            fin = d["diverged_at"].isna().to_numpy()
            log_values(ax, x[fin], y[fin], floor=res[fin], scatter=True, marker=markers[ds], color=colors[opn],
                       label=f"{ds}/{opn}")
            if (~fin).any():  # λ_T up to the step where gradient descent diverged: hollow
                log_values(ax, x[~fin], y[~fin], floor=res[~fin], scatter=True, marker=markers[ds], facecolors="none",
                           edgecolors=colors[opn], color=colors[opn], label=f"{ds}/{opn}: diverged (λ_T up to then)")
        finish_log_axis(ax, "≈ 0 (below the resolution)")
        ax.set(xlabel="H", ylabel=r"$\lambda_T$ at the last iteration", title=f"({tag}c) across settings")
        ax.legend(fontsize=7)
    fig.tight_layout()
    figs[f"fig{tag}_conditions"] = fig
    # the bound along the time-setting runs
    q = "bound_thm2i" if multiscale else "bound_thm1"
    runs = [s for s in df[df.quantity == q]["series"].unique() if "sweep" not in s]
    if runs:
        fig, axes = new_figure(1, width=6.0)
        ax = axes[0]
        for s in runs:
            d = df[(df.series == s) & (df.seed == df.seed.min())]
            g = d[d.quantity == "gap"].sort_values("time")
            b = d[d.quantity == q].sort_values("time")
            floor = 1e-12 * float(np.nanmax(np.abs(np.r_[g["value"], b["value"]]), initial=0.0))
            color = log_values(ax, g["time"], g["value"], "-", floor=floor, label=f"{s}: L − L*")
            log_values(ax, b["time"], b["value"], "--", floor=floor, color=color,
                       label=f"{s}: Thm {'2 (i)' if multiscale else '1'} bound")
        finish_log_axis(ax, "≈ 0 (below 1e-12 × the largest)")
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set(xlabel="time t", ylabel=r"$L - L^*$", title="measured loss gap vs the theorem's bound")
        ax.legend(fontsize=7)
        fig.tight_layout()
        figs[f"fig{tag}_bound"] = fig
    return figs
