"""Forward and backward hooks that turn a layer's signals into numbers as they pass.

One forward pre-hook on the model marks the start of a forward pass; one forward hook per layer measures
the layer's output H⁽ᵏ⁾ at once and, when the output takes part in autograd, registers a tensor hook that
measures B⁽ᵏ⁾ = ∂𝓛/∂H⁽ᵏ⁾ when the backward pass reaches it. Only floats are kept; no signal outlives its
step unless ``keep_signals`` asks for the last step's signals.

Ownership: the hooks hold the :class:`HookState` by weak reference and the state holds the model and its
layers by weak reference, so neither keeps the other alive. Every ``RemovableHandle`` is kept in
``HookState.handles``; :func:`remove_handles` removes them all (``Monitor.close``, ``__exit__``, and a
finalizer when the monitor is garbage-collected). Forward passes run with gradients disabled (evaluation
under ``torch.no_grad()``) are not recorded; when several recorded passes precede one ``step``, the last
one counts.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch

from gnndyn.models.deep_gnn import Signals
from gnndyn.monitor import measures
from gnndyn.monitor.layers import call_graph, layer_input, layer_output, to_edge_index
from gnndyn.monitor.quantities import signal_values


@dataclass
class HookState:
    """What the hooks write during one step (numbers only) and the bookkeeping between steps."""

    num_layers: int
    base_edge_index: torch.Tensor | None = None
    keep_signals: bool = False
    groups: frozenset[str] = frozenset()
    handles: list = field(default_factory=list)
    order: list[int] = field(default_factory=list)  # discovered index → first-call position
    forward_values: dict[int, dict[str, float]] = field(default_factory=dict)
    backward_values: dict[int, dict[str, float]] = field(default_factory=dict)
    num_rows: dict[int, int] = field(default_factory=dict)
    signals: Signals | None = None
    _adj_cache: list = field(default_factory=list)  # [(weakref to edge index, num_nodes, Adjacency)], ≤ 2 entries
    pass_id: int = 0

    def adjacency(self, graph: torch.Tensor | None, n: int, like: torch.Tensor) -> measures.Adjacency | None:
        """The adjacency of a layer call's graph (an edge index or a sparse adjacency; else the monitor's graph)
        for an n-row signal, cached per graph tensor (weakly: a freed graph drops its entry; at most 2 kept)."""
        g = graph if graph is not None else self.base_edge_index
        if g is None:
            return None
        self._adj_cache = [e for e in self._adj_cache if e[0]() is not None]
        for ref, nn_, dt, adj in self._adj_cache:
            if ref() is g and nn_ == n and dt == like.dtype:
                return adj
        ei = to_edge_index(g)
        if ei.numel() and int(ei.max()) >= n:
            return None
        adj = measures.Adjacency(ei, n, like.dtype, like.device)
        self._adj_cache = [*self._adj_cache[-1:], (weakref.ref(g), n, like.dtype, adj)]
        return adj

    def start_pass(self) -> None:
        self.pass_id += 1
        self.forward_values = {}
        self.backward_values = {}
        self.num_rows = {}
        if self.keep_signals:
            self.signals = Signals(X=[None] * self.num_layers, H=[None] * self.num_layers,
                                   B=[None] * self.num_layers)

    def end_step(self) -> None:
        self.forward_values = {}
        self.backward_values = {}
        self.num_rows = {}


def _forward_hook(state_ref: weakref.ref, index: int):
    def hook(module, args, kwargs, output):
        st: HookState | None = state_ref()
        if st is None or not torch.is_grad_enabled():
            return
        if index not in st.order:
            st.order.append(index)
        H = layer_output(output)
        if H is None:
            return
        Hd = H.detach()
        n = Hd.shape[0]
        st.num_rows[index] = n
        groups = st.groups
        if st.keep_signals and st.signals is not None:
            x = layer_input(args, kwargs)
            st.signals.X[index] = None if x is None else x.detach()
            st.signals.H[index] = Hd
        if not groups and not st.keep_signals:
            return
        adj = st.adjacency(call_graph(args, kwargs), n, Hd) if "dirichlet" in groups else None
        st.forward_values[index] = signal_values(Hd, groups, "H", adj)
        if H.requires_grad:
            H.register_hook(_backward_hook(state_ref, index, st.pass_id, groups, adj))
        return

    return hook


def _backward_hook(state_ref: weakref.ref, index: int, pass_id: int, groups: frozenset[str],
                   adj: measures.Adjacency | None):
    def hook(grad: torch.Tensor) -> None:
        st: HookState | None = state_ref()
        if st is None or st.pass_id != pass_id:
            return
        g = grad.detach()
        st.backward_values[index] = signal_values(g, groups, "B", adj)
        if st.keep_signals and st.signals is not None:
            st.signals.B[index] = g
        return

    return hook


def _pre_hook(state_ref: weakref.ref):
    def hook(module, args):
        st: HookState | None = state_ref()
        if st is not None and torch.is_grad_enabled():
            st.start_pass()

    return hook


def install(model: torch.nn.Module, layers: list[torch.nn.Module], state: HookState) -> None:
    """Register the pre-hook on ``model`` and one forward hook per layer; the handles go to ``state.handles``."""
    ref = weakref.ref(state)
    state.handles.append(model.register_forward_pre_hook(_pre_hook(ref)))
    for i, layer in enumerate(layers):
        state.handles.append(layer.register_forward_hook(_forward_hook(ref, i), with_kwargs=True))


def remove_handles(handles: list) -> None:
    """Remove every hook (idempotent: a removed handle is a no-op)."""
    while handles:
        handles.pop().remove()
