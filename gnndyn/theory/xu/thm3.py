r"""Thm 3 of Xu et al. (ICML 2021), eqs. (15)–(16): the loss reduction along the gradient flow as the
F-terms (one per read-out) and J-terms (one per layer) of §4, equal to :math:`-\|\nabla L\|^2`.

* :class:`Thm3Terms` — the two sums and the autograd reference;
* :func:`thm3_terms` — product form (nothing :math:`m_x\times m_x` formed);
* :func:`thm3_terms_kron` — the explicit Kronecker matrices :math:`F_{(l)}`, :math:`J_{(i,l)}` (tiny models);
* :func:`check_thm3` — the formula against autograd at every checked point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gnndyn.errors import GnndynError
from gnndyn.models.linear_gnn import XuData, XuGNN, XuObjective
from gnndyn.theory.verdict import Verdict
from gnndyn.theory.xu.sources import PAPER


@dataclass(frozen=True)
class Thm3Terms:
    r"""The two sums of Thm 3 and the autograd reference.

    Attributes:
        F: per read-out l, :math:`\|\mathrm{vec}(V G_l^\top)\|^2_{F_{(l)}}` (plain: one entry, l = H).
        J: per layer i = 1..H, :math:`\|\sum_{l\ge i} J_{(i,l)}\mathrm{vec}(V G_l^\top)\|_2^2`.
        dLdt: −(ΣF + ΣJ), the loss reduction along the gradient flow by the formula.
        grad_sq: ‖∇L‖² from autograd (so the flow's dL/dt = −grad_sq).
    """

    F: list[float]
    J: list[float]
    dLdt: float
    grad_sq: float

    @property
    def abs_err(self) -> float:
        return abs(-self.dLdt - self.grad_sq)

    @property
    def rel_err(self) -> float:
        return self.abs_err / max(self.grad_sq, 1e-300)


def _V_and_grad_sq(model: XuGNN, data: XuData, objective: XuObjective) -> tuple[torch.Tensor, float]:
    params = list(model.parameters())
    with torch.enable_grad():
        pred = model(data)
        L = objective(pred)
        grads = torch.autograd.grad(L, [pred, *params])
    V = grads[0].detach().to(torch.float64)
    grad_sq = float(sum((g.detach().to(torch.float64) ** 2).sum() for g in grads[1:]))
    return V, grad_sq


def thm3_terms(model: XuGNN, data: XuData, objective: XuObjective) -> Thm3Terms:
    r"""Thm 3 (eqs. (15)–(16)) in product form, for any differentiable loss (``objective``).

    With :math:`V = \partial L/\partial\hat Y` and :math:`M_l = V G_l^\top` (:math:`m_y\times m_x`), the
    Kronecker identities :math:`(A\otimes B)\mathrm{vec}(M) = \mathrm{vec}(BMA^\top)` (column-major vec) give

    * F-term l: :math:`\mathrm{vec}(M_l)^\top[(\bar B^{(1:l)})^\top\bar B^{(1:l)}\otimes I]\mathrm{vec}(M_l)
      = \|M_l(\bar B^{(1:l)})^\top\|_F^2`;
    * J-term i: :math:`\|\sum_{l=i}^H J_{(i,l)}\mathrm{vec}(M_l)\|^2 = \|\sum_{l=i}^H (W^{(l)}\bar B^{(i+1:l)})^\top
      M_l(\bar B^{(1:i-1)})^\top\|_F^2`

    (the first is :math:`\|\partial L/\partial W^{(l)}\|^2`, the second :math:`\|\partial L/\partial B^{(i)}\|^2`, which is why
    their sum is :math:`\|\nabla L\|^2`). Products are chained from the :math:`m_y`-row side, so nothing of
    size :math:`m_x\times m_x` is formed.
    """
    if not model.linear:
        raise GnndynError("Thm 3 is about linear GNNs (Defs. 1–2); this model has activation "
                          f"{model.activation!r}.")
    H = model.depth
    V, grad_sq = _V_and_grad_sq(model, data, objective)
    G = [g.to(torch.float64) for g in data.blocks(H)]
    Bs = [b.detach().to(torch.float64) for b in model.B]
    ls = list(range(H + 1)) if model.multiscale else [H]
    M = {l: V @ G[l].T for l in ls}

    def right_bbar_t(mat: torch.Tensor, upto: int) -> torch.Tensor:  # mat · (B̄^(1:upto))ᵀ
        for k in range(1, upto + 1):
            mat = mat @ Bs[k - 1].T
        return mat

    def j_term(i: int, l: int) -> torch.Tensor:
        A = model.readout(l).detach().to(torch.float64)  # W^(l) B̄^(i+1:l), chained from the left
        for k in range(l, i, -1):
            A = A @ Bs[k - 1]
        return A.T @ right_bbar_t(M[l], i - 1)

    F = [float((right_bbar_t(M[l], l) ** 2).sum()) for l in ls]
    J = [float((acc ** 2).sum()) if acc is not None else 0.0 for acc in _sums_over_readouts(H, ls, j_term)]
    return Thm3Terms(F, J, -(sum(F) + sum(J)), grad_sq)


def _sums_over_readouts(H: int, ls: Sequence[int], term) -> list[torch.Tensor | None]:
    r"""For i = 1..H the sum over the read-outs l ≥ i of ``term(i, l)`` (None when there is none): the
    J-terms of Thm 3 collect every read-out that sees layer i."""
    out = []
    for i in range(1, H + 1):
        acc = None
        for l in ls:
            if l >= i:
                t = term(i, l)
                acc = t if acc is None else acc + t
        out.append(acc)
    return out


def _vec(m: torch.Tensor) -> torch.Tensor:
    """Column-major vectorisation (the vec of the paper)."""
    return m.T.reshape(-1)


def thm3_terms_kron(model: XuGNN, data: XuData, objective: XuObjective) -> Thm3Terms:
    r"""Thm 3 with the explicit matrices :math:`F_{(l)} = (\bar B^{(1:l)})^\top\bar B^{(1:l)}\otimes I_{m_y}` and
    :math:`J_{(i,l)} = \bar B^{(1:i-1)}\otimes(W^{(l)}\bar B^{(i+1:l)})^\top` (§4 notation) — the slow
    reference for :func:`thm3_terms`; tiny models only (the matrices are :math:`m_x m_y` wide)."""
    H = model.depth
    if model.in_dim * model.out_dim > 400:
        raise GnndynError("thm3_terms_kron builds Kronecker products explicitly; use it on tiny models only "
                          f"(m_x·m_y ≤ 400; got {model.in_dim * model.out_dim}).")
    V, grad_sq = _V_and_grad_sq(model, data, objective)
    G = [g.to(torch.float64) for g in data.blocks(H)]
    ls = list(range(H + 1)) if model.multiscale else [H]
    I_y = torch.eye(model.out_dim, dtype=torch.float64)
    with torch.no_grad():
        F = []
        for l in ls:
            Bb = model.bbar(l).to(torch.float64)
            Fm = torch.kron((Bb.T @ Bb).contiguous(), I_y)
            v = _vec(V @ G[l].T)
            F.append(float(v @ Fm @ v))
        def j_term(i: int, l: int) -> torch.Tensor:
            Jm = torch.kron(model.bbar(i - 1).to(torch.float64).contiguous(),
                            (model.readout(l).to(torch.float64) @ model.bbar(l, start=i + 1).to(torch.float64)).T.contiguous())
            return Jm @ _vec(V @ G[l].T)

        J = [float(acc @ acc) if acc is not None else 0.0 for acc in _sums_over_readouts(H, ls, j_term)]
    return Thm3Terms(F, J, -(sum(F) + sum(J)), grad_sq)


def check_thm3(records: Sequence[tuple[str, Thm3Terms]], *, rtol: float = 1e-10) -> Verdict:
    r"""Thm 3 (eqs. (15)/(16)): the formula's dL/dt equals −‖∇L‖² (autograd) at every checked point,
    to relative error ``rtol`` (machine precision up to the conditioning of the sums). The margin is
    **relative**: rtol − the largest relative error, at the point where it is largest."""
    if not records:
        raise GnndynError("check_thm3 needs at least one evaluated point.")
    errs = np.array([t.rel_err for _, t in records])
    j = int(np.argmax(errs))
    return Verdict("xu.thm3", f"{PAPER}, Thm 3, eqs. (15)–(16)",
                   "dL/dt = −Σ_l ‖vec(V (X(S^l)_{*I})ᵀ)‖²_{F(l)} − Σ_i ‖Σ_l J_(i,l) vec(V (X(S^l)_{*I})ᵀ)‖² = −‖∇L‖²",
                   bool((errs <= rtol).all()), float(rtol - errs[j]), records[j][0],
                   details={"max_rel_err": float(errs.max()), "points": len(records), "rtol": rtol})


__all__ = ["Thm3Terms", "check_thm3", "thm3_terms", "thm3_terms_kron"]
