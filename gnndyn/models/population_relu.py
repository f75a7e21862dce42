r"""One-round ReLU GNN in the teacher–student setting, trained on its exact *population* loss.

Awasthi et al., *Convergence of gradient descent for GNNs*, §3 (eqs. 4–15) and App. B. The teacher is

.. math::  y = \sum_{i=1}^n \sigma(W^* \bar x_i), \qquad \bar x_i = \sum_{j \in N[i]} x_j,
           \qquad x_j \sim N(0, I_r), \qquad \sigma(t) = \sqrt2 \max(t, 0),

with :math:`N[i]` the *closed* neighbourhood of i (i and its neighbours: "each :math:`\bar x_i` is a sum of
d + 1 messages", §3.1), :math:`W^* \in \mathbb R^{h \times r}` with unit rows, and the student is the same
network with weights W. The loss :math:`L(W) = \frac12 E\|\hat y - y\|^2` (eq. 5) splits over the rows,
:math:`L = \sum_j L_j(w_j)` (eq. 7), and each :math:`L_j` has a closed form through the dual activation
(Definition 1, Daniely et al. 2016).

**Dual activation of** :math:`\sigma = \sqrt2\,\mathrm{ReLU}` (derived here; tested against numerical
integration in ``tests/test_awasthi_relu.py``). For (X, Y) standard bivariate normal with correlation ρ,
:math:`E[\mathrm{ReLU}(X)\mathrm{ReLU}(Y)] = \frac1{2\pi}(\sqrt{1-\rho^2} + (\pi - \arccos\rho)\rho)`, so

.. math::  \hat\sigma(\rho) = \frac{\sqrt{1-\rho^2} + (\pi - \arccos\rho)\,\rho}{\pi}, \qquad
           \hat\sigma'(\rho) = \widehat{\sigma_{\rm step}}(\rho) = 1 - \frac{\arccos\rho}{\pi},

:math:`\hat\sigma(1) = 1`, :math:`\hat\sigma(0) = 1/\pi`, :math:`\hat\sigma \ge 0` on [−1, 1].

**Any graph.** Let :math:`D_i = d_i + 1` and :math:`d_{ik} = |N[i] \cap N[k]| = ((A+I)^2)_{ik}` the number of
common messages of :math:`\bar x_i, \bar x_k` (:math:`d_{ii} = D_i`). Then :math:`a^\top \bar x_i` and
:math:`b^\top \bar x_k` are jointly Gaussian with variances :math:`\|a\|^2 D_i`, :math:`\|b\|^2 D_k` and
covariance :math:`a^\top b\, d_{ik}`, and σ is positively homogeneous, so

.. math::  E[\sigma(a^\top\bar x_i)\sigma(b^\top\bar x_k)] = \|a\|\|b\|\, s_{ik}\,
           \hat\sigma\big(c_{ik} \cos\theta_{ab}\big), \quad s_{ik} = \sqrt{D_i D_k},\ c_{ik} = d_{ik}/s_{ik}.

Writing :math:`G(\rho) = \sum_{i,k} s_{ik}\hat\sigma(c_{ik}\rho)`, with :math:`m = \|w^*\|`, :math:`\ell = \|w\|`,
:math:`\rho = \cos\angle(w, w^*)`,

.. math::  L_j(w) = \tfrac12(\ell^2 + m^2)\,G(1) - \ell m\, G(\rho)
                  = \tfrac12(\ell - m)^2 G(1) + \ell m\,\big(G(1) - G(\rho)\big).

On a d-regular graph :math:`s_{ik} = d+1` and this is eq. (12). :math:`G(1) = A'`,
:math:`G(\alpha_t/\ell_t) = B'_t` and :math:`G'(\alpha_t/\ell_t) = C'_t` are App. B's unequal-degree
quantities ("replace (d+1) by :math:`\sqrt{(d_i+1)(d_j+1)}`"); on a d-regular graph they are (d+1)·A,
(d+1)·B_t, (d+1)·C_t of §3.2.

**Cost.** Pairs with :math:`d_{ik} = 0` contribute :math:`s_{ik}\hat\sigma(0) = s_{ik}/\pi`; their total weight is
:math:`(\sum_i \sqrt{D_i})^2 - \sum_{d_{ik}>0} s_{ik}`. The remaining pairs are the non-zeros of
:math:`(A+I)^2` (the two-hop structure), and :math:`s_{ik}\hat\sigma(c_{ik}\rho)` depends on the pair only
through the integers :math:`(d_{ik}, D_iD_k)`. :class:`DualKernel` groups the pairs by that key once
(O(nnz((A+I)²))), after which G, G′ cost O(#keys) — at most d + 2 keys on a d-regular graph. No n × n
dense matrix is built.

**Precision.** Near the optimum :math:`G(1) - G(\rho)` is a difference of numbers of size ~n²d that
nearly cancel; :func:`dual_relu_gap` evaluates :math:`\hat\sigma(c) - \hat\sigma(c\rho)` from
:math:`\delta = 1 - \rho = \frac12\|u - u^*\|^2` through angle differences, so the loss keeps full relative
precision down to ~1e-300 instead of flooring at ~1e-11 (which would hide the convergence rate).

**Hessian** (Lemma 2 = Lemma 7): in the plane coordinates (α, β) of w along w* and w⊥,
:math:`\nabla^2 L_j = A'I - (mK(\rho)/\ell)\,tt^\top` with :math:`K \ge 0`, so :math:`\lambda_{\max} = A'`
everywhere (:func:`relu_hessian_2d`).

Tensors are batched: a leading batch dimension B (configurations × seeds), rows j = 1..h, inputs r.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from gnndyn.data.graph import Graph
from gnndyn.errors import GnndynError

PI = math.pi


# ------------------------------------------------------------------------------------------ dual activation
def dual_relu(rho: torch.Tensor) -> torch.Tensor:
    r"""Dual activation of σ(t) = √2·max(t, 0) (Definition 1, eq. 3):
    :math:`\hat\sigma(\rho) = (\sqrt{1-\rho^2} + (\pi - \arccos\rho)\rho)/\pi`, ρ clamped to [−1, 1]."""
    x = rho.clamp(-1.0, 1.0)
    return (torch.sqrt((1.0 - x * x).clamp_min(0.0)) + (PI - torch.arccos(x)) * x) / PI


def dual_step(rho: torch.Tensor) -> torch.Tensor:
    r"""Dual of σ_step(t) = √2·1(t ≥ 0), which is :math:`\hat\sigma'`: :math:`1 - \arccos(\rho)/\pi`
    (§3.1 after eq. 14; Daniely et al. 2016)."""
    return 1.0 - torch.arccos(rho.clamp(-1.0, 1.0)) / PI


def _x_minus_sin(x: torch.Tensor) -> torch.Tensor:
    """x − sin x without cancellation for small x (series below 0.02, exact above)."""
    x2 = x * x
    series = x * x2 / 6.0 * (1.0 - x2 / 20.0 * (1.0 - x2 / 42.0 * (1.0 - x2 / 72.0)))
    return torch.where(x.abs() < 0.02, series, x - torch.sin(x))


def dual_relu_gap(c: torch.Tensor, rho: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    r""":math:`\hat\sigma(c) - \hat\sigma(c\rho)` for c ∈ [0, 1], ρ = 1 − δ, accurate to relative precision
    as δ → 0 (the plain difference loses all digits there).

    With :math:`\phi_a = \arccos c`, :math:`\phi_b = \arccos(c\rho) = \phi_a + \Delta` and
    :math:`\mu = \phi_a + \Delta/2`,

    .. math::  \pi[\hat\sigma(\cos\phi_a) - \hat\sigma(\cos\phi_b)]
               = 2(\pi - \phi_a)\sin\mu\,\sin\tfrac\Delta2 - 2\Delta\sin\tfrac{\phi_b+\mu}2\sin\tfrac\Delta4
                 + 2\cos\mu\,(\tfrac\Delta2 - \sin\tfrac\Delta2),

    and Δ = atan2(sin Δ, cos Δ) with :math:`\sin\Delta = c(1-\rho^2)/(\sqrt{1-c^2\rho^2} + \rho\sqrt{1-c^2})`,
    :math:`1-\rho^2 = \delta(2-\delta)`. Used for ρ > 1/2; below, the plain difference is already accurate.
    Shapes broadcast.
    """
    c = c.clamp(0.0, 1.0)
    rho = rho.clamp(-1.0, 1.0)
    cr = c * rho
    sa2 = (1.0 - c * c).clamp_min(0.0)
    one_m_rho2 = (delta * (2.0 - delta)).clamp_min(0.0)
    sa = torch.sqrt(sa2)
    sb = torch.sqrt(sa2 + c * c * one_m_rho2)  # √(1 − c²ρ²) = √((1 − c²) + c²(1 − ρ²)), no cancellation
    den = sb + rho * sa
    safe = den > 0
    sin_d = torch.where(safe, c * one_m_rho2 / torch.where(safe, den, torch.ones_like(den)), torch.zeros_like(den))
    cos_d = c * cr + sb * sa
    d = torch.atan2(sin_d, cos_d)
    pa = torch.arccos(c)
    pb = pa + d
    mu = pa + d / 2.0
    stable = (2.0 * (PI - pa) * torch.sin(mu) * torch.sin(d / 2.0)
              - 2.0 * d * torch.sin((pb + mu) / 2.0) * torch.sin(d / 4.0)
              + 2.0 * torch.cos(mu) * _x_minus_sin(d / 2.0)) / PI
    plain = dual_relu(c) - dual_relu(cr)
    return torch.where(rho > 0.5, stable, plain)


def dual_curvature(c: torch.Tensor, rho: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    r""":math:`\hat\sigma(c\rho) - c\rho\,\hat\sigma'(c\rho) + c^2(1-\rho^2)\,\hat\sigma''(c\rho)` for c ∈ [0, 1],
    ρ = 1 − δ: the term of one pair in :math:`K(\rho) = G(\rho) - \rho G'(\rho) + (1-\rho^2)G''(\rho)`.

    From Definition 1, :math:`\hat\sigma(x) - x\hat\sigma'(x) = \sqrt{1-x^2}/\pi` and
    :math:`\hat\sigma''(x) = 1/(\pi\sqrt{1-x^2})`, so with :math:`p = 1 - c^2`, :math:`q = c^2(1-\rho^2)`
    (:math:`1 - c^2\rho^2 = p + q`, no cancellation; :math:`1 - \rho^2 = \delta(2-\delta)`)

    .. math::  \frac{(p + q) + q}{\pi\sqrt{p + q}} = \frac{p + 2q}{\pi\sqrt{p+q}} \;\ge\; 0,

    finite everywhere: :math:`\hat\sigma''` blows up at cρ = ±1, but the product with 1 − ρ² does not
    (its limit at p = q = 0 is 0, since (p + 2q)/√(p + q) ≤ 2√(p + q)). Shapes broadcast."""
    return _curvature_terms(c, rho, delta) / PI


def _curvature_terms(c: torch.Tensor, rho: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """π × :func:`dual_curvature` as s + q/s, s = √(p + q) (= (p + 2q)/s; q ≤ s², so q/s → 0 with s):
    few full-size operations, since a run evaluates it at every step."""
    c2 = c.clamp(0.0, 1.0) ** 2
    q = c2 * (delta * (2.0 - delta)).clamp(0.0, 1.0)
    s = torch.sqrt((1.0 - c2) + q)
    return (q / s.clamp_min(1e-300)).add_(s)


# ------------------------------------------------------------------------------------------ graph kernel
@dataclass
class DualKernel:
    r"""The graph enters the population loss only through :math:`G(\rho) = \sum_u w_u \hat\sigma(c_u \rho)`.

    Batched over B graphs (padded with zero weights). Attributes:
        coef: (B, U) coefficients :math:`c_u = d_{ik}/\sqrt{D_iD_k}` (one per key; 0 for the far pairs).
        weight: (B, U) summed :math:`s_{ik}` of the pairs with that key.
        n, d_max, d_min: per graph; ``regular`` when every degree is equal.
        sqrt_sum_sq: :math:`S^2 = (\sum_i\sqrt{D_i})^2` (= (d+1)n² on a d-regular graph).
        two_hop_nnz: number of ordered pairs (i, k) with :math:`d_{ik} > 0`, diagonal included.
        sum_c2_s: :math:`\sum_{ik} s_{ik} c_{ik}^2 = \sum_{ik} d_{ik}^2/s_{ik}`.
    """

    coef: torch.Tensor
    weight: torch.Tensor
    n: list[int]
    d_max: list[int]
    d_min: list[int]
    sqrt_sum_sq: list[float]
    two_hop_nnz: list[int]
    names: list[str] = field(default_factory=list)

    @property
    def batch(self) -> int:
        return int(self.coef.shape[0])

    @property
    def regular(self) -> list[bool]:
        return [a == b for a, b in zip(self.d_max, self.d_min)]

    @classmethod
    def from_graph(cls, graph: Graph, *, dtype: torch.dtype = torch.float64) -> "DualKernel":
        """Group the pairs of ``graph`` by (d_ik, D_i·D_k): O(nnz((A+I)²)) time and memory."""
        n = graph.num_nodes
        a_hat = (graph.adjacency() + sp.identity(n, format="csr")).tocsr()
        big = (a_hat @ a_hat).tocoo()  # d_ik on the two-hop structure (integers stored as floats)
        deg1 = np.asarray(a_hat.sum(axis=1)).ravel().astype(np.int64)  # D_i = d_i + 1
        dik = np.rint(big.data).astype(np.int64)
        prod = deg1[big.row] * deg1[big.col]
        keys, inv = np.unique(np.stack([dik, prod], axis=1), axis=0, return_inverse=True)
        counts = np.bincount(inv.ravel(), minlength=keys.shape[0]).astype(np.float64)
        root = np.sqrt(keys[:, 1].astype(np.float64))
        weight = counts * root
        coef = keys[:, 0] / root
        s_sum = float(np.sqrt(deg1.astype(np.float64)).sum())
        far = s_sum * s_sum - float(weight.sum()) if big.nnz < n * n else 0.0
        coef = np.append(coef, 0.0)
        weight = np.append(weight, max(far, 0.0))
        return cls(coef=torch.tensor(coef, dtype=dtype)[None], weight=torch.tensor(weight, dtype=dtype)[None],
                   n=[n], d_max=[int(deg1.max() - 1)], d_min=[int(deg1.min() - 1)], sqrt_sum_sq=[s_sum * s_sum],
                   two_hop_nnz=[int(big.nnz)], names=[graph.name])

    @classmethod
    def stack(cls, kernels: Sequence["DualKernel"]) -> "DualKernel":
        """One batched kernel from several (padding with c = 0, w = 0)."""
        if not kernels:
            raise GnndynError("DualKernel.stack needs at least one kernel.")
        u = max(k.coef.shape[1] for k in kernels)
        dtype = kernels[0].coef.dtype
        coef = torch.zeros(sum(k.batch for k in kernels), u, dtype=dtype)
        weight = torch.zeros_like(coef)
        b = 0
        for k in kernels:
            coef[b:b + k.batch, : k.coef.shape[1]] = k.coef
            weight[b:b + k.batch, : k.weight.shape[1]] = k.weight
            b += k.batch
        cat = lambda attr: [x for k in kernels for x in getattr(k, attr)]  # noqa: E731
        return cls(coef=coef, weight=weight, n=cat("n"), d_max=cat("d_max"), d_min=cat("d_min"),
                   sqrt_sum_sq=cat("sqrt_sum_sq"), two_hop_nnz=cat("two_hop_nnz"), names=cat("names"))

    # G and its derivative; rho has shape (B, ...) and the result the same shape
    def _bc(self, rho: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (self.batch,) + (1,) * (rho.dim() - 1) + (-1,)
        return self.coef.reshape(shape), self.weight.reshape(shape)

    def G(self, rho: torch.Tensor) -> torch.Tensor:
        r""":math:`G(\rho) = \sum_{i,k} s_{ik}\hat\sigma(c_{ik}\rho)` (B'_t of App. B at ρ = α_t/ℓ_t)."""
        c, w = self._bc(rho)
        return (w * dual_relu(c * rho[..., None])).sum(-1)

    def G_prime(self, rho: torch.Tensor) -> torch.Tensor:
        r""":math:`G'(\rho) = \sum_{i,k} d_{ik}\,\widehat{\sigma_{\rm step}}(c_{ik}\rho)` (C'_t of App. B)."""
        c, w = self._bc(rho)
        return (w * c * dual_step(c * rho[..., None])).sum(-1)

    def G_gap(self, rho: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """:math:`G(1) - G(\\rho)` with full relative precision (``delta`` = 1 − ρ computed stably)."""
        c, w = self._bc(rho)
        return (w * dual_relu_gap(c, rho[..., None], delta[..., None])).sum(-1)

    def G_curv(self, rho: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        r""":math:`K(\rho) = G(\rho) - \rho G'(\rho) + (1-\rho^2)G''(\rho) \ge 0`, the tangential curvature of
        :math:`\ell G(\rho)` (:func:`relu_hessian_2d`), with ``delta`` = 1 − ρ computed stably; see
        :func:`dual_curvature`."""
        c, w = self._bc(rho)
        return (w * _curvature_terms(c, rho[..., None], delta[..., None])).sum(-1) / PI

    def G1(self) -> torch.Tensor:
        """(B,) :math:`A' = G(1) = \\sum_{ik} s_{ik}\\hat\\sigma(c_{ik})` ((d+1)·A of §3.2 when d-regular)."""
        return (self.weight * dual_relu(self.coef)).sum(-1)

    def to(self, dtype: torch.dtype) -> "DualKernel":
        return DualKernel(self.coef.to(dtype), self.weight.to(dtype), self.n, self.d_max, self.d_min,
                          self.sqrt_sum_sq, self.two_hop_nnz, self.names)


# ------------------------------------------------------------------------------------------ loss and gradient
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
    r"""(B, h) exact population losses :math:`L_j(w_j)` (eq. 7 / eq. 12 for any graph; module docstring).

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


# ------------------------------------------------------------------------------------------ Monte Carlo
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
    vals = []
    done = 0
    while done < samples:
        k = min(chunk, samples - done)
        x = torch.randn(n, k * r, generator=gen, dtype=W.dtype)
        xb = (a_hat @ x).reshape(n, k, r)
        diff = math.sqrt(2.0) * (torch.relu(xb @ W.T) - torch.relu(xb @ W_star.T)).sum(0)  # (k, h)
        vals.append(0.5 * (diff * diff).sum(-1))
        done += k
    v = torch.cat(vals)
    return float(v.mean()), float(v.std(unbiased=True) / math.sqrt(v.numel()))


__all__ = [
    "dual_relu", "dual_step", "dual_relu_gap", "DualKernel", "RowGeometry", "row_geometry",
    "relu_population_loss_rows", "relu_population_loss", "ReluPopulationState", "relu_population_grad",
    "dual_curvature", "ReluHessian2D", "sym2_eigvals", "relu_hessian_2d", "relu_hessian_plane",
    "relu_hessian_alpha_beta",
    "alpha_beta", "orthogonal_direction", "closed_neighbourhood", "relu_monte_carlo_loss",
]
