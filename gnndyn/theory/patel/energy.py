r"""§4 of Patel, Savostianov & Schaub (arXiv 2501.14440): balancedness and the energy of the weights.

* Def. 4.1: W is balanced if :math:`W_\ell W_\ell^\top = W_{\ell+1}^\top W_{\ell+1}` for 1 ≤ ℓ ≤ H. Under gradient flow
  every :math:`D_\ell = W_\ell W_\ell^\top - W_{\ell+1}^\top W_{\ell+1}` is constant (proof of Thm 4.4, [3, 6, 14]); under
  gradient descent it drifts by :math:`O(\eta^2)` per step.
* (4.2): :math:`\min\sum_\ell\|W_\ell\|_F^2` subject to :math:`W_{H+1}\cdots W_1 = YZ^\dagger` (4.1).
  Thm 4.2: a balanced W satisfying (4.1) solves it, with energy :math:`(H+1)\sum_i\sigma_i^{2/(H+1)}(YZ^\dagger)`.
* Thm 4.4 (hypotheses: :math:`\mathrm{rank}(YZ^\top) = \underline k` and :math:`d_y \le \min(d_1..d_H)`): the flow from W(0) converges to the solution of (4.2) if
  (1) W(0) is balanced; (2) :math:`[W_1(0)U]_{ij} = 0` for j > k = rank Z (U the left singular vectors of Z);
  (3) rank :math:`W_1(0) = \underline k = \min(d_y, k)` and
  (4.4) :math:`L(W(0)) \le \sigma^{2H}_{\underline k}(W_1(0))\sigma^2_{small}(Z)/(4^{H+1}m)` — printed with
  :math:`m = \bar nd_x` (elsewhere :math:`m = \bar nd_y`; both readings are evaluated).
  The authors state that (4.4) is infeasible under balancedness; :func:`search_44` looks for the best margin.
"""

from __future__ import annotations

import math

import numpy as np

from gnndyn.theory.patel.path import Path
from gnndyn.theory.patel.problem import PAPER, Problem, Weights, end_to_end, excess
from gnndyn.theory.verdict import Verdict

EPS = float(np.finfo(np.float64).eps)


def imbalances(Ws: Weights) -> list[np.ndarray]:
    r""":math:`D_\ell = W_\ell W_\ell^\top - W_{\ell+1}^\top W_{\ell+1}`, ℓ = 1..H (d_ℓ × d_ℓ)."""
    return [Ws[l] @ Ws[l].T - Ws[l + 1].T @ Ws[l + 1] for l in range(len(Ws) - 1)]


def balance_residual(Ws: Weights, *, relative: bool = True) -> float:
    r""":math:`\max_\ell\|D_\ell\|_F`, relative to :math:`\max(\|W_\ell W_\ell^\top\|_F, \|W_{\ell+1}^\top W_{\ell+1}\|_F)` per ℓ."""
    out = 0.0
    for l in range(len(Ws) - 1):
        a, b = Ws[l] @ Ws[l].T, Ws[l + 1].T @ Ws[l + 1]
        r = float(np.linalg.norm(a - b))
        if relative:
            s = max(float(np.linalg.norm(a)), float(np.linalg.norm(b)))
            r = r / s if s > 0 else 0.0
        out = max(out, r)
    return out


def balance_series(path: Path, *, relative: bool = True) -> np.ndarray:
    """:func:`balance_residual` at every snapshot of a path (0 along the flow from a balanced start)."""
    return np.array([balance_residual(w, relative=relative) for w in path.weights])


def imbalance_drift(path: Path) -> np.ndarray:
    r""":math:`\max_\ell\|D_\ell(t) - D_\ell(0)\|_F / \max_\ell\|W_\ell(0)\|_F^2` at every snapshot (0 for an exact flow)."""
    D0 = imbalances(path.start)
    scale = max(max(float((w ** 2).sum()) for w in path.start), 1e-300)
    return np.array([max(float(np.linalg.norm(a - b)) for a, b in zip(imbalances(w), D0)) / scale for w in path.weights])


def check_balance_conserved(path: Path, *, tol: float = 1e-6) -> Verdict:
    """§4: the imbalances D_ℓ are constant along gradient flow. Holds if the largest relative drift is ≤ ``tol``
    (the solver's error; tighten rtol to separate the two). For gradient descent the same number is the drift."""
    d = imbalance_drift(path)
    i = int(np.argmax(d))
    return Verdict("patel.sec4.balance", f"{PAPER}, §4 (proof of Thm 4.4)",
                   "d/dt(W_ℓW_ℓᵀ) = d/dt(W_{ℓ+1}ᵀW_{ℓ+1}): D_ℓ(t) = D_ℓ(0) along gradient flow", bool(d[i] <= tol),
                   float(tol - d[i]), f"t = {path.weight_times[i]:.6g}", {"rule is gradient flow": path.rule == "flow"},
                   path.rule == "flow", {"max_drift": float(d[i]), "final_drift": float(d[-1]), "tol": tol,
                                         "start_residual": balance_residual(path.start),
                                         "end_residual": balance_residual(path.end), "solver": path.solver, "eta": path.eta})


def energy(Ws: Weights) -> float:
    r""":math:`\sum_\ell\|W_\ell\|_F^2`."""
    return float(sum((np.asarray(w) ** 2).sum() for w in Ws))


def min_energy(problem: Problem) -> float:
    r"""Thm 4.2: :math:`(H+1)\sum_{i=1}^{\min(d_x,d_y)}\sigma_i^{2/(H+1)}(YZ^\dagger)`."""
    s = np.linalg.svd(problem.min_norm_solution, compute_uv=False)
    return float((problem.H + 1) * (s ** (2.0 / (problem.H + 1))).sum())


def product_error(problem: Problem, Ws: Weights) -> float:
    r""":math:`\|W_{H+1}\cdots W_1 - YZ^\dagger\|_F/\|YZ^\dagger\|_F` (how far (4.1) is from holding)."""
    P = problem.min_norm_solution
    return float(np.linalg.norm(end_to_end(Ws) - P) / max(np.linalg.norm(P), 1e-300))


def check_thm42(problem: Problem, Ws: Weights, *, tol: float = 1e-6) -> Verdict:
    r"""Thm 4.2 at a point W (e.g. the end of a path): energy against :math:`(H+1)\sum\sigma_i^{2/(H+1)}(YZ^\dagger)`.

    Every W with (4.1) has energy ≥ the minimum; a balanced one attains it. Holds if the energy is not below the
    minimum (by more than ``tol`` relative) and, when W is balanced and satisfies (4.1) to ``tol``, equals it.
    Margin: (energy − minimum)/minimum, the excess energy (0 at the solution of (4.2))."""
    E, Emin = energy(Ws), min_energy(problem)
    bal, perr = balance_residual(Ws), product_error(problem, Ws)
    a = {"balanced (residual ≤ tol)": bal <= tol, "(4.1): W_{H+1}⋯W_1 = YZ^† (to tol)": perr <= tol}
    gap = (E - Emin) / Emin if Emin > 0 else E
    holds = gap >= -tol and (not all(a.values()) or abs(gap) <= 10 * tol)
    return Verdict("patel.thm4.2", f"{PAPER}, Thm 4.2", "balanced + (4.1) ⇒ Σ‖W_ℓ‖²_F = (H+1)Σσ_i^{2/(H+1)}(YZ^†) = min (4.2)",
                   bool(holds), float(gap), "W", a, all(a.values()),
                   {"energy": E, "min_energy": Emin, "balance_residual": bal, "product_error": perr})


# ------------------------------------------------------------------------------------------ Thm 4.4
def thm44_conditions(problem: Problem, Ws0: Weights) -> dict:
    r"""Thm 4.4's three conditions at W(0), each with its number: the balance residual; the largest
    :math:`|[W_1(0)U]_{ij}|`, j > k, relative to :math:`\|W_1(0)\|_F`; rank :math:`W_1(0)` against :math:`\underline k`;
    (4.4)'s margin :math:`\sigma^{2H}_{\underline k}(W_1(0))\sigma^2_{small}/(4^{H+1}m) - L(W(0))` for m = n̄d_y and the
    printed m = n̄d_x; the authors' necessary :math:`\sigma_{\underline k}(W_\ell(0)) \le 2\sigma_{\underline k}^{1/(H+1)}(YZ^\dagger)`."""
    H, Z, Y = problem.H, problem.Z, problem.Y
    d_x, d_y, nbar = Z.shape[0], Y.shape[0], problem.nbar
    k = problem.spectrum.rank
    kl = min(d_y, k)
    W1 = np.asarray(Ws0[0])
    Ufull = np.linalg.svd(Z, full_matrices=True)[0]
    outside = W1 @ Ufull[:, k:]
    n1 = float(np.linalg.norm(W1))
    s1 = np.linalg.svd(W1, compute_uv=False)
    tol1 = max(W1.shape) * EPS * (s1[0] if s1.size else 0.0)
    rank1 = int((s1 > tol1).sum())
    sk = float(s1[kl - 1]) if kl >= 1 and s1.size >= kl else 0.0
    L0 = excess(problem, Ws0)
    rhs = sk ** (2 * H) * problem.sigma2_small / 4.0 ** (H + 1)
    sP = np.linalg.svd(problem.min_norm_solution, compute_uv=False)
    sPk = float(sP[kl - 1]) if sP.size >= kl >= 1 else 0.0
    YZt = Y @ Z.T
    sy = np.linalg.svd(YZt, compute_uv=False)
    rank_yz = int((sy > max(YZt.shape) * EPS * (sy[0] if sy.size else 0)).sum())
    return {"balance_residual": balance_residual(Ws0), "outside_column_space": float(np.abs(outside).max() / n1) if n1 > 0 and outside.size else 0.0,
            "rank_W1": rank1, "k": k, "k_low": kl, "rank_YZt": rank_yz, "sigma_k_W1": sk, "relative_loss0": L0,
            "margin_44": rhs / (nbar * d_y) - L0, "margin_44_printed_m": rhs / (nbar * d_x) - L0,
            "necessary_bound": 2.0 * sPk ** (1.0 / (H + 1)), "necessary_holds": bool(sk <= 2.0 * sPk ** (1.0 / (H + 1))),
            "widths_ok": problem.widths.thm44_widths}


def check_thm44(problem: Problem, Ws0: Weights, path: Path | None = None, *, tol: float = 1e-10,
                reach_tol: float = 1e-6) -> list[Verdict]:
    """Thm 4.4's conditions at W(0) (one verdict each, with margins) and, with a flow path from W(0), whether
    it reached the solution of (4.2) (Thm 4.2's check at the end of the path). The theorem's hypotheses on the
    data and the widths, rank(YZᵀ) = k̲ and d_y ≤ min(d_1..d_H), are every verdict's assumptions: a verdict is
    applicable only where both hold."""
    c = thm44_conditions(problem, Ws0)
    base = {"rank(YZᵀ) = k̲ = min(d_y, rank Z)": c["rank_YZt"] == c["k_low"], "d_y ≤ min(d_1..d_H)": c["widths_ok"]}
    applicable = all(base.values())
    out = [
        Verdict("patel.thm4.4.c1", f"{PAPER}, Thm 4.4 (1)", "W(0) balanced (Def. 4.1)", c["balance_residual"] <= tol,
                tol - c["balance_residual"], "W(0)", base, applicable, c),
        Verdict("patel.thm4.4.c2", f"{PAPER}, Thm 4.4 (2)", "[W_1(0)U]_ij = 0 for j > rank Z", c["outside_column_space"] <= tol,
                tol - c["outside_column_space"], "W(0)", base, applicable, c),
        Verdict("patel.thm4.4.c3", f"{PAPER}, Thm 4.4 (3), eq. (4.4), m = n̄d_y",
                "rank W_1(0) = k̲ and L(W(0)) ≤ σ_k̲^{2H}(W_1(0))σ²_small/(4^{H+1}m)",
                bool(c["rank_W1"] == c["k_low"] and c["margin_44"] >= 0), c["margin_44"], "W(0)", base, applicable, c),
        Verdict("patel.thm4.4.c3.printed", f"{PAPER}, Thm 4.4 (3), eq. (4.4), m = n̄d_x as printed",
                "rank W_1(0) = k̲ and L(W(0)) ≤ σ_k̲^{2H}(W_1(0))σ²_small/(4^{H+1}n̄d_x)",
                bool(c["rank_W1"] == c["k_low"] and c["margin_44_printed_m"] >= 0), c["margin_44_printed_m"], "W(0)", base,
                applicable, c),
    ]
    if path is not None:
        v = check_thm42(problem, path.end, tol=reach_tol)
        conds = {"(1) balanced": c["balance_residual"] <= tol, "(2) no component outside col Z": c["outside_column_space"] <= tol,
                 "(3) (4.4), m = n̄d_y": bool(c["rank_W1"] == c["k_low"] and c["margin_44"] >= 0), **base}
        out.append(Verdict("patel.thm4.4", f"{PAPER}, Thm 4.4", "the flow from W(0) converges to the solution of (4.2)",
                           v.holds and all(v.assumptions.values()), v.margin, f"T = {path.times[-1]:.6g}", conds,
                           all(conds.values()), {**v.details, "final_relative_excess":
                                                  (float(path.losses[-1]) - problem.L_tilde) / max(float(path.losses[0]) - problem.L_tilde, 1e-300)}))
    return out


def margin_44(problem: Problem, P: np.ndarray, *, printed_m: bool = False) -> float:
    r"""(4.4)'s margin for the balanced start whose product is P (all balanced starts with the same product have the
    same :math:`\sigma_{\underline k}(W_1) = \sigma_{\underline k}(P)^{1/(H+1)}` and the same loss); −∞ unless rank P = k̲."""
    H, kl = problem.H, min(problem.Y.shape[0], problem.spectrum.rank)
    s = np.linalg.svd(P, compute_uv=False)
    rk = int((s > max(P.shape) * EPS * (s[0] if s.size else 0)).sum())
    if rk != kl:
        return -math.inf
    mm = problem.nbar * (problem.Z.shape[0] if printed_m else problem.Y.shape[0])
    L0 = float(((P @ problem.Z - problem.Y) ** 2).sum()) / problem.m - problem.L_tilde
    return float(s[kl - 1]) ** (2.0 * H / (H + 1)) * problem.sigma2_small / (4.0 ** (H + 1) * mm) - L0


def search_44(problem: Problem, *, scales: np.ndarray | None = None, random_starts: int = 64, seed: int = 0,
              printed_m: bool = False, refine: bool = True) -> dict:
    r"""The best margin of (4.4) over balanced starts satisfying condition 2 (row space of the product in col Z).

    A balanced start is determined, as far as (4.4) is concerned, by its product P (see :func:`margin_44`), so the
    search runs over P = A U_kᵀ (U_k the column basis of Z): (i) P = c·YZ^† for c on ``scales`` (then refined by a
    bounded 1-d search on c ∈ (0, 2^{H+1}], the authors' necessary range); (ii) random Gaussian A, scaled by c;
    (iii) the mixtures (1−t)·random + t·YZ^†, t ∈ {0.25, 0.5, 0.75, 0.9}; (iv) with ``refine``, L-BFGS on A from the
    best point. Returns the best margin overall and per family (a non-negative one is a feasible start: the authors'
    claim fails), the largest relative loss L(W(0)) among the feasible starts tried, and, for scale, the relative loss
    of the zero start :math:`\|Y\|^2/m - \tilde L_H`.

    In closed form along (i): with :math:`PZ - Y \perp PZ`, the margin is
    :math:`c^{2H/(H+1)}\sigma_{\underline k}(YZ^\dagger)^{2H/(H+1)}\sigma^2_{small}/(4^{H+1}m) - (1-c)^2\|YZ^\dagger Z\|_F^2/m`,
    positive at c = 1 (the start at the balanced factorization of the minimum-norm solution) whenever
    rank :math:`YZ^\dagger = \underline k`."""
    import scipy.optimize as so

    rng = np.random.default_rng(seed)
    scales = np.logspace(-3, 2, 61) if scales is None else np.asarray(scales, dtype=np.float64)
    Uk = problem.left_basis
    Pst = problem.min_norm_solution
    nP = max(float(np.linalg.norm(Pst)), 1e-300)
    fam: dict[str, dict] = {}
    feasible = {"count": 0, "max_relative_loss": -math.inf}

    def rel_loss(P: np.ndarray) -> float:
        return float(((P @ problem.Z - problem.Y) ** 2).sum()) / problem.m - problem.L_tilde

    def consider(family: str, P: np.ndarray, c: float) -> float:
        v = margin_44(problem, c * P, printed_m=printed_m)
        best = fam.setdefault(family, {"margin": -math.inf, "c": math.nan, "tried": 0})
        best["tried"] += 1
        if v >= 0:
            feasible["count"] += 1
            feasible["max_relative_loss"] = max(feasible["max_relative_loss"], rel_loss(c * P))
        if v > best["margin"]:
            best.update(margin=v, c=float(c), relative_loss=rel_loss(c * P))
        return v

    for c in scales:
        consider("scaled solution c·YZ^†", Pst, c)
    if refine:
        res = so.minimize_scalar(lambda c: -margin_44(problem, c * Pst, printed_m=printed_m),
                                 bounds=(1e-6, 2.0 ** (problem.H + 1)), method="bounded", options={"xatol": 1e-10})
        consider("scaled solution c·YZ^†", Pst, float(res.x))
    best_R, best_v = Pst, -math.inf
    for _ in range(random_starts):
        R = rng.standard_normal((problem.Y.shape[0], Uk.shape[1])) @ Uk.T
        R *= nP / max(float(np.linalg.norm(R)), 1e-300)
        for c in scales[:: max(1, scales.size // 15)]:
            v = consider("random balanced", R, c)
            if v > best_v:
                best_R, best_v = c * R, v
        for t in (0.25, 0.5, 0.75, 0.9):
            v = consider(f"mixture t={t}", (1 - t) * R + t * Pst, 1.0)
            if v > best_v:
                best_R, best_v = (1 - t) * R + t * Pst, v
    if refine and Uk.shape[1] > 0:
        shape = (problem.Y.shape[0], Uk.shape[1])

        def neg(a: np.ndarray) -> float:
            v = margin_44(problem, a.reshape(shape) @ Uk.T, printed_m=printed_m)
            return -v if math.isfinite(v) else 1e300

        res = so.minimize(neg, (best_R @ Uk).ravel(), method="L-BFGS-B", options={"maxiter": 200})
        consider("L-BFGS from the best random/mixture start", res.x.reshape(shape) @ Uk.T, 1.0)
    best_family = max(fam, key=lambda k: fam[k]["margin"])
    return {"best_margin": fam[best_family]["margin"], "best_family": best_family, "families": fam,
            "printed_m": printed_m, "closed_form_at_solution": margin_44(problem, Pst, printed_m=printed_m),
            "feasible_tried": feasible["count"], "max_feasible_relative_loss": feasible["max_relative_loss"],
            "zero_start_relative_loss": float((problem.Y ** 2).sum()) / problem.m - problem.L_tilde}


def feasible_44_start(problem: Problem, *, c: float | None = None, seed: int = 0) -> list[np.ndarray]:
    """The balanced start with product c·YZ^† (c maximizing (4.4)'s margin when None): conditions 1–3 of Thm 4.4
    hold there whenever :func:`search_44` finds this family feasible."""
    from gnndyn.models.patel_init import balanced

    if c is None:
        c = search_44(problem, random_starts=0, refine=True)["families"]["scaled solution c·YZ^†"]["c"]
    return balanced(problem.widths.dims, product=c * problem.min_norm_solution, seed=seed)


def check_44_feasibility(problem: Problem, **search) -> Verdict:
    """The authors' claim after Thm 4.4 that (4.4) is infeasible under balancedness: holds if no searched
    balanced start (with condition 2) has a non-negative margin. Margin: −(best margin found)."""
    r = search_44(problem, **search)
    return Verdict("patel.thm4.4.infeasible", f"{PAPER}, §4 after Thm 4.4" + (" (m = n̄d_x)" if r["printed_m"] else ""),
                   "no balanced W(0) satisfies (4.4)", bool(r["best_margin"] < 0), float(-r["best_margin"]),
                   r["best_family"], {"d_y ≤ min(d_1..d_H)": problem.widths.thm44_widths}, problem.widths.thm44_widths, r)


__all__ = [
    "balance_residual",
    "balance_series",
    "check_44_feasibility",
    "check_balance_conserved",
    "check_thm42",
    "check_thm44",
    "energy",
    "feasible_44_start",
    "imbalance_drift",
    "imbalances",
    "margin_44",
    "min_energy",
    "product_error",
    "search_44",
    "thm44_conditions",
]
