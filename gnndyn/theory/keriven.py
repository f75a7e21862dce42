r"""Keriven, *Backward oversmoothing: why is it hard to train deep GNNs?* — bounds and checks.

Notation (paper §2): P the propagation operator with second eigenvalue modulus λ (Assumption 1),
:math:`s_k = \|W^{(k)}\|_2`, :math:`s = \max_k s_k`, :math:`s^{(j:k)} = \prod_{\ell=j}^{k-1} s_\ell`
(App. A), ℰ the smoothing measure of eq. (6).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gnndyn.theory.verdict import Verdict

RTOL = 1e-9  # relative slack allowed for rounding when comparing an exact inequality


def thm1_bound(e0: float, lam: float, s: Sequence[float], *, per_layer: bool = True) -> np.ndarray:
    r"""Keriven Thm 1, eq. (7): :math:`\mathcal E(X^{(k)}) \le (\lambda s)^k \mathcal E(X^{(0)})`, k = 0..L.

    With ``per_layer=True`` the tighter form from the proof (App. A.1),
    :math:`\lambda^k s^{(0:k)} \mathcal E(X^{(0)})`, where :math:`s^{(0:k)} = \prod_{j<k} s_j`.
    ``s`` holds :math:`s_0, \dots, s_L` (the bound at k uses :math:`s_0..s_{k-1}`).
    """
    s = np.asarray(s, dtype=np.float64)
    k = np.arange(s.size)
    if per_layer:
        prods = np.concatenate([[1.0], np.cumprod(s[:-1])])
        return e0 * lam ** k * prods
    return e0 * (lam * s.max()) ** k


def compare_bound(measured: Sequence[float], bound: Sequence[float], *, start: int = 0) -> tuple[bool, float, int, float]:
    """(holds, margin, index, ratio) of measured ≤ bound, with the tightest point chosen by relative slack.

    ``margin`` is bound − measured at that point (negative at the worst violation when violated);
    ``ratio`` = measured/bound there.
    """
    m = np.asarray(measured, dtype=np.float64)[start:]
    b = np.asarray(bound, dtype=np.float64)[start:]
    ok = m <= b * (1 + RTOL) + 1e-300
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(b > 0, m / b, np.where(m > 0, np.inf, 0.0))
    i = int(np.nanargmax(ratio))
    return bool(ok.all()), float(b[i] - m[i]), i + start, float(ratio[i])


def check_thm1(
    e_forward: Sequence[float],
    lam: float,
    s: Sequence[float],
    *,
    assumptions: dict[str, bool] | None = None,
    series: str = "gnn",
) -> Verdict:
    """Check Thm 1 layer by layer with the measured λ and s_k (per-layer product form; the max-s form
    is reported in ``details``). ``e_forward[k]`` = ℰ(X⁽ᵏ⁾), k = 0..L."""
    e = np.asarray(e_forward, dtype=np.float64)
    bound = thm1_bound(float(e[0]), lam, s[: e.size], per_layer=True)
    bound_max = thm1_bound(float(e[0]), lam, s[: e.size], per_layer=False)
    holds, margin, k, ratio = compare_bound(e, bound, start=1 if e.size > 1 else 0)
    holds_max, margin_max, k_max, _ = compare_bound(e, bound_max, start=1 if e.size > 1 else 0)
    assumptions = dict(assumptions or {})
    return Verdict(
        name="keriven.thm1",
        paper="Keriven, Thm 1, eq. (7)",
        statement="ℰ(X⁽ᵏ⁾) ≤ λᵏ s^(0:k) ℰ(X⁽⁰⁾) ≤ (λs)ᵏ ℰ(X⁽⁰⁾) for every layer k",
        holds=holds and holds_max,
        margin=margin,
        where=f"layer {k} of {series} (measured/bound = {ratio:.3g})",
        assumptions=assumptions,
        applicable=all(assumptions.values()),
        details={
            "lambda": lam,
            "s": [float(x) for x in s],
            "s_max": float(np.max(s)),
            "lambda_s_max": float(lam * np.max(s)),
            "bound_per_layer": bound.tolist(),
            "bound_max_s": bound_max.tolist(),
            "measured": e.tolist(),
            "holds_per_layer_form": holds,
            "holds_max_s_form": holds_max,
            "margin_max_s_form": margin_max,
            "tightest_layer_max_s_form": k_max,
        },
    )


A1 = "A1: P symmetric, stochastic, 1 simple, λ < 1"
A2 = "A2: ρ 1-Lipschitz and |ρ(x)| ≤ |x|"


def assumptions_1_2(facts, activation) -> dict[str, bool]:
    """Keriven Assumptions 1 and 2, measured on the operator's spectral facts and the activation."""
    return {A1: bool(facts.assumption_1), A2: bool(activation.assumption_2)}
