r"""The ≲ statements of Keriven, checked as rates in the depth L: Cor 1, Thm 3, Thm 4 — and Def. 1.

A statement :math:`Q(L) \lesssim \lambda^{rL}` hides constants independent of L and n, so a single
value cannot violate it; its content is the exponent. We fit :math:`\log Q(L) = a - \hat r L` by least
squares over several depths and compare the fitted decay rate :math:`\hat r` with the predicted
:math:`r\log(1/\lambda)` (natural logarithms throughout): the statement is consistent with the
measurement when :math:`\hat r \ge r\log(1/\lambda)` up to twice the fit's standard error.

Expansion rate (§3.1): :math:`s = \max_k s_k \le \lambda^{-\alpha}`, i.e. the smallest admissible
:math:`\alpha = \max(0, \log s/\log(1/\lambda))`.

* eq. (11): :math:`\xi_q(\alpha) = \frac{1-(2q+1)\alpha+q\alpha^2}{2(1-\alpha)}`, positive for
  :math:`\alpha < 1 + \frac{1}{2q} - \sqrt{1+\frac{1}{4q^2}}` (eq. (37); ≈ 0.38 for q = 1, 0.21 for q = 2);
* Cor 1, eq. (8): for :math:`0 \le \alpha < 1-\sqrt{1-1/q}` and :math:`q\alpha < \beta < \frac{1-q\alpha}{1-\alpha}`,
  :math:`\mathcal E(B^{(\beta L)}) \lesssim \frac1n(\lambda^{(\beta-q\alpha)L} + \lambda^{(1-q\alpha-(1-\alpha)\beta)L})`;
* Thm 4, eq. (16): :math:`\delta \lesssim \lambda^{\xi_q(\alpha)L} + \lambda^{-\alpha L}\|1_n^\top B^{(L)}\|_2`
  (the proof picks :math:`\beta = \frac12(\frac{q\alpha}{1-\alpha} + 1 - q\alpha)` inside
  :math:`(\frac{q\alpha}{1-\alpha}, 1-q\alpha)`; that choice supports only :math:`(1-\alpha)\xi_q(\alpha)`,
  and the best β gives :func:`thm4_exponent_from_proof` — ξ_q(α) exactly at α = 0);
* Thm 3: case 1, eq. (25): :math:`\delta \lesssim D_F^{-1}(\lambda^{\xi_q(\alpha)L} + \lambda^{-\alpha L}\bar\delta)`;
  case 2, eqs. (28), (30): :math:`\delta \lesssim \lambda^{rL} + \lambda^{-\alpha L}\sqrt{\bar\delta}` with
  :math:`r = \xi_2(\alpha)` (regression) or :math:`r = \min(\xi_1(\alpha), (1-3\alpha)/2)` (classification,
  α < 1/3; the statement's condition on L omits the ½ of eq. (30)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from gnndyn.errors import GnndynError
from gnndyn.theory.verdict import Verdict

TOL_SE = 2.0  # a fitted rate may fall short of the predicted one by this many standard errors


# --------------------------------------------------------------------------------------------- α, ξ, ranges
def expansion_rate(s: Sequence[float] | float, lam: float) -> float:
    """The smallest α ≥ 0 with max_k s_k ≤ λ^{−α} (§3.1); ``nan`` when λ ∉ (0, 1)."""
    smax = float(np.max(s))
    if not 0 < lam < 1:
        return math.nan
    if smax <= 1 + 1e-12:  # s ≤ 1 up to rounding (orthogonal weights): α = 0
        return 0.0
    return math.log(smax) / math.log(1 / lam)


def xi(q: int, alpha: float) -> float:
    """ξ_q(α) of Keriven eq. (11)."""
    _check_q(q)
    return (1 - (2 * q + 1) * alpha + q * alpha ** 2) / (2 * (1 - alpha))


def alpha_max_thm3(q: int) -> float:
    """The root of ξ_q: ξ_q(α) > 0 for 0 ≤ α < 1 + 1/(2q) − √(1 + 1/(4q²)) (eq. (37))."""
    _check_q(q)
    return 1 + 1 / (2 * q) - math.sqrt(1 + 1 / (4 * q * q))


def alpha_max_cor1(q: int) -> float:
    """Cor 1's range: α < 1 − √(1 − 1/q) (App. A.4); 1 for classification (q = 1)."""
    _check_q(q)
    return 1 - math.sqrt(1 - 1 / q)


def beta_range_cor1(q: int, alpha: float) -> tuple[float, float]:
    """Cor 1: qα < β < (1 − qα)/(1 − α)."""
    return q * alpha, (1 - q * alpha) / (1 - alpha)


def beta_range_thm4(q: int, alpha: float) -> tuple[float, float, float]:
    """Thm 4's proof: qα/(1−α) < β < 1 − qα, and the midpoint it uses."""
    lo, hi = q * alpha / (1 - alpha), 1 - q * alpha
    return lo, hi, 0.5 * (lo + hi)


def cor1_exponent(q: int, alpha: float, beta: float) -> float:
    """Cor 1, eq. (8): ℰ(B^(βL)) ≲ λ^{rL}/n with r = min(β − qα, 1 − qα − (1 − α)β)."""
    return min(beta - q * alpha, 1 - q * alpha - (1 - alpha) * beta)


def thm4_exponent_from_proof(q: int, alpha: float) -> float:
    r"""The rate that the last step of App. A.9 actually supports: the two terms of (36) decay like
    :math:`\lambda^{((1-\alpha)\beta-q\alpha)L}` and :math:`\lambda^{(1-\beta-q\alpha)L}`; at the proof's midpoint β
    they are :math:`(1-\alpha)\xi_q(\alpha)` and :math:`\xi_q(\alpha)`, and the best β = 1/(2 − α) gives
    :math:`\frac{2(1-\alpha)}{2-\alpha}\xi_q(\alpha)` — equal to ξ_q(α) only at α = 0 (the statement's
    :math:`\lambda^{\xi_q(\alpha)L}` is slightly optimistic for α > 0)."""
    return 2 * (1 - alpha) / (2 - alpha) * xi(q, alpha)


def thm3_exponent(q: int, alpha: float, case: int) -> float:
    """The exponent r of λ^{rL} in Thm 3 (eqs. (25), (28), (30)) — and Thm 4 (eq. (16)) for case 1."""
    if case == 1 or q == 2:
        return xi(q, alpha)
    return min(xi(1, alpha), (1 - 3 * alpha) / 2)


def admissible(q: int, alpha: float) -> dict[str, bool]:
    """Which α-conditions hold: Cor 1's, Thm 3/4's (ξ_q(α) > 0 on α < 1 + 1/(2q) − √(1 + 1/(4q²)), eq. (37)),
    Thm 3 case 2(b)'s (α < 1/3).

    Thm 3/4's range is eq. (37)'s, not the sign of ξ_q alone: ξ_q is positive again for
    1 < α < (2q + 1 + √(4q² + 1))/(2q) (both of eq. (11)'s factors negative), where the proof's β-window
    qα/(1−α) < β < 1 − qα is empty; α = 1 (s = 1/λ) is outside every range."""
    _check_q(q)
    return {
        "Cor 1: α < 1 − √(1 − 1/q)": bool(alpha < alpha_max_cor1(q)) if q > 1 else bool(alpha < 1),
        "Thm 3/4: ξ_q(α) > 0": bool(alpha < alpha_max_thm3(q)),
        "Thm 3 case 2(b): α < 1/3": bool(alpha < 1 / 3),
    }


def _check_q(q: int) -> None:
    if q not in (1, 2):
        raise GnndynError(f"q is 2 for regression (MSE) or 1 for classification (cross-entropy); got {q}.")


# --------------------------------------------------------------------------------------------- fits
@dataclass(frozen=True)
class Fit:
    """log y = intercept + slope·x fitted by least squares; ``rate`` = −slope (decay per unit of x)."""

    slope: float
    intercept: float
    stderr: float
    r2: float
    points: int

    @property
    def rate(self) -> float:
        return -self.slope

    def as_dict(self) -> dict:
        return {**asdict(self), "rate": self.rate}


def fit_exponent(x: Sequence[float], y: Sequence[float]) -> Fit:
    """Least-squares fit of log y against x over the points where y is finite and positive."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        raise GnndynError(f"fitting an exponent needs ≥ 2 positive finite values; got {int(ok.sum())} of {y.size}.")
    xs, ly = x[ok], np.log(y[ok])
    if np.ptp(xs) == 0:
        raise GnndynError("fitting an exponent needs at least two different depths.")
    if ok.sum() == 2:
        slope = (ly[1] - ly[0]) / (xs[1] - xs[0])
        return Fit(float(slope), float(ly[0] - slope * xs[0]), 0.0, 1.0, 2)
    from scipy import stats  # scipy.stats loads in most of a second: only when a rate is fitted

    r = stats.linregress(xs, ly)
    return Fit(float(r.slope), float(r.intercept), float(r.stderr), float(r.rvalue ** 2), int(ok.sum()))


def check_rate(name: str, paper: str, statement: str, x: Sequence[float], y: Sequence[float], predicted: float, *,
               assumptions: dict[str, bool] | None = None, what: str = "", details: dict | None = None) -> Verdict:
    """A ≲ statement Q(L) ≲ e^{−predicted·L} checked as a rate: fitted decay rate ≥ predicted (up to
    ``TOL_SE`` standard errors). ``margin`` = fitted − predicted; ``details`` has both and their ratio."""
    fit = fit_exponent(x, y)
    assumptions = dict(assumptions or {})
    if predicted <= 0:
        holds, note = True, "the predicted exponent is ≤ 0: the statement promises no decay here"
    else:
        holds, note = fit.rate + TOL_SE * fit.stderr >= predicted, ""
    ratio = fit.rate / predicted if predicted != 0 else math.inf
    bad = [k for k, v in assumptions.items() if not v]
    where = (f"{what}: fitted rate {fit.rate:.4g} per layer vs predicted {predicted:.4g} (ratio {ratio:.3g}, "
             f"R² {fit.r2:.3f}, {fit.points} depths)")
    if note:
        where += f"; {note}"
    if not holds and bad:
        where += "; slower decay explained by the failed condition(s): " + "; ".join(bad)
    return Verdict(
        name=name, paper=paper, statement=statement, holds=bool(holds), margin=float(fit.rate - predicted), where=where,
        assumptions=assumptions, applicable=all(assumptions.values()),
        details={"fit": fit.as_dict(), "fitted_rate": fit.rate, "predicted_rate": predicted, "ratio": ratio,
                 "x": [float(v) for v in x], "y": [float(v) for v in y], **(details or {})},
    )


# --------------------------------------------------------------------------------------------- Def. 1
@dataclass(frozen=True)
class Stationarity:
    """Keriven Def. 1, eq. (10) at one point: ‖∂𝓛/∂W⁽ᵏ⁾‖_F ≤ δ per layer, and the global δ.

    ``delta_global`` is max over all layers k = 0..L; ``delta_def1`` over 1 ≤ k ≤ L as Def. 1 is printed
    (the first layer W⁽⁰⁾ left out); ``delta_inner`` over k < L (every layer but the output layer).
    """

    per_layer: list[bool]
    delta_global: float
    delta_def1: float
    delta_inner: float
    delta_output: float
    is_global: bool


def stationarity(grad_norms: Sequence[float], delta: float = 0.0) -> Stationarity:
    g = np.asarray(grad_norms, dtype=np.float64)
    return Stationarity(
        per_layer=[bool(v <= delta) for v in g],
        delta_global=float(g.max()),
        delta_def1=float(g[1:].max()) if g.size > 1 else float(g.max()),
        delta_inner=float(g[:-1].max()) if g.size > 1 else math.nan,
        delta_output=float(g[-1]),
        is_global=bool(g.max() <= delta),
    )


def first_stationary_step(steps: Sequence[int], global_delta: Sequence[float], delta: float) -> int | None:
    """The first step from which the run stays globally δ-stationary to its end (None if never)."""
    g = np.asarray(global_delta, dtype=np.float64)
    st = np.asarray(steps)
    above = np.flatnonzero(~(g <= delta))
    if above.size == 0:
        return int(st[0]) if st.size else None
    last = int(above[-1])
    return int(st[last + 1]) if last + 1 < st.size else None
