r"""``patel-fig3`` — Patel, Savostianov & Schaub (arXiv 2501.14440), Fig. 3: gradient flow on G(200, p),
p ∈ {0.03, 0.05, 0.1, 0.2}, operators Adj, L, Nor. L; d_x = 50, H = 2, d₁ = d₂ = 32, Remark 3.3's start with a = 2,
n̄ = 0.75n, targets :math:`y_i = \sum_jx_{ij} + 0.1\sum_{j\sim i}\sum_kx_{jk}` (§6.1.2).

Per run: the relative loss :math:`(\mathcal L(T) - \tilde L_H)/(\mathcal L(0) - \tilde L_H)` with Thm 3.1's bound
:math:`e^{-\beta\sigma^2_{small}T/m}` (β = a²/4^{H−1}), σ_small((XS^H)_{*I}), the measured rate (least-squares slope of
log relative loss) against βσ²_small/m, Thm 3.1 along the flow, its hypothesis (3.8) (printed and as the proof
needs it), Thm 3.2's PL ratio and ball along the path, Remark 3.3's thresholds for a = 2
(:func:`gnndyn.experiments.patel.common.run_checks`). Horizon: the flow runs until the relative loss is 10⁻⁹ or
T = 25/(βσ²_small/m) (where the bound is e⁻²⁵); the paper's axes (Adj 0–0.3, L 0–0.006, Nor. L 0–1) differ per
operator, which the per-run horizon replaces. ``t_level``: the first time the relative loss is ≤ 10⁻⁶.

Claims of §6.1.2 (verdicts over seeds): for Adj and L sparser graphs converge slower (t_level decreasing in p) and
σ_small grows with p; L converges faster than Adj at every p; Nor. L is the least affected by p and its σ_small
decreases with p (denser can be slower). Paper-size (default) runs take about a minute; ``--set seeds=5``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gnndyn.experiments.base import Experiment, register
from gnndyn.experiments.patel import sweep as S
from gnndyn.experiments.patel.common import with_torch_threads


class PatelFig3Spec(S.SweepSpec):
    """Spec of ``patel-fig3``."""

    experiment: Literal["patel-fig3"] = "patel-fig3"
    family: str = "erdos-renyi"
    n: int = Field(200, ge=2)
    params: list[float] = Field(default_factory=lambda: [0.03, 0.05, 0.1, 0.2])


def unnormalized_claims(runs, spec, fig: str, where: str, what: str) -> list:
    """Sparser is slower for Adj and L (and their σ_small grows with the parameter); L faster than Adj."""
    out = []
    ops = set(spec.operators)
    if len(spec.params) < 2:
        return out
    for op in ("adj", "lap"):
        if op in ops:
            out.append(S.monotone(runs, op, "t_level", decreasing=True, name=f"patel.{fig}.sparser_slower.{op}", where=where,
                                  statement=f"{S.C.LABELS[op]}: sparser {what} converge slower (time to relative loss "
                                            f"{spec.level:g} decreases with the parameter)"))
            out.append(S.monotone(runs, op, "sigma_small", decreasing=False, name=f"patel.{fig}.sigma_grows.{op}", where=where,
                                  statement=f"{S.C.LABELS[op]}: σ_small((XS^H)_{{*I}}) grows with the parameter"))
    if {"adj", "lap"} <= ops:
        out.append(S.faster(runs, "lap", "adj", name=f"patel.{fig}.lap_faster_than_adj", where=where,
                            statement="L reaches the relative loss level before Adj at every parameter"))
    return out


def claims_fig3(runs, spec) -> list:
    out = unnormalized_claims(runs, spec, "fig3", "§6.1.2, Fig. 3", "G(n,p)")
    if "nor-lap" in spec.operators and len(spec.params) >= 2 and len(spec.operators) > 1:
        out.append(S.least_affected(runs, "nor-lap", "t_level", name="patel.fig3.norlap_least_affected",
                                    where="§6.1.2, Fig. 3", statement="Nor. L is 'remarkably stagnant': its time to the "
                                    "level varies least over p of all operators"))
        out.append(S.monotone(runs, "nor-lap", "sigma_small", decreasing=True, name="patel.fig3.norlap_sigma_decreases",
                              where="§6.1.2, Fig. 3", statement="Nor. L: σ_small decreases with p (denser can be slower)"))
    return out


run_fig3 = with_torch_threads(lambda spec, ctx: S.run_sweep(spec, ctx, "fig3", claims_fig3))


def figures_fig3(store):
    return {f"fig3_{k}": v for k, v in S.figures_sweep(store, "Fig. 3: G(n, p), gradient flow (bound dashed)", "p").items()}


register(Experiment(
    name="patel-fig3",
    description="Patel et al. Fig. 3: gradient flow on G(200, p) with Adj, L, Nor. L; Thm 3.1's bound and σ_small",
    paper="Patel et al. 2025, Fig. 3, Thm 3.1, Remark 3.3",
    spec_cls=PatelFig3Spec, run=run_fig3, figures=figures_fig3,
    smoke={"n": 40, "d_x": 8, "width": 6, "params": [0.1, 0.3], "seeds": 1, "points": 40, "stop_level": 1e-6},
))
