r"""Theory of Xu, Zhang, Jegelka & Kawaguchi, *Optimization of GNNs: implicit acceleration by skip
connections and more depth* (ICML 2021), with the corrected proof step of the 2025 blog post that
restates it (paper 004), and the σ_small variant of arXiv 2501.14440 (paper 003).

Notation is the paper's, **nodes as columns** (see :mod:`gnndyn.models.linear_gnn`):
:math:`G_l = X(S^l)_{*I} \in \mathbb R^{m_x\times\bar n}`, :math:`\mathcal G_H = [G_0; \dots; G_H]
\in \mathbb R^{(H+1)m_x\times\bar n}` (Thm 2 (i)), :math:`\bar B^{(l':l)} = B^{(l)}\cdots B^{(l')}`,
:math:`Y \in \mathbb R^{m_y\times\bar n}`, squared loss :math:`L = \|\hat Y - Y\|_F^2` (no ½, no 1/n̄).

The algebra these statements share with other papers — the blocks :math:`G_l`, σ_min / σ_small with
their rank tolerance (:func:`row_space`, :func:`graph_condition`, :class:`Spectrum`) and the least-squares
optimum (:class:`Optimum`) — lives in :mod:`gnndyn.algebra` and is re-exported here.

* :mod:`.optimum` — :math:`L^*_H` (Def. 3, eq. (6)) and :math:`L^*_{1:H}`: :func:`global_optimum`,
  :func:`nested_rank_search`;
* :mod:`.lambdas` — :math:`\lambda_{\min}((\bar B^{(1:l)})^\top\bar B^{(1:l)})` for l = 0..H
  (:func:`layer_lambdas`); :math:`\lambda^{(H)}_T` (Thm 1) and :math:`\lambda^{(1:H)}_T = \min_l \lambda^{(l)}_T`
  (Thm 2) are their running minima along a run (:func:`running_min`);
* :mod:`.margins` — Def. 4, Props. 1–3: :func:`singular_margins`, :func:`deficiency_margin`;
* :mod:`.rates` — eqs. (8), (10)–(12): :func:`check_rate_bound` and the wrappers :func:`check_thm1`,
  :func:`check_thm2`;
* :mod:`.thm3` — Thm 3, eqs. (15)–(16): :func:`thm3_terms` (product form), :func:`thm3_terms_kron`
  (explicit Kronecker products, tiny models only), :func:`check_thm3` (against −‖∇L‖² from autograd);
* :mod:`.blog` — the blog's corrected step :math:`\|\mathbf P\,\mathrm{vec}(\hat Y - Y)\|^2 = L - L^*`
  (:func:`pythagoras`) and App. A.1.3's :math:`(a-b)^2 \ge a^2 - b^2`, true only when b ≥ a or b = 0
  (:func:`original_inequality`);
* :mod:`.sources` — the citations :data:`PAPER` and :data:`BLOG` the verdicts carry.
"""

from gnndyn.algebra.optimum import Optimum, least_squares_optimum, least_squares_pieces
from gnndyn.algebra.spectrum import EPS, Spectrum, graph_condition, row_space
from gnndyn.theory.verdict import Verdict, aggregate
from gnndyn.theory.xu import blog, lambdas, margins, optimum, rates, sources, thm3
from gnndyn.theory.xu.blog import check_original_inequality, check_pythagoras, original_inequality, pythagoras
from gnndyn.theory.xu.lambdas import layer_lambdas, running_min
from gnndyn.theory.xu.margins import SingularMargin, deficiency_margin, singular_margins
from gnndyn.theory.xu.optimum import global_optimum, nested_rank_search
from gnndyn.theory.xu.rates import (
    STATEMENT_THM1, RateBound, bound_curve, check_rate_bound, check_thm1, check_thm2, monotone_runs,
)
from gnndyn.theory.xu.sources import BLOG, PAPER
from gnndyn.theory.xu.thm3 import Thm3Terms, check_thm3, thm3_terms, thm3_terms_kron

__all__ = [
    "blog", "lambdas", "margins", "optimum", "rates", "sources", "thm3",
    "BLOG", "PAPER",
    "EPS", "Optimum", "Spectrum", "graph_condition", "least_squares_optimum", "least_squares_pieces", "row_space",
    "Verdict", "aggregate",
    "global_optimum", "nested_rank_search",
    "layer_lambdas", "running_min",
    "SingularMargin", "deficiency_margin", "singular_margins",
    "RateBound", "STATEMENT_THM1", "bound_curve", "check_rate_bound", "check_thm1", "check_thm2", "monotone_runs",
    "Thm3Terms", "check_thm3", "thm3_terms", "thm3_terms_kron",
    "check_original_inequality", "check_pythagoras", "original_inequality", "pythagoras",
]
