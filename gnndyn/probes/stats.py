r"""Streaming measurements: 0-d float64 tensors on the signal's device, computed without n × d temporaries.

They return tensors, not floats, so that a probed step makes no host round trip until the probe
reads its numbers (one ``tolist`` per quantity), and they never keep the signal alive.

* :func:`smoothing_t` — Keriven eq. (6)/(17): :math:`\mathcal E(X) = n^{-1/2}\|X - 1\bar x^\top\|_F`,
  by one pass over row blocks of X (:class:`Moments`): each block, while in cache, is centred on its
  own mean in X's dtype, and the blocks' sums are merged in float64 by Chan, Golub & LeVeque's
  update. Unlike :math:`\sum\|X_i\|^2 - n\|\bar x\|^2`, this does not cancel when the rows are
  nearly equal (ℰ ≪ ‖x̄‖, the oversmoothed regime): its error is that of the centred definition.
* :func:`dirichlet_t` — :math:`\mathrm{tr}(X^\top L X) = \sum_{\{i,j\}\in E}\|X_i - X_j\|^2` through the
  operator's :class:`~gnndyn.operators.base.DirichletForm` :math:`L = s\,\mathrm{diag}(a)(\mathrm{diag}(b) - S)
  \mathrm{diag}(c)`: :math:`s\sum (a\circ X)\circ(b\circ cX - S(cX))`, one sparse product, or none when
  c = 1 and F = SX is given (for the gossip matrix: :math:`d_{\max}\sum X\circ(X - PX)`). The
  difference is formed entrywise before the product, so the cancellation is that of
  :math:`X_i - (SX)_i`, not of two large sums; still, for a nearly constant X the edge-gather
  definition (:func:`gnndyn.probes.measures.dirichlet_energy`) is the more accurate one in float32.
* :func:`mean_error_t` — :math:`\|1_n^\top B\|_2` (Keriven Thm 4, eq. (16)), block sums added in float64
  (the same pass gives ℰ(B)).
"""

from __future__ import annotations

import torch

from gnndyn.operators.base import Operator, spmm

BLOCK_ELEMENTS = 1 << 17  # 512 KiB of float32 per block: a block stays in cache while it is worked on


def block_rows(X: torch.Tensor) -> int:
    """Rows per block for a 2-D X (at least one)."""
    return max(1, BLOCK_ELEMENTS // max(1, X.shape[1]))


def _as_2d(X: torch.Tensor) -> torch.Tensor:
    X = X.detach()
    return X.unsqueeze(1) if X.dim() == 1 else X


class Moments:
    r"""Column sums and the centred sum of squares of a matrix fed block by block (rows).

    Block b (n_b rows) is centred on its own mean m_b in the block's dtype; kept are m_b, the residual
    sums s_b = Σ(x − m_b) and q_b = Σ(x − m_b)² (per column). In float64,
    :math:`\sum x = \sum_b (n_b m_b + s_b)`, μ = Σx / n, and the exact identity
    :math:`\sum_i (x_i - \mu)^2 = \sum_b [q_b + 2 (m_b - \mu) s_b + n_b (m_b - \mu)^2]`
    (Chan, Golub & LeVeque's merge, with the residual s_b of a rounded block mean kept). Every large
    sum is of centred values, so nothing cancels when the rows are nearly equal.
    """

    def __init__(self) -> None:
        self.n: list[int] = []
        self.parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def add(self, block: torch.Tensor) -> None:
        mb = block.mean(0)
        c = block - mb
        self.n.append(block.shape[0])
        self.parts.append((mb, c.sum(0), c.square_().sum(0)))

    def finish(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(Σ_i x_i per column, Σ_i ‖x_i − x̄‖²), float64."""
        m, s, q = (torch.stack(t).to(torch.float64) for t in zip(*self.parts))
        nb = torch.tensor(self.n, dtype=torch.float64).to(m.device).unsqueeze(1)
        total = (nb * m + s).sum(0)
        dm = m - total / float(sum(self.n))
        return total, (q + 2 * dm * s + nb * dm * dm).sum()


def moments(X: torch.Tensor) -> Moments:
    """:class:`Moments` of X (rows), one blocked pass."""
    X = _as_2d(X)
    mo = Moments()
    for block in X.split(block_rows(X)):
        mo.add(block)
    return mo


def centred_sum_of_squares(X: torch.Tensor) -> torch.Tensor:
    """Σ_i ‖X_i − x̄‖² as a 0-d float64 tensor, in one blocked pass (see :class:`Moments`)."""
    return moments(X).finish()[1]


def smoothing_from(mo: Moments) -> torch.Tensor:
    return (mo.finish()[1] / float(sum(mo.n))).sqrt()


def smoothing_t(X: torch.Tensor) -> torch.Tensor:
    """ℰ(X) = n^{-1/2}‖X − 1x̄ᵀ‖_F (Keriven eq. 17) as a 0-d float64 tensor."""
    return smoothing_from(moments(X))


def mean_error_t(B: torch.Tensor) -> torch.Tensor:
    """‖1ᵀB‖₂ as a 0-d float64 tensor (Keriven Thm 4)."""
    return torch.linalg.vector_norm(moments(B).finish()[0])


def _vec(v, rows: slice) -> torch.Tensor | float:
    return v[rows] if isinstance(v, torch.Tensor) else v


def dirichlet_block(op: Operator, x: torch.Tensor, sx: torch.Tensor, rows: slice) -> torch.Tensor:
    """Σ (a∘x)∘(b∘x − S x) over a block of rows (c = 1), without the scale s."""
    form = op.dirichlet
    b = _vec(form.b, rows)
    diff = (x - sx) if isinstance(b, float) and b == 1.0 else (x * b - sx)
    if form.a is not None:
        x = x * _vec(form.a, rows)
    return (x * diff).sum()


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
    step = block_rows(X)
    parts = []
    for start in range(0, n, step):
        r = slice(start, min(n, start + step))
        x, cx, sx = X[r], cX[r], SX[r]
        b = _vec(form.b, r)
        diff = (cx - sx) if isinstance(b, float) and b == 1.0 else (cx * b - sx)
        if form.a is not None:
            x = x * _vec(form.a, r)
        parts.append((x * diff).sum())
    return torch.stack(parts).to(torch.float64).sum() * form.scale
