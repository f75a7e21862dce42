"""``backward-oversmoothing`` — Keriven Fig. 1: deep GNNs get stuck at high-loss near-stationary points.

CSBM node classification. For each optimizer (gradient descent and Adam by default) four models are
trained full-batch from the same initialization scheme: a deep GNN and a deep MLP (depth
``model.depth``, 40 by default) and a shallow GNN and MLP (``shallow_depth``, 5). The per-layer
gradient norms ‖∂𝓛/∂W⁽ᵏ⁾‖_F (Def. 1, eq. (10)) are probed every ``probe_every`` epochs and the loss
every epoch. The paper's claims become measured numbers:

* the deep GNN is stuck: for every layer k, the drop factor max_{t ≤ t₀} G_k(t) / max_{t ≥ T/2} G_k(t)
  (t₀ = ``early_steps``, T = ``steps``) is at least ``drop_factor``, while the final loss stays above
  ``high_loss_fraction`` × the uninformative loss (that of the best constant output: the label
  entropy for cross-entropy, ½ mean‖y − ȳ‖² for MSE);
* the deep MLP is not: its gradients do not all drop by that factor, or its loss falls below that level;
* the shallow GNN trains: its final loss is below ``trained_loss_fraction`` × the uninformative loss.

At the end of every GNN run the exact inequalities (Thm 2, the App. A.9 chain) are checked at the
trained point, and α (s = λ^{−α}) and ξ_q(α) are reported: Fig. 1's phenomenon happens with glorot
weights whose α lies far outside the range where Thm 3 and Thm 4 are proved.

Series are named ``{gnn|mlp}-L{depth}-{optimizer}``. Quantities: ``loss`` (every step), ``grad_norm``
(per layer), ``global_delta`` (max over layers), ``inner_delta`` (max over k < L), ``spectral_norm``
(per layer, log-spaced steps), ``accuracy`` (classification, log-spaced steps).
"""

from __future__ import annotations

import contextlib
import math
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator

from gnndyn.errors import resolve
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
from gnndyn.models.losses import LOSSES, get_loss
from gnndyn.probes.base import Probe, ProbeContext
from gnndyn.probes.schedules import every, log_spaced
from gnndyn.spec import GraphSpec, ModelSpec, OperatorSpec
from gnndyn.spec_checks import check_schedule
from gnndyn.store.metrics import select
from gnndyn.store.run import RunStore
from gnndyn.theory import keriven as thy
from gnndyn.theory.verdict import Verdict, aggregate
from gnndyn.training import make_optimizer, train
from gnndyn.training.optimizers import OPTIMIZERS


class BackwardOversmoothingSpec(KerivenSpec):
    """Spec of ``backward-oversmoothing`` (Keriven Fig. 1)."""

    experiment: Literal["backward-oversmoothing"] = "backward-oversmoothing"
    graph: GraphSpec = CSBM_DEFAULT
    operator: OperatorSpec = OperatorSpec(name="gossip")
    model: ModelSpec = ModelSpec(depth=40, width=32, activation="tanh", init="glorot")
    shallow_depth: int = Field(5, ge=0, description="depth of the shallow GNN and MLP")
    loss: str = "cross-entropy"
    labels: Literal["classes", "centered"] = "classes"
    steps: int = Field(200, ge=1, description="epochs (full-batch steps)")
    optimizers: dict[str, float] = Field(default_factory=lambda: {"adam": 0.003, "gd": 0.3},
                                         description="optimizer name → learning rate; each is run")
    mlp: bool = True
    probe_every: int = Field(1, ge=1)
    early_steps: int = Field(10, ge=0, description="t₀: 'the first few epochs'")
    drop_factor: float = Field(10.0, gt=1)
    high_loss_fraction: float = Field(0.8, gt=0, le=1)
    trained_loss_fraction: float = Field(0.5, gt=0, le=1)
    delta: float = Field(1e-3, gt=0, description="δ of Def. 1 for the first globally δ-stationary epoch")
    seeds: int = Field(1, ge=1, description="number of seeds, from `seed` on")


    @field_validator("loss")
    @classmethod
    def _loss(cls, v: str) -> str:
        resolve("loss", v, LOSSES)
        return v

    @field_validator("optimizers")
    @classmethod
    def _opts(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("give at least one optimizer, e.g. {\"adam\": 0.01}")
        for name, lr in v.items():
            resolve("optimizer", name, OPTIMIZERS)
            if not lr > 0:
                raise ValueError(f"learning rate of {name} must be > 0; got {lr}")
        return v

    @model_validator(mode="after")
    def _windows(self) -> "BackwardOversmoothingSpec":
        """The drop factor compares epochs t ≤ early_steps with t ≥ steps/2: that needs early_steps < steps/2."""
        if not self.early_steps < self.steps / 2:
            raise ValueError(f"early_steps={self.early_steps} must be < steps/2 = {self.steps / 2:g} (the drop factor "
                             f"compares epochs t ≤ early_steps with t ≥ steps/2); lower early_steps or raise steps")
        if self.labels != "classes" and get_loss(self.loss).name == "cross-entropy":
            raise ValueError(f"labels={self.labels!r} contradicts loss={self.loss!r}: cross-entropy takes class labels, "
                             f"centered label rows go with the squared loss; give labels=classes, or loss=mse with "
                             f"labels=centered")
        check_schedule("probe_every", self.probe_every, f"steps={self.steps}", self.steps,
                       "the gradient drop factor takes the largest gradient over the probed epochs t ≥ steps/2")
        if not self.model.depth > self.shallow_depth:
            raise ValueError(f"model.depth={self.model.depth} must exceed shallow_depth={self.shallow_depth}: Fig. 1 "
                             f"compares a deep GNN (and MLP) with a shallow one; raise model.depth or lower "
                             f"shallow_depth")
        return self


def uninformative_loss(loss_name: str, target: torch.Tensor) -> float:
    """The loss of the best constant output: label entropy (cross-entropy), ½ mean‖y − ȳ‖² (MSE)."""
    if loss_name == "cross-entropy":
        p = torch.bincount(target).to(torch.float64)
        p = p[p > 0] / p.sum()
        return float(-(p * p.log()).sum())
    t = target.to(torch.float64)
    return float(0.5 * ((t - t.mean(0, keepdim=True)) ** 2).sum(1).mean())


def _grad_probe(schedule) -> Probe:
    def fn(ctx: ProbeContext) -> dict:
        g = [float(torch.linalg.norm(t)) for t in ctx.grads]
        return {"grad_norm": g, "global_delta": max(g), "inner_delta": max(g[:-1]) if len(g) > 1 else math.nan}

    return Probe("grad_norm", fn, schedule)


def _spectral_probe(schedule) -> Probe:
    def fn(ctx: ProbeContext) -> dict:
        return {"spectral_norm": ctx.model.spectral_norms()}

    return Probe("spectral_norm", fn, schedule)


def drop_factors(grads: np.ndarray, steps: np.ndarray, early: int, total: int) -> np.ndarray:
    """Per layer: max_{t ≤ early} G_k(t) / max_{t ≥ total/2} G_k(t) (``grads`` is steps × layers).

    NaN for every layer when a window holds no recorded step (a run that diverged before ``total/2``)."""
    grads = np.asarray(grads, dtype=float).reshape(len(steps), -1)
    if not (steps <= early).any() or not (steps >= total / 2).any():
        return np.full(grads.shape[1], np.nan)
    e = grads[steps <= early].max(0)
    late = grads[steps >= total / 2].max(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(late > 0, e / late, np.inf)


def _drops_text(drop: np.ndarray) -> str:
    """The drop factors of one series in words: the smallest (and its layer) and the median over the finite
    ones; ∞ where a layer's late gradient is 0; said plainly when none is finite (a diverged series)."""
    d = np.asarray(drop, dtype=float)
    ok = ~np.isnan(d)
    if not ok.any():
        return "no drop factor measured (the gradients were not finite)"
    k = int(np.flatnonzero(ok)[np.argmin(d[ok])])

    def num(x: float) -> str:
        return "∞" if math.isinf(x) and x > 0 else f"{x:.3g}"

    return f"smallest drop factor {num(float(d[k]))} (layer {k}), median {num(float(np.median(d[ok])))}"


@single_threaded
def run_backward(spec: BackwardOversmoothingSpec, ctx: RunContext) -> ExperimentResult:
    loss = get_loss(spec.loss)
    rec = ctx.recorder
    archs = ["gnn"] + (["mlp"] if spec.mlp else [])
    depths = sorted({spec.model.depth, spec.shallow_depth}, reverse=True)
    total = spec.seeds * len(spec.optimizers) * len(archs) * len(depths) * spec.steps
    checks: dict[str, list[Verdict]] = {}
    stats: dict[str, list[dict]] = {}
    notes_seen: set[str] = set()
    a14: dict[str, bool] = {}
    sched_spec = log_spaced(spec.steps, 20)
    with ctx.task("backward oversmoothing (Fig. 1)", total) as bar:
        for seed in range(spec.seed, spec.seed + spec.seeds):
            st = build_setup(spec, spec.graph, spec.operator, seed)
            y, out_dim = targets(st, loss, spec.labels)
            assumptions, notes, const = theory_context(st, spec.model, loss, y)
            note_assumptions(assumptions, notes, notes_seen, a14)
            base = uninformative_loss(spec.loss, y)
            for opt_name, lr in spec.optimizers.items():
                for arch in archs:
                    P = st.op if arch == "gnn" else st.mlp_op
                    for depth in depths:
                        name = f"{arch}-L{depth}-{opt_name}"
                        model = make_model(st, spec.model, out_dim, seed, depth=depth, dtype=spec.torch_dtype)
                        probes = [_grad_probe(every(spec.probe_every)), _spectral_probe(sched_spec)]
                        res = train(model, P, st.x, y, loss, make_optimizer(opt_name, lr), spec.steps, probes=probes,
                                    recorder=rec, series=name, seed=seed, task=bar, raise_on_divergence=False)
                        # a diverged series is measured and checked at its last (non-finite) point: no warnings
                        quiet = (lambda: np.errstate(all="ignore")) if res.diverged is not None else contextlib.nullcontext
                        with quiet():
                            final = measure(model, P, st.x, y, loss)
                        acc = float("nan")
                        if spec.loss == "cross-entropy":
                            with torch.no_grad():
                                acc = float((model(P, st.x).argmax(1) == y).double().mean())
                            rec.add(name, seed, res.steps, "accuracy", acc)
                        df = rec.frame()
                        d = select(df, "grad_norm", series=name, seed=seed)
                        pv = d.pivot_table(index="step", columns="layer", values="value")
                        gd = select(df, "global_delta", series=name, seed=seed).sort_values("step")
                        stat = {
                            "seed": seed, "depth": depth, "arch": arch, "optimizer": opt_name, "series": name,
                            "drop": drop_factors(pv.to_numpy(), pv.index.to_numpy(), spec.early_steps, spec.steps),
                            "final_loss": res.final_loss, "uninformative": base, "accuracy": acc,
                            "diverged": res.diverged is not None,
                            "first_stationary": thy.first_stationary_step(gd["step"].to_numpy(), gd["value"].to_numpy(),
                                                                         spec.delta),
                            "alpha": thy.expansion_rate(final["spectral_norm"], st.lam),
                            "final_global_delta": final["global_delta"],
                            "stationary_layers": sum(thy.stationarity(final["grad_norm"], spec.delta).per_layer),
                        }
                        stats.setdefault(name.rsplit("-", 1)[0] + f"-{opt_name}", []).append(stat)
                        if arch == "gnn":
                            with quiet():
                                vs = exact_checks(final, st.lam, const, assumptions, f"{name} after training (seed {seed})")
                            for v in vs:
                                checks.setdefault(v.name, []).append(v)
                        remaining = spec.steps - res.steps
                        if remaining:
                            bar.advance(remaining)
    verdicts, summary = _verdicts(spec, stats, st.lam, a14)
    verdicts += [aggregate(v, label="run") for v in checks.values()]
    for i, n in enumerate(sorted(notes_seen)):
        summary[f"assumption note {i + 1}"] = n
    return ExperimentResult(verdicts=verdicts, summary=summary)


def _verdicts(spec: BackwardOversmoothingSpec, stats: dict[str, list[dict]], lam: float,
              a14: dict[str, bool]) -> tuple[list[Verdict], dict]:
    L, Ls = spec.model.depth, spec.shallow_depth
    q = 1 if spec.loss == "cross-entropy" else 2
    out: list[Verdict] = []
    summary: dict = {}
    for opt in spec.optimizers:
        gnn = stats.get(f"gnn-L{L}-{opt}", [])
        mlp = stats.get(f"mlp-L{L}-{opt}", [])
        shallow = stats.get(f"gnn-L{Ls}-{opt}", [])
        per_seed: list[Verdict] = []
        for s in gnn:
            k = int(np.argmin(s["drop"]))
            mn = float(s["drop"][k])
            high = s["final_loss"] >= spec.high_loss_fraction * s["uninformative"]
            ok = mn >= spec.drop_factor and high and not s["diverged"]
            per_seed.append(Verdict(
                name=f"keriven.fig1.deep_gnn_stuck.{opt}", paper="Keriven, Fig. 1 (left, right) and §4",
                statement=f"deep GNN (L = {L}, {opt}): after the first {spec.early_steps} epochs every layer's gradient "
                          f"falls by ≥ {spec.drop_factor:g}× and stays there, while the loss stays ≥ "
                          f"{spec.high_loss_fraction:g} × the uninformative loss",
                holds=bool(ok), margin=mn - spec.drop_factor, assumptions=dict(a14), applicable=all(a14.values()),
                where=f"seed {s['seed']}: {_drops_text(s['drop'])}; "
                      f"final loss {s['final_loss']:.4g} vs uninformative {s['uninformative']:.4g}"
                      + ("; training diverged" if s["diverged"] else ""),
                details={"series": s["series"], "drop_factors": s["drop"].tolist(), "final_loss": s["final_loss"],
                         "uninformative_loss": s["uninformative"], "accuracy": s["accuracy"],
                         "first_globally_delta_stationary_epoch": s["first_stationary"], "delta": spec.delta,
                         "alpha_final": s["alpha"], "xi_q_alpha": thy.xi(q, s["alpha"]) if s["alpha"] < 1 else None},
            ))
        if per_seed:
            out.append(aggregate(per_seed))
        per_seed = []
        for s in mlp:
            k = int(np.argmin(s["drop"]))
            mn = float(s["drop"][k])
            high = s["final_loss"] >= spec.high_loss_fraction * s["uninformative"]
            stuck = mn >= spec.drop_factor and high
            per_seed.append(Verdict(
                name=f"keriven.fig1.deep_mlp_not_stuck.{opt}", paper="Keriven, Fig. 1 (center) and Prop 2",
                statement=f"deep MLP (L = {L}, {opt}): not stuck — its gradients do not all fall by {spec.drop_factor:g}× "
                          f"at a high loss",
                holds=bool(not stuck and not s["diverged"]), margin=spec.drop_factor - mn if high else float("inf"),
                where=f"seed {s['seed']}: {_drops_text(s['drop'])}; "
                      f"final loss {s['final_loss']:.4g} vs uninformative {s['uninformative']:.4g}",
                details={"series": s["series"], "drop_factors": s["drop"].tolist(), "final_loss": s["final_loss"],
                         "uninformative_loss": s["uninformative"], "accuracy": s["accuracy"]},
            ))
        if per_seed:
            out.append(aggregate(per_seed))
        per_seed = []
        for s in shallow:
            ok = s["final_loss"] <= spec.trained_loss_fraction * s["uninformative"] and not s["diverged"]
            per_seed.append(Verdict(
                name=f"keriven.fig1.shallow_gnn_trains.{opt}", paper="Keriven, Fig. 1 (right)",
                statement=f"shallow GNN (L = {Ls}, {opt}) trains: final loss ≤ {spec.trained_loss_fraction:g} × "
                          f"the uninformative loss",
                holds=bool(ok), margin=spec.trained_loss_fraction * s["uninformative"] - s["final_loss"],
                assumptions=dict(a14), applicable=all(a14.values()),
                where=f"seed {s['seed']}: final loss {s['final_loss']:.4g} vs uninformative {s['uninformative']:.4g}"
                      + (f", accuracy {s['accuracy']:.3f}" if math.isfinite(s["accuracy"]) else ""),
                details={"series": s["series"], "final_loss": s["final_loss"], "uninformative_loss": s["uninformative"],
                         "accuracy": s["accuracy"]},
            ))
        if per_seed:
            out.append(aggregate(per_seed))
        for key, rows in (("deep GNN", gnn), ("deep MLP", mlp), ("shallow GNN", shallow),
                          ("shallow MLP", stats.get(f"mlp-L{Ls}-{opt}", []))):
            if not rows:
                continue
            summary[f"{opt}: {key} final loss (median)"] = float(np.median([r["final_loss"] for r in rows]))
            if key.startswith("deep"):
                summary[f"{opt}: {key} smallest per-layer gradient drop factor (median)"] = float(
                    np.median([np.min(r["drop"]) for r in rows]))
                summary[f"{opt}: {key} median per-layer gradient drop factor (median)"] = float(
                    np.median([np.median(r["drop"]) for r in rows]))
            summary[f"{opt}: {key} layers delta-stationary at the end (median, of {rows[0]['depth'] + 1})"] = float(
                np.median([r["stationary_layers"] for r in rows]))
            if rows[0]["arch"] == "gnn":
                summary[f"{opt}: {key} alpha at the end (median)"] = float(np.median([r["alpha"] for r in rows]))
        if gnn:
            fs = [r["first_stationary"] for r in gnn]
            summary[f"{opt}: deep GNN first globally delta-stationary epoch (delta={spec.delta:g})"] = \
                "never" if any(f is None for f in fs) else float(np.median(fs))
            summary[f"{opt}: deep GNN final global delta (median)"] = float(np.median([r["final_global_delta"] for r in gnn]))
    summary["uninformative loss"] = float(np.median([r["uninformative"] for rows in stats.values() for r in rows]))
    summary["lambda"] = lam
    summary["alpha range of Thm 3/4 (xi_q > 0)"] = f"alpha < {thy.alpha_max_thm3(q):.3f} (q = {q})"
    return out, summary


def figures_backward(store: RunStore) -> dict:
    import matplotlib.pyplot as plt

    from gnndyn.report.plots import COLORS, band, by_seed, finish_figure

    df = store.metrics()
    spec = store.spec()
    opts = list(spec["optimizers"])
    L, Ls = spec["model"]["depth"], spec["shallow_depth"]
    fig, axes = plt.subplots(len(opts), 3, figsize=(15, 3.8 * len(opts)), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for row, opt in enumerate(opts):
        for col, arch in enumerate(("gnn", "mlp")):
            ax = axes[row, col]
            d = select(df, "grad_norm", series=f"{arch}-L{L}-{opt}")
            if d.empty:
                ax.set_visible(False)
                continue
            med = d.pivot_table(index="step", columns="layer", values="value", aggfunc="median")
            for k in med.columns:
                if k == L:
                    continue
                ax.plot(med.index, med[k], color=cmap(k / max(L, 1)), lw=0.8)
            ax.plot(med.index, med[L], color="k", lw=2.4, label=f"output layer $W^{{({L})}}$")
            ax.set(yscale="log", xlabel="epoch", ylabel=r"$\|\partial L/\partial W^{(k)}\|_F$",
                   title=f"{arch.upper()}, L = {L}, {opt}: gradient norm per layer")
            sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, L))
            fig.colorbar(sm, ax=ax, label="layer k", pad=0.01)
            ax.legend(fontsize=8, loc="lower left")
            ax.grid(alpha=0.3)
        ax = axes[row, 2]
        for arch in ("gnn", "mlp"):
            for depth, ls in ((Ls, "--"), (L, "-")):
                d = select(df, "loss", series=f"{arch}-L{depth}-{opt}")
                if d.empty:
                    continue
                x, v = by_seed(d, index="step")
                band(ax, x, v, label=f"{arch.upper()}, L = {depth}", color=COLORS[arch], ls=ls)
        ax.set(yscale="log", xlabel="epoch", ylabel="training loss", title=f"loss ({opt})")
    return finish_figure(fig, "fig1_backward_oversmoothing", axes[:, 2], fontsize=8,
                         title="Backward oversmoothing during training (Keriven Fig. 1)")


register(Experiment(
    name="backward-oversmoothing",
    description="Keriven Fig. 1: per-layer gradient norms and loss vs epoch, deep/shallow GNN vs MLP, GD and Adam; "
                "the deep GNN's gradients collapse at a high loss",
    paper="Keriven, Backward oversmoothing, Fig. 1 (and Thm 2–4 at the trained points)",
    spec_cls=BackwardOversmoothingSpec,
    run=run_backward,
    figures=figures_backward,
    smoke={"graph.n": 200, "graph.p_in": 0.2, "graph.p_out": 0.04, "model.depth": 12, "model.width": 8,
           "shallow_depth": 2, "steps": 40, "early_steps": 5},
))
