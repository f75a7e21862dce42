"""Value checks of the probes against dense definitions: per-layer ℰ, ‖1ᵀB⁽ᴸ⁾‖₂, Dirichlet energies,
gradient and spectral norms and ‖X‖_{2,∞}, each against explicit sums over nodes or edges, a dense SVD or
autograd, in float64 on small graphs, on the signals a kept-signal forward and backward pass produces."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from gnndyn.data import csbm
from gnndyn.models import DeepGNN, get_loss
from gnndyn.operators import build_operator
from gnndyn.probes import (
    ProbeContext, dirichlet_probe, gradient_norm_probe, row_norm_max, smoothing_probe, spectral_norm_probe,
)


@pytest.fixture(scope="module")
def run():
    """A small graph, a depth-3 tanh GNN in float64, its kept signals, its weight gradients and ∂L/∂H⁽ᴸ⁾."""
    g = csbm(30, 2, p_in=0.3, p_out=0.05, feature_dim=3, feature_sep=1.5, seed=3)
    op = build_operator("gossip", g)
    model = DeepGNN(3, 5, 2, 3, "tanh", seed=1)
    out = model(op, g.x, keep_signals=True)
    *grads, b_out = torch.autograd.grad(get_loss("cross-entropy")(out, g.y), [*model.parameters(), out])
    return g, op, model, model.signals, grads, b_out


def _pairwise_smoothing(X: torch.Tensor) -> float:
    """(1/(2n²) Σ_i Σ_j ‖X_i − X_j‖²)^{1/2}, by explicit loops."""
    A = X.detach().double().numpy()
    n = A.shape[0]
    total = sum(float(np.sum((A[i] - A[j]) ** 2)) for i in range(n) for j in range(n))
    return math.sqrt(total / (2 * n * n))


def _edge_dirichlet(X: torch.Tensor, edge_index: torch.Tensor) -> float:
    """Σ over unordered pairs {i, j} with an edge of ‖X_i − X_j‖², from a dense 0/1 adjacency."""
    A = X.detach().double().numpy()
    n = A.shape[0]
    adj = np.zeros((n, n))
    for i, j in edge_index.T.tolist():
        adj[i, j] = 1.0
    assert np.array_equal(adj, adj.T)
    return sum(adj[i, j] * float(np.sum((A[i] - A[j]) ** 2)) for i, j in itertools.combinations(range(n), 2))


def _ctx(model, sig, grads=None, op=None, edge_index=None):
    return ProbeContext(step=0, model=model, loss=0.0, signals=sig, grads=grads, op=op, edge_index=edge_index)


def test_smoothing_probe_is_the_pairwise_sum_per_layer_and_the_summed_output_error(run):
    """smoothing_Y[k] = (1/(2n²) Σ_{i,j} ‖Y⁽ᵏ⁾_i − Y⁽ᵏ⁾_j‖²)^{1/2} for Y = X, F, H, B (layer k = 0..L), and
    mean_output_error = ‖Σ_i (∂L/∂H⁽ᴸ⁾)_i‖₂ with ∂L/∂H⁽ᴸ⁾ from autograd."""
    g, op, model, sig, grads, b_out = run
    vals = smoothing_probe()(_ctx(model, sig))
    L1 = model.num_layers
    for key, ts in (("smoothing_X", sig.X), ("smoothing_F", sig.F), ("smoothing_H", sig.H), ("smoothing_B", sig.B)):
        assert len(vals[key]) == L1 == len(ts)
        np.testing.assert_allclose(vals[key], [_pairwise_smoothing(t) for t in ts], rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(sig.B[-1], b_out, rtol=1e-12, atol=1e-15)
    summed = [sum(float(b_out[i, c]) for i in range(b_out.shape[0])) for c in range(b_out.shape[1])]
    assert vals["mean_output_error"] == pytest.approx(math.sqrt(sum(s * s for s in summed)), rel=1e-12, abs=1e-15)


def test_smoothing_probe_layers_are_the_forward_recursion(run):
    """X⁽⁰⁾ = x, F⁽ᵏ⁾ = P X⁽ᵏ⁾, H⁽ᵏ⁾ = F⁽ᵏ⁾W⁽ᵏ⁾, X⁽ᵏ⁺¹⁾ = tanh(H⁽ᵏ⁾) with a dense P: ℰ of each recomputed
    signal matches the probe's layer k."""
    g, op, model, sig, *_ = run
    P = torch.from_numpy(op.scipy().toarray())
    vals = smoothing_probe(backward=False)(_ctx(model, sig))
    assert set(vals) == {"smoothing_X", "smoothing_F", "smoothing_H"}
    X = g.x.double()
    for k, W in enumerate(model.weights):
        F = P @ X
        H = F @ W.detach()
        for key, ref in (("smoothing_X", X), ("smoothing_F", F), ("smoothing_H", H)):
            assert vals[key][k] == pytest.approx(_pairwise_smoothing(ref), rel=1e-10, abs=1e-15), (key, k)
        X = torch.tanh(H)


@pytest.mark.parametrize("via", ["operator", "edges"])
def test_dirichlet_probe_is_the_edge_sum_of_each_layer_input(run, via):
    """dirichlet_X[k] = Σ_{{i,j}∈E} ‖X⁽ᵏ⁾_i − X⁽ᵏ⁾_j‖² for k = 0..L, through the operator's Dirichlet form
    and along edge_index alike (no operator in the context)."""
    g, op, model, sig, *_ = run
    ctx = _ctx(model, sig, op=op if via == "operator" else None, edge_index=g.edge_index)
    got = dirichlet_probe()(ctx)["dirichlet_X"]
    assert len(got) == model.num_layers
    np.testing.assert_allclose(got, [_edge_dirichlet(x, g.edge_index) for x in sig.X], rtol=1e-12, atol=1e-14)


def test_gradient_norm_probe_is_the_frobenius_norm_of_each_weight_gradient(run):
    """grad_norm[k] = ‖∂L/∂W⁽ᵏ⁾‖_F = (Σ_{a,b} (∂L/∂W⁽ᵏ⁾_{ab})²)^{1/2} for k = 0..L, the gradients from autograd
    (and equal to F⁽ᵏ⁾ᵀB⁽ᵏ⁾, Keriven eq. (5))."""
    g, op, model, sig, grads, _ = run
    for k, G in enumerate(grads):
        torch.testing.assert_close(G, sig.F[k].detach().T @ sig.B[k], rtol=1e-10, atol=1e-13)
    got = gradient_norm_probe()(_ctx(model, sig, grads=grads))["grad_norm"]
    brute = [math.sqrt(sum(float(v) ** 2 for v in G.reshape(-1))) for G in grads]
    np.testing.assert_allclose(got, brute, rtol=1e-12)


def test_spectral_norm_probe_is_the_largest_singular_value_of_each_weight():
    """spectral_norm[k] = σ_max(W⁽ᵏ⁾) = max_{‖v‖=1} ‖W⁽ᵏ⁾v‖, from a dense numpy SVD (rectangular weights)."""
    model = DeepGNN(3, [6, 4], 2, 2, "tanh", seed=7)
    got = spectral_norm_probe()(_ctx(model, None))["spectral_norm"]
    want = [float(np.linalg.svd(W.detach().numpy(), compute_uv=False)[0]) for W in model.weights]
    assert len(got) == 3
    np.testing.assert_allclose(got, want, rtol=1e-12)
    for W, s in zip(model.weights, got):  # and the Frobenius norm is strictly larger for these ranks ≥ 2
        assert float(torch.linalg.norm(W.detach())) > s * (1 + 1e-6)


def test_row_norm_max_is_the_largest_row_norm():
    """‖X‖_{2,∞} = max_i (Σ_j X_ij²)^{1/2}, by explicit loops; 1-D X is one column."""
    gen = torch.Generator().manual_seed(11)
    X = torch.randn(9, 4, generator=gen, dtype=torch.float64)
    X[5] *= 3.0
    brute = max(math.sqrt(sum(float(X[i, j]) ** 2 for j in range(4))) for i in range(9))
    assert row_norm_max(X) == pytest.approx(brute, rel=1e-14)
    v = torch.tensor([3.0, -4.0, 1.0], dtype=torch.float64)
    assert row_norm_max(v) == pytest.approx(4.0, rel=1e-15)


def test_probes_on_streamed_numbers_are_the_dense_definitions(run):
    """A streaming pass (no signal kept): ℰ(Y⁽ᵏ⁾) for Y = X, F, H, B, ‖Σ_i (∂L/∂H⁽ᴸ⁾)_i‖₂ and
    Σ_{{i,j}∈E} ‖X⁽ᵏ⁾_i − X⁽ᵏ⁾_j‖², read by the probes, against the loops on the same model's kept signals."""
    g, op, _, sig, _, b_out = run
    model = DeepGNN(3, 5, 2, 3, "tanh", seed=1)
    probes = [smoothing_probe(), dirichlet_probe()]
    out = model(op, g.x, stats=frozenset().union(*(p.stats for p in probes)))
    torch.autograd.grad(get_loss("cross-entropy")(out, g.y), list(model.parameters()))
    assert model.signals.stats is not None and model.signals.X == []
    vals = {k: v for p in probes for k, v in p(_ctx(model, model.signals, op=op)).items()}
    for key, ts in (("smoothing_X", sig.X), ("smoothing_F", sig.F), ("smoothing_H", sig.H), ("smoothing_B", sig.B)):
        np.testing.assert_allclose(vals[key], [_pairwise_smoothing(t) for t in ts], rtol=1e-11, atol=1e-15)
    assert vals["mean_output_error"] == pytest.approx(float(torch.linalg.norm(b_out.sum(0))), rel=1e-11)
    np.testing.assert_allclose(vals["dirichlet_X"], [_edge_dirichlet(x, g.edge_index) for x in sig.X], rtol=1e-11)
