r"""``spurious-stationary-points`` — Keriven Cor 2 (App. A.7): global δ-stationary points with a loss
close to the label variance, and the open set around them.

The construction of App. A.7: a deep GNN (orthogonal hidden weights: s ≤ 1, α = 0) with
:math:`W^{(L)} = 0` on CSBM data with centered, bounded labels :math:`y_i = \sigma_y(e_{c_i} - 1/C)/\|\cdot\|`
(‖yᵢ‖ = σ_y, exactly centered since the classes are balanced; the labels are the CSBM classes, so a
shallow GNN fits them and the loss σ_y² is spurious). Then every :math:`B^{(k)}`, k < L, is exactly 0
(B⁽ᴸ⁻¹⁾ carries the factor W⁽ᴸ⁾ = 0), the output gradient is :math:`-F^{(L)\top}Y/n`, and the loss is
𝓛(0). Measured: the global δ and the loss for growing L and n and for several σ_y.

Two versions of the loss are reported: eq. (3)'s (with ½, gnndyn's ``mse``), for which 𝓛(0) = σ_y²/2,
and the one of the proofs (App. A.6–A.7, no ½), 𝓛(0) = (1/n)Σ‖yᵢ‖² = σ_y²; Cor 2's eq. (14),
𝓛 ≥ σ_y² − δ, holds for the latter only.

The open set (remark after Cor 2): the weights are perturbed at random, W⁽ᵏ⁾ + r·G/‖G‖₂ capped at
‖W⁽ᵏ⁾‖₂ ≤ λ^{−α} (``alpha`` admissible, ξ₂(α) > 0), either the hidden layers only (W⁽ᴸ⁾ = 0 kept) or
every layer; the largest radius r at which every perturbed point keeps δ ≤ ``delta`` and the proofs'
loss ≥ σ_y² − ``delta`` is reported.

Series ``n={n}`` (depth sweep at σ_y = 1), ``sigma={σ}`` (at the default depth and n),
``perturb-{hidden|all}`` (step = perturbation index, layer = radius index). Quantities: ``global_delta``,
``inner_delta``, ``loss`` (eq. 3), ``loss_proof`` (no ½), ``sigma2``, ``radius``.
"""

from __future__ import annotations

import math
from typing import Literal

import pandas as pd
import torch
from pydantic import Field, ValidationError, field_validator, model_validator

from gnndyn.experiments.base import Experiment, ExperimentResult, RunContext, register
from gnndyn.experiments.keriven.common import (
    CSBM_DEFAULT,
    KerivenSpec,
    build_setup,
    make_model,
    measure,
    note_assumptions,
    single_threaded,
    targets,
    theory_context,
)
from gnndyn.models.losses import get_loss
from gnndyn.spec import GraphSpec, ModelSpec, OperatorSpec
from gnndyn.spec_checks import fit_depths
from gnndyn.store.run import RunStore
from gnndyn.theory import keriven as thy
from gnndyn.theory.verdict import Verdict, aggregate


class SpuriousStationarySpec(KerivenSpec):
    """Spec of ``spurious-stationary-points`` (Keriven Cor 2)."""

    experiment: Literal["spurious-stationary-points"] = "spurious-stationary-points"
    graph: GraphSpec = CSBM_DEFAULT
    operator: OperatorSpec = OperatorSpec(name="gossip")
    model: ModelSpec = ModelSpec(depth=40, width=32, activation="tanh", init="orthogonal")
    depths: list[int] = Field(default_factory=lambda: [5, 10, 20, 30, 40, 60])
    ns: list[int] = Field(default_factory=lambda: [250, 500, 1000, 2000],
                          description="graph sizes; CSBM p_in, p_out scaled by n₀/n to keep the expected degree")
    sigmas: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0], description="label scales σ_y (≤ 1)")
    radii: list[float] = Field(default_factory=lambda: [1e-4, 1e-3, 1e-2, 1e-1])
    perturbations: int = Field(5, ge=1)
    alpha: float = Field(0.1, ge=0, description="perturbed weights keep s ≤ λ^(−α); needs ξ₂(α) > 0")
    delta: float = Field(1e-3, gt=0)
    seeds: int = Field(1, ge=1, description="number of seeds, from `seed` on")


    @field_validator("sigmas")
    @classmethod
    def _sig(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("sigmas is empty (got []); give at least one label scale σ_y in (0, 1], e.g. sigmas=[0.5, 1.0]")
        if any(not 0 < s <= 1 for s in v):
            raise ValueError(f"label scales must lie in (0, 1] (Assumption 3 with D′ = 1); got {v}")
        return v

    @field_validator("radii")
    @classmethod
    def _radii(cls, v: list[float]) -> list[float]:
        """The open set is probed at every radius: at least one, each > 0 (r = 0 is the Cor 2 point itself)."""
        if not v:
            raise ValueError("radii is empty (got []); give at least one perturbation radius r > 0, e.g. radii=[1e-4, 1e-2]")
        for i, r in enumerate(v):
            if not r > 0:
                raise ValueError(f"radii[{i}] = {r:g}: a perturbation radius must be > 0 (the weights move by r·G/‖G‖₂; "
                                 f"r = 0 is the Cor 2 point itself); got radii={v}")
        return v

    @field_validator("depths")
    @classmethod
    def _depths(cls, v: list[int]) -> list[int]:
        """Cor 2's rate is fitted over the depths: that needs at least two different depths ≥ 0 (L counts the
        layers before the zeroed output layer W⁽ᴸ⁾)."""
        return fit_depths(v, minimum=0, what="the decay rate of δ(L)")

    @model_validator(mode="after")
    def _sizes(self) -> "SpuriousStationarySpec":
        """``ns`` is non-empty and every size gives a valid graph (p_in, p_out rescaled as :func:`_graph_at` does)."""
        if not self.ns:
            raise ValueError("ns is empty; give at least one graph size, e.g. ns=[250, 500]")
        for i, n in enumerate(self.ns):
            if n < 2:
                raise ValueError(f"ns[{i}] = {n}: a graph size must be at least 2")
            try:
                _graph_at(self, n)
            except ValidationError as exc:
                msg = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
                raise ValueError(f"ns[{i}] = {n}: {msg}") from None
        return self


def _graph_at(spec: SpuriousStationarySpec, n: int) -> GraphSpec:
    d = spec.graph.model_dump()
    n0 = d.get("n")
    d["n"] = n
    if n0:
        for p in ("p_in", "p_out"):
            if d.get(p) is not None:
                d[p] = min(1.0, d[p] * n0 / n)
    return GraphSpec(**d)


def _point(st, model_spec, y, loss, depth, seed, dtype):
    model = make_model(st, model_spec, y.shape[1], seed, depth=depth, dtype=dtype)
    thy.zero_output_layer(model)
    return model


def _eval(model, st, y, loss) -> dict:
    v = measure(model, st.op, st.x, y, loss)
    v["loss_proof"] = 2 * v["loss"]  # App. A.6–A.7 write 𝓛 = (1/n)‖H − Y‖² (no ½)
    return v


@single_threaded
def run_spurious(spec: SpuriousStationarySpec, ctx: RunContext) -> ExperimentResult:
    rec = ctx.recorder
    loss = get_loss("mse")
    rows, pert_rows = [], []
    cor2: list[Verdict] = []
    cor2_eq3: list[Verdict] = []
    notes_seen: set[str] = set()
    a14: dict[str, bool] = {}
    n_default = int(spec.graph.model_dump().get("n") or 0)
    ns = sorted(set(spec.ns) | ({n_default} if n_default else set()))
    s_cap = None
    total = spec.seeds * (len(ns) * len(spec.depths) + len(spec.sigmas) + 2 * len(spec.radii))
    with ctx.task("spurious stationary points (Cor 2)", total) as bar:
        for seed in range(spec.seed, spec.seed + spec.seeds):
            setups = {n: build_setup(spec, _graph_at(spec, n), spec.operator, seed) for n in ns}
            for n, st in setups.items():
                y, _ = targets(st, loss, "centered", 1.0)
                assumptions, notes, _ = theory_context(st, spec.model, loss, y)
                note_assumptions(assumptions, notes, notes_seen, a14)
                for L in spec.depths:
                    v = _eval(_point(st, spec.model, y, loss, L, seed, spec.torch_dtype), st, y, loss)
                    rec.add_values(f"n={n}", seed, L, {k: v[k] for k in ("global_delta", "inner_delta", "loss",
                                                                         "loss_proof", "mean_output_error")})
                    rows.append({"seed": seed, "n": n, "depth": L, "sigma": 1.0, "lambda": st.lam,
                                 "alpha": thy.expansion_rate(v["spectral_norm"], st.lam), **{
                                     k: v[k] for k in ("global_delta", "inner_delta", "loss", "loss_proof")}})
                    bar.advance(1)
            st = setups[n_default] if n_default else setups[ns[-1]]
            L0 = spec.model.depth
            for sig in spec.sigmas:
                y, _ = targets(st, loss, "centered", sig)
                v = _eval(_point(st, spec.model, y, loss, L0, seed, spec.torch_dtype), st, y, loss)
                s2 = float((y ** 2).sum(1).mean())
                assumptions, _, _ = theory_context(st, spec.model, loss, y)
                rec.add_values(f"sigma={sig:g}", seed, L0, {"global_delta": v["global_delta"], "loss": v["loss"],
                                                            "loss_proof": v["loss_proof"], "sigma2": s2})
                rows.append({"seed": seed, "n": st.graph.num_nodes, "depth": L0, "sigma": sig, "lambda": st.lam,
                             "alpha": thy.expansion_rate(v["spectral_norm"], st.lam),
                             **{k: v[k] for k in ("global_delta", "inner_delta", "loss", "loss_proof")}})
                d = v["global_delta"]
                for store_list, lval, key, paper_loss in ((cor2, v["loss_proof"], "keriven.cor2", "App. A.6–A.7 loss, no ½"),
                                                          (cor2_eq3, v["loss"], "keriven.cor2.eq3_loss", "eq. (3) loss, with ½")):
                    store_list.append(Verdict(
                        name=key, paper="Keriven, Cor 2, eq. (14) (App. A.7)",
                        statement=f"W⁽ᴸ⁾ = 0 with centered labels is a global δ-stationary point with 𝓛 ≥ σ_y² − δ ({paper_loss})",
                        holds=bool(lval >= s2 - d), margin=float(lval - (s2 - d)),
                        where=f"L = {L0}, n = {st.graph.num_nodes}, σ_y² = {s2:.4g}: loss {lval:.4g}, δ = {d:.3g}",
                        assumptions=assumptions, applicable=all(assumptions.values()),
                        details={"sigma2": s2, "loss": lval, "delta": d, "loss_eq3": v["loss"], "loss_proof": v["loss_proof"]}))
                bar.advance(1)
            # the open set: random perturbations within s ≤ λ^{−α}
            y, _ = targets(st, loss, "centered", 1.0)
            s2 = float((y ** 2).sum(1).mean())
            s_cap = st.lam ** (-spec.alpha)
            gen = torch.Generator().manual_seed(10_000 + seed)
            for mode in ("hidden", "all"):
                for ir, r in enumerate(spec.radii):
                    for j in range(spec.perturbations):
                        model = _point(st, spec.model, y, loss, L0, seed, spec.torch_dtype)
                        thy.perturb_weights(model, r, s_cap, gen)
                        if mode == "hidden":
                            thy.zero_output_layer(model)
                        v = _eval(model, st, y, loss)
                        for q in ("global_delta", "loss_proof"):
                            rec.add(f"perturb-{mode}", seed, j, q, v[q], layer=ir)
                        pert_rows.append({"seed": seed, "mode": mode, "radius": r, "draw": j,
                                          "global_delta": v["global_delta"], "loss_proof": v["loss_proof"],
                                          "sigma2": s2, "s_max": max(v["spectral_norm"])})
                    bar.advance(1)
    table = pd.DataFrame(rows)
    pert = pd.DataFrame(pert_rows)
    verdicts, summary = _verdicts(spec, table, pert, cor2, cor2_eq3, n_default or ns[-1], s_cap, a14)
    for i, n in enumerate(sorted(notes_seen)):
        summary[f"assumption note {i + 1}"] = n
    return ExperimentResult(verdicts=verdicts, tables={"points": table, "perturbations": pert}, summary=summary)


def _verdicts(spec, table: pd.DataFrame, pert: pd.DataFrame, cor2, cor2_eq3, n0: int, s_cap: float,
              a14: dict[str, bool]):
    out = [aggregate(cor2, label="point"), aggregate(cor2_eq3, label="point")]
    summary: dict = {}
    q = 2
    d = table[(table["n"] == n0) & (table["sigma"] == 1.0)].groupby("depth").median(numeric_only=True)
    lam = float(d["lambda"].median())
    alpha = float(table["alpha"].max())
    a_ok = alpha < 1 and thy.xi(q, alpha) > 0
    pred = thy.xi(q, alpha) * math.log(1 / lam) if a_ok else 0.0
    out.append(thy.check_rate(
        "keriven.cor2.rate", "Keriven, Cor 2 via Thm 4 (eq. (16))",
        "at W⁽ᴸ⁾ = 0 with centered labels, δ ≲ λ^(ξ₂(α)L) + λ^(−αL)‖1ᵀB⁽ᴸ⁾‖: fitted decay rate of δ(L) ≥ ξ₂(α)log(1/λ)",
        d.index.to_numpy(dtype=float), d["global_delta"], pred,
        assumptions={**a14, f"s ≤ λ^(−α) with ξ₂(α) > 0 (α = {alpha:.3g})": bool(a_ok)},
        what=f"n = {n0}, σ_y = 1", details={"alpha": alpha, "lambda": lam}))
    # open set
    ok_r, bad = [], []
    for (mode, r), g in pert.groupby(["mode", "radius"]):
        good = bool((g["global_delta"] <= spec.delta).all() and (g["loss_proof"] >= g["sigma2"] - spec.delta).all())
        (ok_r if good else bad).append((mode, r))
        summary[f"perturb {mode} r={r:g}: max delta / min loss_proof"] = (
            f"{g['global_delta'].max():.3g} / {g['loss_proof'].min():.4g}")
    r_star = {}
    for m in ("hidden", "all"):  # the largest r such that every radius ≤ r keeps every draw inside
        r_star[m] = 0.0
        for r in sorted(spec.radii):
            if (m, r) not in ok_r:
                break
            r_star[m] = r
    out.append(Verdict(
        name="keriven.cor2.open_set", paper="Keriven, remark after Cor 2",
        statement=f"a non-empty open set of weights (s ≤ λ^(−α), α = {spec.alpha:g}) around the Cor 2 points has "
                  f"δ ≤ {spec.delta:g} and a loss ≥ σ_y² − {spec.delta:g} (proofs' loss)",
        holds=bool(r_star["all"] > 0), margin=float(r_star["all"]),
        where=f"largest radius with every perturbed point inside: {r_star['all']:g} (every layer perturbed), "
              f"{r_star['hidden']:g} (hidden layers only, W⁽ᴸ⁾ = 0 kept); s cap λ^(−α) = {s_cap:.4g}",
        assumptions={**a14, f"ξ₂(α) > 0 for α = {spec.alpha:g}": bool(thy.xi(2, spec.alpha) > 0)},
        applicable=bool(thy.xi(2, spec.alpha) > 0) and all(a14.values()),
        details={"r_star_all": r_star["all"], "r_star_hidden": r_star["hidden"], "delta": spec.delta,
                 "failing": [list(x) for x in bad]}))
    summary["lambda"] = lam
    summary["alpha at the Cor 2 points"] = alpha
    summary["fitted rate of delta(L) / predicted xi_2(alpha)log(1/lambda)"] = (
        f"{out[2].details['fitted_rate']:.4g} / {pred:.4g} (ratio {out[2].details['ratio']:.3g})")
    deep = table[(table["depth"] == table["depth"].max()) & (table["sigma"] == 1.0)].groupby("n").median(numeric_only=True)
    for n, r in deep.iterrows():
        summary[f"L = {int(table['depth'].max())}, n = {int(n)}: global delta / loss (eq. 3) / loss (proofs)"] = (
            f"{r['global_delta']:.3g} / {r['loss']:.4g} / {r['loss_proof']:.4g}")
    for v in cor2:
        summary[f"sigma_y^2 = {v.details['sigma2']:.4g}: loss (proofs) / loss (eq. 3) / delta"] = (
            f"{v.details['loss_proof']:.4g} / {v.details['loss_eq3']:.4g} / {v.details['delta']:.3g}")
    return out, summary


def figures_spurious(store: RunStore) -> dict:
    from gnndyn.report.plots import finish_figure, new_figure

    pts = store.table("points")
    pert = store.table("perturbations")
    spec = store.spec()
    fig, (a1, a2, a3) = new_figure(3)
    for n, g in pts[pts["sigma"] == 1.0].groupby("n"):
        m = g.groupby("depth").median(numeric_only=True)
        a1.plot(m.index, m["global_delta"], marker="o", label=f"n = {n}")
    a1.set(yscale="log", xlabel="depth L", ylabel="global δ", title="Cor 2 points (W⁽ᴸ⁾ = 0, σ_y = 1)")
    sig = pts[pts["depth"] == spec["model"]["depth"]].groupby("sigma").median(numeric_only=True)
    s2 = sig.index.to_numpy() ** 2
    a2.plot(s2, sig["loss_proof"], "o-", label="loss of the proofs (no ½)")
    a2.plot(s2, sig["loss"], "s--", label="loss of eq. (3) (with ½)")
    a2.plot(s2, s2, "k:", label="σ_y²")
    a2.set(xlabel="σ_y²", ylabel="loss", title=f"loss at the Cor 2 point (L = {spec['model']['depth']})")
    for mode, mk in (("hidden", "o"), ("all", "s")):
        g = pert[pert["mode"] == mode].groupby("radius")["global_delta"]
        a3.plot(g.max().index, g.max(), marker=mk, label=f"max δ, {mode} layers perturbed")
    a3.axhline(spec["delta"], color="k", ls=":", label=f"δ = {spec['delta']:g}")
    a3.set(xscale="log", yscale="log", xlabel="perturbation radius r", ylabel="global δ", title="the open set")
    return finish_figure(fig, "cor2_spurious_stationary_points", (a1, a2, a3),
                         title="Spurious stationary points (Keriven Cor 2)")


register(Experiment(
    name="spurious-stationary-points",
    description="Keriven Cor 2: W⁽ᴸ⁾ = 0 with centered labels — global δ and loss vs σ_y² for growing L and n; "
                "random perturbations within the admissible α",
    paper="Keriven, Backward oversmoothing, Cor 2 (App. A.7)",
    spec_cls=SpuriousStationarySpec,
    run=run_spurious,
    figures=figures_spurious,
    smoke={"graph.n": 200, "graph.p_in": 0.2, "graph.p_out": 0.04, "model.width": 8, "model.depth": 12,
           "depths": [4, 8, 12], "ns": [100, 200], "radii": [1e-4, 1e-1], "perturbations": 2},
))
