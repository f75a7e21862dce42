r"""Awasthi et al. (paper 001), §4 / App. C: the deep linear GNN on a d-regular graph.

Holds: the constants of Lemma 12 (u_i, ℓ_i, η_i), Lemma 13 (δ_i) and Thm 2, eq. (25) (η₀)
(:class:`Thm2Constants`, :func:`thm2_constants`); g_t of eq. (42) (:func:`thm2_g`); the running reductions
over the eigen-coordinates σ_{i,t} of M_t = W₁ + dW₂ (:class:`LinearRunStats`); Lemma 12 (singular-value
range; :func:`check_lemma12`), Lemma 13 (gradient bounds; :func:`check_lemma13`), Thm 2 (iteration count,
eq. (24) as printed and the proof's repaired form; :func:`thm2_T_literal`, :func:`thm2_T_proof`,
:func:`check_thm2`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gnndyn.theory.awasthi.assumptions import A_ETA_L12, PAPER, RTOL
from gnndyn.theory.awasthi.rates import iterations_to_reach
from gnndyn.theory.verdict import Verdict


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


__all__ = [
    "Thm2Constants", "thm2_constants", "thm2_g", "LinearRunStats", "check_lemma12", "check_lemma13", "thm2_T_literal",
    "thm2_T_proof", "check_thm2",
]
