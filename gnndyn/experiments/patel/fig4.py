r"""``patel-fig4`` — Patel, Savostianov & Schaub (arXiv 2501.14440), Fig. 4: the per-layer normalized gradient flow
of Remark 6.1, :math:`\dot W_\ell = -\nabla_{W_\ell}\mathcal L/\|\nabla_{W_\ell}\mathcal L\|_F`, on G(500, p),
p ∈ {0.02, 0.05, 0.1, 0.25}, operators Adj, L, Nor. L, with the set-up of Fig. 3 (d_x = 50, H = 2, d₁ = d₂ = 32,
a = 2, n̄ = 0.75n).

The paper gives no rate for this flow, so Thm 3.1's bound is not drawn and not checked; the hypothesis (3.8) and
Remark 3.3's thresholds are still reported (they concern the start). Horizons are the paper's axes (Adj 2.5,
L 0.25, Nor. L 5), integrated by adaptive RK45 (rtol 10⁻⁶) until the relative loss is 10⁻⁶ or 20 000 steps: the
field has unit speed per layer, so near the minimum it chatters and the solver's steps shrink. A fixed step is
not an option: the field turns on a length scale that shrinks with σ_max(Z) (on G(500, 0.25), Adj, RK4 at T/2000
never got below 0.083, at T/8000 it reached 10⁻² at T = 1.09, the adaptive solver at T = 0.028).
``t_level``: first time the relative loss is ≤ 10⁻³.

Claims (verdicts over seeds): for Adj and L sparser is slower and σ_small grows with p; L faster than Adj; Nor. L
the least affected by p (the paper "posits" the same qualitative picture as for the plain flow).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gnndyn.experiments.base import Experiment, register
from gnndyn.experiments.patel import sweep as S
from gnndyn.experiments.patel.common import with_torch_threads
from gnndyn.experiments.patel.fig3 import unnormalized_claims


class PatelFig4Spec(S.SweepSpec):
    """Spec of ``patel-fig4``."""

    experiment: Literal["patel-fig4"] = "patel-fig4"
    family: str = "erdos-renyi"
    n: int = Field(500, ge=2)
    params: list[float] = Field(default_factory=lambda: [0.02, 0.05, 0.1, 0.25])
    rule: str = "normalized-flow"
    horizons: dict[str, float] = Field(default_factory=lambda: {"adj": 2.5, "lap": 0.25, "nor-lap": 5.0})
    level: float = Field(1e-3, gt=0, lt=1)
    stop_level: float = Field(1e-6, ge=0)
    max_steps: int = Field(20_000, ge=10)
    rtol: float = Field(1e-6, gt=0)


def claims_fig4(runs, spec) -> list:
    out = unnormalized_claims(runs, spec, "fig4", "Remark 6.1, Fig. 4", "G(n,p)")
    if "nor-lap" in spec.operators and len(spec.params) >= 2 and len(spec.operators) > 1:
        out.append(S.least_affected(runs, "nor-lap", "t_level", name="patel.fig4.norlap_least_affected",
                                    where="Remark 6.1, Fig. 4",
                                    statement="Nor. L's time to the level varies least over p of all operators"))
    return out


run_fig4 = with_torch_threads(lambda spec, ctx: S.run_sweep(spec, ctx, "fig4", claims_fig4))


def figures_fig4(store):
    return {f"fig4_{k}": v for k, v in
            S.figures_sweep(store, "Fig. 4: G(n, p), per-layer normalized flow (Remark 6.1)", "p").items()}


register(Experiment(
    name="patel-fig4",
    description="Patel et al. Fig. 4: per-layer normalized gradient flow (Remark 6.1) on G(500, p), Adj, L, Nor. L",
    paper="Patel et al. 2025, Fig. 4, Remark 6.1",
    spec_cls=PatelFig4Spec, run=run_fig4, figures=figures_fig4,
    smoke={"n": 40, "d_x": 8, "width": 6, "params": [0.1, 0.3], "seeds": 1, "points": 40},
))
