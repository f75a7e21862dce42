r"""Teacher–student population models of Awasthi et al., *Convergence of gradient descent for GNNs*.

Training here is on the *population* loss — the expectation over Gaussian node inputs, computed exactly,
never sampled:

* one-round ReLU GNN (§3): :mod:`gnndyn.models.population_relu` — dual-activation closed form on any
  graph, exact gradient, the (α, β) decomposition and App. B's A′, B′_t, C′_t;
* deep linear aggregate/combine GNN (§4): :mod:`gnndyn.models.population_linear` — exact loss
  ½Σ_j‖T_j − T_j*‖²_F by a sparse backward recursion, adjoint gradient, the d-regular reduction to
  M = W₁ + dW₂ (Lemma 10).

This module re-exports both and builds the teachers and initializations of §5 ("Experiments"), with seeds
stacked as a leading batch dimension.
"""

from __future__ import annotations

import torch

from gnndyn.errors import GnndynError
from gnndyn.models.population_linear import (
    LinearGraphBatch, appendix_c_loss, appendix_c_scale, identity_scale, lemma11_gradient, linear_forward, linear_monte_carlo_loss,
    linear_population_grad, linear_population_loss, regular_loss, transfer_matrices,
)
from gnndyn.models.population_relu import (
    DualKernel, ReluPopulationState, RowGeometry, alpha_beta, closed_neighbourhood, dual_relu, dual_relu_gap,
    dual_step, orthogonal_direction, relu_monte_carlo_loss, relu_population_grad, relu_population_loss,
    relu_population_loss_rows, row_geometry,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def relu_teacher(h: int, r: int, seed: int, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(h, r) teacher W* with i.i.d. uniformly random unit rows w*_j (§5: "each column of W* a random unit
    length vector"; the rows are the w*_j of eq. 4, so the rows are normalised)."""
    if h < 1 or r < 1:
        raise GnndynError(f"the ReLU teacher needs h ≥ 1 hidden units and r ≥ 1 inputs; got h={h}, r={r}.")
    w = torch.randn(h, r, generator=_gen(seed), dtype=dtype)
    return w / torch.linalg.vector_norm(w, dim=1, keepdim=True)


def relu_init(h: int, r: int, seed: int, *, std: float = 1.0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(h, r) student initialization W₀ ~ N(0, σ²I) (§3.2, Lemma 1; σ = 1 in Thm 1 and §5)."""
    if not std > 0:
        raise GnndynError(f"the initialization scale σ must be > 0; got {std}.")
    return std * torch.randn(h, r, generator=_gen(10_000 + seed), dtype=dtype)


def linear_teacher(r: int, seed: int, *, scale: float = 1.0, ridge: float = 1e-3,
                   dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Symmetric positive-definite teacher :math:`W_k^* = \text{scale}\cdot G_kG_k^\top/r + \text{ridge}\cdot I`,
    :math:`G_k` with i.i.d. N(0, 1) entries (§5: "random Gaussian entries, then adding 0.001 times the
    identity"; a Gaussian matrix plus 0.001·I is not positive definite, so the Gram matrix is taken)."""
    if not scale > 0 or ridge < 0:
        raise GnndynError(f"linear_teacher needs scale > 0 and ridge ≥ 0; got scale={scale}, ridge={ridge}.")
    g = _gen(20_000 + seed)
    out = []
    for _ in range(2):
        G = torch.randn(r, r, generator=g, dtype=dtype)
        out.append(scale * G @ G.T / r + ridge * torch.eye(r, dtype=dtype))
    return out[0], out[1]


__all__ = [
    "relu_teacher", "relu_init", "linear_teacher",
    "DualKernel", "RowGeometry", "ReluPopulationState", "dual_relu", "dual_step", "dual_relu_gap", "row_geometry",
    "relu_population_loss_rows", "relu_population_loss", "relu_population_grad", "alpha_beta",
    "orthogonal_direction", "closed_neighbourhood", "relu_monte_carlo_loss",
    "LinearGraphBatch", "transfer_matrices", "identity_scale", "linear_population_loss", "linear_population_grad",
    "regular_loss", "lemma11_gradient", "appendix_c_loss", "appendix_c_scale", "linear_forward", "linear_monte_carlo_loss",
]
