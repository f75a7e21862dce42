r"""Streaming measurements: 0-d float64 tensors on the signal's device, computed without n × d temporaries.

They return tensors, not floats, so that a probed step makes no host round trip until the probe
reads its numbers (one ``tolist`` per quantity), and they never keep the signal alive.

* :func:`smoothing_t` — Keriven eq. (6)/(17): :math:`\mathcal E(X) = n^{-1/2}\|X - 1\bar x^\top\|_F`,
  by one pass over row blocks of X. Each block is converted to float64 and centred on its own mean
  (the block stays in cache), and blocks are merged by Chan, Golub & LeVeque's update
  :math:`M_2 = M_2^a + M_2^b + \delta^2 n_a n_b/(n_a + n_b)`, :math:`\delta = \bar x^b - \bar x^a`,
  per column. Unlike :math:`\sum\|X_i\|^2 - n\|\bar x\|^2`, this does not cancel when the rows are
  nearly equal (ℰ ≪ ‖x̄‖, the oversmoothed regime): its error is that of the centred definition.
* :func:`dirichlet_t` — :math:`\mathrm{tr}(X^\top L X) = \sum_{\{i,j\}\in E}\|X_i - X_j\|^2` through the
  operator's :class:`~gnndyn.operators.base.DirichletForm` :math:`L = s\,\mathrm{diag}(a)(\mathrm{diag}(b) - S)
  \mathrm{diag}(c)`: :math:`s\sum (a\circ X)\circ(b\circ cX - S(cX))`, one sparse product, or none when
  c = 1 and F = SX is given (for the gossip matrix: :math:`d_{\max}\sum X\circ(X - PX)`). The
  difference is formed entrywise before the product, so the cancellation is that of
  :math:`X_i - (SX)_i`, not of two large sums; still, for a nearly constant X the edge-gather
  definition (:func:`gnndyn.probes.measures.dirichlet_energy`) is the more accurate one in float32.
* :func:`mean_error_t` — :math:`\|1_n^\top B\|_2` (Keriven Thm 4, eq. (16)), summed in float64.
"""

from __future__ import annotations

import torch

from gnndyn.operators.base import Operator, spmm

BLOCK_ELEMENTS = 1 << 18  # 2 MiB of float64 per block


def _rows(X: torch.Tensor) -> int:
    return max(1, BLOCK_ELEMENTS // max(1, X.shape[1]))


def _as_2d(X: torch.Tensor) -> torch.Tensor:
    X = X.detach()
    return X.unsqueeze(1) if X.dim() == 1 else X


def centred_sum_of_squares(X: torch.Tensor) -> torch.Tensor:
    """Σ_i ‖X_i − x̄‖² as a 0-d float64 tensor, in one blocked pass (see the module docstring)."""
    X = _as_2d(X)
    n, d = X.shape
    step = _rows(X)
    if n <= step:
        x = X.to(torch.float64)
        return (x - x.mean(0)).square().sum()
    mean = torch.zeros(d, dtype=torch.float64, device=X.device)
    m2 = torch.zeros(d, dtype=torch.float64, device=X.device)
    count = 0
    for block in X.split(step):
        b = block.to(torch.float64)
        nb = b.shape[0]
        mb = b.mean(0)
        m2b = (b - mb).square_().sum(0)
        delta = mb - mean
        total = count + nb
        mean.add_(delta, alpha=nb / total)
        m2.add_(m2b).add_(delta.square_(), alpha=count * nb / total)
        count = total
    return m2.sum()


def smoothing_t(X: torch.Tensor) -> torch.Tensor:
    """ℰ(X) = n^{-1/2}‖X − 1x̄ᵀ‖_F (Keriven eq. 17) as a 0-d float64 tensor."""
    X = _as_2d(X)
    return (centred_sum_of_squares(X) / X.shape[0]).sqrt()


def mean_error_t(B: torch.Tensor) -> torch.Tensor:
    """‖1ᵀB‖₂ as a 0-d float64 tensor (Keriven Thm 4)."""
    B = _as_2d(B)
    return torch.linalg.vector_norm(B.sum(0, dtype=torch.float64))


def _vec(v, rows: slice) -> torch.Tensor | float:
    return v[rows] if isinstance(v, torch.Tensor) else v


def dirichlet_t(op: Operator, X: torch.Tensor, F: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_{{i,j}∈E} ‖X_i − X_j‖² = tr(XᵀLX) through ``op.dirichlet`` (see the module docstring).

    ``F`` = S X when the caller has it (the deep GNN's F⁽ᵏ⁾); it is used only when c = 1.
    """
    form = op.dirichlet
    if form is None:
        raise ValueError(f"operator {op.name!r} has no Dirichlet form; use measures.dirichlet_energy with edges.")
    X = _as_2d(X)
    if form.c is None:
        cX = X
        SX = F.detach() if F is not None else spmm(op.matrix, X.contiguous())
    else:
        cX = form.c * X
        SX = spmm(op.matrix, cX)
    SX = _as_2d(SX)
    n = X.shape[0]
    step = _rows(X)
    total = torch.zeros((), dtype=torch.float64, device=X.device)
    for start in range(0, n, step):
        r = slice(start, min(n, start + step))
        x, cx, sx = X[r].to(torch.float64), cX[r].to(torch.float64), SX[r].to(torch.float64)
        b = _vec(form.b, r)
        diff = (cx - sx) if isinstance(b, float) and b == 1.0 else (cx * b - sx)
        if form.a is not None:
            x = x * _vec(form.a, r)
        total += (x * diff).sum()
    return total * form.scale
