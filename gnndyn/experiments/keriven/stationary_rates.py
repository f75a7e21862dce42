r"""The rates over depth of ``stationary-output-layer`` (Keriven, Thm 3, Thm 4 and Cor 1): the depth window a rate is
fitted over, the per-seed tally, and the verdicts with the run's summary. The per-depth measurements come from
:mod:`.stationary`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from gnndyn.errors import GnndynError
from gnndyn.theory import keriven as thy
from gnndyn.theory.verdict import Verdict

if TYPE_CHECKING:
    from gnndyn.experiments.keriven.stationary import StationaryOutputLayerSpec


def _fit_window(d: pd.DataFrame, q: int, case: int, fit_from: int) -> tuple[list[int], bool]:
    """Depths from which the α-condition holds at every larger depth (≥ 3 of them), else those ≥ fit_from."""
    ok = {int(L): bool(thy.xi(q, a) > 0 and (q == 2 or case == 1 or a < 1 / 3)) if a < 1 else False
          for L, a in d.groupby("depth")["alpha"].max().items()}
    depths = sorted(ok)
    tail = []
    for L in reversed(depths):
        if not ok[L]:
            break
        tail.insert(0, L)
    if len(tail) >= 3:
        return tail, True
    win = [L for L in depths if L >= fit_from]
    return (win if len(win) >= 2 else depths), False


def _seeds_holding(d: pd.DataFrame, column: str, predicted: float) -> str:
    """'held/total': the rate check on each seed's own depth sweep (the verdict fits the median over seeds)."""
    held = total = 0
    for _, g in d.groupby("seed"):
        g = g.sort_values("depth")
        try:
            fit = thy.fit_exponent(g["depth"].to_numpy(dtype=float), g[column].to_numpy())
        except GnndynError:  # a seed without ≥ 2 positive values counts as not holding
            total += 1
            continue
        total += 1
        held += bool(predicted <= 0 or fit.rate + thy.rates.TOL_SE * fit.stderr >= predicted)
    return f"{held}/{total}"


def rate_verdicts(spec: StationaryOutputLayerSpec, table: pd.DataFrame,
                  task_assumptions: dict[str, dict[str, bool]]) -> tuple[list[Verdict], dict]:
    r"""The rate verdicts of ``stationary-output-layer`` over depths, and the run summary: per task, Thm 3
    (global δ against λ^(ξ_q(α)L) + λ^(−αL)·(δ̄ or √δ̄), eqs. (25), (28), (30)), Thm 4 (global δ against
    λ^(ξL) + λ^(−αL)‖1ᵀB⁽ᴸ⁾‖, eq. (16)) and Cor 1 (ℰ(B^(βL)) for each β, eq. (8)), fitted over the depths of
    :func:`_fit_window` on the median over seeds; each verdict also says on how many seeds it holds alone."""
    out: list[Verdict] = []
    summary: dict = {}
    for task in spec.tasks:
        d_all = table[(table["task"] == task) & (table["variant"] != "exact")]
        if d_all.empty:
            continue
        q, case = int(d_all["q"].iloc[0]), int(d_all["case"].iloc[0])
        depths, cond = _fit_window(d_all, q, case, spec.fit_from)
        d = d_all[d_all["depth"].isin(depths)]
        med = d.groupby("depth").median(numeric_only=True)
        lam = float(med["lambda"].median())
        log1l = math.log(1 / lam)
        alpha = float(d["alpha"].max())
        a_ok = alpha < 1 and thy.xi(q, alpha) > 0
        xi_rate = thy.thm3_exponent(q, alpha, case) * log1l if a_ok else 0.0
        Ls = med.index.to_numpy(dtype=float)
        a_hid = float(d["alpha_hidden"].max())
        xi_hidden = thy.thm3_exponent(q, a_hid, case) * log1l if a_hid < 1 and thy.xi(q, a_hid) > 0 else 0.0
        g_fit = thy.fit_exponent(Ls, med["global_delta"])
        cond_key = ("s ≤ λ^{−α} with ξ_q(α) > 0 at every fitted depth (paper's max-s form)"
                    + (" and α < 1/3" if q == 1 and case == 2 else ""))
        a14 = task_assumptions.get(task, {})
        assumptions = {**a14, cond_key: bool(cond)}
        head = f"{task} (q = {q}, case {case})"
        # Thm 3: global δ vs the right-hand side λ^{ξL} + λ^{−αL}·(δ̄ or √δ̄)
        dbar_fit = thy.fit_exponent(Ls, med["delta_bar"])
        dbar_rate = (dbar_fit.rate if case == 1 else dbar_fit.rate / 2) - alpha * log1l
        pred3 = min(xi_rate, dbar_rate) if a_ok else 0.0
        inner_fit = thy.fit_exponent(Ls, med["inner_delta"]) if med["inner_delta"].gt(0).sum() >= 2 else None
        v3 = thy.check_rate(
            f"keriven.thm3.{task}", f"Keriven, Thm 3 case {case} (eqs. (25), (28), (30))",
            f"{head}: a δ̄-stationary output layer is a global δ-stationary point, δ ≲ λ^(ξ_q(α)L) + "
            f"λ^(−αL)·{'δ̄' if case == 1 else '√δ̄'}: fitted decay rate of δ(L) ≥ predicted",
            Ls, med["global_delta"], pred3, assumptions=assumptions, what=f"{head}, global δ over L = {depths}",
            details={"xi_q_alpha_rate": xi_rate, "ratio_to_xi_rate": g_fit.rate / xi_rate if xi_rate > 0 else None,
                     "thm4_rate_from_proof": thy.thm4_exponent_from_proof(q, alpha) * log1l if a_ok else None,
                     "alpha_hidden_layers": a_hid, "xi_rate_hidden_alpha": xi_hidden,
                     "ratio_to_xi_rate_hidden_alpha": g_fit.rate / xi_hidden if xi_hidden > 0 else None,
                     "alpha": alpha, "xi_q_alpha": thy.xi(q, alpha) if alpha < 1 else None, "lambda": lam,
                     "delta_bar_rate": dbar_fit.rate, "delta_bar_term_rate": dbar_rate,
                     "inner_delta_rate": inner_fit.rate if inner_fit else None,
                     "inner_ratio_to_xi_rate": (inner_fit.rate / xi_rate) if inner_fit and xi_rate > 0 else None,
                     "depths": depths, "D_F": med["D_F"].tolist(),
                     "seeds_held": _seeds_holding(d, "global_delta", pred3)})
        out.append(v3)
        # Thm 4: global δ vs λ^{ξL} + λ^{−αL}‖1ᵀB⁽ᴸ⁾‖
        eps_fit = thy.fit_exponent(Ls, med["mean_output_error"])
        pred4 = min(xi_rate, eps_fit.rate - alpha * log1l) if a_ok else 0.0
        out.append(thy.check_rate(
            f"keriven.thm4.{task}", "Keriven, Thm 4, eq. (16)",
            f"{head}: δ ≲ λ^(ξ_q(α)L) + λ^(−αL)‖1ᵀB⁽ᴸ⁾‖: fitted decay rate of δ(L) ≥ predicted",
            Ls, med["global_delta"], pred4, assumptions=assumptions, what=f"{head}, global δ",
            details={"xi_q_alpha_rate": xi_rate, "mean_output_error_rate": eps_fit.rate, "alpha": alpha,
                     "seeds_held": _seeds_holding(d, "global_delta", pred4)}))
        # Cor 1: ℰ(B^(βL)) for each β
        lo, hi = thy.beta_range_cor1(q, alpha) if alpha < 1 else (math.inf, -math.inf)
        for b in spec.betas:
            pred = thy.cor1_exponent(q, alpha, b) * log1l if alpha < 1 else 0.0
            a1 = {**a14, f"α < 1 − √(1 − 1/q) and qα < β < (1−qα)/(1−α) (α = {alpha:.3g})":
                  bool(cond and alpha < (thy.alpha_max_cor1(q) if q > 1 else 1) and lo < b < hi)}
            out.append(thy.check_rate(
                f"keriven.cor1.{task}.beta={b:g}", "Keriven, Cor 1, eq. (8)",
                f"{head}: ℰ(B^(βL)) ≲ (λ^((β−qα)L) + λ^((1−qα−(1−α)β)L))/n at β = {b:g}",
                Ls, med[f"E_B_beta_{b:g}"], pred, assumptions=a1, what=f"{head}, ℰ(B^({b:g}L))",
                details={"beta": b, "alpha": alpha, "beta_range": [lo, hi],
                         "seeds_held": _seeds_holding(d, f"E_B_beta_{b:g}", pred)}))
        summary[f"{task}: fitted depths"] = str(depths)
        summary[f"{task}: alpha (max over fitted depths)"] = alpha
        summary[f"{task}: predicted rate (Thm 3 exponent x log(1/lambda))"] = xi_rate
        summary[f"{task}: fitted rate of global delta"] = v3.details["fitted_rate"]
        summary[f"{task}: fitted rate / xi rate (global delta)"] = v3.details["ratio_to_xi_rate"]
        summary[f"{task}: Thm 3 rate check holds on seeds"] = v3.details["seeds_held"]
        if not cond:
            summary[f"{task}: alpha of the hidden layers only / its xi rate / fitted ratio"] = (
                f"{a_hid:.3g} / {xi_hidden:.4g} / {v3.details['ratio_to_xi_rate_hidden_alpha'] or float('nan'):.3g}")
        if inner_fit:
            summary[f"{task}: fitted rate of inner delta (k < L)"] = inner_fit.rate
        deepest = d_all[d_all["depth"] == d_all["depth"].max()]
        summary[f"{task}: at L = {int(deepest['depth'].iloc[0])}: loss / delta_bar / global delta"] = (
            f"{deepest['loss'].median():.4g} / {deepest['delta_bar'].median():.3g} / {deepest['global_delta'].median():.3g}")
        ex = table[(table["task"] == task) & (table["variant"] == "exact")]
        if not ex.empty:
            e = ex[ex["depth"] == ex["depth"].max()]
            summary[f"{task}: exact least squares at L = {int(e['depth'].iloc[0])}: loss / s_L / delta_bar / global delta"] = (
                f"{e['loss'].median():.4g} / {e['s_out'].median():.3g} / {e['delta_bar'].median():.3g} / "
                f"{e['global_delta'].median():.3g}")
    return out, summary


__all__ = ["rate_verdicts"]
