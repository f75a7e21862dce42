"""Patel et al.'s linear GNN (Xu et al.'s model with loss 1/m‖·‖²), its starts and the normalized flow."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnndyn.data import csbm
from gnndyn.errors import GnndynError
from gnndyn.models.linear_gnn import XuGNN, XuObjective, make_xu_data
from gnndyn.models.patel import layer_arrays, layers, patel_gnn, patel_objective, propagated, set_layers, widths_report, z_data
from gnndyn.models.patel_init import balanced, make_init, small_random, xavier, zero_first_layer
from gnndyn.operators import build_operator
from gnndyn.theory.patel import energy as E
from gnndyn.theory.patel.problem import beta, end_to_end, gradients, make_problem, radius
from gnndyn.training.flow import layer_normalized, normalized_flow

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def graph_setup():
    g = csbm(30, 2, p_in=0.3, p_out=0.05, feature_dim=5, feature_sep=1.0, seed=3)
    nodes = torch.arange(0, 30, 2)
    rng = np.random.default_rng(0)
    Y = torch.from_numpy(rng.standard_normal((2, nodes.numel())))
    return g, nodes, Y


@pytest.mark.parametrize("op_name", ["adjacency", "laplacian", "gcn", "random-walk"])
def test_z_form_equals_gnn_form_loss_and_gradients(graph_setup, op_name):
    """f_{*I} through the whole graph (X_ℓ = W_ℓX_{ℓ−1}S) = W_{H+1}⋯W_1·Z with Z = (XS^H)_{*I}: losses and every
    gradient agree in float64, and both agree with the closed-form gradients (3.4)."""
    g, nodes, Y = graph_setup
    data = make_xu_data(g.x, build_operator(op_name, g), nodes)
    Ws = xavier((5, 4, 3, 2), seed=1)
    model = patel_gnn(5, [4, 3], 2, weights=Ws)
    obj = patel_objective(Y)
    L_z = obj(model(data))
    g_z = torch.autograd.grad(L_z, layers(model))
    L_g = obj(model(data, full_graph=True))
    g_g = torch.autograd.grad(L_g, layers(model))
    assert float(L_g.detach()) == pytest.approx(float(L_z.detach()), rel=1e-12)
    for a, b in zip(g_z, g_g):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-13 * float(b.abs().max()))
    prob = make_problem(propagated(data, 2), Y, [4, 3])
    for a, b in zip(g_z, gradients(prob, Ws)):
        np.testing.assert_allclose(a.numpy(), b, rtol=1e-10, atol=1e-13 * np.abs(b).max())
    # the value itself: (1/m)‖W3W2W1 Z − Y‖², m = n̄ d_y, no ½
    Z = propagated(data, 2)
    ref = ((end_to_end(Ws) @ Z - Y.numpy()) ** 2).sum() / (Y.shape[1] * 2)
    assert float(L_z.detach()) == pytest.approx(ref, rel=1e-13)


def test_loss_scale_default_is_xu_loss_bit_for_bit():
    labels = torch.tensor([0, 2, 1, 1])
    pred = torch.randn(3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    plain = XuObjective("squared", labels, 3)(pred)
    assert float(plain) == float(((pred - torch.eye(3, dtype=torch.float64)[:, labels]) ** 2).sum())
    scaled = XuObjective("squared", labels, 3, loss_scale=0.25)(pred)
    assert float(scaled) == pytest.approx(float(plain) / 4, rel=1e-15)
    with pytest.raises(GnndynError, match="loss_scale"):
        XuObjective("squared", labels, 3, loss_scale=0.0)
    with pytest.raises(GnndynError, match="squared"):
        XuObjective("cross-entropy", None, 2, targets=torch.zeros(2, 4))


def test_z_data_is_the_deep_linear_network_on_z():
    rng = np.random.default_rng(1)
    Z, Y = rng.standard_normal((4, 9)), rng.standard_normal((1, 9))
    data = z_data(Z)
    Ws = xavier((4, 3, 1), seed=2)
    model = patel_gnn(4, [3], 1, weights=Ws)
    assert np.allclose(propagated(data, 3), Z)
    expected = ((Ws[1] @ Ws[0] @ Z - Y) ** 2).sum() / 9
    assert float(patel_objective(Y)(model(data)).detach()) == pytest.approx(expected, rel=1e-13)
    assert float(patel_objective(Y)(model(data, full_graph=True)).detach()) == pytest.approx(expected, rel=1e-13)


def test_widths_assumption_and_bottleneck():
    assert widths_report(50, [32, 32], 1).non_increasing and not widths_report(50, [32, 32], 1).bottleneck
    with pytest.raises(GnndynError, match="non-increasing"):
        patel_gnn(5, [2, 3], 1)
    w = widths_report(5, [1, 3], 3)  # d_1 = 1 < min(d_x, d_y) = 3
    assert w.bottleneck and not w.non_increasing and w.rank_cap == 1
    model = patel_gnn(5, [1, 3], 3, allow_increasing=True)
    assert [tuple(p.shape) for p in layers(model)] == [(1, 5), (3, 1), (3, 3)]
    with pytest.raises(GnndynError, match="W_2 must be"):
        set_layers(model, [np.zeros((1, 5)), np.zeros((2, 1)), np.zeros((3, 3))])


def test_remark33_start_values_and_beta():
    dims = (6, 5, 4, 3, 2)
    Ws = zero_first_layer(dims, a=2.5)
    assert np.all(Ws[0] == 0) and Ws[0].shape == (5, 6)
    assert np.array_equal(Ws[1], np.eye(4, 5)) and np.array_equal(Ws[2], np.eye(3, 4))
    assert np.array_equal(Ws[3], 2.5 * np.eye(2, 3))
    H = 3
    assert beta(Ws) == pytest.approx(2.5 ** 2 / 4 ** (H - 1), rel=1e-14)
    assert radius(Ws) == pytest.approx(0.5)
    assert make_init("zero-first", dims, a=2.5)[3][1, 1] == 2.5
    with pytest.raises(GnndynError, match="valid"):
        make_init("glorot-ish", dims)


@pytest.mark.parametrize("dims", [(6, 5, 4, 2), (3, 3, 3), (8, 6, 6, 5, 1), (4, 7, 7, 2)])
def test_balanced_start_to_machine_precision(dims):
    Ws = balanced(dims, scale=1.7, seed=4)
    assert E.balance_residual(Ws) <= 1e-12
    for l in range(len(Ws) - 1):  # Def. 4.1 entrywise
        a, b = Ws[l] @ Ws[l].T, Ws[l + 1].T @ Ws[l + 1]
        assert np.abs(a - b).max() <= 1e-12 * np.abs(a).max()
    k = min(dims)
    for w in Ws:  # Remark 4.3: the same non-zero singular values
        s = np.linalg.svd(w, compute_uv=False)
        np.testing.assert_allclose(s[:k], 1.7, rtol=1e-12)
        assert np.all(s[k:] < 1e-12)


def test_balanced_factorization_of_a_product_and_condition_2():
    rng = np.random.default_rng(5)
    P = rng.standard_normal((2, 5))
    Ws = balanced((5, 4, 3, 2), product=P, seed=1)
    np.testing.assert_allclose(end_to_end(Ws), P, rtol=0, atol=1e-13 * np.abs(P).max())
    assert E.balance_residual(Ws) <= 1e-12
    sv = np.linalg.svd(P, compute_uv=False)
    np.testing.assert_allclose(np.linalg.svd(Ws[0], compute_uv=False)[:2], sv ** (1 / 3), rtol=1e-12)
    # condition 2 of Thm 4.4: W_1 has no component outside the column space of a rank-3 Z
    Z = rng.standard_normal((6, 3)) @ rng.standard_normal((3, 10))
    Wc = balanced((6, 4, 4, 1), column_space=Z, seed=2)
    U = np.linalg.svd(Z)[0]
    assert np.abs(Wc[0] @ U[:, 3:]).max() <= 1e-13 * np.abs(Wc[0]).max()
    assert np.abs(Wc[0] @ U[:, :3]).max() > 0.1 * np.abs(Wc[0]).max()
    with pytest.raises(GnndynError, match="balanced rank"):
        balanced((6, 4, 4, 1), column_space=Z, rank=4)


def test_random_starts_are_seeded_and_scaled():
    a, b = xavier((50, 32, 32, 1), seed=0), xavier((50, 32, 32, 1), seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    big = xavier((400, 300, 1), seed=1)[0]
    assert big.std() == pytest.approx(np.sqrt(2 / 700), rel=0.02)
    s = small_random((400, 300, 1), scale=1e-3, seed=1)[0]
    assert s.std() == pytest.approx(1e-3, rel=0.02)


def test_normalized_flow_has_unit_speed_per_layer():
    """Remark 6.1: ‖dW_ℓ/dt‖_F = 1 for every layer with a non-zero gradient, measured from the integrated path
    (displacement over short intervals / their length, the arc being nearly straight) and from the field itself."""
    rng = np.random.default_rng(7)
    Z, Y = rng.standard_normal((5, 12)), rng.standard_normal((2, 12))
    data, obj = z_data(Z), patel_objective(Y)
    model = patel_gnn(5, [4, 3], 2, weights=xavier((5, 4, 3, 2), seed=3))
    g = torch.cat([x.reshape(-1) for x in torch.autograd.grad(obj(model(data)), layers(model))])
    sizes = [p.numel() for p in layers(model)]
    assert [float(torch.linalg.norm(c)) for c in torch.split(layer_normalized(g, sizes), sizes)] == pytest.approx([1.0] * 3, rel=1e-14)
    z = layer_normalized(torch.cat([torch.zeros(3), torch.ones(2)]), [3, 2])
    assert torch.equal(z[:3], torch.zeros(3)) and float(torch.linalg.norm(z[3:])) == pytest.approx(1.0)
    before = layer_arrays(model)
    dt = 1e-3
    r = normalized_flow(model, lambda m: obj(m(data)), np.array([0.0, dt]), method="rk4", step_size=dt / 20)
    after = layer_arrays(model)
    speeds = [np.linalg.norm(b - a) / dt for a, b in zip(before, after)]
    assert speeds == pytest.approx([1.0] * 3, abs=2e-3)
    assert all(s <= 1.0 + 1e-12 for s in speeds)  # a chord is never longer than its arc
    assert r.losses[1] < r.losses[0]
