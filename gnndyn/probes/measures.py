r"""Pure measurements of signals and weights (no side effects, no n × n objects).

* :func:`smoothing` — Keriven eq. (6)/(17): :math:`\mathcal E(X) = (\frac{1}{2n^2}\sum_{i,j}\|X_i - X_j\|^2)^{1/2}
  = n^{-1/2}\|X - 1\bar x^\top\|_F`, O(nd); :func:`smoothing_pairwise` is the O(n²d) definition, for tests.
* :func:`dirichlet_energy` — :math:`\sum_{\{i,j\}\in E}\|X_i - X_j\|^2 = \mathrm{tr}(X^\top L X)`, O(md).
* :func:`mean_output_error` — :math:`\|1_n^\top B^{(L)}\|_2` (Keriven Thm 4, eq. (16)).
"""

from __future__ import annotations

import torch


def smoothing(X: torch.Tensor) -> float:
    """ℰ(X) = n^{-1/2} ‖X − 1 x̄ᵀ‖_F (Keriven eq. 17), in O(nd)."""
    X = X.detach()
    if X.dim() == 1:
        X = X.unsqueeze(1)
    n = X.shape[0]
    return float(torch.linalg.norm(X - X.mean(0, keepdim=True)) / n ** 0.5)


def smoothing_pairwise(X: torch.Tensor) -> float:
    """ℰ(X) straight from eq. (6): (1/(2n²) Σ_{i,j} ‖X_i − X_j‖²)^{1/2}. O(n²d): a reference for tests."""
    X = X.detach()
    if X.dim() == 1:
        X = X.unsqueeze(1)
    n = X.shape[0]
    d2 = torch.cdist(X, X) ** 2
    return float((d2.sum() / (2 * n * n)).sqrt())


def dirichlet_energy(X: torch.Tensor, edge_index: torch.Tensor) -> float:
    """Σ over undirected edges {i, j} of ‖X_i − X_j‖² (edge_index holds both directions)."""
    X = X.detach()
    if X.dim() == 1:
        X = X.unsqueeze(1)
    row, col = edge_index.to(X.device)
    return float(((X[row] - X[col]) ** 2).sum() / 2)


def mean_output_error(B_out: torch.Tensor) -> float:
    """‖1ᵀB⁽ᴸ⁾‖₂, the norm of the summed output error (Keriven Thm 4)."""
    return float(torch.linalg.norm(B_out.detach().sum(0)))


def row_norm_max(X: torch.Tensor) -> float:
    """‖X‖_{2,∞} = max_i ‖X_i‖₂ (Keriven's D_𝒳 for X = X⁽⁰⁾)."""
    X = X.detach()
    if X.dim() == 1:
        X = X.unsqueeze(1)
    return float(torch.linalg.norm(X, dim=1).max())
