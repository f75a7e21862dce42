r"""Awasthi et al., *Convergence of gradient descent for GNNs* — bounds and checks (paper 001).

§3 / App. B (one-round ReLU GNN): Lemma 5 (A, B_t, C_t), Lemma 1 (iterate lengths), Lemma 2 (smoothness
along the segments between iterates, with ηλ_max of Thm 1's descent step), Lemma 3 (escape),
Lemma 4 (PL constant), Thm 1 (iteration count, as a rate). §4 / App. C (deep linear GNN): Lemma 12
(singular-value range), Lemma 13 (gradient bounds), Thm 2 (iteration count), eq. (46).

Unequal degrees (App. B): A′ = Σ_{ik} s_ik σ̂(c_ik), B′_t, C′_t with (d+1) replaced by s_ik = √((d_i+1)(d_k+1)).
On a d-regular graph A′ = (d+1)A, B′_t = (d+1)B_t, C′_t = (d+1)C_t and S² = (Σ_i √(d_i+1))² = (d+1)n², so
every statement below written with primes is *equivalent* to the paper's one when the graph is regular:
A ≥ n²/π ⟺ A′ ≥ S²/π; n²/(4π) ≤ B_t ≤ A ⟺ S²/(4π) ≤ B′_t ≤ A′; η ∈ [1/(16π(d+1)A), 1/(6π(d+1)A)] ⟺
ηA′ ∈ [1/(16π), 1/(6π)]; C_t ≥ A/(2n) ⟺ C′_t ≥ A′/(2n). On other graphs d is the maximum degree.

Finite-n readings (the paper states asymptotics; gnndyn names the number it uses):

* "d = o(√n)": the proof of Lemma 5 (B_t ≥ (n² − nd²)/π − nd² ≥ n²/(4π)) needs d² ≤ 3n/(4(1+π)),
  i.e. d ≤ 4.25 at n = 100 — so *none* of the paper's own degrees {5, 10, 30, 80, 99} meets it;
  the ratio d/√n is reported beside it.
* "ℓ_t ≥ 1 − o(1)" (Lemmas 3, 5): ℓ_t ≥ 0.9. "c log(σ log h)" (Lemma 3): c is an unknown absolute constant;
  gnndyn reports the implied c = t_escape / log(σ log h).

Each check returns a :class:`~gnndyn.theory.verdict.Verdict`; a failed assumption is listed in
``assumptions`` and makes ``applicable`` False, and the inequality is still evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gnndyn.errors import GnndynError
from gnndyn.theory.verdict import Verdict

PI = math.pi
PAPER = "Awasthi et al., Convergence of gradient descent for GNNs"
RTOL = 1e-9

# assumption names (fixed strings, so that verdicts of several seeds aggregate by key)
A_SQRT_N = "d = o(√n) (finite-n reading of Lemma 5's proof: d_max² ≤ 3n/(4(1+π)))"
A_ETA_L1 = "η ∈ [1/(16π(d+1)A), 1/(6π(d+1)A)] (Lemma 1; general graphs: ηA′ in [1/(16π), 1/(6π)])"
A_UNIT = "‖w*_j‖ = 1"
A_SIGMA1 = "W₀ ~ N(0, I) (σ = 1, Thm 1)"
A_ESCAPED = "every row reached α_t ≥ −1/100, ℓ_t ≥ 0.9 for good before the run ended (Lemma 3)"
A_REGULAR = "d-regular graph (Thm 2 / Lemmas 12–13; App. C otherwise)"
A_IDENTITY = "W₁,₀ = W₂,₀ = I"
A_PD = "W₁*, W₂* symmetric positive definite"
A_ETA_L12 = "η ≤ η_i of Lemma 12 (in the paper's convention, see check_lemma12)"
A_ETA_THM2 = "η ≤ η₀ of Thm 2, eq. (25)"
A_COMMUTE = "M_t shares the eigenvectors of M* (‖[M_t, M*]‖ ≤ 1e-8‖M*‖²)"
ELL_ONE = 0.9  # finite reading of ℓ_t ≥ 1 − o(1)
ALPHA_MIN = -0.01


def degree_assumption(n: int, d_max: int) -> tuple[bool, dict]:
    """Whether "d = o(√n)" is plausibly met at this finite n (module docstring), with d/√n."""
    ok = d_max ** 2 <= 3 * n / (4 * (1 + PI))
    return bool(ok), {"d_max": int(d_max), "n": int(n), "d_over_sqrt_n": d_max / math.sqrt(n),
                      "d_max_allowed": math.sqrt(3 * n / (4 * (1 + PI)))}


def lemma1_eta_range(A_prime: float) -> tuple[float, float]:
    """Lemma 1's step-size interval [1/(16πA′), 1/(6πA′)] (A′ = (d+1)A on d-regular graphs)."""
    return 1.0 / (16 * PI * A_prime), 1.0 / (6 * PI * A_prime)


def lemma1_bounds(sigma: float, r: int) -> tuple[float, float]:
    """Lemma 1: ℓ_t ≤ 2σ√r + 4π + 1 (t ≥ 0) and ℓ_t ≥ 1/(36π²) (t ≥ 1)."""
    return 2 * sigma * math.sqrt(r) + 4 * PI + 1, 1.0 / (36 * PI ** 2)


def lemma2_bound(A_prime: float, sigma: float, r: int) -> float:
    """Lemma 2's smoothness bound 4(d+1)A(1 + √(2σ√r + 4π + 1)) with A′ for (d+1)A and the o(1) dropped."""
    return 4.0 * A_prime * (1.0 + math.sqrt(2 * sigma * math.sqrt(r) + 4 * PI + 1))


def lemma4_mu(eps: np.ndarray | float, n: int, h: int, d: int) -> np.ndarray | float:
    """Lemma 4's PL constant µ* = ε²/(380(d+1)hπn²)."""
    return np.asarray(eps) ** 2 / (380 * (d + 1) * h * PI * n ** 2)


def thm1_shape(eps: np.ndarray, n: int, h: int, d: int) -> np.ndarray:
    """Thm 1's iteration count without its constant: n⁴h²(d+1)/ε² · log(nh/ε)."""
    eps = np.asarray(eps, dtype=np.float64)
    return n ** 4 * h ** 2 * (d + 1) / eps ** 2 * np.log(n * h / eps)


# ============================================================================================ ReLU run stats
class ReluRunStats:
    r"""Running reductions along a population-GD path of the one-round ReLU GNN, updated every step
    (so that "for all t" is checked at every step without keeping the whole history).

    Batched over (B, h) rows. ``update(t, alpha, beta, ell, B_prime, C_prime, loss_rows, grad_sq)`` with
    tensors of shape (B, h); the constants: A′ (B,), S² (B,), n, h, d_max (lists), and the loss at t = 0.
    Tracked: max ℓ_t (t ≥ 0), min ℓ_t (t ≥ 1), min B′_t, max B′_t − A′, max |C′_t|/A′, min over "escaped"
    steps (α ≥ −1/100, ℓ ≥ 0.9) of C′_t/(A′/2n), the last step at which a row was not escaped, and the min
    over steps after that of ‖∇L_j‖²/L_j ÷ µ*(ε_state) (Lemma 4, see :func:`check_lemma4`).
    ``update_curvature(t, lam_max, lam_min, gamma)`` (Lemma 2, see :func:`check_lemma2`) tracks the largest
    λ_max and the smallest λ_min of the (α, β) Hessian over the points it is given, with the step t and the
    segment position γ of the largest.
    """

    FLOOR = 1e-20  # PL ratios are skipped once L_j ≤ FLOOR·L_j(0): gradients there are rounding noise

    def __init__(self, A_prime: torch.Tensor, n: Sequence[int], h: int, d_max: Sequence[int]) -> None:
        self.A = A_prime.detach().clone()
        B = self.A.shape[0]
        dt = self.A.dtype
        self.n = torch.tensor(list(n), dtype=dt)
        self.d = torch.tensor(list(d_max), dtype=dt)
        self.h = h
        inf = torch.full((B, h), math.inf, dtype=dt)
        self.ell_max = -inf.clone()
        self.ell_max_t = torch.zeros(B, h, dtype=torch.long)
        self.ell_min1 = inf.clone()
        self.ell_min1_t = torch.zeros(B, h, dtype=torch.long)
        self.B_min = inf.clone()
        self.B_min_t = torch.zeros(B, h, dtype=torch.long)
        self.B_over_A = -inf.clone()
        self.C_over_A = torch.zeros(B, h, dtype=dt)
        self.C2_ratio = inf.clone()
        self.C2_ratio_t = torch.full((B, h), -1, dtype=torch.long)
        self.last_fail = torch.full((B, h), -1, dtype=torch.long)
        self.pl_ratio = inf.clone()
        self.pl_ratio_t = torch.full((B, h), -1, dtype=torch.long)
        self.lam_max = -inf.clone()
        self.lam_max_t = torch.full((B, h), -1, dtype=torch.long)
        self.lam_max_gamma = torch.full((B, h), math.nan, dtype=dt)
        self.lam_min = inf.clone()
        self.curv_points = 0
        self.loss0: torch.Tensor | None = None
        self.alpha0: torch.Tensor | None = None
        self.ell0: torch.Tensor | None = None
        self.steps = 0

    @torch.no_grad()
    def update(self, t: int, alpha: torch.Tensor, beta: torch.Tensor, ell: torch.Tensor, B_prime: torch.Tensor,
               C_prime: torch.Tensor, loss_rows: torch.Tensor, grad_sq: torch.Tensor) -> None:
        A = self.A[:, None]
        tt = torch.full_like(self.ell_max_t, t)
        if t == 0:
            self.loss0 = loss_rows.clone()
            self.alpha0, self.ell0 = alpha.clone(), ell.clone()
        self.steps = max(self.steps, t)

        def upd_max(cur, cur_t, val):
            m = val > cur
            cur.copy_(torch.where(m, val, cur))
            cur_t.copy_(torch.where(m, tt, cur_t))

        def upd_min(cur, cur_t, val, mask=None):
            m = val < cur if mask is None else (val < cur) & mask
            cur.copy_(torch.where(m, val, cur))
            cur_t.copy_(torch.where(m, tt, cur_t))

        upd_max(self.ell_max, self.ell_max_t, ell)
        if t >= 1:
            upd_min(self.ell_min1, self.ell_min1_t, ell)
        upd_min(self.B_min, self.B_min_t, B_prime)
        self.B_over_A = torch.maximum(self.B_over_A, B_prime - A)
        self.C_over_A = torch.maximum(self.C_over_A, C_prime.abs() / A)
        escaped = (alpha >= ALPHA_MIN) & (ell >= ELL_ONE)
        upd_min(self.C2_ratio, self.C2_ratio_t, C_prime / (A / (2 * self.n[:, None])), escaped)
        self.last_fail = torch.where(escaped, self.last_fail, tt)
        # Lemma 4: the hardest ε for this state is ε_state = min(1, 4hn·max(|β|, |ℓ − 1|))
        eps_state = torch.clamp(4 * self.h * self.n[:, None] * torch.maximum(beta.abs(), (ell - 1).abs()), max=1.0)
        mu = eps_state ** 2 / (380 * (self.d[:, None] + 1) * self.h * PI * self.n[:, None] ** 2)
        ok = escaped & (loss_rows > self.FLOOR * self.loss0) & (mu > 0)
        one = torch.ones_like(mu)
        ratio = torch.where(ok, grad_sq / torch.where(ok, loss_rows, one) / torch.where(ok, mu, one),
                            torch.full_like(mu, math.inf))
        self.pl_ratio = torch.where(escaped, self.pl_ratio, torch.full_like(self.pl_ratio, math.inf))
        self.pl_ratio_t = torch.where(escaped, self.pl_ratio_t, torch.full_like(self.pl_ratio_t, -1))
        upd_min(self.pl_ratio, self.pl_ratio_t, ratio)


    @torch.no_grad()
    def update_curvature(self, t: int | Sequence[int], lam_max: torch.Tensor, lam_min: torch.Tensor,
                         gamma: float | Sequence[float]) -> None:
        """Lemma 2: eigenvalues of the (α, β) Hessian at (1 − γ)(α_t, β_t) + γ(α_{t+1}, β_{t+1}).

        Either one point — ``lam_max``, ``lam_min`` (B, h), ``t`` and ``gamma`` scalars — or K points at once —
        (B, K, h) with ``t`` and ``gamma`` sequences of length K (so that a run can evaluate the Hessian in chunks)."""
        if lam_max.dim() == 2:
            t, gamma = [t], [gamma]
            lam_max, lam_min = lam_max[:, None], lam_min[:, None]
        ts_, gs_ = list(t), list(gamma)
        if lam_max.shape[1] != len(ts_) or len(gs_) != len(ts_):
            raise GnndynError(f"update_curvature got {lam_max.shape[1]} points but {len(ts_)} steps and {len(gs_)} γ's.")
        val, idx = lam_max.max(1)
        m = val > self.lam_max
        self.lam_max = torch.where(m, val, self.lam_max)
        self.lam_max_t = torch.where(m, torch.tensor(ts_, dtype=torch.long)[idx], self.lam_max_t)
        self.lam_max_gamma = torch.where(m, torch.tensor(gs_, dtype=self.lam_max_gamma.dtype)[idx], self.lam_max_gamma)
        self.lam_min = torch.minimum(self.lam_min, lam_min.min(1).values)
        self.curv_points += len(ts_)


def _worst(values: np.ndarray, *, largest: bool) -> tuple[int, float]:
    flat = np.asarray(values, dtype=np.float64)
    j = int(np.nanargmax(flat) if largest else np.nanargmin(flat))
    return j, float(flat[j])


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def relu_assumptions(n: int, d_max: int, *, eta: float | None = None, A_prime: float | None = None,
                     unit_teacher: bool = True) -> tuple[dict[str, bool], dict]:
    """The assumptions shared by the §3 statements for one run (d = o(√n), ‖w*‖ = 1, optionally Lemma 1's η)."""
    ok, facts = degree_assumption(n, d_max)
    out = {A_SQRT_N: ok, A_UNIT: unit_teacher}
    if eta is not None and A_prime is not None:
        lo, hi = lemma1_eta_range(A_prime)
        out[A_ETA_L1] = bool(lo * (1 - RTOL) <= eta <= hi * (1 + RTOL))
        facts = {**facts, "eta": eta, "eta_range": [lo, hi], "eta_times_A_prime": eta * A_prime}
    return out, facts


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
    |β_t| ≤ ε/(4hn) and |ℓ_t − 1| ≤ ε/(4hn), or ‖∇L_j‖² ≥ µ*L_j with µ* = ε²/(380(d+1)hπn²).

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
            statement="‖∇L(α_t, β_t)‖² ≥ µ* L(α_t, β_t), µ* ≥ ε²/(380(d+1)hπn²), unless β_t, ℓ_t − 1 are within ε/(4hn)",
            holds=True, margin=float("nan"), where=f"{where}: no post-escape state above the rounding floor",
            assumptions=assumptions, applicable=all(assumptions.values()), details=facts)
    j, rmin = _worst(np.where(finite, ratio, np.inf), largest=False)
    return Verdict(
        name="awasthi.lemma4", paper=f"{PAPER}, Lemma 4 (= Lemma 9, App. B)",
        statement="‖∇L(α_t, β_t)‖² ≥ µ* L(α_t, β_t), µ* ≥ ε²/(380(d+1)hπn²), unless β_t, ℓ_t − 1 are within ε/(4hn)",
        holds=bool(rmin >= 1 - RTOL), margin=float(math.log10(rmin)) if rmin > 0 else -math.inf,
        where=f"{where}: row {j}, step {int(stats.pl_ratio_t[b, j])} (PL ratio / µ* = {rmin:.3g})",
        assumptions=assumptions, applicable=all(assumptions.values()),
        details={**facts, "min_pl_over_mu_per_row": np.where(finite, ratio, np.nan).tolist(),
                 "mu_star_at_eps_1": float(lemma4_mu(1.0, n, stats.h, d))},
    )


# ============================================================================================ rates
def iterations_to_reach(loss: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """First step t with loss[t] ≤ threshold (−1 if never), for each threshold."""
    loss = np.asarray(loss, dtype=np.float64)
    run_min = np.minimum.accumulate(loss)
    idx = np.searchsorted(-run_min, -np.asarray(thresholds, dtype=np.float64), side="left")
    return np.where(idx < loss.size, idx, -1)


@dataclass(frozen=True)
class RateFit:
    """Fits of a loss curve over its convergence window [start, end]:

    ``rate`` κ of log L_t ≈ a − κt (linear convergence, O(log 1/ε) iterations) with ``r2_linear``;
    ``power`` p of log L_t ≈ b − p log t (sublinear, L_t ~ t^{−p}) with ``r2_power``; ``rate_first`` and
    ``rate_second``: κ on each half of the window (equal for linear convergence, decaying for sublinear);
    ``decades``: how many decades the loss fell inside the window.
    """

    start: int
    end: int
    rate: float
    r2_linear: float
    power: float
    r2_power: float
    rate_first: float
    rate_second: float
    decades: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    @property
    def linear(self) -> bool:
        """Linear convergence: the straight line in (t, log L) fits at least as well as the power law and
        the rate does not decay by more than half across the window."""
        return (self.rate > 0 and self.r2_linear >= self.r2_power - 1e-3
                and self.rate_second >= 0.5 * self.rate_first)


def _lsq(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if x.size < 3 or np.ptp(x) == 0:
        return float("nan"), float("nan")
    A = np.stack([np.ones_like(x), x], 1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    ss = float(((y - y.mean()) ** 2).sum())
    return float(coef[1]), 1 - float((resid ** 2).sum()) / ss if ss > 0 else float("nan")


def fit_convergence(loss: np.ndarray, *, start_rel: float = 1e-2, floor_rel: float = 1e-24, floor_abs: float = 1e-280) -> RateFit:
    """Fit a loss curve (one value per step) between the first step below ``start_rel``·L₀ and the first step
    below max(``floor_rel``·L₀, ``floor_abs``) (the float64 floor; else the end of the run)."""
    L = np.asarray(loss, dtype=np.float64)
    L0 = L[0]
    below = np.flatnonzero(L <= start_rel * L0)
    s = int(below[0]) if below.size else 0
    floor = np.flatnonzero(L <= max(floor_rel * L0, floor_abs))
    e = int(floor[0]) if floor.size else L.size - 1
    if e - s < 4:
        s = 0
    t = np.arange(s, e + 1, dtype=np.float64)
    y = np.log(np.maximum(L[s:e + 1], 1e-300))
    slope, r2 = _lsq(t, y)
    ok = t > 0
    pslope, pr2 = _lsq(np.log(t[ok]), y[ok])
    mid = (s + e) // 2
    s1, _ = _lsq(t[t <= mid], y[t <= mid])
    s2, _ = _lsq(t[t >= mid], y[t >= mid])
    dec = float(np.log10(max(L[s], 1e-300)) - np.log10(max(L[e], 1e-300)))
    return RateFit(s, e, -slope, r2, -pslope, pr2, -s1, -s2, dec)


def check_thm1_rate(loss: np.ndarray, *, n: int, h: int, d: int, sigma: float, where: str, eps_points: int = 40,
                    unit_teacher: bool = True) -> Verdict:
    r"""Thm 1 as a rate: L(W_T) ≤ ε² once T ≥ c·n⁴h²(d+1)/ε²·log(nh/ε). The constant c is unspecified, so
    the check is that the measured T(ε) grows no faster than f(ε) = n⁴h²(d+1)/ε²·log(nh/ε): the implied
    constant T(ε)/f(ε) at the small-ε half of the grid may not exceed its maximum on the large-ε half.
    ε² runs over a log grid from min(L₀/10, 1)·(1 − 1e-9) to the smallest loss reached above the float64
    floor. Margin: log10(max large-half / max small-half) of the implied constant. ``details`` has the fitted
    slope of T against log(1/ε²) (iterations per e-fold: linear convergence is a constant slope) and the
    log-log exponent of T against 1/ε² (1 for the theorem's rate, 0 for linear convergence)."""
    assumptions, facts = relu_assumptions(n, d, unit_teacher=unit_teacher)
    assumptions[A_SIGMA1] = bool(abs(sigma - 1.0) < 1e-12)
    L = np.asarray(loss, dtype=np.float64)
    hi = min(L[0] / 10, 1.0) * (1 - 1e-9)
    reached = L[L > max(1e-24 * L[0], 1e-280)]
    lo = float(reached.min()) if reached.size else hi
    if not hi > lo:
        return Verdict("awasthi.thm1_rate", f"{PAPER}, Thm 1", "T(ε) = O(1/ε² · log(1/ε))", True, float("nan"),
                       f"{where}: the loss never fell below min(L₀/10, 1)", assumptions, all(assumptions.values()), facts)
    eps2 = np.geomspace(hi, lo, eps_points)
    T = iterations_to_reach(L, eps2)
    ok = T > 0
    eps = np.sqrt(eps2[ok])
    Tm = T[ok].astype(np.float64)
    c_hat = Tm / thm1_shape(eps, n, h, d)
    half = max(1, c_hat.size // 2)
    big, small = float(c_hat[:half].max()), float(c_hat[half:].max()) if c_hat.size > half else float(c_hat[:half].max())
    slope_log, r2_log = _lsq(np.log(1 / eps ** 2), Tm)
    expo, r2_exp = _lsq(np.log(1 / eps ** 2), np.log(Tm))
    return Verdict(
        name="awasthi.thm1_rate", paper=f"{PAPER}, Thm 1 (iteration count as a rate)",
        statement="L(W_T) ≤ ε² once T ≥ c·n⁴h²(d+1)/ε²·log(nh/ε): measured T(ε) grows no faster than 1/ε²·log(1/ε)",
        holds=bool(small <= big * (1 + 1e-6)), margin=float(math.log10(big / small)) if small > 0 else math.inf,
        where=f"{where}: ε² from {hi:.3g} down to {lo:.3g}",
        assumptions=assumptions, applicable=all(assumptions.values()),
        details={**facts, "eps": eps.tolist(), "T": Tm.tolist(), "implied_c": c_hat.tolist(),
                 "implied_c_max": float(c_hat.max()), "iterations_per_efold_of_loss": slope_log, "r2_T_vs_log": r2_log,
                 "loglog_exponent_T_vs_inv_eps2": expo, "r2_loglog": r2_exp},
    )


def check_larger_d_faster(degrees: Sequence[float], rates: Sequence[float], *, lrs: Sequence[float],
                          normalized: Sequence[float] | None = None, n: int | None = None) -> Verdict:
    r"""§5's observation on Fig. 1: "as d increases … the rates of convergence … become much better".
    Holds when the fitted per-iteration rate κ_d (median over seeds) increases strictly with d.
    ``normalized`` (κ_d/(ηA′), the rate per unit of effective step) is reported beside it: the paper uses a
    20× larger step at d = 5 and one step for all other d, and A′ grows with d, so ηA′ — not only d — moves."""
    d = np.asarray(degrees, dtype=np.float64)
    k = np.asarray(rates, dtype=np.float64)
    order = np.argsort(d)
    d, k = d[order], k[order]
    diffs = np.diff(k)
    ratios = k[1:] / k[:-1]
    i = int(np.argmin(ratios)) if ratios.size else 0
    holds = bool((diffs > 0).all()) if diffs.size else True
    met = {f"{x:g}": degree_assumption(n, int(x))[0] for x in d} if n is not None else {}
    return Verdict(
        name="awasthi.fig1_larger_d_faster", paper=f"{PAPER}, §5 (Fig. 1 discussion)",
        statement="the convergence rate of population GD grows with the degree d",
        holds=holds, margin=float(np.log10(ratios[i])) if ratios.size else float("nan"),
        where=(f"between d = {d[i]:g} and d = {d[i + 1]:g}" if ratios.size else "one degree only")
        + (f"; d = o(√n) plausibly met for: {', '.join(f'd = {k}' for k, v in met.items() if v) or 'no degree'}"
           if met else ""),
        assumptions={}, applicable=True,
        details={"d = o(√n) plausibly met": met, "degrees": d.tolist(), "rate_per_iteration": k.tolist(), "lrs": [float(x) for x in np.asarray(lrs)[order]],
                 "rate_per_unit_eta_A_prime": None if normalized is None else np.asarray(normalized, dtype=np.float64)[order].tolist(),
                 "normalized_increasing": None if normalized is None else bool((np.diff(np.asarray(normalized)[order]) > 0).all())},
    )


# ============================================================================================ deep linear
@dataclass(frozen=True)
class Thm2Constants:
    r"""Lemma 12–13 and Thm 2 constants for each mode i (σ*_i ascending), in the paper's convention:

    u_i = σ*_i(1 + max(1, σ_{i,0}/σ*_i − 1)), ℓ_i = σ*_i(1 − max(½, 1 − σ_{i,0}/σ*_i)),
    δ_i = max(u_i/σ*_i, σ*_i/ℓ_i), η_i = max(1, σ_{i,0}/σ*_i − 1)/(2nL²u_i^L(d²+1)(σ*_i)^{2L−2}(1+u_i)^{L−1})
    (Lemma 12), and η₀ ≤ min_i ℓ_i^{2L−1}min(1, (σ*_i)^{−(2L−2)})/(2nL²δ_i²(d²+1)u_i^{2L−3}(1+u_i)^{L−1})
    (eq. 25).
    """

    sigma_star: np.ndarray
    sigma0: np.ndarray
    u: np.ndarray
    ell: np.ndarray
    delta: np.ndarray
    eta_i: np.ndarray
    eta0_max: float
    n: int
    d: int
    L: int

    def as_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}


def thm2_constants(sigma_star: Sequence[float], sigma0: Sequence[float] | float, *, n: int, d: int, L: int) -> Thm2Constants:
    """Lemma 12's u_i, ℓ_i, η_i, Lemma 13's δ_i and eq. (25)'s η₀ bound (see :class:`Thm2Constants`)."""
    s = np.asarray(sigma_star, dtype=np.float64)
    s0 = np.broadcast_to(np.asarray(sigma0, dtype=np.float64), s.shape).copy()
    u = s * (1 + np.maximum(1.0, s0 / s - 1))
    ell = s * (1 - np.maximum(0.5, 1 - s0 / s))
    delta = np.maximum(u / s, s / ell)
    k = d * d + 1
    eta_i = np.maximum(1.0, s0 / s - 1) / (2 * n * L ** 2 * u ** L * k * s ** (2 * L - 2) * (1 + u) ** (L - 1))
    eta0 = ell ** (2 * L - 1) * np.minimum(1.0, s ** (-(2.0 * L - 2))) / (
        2 * n * L ** 2 * delta ** 2 * k * u ** (2 * L - 3) * (1 + u) ** (L - 1))
    return Thm2Constants(s, s0, u, ell, delta, eta_i, float(eta0.min()), n, d, L)


def thm2_g(sigma: np.ndarray, sigma_star: np.ndarray, d: int, L: int) -> np.ndarray:
    """g_t = L(d²+1)σ^{L−1}(σ^L − σ*^L) of eq. (42)."""
    return L * (d * d + 1) * sigma ** (L - 1) * (sigma ** L - sigma_star ** L)


class LinearRunStats:
    r"""Running reductions over the eigen-coordinates σ_{i,t} = v_iᵀM_tv_i of M_t = W₁ + dW₂ (v_i the
    eigenvectors of M*), for a batch of regular-graph runs: min/max σ_{i,t} (Lemma 12), the largest
    g_t²/(Lemma 13 upper bound) and the smallest g_t(σ − σ*)/(Lemma 13 lower bound), the largest commutator
    ‖[M_t, M*]‖_F/‖M*‖_F². ``consts`` one :class:`Thm2Constants` per batch element."""

    def __init__(self, consts: Sequence[Thm2Constants]) -> None:
        self.consts = list(consts)
        B, r = len(consts), consts[0].sigma_star.size
        self.smin = np.full((B, r), np.inf)
        self.smax = np.full((B, r), -np.inf)
        self.smin_t = np.zeros((B, r), dtype=np.int64)
        self.smax_t = np.zeros((B, r), dtype=np.int64)
        self.up = np.full((B, r), -np.inf)
        self.up_t = np.zeros((B, r), dtype=np.int64)
        self.low = np.full((B, r), np.inf)
        self.low_t = np.zeros((B, r), dtype=np.int64)
        self.comm = np.zeros(B)
        self.steps = 0

    def update(self, t: int, sigma: np.ndarray, comm: np.ndarray | None = None) -> None:
        """``sigma`` (B, r) eigen-coordinates at step t (same order as σ*_i)."""
        self.steps = max(self.steps, t)
        m = sigma < self.smin
        self.smin, self.smin_t = np.where(m, sigma, self.smin), np.where(m, t, self.smin_t)
        m = sigma > self.smax
        self.smax, self.smax_t = np.where(m, sigma, self.smax), np.where(m, t, self.smax_t)
        for b, c in enumerate(self.consts):
            s, ss, L, d = sigma[b], c.sigma_star, c.L, c.d
            diff2 = (s - ss) ** 2
            g = thm2_g(s, ss, d, L)
            k = d * d + 1
            bound_up = L ** 2 * k ** 2 * c.u ** (2 * L - 3) * (L * c.delta) ** 2 * diff2
            bound_low = L ** 2 * k * c.ell ** (2 * L - 2) * diff2
            nz = diff2 > 1e-28 * np.maximum(ss, 1) ** 2
            ru = np.where(nz, g ** 2 / np.where(nz, bound_up, 1), -np.inf)
            rl = np.where(nz, g * (s - ss) / np.where(nz, bound_low, 1), np.inf)
            mu_, ml = ru > self.up[b], rl < self.low[b]
            self.up[b], self.up_t[b] = np.where(mu_, ru, self.up[b]), np.where(mu_, t, self.up_t[b])
            self.low[b], self.low_t[b] = np.where(ml, rl, self.low[b]), np.where(ml, t, self.low_t[b])
        if comm is not None:
            self.comm = np.maximum(self.comm, comm)


def linear_assumptions(*, regular: bool, identity_init: bool, pd_teacher: bool, eta_paper: float | None = None,
                       consts: Thm2Constants | None = None, commute: bool | None = None) -> dict[str, bool]:
    out = {A_REGULAR: bool(regular), A_IDENTITY: bool(identity_init), A_PD: bool(pd_teacher)}
    if commute is not None:
        out[A_COMMUTE] = bool(commute)
    if eta_paper is not None and consts is not None:
        out[A_ETA_THM2] = bool(eta_paper <= consts.eta0_max * (1 + RTOL))
    return out


def check_lemma12(stats: LinearRunStats, b: int, *, eta_paper: float, where: str, assumptions: dict[str, bool]) -> Verdict:
    r"""Lemma 12: σ_{i,t} ∈ [ℓ_i, u_i] for all t, provided η ≤ η_i. ``eta_paper`` is the step in the paper's
    convention: eq. (41) writes σ_{t+1} = σ_t − η(n/2)g_t while the gradient of eq. (37) gives
    σ_{t+1} = σ_t − ηn·g_t, so a run with step η on the loss scaled by κ is the paper's recursion with
    η_paper = 2κη. Margin: smallest relative slack min((σ − ℓ)/ℓ, (u − σ)/u)."""
    c = stats.consts[b]
    a = dict(assumptions)
    a[A_ETA_L12] = bool((eta_paper <= c.eta_i * (1 + RTOL)).all())
    lo = (stats.smin[b] - c.ell) / c.ell
    hi = (c.u - stats.smax[b]) / c.u
    i_lo, i_hi = int(np.argmin(lo)), int(np.argmin(hi))
    if lo[i_lo] <= hi[i_hi]:
        m, wh = lo[i_lo], f"mode {i_lo} (σ* = {c.sigma_star[i_lo]:.4g}) lower end ℓ_i at step {int(stats.smin_t[b, i_lo])}"
    else:
        m, wh = hi[i_hi], f"mode {i_hi} (σ* = {c.sigma_star[i_hi]:.4g}) upper end u_i at step {int(stats.smax_t[b, i_hi])}"
    if abs(m) < 1e-12:  # σ_{i,0} = u_i exactly when σ_{i,0} ≥ 2σ*_i: rounding only
        m = 0.0
    return Verdict(
        name="awasthi.lemma12", paper=f"{PAPER}, Lemma 12 (App. C)",
        statement="σ_{i,t} ∈ [ℓ_i, u_i] for all t ≥ 0 when η ≤ η_i",
        holds=bool(m >= -RTOL), margin=float(m), where=f"{where}: {wh}",
        assumptions=a, applicable=all(a.values()),
        details={"eta_paper": eta_paper, "eta_i": c.eta_i.tolist(), "eta_paper_over_min_eta_i": eta_paper / float(c.eta_i.min()),
                 "sigma_min": stats.smin[b].tolist(), "sigma_max": stats.smax[b].tolist(), "ell_i": c.ell.tolist(),
                 "u_i": c.u.tolist(), "sigma_star": c.sigma_star.tolist()},
    )


def check_lemma13(stats: LinearRunStats, b: int, *, where: str, assumptions: dict[str, bool]) -> Verdict:
    r"""Lemma 13: g_t² ≤ L²(d²+1)²u_i^{2L−3}(Lδ_i)²(σ_{i,t} − σ*_i)² and
    g_t(σ_{i,t} − σ*_i) ≥ L²(d²+1)ℓ_i^{2L−2}(σ_{i,t} − σ*_i)², at every step, with the measured σ_{i,t}.
    (Given σ ∈ [ℓ_i, u_i] the lower bound always holds; the upper one needs δ_i² ≥ u_i^{…} and fails when
    u_i is large — e.g. L = 1 requires δ_i² ≥ u_i.) Margin: min(1 − max upper ratio, min lower ratio − 1)."""
    c = stats.consts[b]
    up, low = stats.up[b], stats.low[b]
    iu, il = int(np.argmax(up)), int(np.argmin(low))
    mu_, ml = 1 - up[iu], low[il] - 1
    if not np.isfinite(mu_):
        mu_ = math.inf
    if not np.isfinite(ml):
        ml = math.inf
    wh = (f"upper bound, mode {iu} (σ* = {c.sigma_star[iu]:.4g}, ratio {up[iu]:.3g}) at step {int(stats.up_t[b, iu])}"
          if mu_ <= ml else f"lower bound, mode {il} (ratio {low[il]:.3g}) at step {int(stats.low_t[b, il])}")
    return Verdict(
        name="awasthi.lemma13", paper=f"{PAPER}, Lemma 13 (App. C)",
        statement="g_t² ≤ L²(d²+1)²u_i^{2L−3}(Lδ_i)²(σ_{i,t}−σ*_i)² and g_t(σ_{i,t}−σ*_i) ≥ L²(d²+1)ℓ_i^{2L−2}(σ_{i,t}−σ*_i)²",
        holds=bool(mu_ >= -RTOL and ml >= -RTOL), margin=float(min(mu_, ml)), where=f"{where}: {wh}",
        assumptions=dict(assumptions), applicable=all(assumptions.values()),
        details={"max_upper_ratio_per_mode": np.where(np.isfinite(up), up, np.nan).tolist(),
                 "min_lower_ratio_per_mode": np.where(np.isfinite(low), low, np.nan).tolist(),
                 "delta_i": c.delta.tolist(), "u_i": c.u.tolist()},
    )


def thm2_T_literal(eps: np.ndarray, c: Thm2Constants, eta0: float, r: int) -> np.ndarray:
    """Thm 2, eq. (24) as printed: max_i 1/(η₀L²(d²+1)ℓ_i^{2L−2}) · log(rLu_i(1 − σ*_i)²/ε) (log clipped at 0)."""
    eps = np.asarray(eps, dtype=np.float64)[:, None]
    L, k = c.L, c.d * c.d + 1
    lg = np.log(np.maximum(r * L * c.u * (1 - c.sigma_star) ** 2 / eps, 1.0))
    return (lg / (eta0 * L ** 2 * k * c.ell ** (2 * L - 2))).max(1)


def thm2_T_proof(eps: np.ndarray, c: Thm2Constants, eta0: float, r: int) -> np.ndarray:
    r"""The iteration count the proof of Thm 2 (= Thm 3) gives, with the constants repaired: per mode
    (σ_{i,t} − σ*_i)² ≤ (σ_{i,0} − σ*_i)² q_i^t, q_i = 1 − η₀nL²(d²+1)ℓ_i^{2L−2}, and
    L = (n/2)Σ_i(σ_i^L − σ*_i^L)² ≤ (n/2)Σ_i L²u_i^{2L−2}(σ_i − σ*_i)², so T = max_i log(r(n/2)L²u_i^{2L−2}
    (σ_{i,0} − σ*_i)²/ε²)/(−log q_i). NaN where q_i ∉ (0, 1) (η₀ too large for the proof)."""
    eps = np.asarray(eps, dtype=np.float64)[:, None]
    L, k = c.L, c.d * c.d + 1
    q = 1 - eta0 * c.n * L ** 2 * k * c.ell ** (2 * L - 2)
    num = r * 0.5 * c.n * L ** 2 * c.u ** (2 * L - 2) * (c.sigma0 - c.sigma_star) ** 2 / eps ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        T = np.log(np.maximum(num, 1.0)) / (-np.log(q))
    T = np.where((q > 0) & (q < 1), T, np.nan)
    return T.max(1)


def check_thm2(raw_loss: np.ndarray, c: Thm2Constants, *, eta_paper: float, r: int, where: str,
               assumptions: dict[str, bool], eps_points: int = 30) -> Verdict:
    r"""Thm 2 (eq. 24): L(W₁,T, W₂,T) ≤ ε² once T ≥ T_lit(ε), for the *raw* loss of eq. (37) and the step in the
    paper's convention (see :func:`check_lemma12`). Measured T(ε) against T_lit(ε) on a grid of ε² from
    L₀/10 down to the smallest loss reached; an ε not reached within the run counts as a violation when
    T_lit(ε) is shorter than the run. Margin: min over ε of (T_lit − T)/max(T_lit, 1). The repaired proof form
    (:func:`thm2_T_proof`) and the paper's printed (1 − σ*_i)² (the identity start is σ_{i,0} = 1 + d, not 1)
    are reported in ``details``."""
    L = np.asarray(raw_loss, dtype=np.float64)
    steps = L.size - 1
    hi = L[0] / 10
    lo = min(max(float(L.min()), 1e-280), hi)
    eps2 = np.geomspace(hi, max(lo, hi * 1e-30), eps_points)
    eps = np.sqrt(eps2)
    T = iterations_to_reach(L, eps2).astype(np.float64)
    Tl = thm2_T_literal(eps, c, eta_paper, r)
    Tp = thm2_T_proof(eps, c, eta_paper, r)
    meas = np.where(T >= 0, T, np.inf)
    decided = (T >= 0) | (Tl < steps)
    with np.errstate(invalid="ignore"):
        rel = np.where(decided, (Tl - meas) / np.maximum(Tl, 1.0), np.nan)
    i = int(np.nanargmin(rel)) if decided.any() else 0
    holds = bool(np.all(np.where(decided, meas <= Tl * (1 + 1e-12), True)))
    m = float(rel[i]) if decided.any() else float("nan")
    return Verdict(
        name="awasthi.thm2", paper=f"{PAPER}, Thm 2, eqs. (24)–(25)",
        statement="L(W₁,T, W₂,T) ≤ ε² once T ≥ max_i log(rLu_i(1−σ*_i)²/ε)/(η₀L²(d²+1)ℓ_i^{2L−2}), η₀ as in eq. (25)",
        holds=holds, margin=m, where=f"{where}: tightest at ε² = {eps2[i]:.3g} (measured T = {T[i]:g}, bound {Tl[i]:.3g})",
        assumptions=dict(assumptions), applicable=all(assumptions.values()),
        details={"eps2": eps2.tolist(), "T_measured": T.tolist(), "T_literal": Tl.tolist(), "T_proof_repaired": Tp.tolist(),
                 "eta_paper": eta_paper, "eta0_max_eq25": c.eta0_max, "eta_over_eta0": eta_paper / c.eta0_max,
                 "eta0_eq25_meets_lemma12": bool(c.eta0_max <= c.eta_i.min()),
                 "constants": c.as_dict()},
    )


def check_linear_convergence(loss: np.ndarray, *, where: str, depth: int, assumptions: dict[str, bool] | None = None) -> Verdict:
    r"""§4/Fig. 2: deep linear GNNs converge linearly, O(log(1/ε)) iterations. Fitted verdict
    (:func:`fit_convergence`): holds when a straight line in (t, log L) fits the convergence window at least
    as well as a power law and the rate does not decay by more than half across the window.
    Margin: rate_second/rate_first − 0.5."""
    fit = fit_convergence(loss)
    a = dict(assumptions or {})
    return Verdict(
        name="awasthi.linear_rate", paper=f"{PAPER}, Thm 2 and Fig. 2",
        statement="population GD on the deep linear GNN converges linearly (log L_t falls linearly in t)",
        holds=fit.linear, margin=float(fit.rate_second / fit.rate_first - 0.5) if fit.rate_first > 0 else float("nan"),
        where=f"{where} (L = {depth}): window steps {fit.start}–{fit.end}, {fit.decades:.1f} decades",
        assumptions=a, applicable=all(a.values()), details=fit.as_dict(),
    )


def check_eq46(exact: float, eq46: float, *, where: str, depth: int, regular: bool,
                scale: float | None = None, r: int = 1) -> Verdict:
    r"""App. C eq. (46) against the exact population loss at the same weights (a relative margin).

    Where eq. (46) is exact (L = 1 or a regular graph) the two numbers differ only by floating-point
    error, so the comparison allows a tolerance τ of that size. With :math:`E_i = M_i^L - (M_i^*)^L` and
    :math:`S^2 = \sum_i (\|M_i^L\|_F + \|(M_i^*)^L\|_F)^2` (``scale`` = S, :func:`appendix_c_scale`), each
    :math:`E_i` carries an error :math:`\delta E_i \le c\,arepsilon\,(\|M_i^L\|_F + \|(M_i^*)^L\|_F)` with
    :math:`c = L r` (L matrix products of r × r matrices, ε the float64 unit roundoff), so
    :math:`|\delta L| \le \sqrt{2L}\,carepsilon S + 	frac12 (carepsilon S)^2`; τ is 4× that (both sides carry such
    an error), and never below the relative 10⁻⁹ used without ``scale``. Holds iff
    :math:`|L_{46} - L| \le 	au`; margin :math:`(	au - |L_{46} - L|)/|L|` (relative, ≥ 0 iff it holds).
    """
    diff = abs(eq46 - exact)
    ref = max(abs(exact), 1e-300)
    rel = diff / ref
    tol = 1e-9 * abs(exact)
    tol_fp = float("nan")
    if scale is not None and math.isfinite(scale):
        c = depth * max(int(r), 1) * float(np.finfo(np.float64).eps)
        tol_fp = 4.0 * (math.sqrt(2.0 * max(abs(exact), abs(eq46))) * c * scale + 0.5 * (c * scale) ** 2)
        tol = max(tol, tol_fp)
    return Verdict(
        name="awasthi.eq46", paper=f"{PAPER}, App. C eq. (46)",
        statement="for unequal degrees L(W₁, W₂) = ½ Σ_i ‖M_i^L − (M_i*)^L‖²_F with M_i = W₁ + d_iW₂",
        holds=bool(diff <= tol), margin=float((tol - diff) / ref), where=f"{where} (L = {depth}, regular = {regular})",
        assumptions={}, applicable=True,
        details={"exact": exact, "eq46": eq46, "relative_difference": rel, "tolerance": tol,
                 "floating_point_tolerance": tol_fp},
    )


__all__ = [
    "degree_assumption", "lemma1_eta_range", "lemma1_bounds", "lemma2_bound", "lemma4_mu", "thm1_shape", "ReluRunStats",
    "relu_assumptions", "check_lemma5", "check_lemma1", "check_lemma2", "check_lemma3", "check_lemma4", "iterations_to_reach",
    "RateFit", "fit_convergence", "check_thm1_rate", "check_larger_d_faster", "Thm2Constants", "thm2_constants",
    "thm2_g", "LinearRunStats", "linear_assumptions", "check_lemma12", "check_lemma13", "thm2_T_literal",
    "thm2_T_proof", "check_thm2", "check_linear_convergence", "check_eq46",
]
