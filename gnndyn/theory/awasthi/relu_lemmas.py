r"""Awasthi et al. (paper 001), §3 / App. B: the lemmas on the one-round ReLU GNN, checked on a run.

Holds: Lemma 5 (A, B_t, C_t; :func:`check_lemma5`), Lemma 1 (= Lemma 6, iterate lengths; :func:`lemma1_bounds`,
:func:`check_lemma1`), Lemma 2 (= Lemma 7, smoothness along the segments between iterates, with ηλ_max of
Thm 1's descent step; :func:`lemma2_bound`, :func:`check_lemma2`), Lemma 3 (= Lemma 8, escape;
:func:`check_lemma3`), Lemma 4 (= Lemma 9, PL constant; :func:`lemma4_mu`, :func:`check_lemma4`).

Unequal degrees (App. B): A′ = Σ_{ik} s_ik σ̂(c_ik), B′_t, C′_t with (d+1) replaced by s_ik = √((d_i+1)(d_k+1)).
On a d-regular graph A′ = (d+1)A, B′_t = (d+1)B_t, C′_t = (d+1)C_t and S² = (Σ_i √(d_i+1))² = (d+1)n², so
every statement below written with primes is *equivalent* to the paper's one when the graph is regular:
A ≥ n²/π ⟺ A′ ≥ S²/π; n²/(4π) ≤ B_t ≤ A ⟺ S²/(4π) ≤ B′_t ≤ A′; η ∈ [1/(16π(d+1)A), 1/(6π(d+1)A)] ⟺
ηA′ ∈ [1/(16π), 1/(6π)]; C_t ≥ A/(2n) ⟺ C′_t ≥ A′/(2n). On other graphs d is the maximum degree.

"c log(σ log h)" (Lemma 3): c is an unknown absolute constant; gnndyn reports the implied
c = t_escape / log(σ log h). Each check returns a :class:`~gnndyn.theory.verdict.Verdict`; a failed assumption
is listed in ``assumptions`` and makes ``applicable`` False, and the inequality is still evaluated.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from gnndyn.theory.awasthi.assumptions import A_ESCAPED, PAPER, PI, RTOL, relu_assumptions
from gnndyn.theory.awasthi.relu_stats import ReluRunStats
from gnndyn.theory.verdict import Verdict


def lemma1_bounds(sigma: float, r: int) -> tuple[float, float]:
    """Lemma 1: ℓ_t ≤ 2σ√r + 4π + 1 (t ≥ 0) and ℓ_t ≥ 1/(36π²) (t ≥ 1)."""
    return 2 * sigma * math.sqrt(r) + 4 * PI + 1, 1.0 / (36 * PI ** 2)


def lemma2_bound(A_prime: float, sigma: float, r: int) -> float:
    """Lemma 2's smoothness bound 4(d+1)A(1 + √(2σ√r + 4π + 1)) with A′ for (d+1)A and the o(1) dropped."""
    return 4.0 * A_prime * (1.0 + math.sqrt(2 * sigma * math.sqrt(r) + 4 * PI + 1))


def lemma4_mu(eps: np.ndarray | float, n: int, h: int, d: int) -> np.ndarray | float:
    """Lemma 4's PL constant µ* = ε²/(380(d+1)h²πn²)."""
    return np.asarray(eps) ** 2 / (380 * (d + 1) * h ** 2 * PI * n ** 2)


def _worst(values: np.ndarray, *, largest: bool) -> tuple[int, float]:
    flat = np.asarray(values, dtype=np.float64)
    j = int(np.nanargmax(flat) if largest else np.nanargmin(flat))
    return j, float(flat[j])


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def check_lemma5(stats: ReluRunStats, b: int, *, S2: float, where: str, unit_teacher: bool = True) -> Verdict:
    r"""Lemma 5 (App. B), general form: (1) A′ ≥ S²/π, S²/(4π) ≤ B′_t ≤ A′ for all t, |C′_t| = o(A′)
    (reported as max |C′_t|/A′); (2) C′_t ≥ A′/(2n) whenever α_t ≥ −1/100 and ℓ_t ≥ 0.9.
    Margin: the smallest relative slack of the lower bounds (negative when one fails); B′_t ≤ A′ becomes an
    equality as w_t → w* (B′_t = G(α_t/ℓ_t) → G(1) = A′), so its slack is checked and reported in ``details``
    but is not the margin."""
    n, d = int(stats.n[b]), int(stats.d[b])
    A = float(stats.A[b])
    assumptions, facts = relu_assumptions(n, d, unit_teacher=unit_teacher)
    jb, bmin = _worst(_np(stats.B_min[b]), largest=False)
    slack = {
        "A′ ≥ S²/π": A / (S2 / PI) - 1,
        "B′_t ≥ S²/(4π)": bmin / (S2 / (4 * PI)) - 1,
    }
    upper = -float(stats.B_over_A[b].max()) / A + 0.0  # an equality at the optimum: reported, not the margin
    c2 = _np(stats.C2_ratio[b])
    finite = np.isfinite(c2)
    if finite.any():
        jc, cmin = _worst(np.where(finite, c2, np.inf), largest=False)
        slack["C′_t ≥ A′/(2n) (escaped steps)"] = cmin - 1
    worst = min(slack, key=slack.get)
    holds = all(v >= -RTOL for v in slack.values()) and upper >= -RTOL
    slack["B′_t ≤ A′ (equality at the optimum)"] = upper
    return Verdict(
        name="awasthi.lemma5", paper=f"{PAPER}, Lemma 5 (App. B; unequal degrees: A′, B′_t, C′_t)",
        statement="A ≥ n²/π, n²/(4π) ≤ B_t ≤ A, |C_t| = o(A); C_t ≥ A/(2n) when α_t ≥ −1/100, ℓ_t ≈ 1",
        holds=holds, margin=float(slack[worst]), where=f"{where}: tightest is {worst}",
        assumptions=assumptions, applicable=all(assumptions.values()),
        details={**facts, "A_prime": A, "S2": S2, "A_over_S2_pi": A / (S2 / PI), "B_min": bmin, "B_min_row": jb,
                 "B_min_step": int(stats.B_min_t[b, jb]), "max_B_minus_A_over_A": float(stats.B_over_A[b].max()) / A,
                 "max_abs_C_over_A": float(stats.C_over_A[b].max()), "slack": slack},
    )


def check_lemma1(stats: ReluRunStats, b: int, *, sigma: float, r: int, eta: float, where: str,
                 unit_teacher: bool = True) -> Verdict:
    r"""Lemma 1 (= Lemma 6): for all t ≥ 0, ℓ_t ≤ 2σ√r + 4π + 1, and ℓ_t ≥ 1/(36π²) for t ≥ 1, under
    η ∈ [1/(16π(d+1)A), 1/(6π(d+1)A)]. The proof's sharper form ℓ_t ≤ ℓ_0 + 4π + 1 is in ``details``."""
    n, d, A = int(stats.n[b]), int(stats.d[b]), float(stats.A[b])
    assumptions, facts = relu_assumptions(n, d, eta=eta, A_prime=A, unit_teacher=unit_teacher)
    upper, lower = lemma1_bounds(sigma, r)
    ju, lmax = _worst(_np(stats.ell_max[b]), largest=True)
    jl, lmin = _worst(_np(stats.ell_min1[b]), largest=False)
    m_up = (upper - lmax) / upper
    m_lo = (lmin - lower) / lower if math.isfinite(lmin) else math.inf
    proof_upper = float((stats.ell0[b] + 4 * PI + 1).min()) if stats.ell0 is not None else math.nan
    holds = m_up >= -RTOL and m_lo >= -RTOL
    tight = ("upper", ju, int(stats.ell_max_t[b, ju])) if m_up <= m_lo else ("lower", jl, int(stats.ell_min1_t[b, jl]))
    return Verdict(
        name="awasthi.lemma1", paper=f"{PAPER}, Lemma 1 (= Lemma 6, App. B)",
        statement="ℓ_t ≤ 2σ√r + 4π + 1 for t ≥ 0 and ℓ_t ≥ 1/(36π²) for t ≥ 1",
        holds=bool(holds), margin=float(min(m_up, m_lo)),
        where=f"{where}: {tight[0]} bound, row {tight[1]}, step {tight[2]} (relative margin)",
        assumptions=assumptions, applicable=all(assumptions.values()),
        details={**facts, "upper_bound": upper, "lower_bound": lower, "max_ell": lmax, "min_ell_t_ge_1": lmin,
                 "relative_margin_upper": m_up, "relative_margin_lower": m_lo,
                 "proof_form_upper_l0_plus_4pi_plus_1": proof_upper,
                 "proof_form_holds": bool(np.all(_np(stats.ell_max[b]) <= _np(stats.ell0[b]) + 4 * PI + 1 + RTOL))
                 if stats.ell0 is not None else None},
    )


def check_lemma2(stats: ReluRunStats, b: int, *, sigma: float, r: int, eta: float, where: str,
                 unit_teacher: bool = True) -> Verdict:
    r"""Lemma 2 (= Lemma 7, App. B): for t ≥ 1 and every (α, β) = (1 − γ)(α_t, β_t) + γ(α_{t+1}, β_{t+1}),
    γ ∈ [0, 1], :math:`\lambda_{\max}(\nabla^2 L(\alpha, \beta)) \le 4(d+1)A(1 + \sqrt{2\sigma\sqrt r + 4\pi + 1} + o(1))`,
    under Lemma 1's conditions and d = o(√n). General graphs: A′ = G(1) in place of (d+1)A (equal on
    d-regular graphs); the o(1) is dropped (it only loosens the bound). The eigenvalues come from the closed-form
    Hessian (:func:`gnndyn.models.population_relu.relu_hessian_2d`) at γ = 0, ½, 1 of every segment with t ≥ 1,
    as tracked by :meth:`ReluRunStats.update_curvature`. That Hessian is A′I − (mK(ρ)/ℓ)ttᵀ with K ≥ 0, so
    λ_max = A′ at every w ≠ 0 and the measured ratio is 1/(4(1 + √(2σ√r + 4π + 1))) whatever the path.

    Margin: relative, (bound − max λ_max)/bound. ``details`` also has the descent-lemma quantity of Thm 1's
    proof (eq. 16), max ηλ_max, and whether ηλ_max ≤ 1 held on the run; and η·bound, the paper's "ηL ≤ 1
    from the range of η in Lemma 1" with L the Lemma 2 bound (η ≤ 1/(6πA′) only gives η·bound ≤
    4(1 + √(2σ√r + 4π + 1))/(6π), which is > 1 for σ = 1, r ≥ 1)."""
    n, d, A = int(stats.n[b]), int(stats.d[b]), float(stats.A[b])
    assumptions, facts = relu_assumptions(n, d, eta=eta, A_prime=A, unit_teacher=unit_teacher)
    bound = lemma2_bound(A, sigma, r)
    lam = _np(stats.lam_max[b])
    statement = ("λ_max(∇²L(α, β)) ≤ 4(d+1)A(1 + √(2σ√r + 4π + 1) + o(1)) on every segment "
                 "[(α_t, β_t), (α_{t+1}, β_{t+1})], t ≥ 1")
    paper = f"{PAPER}, Lemma 2 (= Lemma 7, App. B; unequal degrees: A′ for (d+1)A)"
    base = {**facts, "bound": bound, "A_prime": A, "bound_over_A_prime": bound / A, "eta_times_bound": eta * bound,
            "paper_eta_L_le_1": bool(eta * bound <= 1 + RTOL), "points_evaluated": int(stats.curv_points)}
    if not np.isfinite(lam).any():
        return Verdict(name="awasthi.lemma2", paper=paper, statement=statement, holds=True, margin=float("nan"),
                       where=f"{where}: no step t ≥ 1 evaluated", assumptions=assumptions,
                       applicable=all(assumptions.values()), details=base)
    j, lmax = _worst(np.where(np.isfinite(lam), lam, -np.inf), largest=True)
    lmin = float(np.nanmin(np.where(np.isfinite(_np(stats.lam_min[b])), _np(stats.lam_min[b]), np.nan)))
    eta_lam = eta * lmax
    margin = (bound - lmax) / bound
    return Verdict(
        name="awasthi.lemma2", paper=paper, statement=statement,
        holds=bool(lmax <= bound * (1 + RTOL)), margin=float(margin),
        where=(f"{where}: row {j}, step {int(stats.lam_max_t[b, j])}, γ = {float(stats.lam_max_gamma[b, j]):g} "
               f"(λ_max/bound = {lmax / bound:.3g}; ηλ_max = {eta_lam:.3g}, descent condition ηλ_max ≤ 1 "
               f"{'held' if eta_lam <= 1 + RTOL else 'FAILED'})"),
        assumptions=assumptions, applicable=all(assumptions.values()),
        details={**base, "max_lambda_max": lmax, "max_lambda_over_bound": lmax / bound, "max_lambda_over_A_prime": lmax / A,
                 "min_lambda_min": lmin, "min_lambda_min_over_A_prime": lmin / A,
                 "max_lambda_max_per_row": lam.tolist(), "max_eta_lambda_max": eta_lam,
                 "descent_condition_eta_lambda_le_1": bool(eta_lam <= 1 + RTOL)},
    )


def check_lemma3(stats: ReluRunStats, b: int, *, sigma: float, h: int, eta: float, where: str,
                 unit_teacher: bool = True) -> Verdict:
    r"""Lemma 3 (= Lemma 8): for all t ≥ c·log(σ log h), α_t ≥ −1/100 and ℓ_t ≥ 1 − o(1) (read: ≥ 0.9).
    c is an unspecified absolute constant, so the check is that every row gets there *and stays* before the
    run ends; the implied c = t_escape / log(σ log h) is reported (worst row). Margin: the fraction of the run
    left after the last row escaped (negative: rows never escaped)."""
    n, d, A = int(stats.n[b]), int(stats.d[b]), float(stats.A[b])
    assumptions, facts = relu_assumptions(n, d, eta=eta, A_prime=A, unit_teacher=unit_teacher)
    esc = _np(stats.last_fail[b]) + 1  # first step of the final escaped stretch
    T = stats.steps
    never = esc > T
    j, t_esc = _worst(esc.astype(np.float64), largest=True)
    scale = math.log(sigma * math.log(h)) if sigma * math.log(h) > 1 else float("nan")
    c_hat = t_esc / scale if scale and math.isfinite(scale) and scale > 0 else float("nan")
    margin = (T - t_esc) / max(T, 1)
    return Verdict(
        name="awasthi.lemma3", paper=f"{PAPER}, Lemma 3 (= Lemma 8, App. B)",
        statement="for all t ≥ c log(σ log h): α_t ≥ −1/100 and ℓ_t ≥ 1 − o(1) (read ℓ_t ≥ 0.9)",
        holds=bool(not never.any()), margin=float(margin),
        where=f"{where}: row {j} escapes last, at step {int(t_esc)} of {T}",
        assumptions=assumptions, applicable=all(assumptions.values()),
        details={**facts, "t_escape_per_row": esc.tolist(), "t_escape_max": int(t_esc), "rows_never_escaped": int(never.sum()),
                 "log_sigma_log_h": scale, "implied_c": c_hat,
                 "alpha0_min": float(stats.alpha0[b].min()) if stats.alpha0 is not None else None},
    )


def check_lemma4(stats: ReluRunStats, b: int, *, eta: float, where: str, unit_teacher: bool = True) -> Verdict:
    r"""Lemma 4 (= Lemma 9) for every ε ∈ (0, 1) at once: after the escape of Lemma 3, either
    |β_t| ≤ ε/(4hn) and |ℓ_t − 1| ≤ ε/(4hn), or ‖∇L_j‖² ≥ µ*L_j with µ* = ε²/(380(d+1)h²πn²).

    For a state (β_t, ℓ_t) the first alternative covers every ε ≥ ε_state = 4hn·max(|β_t|, |ℓ_t − 1|);
    the hardest remaining ε is just below min(ε_state, 1), so the lemma holds at that state iff
    ‖∇L_j‖²/L_j ≥ µ*(min(ε_state, 1)). Checked at every step after each row's escape (rounding-level losses,
    L_j ≤ 1e-20·L_j(0), skipped). Margin: log10 of the smallest ratio (PL ratio)/µ* (≥ 0 when it holds)."""
    n, d, A = int(stats.n[b]), int(stats.d[b]), float(stats.A[b])
    assumptions, facts = relu_assumptions(n, d, eta=eta, A_prime=A, unit_teacher=unit_teacher)
    assumptions[A_ESCAPED] = bool((_np(stats.last_fail[b]) + 1 <= stats.steps).all())
    ratio = _np(stats.pl_ratio[b])
    finite = np.isfinite(ratio)
    if not finite.any():
        return Verdict(
            name="awasthi.lemma4", paper=f"{PAPER}, Lemma 4 (= Lemma 9, App. B)",
            statement="‖∇L(α_t, β_t)‖² ≥ µ* L(α_t, β_t), µ* ≥ ε²/(380(d+1)h²πn²), unless β_t, ℓ_t − 1 are within ε/(4hn)",
            holds=True, margin=float("nan"), where=f"{where}: no post-escape state above the rounding floor",
            assumptions=assumptions, applicable=all(assumptions.values()), details=facts)
    j, rmin = _worst(np.where(finite, ratio, np.inf), largest=False)
    return Verdict(
        name="awasthi.lemma4", paper=f"{PAPER}, Lemma 4 (= Lemma 9, App. B)",
        statement="‖∇L(α_t, β_t)‖² ≥ µ* L(α_t, β_t), µ* ≥ ε²/(380(d+1)h²πn²), unless β_t, ℓ_t − 1 are within ε/(4hn)",
        holds=bool(rmin >= 1 - RTOL), margin=float(math.log10(rmin)) if rmin > 0 else -math.inf,
        where=f"{where}: row {j}, step {int(stats.pl_ratio_t[b, j])} (PL ratio / µ* = {rmin:.3g})",
        assumptions=assumptions, applicable=all(assumptions.values()),
        details={**facts, "min_pl_over_mu_per_row": np.where(finite, ratio, np.nan).tolist(),
                 "mu_star_at_eps_1": float(lemma4_mu(1.0, n, stats.h, d))},
    )


__all__ = [
    "lemma1_bounds", "lemma2_bound", "lemma4_mu", "check_lemma5", "check_lemma1", "check_lemma2", "check_lemma3",
    "check_lemma4",
]
