"""Streaming probes against slow references: ℰ against the pairwise sum and the existing probe (also in the
oversmoothed, cancelling regime and across blocks), the Dirichlet energy through each operator's
Laplacian form against the edge-gather definition, and a streamed training run against one that keeps
every signal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnndyn.data import csbm
from gnndyn.models import DeepGNN, get_loss
from gnndyn.operators import OPERATORS, build_operator
from gnndyn.probes import (
    ProbeContext, default_probes, dirichlet_energy, dirichlet_probe, every, mean_output_error, smoothing,
    smoothing_pairwise, smoothing_probe,
)
from gnndyn.probes import stats as st
from gnndyn.store import select
from gnndyn.training import make_optimizer, train


@pytest.fixture(scope="module")
def g():
    return csbm(90, 3, p_in=0.2, p_out=0.04, feature_dim=4, feature_sep=2.0, seed=1)


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(st, "BLOCK_BYTES", 2 * 24 * 8)  # many blocks, a ragged last one


@pytest.mark.parametrize("blocks", [False, True])
@pytest.mark.parametrize("shape", [(1, 3), (7, 1), (50, 4), (33,), (101, 5)])
def test_streamed_smoothing_matches_pairwise_and_existing_probe(shape, blocks, monkeypatch):
    if blocks:
        monkeypatch.setattr(st, "BLOCK_BYTES", 2 * 12 * 8)
    X = torch.randn(*shape, dtype=torch.float64) + 3.0
    e = float(st.smoothing_t(X))
    assert e == pytest.approx(smoothing_pairwise(X), rel=1e-12, abs=1e-15)
    assert e == pytest.approx(smoothing(X), rel=1e-13, abs=1e-15)
    assert float(st.mean_error_t(X)) == pytest.approx(mean_output_error(X), rel=1e-13)


def test_streamed_smoothing_does_not_cancel_when_rows_nearly_agree(small_blocks):
    """X = c + 1e-6·Z with ‖c‖ ~ 1e3 (oversmoothed): Σ‖X_i‖² − n‖x̄‖² loses everything in float32;
    the blocked centred sum stays at float32 resolution of the (exactly representable) input."""
    gen = torch.Generator().manual_seed(0)
    Z = torch.randn(400, 3, generator=gen, dtype=torch.float64)
    X32 = (torch.tensor([1000.0, -250.0, 31.0], dtype=torch.float64) + 1e-3 * Z).to(torch.float32)
    exact = smoothing(X32.double())  # centred, float64, on the same float32 numbers
    naive = float(((X32.square().sum() - 400 * X32.mean(0).square().sum()) / 400).clamp_min(0).sqrt())
    ours = float(st.smoothing_t(X32))
    assert abs(naive - exact) > 0.5 * exact  # the naive formula is useless here
    assert ours == pytest.approx(exact, rel=1e-4)
    assert float(st.smoothing_t(X32.double())) == pytest.approx(exact, rel=1e-10)


@pytest.mark.parametrize("split", [37, 8, 5, 1])
def test_moments_over_blocks_of_any_size_match_the_definitions(split):
    """Blocks fed in any size (a ragged last one, blocks smaller than the scratch) give the column sums and
    the centred sum of squares of the whole matrix."""
    X = torch.randn(37, 5, dtype=torch.float64) * 3.0 + 7.0
    mo = st.Moments()
    for block in X.split(split):
        mo.add(block)
    total, css = mo.finish()
    np.testing.assert_allclose(total.numpy(), X.sum(0).numpy(), rtol=1e-13)
    assert float(css) == pytest.approx(float((X - X.mean(0)).square().sum()), rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("width", [1, 2, 3, 6, 64])
@pytest.mark.parametrize("rows", [1, 4, 7, 24])
def test_moments_through_kept_block_views_are_those_of_plain_blocks(width, rows, dtype):
    """The wide view of a block (rows of k·w entries, the shift repeated k times) and the kept views of
    ``row_blocks`` give bitwise the numbers of the plain shift subtraction, ragged last block included."""
    gen = torch.Generator().manual_seed(width * 100 + rows)
    X = (torch.randn(53, width, generator=gen, dtype=torch.float64) * 2.0 + 5.0).to(dtype)
    plain, viewed = st.Moments(), st.Moments()
    for block, flat, wide in st.row_blocks(X, rows):
        ref = torch.sub(block, X[:rows].mean(0))  # the plain subtraction Moments used to make
        assert flat is not None and torch.equal(flat, block.reshape(-1))
        k = wide.shape[1] // width
        assert wide.shape == (block.shape[0] // k, k * width)
        assert torch.equal(torch.sub(wide, X[:rows].mean(0).repeat(k)).view(block.shape), ref)
        viewed.add(block, wide)
    for block in X.split(rows):
        plain.add(block)
    for a, b in zip(plain.finish(), viewed.finish()):
        assert torch.equal(a, b)
    total, css = viewed.finish()
    X64 = X.double()
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(total.numpy(), X64.sum(0).numpy(), rtol=rtol)
    assert float(css) == pytest.approx(float((X64 - X64.mean(0)).square().sum()), rel=rtol)
    # a non-contiguous signal takes the plain path
    T = X.t().contiguous().t()
    assert [f for _, f, _ in st.row_blocks(T, rows)] == [None] * len(T.split(rows)) or width == 1
    t_total, t_css = st.moments(T).finish()
    np.testing.assert_allclose(t_total.numpy(), X64.sum(0).numpy(), rtol=rtol)
    assert float(t_css) == pytest.approx(float(css), rel=rtol)


@pytest.mark.parametrize("name", [n for n in sorted(OPERATORS) if n != "identity"])
def test_dirichlet_energy_through_the_operator_matches_edge_gather(g, name, small_blocks):
    op = build_operator(name, g)
    X = torch.randn(g.num_nodes, 3, dtype=torch.float64)
    ref = dirichlet_energy(X, g.edge_index)
    assert float(st.dirichlet_t(op, X)) == pytest.approx(ref, rel=1e-12)
    if op.dirichlet.c is None:  # no product at all when F = S X is given
        assert float(st.dirichlet_t(op, X, op @ X)) == pytest.approx(ref, rel=1e-12)
    op32 = op.to(dtype=torch.float32)
    assert float(st.dirichlet_t(op32, X.float())) == pytest.approx(ref, rel=1e-4)


def test_gossip_dirichlet_identity_in_closed_form(g):
    op = build_operator("gossip", g)
    X = torch.randn(g.num_nodes, 2, dtype=torch.float64)
    d_max = op.params["d_max"]
    closed = d_max * float((X * (X - op @ X)).sum())  # d_max·Σ X∘(X − PX)
    assert closed == pytest.approx(dirichlet_energy(X, g.edge_index), rel=1e-12)


@pytest.mark.parametrize("memory", ["speed", "low"])
@pytest.mark.parametrize("act", ["tanh", "relu", "identity", "shifted-softplus"])
@pytest.mark.parametrize("name", ["gossip", "random-walk", "gcn"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_stats_of_the_fused_pass_match_kept_signals(g, name, act, memory, dtype, small_blocks):
    """Float64: to float64 precision. Float32: the streamed numbers (float32 blocks, float64 merge)
    against the float64 definitions on the same float32 signals."""
    op = build_operator(name, g).to(dtype=dtype)
    x = g.x.to(dtype)
    loss = get_loss("cross-entropy")
    kept = DeepGNN(4, 6, 3, 3, act, seed=2, dtype=dtype)
    out = kept(op, x, keep_signals=True)
    grads = torch.autograd.grad(loss(out, g.y), list(kept.parameters()))
    sig = kept.signals
    fast = DeepGNN(4, 6, 3, 3, act, seed=2, memory=memory, dtype=dtype)
    fout = fast(op, x, stats=st_names())
    fgrads = torch.autograd.grad(loss(fout, g.y), list(fast.parameters()))
    rec = fast.signals.stats
    for a, b in zip(grads, fgrads):
        assert torch.equal(a, b)
    rtol, atol = (1e-12, 1e-15) if dtype == torch.float64 else (2e-5, 1e-6)

    def close(key, ref):
        np.testing.assert_allclose(torch.stack(rec[key]).tolist(), ref, rtol=rtol, atol=atol)

    d64 = [t.double() for t in sig.X]
    close("smoothing_X", [smoothing(t.double()) for t in sig.X])
    close("smoothing_F", [smoothing(t.double()) for t in sig.F])
    close("smoothing_H", [smoothing(t.double()) for t in sig.H])
    close("smoothing_B", [smoothing(t.double()) for t in sig.B])
    close("mean_error_B", [mean_output_error(t.double()) for t in sig.B])
    close("dirichlet_X", [dirichlet_energy(t, g.edge_index) for t in d64])
    close("grad_norm", [float(torch.linalg.norm(t)) for t in grads])


@pytest.mark.parametrize("memory", ["speed", "low"])
@pytest.mark.parametrize("name", ["gossip", "adjacency"])
def test_stats_of_later_steps_use_the_workspace_views_and_stay_exact(g, name, memory, small_blocks):
    """Steps after the first reuse the block views kept by the workspace: their streamed numbers still
    match the definitions on kept signals, and no view is added after the first step."""
    op = build_operator(name, g)
    loss = get_loss("cross-entropy")
    kept = DeepGNN(4, 6, 3, 3, "tanh", seed=5)
    fast = DeepGNN(4, 6, 3, 3, "tanh", seed=5, memory=memory)
    sizes = []
    for step in range(3):
        out = kept(op, g.x, keep_signals=True)
        grads = torch.autograd.grad(loss(out, g.y), list(kept.parameters()))
        fout = fast(op, g.x, stats=st_names())
        fgrads = torch.autograd.grad(loss(fout, g.y), list(fast.parameters()))
        for a, b in zip(grads, fgrads):
            assert torch.equal(a, b)
        sig, rec = kept.signals, fast.signals.stats
        for key, ref in [("smoothing_X", [smoothing(t) for t in sig.X]), ("smoothing_F", [smoothing(t) for t in sig.F]),
                         ("smoothing_H", [smoothing(t) for t in sig.H]), ("smoothing_B", [smoothing(t) for t in sig.B]),
                         ("mean_error_B", [mean_output_error(t) for t in sig.B]),
                         ("dirichlet_X", [dirichlet_energy(t, g.edge_index) for t in sig.X])]:
            np.testing.assert_allclose(torch.stack(rec[key]).tolist(), ref, rtol=1e-12, atol=1e-15)
        with torch.no_grad():
            for p, q, gr in zip(kept.parameters(), fast.parameters(), grads):
                p.sub_(0.5 * gr)
                q.sub_(0.5 * gr)
        del out, fout  # the graph holds its workspace until the output goes, as a trainer's step does
        sizes.append(sum(len(ws.views) for ws in fast._pool.items))
    assert sizes[0] > 0 and sizes[1] == sizes[0] and sizes[2] == sizes[0]


def _records(m):
    return {k: torch.stack(v).tolist() if v else [] for k, v in m.signals.stats.items()}


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("name", ["gossip", "random-walk", "gcn"])
def test_numbers_the_backward_takes_are_those_of_the_forward_pass(g, name, act, small_blocks):
    """The Dirichlet energy of X⁽ᵏ⁾ and ℰ(F⁽ᵏ⁾), k ≥ 1, are taken by the backward's ρ′ pass in speed mode
    (fused_stats.Deferred). Whether they come from there, from the kept buffers when the record is read
    before any backward, or from the forward itself (no grad: no backward can follow; low memory), they
    are the same bits; and a backward after an early read still gives B's numbers."""
    op = build_operator(name, g)
    loss = get_loss("cross-entropy")
    models = {k: DeepGNN(4, 6, 3, 4, act, seed=3, memory="low" if k == "low" else "speed")
              for k in ("backward", "read first", "no grad", "low")}
    out = models["backward"](op, g.x, stats=st_names())
    assert models["backward"].signals.deferred is not None  # the backward will take them
    torch.autograd.grad(loss(out, g.y), list(models["backward"].parameters()))
    via_backward = _records(models["backward"])

    out = models["read first"](op, g.x, stats=st_names())
    early = _records(models["read first"])  # before any backward: from the kept buffers
    torch.autograd.grad(loss(out, g.y), list(models["read first"].parameters()))
    late = _records(models["read first"])

    with torch.no_grad():
        models["no grad"](op, g.x, stats=st_names())
    assert models["no grad"].signals.deferred is None
    forward_only = _records(models["no grad"])

    out = models["low"](op, g.x, stats=st_names())
    assert models["low"].signals.deferred is None
    torch.autograd.grad(loss(out, g.y), list(models["low"].parameters()))
    low = _records(models["low"])

    for key in ("dirichlet_X", "smoothing_F", "smoothing_X", "smoothing_H"):
        assert len(via_backward[key]) == 5
        assert via_backward[key] == early[key] == late[key] == forward_only[key] == low[key], key
    for key in ("smoothing_B", "mean_error_B", "grad_norm"):
        np.testing.assert_allclose(via_backward[key], late[key], rtol=1e-12)
        np.testing.assert_allclose(via_backward[key], low[key], rtol=1e-12)


def test_a_forward_alone_then_another_leaves_the_first_record_whole(g, small_blocks):
    op = build_operator("gossip", g)
    m = DeepGNN(4, 6, 3, 3, "tanh", seed=4)
    ref = DeepGNN(4, 6, 3, 3, "tanh", seed=4)
    m(op, g.x, stats=st_names())
    first = m.signals
    m(op, 2.0 * g.x, stats=st_names())  # the first pass's buffers are reused only after its numbers are taken
    with torch.no_grad():
        ref(op, g.x, stats=st_names())
    for key in ("dirichlet_X", "smoothing_F"):
        assert torch.stack(first.stats[key]).tolist() == torch.stack(ref.signals.stats[key]).tolist()


def test_an_unread_record_without_backward_lets_its_workspace_go_at_once(g):
    """No reference cycle holds the deferred numbers' workspace: dropping the output and the record frees
    it by reference counting alone (the cycle collector off), so the next pass reuses it."""
    import gc

    op = build_operator("gossip", g)
    m = DeepGNN(4, 6, 3, 3, "tanh", seed=4)
    gc.disable()
    try:
        out = m(op, g.x, stats=st_names())
        assert m.signals.deferred is not None
        del out
        m.signals = None
        assert [ws.in_use for ws in m._pool.items] == [False]
        m(op, g.x, stats=st_names())
        assert len(m._pool.items) == 1
    finally:
        gc.enable()


def test_a_backward_that_did_not_finish_leaves_nan_where_its_numbers_are_missing(g):
    op = build_operator("gossip", g)
    m = DeepGNN(4, 6, 3, 3, "tanh", seed=4)
    m(op, g.x, stats=st_names())
    deferred = m.signals.deferred
    deferred.state = "backward"  # as if the backward had begun and stopped before taking any layer
    rec = m.signals.stats
    assert len(rec["dirichlet_X"]) == 4 and np.isfinite(float(rec["dirichlet_X"][0]))
    assert all(np.isnan(float(t)) for t in rec["dirichlet_X"][1:] + rec["smoothing_F"][1:])


def st_names():
    from gnndyn.models.fused import STATS

    return STATS


def test_stats_hold_numbers_not_signals(g):
    op = build_operator("gossip", g)
    m = DeepGNN(4, 6, 3, 3, "tanh", seed=2)
    out = m(op, g.x, stats=st_names())
    torch.autograd.grad(out.sum(), list(m.parameters()))
    assert m.signals.X == [] and m.signals.B == []
    assert all(t.dim() == 0 and t.dtype == torch.float64 for v in m.signals.stats.values() for t in v)


@pytest.mark.parametrize("name", ["gossip", "random-walk"])
def test_streamed_training_records_what_kept_signals_record(g, name):
    op = build_operator(name, g)
    frames = []
    for fused in (True, False):
        model = DeepGNN(4, 8, 3, 3, "tanh", seed=0, fused=fused)
        probes = default_probes(expensive_every=5) + [dirichlet_probe(every(4))]
        res = train(model, op, g.x, g.y, get_loss("cross-entropy"), make_optimizer("gd", 0.5), 12, probes=probes,
                    edge_index=g.edge_index)
        frames.append(res.recorder.frame())
    a, b = frames
    assert len(a) == len(b) and set(a["quantity"]) == set(b["quantity"])
    m = a.merge(b, on=["series", "seed", "step", "quantity", "layer"])
    assert len(m) == len(a)
    exact = m[m["quantity"].isin(["loss", "grad_norm", "spectral_norm"])]
    assert (exact["value_x"] == exact["value_y"]).all()
    np.testing.assert_allclose(m["value_x"], m["value_y"], rtol=1e-12, atol=1e-15)
    edges = [dirichlet_energy(x, g.edge_index) for x in _signals_x(op, g)]
    assert select(b, "dirichlet_X").query("step == 0")["value"].to_numpy() == pytest.approx(edges, rel=1e-12)


def _signals_x(op, g):
    m = DeepGNN(4, 8, 3, 3, "tanh", seed=0)
    m(op, g.x, keep_signals=True)
    return m.signals.X


def test_probe_reads_kept_signals_without_stats(g):
    op = build_operator("gossip", g)
    m = DeepGNN(4, 5, 3, 2, "tanh", seed=0)
    out = m(op, g.x, keep_signals=True)
    get_loss("mse")(out, g.y).backward()
    vals = smoothing_probe()(ProbeContext(step=0, model=m, loss=0.0, signals=m.signals))
    assert vals["smoothing_B"] == [smoothing(b) for b in m.signals.B]
