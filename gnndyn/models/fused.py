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
  backward ℰ(B⁽ᵏ⁾), ‖1ᵀB⁽ᵏ⁾‖ and ‖∂L/∂W⁽ᵏ⁾‖_F are computed as 0-d device tensors while a pass has
  each signal's blocks in cache (:mod:`gnndyn.models.fused_stats`, :mod:`gnndyn.probes.stats`):
  numbers are kept, not tensors. When a backward pass follows, the Dirichlet energy of X⁽ᵏ⁾ and ℰ(F⁽ᵏ⁾)
  (k ≥ 1) are taken by its ρ′ pass, which reads X⁽ᵏ⁾ anyway (same bits; the record is completed from
  the kept buffers if it is read first).

The backward is Keriven eq. (5): ∂L/∂W⁽ᵏ⁾ = F⁽ᵏ⁾ᵀB⁽ᵏ⁾ and
B⁽ᵏ⁻¹⁾ = ρ′(H⁽ᵏ⁻¹⁾) ⊙ (Pᵀ B⁽ᵏ⁾ W⁽ᵏ⁾ᵀ), Pᵀ = P for a symmetric operator, a cached transpose otherwise.
A backward that must be differentiable (``create_graph=True``) or that runs a second time through one
graph replays autograd of the definition instead (:func:`_replayed_backward`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from gnndyn.models import fused_stats as fs
from gnndyn.models.activations import ACTIVATIONS, Activation
from gnndyn.operators.base import Operator, propagate, spmm

st = fs.st


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
    backward_follows: bool = False  # grad is on and something needs it: the backward can take deferred stats
    deferred: fs.Deferred | None = None


class FusedDeepGNN(torch.autograd.Function):
    """out = H⁽ᴸ⁾ of Keriven eq. (1); ``apply(engine, x, W⁽⁰⁾, ..., W⁽ᴸ⁾)``.

    Buffer plan (n × d each): F⁽ᵏ⁾ in ``ws.F[k]`` (in ``memory="low"`` F⁽⁰⁾ borrows F⁽¹⁾'s buffer in
    the forward and is recomputed in the backward into a buffer already free: L + 1 buffers in all);
    X⁽ᵏ⁺¹⁾ = ρ(H⁽ᵏ⁾) in ``ws.Y[k+1]`` (speed) or scratch slot 0 (low). Backward:
    once ∂L/∂W⁽ᵏ⁾ = F⁽ᵏ⁾ᵀB⁽ᵏ⁾ is taken, F⁽ᵏ⁾'s buffer takes G = B⁽ᵏ⁾W⁽ᵏ⁾ᵀ (same shape) — scratch slot 1
    does when F⁽ᵏ⁾ is still wanted by the deferred numbers of layer k (speed mode with stats, see
    :class:`~gnndyn.models.fused_stats.Deferred`) —, Pᵀ G goes to slot 0, and B⁽ᵏ⁻¹⁾ overwrites
    ``ws.Y[k]`` (speed) or F⁽ᵏ⁾'s buffer again (low; H⁽ᵏ⁻¹⁾ has F⁽ᵏ⁾'s shape).
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
        # the Dirichlet energy of X⁽ᵏ⁾ and ℰ(F⁽ᵏ⁾), k ≥ 1, are left to the backward's ρ′ pass (fused_stats.Deferred)
        defer = (rec is not None and eng.backward_follows and not low and kind in ("tanh", "relu") and L >= 1
                 and any(fs.wants(eng)))
        # held by ctx (and handed to the caller through eng, which lets go of it: no reference cycle keeps the lease)
        eng.deferred = ctx.deferred = fs.Deferred(eng, lease, L) if defer else None
        X = x
        out = None
        for k, W in enumerate(weights):
            F = spmm(op.matrix, X, ws.F[k])
            if rec is not None:
                fs.product_pass(eng, X, F, ws, k > 0 and kind != "generic", defer and k > 0)
            if k == L:
                H = out = torch.mm(F, W)
            elif kind == "generic":
                H = torch.mm(F, W)
                saved_h[k] = None if low else H
            else:
                H = torch.mm(F, W, out=ws.tmp(n, dims[k + 1], x, slot=0) if low else ws.Y[k + 1])
            if rec is not None:
                X = fs.activation_pass(eng, kind, H, k == L, ws)
            elif k < L:
                X = eng.act.fn(H) if kind == "generic" else fs.act_inplace(kind, eng.act, H)
        ctx.eng, ctx.lease, ctx.kind, ctx.saved_h, ctx.L = eng, lease, kind, saved_h, L
        ctx.x_needs_grad = x.requires_grad
        ctx.save_for_backward(x, *weights)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor):  # type: ignore[override]
        if torch.is_grad_enabled() or getattr(ctx, "backward_done", False):
            return _replayed_backward(ctx, grad_out)
        ctx.backward_done = True
        eng, ws, kind, L = ctx.eng, ctx.lease.ws, ctx.kind, ctx.L
        x, *weights = ctx.saved_tensors
        op = eng.op
        PT = op.transposed_matrix()
        n = x.shape[0]
        low = eng.memory == "low"
        want = eng.stats
        grads: list[torch.Tensor] = [None] * (L + 1)  # type: ignore[list-item]
        B = grad_out.contiguous()
        grad_x = None
        b_stats: list[tuple[torch.Tensor | None, torch.Tensor | None]] = []
        b_mo = None  # moments of B⁽ᵏ⁾ when taken while ρ′ produced it
        deferred = ctx.deferred if ctx.deferred is not None and ctx.deferred.state == "pending" else None
        for k in range(L, -1, -1):
            if low and k == min(1, L):  # F⁽⁰⁾ was not kept: recompute it into a buffer free by now
                # (B⁽¹⁾ sits in F⁽²⁾'s buffer; F⁽³⁾.. are done with)
                free = [ws.F[j] for j in range(3, L + 1) if ws.F[j].shape[1] == x.shape[1]]
                ws.F[0] = spmm(op.matrix, x, free[0] if free else ws.tmp(n, x.shape[1], x, slot=1))
            W, F = weights[k], ws.F[k]
            if "smoothing_B" in want or "mean_error_B" in want:
                b_stats.append(_b_numbers(b_mo if b_mo is not None else st.moments(B)))
            b_mo = None
            grads[k] = torch.mm(F.t(), B)
            if k == 0 and not ctx.x_needs_grad:
                break
            # F⁽ᵏ⁾ is kept for the deferred numbers of layer k: G goes to a scratch buffer instead
            G = torch.mm(B, W.t(), out=ws.tmp(n, W.shape[0], x, slot=1) if deferred is not None else F)
            dX = spmm(PT, G, ws.tmp(n, G.shape[1], x, slot=0))
            if k == 0:
                grad_x = dX.clone()
                break
            if kind == "identity":
                B = dX
            elif kind == "generic":
                H = torch.mm(ws.F[k - 1], weights[k - 1], out=F) if low else ctx.saved_h[k - 1]
                B = fs.act_backward(kind, eng.act, dX, H, F)
            elif deferred is not None:  # speed mode: X⁽ᵏ⁾ = ρ(H⁽ᵏ⁻¹⁾) is ws.Y[k]
                B, b_mo = deferred.take(ws.Y[k], F, dX, kind)
            else:
                Y = fs.act_inplace(kind, eng.act, torch.mm(ws.F[k - 1], weights[k - 1], out=F)) if low else ws.Y[k]
                B, b_mo = fs.backward_pass(eng, kind, dX, Y, F if low else Y, ws)
        if deferred is not None:
            deferred.finish()
        _record_backward(eng, list(reversed(b_stats)), grads)
        ctx.saved_h = None
        return (None, grad_x, *grads)


def layers(op: Operator, act: Activation, x: torch.Tensor, weights: list[torch.Tensor]
           ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Keriven eq. (1) layer by layer through autograd (the slow path): yields (X⁽ᵏ⁾, F⁽ᵏ⁾ = P X⁽ᵏ⁾,
    H⁽ᵏ⁾ = F⁽ᵏ⁾W⁽ᵏ⁾) for k = 0..L, X⁽ᵏ⁺¹⁾ = ρ(H⁽ᵏ⁾)."""
    X = x
    for k, W in enumerate(weights):
        F = propagate(op, X)
        H = F @ W
        yield X, F, H
        if k < len(weights) - 1:
            X = act(H)


def _b_numbers(mo: st.Moments) -> tuple[torch.Tensor, torch.Tensor]:
    """(ℰ(B), ‖1ᵀB‖) from B's moments."""
    total, css = mo.finish()
    return (css / float(mo.n)).sqrt(), torch.linalg.vector_norm(total)


def _record_backward(eng: Engine, b_stats: list[tuple[torch.Tensor, torch.Tensor]], grads: list[torch.Tensor]) -> None:
    """Write the backward's numbers (``b_stats`` in layer order 0..L) into the engine's record."""
    rec, want = eng.record, eng.stats
    if rec is None:
        return
    if "smoothing_B" in want:
        rec["smoothing_B"] = [s for s, _ in b_stats]
    if "mean_error_B" in want:
        rec["mean_error_B"] = [m for _, m in b_stats]
    if "grad_norm" in want:
        rec["grad_norm"] = [torch.linalg.vector_norm(g.detach()).to(torch.float64) for g in grads]


def _replayed_backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
    """The backward by autograd of the definition (Keriven eq. (1)), replayed from the saved inputs x, W⁽ᵏ⁾.

    Taken where the fused backward cannot serve: when the backward must itself be differentiable
    (``create_graph=True``, as for the Hessian-vector products of
    :func:`gnndyn.training.flow.hessian_top_eigenvalue`), and for a second backward through one retained
    graph, by which time the fused backward has overwritten the kept signals (B⁽ᵏ⁻¹⁾ takes ρ(H⁽ᵏ⁻¹⁾)'s
    buffer). It costs one more forward. On a first backward the record gets the same numbers as the fused
    pass would give (ℰ(B⁽ᵏ⁾) and ‖1ᵀB⁽ᵏ⁾‖ from the replayed B⁽ᵏ⁾ = ∂L/∂H⁽ᵏ⁾, to rounding); a second
    backward leaves the record as the first one wrote it.
    """
    eng, L = ctx.eng, ctx.L
    x, *weights = ctx.saved_tensors
    first = not getattr(ctx, "backward_done", False)
    ctx.backward_done = True
    if first and ctx.deferred is not None:
        ctx.deferred.complete()  # from the kept buffers, still intact: no fused backward has run
    record_b = first and eng.record is not None and bool({"smoothing_B", "mean_error_B"} & eng.stats)
    create = torch.is_grad_enabled()
    with torch.enable_grad():
        hs = [H for _, _, H in layers(eng.op, eng.act, x, weights)]
        inputs = ([x] if ctx.x_needs_grad else []) + list(weights) + (hs[:-1] if record_b else [])
        got = list(torch.autograd.grad(hs[-1], inputs, grad_out, create_graph=create))
    grad_x = got.pop(0) if ctx.x_needs_grad else None
    grads, bs = got[:L + 1], got[L + 1:]
    if first:
        b_stats = [_b_numbers(st.moments(B.detach())) for B in bs + [grad_out.detach()]] if record_b else []
        _record_backward(eng, b_stats, grads)
    ctx.saved_h = None
    return (None, grad_x, *grads)


def fused_forward(op: Operator, act: Activation, memory: str, pool: Pool, x: torch.Tensor,
                  weights: Iterable[torch.Tensor], stats: Iterable[str] = ()
                  ) -> tuple[torch.Tensor, dict | None, fs.Deferred | None]:
    """out = H⁽ᴸ⁾ through :class:`FusedDeepGNN`; returns (out, the stats record or ``None``, the
    :class:`~gnndyn.models.fused_stats.Deferred` whose ``complete()`` makes the record whole before a
    backward pass has run, or ``None``)."""
    want = frozenset(stats)
    unknown = want - set(STATS)
    if unknown:
        raise ValueError(f"unknown stats {sorted(unknown)}; valid: {', '.join(STATS)}.")
    weights = list(weights)
    record = {k: [] for k in want} if want else None
    follows = torch.is_grad_enabled() and (x.requires_grad or any(w.requires_grad for w in weights))
    eng = Engine(op, act, memory, pool, want, record, backward_follows=follows)
    out = FusedDeepGNN.apply(eng, x, *weights)
    deferred, eng.deferred = eng.deferred, None
    return out, record, deferred
