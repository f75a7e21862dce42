"""Deep GNN signals against autograd and the recursion of Keriven eq. (5); activations and losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gnndyn.data import csbm
from gnndyn.errors import GnndynError, UnknownNameError
from gnndyn.models import ACTIVATIONS, DeepGNN, backward_recursion, get_activation, get_loss
from gnndyn.operators import build_operator


@pytest.fixture(scope="module")
def setup():
    g = csbm(60, 3, p_in=0.3, p_out=0.05, feature_dim=5, feature_sep=2.0, seed=0)
    return g, build_operator("gossip", g)


@pytest.mark.parametrize("act", ["tanh", "shifted-softplus", "identity", "relu"])
@pytest.mark.parametrize("loss_name", ["mse", "cross-entropy"])
@pytest.mark.parametrize("op_name", ["gossip", "random-walk", "identity"])
def test_backward_signals_match_autograd_and_recursion(setup, act, loss_name, op_name):
    g, _ = setup
    op = build_operator(op_name, g)
    model = DeepGNN(5, 7, 3, 4, act, seed=1)
    out = model(op, g.x, keep_signals=True)
    loss = get_loss(loss_name)(out, g.y)
    H = model.signals.H
    # autograd reference for B^(k) = dL/dH^(k)
    ref = torch.autograd.grad(loss, H, retain_graph=True)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    sig = model.signals
    for k in range(model.num_layers):
        torch.testing.assert_close(sig.B[k], ref[k], atol=1e-14, rtol=1e-12)
        # dL/dW^(k) = F^(k)ᵀ B^(k)  (eq. 5)
        torch.testing.assert_close(grads[k], sig.F[k].detach().T @ sig.B[k], atol=1e-14, rtol=1e-12)
    rec = backward_recursion(model, op, sig, sig.B[-1])
    for k in range(model.num_layers):
        torch.testing.assert_close(rec[k], sig.B[k], atol=1e-14, rtol=1e-12)


def test_mse_output_error_is_h_minus_y_over_n(setup):
    g, op = setup
    model = DeepGNN(5, 4, 3, 2, "tanh", seed=0)
    out = model(op, g.x, keep_signals=True)
    get_loss("mse")(out, g.y).backward()
    Y = torch.nn.functional.one_hot(g.y, 3).double()
    torch.testing.assert_close(model.signals.B[-1], (out.detach() - Y) / g.num_nodes)


def test_mlp_is_the_gnn_with_identity(setup):
    g, _ = setup
    mlp_op = build_operator("identity", g)
    model = DeepGNN(5, 4, 3, 3, "tanh", seed=2)
    out = model(mlp_op, g.x)
    h = g.x
    for k, W in enumerate(model.weights):
        h = h @ W
        if k < 3:
            h = torch.tanh(h)
    torch.testing.assert_close(out, h)


def test_depth_and_width_and_seed():
    m = DeepGNN(5, [3, 4], 2, 2, seed=0)
    assert [tuple(w.shape) for w in m.weights] == [(5, 3), (3, 4), (4, 2)]
    a, b = DeepGNN(5, 4, 2, 3, seed=9), DeepGNN(5, 4, 2, 3, seed=9)
    assert all(torch.equal(x, y) for x, y in zip(a.weights, b.weights))
    o = DeepGNN(6, 6, 6, 2, init="orthogonal")
    assert o.spectral_norms() == pytest.approx([1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: DeepGNN(5, 4, 2, -1), "depth must be"),
        (lambda: DeepGNN(5, [3], 2, 2), "2 hidden widths|1 hidden widths"),
        (lambda: DeepGNN(0, 4, 2, 1), "positive"),
        (lambda: DeepGNN(5, 4, 2, 1, init="xavier"), "valid inits"),
    ],
)
def test_model_bad_inputs(call, fragment):
    with pytest.raises(GnndynError, match=fragment):
        call()


def test_wrong_feature_shape_names_both(setup):
    g, op = setup
    with pytest.raises(GnndynError, match=r"\(n, 4\).*\(60, 5\)"):
        DeepGNN(4, 4, 2, 1)(op, g.x)


def test_unknown_activation_lists_valid():
    with pytest.raises(UnknownNameError, match="valid activations: .*tanh"):
        get_activation("tahn")


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivative_and_constants(name):
    act = ACTIVATIONS[name]
    x = torch.linspace(-6, 6, 2001, dtype=torch.float64, requires_grad=True)
    y = act(x)
    (d,) = torch.autograd.grad(y.sum(), x)
    mask = x.detach().abs() > 1e-6  # ReLU-like kinks at 0
    torch.testing.assert_close(act.derivative(x.detach())[mask], d[mask])
    xs = x.detach()
    # Lipschitz constant and ρ(0) = 0 as declared
    assert d.abs().max() <= act.lipschitz + 1e-12
    assert (float(act(torch.zeros(1, dtype=torch.float64))) == 0.0) == act.zero_at_zero
    if act.assumption_2:
        assert (y.detach().abs() <= xs.abs() + 1e-15).all()
    if math.isfinite(act.d_rho) and name != "identity":
        dd = act.derivative(xs)
        slope = ((dd[1:] - dd[:-1]) / (xs[1:] - xs[:-1])).abs().max()
        assert float(slope) <= act.d_rho + 1e-4 and float(slope) >= 0.98 * act.d_rho


def test_relu_violates_assumption_4_softplus_violates_assumption_2():
    assert not get_activation("relu").assumption_4
    assert not get_activation("softplus").assumption_2
    assert get_activation("shifted-softplus").assumption_2 and get_activation("tanh").assumption_4


def test_losses_against_hand_computation():
    out = torch.tensor([[1.0, 2.0], [0.5, -1.0], [0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([1, 0, 1])
    mask = torch.tensor([True, True, False])
    ce = get_loss("cross-entropy")(out, y, mask)
    expected = np.mean([-(2 - np.log(np.exp(1) + np.exp(2))), -(0.5 - np.log(np.exp(0.5) + np.exp(-1)))])
    assert float(ce) == pytest.approx(expected)
    mse = get_loss("mse")(out, y, mask)
    assert float(mse) == pytest.approx(0.5 * ((1 + 1) + (0.25 + 1)) / 2)
    assert get_loss("mse").constants(3) == (1.0, 1.0) and get_loss("cross-entropy").constants(3) == (0.0, 4.0)


def test_loss_errors():
    out = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(GnndynError, match="selects no labelled node"):
        get_loss("mse")(out, torch.tensor([0, 1, 0]), torch.zeros(3, dtype=torch.bool))
    with pytest.raises(GnndynError, match="3 rows.*4"):
        get_loss("cross-entropy")(out, torch.tensor([0, 1, 0, 1]))
    with pytest.raises(UnknownNameError, match="valid losses"):
        get_loss("hinge")
