r"""Awasthi et al. (paper 001): the assumptions of §3 and §4 as gnndyn reads them at finite n, their
fixed names, and the tolerances shared by every check of the paper.

Holds: the degree condition "d = o(√n)" of Lemma 5 (:func:`degree_assumption`), Lemma 1's step-size
interval η ∈ [1/(16π(d+1)A), 1/(6π(d+1)A)] (:func:`lemma1_eta_range`), the assumptions of the §3 statements
(:func:`relu_assumptions`: d = o(√n), ‖w*_j‖ = 1, Lemma 1's η; Thm 1's σ = 1) and of the §4 statements
(:func:`linear_assumptions`: d-regular graph, W₁,₀ = W₂,₀ = I, W₁*, W₂* symmetric positive definite,
η ≤ η₀ of Thm 2, eq. (25)).

Finite-n readings (the paper states asymptotics; gnndyn names the number it uses):

* "d = o(√n)": the proof of Lemma 5 (B_t ≥ (n² − nd²)/π − nd² ≥ n²/(4π)) needs d² ≤ 3n/(4(1+π)),
  i.e. d ≤ 4.25 at n = 100 — so *none* of the paper's own degrees {5, 10, 30, 80, 99} meets it;
  the ratio d/√n is reported beside it.
* "ℓ_t ≥ 1 − o(1)" (Lemmas 3, 5): ℓ_t ≥ 0.9 (:data:`ELL_ONE`), with α_t ≥ −1/100 (:data:`ALPHA_MIN`).

The assumption names are fixed strings, so that the verdicts of several seeds aggregate by key.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gnndyn.theory.awasthi.linear import Thm2Constants


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


def linear_assumptions(*, regular: bool, identity_init: bool, pd_teacher: bool, eta_paper: float | None = None,
                       consts: Thm2Constants | None = None, commute: bool | None = None) -> dict[str, bool]:
    out = {A_REGULAR: bool(regular), A_IDENTITY: bool(identity_init), A_PD: bool(pd_teacher)}
    if commute is not None:
        out[A_COMMUTE] = bool(commute)
    if eta_paper is not None and consts is not None:
        out[A_ETA_THM2] = bool(eta_paper <= consts.eta0_max * (1 + RTOL))
    return out


__all__ = [
    "PI", "PAPER", "RTOL", "A_SQRT_N", "A_ETA_L1", "A_UNIT", "A_SIGMA1", "A_ESCAPED", "A_REGULAR", "A_IDENTITY",
    "A_PD", "A_ETA_L12", "A_ETA_THM2", "A_COMMUTE", "ELL_ONE", "ALPHA_MIN", "degree_assumption", "lemma1_eta_range",
    "relu_assumptions", "linear_assumptions",
]
