"""The one graph type of gnndyn.

A :class:`Graph` holds an undirected simple graph as a symmetric, coalesced ``edge_index`` (both
directions of every edge, no self loops), optional node features ``x`` (nodes as rows, n × d),
optional labels ``y`` (class indices, shape (n,), or regression targets, shape (n, p)) and optional
train/val/test masks. Every loader and generator returns this type; every operator is built from it.
Nothing here builds an n × n dense matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

from gnndyn.errors import GnndynError


def _check_mask(mask: torch.Tensor | None, n: int, name: str) -> None:
    if mask is None:
        return
    if mask.dtype != torch.bool or mask.shape != (n,):
        raise GnndynError(
            f"{name} must be a boolean tensor of shape ({n},); got dtype {mask.dtype} and shape "
            f"{tuple(mask.shape)}. Build it with torch.zeros({n}, dtype=torch.bool)."
        )


def _check_finite(t: torch.Tensor | None, name: str, what: str) -> None:
    """Refuse NaN or ±inf in features or labels at the entry: every later number would be meaningless."""
    if t is None or not t.is_floating_point():
        return
    ok = torch.isfinite(t)
    if not bool(ok.all()):
        bad = (~ok).nonzero()
        node = int(bad[0, 0])
        col = f", column {int(bad[0, 1])}" if bad.shape[1] > 1 else ""
        raise GnndynError(
            f"{name} ({what}) holds {bad.shape[0]} non-finite value(s) (NaN or ±inf), the first at node {node}{col}: "
            f"{float(t[tuple(bad[0])])}. Clean the data (drop or impute those entries) before building the graph."
        )


@dataclass(frozen=True)
class Graph:
    """An undirected simple graph with optional node features, labels and masks.

    Attributes:
        edge_index: ``(2, 2m)`` long tensor, symmetric and coalesced, without self loops.
        num_nodes: number of nodes n (isolated nodes included).
        x: node features, ``(n, d)``, or ``None``.
        y: labels, ``(n,)`` long (classes) or ``(n, p)`` float (regression), or ``None``.
        train_mask, val_mask, test_mask: boolean ``(n,)`` masks, or ``None``.
        name: a short name (``"cora"``, ``"csbm"``...).
        meta: generator parameters and provenance, JSON-serialisable.
    """

    edge_index: torch.Tensor
    num_nodes: int
    x: torch.Tensor | None = None
    y: torch.Tensor | None = None
    train_mask: torch.Tensor | None = None
    val_mask: torch.Tensor | None = None
    test_mask: torch.Tensor | None = None
    name: str = "graph"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = int(self.num_nodes)
        if n <= 0:
            raise GnndynError(f"a graph needs at least one node; got num_nodes={self.num_nodes}.")
        ei = self.edge_index
        if ei.dim() != 2 or ei.shape[0] != 2:
            raise GnndynError(f"edge_index must have shape (2, E); got {tuple(ei.shape)}.")
        if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= n):
            raise GnndynError(
                f"edge_index refers to node {int(ei.max())} (or a negative id) but num_nodes={n}."
            )
        if self.x is not None and self.x.shape[0] != n:
            raise GnndynError(f"x has {self.x.shape[0]} rows (shape {tuple(self.x.shape)}) but the graph has {n} nodes.")
        if self.y is not None and self.y.shape[0] != n:
            raise GnndynError(f"y has {self.y.shape[0]} rows (shape {tuple(self.y.shape)}) but the graph has {n} nodes.")
        for name in ("train_mask", "val_mask", "test_mask"):
            _check_mask(getattr(self, name), n, name)
        for name, what in (("x", "node features"), ("y", "labels")):
            _check_finite(getattr(self, name), name, what)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_edges(cls, edge_index: torch.Tensor | np.ndarray, num_nodes: int, **kwargs: Any) -> "Graph":
        """Build a graph from any edge list: symmetrises, removes self loops and duplicates."""
        ei = torch.as_tensor(np.asarray(edge_index), dtype=torch.long)
        if ei.dim() != 2 or ei.shape[0] != 2:
            raise GnndynError(f"edge_index must have shape (2, E); got {tuple(ei.shape)}.")
        return cls(edge_index=canonical_edge_index(ei, num_nodes), num_nodes=int(num_nodes), **kwargs)

    # ------------------------------------------------------------------ facts
    @property
    def num_edges(self) -> int:
        """Number of undirected edges m (self loops excluded)."""
        return int(self.edge_index.shape[1]) // 2

    @property
    def num_features(self) -> int:
        return 0 if self.x is None else int(self.x.shape[1])

    @property
    def num_classes(self) -> int:
        if self.y is None or self.y.dim() != 1:
            return 0
        return int(self.y.max()) + 1

    def degrees(self) -> np.ndarray:
        """Node degrees as an int64 array of length n."""
        return np.bincount(self.edge_index[0].numpy(), minlength=self.num_nodes).astype(np.int64)

    def adjacency(self, dtype: Any = np.float64) -> sp.csr_matrix:
        """The symmetric adjacency matrix A as a SciPy CSR matrix (never dense)."""
        row, col = self.edge_index.numpy()
        data = np.ones(row.shape[0], dtype=dtype)
        return sp.csr_matrix((data, (row, col)), shape=(self.num_nodes, self.num_nodes))

    def components(self) -> tuple[int, np.ndarray]:
        """(number of connected components, component label of each node)."""
        ncomp, labels = connected_components(self.adjacency(), directed=False)
        return int(ncomp), labels

    def is_connected(self) -> bool:
        return self.components()[0] == 1

    # ------------------------------------------------------------------ transforms
    def subgraph(self, nodes: np.ndarray | torch.Tensor) -> "Graph":
        """The subgraph induced by ``nodes`` (sorted), with features, labels and masks restricted."""
        nodes_np = np.sort(np.asarray(nodes, dtype=np.int64))
        keep = np.zeros(self.num_nodes, dtype=bool)
        keep[nodes_np] = True
        new_id = -np.ones(self.num_nodes, dtype=np.int64)
        new_id[nodes_np] = np.arange(nodes_np.shape[0])
        row, col = self.edge_index.numpy()
        mask = keep[row] & keep[col]
        ei = torch.from_numpy(np.stack([new_id[row[mask]], new_id[col[mask]]]))
        idx = torch.from_numpy(nodes_np)

        def take(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[idx]

        return replace(
            self,
            edge_index=ei,
            num_nodes=int(nodes_np.shape[0]),
            x=take(self.x),
            y=take(self.y),
            train_mask=take(self.train_mask),
            val_mask=take(self.val_mask),
            test_mask=take(self.test_mask),
            meta={**self.meta, "subgraph_of": self.num_nodes},
        )

    def largest_component(self) -> "Graph":
        """The subgraph induced by the largest connected component (ties: lowest label)."""
        ncomp, labels = self.components()
        if ncomp == 1:
            return self
        sizes = np.bincount(labels)
        nodes = np.flatnonzero(labels == int(np.argmax(sizes)))
        g = self.subgraph(nodes)
        return replace(g, meta={**g.meta, "lcc": True, "lcc_of": self.num_nodes})

    def with_(self, **changes: Any) -> "Graph":
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)

    def summary(self) -> dict[str, Any]:
        ncomp, labels = self.components()
        deg = self.degrees()
        return {
            "name": self.name,
            "nodes": self.num_nodes,
            "edges": self.num_edges,
            "components": ncomp,
            "lcc_nodes": int(np.bincount(labels).max()),
            "max_degree": int(deg.max()) if deg.size else 0,
            "min_degree": int(deg.min()) if deg.size else 0,
            "mean_degree": float(deg.mean()) if deg.size else 0.0,
            "isolated_nodes": int((deg == 0).sum()),
            "features": self.num_features,
            "classes": self.num_classes,
        }


def canonical_edge_index(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Symmetrise, drop self loops and duplicates, sort by (row, col). O(E log E), no n × n object."""
    ei = torch.as_tensor(edge_index, dtype=torch.long)
    if ei.numel() == 0:
        return torch.zeros(2, 0, dtype=torch.long)
    row, col = ei[0], ei[1]
    keep = row != col
    row, col = row[keep], col[keep]
    row, col = torch.cat([row, col]), torch.cat([col, row])
    key = torch.unique(row * int(num_nodes) + col)
    return torch.stack([key // int(num_nodes), key % int(num_nodes)])
