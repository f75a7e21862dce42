r"""Awasthi et al. (paper 001): iteration counts and fitted convergence rates, and Thm 1 read as a rate.

Holds: Thm 1 (§3, iteration count T = O(n⁴h²(d+1)/ε² · log(nh/ε)), checked as a rate since its constant is
unspecified; :func:`thm1_shape`, :func:`check_thm1_rate`), and the tools the rate statements of §3–§5 share:
the first step a loss curve reaches a threshold (:func:`iterations_to_reach`) and the linear / power-law fits
of a loss curve over its convergence window (:class:`RateFit`, :func:`fit_convergence`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gnndyn.theory.awasthi.assumptions import A_SIGMA1, PAPER, relu_assumptions
from gnndyn.theory.verdict import Verdict


def thm1_shape(eps: np.ndarray, n: int, h: int, d: int) -> np.ndarray:
    """Thm 1's iteration count without its constant: n⁴h²(d+1)/ε² · log(nh/ε)."""
    eps = np.asarray(eps, dtype=np.float64)
    return n ** 4 * h ** 2 * (d + 1) / eps ** 2 * np.log(n * h / eps)


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


__all__ = [
    "thm1_shape", "iterations_to_reach", "RateFit", "fit_convergence", "check_thm1_rate",
]
