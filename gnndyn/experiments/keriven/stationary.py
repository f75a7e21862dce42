r"""``stationary-output-layer`` — Keriven Thm 3 (with Thm 4 and Cor 1 as rates in the depth).

For each depth L in ``depths`` and each task, a GNN is initialized (orthogonal by default, so the
hidden layers have s_k = 1 and α = 0) and only its output layer W⁽ᴸ⁾ is trained to δ̄-stationarity:

* MSE — closed form: the minimum-norm least-squares solution of :math:`F^{(L)}W = Y` on the singular
  directions of :math:`F^{(L)}` with :math:`\sigma_i > r\,\sigma_1` (r = ``rcond``; r = 0 keeps every
  direction above machine precision: the exact least-squares solution, a stationary point of the output
  layer to machine precision). The cutoff is what gradient descent on the output layer reaches in finite
  time (direction i converges after ≈ n/(η σ_i²) steps); the exact solution is run beside it
  (``exact``) and shows where it leads: s_L → ∞, outside every theorem;
* cross-entropy — gradient descent (``output_optimizer``, ``output_lr``, ``output_steps``) on W⁽ᴸ⁾
  with F⁽ᴸ⁾ fixed (the other layers are frozen, so this is exactly training the output layer alone).

Then the gradients of all layers are measured (Def. 1): δ̄ = ‖∂𝓛/∂W⁽ᴸ⁾‖_F, the global δ (max over all
layers) and the inner δ (k < L). Tasks: ``regression-centered`` (MSE, centered balanced labels: Thm 3
case 2(a)), ``regression`` (MSE, one-hot labels, not centered: case 1 with D_F), ``classification``
(cross-entropy, balanced classes: case 2(b)).

Checks: per depth, the exact inequalities (Thm 2, App. A.9's chain, eq. (23)); over depths, the rates
of Thm 3 (global δ), Thm 4 (global δ against ‖1ᵀB⁽ᴸ⁾‖) and Cor 1 (ℰ(B^(βL))) — fitted exponent vs
predicted, with their ratio. The fit uses the depths from which the paper's α-condition holds at every
larger depth (Thm 3 is an "L large enough" statement); when fewer than three do, it uses the depths
≥ ``fit_from`` and the verdict says the condition failed.

Series ``{task}`` (truncated solution) and ``{task}-exact``; step = depth L. Quantities per series and
depth: ``loss``, ``delta_bar``, ``global_delta``, ``inner_delta``, ``mean_output_error``, ``D_F``,
``alpha``, ``s_out``, ``kept_directions``, ``smoothing_B_beta`` (layer index = round(100β)), and per layer
``grad_norm``, ``smoothing_B``, ``spectral_norm``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator, model_validator

from gnndyn.errors import GnndynError, resolve
from gnndyn.experiments.base import Experiment, ExperimentResult, RunContext, register
from gnndyn.experiments.keriven.common import (
    CSBM_DEFAULT,
    KerivenSpec,
    build_setup,
    exact_checks,
    make_model,
    measure,
    note_assumptions,
    single_threaded,
    targets,
    theory_context,
)
from gnndyn.experiments.keriven.stationary_rates import rate_verdicts
from gnndyn.models.losses import get_loss
from gnndyn.spec import GraphSpec, ModelSpec, OperatorSpec
from gnndyn.spec_checks import fit_depths
from gnndyn.store.metrics import select
from gnndyn.store.run import RunStore
from gnndyn.theory import keriven as thy
from gnndyn.theory.verdict import Verdict, aggregate
from gnndyn.training import make_optimizer
from gnndyn.training.optimizers import OPTIMIZERS

TASKS = {
    # name: (loss, labels, q, Thm 3 case)
    "regression-centered": ("mse", "centered", 2, 2),
    "regression": ("mse", "classes", 2, 1),
    "classification": ("cross-entropy", "classes", 1, 2),
}


class StationaryOutputLayerSpec(KerivenSpec):
    """Spec of ``stationary-output-layer`` (Keriven Thm 3)."""

    experiment: Literal["stationary-output-layer"] = "stationary-output-layer"
    graph: GraphSpec = CSBM_DEFAULT
    operator: OperatorSpec = OperatorSpec(name="gossip")
    model: ModelSpec = ModelSpec(depth=60, width=32, activation="tanh", init="orthogonal")
    depths: list[int] = Field(default_factory=lambda: [5, 10, 15, 20, 25, 30, 40, 50, 60, 80])
    tasks: list[str] = Field(default_factory=lambda: list(TASKS))
    rcond: float = Field(0.1, ge=0, lt=1, description="relative singular-value cutoff of the MSE output layer")
    exact: bool = Field(True, description="also solve the MSE output layer exactly (rcond = 0)")
    output_optimizer: str = "gd"
    output_lr: float = Field(1.0, gt=0)
    output_steps: int = Field(300, ge=0)
    betas: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75])
    fit_from: int = Field(20, ge=0, description="smallest depth fitted when the α-condition fails (≤ the second "
                                                "largest depth; with two depths both are always fitted)")
    seeds: int = Field(1, ge=1, description="number of seeds, from `seed` on")


    @field_validator("tasks")
    @classmethod
    def _tasks(cls, v: list[str]) -> list[str]:
        for t in v:
            resolve("task", t, TASKS)
        if not v:
            raise ValueError(f"give at least one task of {', '.join(TASKS)}")
        return v

    @field_validator("depths")
    @classmethod
    def _depths(cls, v: list[int]) -> list[int]:
        return sorted(set(fit_depths(v, minimum=1, what="each rate of Thm 3, Thm 4 and Cor 1")))

    @field_validator("betas")
    @classmethod
    def _betas(cls, v: list[float]) -> list[float]:
        if any(not 0 < b < 1 for b in v):
            raise ValueError(f"every β must lie in (0, 1); got {v}")
        return v

    @field_validator("output_optimizer")
    @classmethod
    def _opt(cls, v: str) -> str:
        resolve("optimizer", v, OPTIMIZERS)
        return v

    @model_validator(mode="after")
    def _fit_window(self) -> "StationaryOutputLayerSpec":
        """When the α-condition fails the rates are fitted over the depths ≥ fit_from: at least two of them. With
        two depths only, every fit is over both (a rate needs two points) and fit_from has no choice to make."""
        above = [L for L in self.depths if L >= self.fit_from]
        if len(self.depths) > 2 and len(above) < 2:
            raise ValueError(f"fit_from={self.fit_from} leaves {len(above)} of depths={self.depths} to fit (when the "
                             f"α-condition fails the rates are fitted over the depths ≥ fit_from, and a rate needs at "
                             f"least 2); give fit_from ≤ {self.depths[-2]}, or add larger depths")
        return self


# --------------------------------------------------------------------------------------------- output-layer solvers
def lstsq_output_layer(F: torch.Tensor, Y: torch.Tensor, rcond: float = 0.0) -> tuple[torch.Tensor, int]:
    r"""Minimum-norm least squares :math:`\arg\min_W \|FW - Y\|_F` restricted to the right singular
    directions of F with :math:`\sigma_i > r\sigma_1`; r = 0 means the exact solution (cutoff at machine
    precision × max(n, d), as LAPACK's ``gelsd``). Returns (W, number of kept directions)."""
    U, S, Vh = torch.linalg.svd(F, full_matrices=False)
    if S.numel() == 0 or float(S[0]) == 0.0:
        return torch.zeros(F.shape[1], Y.shape[1], dtype=F.dtype, device=F.device), 0
    cut = rcond if rcond > 0 else torch.finfo(F.dtype).eps * max(F.shape)
    keep = S > cut * S[0]
    W = Vh[keep].T @ ((U[:, keep].T @ Y) / S[keep].unsqueeze(1))
    return W, int(keep.sum())


def train_output_layer(F: torch.Tensor, W0: torch.Tensor, y: torch.Tensor, loss, optimizer, steps: int) -> torch.Tensor:
    """Train W in 𝓛(F W) (F fixed: the other layers frozen) for ``steps`` updates of ``optimizer``."""
    W = W0.detach().clone()
    state = optimizer.init([W])
    for _ in range(steps):
        Wr = W.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss(F @ Wr, y), [Wr])
        if not bool(torch.isfinite(g).all()):
            raise GnndynError("training the output layer diverged; lower output_lr.")
        (W,), state = optimizer.update([W], [g.detach()], state)
    return W


# --------------------------------------------------------------------------------------------- run
@single_threaded
def run_stationary(spec: StationaryOutputLayerSpec, ctx: RunContext) -> ExperimentResult:
    rec = ctx.recorder
    rows: list[dict] = []
    checks: dict[str, list[Verdict]] = {}
    notes_seen: set[str] = set()
    task_assumptions: dict[str, dict[str, bool]] = {}
    lams = []
    total = spec.seeds * len(spec.tasks) * len(spec.depths)
    with ctx.task("stationary output layer (Thm 3)", total) as bar:
        for seed in range(spec.seed, spec.seed + spec.seeds):
            st = build_setup(spec, spec.graph, spec.operator, seed)
            lams.append(st.lam)
            for task in spec.tasks:
                loss_name, labels, q, case = TASKS[resolve("task", task, {t: t for t in TASKS})]
                loss = get_loss(loss_name)
                y, out_dim = targets(st, loss, labels)
                assumptions, notes, const = theory_context(st, spec.model, loss, y)
                note_assumptions(assumptions, notes, notes_seen, task_assumptions.setdefault(task, dict(assumptions)))
                variants = [("", spec.rcond)] + ([("-exact", 0.0)] if spec.exact and loss_name == "mse" else [])
                for L in spec.depths:
                    for suffix, rcond in variants:
                        model = make_model(st, spec.model, out_dim, seed, depth=L, dtype=spec.torch_dtype)
                        with torch.no_grad():
                            model(st.op, st.x, keep_signals=True)
                            F = model.signals.F[-1].detach()
                            model.signals = None
                        if loss_name == "mse":
                            W, kept = lstsq_output_layer(F, y, rcond)
                        else:
                            W, kept = train_output_layer(F, model.weights[-1], y, loss,
                                                         make_optimizer(spec.output_optimizer, spec.output_lr),
                                                         spec.output_steps), -1
                        with torch.no_grad():
                            model.weights[-1].copy_(W)
                        vals = measure(model, st.op, st.x, y, loss)
                        alpha = thy.expansion_rate(vals["spectral_norm"], st.lam)
                        alpha_hidden = thy.expansion_rate(vals["spectral_norm"][:-1], st.lam)
                        name = task + suffix
                        beta_vals = [vals["smoothing_B"][min(L, max(0, round(b * L)))] for b in spec.betas]
                        rec.add_values(name, seed, L, {
                            "loss": vals["loss"], "delta_bar": vals["grad_norm"][-1], "global_delta": vals["global_delta"],
                            "inner_delta": vals["inner_delta"], "mean_output_error": vals["mean_output_error"],
                            "D_F": vals["D_F"], "alpha": alpha, "s_out": vals["spectral_norm"][-1],
                            "kept_directions": float(kept), "grad_norm": vals["grad_norm"],
                            "smoothing_B": vals["smoothing_B"], "spectral_norm": vals["spectral_norm"],
                        })
                        for b, v in zip(spec.betas, beta_vals):
                            rec.add(name, seed, L, "smoothing_B_beta", v, layer=round(100 * b))
                        rows.append({"task": task, "variant": "exact" if suffix else f"rcond={rcond:g}", "seed": seed,
                                     "depth": L, "loss": vals["loss"], "delta_bar": vals["grad_norm"][-1],
                                     "global_delta": vals["global_delta"], "inner_delta": vals["inner_delta"],
                                     "mean_output_error": vals["mean_output_error"], "D_F": vals["D_F"],
                                     "alpha": alpha, "alpha_hidden": alpha_hidden, "s_out": vals["spectral_norm"][-1], "kept": kept,
                                     "lambda": st.lam, "q": q, "case": case,
                                     **{f"E_B_beta_{b:g}": v for b, v in zip(spec.betas, beta_vals)}})
                        if suffix:
                            continue
                        tag = f"{task}, L = {L} (seed {seed})"
                        for v in exact_checks(vals, st.lam, const, assumptions, tag):
                            checks.setdefault(f"{task}:{v.name}", []).append(v)
                        v23 = thy.check_thm3_mean_error(vals["mean_output_error"], st.lam, vals["spectral_norm"], const,
                                                        delta_bar=vals["grad_norm"][-1], D_F=vals["D_F"],
                                                        assumptions=assumptions, series=tag)
                        if math.isfinite(v23.details["bound"]):  # D_F ≤ s^(0:L)λ^{L+1}ℰ(X⁽⁰⁾): eq. (23) says nothing
                            checks.setdefault(f"{task}:{v23.name}", []).append(v23)
                    bar.advance(1)
    table = pd.DataFrame(rows)
    verdicts = [aggregate(v, label="depth/seed") for v in checks.values()]
    rates, summary = rate_verdicts(spec, table, task_assumptions)
    summary = {"lambda (median)": float(np.median(lams)), **summary}
    for i, n in enumerate(sorted(notes_seen)):
        summary[f"assumption note {i + 1}"] = n
    return ExperimentResult(verdicts=rates + verdicts, tables={"depth_sweep": table}, summary=summary)


def figures_stationary(store: RunStore) -> dict:
    from gnndyn.report.plots import band, by_seed, finish_figure, log_scale, new_figure

    df = store.metrics()
    spec = store.spec()
    checks = {c["name"]: c for c in store.checks()}
    tasks = spec["tasks"]
    fig, axes = new_figure(3, len(tasks), width=5.0, height=3.6)
    axes = axes.reshape(len(tasks), 3)
    colors = {"global_delta": "#1f77b4", "inner_delta": "#2ca02c", "delta_bar": "#ff7f0e", "mean_output_error": "#9467bd"}
    labels = {"global_delta": "global δ (all layers)", "inner_delta": "δ over k < L", "delta_bar": "δ̄ (output layer)",
              "mean_output_error": "‖1ᵀB⁽ᴸ⁾‖"}
    for row, task in enumerate(tasks):
        ax = axes[row, 0]
        for q, c in colors.items():
            x, v = by_seed(select(df, q, series=task), index="step")
            if x.size:
                band(ax, x, v, label=labels[q], color=c)
        ch = checks.get(f"keriven.thm3.{task}")
        if ch:
            fit = ch["details"]["fit"]
            xs = np.asarray(ch["details"]["depths"], dtype=float)
            y0 = np.exp(fit["intercept"] + fit["slope"] * xs[0])
            ax.plot(xs, np.exp(fit["intercept"] + fit["slope"] * xs), "k--", lw=1,
                    label=f"fit of global δ: rate {fit['rate']:.3g}")
            r = ch["details"].get("xi_q_alpha_rate") or 0.0
            if r > 0:
                ax.plot(xs, y0 * np.exp(-r * (xs - xs[0])), "k:", lw=1.2, label=f"predicted rate (Thm 3) {r:.3g}")
            elif ch["details"].get("xi_rate_hidden_alpha"):
                r = ch["details"]["xi_rate_hidden_alpha"]
                ax.plot(xs, y0 * np.exp(-r * (xs - xs[0])), ":", color="0.4", lw=1.2,
                        label=f"rate with α of the hidden layers {r:.3g} (α-condition fails)")
        log_scale(ax)  # linear when nothing positive was recorded (gradients exactly 0 in a saturated run)
        ax.set(xlabel="depth L", ylabel="gradient norm", title=f"{task}: Thm 3")
        ax = axes[row, 1]
        d = select(df, "smoothing_B_beta", series=task)
        for b100, part in d.groupby("layer"):
            x, v = by_seed(part, index="step")
            band(ax, x, v, label=rf"$\mathcal{{E}}(B^{{(\beta L)}})$, β = {b100 / 100:g}")
        log_scale(ax)
        ax.set(xlabel="depth L", ylabel="ℰ", title=f"{task}: Cor 1")
        ax = axes[row, 2]
        for series, ls, lab in ((task, "-", f"rcond = {spec['rcond']:g}" if task != "classification" else "gradient descent"),
                                (f"{task}-exact", "--", "exact least squares")):
            for q, c in (("loss", "#d62728"), ("s_out", "#7f7f7f")):
                x, v = by_seed(select(df, q, series=series), index="step")
                if x.size:
                    band(ax, x, v, label=f"{'loss' if q == 'loss' else 's_L'} ({lab})", color=c, ls=ls)
        log_scale(ax)
        ax.set(xlabel="depth L", title=f"{task}: loss and output-layer norm")
    return finish_figure(fig, "thm3_stationary_output_layer", axes.ravel(),
                         title="A stationary output layer makes the whole GNN stationary (Keriven Thm 3, Thm 4, Cor 1)")


register(Experiment(
    name="stationary-output-layer",
    description="Keriven Thm 3: train only the output layer (closed-form least squares / GD), measure every layer's "
                "gradient; global δ vs depth, fitted exponent vs ξ_q(α)log(1/λ); Thm 4 and Cor 1 as rates",
    paper="Keriven, Backward oversmoothing, Thm 3, Thm 4, Cor 1",
    spec_cls=StationaryOutputLayerSpec,
    run=run_stationary,
    figures=figures_stationary,
    smoke={"graph.n": 200, "graph.p_in": 0.2, "graph.p_out": 0.04, "model.width": 8, "depths": [4, 8, 12, 16],
           "output_steps": 50, "fit_from": 4},
))
