"""Node-level mini-batches from PyTorch Geometric's loaders: each step is recorded on the batch's own graph.

* ``RandomNodeLoader`` (induced subgraphs of random node parts; pure PyTorch);
* seed-node batches as ``NeighborLoader`` yields them — the k-hop subgraph around the seeds, seeds first, the
  loss on the first ``batch_size`` rows — built with ``k_hop_subgraph`` (no sampling library needed);
* ``NeighborLoader`` itself, where PyG has its sampling backend (``pyg-lib`` or ``torch-sparse``).

Each recorded quantity is compared with the same measure of the layer outputs and of ∂𝓛/∂(layer output)
computed by autograd on the same batch.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torch_geometric.typing as pyg_typing
from torch import nn
from torch_geometric.data import Data
from torch_geometric.loader import RandomNodeLoader
from torch_geometric.nn import GCNConv, SAGEConv
from torch_geometric.utils import k_hop_subgraph

import gnndyn as gd
from gnndyn.probes import measures as pm

pytestmark = pytest.mark.usefixtures("one_thread")


class Net(nn.Module):
    def __init__(self, conv, d_in: int = 5, h: int = 8, out: int = 2):
        super().__init__()
        self.layers = nn.ModuleList([conv(d_in, h), conv(h, h), conv(h, out)])

    def forward(self, x, edge_index, keep=None):
        for k, layer in enumerate(self.layers):
            x = layer(x, edge_index)
            if keep is not None:
                keep.append(x)
            if k < len(self.layers) - 1:
                x = torch.relu(x)
        return x


@pytest.fixture(scope="module")
def data():
    g = gd.csbm(150, 2, p_in=0.05, p_out=0.01, feature_dim=5, feature_sep=2.0, seed=5)
    return Data(x=g.x, edge_index=g.edge_index, y=g.y)


def _reference(model, batch, rows):
    keep = []
    loss = F.cross_entropy(model(batch.x, batch.edge_index, keep=keep)[rows], batch.y[rows])
    B = torch.autograd.grad(loss, keep)
    return [h.detach() for h in keep], [b.detach() for b in B]


def _train(model, batches, rows_of):
    """Train over ``batches`` under a monitor given no graph; returns the monitor's frame and the references."""
    mon = gd.Monitor(model, schedule="all")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    refs = []
    for batch in batches:
        rows = rows_of(batch)
        H, B = _reference(model, batch, rows)
        refs.append({"n": batch.num_nodes, "H": H, "B": B, "edge_index": batch.edge_index})
        opt.zero_grad()
        loss = F.cross_entropy(model(batch.x, batch.edge_index)[rows], batch.y[rows])
        loss.backward()
        mon.step(loss)
        opt.step()
    df = mon.frame()
    mon.close()
    return df, refs


def _check(df, refs, depth=3):
    for step, ref in enumerate(refs):
        at = df[df.step == step]
        for k in range(depth):
            def value(q):
                (v,) = at[(at.quantity == q) & (at.layer == k)]["value"].to_numpy()
                return v

            h, b, ei = ref["H"][k], ref["B"][k], ref["edge_index"]
            assert value("smoothing_H") == pytest.approx(pm.smoothing_pairwise(h), rel=1e-9)
            assert value("smoothing_B") == pytest.approx(pm.smoothing_pairwise(b), rel=1e-9)
            assert value("dirichlet_H") == pytest.approx(pm.dirichlet_energy(h, ei), rel=1e-9)
            assert value("dirichlet_B") == pytest.approx(pm.dirichlet_energy(b, ei), rel=1e-9, abs=1e-15)


def test_random_node_loader_batches_are_recorded_on_their_induced_subgraphs(data):
    torch.manual_seed(0)
    loader = RandomNodeLoader(data, num_parts=3, shuffle=True)
    batches = [b for _ in range(2) for b in loader]  # two epochs
    model = Net(GCNConv).double()
    df, refs = _train(model, [b.__class__(x=b.x.double(), edge_index=b.edge_index, y=b.y) for b in batches],
                      lambda b: slice(None))
    sizes = [r["n"] for r in refs]
    assert sum(sizes[:3]) == data.num_nodes and sum(sizes[3:]) == data.num_nodes
    assert all(r["edge_index"].shape[1] < data.edge_index.shape[1] for r in refs)  # subgraphs, not the graph
    _check(df, refs)


def test_seed_node_batches_as_neighbor_loader_yields_them(data):
    """Seeds first, the k-hop subgraph around them, the loss on the seed rows only (NeighborLoader's shape)."""
    torch.manual_seed(1)
    perm = torch.randperm(data.num_nodes, generator=torch.Generator().manual_seed(2))
    batches, seeds_per_batch = [], 20
    for start in range(0, 60, seeds_per_batch):
        seeds = perm[start:start + seeds_per_batch]
        subset, _, _, _ = k_hop_subgraph(seeds, 1, data.edge_index, num_nodes=data.num_nodes)
        rest = subset[~torch.isin(subset, seeds)]
        order = torch.cat([seeds, rest])  # seeds first, as NeighborLoader's n_id
        sub = data.subgraph(order)
        batches.append(Data(x=sub.x.double(), edge_index=sub.edge_index, y=sub.y, batch_size=seeds_per_batch))
    model = Net(SAGEConv).double()
    df, refs = _train(model, batches, lambda b: slice(0, b.batch_size))
    assert len({r["n"] for r in refs}) > 1 and max(r["n"] for r in refs) < data.num_nodes  # own graphs
    _check(df, refs)
    # the backward signal is zero outside the seeds' receptive field only: rows past the seeds carry gradient
    assert float(refs[0]["B"][0][seeds_per_batch:].abs().sum()) > 0


@pytest.mark.skipif(not (pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE),
                    reason="PyG's NeighborLoader needs pyg-lib or torch-sparse, neither of which is installed here")
def test_neighbor_loader(data):
    from torch_geometric.loader import NeighborLoader

    torch.manual_seed(3)
    d = Data(x=data.x.double(), edge_index=data.edge_index, y=data.y)
    loader = NeighborLoader(d, num_neighbors=[5, 5, 5], batch_size=25, input_nodes=torch.arange(75), shuffle=False)
    model = Net(SAGEConv).double()
    df, refs = _train(model, list(loader), lambda b: slice(0, b.batch_size))
    _check(df, refs)
