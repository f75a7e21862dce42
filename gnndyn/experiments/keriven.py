"""Experiments of Keriven, *Backward oversmoothing* (paper 000).

``oversmoothing-at-init`` — Figure 2: ℰ of the forward signal X⁽ᵏ⁾ and of the backward signal B⁽ᵏ⁾
layer by layer at initialization on CSBM data, the deep GNN beside the MLP with the same weights,
with Thm 1's bound over the forward curve. Quantities recorded (series ``gnn`` / ``mlp``, step 0):
``smoothing_X``, ``smoothing_F``, ``smoothing_H``, ``smoothing_B``, ``grad_norm``, ``spectral_norm``
(per layer), ``loss``, ``mean_output_error``, and for the GNN ``thm1_bound`` / ``thm1_bound_max_s``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from gnndyn.errors import GnndynError
from gnndyn.experiments.base import Experiment, ExperimentResult, RunContext, register
from gnndyn.models.activations import get_activation
from gnndyn.models.deep_gnn import DeepGNN
from gnndyn.models.losses import get_loss
from gnndyn.operators.builders import identity
from gnndyn.probes import measures
from gnndyn.spec import ExperimentSpec, GraphSpec, ModelSpec, OperatorSpec
from gnndyn.store.metrics import per_layer, select
from gnndyn.store.run import RunStore
from gnndyn.theory import keriven as thy
from gnndyn.theory.verdict import aggregate

#: CSBM defaults: two balanced classes, n = 1000, average degree ≈ 30, gossip spectral gap ≈ 0.16
#: (the paper reports 1 − λ ≈ 0.16 for its CSBM data).
CSBM_DEFAULT = GraphSpec(name="csbm", n=1000, classes=2, p_in=0.05, p_out=0.0095, feature_dim=16, feature_sep=2.0)


class OversmoothingAtInitSpec(ExperimentSpec):
    """Spec of ``oversmoothing-at-init`` (Keriven Fig. 2)."""

    experiment: Literal["oversmoothing-at-init"] = "oversmoothing-at-init"
    graph: GraphSpec = CSBM_DEFAULT
    operator: OperatorSpec = OperatorSpec(name="gossip")
    model: ModelSpec = ModelSpec(depth=40, width=64, activation="tanh", init="orthogonal")
    loss: str = "cross-entropy"
    mlp: bool = True
    seeds: int = Field(1, ge=1, description="number of seeds, from `seed` on")


def _signals_at_init(model: DeepGNN, op, x: torch.Tensor, y: torch.Tensor, loss_name: str) -> dict:
    loss = get_loss(loss_name)
    out = model(op, x, keep_signals=True)
    value = loss(out, y)
    grads = torch.autograd.grad(value, list(model.parameters()))
    sig = model.signals
    return {
        "loss": float(value.detach()),
        "smoothing_X": [measures.smoothing(t) for t in sig.X],
        "smoothing_F": [measures.smoothing(t) for t in sig.F],
        "smoothing_H": [measures.smoothing(t) for t in sig.H],
        "smoothing_B": [measures.smoothing(t) for t in sig.B],
        "grad_norm": [float(torch.linalg.norm(g)) for g in grads],
        "spectral_norm": model.spectral_norms(),
        "mean_output_error": measures.mean_output_error(sig.B[-1]),
    }


def run_at_init(spec: OversmoothingAtInitSpec, ctx: RunContext) -> ExperimentResult:
    dtype, device = spec.torch_dtype, spec.torch_device
    act = get_activation(spec.model.activation)
    rec = ctx.recorder
    thm1, dips, lams = [], [], []
    with ctx.task("oversmoothing at init", spec.seeds) as bar:
        for seed in range(spec.seed, spec.seed + spec.seeds):
            g = spec.graph.build(spec.data_root, seed=seed)
            if g.x is None or g.y is None:
                raise GnndynError(f"graph {spec.graph.name!r} has no node features or labels; this experiment needs both.")
            op = spec.operator.build(g)
            facts = op.spectral()
            lams.append(facts.lambda_)
            op = op.to(device, dtype)
            x, y = g.x.to(device, dtype), g.y.to(device)
            out_dim = g.num_classes if spec.loss == "cross-entropy" or y.dim() == 1 else y.shape[1]
            series = [("gnn", op)] + ([("mlp", identity(g).to(device, dtype))] if spec.mlp else [])
            for name, P in series:
                model = DeepGNN(g.num_features, spec.model.width, out_dim, spec.model.depth, act,
                                init=spec.model.init, init_scale=spec.model.init_scale, seed=seed, dtype=dtype).to(device)
                vals = _signals_at_init(model, P, x, y, spec.loss)
                rec.add_values(name, seed, 0, vals)
                if name == "gnn":
                    v = thy.check_thm1(vals["smoothing_X"], facts.lambda_, vals["spectral_norm"],
                                       assumptions=thy.assumptions_1_2(facts, act), series=f"gnn (seed {seed})")
                    thm1.append(v)
                    rec.add_values(name, seed, 0, {"thm1_bound": v.details["bound_per_layer"],
                                                   "thm1_bound_max_s": v.details["bound_max_s"]})
                    eb = np.asarray(vals["smoothing_B"])
                    k = int(np.argmin(eb))
                    dips.append((k, k / max(spec.model.depth, 1)))
            bar.advance(1)
    dip_layers = [d[0] for d in dips]
    summary = {
        "lambda (median over seeds)": float(np.median(lams)),
        "spectral_gap 1-lambda (median)": float(1 - np.median(lams)),
        "backward dip layer argmin_k E(B^(k)) (median)": float(np.median(dip_layers)),
        "backward dip position k/L (median)": float(np.median([d[1] for d in dips])),
        "Thm 1 holds (seeds)": f"{sum(v.holds for v in thm1)}/{len(thm1)}",
    }
    return ExperimentResult(verdicts=[aggregate(thm1)], summary=summary)


def figures_at_init(store: RunStore) -> dict:
    from gnndyn.report.plots import COLORS, band, by_seed, new_figure

    df = store.metrics()
    fig, (ax_f, ax_b) = new_figure(2)
    for name in ("gnn", "mlp"):
        lx, vx = by_seed(select(df, "smoothing_X", series=name))
        if lx.size:
            band(ax_f, lx, vx, label=f"{name.upper()}: ℰ(X⁽ᵏ⁾)", color=COLORS[name])
        lb, vb = by_seed(select(df, "smoothing_B", series=name))
        if lb.size:
            band(ax_b, lb, vb, label=f"{name.upper()}: ℰ(B⁽ᵏ⁾)", color=COLORS[name])
    for q, style, lab in (("thm1_bound", "--", "Thm 1 bound λᵏ s^(0:k) ℰ(X⁽⁰⁾)"),
                          ("thm1_bound_max_s", ":", "Thm 1 bound (λs)ᵏ ℰ(X⁽⁰⁾)")):
        lq, vq = by_seed(select(df, q, series="gnn"))
        if lq.size:
            band(ax_f, lq, vq, label=lab, color="k", ls=style, lw=1.2)
    ax_f.set(yscale="log", xlabel="layer k", ylabel="ℰ", title="forward signal")
    measured = np.concatenate([per_layer(df, "smoothing_X", series=s) for s in ("gnn", "mlp")])
    measured = measured[np.isfinite(measured) & (measured > 0)]
    if measured.size:  # the bound can grow like (λs)ᵏ: keep the measured curves readable
        ax_f.set_ylim(measured.min() / 10, measured.max() * 1e3)
    ax_b.set(yscale="log", xlabel="layer k", ylabel="ℰ", title="backward signal")
    for ax in (ax_f, ax_b):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("Oversmoothing at initialization (Keriven Fig. 2)")
    fig.tight_layout()
    return {"fig2_smoothing_at_init": fig}


register(Experiment(
    name="oversmoothing-at-init",
    description="Keriven Fig. 2: forward and backward smoothing ℰ per layer at initialization (CSBM), GNN vs MLP, Thm 1 bound",
    paper="Keriven, Backward oversmoothing, Fig. 2 and Thm 1",
    spec_cls=OversmoothingAtInitSpec,
    run=run_at_init,
    figures=figures_at_init,
    smoke={"graph.n": 200, "graph.p_in": 0.2, "graph.p_out": 0.04, "model.depth": 8, "model.width": 16},
))
