"""A monitored run as an ordinary gnndyn run folder (:mod:`gnndyn.store.run`), with its figures and report.

Figures (drawn from the stored metrics only): ``monitor_signals`` — ℰ(H⁽ᵏ⁾) and ℰ(B⁽ᵏ⁾) against the layer k
at the first, middle and last recorded step; ``monitor_training`` — the loss and each layer's gradient norm
against the step.

A run folder that exists is never written into: :func:`save_run` refuses an existing non-empty folder (and a
path that is a file) before it computes or writes anything, unless ``overwrite=True``, which replaces a gnndyn
run folder whole — the rule of :meth:`gnndyn.store.run.RunStore.claim` (the command line's ``--out`` and
``--overwrite``), its refusals worded for a caller of ``Monitor.save`` (:data:`PYTHON_TERMS`, :func:`check_destination`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gnndyn.store.metrics import select
from gnndyn.store.run import CLI_TERMS, ClaimTerms, RunStore

if TYPE_CHECKING:
    from gnndyn.monitor.monitor import Monitor

#: how a refusal names the folder and the overwrite switch to a caller of ``Monitor.save`` (the command
#: line's words are :data:`gnndyn.store.run.CLI_TERMS`)
PYTHON_TERMS = ClaimTerms("Monitor.save's path", "Monitor.save another path", "pass overwrite=True", "overwrite=True",
                          lambda r: f"mon.save({str(r) + '-run'!r})")


def check_destination(path: str | Path, *, overwrite: bool = False, cli: bool = False) -> Path:
    """Refuse a destination :func:`save_run` must not write into, before anything is computed or written.

    The rule is :meth:`~gnndyn.store.run.RunStore.check_claim`'s (which ``save_run`` then applies): a new
    path or an empty folder is taken; an existing non-empty folder is refused unless ``overwrite`` — and even
    then only a gnndyn run folder (one holding ``spec.json`` or ``run.json``) may be replaced; a path that is
    a file, or one that cannot be created, is refused. Nothing is created or removed here: a command line can
    call it before training (``cli=True`` words the refusal with ``--out`` / ``--overwrite``, as ``gnndyn
    run`` does). Returns the path.

    Raises:
        GnndynError: what is at ``path``, that nothing was written, and how to go on.
    """
    RunStore(path).check_claim(overwrite=overwrite, terms=CLI_TERMS if cli else PYTHON_TERMS)
    return Path(path)


def draw_figures(store: RunStore) -> dict:
    """The monitor's figures (module docstring), from the stored metrics only. A run that diverged or failed
    draws without a warning: a log axis with nothing positive to show stays linear, a panel with nothing
    recorded says so (:mod:`gnndyn.report.plots`); :func:`save_run` then leaves out non-finite points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gnndyn.report.plots import log_scale, note_empty

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
        log_scale(ax)
        ax.set(xlabel="layer k", ylabel=label, title=label)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out["monitor_signals"] = fig
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), squeeze=False)
    d = select(df, "loss").sort_values("step")
    axes[0, 0].plot(d["step"], d["value"], color="k")
    axes[0, 0].set(xlabel="step", ylabel="loss", title="training loss")
    if d.empty:
        note_empty(axes[0, 0], "no loss recorded (mon.step was given none)")
    axes[0, 0].grid(alpha=0.3)
    g = select(df, "grad_norm")
    g = g[np.isfinite(g["value"])]  # NaN: no gradient (a layer without parameters, a step without backward)
    ax = axes[0, 1]
    if g.empty and not select(df, "grad_norm").empty:
        note_empty(ax, "no layer had a finite gradient")
    elif not g.empty:
        pv = g.pivot_table(index="step", columns="layer", values="value")
        cmap = plt.get_cmap("viridis")
        L = max(int(pv.columns.max()), 1)
        for k in pv.columns:
            ax.plot(pv.index, pv[k], color=cmap(k / L), lw=1.0 if k < L else 2.2)
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, L))
        fig.colorbar(sm, ax=ax, label="layer k", pad=0.01)
        log_scale(ax)
        ax.set(xlabel="step", ylabel=r"$\|\partial L/\partial\theta_k\|$", title="gradient norm per layer")
        ax.grid(alpha=0.3)
    else:
        ax.set_visible(False)
    fig.tight_layout()
    out["monitor_training"] = fig
    return out


def save_run(mon: Monitor, path: str | Path, *, figures: bool = True, overwrite: bool = False) -> RunStore:
    """Write the run folder of ``mon`` at ``path`` (everything is computed before anything is written).

    ``path`` must be new or an empty folder; an existing non-empty one is refused (:func:`check_destination`,
    before anything is computed or written) unless ``overwrite``, which removes that gnndyn run folder whole
    (:meth:`~gnndyn.store.run.RunStore.claim`) once the new one is written (put back if writing fails)."""
    check_destination(path, overwrite=overwrite)
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
    check_destination(path, overwrite=overwrite)  # again: the folder may have appeared while this computed
    store.claim(overwrite=overwrite, terms=PYTHON_TERMS)
    try:
        _write(store, mon, config, table, verdicts, layers, summary, figures=figures)
    except BaseException:
        store.settle(keep_new=False)  # an overwrite that fails puts the earlier run back
        raise
    store.settle(keep_new=True)
    return store


def _write(store: RunStore, mon: Monitor, config: dict, table, verdicts, layers, summary: dict, *,
           figures: bool) -> None:
    """The writing half of :func:`save_run`, into a claimed folder."""
    from gnndyn.experiments.base import _versions
    from gnndyn.report import write_report

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

        from gnndyn.report.plots import drawable, tidy_ticks

        for name, fig in draw_figures(store).items():
            drawable(fig)  # non-finite or overflowing points (a diverged run) are left out, not drawn as garbage
            tidy_ticks(fig)
            store.save_figure(fig, name)
            plt.close(fig)
    write_report(store)
