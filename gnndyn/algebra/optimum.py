r"""The least-squares optimum of a linear model on propagated features, and its rank-limited form.

For a linear GNN whose end-to-end map :math:`\tilde W` acts on a fixed :math:`G = (XS^H)_{*I}`
(Xu et al. Def. 3, eq. (6); Patel et al. eq. (2.2) and Example 2.2), the best squared loss is

* :math:`\|Y(I - \mathbf P)\|_F^2` when every hidden width is at least :math:`\min(m_x, m_y)` — least
  squares, :math:`\mathbf P` the projector onto the row space of G (the minimum-norm minimiser is
  :math:`\tilde W = YG^\dagger`, Patel et al. §4);
* :math:`\|Y(I-\mathbf P)\|_F^2 + \sum_{i>r}\sigma_i(Y\mathbf P)^2` when the rank of :math:`\tilde W` is capped at
  :math:`r < \min(m_x, m_y)` by a narrow width (Eckart–Young on the projected target).

Values are of the sum of squares, with no ½ and no normalisation: Xu et al.'s loss is this value, Patel et
al.'s :math:`\tilde L_H` is it divided by :math:`m = \bar n d_y`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gnndyn.algebra.spectrum import Spectrum, as_float64, row_space


@dataclass(frozen=True)
class Optimum:
    r"""The global minimum value :math:`L^*` of the squared loss over a linear model (Def. 3, eq. (6)).

    Attributes:
        value: :math:`L^*` when ``exact``; otherwise the lower bound (the least-squares value).
        exact: whether ``value`` is the exact optimum.
        case: ``least-squares``, ``rank-constrained``, ``nested-rank (bounds meet)`` or ``nested-rank (bounds)``.
        lower, upper: bounds on :math:`L^*` (both equal ``value`` when exact).
        projected: :math:`\|Y(I - \mathbf P)\|_F^2` with :math:`\mathbf P` the projector onto the row space
            of G — the value of the blog's identity; equal to ``value`` in the least-squares case.
        rank_cap: the rank bound on the end-to-end map (min of the hidden widths), None if none.
        spectrum: the spectrum of G (or of the stacked blocks).
        search: for the nested-rank cases, what :func:`nested_rank_search` did (values per start, iterations).
    """

    value: float
    exact: bool
    case: str
    lower: float
    upper: float
    projected: float
    rank_cap: int | None
    spectrum: Spectrum
    basis: np.ndarray | None = field(default=None, repr=False)
    search: dict[str, Any] | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "exact": self.exact, "case": self.case, "lower": self.lower, "upper": self.upper,
                "projected": self.projected, "rank_cap": self.rank_cap, **{f"G_{k}": v for k, v in self.spectrum.as_dict().items()}}


def least_squares_pieces(G_blocks: Sequence[torch.Tensor], Y: np.ndarray, method: str) -> tuple[Spectrum, np.ndarray, float, np.ndarray]:
    r"""The spectrum and row-space basis Q of the stacked blocks, the least-squares residual
    :math:`\|Y(I - QQ^\top)\|_F^2` and :math:`YQ`."""
    spec, Q = row_space(G_blocks, method=method, basis=True)
    YQ = Y @ Q
    proj = float(((Y - YQ @ Q.T) ** 2).sum())  # the residual itself, not ‖Y‖² − ‖YQ‖² (no cancellation)
    return spec, Q, proj, YQ



def least_squares_optimum(G_blocks: Sequence[torch.Tensor | np.ndarray], Y: torch.Tensor | np.ndarray,
                          rank_cap: int | None, *, method: str = "auto") -> Optimum:
    r"""The optimum over :math:`\tilde W` (rank at most ``rank_cap``; None for no cap) of
    :math:`\|\tilde W G - Y\|_F^2`, G the vertically stacked ``G_blocks``: the least-squares case when
    ``rank_cap`` is None or at least :math:`\min(m_x, m_y)`, the rank-constrained case otherwise."""
    Yn = as_float64(Y)
    m_x, m_y = sum(as_float64(b).shape[0] for b in G_blocks), Yn.shape[0]
    spec, Q, proj, YQ = least_squares_pieces(G_blocks, Yn, method)
    if rank_cap is None or rank_cap >= min(m_x, m_y):
        return Optimum(proj, True, "least-squares", proj, proj, proj, rank_cap, spec, Q)
    sv = np.linalg.svd(YQ, compute_uv=False) if YQ.size else np.zeros(0)
    val = proj + float((sv[rank_cap:] ** 2).sum())
    return Optimum(val, True, "rank-constrained", val, val, proj, rank_cap, spec, Q)


__all__ = ["Optimum", "least_squares_optimum", "least_squares_pieces"]
