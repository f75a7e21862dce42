"""Probes: functions of (model state, signals, gradients) returning numbers, each with a schedule.

A probe returns a mapping ``quantity -> value``; a value is a float (recorded with ``layer = -1``)
or a sequence of floats (one per layer index). Probes never change the model; the trainer records.

A probe that names the ``stats`` it needs (see :data:`gnndyn.models.fused.STATS`) can be served by a
streaming pass: the trainer then asks the model for those numbers, computed as the forward and backward
passes produce the signals (:mod:`gnndyn.probes.stats`), and no signal is kept. Given kept signals
instead (``keep_signals=True``, e.g. in the gradient flow), the same probe measures them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from gnndyn.models.deep_gnn import Signals
from gnndyn.operators.base import Operator
from gnndyn.probes import measures, stats
from gnndyn.probes.schedules import Schedule, every

ProbeValue = float | Sequence[float]


@dataclass
class ProbeContext:
    """What a probe may look at, at one step."""

    step: int
    model: torch.nn.Module
    loss: float
    signals: Signals | None = None
    grads: list[torch.Tensor] | None = None
    op: Operator | None = None
    edge_index: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Probe:
    """A named measurement with a schedule."""

    name: str
    fn: Callable[[ProbeContext], Mapping[str, ProbeValue]]
    schedule: Schedule = field(default_factory=every)
    stats: frozenset[str] | None = None

    def __call__(self, ctx: ProbeContext) -> Mapping[str, ProbeValue]:
        return self.fn(ctx)


def _need_signals(ctx: ProbeContext) -> Signals:
    if ctx.signals is None:
        raise RuntimeError("this probe needs the model's signals; run the forward pass with keep_signals=True.")
    return ctx.signals


def _floats(ts: list[torch.Tensor]) -> list[float]:
    return torch.stack([t.to(torch.float64) for t in ts]).tolist() if ts else []


def smoothing_probe(schedule: Schedule | None = None, *, backward: bool = True) -> Probe:
    """ℰ of X⁽ᵏ⁾, F⁽ᵏ⁾, H⁽ᵏ⁾ and (after backward) B⁽ᵏ⁾, per layer (Keriven Fig. 2)."""
    names = {"smoothing_X", "smoothing_F", "smoothing_H"} | ({"smoothing_B", "mean_error_B"} if backward else set())

    def fn(ctx: ProbeContext) -> dict[str, ProbeValue]:
        s = _need_signals(ctx)
        if s.stats is not None:
            got = {k: _floats(s.stats[k]) for k in sorted(names)}
            res: dict[str, ProbeValue] = {k: got[k] for k in ("smoothing_X", "smoothing_F", "smoothing_H")}
            if backward and got.get("smoothing_B"):
                res["smoothing_B"] = got["smoothing_B"]
                res["mean_output_error"] = got["mean_error_B"][-1]
            return res
        out: dict[str, ProbeValue] = {
            "smoothing_X": [measures.smoothing(x) for x in s.X],
            "smoothing_F": [measures.smoothing(f) for f in s.F],
            "smoothing_H": [measures.smoothing(h) for h in s.H],
        }
        if backward and all(b is not None for b in s.B):
            out["smoothing_B"] = [measures.smoothing(b) for b in s.B]
            out["mean_output_error"] = measures.mean_output_error(s.B[-1])
        return out

    return Probe("smoothing", fn, schedule or every(), frozenset(names))


def gradient_norm_probe(schedule: Schedule | None = None) -> Probe:
    """‖∂L/∂W⁽ᵏ⁾‖_F per layer (Keriven Def. 1, Fig. 1)."""

    def fn(ctx: ProbeContext) -> dict[str, ProbeValue]:
        if ctx.grads is None:
            raise RuntimeError("gradient_norm_probe needs gradients.")
        return {"grad_norm": torch.stack([torch.linalg.norm(g) for g in ctx.grads]).tolist()}

    return Probe("grad_norm", fn, schedule or every(), frozenset())


def spectral_norm_probe(schedule: Schedule | None = None) -> Probe:
    """s_k = ‖W⁽ᵏ⁾‖₂ per layer (an SVD per layer: schedule it sparsely on wide models)."""

    def fn(ctx: ProbeContext) -> dict[str, ProbeValue]:
        norms = [torch.linalg.matrix_norm(p.detach(), ord=2) for p in ctx.model.parameters()]
        return {"spectral_norm": torch.stack(norms).tolist()}

    return Probe("spectral_norm", fn, schedule or every(), frozenset())


def dirichlet_probe(schedule: Schedule | None = None) -> Probe:
    """Dirichlet energy Σ_{{i,j}∈E}‖X⁽ᵏ⁾_i − X⁽ᵏ⁾_j‖² per layer: through the operator's Dirichlet form
    (one product, or none: :func:`gnndyn.probes.stats.dirichlet_t`), else along ``edge_index``."""

    def fn(ctx: ProbeContext) -> dict[str, ProbeValue]:
        s = _need_signals(ctx)
        if s.stats is not None and "dirichlet_X" in s.stats:
            return {"dirichlet_X": _floats(s.stats["dirichlet_X"])}
        if ctx.op is not None and ctx.op.dirichlet is not None and s.X:
            return {"dirichlet_X": _floats([stats.dirichlet_t(ctx.op, x, f) for x, f in zip(s.X, s.F)])}
        if ctx.edge_index is None:
            raise RuntimeError("dirichlet_probe needs the graph's edge_index in the context.")
        return {"dirichlet_X": [measures.dirichlet_energy(x, ctx.edge_index) for x in s.X]}

    return Probe("dirichlet", fn, schedule or every(), frozenset({"dirichlet_X"}))


def default_probes(expensive_every: int = 10) -> list[Probe]:
    """Smoothing, gradient norms (every step) and spectral norms (every ``expensive_every`` steps)."""
    return [smoothing_probe(), gradient_norm_probe(), spectral_norm_probe(every(expensive_every))]
