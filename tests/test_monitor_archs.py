"""The monitor on PyG's layer zoo: every recorded signal quantity equals the same measure of the layer outputs
and of ∂𝓛/∂(layer output) computed by autograd on a hand-written pass; edge index and sparse adjacency agree;
mini-batches use each batch's graph; a well-trained shallow model gets no alarm."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GATConv, GCN2Conv, GCNConv, GINConv, SAGEConv

import gnndyn as gd
from gnndyn.monitor import measures as mm
from gnndyn.probes import measures as pm

pytestmark = pytest.mark.usefixtures("one_thread")

KINDS = ("gat-concat", "gat-mean", "gin", "sage", "gcn2", "residual-jk", "mlp")


class Stack(nn.Module):
    """Small models of each kind; ``forward(..., keep=[])`` appends every layer output (the reference)."""

    def __init__(self, kind: str, d_in: int = 5, out: int = 2):
        super().__init__()
        self.kind = kind
        h = 8
        if kind == "gat-concat":
            self.layers = nn.ModuleList([GATConv(d_in, 4, heads=3), GATConv(12, 4, heads=2), GATConv(8, out, heads=1)])
        elif kind == "gat-mean":
            self.layers = nn.ModuleList([GATConv(d_in, 4, heads=3, concat=False), GATConv(4, out, heads=2, concat=False)])
        elif kind == "gin":
            self.layers = nn.ModuleList([GINConv(nn.Sequential(nn.Linear(a, h), nn.ReLU(), nn.Linear(h, h)), train_eps=True)
                                         for a in (d_in, h, h)])
            self.head = nn.Linear(h, out)
        elif kind == "sage":
            self.layers = nn.ModuleList([SAGEConv(d_in, h), SAGEConv(h, h, aggr="max"), SAGEConv(h, out)])
        elif kind == "gcn2":
            self.inp = nn.Linear(d_in, h)
            self.layers = nn.ModuleList([GCN2Conv(h, alpha=0.1, theta=0.5, layer=k + 1) for k in range(3)])
            self.head = nn.Linear(h, out)
        elif kind == "residual-jk":
            self.inp = nn.Linear(d_in, h)
            self.layers = nn.ModuleList([GCNConv(h, h) for _ in range(3)])
            self.head = nn.Linear(3 * h, out)
        else:
            self.layers = nn.ModuleList([nn.Linear(d_in, h), nn.Linear(h, h), nn.Linear(h, out)])

    def forward(self, x, edge_index, keep=None):
        keep = [] if keep is None else keep
        if self.kind in ("gcn2", "residual-jk"):
            x = x0 = torch.relu(self.inp(x))
        for k, layer in enumerate(self.layers):
            if self.kind == "gcn2":
                h = layer(x, x0, edge_index)
            elif self.kind == "mlp":
                h = layer(x)
            else:
                h = layer(x, edge_index)
            keep.append(h)
            last = k == len(self.layers) - 1
            if self.kind == "residual-jk":
                x = x + torch.relu(h)
            elif not last or self.kind in ("gin", "gcn2"):
                x = F.elu(h) if self.kind.startswith("gat") else torch.relu(h)
            else:
                x = h
        if self.kind == "residual-jk":
            return self.head(torch.cat(keep, 1))
        return self.head(x) if self.kind in ("gin", "gcn2") else x


@pytest.fixture(scope="module")
def graph():
    return gd.csbm(50, 2, p_in=0.2, p_out=0.05, feature_dim=5, feature_sep=2.0, seed=3)


def _reference(model, x, graph_arg, y):
    keep = []
    loss = F.cross_entropy(model(x, graph_arg, keep=keep), y)
    B = torch.autograd.grad(loss, keep)
    return [h.detach() for h in keep], [b.detach() for b in B], float(loss.detach())


@pytest.mark.parametrize("kind", KINDS)
def test_every_architecture_against_a_hand_written_pass(kind, graph):
    torch.manual_seed(0)
    model = Stack(kind)
    ei = graph.edge_index
    H, B, loss_ref = _reference(model, graph.x, ei, graph.y)
    kw = {"layers": nn.Linear} if kind == "mlp" else {}
    if kind in ("gin", "gcn2", "residual-jk"):  # heads and input layers are not message passing
        assert len(gd.Monitor(model, edge_index=ei).layers) == len(model.layers)
    mon = gd.Monitor(model, edge_index=ei, schedule="all", **kw)
    assert [x.kind for x in mon.layers] == [type(m).__name__ for m in model.layers]
    model.zero_grad()
    loss = F.cross_entropy(model(graph.x, ei), graph.y)
    loss.backward()
    v = mon.step(loss)
    mon.close()
    assert v["loss"] == pytest.approx(loss_ref, rel=1e-12)
    for k, (h, b) in enumerate(zip(H, B)):
        assert v["smoothing_H"][k] == pytest.approx(pm.smoothing_pairwise(h), rel=1e-10)
        assert v["smoothing_B"][k] == pytest.approx(pm.smoothing_pairwise(b), rel=1e-10)
        assert v["dirichlet_H"][k] == pytest.approx(pm.dirichlet_energy(h, ei), rel=1e-10)
        assert v["dirichlet_B"][k] == pytest.approx(pm.dirichlet_energy(b, ei), rel=1e-10)
        assert v["mad_H"][k] == pytest.approx(mm.mad_pairwise(h), rel=1e-10)
        s = torch.linalg.svdvals(b)
        assert v["numrank_B"][k] == pytest.approx(float((s ** 2).sum() / s[0] ** 2), rel=1e-10)
        g = math.sqrt(sum(float((p.grad ** 2).sum()) for p in model.layers[k].parameters()))
        assert v["grad_norm"][k] == pytest.approx(g, rel=1e-12)
    if kind in ("gat-concat",):
        assert [h.shape[1] for h in H] == [12, 8, 2]
    if kind == "gat-mean":
        assert [h.shape[1] for h in H] == [4, 2]
    if kind in ("gin", "gcn2", "residual-jk"):
        rest = [p for n, p in model.named_parameters() if not n.startswith("layers.")]
        assert v["grad_norm_rest"] == pytest.approx(math.sqrt(sum(float((p.grad ** 2).sum()) for p in rest)), rel=1e-12)


def test_sparse_adjacency_input_gives_the_same_record(graph):
    torch.manual_seed(1)
    a, b = Stack("residual-jk"), Stack("residual-jk")
    b.load_state_dict(a.state_dict())
    n = graph.num_nodes
    ei = graph.edge_index
    adj_t = torch.sparse_coo_tensor(ei.flip(0), torch.ones(ei.shape[1]), (n, n)).coalesce().to_sparse_csr()
    vals = []
    for model, arg in ((a, ei), (b, adj_t)):
        mon = gd.Monitor(model, schedule="all")  # no graph given: each layer call's own graph is used
        loss = F.cross_entropy(model(graph.x, arg), graph.y)
        loss.backward()
        vals.append(mon.step(loss))
        mon.close()
    assert set(vals[0]) == set(vals[1])
    for q in vals[0]:
        assert vals[1][q] == pytest.approx(vals[0][q], rel=1e-10), q
    assert all(math.isfinite(x) for x in vals[1]["dirichlet_H"])


def test_mini_batches_are_recorded_with_their_own_graph():
    graphs = [gd.csbm(n, 2, p_in=0.3, p_out=0.05, feature_dim=5, feature_sep=2.0, seed=s)
              for s, n in enumerate((20, 30, 25, 35))]
    data = [Data(x=g.x, edge_index=g.edge_index, y=g.y) for g in graphs]
    loader = DataLoader(data, batch_size=2, shuffle=False)
    torch.manual_seed(2)
    model = Stack("sage")
    mon = gd.Monitor(model, schedule="all")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    refs = []
    for epoch in range(2):
        for batch in loader:
            H, B, _ = _reference(model, batch.x, batch.edge_index, batch.y)
            refs.append((batch.num_nodes, pm.dirichlet_energy(H[0], batch.edge_index), pm.smoothing(B[1])))
            opt.zero_grad()
            loss = F.cross_entropy(model(batch.x, batch.edge_index), batch.y)
            loss.backward()
            mon.step(loss)
            opt.step()
    df = mon.frame()
    mon.close()
    assert [r[0] for r in refs] == [50, 60, 50, 60]
    d0 = df[(df.quantity == "dirichlet_H") & (df.layer == 0)].sort_values("step")["value"].to_numpy()
    b1 = df[(df.quantity == "smoothing_B") & (df.layer == 1)].sort_values("step")["value"].to_numpy()
    assert d0 == pytest.approx([r[1] for r in refs], rel=1e-10)
    assert b1 == pytest.approx([r[2] for r in refs], rel=1e-10)


def test_a_well_trained_shallow_gcn_on_cora_gets_no_alarm(planetoid_root):
    from torch_geometric.datasets import Planetoid  # noqa: F401  (the loader below reads the same raw files)

    g = gd.load_planetoid("cora", data_root=str(planetoid_root))
    torch.manual_seed(0)
    x = g.x.to(torch.float64)

    class GCN2(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = GCNConv(x.shape[1], 16, cached=True), GCNConv(16, 7, cached=True)

        def forward(self, x, ei):
            x = F.dropout(torch.relu(self.conv1(F.dropout(x, 0.5, self.training), ei)), 0.5, self.training)
            return self.conv2(x, ei)

    model = GCN2()
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    mon = gd.Monitor(model, edge_index=g.edge_index, baseline_loss=math.log(7))
    for _ in range(100):
        opt.zero_grad()
        loss = F.cross_entropy(model(x, g.edge_index)[g.train_mask], g.y[g.train_mask])
        loss.backward()
        mon.step(loss)
        opt.step()
    model.eval()
    acc = float((model(x, g.edge_index).argmax(1) == g.y)[g.test_mask].double().mean())
    verdicts = mon.diagnose()
    mon.close()
    assert acc > 0.75
    assert [v.name for v in verdicts if v.details["alarm"]] == []
    assert all(v.holds for v in verdicts)
