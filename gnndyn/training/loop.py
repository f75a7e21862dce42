"""Full-batch training of a model whose forward is ``model(op, x, keep_signals=...)``, with probes.

At every step t = 0..steps the loss is recorded and every probe whose schedule fires (and all probes
at the last step) records its values; then, for t < steps, the optimizer updates the trainable
layers. A non-finite loss or gradient, or a loss blown up by the run's ``divergence_factor``
(:mod:`gnndyn.training.divergence`), stops training with :class:`~gnndyn.errors.DivergenceError`
naming the step; everything recorded before it stays in the recorder, which notes the divergence
(``Recorder.mark_diverged``) so that the run's status says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gnndyn.errors import DivergenceError, GnndynError
from gnndyn.models.losses import Loss
from gnndyn.operators.base import Operator
from gnndyn.probes.base import Probe, ProbeContext
from gnndyn.progress import NULL_TASK, Task
from gnndyn.store.metrics import Recorder
from gnndyn.training.divergence import blown_up


@dataclass
class TrainResult:
    recorder: Recorder
    steps: int
    final_loss: float
    diverged: DivergenceError | None = None


def loss_and_grads(model: torch.nn.Module, op: Operator, x: torch.Tensor, target: torch.Tensor, loss: Loss,
                   mask: torch.Tensor | None, *, keep_signals: bool,
                   stats: frozenset[str] = frozenset()) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One forward and backward pass; returns (loss, [∂L/∂W⁽ᵏ⁾]) and leaves signals on the model.

    ``stats`` asks a streaming model (the deep GNN) for per-layer numbers instead of kept signals.
    """
    params = list(model.parameters())
    out = model(op, x, keep_signals=keep_signals, stats=stats) if stats else model(op, x, keep_signals=keep_signals)
    value = loss(out, target, mask)
    grads = torch.autograd.grad(value, params)
    return value.detach(), [g.detach() for g in grads]


def train(
    model: torch.nn.Module,
    op: Operator,
    x: torch.Tensor,
    target: torch.Tensor,
    loss: Loss,
    optimizer,
    steps: int,
    *,
    mask: torch.Tensor | None = None,
    probes: Sequence[Probe] = (),
    recorder: Recorder | None = None,
    series: str = "model",
    seed: int = 0,
    trainable: Sequence[int] | None = None,
    edge_index: torch.Tensor | None = None,
    task: Task = NULL_TASK,
    raise_on_divergence: bool = True,
) -> TrainResult:
    """Train ``model`` for ``steps`` updates of ``optimizer`` (see the module docstring).

    Args:
        trainable: indices of the parameters (layers) to update; ``None`` = all. Gradients of every
            layer are still computed and probed (Keriven Thm 3 measures them all).
        raise_on_divergence: if False, a divergence is returned in ``TrainResult.diverged`` instead.
    """
    if steps < 0:
        raise GnndynError(f"steps must be ≥ 0; got {steps}.")
    rec = recorder if recorder is not None else Recorder()
    params = list(model.parameters())
    idx = list(range(len(params))) if trainable is None else sorted(int(i) for i in trainable)
    if any(i < 0 or i >= len(params) for i in idx):
        raise GnndynError(f"trainable layers {idx} out of range: the model has {len(params)} parameter tensors.")
    state = optimizer.init([params[i].detach() for i in idx])
    value = math.nan
    initial = math.nan
    for t in range(steps + 1):
        due = [p for p in probes if t == steps or p.schedule(t)]
        want = _streamed_stats(model, op, due)
        keep = bool(due) and want is None
        loss_t, grads = loss_and_grads(model, op, x, target, loss, mask, keep_signals=keep, stats=want or frozenset())
        # one host round trip for the loss and all the finiteness checks
        finite = torch.stack([torch.isfinite(g).all() for g in grads]) if grads else torch.ones(0, dtype=torch.bool)
        value, *ok = torch.cat([loss_t.reshape(1).to(torch.float64), finite.to(torch.float64)]).tolist()
        bad = None
        if t == 0:
            initial = value
        if not math.isfinite(value):
            bad = ("the loss", value)
        else:
            for k, good in enumerate(ok):
                if not good:
                    bad = (f"the gradient of layer {k}", math.nan)
                    break
            why = blown_up(value, initial) if bad is None else None
            if why is not None:
                bad = ("the loss", value, why)
        if bad is not None:
            err = DivergenceError(t, *bad)
            rec.mark_diverged(series, seed, t, str(err))
            model.signals = None
            if raise_on_divergence:
                raise err
            return TrainResult(rec, t, value, err)
        rec.add(series, seed, t, "loss", value)
        if due:
            ctx = ProbeContext(step=t, model=model, loss=value, signals=getattr(model, "signals", None), grads=grads,
                               op=op, edge_index=edge_index)
            for p in due:
                rec.add_values(series, seed, t, p(ctx))
        if t < steps:
            cur = [params[i].detach() for i in idx]
            new, state = optimizer.update(cur, [grads[i] for i in idx], state)
            with torch.no_grad():
                for i, w in zip(idx, new):
                    params[i].copy_(w)
            task.advance(1)
    model.signals = None
    rec.series_done()
    return TrainResult(rec, steps, value)


def _streamed_stats(model: torch.nn.Module, op: Operator, due: Sequence[Probe]) -> frozenset[str] | None:
    """The stats a streaming pass must produce for the due probes, or ``None`` when signals must be kept
    (a probe without a ``stats`` declaration, a model without the fused pass, or a Dirichlet energy the
    operator cannot give)."""
    from gnndyn.models.deep_gnn import DeepGNN

    if not due or not isinstance(model, DeepGNN) or op.is_identity or not model.fused:
        return None
    if any(p.stats is None for p in due):
        return None
    want = frozenset().union(*(p.stats for p in due))
    if "dirichlet_X" in want and op.dirichlet is None:
        return None
    return want
