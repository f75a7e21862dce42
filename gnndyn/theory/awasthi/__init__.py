r"""Awasthi et al., *Convergence of gradient descent for GNNs* — bounds and checks (paper 001).

§3 / App. B (one-round ReLU GNN): Lemma 5 (A, B_t, C_t), Lemma 1 (iterate lengths), Lemma 2 (smoothness
along the segments between iterates, with ηλ_max of Thm 1's descent step), Lemma 3 (escape),
Lemma 4 (PL constant), Thm 1 (iteration count, as a rate). §4 / App. C (deep linear GNN): Lemma 12
(singular-value range), Lemma 13 (gradient bounds), Thm 2 (iteration count), eq. (46).

On graphs with unequal degrees the §3 statements are checked in their primed form (A′, B′_t, C′_t, S²), which
is equivalent to the paper's on a d-regular graph (:mod:`.relu_lemmas`); asymptotic conditions are read at
finite n with the numbers named in :mod:`.assumptions`.

* :mod:`.assumptions` — the assumption names, "d = o(√n)" at finite n, Lemma 1's step-size interval, the
  assumptions of the §3 and §4 statements, the shared tolerance;
* :mod:`.relu_stats` — :class:`ReluRunStats`, the running reductions along a ReLU-GNN path;
* :mod:`.relu_lemmas` — Lemmas 1, 2, 3, 4, 5;
* :mod:`.rates` — iteration counts, fitted rates (:class:`RateFit`), Thm 1 as a rate;
* :mod:`.linear` — Lemma 12, Lemma 13 and Thm 2 with their constants (:class:`Thm2Constants`) and
  :class:`LinearRunStats`;
* :mod:`.remarks` — §5's remark on Fig. 1 (larger d converges faster), the linear convergence of Fig. 2,
  App. C eq. (46).

Each check returns a :class:`~gnndyn.theory.verdict.Verdict`; a failed assumption is listed in
``assumptions`` and makes ``applicable`` False, and the inequality is still evaluated.
"""

from gnndyn.theory.awasthi import assumptions, linear, rates, relu_lemmas, relu_stats, remarks
from gnndyn.theory.awasthi.assumptions import (
    A_COMMUTE, A_ESCAPED, A_ETA_L1, A_ETA_L12, A_ETA_THM2, A_IDENTITY, A_PD, A_REGULAR, A_SIGMA1, A_SQRT_N, A_UNIT,
    ALPHA_MIN, ELL_ONE, PAPER, PI, RTOL, degree_assumption, lemma1_eta_range, linear_assumptions, relu_assumptions,
)
from gnndyn.theory.awasthi.linear import (
    LinearRunStats, Thm2Constants, check_lemma12, check_lemma13, check_thm2, thm2_constants, thm2_g, thm2_T_literal,
    thm2_T_proof,
)
from gnndyn.theory.awasthi.rates import RateFit, check_thm1_rate, fit_convergence, iterations_to_reach, thm1_shape
from gnndyn.theory.awasthi.relu_lemmas import (
    check_lemma1, check_lemma2, check_lemma3, check_lemma4, check_lemma5, lemma1_bounds, lemma2_bound, lemma4_mu,
)
from gnndyn.theory.awasthi.relu_stats import ReluRunStats
from gnndyn.theory.awasthi.remarks import check_eq46, check_larger_d_faster, check_linear_convergence

__all__ = [
    "degree_assumption", "lemma1_eta_range", "lemma1_bounds", "lemma2_bound", "lemma4_mu", "thm1_shape", "ReluRunStats",
    "relu_assumptions", "check_lemma5", "check_lemma1", "check_lemma2", "check_lemma3", "check_lemma4", "iterations_to_reach",
    "RateFit", "fit_convergence", "check_thm1_rate", "check_larger_d_faster", "Thm2Constants", "thm2_constants",
    "thm2_g", "LinearRunStats", "linear_assumptions", "check_lemma12", "check_lemma13", "thm2_T_literal",
    "thm2_T_proof", "check_thm2", "check_linear_convergence", "check_eq46",
    "assumptions", "linear", "rates", "relu_lemmas", "relu_stats", "remarks",
    "PI", "PAPER", "RTOL", "A_SQRT_N", "A_ETA_L1", "A_UNIT", "A_SIGMA1", "A_ESCAPED", "A_REGULAR", "A_IDENTITY", "A_PD",
    "A_ETA_L12", "A_ETA_THM2", "A_COMMUTE", "ELL_ONE", "ALPHA_MIN",
]
