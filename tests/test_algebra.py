"""The shared linear-GNN algebra (:mod:`gnndyn.algebra`) against slow references: σ_min, σ_small and the
numerical rank of a matrix with planted singular values against a dense SVD (both ``dense`` and ``gram``
paths); the least-squares optimum against ``numpy.linalg.lstsq``; the rank-constrained optimum against
reduced-rank regression in closed form and a brute-force minimisation over factorised maps; the
propagated blocks against the dense definition :math:`G_l = X(S^l)_{*I}` (Xu et al. 2021, eq. (2);
Patel et al. 2501.14440, eq. (2.1))."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize as so
import scipy.sparse as sp
import torch

from gnndyn.algebra import (
    EPS, Optimum, Spectrum, graph_condition, least_squares_optimum, least_squares_pieces, propagated_blocks, row_space,
)
from gnndyn.data import csbm
from gnndyn.errors import GnndynError
from gnndyn.operators import build_operator
from gnndyn.operators.base import Operator, csr_from_scipy


def _planted(p: int, nbar: int, svals: list[float], seed: int) -> np.ndarray:
    """A p × n̄ matrix U diag(svals) Vᵀ with orthonormal U, V: rank len(svals), singular values svals."""
    rng = np.random.default_rng(seed)
    r = len(svals)
    U, _ = np.linalg.qr(rng.standard_normal((p, r)))
    V, _ = np.linalg.qr(rng.standard_normal((nbar, r)))
    return U @ np.diag(svals) @ V.T


PLANTED = [7.0, 3.0, 1.5, 0.4, 0.25]


# ------------------------------------------------------------------------------------------ spectrum
@pytest.mark.parametrize("method", ["dense", "gram"])
@pytest.mark.parametrize("shape", [(12, 30), (30, 12)])  # n̄ > p and n̄ ≤ p: the two Gram paths
def test_planted_rank_sigma_small_against_dense_svd(method, shape):
    p, nbar = shape
    M = _planted(p, nbar, PLANTED, seed=1)
    s_ref = np.linalg.svd(M, compute_uv=False)
    spec, Q = row_space([M], method=method)
    assert isinstance(spec, Spectrum) and spec.method == method and spec.shape == (p, nbar)
    assert spec.rank == len(PLANTED) == np.linalg.matrix_rank(M)
    assert spec.sigma_small == pytest.approx(s_ref[len(PLANTED) - 1], rel=1e-10)
    assert spec.sigma_small == pytest.approx(PLANTED[-1], rel=1e-10)
    assert spec.sigma_max == pytest.approx(s_ref[0], rel=1e-12)
    assert spec.sigma2_small == pytest.approx(PLANTED[-1] ** 2, rel=1e-10)
    # the tolerance as documented: matrix_rank's for dense, sqrt of it for the Gram
    big = max(p, nbar)
    tol = big * EPS * s_ref[0] if method == "dense" else math.sqrt(big * EPS) * s_ref[0]
    assert spec.tol == pytest.approx(tol, rel=1e-10, abs=0)
    # σ_min is the min(p, n̄)-th singular value: rounding noise here, so not resolved and σ²_min = 0
    assert spec.sigma_min <= spec.tol and not spec.resolved and spec.sigma2_min == 0.0
    # the basis spans the row space: QQᵀ is the projector of the SVD's leading right singular vectors
    _, _, vt = np.linalg.svd(M)
    P_ref = vt[: len(PLANTED)].T @ vt[: len(PLANTED)]
    assert Q.shape == (nbar, len(PLANTED))
    assert np.allclose(Q.T @ Q, np.eye(len(PLANTED)), atol=1e-10)
    assert np.allclose(Q @ Q.T, P_ref, atol=1e-9)


@pytest.mark.parametrize("method", ["dense", "gram"])
def test_full_rank_sigma_min_and_stacked_blocks(method):
    """A full-rank matrix: σ_min = σ_small = the smallest singular value; splitting it into blocks changes nothing."""
    svals = [4.0, 2.0, 1.0, 0.5, 0.3, 0.2]
    M = _planted(6, 15, svals, seed=2)
    spec, _ = row_space([M[:2], M[2:5], M[5:]], method=method, basis=False)
    assert spec.rank == 6 and spec.resolved
    assert spec.sigma_min == pytest.approx(0.2, rel=1e-10)
    assert spec.sigma_small == pytest.approx(0.2, rel=1e-10)
    assert spec.sigma2_min == pytest.approx(0.04, rel=1e-10)
    assert spec.sigma_max == pytest.approx(4.0, rel=1e-12)


def test_explicit_tolerance_sets_the_rank():
    M = _planted(10, 20, PLANTED, seed=3)
    spec, _ = row_space([M], method="dense", tol=0.3, basis=False)
    assert spec.rank == 4 and spec.tol == 0.3 and spec.sigma_small == pytest.approx(0.4, rel=1e-10)


def test_row_space_rejects_bad_input():
    with pytest.raises(GnndynError, match="at least one block"):
        row_space([])
    with pytest.raises(GnndynError, match="same number of columns"):
        row_space([np.ones((2, 3)), np.ones((2, 4))])
    with pytest.raises(GnndynError, match="method must be"):
        row_space([np.ones((2, 3))], method="qr")


def test_graph_condition_picks_the_theorems_blocks():
    blocks = [torch.from_numpy(_planted(4, 9, [3.0, 2.0, 1.0, 0.5], seed=s)) for s in range(3)]
    plain = graph_condition(blocks, 2, multiscale=False)
    multi = graph_condition(blocks, 1, multiscale=True)
    s_plain = np.linalg.svd(blocks[2].numpy(), compute_uv=False)
    s_multi = np.linalg.svd(np.vstack([blocks[0].numpy(), blocks[1].numpy()]), compute_uv=False)
    assert plain.shape == (4, 9) and plain.sigma_min == pytest.approx(s_plain[3], rel=1e-10)
    assert multi.shape == (8, 9) and multi.sigma_min == pytest.approx(s_multi[7], rel=1e-10)


# ------------------------------------------------------------------------------------------ optimum
def _lstsq_value(G: np.ndarray, Y: np.ndarray) -> float:
    W = np.linalg.lstsq(G.T, Y.T, rcond=None)[0].T
    return float(((W @ G - Y) ** 2).sum())


@pytest.mark.parametrize("rank_cap", [None, 3, 10])
def test_least_squares_optimum_against_lstsq(rank_cap):
    rng = np.random.default_rng(4)
    G1, G2 = rng.standard_normal((3, 20)), rng.standard_normal((2, 20))
    Y = rng.standard_normal((3, 20))
    opt = least_squares_optimum([G1, torch.from_numpy(G2)], torch.from_numpy(Y), rank_cap)
    ref = _lstsq_value(np.vstack([G1, G2]), Y)
    assert isinstance(opt, Optimum) and opt.case == "least-squares" and opt.exact
    assert opt.value == pytest.approx(ref, rel=1e-10)
    assert opt.lower == opt.upper == opt.projected == opt.value and opt.rank_cap == rank_cap
    assert opt.spectrum.shape == (5, 20) and opt.basis.shape == (20, 5)


def test_least_squares_optimum_rank_deficient_features():
    """G of rank 2 with 4 rows: the projector onto its row space, as lstsq's minimum-norm solution."""
    G = _planted(4, 12, [2.0, 0.7], seed=5)
    Y = np.random.default_rng(6).standard_normal((2, 12))
    opt = least_squares_optimum([G], Y, None, method="dense")
    assert opt.spectrum.rank == 2
    assert opt.value == pytest.approx(_lstsq_value(G, Y), rel=1e-10)
    spec, Q, proj, YQ = least_squares_pieces([G], Y, "dense")
    assert proj == pytest.approx(opt.value, rel=1e-14) and np.allclose(YQ, Y @ Q)


def _reduced_rank_value(G: np.ndarray, Y: np.ndarray, r: int) -> float:
    r"""Reduced-rank regression in closed form (G of full row rank): with :math:`C = GG^\top`,
    :math:`\|WG - Y\|^2 = \|WC^{1/2} - YG^\top C^{-1/2}\|^2 + \text{const}`, so the best rank-r W is the
    truncated SVD of :math:`YG^\top C^{-1/2}` (Eckart–Young) times :math:`C^{-1/2}`."""
    w, V = np.linalg.eigh(G @ G.T)
    C_mhalf = V @ np.diag(w ** -0.5) @ V.T
    U, s, vt = np.linalg.svd(Y @ G.T @ C_mhalf)
    W = (U[:, :r] * s[:r]) @ vt[:r] @ C_mhalf
    return float(((W @ G - Y) ** 2).sum())


def _brute_rank_value(G: np.ndarray, Y: np.ndarray, r: int, starts: int = 8) -> float:
    """min over A (m_y × r), B (r × m_x) of ‖ABG − Y‖², L-BFGS with exact gradients from random starts."""
    m_y, m_x = Y.shape[0], G.shape[0]
    rng = np.random.default_rng(7)

    def f(z):
        A, B = z[: m_y * r].reshape(m_y, r), z[m_y * r:].reshape(r, m_x)
        E = A @ B @ G - Y
        return float((E ** 2).sum()), np.concatenate([(2 * E @ G.T @ B.T).ravel(), (2 * A.T @ E @ G.T).ravel()])

    return min(so.minimize(f, rng.standard_normal(r * (m_y + m_x)), jac=True, method="L-BFGS-B",
                           options={"maxiter": 5000, "ftol": 1e-16, "gtol": 1e-12}).fun for _ in range(starts))


@pytest.mark.parametrize("r", [1, 2])
def test_rank_constrained_optimum_against_eckart_young_and_brute_force(r):
    rng = np.random.default_rng(8)
    G, Y = rng.standard_normal((3, 7)), rng.standard_normal((3, 7))
    opt = least_squares_optimum([G], Y, r)
    assert opt.case == "rank-constrained" and opt.exact and opt.rank_cap == r
    assert opt.projected == pytest.approx(_lstsq_value(G, Y), rel=1e-10)
    assert opt.value > opt.projected * (1 + 1e-3)  # the cap is active
    assert opt.value == pytest.approx(_reduced_rank_value(G, Y, r), rel=1e-10)
    brute = _brute_rank_value(G, Y, r)
    assert brute >= opt.value * (1 - 1e-10)  # no factorised map beats it …
    assert brute == pytest.approx(opt.value, rel=1e-7)  # … and training a factorised map reaches it


# ------------------------------------------------------------------------------------------ propagation
def _dense_blocks(S: np.ndarray, x_rows: np.ndarray, idx: np.ndarray, H: int) -> list[np.ndarray]:
    """The definition: G_l = X (S^l)_{*I} with X = x_rowsᵀ."""
    return [x_rows.T @ np.linalg.matrix_power(S, l)[:, idx] for l in range(H + 1)]


@pytest.fixture(scope="module")
def graph():
    g = csbm(24, 2, p_in=0.5, p_out=0.15, feature_dim=5, feature_sep=1.0, seed=9)
    assert (g.degrees() > 0).all()
    return g


def _directed(n: int) -> Operator:
    """A random sparse operator with no symmetry at all (a directed, weighted graph)."""
    M = sp.random(n, n, density=0.2, random_state=10, format="csr") + sp.eye(n) * 0.5
    return Operator("directed", csr_from_scipy(M), False, False)


@pytest.mark.parametrize("op_name", ["random-walk", "directed", "gcn"])
@pytest.mark.parametrize("nodes", [np.array([0, 3, 5]), np.arange(1, 24, 2)])  # n̄ = 3 ≤ m_x = 5 < n̄ = 12
@pytest.mark.parametrize("path", ["auto", "indicator", "features"])
def test_propagated_blocks_against_dense_definition(graph, op_name, nodes, path):
    op = _directed(graph.num_nodes) if op_name == "directed" else build_operator(op_name, graph)
    S = op.scipy().toarray()
    if op_name != "gcn":
        assert not np.allclose(S, S.T)
    x = graph.x.to(torch.float64)
    blocks = propagated_blocks(op, x, torch.as_tensor(nodes), 3, path=path)
    ref = _dense_blocks(S, x.numpy(), nodes, 3)
    assert len(blocks) == 4
    for b, r in zip(blocks, ref):
        assert b.dtype == torch.float64 and tuple(b.shape) == (5, nodes.size)
        assert np.allclose(b.numpy(), r, rtol=1e-12, atol=1e-12)


def test_propagated_blocks_sparse_features(graph):
    """Mostly-zero features take the sparse-X branch; the values are the same as the definition."""
    rng = np.random.default_rng(11)
    x = np.zeros((graph.num_nodes, 8))
    x[rng.integers(0, graph.num_nodes, 12), rng.integers(0, 8, 12)] = rng.standard_normal(12)
    op = build_operator("random-walk", graph)
    nodes = np.arange(0, 24, 3)
    blocks = propagated_blocks(op, torch.from_numpy(x), nodes, 2)
    for b, r in zip(blocks, _dense_blocks(op.scipy().toarray(), x, nodes, 2)):
        assert np.allclose(b.numpy(), r, rtol=1e-12, atol=1e-14)


def test_propagated_blocks_rejects_bad_input(graph):
    op = build_operator("gcn", graph)
    x = graph.x.to(torch.float64)
    with pytest.raises(GnndynError, match="features have"):
        propagated_blocks(op, x[:10], [0, 1], 1)
    with pytest.raises(GnndynError, match="depth H must be"):
        propagated_blocks(op, x, [0, 1], -1)
    with pytest.raises(GnndynError, match="node indices"):
        propagated_blocks(op, x, [0, 99], 1)
    with pytest.raises(GnndynError, match="path must be"):
        propagated_blocks(op, x, [0, 1], 1, path="dense")
