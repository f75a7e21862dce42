r"""``patel-fig8`` — Patel, Savostianov & Schaub (arXiv 2501.14440), §6.2 and Fig. 8: the US-counties climate graph
(3107 counties, edge = shared border), σ_small((XS^H)_{*I}) for the five operators (8a), the relative loss against T
for each operator (8b) and, with S = Adj, for Remark 3.3's a ∈ {1.5, 2, 2.5, 3} (8c); H = 2, d₁ = d₂ = 32, a = 1.5,
n̄ = 0.75n, features and labels z-scored.

**Features differ from the paper's.** The paper used monthly 2008 values (4 measures × 12 months = d_x = 48, 12
monthly air temperatures, d_y = 12). The stored data (``us-climate``, root from ``--data-root`` or
``$GNNDYN_DATA_ROOT``) are annual: the default ``year="all"`` stacks the six years 2003–2008, d_x = 24 (land surface
temperature, precipitation, sunlight, fine particulate matter × 6 years) and d_y = 6 (max air temperature × 6
years), the shape closest to the paper's; ``--set year=2008`` gives d_x = 4, d_y = 1. With d_x = 24 < d₁ = 32 the
widths still satisfy the paper's assumption d₁ ≥ … ≥ d_{H+1} (it says nothing of d₁ against d_x).

Horizons are the paper's axes (T = 25 for 8b, 12.5 for 8c); a flow also stops when its relative loss is 10⁻¹⁰.
Checks per run as in ``patel-fig3`` (Thm 3.1 along the flow, (3.8), Thm 3.2's PL ratio and ball, Remark 3.3).
Claims: the operators' speeds follow their σ_small (caption of 8b: rate "proportional to σ_small"; compared by
the relative loss at T); L is the fastest; the normalized operators stay nearly flat (relative loss at T above
10⁻³); a larger a is faster (8c).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gnndyn.data.climate import _years, load_us_climate
from gnndyn.errors import GnndynError
from gnndyn.experiments.base import Experiment, ExperimentResult, RunContext, register
from gnndyn.experiments.patel import checks
from gnndyn.experiments.patel import common as C
from gnndyn.store.run import RunStore
from gnndyn.theory.verdict import Verdict, aggregate

#: the counties of the stored ``us-climate`` graph (every year 2003–2008 and ``all`` give the same 3107; the shared
#: datasets README pins the files by sha256): ``nodes`` and the labelled set are checked against it when the spec is
#: built, and against the graph actually loaded before anything is trained
COUNTIES = 3107

#: Fig. 8a's bars
PAPER_SIGMA_CLIMATE = {"adj": 30.63, "sl-adj": 41.19, "nor-sl-adj": 0.84, "lap": 142.18, "nor-lap": 3.78}


class PatelFig8Spec(C.PatelSpec):
    """Spec of ``patel-fig8``."""

    experiment: Literal["patel-fig8"] = "patel-fig8"
    year: int | str | list[int] = "all"
    label: str = "max-air-temperature"
    a: float = Field(1.5, gt=0)
    d_x: int | None = Field(None, description="set by the data, not here: 24 features for year='all', 4 for one year")
    operators: list[str] = Field(default_factory=lambda: list(C.OPERATORS))
    a_values: list[float] = Field(default_factory=lambda: [1.5, 2.0, 2.5, 3.0])
    a_operator: str = "adj"
    horizon: float = Field(25.0, gt=0, description="T of Fig. 8b")
    a_horizon: float = Field(12.5, gt=0, description="T of Fig. 8c")
    stop_level: float = Field(1e-10, ge=0)
    flat_level: float = Field(1e-3, gt=0, description="'nearly flat': relative loss at T above this")
    points: int = Field(100, ge=4)
    max_steps: int = Field(400_000, ge=10)
    seeds: C.Seeds = 1
    nodes: int | None = Field(None, ge=2, description=f"keep the first this many counties (tests), at most the "
                                                     f"{COUNTIES} counties; None = all")

    @model_validator(mode="after")
    def _year(self) -> "PatelFig8Spec":
        """``year`` names distinct years of the data (2003–2008), a list of them, or ``all``; the operators and the a
        of Fig. 8c are non-empty and distinct; the labelled set is not empty; a flow's stop level lies below the
        'nearly flat' level; ``epsilon`` (§6.1's synthetic targets) is not used here."""
        try:
            years = _years(self.year)
        except GnndynError as exc:
            raise ValueError(str(exc).removeprefix("us-climate: ")) from None
        if isinstance(self.year, list):
            checks.values("year", years, "year", "[2007,2008]",
                          why_distinct="a repeated year repeats its feature and label columns")
        checks.values("operators", self.canonical().operators, "operator", '["adj","lap"]')
        checks.values("a_values", self.a_values, "value of Remark 3.3's a (Fig. 8c, W_{H+1}(0) = a·I)", "[1.5,3.0]",
                      positive=True, why_distinct="each a is one flow of Fig. 8c and names its series "
                                                  "(climate-<operator>-a<a>), so a repeat records it twice")
        if self.nodes is not None and self.nodes > COUNTIES:
            raise ValueError(f"nodes = {self.nodes} exceeds the {COUNTIES} counties of us-climate; give at most "
                             f"{COUNTIES}, or leave nodes out to use all of them")
        if self.nodes is None:
            checks.labelled_count("labelled_fraction", self.labelled_fraction, COUNTIES, "n",
                                  fix=f"raise labelled_fraction (n = {COUNTIES}, every county)")
        else:
            checks.labelled_count("labelled_fraction", self.labelled_fraction, self.nodes, "nodes")
        if not self.stop_level < self.flat_level:
            raise ValueError(f"stop_level = {self.stop_level:g} must be below flat_level = {self.flat_level:g}: a flow "
                             f"stops once its relative loss reaches stop_level, so one stopped there would count as "
                             f"'nearly flat' (relative loss at T above flat_level); lower stop_level (e.g. --set "
                             f"stop_level={self.flat_level * 1e-7:g}) or raise flat_level")
        checks.unused(self, ["epsilon"], "by patel-fig8: its targets are the climate label, not §6.1's synthetic rule")
        checks.unused(self, ["d_x"], "by patel-fig8: the climate data fix the features (24 for year='all', 4 for one "
                                     "year; choose them with year)")
        return self

    def datasets_used(self) -> list[str]:
        return ["us-climate"]


def climate_graph(spec: PatelFig8Spec):
    """The climate graph of the spec (its first ``nodes`` counties when given). ``nodes`` was checked against the
    stored data's :data:`COUNTIES` at spec build; a data folder with fewer counties than asked is refused here,
    before anything is trained."""
    g = load_us_climate(spec.data_root, year=spec.year, label=spec.label, zscore=True)
    if spec.nodes is not None and spec.nodes > g.num_nodes:
        raise GnndynError(f"nodes = {spec.nodes} exceeds the {g.num_nodes} counties of the us-climate copy read "
                          f"here (the stored data has {COUNTIES}); lower nodes or use the data listed in the "
                          f"datasets README.")
    if spec.nodes is not None and spec.nodes < g.num_nodes:
        g = g.subgraph(np.arange(spec.nodes))
    if round(spec.labelled_fraction * g.num_nodes) < 1:
        raise GnndynError(f"labelled_fraction × n = {spec.labelled_fraction:g} × {g.num_nodes} gives no labelled "
                          f"county; raise labelled_fraction.")
    return g


def run_fig8(spec: PatelFig8Spec, ctx: RunContext) -> ExperimentResult:
    spec = spec.canonical()  # names in the paper's spelling: labels and series read them
    g = climate_graph(spec)  # names, nodes and the labelled set were checked when the spec was built
    y = g.y.detach().cpu().numpy().astype(np.float64)
    nbar = round(spec.labelled_fraction * g.num_nodes)
    rec, rows, by = ctx.recorder, [], {}
    jobs = [("operators", op, spec.a, spec.horizon) for op in spec.operators]
    jobs += [("a", spec.a_operator, a, spec.a_horizon) for a in spec.a_values]
    with ctx.task("climate flows", spec.seeds * len(jobs)) as bar:
        for seed in range(spec.seed, spec.seed + spec.seeds):
            nodes = C.labelled_set(g.num_nodes, nbar, seed)
            probs = {}
            for panel, op, a, T in jobs:
                if op not in probs:
                    probs[op] = C.graph_problem(g, op, nodes, y, spec.depth, spec.width)
                prob = probs[op]
                W0 = C.start(prob, a)
                k = C.thy.rate(prob, W0)
                path = C.solve(prob, W0, T=T, stop_level=spec.stop_level, points=spec.points, max_steps=spec.max_steps)
                s = f"climate-{op}" if panel == "operators" else f"climate-{op}-a{a:g}"
                C.record_path(rec, s, seed, prob, path, k)
                rec.add(s, seed, 0, "sigma_small", prob.sigma_small, time=0.0)
                vs, row = C.run_checks(prob, path, a)
                for v in vs:
                    by.setdefault((v.name, panel), []).append(v)
                rel = C.relative_loss(prob, path)
                rows.append({"panel": panel, "seed": seed, "operator": op, "a": a, "series": s, "T": T, **row,
                             "t_1e-6": C.time_to_level(path.times, rel, 1e-6), "d_x": prob.Z.shape[0],
                             "d_y": prob.Y.shape[0], "nbar": prob.nbar})
                bar.advance(1)
    runs = pd.DataFrame(rows)
    verdicts = [dataclasses.replace(v, where=f"Fig. 8{'b' if panel == 'operators' else 'c'}: {v.where}")
                for (_, panel), vs in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0]))
                for v in [aggregate(vs, label="run")]]
    verdicts += claims_fig8(runs, spec)
    ops = runs[runs.panel == "operators"]
    sig = pd.DataFrame([{"operator": op, "label": C.LABELS[op], "sigma_small": float(d["sigma_small"].median()),
                         "paper": PAPER_SIGMA_CLIMATE[op], "ratio_to_paper": float(d["sigma_small"].median()) /
                         PAPER_SIGMA_CLIMATE[op]} for op, d in ops.groupby("operator", sort=False)])
    summary = {"graph": f"{g.num_nodes} counties, {g.num_edges} edges; d_x = {g.x.shape[1]}, d_y = {y.shape[1]}, "
               f"n̄ = {nbar}"}
    for r in sig.itertuples():
        summary[f"σ_small {r.label}"] = f"{r.sigma_small:.4g} (paper {r.paper:g})"
    for r in runs.itertuples():
        summary[f"{r.panel} {C.LABELS[r.operator]} a={r.a:g} seed {r.seed}"] = (
            f"relative loss {r.final_relative_loss:.3g} at T = {r.T_end:.3g}; rate {r.measured_rate:.3g} vs bound "
            f"{r.rate_bound:.3g}")
    return ExperimentResult(verdicts=verdicts, tables={"runs": runs, "sigma": sig}, summary=summary)


def _at_T(runs: pd.DataFrame, key: str = "operator") -> pd.Series:
    """Median relative loss at T; a flow stopped at the stop level counts as that level (it only gets smaller)."""
    return runs.groupby(key)["final_relative_loss"].median().clip(lower=1e-300)


def claims_fig8(runs: pd.DataFrame, spec: PatelFig8Spec) -> list[Verdict]:
    W = "§6.2, Fig. 8"
    out = []
    ops = runs[runs.panel == "operators"]
    if ops["operator"].nunique() >= 2:
        rl = _at_T(ops)
        sig = ops.groupby("operator")["sigma_small"].median()
        by_sigma = list(sig.sort_values(ascending=False).index)
        # speed order: smaller relative loss at T (flows that reached the stop level tie; order them by time)
        tend = ops.groupby("operator")["T_end"].median()
        by_speed = sorted(rl.index, key=lambda o: (rl[o] if rl[o] > spec.stop_level * 10 else 0.0, tend[o]))
        agree = by_sigma == by_speed
        out.append(C.claim("patel.fig8.speed_follows_sigma", f"{W}b (caption)", "the operators converge in the order "
                           "of their σ_small (largest fastest), by relative loss at T", agree,
                           float(sum(a == b for a, b in zip(by_sigma, by_speed)) - len(by_sigma)), "operator order",
                           order_sigma=by_sigma, order_speed=by_speed, relative_loss_at_T=rl.to_dict()))
        if "lap" in rl.index:
            out.append(C.claim("patel.fig8.lap_fastest", f"{W}b", "L converges fastest", by_speed[0] == "lap",
                               0.0 if by_speed[0] == "lap" else -1.0, f"fastest: {C.LABELS[by_speed[0]]}"))
        for op in ("nor-sl-adj", "nor-lap"):
            if op in rl.index:
                out.append(C.claim(f"patel.fig8.nearly_flat.{op}", f"{W}b", f"{C.LABELS[op]} stays nearly flat: relative "
                                   f"loss at T = {spec.horizon:g} above {spec.flat_level:g}", rl[op] > spec.flat_level,
                                   math.log10(rl[op]) - math.log10(spec.flat_level), f"T = {spec.horizon:g}",
                                   relative_loss_at_T=float(rl[op])))
    av = runs[runs.panel == "a"]
    if av["a"].nunique() >= 2:
        med = av.groupby("a").agg(rel=("final_relative_loss", "median"), t=("T_end", "median")).sort_index()
        key = [(r if r > spec.stop_level * 10 else 0.0, t) for r, t in zip(med["rel"], med["t"])]
        ok = all(a > b for a, b in zip(key, key[1:]))
        out.append(C.claim("patel.fig8c.larger_a_faster", f"{W}c", "a larger a (W_{H+1}(0) = aI) converges faster: "
                           "relative loss at T (or the time to the stop level) decreases with a", ok,
                           1.0 if ok else -1.0, f"a = {list(med.index)}", relative_loss=med["rel"].to_dict(),
                           T_end=med["t"].to_dict()))
    return out


def figures_fig8(store: RunStore) -> dict:
    from gnndyn.report.plots import log_bar_limits, new_figure

    df, runs = store.metrics(), store.table("runs")
    fig, axes = new_figure(3, width=3.8, height=3.0)
    seed0 = int(runs["seed"].min())
    ax = axes[0]
    sig = store.table("sigma")
    x = np.arange(len(sig))
    ax.bar(x - 0.2, sig["sigma_small"], 0.4, color=[C.COLORS[o] for o in sig["operator"]], label="measured")
    ax.bar(x + 0.2, sig["paper"], 0.4, color="lightgrey", label="paper (monthly features)")
    ax.set(yscale="log", xticks=x, title=r"$\sigma_{\mathrm{small}}((XS^H)_{*I})$")
    log_bar_limits(ax, np.r_[sig["sigma_small"], sig["paper"]])
    ax.set_ylim(top=ax.get_ylim()[1] * 6)  # room for the legend above the tallest bar
    ax.set_xticklabels(sig["label"], fontsize=6, rotation=20)
    ax.legend(fontsize=6)
    cmap = __import__("matplotlib").colormaps["viridis"]
    for ax, panel in zip(axes[1:], ("operators", "a")):
        d = runs[(runs.panel == panel) & (runs.seed == seed0)]
        for i, r in enumerate(d.itertuples()):
            color = C.COLORS[r.operator] if panel == "operators" else cmap(i / max(len(d) - 1, 1) * 0.9)
            m = df[(df.series == r.series) & (df.seed == seed0)]
            rl = m[m.quantity == "relative_loss"].sort_values("step")
            b = m[m.quantity == "bound"].sort_values("step")
            lab = C.LABELS[r.operator] if panel == "operators" else f"a = {r.a:g}"
            ax.plot(rl["time"], np.maximum(rl["value"], 1e-16), color=color, label=lab, lw=1.3)
            ax.plot(b["time"], b["value"], color=color, ls="--", lw=0.9)
        ax.set(yscale="log", xlabel="T", ylim=(1e-12, 2), title="relative loss" if panel == "operators" else
               f"relative loss, S = {C.LABELS[d['operator'].iloc[0]] if len(d) else ''}")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return {"fig8_climate": fig}


register(Experiment(
    name="patel-fig8",
    description="Patel et al. Fig. 8: the US-counties climate graph — σ_small per operator, flows per operator and per a",
    paper="Patel et al. 2025, Fig. 8, §6.2",
    spec_cls=PatelFig8Spec, run=C.with_torch_threads(run_fig8), figures=figures_fig8,
    smoke={"nodes": 250, "width": 32, "year": 2008, "a_values": [1.5, 3.0], "horizon": 1.0, "a_horizon": 1.0,
           "points": 40, "max_steps": 20000},
))
