r"""Propagated features of a linear GNN: the blocks :math:`G_l = X(S^l)_{*I}`, computed once by sparse products.

A linear GNN's aggregation S acts on the node side and its weights on the feature side, so the output on
the labelled nodes is a product of weight matrices times a fixed matrix of propagated features
(Xu et al. ICML 2021, eqs. (2)–(4); Patel, Savostianov & Schaub, arXiv 2501.14440, eq. (2.1) and §9 of
the notes: "the linear GNN *is* a deep linear network on Z = (XS^H)_{*I}"). This module computes those
blocks, in the papers' convention (**nodes as columns**: :math:`G_l \in \mathbb R^{m_x\times\bar n}`),
without ever forming :math:`S^H`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from gnndyn.errors import GnndynError
from gnndyn.operators.base import Operator


def propagated_blocks(op: Operator, x_rows: torch.Tensor, nodes: torch.Tensor | np.ndarray, depth: int,
                      *, path: str = "auto") -> list[torch.Tensor]:
    r"""The blocks :math:`G_l = X (S^l)_{*I}` for :math:`l = 0..H` (paper convention, :math:`m_x\times\bar n`).

    Two exact ways, both made of sparse products of size at most :math:`n \times \min(\bar n, m_x)`:

    * ``indicator`` (when :math:`\bar n \le m_x`): :math:`M_0 = E_I` (the :math:`n\times\bar n`
      selector), :math:`M_{l+1} = S M_l`, :math:`G_l = X M_l` (X sparse when it is);
    * ``features`` (when :math:`\bar n > m_x`): :math:`Z_0 = X^\top`, :math:`Z_{l+1} = S^\top Z_l`,
      :math:`G_l = (Z_l)_{I*}^\top`.

    Args:
        op: the aggregation matrix S (any gnndyn operator; it need not be symmetric).
        x_rows: node features in gnndyn's convention, ``(n, m_x)`` (so :math:`X = x_{rows}^\top`).
        nodes: the labelled node indices I.
        depth: H.
        path: ``auto``, ``indicator`` or ``features``.
    """
    n, m_x = x_rows.shape
    if op.num_nodes != n:
        raise GnndynError(f"the operator is {op.num_nodes}×{op.num_nodes} but the features have {n} rows.")
    if depth < 0:
        raise GnndynError(f"depth H must be ≥ 0; got {depth}.")
    idx = np.asarray(torch.as_tensor(nodes).cpu().numpy(), dtype=np.int64)
    if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= n:
        raise GnndynError(f"nodes must be a non-empty 1-d array of node indices in [0, {n}); got shape {idx.shape}.")
    nbar = idx.size
    if path == "auto":
        path = "indicator" if nbar <= m_x else "features"
    S = op.scipy()
    X = x_rows.detach().cpu().to(torch.float64).numpy()
    dense_frac = np.count_nonzero(X) / max(X.size, 1)
    Xs = sp.csr_matrix(X) if dense_frac < 0.2 else None
    blocks: list[np.ndarray] = []
    if path == "indicator":
        M = np.zeros((n, nbar))
        M[idx, np.arange(nbar)] = 1.0
        for l in range(depth + 1):
            blocks.append(np.asarray(Xs.T @ M) if Xs is not None else X.T @ M)
            if l < depth:
                M = S @ M
    elif path == "features":
        St = S.T.tocsr()
        Z = X
        for l in range(depth + 1):
            blocks.append(np.ascontiguousarray(Z[idx].T))
            if l < depth:
                Z = St @ Z
    else:
        raise GnndynError(f"path must be 'auto', 'indicator' or 'features'; got {path!r}.")
    return [torch.from_numpy(np.ascontiguousarray(b)) for b in blocks]


__all__ = ["propagated_blocks"]
