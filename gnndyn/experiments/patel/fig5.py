r"""``patel-fig5`` — Patel, Savostianov & Schaub (arXiv 2501.14440), Fig. 5: gradient flow on the k-NN ring
:math:`K_k(n)`, k ∈ {8, 12, 20, 30}, operators Adj, L, Nor. L, set-up of Fig. 3 (d_x = 50, H = 2, d₁ = d₂ = 32, a = 2,
n̄ = 0.75n). n = 200 as in the text of §6.1.2 (the caption says n = 500: ``--set n=500``). Horizon and checks as in
``patel-fig3``.

Claims (verdicts over seeds; the ring is deterministic, seeds vary features and I): the sparsest ring (k = 8) is the
slowest for Adj and L and the fastest for Nor. L; moderate k (12, 20) give nearly the same trajectories (times to
the level within a factor 1.5 for every operator); Adj behaves close to Nor. L (σ_small within a factor 2 at
every k); L faster than Adj.

Cost: Adj's flows on the denser rings are the stiffest of Figs. 3–7 (≈ 10⁵ RK45 steps at k = 20–30); each flow stops
at ``max_wall_s`` (600 s), which on a loaded 2-core machine the k = 30 runs reached before the relative loss 10⁻⁶.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from gnndyn.experiments.base import Experiment, register
from gnndyn.experiments.patel import sweep as S
from gnndyn.experiments.patel.common import claim, with_torch_threads


class PatelFig5Spec(S.SweepSpec):
    """Spec of ``patel-fig5``."""

    experiment: Literal["patel-fig5"] = "patel-fig5"
    family: str = "knn-ring"
    n: int = Field(200, ge=2)
    params: list[float] = Field(default_factory=lambda: [8, 12, 20, 30])


def _t(runs, op, k):
    return runs[(runs.operator == op) & (runs.param == k)].set_index("seed")["t_level"]


def claims_fig5(runs, spec) -> list:
    out, ops, ks = [], set(spec.operators), sorted(spec.params)
    W = "§6.1.2, Fig. 5"
    if len(ks) >= 2:
        k0 = ks[0]
        for op, slowest in (("adj", True), ("lap", True), ("nor-lap", False)):
            if op not in ops:
                continue
            t0 = _t(runs, op, k0)
            rest = np.array([_t(runs, op, k).to_numpy() for k in ks[1:]])  # params × seeds
            lr = np.log(t0.to_numpy()[None, :] / rest)
            margin = float(lr.min()) if slowest else float(-lr.max())
            out.append(claim(f"patel.fig5.sparsest_{'slowest' if slowest else 'fastest'}.{op}", W,
                             f"{S.C.LABELS[op]}: the sparsest ring (k = {k0:g}) converges "
                             f"{'slowest' if slowest else 'fastest'} (time to relative loss {spec.level:g})",
                             margin > 0, margin, "worst seed and k", t_sparsest=t0.to_dict(),
                             t_others={f"{k:g}": _t(runs, op, k).to_dict() for k in ks[1:]}))
    mid = [k for k in ks if 8 < k < 30]
    if len(mid) >= 2:
        worst, at = math.inf, ""
        for op in sorted(ops):
            r = abs(float(np.log(_t(runs, op, mid[0]) / _t(runs, op, mid[-1])).abs().max()))
            if math.log(1.5) - r < worst:
                worst, at = math.log(1.5) - r, f"{S.C.LABELS[op]}"
        out.append(claim("patel.fig5.moderate_k_alike", W, f"moderate k ({mid[0]:g}, {mid[-1]:g}) give nearly the same "
                         "trajectories: times to the level within a factor 1.5, every operator", worst >= 0, worst, at))
    if {"adj", "nor-lap"} <= ops:
        a = runs[runs.operator == "adj"].set_index(["seed", "param"])["sigma_small"]
        b = runs[runs.operator == "nor-lap"].set_index(["seed", "param"])["sigma_small"]
        r = np.abs(np.log(a / b))
        out.append(claim("patel.fig5.adj_close_to_norlap", W, "Adj behaves close to Nor. L: σ_small within a factor 2 "
                         "at every k", bool((r <= math.log(2)).all()), float(math.log(2) - r.max()),
                         f"seed/k {r.idxmax()}", ratio={f"{k[0]}/{k[1]:g}": float(v) for k, v in (a / b).items()}))
    if {"adj", "lap"} <= ops:
        out.append(S.faster(runs, "lap", "adj", name="patel.fig5.lap_faster_than_adj", where=W,
                            statement="L reaches the relative loss level before Adj at every k"))
    return out


run_fig5 = with_torch_threads(lambda spec, ctx: S.run_sweep(spec, ctx, "fig5", claims_fig5))


def figures_fig5(store):
    return {f"fig5_{k}": v for k, v in S.figures_sweep(store, "Fig. 5: K_k(n), gradient flow (bound dashed)", "k").items()}


register(Experiment(
    name="patel-fig5",
    description="Patel et al. Fig. 5: gradient flow on the k-NN ring K_k(200) with Adj, L, Nor. L",
    paper="Patel et al. 2025, Fig. 5, Thm 3.1",
    spec_cls=PatelFig5Spec, run=run_fig5, figures=figures_fig5,
    smoke={"n": 40, "d_x": 8, "width": 6, "params": [4, 10], "seeds": 1, "points": 40, "stop_level": 1e-6},
))
