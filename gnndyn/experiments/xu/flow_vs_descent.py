r"""``flow-vs-descent`` — how far gradient descent strays from the gradient flow that Xu et al.'s
theorems are about (the "overlooked gap" of the blog post restating the proof, paper 004).

On a linear GNN small enough for the flow to be solved accurately (dopri5, rtol 1e-10, float64;
its own error is estimated by a second solve at 100× looser tolerances), gradient descent is run
from the same initialization for step sizes η = c · 2/λ_max with factors c spanning more than two
orders of magnitude, where λ_max is the sharpness (largest Hessian eigenvalue, by power iteration on
Hessian-vector products) at initialization. At the times t = kη the experiment records

* ``gap_loss`` = |L_GD(k) − L_flow(kη)| and ``gap_param`` = ‖θ_GD(k) − θ_flow(kη)‖ / ‖θ_flow(kη)‖
  (series ``gd-c=<c>``),
* the Thm 1 bound (eq. (8)) with the λ_T measured along each path (λ every step), for the flow
  (where the theorem applies) and for each η (where it need not), and the step sizes at which it
  stops holding for gradient descent (``--set multiscale=true``: Thm 2 (i)–(iii) instead),
* the sharpness along the flow (``sharpness``, series ``flow``), since 2/λ_max moves as training goes.

Gradient descent is Euler's method for the flow, so for small η the gap should shrink like η
(first order); the check ``gd.first_order`` fits that exponent.
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator

from gnndyn.experiments.base import Experiment, ExperimentResult, RunContext, register
from gnndyn.experiments.xu.common import (
    Seeds, XuSpec, blog_probe, check_linear_run, lambda_probe, problem_from_graph, with_torch_threads,
)
from gnndyn.models.linear_gnn import XuGNN
from gnndyn.probes.base import Probe
from gnndyn.probes.schedules import at, every
from gnndyn.spec import GraphSpec, OperatorSpec
from gnndyn.store.metrics import Recorder
from gnndyn.store.run import RunStore
from gnndyn.theory import xu as thy
from gnndyn.theory.verdict import Verdict, aggregate
from gnndyn.training.flow import descend, gradient_flow, hessian_top_eigenvalue
from gnndyn.training.optimizers import make_optimizer

SMALL_CSBM = GraphSpec(name="csbm", n=150, classes=3, p_in=0.1, p_out=0.02, feature_dim=6, feature_sep=1.5)


class FlowVsDescentSpec(XuSpec):
    """Spec of ``flow-vs-descent``."""

    experiment: Literal["flow-vs-descent"] = "flow-vs-descent"
    graph: GraphSpec = SMALL_CSBM
    operator: OperatorSpec = OperatorSpec(name="gcn")
    nodes: str = Field("all", description="labelled nodes I: 'train', 'all', or a count k")
    depth: int = Field(2, ge=1)
    width: int | None = Field(None, description="hidden width; None = m_x (so that λ_T can be > 0)")
    multiscale: bool = False
    init: str = "uniform"
    init_scale: float = Field(1.0, gt=0)
    step_factors: list[float] = [0.01, 0.03, 0.1, 0.3, 0.6, 0.9, 1.2, 2.0]
    horizon: float = Field(20.0, gt=0, description="T in units of 2/λ_max at initialization")
    compare_points: int = Field(40, ge=2)
    flow_rtol: float = Field(1e-10, gt=0)
    flow_atol: float = Field(1e-12, gt=0)
    flow_max_steps: int = Field(400_000, ge=1)
    flow_max_wall_s: float = Field(300.0, gt=0)
    sharpness_points: int = Field(6, ge=1)
    seeds: Seeds = 1

    @field_validator("step_factors")
    @classmethod
    def _factors(cls, v: list[float]) -> list[float]:
        """Gradient descent runs at η = c · 2/λ_max for each factor c: at least one, each > 0."""
        if not v:
            raise ValueError("step_factors is empty (got []); give at least one factor c > 0 of η = c·2/λ_max, e.g. "
                             "step_factors=[0.1, 1.0]")
        for i, c in enumerate(v):
            if not c > 0:
                raise ValueError(f"step_factors[{i}] = {c:g}: a step size η = c·2/λ_max needs c > 0; got {v}")
        return v


def _key(t: float) -> float:
    """A canonical float for a time (13 significant digits), so GD times kη and flow grid times match."""
    return float(f"{float(t):.12e}")


def _flat(model: torch.nn.Module) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy().copy()


def _capture_probe(store: dict, schedule) -> Probe:
    def fn(ctx) -> dict:
        store[_key(ctx.extras["time"])] = _flat(ctx.model)
        return {}

    return Probe("capture", fn, schedule)


def _is_blog(v: Verdict) -> bool:
    return v.name.startswith("blog.") or v.name.startswith("xu.appA13")


def _compare_steps(n: int, points: int) -> list[int]:
    ks = np.unique(np.round(np.geomspace(1, max(n, 1), points)).astype(int))
    return sorted({0, *ks.tolist(), n})


@with_torch_threads
def run_flow_vs_descent(spec: FlowVsDescentSpec, ctx: RunContext) -> ExperimentResult:
    rec = ctx.recorder
    verdicts: list[Verdict] = []
    rows: list[dict] = []
    summary: dict = {}
    gd_thm1: list[Verdict] = []
    blog_v: dict[str, list[Verdict]] = {}
    fo_slopes = []
    for seed in range(spec.seed, spec.seed + spec.seeds):
        g = spec.graph.build(spec.data_root, seed=seed)
        prob = problem_from_graph(g, spec.operator.build(g), spec.nodes, seed=seed)
        obj = prob.objective("squared")
        H = spec.depth
        widths = [spec.width or prob.data.in_dim] * H
        model = XuGNN(prob.data.in_dim, widths, prob.num_classes, multiscale=spec.multiscale, init=spec.init,
                      init_scale=spec.init_scale, seed=seed, dtype=torch.float64)
        init_state = copy.deepcopy(model.state_dict())
        loss_fn = lambda m: obj(m(prob.data))  # noqa: E731
        opt = thy.global_optimum(prob.data.blocks(H), obj.target(), widths, multiscale=spec.multiscale)
        lam_max0, _ = hessian_top_eigenvalue(model, loss_fn, seed=seed)
        eta_c = 2.0 / lam_max0
        T = spec.horizon * eta_c
        summary[f"sharpness λ_max at init (seed {seed})"] = lam_max0
        summary[f"2/λ_max at init (seed {seed})"] = eta_c
        # ---------------------------------------------------------------- gradient descent for each η
        gd = {}
        for c in spec.step_factors:
            eta = c * eta_c
            n = max(1, int(math.ceil(T / eta - 1e-9)))
            ks = _compare_steps(n, spec.compare_points)
            snaps: dict[float, np.ndarray] = {}
            model.load_state_dict(init_state)
            scratch = Recorder()
            series = f"gd-c={c:g}"
            res = descend(model, loss_fn, n, make_optimizer("gd", eta), recorder=scratch, series=series, seed=seed,
                          probes=[lambda_probe(every(1)), _capture_probe(snaps, at(ks)), blog_probe(prob, obj, opt, at(ks))])
            df = scratch.frame()
            chk = check_linear_run(scratch, df, series, seed, prob, model, opt, "gd")
            v = chk.verdicts[0]  # Thm 1 (Def. 1) or Thm 2 (i) (Def. 2)
            gd_thm1.append(v)
            for b in chk.verdicts:
                if _is_blog(b):
                    blog_v.setdefault(b.name + "|gd", []).append(b)
            full = scratch.frame()
            keep = set(ks)
            d = full[full["step"].isin(keep)]
            for r in d.itertuples(index=False):
                rec.add(r.series, r.seed, r.step, r.quantity, r.value, layer=r.layer, time=r.time)
            gd[c] = {"eta": eta, "n": n, "res": res, "snaps": snaps, "verdict": v, "row": chk.rows[0]}
        # ---------------------------------------------------------------- the flow on the union of the GD times
        grid = sorted({t for c in gd for t in gd[c]["snaps"]} | {0.0})
        sharp_ts = set(np.asarray(grid)[np.unique(np.linspace(0, len(grid) - 1, spec.sharpness_points).astype(int))].tolist())
        sharp: dict[float, float] = {}

        def sharp_fn(ctx) -> dict:
            t = _key(ctx.extras["time"])
            if t in sharp_ts:
                lam, _ = hessian_top_eigenvalue(ctx.model, loss_fn, seed=seed)
                sharp[t] = lam
                return {"sharpness": lam, "edge_of_stability": 2.0 / lam}
            return {}

        flow_snaps: dict[float, np.ndarray] = {}
        model.load_state_dict(init_state)
        with ctx.task(f"gradient flow to T={T:.4g} ({len(grid)} grid points)", len(grid) - 1) as bar:
            fr = gradient_flow(model, loss_fn, grid, rtol=spec.flow_rtol, atol=spec.flow_atol,
                               max_steps=spec.flow_max_steps, max_wall_s=spec.flow_max_wall_s, recorder=rec,
                               series="flow", seed=seed,
                               probes=[lambda_probe(), _capture_probe(flow_snaps, every(1)), blog_probe(prob, obj, opt),
                                       Probe("sharpness", sharp_fn, every(1))], task=bar, raise_on_failure=False)
        verdicts.append(Verdict("gnndyn.flow_solved", "gnndyn (torchdiffeq dopri5, float64)",
                                "the gradient flow is solved over the whole time grid within the step budget",
                                fr.error is None, float("nan"), f"t reached {fr.times[-1]:.4g} of T={T:.4g}",
                                details={"steps": fr.steps, "rejected": fr.rejected, "nfe": fr.nfe, "wall_s": fr.wall_s,
                                         "error": None if fr.error is None else str(fr.error)}))
        summary[f"flow solver (seed {seed})"] = f"{fr.steps} accepted / {fr.rejected} rejected steps, {fr.nfe} gradient evaluations"
        # accuracy of the flow itself: a second solve at 100× looser tolerances
        model.load_state_dict(init_state)
        loose: dict[float, np.ndarray] = {}
        gradient_flow(model, loss_fn, grid, rtol=spec.flow_rtol * 100, atol=spec.flow_atol * 100,
                      max_steps=spec.flow_max_steps, max_wall_s=spec.flow_max_wall_s, series="flow-loose",
                      probes=[_capture_probe(loose, every(1))], raise_on_failure=False)
        common = [t for t in flow_snaps if t in loose]
        flow_err = max((float(np.linalg.norm(flow_snaps[t] - loose[t]) / max(np.linalg.norm(flow_snaps[t]), 1e-300))
                        for t in common), default=math.nan)
        summary[f"flow self-consistency (rtol vs 100·rtol), max relative parameter difference (seed {seed})"] = flow_err
        df = rec.frame()
        chk = check_linear_run(rec, df, "flow", seed, prob, model, opt, "flow")
        for b in chk.verdicts:
            if _is_blog(b):
                blog_v.setdefault(b.name + "|flow", []).append(b)
            else:
                verdicts.append(b)
        fl = df[(df.series == "flow") & (df.quantity == "loss") & (df.seed == seed)]
        flow_loss = {_key(t): v for t, v in zip(fl["time"].to_numpy(), fl["value"].to_numpy())}
        # ---------------------------------------------------------------- gaps
        for c, info in gd.items():
            gl, gp = [], []
            res = info["res"]
            gd_loss = {_key(t): v for t, v in zip(res.times, res.losses)}
            for t, th in sorted(info["snaps"].items()):
                tr = t
                if tr not in flow_snaps or tr not in gd_loss or tr not in flow_loss:
                    continue
                k = int(round(t / info["eta"]))
                dl = abs(gd_loss[tr] - flow_loss[tr])
                dp = float(np.linalg.norm(th - flow_snaps[tr]) / max(np.linalg.norm(flow_snaps[tr]), 1e-300))
                rec.add(f"gd-c={c:g}", seed, k, "gap_loss", dl, time=t)
                rec.add(f"gd-c={c:g}", seed, k, "gap_param", dp, time=t)
                gl.append(dl)
                gp.append(dp)
            v = info["verdict"]
            rows.append({"seed": seed, "factor": c, "eta": info["eta"], "eta_times_lambda_max_over_2": c,
                         "steps": info["n"], "diverged_at": res.diverged.step if res.diverged is not None else None,
                         "thm1_holds": v.holds, "thm1_first_violation_time": v.details["first_violation_time"],
                         "thm1_violations": v.details["violations"], "thm1_margin": v.margin,
                         "max_gap_loss": max(gl, default=math.nan), "max_gap_param": max(gp, default=math.nan),
                         "L_end_gd": float(res.losses[-1]) if res.losses.size else math.nan,
                         "L_end_flow": float(fr.losses[-1]) if fr.losses.size else math.nan,
                         "lambda_max_init": lam_max0})
        tab = pd.DataFrame([r for r in rows if r["seed"] == seed]).sort_values("factor")
        small = tab[(tab["diverged_at"].isna()) & (tab["factor"] <= 0.3)].head(3)
        if len(small) >= 2 and (small["max_gap_param"] > 0).all():
            slope = float(np.polyfit(np.log(small["eta"]), np.log(small["max_gap_param"]), 1)[0])
            fo_slopes.append(slope)
        stopped = tab[tab["diverged_at"].notna()]
        # where gradient descent diverges is what this experiment measures: the runs are named here and in the
        # table (diverged_at) rather than turning the run's status to "diverged"
        summary[f"gradient descent stopped as diverged (seed {seed})"] = ", ".join(
            f"η·λ_max/2 = {r.factor:g} at step {int(r.diverged_at)}" for r in stopped.itertuples()) or "none"
        fails = tab[~tab["thm1_holds"]]
        thm = "Thm 2 (i)" if spec.multiscale else "Thm 1"
        summary[f"smallest η·λ_max/2 at which {thm}'s bound fails for GD (seed {seed})"] = \
            float(fails["factor"].min()) if len(fails) else "none (holds for every η tried)"
        summary[f"largest η·λ_max/2 at which it holds (seed {seed})"] = \
            float(tab[tab["thm1_holds"]]["factor"].max()) if tab["thm1_holds"].any() else "none"
    verdicts.append(aggregate(gd_thm1, label="step size"))
    for key in sorted(blog_v):
        verdicts.append(aggregate(blog_v[key], label="run"))
    if fo_slopes:
        s = float(np.median(fo_slopes))
        verdicts.append(Verdict(
            "gd.first_order", "Euler's method (gradient descent) is a first-order discretization of the flow",
            "max_t ‖θ_GD(t/η) − θ_flow(t)‖/‖θ_flow(t)‖ ∝ η for small η (fitted exponent within [0.8, 1.2])",
            0.8 <= s <= 1.2, float(0.2 - abs(s - 1.0)), "the smallest step factors (c ≤ 0.3)",
            details={"exponents": fo_slopes}))
        summary["fitted exponent of the GD–flow gap in η"] = s
    return ExperimentResult(verdicts=verdicts, tables={"step_sizes": pd.DataFrame(rows)}, summary=summary)


def figures_flow_vs_descent(store: RunStore) -> dict:
    from gnndyn.report.plots import finish_figure, new_figure

    df = store.metrics()
    tab = store.table("step_sizes")
    seed = int(df["seed"].min())
    factor = store.spec().get("divergence_factor")
    diverged = {f"gd-c={c:g}" for c in tab[(tab.seed == seed) & tab["diverged_at"].notna()]["factor"]}
    if factor is None:
        stop = "a non-finite loss"
    else:
        e = math.log10(factor)
        stop = "loss > " + (rf"$10^{{{round(e)}}}$" if abs(e - round(e)) < 1e-12 else f"{factor:g}") + "·L₀ or non-finite"

    def mark_stop(ax, s: str, d, line) -> None:  # a diverged run's last recorded point, not where it would end
        if s in diverged and len(d):
            ax.plot(d["time"].iloc[-1], d["value"].iloc[-1], "x", color=line.get_color(), ms=6, mew=1.5)

    fig, axes = new_figure(3, width=4.8)
    ax = axes[0]
    fl = df[(df.series == "flow") & (df.quantity == "loss") & (df.seed == seed)].sort_values("time")
    ax.plot(fl["time"], fl["value"], "k-", lw=2.5, label="gradient flow")
    for s in sorted(df[df.series.str.startswith("gd-c=")]["series"].unique(), key=lambda x: float(x.split("=")[1])):
        d = df[(df.series == s) & (df.quantity == "loss") & (df.seed == seed)].sort_values("time")
        mark_stop(ax, s, d, ax.plot(d["time"], d["value"], lw=1, label=s.replace("gd-c=", "GD, ηλ/2="))[0])
    if len(fl):  # diverging runs would flatten everything else: keep 3 decades above the flow's start
        ax.set_ylim(float(fl["value"].min()) / 3, float(fl["value"].max()) * 1e3)
    ax.set(yscale="log", xlabel="t (= kη for GD)", ylabel="L", title="loss along flow and descent")
    ax = axes[1]
    lows = []
    for s in sorted(df[df.quantity == "gap_param"]["series"].unique(), key=lambda x: float(x.split("=")[1])):
        d = df[(df.series == s) & (df.quantity == "gap_param") & (df.seed == seed)].sort_values("time")
        d = d[d["value"] > 0]
        mark_stop(ax, s, d, ax.plot(d["time"], d["value"], label=s.replace("gd-c=", "ηλ/2="))[0])
        lows += d["value"].tolist()
    ax.set(yscale="log", xlabel="t", ylabel=r"$\|\theta_{\mathrm{GD}} - \theta_{\mathrm{flow}}\|\,/\,\|\theta_{\mathrm{flow}}\|$", title="GD–flow gap at t = kη (clipped at 1e2)")
    if lows:
        ax.set_ylim(min(lows) / 2, 1e2)
    ax = axes[2]
    t = tab[tab.seed == seed].sort_values("factor")
    loss_gap = t["max_gap_loss"] / max(float(t["L_end_flow"].iloc[0]), 1e-300)
    (p1,) = ax.plot(t["eta"], t["max_gap_param"], "o-", label="max parameter gap")
    (p2,) = ax.plot(t["eta"], loss_gap, "s-", label=r"max loss gap / $L_{\mathrm{flow}}(T)$")
    div = t["diverged_at"].notna().to_numpy()
    if div.any():  # a diverged run's gaps are maxima up to its stop only: hollow markers over a shaded range
        for y, p in ((t["max_gap_param"], p1), (loss_gap, p2)):
            ax.plot(t["eta"][div], y[div], p.get_marker(), color="white", mec=p.get_color(), ms=p.get_markersize())
        ax.axvspan(float(t["eta"][div].min()) / 1.15, float(t["eta"].max()) * 1.15, color="tab:red", alpha=0.08, lw=0,
                   label=f"GD diverged ({stop}): gaps up to the stop")
    eta_c = float((t["eta"] / t["factor"]).iloc[0])
    ax.axvline(eta_c, color="k", ls="--", label=r"$2/\lambda_{\max}$ at init")
    bad = t[~t["thm1_holds"]]
    if len(bad):
        ax.axvline(float(bad["eta"].min()), color="r", ls=":", label="Thm 1 bound first fails")
    sh = df[(df.series == "flow") & (df.quantity == "sharpness") & (df.seed == seed)]
    if len(sh):
        ax.axvline(2.0 / float(sh["value"].max()), color="gray", ls="-.", label=r"$2/\lambda_{\max}$, largest along the flow")
    ax.set(xscale="log", yscale="log", xlabel="step size η", title="gap vs step size (clipped at 1e3)")
    vals = np.concatenate([t["max_gap_param"].to_numpy(), (t["max_gap_loss"] / max(float(t["L_end_flow"].iloc[0]), 1e-300)).to_numpy()])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    if vals.size:
        ax.set_ylim(vals.min() / 2, 1e3)
    return finish_figure(fig, "flow_vs_descent", axes, fontsize=6, grid=False)


register(Experiment(
    name="flow-vs-descent",
    description="Gradient descent vs the gradient flow of a linear GNN: gap at t = kη, 2/λ_max, where Thm 1's bound fails for GD",
    paper="Xu et al. 2021, Thm 1; blog (paper 004), 'the overlooked gap'",
    spec_cls=FlowVsDescentSpec, run=run_flow_vs_descent, figures=figures_flow_vs_descent,
    smoke={"graph.n": 60, "step_factors": [0.05, 0.2, 1.0, 2.5], "horizon": 4.0, "compare_points": 8,
           "sharpness_points": 2, "flow_rtol": 1e-8, "flow_atol": 1e-10},
))
