"""The base of the Xu et al. (ICML 2021) specs: the fields they share, the names their fields may hold, and
the checks of the labelled set I (``nodes``) and the hidden width made when a spec is built."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from gnndyn.data.registry import (  # noqa: F401
    PLANETOID_NODES,
    dataset_params,
    has_public_split,
    known_num_nodes,
)
from gnndyn.experiments.base import torch_threads, with_torch_threads  # noqa: F401  (re-exported)
from gnndyn.models.linear_gnn import (
    ACTIVATIONS,
    INITS,
)
from gnndyn.operators.builders import OPERATORS
from gnndyn.spec import ExperimentSpec, GraphSpec
from gnndyn.training.optimizers import OPTIMIZERS

Seeds = Annotated[int, Field(ge=1, description="number of seeds, from `seed` on")]
Threads = Annotated[int, Field(ge=1, description="torch intra-op threads (1 is fastest on a shared 2-core machine)")]

_SHARED_LAST = ("seeds", "threads")
#: the data sets Xu et al.'s experiments take by name: node features and class labels with default parameters
XU_DATASETS = ("cora", "citeseer", "pubmed", "csbm")
class XuSpec(ExperimentSpec):
    """Base of the Xu et al. specs: the fields they all end with. A spec with another default
    re-declares the field with the same type (``seeds: Seeds = 1``). Dumps (``show``, ``spec.json``)
    list these fields last, after the experiment's own ones, as each spec listed them before."""

    seeds: Seeds = 2
    threads: Threads = 1

    needs_features = True  # Xu et al.'s GNNs read the node features X and fit class labels
    graph_needs = ("features", "labels")

    #: the names Xu et al.'s fields may hold, checked when the spec is built (fields a spec lacks are skipped)
    name_fields = {
        **{f: ("dataset", XU_DATASETS) for f in ("dataset", "datasets", "time_dataset", "sweep_datasets")},
        **{f: ("operator", tuple(OPERATORS)) for f in ("operator", "operators", "time_operator", "sweep_operators")},
        "optimizer": ("optimizer", tuple(OPTIMIZERS)),
        "init": ("init", INITS),
        **{f: ("activation", ACTIVATIONS) for f in ("activation", "activations")},
    }


    @field_validator("width", check_fields=False)
    @classmethod
    def _width(cls, v: int | None) -> int | None:
        """A hidden width is ≥ 1; null (where a spec allows it) means the input dimension m_x."""
        if v is not None and v < 1:
            raise ValueError(f"width must be a hidden width ≥ 1, or null for the input dimension m_x; got {v}")
        return v

    @field_validator("depths", "sweep_depths", check_fields=False)
    @classmethod
    def _depth_list(cls, v: list[int], info: ValidationInfo) -> list[int]:
        name = info.field_name
        if not v:
            raise ValueError(f"{name} is empty (got []); give at least one depth H ≥ 1, e.g. {name}=[1, 2]")
        bad = [H for H in v if H < 1]
        if bad:
            raise ValueError(f"every depth in {name} must be ≥ 1 (H layers of propagation); got {bad[0]} in {v}")
        return v

    def _graphs_used(self) -> list[tuple[str, str, int | None]]:
        """(where, dataset name, known node count) of every graph the labelled set ``nodes`` is taken from."""
        out: list[tuple[str, str, int | None]] = []
        for f in ("dataset", "time_dataset"):
            v = getattr(self, f, None)
            if isinstance(v, str):
                out.append((f"{f}={v!r}", v, known_num_nodes(v)))
        for f in ("datasets", "sweep_datasets"):
            for v in getattr(self, f, None) or []:
                out.append((f"{v!r} in {f}", v, known_num_nodes(v)))
        g = getattr(self, "graph", None)
        if isinstance(g, GraphSpec):
            out.append((f"graph.name={g.name!r}", g.name, known_num_nodes(g.name, g.params, g.lcc)))
        return out

    @model_validator(mode="after")
    def _nodes(self) -> "XuSpec":
        """``nodes`` (the labelled set I) is ``train``, ``all`` or a positive count, no larger than any graph it is
        drawn from (when that size is known without loading: the Planetoid graphs, a generator's ``n``); ``train``
        needs graphs with a public split."""
        nodes = getattr(self, "nodes", None)
        if not isinstance(nodes, str) or nodes == "all":
            return self
        graphs = self._graphs_used()
        if nodes == "train":
            for where, name, n in graphs:
                if not has_public_split(name):
                    alt = f" or a count k ≤ {n}" if n else " or a count k"
                    raise ValueError(f"nodes='train' takes the public training split, and {where} has none (only "
                                     f"{', '.join(PLANETOID_NODES)} do); give nodes='all'{alt}")
            return self
        try:
            k = int(nodes)
        except ValueError:
            k = 0
        if k < 1:
            raise ValueError(f"nodes must be 'train' (the public split), 'all' or a positive count k; got {nodes!r}")
        known = [(n, where) for where, _, n in graphs if n is not None]
        if known:
            n, where = min(known)
            if k > n:
                raise ValueError(f"nodes={k} labelled nodes is more than the {n} nodes of {where}; give nodes ≤ {n}, "
                                 f"or nodes='all'")
        return self

    @model_serializer(mode="wrap")
    def _shared_fields_last(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        d = handler(self)
        return {**{k: v for k, v in d.items() if k not in _SHARED_LAST}, **{k: d[k] for k in _SHARED_LAST if k in d}}


