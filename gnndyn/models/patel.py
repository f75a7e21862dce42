r"""The linear GNN of Patel, Savostianov & Schaub (arXiv 2501.14440) as Xu et al.'s linear GNN.

Patel et al., Def. 2.1, eq. (2.1): :math:`X_0 = X`, :math:`X_\ell = W_\ell X_{\ell-1}S` (ℓ = 1..H),
:math:`f(X, W) = W_{H+1}X_H`, nodes as columns, :math:`W_\ell \in \mathbb R^{d_\ell\times d_{\ell-1}}`,
:math:`d_0 = d_x`, :math:`d_{H+1} = d_y`, and the loss (eq. (2.2))

.. math:: \mathcal L(W) = \frac1m\|f(X, W)_{*I} - Y\|_F^2, \qquad m = \bar n d_y \quad(\text{no }½).

This is Xu et al.'s linear GNN (Def. 1) with another loss scale, so it is built from
:class:`~gnndyn.models.linear_gnn.XuGNN` and :class:`~gnndyn.models.linear_gnn.XuObjective`
(``loss_scale = 1/m``, real-valued ``targets``). The names map as

=====================  ==========================  =====================================
Patel et al.           Xu et al.                   gnndyn
=====================  ==========================  =====================================
:math:`W_\ell`, ℓ≤H    :math:`B^{(\ell)}`          ``model.B[ℓ-1]``
:math:`W_{H+1}`        W (read-out)                ``model.W[0]``
:math:`d_\ell`         :math:`m_\ell`              ``model.dims[ℓ]`` (ℓ ≤ H), ``out_dim``
:math:`(XS^H)_{*I}`    :math:`G_H`                 ``data.blocks(H)[H]`` (the Z of this module)
=====================  ==========================  =====================================

Because S acts on the nodes and the weights on the features, :math:`f_{*I} = W_{H+1}\cdots W_1 Z` with
:math:`Z = (XS^H)_{*I}` (notes §9): ``model(data)`` trains on Z (computed once by sparse products) and
``model(data, full_graph=True)`` propagates through the whole graph (the definition); the two agree.
:func:`z_data` wraps a bare Z (a deep linear network on Z is the linear GNN with S = I).

Assumption (after eq. (2.2)): non-increasing widths :math:`d_1 \ge \dots \ge d_{H+1}`. A bottleneck
(:math:`d_\ell < \min(d_x, d_y)`) necessarily breaks it (:math:`d_\ell \ge d_y` otherwise); it is built with
``allow_increasing=True`` and :func:`widths_report` records that the theorems do not cover it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from gnndyn.errors import GnndynError
from gnndyn.models.linear_gnn import XuData, XuGNN, XuObjective
from gnndyn.operators.base import Operator, csr_from_scipy


@dataclass(frozen=True)
class Widths:
    """The dimensions :math:`d_0 = d_x, d_1, \\dots, d_H, d_{H+1} = d_y` and what the paper assumes of them.

    Attributes:
        dims: (d_0, ..., d_{H+1}).
        non_increasing: :math:`d_1 \\ge \\dots \\ge d_{H+1}` (the paper's standing assumption).
        bottleneck: some hidden :math:`d_\\ell < \\min(d_x, d_y)`; then :math:`\\tilde L_H` is the rank-capped
            least-squares value and no theorem of the paper covers the model (§2, §8). Since
            :math:`d_\\ell \\ge d_{H+1} = d_y` under the assumption, a bottleneck always breaks it too.
        thm44_widths: :math:`d_y \\le \\min(d_1, \\dots, d_H)` (Thm 4.4).
    """

    dims: tuple[int, ...]
    non_increasing: bool
    bottleneck: bool
    thm44_widths: bool

    @property
    def depth(self) -> int:
        return len(self.dims) - 2

    @property
    def rank_cap(self) -> int:
        """min(d_0..d_{H+1}): the largest rank of the end-to-end map :math:`W_{H+1}\\cdots W_1`."""
        return min(self.dims)

    def as_dict(self) -> dict:
        return {"dims": list(self.dims), "non_increasing": self.non_increasing, "bottleneck": self.bottleneck,
                "thm44_widths": self.thm44_widths}


def widths_report(d_x: int, widths: Sequence[int], d_y: int) -> Widths:
    """Validate the dimensions (all ≥ 1, H ≥ 1) and report the paper's width assumptions."""
    dims = (int(d_x), *[int(w) for w in widths], int(d_y))
    if any(d < 1 for d in dims):
        raise GnndynError(f"every dimension must be ≥ 1; got d_x={d_x}, widths={list(widths)}, d_y={d_y}.")
    if len(dims) < 3:
        raise GnndynError("Patel et al.'s linear GNN has H ≥ 1 layers (H + 1 ≥ 2 weight matrices); got widths=[].")
    hidden = dims[1:]
    non_inc = all(a >= b for a, b in zip(hidden, hidden[1:]))
    bottleneck = any(d < min(dims[0], dims[-1]) for d in dims[1:-1])
    return Widths(dims, non_inc, bottleneck, dims[-1] <= min(dims[1:-1]))


def patel_gnn(d_x: int, widths: Sequence[int], d_y: int, weights: Sequence[torch.Tensor | np.ndarray] | None = None, *,
              allow_increasing: bool = False) -> XuGNN:
    r"""The linear GNN of eq. (2.1) with hidden widths ``widths`` = (d_1..d_H), float64.

    ``weights`` (W_1..W_{H+1}, the paper's shapes) sets the start (see :mod:`gnndyn.models.patel_init`);
    without it the start is XuGNN's default. Widths must be non-increasing (the paper's assumption)
    unless ``allow_increasing``.
    """
    rep = widths_report(d_x, widths, d_y)
    if not rep.non_increasing and not allow_increasing:
        raise GnndynError(f"Patel et al. assume non-increasing widths d_1 ≥ … ≥ d_{{H+1}}; got {list(rep.dims[1:])}. "
                          "Reorder the widths, or pass allow_increasing=True to train outside the assumption.")
    model = XuGNN(int(d_x), list(widths), int(d_y), dtype=torch.float64)
    if weights is not None:
        set_layers(model, weights)
    return model


def layers(model: XuGNN) -> list[torch.Tensor]:
    """:math:`[W_1, \\dots, W_{H+1}]` in Patel et al.'s numbering (the parameters themselves, not copies)."""
    if model.multiscale:
        raise GnndynError("Patel et al.'s model is the plain linear GNN (Def. 1 of Xu et al.); got a multiscale model.")
    return [*model.B, model.W[0]]


def layer_arrays(model: XuGNN) -> list[np.ndarray]:
    """Float64 NumPy copies of :math:`W_1..W_{H+1}`."""
    return [w.detach().cpu().to(torch.float64).numpy().copy() for w in layers(model)]


def set_layers(model: XuGNN, weights: Sequence[torch.Tensor | np.ndarray]) -> XuGNN:
    """Copy ``weights`` = :math:`W_1..W_{H+1}` into the model (shapes checked, both shapes named)."""
    params = layers(model)
    if len(weights) != len(params):
        raise GnndynError(f"the model has H + 1 = {len(params)} weight matrices; got {len(weights)}.")
    with torch.no_grad():
        for l, (p, w) in enumerate(zip(params, weights), start=1):
            t = torch.as_tensor(np.asarray(w) if not isinstance(w, torch.Tensor) else w, dtype=p.dtype)
            if tuple(t.shape) != tuple(p.shape):
                raise GnndynError(f"W_{l} must be {tuple(p.shape)} (d_{l} × d_{l - 1}); got {tuple(t.shape)}.")
            p.copy_(t)
    return model


def patel_objective(Y: torch.Tensor | np.ndarray) -> XuObjective:
    r"""The loss (2.2), :math:`\frac1m\|\hat Y - Y\|_F^2` with :math:`m = \bar n d_y`, for a real Y (:math:`d_y\times\bar n`)."""
    Yt = torch.as_tensor(np.asarray(Y) if not isinstance(Y, torch.Tensor) else Y).to(torch.float64)
    if Yt.dim() != 2:
        raise GnndynError(f"Y must be d_y × n̄ (nodes as columns); got shape {tuple(Yt.shape)}.")
    d_y, nbar = Yt.shape
    return XuObjective("squared", None, int(d_y), loss_scale=1.0 / (nbar * d_y), targets=Yt)


def z_data(Z: torch.Tensor | np.ndarray) -> XuData:
    r"""Data whose propagated block is a given :math:`Z \in \mathbb R^{d_x\times\bar n}`: X = Z on n̄ nodes, S = I,
    I = all nodes, so :math:`(XS^H)_{*I} = Z` for every H (a deep linear network on Z, e.g. a planted rank)."""
    Zt = torch.as_tensor(np.asarray(Z) if not isinstance(Z, torch.Tensor) else Z).to(torch.float64)
    if Zt.dim() != 2:
        raise GnndynError(f"Z must be d_x × n̄; got shape {tuple(Zt.shape)}.")
    nbar = int(Zt.shape[1])
    op = Operator("identity", csr_from_scipy(sp.identity(nbar, format="csr")), True, True, is_identity=True)
    return XuData(Zt.T.contiguous(), op, torch.arange(nbar), torch.float64)


def propagated(data: XuData, depth: int) -> np.ndarray:
    """:math:`Z = (XS^H)_{*I}` as a float64 array (d_x × n̄)."""
    return data.blocks(depth)[depth].detach().cpu().to(torch.float64).numpy()


__all__ = ["Widths", "layer_arrays", "layers", "patel_gnn", "patel_objective", "propagated", "set_layers", "widths_report",
           "z_data"]
