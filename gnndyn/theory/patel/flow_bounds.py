r"""§3 of Patel, Savostianov & Schaub (arXiv 2501.14440): gradient flow.

* **Thm 3.1**: with :math:`W_1(0) = 0` and :math:`W_\ell(0)` full rank (2 ≤ ℓ ≤ H+1),

  .. math:: \mathcal L(W(T)) - \tilde L_H \le e^{-\beta\sigma^2_{small}(Z)T/m}\,(\mathcal L(W(0)) - \tilde L_H),
     \qquad \beta = 4^{-(H-1)}\prod_{\ell=2}^{H+1}\sigma^2_{\min}(W_\ell(0)),

  "provided :math:`\sigma_{\min}(W_\ell(0))` is sufficiently large" — as the proof needs it (eqs. (3.6)–(3.8)),
  :math:`\frac4{r^2}L(W(0)) \le \frac1m\beta\sigma^2_{small}(Z)` with :math:`r = \min_{\ell\ge2}\sigma_{\min}(W_\ell(0))/2`.
  Strictly, the proof states this condition unnumbered, just before (3.8), and (3.8) is what it gives through
  (3.7), :math:`4L(W(0)) \le r^2\inf_B|\nabla L|^2/L`; §4 (after Thm 4.4) calls the condition "(3.8)", and so
  does gnndyn (verdict ``patel.thm3.1.hypothesis``, the assumption "… (eq. 3.8)").
  Also (proof) :math:`\sum_\ell\|W_\ell(T) - \tilde W_\ell\|_F^2 \le r^2e^{-\beta\sigma^2_{small}T/m}`.
* **Thm 3.2** (Chatterjee): if :math:`4F(x_0) < r^2\inf_{B(x_0,r)}|\nabla F|^2/F` (3.2), the flow stays in
  :math:`B(x_0, r)`; measured along the path: the PL ratio :math:`|\nabla\mathcal L|^2/(\mathcal L - \tilde L_H)`
  against :math:`\beta\sigma^2_{small}/m` (eq. (3.7) bounds its :math:`W_1` block) and the distance to W(0).
* **Remark 3.3**: with Remark 3.3's start (:mod:`gnndyn.models.patel_init`, ``zero-first``) the flow converges if
  :math:`a^2 \ge \max\{1, 4^{H+1}m(\|Y\|_F^2 - \tilde L_H)/\sigma^2_{small}\}` (printed); re-derived from (3.8)
  with r = 1/2: :math:`a^2 \ge 4^{H+1}(\|Y\|_F^2 - m\tilde L_H)/\sigma^2_{small}` (notes, §4).
* **Remark 3.4**: only σ_small enters, so the flow reaches :math:`\tilde L_H` even when Z is rank-deficient, where
  Xu et al.'s σ_min-based bound is void (σ_min = 0).
"""

from __future__ import annotations

import math

import numpy as np

from gnndyn.theory.patel.path import Path
from gnndyn.theory.patel.problem import (
    PAPER,
    Problem,
    Weights,
    beta,
    distance,
    excess,
    full_rank,
    grad_norm2,
    radius,
    rate,
    sigma_min,
)
from gnndyn.theory.verdict import Verdict

#: points whose relative loss is below FLOOR_REL·(𝓛(0) − L̃_H) + FLOOR_ABS·𝓛(0) are not judged (rounding).
FLOOR_REL = 1e-10
FLOOR_ABS = 1e3 * float(np.finfo(np.float64).eps)


def noise_floor(problem: Problem, L0: float, floor_rel: float = FLOOR_REL) -> float:
    """The relative loss below which 𝓛 − L̃_H is not resolved (cancellation and solver error)."""
    return floor_rel * max(L0 - problem.L_tilde, 0.0) + FLOOR_ABS * max(abs(L0), abs(problem.L_tilde))


def printed_assumptions(problem: Problem, Ws0: Weights) -> dict[str, bool]:
    """Thm 3.1's assumptions as printed: W_1(0) = 0, W_ℓ(0) full rank for ℓ ≥ 2, non-increasing widths
    (and no bottleneck, which the paper excludes)."""
    return {"W_1(0) = 0": bool(np.all(np.asarray(Ws0[0]) == 0)),
            "W_l(0) full rank, 2 ≤ l ≤ H+1": all(full_rank(np.asarray(w)) for w in Ws0[1:]),
            "non-increasing widths d_1 ≥ … ≥ d_{H+1}": problem.widths.non_increasing,
            "no bottleneck": not problem.widths.bottleneck}


def hypothesis(problem: Problem, Ws0: Weights, *, factor: float = 4.0) -> dict[str, float]:
    r"""The proof's condition (3.8), :math:`\frac{c}{r^2}L(W(0)) \le \frac1m\beta\sigma^2_{small}` (c = 4 for Thm 3.1,
    stated just before eq. (3.8), which it implies through (3.7); c = 16 for Thm 5.1): both sides, their
    difference (the margin) and ratio."""
    r, b = radius(Ws0), beta(Ws0)
    L0 = excess(problem, Ws0)
    lhs = factor * L0 / r ** 2 if r > 0 else math.inf
    rhs = b * problem.sigma2_small / problem.m
    return {"lhs": lhs, "rhs": rhs, "margin": rhs - lhs, "ratio": rhs / lhs if lhs > 0 else math.inf, "r": r,
            "beta": b, "relative_loss0": L0, "factor": factor}


def check_hypothesis(problem: Problem, Ws0: Weights) -> Verdict:
    """Thm 3.1's "σ_min(W_ℓ(0)) sufficiently large" as the proof needs it, eq. (3.8), with its margin."""
    h = hypothesis(problem, Ws0)
    a = printed_assumptions(problem, Ws0)
    return Verdict("patel.thm3.1.hypothesis", f"{PAPER}, Thm 3.1, proof, eq. (3.8)",
                   "(4/r²)(𝓛(W(0)) − L̃_H) ≤ βσ²_small((XS^H)_{*I})/m, r = min_{ℓ≥2} σ_min(W_ℓ(0))/2",
                   h["margin"] >= 0, h["margin"], "W(0)", a, all(a.values()), h)


def exp_bound_verdict(name: str, paper: str, statement: str, problem: Problem, times: np.ndarray, losses: np.ndarray,
                      bound_factor: np.ndarray, assumptions: dict[str, bool], details: dict, floor_rel: float,
                      label: str = "t") -> Verdict:
    r"""Judge :math:`\mathcal L(t_i) - \tilde L_H \le c_i(\mathcal L(t_0) - \tilde L_H)` at every point whose bound is above the
    noise floor. Margin: the smallest :math:`\log(\text{bound} + \text{floor}) - \log(\text{measured})` (nats;
    negative when violated). Details: the measured rate (fit of log excess on the judged points)."""
    L0 = float(losses[0])
    ex0 = L0 - problem.L_tilde
    floor = noise_floor(problem, L0, floor_rel)
    ex = losses - problem.L_tilde
    bound = bound_factor * ex0
    judged = (bound > floor) & (times > times[0])  # the start itself holds with equality
    logm = np.log(bound + floor) - np.log(np.maximum(ex, 1e-300))
    idx = np.flatnonzero(judged)
    if idx.size == 0:
        return Verdict(name, paper, statement, True, math.inf, "no point above the noise floor", assumptions,
                       all(assumptions.values()), {**details, "floor": floor})
    worst = idx[np.argmin(logm[idx])]
    fit_idx = np.flatnonzero(ex > floor)  # the start included
    measured_rate = math.nan
    if fit_idx.size >= 2 and times[fit_idx[-1]] > times[fit_idx[0]]:
        measured_rate = float(-np.polyfit(times[fit_idx], np.log(ex[fit_idx]), 1)[0])
    det = {**details, "floor": floor, "judged": int(idx.size), "points": int(times.size),
           "violations": int((ex[idx] > bound[idx] + floor).sum()), "measured_rate": measured_rate,
           "final_relative_excess": float(ex[-1] / ex0) if ex0 > 0 else math.nan}
    return Verdict(name, paper, statement, bool(det["violations"] == 0), float(logm[worst]),
                   f"{label} = {times[worst]:.6g}", assumptions, all(assumptions.values()), det)


def relative_losses(problem: Problem, path: Path) -> np.ndarray:
    r"""The paper's plotted quantity (§6.1.2), :math:`(\mathcal L(W(T)) - \tilde L_H)/(\mathcal L(W(0)) - \tilde L_H)`."""
    ex = path.losses - problem.L_tilde
    return ex / ex[0] if ex[0] > 0 else np.full_like(ex, math.nan)


def fit_rate(problem: Problem, path: Path, *, floor_rel: float = FLOOR_REL) -> dict[str, float]:
    r"""The measured exponential rate: least-squares slope of :math:`-\log(\mathcal L - \tilde L_H)` over the points above
    the noise floor (the start included), beside the bound's :math:`\beta\sigma^2_{small}/m`; for any rule (for the
    normalized flow, which has no rate guarantee, ``plateau`` = the smallest relative loss reached shows where it
    stalls)."""
    ex = path.losses - problem.L_tilde
    floor = noise_floor(problem, float(path.losses[0]), floor_rel)
    idx = np.flatnonzero(ex > floor)
    rate_ = math.nan
    if idx.size >= 2 and path.times[idx[-1]] > path.times[idx[0]]:
        rate_ = float(-np.polyfit(path.times[idx], np.log(ex[idx]), 1)[0])
    bound = rate(problem, path.start)
    rel = relative_losses(problem, path)
    return {"measured_rate": rate_, "rate_bound": bound, "ratio": rate_ / bound if bound > 0 else math.nan,
            "points": int(idx.size), "plateau": float(np.nanmin(rel)) if rel.size else math.nan,
            "final": float(rel[-1]) if rel.size else math.nan}


def check_thm31(problem: Problem, path: Path, *, floor_rel: float = FLOOR_REL) -> Verdict:
    """Thm 3.1's bound at every recorded time of a gradient-flow path (start = ``path.start``)."""
    Ws0 = path.start
    k = rate(problem, Ws0)
    a = printed_assumptions(problem, Ws0)
    h = hypothesis(problem, Ws0)
    a["(4/r²)L(W(0)) ≤ βσ²_small/m (eq. 3.8)"] = h["margin"] >= 0
    a["rule is gradient flow"] = path.rule == "flow"
    det = {"rate_bound": k, "beta": h["beta"], "r": h["r"], "sigma_small": problem.sigma_small, "m": problem.m,
           "L_tilde": problem.L_tilde, "hypothesis_margin": h["margin"], "solver": path.solver, "error": path.error}
    v = exp_bound_verdict("patel.thm3.1", f"{PAPER}, Thm 3.1", "𝓛(W(T)) − L̃_H ≤ exp(−βσ²_small T/m)(𝓛(W(0)) − L̃_H)",
                          problem, path.times, path.losses, np.exp(-k * path.times), a, det, floor_rel)
    mr = v.details.get("measured_rate", math.nan)
    v.details["rate_ratio"] = mr / k if k > 0 else math.nan
    return v


def check_weights_bound(problem: Problem, path: Path) -> Verdict:
    r"""The proof's :math:`\sum_\ell\|W_\ell(T) - \tilde W_\ell\|_F^2 \le r^2e^{-\beta\sigma^2_{small}T/m}`, with the limit
    :math:`\tilde W` taken as the last recorded point (so only times well before the end are informative)."""
    Ws0, k, r = path.start, rate(problem, path.start), radius(path.start)
    d2 = np.array([distance(w, path.end) ** 2 for w in path.weights])
    bound = r ** 2 * np.exp(-k * path.weight_times)
    gap = bound - d2
    i = int(np.argmin(gap))
    a = printed_assumptions(problem, Ws0)
    a["(4/r²)L(W(0)) ≤ βσ²_small/m (eq. 3.8)"] = hypothesis(problem, Ws0)["margin"] >= 0
    return Verdict("patel.thm3.1.weights", f"{PAPER}, Thm 3.1, proof", "Σ_ℓ‖W_ℓ(T) − W̃_ℓ‖²_F ≤ r² exp(−βσ²_small T/m), "
                   "W̃ ≈ W(T_end)", bool(np.all(gap >= 0)), float(gap[i]), f"t = {path.weight_times[i]:.6g}", a,
                   all(a.values()), {"r": r, "rate_bound": k, "limit": "last recorded point"})


def chatterjee_series(problem: Problem, path: Path) -> dict[str, np.ndarray]:
    r"""Along the snapshots: the PL ratio :math:`|\nabla\mathcal L|^2/L`, its :math:`W_1` block, the relative loss L
    and the distance :math:`\|\mathrm{vec}(W(t) - W(0))\|_2`."""
    full, first, rel, dist = [], [], [], []
    for w in path.weights:
        g2, g1 = grad_norm2(problem, w)
        L = excess(problem, w)
        full.append(g2)
        first.append(g1)
        rel.append(L)
        dist.append(distance(w, path.start))
    return {"grad2": np.array(full), "grad2_W1": np.array(first), "relative_loss": np.array(rel), "distance": np.array(dist)}


def check_chatterjee(problem: Problem, path: Path, *, floor_rel: float = 1e-8) -> list[Verdict]:
    r"""Thm 3.2's condition measured along the path: (i) the PL ratio stays above :math:`\beta\sigma^2_{small}/m`
    (eq. (3.7); judged where L is above the noise floor, where the ratio is resolved); (ii) the path stays in the
    closed ball :math:`B(W(0), r)`."""
    Ws0 = path.start
    s = chatterjee_series(problem, path)
    k, r = rate(problem, Ws0), radius(Ws0)
    a = printed_assumptions(problem, Ws0)
    a["(4/r²)L(W(0)) ≤ βσ²_small/m (eq. 3.8)"] = hypothesis(problem, Ws0)["margin"] >= 0
    floor = noise_floor(problem, float(path.losses[0]), floor_rel)
    ok = s["relative_loss"] > floor
    t = path.weight_times
    out = []
    if ok.any():
        ratio = np.where(ok, s["grad2"] / np.where(ok, s["relative_loss"], 1.0), np.inf)
        ratio1 = np.where(ok, s["grad2_W1"] / np.where(ok, s["relative_loss"], 1.0), np.inf)
        i = int(np.argmin(ratio))
        inside = s["distance"] <= r
        # eq. (3.7) is promised inside the ball only
        r1 = np.where(inside, ratio1, np.inf)
        det = {"alpha_bound": k, "min_ratio": float(ratio[i]), "min_ratio_W1": float(r1.min()),
               "min_ratio_over_bound": float(ratio[i] / k) if k > 0 else math.inf, "judged": int(ok.sum()), "floor": floor}
        out.append(Verdict("patel.thm3.2.pl", f"{PAPER}, Thm 3.2 / eq. (3.7)",
                           "|∇𝓛(W(t))|²/(𝓛(W(t)) − L̃_H) ≥ βσ²_small/m along the path", bool(ratio[i] >= k),
                           float(ratio[i] - k), f"t = {t[i]:.6g}", a, all(a.values()), det))
    else:
        out.append(Verdict("patel.thm3.2.pl", f"{PAPER}, Thm 3.2 / eq. (3.7)",
                           "|∇𝓛(W(t))|²/(𝓛(W(t)) − L̃_H) ≥ βσ²_small/m along the path", True, math.inf,
                           "no point above the noise floor", a, all(a.values()), {"floor": floor}))
    j = int(np.argmax(s["distance"]))
    out.append(Verdict("patel.thm3.2.ball", f"{PAPER}, Thm 3.2", "‖vec W(t) − vec W(0)‖₂ ≤ r for all recorded t",
                       bool(s["distance"][j] <= r), float(r - s["distance"][j]), f"t = {t[j]:.6g}", a, all(a.values()),
                       {"r": r, "max_distance": float(s["distance"][j]), "final_distance": float(s["distance"][-1])}))
    return out


# ------------------------------------------------------------------------------------------ Remark 3.3
def remark33_thresholds(problem: Problem) -> dict[str, float]:
    r"""Thresholds on a² for Remark 3.3's start (W_2..W_H identities, :math:`W_{H+1} = a\,I`).

    * ``printed``: :math:`\max\{1, 4^{H+1}m(\|Y\|_F^2 - \tilde L_H)/\sigma^2_{small}\}`;
    * ``rederived``: :math:`4^{H+1}(\|Y\|_F^2 - m\tilde L_H)/\sigma^2_{small}` (eq. (3.8) with r = 1/2, the notes);
    * ``exact``: the least a² for which (3.8) holds, :math:`a^2\min(1, a)^2 \ge T` (r = min(1, a)/2 for H ≥ 2, r = a/2
      for H = 1) with T the re-derived value, i.e. a² = T if T ≥ 1 (or H = 1: a² = √T), else a² = √T.

    The printed one is the larger whenever m ≥ 1 (it multiplies ‖Y‖² by m).
    """
    H, m, s2 = problem.H, problem.m, problem.sigma2_small
    Y2 = float((problem.Y ** 2).sum())
    printed = max(1.0, 4.0 ** (H + 1) * m * (Y2 - problem.L_tilde) / s2)
    T = 4.0 ** (H + 1) * (Y2 - m * problem.L_tilde) / s2
    exact = math.sqrt(T) if (H == 1 or T < 1.0) else T
    return {"printed": printed, "rederived": T, "exact": exact, "Y_norm2": Y2, "m": m, "sigma2_small": s2, "H": H}


def check_remark33(problem: Problem, a: float) -> list[Verdict]:
    """Each threshold's promise for one a: a² above it ⇒ the proof's condition (3.8) holds at Remark 3.3's start.

    The premise "a² ≥ threshold" is the verdict's assumption (not applicable below the threshold, where the
    remark promises nothing); ``holds`` is whether (3.8) holds at this start; the margin is (3.8)'s relative
    margin, (rhs − lhs)/rhs, ≥ 0 iff it holds. ``details["a2_minus_threshold"]`` says on which side of the
    threshold this a is."""
    from gnndyn.models.patel_init import zero_first_layer

    thr = remark33_thresholds(problem)
    Ws0 = zero_first_layer(problem.widths.dims, a)
    h = hypothesis(problem, Ws0)
    tol = 1e-12 * max(abs(h["rhs"]), 1e-300)
    rel = h["margin"] / max(abs(h["rhs"]), 1e-300)
    out = []
    for key, where in (("printed", "Remark 3.3 as printed"), ("rederived", "eq. (3.8) with r = 1/2 (notes)"),
                       ("exact", "eq. (3.8) with r = min(1, a)/2")):
        above = a * a >= thr[key]
        assumptions = {f"a² ≥ {thr[key]:.6g} ({key} threshold)": bool(above), **printed_assumptions(problem, Ws0)}
        out.append(Verdict(f"patel.remark3.3.{key}", f"{PAPER}, Remark 3.3 ({where})",
                           f"a² ≥ {thr[key]:.6g} ⇒ (4/r²)L(W(0)) ≤ βσ²_small/m", bool(h["margin"] >= -tol), float(rel),
                           f"a = {a:g}", assumptions, all(assumptions.values()),
                           {**thr, "a2": a * a, "above": bool(above), "a2_minus_threshold": a * a - thr[key],
                            "hypothesis_margin": h["margin"], "hypothesis_holds": bool(h["margin"] >= 0)}))
    return out


# ------------------------------------------------------------------------------------------ Remark 3.4
def check_remark34(problem: Problem, path: Path, *, tol: float = 1e-6) -> Verdict:
    r"""Remark 3.4: the flow reaches :math:`\tilde L_H` though Z is rank-deficient. Holds if the final relative loss
    is at most ``tol`` of the initial one; margin :math:`\log_{10}` tol − :math:`\log_{10}` (final/initial).
    Applicable when Z is rank-deficient (Xu et al.'s σ_min = 0, their bound exp(−0·T) promises nothing)."""
    ex0 = float(path.losses[0]) - problem.L_tilde
    exT = float(path.losses[-1]) - problem.L_tilde
    rel = exT / ex0 if ex0 > 0 else math.nan
    a = {"Z rank-deficient (σ_min = 0)": problem.rank_deficient, **printed_assumptions(problem, path.start)}
    det = {"rank": problem.spectrum.rank, "shape": list(problem.Z.shape), "sigma_min": problem.spectrum.sigma_min,
           "sigma_small": problem.sigma_small, "rank_tol": problem.spectrum.tol, "final_relative_excess": rel,
           "T": float(path.times[-1]), "rate_bound": rate(problem, path.start), "xu_rate_with_sigma_min": 0.0,
           "final_excess": exT}
    margin = math.log10(tol) - math.log10(max(abs(rel), 1e-300)) if math.isfinite(rel) else -math.inf
    return Verdict("patel.remark3.4", f"{PAPER}, Remark 3.4", "𝓛(W(T)) → L̃_H for rank-deficient (XS^H)_{*I}",
                   bool(math.isfinite(rel) and abs(rel) <= tol), margin, f"T = {path.times[-1]:.6g}", a, all(a.values()), det)


def sigma_mins(Ws: Weights) -> list[float]:
    """σ_min of every layer (a quick look at how far a start is from rank loss)."""
    return [sigma_min(np.asarray(w)) for w in Ws]


__all__ = ["FLOOR_ABS", "FLOOR_REL", "chatterjee_series", "check_chatterjee", "check_hypothesis", "check_remark33",
           "check_remark34", "check_thm31", "check_weights_bound", "exp_bound_verdict", "fit_rate", "hypothesis",
           "noise_floor", "printed_assumptions", "relative_losses", "remark33_thresholds", "sigma_mins"]
