r"""The linear-rate bounds of Xu et al. (ICML 2021) along a recorded run:
:math:`L_T - L^* \le (L_0 - L^*)\exp(-4\sum_k\lambda^{(k)}_T\sigma_k^2\,T)`.

* :func:`bound_curve`, :func:`check_rate_bound` — the bound and its check for any L*, λ's and σ²'s;
* :func:`check_thm1` — Thm 1, eq. (8) (and its σ_small variant, arXiv 2501.14440 Remark 3.4);
* :func:`check_thm2` — Thm 2 (i) eq. (10), (ii) eq. (11), (iii) eq. (12), with :func:`monotone_runs`
  giving the monotone runs of :math:`L^*_0..L^*_H` that (iii) speaks of.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gnndyn.algebra.optimum import Optimum
from gnndyn.algebra.spectrum import as_float64 as _np
from gnndyn.errors import GnndynError
from gnndyn.theory.verdict import Verdict
from gnndyn.theory.xu.lambdas import running_min
from gnndyn.theory.xu.optimum import global_optimum
from gnndyn.theory.xu.sources import PAPER


@dataclass
class RateBound:
    """A bound of the form :math:`L_T - L^* \\le (L_0 - L^*)\\exp(-4\\sum_k\\lambda^{(k)}_T\\sigma_k^2\\,T)`."""

    name: str
    paper: str
    statement: str
    L_star: float
    sigma2: list[float]
    lam_index: list[int]


def bound_curve(times: np.ndarray, losses: np.ndarray, L_star: float, lam_times: np.ndarray, lam: np.ndarray,
                lam_index: Sequence[int], sigma2: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    r"""(bound(T), rate(T)) with rate(T) = :math:`4\sum_k \hat\lambda^{(k)}_T\sigma_k^2` and bound(T) =
    :math:`(L_0 - L^*)e^{-\mathrm{rate}(T)\,T}`; ``lam`` is (len(lam_times), H+1), column k = :math:`\lambda^{(k)}`."""
    times = np.asarray(times, float)
    rate = np.zeros_like(times)
    for k, s2 in zip(lam_index, sigma2):
        rate += 4.0 * running_min(lam_times, lam[:, k], times) * s2
    bound = (float(losses[0]) - L_star) * np.exp(-rate * times)
    return bound, rate


def check_rate_bound(name: str, paper: str, statement: str, times: np.ndarray, losses: np.ndarray, L_star: float,
                     lam_times: np.ndarray, lam: np.ndarray, lam_index: Sequence[int], sigma2: Sequence[float], *,
                     dynamics: str, label: str, loss: str = "squared", L_star_exact: bool = True,
                     lam_resolution: float | Sequence[float] = 0.0, rtol: float = 1e-9) -> tuple[Verdict, np.ndarray]:
    r"""Evaluate a linear-rate bound (eqs. (8), (10)–(12)) along one recorded run.

    At each recorded time T: gap(T) = :math:`L_T - L^*`, bound(T) from :func:`bound_curve`; the bound
    holds at T when gap ≤ bound + rtol·max(|L_0|, |L^*|) (rounding). The verdict's ``margin`` is
    bound − gap at the tightest point (smallest (bound − gap)/|L_0 − L^*|); details give the first
    violation, the number of violating points, the measured average rate
    :math:`\ln((L_0-L^*)/(L_T-L^*))/T` beside the guaranteed rate at the end, and their ratio.

    ``lam_resolution`` (a number, or one per column of ``lam``) is the numerical resolution of λ: a
    λ_T at or below it counts as 0. Assumptions named in the verdict: the dynamics is gradient flow (the theorems are about the flow;
    for gradient descent at t = kη the bound need not hold), squared loss, σ²_min > 0 and
    λ_T > 0 (otherwise the rate is 0 and the bound says only :math:`L_T \le L_0`), L* exact.
    """
    times, losses = np.asarray(times, float), np.asarray(losses, float)
    if times.size == 0:
        raise GnndynError(f"{name}: no recorded losses to check.")
    if times[0] != 0.0:
        raise GnndynError(f"{name}: the bound compares L_T with L_0 at T = 0, but the first recorded time is "
                          f"T = {times[0]:.6g}; record the run from its start (step 0).")
    bound, rate = bound_curve(times, losses, L_star, lam_times, lam, lam_index, sigma2)
    gap = losses - L_star
    atol = rtol * max(abs(losses[0]), abs(L_star), 1e-300)
    ok = gap <= bound + atol
    scale = max(abs(losses[0] - L_star), 1e-300)
    norm_margin = (bound - gap) / scale
    later = np.flatnonzero(times > times[0])  # at T = 0 bound and gap coincide: the tightest point is later
    j = int(later[np.argmin(norm_margin[later])]) if later.size else 0
    viol = np.flatnonzero(~ok)
    T = times[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        meas = math.log((losses[0] - L_star) / gap[-1]) / T if T > 0 and gap[-1] > 0 and losses[0] > L_star else math.nan
    lam_end = [float(running_min(lam_times, lam[:, k], [T])[0]) for k in lam_index]
    res = np.broadcast_to(np.asarray(lam_resolution, float), (lam.shape[1],))
    assumptions = {
        "gradient flow (the theorem's dynamics)": dynamics == "flow",
        "squared loss": loss == "squared",
        "σ²_min > 0": all(s > 0 for s in sigma2),
        "λ_T > 0 at the end of the run": all(v > res[k] for v, k in zip(lam_end, lam_index)),
        "L* computed exactly": L_star_exact,
    }
    details = {
        "series": label, "dynamics": dynamics, "L_star": L_star, "L0": float(losses[0]), "L_T": float(losses[-1]), "T": float(T),
        "sigma2": [float(s) for s in sigma2], "lambda_T_end": lam_end, "guaranteed_rate_end": float(rate[-1]),
        "measured_rate": meas, "rate_ratio_measured_over_guaranteed": (meas / rate[-1]) if rate[-1] > 0 and math.isfinite(meas) else math.nan,
        "violations": int(viol.size), "points": int(times.size),
        "first_violation_time": float(times[viol[0]]) if viol.size else None,
        "worst_relative_excess": float(-norm_margin.min()) if viol.size else 0.0,
        "bound_end": float(bound[-1]), "gap_end": float(gap[-1]),
    }
    where = f"T={times[j]:.4g} of {label}" + (f"; first violation at T={times[viol[0]]:.4g}" if viol.size else "")
    v = Verdict(name=name, paper=paper, statement=statement, holds=bool(ok.all()), margin=float(bound[j] - gap[j]),
                where=where, assumptions=assumptions, applicable=all(assumptions.values()), details=details)
    return v, bound


def monotone_runs(values: Sequence[float], tol: float) -> list[tuple[int, int, int]]:
    r"""Every l < l' for which :math:`L^*_l, ..., L^*_{l'}` is non-increasing or non-decreasing (within ``tol``),
    each with its :math:`l''` of Thm 2 (iii): l for non-increasing, l' for non-decreasing. Eq. (12) is claimed
    for every such pair ("if there exist l, l'"), not only for the maximal runs: a sub-run has its own
    :math:`L^*_{l''}` and fewer rate terms, so the maximal run does not imply it. A flat stretch is both."""
    v = list(values)
    out: set[tuple[int, int, int]] = set()
    for sign in (+1, -1):  # +1: non-increasing (L*_l ≥ L*_{l+1}), -1: non-decreasing
        for l in range(len(v) - 1):
            r = l
            while r < len(v) - 1 and sign * (v[r] - v[r + 1]) >= -tol:
                r += 1
                out.add((l, r, l if sign > 0 else r))
    return sorted(out)


STATEMENT_THM1 = "L_T − L*_H ≤ (L_0 − L*_H)·exp(−4 λ_T^(H) σ²_min(X(S^H)_{*I}) T)"


def check_thm1(times, losses, opt: Optimum, lam_times, lam, *, dynamics: str, label: str, loss: str = "squared",
               lam_resolution: float | Sequence[float] = 0.0, small: bool = False) -> tuple[Verdict, np.ndarray]:
    r"""Thm 1, eq. (8), along one run of a Def. 1 model (``lam`` columns λ^(0..H), λ^(H) the last).

    ``small=True`` uses σ²_small (smallest non-zero singular value) instead of σ²_min: the proof's step
    :math:`\mathrm{vec}^\top U\Sigma^2U^\top\mathrm{vec} \ge \sigma^2\|\mathbf P\mathrm{vec}\|^2` holds with the smallest
    *non-zero* singular value (the blog's P projects onto the column space), as in 2501.14440's Remark 3.4.
    """
    H = lam.shape[1] - 1
    s2 = opt.spectrum.sigma2_small if small else opt.spectrum.sigma2_min
    name = "xu.thm1.sigma_small" if small else "xu.thm1"
    stmt = STATEMENT_THM1.replace("σ²_min", "σ²_small") if small else STATEMENT_THM1
    return check_rate_bound(name, f"{PAPER}, Thm 1, eq. (8)" + (" with σ_small (2501.14440)" if small else ""), stmt,
                            times, losses, opt.value, lam_times, lam, [H], [s2], dynamics=dynamics, label=label,
                            loss=loss, L_star_exact=opt.exact, lam_resolution=lam_resolution)


def check_thm2(times, losses, blocks, Y, widths, lam_times, lam, *, dynamics: str, label: str, loss: str = "squared",
               opt_multi: Optimum | None = None, lam_resolution: float | Sequence[float] = 0.0) -> dict[str, Any]:
    r"""Thm 2 (i), (ii), (iii) along one run of a Def. 2 model.

    * (i), eq. (10): :math:`L^* = L^*_{1:H}`, rate :math:`4\lambda^{(1:H)}_T\sigma^2_{\min}(\mathcal G_H)` with
      :math:`\lambda^{(1:H)}_T = \min_{0\le l\le H}\lambda^{(l)}_T`;
    * (ii), eq. (11), for each H' = 0..H: :math:`L^* = L^*_{H'}` (plain H'-layer optimum),
      rate :math:`4\lambda^{(H')}_T\sigma^2_{\min}(G_{H'})`;
    * (iii), eq. (12), for each l < l' with :math:`L^*_l..L^*_{l'}` monotone (:func:`monotone_runs`): :math:`L^* = L^*_{l''}`,
      rate :math:`4\sum_{k=l}^{l'}\lambda^{(k)}_T\sigma^2_{\min}(G_k)`.

    Returns {"i": (Verdict, bound), "ii": [(H', Verdict, bound)], "iii": [((l, l', l''), Verdict, bound)],
    "L_star_plain": [L*_0..L*_H], "sigma2_plain": [...]}.
    """
    H = len(widths)
    opt_multi = opt_multi or global_optimum(blocks, Y, widths, multiscale=True)
    # λ^(1:H)_T = min_l λ^(l)_T, each λ^(l) at or below its own resolution counting as 0 (as in (ii))
    res_all = np.broadcast_to(np.asarray(lam_resolution, float), (lam.shape[1],))
    cols = lam[:, : H + 1]
    lam_multi = np.min(np.where(cols > res_all[: H + 1], cols, 0.0), axis=1, keepdims=True)
    res_multi = 0.0
    v_i, b_i = check_rate_bound(
        "xu.thm2.i", f"{PAPER}, Thm 2 (i), eq. (10)",
        "L_T − L*_{1:H} ≤ (L_0 − L*_{1:H})·exp(−4 λ_T^(1:H) σ²_min((G_H)_{*I}) T)",
        times, losses, opt_multi.value, lam_times, lam_multi, [0], [opt_multi.spectrum.sigma2_min],
        dynamics=dynamics, label=label, loss=loss, L_star_exact=opt_multi.exact, lam_resolution=res_multi)
    plain = [global_optimum(blocks, Y, widths[:h], multiscale=False) for h in range(H + 1)]
    ii = []
    for h in range(H + 1):
        v, b = check_rate_bound(
            "xu.thm2.ii", f"{PAPER}, Thm 2 (ii), eq. (11)",
            "L_T − L*_{H'} ≤ (L_0 − L*_{H'})·exp(−4 λ_T^(H') σ²_min(X(S^{H'})_{*I}) T), every H' ≤ H",
            times, losses, plain[h].value, lam_times, lam, [h], [plain[h].spectrum.sigma2_min],
            dynamics=dynamics, label=f"{label}, H'={h}", loss=loss, lam_resolution=lam_resolution)
        ii.append((h, v, b))
    Ls = [p.value for p in plain]
    tol = 1e-9 * max(1.0, float((_np(Y) ** 2).sum()))
    iii = []
    for (l, lp, lpp) in monotone_runs(Ls, tol):
        ks = list(range(l, lp + 1))
        v, b = check_rate_bound(
            "xu.thm2.iii", f"{PAPER}, Thm 2 (iii), eq. (12)",
            "L_T − L*_{l''} ≤ (L_0 − L*_{l''})·exp(−4 Σ_{k=l}^{l'} λ_T^(k) σ²_min(X(S^k)_{*I}) T) on monotone L*_l..L*_{l'}",
            times, losses, plain[lpp].value, lam_times, lam, ks, [plain[k].spectrum.sigma2_min for k in ks],
            dynamics=dynamics, label=f"{label}, l={l}, l'={lp}, l''={lpp}", loss=loss, lam_resolution=lam_resolution)
        iii.append(((l, lp, lpp), v, b))
    return {"i": (v_i, b_i), "ii": ii, "iii": iii, "L_star_plain": Ls,
            "sigma2_plain": [p.spectrum.sigma2_min for p in plain], "opt_multi": opt_multi}


__all__ = ["RateBound", "STATEMENT_THM1", "bound_curve", "check_rate_bound", "check_thm1", "check_thm2",
           "monotone_runs"]
