r"""Patel, Savostianov & Schaub, *Convergence of gradient based training for linear Graph Neural Networks*
(arXiv 2501.14440) — the quantities, bounds and checks of §§3–5.

Notation (nodes as columns): :math:`Z = (XS^H)_{*I} \in \mathbb R^{d_x\times\bar n}`, Y (:math:`d_y\times\bar n`),
:math:`W = (W_1..W_{H+1})`, :math:`\mathcal L = \frac1m\|W_{H+1}\cdots W_1Z - Y\|_F^2`, :math:`m = \bar nd_y`,
:math:`\tilde L_H = \inf\mathcal L`, relative loss :math:`L = \mathcal L - \tilde L_H`,
:math:`\beta = 4^{-(H-1)}\prod_{\ell\ge2}\sigma^2_{\min}(W_\ell(0))`, :math:`r = \min_{\ell\ge2}\sigma_{\min}(W_\ell(0))/2`.

Model and starts live in :mod:`gnndyn.models.patel` (``patel_gnn``, ``patel_objective``, ``z_data``, ``layers``,
``set_layers``, ``widths_report``) and :mod:`gnndyn.models.patel_init` (``zero_first_layer``, ``xavier``,
``small_random``, ``balanced``, ``make_init``); the normalized flow is :func:`gnndyn.training.flow.normalized_flow`.

Public API (weights are lists of float64 arrays :math:`[W_1..W_{H+1}]`; checks return
:class:`~gnndyn.theory.verdict.Verdict` s with margins):

* :mod:`.problem` — ``make_problem(Z, Y, widths) -> Problem`` (Z, Y, widths, spectrum with σ_small, ``L_tilde``,
  ``m``, ``min_norm_solution`` = YZ^†), ``problem_from_data(data, Y, widths)``; ``loss``, ``excess``, ``gradients``
  (eq. (3.4)), ``grad_norm2``, ``beta``, ``radius``, ``rate`` (βσ²_small/m), ``distance``, ``torch_loss``.
* :mod:`.path` — ``run_path(problem, Ws0, rule='flow'|'normalized-flow'|'gd', times=..., steps=..., eta=...,
  **solver) -> Path`` (times, losses, weight snapshots).
* :mod:`.fast_paths` — the same three rules on the Z form in NumPy with the closed-form gradients, for long runs:
  ``solve(problem, Ws0, rule=..., T=..., stop_level=...)`` (until a level, thinned), ``flow_path``,
  ``normalized_flow_path``, ``descent_path`` (on a given grid), ``Field`` (the flat field) and ``rk4_step``.
* :mod:`.flow_bounds` — ``check_thm31(problem, path)`` (Thm 3.1 along the path; margin in nats; measured rate),
  ``check_hypothesis(problem, Ws0)`` (eq. (3.8)), ``hypothesis(problem, Ws0, factor=4)``,
  ``check_chatterjee(problem, path)`` (Thm 3.2: PL ratio and ball), ``check_weights_bound``,
  ``remark33_thresholds(problem)`` / ``check_remark33(problem, a)`` (printed, re-derived, exact),
  ``check_remark34(problem, path, tol)``, ``relative_losses(problem, path)`` (the plotted quantity),
  ``fit_rate(problem, path)`` (measured rate against βσ²_small/m, plateau).
* :mod:`.energy` — ``imbalances``, ``balance_residual``, ``balance_series(path)``, ``imbalance_drift(path)``,
  ``check_balance_conserved(path, tol)``, ``energy`` (``weight_energy`` at package level: the name ``energy`` is the
  module), ``min_energy(problem)`` (Thm 4.2), ``check_thm42(problem, Ws)``, ``thm44_conditions`` /
  ``check_thm44(problem, Ws0, path=None)`` (both readings of m), ``margin_44``, ``search_44``,
  ``check_44_feasibility``, ``feasible_44_start``.
* :mod:`.descent` — ``contraction``, ``check_thm51(problem, path, M=None)``, ``estimate_M`` (lower estimate from
  sampled points with exact Hessians), ``step_bound``, ``check_step_condition`` (an estimate),
  ``check_gd_hypothesis`` (16L(0)/r² < βσ²/m), ``sharpness`` (λ_max, 2/λ_max), ``remark52_iterations``, ``check_remark52``.
"""

from gnndyn.theory.patel import descent, energy, fast_paths, flow_bounds, path, problem
from gnndyn.theory.patel.descent import (
    check_gd_hypothesis,
    check_remark52,
    check_step_condition,
    check_thm51,
    contraction,
    estimate_M,
    remark52_iterations,
    sharpness,
    step_bound,
)
from gnndyn.theory.patel.energy import (
    balance_residual,
    balance_series,
    check_44_feasibility,
    check_balance_conserved,
    check_thm42,
    check_thm44,
    feasible_44_start,
    imbalance_drift,
    imbalances,
    margin_44,
    min_energy,
    product_error,
    search_44,
    thm44_conditions,
)
from gnndyn.theory.patel.energy import (
    energy as weight_energy,
)
from gnndyn.theory.patel.flow_bounds import (
    chatterjee_series,
    check_chatterjee,
    check_hypothesis,
    check_remark33,
    check_remark34,
    check_thm31,
    check_weights_bound,
    fit_rate,
    hypothesis,
    noise_floor,
    printed_assumptions,
    relative_losses,
    remark33_thresholds,
)
from gnndyn.theory.patel.path import RULES, Path, run_path
from gnndyn.theory.patel.problem import (
    PAPER,
    Problem,
    beta,
    distance,
    end_to_end,
    excess,
    grad_norm2,
    gradients,
    loss,
    make_problem,
    parameter_count,
    problem_from_data,
    radius,
    rate,
    sigma_min,
    torch_loss,
)

__all__ = [
    "PAPER",
    "RULES",
    "Path",
    "Problem",
    "balance_residual",
    "balance_series",
    "beta",
    "chatterjee_series",
    "check_44_feasibility",
    "check_balance_conserved",
    "check_chatterjee",
    "check_gd_hypothesis",
    "check_hypothesis",
    "check_remark33",
    "check_remark34",
    "check_remark52",
    "check_step_condition",
    "check_thm31",
    "check_thm42",
    "check_thm44",
    "check_thm51",
    "check_weights_bound",
    "contraction",
    "descent",
    "distance",
    "end_to_end",
    "energy",
    "estimate_M",
    "fast_paths",
    "excess",
    "feasible_44_start",
    "fit_rate",
    "flow_bounds",
    "grad_norm2",
    "gradients",
    "hypothesis",
    "imbalance_drift",
    "imbalances",
    "loss",
    "make_problem",
    "margin_44",
    "min_energy",
    "noise_floor",
    "parameter_count",
    "path",
    "printed_assumptions",
    "problem",
    "problem_from_data",
    "product_error",
    "radius",
    "rate",
    "relative_losses",
    "remark33_thresholds",
    "remark52_iterations",
    "run_path",
    "search_44",
    "sharpness",
    "sigma_min",
    "step_bound",
    "thm44_conditions",
    "torch_loss",
    "weight_energy",
]
