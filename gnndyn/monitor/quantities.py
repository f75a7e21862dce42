"""The monitor's quantities, grouped by cost, with a schedule per group (:mod:`gnndyn.probes.schedules`).

Per layer k, on the forward signal H⁽ᵏ⁾ (the layer's output; Keriven's H⁽ᵏ⁾ for his eq. (1)) and on the
backward signal B⁽ᵏ⁾ = ∂𝓛/∂H⁽ᵏ⁾ (Keriven eq. (5)), one quantity name per signal in the metrics table:

=============== ================================================ ============================ ==============
group           quantities                                       cost per layer               default every
=============== ================================================ ============================ ==============
``smoothing``   ``smoothing_H``, ``smoothing_B`` (ℰ, eq. (6))    O(nd)                        ``every``
``grad_norm``   ``grad_norm`` ‖∂𝓛/∂θ_k‖ (all of layer k's        O(#θ_k)                      ``every``
                parameters); ``grad_norm_rest`` (the other
                parameters, layer −1); ``global_delta`` (max)
``dirichlet``   ``dirichlet_H``, ``dirichlet_B``                  O(md), one sparse product     10 × ``every``
``mad``         ``mad_H``, ``mad_B``                             O(nd)                        10 × ``every``
``rank``        ``numrank_H``, ``effrank_H``, ``numrank_B``,     O(nd²)                       100 × ``every``
                ``effrank_B`` (arXiv 2502.04591)
``spectral``    ``spectral_norm`` (largest over the layer's      an SVD per weight matrix      100 × ``every``
                weight matrices)
=============== ================================================ ============================ ==============

``loss`` (and any scalar given to ``step``) is recorded at every step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from gnndyn.errors import GnndynError, resolve
from gnndyn.monitor import measures
from gnndyn.probes.schedules import Schedule, every
from gnndyn.probes.stats import smoothing_t

GROUPS = ("smoothing", "grad_norm", "dirichlet", "mad", "rank", "spectral")
#: default period of each group, in units of the monitor's ``every``
DEFAULT_FACTORS = {"smoothing": 1, "grad_norm": 1, "dirichlet": 10, "mad": 10, "rank": 100, "spectral": 100}
SIGNAL_GROUPS = ("smoothing", "dirichlet", "mad", "rank")
#: the signal quantities of each signal group (recorded as ``{name}_H`` and ``{name}_B``)
SIGNAL_QUANTITIES = {"smoothing": ("smoothing",), "dirichlet": ("dirichlet",), "mad": ("mad",),
                     "rank": ("numrank", "effrank")}
#: every name the monitor records itself (the table above), which ``Monitor.step(**scalars)`` may not take
RECORDED = frozenset({"loss", "grad_norm", "grad_norm_rest", "global_delta", "spectral_norm",
                      *(f"{q}_{s}" for qs in SIGNAL_QUANTITIES.values() for q in qs for s in "HB")})


def make_schedules(every_k: int, schedule: str | Mapping[str, int | Schedule] | None) -> dict[str, Schedule]:
    """One :class:`Schedule` per group: the defaults above, ``"all"`` (every group every ``every`` steps), or a
    mapping group → period (an int, in steps) or Schedule that overrides the defaults (``0`` = never)."""
    if not isinstance(every_k, int) or every_k < 1:
        raise GnndynError(f"every must be an integer ≥ 1 (steps between records); got {every_k!r}.")
    out: dict[str, Schedule] = {g: every(every_k * DEFAULT_FACTORS[g]) for g in GROUPS}
    if schedule is None:
        return out
    if isinstance(schedule, str):
        if schedule.lower() != "all":
            raise GnndynError(f"schedule must be 'all', a mapping group → period, or None; got {schedule!r}.")
        return {g: every(every_k) for g in GROUPS}
    if not isinstance(schedule, Mapping):
        raise GnndynError(f"schedule must be 'all', a mapping group → period, or None; got {type(schedule).__name__}.")
    from gnndyn.probes.schedules import NEVER

    for name, s in schedule.items():
        g = resolve("quantity group", name, {k: k for k in GROUPS})
        if isinstance(s, Schedule):
            out[g] = s
        elif isinstance(s, int) and not isinstance(s, bool) and s >= 0:
            out[g] = NEVER if s == 0 else every(s)
        else:
            raise GnndynError(f"schedule[{name!r}] must be a period ≥ 0 (steps) or a Schedule; got {s!r}.")
    return out


def signal_values(X: torch.Tensor, groups: frozenset[str], suffix: str, adj: measures.Adjacency | None
                  ) -> dict[str, float]:
    """The signal quantities of the active ``groups`` for one signal (``suffix`` ``H`` or ``B``)."""
    out: dict[str, float] = {}
    X = X.detach()
    if X.dtype not in (torch.float32, torch.float64):  # bfloat16, float16: measured in float64 (see measures)
        X = X.to(torch.float64)
    if "smoothing" in groups:  # one blocked pass, float64 sums (gnndyn.probes.stats), no centred copy
        out[f"smoothing_{suffix}"] = float(smoothing_t(measures._as_matrix(X)))
    if "dirichlet" in groups:
        out[f"dirichlet_{suffix}"] = measures.dirichlet_sparse(X, adj) if adj is not None and \
            adj.num_nodes == X.shape[0] else float("nan")
    if "mad" in groups:
        out[f"mad_{suffix}"] = measures.mad(X)
    if "rank" in groups:
        nr, er = measures.ranks(X)
        out[f"numrank_{suffix}"] = nr
        out[f"effrank_{suffix}"] = er
    return out


def grad_norm(params: list[torch.nn.Parameter]) -> float:
    """‖∂𝓛/∂θ‖ over the parameters that have a gradient, in float64 (norms of norms: no overflow of the squares).

    Two values are not norms: NaN when no parameter has a gradient (a layer without parameters such as APPNP's
    propagation, a frozen layer, a step without ``backward``: *nothing recorded*), and +inf when a gradient entry
    is not finite (*diverged*). The diagnoses read them so."""
    gs = [p.grad.detach() for p in params if p.grad is not None]
    if not gs:
        return float("nan")
    norms = []
    for g in gs:
        g = g.to(torch.float64)
        top = float(g.abs().max()) if g.numel() else 0.0
        if not math.isfinite(top):
            return math.inf
        norms.append(top * float(torch.linalg.vector_norm(g / top)) if top > 0 else 0.0)
    v = math.hypot(*norms)
    return v if math.isfinite(v) else math.inf


def layer_spectral_norm(params: list[torch.nn.Parameter]) -> float:
    """The largest ‖W‖₂ over the layer's two-dimensional parameters (NaN when it has none)."""
    mats = [p for p in params if p.dim() == 2]
    return max((measures.spectral_norm(p) for p in mats), default=float("nan"))
