"""Linear algebra that more than one paper's theory needs, kept once, outside every paper's package.

* :mod:`~gnndyn.algebra.propagation` — the propagated features :math:`G_l = X(S^l)_{*I}` (Xu et al.;
  Patel et al.'s :math:`Z = (XS^H)_{*I}`), by sparse products;
* :mod:`~gnndyn.algebra.spectrum` — their singular values: σ_min (Xu et al.), σ_small with its numerical-rank
  tolerance (Patel et al.), σ_max, rank and a row-space basis;
* :mod:`~gnndyn.algebra.optimum` — the least-squares optimum and its rank-limited form (Xu et al.'s
  :math:`L^*_H`; Patel et al.'s :math:`\\tilde L_H` times m).
"""

from gnndyn.algebra.optimum import Optimum, least_squares_optimum, least_squares_pieces
from gnndyn.algebra.propagation import propagated_blocks
from gnndyn.algebra.spectrum import DENSE_LIMIT, EPS, Spectrum, as_float64, graph_condition, row_space

__all__ = ["DENSE_LIMIT", "EPS", "Optimum", "Spectrum", "as_float64", "graph_condition", "least_squares_optimum",
           "least_squares_pieces", "propagated_blocks", "row_space"]
