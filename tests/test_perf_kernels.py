"""The fast paths of the step against slow ones: the sparse product, the fused deep-GNN pass (both memory
modes) against autograd of the layer-by-layer and of the dense definition, for symmetric and
non-symmetric operators, and the reuse of buffers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnndyn.data import csbm
from gnndyn.errors import GnndynError
from gnndyn.models import DeepGNN, get_loss
from gnndyn.operators import build_operator
from gnndyn.operators.base import spmm

OPS = ["gossip", "random-walk", "gcn", "laplacian"]
ACTS = ["tanh", "relu", "identity", "shifted-softplus"]


@pytest.fixture(scope="module")
def g():
    return csbm(70, 3, p_in=0.3, p_out=0.05, feature_dim=5, feature_sep=2.0, seed=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["gossip", "random-walk"])
def test_spmm_into_garbage_output_is_bitwise_the_plain_product(g, name, dtype):
    op = build_operator(name, g).to(dtype=dtype)
    assert op.matrix.crow_indices().dtype == torch.int32 and op.matrix.col_indices().dtype == torch.int32
    x = torch.randn(g.num_nodes, 6, dtype=dtype)
    out = torch.full((g.num_nodes, 6), float("nan"), dtype=dtype)
    y = spmm(op.matrix, x, out)
    assert y.data_ptr() == out.data_ptr()
    assert torch.equal(y, op.matrix @ x)
    M = torch.from_numpy(op.scipy().toarray()).to(dtype)
    torch.testing.assert_close(y, M @ x)


def test_cached_transpose_keeps_32_bit_indices(g):
    op = build_operator("random-walk", g)
    t = op.transposed_matrix()
    assert t is op.transposed_matrix() and t.crow_indices().dtype == torch.int32
    np.testing.assert_array_equal(torch.sparse_csr_tensor(t.crow_indices(), t.col_indices(), t.values(),
                                                          size=t.shape).to_dense().numpy(), op.scipy().toarray().T)


def _dense_reference(model: DeepGNN, op, x: torch.Tensor) -> torch.Tensor:
    """Keriven eq. (1) with a dense P and plain torch ops (autograd of the dense definition)."""
    P = torch.from_numpy(op.scipy().toarray()).to(x.dtype)
    X = x
    for k, W in enumerate(model.weights):
        H = (P @ X) @ W
        if k < model.depth:
            X = model.act(H)
    return H


@pytest.mark.parametrize("memory", ["speed", "low"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("name", OPS)
def test_fused_pass_is_bitwise_autograd_and_matches_dense_definition(g, name, act, memory):
    op = build_operator(name, g)
    loss = get_loss("cross-entropy")
    # width 5 = in_dim: the low-memory pass lends F⁽⁰⁾ other layers' buffers (depth ≥ 1, and ≥ 3 in the backward)
    for depth, width in ((0, 7), (1, 7), (3, 7), (1, 5), (2, 5), (4, 5)):
        ref = DeepGNN(5, width, 3, depth, act, seed=1, fused=False)
        fast = DeepGNN(5, width, 3, depth, act, seed=1, memory=memory)
        res = []
        for m in (ref, fast):
            for _ in range(2):  # the second pass runs on reused buffers
                out = m(op, g.x)
                grads = torch.autograd.grad(loss(out, g.y), list(m.parameters()))
            res.append((out.detach(), grads))
        assert torch.equal(res[0][0], res[1][0])
        for a, b in zip(res[0][1], res[1][1]):
            assert torch.equal(a, b)
        dense_out = _dense_reference(fast, op, g.x)
        dense_grads = torch.autograd.grad(loss(dense_out, g.y), list(fast.parameters()))
        torch.testing.assert_close(res[1][0], dense_out.detach(), atol=1e-12, rtol=1e-10)
        for a, b in zip(res[1][1], dense_grads):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("memory", ["speed", "low"])
@pytest.mark.parametrize("name", ["gossip", "random-walk"])
def test_fused_gradient_of_the_input_matches_autograd(g, name, memory):
    op = build_operator(name, g)
    x1 = g.x.clone().requires_grad_(True)
    x2 = g.x.clone().requires_grad_(True)
    ref = DeepGNN(5, 6, 2, 2, "tanh", seed=3, fused=False)
    fast = DeepGNN(5, 6, 2, 2, "tanh", seed=3, memory=memory)
    (a,) = torch.autograd.grad(ref(op, x1).square().sum(), x1)
    (b,) = torch.autograd.grad(fast(op, x2).square().sum(), x2)
    assert torch.equal(a, b)


def test_two_live_graphs_do_not_share_buffers(g):
    op = build_operator("gossip", g)
    m = DeepGNN(5, 6, 2, 3, "tanh", seed=0)
    ref = DeepGNN(5, 6, 2, 3, "tanh", seed=0, fused=False)
    x2 = 2 * g.x
    o1, o2 = m(op, g.x), m(op, x2)  # both graphs alive: the second pass must not overwrite the first's buffers
    g1 = torch.autograd.grad(o1.sum(), list(m.parameters()))
    g2 = torch.autograd.grad(o2.sum(), list(m.parameters()))
    r1 = torch.autograd.grad(ref(op, g.x).sum(), list(ref.parameters()))
    r2 = torch.autograd.grad(ref(op, x2).sum(), list(ref.parameters()))
    for a, b in zip(g1 + g2, r1 + r2):
        assert torch.equal(a, b)
    assert len(m._pool.items) == 2


@pytest.mark.parametrize("memory", ["speed", "low"])
def test_a_second_backward_through_one_graph_gives_the_unfused_gradients(g, memory):
    """The first backward overwrites the kept signals (B⁽ᵏ⁻¹⁾ takes ρ(H⁽ᵏ⁻¹⁾)'s buffer); a second one
    through the retained graph replays the definition from the saved inputs, as the unfused model does."""
    op = build_operator("random-walk", g)
    m = DeepGNN(5, 6, 2, 3, "tanh", seed=0, memory=memory)
    ref = DeepGNN(5, 6, 2, 3, "tanh", seed=0, fused=False)
    loss = m(op, g.x).square().sum()
    f1 = torch.autograd.grad(loss, list(m.parameters()), retain_graph=True)
    f2 = torch.autograd.grad(loss, list(m.parameters()), retain_graph=True)
    f3 = torch.autograd.grad(2 * loss, list(m.parameters()))
    ref_loss = ref(op, g.x).square().sum()
    r1 = torch.autograd.grad(ref_loss, list(ref.parameters()), retain_graph=True)
    r2 = torch.autograd.grad(ref_loss, list(ref.parameters()))
    for a, b, c, d, e in zip(f1, f2, f3, r1, r2):
        assert torch.equal(a, d) and torch.equal(b, e) and torch.equal(c, 2 * e)


def test_buffers_are_reused_across_steps_and_low_memory_keeps_half(g):
    op = build_operator("gossip", g)

    def step_and_buffers(memory: str):
        m = DeepGNN(5, 8, 2, 6, "tanh", seed=0, memory=memory)
        ptrs = []
        for _ in range(3):
            torch.autograd.grad(m(op, g.x).sum(), list(m.parameters()))
            ws = m._pool.items[0]
            ptrs.append(tuple(t.data_ptr() for t in ws.F[1:]))
        assert len(m._pool.items) == 1 and len(set(ptrs)) == 1
        ws = m._pool.items[0]
        kept = [t for t in ws.F + ws.Y + list(ws.scratch.values()) if t is not None]
        return sum(t.numel() for t in kept) // (g.num_nodes * 8)

    # speed: F⁽⁰⁾..F⁽⁶⁾ (d₀ = 5 wide for F⁽⁰⁾), X⁽¹⁾..X⁽⁶⁾ and one scratch; low: F⁽¹⁾..F⁽⁶⁾ and two scratch
    speed, low = step_and_buffers("speed"), step_and_buffers("low")
    assert low <= 8 and speed >= 13 and low < 0.62 * speed
    m = DeepGNN(5, 8, 2, 2, "tanh", seed=0)
    torch.autograd.grad(m(op, g.x).sum(), list(m.parameters()))
    m.release_workspace()
    assert m._pool.items == []


def test_fused_pass_refuses_mismatched_dtypes_and_unknown_memory_mode(g):
    op = build_operator("gossip", g).to(dtype=torch.float32)
    with pytest.raises(GnndynError, match="must agree"):
        DeepGNN(5, 4, 2, 1)(op, g.x.float())
    with pytest.raises(GnndynError, match="valid memory modes"):
        DeepGNN(5, 4, 2, 1, memory="tiny")


@pytest.mark.parametrize("depth", [0, 3])
@pytest.mark.parametrize("name", ["gossip", "random-walk"])
def test_stacked_seeds_match_separate_runs(g, name, depth):
    from gnndyn.models.stacked import StackedDeepGNN

    op = build_operator(name, g)
    loss = get_loss("cross-entropy")
    models = [DeepGNN(5, 6, 3, depth, "tanh", seed=s) for s in range(3)]
    stack = StackedDeepGNN(models)
    values = stack.replica_losses(stack(op, g.x), loss, g.y)
    grads = torch.autograd.grad(values.sum(), list(stack.parameters()))
    for r, m in enumerate(models):
        value = loss(m(op, g.x), g.y)
        ref = torch.autograd.grad(value, list(m.parameters()))
        torch.testing.assert_close(values[r], value.detach(), atol=1e-14, rtol=1e-13)
        for k in range(depth + 1):
            torch.testing.assert_close(grads[k][r], ref[k], atol=1e-13, rtol=1e-12)
    with pytest.raises(GnndynError, match="share dims"):
        StackedDeepGNN([models[0], DeepGNN(5, 6, 2, depth, "tanh")])
