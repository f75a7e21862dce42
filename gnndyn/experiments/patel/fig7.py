r"""``patel-fig7`` — Patel, Savostianov & Schaub (arXiv 2501.14440), Fig. 7: gradient flow on Barabási–Albert
BA(200, m), m ∈ {3, 5, 10, 20}, operators Adj, L, Nor. L, set-up of Fig. 3. Horizon and checks as in ``patel-fig3``.

Claims (verdicts over seeds): for the smallest m, Adj's σ_small is as small as the smallest operator's (within a
factor 1.5); Nor. L is nearly independent of the structure (times to the level within a factor 2 over m); for Adj
and L sparser is slower; L faster than Adj.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from gnndyn.experiments.base import Experiment, register
from gnndyn.experiments.patel import sweep as S
from gnndyn.experiments.patel.common import claim, with_torch_threads
from gnndyn.experiments.patel.fig3 import unnormalized_claims


class PatelFig7Spec(S.SweepSpec):
    """Spec of ``patel-fig7``."""

    experiment: Literal["patel-fig7"] = "patel-fig7"
    family: str = "barabasi-albert"
    n: int = Field(200, ge=2)
    params: list[float] = Field(default_factory=lambda: [3, 5, 10, 20])


def claims_fig7(runs, spec) -> list:
    W = "§6.1.2, Fig. 7"
    out = unnormalized_claims(runs, spec, "fig7", W, "BA graphs")
    ops = sorted(set(spec.operators))
    m0 = min(spec.params)
    if "adj" in ops and len(ops) > 1:
        sig = runs[runs.param == m0].groupby("operator")["sigma_small"].median()
        r = sig["adj"] / sig.drop("adj").min()
        out.append(claim("patel.fig7.adj_small_at_small_m", W, f"for m = {m0:g} Adj's σ_small is as small as the "
                         "smallest operator's (within a factor 1.5)", r <= 1.5, math.log(1.5) - math.log(r),
                         f"m = {m0:g}", sigma=sig.round(6).to_dict(), ratio=float(r)))
    if "nor-lap" in ops and len(spec.params) >= 2:
        out.append(S.flat(runs, "nor-lap", "t_level", 2.0, name="patel.fig7.norlap_structure_independent", where=W,
                          statement="Nor. L is nearly independent of the structure: times to the level within a "
                                    "factor 2 over m"))
    return out


run_fig7 = with_torch_threads(lambda spec, ctx: S.run_sweep(spec, ctx, "fig7", claims_fig7))


def figures_fig7(store):
    return {f"fig7_{k}": v for k, v in S.figures_sweep(store, "Fig. 7: BA(n, m), gradient flow (bound dashed)", "m").items()}


register(Experiment(
    name="patel-fig7",
    description="Patel et al. Fig. 7: gradient flow on Barabási–Albert BA(200, m) with Adj, L, Nor. L",
    paper="Patel et al. 2025, Fig. 7, Thm 3.1",
    spec_cls=PatelFig7Spec, run=run_fig7, figures=figures_fig7,
    smoke={"n": 40, "d_x": 8, "width": 6, "params": [2, 6], "seeds": 1, "points": 40, "stop_level": 1e-6},
))
