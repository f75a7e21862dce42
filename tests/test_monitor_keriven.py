"""The monitor on Keriven's deep GNN written as a PyG model: every signal and quantity equals gnndyn's own
DeepGNN's (float64, 1e-12), and the diagnoses fire on the stuck deep GNN of ``backward-oversmoothing`` and
stay silent on the shallow one."""

from __future__ import annotations

import math

import pytest
import torch

import gnndyn as gd
from gnndyn.experiments.monitor.models import KerivenGNN, operator_edges
from gnndyn.monitor import measures as mm
from gnndyn.probes import measures as pm

pytestmark = pytest.mark.usefixtures("one_thread")


def _setup(n=120, depth=6, width=8, seed=0):
    g = gd.csbm(n, 2, p_in=0.15, p_out=0.03, feature_dim=5, feature_sep=2.0, seed=seed)
    P = gd.build_operator("gossip", g)
    ref = gd.DeepGNN(5, width, 2, depth=depth, activation="tanh", init="glorot", seed=seed)
    pyg = KerivenGNN(ref)
    ei, ew = operator_edges(P)
    return g, P, ref, pyg, ei, ew


def test_keriven_conv_is_deep_gnn():
    g, P, ref, pyg, ei, ew = _setup()
    out_ref = ref(P, g.x)
    out_pyg = pyg(g.x, ei, ew)
    assert torch.allclose(out_ref, out_pyg, rtol=0, atol=1e-13)


def test_signals_and_every_quantity_equal_deep_gnn():
    g, P, ref, pyg, ei, ew = _setup()
    loss_fn = gd.get_loss("cross-entropy")
    out = ref(P, g.x, keep_signals=True)
    loss_ref = loss_fn(out, g.y)
    loss_ref.backward()
    sig = ref.signals
    mon = gd.Monitor(pyg, edge_index=g.edge_index, schedule="all", keep_signals=True)
    loss = loss_fn(pyg(g.x, ei, ew), g.y)
    loss.backward()
    v = mon.step(loss)
    L1 = ref.num_layers
    assert [x.kind for x in mon.layers] == ["KerivenConv"] * L1
    s = mon.signals
    for k in range(L1):
        for mine, theirs in ((s.X[k], sig.X[k]), (s.H[k], sig.H[k]), (s.B[k], sig.B[k])):
            theirs = theirs.detach()
            assert mine.shape == theirs.shape
            assert float((mine - theirs).abs().max()) <= 1e-12 * float(theirs.abs().max())
    assert v["loss"] == pytest.approx(float(loss_ref.detach()), rel=1e-12)
    tol = {"rel": 1e-12, "abs": 1e-300}
    for k in range(L1):
        H, B = sig.H[k].detach(), sig.B[k]
        assert v["smoothing_H"][k] == pytest.approx(pm.smoothing(H), **tol)
        assert v["smoothing_B"][k] == pytest.approx(pm.smoothing(B), **tol)
        assert v["dirichlet_H"][k] == pytest.approx(pm.dirichlet_energy(H, g.edge_index), rel=1e-12)
        assert v["dirichlet_B"][k] == pytest.approx(pm.dirichlet_energy(B, g.edge_index), rel=1e-12)
        assert v["mad_H"][k] == pytest.approx(mm.mad_pairwise(H), rel=1e-12)
        assert v["mad_B"][k] == pytest.approx(mm.mad_pairwise(B), rel=1e-12)
        for suf, X in (("H", H), ("B", B)):
            sv = torch.linalg.svdvals(X)
            assert v[f"numrank_{suf}"][k] == pytest.approx(float((sv ** 2).sum() / sv[0] ** 2), rel=1e-12)
            p = sv / sv.sum()
            assert v[f"effrank_{suf}"][k] == pytest.approx(math.exp(float(-(p * p.log()).sum())), rel=1e-12)
        assert v["grad_norm"][k] == pytest.approx(float(torch.linalg.norm(ref.weights[k].grad)), rel=1e-12)
    assert v["spectral_norm"] == pytest.approx(ref.spectral_norms(), rel=1e-12)
    assert v["global_delta"] == pytest.approx(max(float(torch.linalg.norm(w.grad)) for w in ref.weights), rel=1e-12)
    mon.close()


def _train(depth, steps, lr=0.3, n=200):
    """``backward-oversmoothing``'s set-up (CSBM with its average degree, gossip, tanh, glorot, width 32,
    cross-entropy on classes, gradient descent with lr 0.3, shallow depth 5) at a smaller size (n = 200,
    deep depth 16, 60 epochs; the experiment's defaults are 1000, 40, 200), through the PyG model."""
    g = gd.csbm(n, 2, p_in=0.05 * 1000 / n, p_out=0.0095 * 1000 / n, feature_dim=16, feature_sep=2.0, seed=0)
    P = gd.build_operator("gossip", g)
    ref = gd.DeepGNN(16, 32, 2, depth=depth, activation="tanh", init="glorot", seed=0)
    pyg = KerivenGNN(ref)
    ei, ew = operator_edges(P)
    mon = gd.Monitor(pyg, edge_index=g.edge_index, baseline_loss=math.log(2))
    opt = torch.optim.SGD(pyg.parameters(), lr=lr)
    loss_fn = gd.get_loss("cross-entropy")
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(pyg(g.x, ei, ew), g.y)
        loss.backward()
        mon.step(loss)
        opt.step()
    verdicts = {v.name: v for v in mon.diagnose()}
    mon.close()
    return verdicts


@pytest.fixture(scope="module")
def deep_and_shallow():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(16, 60), _train(5, 60)
    finally:
        torch.set_num_threads(old)


def test_diagnoses_fire_on_the_stuck_deep_gnn(deep_and_shallow):
    deep, _ = deep_and_shallow
    trap = deep["monitor.keriven_trap"]
    assert not trap.holds and trap.details["alarm"]
    since = trap.details["evidence"]["since_step"]
    assert since is not None and 0 < since < 60
    assert trap.details["evidence"]["final_loss"] >= 0.8 * math.log(2)
    assert min(trap.details["evidence"]["drop_factors"]) >= 10
    bo = deep["monitor.backward_oversmoothing"]
    assert not bo.holds and bo.details["evidence"]["ratio"] <= 1e-2
    fo = deep["monitor.forward_oversmoothing"]
    assert not fo.holds and fo.details["evidence"]["fitted_rate"] < 0.8


def test_diagnoses_silent_on_the_shallow_gnn(deep_and_shallow):
    _, shallow = deep_and_shallow
    fired = [n for n, v in shallow.items() if v.details["alarm"]]
    assert fired == []
    assert shallow["monitor.keriven_trap"].details["evidence"]["final_loss"] < 0.5 * math.log(2)
