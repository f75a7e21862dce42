r"""The dual activation of σ = √2·ReLU and the graph kernel G through which the graph enters the
one-round ReLU GNN's population loss (Awasthi et al., §3.1–3.2 and App. B; the derivations are in
:mod:`gnndyn.models.population_relu`).

Holds: σ̂ and σ̂_step = σ̂′ (Definition 1, eq. 3; :func:`dual_relu`, :func:`dual_step`), σ̂(c) − σ̂(cρ) with
full relative precision near ρ = 1 (:func:`dual_relu_gap`), the per-pair curvature term of Lemma 2's Hessian
(:func:`dual_curvature`), and :class:`DualKernel`: :math:`G(\rho) = \sum_{ik} s_{ik}\hat\sigma(c_{ik}\rho)`
grouped by pair type, whose values are App. B's Lemma quantities A′ = G(1), B′_t = G(α_t/ℓ_t),
C′_t = G′(α_t/ℓ_t) ((d+1)A, (d+1)B_t, (d+1)C_t of Lemma 5 on a d-regular graph), and the curvature K(ρ).
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


__all__ = [
    "PI", "dual_relu", "dual_step", "dual_relu_gap", "dual_curvature", "DualKernel",
]
