"""Deep linear aggregate/combine GNN population model (Awasthi et al. §4, App. C)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnndyn.data.generators import erdos_renyi, random_regular
from gnndyn.errors import GnndynError
from gnndyn.models import teacher_student as ts


def _weights(r: int, seed: int, batch: int = 1):
    g = torch.Generator().manual_seed(seed)
    W1 = torch.eye(r) * 0.4 + 0.1 * torch.randn(batch, r, r, generator=g)
    W2 = torch.eye(r) * 0.2 + 0.1 * torch.randn(batch, r, r, generator=g)
    return W1, W2


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_transfer_matrices_match_message_passing(depth):
    """Σ_j T_j x_j equals the output of eqs. (18)–(19) run explicitly, for arbitrary inputs (irregular graph)."""
    g = erdos_renyi(14, avg_degree=3, seed=1)
    lgb = ts.LinearGraphBatch.from_graphs([g])
    W1, W2 = _weights(3, 0)
    T = ts.transfer_matrices(lgb, W1, W2, depth)
    x = torch.randn(14, 5, 3, generator=torch.Generator().manual_seed(2))
    y = ts.linear_forward(g, W1[0], W2[0], depth, x)
    torch.testing.assert_close(torch.einsum("jab,jkb->ka", T, x), y, rtol=1e-12, atol=1e-12)


def test_exact_loss_against_monte_carlo():
    g = erdos_renyi(12, avg_degree=3, seed=4)
    lgb = ts.LinearGraphBatch.from_graphs([g])
    W1s, W2s = ts.linear_teacher(3, 0, scale=0.3)
    W1, W2 = _weights(3, 1)
    depth = 2
    exact = float(ts.linear_population_loss(lgb, W1, W2, ts.transfer_matrices(lgb, W1s[None], W2s[None], depth), depth)[0])
    mean, se = ts.linear_monte_carlo_loss(g, W1[0], W2[0], W1s, W2s, depth, 60_000, seed=3)
    assert se < 0.02 * exact
    assert abs(exact - mean) <= 4 * se


def test_adjoint_gradient_against_autograd_and_finite_differences():
    """Batch of two graphs of different sizes (per-node path) and of equal sizes (batched-matmul path)."""
    for graphs in ([erdos_renyi(11, avg_degree=3, seed=5), random_regular(10, 3, seed=1)],
                   [erdos_renyi(10, avg_degree=3, seed=5), random_regular(10, 3, seed=1)]):
        lgb = ts.LinearGraphBatch.from_graphs(graphs)
        depth, r = 3, 3
        W1, W2 = _weights(r, 7, batch=2)
        a, b = ts.linear_teacher(r, 1, scale=0.3)
        Ts = ts.transfer_matrices(lgb, torch.stack([a, a]), torch.stack([b, b]), depth)
        scale = torch.tensor([0.5, 2.0])
        loss, g1, g2 = ts.linear_population_grad(lgb, W1, W2, Ts, depth, scale=scale)
        x1, x2 = W1.clone().requires_grad_(True), W2.clone().requires_grad_(True)
        la = ts.linear_population_loss(lgb, x1, x2, Ts, depth, scale=scale)
        torch.testing.assert_close(loss, la.detach(), rtol=1e-13, atol=0)
        a1, a2 = torch.autograd.grad(la.sum(), [x1, x2])
        torch.testing.assert_close(g1, a1, rtol=1e-11, atol=1e-12)
        torch.testing.assert_close(g2, a2, rtol=1e-11, atol=1e-12)
        h = 1e-6
        e = torch.zeros_like(W1)
        e[1, 0, 2] = h
        fd = (ts.linear_population_loss(lgb, W1, W2 + e, Ts, depth, scale=scale)
              - ts.linear_population_loss(lgb, W1, W2 - e, Ts, depth, scale=scale))[1] / (2 * h)
        assert float(g2[1, 0, 2]) == pytest.approx(float(fd), rel=1e-7)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_regular_graph_reduces_to_M(depth):
    """Lemma 10 (eq. 37): on a d-regular graph L = n/2 ‖M^L − M*^L‖², M = W₁ + dW₂; the gradient is
    n Σ_k (M^k)ᵀE(M^{L−k−1})ᵀ for W₁ and d times it for W₂ — twice Lemma 11 as printed (n/2)."""
    n, d, r = 14, 3, 3
    g = random_regular(n, d, seed=3)
    lgb = ts.LinearGraphBatch.from_graphs([g])
    a, b = ts.linear_teacher(r, 2)
    W1, W2 = _weights(r, 3)
    Ts = ts.transfer_matrices(lgb, a[None], b[None], depth)
    loss, g1, g2 = ts.linear_population_grad(lgb, W1, W2, Ts, depth)
    M, Ms = W1[0] + d * W2[0], a + d * b
    assert float(loss[0]) == pytest.approx(float(ts.regular_loss(M, Ms, n, depth)), rel=1e-12)
    e1, e2 = ts.lemma11_gradient(M, Ms, n, d, depth)
    torch.testing.assert_close(g1[0], e1, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(g2[0], e2, rtol=1e-10, atol=1e-10)
    # symmetric commuting case (identity start, symmetric teacher): printed Lemma 11 is exactly half
    I = torch.eye(r)[None]
    _, h1, _ = ts.linear_population_grad(lgb, I, I, Ts, depth)
    p1, _ = ts.lemma11_gradient(torch.eye(r) * (1 + d), Ms, n, d, depth, as_printed=True)
    torch.testing.assert_close(h1[0], 2 * p1, rtol=1e-12, atol=1e-10)
    # the identity scale is n(d+1)^{2L}
    assert float(ts.identity_scale(lgb, depth)[0]) == pytest.approx(n * (d + 1) ** (2 * depth))


def test_appendix_c_eq46_exact_only_for_L1_or_regular():
    g = erdos_renyi(15, avg_degree=3, seed=8)
    assert g.degrees().min() != g.degrees().max()
    lgb = ts.LinearGraphBatch.from_graphs([g])
    a, b = ts.linear_teacher(3, 4, scale=0.3)
    W1, W2 = _weights(3, 5)
    deg = torch.from_numpy(g.degrees())
    for depth, equal in ((1, True), (2, False), (3, False)):
        exact = float(ts.linear_population_loss(lgb, W1, W2, ts.transfer_matrices(lgb, a[None], b[None], depth), depth)[0])
        eq46 = float(ts.appendix_c_loss(deg, W1[0], W2[0], a, b, depth))
        assert (abs(eq46 - exact) <= 1e-10 * exact) == equal
    gr = random_regular(12, 3, seed=0)
    lr = ts.LinearGraphBatch.from_graphs([gr])
    exact = float(ts.linear_population_loss(lr, W1, W2, ts.transfer_matrices(lr, a[None], b[None], 3), 3)[0])
    assert float(ts.appendix_c_loss(torch.from_numpy(gr.degrees()), W1[0], W2[0], a, b, 3)) == pytest.approx(exact, rel=1e-12)


def test_batched_equals_single_graph_runs():
    graphs = [random_regular(12, 3, seed=s) for s in range(3)]
    W1, W2 = _weights(3, 9, batch=3)
    Ts = ts.transfer_matrices(ts.LinearGraphBatch.from_graphs(graphs), W1 * 0.5, W2 * 0.5, 2)
    loss = ts.linear_population_loss(ts.LinearGraphBatch.from_graphs(graphs), W1, W2, Ts, 2)
    for b, g in enumerate(graphs):
        one = ts.LinearGraphBatch.from_graphs([g])
        single = ts.linear_population_loss(one, W1[b:b + 1], W2[b:b + 1], ts.transfer_matrices(one, W1[b:b + 1] * 0.5, W2[b:b + 1] * 0.5, 2), 2)
        assert float(single[0]) == pytest.approx(float(loss[b]), rel=1e-13)


def test_teacher_is_positive_definite_and_errors():
    a, b = ts.linear_teacher(6, 3)
    for w in (a, b):
        torch.testing.assert_close(w, w.T)
        assert float(torch.linalg.eigvalsh(w).min()) >= 1e-3 * (1 - 1e-9)
    lgb = ts.LinearGraphBatch.from_graphs([random_regular(8, 3, seed=0)])
    with pytest.raises(GnndynError, match="depth"):
        ts.transfer_matrices(lgb, torch.eye(2)[None], torch.eye(2)[None], 0)
    with pytest.raises(GnndynError, match="batch"):
        ts.transfer_matrices(lgb, torch.eye(2).expand(2, 2, 2), torch.eye(2).expand(2, 2, 2), 1)
    assert np.isfinite(float(ts.identity_scale(lgb, 2)[0]))
