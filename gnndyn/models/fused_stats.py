r"""The probe passes of the fused deep GNN (:mod:`gnndyn.models.fused`): per-layer numbers taken from each
signal while the step's own kernels have its blocks in cache (Keriven eqs. (5), (6), (16), (17)).

* :func:`product_pass` — after F⁽ᵏ⁾ = P X⁽ᵏ⁾: ℰ(F⁽ᵏ⁾) and the Dirichlet energy of X⁽ᵏ⁾ (through the
  operator's Laplacian form: for the gossip matrix :math:`d_{\max}\sum X\circ(X - F)`), one blocked pass
  over X⁽ᵏ⁾ and F⁽ᵏ⁾.
* :func:`activation_pass` — X⁽ᵏ⁺¹⁾ = ρ(H⁽ᵏ⁾) in place, block by block, with ℰ(H⁽ᵏ⁾) before ρ and
  ℰ(X⁽ᵏ⁺¹⁾) after it.
* :func:`backward_pass` — B⁽ᵏ⁻¹⁾ = ρ′ ⊙ (Pᵀ B⁽ᵏ⁾ W⁽ᵏ⁾ᵀ) block by block, with ℰ(B) and ‖1ᵀB‖ of each block
  as it is written; and, for k ≥ 1, the product pass's two numbers of layer k (:class:`Deferred`).

ℰ is taken by :class:`gnndyn.probes.stats.Moments` (shifted sums merged in float64); blocks and their views
are kept by the workspace, since its buffers are the same every step.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from gnndyn.models.activations import Activation

if TYPE_CHECKING:
    from gnndyn.models.fused import Engine, Workspace, _Lease


class _Stats:
    """:mod:`gnndyn.probes.stats`, imported on first use (the probes package imports the models)."""

    def __getattr__(self, name: str):
        from gnndyn.probes import stats

        return getattr(stats, name)


st = _Stats()


def act_inplace(kind: str, act: Activation, H: torch.Tensor) -> torch.Tensor:
    if kind == "tanh":
        return H.tanh_()
    if kind == "relu":
        return H.relu_()
    return H  # identity


def act_backward(kind: str, act: Activation, grad: torch.Tensor, saved: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """ρ′ ⊙ grad with autograd's own kernels: ``saved`` is ρ(H) for tanh/ReLU, H for a generic ρ."""
    if kind == "tanh":
        return torch.ops.aten.tanh_backward.grad_input(grad, saved, grad_input=out)
    if kind == "relu":
        return torch.ops.aten.threshold_backward.grad_input(grad, saved, 0, grad_input=out)
    if kind == "identity":
        return out.copy_(grad)
    with torch.enable_grad():
        h = saved.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(act.fn(h), h, grad)
    return out.copy_(g)


def blocks(ws: Workspace | None, X: torch.Tensor, rows: int, flat: bool = False, wide: bool = False) -> list:
    """:func:`gnndyn.probes.stats.row_blocks` of X, kept by the workspace when X is one of its buffers."""
    return ws.blocks(X, rows, flat, wide) if ws is not None else st.row_blocks(X, rows, flat, wide)


def wants(eng: Engine) -> tuple[bool, bool]:
    """(Dirichlet energy streamed from F = S X — the operator's form has c = 1 —, ℰ(F)) asked for."""
    form = eng.op.dirichlet
    return ("dirichlet_X" in eng.stats and form is not None and form.c is None), "smoothing_F" in eng.stats


def xf_pass(eng: Engine, X: torch.Tensor, F: torch.Tensor, ws: Workspace | None, x_in_ws: bool,
            rho: tuple[str, torch.Tensor, Any] | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """One blocked pass over X and F = S X: (Dirichlet energy of X, ℰ(F)), each ``None`` if not asked for.

    With ``rho = (kind, grad, moments)`` each block of X, once its numbers are taken, is overwritten by
    ρ′ ⊙ grad (X = ρ(H) is what ρ′ reads) and added to ``moments`` — the backward pass of
    :class:`Deferred`. ``ws``: the workspace whose buffer F is (``x_in_ws``: X is one too).
    """
    op = eng.op
    form = op.dirichlet
    dirichlet, smooth_f = wants(eng)
    if not dirichlet and not smooth_f and rho is None:
        return None, None
    step = st.block_rows(F, streams=3)  # X, F and a scratch block (and ρ′'s gradient, whose block is read once)
    fb = blocks(ws, F, step, wide=True)
    xb = blocks(ws if x_in_ws else None, X, step, flat=True, wide=rho is not None)
    gb = blocks(ws, rho[1], step) if rho is not None else None
    mo, parts = st.Moments(), []
    # L = s(I − S) (a = 1, b = 1: the gossip operator): the block's ⟨x, x − f⟩ is one subtraction into the
    # scratch block and one dot product, over views kept with the blocks
    plain = form is not None and form.a is None and isinstance(form.b, float) and form.b == 1.0
    buf = st._buffer(fb[0][0])
    bflat, rows = buf.view(-1), fb[0][0].shape[0]
    start = 0
    for i, (f, _, fwide) in enumerate(fb):
        m = f.shape[0]
        x, xflat, xwide = xb[i]
        if dirichlet:
            if plain and xflat is not None and m == rows:
                torch.sub(x, f, out=buf)
                parts.append(torch.dot(xflat, bflat))
            else:
                parts.append(st.dirichlet_block(op, x, f, slice(start, start + m)))
        if smooth_f:
            mo.add(f, fwide)
        if rho is not None:
            act_backward(rho[0], eng.act, gb[i][0], x, x)
            rho[2].add(x, xwide)
        start += m
    d = torch.stack(parts).to(torch.float64).sum() * form.scale if dirichlet else None
    return d, (st.smoothing_from(mo) if smooth_f else None)


def product_pass(eng: Engine, X: torch.Tensor, F: torch.Tensor, ws: Workspace, x_in_ws: bool, defer: bool) -> None:
    """ℰ(F⁽ᵏ⁾) and the Dirichlet energy of X⁽ᵏ⁾ into the record, in one blocked pass over X⁽ᵏ⁾ and
    F⁽ᵏ⁾ = P X⁽ᵏ⁾; with ``defer`` only what needs a product of its own (c ≠ 1), the rest being left to
    :class:`Deferred`."""
    rec, op = eng.record, eng.op
    dirichlet, smooth_f = wants(eng)
    if "dirichlet_X" in eng.stats and not dirichlet:
        rec["dirichlet_X"].append(st.dirichlet_t(op, X))
    if defer:
        return
    d, e = xf_pass(eng, X, F, ws, x_in_ws)
    if e is not None:
        rec["smoothing_F"].append(e)
    if d is not None:
        rec["dirichlet_X"].append(d)


def activation_pass(eng: Engine, kind: str, H: torch.Tensor, last: bool, ws: Workspace | None = None) -> torch.Tensor:
    """X⁽ᵏ⁺¹⁾ = ρ(H⁽ᵏ⁾) in place, with ℰ(H⁽ᵏ⁾) and ℰ(X⁽ᵏ⁺¹⁾) taken block by block on the way
    (``ws``: the workspace whose buffer H is)."""
    rec, want = eng.record, eng.stats
    if last or kind == "generic":
        if "smoothing_H" in want:
            rec["smoothing_H"].append(st.smoothing_t(H))
        if last:
            return H
        X = eng.act.fn(H)
        if "smoothing_X" in want:
            rec["smoothing_X"].append(st.smoothing_t(X))
        return X
    sh, sx = "smoothing_H" in want, "smoothing_X" in want
    if not sh and not sx:
        return act_inplace(kind, eng.act, H)
    mh, mx, act = st.Moments(), st.Moments(), eng.act
    for block, _, wide in blocks(ws, H, st.block_rows(H), wide=True):
        if sh:
            mh.add(block, wide)
        act_inplace(kind, act, block)
        if sx:
            mx.add(block, wide)
    if sh:
        rec["smoothing_H"].append(st.smoothing_from(mh))
    if sx:
        rec["smoothing_X"].append(st.smoothing_from(mx))
    return H


def backward_pass(eng: Engine, kind: str, grad: torch.Tensor, saved: torch.Tensor, out: torch.Tensor,
                  ws: Workspace | None = None) -> tuple[torch.Tensor, Any]:
    """B = ρ′ ⊙ grad into ``out`` (tanh or ReLU); with ℰ(B) or ‖1ᵀB‖ asked for, block by block with the
    moments of each block of B taken while it is in cache (no second read of B). Returns (B, moments or None).
    ``ws``: the workspace whose buffers ``grad``, ``saved`` and ``out`` are."""
    if "smoothing_B" not in eng.stats and "mean_error_B" not in eng.stats:
        return act_backward(kind, eng.act, grad, saved, out), None
    step = st.block_rows(out)
    mo, act = st.Moments(), eng.act
    for (g, _, _), (y, _, _), (o, _, wide) in zip(blocks(ws, grad, step), blocks(ws, saved, step), blocks(ws, out, step, wide=True)):
        act_backward(kind, act, g, y, o)
        mo.add(o, wide)
    return out, mo


class Deferred:
    r"""The Dirichlet energy of X⁽ᵏ⁾ and ℰ(F⁽ᵏ⁾) for k = 1..L, left by the forward to the backward pass.

    The backward's ρ′ (Keriven eq. (5)) reads X⁽ᵏ⁾ = ρ(H⁽ᵏ⁻¹⁾) block by block; taking the two numbers from
    those blocks (with F⁽ᵏ⁾, kept for it) just before ρ′ overwrites them with B⁽ᵏ⁻¹⁾ saves the forward's read
    of X⁽ᵏ⁾ from memory, one of the two reads of the product pass. Same blocks, same kernels: the numbers are
    bitwise those of the forward's :func:`product_pass`. Until the backward has run, reading the record
    (:meth:`complete`, called by ``Signals.stats``) takes them from the kept buffers, so a forward alone
    still gives every number. Holds the workspace's lease until then, so no other pass reuses its buffers.
    """

    def __init__(self, eng: Engine, lease: _Lease, L: int) -> None:
        self.eng, self.lease, self.L = eng, lease, L
        self.state = "pending"  # → "backward" (a backward pass has begun) → "done"
        self.taken: list[tuple[torch.Tensor | None, torch.Tensor | None]] = []  # layers L, L−1, …, as the backward goes

    def take(self, X: torch.Tensor, F: torch.Tensor, grad: torch.Tensor, kind: str) -> tuple[torch.Tensor, Any]:
        """The backward pass of layer k (X = X⁽ᵏ⁾ = ρ(H⁽ᵏ⁻¹⁾), F = F⁽ᵏ⁾, grad = Pᵀ B⁽ᵏ⁾ W⁽ᵏ⁾ᵀ): the two
        numbers of layer k, then B⁽ᵏ⁻¹⁾ = ρ′ ⊙ grad over X. Returns (B⁽ᵏ⁻¹⁾, its moments)."""
        self.state = "backward"
        mo = st.Moments()
        self.taken.append(xf_pass(self.eng, X, F, self.lease.ws, True, rho=(kind, grad, mo)))
        return X, mo

    def complete(self) -> None:
        """Make the record whole: from the kept buffers if no backward pass has begun; NaN for the layers a
        backward pass that did not finish left out (their signals are overwritten)."""
        if self.state == "done":
            return
        if self.state == "pending":
            ws = self.lease.ws
            self.taken = [xf_pass(self.eng, ws.Y[k], ws.F[k], ws, True) for k in range(self.L, 0, -1)]
        self.finish()

    def finish(self) -> None:
        """Append layers 1..L to the record (in layer order) and release the workspace."""
        if self.state == "done":
            return
        dirichlet, smooth_f = wants(self.eng)
        nan = torch.tensor(math.nan, dtype=torch.float64, device=self.lease.ws.F[-1].device)
        missing = [(nan, nan)] * (self.L - len(self.taken))
        rows = missing + list(reversed(self.taken))
        rec = self.eng.record
        if dirichlet:
            rec["dirichlet_X"].extend(d for d, _ in rows)
        if smooth_f:
            rec["smoothing_F"].extend(e for _, e in rows)
        self.state, self.lease, self.taken = "done", None, []
