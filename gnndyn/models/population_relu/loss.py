r"""The closed-form population loss of the one-round ReLU GNN and its gradient, on any graph (Awasthi et al.,
§3, eqs. 5–7, 12, 14–15 and App. B; the derivation is in :mod:`gnndyn.models.population_relu`).

Holds: the row geometry of W against W* (ℓ, m, ρ, δ = 1 − ρ without cancellation; :func:`row_geometry`), the
exact per-row and total losses (eq. 7 / eq. 12 for any graph; :func:`relu_population_loss_rows`,
:func:`relu_population_loss`), the exact gradient with A′, B′_t, C′_t of the same pass (eqs. 14–15;
:func:`relu_population_grad`, :class:`ReluPopulationState`), and a Monte Carlo estimate of eq. (6) that
the closed form is tested against (:func:`relu_monte_carlo_loss`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import scipy.sparse as sp
import torch

from gnndyn.data.graph import Graph
from gnndyn.errors import GnndynError
from gnndyn.models.monte_carlo import monte_carlo_mean
from gnndyn.models.population_relu.dual import DualKernel


@dataclass
class RowGeometry:
    """Per-row geometry of W against W*: ℓ = ‖w‖, m = ‖w*‖, u = w/ℓ, u* = w*/m, ρ = cos∠, δ = 1 − ρ."""

    ell: torch.Tensor
    m: torch.Tensor
    u: torch.Tensor
    u_star: torch.Tensor
    rho: torch.Tensor
    delta: torch.Tensor


def _check_shapes(W: torch.Tensor, W_star: torch.Tensor, kernel: DualKernel) -> None:
    if W.dim() != 3 or W.shape != W_star.shape:
        raise GnndynError(f"W and W* must both have shape (B, h, r); got {tuple(W.shape)} and {tuple(W_star.shape)}. "
                          "Add a leading batch dimension with W[None].")
    if W.shape[0] != kernel.batch:
        raise GnndynError(f"W has batch size {W.shape[0]} but the kernel holds {kernel.batch} graph(s); stack one "
                          "kernel per batch element with DualKernel.stack.")


def row_geometry(W: torch.Tensor, W_star: torch.Tensor) -> RowGeometry:
    """ℓ, m, ρ and δ = ½‖u − u*‖² (exact 1 − ρ without cancellation) for each row."""
    ell = torch.linalg.vector_norm(W, dim=-1)
    m = torch.linalg.vector_norm(W_star, dim=-1)
    if bool((ell == 0).any()) or bool((m == 0).any()):
        raise GnndynError("a row of W or W* is zero: the population loss is not differentiable there (ρ undefined).")
    u = W / ell[..., None]
    us = W_star / m[..., None]
    delta = 0.5 * ((u - us) ** 2).sum(-1)
    return RowGeometry(ell, m, u, us, 1.0 - delta, delta)


def relu_population_loss_rows(W: torch.Tensor, W_star: torch.Tensor, kernel: DualKernel, *,
                              stable: bool = True) -> torch.Tensor:
    r"""(B, h) exact population losses :math:`L_j(w_j)` (eq. 7 / eq. 12 for any graph; package docstring).

    ``stable=True``: :math:`\frac12(\ell-m)^2G(1) + \ell m(G(1)-G(\rho))` (full relative precision near the
    optimum). ``stable=False``: the textbook form :math:`\frac12(\ell^2+m^2)G(1) - \ell m G(\rho)` of eq. (12),
    differentiable by autograd (used to test :func:`relu_population_grad`).
    """
    _check_shapes(W, W_star, kernel)
    g1 = kernel.G1()[:, None]
    if not stable:
        ell = torch.linalg.vector_norm(W, dim=-1)
        m = torch.linalg.vector_norm(W_star, dim=-1)
        rho = (W * W_star).sum(-1) / (ell * m)
        return 0.5 * (ell ** 2 + m ** 2) * g1 - ell * m * kernel.G(rho)
    geo = row_geometry(W, W_star)
    return 0.5 * (geo.ell - geo.m) ** 2 * g1 + geo.ell * geo.m * kernel.G_gap(geo.rho, geo.delta)


def relu_population_loss(W: torch.Tensor, W_star: torch.Tensor, kernel: DualKernel, *, stable: bool = True) -> torch.Tensor:
    """(B,) exact population loss L(W) = Σ_j L_j(w_j) (eqs. 5–7)."""
    return relu_population_loss_rows(W, W_star, kernel, stable=stable).sum(-1)


@dataclass
class ReluPopulationState:
    """Everything one evaluation gives: per-row loss, the gradient, and the §3.2 quantities.

    ``loss_rows`` (B, h); ``grad`` (B, h, r); ``G1`` (B,) = A'; ``B_prime`` = G(ρ), ``C_prime`` = G'(ρ) (B, h)
    at the current ρ = cos∠(w_j, w*_j) (= α_t/ℓ_t when ‖w*‖ = 1); ``geometry`` (:class:`RowGeometry`).
    """

    loss_rows: torch.Tensor
    grad: torch.Tensor
    G1: torch.Tensor
    B_prime: torch.Tensor
    C_prime: torch.Tensor
    geometry: RowGeometry


def relu_population_grad(W: torch.Tensor, W_star: torch.Tensor, kernel: DualKernel) -> ReluPopulationState:
    r"""Exact population gradient (eqs. 14–15 in w-coordinates, any graph):

    .. math::  \nabla_{w} L_j = \big((\ell - m)G(1) + m(G(1) - G(\rho))\big)\,u - m\,G'(\rho)\,(u^* - \rho u),

    which is :math:`\partial L/\partial\alpha = \alpha A' - \frac{\alpha}{\ell}B'_t - \frac{\beta^2}{\ell^2}C'_t`,
    :math:`\partial L/\partial\beta = \beta A' - \frac{\beta}{\ell}B'_t + \frac{\alpha\beta}{\ell^2}C'_t`
    (eqs. 14–15 with (d+1)A → A') when ‖w*‖ = 1. Also returns the loss and B'_t, C'_t of the same pass.
    """
    _check_shapes(W, W_star, kernel)
    geo = row_geometry(W, W_star)
    g1 = kernel.G1()[:, None]
    gap = kernel.G_gap(geo.rho, geo.delta)
    gp = kernel.G_prime(geo.rho)
    radial = (geo.ell - geo.m) * g1 + geo.m * gap
    tangent = geo.u_star - geo.rho[..., None] * geo.u
    grad = radial[..., None] * geo.u - (geo.m * gp)[..., None] * tangent
    loss_rows = 0.5 * (geo.ell - geo.m) ** 2 * g1 + geo.ell * geo.m * gap
    return ReluPopulationState(loss_rows, grad, g1[:, 0], g1 - gap, gp, geo)


def closed_neighbourhood(graph: Graph, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A + I as a torch sparse CSR tensor (x̄ = (A + I) X sums the messages of the closed neighbourhood)."""
    a = (graph.adjacency() + sp.identity(graph.num_nodes, format="csr")).tocsr()
    return torch.sparse_csr_tensor(torch.from_numpy(a.indptr).long(), torch.from_numpy(a.indices).long(),
                                   torch.from_numpy(a.data).to(dtype), size=a.shape)


def relu_monte_carlo_loss(graph: Graph, W: torch.Tensor, W_star: torch.Tensor, samples: int, *, seed: int = 0,
                          chunk: int = 2048) -> tuple[float, float]:
    r"""Monte Carlo estimate of :math:`\frac12 E\|\sum_i\sigma(W\bar x_i) - \sum_i\sigma(W^*\bar x_i)\|^2` (eq. 6)
    by sampling x_j ~ N(0, I_r) and propagating through the graph. W, W*: (h, r). Returns (mean, standard error)."""
    if W.dim() != 2 or W.shape != W_star.shape:
        raise GnndynError(f"W and W* must both have shape (h, r); got {tuple(W.shape)} and {tuple(W_star.shape)}.")
    n, r = graph.num_nodes, W.shape[1]
    a_hat = closed_neighbourhood(graph, W.dtype)
    gen = torch.Generator().manual_seed(seed)

    def draw(k: int) -> torch.Tensor:
        x = torch.randn(n, k * r, generator=gen, dtype=W.dtype)
        xb = (a_hat @ x).reshape(n, k, r)
        diff = math.sqrt(2.0) * (torch.relu(xb @ W.T) - torch.relu(xb @ W_star.T)).sum(0)  # (k, h)
        return 0.5 * (diff * diff).sum(-1)

    return monte_carlo_mean(draw, samples, chunk)


__all__ = [
    "RowGeometry", "row_geometry", "relu_population_loss_rows", "relu_population_loss", "ReluPopulationState",
    "relu_population_grad", "closed_neighbourhood", "relu_monte_carlo_loss",
]
