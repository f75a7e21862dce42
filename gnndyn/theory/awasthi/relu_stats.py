r"""Awasthi et al. (paper 001), §3 / App. B: the running reductions along a population-GD path of the
one-round ReLU GNN that the §3 checks read (:class:`ReluRunStats`).

Holds no statement itself: it records, at every step, the quantities of Lemma 1 (ℓ_t), Lemma 5 (B′_t, C′_t
against A′), Lemma 3 (the escape α_t ≥ −1/100, ℓ_t ≥ 0.9), Lemma 4 (the PL ratio ‖∇L_j‖²/L_j against
µ* = ε²/(380(d+1)h²πn²)) and Lemma 2 (the eigenvalues of the (α, β) Hessian on the segments between iterates),
so that "for all t" is checked at every step without keeping the whole history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from gnndyn.errors import GnndynError
from gnndyn.theory.awasthi.assumptions import ALPHA_MIN, ELL_ONE, PI


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
        mu = eps_state ** 2 / (380 * (self.d[:, None] + 1) * self.h ** 2 * PI * self.n[:, None] ** 2)
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


__all__ = [
    "ReluRunStats",
]
