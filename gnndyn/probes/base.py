"""Probes: functions of (model state, signals, gradients) returning numbers, each with a schedule.

A probe returns a mapping ``quantity -> value``; a value is a float (recorded with ``layer = -1``)
or a sequence of floats (one per layer index). Probes never change the model; the trainer records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from gnndyn.models.deep_gnn import Signals
from gnndyn.operators.base import Operator
from gnndyn.probes import measures
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

    def __call__(self, ctx: ProbeContext) -> Mapping[str, ProbeValue]:
        return self.fn(ctx)


def _need_signals(ctx: ProbeContext) -> Signals:
    if ctx.signals is None:
        raise RuntimeError("this probe needs the model's signals; run the forward pass with keep_signals=True.")
    return ctx.signals


def smoothing_probe(schedule: Schedule | None = None, *, backward: bool = True) -> Probe:
    """ℰ of X⁽ᵏ⁾, F⁽ᵏ⁾, H⁽ᵏ⁾ and (after backward) B⁽ᵏ⁾, per layer (Keriven Fig. 2)."""

    def fn(ctx: ProbeContext) -> dict[str, ProbeValue]:
        s = _need_signals(ctx)
        out: dict[str, ProbeValue] = {
            "smoothing_X": [measures.smoothing(x) for x in s.X],
            "smoothing_F": [measures.smoothing(f) for f in s.F],
            "smoothing_H": [measures.smoothing(h) for h in s.H],
        }
        if backward and all(b is not None for b in s.B):
            out["smoothing_B"] = [measures.smoothing(b) for b in s.B]
            out["mean_output_error"] = measures.mean_output_error(s.B[-1])
        return out

    return Probe("smoothing", fn, schedule or every())


def gradient_norm_probe(schedule: Schedule | None = None) -> Probe:
    """‖∂L/∂W⁽ᵏ⁾‖_F per layer (Keriven Def. 1, Fig. 1)."""

    def fn(ctx: ProbeContext) -> dict[str, ProbeValue]:
        if ctx.grads is None:
            raise RuntimeError("gradient_norm_probe needs gradients.")
        return {"grad_norm": [float(torch.linalg.norm(g)) for g in ctx.grads]}

    return Probe("grad_norm", fn, schedule or every())


def spectral_norm_probe(schedule: Schedule | None = None) -> Probe:
    """s_k = ‖W⁽ᵏ⁾‖₂ per layer (an SVD per layer: schedule it sparsely on wide models)."""

    def fn(ctx: ProbeContext) -> dict[str, ProbeValue]:
        return {"spectral_norm": [float(torch.linalg.matrix_norm(p.detach(), ord=2)) for p in ctx.model.parameters()]}

    return Probe("spectral_norm", fn, schedule or every())


def dirichlet_probe(schedule: Schedule | None = None) -> Probe:
    """Dirichlet energy of X⁽ᵏ⁾ along the graph's edges, per layer."""

    def fn(ctx: ProbeContext) -> dict[str, ProbeValue]:
        s = _need_signals(ctx)
        if ctx.edge_index is None:
            raise RuntimeError("dirichlet_probe needs the graph's edge_index in the context.")
        return {"dirichlet_X": [measures.dirichlet_energy(x, ctx.edge_index) for x in s.X]}

    return Probe("dirichlet", fn, schedule or every())


def default_probes(expensive_every: int = 10) -> list[Probe]:
    """Smoothing, gradient norms (every step) and spectral norms (every ``expensive_every`` steps)."""
    return [smoothing_probe(), gradient_norm_probe(), spectral_norm_probe(every(expensive_every))]
