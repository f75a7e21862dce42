r"""Streaming measurements: 0-d float64 tensors on the signal's device, computed without n × d temporaries.

They return tensors, not floats, so that a probed step makes no host round trip until the probe
reads its numbers (one ``tolist`` per quantity), and they never keep the signal alive.

* :func:`smoothing_t` — Keriven eq. (6)/(17): :math:`\mathcal E(X) = n^{-1/2}\|X - 1\bar x^\top\|_F`,
  by one pass over row blocks of X (:class:`Moments`): each block, while in cache, is shifted by the
  first block's mean in X's dtype, and the blocks' sums are merged in float64 (shifted-data
  algorithm). Unlike :math:`\sum\|X_i\|^2 - n\|\bar x\|^2`, this does not cancel when the rows are
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

BLOCK_BYTES = 1 << 20  # what one blocked pass keeps in L2 (a core's is 2 MiB here): its blocks and its scratch
# Measured in situ (10⁵ × 64, depth 16–40): a pass over a block and its scratch runs fastest at 512 KiB blocks
# (1 MiB blocks cost 20–35 % more, in float32 and float64 alike; 256 KiB ones 5–10 % more, from the doubled
# count of small kernels), and the pass over X, F and a scratch block at 384 KiB ones.


def block_rows(X: torch.Tensor, streams: int = 2) -> int:
    """Rows per block for a 2-D X (at least one), so that ``streams`` blocks of X's shape (the signals a
    pass reads and its scratch) fill :data:`BLOCK_BYTES`."""
    return max(1, BLOCK_BYTES // max(1, streams * X.shape[1] * X.element_size()))


WIDE_ROW = 256  # entries per row of the shift subtraction (see Moments._start)


def wide_factor(rows: int, width: int) -> int:
    """k such that a contiguous block of ``rows`` × ``width`` is viewed as rows/k rows of k·width entries
    for the shift subtraction (k divides rows; k·width ≈ :data:`WIDE_ROW`)."""
    k = max(1, WIDE_ROW // max(1, width))
    while rows % k:
        k //= 2
    return k


def row_blocks(X: torch.Tensor, rows: int, flat: bool = True,
               wide: bool = True) -> list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]]:
    """X's blocks of ``rows`` rows as (block, flat view, wide view): the views a pass would otherwise make per
    block, each costing as much as a small kernel's dispatch. Only the views asked for are made (the others,
    and those of a block that is not contiguous, are ``None``). A caller that passes over the same buffer
    every step keeps this list (the deep GNN's workspace does)."""
    X = _as_2d(X)
    out = []
    for b in X.split(rows):
        if b.is_contiguous() and (flat or wide):
            m, w = b.shape
            k = wide_factor(m, w)
            out.append((b, b.view(-1) if flat else None, b.view(m // k, k * w) if wide else None))
        else:
            out.append((b, None, None))
    return out


_BUFFERS: dict[tuple, torch.Tensor] = {}


def _buffer(block: torch.Tensor) -> torch.Tensor:
    """A reused scratch block shaped like ``block`` (a fresh temporary per block costs page faults)."""
    key = (block.dtype, block.device, block.shape[1])
    buf = _BUFFERS.get(key)
    if buf is None or buf.shape[0] < block.shape[0]:
        rows = max(block.shape[0], block_rows(block))
        buf = _BUFFERS[key] = torch.empty((rows, block.shape[1]), dtype=block.dtype, device=block.device)
    return buf[: block.shape[0]]


def _as_2d(X: torch.Tensor) -> torch.Tensor:
    X = X.detach()
    return X.unsqueeze(1) if X.dim() == 1 else X


class Moments:
    r"""Column sums and the centred sum of squares of a matrix fed block by block (rows).

    All blocks are shifted by one vector c, the first block's mean (a value inside the data's spread):
    with d = x − c (in the block's dtype, in cache, in a reused scratch block), block b keeps
    s_b = Σ d per column and q_b = Σ ‖d‖² = ⟨d, d⟩ (one dot product). In float64,
    :math:`\sum_i \|x_i - \bar x\|^2 = \sum_b q_b - \|\sum_b s_b\|^2/n`
    (the shifted-data algorithm, Chan, Golub & LeVeque 1983). The two terms are of the size
    n(ℰ² + ‖x̄ − c‖²), and ‖x̄ − c‖ is of the order of the spread itself, so the difference does not
    cancel when the rows are nearly equal (ℰ ≪ ‖x̄‖, the oversmoothed regime) as
    Σ‖X_i‖² − n‖x̄‖² does.
    """

    __slots__ = ("n", "shift", "sums", "squares", "_buf", "_rows", "_k", "_wide", "_wshape", "_wbuf", "_flat")

    def __init__(self) -> None:
        self.n = 0
        self.shift: torch.Tensor | None = None
        self.sums: list[torch.Tensor] = []
        self.squares: list[torch.Tensor] = []
        self._buf: torch.Tensor | None = None
        self._rows = -1

    def _start(self, block: torch.Tensor) -> None:
        """The shift, the scratch block, and the views that every block of the first one's size reuses."""
        m, w = block.shape
        self.shift = block.mean(0)
        self._buf = buf = _buffer(block)
        self._rows = m
        # d = x − c broadcasts c over rows of w entries; on the block viewed as rows of k·w entries (c
        # repeated k times: the same entries, so the same bits) the kernel's inner loop is k times longer,
        # which for float32 blocks of width 64 takes a quarter less time (k = 4).
        self._k = k = wide_factor(m, w)
        self._wshape = (m // k, k * w)
        self._wide = self.shift.repeat(k) if k > 1 else self.shift
        self._wbuf = buf.view(self._wshape)
        self._flat = buf.view(-1)

    def add(self, block: torch.Tensor, wide: torch.Tensor | None = None) -> None:
        """Add the rows of ``block``; ``wide`` is its view from :func:`row_blocks`, when the caller has it."""
        if self.shift is None:
            self._start(block)
        m = block.shape[0]
        if m == self._rows and (wide is not None or self._k == 1 or block.is_contiguous()):
            torch.sub(wide if wide is not None else block.view(self._wshape), self._wide, out=self._wbuf)
            d, flat = self._buf, self._flat
        else:
            buf = self._buf
            if buf.shape[0] < m:
                buf = self._buf = _buffer(block)
            d = torch.sub(block, self.shift, out=buf[:m])
            flat = d.view(-1)
        self.n += m
        self.sums.append(d.sum(0))
        self.squares.append(torch.dot(flat, flat))

    def finish(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(Σ_i x_i per column, Σ_i ‖x_i − x̄‖²), float64."""
        s = torch.stack(self.sums).to(torch.float64).sum(0)
        q = torch.stack(self.squares).to(torch.float64).sum()
        n = float(self.n)
        total = s + n * self.shift.to(torch.float64)
        return total, (q - s.square().sum() / n).clamp_min(0.0)


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
    return (mo.finish()[1] / float(mo.n)).sqrt()


def smoothing_t(X: torch.Tensor) -> torch.Tensor:
    """ℰ(X) = n^{-1/2}‖X − 1x̄ᵀ‖_F (Keriven eq. 17) as a 0-d float64 tensor."""
    return smoothing_from(moments(X))


def mean_error_t(B: torch.Tensor) -> torch.Tensor:
    """‖1ᵀB‖₂ as a 0-d float64 tensor (Keriven Thm 4)."""
    return torch.linalg.vector_norm(moments(B).finish()[0])


def _vec(v, rows: slice) -> torch.Tensor | float:
    return v[rows] if isinstance(v, torch.Tensor) else v


def dirichlet_block(op: Operator, x: torch.Tensor, sx: torch.Tensor, rows: slice,
                    cx: torch.Tensor | None = None) -> torch.Tensor:
    """Σ (a∘x)∘(b∘cx − S cx) over a block of rows, without the scale s: ⟨x, a∘(b∘cx − S cx)⟩, one dot
    product after the difference is formed in cache. ``sx`` is the block of S(cX); ``cx`` the block of
    c∘X (X itself when c = 1, the default)."""
    form = op.dirichlet
    b = _vec(form.b, rows)
    cx = x if cx is None else cx
    buf = _buffer(x)
    diff = torch.sub(cx, sx, out=buf) if isinstance(b, float) and b == 1.0 else torch.mul(cx, b, out=buf).sub_(sx)
    if form.a is not None:
        diff.mul_(_vec(form.a, rows))
    return torch.dot(x.contiguous().view(-1), diff.view(-1))


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
    n, step = X.shape[0], block_rows(X, streams=3)  # X (or c∘X), S(cX) and a scratch block
    parts = [dirichlet_block(op, X[r], SX[r], r, cX[r]) for r in (slice(i, min(n, i + step)) for i in range(0, n, step))]
    return torch.stack(parts).to(torch.float64).sum() * form.scale
