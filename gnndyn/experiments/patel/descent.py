r"""``patel-descent`` — Patel, Savostianov & Schaub (arXiv 2501.14440), §5: gradient descent from Remark 3.3's start.

From :math:`W_1 = 0, W_2 = I, W_3 = aI`:

* the start conditions: Thm 3.1's (3.8) and Thm 5.1's stronger :math:`16L(W(0))/r^2 < \beta\sigma^2_{small}/m`
  (``patel.thm5.1.hypothesis``);
* the sharpness :math:`\lambda_{\max}(\nabla^2\mathcal L(W(0)))` and 2/λ_max; M (a bound on every gradient and
  Hessian entry over :math:`B_{2r}(W(0))`) **estimated from below** from sampled points with exact Hessians, and
  the step condition :math:`\eta < \min\{r/(M\sqrt{p(H+1)}), 1/(Mp), 2m/(\beta\sigma^2_{small})\}` evaluated with it
  (``patel.thm5.1.step``, an estimate: the true bound is at most the estimated one);
* a sweep over decades of :math:`\eta = f\cdot 2/\lambda_{\max}`: Thm 5.1's contraction
  :math:`(1 - \beta\sigma^2_{small}\eta/(2m))^k` at every step (``patel.thm5.1``, one verdict per η), the measured
  largest η that keeps it against 2/λ_max and against the theorem's step bound (``patel.sec5.step_threshold``,
  ``patel.thm5.1.step_conservative``), and the balancedness drift :math:`\max_\ell\|D_\ell(k) - D_\ell(0)\|` as a
  function of η (``patel.sec4.gd_drift``: it grows with η; for converged runs
  :math:`\sum_k\eta^2\|\nabla\mathcal L\|^2 \approx \eta(\mathcal L(0) - \tilde L_H)`, so ≈ linear);
* Remark 5.2's iteration count for ε against the first measured k with :math:`\mathcal L - \tilde L_H < ε`
  (``patel.remark5.2``);
* the per-layer normalized flow (Remark 6.1, rk4 with a fixed step) from the same start, relative loss against t.

Defaults: G(100, 0.1), S = L (the combinatorial Laplacian, whose large σ_small makes Thm 5.1's start condition
hold at a = 2 here), d_x = 20, d_y = 1, H = 2, d₁ = d₂ = 32; ``--set n=200 d_x=50 operator=adj`` is the paper's
§6.1.2 set-up (where the start condition fails and the verdicts are marked not applicable).
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gnndyn.experiments.base import Experiment, ExperimentResult, RunContext, register
from gnndyn.experiments.patel import checks
from gnndyn.experiments.patel.energy import labelled
from gnndyn.theory.patel.fast_paths import descent_path, normalized_flow_path
from gnndyn.experiments.patel.sections_common import (
    PatelTheorySpec,
    curve,
    finite,
    positive,
    record_path,
    synthetic_problem,
    with_torch_threads,
)
from gnndyn.models.patel_init import zero_first_layer
from gnndyn.store.run import RunStore
from gnndyn.theory import patel as thy
from gnndyn.theory.patel.descent import DENSE_HESSIAN
from gnndyn.theory.verdict import Verdict, aggregate


class PatelDescentSpec(PatelTheorySpec):
    """Spec of ``patel-descent``."""

    experiment: Literal["patel-descent"] = "patel-descent"
    n: int = Field(100, ge=4)
    d_x: int = Field(20, ge=1)
    operator: str = "lap"
    a: float = Field(2.0, gt=0)
    factors: list[float] = Field(default_factory=lambda: [1e-4, 1e-3, 1e-2, 0.1, 0.3, 0.5, 0.9, 1.1, 1.5, 3.0, 10.0],
                                 min_length=2, description="η = factor · 2/λ_max(W(0))")
    steps: int = Field(3000, ge=1)
    remark52_factor: float = Field(0.5, gt=0)
    remark52_eps: float = Field(1e-8, gt=0, description="ε relative to L(W(0))")
    M_samples: int = Field(4, ge=0, description="points sampled on and inside B_2r(W(0)) for the lower estimate of M")
    M_columns: int = Field(32, ge=1, description="random Hessian columns per point when the network has more than "
                                                 f"{DENSE_HESSIAN} parameters (at most that number p); below, every "
                                                 "Hessian is dense and exact")
    nf_T: float = Field(1.0, gt=0, description="horizon of the normalized flow")
    nf_step: float = Field(1e-3, gt=0, description="its rk4 step: divides nf_T/(nf_points − 1) a whole number of times")
    nf_points: int = Field(101, ge=3, description="recorded times 0, nf_T/(nf_points − 1), …, nf_T")

    @model_validator(mode="after")
    def _sweep(self) -> "PatelDescentSpec":
        """The step-size factors are distinct and > 0; M_columns at most the parameter count p; the rk4 step of the
        normalized flow divides its recording interval (each interval is split into equal rk4 steps, so any other
        step would silently be shortened)."""
        checks.values("factors", self.factors, "step-size factor (η = factor · 2/λ_max)", "[0.1,0.5,1.5]",
                      positive=True, why_distinct="each factor is one gradient-descent run and names its series "
                                                  "(gd-x<factor>), so a repeat records the same series twice")
        dims = [self.d_x, *self.widths, self.d_y]
        p = sum(a * b for a, b in pairwise(dims))
        if self.M_columns > p:
            raise ValueError(f"M_columns = {self.M_columns} exceeds the p = {p} parameters of the network (p = Σ d_ℓ "
                             f"d_ℓ₋₁ over the dims d_x, widths, d_y = {dims}): there are only p Hessian columns; give "
                             f"at most M_columns={p}")
        interval = self.nf_T / (self.nf_points - 1)
        k = interval / self.nf_step
        if abs(k - round(k)) > 1e-9 * max(k, 1.0) or round(k) < 1:
            fit = interval / max(1, math.ceil(k - 1e-9))
            raise ValueError(f"nf_step = {self.nf_step:g} must divide the recording interval nf_T/(nf_points − 1) = "
                             f"{self.nf_T:g}/{self.nf_points - 1} = {interval:g} a whole number of times (the rk4 "
                             f"steps of each interval are equal, so this step would be shortened to {fit:g}); give "
                             f"nf_step={fit:g}, or change nf_T or nf_points")
        return self


@with_torch_threads
def run_descent(spec: PatelDescentSpec, ctx: RunContext) -> ExperimentResult:
    rec = ctx.recorder
    by: dict[tuple[str, str], list[Verdict]] = {}
    rows, consts = [], []

    def add(v: Verdict, case: str = "") -> None:
        by.setdefault((v.name, case), []).append(v)

    with ctx.task("gradient descent sweep", spec.seeds * (len(spec.factors) + 2)) as bar:
        for seed in range(spec.seed, spec.seed + spec.seeds):
            prob = synthetic_problem(spec, seed).problem
            W0 = zero_first_layer(prob.widths.dims, spec.a)
            add(thy.check_hypothesis(prob, W0))
            add(thy.check_gd_hypothesis(prob, W0))
            sh = thy.sharpness(prob, W0)
            two = sh["two_over_lambda"]
            M = thy.estimate_M(prob, W0, samples=spec.M_samples, columns=spec.M_columns, seed=seed)
            b = thy.step_bound(prob, W0, M["M_estimate"])
            L0 = thy.excess(prob, W0)
            sweep = []
            for f in sorted(spec.factors):
                eta = f * two
                path = descent_path(prob, W0, eta=eta, steps=spec.steps, snapshot_every=max(1, spec.steps // 30))
                record_path(rec, f"gd-x{f:g}", seed, prob, path)
                v = thy.check_thm51(prob, path, M=M)
                add(v, f"x{f:g}")
                fr = thy.fit_rate(prob, path)
                rel = thy.relative_losses(prob, path)
                row = {"seed": seed, "factor": f, "eta": eta, "thm51_holds": v.holds, "thm51_margin": v.margin,
                       "diverged": path.error is not None, "steps_run": int(path.times.size - 1),
                       "final_relative_loss": float(rel[-1]), "max_relative_loss": float(np.max(rel)),
                       "measured_rate": fr["measured_rate"], "rate_bound": fr["rate_bound"],
                       "contraction": thy.contraction(prob, W0, eta),
                       "drift": float(thy.imbalance_drift(path)[-1]) if path.error is None else math.nan,
                       "below_step_bound_estimate": eta < b["eta_max"]}
                rows.append(row)
                sweep.append(row)
                bar.advance(1)
            ok = [r["factor"] for r in sweep if r["thm51_holds"]]
            bad = [r["factor"] for r in sweep if not r["thm51_holds"]]
            largest_ok = max((f for f in ok if all(g in ok for g in spec.factors if g <= f)), default=0.0)
            smallest_bad = min(bad, default=math.inf)
            below = all(r["thm51_holds"] for r in sweep if r["factor"] < 1)
            above = all(not r["thm51_holds"] for r in sweep if r["factor"] >= 3)
            det = {"largest_factor_keeping_rate": largest_ok, "smallest_factor_breaking_it": smallest_bad,
                   "two_over_lambda": two, "lambda_max": sh["lambda_max"], "largest_eta_keeping_rate": largest_ok * two,
                   "step_bound_estimate": b["eta_max"], "step_bound_terms": b, "two_m_over_beta_sigma2": b["two_m_over_beta_sigma2"]}
            a = thy.printed_assumptions(prob, W0)
            add(Verdict("patel.sec5.step_threshold", f"{thy.PAPER}, Thm 5.1 (\"sufficiently small η\") against 2/λ_max",
                        "gradient descent keeps Thm 5.1's contraction for every swept η < 2/λ_max(∇²𝓛(W(0))) and loses it "
                        "for every η ≥ 3·2/λ_max", bool(below and above),
                        math.log10(largest_ok) if largest_ok > 0 else -math.inf, f"η = {largest_ok:g}·2/λ_max", a,
                        all(a.values()), det))
            add(Verdict("patel.thm5.1.step_conservative", f"{thy.PAPER}, Thm 5.1, proof (M estimated from below)",
                        "the proof's step bound min{r/(M√(p(H+1))), 1/(Mp), 2m/(βσ²_small)} (with M estimated from "
                        "below, so the true bound is smaller still) lies below the measured largest η keeping the rate",
                        bool(b["eta_max"] <= largest_ok * two), math.log10(max(largest_ok * two, 1e-300) / b["eta_max"]),
                        f"estimate {b['eta_max']:.3g} vs measured {largest_ok * two:.3g}", a, all(a.values()),
                        {**det, "ratio_measured_over_bound": largest_ok * two / b["eta_max"], "M": M}))
            add(thy.check_step_condition(prob, W0, min(spec.factors) * two, M=M), "smallest η")
            add(thy.check_step_condition(prob, W0, largest_ok * two if largest_ok > 0 else min(spec.factors) * two, M=M),
                "largest η keeping the rate")
            conv = sorted((r["eta"], r["drift"]) for r in sweep if not r["diverged"] and r["final_relative_loss"] < 1e-3
                          and r["factor"] < 1)
            slope = float(np.polyfit(np.log([e for e, _ in conv]), np.log(np.maximum([d for _, d in conv], 1e-300)), 1)[0]) \
                if len(conv) >= 2 else math.nan
            mono = len(conv) >= 2 and all(d2 > d1 for (_, d1), (_, d2) in pairwise(conv))
            add(Verdict("patel.sec4.gd_drift", f"{thy.PAPER}, §4 (balancedness under gradient descent)",
                        "under gradient descent D_ℓ drifts, more with larger η (runs with η < 2/λ_max that reached 10⁻³ of L(0))",
                        bool(mono), slope, f"{len(conv)} converged runs", {"rule is gradient descent": True}, True,
                        {"eta_drift": conv, "loglog_slope": slope}))
            eta52 = spec.remark52_factor * two
            eps = spec.remark52_eps * L0
            k_pred = thy.remark52_iterations(prob, W0, eta52, eps)
            steps52 = int(min(max(spec.steps, math.ceil(k_pred) + 10 if math.isfinite(k_pred) else spec.steps), 20 * spec.steps))
            p52 = descent_path(prob, W0, eta=eta52, steps=steps52, snapshot_every=max(1, steps52 // 30))
            record_path(rec, f"remark52-x{spec.remark52_factor:g}", seed, prob, p52, weights=False)
            add(thy.check_remark52(prob, p52, eps))
            bar.advance(1)
            nt = np.linspace(0.0, spec.nf_T, spec.nf_points)
            nf = normalized_flow_path(prob, W0, nt, step=spec.nf_step)
            record_path(rec, "normalized-flow", seed, prob, nf, weights=False)
            nfr = thy.fit_rate(prob, nf)
            bar.advance(1)
            consts.append({"seed": seed, "lambda_max": sh["lambda_max"], "two_over_lambda": two, "M_estimate": M["M_estimate"],
                           "M_points": M["points"], "step_bound_estimate": b["eta_max"], **{f"term_{k}": b[k] for k in
                           ("r_over_M_sqrt_p_H1", "one_over_Mp", "two_m_over_beta_sigma2")},
                           "rate_bound": thy.rate(prob, W0), "largest_factor_keeping_rate": largest_ok,
                           "smallest_factor_breaking_it": smallest_bad, "drift_slope": slope,
                           "remark52_k_predicted": k_pred, "remark52_k_measured": by[("patel.remark5.2", "")][-1].details["k_measured"],
                           "gd_hypothesis_ratio": thy.hypothesis(prob, W0, factor=16.0)["ratio"],
                           "nf_plateau": nfr["plateau"], "nf_final": nfr["final"], "nf_step": spec.nf_step, "L0": L0})
    verdicts = [labelled(aggregate(vs, label="seed"), case) for (_, case), vs in by.items()]
    for v in verdicts:
        if v.details.get("start"):
            v.details["case"] = v.details.pop("start")
    tab, ct = pd.DataFrame(rows), pd.DataFrame(consts)
    c = ct.iloc[0]
    summary = {"λ_max(W(0)), 2/λ_max": f"{c.lambda_max:.6g}, {c.two_over_lambda:.4g}",
               "M (lower estimate)": float(c.M_estimate), "step bound with estimated M": float(c.step_bound_estimate),
               "2m/(βσ²_small)": float(c.term_two_m_over_beta_sigma2),
               "largest η keeping Thm 5.1's rate (× 2/λ_max)": float(c.largest_factor_keeping_rate),
               "smallest η breaking it (× 2/λ_max)": finite(c.smallest_factor_breaking_it),
               "GD drift of D_ℓ: log-log slope in η": finite(c.drift_slope),
               "Remark 5.2: k predicted / measured": f"{c.remark52_k_predicted:.6g} / {c.remark52_k_measured:.6g}",
               "16L(0)/r² < βσ²/m: ratio rhs/lhs": float(c.gd_hypothesis_ratio),
               "normalized flow: smallest / final relative loss": f"{c.nf_plateau:.3g} / {c.nf_final:.3g}"}
    return ExperimentResult(verdicts=verdicts, tables={"sweep": tab, "constants": ct}, summary=summary)


def figures_descent(store: RunStore) -> dict:
    import matplotlib.pyplot as plt

    from gnndyn.report.plots import finish_figure, new_figure

    df = store.metrics()
    tab, ct = store.table("sweep"), store.table("constants")
    s0 = int(ct["seed"].min())
    tab, c = tab[tab.seed == s0], ct[ct.seed == s0].iloc[0]
    fig, axes = new_figure(3, width=4.3, height=3.4)
    cmap = plt.get_cmap("viridis")
    fs = sorted(tab["factor"])
    for i, f in enumerate(fs):
        t, r = curve(df, f"gd-x{f:g}", "relative_loss", s0)
        if t.size:
            k = np.rint(t / (f * c.two_over_lambda))
            axes[0].plot(k, positive(np.abs(r), 1e-17), color=cmap(i / max(1, len(fs) - 1)), label=f"η = {f:g}·2/λ")
    k = np.arange(0, int(tab["steps_run"].max()) + 1)
    for f in (0.5,):
        q = 1 - c.rate_bound * f * c.two_over_lambda / 2
        axes[0].plot(k, q ** k, "k--", lw=1, label=f"Thm 5.1 bound, η = {f:g}·2/λ")
    axes[0].set(yscale="log", ylim=(1e-17, 1e3), xlabel="step k", ylabel="relative loss", title="gradient descent, swept η")
    ok = tab[tab.thm51_holds]
    axes[1].scatter(tab["factor"], positive(tab["measured_rate"] / tab["rate_bound"], 1e-6), c=np.where(tab.thm51_holds, "g", "r"),
                    label=r"measured rate / $\beta\sigma^2_{\mathrm{small}}/m$ (green: Thm 5.1 holds)")
    axes[1].axvline(1.0, color="k", ls=":", label=r"$2/\lambda_{\max}(W(0))$")
    axes[1].axvline(c.step_bound_estimate / c.two_over_lambda, color="m", ls="--", label="step bound (M estimated)")
    axes[1].axvline(c.term_two_m_over_beta_sigma2 / c.two_over_lambda, color="b", ls="-.", label=r"$2m/(\beta\sigma^2_{\mathrm{small}})$")
    axes[1].set(xscale="log", yscale="log", xlabel=r"$\eta\,/\,(2/\lambda_{\max})$", ylabel="rate ratio", title="step-size sweep")
    axes[1].text(0.02, 0.02, f"largest η keeping the rate: {ok['factor'].max() if not ok.empty else 0:g}·2/λ",
                 transform=axes[1].transAxes, fontsize=6)
    t, r = curve(df, "normalized-flow", "relative_loss", s0)
    axes[2].plot(t, positive(np.abs(r), 1e-17), color="#ff7f0e", label=f"normalized flow (rk4, h = {c.nf_step:g})")
    best = ok["factor"].max() if not ok.empty else fs[0]
    t, r = curve(df, f"gd-x{best:g}", "relative_loss", s0)
    axes[2].plot(t, positive(np.abs(r), 1e-17), color="#1f77b4", label=f"GD, η = {best:g}·2/λ (t = kη)")
    axes[2].set(xscale="symlog", xlim=(0, None), yscale="log", xlabel="t", ylabel="relative loss",
                title="normalized flow beside gradient descent")
    # linear up to the first power of ten ≥ 10 steps of GD (a tick inside the linear range would crowd the 0)
    axes[2].set_xscale("symlog", linthresh=10.0 ** math.ceil(math.log10(max(best * c.two_over_lambda, 1e-12) * 10)))
    out = finish_figure(fig, "descent_sweep", axes, fontsize=5.5)
    fig2, ax2 = new_figure(1, width=4.4, height=3.2)
    d = tab[~tab.diverged]
    ax2[0].loglog(d["eta"], positive(d["drift"]), "o-", label="max_ℓ‖D_ℓ(end) − D_ℓ(0)‖/‖W(0)‖²")
    ax2[0].axvline(c.two_over_lambda, color="k", ls=":", label=r"$2/\lambda_{\max}$")
    ax2[0].set(xlabel="η", ylabel="drift", title=f"balancedness drift under GD (slope {c.drift_slope:.2f} below 2/λ)")
    out.update(finish_figure(fig2, "descent_drift", ax2, fontsize=7))
    return out


register(Experiment(
    name="patel-descent",
    description="Patel et al. §5: Thm 5.1's contraction, the step condition (M estimated), a step-size sweep against 2/λ_max, "
                "Remark 5.2, GD drift of balancedness, the normalized flow beside GD",
    paper="Patel et al. 2025, §5 (Thm 5.1, Remark 5.2), Remark 6.1",
    spec_cls=PatelDescentSpec, run=run_descent, figures=figures_descent,
    smoke={"n": 40, "d_x": 8, "widths": [8, 8], "a": 5.0, "factors": [0.001, 0.01, 0.1, 0.3, 0.6, 0.9, 1.5, 3.0], "steps": 600, "M_samples": 1,
           "M_columns": 8, "nf_T": 0.5, "nf_step": 5e-3, "nf_points": 11},
))
