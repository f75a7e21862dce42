r"""``awasthi-fig1`` — Awasthi et al. Fig. 1 (§3, App. B, App. D): population gradient descent of the
one-round ReLU GNN on random d-regular graphs, checked against Lemmas 1, 2, 3, 4, 5, Thm 1 (as a rate)
and the §5 remarks on Fig. 1 (larger d converges faster; ReLU rates not much better than 1/ε²).
Quantities, defaults and the step-size rules: :mod:`gnndyn.experiments.awasthi`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator

from gnndyn.errors import DivergenceError
from gnndyn.experiments.awasthi.common import (
    AwasthiSpec, PopulationGDSpec, build_graphs, check_blowup, check_degrees, check_lrs, record_steps, seed_list, series_label,
)
from gnndyn.experiments.base import Experiment, ExperimentResult, RunContext, register, with_torch_threads
from gnndyn.models import teacher_student as ts
from gnndyn.models.population_relu import relu_hessian_2d, relu_hessian_plane
from gnndyn.store.run import RunStore
from gnndyn.theory import awasthi as thy
from gnndyn.theory.verdict import Verdict, aggregate

class ReluTrainSpec(PopulationGDSpec):
    """Population gradient descent of the ReLU GNN: steps, one step size per degree, and the rule."""

    steps: int = Field(6000, ge=1)
    lrs: list[float] = [2e-5, 1e-6, 1e-6, 1e-6, 1e-6]
    lr_rule: Literal["paper", "lemma1"] = "paper"


class AwasthiFig1Spec(AwasthiSpec):
    """Spec of ``awasthi-fig1`` (Awasthi et al. Fig. 1, App. D)."""

    experiment: Literal["awasthi-fig1"] = "awasthi-fig1"
    degrees: list[float] | None = [5, 10, 30, 80, 99]
    h: int = Field(10, ge=1)
    init_std: float = Field(1.0, gt=0)
    train: ReluTrainSpec = ReluTrainSpec()

    @model_validator(mode="after")
    def _check(self) -> "AwasthiFig1Spec":
        if self.r < 2:
            raise ValueError(f"r={self.r}: the ReLU analysis (§3.1, before eq. 13) writes each student row as "
                             f"w_j = α·w*_j + β·w⊥_j with w⊥_j a unit vector orthogonal to the teacher row w*_j, "
                             f"which needs an input dimension r ≥ 2 (for r = 1 every row is parallel to its teacher); "
                             f"give r ≥ 2 (the paper uses r = 10)")
        check_degrees(self.graph, self.degrees)
        if self.train.lr_rule == "paper":  # Lemma 1's rule sets each step itself and does not read lrs
            check_lrs(self.train.lrs, len(self.degrees or [None]), "degree")
        return self


class _CurvatureTracker:
    r"""Lemma 2's points, evaluated in chunks: ``add(t, γ, x, β)`` keeps the plane coordinates (B, h) of
    (1 − γ)(α_t, β_t) + γ(α_{t+1}, β_{t+1}) (x = α·‖w*‖); every ``chunk`` points (and at :meth:`flush`) one
    batched evaluation of the closed-form Hessian
    (:func:`~gnndyn.models.population_relu.relu_hessian_plane`) over all of them goes to
    :meth:`ReluRunStats.update_curvature` — one kernel pass per chunk instead of two per step."""

    def __init__(self, stats: thy.ReluRunStats, kernel, m: torch.Tensor, chunk: int = 16) -> None:
        self.stats, self.kernel, self.m, self.chunk = stats, kernel, m, chunk
        self.t: list[int] = []
        self.gamma: list[float] = []
        self.x: list[torch.Tensor] = []
        self.beta: list[torch.Tensor] = []

    def add(self, t: int, gamma: float, x: torch.Tensor, beta: torch.Tensor) -> None:
        self.t.append(t)
        self.gamma.append(gamma)
        self.x.append(x)
        self.beta.append(beta)
        if len(self.x) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if not self.x:
            return
        H = relu_hessian_plane(self.kernel, torch.stack(self.x, 1), torch.stack(self.beta, 1), self.m[:, None])
        self.stats.update_curvature(self.t, H.lam_max, H.lam_min, self.gamma)
        self.t, self.gamma, self.x, self.beta = [], [], [], []


def _run_fig1(spec: AwasthiFig1Spec, ctx: RunContext) -> ExperimentResult:
    dtype = spec.torch_dtype
    seeds = seed_list(spec)
    values = [int(v) if float(v).is_integer() else float(v) for v in spec.degrees] if spec.degrees is not None else None
    key, graphs = build_graphs(spec, values, seeds)
    configs = values if values is not None else [None]
    lrs = spec.train.lrs if len(spec.train.lrs) > 1 else spec.train.lrs * len(configs)
    items = [(ci, v, s) for ci, v in enumerate(configs) for s in seeds]  # batch order
    kernel = ts.DualKernel.stack([ts.DualKernel.from_graph(graphs[(v, s)], dtype=dtype) for _, v, s in items])
    W_star = torch.stack([ts.relu_teacher(spec.h, spec.r, s, dtype=dtype) for _, _, s in items])
    W0 = torch.stack([ts.relu_init(spec.h, spec.r, s, std=spec.init_std, dtype=dtype) for _, _, s in items])
    A1 = kernel.G1()
    if spec.train.lr_rule == "lemma1":
        eta = 1.0 / (math.sqrt(96.0) * math.pi * A1)  # geometric centre of Lemma 1's interval
    else:
        eta = torch.tensor([lrs[ci] for ci, _, _ in items], dtype=dtype)
    w_perp = ts.orthogonal_direction(W0, W_star)
    stats = thy.ReluRunStats(A1, kernel.n, spec.h, kernel.d_max)
    m_star = torch.linalg.vector_norm(W_star, dim=-1)
    u_star = W_star / m_star[..., None]
    curv = _CurvatureTracker(stats, kernel, m_star)
    steps = spec.train.steps
    hist = torch.empty(steps + 1, len(items), dtype=dtype)
    rec, rec_steps = ctx.recorder, record_steps(steps, spec.train.record_points)
    labels = [series_label(key, v) for _, v, _ in items]
    for b, (ci, v, s) in enumerate(items):
        c = {"A_prime": float(A1[b]), "eta": float(eta[b]), "eta_A_prime": float(eta[b] * A1[b]),
             "S2": kernel.sqrt_sum_sq[b], "two_hop_nnz": kernel.two_hop_nnz[b], "d_max": kernel.d_max[b], "n": kernel.n[b]}
        if kernel.regular[b]:
            c["A_regular"] = float(A1[b]) / (kernel.d_max[b] + 1)
        rec.add_values(labels[b], s, 0, c)
    W = W0.clone()
    with ctx.task("population GD (ReLU GNN)", steps + 1) as bar:
        for t in range(steps + 1):
            st = ts.relu_population_grad(W, W_star, kernel)
            alpha, beta, _ = ts.alpha_beta(W, W_star, w_perp)
            grad_sq = (st.grad ** 2).sum(-1)
            total = st.loss_rows.sum(-1)
            if not bool(torch.isfinite(total).all() and torch.isfinite(grad_sq).all()):
                b = int((~torch.isfinite(total)).nonzero()[0]) if not bool(torch.isfinite(total).all()) else 0
                raise DivergenceError(t, f"the population loss of {labels[b]} (seed {items[b][2]})", float(total[b]))
            if t == 0:
                total0 = total.clone()
            check_blowup(t, total, total0, lambda b: f"the population loss of {labels[b]} (seed {items[b][2]})")
            hist[t] = total
            stats.update(t, alpha, beta, st.geometry.ell, st.B_prime, st.C_prime, st.loss_rows, grad_sq)
            if t >= 1:  # Lemma 2: γ = 0 of segment t (γ = 1 of segment t − 1) and its midpoint γ = ½
                x = alpha * m_star
                curv.add(t, 0.0, x, beta) if t < steps else curv.add(t - 1, 1.0, x, beta)
                if t < steps:  # W_t − ½η∇L in the plane
                    half = 0.5 * eta[:, None]
                    curv.add(t, 0.5, x - half * (st.grad * u_star).sum(-1), beta - half * (st.grad * w_perp).sum(-1))
            if t in rec_steps:
                geo = st.geometry
                hess = relu_hessian_2d(kernel, geo.ell, geo.m, geo.rho, geo.delta, beta / geo.ell)
                pl = torch.where(st.loss_rows > 0, grad_sq / st.loss_rows.clamp_min(1e-300), torch.nan)
                for b, (ci, v, s) in enumerate(items):
                    rec.add_values(labels[b], s, t, {
                        "loss": float(total[b]), "grad_norm": float(grad_sq[b].sum().sqrt()),
                        "loss_row": st.loss_rows[b].tolist(), "alpha": alpha[b].tolist(), "beta": beta[b].tolist(),
                        "ell": st.geometry.ell[b].tolist(), "B_prime": st.B_prime[b].tolist(),
                        "C_prime": st.C_prime[b].tolist(), "pl_ratio": pl[b].tolist(),
                        "lambda_max": hess.lam_max[b].tolist(), "lambda_min": hess.lam_min[b].tolist(),
                        "eta_lambda_max": float(eta[b] * hess.lam_max[b].max())})
            if t < steps:
                W = W - eta[:, None, None] * st.grad
            bar.advance(1)
    curv.flush()

    L = hist.numpy()
    verdicts: list[Verdict] = []
    rows = []
    by_config: dict[int, dict[str, list[Verdict]]] = {}
    for b, (ci, v, s) in enumerate(items):
        where = f"{labels[b]}, seed {s}"
        n, d = kernel.n[b], kernel.d_max[b]
        e = float(eta[b])
        vs = {
            "lemma5": thy.check_lemma5(stats, b, S2=kernel.sqrt_sum_sq[b], where=where),
            "lemma1": thy.check_lemma1(stats, b, sigma=spec.init_std, r=spec.r, eta=e, where=where),
            "lemma2": thy.check_lemma2(stats, b, sigma=spec.init_std, r=spec.r, eta=e, where=where),
            "lemma3": thy.check_lemma3(stats, b, sigma=spec.init_std, h=spec.h, eta=e, where=where),
            "lemma4": thy.check_lemma4(stats, b, eta=e, where=where),
            "thm1": thy.check_thm1_rate(L[:, b], n=n, h=spec.h, d=d, sigma=spec.init_std, where=where),
        }
        fit = thy.fit_convergence(L[:, b])
        t10 = thy.iterations_to_reach(L[:, b], np.array([1e-10 * L[0, b]]))[0]
        expo = vs["thm1"].details.get("loglog_exponent_T_vs_inv_eps2", float("nan"))
        vs["rate_claim"] = Verdict(
            name="awasthi.fig1_rate_not_better", paper=f"{thy.PAPER}, §5 (Fig. 1 discussion)",
            statement="for ReLU GNNs one should not expect significantly better rates than the ~1/ε² of Thm 1 "
                      "(measured: log-log exponent p of T(ε) against 1/ε²; p = 1 is Thm 1's rate, p → 0 linear convergence)",
            holds=bool(np.isfinite(expo) and expo >= 0.5), margin=float(expo - 0.5) if np.isfinite(expo) else float("nan"),
            where=f"{where}: fitted κ = {fit.rate:.3g}/step over {fit.decades:.1f} decades (R² {fit.r2_linear:.4f}); "
                  f"d = o(√n) plausibly met: {'yes' if thy.degree_assumption(n, d)[0] else 'no'}",
            assumptions={}, applicable=True,
            details={**fit.as_dict(), "d = o(√n) plausibly met": bool(thy.degree_assumption(n, d)[0]),
                     "d_over_sqrt_n": d / math.sqrt(n)})
        for k2, vv in vs.items():
            by_config.setdefault(ci, {}).setdefault(k2, []).append(vv)
        d_ok, facts = thy.degree_assumption(n, d)
        rows.append({"series": labels[b], "seed": s, "degree": v if v is not None else d, "n": n, "d_max": d,
                     "lr": e, "A_prime": float(A1[b]), "eta_A_prime": e * float(A1[b]),
                     "lemma1_eta_lo_times_A": 1 / (16 * math.pi), "lemma1_eta_hi_times_A": 1 / (6 * math.pi),
                     "rate_per_iteration": fit.rate, "rate_per_unit_eta_A": fit.rate / (e * float(A1[b])),
                     "r2_linear": fit.r2_linear, "power_exponent": fit.power, "r2_power": fit.r2_power,
                     "rate_first_half": fit.rate_first, "rate_second_half": fit.rate_second,
                     "window_start": fit.start, "window_end": fit.end, "decades": fit.decades,
                     "steps_to_1e-10_L0": int(t10), "loss_0": float(L[0, b]), "loss_final": float(L[-1, b]),
                     "t_escape_max": vs["lemma3"].details["t_escape_max"],
                     "lemma4_min_log10_ratio": vs["lemma4"].margin,
                     "lemma2_max_lambda_over_bound": vs["lemma2"].details.get("max_lambda_over_bound", math.nan),
                     "max_lambda_over_A_prime": vs["lemma2"].details.get("max_lambda_over_A_prime", math.nan),
                     "min_lambda_min_over_A_prime": vs["lemma2"].details.get("min_lambda_min_over_A_prime", math.nan),
                     "max_eta_lambda_max": vs["lemma2"].details.get("max_eta_lambda_max", math.nan),
                     "d_over_sqrt_n": facts["d_over_sqrt_n"],
                     "d_o_sqrt_n_met": d_ok})
    for ci in sorted(by_config):
        for k2 in ("lemma5", "lemma1", "lemma2", "lemma3", "lemma4", "thm1", "rate_claim"):
            verdicts.append(aggregate(by_config[ci][k2]))
    table = pd.DataFrame(rows)
    summary: dict = {}
    if values is not None and len(values) > 1:
        med = table.groupby("degree")[["rate_per_iteration", "rate_per_unit_eta_A", "lr"]].median()
        verdicts.append(thy.check_larger_d_faster(med.index.to_numpy(dtype=float), med["rate_per_iteration"].to_numpy(),
                                                  lrs=med["lr"].to_numpy(), normalized=med["rate_per_unit_eta_A"].to_numpy(),
                                                  n=int(table["n"].median())))
        for dv, row in med.iterrows():
            summary[f"rate per iteration, d={dv:g} (median)"] = float(row["rate_per_iteration"])
    for ci in sorted(by_config):
        lab = labels[[b for b, it in enumerate(items) if it[0] == ci][0]]
        summary[f"{lab}: seeds where Lemma 1, 2, 3, 4, 5 hold"] = ", ".join(
            f"{sum(x.holds for x in by_config[ci][k])}/{len(by_config[ci][k])}"
            for k in ("lemma1", "lemma2", "lemma3", "lemma4", "lemma5"))
        l2 = [x.details for x in by_config[ci]["lemma2"] if "max_lambda_over_bound" in x.details]
        if l2:
            summary[f"{lab}: Lemma 2 max λ_max/bound"] = max(x["max_lambda_over_bound"] for x in l2)
            summary[f"{lab}: max ηλ_max (descent needs ≤ 1)"] = max(x["max_eta_lambda_max"] for x in l2)
    return ExperimentResult(verdicts=verdicts, tables={"rates": table}, summary=summary)


run_fig1 = with_torch_threads(_run_fig1)


def figures_fig1(store: RunStore) -> dict:
    from matplotlib.ticker import MaxNLocator

    from gnndyn.report.plots import band, by_seed, finish_figure, new_figure
    from gnndyn.store.metrics import select

    df = store.metrics()
    fig, (ax, ax2) = new_figure(2)
    series = sorted(df["series"].unique(), key=lambda s: (len(s), s))
    for s in series:
        x, v = by_seed(select(df, "loss", series=s), index="step")
        if not x.size:
            continue
        v = np.where(v > 0, v, np.nan)  # a loss of exactly 0 (W_t = W* to the last bit) has no logarithm
        keep = ~np.isnan(v).all(axis=0)
        x, v = x[keep], v[:, keep]
        band(ax, x, v, label=s)
        ea = select(df, "eta_A_prime", series=s)["value"].median()
        pos = x > 0
        band(ax2, x[pos] * ea, v[:, pos], label=f"{s} (ηA′ = {ea:.3g})")
    ax.set(yscale="log", xlabel="iteration t", ylabel=r"population loss $L(W_t)$", title="loss against iterations")
    ax2.set(yscale="log", xscale="log", xlabel="t · ηA′ (effective time)", ylabel="population loss",
            title="same curves against ηA′·t")
    ax.xaxis.set_major_locator(MaxNLocator(5))
    return finish_figure(fig, "fig1_relu_loss", (ax, ax2), fontsize=8, legend="labelled",
                         title="One-round ReLU GNN, population gradient descent (Awasthi et al. Fig. 1)")


register(Experiment(
    name="awasthi-fig1",
    description="Awasthi et al. Fig. 1: population GD of a one-round ReLU GNN, random d-regular graphs, Lemmas 1/2/3/4/5, Thm 1 rate",
    paper="Awasthi et al., Convergence of gradient descent for GNNs, Fig. 1, §3, App. B/D",
    spec_cls=AwasthiFig1Spec,
    run=run_fig1,
    figures=figures_fig1,
    smoke={"graph.n": 20, "degrees": [3, 19], "r": 4, "h": 3, "train.lr_rule": "lemma1", "train.steps": 400,
           "train.lrs": [1e-5], "train.record_points": 20},
))
