r"""The deep GNN's forward and backward passes as one autograd function over reused buffers.

The same arithmetic as autograd of Keriven eq. (1) — kernel for kernel, so the same bits (tested) —
with three changes of shape, not of result:

* **Buffers reused across steps.** F⁽ᵏ⁾ = P X⁽ᵏ⁾ is written by :func:`~gnndyn.operators.base.spmm`
  into a buffer of a :class:`Workspace` kept by the model, H⁽ᵏ⁾ = F⁽ᵏ⁾W⁽ᵏ⁾ by ``torch.mm(out=)`` and
  ρ in place, so a step allocates (and page-faults) almost nothing. A workspace is leased by one
  forward and returned when that pass's graph is freed; a second forward while the first graph is
  alive gets a fresh workspace, so held graphs never see their buffers overwritten.
* **What is saved.** ``memory="speed"`` keeps F⁽ᵏ⁾ and X⁽ᵏ⁺¹⁾ = ρ(H⁽ᵏ⁾) (for tanh and ReLU; H⁽ᵏ⁾ for
  other ρ) — what autograd keeps. ``memory="low"`` keeps F⁽¹⁾..F⁽ᴸ⁾ only: the backward recomputes
  H⁽ᵏ⁾ = F⁽ᵏ⁾W⁽ᵏ⁾ and ρ(H⁽ᵏ⁾) (one dense product and one elementwise op per layer, the same kernels
  as the forward, hence the same bits) and F⁽⁰⁾ = P X⁽⁰⁾ (one sparse product). Half the memory.
* **Probes as the passes produce the signals.** With a ``stats`` request, ℰ of X⁽ᵏ⁾, F⁽ᵏ⁾, H⁽ᵏ⁾, the
  Dirichlet energy of X⁽ᵏ⁾ (from F⁽ᵏ⁾, no extra product for the gossip operator), and after the
  backward ℰ(B⁽ᵏ⁾), ‖1ᵀB⁽ᵏ⁾‖ and ‖∂L/∂W⁽ᵏ⁾‖_F are computed as 0-d device tensors the moment each
  signal exists (:mod:`gnndyn.probes.stats`): numbers are kept, not tensors.

The backward is Keriven eq. (5): ∂L/∂W⁽ᵏ⁾ = F⁽ᵏ⁾ᵀB⁽ᵏ⁾ and
B⁽ᵏ⁻¹⁾ = ρ′(H⁽ᵏ⁻¹⁾) ⊙ (Pᵀ B⁽ᵏ⁾ W⁽ᵏ⁾ᵀ), Pᵀ = P for a symmetric operator, a cached transpose otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from gnndyn.models.activations import ACTIVATIONS, Activation
from gnndyn.operators.base import Operator, spmm


class _Stats:
    """:mod:`gnndyn.probes.stats`, imported on first use (the probes package imports the models)."""

    def __getattr__(self, name: str):
        from gnndyn.probes import stats

        return getattr(stats, name)


st = _Stats()

MEMORY_MODES = ("speed", "low")
FORWARD_STATS = ("smoothing_X", "smoothing_F", "smoothing_H", "dirichlet_X")
BACKWARD_STATS = ("smoothing_B", "mean_error_B", "grad_norm")
STATS = FORWARD_STATS + BACKWARD_STATS


def _kind(act: Activation) -> str:
    if act.fn is torch.tanh:
        return "tanh"
    if act.fn is torch.relu:
        return "relu"
    if act is ACTIVATIONS.get("identity"):
        return "identity"
    return "generic"


@dataclass
class Workspace:
    """Buffers of one pass: F⁽ᵏ⁾ (k = 0..L), saved activations, and scratch; reused across steps."""

    key: tuple
    F: list[torch.Tensor | None]
    Y: list[torch.Tensor | None]
    scratch: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    in_use: bool = False
    views: dict[tuple, list] = field(default_factory=dict)

    def blocks(self, t: torch.Tensor, rows: int, flat: bool, wide: bool) -> list:
        """:func:`gnndyn.probes.stats.row_blocks` of ``t``, one of this workspace's buffers (or a view of
        one), made once and kept: the buffers are the same every step, so their block views are too."""
        key = (t.data_ptr(), tuple(t.shape), tuple(t.stride()), rows, flat, wide)
        v = self.views.get(key)
        if v is None:
            v = self.views[key] = st.row_blocks(t, rows, flat, wide)
        return v

    def tmp(self, rows: int, cols: int, like: torch.Tensor, slot: int = 0) -> torch.Tensor:
        k = (rows, cols, slot)
        t = self.scratch.get(k)
        if t is None:
            t = self.scratch[k] = torch.empty((rows, cols), dtype=like.dtype, device=like.device)
        return t


class _Lease:
    """Holds a workspace for one autograd graph; returns it when the graph (and so this object) is freed."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        ws.in_use = True

    def __del__(self) -> None:
        self.ws.in_use = False


class Pool:
    """The model's workspaces (at most ``keep`` idle ones are kept)."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self.items: list[Workspace] = []

    def lease(self, n: int, dims: list[int], memory: str, save_h: bool, like: torch.Tensor) -> _Lease:
        key = (n, tuple(dims), memory, save_h, like.dtype, like.device)
        for ws in self.items:
            if ws.key == key and not ws.in_use:
                return _Lease(ws)
        L = len(dims) - 2

        def buf(d: int) -> torch.Tensor:
            return torch.empty((n, d), dtype=like.dtype, device=like.device)

        F = [buf(dims[k]) if k > 0 or memory == "speed" else None for k in range(L + 1)]
        Y: list[torch.Tensor | None] = [None] + [buf(dims[k]) if memory == "speed" else None for k in range(1, L + 1)]
        ws = Workspace(key, F, Y)
        idle = [w for w in self.items if not w.in_use]
        if len(idle) >= self.keep:
            self.items.remove(idle[0])
        self.items.append(ws)
        return _Lease(ws)

    def clear(self) -> None:
        self.items = [w for w in self.items if w.in_use]


@dataclass
class Engine:
    """What the fused pass needs besides tensors."""

    op: Operator
    act: Activation
    memory: str
    pool: Pool
    stats: frozenset[str] = frozenset()
    record: dict[str, list[torch.Tensor]] | None = None


def _act_inplace(kind: str, act: Activation, H: torch.Tensor) -> torch.Tensor:
    if kind == "tanh":
        return H.tanh_()
    if kind == "relu":
        return H.relu_()
    return H  # identity


def _act_backward(kind: str, act: Activation, grad: torch.Tensor, saved: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
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


def _blocks(ws: Workspace | None, X: torch.Tensor, rows: int, flat: bool = False, wide: bool = False) -> list:
    """:func:`gnndyn.probes.stats.row_blocks` of X, kept by the workspace when X is one of its buffers."""
    return ws.blocks(X, rows, flat, wide) if ws is not None else st.row_blocks(X, rows, flat, wide)


def _act_backward_stats(eng: Engine, kind: str, grad: torch.Tensor, saved: torch.Tensor,
                        out: torch.Tensor, ws: Workspace | None = None) -> tuple[torch.Tensor, Any]:
    """B = ρ′ ⊙ grad into ``out`` (tanh or ReLU); with ℰ(B) or ‖1ᵀB‖ asked for, block by block with the
    moments of each block of B taken while it is in cache (no second read of B). Returns (B, moments or None).
    ``ws``: the workspace whose buffers ``grad``, ``saved`` and ``out`` are."""
    if "smoothing_B" not in eng.stats and "mean_error_B" not in eng.stats:
        return _act_backward(kind, eng.act, grad, saved, out), None
    step = st.block_rows(out)
    mo, act = st.Moments(), eng.act
    for (g, _, _), (y, _, _), (o, _, wide) in zip(_blocks(ws, grad, step), _blocks(ws, saved, step), _blocks(ws, out, step, wide=True)):
        _act_backward(kind, act, g, y, o)
        mo.add(o, wide)
    return out, mo


def _after_product(eng: Engine, X: torch.Tensor, F: torch.Tensor, ws: Workspace | None = None,
                   x_in_ws: bool = False) -> None:
    """ℰ(F⁽ᵏ⁾) and the Dirichlet energy of X⁽ᵏ⁾, in one blocked pass over X⁽ᵏ⁾ and F⁽ᵏ⁾ = P X⁽ᵏ⁾
    (``ws``: the workspace whose buffer F is; ``x_in_ws``: X is one of its buffers too)."""
    rec, want, op = eng.record, eng.stats, eng.op
    form = op.dirichlet
    streamed_dirichlet = "dirichlet_X" in want and form is not None and form.c is None
    if "dirichlet_X" in want and not streamed_dirichlet:
        rec["dirichlet_X"].append(st.dirichlet_t(op, X))
    smooth_f = "smoothing_F" in want
    if not smooth_f and not streamed_dirichlet:
        return
    step = st.block_rows(F, streams=3)  # X, F and a scratch block
    fb = _blocks(ws, F, step, wide=True)
    mo, parts = st.Moments(), []
    if streamed_dirichlet:
        xb = _blocks(ws if x_in_ws else None, X, step, flat=True)
        # L = s(I − S) (a = 1, b = 1: the gossip operator): the block's ⟨x, x − f⟩ is one subtraction into
        # the scratch block and one dot product, over views kept with the blocks
        plain = form.a is None and isinstance(form.b, float) and form.b == 1.0
        buf = st._buffer(fb[0][0])
        bflat, rows = buf.view(-1), fb[0][0].shape[0]
    start = 0
    for i, (f, _, wide) in enumerate(fb):
        m = f.shape[0]
        if streamed_dirichlet:
            x, xflat, _ = xb[i]
            if plain and xflat is not None and m == rows:
                torch.sub(x, f, out=buf)
                parts.append(torch.dot(xflat, bflat))
            else:
                parts.append(st.dirichlet_block(op, x, f, slice(start, start + m)))
        if smooth_f:
            mo.add(f, wide)
        start += m
    if smooth_f:
        rec["smoothing_F"].append(st.smoothing_from(mo))
    if streamed_dirichlet:
        rec["dirichlet_X"].append(torch.stack(parts).to(torch.float64).sum() * form.scale)


def _activate(eng: Engine, kind: str, H: torch.Tensor, last: bool, ws: Workspace | None = None) -> torch.Tensor:
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
        return _act_inplace(kind, eng.act, H)
    mh, mx, act = st.Moments(), st.Moments(), eng.act
    for block, _, wide in _blocks(ws, H, st.block_rows(H), wide=True):
        if sh:
            mh.add(block, wide)
        _act_inplace(kind, act, block)
        if sx:
            mx.add(block, wide)
    if sh:
        rec["smoothing_H"].append(st.smoothing_from(mh))
    if sx:
        rec["smoothing_X"].append(st.smoothing_from(mx))
    return H


class FusedDeepGNN(torch.autograd.Function):
    """out = H⁽ᴸ⁾ of Keriven eq. (1); ``apply(engine, x, W⁽⁰⁾, ..., W⁽ᴸ⁾)``.

    Buffer plan (n × d each): F⁽ᵏ⁾ in ``ws.F[k]`` (in ``memory="low"`` F⁽⁰⁾ borrows F⁽¹⁾'s buffer in
    the forward and is recomputed in the backward into a buffer already free: L + 1 buffers in all);
    X⁽ᵏ⁺¹⁾ = ρ(H⁽ᵏ⁾) in ``ws.Y[k+1]`` (speed) or scratch slot 0 (low). Backward:
    once ∂L/∂W⁽ᵏ⁾ = F⁽ᵏ⁾ᵀB⁽ᵏ⁾ is taken, F⁽ᵏ⁾'s buffer takes G = B⁽ᵏ⁾W⁽ᵏ⁾ᵀ (same shape), Pᵀ G goes
    to slot 0, and B⁽ᵏ⁻¹⁾ overwrites ``ws.Y[k]`` (speed) or F⁽ᵏ⁾'s buffer again (low; H⁽ᵏ⁻¹⁾ has
    F⁽ᵏ⁾'s shape).
    """

    @staticmethod
    def forward(ctx: Any, eng: Engine, x: torch.Tensor, *weights: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        op, kind = eng.op, _kind(eng.act)
        L = len(weights) - 1
        n = x.shape[0]
        dims = [int(x.shape[1])] + [int(w.shape[1]) for w in weights]
        low = eng.memory == "low"
        lease = eng.pool.lease(n, dims, eng.memory, kind == "generic", x)
        ws = lease.ws
        if low:  # F⁽⁰⁾ is needed only by layer 0: it borrows F⁽¹⁾'s buffer, whose product comes later
            ws.F[0] = ws.F[1] if L >= 1 and dims[1] == dims[0] else ws.tmp(n, dims[0], x, slot=1)
        saved_h: list[torch.Tensor | None] = [None] * (L + 1)
        rec = eng.record
        if rec is not None and "smoothing_X" in eng.stats:
            rec["smoothing_X"].append(st.smoothing_t(x))
        X = x
        out = None
        for k, W in enumerate(weights):
            F = spmm(op.matrix, X, ws.F[k])
            if rec is not None:
                _after_product(eng, X, F, ws, k > 0 and kind != "generic")
            if k == L:
                H = out = torch.mm(F, W)
            elif kind == "generic":
                H = torch.mm(F, W)
                saved_h[k] = None if low else H
            else:
                H = torch.mm(F, W, out=ws.tmp(n, dims[k + 1], x, slot=0) if low else ws.Y[k + 1])
            if rec is not None:
                X = _activate(eng, kind, H, k == L, ws)
            elif k < L:
                X = eng.act.fn(H) if kind == "generic" else _act_inplace(kind, eng.act, H)
        ctx.eng, ctx.lease, ctx.kind, ctx.saved_h, ctx.L = eng, lease, kind, saved_h, L
        ctx.x_needs_grad = x.requires_grad
        ctx.save_for_backward(x, *weights)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor):  # type: ignore[override]
        eng, ws, kind, L = ctx.eng, ctx.lease.ws, ctx.kind, ctx.L
        x, *weights = ctx.saved_tensors
        op = eng.op
        PT = op.transposed_matrix()
        n = x.shape[0]
        low = eng.memory == "low"
        want, rec = eng.stats, eng.record
        grads: list[torch.Tensor] = [None] * (L + 1)  # type: ignore[list-item]
        B = grad_out.contiguous()
        grad_x = None
        b_stats: list[tuple[torch.Tensor | None, torch.Tensor | None]] = []
        b_mo = None  # moments of B⁽ᵏ⁾ when taken while ρ′ produced it
        for k in range(L, -1, -1):
            if low and k == min(1, L):  # F⁽⁰⁾ was not kept: recompute it into a buffer free by now
                # (B⁽¹⁾ sits in F⁽²⁾'s buffer; F⁽³⁾.. are done with)
                free = [ws.F[j] for j in range(3, L + 1) if ws.F[j].shape[1] == x.shape[1]]
                ws.F[0] = spmm(op.matrix, x, free[0] if free else ws.tmp(n, x.shape[1], x, slot=1))
            W, F = weights[k], ws.F[k]
            if "smoothing_B" in want or "mean_error_B" in want:
                mo = b_mo if b_mo is not None else st.moments(B)
                total, css = mo.finish()
                b_stats.append(((css / float(mo.n)).sqrt(), torch.linalg.vector_norm(total)))
            b_mo = None
            grads[k] = torch.mm(F.t(), B)
            if k == 0 and not ctx.x_needs_grad:
                break
            G = torch.mm(B, W.t(), out=F)
            dX = spmm(PT, G, ws.tmp(n, G.shape[1], x, slot=0))
            if k == 0:
                grad_x = dX.clone()
                break
            if kind == "identity":
                B = dX
            elif kind == "generic":
                H = torch.mm(ws.F[k - 1], weights[k - 1], out=F) if low else ctx.saved_h[k - 1]
                B = _act_backward(kind, eng.act, dX, H, F)
            else:
                Y = _act_inplace(kind, eng.act, torch.mm(ws.F[k - 1], weights[k - 1], out=F)) if low else ws.Y[k]
                B, b_mo = _act_backward_stats(eng, kind, dX, Y, F if low else Y, ws)
        if rec is not None:
            if "smoothing_B" in want:
                rec["smoothing_B"] = [s for s, _ in reversed(b_stats)]
            if "mean_error_B" in want:
                rec["mean_error_B"] = [m for _, m in reversed(b_stats)]
            if "grad_norm" in want:
                rec["grad_norm"] = [torch.linalg.vector_norm(g).to(torch.float64) for g in grads]
        ctx.saved_h = None
        return (None, grad_x, *grads)


def fused_forward(op: Operator, act: Activation, memory: str, pool: Pool, x: torch.Tensor,
                  weights: Iterable[torch.Tensor], stats: Iterable[str] = ()) -> tuple[torch.Tensor, dict | None]:
    """out = H⁽ᴸ⁾ through :class:`FusedDeepGNN`; returns (out, the stats record or ``None``)."""
    want = frozenset(stats)
    unknown = want - set(STATS)
    if unknown:
        raise ValueError(f"unknown stats {sorted(unknown)}; valid: {', '.join(STATS)}.")
    record = {k: [] for k in want} if want else None
    eng = Engine(op, act, memory, pool, want, record)
    return FusedDeepGNN.apply(eng, x, *weights), record
