r"""``patel-energy`` — Patel, Savostianov & Schaub (arXiv 2501.14440), §4: balancedness and the energy reached.

From five starts — Remark 3.3's (W₁ = 0, W₂ = I, W₃ = a·I), Xavier, small random, a balanced one (Def. 4.1, built
by SVD with W₁ in col Z) and the balanced factorization of c·YZ^† that maximizes (4.4)'s margin — the gradient flow
(3.1) is solved at two solver tolerances and along each path are measured:

* the imbalances :math:`D_\ell = W_\ell W_\ell^\top - W_{\ell+1}^\top W_{\ell+1}`: conserved along the exact flow, so
  their drift is solver error and must tighten with the tolerance (verdict ``patel.sec4.balance`` at the tight
  tolerance and ``patel.sec4.balance.tightens``);
* the weight energy :math:`\sum_\ell\|W_\ell\|_F^2` at the end against Thm 4.2's minimum
  :math:`(H+1)\sum_i\sigma_i^{2/(H+1)}(YZ^\dagger)` and the product's distance to YZ^† (``patel.thm4.2``: a balanced
  limit attains the minimum, every other limit lies above it);
* Thm 4.4's conditions at every start and its conclusion along the path (``patel.thm4.4.c1`` … ``patel.thm4.4``);
* the authors' claim after Thm 4.4 that (4.4) is infeasible under balancedness, searched over balanced starts
  under both readings of m (``patel.thm4.4.infeasible``, m = n̄d_y, and the printed m = n̄d_x): a non-negative
  best margin is a feasible start, i.e. the claim fails.

Defaults: G(100, 0.1), S = normalized Laplacian, d_x = 20, d_y = 1, H = 2, d₁ = d₂ = 32, a = 2 (seconds per flow
with the NumPy Z-form solver of :mod:`gnndyn.theory.patel.fast_paths`). ``--set n=200 d_x=50 operator=adj`` reaches the paper's §6.1.2
sizes (a stiff flow: raise ``T`` and expect minutes). With n̄ ≥ d_x the matrix Z has full row rank and condition 2
is empty; ``--set n=20 d_x=40`` makes it rank-deficient (then Xavier's component outside col Z stays, and so does
its distance to YZ^†).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gnndyn.experiments.base import Experiment, ExperimentResult, RunContext, register
from gnndyn.experiments.patel import checks
from gnndyn.theory.patel.fast_paths import flow_path
from gnndyn.experiments.patel.sections_common import (
    PatelTheorySpec,
    curve,
    finite,
    positive,
    record_path,
    synthetic_problem,
    with_torch_threads,
)
from gnndyn.models.patel_init import balanced, small_random, xavier, zero_first_layer
from gnndyn.store.run import RunStore
from gnndyn.theory import patel as thy
from gnndyn.theory.patel.energy import imbalance_drift
from gnndyn.theory.verdict import Verdict, aggregate

STARTS = ("zero-first", "xavier", "small", "balanced", "balanced-44")


class PatelEnergySpec(PatelTheorySpec):
    """Spec of ``patel-energy``."""

    experiment: Literal["patel-energy"] = "patel-energy"
    n: int = Field(100, ge=4)
    d_x: int = Field(20, ge=1)
    operator: str = "nor-lap"
    a: float = Field(2.0, gt=0, description="Remark 3.3's W_{H+1}(0) = a·I")
    small_scale: float = Field(1e-2, gt=0)
    balanced_scale: float = Field(0.3, gt=0, description="common singular value of the balanced start")
    T: float = Field(200.0, gt=0)
    points: int = Field(60, ge=4)
    tolerances: list[float] = Field(default_factory=lambda: [1e-6, 1e-10], min_length=2)
    balance_tol: float = Field(1e-8, gt=0, description="drift allowed at the tightest tolerance")
    energy_tol: float = Field(1e-6, gt=0, description="relative tolerance of Thm 4.2's equality")
    random_starts: int = Field(64, ge=0, description="random balanced starts in the (4.4) search")
    max_wall_s: float = Field(300.0, gt=0, description="wall budget per flow")

    @model_validator(mode="after")
    def _tolerances(self) -> "PatelEnergySpec":
        """The solver tolerances are distinct and > 0 (the drift of D_ℓ is compared between the loosest and the
        tightest)."""
        checks.values("tolerances", self.tolerances, "solver tolerance", "[1e-6,1e-10]", positive=True,
                      why_distinct="the drift of D_ℓ is compared between the loosest and the tightest tolerance, and "
                                   "each names its series (<start>-rtol<tol>)")
        return self


def make_starts(prob: thy.Problem, spec: PatelEnergySpec, seed: int) -> dict[str, list[np.ndarray]]:
    d = prob.widths.dims
    return {"zero-first": zero_first_layer(d, spec.a), "xavier": xavier(d, seed=seed),
            "small": small_random(d, scale=spec.small_scale, seed=seed),
            "balanced": balanced(d, scale=spec.balanced_scale, column_space=prob.Z, seed=seed),
            "balanced-44": thy.feasible_44_start(prob, seed=seed)}


@with_torch_threads
def run_energy(spec: PatelEnergySpec, ctx: RunContext) -> ExperimentResult:
    rec = ctx.recorder
    times = np.concatenate([[0.0], np.geomspace(spec.T * 1e-4, spec.T, spec.points - 1)])
    tols = sorted(spec.tolerances, reverse=True)
    by: dict[tuple[str, str], list[Verdict]] = {}
    rows, srows = [], []

    def add(v: Verdict, start: str = "") -> None:
        by.setdefault((v.name, start), []).append(v)

    with ctx.task("flows from five starts", spec.seeds * len(STARTS) * len(tols)) as bar:
        for seed in range(spec.seed, spec.seed + spec.seeds):
            prob = synthetic_problem(spec, seed).problem
            Emin = thy.min_energy(prob)
            for printed in (False, True):
                v = thy.check_44_feasibility(prob, random_starts=spec.random_starts, seed=seed, printed_m=printed)
                add(v if not printed else Verdict(v.name + ".printed", v.paper, v.statement, v.holds, v.margin, v.where,
                                                  v.assumptions, v.applicable, v.details))
                d = v.details
                srows.append({"seed": seed, "m": "n̄d_x (printed)" if printed else "n̄d_y", "best_margin": d["best_margin"],
                              "best_family": d["best_family"], "margin_at_solution": d["closed_form_at_solution"],
                              "feasible_tried": d["feasible_tried"], "max_feasible_relative_loss": d["max_feasible_relative_loss"],
                              "zero_start_relative_loss": d["zero_start_relative_loss"],
                              "best_c": d["families"]["scaled solution c·YZ^†"]["c"], "claim_holds": v.holds})
            for name, W0 in make_starts(prob, spec, seed).items():
                conds = thy.thm44_conditions(prob, W0)
                drifts, paths = {}, {}
                for tol in tols:
                    path = flow_path(prob, W0, times, rtol=tol, atol=tol * 1e-2, max_wall_s=spec.max_wall_s)
                    paths[tol] = path
                    drifts[tol] = float(imbalance_drift(path).max())
                    record_path(rec, f"{name}-rtol{tol:g}", seed, prob, path)
                    bar.advance(1)
                tight, loose = paths[tols[-1]], paths[tols[0]]
                add(thy.check_balance_conserved(tight, tol=spec.balance_tol), name)
                ok = drifts[tols[-1]] <= max(drifts[tols[0]] / 10.0, 1e-13)
                add(Verdict("patel.sec4.balance.tightens", f"{thy.PAPER}, §4 (conservation of D_ℓ)",
                            "the drift of D_ℓ along the solved flow is solver error: it shrinks ≥ 10× from the loose to "
                            "the tight tolerance", bool(ok), math.log10(max(drifts[tols[0]], 1e-300)) -
                            math.log10(max(drifts[tols[-1]], 1e-300)) - 1.0, f"{name}, seed {seed}",
                            details={"drift": {f"{t:g}": drifts[t] for t in tols}, "start": name}), name)
                v42 = thy.check_thm42(prob, tight.end, tol=spec.energy_tol)
                add(v42, name)
                for v in thy.check_thm44(prob, W0, tight, reach_tol=spec.energy_tol):
                    add(v, name)
                E = thy.weight_energy(tight.end)
                rows.append({"seed": seed, "start": name, "energy_start": thy.weight_energy(W0), "energy_end": E,
                             "min_energy": Emin, "excess_energy": (E - Emin) / Emin,
                             "product_error": thy.product_error(prob, tight.end), "balance_start": conds["balance_residual"],
                             "balance_end": thy.balance_residual(tight.end),
                             **{f"drift_rtol{t:g}": drifts[t] for t in tols},
                             "final_relative_loss": float(thy.relative_losses(prob, tight)[-1]),
                             "solver_error": tight.error or loose.error or "",
                             "c1_balanced": conds["balance_residual"] <= 1e-10,
                             "c2_outside_col_Z": conds["outside_column_space"], "c3_rank_W1": conds["rank_W1"],
                             "k_low": conds["k_low"], "margin_44": conds["margin_44"],
                             "margin_44_printed_m": conds["margin_44_printed_m"]})
                rec.add("min-energy", seed, 0, "min_energy", Emin)
    verdicts = [labelled(aggregate(vs, label="seed"), start) for (_, start), vs in by.items()]
    tab, s44 = pd.DataFrame(rows), pd.DataFrame(srows)
    first = tab[tab.seed == spec.seed].set_index("start")
    summary = {"Thm 4.2 minimum energy (first seed)": float(first["min_energy"].iloc[0]),
               **{f"energy at convergence, {k}": f"{first.loc[k, 'energy_end']:.6g} (excess {first.loc[k, 'excess_energy']:.3g}, "
                  f"‖P − YZ^†‖/‖YZ^†‖ = {first.loc[k, 'product_error']:.2g})" for k in first.index},
               **{f"largest D_ℓ drift, rtol {t:g}": float(tab[f"drift_rtol{t:g}"].max()) for t in tols},
               "(4.4) best margin, m = n̄d_y": finite(s44[s44.m == "n̄d_y"]["best_margin"].min()),
               "(4.4) best margin, m = n̄d_x (printed)": finite(s44[s44.m != "n̄d_y"]["best_margin"].min()),
               "(4.4) infeasible (authors' claim)": bool(s44["claim_holds"].all())}
    return ExperimentResult(verdicts=verdicts, tables={"starts": tab, "search44": s44}, summary=summary)


def labelled(v: Verdict, start: str) -> Verdict:
    """The verdict with its start named in ``where`` and ``details['start']``."""
    if not start:
        return v
    return Verdict(v.name, v.paper, v.statement, v.holds, v.margin, f"start {start}: {v.where}", v.assumptions,
                   v.applicable, {**v.details, "start": start})


COLORS = {"zero-first": "#1f77b4", "xavier": "#d62728", "small": "#2ca02c", "balanced": "#9467bd", "balanced-44": "#ff7f0e"}


def figures_energy(store: RunStore) -> dict:
    from gnndyn.report.plots import finish_figure, new_figure

    df = store.metrics()
    spec = store.spec()
    tols = sorted(spec["tolerances"], reverse=True)
    fig, axes = new_figure(3, width=4.3, height=3.4)
    for name in STARTS:
        c = COLORS[name]
        for tol, ls in zip(tols, ("--", "-")):
            t, d = curve(df, f"{name}-rtol{tol:g}", "imbalance_drift")
            if t.size:
                axes[0].plot(t[1:], positive(d[1:]), ls=ls, color=c, label=f"{name}, rtol {tol:g}" if name == "zero-first" or ls == "-" else None)
        t, e = curve(df, f"{name}-rtol{tols[-1]:g}", "energy")
        axes[1].plot(t[1:], e[1:], color=c, label=name)
        t, r = curve(df, f"{name}-rtol{tols[-1]:g}", "relative_loss")
        axes[2].plot(t[1:], positive(np.abs(r[1:]), 1e-17), color=c, label=name)
    me = df[df.quantity == "min_energy"]["value"]
    if not me.empty:
        axes[1].axhline(float(me.iloc[0]), color="k", ls=":", label="Thm 4.2 minimum")
    axes[0].set(xscale="log", yscale="log", xlabel="t", ylabel=r"$\max_\ell\|D_\ell(t) - D_\ell(0)\|\,/\,\|W(0)\|^2$",
                title="imbalance drift (solid: tight rtol, dashed: loose)")
    axes[1].set(xscale="log", yscale="log", xlabel="t", ylabel=r"$\sum_\ell\|W_\ell\|_F^2$", title="weight energy (tight rtol)")
    axes[2].set(xscale="log", yscale="log", xlabel="t", ylabel="relative loss", title=r"$(L - \tilde L_H)/(L(0) - \tilde L_H)$")
    out = finish_figure(fig, "energy_paths", axes, fontsize=6, below=[axes[0]])
    s44 = store.table("search44")
    fig2, ax2 = new_figure(1, width=4.6, height=3.2)
    tab = store.table("starts")
    t0 = tab[tab.seed == tab.seed.min()]
    ax2[0].bar(range(len(t0)), t0["energy_end"], color=[COLORS.get(s, "grey") for s in t0["start"]])
    ax2[0].axhline(float(t0["min_energy"].iloc[0]), color="k", ls=":", label="Thm 4.2 minimum")
    ax2[0].set_xticks(range(len(t0)), t0["start"], rotation=20, fontsize=7)
    m = s44[s44.seed == s44.seed.min()]
    ax2[0].set(yscale="log", ylabel=r"$\sum_\ell\|W_\ell\|_F^2$ at T", title="energy at convergence; (4.4) best margin "
               + ", ".join(f"{r.m}: {r.best_margin:.2g}" for r in m.itertuples()))
    ax2[0].title.set_fontsize(7)
    out.update(finish_figure(fig2, "energy_bars", ax2[:1], fontsize=7))
    return out


register(Experiment(
    name="patel-energy",
    description="Patel et al. §4: balancedness along the flow, energy at convergence vs Thm 4.2, Thm 4.4 and (4.4)'s feasibility",
    paper="Patel et al. 2025, §4 (Def. 4.1, Thm 4.2, Thm 4.4)",
    spec_cls=PatelEnergySpec, run=run_energy, figures=figures_energy,
    smoke={"n": 40, "d_x": 8, "widths": [8, 8], "T": 30.0, "points": 12, "random_starts": 4},
))
