r"""``gnn-vs-mlp`` — Keriven Prop 1 (App. A.5) and Prop 2 (App. A.8), built exactly.

* Prop 1: ρ = Id, d_k = 1, W⁽ᵏ⁾ = 1, X⁽⁰⁾ = 1, Y = 0 — ‖∂𝓛/∂W⁽ᵏ⁾‖ = 1 at every layer while
  ℰ(B⁽ᵏ⁾) = 0 (backward oversmoothing without vanishing gradients), on the gossip operator and on the
  identity (MLP), for every depth in ``depths``;
* Prop 2: the MLP with W⁽ᵏ⁾ = 0 (k = ``layer``; all other weights 1) and (x, y) = ±(1, 1): the output
  layer is exactly stationary while ‖∂𝓛/∂W⁽ᵏ⁾‖ = 1 — a stationary output layer that is not a global
  stationary point, for every depth;
* the same construction with P the gossip matrix: ∂𝓛/∂W⁽ᵏ⁾ = −(1/n)xᵀP^{L+1}y, which falls with L to
  the level x̄ȳ — the contrast the paper draws (Thm 3 holds for GNNs, not MLPs).

Series ``prop1-gnn``, ``prop1-mlp``, ``prop2-mlp``, ``prop2-gnn`` (step = depth L); quantities
``grad_norm`` (per layer), ``grad_k`` (layer k), ``grad_output``, ``closed_form``, ``bound``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from gnndyn.experiments.base import Experiment, ExperimentResult, RunContext, register
from gnndyn.experiments.keriven.common import (
    CSBM_DEFAULT,
    KerivenSpec,
    build_setup,
    single_threaded,
)
from gnndyn.models.activations import get_activation
from gnndyn.models.losses import get_loss
from gnndyn.spec import GraphSpec, OperatorSpec
from gnndyn.store.metrics import select
from gnndyn.store.run import RunStore
from gnndyn.theory import keriven as thy
from gnndyn.theory.verdict import aggregate


class GnnVsMlpSpec(KerivenSpec):
    """Spec of ``gnn-vs-mlp`` (Keriven Prop 1 and Prop 2)."""

    experiment: Literal["gnn-vs-mlp"] = "gnn-vs-mlp"
    graph: GraphSpec = CSBM_DEFAULT
    operator: OperatorSpec = OperatorSpec(name="gossip")
    depths: list[int] = Field(default_factory=lambda: [1, 2, 5, 10, 20, 40, 80])
    layer: int = Field(0, ge=0, description="k, the layer set to 0 in Prop 2 (must be < every depth)")
    seeds: int = Field(1, ge=1, description="number of seeds, from `seed` on")


    @field_validator("depths")
    @classmethod
    def _depths(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("depths is empty (got []); give at least one depth L ≥ 1, e.g. depths=[1, 5, 20]")
        if min(v) < 1:
            raise ValueError(f"depths must be ≥ 1 (Prop 2 needs a layer k < L); got {v}")
        return sorted(set(v))

    @model_validator(mode="after")
    def _layer_below_depths(self) -> "GnnVsMlpSpec":
        if self.layer >= min(self.depths):
            raise ValueError(f"layer={self.layer} must be < every depth (Prop 2 zeroes a layer k < L); the smallest "
                             f"depth is {min(self.depths)}")
        return self


@single_threaded
def run_gnn_vs_mlp(spec: GnnVsMlpSpec, ctx: RunContext) -> ExperimentResult:
    if spec.layer >= min(spec.depths):
        from gnndyn.errors import GnndynError

        raise GnndynError(f"layer k = {spec.layer} must be below every depth; the smallest depth is {min(spec.depths)}.")
    rec = ctx.recorder
    ident = get_activation("identity")
    mse = get_loss("mse")
    checks: dict[str, list] = {}
    rows = []
    with ctx.task("Prop 1 and Prop 2 constructions", spec.seeds * len(spec.depths)) as bar:
        for seed in range(spec.seed, spec.seed + spec.seeds):
            st = build_setup(spec, spec.graph, spec.operator, seed)
            mlp_facts = st.mlp_op.spectral()
            a_gnn = thy.assumptions_1_4(st.facts, ident, mse)
            a_mlp = {k: v for k, v in thy.assumptions_1_4(mlp_facts, ident, mse).items() if k != thy.A1}
            for L in spec.depths:
                for name, op, a in (("gnn", st.op, a_gnn), ("mlp", st.mlp_op, a_mlp)):
                    v1 = thy.check_prop1(op, L, assumptions=a, series=f"{name} (seed {seed})")
                    checks.setdefault(f"prop1.{name}", []).append(v1)
                    rec.add_values(f"prop1-{name}", seed, L, {"grad_norm": v1.details["grad_norms"],
                                                             "max_abs_error": v1.details["max_abs_error"]})
                v2 = thy.check_prop2(st.mlp_op, L, spec.layer, seed=seed, assumptions=a_mlp)
                checks.setdefault("prop2.mlp", []).append(v2)
                v3 = thy.check_prop2_gnn(st.op, L, spec.layer, st.lam, seed=seed, assumptions=a_gnn)
                checks.setdefault("prop2.gnn", []).append(v3)
                for name, v in (("mlp", v2), ("gnn", v3)):
                    rec.add_values(f"prop2-{name}", seed, L, {"grad_norm": v.details["grad_norms"],
                                                             "grad_k": v.details["grad_k"],
                                                             "grad_output": v.details["grad_output"]})
                rec.add_values("prop2-gnn", seed, L, {"closed_form": v3.details["closed_form"], "bound": v3.details["bound"]})
                rows.append({"seed": seed, "L": L, "mlp_grad_k": v2.details["grad_k"], "gnn_grad_k": v3.details["grad_k"],
                             "gnn_bound": v3.details["bound"], "gnn_err": v3.details["abs_error"]})
                bar.advance(1)
    verdicts = [aggregate(checks[k], label="depth/seed") for k in ("prop1.gnn", "prop1.mlp", "prop2.mlp", "prop2.gnn")]
    e1 = max(max(v.details["max_abs_error"] for v in checks[k]) for k in ("prop1.gnn", "prop1.mlp"))
    e2 = max(abs(v.details["grad_k"] - 1) for v in checks["prop2.mlp"])
    out2 = max(v.details["grad_output"] for v in checks["prop2.mlp"])
    eg = max(v.details["abs_error"] for v in checks["prop2.gnn"])
    deep = [r for r in rows if r["L"] == max(spec.depths)]
    summary = {
        "Prop 1: max over layers, depths, GNN and MLP of |grad norm - 1|": e1,
        "Prop 2 (MLP): max over depths of |grad_k - 1|": e2,
        "Prop 2 (MLP): max over depths of the output-layer gradient": out2,
        "Prop 2 with the graph operator P: max |autograd - closed form (1/n) x^T P^(L+1) y|": eg,
        f"Prop 2 at L = {max(spec.depths)}: layer-k gradient MLP / GNN / GNN bound":
            f"{np.median([r['mlp_grad_k'] for r in deep]):.4g} / {np.median([r['gnn_grad_k'] for r in deep]):.3g} / "
            f"{np.median([r['gnn_bound'] for r in deep]):.3g}",
        "lambda": float(st.lam),
    }
    for r in rows:
        if r["seed"] == spec.seed:
            summary[f"L = {r['L']}: layer-{spec.layer} gradient MLP / GNN"] = f"{r['mlp_grad_k']:.4g} / {r['gnn_grad_k']:.3g}"
    return ExperimentResult(verdicts=verdicts, summary=summary)


def figures_gnn_vs_mlp(store: RunStore) -> dict:
    from gnndyn.report.plots import COLORS, band, by_seed, finish_figure, new_figure

    df = store.metrics()
    spec = store.spec()
    fig, (a1, a2) = new_figure(2)
    Lmax = max(spec["depths"])
    for name, mk in (("gnn", "o"), ("mlp", "s")):
        d = select(df, "grad_norm", series=f"prop1-{name}", step=Lmax)
        x, v = by_seed(d)
        if x.size:
            band(a1, x, v, label=f"Prop 1, {name.upper()}", color=COLORS[name], marker=mk, ms=3)
    a1.set(xlabel="layer k", ylabel="‖∂L/∂W⁽ᵏ⁾‖", title=f"Prop 1 (L = {Lmax}): gradients exactly 1", ylim=(0, 1.5))
    for name, q, ls, lab in (("mlp", "grad_k", "-", "MLP (Prop 2)"), ("gnn", "grad_k", "-", "GNN, same construction"),
                             ("gnn", "bound", ":", "GNN bound |x̄ȳ| + λ^(L+1)‖J⊥x‖‖J⊥y‖/n")):
        x, v = by_seed(select(df, q, series=f"prop2-{name}"), index="step")
        if x.size:
            band(a2, x, v, label=lab, color=COLORS[name] if q != "bound" else "k", ls=ls)
    a2.set(yscale="log", xscale="log", xlabel="depth L", ylabel=f"‖∂L/∂W⁽{spec['layer']}⁾‖",
           title="Prop 2: stationary output layer, gradient at layer k")
    return finish_figure(fig, "prop1_prop2_gnn_vs_mlp", (a1, a2), title="GNNs are not MLPs (Keriven Prop 1, Prop 2)")


register(Experiment(
    name="gnn-vs-mlp",
    description="Keriven Prop 1 and Prop 2: the exact constructions (gradients exactly 1) and Prop 2's construction "
                "with a gossip operator, whose gradient vanishes with depth",
    paper="Keriven, Backward oversmoothing, Prop 1 (App. A.5), Prop 2 (App. A.8)",
    spec_cls=GnnVsMlpSpec,
    run=run_gnn_vs_mlp,
    figures=figures_gnn_vs_mlp,
    smoke={"graph.n": 200, "graph.p_in": 0.2, "graph.p_out": 0.04, "depths": [1, 3, 10]},
))
