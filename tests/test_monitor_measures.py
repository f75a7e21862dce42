"""Each monitor measure against its brute-force definition (pairwise sums, dense SVD)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gnndyn.errors import GnndynError, UnknownNameError
from gnndyn.monitor import measures as mm
from gnndyn.monitor.quantities import grad_norm, layer_spectral_norm, make_schedules
from gnndyn.probes import measures as pm


def _x(n=40, d=6, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_smoothing_is_the_pairwise_sum():
    X = _x()
    assert mm.smoothing(X) == pytest.approx(pm.smoothing_pairwise(X), rel=1e-12)


def test_dirichlet_sparse_equals_edge_sum_and_pairwise_definition():
    X = _x(30, 4, 1)
    gen = torch.Generator().manual_seed(2)
    r = torch.randint(0, 30, (90,), generator=gen)
    c = torch.randint(0, 30, (90,), generator=gen)
    directed = torch.stack([r, c])  # one direction only, repeated edges and self loops allowed
    brute = sum(float(((X[i] - X[j]) ** 2).sum()) for i, j in directed.T.tolist()) / 2
    adj = mm.Adjacency(directed, 30, X.device)
    assert mm.dirichlet_sparse(X, adj) == pytest.approx(brute, rel=1e-12)
    sym = torch.cat([directed, directed.flip(0)], 1)
    adj2 = mm.Adjacency(sym, 30, X.device)
    assert mm.dirichlet_sparse(X, adj2) == pytest.approx(pm.dirichlet_energy(X, sym), rel=1e-12)
    assert mm.dirichlet_sparse(X + 1e3, adj2) == pytest.approx(pm.dirichlet_energy(X, sym), rel=1e-9)
    with pytest.raises(ValueError, match="rows"):
        mm.dirichlet_sparse(X[:10], adj)


def test_mad_equals_pairwise_cosine_distances_and_skips_zero_rows():
    X = _x(25, 5, 3)
    X[4] = 0.0
    Y = X[torch.linalg.norm(X, dim=1) > 0].numpy()
    k = Y.shape[0]
    brute = sum(1 - Y[i] @ Y[j] / np.linalg.norm(Y[i]) / np.linalg.norm(Y[j]) for i in range(k) for j in range(k) if i != j)
    assert mm.mad(X) == pytest.approx(brute / (k * (k - 1)), rel=1e-12)
    assert mm.mad_pairwise(X) == pytest.approx(brute / (k * (k - 1)), rel=1e-12)
    same = torch.ones(7, 3) * torch.tensor([1.0, 2.0, 3.0])
    assert mm.mad(same) == pytest.approx(0.0, abs=1e-14)
    assert math.isnan(mm.mad(torch.zeros(5, 2)))
    assert mm.mad(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(2.0)


@pytest.mark.parametrize("shape", [(50, 7), (6, 20)])
def test_ranks_against_a_dense_svd(shape):
    X = _x(*shape, seed=4)
    s = np.linalg.svd(X.numpy(), compute_uv=False)
    assert torch.allclose(mm.singular_values(X), torch.from_numpy(s), rtol=1e-12, atol=0)
    nr, er = mm.ranks(X)
    assert nr == pytest.approx(np.linalg.norm(X.numpy(), "fro") ** 2 / s[0] ** 2, rel=1e-12)
    p = s / s.sum()
    assert er == pytest.approx(float(np.exp(-(p * np.log(p)).sum())), rel=1e-12)


@pytest.mark.parametrize("shape", [(400, 16), (12, 30)])
def test_ranks_of_a_float32_signal_against_a_dense_svd(shape):
    """float32 signals go through the float64 Gram matrix: σᵢ within 1.5e-8·σ₁ of the SVD of the same numbers."""
    gen = torch.Generator().manual_seed(9)
    # a spread spectrum: singular values from 1 down to 1e-6
    U, _ = torch.linalg.qr(torch.randn(max(shape), min(shape), generator=gen, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(min(shape), min(shape), generator=gen, dtype=torch.float64))
    s_true = torch.logspace(0, -6, min(shape), dtype=torch.float64)
    X = ((U * s_true) @ V.T).float()
    X = X if shape[0] >= shape[1] else X.T
    s = np.linalg.svd(X.double().numpy(), compute_uv=False)
    got = mm.singular_values(X)
    assert got.dtype == torch.float64
    assert np.max(np.abs(got.numpy() - s)) <= 1.5e-8 * s[0]
    nr, er = mm.ranks(X)
    assert nr == pytest.approx(float((s ** 2).sum() / s[0] ** 2), rel=1e-12)
    p = s / s.sum()
    assert er == pytest.approx(float(np.exp(-(p * np.log(p)).sum())), rel=1e-7)


def test_ranks_closed_forms():
    assert mm.ranks(torch.eye(5))[0] == pytest.approx(5.0) and mm.ranks(torch.eye(5))[1] == pytest.approx(5.0)
    u, v = _x(30, 1, 5), _x(4, 1, 6)
    nr, er = mm.ranks(u @ v.T)
    assert nr == pytest.approx(1.0, rel=1e-12) and er == pytest.approx(1.0, abs=1e-6)
    X = _x(20, 4, 7)
    assert mm.ranks(1e-8 * X) == pytest.approx(mm.ranks(X), rel=1e-10)  # scale-invariant
    assert all(math.isnan(v) for v in mm.ranks(torch.zeros(5, 3)))


def test_spectral_norm_and_gradient_norm():
    W = _x(8, 5, 8)
    assert mm.spectral_norm(W) == pytest.approx(float(np.linalg.svd(W.numpy(), compute_uv=False)[0]), rel=1e-12)
    lin = torch.nn.Linear(5, 3)
    other = torch.nn.Linear(3, 3)
    params = [*lin.parameters(), *other.parameters()]
    assert math.isnan(grad_norm(params))
    (lin(W).sum() + other(lin(W)).pow(2).sum()).backward()
    brute = math.sqrt(sum(float((p.grad ** 2).sum()) for p in params))
    assert grad_norm(params) == pytest.approx(brute, rel=1e-12)
    svs = [np.linalg.svd(p.detach().numpy(), compute_uv=False)[0] for p in params if p.dim() == 2]
    assert layer_spectral_norm(params) == pytest.approx(max(svs), rel=1e-12)
    assert math.isnan(layer_spectral_norm([torch.nn.Parameter(torch.ones(3))]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_every_exported_measure_computes_in_float64(dtype):
    """The module's promise for its public functions (not only inside the monitor): a low-precision signal is
    measured as its float64 copy would be. The probes' own functions work in the input's dtype: on a smooth
    signal (the values near 1 differ in their last bits) that costs digits."""
    gen = torch.Generator().manual_seed(4)
    X = (1 + 0.01 * torch.randn(60, 5, generator=gen, dtype=torch.float64)).to(dtype)
    W = torch.randn(7, 5, generator=gen, dtype=torch.float64).to(dtype)
    r = torch.randint(0, 60, (200,), generator=gen)
    c = torch.randint(0, 60, (200,), generator=gen)
    ei = torch.stack([torch.cat([r, c]), torch.cat([c, r])])
    X64, W64 = X.double(), W.double()
    ref_e = pm.smoothing_pairwise(X64)
    ref_d = float(((X64[r] - X64[c]) ** 2).sum())
    assert mm.smoothing(X) == pytest.approx(ref_e, rel=1e-12)
    assert mm.dirichlet_energy(X, ei) == pytest.approx(ref_d, rel=1e-12)
    assert mm.spectral_norm(W) == pytest.approx(float(np.linalg.svd(W64.numpy(), compute_uv=False)[0]), rel=1e-13)
    if dtype is not torch.float32:  # what the input's own dtype gives: the reason for the copy
        assert abs(pm.smoothing(X) / ref_e - 1) > 1e-5


def test_default_schedules_run_the_expensive_quantities_rarely():
    s = make_schedules(2, None)
    fired = {g: sum(s[g](t) for t in range(1000)) for g in s}
    assert fired == {"smoothing": 500, "grad_norm": 500, "dirichlet": 50, "mad": 50, "rank": 5, "spectral": 5}
    s = make_schedules(1, "all")
    assert all(sum(s[g](t) for t in range(100)) == 100 for g in s)
    s = make_schedules(1, {"rank": 0, "Dirichlet": 3})
    assert sum(s["rank"](t) for t in range(100)) == 0 and sum(s["dirichlet"](t) for t in range(9)) == 3
    with pytest.raises(UnknownNameError, match="unknown quantity group .ranks.; valid quantity groups: .*rank"):
        make_schedules(1, {"ranks": 1})
    with pytest.raises(GnndynError, match="every must be an integer"):
        make_schedules(0, None)
    with pytest.raises(GnndynError, match="'all'"):
        make_schedules(1, "some")
