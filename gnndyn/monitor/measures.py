r"""Measures of one signal matrix :math:`X \in \mathbb R^{n\times d}` (a layer's output or its backward
signal) and of a layer's weights, in O(nd), O(md) or O(nd²) — never an n × n object.

* :func:`smoothing` ℰ (Keriven eq. (6)) and :func:`dirichlet_energy` along edges are those of
  :mod:`gnndyn.probes.measures`, computed on a float64 copy; :func:`dirichlet_sparse` is the same energy by one
  sparse product (no m × d temporary), for large graphs.
* :func:`mad` — mean average (cosine) distance of Chen et al., *Measuring and relieving the over-smoothing
  problem for GNNs from the topological view* (AAAI 2020), eqs. (1)–(3) with the all-pairs mask:
  :math:`\mathrm{MAD}(X) = \frac{1}{n'(n'-1)}\sum_{i\neq j} (1 - \cos(x_i, x_j))` over the n' non-zero rows,
  in O(nd) through :math:`\sum_{i\ne j} u_i^\top u_j = \|\sum_i u_i\|^2 - n'` with :math:`u_i = x_i/\|x_i\|`.
  (Chen et al. average per node over the pairs at non-zero distance; the two agree when no two distinct
  nodes point the same way.)
* :func:`numerical_rank` :math:`\|X\|_F^2/\|X\|_2^2` and :func:`effective_rank`
  :math:`\exp(-\sum_i p_i \log p_i)`, :math:`p_i = \sigma_i/\sum_j\sigma_j` (Roy & Vetterli 2007): the rank
  measures advocated by *Are we measuring oversmoothing in graph neural networks correctly?*
  (arXiv 2502.04591) in place of energy-like measures, which also go to zero when the signal merely shrinks.
  Both are scale-invariant. The singular values are those of the d × d factor R of X = QR for float64
  signals, of the float64 Gram matrix for float32 ones (O(nd²), :func:`singular_values`);
  :func:`singular_values_dense` (an SVD of X) is the reference for tests.
* :func:`spectral_norm` — the largest singular value of a weight matrix.

Every measure computes in float64 whatever the signal's dtype (float32, bfloat16, float16): the Dirichlet energy
and MAD are differences of large sums (½Σdeg‖x‖² − ⟨X, MX⟩, ‖Σu‖² − n'), which in float32 lose whole digits on
smooth signals, and torch has no sparse products or matrix norms in half precision. The float64 copy of a signal
lives only while its numbers are computed.
"""

from __future__ import annotations

import math
import warnings

import torch

from gnndyn.probes import measures as _probes

__all__ = [
    "Adjacency",
    "dirichlet_energy",
    "dirichlet_sparse",
    "effective_rank",
    "mad",
    "mad_pairwise",
    "numerical_rank",
    "ranks",
    "singular_values",
    "singular_values_dense",
    "smoothing",
    "spectral_norm",
]


def _as_matrix(X: torch.Tensor) -> torch.Tensor:
    X = X.detach()
    if X.dim() == 1:
        return X.unsqueeze(1)
    if X.dim() > 2:
        return X.reshape(X.shape[0], -1)
    return X


def _as_float64(X: torch.Tensor) -> torch.Tensor:
    return X if X.dtype == torch.float64 else X.to(torch.float64)


def smoothing(X: torch.Tensor) -> float:
    """ℰ(X) = n^{-1/2} ‖X − 1 x̄ᵀ‖_F (Keriven eqs. (6), (17)), :func:`gnndyn.probes.measures.smoothing` on a
    float64 copy: in bfloat16 the centring of a signal at 10³ ± 10⁻³ leaves nothing."""
    return _probes.smoothing(_as_float64(_as_matrix(X)))


def dirichlet_energy(X: torch.Tensor, edge_index: torch.Tensor) -> float:
    """Σ over undirected edges {i, j} of ‖X_i − X_j‖² (``edge_index`` holding both directions),
    :func:`gnndyn.probes.measures.dirichlet_energy` on a float64 copy."""
    return _probes.dirichlet_energy(_as_float64(_as_matrix(X)), edge_index)


class Adjacency:
    """An edge list ``(2, m)`` (source row 0, target row 1) made ready for :func:`dirichlet_sparse`:
    the 0/1 sparse matrix M with M[r, c] = multiplicity of edge r → c, and the in- plus out-degrees, in float64
    (the measures compute in float64)."""

    def __init__(self, edge_index: torch.Tensor, num_nodes: int, device: torch.device | str = "cpu"):
        dtype = torch.float64
        r, c = edge_index.to(device=device, dtype=torch.long)
        self.num_nodes, self.num_edges = int(num_nodes), int(r.numel())
        ones = torch.ones(r.numel(), dtype=dtype, device=device)
        with warnings.catch_warnings():  # torch's notes on sparse invariants and CSR being "beta"
            warnings.simplefilter("ignore", UserWarning)
            coo = torch.sparse_coo_tensor(torch.stack([r, c]), ones, (num_nodes, num_nodes))
            self.matrix = coo.coalesce().to_sparse_csr()
        self.degree = (torch.bincount(r, minlength=num_nodes) + torch.bincount(c, minlength=num_nodes)).to(dtype)


def dirichlet_sparse(X: torch.Tensor, adj: Adjacency) -> float:
    r"""½ Σ over the listed edges (r, c) of ‖X_r − X_c‖² — :func:`dirichlet_energy` for an edge index
    holding both directions — as :math:`\tfrac12\sum_i (d^{out}_i + d^{in}_i)\|x_i\|^2 - \langle X, MX\rangle`
    on the centred X (the energy is translation-invariant; centring limits the cancellation)."""
    X = _as_matrix(X)
    if X.shape[0] != adj.num_nodes:
        raise ValueError(f"signal has {X.shape[0]} rows but the graph has {adj.num_nodes} nodes")
    Xc = X.to(torch.float64, copy=True)  # the one n × d float64 copy, centred in place
    Xc -= Xc.mean(0, keepdim=True)
    if not adj.num_edges:
        return 0.0
    MX = torch.sparse.mm(adj.matrix, Xc)
    sq = torch.linalg.vector_norm(Xc, dim=1).square_()
    return float(0.5 * torch.dot(adj.degree, sq) - torch.dot(Xc.reshape(-1), MX.reshape(-1)))


def mad(X: torch.Tensor) -> float:
    """Mean cosine distance over ordered pairs of distinct non-zero rows (module docstring), O(nd).
    NaN when fewer than two rows are non-zero. Computed in float64: the cancellation in ‖Σu‖² − n' leaves an
    absolute error of a few ε₆₄ ≈ 10⁻¹⁶, so a MAD of 10⁻⁷ (rows a milliradian apart) is good to about 10⁻⁹ relative."""
    X = _as_float64(_as_matrix(X))
    norms = torch.linalg.vector_norm(X, dim=1)
    keep = norms > 0
    k = int(keep.sum())
    if k < 2:
        return math.nan
    # Σ_i u_i = Xᵀw with w_i = 1/‖x_i‖ (0 on zero rows): one product, no normalized copy of X; Σ_i ‖u_i‖² = k
    w = torch.where(keep, norms.reciprocal(), torch.zeros((), dtype=norms.dtype, device=norms.device))
    s = torch.mv(X.t(), w)
    off = float(s @ s) - k
    return 1.0 - off / (k * (k - 1))


def mad_pairwise(X: torch.Tensor) -> float:
    """MAD by the double sum over pairs (O(n²d)): the reference for tests."""
    X = _as_matrix(X)
    norms = torch.linalg.norm(X, dim=1)
    Y = X[norms > 0]
    k = Y.shape[0]
    if k < 2:
        return math.nan
    cos = (Y @ Y.T) / torch.outer(torch.linalg.norm(Y, dim=1), torch.linalg.norm(Y, dim=1))
    D = 1.0 - cos
    D.fill_diagonal_(0.0)
    return float(D.sum() / (k * (k - 1)))


def singular_values(X: torch.Tensor) -> torch.Tensor:
    """σ(X), descending, in O(nd·min(n, d)).

    A float64 signal: the singular values of the triangular factor R of X = QR (of Xᵀ when n < d), as
    accurate as an SVD of X. A signal in a narrower float type: the square roots of the eigenvalues of its
    Gram matrix XᵀX formed in float64, about three times faster than the QR; each σᵢ is then within about
    √ε₆₄·σ₁ ≈ 1.5·10⁻⁸σ₁ of the SVD's (the squared condition number costs digits only below the data's own
    rounding, 6·10⁻⁸ relative in float32), and σ₁ and Σσᵢ² to float64 accuracy. Returned in float64 then."""
    X = _as_matrix(X)
    A = X if X.shape[0] >= X.shape[1] else X.T
    if A.dtype != torch.float64 and A.is_floating_point():
        A64 = A.to(torch.float64)
        lam = torch.linalg.eigvalsh(A64.T @ A64)  # ascending
        return lam.clamp_min(0.0).sqrt().flip(0)
    R = torch.linalg.qr(A, mode="r").R
    return torch.linalg.svdvals(R)


def singular_values_dense(X: torch.Tensor) -> torch.Tensor:
    """σ(X) by a dense SVD of X: the reference for tests."""
    return torch.linalg.svdvals(_as_matrix(X))


def numerical_rank(sigma: torch.Tensor) -> float:
    """‖X‖²_F / ‖X‖²₂ = Σσᵢ² / σ₁² = Σ(σᵢ/σ₁)² (arXiv 2502.04591), from the singular values; NaN for X = 0 and
    for a signal that is not finite (a diverged run: σ₁ = inf or NaN). Computed as Σ(σᵢ/σ₁)², which cannot
    overflow: σ₁² of a finite but huge signal (σ₁ > 1.3·10¹⁵⁴) is beyond the float64 range."""
    s1 = float(sigma.max()) if sigma.numel() else 0.0
    if not (s1 > 0 and math.isfinite(s1)):
        return math.nan
    return float(((sigma / s1) ** 2).sum())


def effective_rank(sigma: torch.Tensor) -> float:
    """exp(H(p)) with pᵢ = σᵢ/Σσⱼ (Roy & Vetterli; arXiv 2502.04591); NaN for X = 0."""
    tot = float(sigma.sum())
    if not tot > 0:
        return math.nan
    p = sigma[sigma > 0] / tot
    return math.exp(float(-(p * p.log()).sum()))


def ranks(X: torch.Tensor) -> tuple[float, float]:
    """(numerical rank, effective rank) of X from one set of singular values."""
    s = singular_values(X)
    return numerical_rank(s), effective_rank(s)


def spectral_norm(W: torch.Tensor) -> float:
    """‖W‖₂, the largest singular value (a matrix of any shape; more than 2 axes are flattened after the first)."""
    W = W.detach()
    W = W.reshape(W.shape[0], -1) if W.dim() != 2 else W
    return float(torch.linalg.matrix_norm(_as_float64(W), ord=2))
