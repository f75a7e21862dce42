"""Hooks: found, removed by close(), __exit__ and garbage collection; the model untouched; memory flat;
clear errors; live writers."""

from __future__ import annotations

import gc
import io
import math
import warnings
import weakref

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GCNConv

import gnndyn as gd
from gnndyn.errors import GnndynError, UnknownNameError

pytestmark = pytest.mark.usefixtures("one_thread")


class GCN(nn.Module):
    def __init__(self, d_in=5, hidden=8, out=2, depth=3):
        super().__init__()
        dims = [d_in] + [hidden] * (depth - 1) + [out]
        self.convs = nn.ModuleList([GCNConv(dims[k], dims[k + 1]) for k in range(depth)])

    def forward(self, x, edge_index):
        for k, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if k < len(self.convs) - 1:
                x = torch.tanh(x)
        return x


@pytest.fixture
def graph():
    return gd.csbm(40, 2, p_in=0.2, p_out=0.05, feature_dim=5, feature_sep=2.0, seed=0)


def _hook_counts(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._forward_hooks_with_kwargs)
               for m in model.modules())


def _train_step(model, g, mon=None):
    model.zero_grad()
    loss = F.cross_entropy(model(g.x, g.edge_index), g.y)
    loss.backward()
    return mon.step(loss) if mon is not None else None


def test_close_removes_every_hook_and_the_model_is_as_before(graph):
    torch.manual_seed(0)
    model = GCN()
    before = model(graph.x, graph.edge_index).detach().clone()
    assert _hook_counts(model) == 0
    mon = gd.Monitor(model, edge_index=graph.edge_index, schedule="all")
    assert _hook_counts(model) == 1 + 3 + 3  # pre-hook, 3 forward hooks (with kwargs)
    v = _train_step(model, graph, mon)
    assert len(v["smoothing_B"]) == 3 and all(math.isfinite(x) for x in v["smoothing_B"])
    mon.close()
    mon.close()  # idempotent
    assert _hook_counts(model) == 0
    after = model(graph.x, graph.edge_index)
    assert torch.equal(before, after.detach())
    with pytest.raises(GnndynError, match="closed"):
        mon.step(1.0)


def test_context_manager_and_garbage_collection_remove_hooks(graph):
    model = GCN()
    with gd.Monitor(model, edge_index=graph.edge_index) as mon:
        _train_step(model, graph, mon)
        assert _hook_counts(model) == 7
    assert _hook_counts(model) == 0
    mon2 = gd.Monitor(model, edge_index=graph.edge_index)
    _train_step(model, graph, mon2)
    ref = weakref.ref(mon2)
    del mon2
    gc.collect()
    assert ref() is None
    assert _hook_counts(model) == 0
    model.zero_grad()
    out = model(graph.x, graph.edge_index)
    model2 = GCN()
    model2.load_state_dict(model.state_dict())
    assert torch.equal(out, model2(graph.x, graph.edge_index))


def test_model_is_held_weakly(graph):
    model = GCN()
    mon = gd.Monitor(model, edge_index=graph.edge_index)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
    with pytest.raises(GnndynError, match="no longer exists"):
        mon.step(0.5)


def test_output_is_bitwise_unchanged_while_monitored(graph):
    model = GCN()
    plain = model(graph.x, graph.edge_index)
    with gd.Monitor(model, edge_index=graph.edge_index, schedule="all"):
        monitored = model(graph.x, graph.edge_index)
        gp = torch.autograd.grad(plain.sum(), list(model.parameters()))
        gm = torch.autograd.grad(monitored.sum(), list(model.parameters()))
    assert torch.equal(plain, monitored)
    assert all(torch.equal(a, b) for a, b in zip(gp, gm))


def test_no_message_passing_layer_is_a_clear_error():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(GnndynError) as e:
        gd.Monitor(model)
    msg = str(e.value)
    assert "found no torch_geometric MessagePassing layer in Sequential" in msg
    assert "0 (Linear), 1 (ReLU), 2 (Linear)" in msg and "layers=" in msg
    with pytest.raises(UnknownNameError, match="unknown layer 'lin9'; valid layers: 0, 1, 2"):
        gd.Monitor(model, layers=["lin9"])
    with pytest.raises(GnndynError, match="not a submodule"):
        gd.Monitor(model, layers=[nn.Linear(2, 2)])
    with pytest.raises(GnndynError, match="found no module of type Conv1d"):
        gd.Monitor(model, layers=nn.Conv1d)
    with pytest.raises(GnndynError, match="listed twice"):
        gd.Monitor(model, layers=["0", model[0]])
    with pytest.raises(GnndynError, match=r"edge_index must be a \(2, m\) long tensor"):
        gd.Monitor(model, layers=nn.Linear, edge_index=torch.zeros(3, 3))
    with pytest.raises(GnndynError, match="unknown threshold"):
        gd.Monitor(model, layers=nn.Linear, thresholds={"drop": 3})
    with pytest.raises(GnndynError, match="scalar loss"):
        gd.Monitor(model, layers=nn.Linear).step(torch.ones(3))
    assert [x.name for x in gd.Monitor(model, layers=nn.Linear).layers] == ["0", "2"]
    assert [x.name for x in gd.Monitor(model, layers=["2", "0"]).layers] == ["2", "0"]


def test_layers_are_in_forward_order():
    class Backwards(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = GCNConv(8, 2)
            self.a = GCNConv(3, 8)

        def forward(self, x, ei):
            return self.b(torch.relu(self.a(x, ei)), ei)

    g = gd.csbm(20, 2, p_in=0.3, p_out=0.1, feature_dim=3, feature_sep=1.0, seed=1)
    model = Backwards()
    mon = gd.Monitor(model, edge_index=g.edge_index)
    assert [x.name for x in mon.layers] == ["b", "a"]
    with torch.no_grad():  # an evaluation pass records no values, but its calls give the forward order
        model(g.x, g.edge_index)
    assert [x.name for x in mon.layers] == ["a", "b"]
    assert mon._state.forward_values == {} and mon._state.backward_values == {}
    v = _train_step(model, g, mon)
    assert [x.name for x in mon.layers] == ["a", "b"]
    with torch.no_grad():
        h = model.a(g.x, g.edge_index)
    assert v["smoothing_H"][0] == pytest.approx(gd.probes.smoothing(h), rel=1e-12)
    mon.close()


def _live_tensor_state():
    gc.collect()
    with warnings.catch_warnings():  # isinstance on some lazy torch objects warns
        warnings.simplefilter("ignore")
        ts = [o for o in gc.get_objects() if isinstance(o, torch.Tensor)]
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in ts if t.layout == torch.strided}
    return len(ts), sum(storages.values())


def test_memory_is_flat_over_1000_steps():
    g = gd.csbm(30, 2, p_in=0.3, p_out=0.05, feature_dim=4, feature_sep=2.0, seed=0)
    model = GCN(4, 6, 2, depth=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    mon = gd.Monitor(model, edge_index=g.edge_index, schedule="all")

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(g.x, g.edge_index), g.y)
        loss.backward()
        mon.step(loss)
        opt.step()

    for _ in range(10):
        step()
    n0, b0 = _live_tensor_state()
    for _ in range(990):
        step()
    n1, b1 = _live_tensor_state()
    assert mon.num_steps == 1000
    assert (n1, b1) == (n0, b0)
    # per step: loss, global_delta, and per layer 5 measures × 2 signals + gradient norm + spectral norm
    assert len(mon.recorder) == 1000 * (2 + 3 * 12)
    mon.close()


def test_callback_summary_and_returned_values(graph):
    model = GCN()
    seen = []
    buf = io.StringIO()
    mon = gd.Monitor(model, edge_index=graph.edge_index, callback=lambda t, v: seen.append((t, dict(v))),
                     summary_every=2, stream=buf)
    for _ in range(5):
        v = _train_step(model, graph, mon)
    assert [t for t, _ in seen] == list(range(5))
    assert seen[-1][1]["loss"] == v["loss"] and seen[-1][1]["grad_norm"] == v["grad_norm"]
    assert "dirichlet_H" in seen[0][1] and "dirichlet_H" not in seen[1][1]  # every 10 steps by default
    lines = buf.getvalue().splitlines()
    assert [ln.split(" |")[0] for ln in lines] == ["step 0", "step 2", "step 4"]
    assert f"loss {v['loss']:.4g}" in lines[-1] and "ℰ(H) first→last" in lines[-1]
    with pytest.raises(GnndynError, match="callback must be callable"):
        gd.Monitor(model, callback=3)
    mon.close()


def test_tensorboard_writer(graph, tmp_path):
    pytest.importorskip("tensorboard", reason="the optional 'tensorboard' package is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = GCN()
    mon = gd.Monitor(model, edge_index=graph.edge_index, tensorboard=str(tmp_path / "tb"))
    vals = [_train_step(model, graph, mon) for _ in range(3)]
    mon.close()
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"loss", "smoothing_H/layer_00", "smoothing_B/layer_02", "grad_norm/layer_01"} <= set(tags)
    assert [e.value for e in acc.Scalars("loss")] == pytest.approx([v["loss"] for v in vals], rel=1e-6)


def test_tensorboard_missing_is_a_clear_error(graph, monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError("No module named 'tensorboard'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(GnndynError, match=r"needs the 'tensorboard' package.*pip install"):
        gd.Monitor(GCN(), edge_index=graph.edge_index, tensorboard="tb")


def test_save_writes_an_ordinary_run_folder(graph, tmp_path):
    model = GCN()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    mon = gd.Monitor(model, edge_index=graph.edge_index, every=1)
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(model(graph.x, graph.edge_index), graph.y)
        loss.backward()
        mon.step(loss, accuracy=0.5)
        opt.step()
    store = mon.save(str(tmp_path / "run"))
    mon.close()
    for f in ("spec.json", "metrics.parquet", "checks.json", "run.json", "report.html", "tables/layers.parquet",
              "figures/monitor_signals.png", "figures/monitor_training.png"):
        assert (tmp_path / "run" / f).exists(), f
    df = gd.RunStore(tmp_path / "run").metrics()
    assert set(df["series"]) == {"GCN"}
    loss = df[df.quantity == "loss"].sort_values("step")["value"].to_numpy()
    assert loss.size == 30 and loss[-1] < loss[0]
    assert len(df[df.quantity == "accuracy"]) == 30
    assert len(df[(df.quantity == "smoothing_H")]) == 30 * 3
    assert sorted(df[df.quantity == "dirichlet_H"]["step"].unique()) == [0, 10, 20]
    assert sorted(df[df.quantity == "spectral_norm"]["step"].unique()) == [0]
    checks = store.checks()
    assert {c["name"] for c in checks} == {"monitor.forward_oversmoothing", "monitor.backward_oversmoothing",
                                           "monitor.keriven_trap", "monitor.vanishing_gradients",
                                           "monitor.exploding_gradients"}
    assert all("thresholds" in c["details"] and "evidence" in c["details"] for c in checks)
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Keriven, Def. 1, eq. (10) and Thm 3" in html and "monitor_signals" in html
    assert "gnndyn.Monitor" in html and "gnndyn rerun" not in html
