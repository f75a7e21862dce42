r"""Deep linear aggregate/combine GNN in the teacher–student setting, with its exact population loss.

Awasthi et al., *Convergence of gradient descent for GNNs*, §4 (eqs. 18–23) and App. C. Node inputs
:math:`x_i \sim N(0, I_r)`; each round

.. math::  x_i^{(\ell)} = W_1 x_i^{(\ell-1)} + W_2 \sum_{j \in N(i)} x_j^{(\ell-1)}, \qquad y = \sum_i x_i^{(L)}

(eqs. 18–19, open neighbourhood N(i)), the teacher with symmetric positive-definite :math:`(W_1^*, W_2^*)`,
the student with (W₁, W₂), :math:`L(W_1, W_2) = \frac12 E\|\hat y - y\|^2` (eqs. 20–21).

**Exact loss on any graph.** y is linear in the inputs, :math:`y = \sum_j T_j x_j` with :math:`T_j \in
\mathbb R^{r\times r}`, so :math:`L = \frac12\sum_j \|T_j - T_j^*\|_F^2` (the x_j are independent with identity
covariance). T is computed by a backward recursion over rounds: with :math:`U^{(L)}_j = I` and
:math:`y = \sum_j U^{(\ell)}_j x_j^{(\ell)}`,

.. math::  U^{(\ell-1)}_j = U^{(\ell)}_j W_1 + \Big(\sum_{i: j \in N(i)} U^{(\ell)}_i\Big) W_2
           = U^{(\ell)}_j W_1 + (A U^{(\ell)})_j W_2, \qquad T_j = U^{(0)}_j,

one sparse product with A per round: O(L(nnz(A) r² + n r³)). The gradient is the adjoint of that
recursion (:func:`linear_population_grad`): with :math:`\Lambda^{(0)} = T - T^*`,
:math:`\partial L/\partial W_1 = \sum_\ell\sum_j U^{(\ell)\top}_j\Lambda^{(\ell-1)}_j`,
:math:`\partial L/\partial W_2 = \sum_\ell\sum_j (AU^{(\ell)})^\top_j\Lambda^{(\ell-1)}_j`,
:math:`\Lambda^{(\ell)} = \Lambda^{(\ell-1)}W_1^\top + A\Lambda^{(\ell-1)}W_2^\top`.

**d-regular graphs** (Lemma 10, eq. 37): A1 = d1 keeps every :math:`U^{(\ell)}_j` equal, :math:`T_j = M^L` with
:math:`M = W_1 + dW_2`, and :math:`L = \frac n2\|M^L - (M^*)^L\|_F^2` (tested). Its gradient is
:math:`\partial L/\partial W_1 = n\sum_k (M^k)^\top E (M^{L-k-1})^\top`, :math:`\partial L/\partial W_2 = d\,\partial
L/\partial W_1` — Lemma 11 (eqs. 38–39) prints n/2 in place of n (see :func:`lemma11_gradient`).

**Unequal degrees.** App. C eq. (46) writes :math:`\frac12\sum_i\|M_i^L - (M_i^*)^L\|^2` with
:math:`M_i = W_1 + d_iW_2`; that is exact for L = 1 (:math:`T_j = W_1 + d_jW_2`) and for regular graphs, not
in general for L ≥ 2, where :math:`T_j` depends on the degrees along walks (:func:`appendix_c_loss`, tested).

Batched: B graphs are stacked into one block-diagonal adjacency (:class:`LinearGraphBatch`); weights
have shape (B, r, r); node j of the stack belongs to batch ``batch_index[j]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from gnndyn.data.graph import Graph
from gnndyn.errors import GnndynError
from gnndyn.models.monte_carlo import monte_carlo_mean


def _csr(a: sp.csr_matrix, dtype: torch.dtype) -> torch.Tensor:
    a = a.tocsr()
    return torch.sparse_csr_tensor(torch.from_numpy(a.indptr).long(), torch.from_numpy(a.indices).long(),
                                   torch.from_numpy(a.data).to(dtype), size=a.shape)


@dataclass
class LinearGraphBatch:
    """B graphs as one block-diagonal sparse adjacency (open neighbourhoods, no self loops).

    Attributes:
        adjacency: (N, N) torch sparse CSR, N = Σ_b n_b.
        batch_index: (N,) long, the batch of each stacked node.
        n: node counts; degrees: (N,) float; d_max, d_min per graph; ``regular`` flags.
    """

    adjacency: torch.Tensor
    batch_index: torch.Tensor
    n: list[int]
    degrees: torch.Tensor
    d_max: list[int]
    d_min: list[int]
    names: list[str]

    @property
    def batch(self) -> int:
        return len(self.n)

    @property
    def regular(self) -> list[bool]:
        return [a == b for a, b in zip(self.d_max, self.d_min)]

    @classmethod
    def from_graphs(cls, graphs: Sequence[Graph], *, dtype: torch.dtype = torch.float64) -> "LinearGraphBatch":
        if not graphs:
            raise GnndynError("LinearGraphBatch needs at least one graph.")
        mats = [g.adjacency() for g in graphs]
        big = sp.block_diag(mats, format="csr")
        n = [g.num_nodes for g in graphs]
        degs = [g.degrees() for g in graphs]
        bidx = torch.from_numpy(np.repeat(np.arange(len(graphs)), n)).long()
        return cls(adjacency=_csr(big, dtype), batch_index=bidx, n=n,
                   degrees=torch.from_numpy(np.concatenate(degs)).to(dtype),
                   d_max=[int(d.max()) if d.size else 0 for d in degs], d_min=[int(d.min()) if d.size else 0 for d in degs],
                   names=[g.name for g in graphs])

    @property
    def uniform(self) -> bool:
        """All graphs have the same number of nodes (then per-graph products are one batched matmul)."""
        return len(set(self.n)) == 1

    def propagate(self, u: torch.Tensor) -> torch.Tensor:
        """(A U)_j = Σ_{i ∈ N(j)} U_i for U of shape (N, r, r)."""
        N = u.shape[0]
        return (self.adjacency @ u.reshape(N, -1)).reshape(u.shape)

    def segment_sum(self, x: torch.Tensor) -> torch.Tensor:
        """Sum over the nodes of each graph: (N, ...) → (B, ...)."""
        if self.uniform:
            return x.reshape((self.batch, self.n[0]) + tuple(x.shape[1:])).sum(1)
        out = torch.zeros((self.batch,) + tuple(x.shape[1:]), dtype=x.dtype)
        return out.index_add_(0, self.batch_index, x)

    def right_mul(self, u: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        """U_j W_{b(j)} for U (N, r, r) and per-graph W (B, r, r)."""
        if self.uniform:
            B, r = self.batch, W.shape[-1]
            return (u.reshape(B, -1, u.shape[-1]) @ W).reshape(u.shape[0], u.shape[1], r)
        return u @ W[self.batch_index]

    def gram(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Σ_{j in graph b} U_jᵀ V_j, shape (B, r, r)."""
        if self.uniform:
            B = self.batch
            return u.reshape(B, -1, u.shape[-1]).transpose(1, 2) @ v.reshape(B, -1, v.shape[-1])
        return self.segment_sum(u.transpose(1, 2) @ v)


def _check_weights(W1: torch.Tensor, W2: torch.Tensor, graphs: LinearGraphBatch) -> None:
    if W1.dim() != 3 or W1.shape != W2.shape or W1.shape[1] != W1.shape[2]:
        raise GnndynError(f"W1 and W2 must both have shape (B, r, r); got {tuple(W1.shape)} and {tuple(W2.shape)}.")
    if W1.shape[0] != graphs.batch:
        raise GnndynError(f"the weights have batch size {W1.shape[0]} but the graph batch holds {graphs.batch} graph(s).")


def transfer_matrices(graphs: LinearGraphBatch, W1: torch.Tensor, W2: torch.Tensor, depth: int, *,
                      keep: bool = False) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
    r"""(N, r, r) matrices :math:`T_j` with :math:`y = \sum_j T_j x_j` (backward recursion of the module
    docstring). ``keep=True`` also returns :math:`[U^{(L)}, \dots, U^{(1)}]` for the adjoint pass."""
    _check_weights(W1, W2, graphs)
    if depth < 1:
        raise GnndynError(f"the depth L (number of rounds) must be ≥ 1; got {depth}.")
    N, r = graphs.batch_index.numel(), W1.shape[1]
    u = torch.eye(r, dtype=W1.dtype).expand(N, r, r).contiguous()
    kept = []
    for _ in range(depth):
        if keep:
            kept.append(u)
        u = graphs.right_mul(u, W1) + graphs.right_mul(graphs.propagate(u), W2)
    return (u, kept) if keep else u


def identity_scale(graphs: LinearGraphBatch, depth: int) -> torch.Tensor:
    r"""(B,) :math:`\sum_j c_j^2` with :math:`c = (A+I)^L\mathbf 1`: at W₁ = W₂ = I every :math:`T_j = c_j I`,
    so this is the size of the loss at the identity initialization per input dimension. n(d+1)^{2L} on a
    d-regular graph. Used to normalise the loss (``loss_scale='identity'`` in ``awasthi-fig2``)."""
    N = graphs.batch_index.numel()
    c = torch.ones(N, 1, dtype=graphs.degrees.dtype)
    for _ in range(depth):
        c = c + graphs.adjacency @ c
    return graphs.segment_sum(c[:, 0] ** 2)


def linear_population_loss(graphs: LinearGraphBatch, W1: torch.Tensor, W2: torch.Tensor, T_star: torch.Tensor,
                           depth: int, *, scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    r"""(B,) exact population loss :math:`\text{scale}\cdot\frac12\sum_j\|T_j - T_j^*\|_F^2` (eqs. 20–21).
    ``T_star`` = :func:`transfer_matrices` of the teacher. Differentiable by autograd."""
    T = transfer_matrices(graphs, W1, W2, depth)
    return scale * 0.5 * graphs.segment_sum(((T - T_star) ** 2).sum((1, 2)))


def linear_population_grad(graphs: LinearGraphBatch, W1: torch.Tensor, W2: torch.Tensor, T_star: torch.Tensor,
                           depth: int, *, scale: torch.Tensor | float = 1.0
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss (B,), ∂L/∂W₁ (B, r, r), ∂L/∂W₂ (B, r, r)) by the adjoint recursion (module docstring)."""
    T, kept = transfer_matrices(graphs, W1, W2, depth, keep=True)
    w1t, w2t = W1.transpose(1, 2), W2.transpose(1, 2)
    lam = T - T_star
    loss = 0.5 * graphs.segment_sum((lam ** 2).sum((1, 2)))
    g1 = torch.zeros_like(W1)
    g2 = torch.zeros_like(W2)
    for step, u in enumerate(reversed(kept)):  # U^{(1)}, ..., U^{(L)} with Λ^{(0)}, ..., Λ^{(L-1)}
        g1 = g1 + graphs.gram(u, lam)
        g2 = g2 + graphs.gram(graphs.propagate(u), lam)
        if step < depth - 1:
            lam = graphs.right_mul(lam, w1t) + graphs.propagate(graphs.right_mul(lam, w2t))
    s = torch.as_tensor(scale, dtype=W1.dtype)
    sb = s.reshape(-1, 1, 1) if s.dim() else s
    return s * loss, sb * g1, sb * g2


# ----------------------------------------------------------------------------- regular-graph and App. C forms
def regular_loss(M: torch.Tensor, M_star: torch.Tensor, n: int, depth: int) -> torch.Tensor:
    r"""Lemma 10, eq. (37): :math:`\frac n2\|M^L - (M^*)^L\|_F^2` with M = W₁ + dW₂ (d-regular graphs)."""
    E = torch.linalg.matrix_power(M, depth) - torch.linalg.matrix_power(M_star, depth)
    return 0.5 * n * (E ** 2).sum((-2, -1))


def lemma11_gradient(M: torch.Tensor, M_star: torch.Tensor, n: int, d: int, depth: int, *,
                     as_printed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Gradient of eq. (37): :math:`\partial L/\partial W_1 = n\sum_{k=0}^{L-1}(M^k)^\top E(M^{L-k-1})^\top`,
    :math:`\partial L/\partial W_2 = d\,\partial L/\partial W_1`, E = M^L − (M^*)^L.
    ``as_printed=True`` gives Lemma 11 (eqs. 38–39) as printed: factor n/2 and no transposes."""
    E = torch.linalg.matrix_power(M, depth) - torch.linalg.matrix_power(M_star, depth)
    g = torch.zeros_like(M)
    for k in range(depth):
        a, b = torch.linalg.matrix_power(M, k), torch.linalg.matrix_power(M, depth - k - 1)
        g = g + (a @ E @ b if as_printed else a.transpose(-2, -1) @ E @ b.transpose(-2, -1))
    g = g * (n / 2 if as_printed else n)
    return g, d * g


def appendix_c_loss(graph_degrees: torch.Tensor, W1: torch.Tensor, W2: torch.Tensor, W1s: torch.Tensor,
                    W2s: torch.Tensor, depth: int) -> torch.Tensor:
    r"""App. C eq. (46) as printed: :math:`\frac12\sum_i\|M_i^L - (M_i^*)^L\|_F^2`, :math:`M_i = W_1 + d_iW_2`
    (one graph; W's of shape (r, r)). Equal to the exact loss for L = 1 or a regular graph only."""
    d = graph_degrees.reshape(-1, 1, 1).to(W1.dtype)
    Mi = W1 + d * W2
    Ms = W1s + d * W2s
    E = torch.linalg.matrix_power(Mi, depth) - torch.linalg.matrix_power(Ms, depth)
    return 0.5 * (E ** 2).sum()


def appendix_c_scale(graph_degrees: torch.Tensor, W1: torch.Tensor, W2: torch.Tensor, W1s: torch.Tensor,
                     W2s: torch.Tensor, depth: int) -> float:
    r""":math:`S = (\sum_i (\|M_i^L\|_F + \|(M_i^*)^L\|_F)^2)^{1/2}`: the size of the terms whose difference
    eq. (46) squares, which sets its floating-point error (see ``gnndyn.theory.awasthi.check_eq46``)."""
    d = graph_degrees.reshape(-1, 1, 1).to(W1.dtype)
    a = torch.linalg.matrix_norm(torch.linalg.matrix_power(W1 + d * W2, depth))
    b = torch.linalg.matrix_norm(torch.linalg.matrix_power(W1s + d * W2s, depth))
    return float(torch.sqrt(((a + b) ** 2).sum()))


# ----------------------------------------------------------------------------- Monte Carlo
def linear_forward(graph: Graph, W1: torch.Tensor, W2: torch.Tensor, depth: int, x: torch.Tensor) -> torch.Tensor:
    r"""Explicit message passing (eqs. 18–19) on inputs x of shape (n, k, r) (k samples): returns
    :math:`y = \sum_i x_i^{(L)}`, shape (k, r). Independent of :func:`transfer_matrices` (used to test it)."""
    a = _csr(graph.adjacency(), x.dtype)
    n, k, r = x.shape
    for _ in range(depth):
        agg = (a @ x.reshape(n, k * r)).reshape(n, k, r)
        x = x @ W1.T + agg @ W2.T
    return x.sum(0)


def linear_monte_carlo_loss(graph: Graph, W1: torch.Tensor, W2: torch.Tensor, W1s: torch.Tensor, W2s: torch.Tensor,
                            depth: int, samples: int, *, seed: int = 0, chunk: int = 4096) -> tuple[float, float]:
    r"""Monte Carlo estimate of :math:`\frac12E\|\hat y - y\|^2` (eq. 21) by sampling x ~ N(0, I) and running
    the message passing of student and teacher. W's of shape (r, r). Returns (mean, standard error)."""
    n, r = graph.num_nodes, W1.shape[0]
    gen = torch.Generator().manual_seed(seed)

    def draw(k: int) -> torch.Tensor:
        x = torch.randn(n, k, r, generator=gen, dtype=W1.dtype)
        diff = linear_forward(graph, W1, W2, depth, x) - linear_forward(graph, W1s, W2s, depth, x)
        return 0.5 * (diff * diff).sum(-1)

    return monte_carlo_mean(draw, samples, chunk)


__all__ = [
    "LinearGraphBatch", "transfer_matrices", "identity_scale", "linear_population_loss", "linear_population_grad",
    "regular_loss", "lemma11_gradient", "appendix_c_loss", "appendix_c_scale", "linear_forward", "linear_monte_carlo_loss",
]
