r"""Margins of Xu et al. (ICML 2021): the singular margin (Def. 4) that Props. 1 and 3 turn into a lower
bound :math:`\lambda_T \ge \gamma^2`, and the deficiency margin of Arora et al. 2019a that Prop. 2 relates to it.

* :class:`SingularMargin`, :func:`singular_margins` — Def. 4 for every layer, with the witness point that
  makes it 0 (so Prop. 1 and Prop. 3 guarantee only :math:`\lambda_T \ge 0`);
* :func:`deficiency_margin` — Prop. 2's deficiency margin against the least-squares end-to-end matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gnndyn.algebra.spectrum import as_float64 as _np
from gnndyn.models.linear_gnn import XuData, XuGNN, XuObjective


@dataclass(frozen=True)
class SingularMargin:
    r"""Def. 4 for one layer l: the largest γ with :math:`\sigma_{\min}(\bar B^{(1:l)}) \ge \gamma` on the whole
    sublevel set :math:`\{L(W, B) \le L(W_0, B_0)\}`.

    Attributes:
        layer: l.
        value: the margin as Def. 4 states it: 0 for every l ≥ 1 (see :func:`singular_margins`).
        upper_bound: :math:`\sigma_{\min}(\bar B_0^{(1:l)})` — γ can never exceed it, the initialization
            being in its own sublevel set.
        witness_scale: ε of the witness point (:math:`B^{(1)} \to \epsilon B^{(1)}`, read-outs of layers
            ≥ 1 → ·1/ε) whose loss equals :math:`L(W_0,B_0)` and whose σ_min is ε·upper_bound.
        witness_sigma_min: σ_min of :math:`\bar B^{(1:l)}` at the witness.
        witness_loss_rel_change: |L(witness) − L0| / L0 (rounding level).
        guarantee: Prop. 1/3's conclusion :math:`\lambda_T \ge \gamma^2` with γ = ``value``.
    """

    layer: int
    value: float
    upper_bound: float
    witness_scale: float
    witness_sigma_min: float
    witness_loss_rel_change: float

    @property
    def guarantee(self) -> float:
        return self.value ** 2


def _sigma_min_bbar(model: XuGNN, l: int) -> float:
    with torch.no_grad():
        s = torch.linalg.svdvals(model.bbar(l).detach().to(torch.float64))
    k = min(model.dims[l], model.in_dim)
    return float(s[k - 1])


def singular_margins(model: XuGNN, data: XuData, objective: XuObjective, *, eps: float = 1e-6) -> list[SingularMargin]:
    r"""Def. 4 (singular margin) of the model's current weights, for every layer l = 1..H.

    The loss is invariant under :math:`B^{(1)} \to \epsilon B^{(1)}`, :math:`W \to W/\epsilon` (plain), or
    :math:`W^{(l)} \to W^{(l)}/\epsilon` for every l ≥ 1 (multiscale): each output term :math:`W^{(l)}\bar B^{(1:l)}`
    is unchanged (for ReLU too, ReLU being positively homogeneous). So the sublevel set of any
    initialization contains points with :math:`\sigma_{\min}(\bar B^{(1:l)})` as small as one likes, and the
    singular margin **as Def. 4 states it is 0 for every initialization and every l ≥ 1**; Prop. 1 and
    Prop. 3 then guarantee only :math:`\lambda_T \ge 0`. This function exhibits the witness numerically
    (loss unchanged to rounding, σ_min scaled by ``eps``) and bounds γ above by its value at initialization.
    """
    if model.depth == 0:
        return []
    import copy

    with torch.no_grad():
        L0 = float(objective(model(data)).detach())
        wit = copy.deepcopy(model)
        wit.B[0].mul_(eps)
        for l in range(len(wit.W)):
            if wit.multiscale and l == 0:
                continue
            wit.W[l].div_(eps)
        L1 = float(objective(wit(data)).detach())
    out = []
    for l in range(1, model.depth + 1):
        ub = _sigma_min_bbar(model, l)
        ws = _sigma_min_bbar(wit, l)
        out.append(SingularMargin(l, 0.0, ub, eps, ws, abs(L1 - L0) / max(abs(L0), 1e-300)))
    return out


def deficiency_margin(model: XuGNN, data: XuData, objective: XuObjective) -> dict[str, float]:
    r"""Deficiency margin of Arora et al. 2019a (Def. 2), the notion Xu et al.'s Prop. 2 relates to the
    singular margin: :math:`c = \sigma_{\min}(\Phi) - \|\tilde W_0 - \Phi\|_F` with :math:`\tilde W_0` the
    end-to-end matrix at initialization and Φ the target end-to-end matrix. In the GNN setting the
    target is taken as the minimum-norm least-squares solution :math:`\Phi = Y G^+` (:math:`G = G_H`, or the
    stacked :math:`\mathcal G_H` with :math:`\tilde W = [\tilde W_0, \dots, \tilde W_H]` for Def. 2), and
    :math:`\sigma_{\min}(\Phi)` is its :math:`\min(m_y, \cdot)`-th singular value. Prop. 2 (informal) says c > 0
    implies a positive singular margin; its formal version (App. A.3) is not in the text gnndyn has.
    """
    H = model.depth
    blocks = data.blocks(H)
    G = np.vstack([_np(b) for b in (blocks if model.multiscale else [blocks[H]])])
    Y = _np(objective.target())
    Phi = Y @ np.linalg.pinv(G)
    with torch.no_grad():
        Wt = np.hstack([_np(m) for m in model.end_to_end()])
    s = np.linalg.svd(Phi, compute_uv=False)
    k = min(Phi.shape)
    dist = float(np.linalg.norm(Wt - Phi))
    return {"deficiency_margin": float(s[k - 1]) - dist, "sigma_min_target": float(s[k - 1]), "distance_to_target": dist}


__all__ = ["SingularMargin", "deficiency_margin", "singular_margins"]
