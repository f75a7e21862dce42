r"""``patel-open`` — what Patel, Savostianov & Schaub (arXiv 2501.14440) leave open, measured.

1. **A bottleneck** (§2 excludes it, §8 lists it as a limitation): a hidden width below min(d_x, d_y) — by default
   d_y = 8 targets (the §6.1.2 rule per feature group, :mod:`.common`) and widths (32, 4). The infimum of the loss
   is then the rank-capped (Eckart–Young) value :math:`\tilde L_H` (:func:`gnndyn.algebra.least_squares_optimum`
   with rank cap min d_ℓ = 4), above the unconstrained least-squares value. The gradient flow is solved from
   Remark 3.3's start (W₁ = 0; W₂, W₃ rectangular identities, W₃ scaled by a) and from Xavier; verdict
   ``patel.open.bottleneck``: the relative loss :math:`(\mathcal L - \tilde L_H)/(\mathcal L(0) - \tilde L_H)` falls below
   ``reach_tol`` — marked **not applicable**: no theorem of the paper covers a bottleneck (Thm 3.1's verdict on the
   same path says the same: ``patel.thm3.1`` with "no bottleneck" false).
2. **The per-layer normalized flow** (Remark 6.1: "no exponential-rate guarantee") from Remark 3.3's start on the
   problem without bottleneck, by rk4 with fixed steps h: it reaches a floor where it chatters (unit speed per layer
   while the gradient vanishes). Measured: the floor (smallest relative loss over the second half of the run) per h
   and its power law in h (``patel.open.normalized_floor``: the floor shrinks with h, so the flow converges to
   :math:`\tilde L_H` as h → 0); the decay before the floor fitted both as an exponential and as
   :math:`\sqrt{L(t)} = \sqrt{L(0)} - ct` (finite time: :math:`dL/dt = -\sum_\ell\|\nabla_\ell\mathcal L\|` and
   :math:`\|\nabla\mathcal L\|^2 \ge \alpha L` give :math:`d\sqrt L/dt \le -\sqrt\alpha/2`); ``patel.open.normalized_rate``
   holds if the finite-time model fits better (smaller residual in log L).

Defaults: G(100, 0.1), S = normalized Laplacian, d_x = 20, H = 2 (seconds). ``--set n=200 d_x=50`` is the paper's
problem size (slower: the flow is stiffer).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gnndyn.experiments.base import Experiment, ExperimentResult, RunContext, register
from gnndyn.experiments.patel import checks
from gnndyn.experiments.patel.energy import labelled
from gnndyn.theory.patel.fast_paths import flow_path, normalized_flow_path
from gnndyn.experiments.patel.sections_common import (
    PatelTheorySpec,
    curve,
    finite,
    hidden_widths,
    positive,
    record_path,
    synthetic_problem,
    target_dim,
    with_torch_threads,
)
from gnndyn.models.patel_init import xavier, zero_first_layer
from gnndyn.store.run import RunStore
from gnndyn.theory import patel as thy
from gnndyn.theory.verdict import Verdict, aggregate


class PatelOpenSpec(PatelTheorySpec):
    """Spec of ``patel-open``."""

    experiment: Literal["patel-open"] = "patel-open"
    n: int = Field(100, ge=4)
    d_x: int = Field(20, ge=1)
    operator: str = "nor-lap"
    a: float = Field(2.0, gt=0)
    bottleneck_d_y: int = Field(8, ge=1)
    bottleneck_widths: list[int] = Field(default_factory=lambda: [32, 4])
    T: float = Field(400.0, gt=0)
    points: int = Field(50, ge=4)
    rtol: float = Field(1e-10, gt=0)
    reach_tol: float = Field(1e-8, gt=0, description="relative loss counted as reaching L̃_H")
    nf_steps: list[float] = Field(default_factory=lambda: [0.1, 0.03, 0.01, 0.003], min_length=2)
    nf_T: float = Field(4.0, gt=0)
    nf_points: int = Field(201, ge=5)
    max_wall_s: float = Field(300.0, gt=0)

    @model_validator(mode="after")
    def _bottleneck(self) -> "PatelOpenSpec":
        """The bottleneck problem can be built (widths ≥ 1, 1 ≤ bottleneck_d_y ≤ d_x); the rk4 steps are distinct,
        > 0 and at most nf_T/2 (a run records at least three times)."""
        hidden_widths(self, "bottleneck_widths")
        target_dim(self, "bottleneck_d_y", self.bottleneck_d_y)
        checks.values("nf_steps", self.nf_steps, "rk4 step h", "[0.1,0.03,0.01]", positive=True,
                      why_distinct="each h is one normalized flow and names its series (normalized-h<h>), and the "
                                   "floor's power law in h is fitted over them")
        for i, h in enumerate(self.nf_steps):
            if h > self.nf_T / 2:
                raise ValueError(f"nf_steps[{i}] = {h:g} exceeds nf_T/2 = {self.nf_T / 2:g}: the run records times "
                                 f"every whole multiple of h (step_grid) and reads the floor over the second half of "
                                 f"them, so it needs at least 3 (0, h, 2h ≤ nf_T); lower the step or raise nf_T")
        return self


def _fits(t: np.ndarray, ex: np.ndarray) -> dict:
    """Least-squares fits of the decay of ex(t) > 0: log ex = a − κt (exponential) and √ex = b − ct (finite
    time); residuals both measured in log ex (RMS; the finite-time prediction is cut at a tenth of the smallest
    value fitted, where it has reached zero)."""
    le = np.log(ex)
    A = np.vstack([np.ones_like(t), t]).T
    ce, *_ = np.linalg.lstsq(A, le, rcond=None)
    cs, *_ = np.linalg.lstsq(A, np.sqrt(ex), rcond=None)
    pred_s = np.maximum(cs[0] + cs[1] * t, np.sqrt(ex.min() / 10.0))  # past its zero the model says "below the data"
    return {"exp_rate": float(-ce[1]), "exp_rms": float(np.sqrt(np.mean((A @ ce - le) ** 2))),
            "sqrt_slope": float(-cs[1]), "sqrt_rms": float(np.sqrt(np.mean((2 * np.log(pred_s) - le) ** 2))),
            "sqrt_zero_time": float(cs[0] / -cs[1]) if cs[1] < 0 else math.inf, "points": int(t.size)}


def step_grid(T: float, points: int, h: float) -> np.ndarray:
    """Recording times 0, Δ, 2Δ, … ≤ T with Δ a whole multiple of the rk4 step h (≈ T/(points − 1), at least h),
    so that every run takes exactly steps of h."""
    k = max(1, round(T / (points - 1) / h))
    return np.arange(0.0, T + 0.5 * k * h, k * h)


@with_torch_threads
def run_open(spec: PatelOpenSpec, ctx: RunContext) -> ExperimentResult:
    rec = ctx.recorder
    by: dict[tuple[str, str], list[Verdict]] = {}
    brows, nrows = [], []

    def add(v: Verdict, case: str = "") -> None:
        by.setdefault((v.name, case), []).append(v)

    times = np.concatenate([[0.0], np.geomspace(spec.T * 1e-5, spec.T, spec.points - 1)])
    with ctx.task("bottleneck flows and normalized flows", spec.seeds * (2 + len(spec.nf_steps))) as bar:
        for seed in range(spec.seed, spec.seed + spec.seeds):
            prob = synthetic_problem(spec, seed, widths=spec.bottleneck_widths, d_y=spec.bottleneck_d_y).problem
            L_free = prob.optimum.projected / prob.m
            for name, W0 in (("zero-first", zero_first_layer(prob.widths.dims, spec.a)),
                             ("xavier", xavier(prob.widths.dims, seed=seed))):
                path = flow_path(prob, W0, times, rtol=spec.rtol, atol=spec.rtol * 1e-2, max_wall_s=spec.max_wall_s)
                record_path(rec, f"bottleneck-{name}", seed, prob, path, weights=False)
                rel = thy.relative_losses(prob, path)
                final = float(rel[-1])
                a = {"no bottleneck (d_ℓ ≥ min(d_x, d_y))": not prob.widths.bottleneck,
                     "non-increasing widths": prob.widths.non_increasing, "solver finished": path.error is None}
                fr = thy.fit_rate(prob, path)
                det = {"final_relative_loss": final, "L_tilde_rank_capped": prob.L_tilde, "L_tilde_unconstrained": L_free,
                       "rank_cap": prob.widths.rank_cap, "end_rank": int(np.linalg.matrix_rank(thy.end_to_end(path.end))),
                       "final_loss": float(path.losses[-1]), "measured_rate": fr["measured_rate"], "rate_bound": fr["rate_bound"],
                       "dims": list(prob.widths.dims), "error": path.error}
                add(Verdict("patel.open.bottleneck", f"{thy.PAPER}, §2/§8 (bottleneck excluded; open)",
                            "with a bottleneck the gradient flow still reaches the rank-capped optimum L̃_H "
                            "(relative loss ≤ reach_tol) — NOT covered by any theorem of the paper",
                            bool(abs(final) <= spec.reach_tol and path.error is None),
                            math.log10(spec.reach_tol) - math.log10(max(abs(final), 1e-300)), f"T = {path.times[-1]:.6g}",
                            a, all(a.values()), det), name)
                add(thy.check_thm31(prob, path), name)
                brows.append({"seed": seed, "start": name, **{k: v for k, v in det.items() if k != "dims"},
                              "loss_start": float(path.losses[0]), "below_unconstrained": bool(path.losses[-1] < L_free)})
                bar.advance(1)
            nprob = synthetic_problem(spec, seed).problem
            W0 = zero_first_layer(nprob.widths.dims, spec.a)
            for h in sorted(spec.nf_steps, reverse=True):
                nt = step_grid(spec.nf_T, spec.nf_points, h)
                nf = normalized_flow_path(nprob, W0, nt, step=h)
                record_path(rec, f"normalized-h{h:g}", seed, nprob, nf, weights=False)
                rel = np.abs(thy.relative_losses(nprob, nf))
                half = rel[rel.size // 2:]
                floor = float(half.min())
                low = np.flatnonzero(rel <= 10 * float(half.max()))
                keep = np.arange(low[0] if low.size else rel.size)  # the decay before the floor
                fit = _fits(nt[keep], rel[keep]) if keep.size >= 3 else {}
                nrows.append({"seed": seed, "h": h, "floor": floor, "floor_max": float(half.max()),
                              "first_time_below_10x_floor": float(nt[np.argmax(rel <= 10 * floor)]),
                              "rate_bound_gf": thy.rate(nprob, W0), **fit})
                bar.advance(1)
            nr = [r for r in nrows if r["seed"] == seed]
            hs, fl = np.array([r["h"] for r in nr]), np.array([r["floor"] for r in nr])
            q = float(np.polyfit(np.log(hs), np.log(np.maximum(fl, 1e-300)), 1)[0])
            order = np.argsort(hs)
            mono = bool(np.all(np.diff(fl[order]) > 0))
            add(Verdict("patel.open.normalized_floor", f"{thy.PAPER}, Remark 6.1 (normalized flow; no rate given)",
                        "the per-layer normalized flow (rk4, fixed step h) stalls at a floor of the relative loss that "
                        "shrinks with h (so it converges to L̃_H as h → 0)", mono, q, f"h = {hs.min():g}..{hs.max():g}",
                        {"Remark 3.3 start": True}, True, {"floor_by_h": dict(zip(map(float, hs), map(float, fl))),
                                                           "floor_exponent_in_h": q}))
            fits = [r for r in nr if "exp_rms" in r]
            better = bool(fits) and all(r["sqrt_rms"] < r["exp_rms"] for r in fits)
            add(Verdict("patel.open.normalized_rate", f"{thy.PAPER}, Remark 6.1 (no exponential-rate guarantee)",
                        "before its floor the normalized flow's excess decays in finite time, √L(t) ≈ √L(0) − ct, "
                        "better fitted than by an exponential", better,
                        float(min((r["exp_rms"] - r["sqrt_rms"] for r in fits), default=math.nan)),
                        "every h", {"Remark 3.3 start": True}, True,
                        {"fits": [{k: r.get(k) for k in ("h", "exp_rate", "exp_rms", "sqrt_slope", "sqrt_rms",
                                                         "sqrt_zero_time", "points")} for r in fits]}))
    verdicts = [labelled(aggregate(vs, label="seed"), case) for (_, case), vs in by.items()]
    bt, nt_ = pd.DataFrame(brows), pd.DataFrame(nrows)
    b0 = bt[bt.seed == spec.seed].set_index("start")
    n0 = nt_[nt_.seed == spec.seed]
    summary = {"bottleneck dims": str(list(synthetic_problem(spec, spec.seed, widths=spec.bottleneck_widths,
                                                            d_y=spec.bottleneck_d_y).problem.widths.dims)),
               "L̃_H rank-capped / unconstrained": f"{b0['L_tilde_rank_capped'].iloc[0]:.6g} / {b0['L_tilde_unconstrained'].iloc[0]:.6g}",
               **{f"bottleneck flow from {k}: final relative loss": float(b0.loc[k, "final_relative_loss"]) for k in b0.index},
               **{f"normalized flow h = {r.h:g}: floor": float(r.floor) for r in n0.itertuples()},
               "floor exponent in h": finite(by[("patel.open.normalized_floor", "")][0].margin),
               **{f"normalized flow h = {r.h:g}: exp rate / √-slope": f"{getattr(r, 'exp_rate', math.nan):.3g} / "
                  f"{getattr(r, 'sqrt_slope', math.nan):.3g}" for r in n0.itertuples()}}
    return ExperimentResult(verdicts=verdicts, tables={"bottleneck": bt, "normalized": nt_}, summary=summary)


def figures_open(store: RunStore) -> dict:
    import matplotlib.pyplot as plt

    from gnndyn.report.plots import finish_figure, new_figure

    df = store.metrics()
    bt, nt_ = store.table("bottleneck"), store.table("normalized")
    s0 = int(bt["seed"].min())
    fig, axes = new_figure(3, width=4.3, height=3.4)
    for name, c in (("zero-first", "#1f77b4"), ("xavier", "#d62728")):
        t, r = curve(df, f"bottleneck-{name}", "relative_loss", s0)
        axes[0].plot(t[1:], positive(np.abs(r[1:]), 1e-17), color=c, label=f"flow from {name}")
    b = bt[bt.seed == s0].iloc[0]
    axes[0].set(xscale="log", yscale="log", xlabel="t", ylabel=r"$(L - \tilde L_H)/(L(0) - \tilde L_H)$",
                title=f"bottleneck: $\\tilde L_H$ rank-capped {b.L_tilde_rank_capped:.4g} (free {b.L_tilde_unconstrained:.4g})")
    axes[0].title.set_fontsize(7)
    n0 = nt_[nt_.seed == s0].sort_values("h")
    cmap = plt.get_cmap("viridis")
    for i, r in enumerate(n0.itertuples()):
        t, v = curve(df, f"normalized-h{r.h:g}", "relative_loss", s0)
        axes[1].plot(t, positive(np.abs(v), 1e-17), color=cmap(i / max(1, len(n0) - 1)), label=f"rk4 step h = {r.h:g}")
    axes[1].set(yscale="log", xlabel="t", ylabel="relative loss", title="normalized flow (Remark 6.1)")
    axes[2].loglog(n0["h"], n0["floor"], "o-", label="floor (min over 2nd half)")
    if len(n0) >= 2:
        q = np.polyfit(np.log(n0["h"]), np.log(n0["floor"]), 1)
        axes[2].loglog(n0["h"], np.exp(np.polyval(q, np.log(n0["h"]))), "k--", lw=1, label=f"fit ∝ $h^{{{q[0]:.2f}}}$")
    axes[2].set(xlabel="rk4 step h", ylabel="relative loss floor", title="normalized flow: floor against the step")
    return finish_figure(fig, "open_bottleneck_normalized", axes, fontsize=6)


register(Experiment(
    name="patel-open",
    description="Patel et al., open questions: a bottleneck (flow to the rank-capped L̃_H, not covered), the normalized "
                "flow's rate and its floor against the rk4 step",
    paper="Patel et al. 2025, §2/§8 (bottleneck), Remark 6.1",
    spec_cls=PatelOpenSpec, run=run_open, figures=figures_open,
    smoke={"n": 40, "d_x": 8, "widths": [8, 8], "bottleneck_d_y": 4, "bottleneck_widths": [8, 2], "T": 2000.0,
           "points": 30, "nf_steps": [0.1, 0.03, 0.01], "nf_T": 3.0, "nf_points": 61},
))
