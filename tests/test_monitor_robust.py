"""The monitor on the models and loops users write: layers without gradients (APPNP, frozen layers, steps without
backward), half precision, activation checkpointing, a layer shared across depth, copies and pickles of a monitored
model, ModuleList layers, graphs changed in place, kept signals under in-place activations, float32 cancellation,
reserved scalar names and a grad-enabled evaluation pass. Each value is checked against a direct computation."""

from __future__ import annotations

import copy
import io
import math
import pickle
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch_geometric.nn import APPNP, GCNConv

import gnndyn as gd
from gnndyn.errors import GnndynError
from gnndyn.monitor import measures, quantities
from gnndyn.monitor.diagnoses import Thresholds, diagnose
from gnndyn.monitor.layers import display_name
from gnndyn.store.metrics import Recorder

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def graph():
    return gd.csbm(40, 2, p_in=0.2, p_out=0.05, feature_dim=5, feature_sep=2.0, seed=0)


class GCN(nn.Module):
    def __init__(self, d_in=5, hidden=8, out=2, depth=3, ckpt=None):
        super().__init__()
        dims = [d_in] + [hidden] * (depth - 1) + [out]
        self.convs = nn.ModuleList([GCNConv(dims[k], dims[k + 1]) for k in range(depth)])
        self.ckpt = ckpt

    def forward(self, x, edge_index):
        for k, conv in enumerate(self.convs):
            # (the first layer is not checkpointed: reentrant checkpointing needs an input that requires grad)
            x = conv(x, edge_index) if self.ckpt is None or k == 0 else \
                checkpoint(conv, x, edge_index, use_reentrant=self.ckpt)
            if k < len(self.convs) - 1:
                x = torch.tanh(x)
        return x


def _step(model, g, mon, *, backward=True, loss=True):
    model.zero_grad()
    out = model(g.x, g.edge_index)
    L = F.cross_entropy(out, g.y)
    if backward:
        L.backward()
    return mon.step(L if loss else None)


def _by_name(verdicts):
    return {v.name.split(".", 1)[1]: v for v in verdicts}


def _E(X: torch.Tensor) -> float:
    X = X.detach().double()
    return float(torch.linalg.norm(X - X.mean(0)) / math.sqrt(X.shape[0]))


# ------------------------------------------------------------------ layers without a gradient
class GCNThenPropagation(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.prop = GCNConv(5, 8), GCNConv(8, 2), APPNP(K=3, alpha=0.1)

    def forward(self, x, ei):
        return self.prop(self.c2(torch.tanh(self.c1(x, ei)), ei), ei)


def test_a_layer_without_parameters_is_left_out_of_the_gradient_diagnoses(graph, tmp_path):
    torch.manual_seed(0)
    model = GCNThenPropagation()
    mon = gd.Monitor(model, edge_index=graph.edge_index)
    for _ in range(15):
        v = _step(model, graph, mon)
    assert math.isnan(v["grad_norm"][2]) and all(x > 0 for x in v["grad_norm"][:2])
    by = _by_name(mon.diagnose())
    # the reference layer of the ratios is the last layer with a gradient, layer 1
    ev = by["vanishing_gradients"].details["evidence"]
    assert ev["reference_layer"] == 1 and set(ev["median_ratio_per_layer"]) == {0, 1}
    assert ev["median_ratio_per_layer"][1] == pytest.approx(1.0)
    assert not by["exploding_gradients"].details["alarm"] and not ev["nonfinite"]
    assert by["keriven_trap"].applicable
    store = mon.save(tmp_path / "run")
    assert {p.stem for p in store.figures()} >= {"monitor_signals", "monitor_training"}
    mon.close()


def test_a_frozen_first_layer_raises_no_false_alarm_and_keeps_the_backward_diagnosis(graph):
    torch.manual_seed(0)
    model = GCN(depth=4)
    for p in model.convs[0].parameters():
        p.requires_grad_(False)
    mon = gd.Monitor(model, edge_index=graph.edge_index)
    for _ in range(12):
        v = _step(model, graph, mon)
    assert math.isnan(v["grad_norm"][0]) and math.isnan(v["smoothing_B"][0])  # layer 0's output needs no gradient
    by = _by_name(mon.diagnose())
    assert by["backward_oversmoothing"].applicable
    B = v["smoothing_B"]
    assert by["backward_oversmoothing"].details["evidence"]["ratio"] == pytest.approx(min(B[1:3]) / B[3], rel=1e-12)
    assert by["backward_oversmoothing"].details["evidence"]["layer_of_min"] == 1 + int(np.argmin(B[1:3]))
    assert not by["exploding_gradients"].details["alarm"]
    mon.close()


def test_steps_without_backward_or_loss_are_diagnosed_as_not_applicable(graph, tmp_path):
    torch.manual_seed(0)
    model = GCN()
    mon = gd.Monitor(model, edge_index=graph.edge_index)
    for _ in range(12):
        _step(model, graph, mon, backward=False, loss=False)
    by = _by_name(mon.diagnose())
    assert not by["keriven_trap"].applicable and not by["vanishing_gradients"].applicable
    assert not by["exploding_gradients"].applicable and not by["backward_oversmoothing"].applicable
    assert not any(v.details["alarm"] for v in by.values())
    mon.save(tmp_path / "run")
    mon.close()
    # a loss without backward: no divergence is claimed from a missing loss either
    mon = gd.Monitor(model, edge_index=graph.edge_index)
    for _ in range(12):
        _step(model, graph, mon, loss=False)
    ex = _by_name(mon.diagnose())["exploding_gradients"]
    assert ex.applicable and not ex.details["alarm"] and "diverged" not in ex.where
    mon.close()


def test_grad_norm_is_nan_without_a_gradient_and_inf_for_a_non_finite_one():
    a, b = nn.Parameter(torch.tensor([3.0, 4.0])), nn.Parameter(torch.tensor([12.0]))
    assert math.isnan(quantities.grad_norm([a, b]))
    a.grad, b.grad = torch.tensor([3.0, 4.0]), torch.tensor([12.0])
    assert quantities.grad_norm([a, b]) == 13.0
    a.grad = torch.tensor([1e200, 1e200], dtype=torch.float64)  # squares overflow, the norm does not
    assert quantities.grad_norm([a]) == pytest.approx(math.sqrt(2) * 1e200, rel=1e-15)
    a.grad = torch.tensor([float("nan"), 1.0])
    assert quantities.grad_norm([a, b]) == math.inf


def test_a_non_finite_gradient_is_an_exploding_alarm():
    rec = Recorder()
    for t in range(12):
        rec.add_values("m", 0, t, {"loss": 1.0, "grad_norm": [1.0, math.inf if t == 11 else 1.0, 1.0]})
    ex = _by_name(diagnose(rec.frame(), Thresholds()))["exploding_gradients"]
    assert ex.details["alarm"] and ex.details["evidence"]["nonfinite"] and "not finite" in ex.where


# ------------------------------------------------------------------ precision
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_models_are_measured_in_float64(graph, dtype):
    torch.manual_seed(0)
    model = GCN().to(dtype)
    x = graph.x.to(dtype)
    mon = gd.Monitor(model, edge_index=graph.edge_index, schedule="all", keep_signals=True)
    model.zero_grad()
    out = model(x, graph.edge_index)
    F.cross_entropy(out.float(), graph.y).backward()
    v = mon.step()
    H0 = mon.signals.H[0]
    assert H0.dtype == dtype
    assert v["smoothing_H"][0] == pytest.approx(_E(H0), rel=1e-12)
    ei = graph.edge_index
    H64 = H0.double()
    direct = 0.5 * float(((H64[ei[0]] - H64[ei[1]]) ** 2).sum())
    assert v["dirichlet_H"][0] == pytest.approx(direct, rel=1e-10)
    W = model.convs[0].lin.weight.detach().double()
    assert v["spectral_norm"][0] == pytest.approx(float(torch.linalg.matrix_norm(W, ord=2)), rel=1e-12)
    mon.close()


def test_float32_signals_lose_no_digits_to_cancellation():
    # a smooth signal on a path: ½Σdeg‖x‖² and ⟨X, MX⟩ agree to 6 digits, so float32 arithmetic would lose them all
    n = 2000
    r = torch.arange(n - 1)
    ei = torch.cat([torch.stack([r, r + 1]), torch.stack([r + 1, r])], 1)
    t = torch.linspace(0, 1, n, dtype=torch.float64)[:, None]
    X = (torch.sin(3 * t + torch.arange(16.0, dtype=torch.float64)) + 5.0).float()
    X64 = X.double()
    direct = 0.5 * float(((X64[ei[0]] - X64[ei[1]]) ** 2).sum())
    got = measures.dirichlet_sparse(X, measures.Adjacency(ei, n, X.device))
    assert got == pytest.approx(direct, rel=1e-9)
    # nearly parallel rows: MAD ≈ 10⁻⁶; float32 sums would leave 10⁻⁶ relative error at best
    rng = np.random.default_rng(0)
    Y = torch.tensor(1.0 + 1e-3 * rng.standard_normal((300, 8)), dtype=torch.float32)
    assert measures.mad(Y) == pytest.approx(measures.mad_pairwise(Y.double()), rel=1e-8)


# ------------------------------------------------------------------ checkpointing, shared layers
@pytest.mark.parametrize("reentrant", [True, False])
def test_activation_checkpointing_records_the_same_layers_in_forward_order(graph, reentrant):
    vals = {}
    for ckpt in (None, reentrant):
        torch.manual_seed(0)
        model = GCN(depth=4, ckpt=ckpt)
        mon = gd.Monitor(model, edge_index=graph.edge_index, schedule="all")
        vals[ckpt] = _step(model, graph, mon), [x.name for x in mon.layers]
        mon.close()
    (ref, ref_names), (got, names) = vals[None], vals[reentrant]
    assert names == ref_names == ["convs.0", "convs.1", "convs.2", "convs.3"]
    for q in ("smoothing_H", "smoothing_B", "grad_norm", "dirichlet_B"):
        np.testing.assert_allclose(got[q], ref[q], rtol=1e-6)


def test_a_layer_called_several_times_is_measured_at_its_first_call(graph):
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp, self.conv, self.head = nn.Linear(5, 8), GCNConv(8, 8), GCNConv(8, 2)

        def forward(self, x, ei, keep=None):
            h = self.inp(x)
            for _ in range(3):
                h = torch.tanh(self.conv(h, ei))
                if keep is not None:
                    keep.append(h)
            return self.head(h, ei)

    torch.manual_seed(0)
    model = Shared()
    mon = gd.Monitor(model, edge_index=graph.edge_index)
    with pytest.warns(UserWarning, match="'conv' was called more than once in one forward pass"):
        v = _step(model, graph, mon)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per monitor
        _step(model, graph, mon)
    mon.close()
    # direct: the first call's output and ∂𝓛/∂(that output)
    calls = []
    orig = model.conv.forward

    def spy(*a, **k):
        out = orig(*a, **k)
        out.retain_grad()
        calls.append(out)
        return out

    model.conv.forward = spy
    model.zero_grad()
    F.cross_entropy(model(graph.x, graph.edge_index), graph.y).backward()
    assert len(calls) == 3
    assert v["smoothing_H"][0] == pytest.approx(_E(calls[0]), rel=1e-12)
    assert v["smoothing_B"][0] == pytest.approx(_E(calls[0].grad), rel=1e-12)
    assert v["smoothing_H"][0] != pytest.approx(_E(calls[2]), rel=1e-3)
    assert v["smoothing_B"][0] != pytest.approx(_E(calls[2].grad), rel=1e-3)


# ------------------------------------------------------------------ copies and pickles
def test_a_copy_of_a_monitored_model_is_not_monitored_and_pickles(graph):
    torch.manual_seed(0)
    model = GCN()
    mon = gd.Monitor(model, edge_index=graph.edge_index)
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for p in twin.parameters():
            p.zero_()
    model.zero_grad()
    out = model(graph.x, graph.edge_index)
    twin(graph.x, graph.edge_index)  # a forward of the copy between the model's forward and step
    F.cross_entropy(out, graph.y).backward()
    v = mon.step()
    with torch.no_grad():
        h0 = model.convs[0](graph.x, graph.edge_index)
    assert v["smoothing_H"][0] == pytest.approx(_E(h0), rel=1e-12)
    assert not any(math.isnan(b) for b in v["smoothing_B"])
    buf = io.BytesIO()
    torch.save(model, buf)
    blob = pickle.dumps(model)
    mon.close()
    for again in (pickle.loads(blob), torch.load(io.BytesIO(buf.getvalue()), weights_only=False)):
        torch.testing.assert_close(again(graph.x, graph.edge_index), model(graph.x, graph.edge_index), rtol=0, atol=0)


# ------------------------------------------------------------------ arguments
def test_a_module_list_given_as_layers_is_its_children(graph):
    model = GCN()
    for arg in (model.convs, [model.convs], "convs", ["convs"]):
        mon = gd.Monitor(model, layers=arg, edge_index=graph.edge_index)
        assert [x.name for x in mon.layers] == ["convs.0", "convs.1", "convs.2"]
        mon.close()
    with pytest.raises(GnndynError, match=r"layers must be a list of modules or of names.*got int"):
        gd.Monitor(model, layers=3)


def test_a_same_named_class_is_pointed_out():
    from torch_geometric.nn import MLP

    with pytest.raises(GnndynError, match=r"torch_geometric\.nn\.dense\.linear\.Linear \(you gave torch\.nn\.modules"):
        gd.Monitor(MLP([4, 8, 2]), layers=nn.Linear)


def test_layer_names_as_shown():
    conv = GCNConv(3, 3)
    assert display_name("", conv) == "GCNConv" and display_name("_orig_mod.convs.0", conv) == "convs.0"
    mon = gd.Monitor(conv)
    assert [x.name for x in mon.layers] == ["GCNConv"]
    mon.close()


def test_a_scalar_may_not_take_a_quantity_name(graph):
    model = GCN()
    mon = gd.Monitor(model, edge_index=graph.edge_index)
    for name in ("smoothing_H", "grad_norm", "global_delta"):
        with pytest.raises(GnndynError, match=f"'{name}' is a quantity the monitor records itself"):
            mon.step(**{name: 1.0})
    assert mon.num_steps == 0
    mon.step(accuracy=0.5)
    mon.close()


# ------------------------------------------------------------------ graphs and kept signals
def test_a_graph_changed_in_place_is_read_again(graph):
    torch.manual_seed(0)
    model = GCN()
    ei = graph.edge_index.clone()
    mon = gd.Monitor(model, edge_index=ei, schedule="all")
    got = []
    for shift in (0, 7):
        if shift:
            ei.copy_((graph.edge_index + shift) % graph.num_nodes)
        model.zero_grad()
        out = model(graph.x, ei)
        F.cross_entropy(out, graph.y).backward()
        got.append(mon.step()["dirichlet_H"][0])
        with torch.no_grad():
            h = model.convs[0](graph.x, ei).double()
        assert got[-1] == pytest.approx(0.5 * float(((h[ei[0]] - h[ei[1]]) ** 2).sum()), rel=1e-10)
    mon.close()


def test_kept_signals_are_not_overwritten_by_in_place_activations(graph):
    class InPlace(GCN):
        def forward(self, x, edge_index):
            for k, conv in enumerate(self.convs):
                x = conv(x, edge_index)
                if k < len(self.convs) - 1:
                    x = x.relu_()
            return x

    torch.manual_seed(0)
    model = InPlace()
    mon = gd.Monitor(model, edge_index=graph.edge_index, keep_signals=True)
    v = _step(model, graph, mon)
    H0 = mon.signals.H[0]
    assert float(H0.min()) < 0  # the layer's output, before the ReLU changed it in place
    assert _E(H0) == pytest.approx(v["smoothing_H"][0], rel=1e-12)
    mon.close()


def test_a_grad_enabled_evaluation_pass_before_step_warns(graph):
    torch.manual_seed(0)
    model = GCN()
    mon = gd.Monitor(model, edge_index=graph.edge_index)
    model.zero_grad()
    F.cross_entropy(model(graph.x, graph.edge_index), graph.y).backward()
    model(graph.x, graph.edge_index)  # evaluation without torch.no_grad()
    with pytest.warns(UserWarning, match="had no backward pass"):
        v = mon.step()
    assert "smoothing_B" not in v
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an ordinary step and gradient accumulation do not warn
        _step(model, graph, mon)
        model.zero_grad()
        for _ in range(2):
            F.cross_entropy(model(graph.x, graph.edge_index), graph.y).backward()
        mon.step()
    mon.close()


# ------------------------------------------------------------------------------------------ torch.compile
class _TwoGCN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = GCNConv(8, 16), GCNConv(16, 3)

    def forward(self, x, ei):
        return self.c2(torch.tanh(self.c1(x, ei)), ei)


def _monitored_steps(compiled: bool):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    x, ei = torch.randn(30, 8, generator=gen), torch.randint(0, 30, (2, 100), generator=gen)
    y = torch.randint(0, 3, (30,), generator=gen)
    model = _TwoGCN()
    mon = gd.Monitor(model, edge_index=ei)
    run = torch.compile(model, backend="eager") if compiled else model
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        loss = F.cross_entropy(run(x, ei), y)
        loss.backward()
        mon.step(loss)
        opt.step()
    return mon, model, x, ei


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")  # dynamo's own tracing
def test_a_compiled_monitored_model_records_the_same_numbers_and_no_hook_breaks_its_graph():
    """The hooks are excluded from torch.compile (they read numbers with float()): a model compiled after
    monitoring records what the eager model records, and dynamo's graph breaks are the layers' own (PyG's
    self-loop code), none inside gnndyn."""
    eager = _monitored_steps(False)[0].frame()
    mon, model, x, ei = _monitored_steps(True)  # the monitor stays alive: its hooks measure below
    compiled = mon.frame()
    assert len(eager) == len(compiled) > 0
    np.testing.assert_allclose(compiled["value"].to_numpy(), eager["value"].to_numpy(), rtol=1e-6, atol=1e-12)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model)(x, ei)
    frames = [str(f.filename).replace("\\", "/") for r in explained.break_reasons for f in r.user_stack]
    assert frames and not [f for f in frames if "/gnndyn/" in f and "site-packages" not in f], frames
