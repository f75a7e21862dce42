r"""The (α, β) plane of §3.1 and the Hessian of the one-round ReLU GNN's per-neuron loss in it (Awasthi et
al., §3.1 and Lemma 2 = Lemma 7, App. B).

Holds: the fixed direction w⊥_j and the decomposition w_j = αw*_j + βw⊥_j that gradient descent keeps
(:func:`orthogonal_direction`, :func:`alpha_beta`), and the closed-form 2 × 2 Hessian
:math:`\nabla^2 L_j = A'I - (mK(\rho)/\ell)\,tt^\top` with its eigenvalues, λ_max = A′ everywhere
(:class:`ReluHessian2D`, :func:`sym2_eigvals`, :func:`relu_hessian_2d`, :func:`relu_hessian_plane`,
:func:`relu_hessian_alpha_beta`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gnndyn.errors import GnndynError
from gnndyn.models.population_relu.dual import DualKernel
from gnndyn.models.population_relu.loss import _check_shapes, row_geometry


@dataclass
class ReluHessian2D:
    r"""The 2 × 2 Hessian of :math:`L_j` in the plane coordinates (x, β) (:func:`relu_hessian_2d`).

    ``hess`` (B, h, 2, 2); ``lam_max``, ``lam_min`` (B, h) its eigenvalues (closed form for symmetric 2 × 2
    matrices, :func:`sym2_eigvals`); ``kappa`` (B, h) = m·K(ρ)/ℓ, the curvature taken off A′ in the tangential
    direction; ``A_prime`` (B, 1) = G(1)."""

    hess: torch.Tensor
    lam_max: torch.Tensor
    lam_min: torch.Tensor
    kappa: torch.Tensor
    A_prime: torch.Tensor


def sym2_eigvals(hess: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""(λ_min, λ_max) of symmetric 2 × 2 matrices (..., 2, 2): :math:`\frac{a+c}2 \mp
    \sqrt{(\frac{a-c}2)^2 + b^2}` (no LAPACK call per step)."""
    a, b, c = hess[..., 0, 0], hess[..., 0, 1], hess[..., 1, 1]
    mean = 0.5 * (a + c)
    rad = torch.hypot(0.5 * (a - c), b)
    return mean - rad, mean + rad


def relu_hessian_2d(kernel: DualKernel, ell: torch.Tensor, m: torch.Tensor, rho: torch.Tensor, delta: torch.Tensor,
                    sin_theta: torch.Tensor | None = None) -> ReluHessian2D:
    r"""Closed-form Hessian of the per-neuron loss :math:`L_j` (eq. 12; any graph with A′) in the 2-D
    coordinates of Lemma 2 (= Lemma 7, App. B).

    **Coordinates.** :math:`w = x\,u^* + \beta\,w^\perp` with :math:`u^* = w^*/m`, :math:`m = \|w^*\|` and
    :math:`w^\perp` the unit vector of §3.1 (:func:`orthogonal_direction`); x = α·m, so (x, β) is the paper's
    (α, β) when ‖w*‖ = 1 (its setting, and that of every experiment). ℓ = ‖(x, β)‖, ρ = cos θ = x/ℓ,
    s = sin θ = β/ℓ, radial unit vector e = (ρ, s), tangent t = (−s, ρ).

    **Derivation.** :math:`L_j = \tfrac12(\ell^2 + m^2)G(1) - m\,h(x, \beta)` with
    :math:`h = \ell\,G(x/\ell)` positively 1-homogeneous. Then ∇h is 0-homogeneous, so by Euler
    :math:`\nabla^2 h\,(x, \beta)^\top = 0` and :math:`\nabla^2 h = \kappa_h\, t t^\top` with
    :math:`\kappa_h = t^\top\nabla^2 h\,t = \ell^{-1}\partial_\ell h + \ell^{-2}\partial_\theta^2 h = (g + g'')/\ell`
    (polar coordinates, h = ℓg(θ)),
    :math:`g(\theta) = G(\cos\theta)`, :math:`g + g'' = G(\rho) - \rho G'(\rho) + (1-\rho^2)G''(\rho) =: K(\rho)`
    (:meth:`DualKernel.G_curv`, :func:`dual_curvature`). With :math:`\nabla^2\tfrac12\ell^2 = I`:

    .. math::  \nabla^2 L_j(x, \beta) = A'\,I_2 - \kappa\, t t^\top, \qquad \kappa = \frac{m\,K(\rho)}{\ell},

    .. math::  \partial_{xx}L_j = A' - \kappa s^2,\quad \partial_{\beta\beta}L_j = A' - \kappa\rho^2,\quad
               \partial_{x\beta}L_j = \kappa\rho s.

    In the paper's notation :math:`G(\rho) = B'_t`, :math:`G'(\rho) = C'_t` at ρ = α_t/ℓ_t (Lemma 7 writes the
    same entries through B, C, ∂B/∂α, ∂C/∂α), and :math:`K(\rho) = \pi^{-1}\sum_{ik} s_{ik}
    (p_{ik} + 2q_{ik})/\sqrt{p_{ik}+q_{ik}} \ge 0`, :math:`p = 1 - c_{ik}^2`, :math:`q = c_{ik}^2(1-\rho^2)`.

    **Eigenvalues.** A′ with eigenvector (x, β) (radial) and :math:`A' - mK(\rho)/\ell` along t. Since K ≥ 0,
    :math:`\lambda_{\max}(\nabla^2 L_j) = A' = G(1)` — (d+1)A on a d-regular graph — at *every* w ≠ 0, and
    :math:`\lambda_{\min} = A' - mK(\rho)/\ell` (negative for small ℓ: L_j is not convex). At the optimum
    (ρ = 1, ℓ = m) :math:`K(1) = A' - G'(1)`, so λ_min = G′(1) = C′ at ρ = 1. (In all of :math:`\mathbb R^r`
    the directions orthogonal to span(w, w*) add the eigenvalue :math:`A' - m(G(\rho) - \rho G'(\rho))/\ell \le A'`,
    so A′ is the smoothness constant of :math:`L_j` on :math:`\mathbb R^r \setminus \{0\}` too.)

    Inputs (B, h): ℓ, m, ρ, δ = 1 − ρ (computed stably, :func:`row_geometry`) and ``sin_theta`` = β/ℓ with its
    sign (default: :math:`+\sqrt{\delta(2-\delta)}`, i.e. w⊥ taken along the component of w orthogonal to w*).
    The Hessian is evaluated as written (entries, then :func:`sym2_eigvals`), not from the eigenvalue formula.
    """
    if bool((ell <= 0).any()):
        raise GnndynError("the Hessian of L_j is undefined at w_j = 0 (ℓ = 0): the loss is not twice differentiable there.")
    if sin_theta is None:
        sin_theta = torch.sqrt((delta * (2.0 - delta)).clamp(0.0, 1.0))
    a1 = kernel.G1().reshape((kernel.batch,) + (1,) * (ell.dim() - 1))
    kappa = m * kernel.G_curv(rho, delta) / ell
    s, c = sin_theta, rho
    hxx = a1 - kappa * s * s
    hbb = a1 - kappa * c * c
    hxb = kappa * c * s
    hess = torch.stack([torch.stack([hxx, hxb], -1), torch.stack([hxb, hbb], -1)], -2)
    lo, hi = sym2_eigvals(hess)
    return ReluHessian2D(hess, hi, lo, kappa, a1)


def relu_hessian_plane(kernel: DualKernel, x: torch.Tensor, beta: torch.Tensor, m: torch.Tensor) -> ReluHessian2D:
    r""":func:`relu_hessian_2d` at the plane coordinates (x, β) (shape (B, ...), broadcasting with m = ‖w*‖):
    ℓ = √(x² + β²), ρ = x/ℓ, s = β/ℓ, and δ = 1 − ρ = β²/(ℓ(ℓ + x)) for x > 0 (no cancellation near the
    optimum), 1 − ρ otherwise. For points of a GD run, which stays in span(w*_j, w⊥_j) (§3.1), from the
    coordinates alone — no r-dimensional work."""
    ell = torch.hypot(x, beta)
    rho = x / ell
    delta = torch.where(x > 0, beta * beta / (ell * (ell + x.abs())), 1.0 - rho)
    return relu_hessian_2d(kernel, ell, m, rho, delta, beta / ell)


def relu_hessian_alpha_beta(W: torch.Tensor, W_star: torch.Tensor, kernel: DualKernel,
                            w_perp: torch.Tensor | None = None) -> ReluHessian2D:
    r"""(B, h, 2, 2) Hessian of each :math:`L_j` in (x, β) = (⟨w_j, u*_j⟩, ⟨w_j, w⊥_j⟩) at W (Lemma 2 / Lemma 7;
    formula and derivation in :func:`relu_hessian_2d`). ``w_perp`` (B, h, r) fixes the orientation of β (as
    in :func:`alpha_beta`); without it β ≥ 0. W must lie in span(w*_j, w⊥_j) when ``w_perp`` is given (GD keeps
    it there); the out-of-plane part is ignored."""
    _check_shapes(W, W_star, kernel)
    geo = row_geometry(W, W_star)
    sin_theta = None
    if w_perp is not None:
        if w_perp.shape != W.shape:
            raise GnndynError(f"w_perp must have the shape of W {tuple(W.shape)}; got {tuple(w_perp.shape)}.")
        sin_theta = (W * w_perp).sum(-1) / geo.ell
    return relu_hessian_2d(kernel, geo.ell, geo.m, geo.rho, geo.delta, sin_theta)


def alpha_beta(W: torch.Tensor, W_star: torch.Tensor, w_perp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The (α, β) decomposition of §3.1: :math:`w_j = \alpha w^*_j + \beta w^\perp_j + \text{residual}` with
    :math:`w^\perp_j` the fixed unit vector orthogonal to :math:`w^*_j` in span(w_{0,j}, w*_j)
    (:func:`orthogonal_direction`). Gradient descent keeps w_j in that span, so the residual norm (third
    output) stays at rounding level; α = ⟨w, w*⟩/‖w*‖² (the paper's α when ‖w*‖ = 1)."""
    m2 = (W_star * W_star).sum(-1)
    alpha = (W * W_star).sum(-1) / m2
    beta = (W * w_perp).sum(-1)
    resid = W - alpha[..., None] * W_star - beta[..., None] * w_perp
    return alpha, beta, torch.linalg.vector_norm(resid, dim=-1)


def orthogonal_direction(W0: torch.Tensor, W_star: torch.Tensor) -> torch.Tensor:
    """Unit vector :math:`w^\\perp_j` ∝ w_{0,j} − proj_{w*_j} w_{0,j} (§3.1, before eq. 13)."""
    us = W_star / torch.linalg.vector_norm(W_star, dim=-1, keepdim=True)
    v = W0 - (W0 * us).sum(-1, keepdim=True) * us
    nv = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    if bool((nv == 0).any()):
        raise GnndynError("a row of W₀ is parallel to its teacher row; the orthogonal direction w⊥ is undefined.")
    return v / nv


__all__ = [
    "ReluHessian2D", "sym2_eigvals", "relu_hessian_2d", "relu_hessian_plane", "relu_hessian_alpha_beta", "alpha_beta",
    "orthogonal_direction",
]
