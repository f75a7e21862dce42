"""Second derivatives through the sparse product and the fused deep GNN: Hessian-vector products (the
double backward that sharpness needs) against the Hessian of the dense definition, for symmetric and
non-symmetric operators, both memory modes and the unfused model; the probes a differentiable backward
records against those of the fused backward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnndyn.data import csbm
from gnndyn.models import DeepGNN, get_loss
from gnndyn.operators import build_operator, propagate
from gnndyn.training.flow import hessian_top_eigenvalue


@pytest.fixture(scope="module")
def g():
    return csbm(24, 2, p_in=0.4, p_out=0.1, feature_dim=3, feature_sep=2.0, seed=1)


def _dense(op) -> torch.Tensor:
    return torch.from_numpy(op.scipy().toarray())


@pytest.mark.parametrize("name", ["gossip", "random-walk"])
def test_propagate_has_a_second_derivative_equal_to_the_dense_one(g, name):
    """f(x) = Σ c ∘ tanh(S x): ∇²f v by double backward through the sparse product against the
    Hessian of the same f with a dense S."""
    op = build_operator(name, g)
    S = _dense(op)
    gen = torch.Generator().manual_seed(0)
    c = torch.randn(g.num_nodes, 2, generator=gen, dtype=torch.float64)
    x0 = torch.randn(g.num_nodes, 2, generator=gen, dtype=torch.float64)
    v = torch.randn(g.num_nodes, 2, generator=gen, dtype=torch.float64)
    x = x0.clone().requires_grad_(True)
    (gx,) = torch.autograd.grad((c * torch.tanh(propagate(op, x))).sum(), x, create_graph=True)
    (hv,) = torch.autograd.grad(gx, x, grad_outputs=v)
    H = torch.autograd.functional.hessian(lambda z: (c * torch.tanh(S @ z)).sum(), x0)
    ref = H.reshape(x0.numel(), x0.numel()) @ v.reshape(-1)
    torch.testing.assert_close(hv.reshape(-1), ref, atol=1e-13, rtol=1e-11)


def _dense_loss(model: DeepGNN, S: torch.Tensor, x: torch.Tensor, y: torch.Tensor):
    """The MSE loss of Keriven eq. (1) with a dense P, as a function of the flattened weights."""
    sizes = [W.numel() for W in model.weights]
    shapes = [W.shape for W in model.weights]

    def f(theta: torch.Tensor) -> torch.Tensor:
        X = x
        for k, (w, shape) in enumerate(zip(torch.split(theta, sizes), shapes)):
            H = (S @ X) @ w.view(shape)
            if k < model.depth:
                X = model.act(H)
        return (H - y).square().mean()

    return f


CASES = [(False, "speed"), (True, "speed"), (True, "low")]


@pytest.mark.parametrize("fused,memory", CASES)
@pytest.mark.parametrize("act", ["tanh", "relu", "shifted-softplus"])
@pytest.mark.parametrize("name", ["gossip", "random-walk"])
def test_hessian_vector_products_of_the_deep_gnn_match_the_dense_hessian(g, name, act, fused, memory):
    op = build_operator(name, g)
    S = _dense(op)
    y = torch.randn(g.num_nodes, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    model = DeepGNN(3, 4, 2, 2, act, seed=2, fused=fused, memory=memory)
    params = list(model.parameters())
    theta = torch.cat([p.detach().reshape(-1) for p in params])
    H = torch.autograd.functional.hessian(_dense_loss(model, S, g.x, y), theta)
    v = torch.randn(theta.numel(), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for _ in range(2):  # the second pass runs on the model's reused buffers
        loss = (model(op, g.x) - y).square().mean()
        grads = torch.autograd.grad(loss, params, create_graph=True)
        gflat = torch.cat([q.reshape(-1) for q in grads])
        hv = torch.cat([h.reshape(-1) for h in torch.autograd.grad(gflat, params, grad_outputs=v)])
        torch.testing.assert_close(hv, H @ v, atol=1e-13, rtol=1e-10)
        g_first = torch.autograd.grad((model(op, g.x) - y).square().mean(), params)
        torch.testing.assert_close(gflat.detach(), torch.cat([q.reshape(-1) for q in g_first]), atol=1e-15, rtol=1e-13)


@pytest.mark.parametrize("fused,memory", CASES)
def test_sharpness_of_the_deep_gnn_is_the_top_eigenvalue_of_the_dense_hessian(g, fused, memory):
    op = build_operator("random-walk", g)
    y = torch.randn(g.num_nodes, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    model = DeepGNN(3, 4, 2, 2, "tanh", seed=2, fused=fused, memory=memory)
    lam, _ = hessian_top_eigenvalue(model, lambda m: (m(op, g.x) - y).square().mean(), iters=2000, tol=1e-14)
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    H = torch.autograd.functional.hessian(_dense_loss(model, _dense(op), g.x, y), theta)
    assert lam == pytest.approx(float(torch.linalg.eigvalsh(H)[-1]), rel=1e-8)


@pytest.mark.parametrize("memory", ["speed", "low"])
def test_a_differentiable_backward_records_the_probes_of_the_fused_one(g, memory):
    """create_graph=True takes the replayed backward; its record (forward numbers, deferred ones, ℰ(B),
    ‖1ᵀB‖, gradient norms) equals the fused backward's to rounding."""
    from gnndyn.models.fused import STATS

    op = build_operator("gossip", g)
    loss = get_loss("cross-entropy")
    recs = []
    for create in (False, True):
        m = DeepGNN(3, 5, 2, 3, "tanh", seed=5, memory=memory)
        out = m(op, g.x, stats=STATS)
        torch.autograd.grad(loss(out, g.y), list(m.parameters()), create_graph=create)
        recs.append(m.signals.stats)
    assert set(recs[0]) == set(recs[1]) == set(STATS)
    for key in STATS:
        a, b = (torch.stack(r[key]).numpy() for r in recs)
        assert a.shape == b.shape and np.isfinite(a).all(), key
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15, err_msg=key)
