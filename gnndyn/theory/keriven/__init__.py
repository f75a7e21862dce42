r"""Keriven, *Backward oversmoothing: why is it hard to train deep GNNs?* — bounds and checks.

Notation (paper §2, App. A): P the propagation operator with second eigenvalue modulus λ
(Assumption 1), weights :math:`W^{(0)},\dots,W^{(L)}`, :math:`s_k = \|W^{(k)}\|_2`, :math:`s = \max_k s_k`,
:math:`s^{(j:k)} = \prod_{\ell=j}^{k-1} s_\ell`, :math:`S_L = s^{(0:L+1)}`,
:math:`A_L = S_L^2D_\mathcal{X}D_\mathcal{L} + S_LD'_\mathcal{L}`, ℰ the smoothing measure of eq. (6),
:math:`B^{(k)} = \partial\mathcal L/\partial H^{(k)}` the backward signal of eq. (5).

* :mod:`.assumptions` — Assumptions 1–4, their constants (D_𝒳, D_𝓛, D′_𝓛, D_ρ), :class:`Constants`;
* :mod:`.bounds` — the exact inequalities Thm 1 and Thm 2 (and the shared comparison helpers), the
  middle-layer dip of §3.2;
* :mod:`.mean_error` — the mean-error recursion and gradient chain of Thm 4's proof (App. A.9), eq. (23)
  of Thm 3's proof;
* :mod:`.rates` — α, ξ_q(α) (eq. 11), the admissible ranges of Cor 1 and Thm 3, exponent fits and the
  rate checks of the ≲ statements, Def. 1 (δ-stationarity);
* :mod:`.constructions` — Prop 1, Prop 2 (and its GNN contrast), Cor 2's points.
"""

from gnndyn.theory.keriven import assumptions, bounds, constructions, mean_error, rates
from gnndyn.theory.keriven.assumptions import (
    A1, A2, A3, A4, DEPTH, DEPTH_MIDDLE, Constants, LossConstants, assumption_notes, assumptions_1_2, assumptions_1_4,
    depth_assumption, explain, loss_constants, why_not_a1,
)
from gnndyn.theory.keriven.bounds import (
    RTOL, check_backward_dip, check_thm1, check_thm2, compare_bound, thm1_bound, thm2_bound, window_products,
)
from gnndyn.theory.keriven.constructions import (
    Evaluation, centered_labels, check_prop1, check_prop2, check_prop2_gnn, perturb_weights, prop1, prop2, prop2_closed_form,
    evaluate, prop2_data, prop2_gnn_bound, zero_output_layer,
)
from gnndyn.theory.keriven.mean_error import (
    check_gradient_bound, check_mean_error, check_thm3_mean_error, gradient_bound, mean_error_bound,
    mean_error_from_output_gradient,
)
from gnndyn.theory.keriven.rates import (
    Fit, Stationarity, admissible, alpha_max_cor1, alpha_max_thm3, beta_range_cor1, beta_range_thm4, check_rate,
    cor1_exponent, expansion_rate, first_stationary_step, fit_exponent, stationarity, thm3_exponent, thm4_exponent_from_proof, xi,
)

__all__ = [
    "assumptions", "bounds", "constructions", "mean_error", "rates",
    "A1", "A2", "A3", "A4", "DEPTH", "DEPTH_MIDDLE", "Constants", "LossConstants", "assumption_notes",
    "assumptions_1_2", "assumptions_1_4", "depth_assumption", "explain", "loss_constants", "why_not_a1",
    "RTOL", "check_backward_dip", "check_gradient_bound", "check_mean_error", "check_thm1", "check_thm2", "check_thm3_mean_error",
    "compare_bound", "gradient_bound", "mean_error_bound", "mean_error_from_output_gradient", "thm1_bound",
    "thm2_bound", "window_products",
    "Evaluation", "evaluate", "centered_labels", "check_prop1", "check_prop2", "check_prop2_gnn", "perturb_weights", "prop1", "prop2",
    "prop2_closed_form", "prop2_data", "prop2_gnn_bound", "zero_output_layer",
    "Fit", "Stationarity", "admissible", "alpha_max_cor1", "alpha_max_thm3", "beta_range_cor1", "beta_range_thm4",
    "check_rate", "cor1_exponent", "expansion_rate", "first_stationary_step", "fit_exponent", "stationarity",
    "thm3_exponent", "thm4_exponent_from_proof", "xi",
]
