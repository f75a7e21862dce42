r"""Awasthi et al. (paper 001): the claims about the figures (§5, Fig. 1 and Fig. 2) and App. C eq. (46).

Holds: §5's remark on Fig. 1 that the convergence rate grows with d (:func:`check_larger_d_faster`), the
linear convergence of population GD on the deep linear GNN that Thm 2 and Fig. 2 state
(:func:`check_linear_convergence`), and App. C eq. (46), the loss of the deep linear GNN on a graph with
unequal degrees (:func:`check_eq46`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gnndyn.theory.awasthi.assumptions import PAPER, degree_assumption
from gnndyn.theory.awasthi.rates import fit_convergence
from gnndyn.theory.verdict import Verdict


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
    :math:`E_i` carries an error :math:`\delta E_i \le c\,\varepsilon\,(\|M_i^L\|_F + \|(M_i^*)^L\|_F)` with
    :math:`c = L r` (L matrix products of r × r matrices, ε the float64 unit roundoff), so
    :math:`|\delta L| \le \sqrt{2L}\,c\varepsilon S + \frac12 (c\varepsilon S)^2`; τ is 4× that (both sides carry such
    an error), and never below the relative 10⁻⁹ used without ``scale``. Holds iff
    :math:`|L_{46} - L| \le \tau`; margin :math:`(\tau - |L_{46} - L|)/|L|` (relative, ≥ 0 iff it holds).
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
        holds=bool(diff <= tol), margin=float((tol - diff) / ref), where=f"{where} (L = {depth}, {'regular graph' if regular else 'unequal degrees'})",
        assumptions={}, applicable=True,
        details={"exact": exact, "eq46": eq46, "relative_difference": rel, "tolerance": tol,
                 "floating_point_tolerance": tol_fp},
    )


__all__ = [
    "check_larger_d_faster", "check_linear_convergence", "check_eq46",
]
