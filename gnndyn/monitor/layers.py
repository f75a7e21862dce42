"""Which modules of a user's model are its layers, and what a layer call's output and graph are.

Layers are found automatically — every PyTorch Geometric ``MessagePassing`` module that is not inside
another one (GINConv's inner MLP is part of its GINConv) — or given explicitly: a list of modules, a list
of names from ``model.named_modules()`` (a ``ModuleList`` means its children), or a module class
(``torch.nn.Linear`` for a plain MLP). Their order is the order of each layer's first call in any forward pass,
with or without gradients ("forward order"); until then it is the registration order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from gnndyn.errors import GnndynError, UnknownNameError


def _message_passing_type() -> type | None:
    try:
        from torch_geometric.nn import MessagePassing
    except ImportError:  # pragma: no cover - torch_geometric is a dependency
        return None
    return MessagePassing


@dataclass(frozen=True)
class Layer:
    """One monitored layer: its name in the model and its class name (the module is held weakly)."""

    name: str
    kind: str


def _outermost(model: nn.Module, types: tuple[type, ...]) -> list[tuple[str, nn.Module]]:
    found: list[tuple[str, nn.Module]] = []
    for name, mod in model.named_modules():
        if not isinstance(mod, types):
            continue
        if any(name.startswith(f"{outer}.") or outer == "" for outer, _ in found):
            continue
        found.append((name, mod))
    return found


def _describe(model: nn.Module, limit: int = 30) -> str:
    mods = [(n, type(m).__name__) for n, m in model.named_modules() if n]
    if not mods:
        return f"{type(model).__name__} has no submodules"
    shown = ", ".join(f"{n} ({k})" for n, k in mods[:limit])
    more = f" and {len(mods) - limit} more" if len(mods) > limit else ""
    return f"{type(model).__name__}'s modules are: {shown}{more}"


def find_layers(model: nn.Module, layers: Sequence[nn.Module | str] | type | tuple[type, ...] | None = None
                ) -> list[tuple[str, nn.Module]]:
    """``[(name, module)]`` of the layers to monitor (module docstring). Raises GnndynError listing what the
    model holds when nothing is found, and UnknownNameError for a name the model does not have."""
    if not isinstance(model, nn.Module):
        raise GnndynError(f"Monitor needs a torch.nn.Module; got {type(model).__name__}.")
    named = dict(model.named_modules())
    if layers is None:
        mp = _message_passing_type()
        found = _outermost(model, (mp,)) if mp is not None else []
        if not found:
            raise GnndynError(
                f"found no torch_geometric MessagePassing layer in {type(model).__name__}; {_describe(model)}. "
                "Give the layers explicitly: Monitor(model, layers=[model.lin1, model.lin2]), "
                "layers=['lin1', 'lin2'] (names from model.named_modules()) or layers=torch.nn.Linear.")
        return found
    if isinstance(layers, type) or (isinstance(layers, tuple) and layers and all(isinstance(t, type) for t in layers)):
        types = layers if isinstance(layers, tuple) else (layers,)
        found = _outermost(model, types)
        if not found:
            names = ", ".join(t.__name__ for t in types)
            hint = ""
            twins = sorted({_qualified(type(m)) for _, m in model.named_modules()
                            if any(type(m).__name__ == t.__name__ and type(m) is not t for t in types)})
            if twins:
                hint = (f" Modules of the same name but another class are there: {', '.join(twins)} (you gave "
                        f"{', '.join(_qualified(t) for t in types)}); pass that class, e.g. layers=type(model.<name>).")
            raise GnndynError(f"found no module of type {names} in {type(model).__name__}; {_describe(model)}.{hint}")
        return found
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    elif not isinstance(layers, Sequence):
        raise GnndynError(f"layers must be a list of modules or of names, a module class, or None; got "
                          f"{type(layers).__name__} ({layers!r}).")
    out: list[tuple[str, nn.Module]] = []
    by_id = {id(m): n for n, m in named.items()}
    for item in layers:
        if isinstance(item, str):
            key = item if item in named or f"_orig_mod.{item}" not in named else f"_orig_mod.{item}"
            if key not in named or key == "":
                raise UnknownNameError("layer", item, [n for n in named if n])
            name, mod = key, named[key]
        elif isinstance(item, nn.Module):
            if id(item) not in by_id:
                raise GnndynError(f"layer {type(item).__name__} is not a submodule of {type(model).__name__}; "
                                  f"{_describe(model)}.")
            name, mod = by_id[id(item)], item
        else:
            raise GnndynError(f"layers must be modules, names or a module class; got {type(item).__name__}.")
        if isinstance(mod, (nn.ModuleList, nn.ModuleDict)):  # a container is never called: its children are the layers
            out.extend((f"{name}.{k}" if name else k, m) for k, m in mod.named_children())
        else:
            out.append((name or type(mod).__name__, mod))
    if not out:
        raise GnndynError("layers=[] names no layer; give at least one module or name, or leave layers out.")
    if len({id(m) for _, m in out}) != len(out):
        raise GnndynError(f"a layer is listed twice in layers: {[n for n, _ in out]}.")
    return out


def display_name(name: str, module: nn.Module) -> str:
    """A layer's name as shown: its path in the model without the ``_orig_mod.`` of ``torch.compile``'s wrapper,
    or its class name when the layer is the model itself."""
    while name.startswith("_orig_mod."):
        name = name[len("_orig_mod."):]
    return name or type(module).__name__


def _qualified(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def layer_output(output: object) -> torch.Tensor | None:
    """The signal a layer call produced: the tensor itself, or the first tensor of a tuple/list (GATConv with
    ``return_attention_weights``), as an (n, ·) matrix; None when there is none."""
    if isinstance(output, torch.Tensor):
        t = output
    elif isinstance(output, (tuple, list)):
        t = next((o for o in output if isinstance(o, torch.Tensor)), None)
        if t is None:
            return None
    else:
        return None
    if not t.is_floating_point() or t.dim() == 0 or t.is_sparse:
        return None
    return t


def layer_input(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The first floating-point dense tensor among a call's arguments (the layer's input features)."""
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.Tensor) and a.is_floating_point() and not a.is_sparse and a.layout == torch.strided:
            return a
    return None


def call_graph(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The graph argument of a layer call as given: a (2, m) integer edge index or a torch sparse adjacency."""
    cands = [kwargs[k] for k in ("edge_index", "adj_t", "adj") if k in kwargs] + list(args) + list(kwargs.values())
    for a in cands:
        if not isinstance(a, torch.Tensor):
            continue
        if a.layout == torch.strided and a.dim() == 2 and a.shape[0] == 2 and a.dtype in (torch.int64, torch.int32):
            return a
        if a.layout in (torch.sparse_coo, torch.sparse_csr) and a.dim() == 2:
            return a
    return None


def to_edge_index(graph: torch.Tensor) -> torch.Tensor:
    """A (2, m) edge index (source, target) from :func:`call_graph`'s result (a sparse ``adj_t`` has entry (i, j)
    for an edge j → i)."""
    if graph.layout == torch.strided:
        return graph
    coo = graph.to_sparse_coo() if graph.layout == torch.sparse_csr else graph
    return coo.coalesce().indices().flip(0)


def call_edge_index(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The graph a layer was called with, as a (2, m) long edge index (source, target); None if none."""
    g = call_graph(args, kwargs)
    return None if g is None else to_edge_index(g)
