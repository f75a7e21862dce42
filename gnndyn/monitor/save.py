"""A monitored run as an ordinary gnndyn run folder (:mod:`gnndyn.store.run`), with its figures and report.

Figures (drawn from the stored metrics only): ``monitor_signals`` — ℰ(H⁽ᵏ⁾) and ℰ(B⁽ᵏ⁾) against the layer k
at the first, middle and last recorded step; ``monitor_training`` — the loss and each layer's gradient norm
against the step.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from gnndyn.store.metrics import select
from gnndyn.store.run import RunStore

if TYPE_CHECKING:
    from gnndyn.monitor.monitor import Monitor


def draw_figures(store: RunStore) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = store.metrics()
    out = {}
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), squeeze=False)
    for ax, q, label in ((axes[0, 0], "smoothing_H", "forward ℰ(H⁽ᵏ⁾)"), (axes[0, 1], "smoothing_B", "backward ℰ(B⁽ᵏ⁾)")):
        d = select(df, q)
        steps = sorted(d["step"].unique())
        if not steps:
            ax.set_visible(False)
            continue
        picks = sorted({steps[0], steps[len(steps) // 2], steps[-1]})
        for s in picks:
            e = d[d["step"] == s].sort_values("layer")
            ax.plot(e["layer"], e["value"], marker="o", ms=3, label=f"step {s}")
        ax.set(yscale="log", xlabel="layer k", ylabel=label, title=label)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out["monitor_signals"] = fig
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), squeeze=False)
    d = select(df, "loss").sort_values("step")
    axes[0, 0].plot(d["step"], d["value"], color="k")
    axes[0, 0].set(xlabel="step", ylabel="loss", title="training loss")
    axes[0, 0].grid(alpha=0.3)
    g = select(df, "grad_norm")
    ax = axes[0, 1]
    if not g.empty:
        pv = g.pivot_table(index="step", columns="layer", values="value")
        cmap = plt.get_cmap("viridis")
        L = max(int(pv.columns.max()), 1)
        for k in pv.columns:
            ax.plot(pv.index, pv[k], color=cmap(k / L), lw=1.0 if k < L else 2.2)
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, L))
        fig.colorbar(sm, ax=ax, label="layer k", pad=0.01)
        ax.set(yscale="log", xlabel="step", ylabel="‖∂L/∂θ_k‖", title="gradient norm per layer")
        ax.grid(alpha=0.3)
    else:
        ax.set_visible(False)
    fig.tight_layout()
    out["monitor_training"] = fig
    return out


def save_run(mon: Monitor, path: str | Path, *, figures: bool = True) -> RunStore:
    """Write the run folder of ``mon`` at ``path`` (everything is computed before anything is written)."""
    from gnndyn.experiments.base import _versions
    from gnndyn.report import write_report

    verdicts = mon.diagnose()
    table = mon.recorder.table()
    config = mon.config()
    layers = pd.DataFrame([{"layer": k, "name": x.name, "kind": x.kind} for k, x in enumerate(mon.layers)])
    fired = [v.name for v in verdicts if v.details.get("alarm")]
    summary = {"steps recorded": mon.num_steps, "layers": len(mon.layers),
               "alarms": ", ".join(fired) if fired else "none"}
    losses = select(table.to_pandas(), "loss").sort_values("step")["value"].to_numpy()
    if losses.size:
        summary["first loss"], summary["last loss"] = float(losses[0]), float(losses[-1])
    for v in verdicts:
        summary[v.name] = v.where
    store = RunStore(path)
    store.root.mkdir(parents=True, exist_ok=True)
    store.write_json("spec.json", config)
    store.write_metrics(table)
    store.write_json("checks.json", [v.as_dict() for v in verdicts])
    store.write_table("layers", layers)
    store.write_json("run.json", {
        "experiment": "monitor", "paper": "gnndyn monitor",
        "description": f"{mon.name}: {len(mon.layers)} monitored layers, {mon.num_steps} steps",
        "status": "ok", "error": None, "wall_time_s": time.perf_counter() - mon._t0, "dtype": config["dtype"],
        "device": config["device"], "versions": _versions(), "summary": summary,
    })
    if figures:
        import matplotlib.pyplot as plt

        for name, fig in draw_figures(store).items():
            store.save_figure(fig, name)
            plt.close(fig)
    write_report(store)
    return store
