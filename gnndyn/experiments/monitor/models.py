"""The models of ``monitor-zoo``, built as PyTorch Geometric's examples build them, and Keriven's deep GNN
(eq. (1)) written as a PyG ``MessagePassing`` model (:class:`KerivenGNN`), the monitor's exact reference.

Every zoo model maps ``(x, edge_index)`` to logits through ``depth`` layers of width ``hidden``:

* ``gcn`` — ``GCNConv`` layers, ReLU and dropout 0.5 between them (PyG ``examples/gcn.py``);
* ``gat`` — ``GATConv`` with 8 heads concatenated, ELU, dropout 0.6 on features and attention, the last
  layer with 1 head (``examples/gat.py``; hidden width ``hidden`` = 8 heads × hidden/8);
* ``gin`` — ``GINConv`` around a two-layer MLP with batch norm, ReLU (``examples/gin.py``), and a linear
  classifier on the last layer's output;
* ``sage`` — ``SAGEConv`` (mean aggregation), ReLU, dropout 0.5 (``examples/graph_sage_unsup``'s encoder,
  trained supervised);
* ``gcnii`` — a linear input layer, ``GCN2Conv`` layers with α = 0.1, θ = 0.5 (β_k = log(θ/k + 1)), ReLU,
  dropout 0.6, and a linear output layer (``examples/gcn2_cora.py``);
* ``mlp`` — ``torch.nn.Linear`` layers, ReLU and dropout 0.5: the graph-free baseline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import (
    GATConv,
    GCN2Conv,
    GCNConv,
    GINConv,
    MessagePassing,
    SAGEConv,
)

from gnndyn.errors import resolve
from gnndyn.experiments.monitor.archs import ARCHS, OPTIM  # noqa: F401 - OPTIM re-exported


class KerivenConv(MessagePassing):
    """H = P X W with a fixed propagation operator P given as (edge_index, edge_weight): out_i = Σ_j P_ij X_j W."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__(aggr="add")
        self.weight = nn.Parameter(weight.detach().clone())

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor) -> torch.Tensor:
        return self.propagate(edge_index, x=x, edge_weight=edge_weight) @ self.weight

    def message(self, x_j: torch.Tensor, edge_weight: torch.Tensor) -> torch.Tensor:
        return edge_weight.unsqueeze(1) * x_j


class KerivenGNN(nn.Module):
    """Keriven's eq. (1), F⁽ᵏ⁾ = P X⁽ᵏ⁾, H⁽ᵏ⁾ = F⁽ᵏ⁾W⁽ᵏ⁾, X⁽ᵏ⁺¹⁾ = ρ(H⁽ᵏ⁾), out = H⁽ᴸ⁾, as PyG layers with the
    weights of a :class:`~gnndyn.models.deep_gnn.DeepGNN`; ``operator_edges`` gives P as PyG edges."""

    def __init__(self, deep_gnn) -> None:
        super().__init__()
        self.convs = nn.ModuleList([KerivenConv(w) for w in deep_gnn.weights])
        self.act = deep_gnn.act

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor) -> torch.Tensor:
        for k, conv in enumerate(self.convs):
            x = conv(x, edge_index, edge_weight)
            if k < len(self.convs) - 1:
                x = self.act(x)
        return x


def operator_edges(op) -> tuple[torch.Tensor, torch.Tensor]:
    """(edge_index, edge_weight) of a gnndyn operator P: an edge j → i of weight P_ij for every stored entry."""
    m = op.matrix.to_sparse_coo().coalesce()
    rows, cols = m.indices()
    return torch.stack([cols, rows]), m.values()


class ZooModel(nn.Module):
    """A stack of ``depth`` layers of one architecture (module docstring)."""

    def __init__(self, arch: str, in_dim: int, hidden: int, out_dim: int, depth: int) -> None:
        super().__init__()
        self.arch = resolve("architecture", arch, {k: k for k in ARCHS})
        self.depth = depth
        self.dropout = {"gat": 0.6, "gcnii": 0.6}.get(self.arch, 0.5)
        dims = [in_dim] + [hidden] * (depth - 1) + [out_dim]
        self.lins = nn.ModuleList()
        if self.arch == "gcn":
            self.convs = nn.ModuleList([GCNConv(dims[k], dims[k + 1], cached=True) for k in range(depth)])
        elif self.arch == "gat":
            heads = 8
            self.convs = nn.ModuleList()
            for k in range(depth):
                last = k == depth - 1
                d_in = dims[k]
                self.convs.append(GATConv(d_in, out_dim, heads=1, concat=False, dropout=0.6) if last else
                                  GATConv(d_in, max(hidden // heads, 1), heads=heads, dropout=0.6))
                if not last:
                    dims[k + 1] = heads * max(hidden // heads, 1)
        elif self.arch == "gin":
            self.convs = nn.ModuleList([
                GINConv(nn.Sequential(nn.Linear(dims[k] if k == 0 else hidden, hidden), nn.BatchNorm1d(hidden),
                                      nn.ReLU(), nn.Linear(hidden, hidden)), train_eps=False)
                for k in range(depth)])
            self.lins.append(nn.Linear(hidden, out_dim))
        elif self.arch == "sage":
            self.convs = nn.ModuleList([SAGEConv(dims[k], dims[k + 1]) for k in range(depth)])
        elif self.arch == "gcnii":
            self.lins.append(nn.Linear(in_dim, hidden))
            self.convs = nn.ModuleList([GCN2Conv(hidden, alpha=0.1, theta=0.5, layer=k + 1, shared_weights=True,
                                                 normalize=True, cached=True) for k in range(depth)])
            self.lins.append(nn.Linear(hidden, out_dim))
        else:
            self.convs = nn.ModuleList()
            self.lins.extend(nn.Linear(dims[k], dims[k + 1]) for k in range(depth))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        p, tr = self.dropout, self.training
        if self.arch == "mlp":
            for k, lin in enumerate(self.lins):
                x = F.dropout(x, p, tr)
                x = lin(x)
                if k < self.depth - 1:
                    x = F.relu(x)
            return x
        if self.arch == "gcnii":
            x = F.dropout(x, p, tr)
            x = x0 = F.relu(self.lins[0](x))
            for conv in self.convs:
                x = F.dropout(x, p, tr)
                x = F.relu(conv(x, x0, edge_index))
            x = F.dropout(x, p, tr)
            return self.lins[1](x)
        for k, conv in enumerate(self.convs):
            if self.arch != "gin":
                x = F.dropout(x, p, tr)
            x = conv(x, edge_index)
            if k < self.depth - 1 or self.arch == "gin":
                x = F.elu(x) if self.arch == "gat" else F.relu(x)
        return self.lins[0](x) if self.arch == "gin" else x


def layers_of(model: ZooModel) -> list[nn.Module]:
    """The layers the monitor should follow: the convolutions, or the linear layers of the MLP."""
    return list(model.lins) if model.arch == "mlp" else list(model.convs)
