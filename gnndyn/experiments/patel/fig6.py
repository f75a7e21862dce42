r"""``patel-fig6`` — Patel, Savostianov & Schaub (arXiv 2501.14440), Fig. 6: gradient flow on the two-block
SBM(66, 134, 0.15, q), q ∈ {0.001, 0.01, 0.05, 0.1} (blocks in the ratio 66 : 134 of n, within-block p = ``sbm_p``),
operators Adj, L, Nor. L, set-up of Fig. 3. Horizon and checks as in ``patel-fig3``.

Claims (verdicts over seeds): Adj's σ_small is the most sensitive to q of the three operators; q matters only once
the blocks are well mixed (the change of the time to the level from q = 0.01 to the largest q exceeds the change
from the smallest q to 0.01, every operator); for Adj and L more mixing (more edges) is faster.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from gnndyn.experiments.base import Experiment, register
from gnndyn.experiments.patel import sweep as S
from gnndyn.experiments.patel.common import claim, with_torch_threads
from gnndyn.experiments.patel.fig3 import unnormalized_claims


class PatelFig6Spec(S.SweepSpec):
    """Spec of ``patel-fig6``."""

    experiment: Literal["patel-fig6"] = "patel-fig6"
    family: str = "sbm"
    n: int = Field(200, ge=2)
    params: list[float] = Field(default_factory=lambda: [0.001, 0.01, 0.05, 0.1])


def claims_fig6(runs, spec) -> list:
    W = "§6.1.2, Fig. 6"
    out = unnormalized_claims(runs, spec, "fig6", W, "(less mixed) SBMs")
    ops, qs = sorted(set(spec.operators)), sorted(spec.params)
    if "adj" in ops and len(ops) > 1 and len(qs) >= 2:
        out.append(_most_sensitive(runs, "adj", W))
    if len(qs) >= 3:
        worst, at, det = math.inf, "", {}
        for op in ops:
            t = {q: runs[(runs.operator == op) & (runs.param == q)]["t_level"].median() for q in qs}
            low = abs(_log_ratio(t[qs[1]], t[qs[0]]))
            high = abs(_log_ratio(t[qs[-1]], t[qs[1]]))
            det[op] = {"low_q_change": low, "high_q_change": high}
            if math.isnan(high - low) or high - low < worst:  # nan (level never reached) sticks: the claim fails
                worst, at = high - low, S.C.LABELS[op]
        out.append(claim("patel.fig6.q_matters_when_mixed", W, f"q matters only when well mixed: |log t(q={qs[-1]:g}) − "
                         f"log t(q={qs[1]:g})| > |log t(q={qs[1]:g}) − log t(q={qs[0]:g})| (medians), every operator",
                         worst > 0, worst, at, changes=det))
    return out


def _log_ratio(x: float, y: float) -> float:
    """log(x/y) of two times, ±inf when just one is inf (a flow that never reached the level), nan when both are."""
    if math.isfinite(x) and math.isfinite(y):
        return math.log(x / y)
    return math.nan if x == y else (math.inf if x > y else -math.inf)


def _most_sensitive(runs, op, W):
    sp = S.spread(runs, op, "sigma_small")
    others = {o: S.spread(runs, o, "sigma_small") for o in sorted(set(runs.operator)) if o != op}
    m = max(others.values())
    return claim("patel.fig6.adj_most_sensitive", W, "Adj's σ_small varies most over q (max/min over q) of the operators",
                 sp > m, math.log(sp) - math.log(m), "median over seeds", spread=sp, spread_other_operators=others,
                 sigma=np.round(runs[runs.operator == op].groupby("param")["sigma_small"].median(), 6).to_dict())


run_fig6 = with_torch_threads(lambda spec, ctx: S.run_sweep(spec, ctx, "fig6", claims_fig6))


def figures_fig6(store):
    return {f"fig6_{k}": v for k, v in
            S.figures_sweep(store, "Fig. 6: SBM(66, 134, 0.15, q), gradient flow (bound dashed)", "q").items()}


register(Experiment(
    name="patel-fig6",
    description="Patel et al. Fig. 6: gradient flow on SBM(66, 134, 0.15, q) with Adj, L, Nor. L",
    paper="Patel et al. 2025, Fig. 6, Thm 3.1",
    spec_cls=PatelFig6Spec, run=run_fig6, figures=figures_fig6,
    smoke={"n": 40, "d_x": 8, "width": 6, "params": [0.01, 0.05, 0.2], "sbm_p": 0.3, "seeds": 1, "points": 40, "stop_level": 1e-6},
))
