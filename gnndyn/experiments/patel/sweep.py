r"""The sweep behind Figs. 3–7 of Patel, Savostianov & Schaub (arXiv 2501.14440, §6.1.2): one graph family, one
parameter varied (p, k, q or m), the operators Adj, L, Nor. L, Remark 3.3's start (a = 2), and for every
(seed, parameter, operator) the relative loss :math:`(\mathcal L(T) - \tilde L_H)/(\mathcal L(0) - \tilde L_H)` against T
with Thm 3.1's bound :math:`e^{-\beta\sigma^2_{small}T/m}`, σ_small((XS^H)_{*I}) and the checks of §3
(:func:`gnndyn.experiments.patel.common.run_checks`).

Series ``<family>-<param>-<operator>``; metrics ``loss``, ``relative_loss``, ``bound`` (gradient flow only) per
recorded point, ``sigma_small`` and ``rate_bound`` at step 0. Tables: ``runs`` (one row per run: σ_small, rates,
the time ``t_level`` the relative loss first reaches ``level``, hypothesis and Remark 3.3 numbers), ``sigma``
(median σ_small against the paper's bars). The figure files only add their spec defaults and their claims.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gnndyn.errors import GnndynError, resolve
from gnndyn.experiments.base import ExperimentResult, RunContext
from gnndyn.experiments.patel import checks
from gnndyn.experiments.patel import common as C
from gnndyn.store.run import RunStore
from gnndyn.theory.verdict import Verdict, aggregate


class SweepSpec(C.PatelSpec):
    """A family sweep of §6.1.2: n, the parameter values, the operators, the rule and the horizon."""

    family: str = "erdos-renyi"
    n: int = Field(200, ge=2)
    params: list[float] = Field(default_factory=lambda: [0.03, 0.05, 0.1, 0.2])
    operators: list[str] = Field(default_factory=lambda: ["adj", "lap", "nor-lap"])
    rule: str = "flow"
    horizon_units: float = Field(25.0, gt=0, description="flow: T = horizon_units / (βσ²_small/m)")
    horizons: dict[str, float] = Field(default_factory=dict, description="normalized flow: T per operator")
    stop_level: float = Field(1e-9, ge=0, description="stop once the relative loss is this small")
    level: float = Field(1e-6, gt=0, lt=1, description="the relative loss whose first time is compared")
    points: int = Field(100, ge=4)
    max_steps: int = Field(400_000, ge=10)
    step_size: float | None = Field(None, gt=0, description="normalized flow: fixed RK4 step (default: adaptive RK45)")
    rtol: float = Field(1e-8, gt=0, description="RK45's relative tolerance")
    max_wall_s: float = Field(600.0, gt=0, description="wall-clock budget of one flow (s)")
    sbm_p: float = Field(0.15, ge=0, le=1)

    @model_validator(mode="after")
    def _params(self) -> "SweepSpec":
        """Every value in ``params`` is a valid parameter of ``family`` at this n (checked before any run), distinct,
        and so are the operators; the labelled set is not empty; the rule's own fields (horizons, step) are given and
        no other rule's are; a flow does not stop before the level whose time it measures."""
        c = self.canonical()  # names in the paper's spelling (the spec keeps them as given)
        try:
            C.check_family_params(self.family, self.n, self.params, self.d_x, sbm_p=self.sbm_p)
        except GnndynError as exc:
            raise ValueError(str(exc)) from None
        checks.values("params", self.params, f"{self.family} parameter", "[0.05,0.1]",
                      why_distinct="each value is one graph per seed and names its series "
                                   "(<family>-<param>-<operator>), so a repeat records the same series twice")
        checks.values("operators", c.operators, "operator", '["adj","lap"]')
        checks.labelled_count("labelled_fraction", self.labelled_fraction, self.n)
        if c.family != "sbm":
            checks.unused(self, ["sbm_p"], f"by family = {self.family!r} (it is the sbm family's within-block "
                                           f"probability)")
        if not self.stop_level <= self.level:  # equal is fine: the flow stops at the point that reaches level
            raise ValueError(f"stop_level = {self.stop_level:g} must be at most level = {self.level:g}: a flow stops "
                             f"once its relative loss reaches stop_level, so it would never reach level and the time "
                             f"t_level to it could not be measured; lower stop_level (e.g. --set "
                             f"stop_level={self.level * 1e-3:g}) or raise level")
        checks.known_keys("horizons", self.horizons, "operator", C.OPERATORS, positive=True, what="a horizon T")
        if c.rule == "normalized-flow":
            lacking = [op for op in c.operators if op not in c.horizons]
            if lacking:
                raise ValueError(f"the normalized flow needs a horizon T per operator; horizons has "
                                 f"{sorted(c.horizons) or 'none'}, not {', '.join(lacking)} (e.g. --set "
                                 f"'horizons={{\"{lacking[0]}\": 1.0}}')")
            checks.unused(self, ["horizon_units"], "by rule = 'normalized-flow', which runs to horizons[operator] "
                                                   "(set those instead)")
            if self.step_size is not None:
                checks.unused(self, ["rtol"], f"with a fixed RK4 step (step_size = {self.step_size:g}); rtol is the "
                                              f"adaptive RK45's tolerance")
        else:
            checks.unused(self, ["horizons"], "by rule = 'flow' (its horizon is horizon_units / (βσ²_small/m)); it is "
                                              "the normalized flow's T per operator")
            checks.unused(self, ["step_size"], "by rule = 'flow' (the gradient flow is always integrated by "
                                               "adaptive RK45, tolerance rtol); step_size is the normalized flow's "
                                               "fixed RK4 step")
        return self


def series_name(family: str, param: float, op: str) -> str:
    return f"{family}-{param:g}-{op}"


def run_sweep(spec: SweepSpec, ctx: RunContext, fig: str,
              claims: Callable[[pd.DataFrame, SweepSpec], list[Verdict]]) -> ExperimentResult:
    """Every (seed, parameter, operator) run, the per-operator aggregated checks, and the figure's claims."""
    spec = spec.canonical()  # names in the paper's spelling: labels, series and horizons read them
    rec = ctx.recorder
    for op in spec.operators:
        resolve("operator", op, {o: o for o in C.OPERATORS})
    by_check: dict[tuple[str, str], list[Verdict]] = {}
    rows = []
    nbar = round(spec.labelled_fraction * spec.n)  # ≥ 1: checked when the spec was built
    with ctx.task(f"{fig} runs", spec.seeds * len(spec.params) * len(spec.operators)) as bar:
        for seed in range(spec.seed, spec.seed + spec.seeds):
            nodes = C.labelled_set(spec.n, nbar, seed)
            for p in spec.params:
                g = C.synthetic_graph(spec.family, spec.n, p, spec.d_x, seed, sbm_p=spec.sbm_p)
                y = C.paper_targets(g, spec.epsilon)
                for op in spec.operators:
                    prob = C.graph_problem(g, op, nodes, y, spec.depth, spec.width)
                    W0 = C.start(prob, spec.a)
                    k = C.thy.rate(prob, W0)
                    if spec.rule == "flow":
                        T = spec.horizon_units / k
                    else:
                        if op not in spec.horizons:
                            raise GnndynError(f"the normalized flow needs a horizon per operator; horizons has "
                                                f"{sorted(spec.horizons)}, not {op!r}.")
                        T = float(spec.horizons[op])
                    path = C.solve(prob, W0, rule=spec.rule, T=T, stop_level=spec.stop_level, points=spec.points,
                                   max_steps=spec.max_steps, step_size=spec.step_size, rtol=spec.rtol,
                                   max_wall_s=spec.max_wall_s)
                    s = series_name(spec.family, p, op)
                    C.record_path(rec, s, seed, prob, path, k if spec.rule == "flow" else None)
                    rec.add(s, seed, 0, "sigma_small", prob.sigma_small, time=0.0)
                    rec.add(s, seed, 0, "rate_bound", k, time=0.0)
                    vs, row = C.run_checks(prob, path, spec.a)
                    for v in vs:
                        by_check.setdefault((v.name, op), []).append(v)
                    rel = C.relative_loss(prob, path)
                    rows.append({"seed": seed, "param": float(p), "operator": op, "series": s, "rule": spec.rule,
                                 "edges": g.num_edges, "mean_degree": 2.0 * g.num_edges / g.num_nodes, **row,
                                 "t_level": C.time_to_level(path.times, rel, spec.level), "level": spec.level,
                                 "wall_s": path.solver.get("wall_s")})
                    bar.advance(1)
    runs = pd.DataFrame(rows)
    verdicts = []
    for (name, op), vs in sorted(by_check.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        v = aggregate(vs, label="run")
        verdicts.append(dataclasses.replace(v, where=f"{C.LABELS[op]}: {v.where}"))
    verdicts += claims(runs, spec)
    sig = C.sigma_table(runs, C.PAPER_SIGMA.get(fig))
    summary = summarize(runs, spec)
    return ExperimentResult(verdicts=verdicts, tables={"runs": runs, "sigma": sig}, summary=summary)


def summarize(runs: pd.DataFrame, spec: SweepSpec) -> dict:
    out = {}
    for (op, p), d in runs.groupby(["operator", "param"]):
        key = f"{C.LABELS[op]}, {p:g}"
        parts = [f"σ_small {d['sigma_small'].median():.4g}", f"t(rel ≤ {spec.level:g}) {d['t_level'].median():.3g}"]
        if "measured_rate" in d:
            parts += [f"rate {d['measured_rate'].median():.3g} vs bound {d['rate_bound'].median():.3g}"]
        out[key] = "; ".join(parts)
    out["Thm 3.1 hypothesis (3.8) met"] = f"{int(runs['hypothesis_holds'].sum())} of {len(runs)} runs"
    return out


# ------------------------------------------------------------------------------------------------ claims
def _per_seed(runs: pd.DataFrame, op: str, key: str) -> dict[int, pd.Series]:
    d = runs[runs.operator == op]
    return {int(s): g.set_index("param")[key].sort_index() for s, g in d.groupby("seed")}


def monotone(runs: pd.DataFrame, op: str, key: str, *, decreasing: bool, name: str, where: str, statement: str) -> Verdict:
    """``key`` strictly monotone in the parameter for every seed; margin = smallest log step in the claimed direction."""
    worst, at, vals = math.inf, "", {}
    for s, ser in _per_seed(runs, op, key).items():
        if not np.all(np.isfinite(ser.to_numpy(float))):  # a time never reached (inf): no order to compare
            bad = [f"{p:g}" for p, x in ser.items() if not math.isfinite(float(x))]
            return C.claim(name, where, statement, False, math.nan, f"seed {s}: {key} not finite at parameter "
                           f"{', '.join(bad)}", operator=op, quantity=key,
                           values={f"{p:g}": float(x) if math.isfinite(float(x)) else None for p, x in ser.items()})
        v = np.log(np.maximum(ser.to_numpy(float), 1e-300))
        steps = -(np.diff(v)) if decreasing else np.diff(v)
        vals[s] = ser.round(8).to_dict()
        if steps.size and steps.min() < worst:
            worst, at = float(steps.min()), f"seed {s}, between {ser.index[int(np.argmin(steps))]:g} and {ser.index[int(np.argmin(steps)) + 1]:g}"
    return C.claim(name, where, statement, worst > 0, worst, at, operator=op, quantity=key, values=vals)


def faster(runs: pd.DataFrame, fast: str, slow: str, *, name: str, where: str, statement: str, key: str = "t_level") -> Verdict:
    """``key`` (a time) smaller for ``fast`` than for ``slow`` at every (seed, parameter); margin = min log ratio."""
    a = runs[runs.operator == fast].set_index(["seed", "param"])[key]
    b = runs[runs.operator == slow].set_index(["seed", "param"])[key]
    r = np.log(b / a)
    if not np.all(np.isfinite(r.to_numpy(float))):  # a flow that never reached the level: t_level = inf
        bad = [f"seed {k[0]}, parameter {k[1]:g}" for k, v in r.items() if not math.isfinite(float(v))]
        return C.claim(name, where, statement, False, math.nan, f"{key} not finite (level not reached) at "
                       f"{'; '.join(bad)}", **{o: {f"{k[0]}/{k[1]:g}": float(v) if math.isfinite(float(v)) else None
                                                  for k, v in t.items()} for o, t in ((fast, a), (slow, b))})
    i = r.idxmin()
    return C.claim(name, where, statement, bool((r > 0).all()), float(r.min()), f"seed {i[0]}, parameter {i[1]:g}",
                   ratios={f"{k[0]}/{k[1]:g}": float(np.exp(v)) for k, v in r.items()})


def spread(runs: pd.DataFrame, op: str, key: str) -> float:
    """Median over seeds of max/min of ``key`` across the parameters."""
    return float(np.median([s.max() / s.min() for s in _per_seed(runs, op, key).values()]))


def flat(runs: pd.DataFrame, op: str, key: str, factor: float, *, name: str, where: str, statement: str) -> Verdict:
    """max/min of ``key`` over the parameters ≤ factor (median over seeds); margin log(factor) − log(spread)."""
    sp = spread(runs, op, key)
    others = {o: spread(runs, o, key) for o in sorted(set(runs.operator)) if o != op}
    return C.claim(name, where, statement, sp <= factor, math.log(factor) - math.log(sp), "median over seeds",
                   spread=sp, factor=factor, spread_other_operators=others)


def least_affected(runs: pd.DataFrame, op: str, key: str, *, name: str, where: str, statement: str) -> Verdict:
    """The spread of ``key`` over the parameters is smaller for ``op`` than for every other operator."""
    sp = spread(runs, op, key)
    others = {o: spread(runs, o, key) for o in sorted(set(runs.operator)) if o != op}
    m = min(others.values())
    return C.claim(name, where, statement, sp < m, math.log(m) - math.log(sp), "median over seeds", spread=sp,
                   spread_other_operators=others)


# ------------------------------------------------------------------------------------------------ figures
def figures_sweep(store: RunStore, title: str, param_label: str) -> dict:
    """Relative loss against T per operator (log y; Thm 3.1's bound dashed over each curve, gradient flow only) and
    σ_small bars per operator and parameter — from the stored metrics and ``runs`` table only."""
    from gnndyn.report.plots import log_bar_limits, new_figure

    df = store.metrics()
    runs = store.table("runs")
    ops = list(dict.fromkeys(runs["operator"]))
    params = sorted(runs["param"].unique())
    cmap = __import__("matplotlib").colormaps["viridis"]
    colors = {p: cmap(i / max(len(params) - 1, 1) * 0.9) for i, p in enumerate(params)}
    fig, axes = new_figure(len(ops) + 1, width=3.6, height=3.0)
    first_seed = int(runs["seed"].min())
    for ax, op in zip(axes, ops):
        for p in params:
            for s in sorted(runs["seed"].unique()):
                ser = runs[(runs.operator == op) & (runs.param == p) & (runs.seed == s)]["series"].iloc[0]
                d = df[(df.series == ser) & (df.seed == s)]
                r = d[d.quantity == "relative_loss"].sort_values("step")
                lab = f"{param_label} = {p:g}" if s == first_seed else None
                ax.plot(r["time"], np.maximum(r["value"], 1e-16), color=colors[p], lw=1.4 if s == first_seed else 0.7,
                        alpha=1.0 if s == first_seed else 0.5, label=lab)
                b = d[d.quantity == "bound"].sort_values("step")
                if not b.empty and s == first_seed:
                    ax.plot(b["time"], b["value"], color=colors[p], ls="--", lw=1.0)
        ax.set(yscale="log", xlabel="T", title=C.LABELS[op], ylim=(1e-12, 2))
        ax.set_ylabel("relative loss" if op == ops[0] else "")
        ax.legend(fontsize=6)
    ax = axes[-1]
    w = 0.8 / max(len(params), 1)
    heights = []
    for j, p in enumerate(params):
        med = [runs[(runs.operator == op) & (runs.param == p)]["sigma_small"].median() for op in ops]
        heights += med
        ax.bar(np.arange(len(ops)) + (j - (len(params) - 1) / 2) * w, med, w, color=colors[p], label=f"{param_label} = {p:g}")
    ax.set(yscale="log", xticks=np.arange(len(ops)), title=r"$\sigma_{\mathrm{small}}((XS^H)_{*I})$")
    log_bar_limits(ax, heights)
    ax.set_xticklabels([C.LABELS[o] for o in ops], fontsize=7)
    ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return {"relative_loss": fig}


__all__ = ["SweepSpec", "faster", "figures_sweep", "flat", "least_affected", "monotone", "run_sweep", "series_name",
           "spread", "summarize"]
