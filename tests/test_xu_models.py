"""Xu et al.'s models (Defs. 1–2 and their ReLU versions) against direct dense implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnndyn.data import csbm
from gnndyn.errors import GnndynError
from gnndyn.models.linear_gnn import XuGNN, XuObjective, make_xu_data, one_hot_columns, propagated_blocks
from gnndyn.operators import build_operator


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def graph():
    return csbm(50, 3, p_in=0.3, p_out=0.06, feature_dim=5, feature_sep=2.0, seed=3).largest_component()


def dense_S(op) -> np.ndarray:
    return op.scipy().toarray()


@pytest.mark.parametrize("opname", ["gcn", "gin", "random-walk"])
def test_blocks_match_dense_powers(graph, opname):
    """G_l = X (S^l)_{*I} (nodes as columns) by both sparse paths equals the dense power."""
    op = build_operator(opname, graph)
    nodes = torch.arange(0, 45, 3)
    X = graph.x.numpy().T  # m_x × n, the paper's X
    S = dense_S(op)
    for path in ("indicator", "features"):
        blocks = propagated_blocks(op, graph.x, nodes, 4, path=path)
        for l, G in enumerate(blocks):
            ref = (X @ np.linalg.matrix_power(S, l))[:, nodes.numpy()]
            np.testing.assert_allclose(G.numpy(), ref, rtol=1e-12, atol=1e-12)


def _dense_forward(model: XuGNN, X: np.ndarray, S: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Eq. (1)/(2)/(4) literally: X^(l) = σ(B^(l) X^(l-1) S), f = W X^(H) or Σ_l W^(l) X^(l)."""
    act = (lambda z: np.maximum(z, 0)) if model.activation == "relu" else (lambda z: z)
    Xl = X
    outs = [model.W[0].detach().numpy() @ Xl] if model.multiscale else []
    for l in range(1, model.depth + 1):
        Xl = act(model.B[l - 1].detach().numpy() @ Xl @ S)
        if model.multiscale:
            outs.append(model.W[l].detach().numpy() @ Xl)
    f = sum(outs) if model.multiscale else model.W[0].detach().numpy() @ Xl
    return f[:, nodes]


@pytest.mark.parametrize("multiscale", [False, True])
@pytest.mark.parametrize("activation", ["linear", "relu"])
@pytest.mark.parametrize("opname", ["gcn", "random-walk"])
def test_forward_matches_definition(graph, multiscale, activation, opname):
    op = build_operator(opname, graph)
    data = make_xu_data(graph.x, op, torch.arange(0, 45, 2))
    model = XuGNN(5, [6, 4, 7], 3, multiscale=multiscale, activation=activation, seed=1)
    ref = _dense_forward(model, graph.x.numpy().T, dense_S(op), data.nodes.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(model(data).numpy(), ref, rtol=1e-11, atol=1e-12)
        if activation == "linear":  # the precomputed blocks and the layer-wise propagation agree
            np.testing.assert_allclose(model(data, full_graph=True).numpy(), ref, rtol=1e-11, atol=1e-12)


def test_relu_gradient_through_sparse_features(graph):
    """The first ReLU layer uses a CSR product with a cached transpose: its gradient equals the dense one."""
    op = build_operator("gcn", graph)
    x = graph.x.clone()
    x[x.abs() < 2.2] = 0.0  # sparse enough for the CSR path
    data = make_xu_data(x, op, torch.arange(graph.num_nodes))
    model = XuGNN(5, [4], 3, activation="relu", seed=2)
    obj = XuObjective("cross-entropy", graph.y, 3)
    g1 = torch.autograd.grad(obj(model(data)), list(model.parameters()))
    assert isinstance(data._x_sparse[torch.float64][1], torch.Tensor)
    S = torch.from_numpy(dense_S(op))
    h = torch.relu(S.T @ (x @ model.B[0].T))
    g2 = torch.autograd.grad(obj(model.W[0] @ h.T), list(model.parameters()))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-13)


def test_squared_loss_has_no_half_and_no_mean():
    labels = torch.tensor([0, 2, 1, 2])
    Y = one_hot_columns(labels, 3)
    assert Y.shape == (3, 4) and torch.equal(Y.sum(0), torch.ones(4, dtype=Y.dtype))
    pred = torch.zeros(3, 4, dtype=torch.float64)
    assert float(XuObjective("squared", labels, 3)(pred)) == pytest.approx(4.0)  # ‖0 − Y‖²_F = n̄
    ce = XuObjective("cross-entropy", labels, 3)(pred)
    assert float(ce) == pytest.approx(np.log(3.0))


def test_bad_inputs_are_clear_errors(graph):
    op = build_operator("gcn", graph)
    with pytest.raises(GnndynError, match="valid activations"):
        XuGNN(5, [4], 3, activation="tanh")
    data = make_xu_data(graph.x, op, torch.arange(10))
    with pytest.raises(GnndynError, match="expects 6 input features"):
        XuGNN(6, [4], 3)(data)
    with pytest.raises(GnndynError, match="m_y × n̄"):
        XuObjective("squared", graph.y[:10], 3)(torch.zeros(3, 9, dtype=torch.float64))
    with pytest.raises(GnndynError, match="valid losss|valid loss"):
        XuObjective("hinge", graph.y[:10], 3)
