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

* **Layer order** is the order of each layer's first call in any pass, with or without gradients: under
  reentrant activation checkpointing (``torch.utils.checkpoint(..., use_reentrant=True)``, PyG's
  ``DeepGCNLayer(ckpt_grad=True)``) the forward runs without gradients and the recorded call is the recomputation
  during the backward pass, last layer first.
* **A layer called several times in one pass** (weights shared across depth) is measured at its first call, H and
  B of the same call; later calls are not recorded (one warning says so). A recomputation during the backward
  pass (non-reentrant checkpointing) is not a second call.
* **Copies**: the hooks are callable objects whose ``copy.deepcopy`` and pickle (``torch.save`` of the whole
  module) are :func:`inert_hook`, which does nothing: a copy of a monitored model is not monitored and does not
  feed the monitor, and a monitored model can be pickled.
* The graph's adjacency is cached per graph tensor *and its version*: a graph changed in place
  (``edge_index.copy_(...)``) is read again.
"""

from __future__ import annotations

import warnings
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
    _adj_cache: list = field(default_factory=list)  # [(weakref to graph, version, num_nodes, Adjacency)], ≤ 2
    pass_id: int = 0
    called: set[int] = field(default_factory=set)  # layers recorded in this pass
    backward_since_step: bool = False  # a backward signal reached a hook since the last step
    warned: set[str] = field(default_factory=set)

    def warn_once(self, key: str, message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            warnings.warn(message, stacklevel=4)

    def adjacency(self, graph: torch.Tensor | None, n: int, like: torch.Tensor) -> measures.Adjacency | None:
        """The adjacency of a layer call's graph (an edge index or a sparse adjacency; else the monitor's graph)
        for an n-row signal, cached per graph tensor (weakly: a freed graph drops its entry; at most 2 kept)."""
        g = graph if graph is not None else self.base_edge_index
        if g is None:
            return None
        self._adj_cache = [e for e in self._adj_cache if e[0]() is not None]
        version = g._version
        for ref, ver, nn_, adj in self._adj_cache:
            if ref() is g and ver == version and nn_ == n:
                return adj
        ei = to_edge_index(g)
        if ei.numel() and int(ei.max()) >= n:
            return None
        adj = measures.Adjacency(ei, n, like.device)
        self._adj_cache = [*self._adj_cache[-1:], (weakref.ref(g), version, n, adj)]
        return adj

    def start_pass(self) -> None:
        self.pass_id += 1
        self.forward_values = {}
        self.backward_values = {}
        self.num_rows = {}
        self.called = set()
        if self.keep_signals:
            self.signals = Signals(X=[None] * self.num_layers, H=[None] * self.num_layers,
                                   B=[None] * self.num_layers)

    def end_step(self) -> None:
        self.forward_values = {}
        self.backward_values = {}
        self.num_rows = {}
        self.called = set()
        self.backward_since_step = False


def inert_hook(*args, **kwargs) -> None:
    """What a copy of a monitored model holds in place of the monitor's hooks (``copy.deepcopy``, pickle): nothing."""
    return None


def _inert() -> object:
    return inert_hook


class _Hook:
    """A hook as a callable object: a copy or a pickle of it is :func:`inert_hook`, so copies of the model are not
    monitored (a deep copy of a closure would share the monitor's state). Every hook's ``__call__`` is excluded
    from ``torch.compile`` (``torch.compiler.disable``): the measures read numbers out of tensors (``float()``),
    which would otherwise break the compiled graph with a warning at each of them."""

    def __deepcopy__(self, memo: dict) -> object:
        return inert_hook

    def __reduce__(self) -> tuple:
        return _inert, ()


def _in_backward() -> bool:
    try:
        return torch._C._current_graph_task_id() != -1
    except AttributeError:  # pragma: no cover - older torch
        return False


class _ForwardHook(_Hook):
    """Layer ``index``'s forward hook: measures H⁽ᵏ⁾ and registers the tensor hook that will measure B⁽ᵏ⁾."""

    def __init__(self, state_ref: weakref.ref, index: int, name: str) -> None:
        self.state_ref, self.index, self.name = state_ref, index, name

    @torch.compiler.disable  # measured eagerly: a compiled model runs its layers compiled, its hooks as they are
    def __call__(self, module, args, kwargs, output):
        st: HookState | None = self.state_ref()
        if st is None:
            return
        index = self.index
        if index not in st.order:
            st.order.append(index)
        if not torch.is_grad_enabled():
            return
        if index in st.called:
            if not _in_backward():
                st.warn_once(f"reuse {index}", f"layer {self.name!r} was called more than once in one forward pass; the "
                                               f"monitor measures its first call (H and B of that call) and not the others.")
            return
        H = layer_output(output)
        if H is None:
            return
        st.called.add(index)
        Hd = H.detach()
        n = Hd.shape[0]
        st.num_rows[index] = n
        groups = st.groups
        if st.keep_signals and st.signals is not None:
            x = layer_input(args, kwargs)
            st.signals.X[index] = None if x is None else x.detach().clone()
            st.signals.H[index] = Hd.clone()
        if not groups and not st.keep_signals:
            return
        adj = st.adjacency(call_graph(args, kwargs), n, Hd) if "dirichlet" in groups else None
        st.forward_values[index] = signal_values(Hd, groups, "H", adj)
        if H.requires_grad:
            H.register_hook(_BackwardHook(self.state_ref, index, st.pass_id, groups, adj))
        return


class _BackwardHook:
    """The tensor hook on H⁽ᵏ⁾ of one pass: measures B⁽ᵏ⁾ = ∂𝓛/∂H⁽ᵏ⁾ when the backward pass reaches it."""

    def __init__(self, state_ref: weakref.ref, index: int, pass_id: int, groups: frozenset[str],
                 adj: measures.Adjacency | None) -> None:
        self.state_ref, self.index, self.pass_id, self.groups, self.adj = state_ref, index, pass_id, groups, adj

    @torch.compiler.disable  # measured eagerly: a compiled model runs its layers compiled, its hooks as they are
    def __call__(self, grad: torch.Tensor) -> None:
        st: HookState | None = self.state_ref()
        if st is None or st.pass_id != self.pass_id:
            return
        g = grad.detach()
        st.backward_values[self.index] = signal_values(g, self.groups, "B", self.adj)
        st.backward_since_step = True
        if st.keep_signals and st.signals is not None:
            st.signals.B[self.index] = g.clone()
        return


class _PreHook(_Hook):
    """The model's forward pre-hook: a recorded pass starts."""

    def __init__(self, state_ref: weakref.ref) -> None:
        self.state_ref = state_ref

    @torch.compiler.disable  # measured eagerly: a compiled model runs its layers compiled, its hooks as they are
    def __call__(self, module, args):
        st: HookState | None = self.state_ref()
        if st is not None and torch.is_grad_enabled() and not _in_backward():
            st.start_pass()


def install(model: torch.nn.Module, layers: list[torch.nn.Module], state: HookState,
            names: list[str] | None = None) -> None:
    """Register the pre-hook on ``model`` and one forward hook per layer; the handles go to ``state.handles``."""
    ref = weakref.ref(state)
    state.handles.append(model.register_forward_pre_hook(_PreHook(ref)))
    for i, layer in enumerate(layers):
        name = names[i] if names else type(layer).__name__
        state.handles.append(layer.register_forward_hook(_ForwardHook(ref, i, name), with_kwargs=True))


def remove_handles(handles: list) -> None:
    """Remove every hook (idempotent: a removed handle is a no-op)."""
    while handles:
        handles.pop().remove()
