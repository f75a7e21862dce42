"""Value checks of the sparse operators (:mod:`gnndyn.operators`) and of the linear-GNN algebra
(:mod:`gnndyn.algebra`) against dense definitions and closed forms: λ and the simplicity of the top
eigenvalue on cycles, complete graphs and stars (eigenvalues known in closed form), the spectral radius of
an operator with no Perron pair, the operators on graphs with isolated nodes, the Dirichlet forms
(L = s·diag(a)(diag(b) − S)diag(c) = D − A, and the energy as a sum over edges), first and second
derivatives of the propagation against dense products, the facts kept by ``Operator.to``, propagation of a
vector, the numerical-rank tolerance of the dense SVD, and the blocks the graph condition is taken on."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gnndyn.algebra import EPS, graph_condition, propagated_blocks, row_space
from gnndyn.data import Graph, csbm
from gnndyn.operators import Operator, build_operator, csr_from_scipy


# ------------------------------------------------------------------------------------------ graphs
def _cycle(n: int) -> Graph:
    return Graph.from_edges(np.array([np.arange(n), (np.arange(n) + 1) % n]), n)


def _complete(n: int) -> Graph:
    i, j = np.triu_indices(n, 1)
    return Graph.from_edges(np.array([i, j]), n)


def _star(m: int) -> Graph:
    """K_{1,m}: centre 0, leaves 1..m."""
    return Graph.from_edges(np.array([np.zeros(m, dtype=np.int64), np.arange(1, m + 1)]), m + 1)


def _dense(op: Operator) -> np.ndarray:
    return op.scipy().toarray()


@pytest.fixture(scope="module")
def small() -> Graph:
    g = csbm(24, 2, p_in=0.5, p_out=0.15, feature_dim=5, feature_sep=1.0, seed=9)
    assert (g.degrees() > 0).all() and g.is_connected()
    return g


METHODS = ["dense", "lanczos"]


# ------------------------------------------------------------------------------------------ λ in closed form
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [7, 9])
@pytest.mark.parametrize("name", ["gossip", "random-walk", "gcn"])
def test_odd_cycle_lambda_closed_form(name, n, method):
    """On the cycle C_n the adjacency has eigenvalues 2cos(2πk/n). Gossip (d_max = 2) and the random walk
    are both A/2, eigenvalues cos(2πk/n): for odd n, λ = max_{k≠0} |cos(2πk/n)| = cos(π/n), reached by the
    most *negative* eigenvalues k = (n ± 1)/2. GCN is (A + I)/3, eigenvalues (1 + 2cos(2πk/n))/3."""
    op = build_operator(name, _cycle(n))
    c = np.cos(2 * np.pi * np.arange(1, n) / n)
    rest = (1 + 2 * c) / 3 if name == "gcn" else c
    lam = float(np.max(np.abs(rest)))
    if name != "gcn":
        assert lam == pytest.approx(math.cos(math.pi / n), abs=1e-15)
        assert rest[np.argmax(np.abs(rest))] < 0  # reached at the negative end
    f = op.spectral(method=method)
    assert f.method == method
    assert f.top_eigenvalue == 1.0 and f.top_is_simple
    assert f.lambda_ == pytest.approx(lam, rel=0, abs=1e-12)
    assert f.spectral_gap == pytest.approx(1 - lam, rel=0, abs=1e-12)
    assert f.assumption_1 == (name == "gossip")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", ["gossip", "random-walk"])
def test_even_cycle_is_bipartite_lambda_one_but_top_simple(name, method):
    """C_8 is bipartite: A/2 has the eigenvalues cos(2πk/8) = 1, ±1/√2 (twice each), 0 (twice), −1. The
    eigenvalue 1 is simple (connected graph) and the next one below it is 1/√2, while λ = |−1| = 1: the gap
    is 0 although the top is simple, so Assumption 1 fails through λ, not through simplicity."""
    op = build_operator(name, _cycle(8))
    ev = np.sort(np.linalg.eigvalsh(_dense(op) if op.symmetric else op.similarity.toarray()))
    np.testing.assert_allclose(ev, np.sort(np.cos(2 * np.pi * np.arange(8) / 8)), atol=1e-14)
    f = op.spectral(method=method)
    assert f.top_eigenvalue == 1.0
    assert f.top_is_simple and f.note == ""
    assert f.lambda_ == pytest.approx(1.0, rel=0, abs=1e-12)
    assert f.spectral_gap == pytest.approx(0.0, rel=0, abs=1e-12)
    assert not f.assumption_1


CLOSED_FORMS = [
    # (operator, graph, λ, methods): gossip on K_n is I − (nI − J)/(n − 1), eigenvalues 1 and −1/(n − 1)
    # ((n − 1)-fold)
    ("gossip", "K7", 1 / 6, METHODS),
    # GCN on K_n: (A + I)/n = J/n, eigenvalues 1 and 0 (Lanczos: the deflated operator is zero up to rounding,
    # ARPACK finds no direction to start from, and a Rayleigh–Ritz step on a random block gives λ instead)
    ("gcn", "K7", 0.0, METHODS),
    # gossip on the star K_{1,m}, d_max = m: L has eigenvalues 0, 1 ((m − 1)-fold), m + 1, so P = I − L/m
    # has 1, 1 − 1/m, −1/m: λ = 1 − 1/m
    ("gossip", "S6", 1 - 1 / 6, METHODS),
    # random walk on a star: D^{-1/2}AD^{-1/2} has eigenvalues ±1 and 0 (bipartite): λ = 1
    ("random-walk", "S6", 1.0, METHODS),
]


@pytest.mark.parametrize("name, graph, lam, method",
                         [(n, g, lam, m) for n, g, lam, ms in CLOSED_FORMS for m in ms])
def test_complete_and_star_graph_lambda_closed_forms(name, graph, lam, method):
    """λ of gossip/GCN on K_7 and of gossip/random walk on the star K_{1,6} against their closed forms (the
    spectra are listed with the cases), on both paths."""
    g = _complete(7) if graph == "K7" else _star(6)
    f = build_operator(name, g).spectral(method=method)
    assert f.top_eigenvalue == 1.0 and f.top_is_simple
    assert f.lambda_ == pytest.approx(lam, rel=0, abs=1e-12)


@pytest.mark.parametrize("n", [7, 20, 50])
def test_gcn_on_a_complete_graph_through_every_path(n):
    """S = J/n on K_n: λ = 0 on the dense path, the Lanczos path and ``auto`` beyond ``dense_limit`` alike."""
    op = build_operator("gcn", _complete(n))
    for f in (op.spectral(method="dense"), op.spectral(method="lanczos"), op.spectral(dense_limit=5)):
        assert f.top_eigenvalue == pytest.approx(1.0, rel=0, abs=1e-12) and f.top_is_simple
        assert f.lambda_ == pytest.approx(0.0, rel=0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_spectral_radius_without_perron_pair_is_largest_modulus(method):
    """With no Perron pair λ is the spectral radius max |μ_i| and the top eigenvalue is the eigenvalue of
    largest modulus. S = −L on C_8 has the eigenvalues −(2 − 2cos(2πk/8)) ∈ [−4, 0]: top = −4, λ = 4 (the
    largest *algebraic* eigenvalue is 0). The combinatorial Laplacian of the star K_{1,5} has the
    eigenvalues 0, 1 (4-fold), 6: top = λ = 6."""
    L = build_operator("laplacian", _cycle(8))
    neg = Operator("negative-laplacian", csr_from_scipy(-L.scipy()), True, False)
    f = neg.spectral(method=method)
    assert f.top_eigenvalue == pytest.approx(-4.0, rel=0, abs=1e-12)
    assert f.lambda_ == pytest.approx(4.0, rel=0, abs=1e-12)
    assert f.spectral_gap == pytest.approx(-3.0, rel=0, abs=1e-12) and not f.assumption_1
    star = build_operator("laplacian", _star(5)).spectral(method=method)
    assert star.top_eigenvalue == pytest.approx(6.0, rel=0, abs=1e-12)
    assert star.lambda_ == pytest.approx(6.0, rel=0, abs=1e-12)


# ------------------------------------------------------------------------------------------ isolated nodes
def _with_isolated() -> Graph:
    """A path 0–1–2–3 with a triangle 4–5–6 and two isolated nodes 7, 8."""
    return Graph.from_edges(np.array([[0, 1, 2, 4, 5, 6], [1, 2, 3, 5, 6, 4]]), 9)


def _inv_sqrt0(d: np.ndarray) -> np.ndarray:
    """d^{-1/2} with the convention 0^{-1/2} = 0."""
    out = np.zeros_like(d)
    out[d > 0] = d[d > 0] ** -0.5
    return out


@pytest.mark.parametrize("name", ["gossip", "gcn", "gin", "adjacency", "laplacian", "normalized-laplacian",
                                  "identity", "sage", "pagerank"])
def test_operators_on_a_graph_with_isolated_nodes_match_dense_definition(name):
    """The dense definitions on a graph with isolated nodes, with 0^{-1/2} = 0: an isolated node of
    I − D^{-1/2}AD^{-1/2} has the diagonal entry 1, of the gossip matrix P_ii = 1, of GCN
    D̂^{-1/2}(A + I)D̂^{-1/2} the entry 1/(0 + 1) = 1."""
    g = _with_isolated()
    A = g.adjacency().toarray()
    d = A.sum(1)
    n = g.num_nodes
    I = np.eye(n)
    assert (d == 0).sum() == 2
    ref = {
        "gossip": I - (np.diag(d) - A) / d.max(),
        "gcn": np.diag((d + 1) ** -0.5) @ (A + I) @ np.diag((d + 1) ** -0.5),
        "gin": A + I,
        "adjacency": A,
        "laplacian": np.diag(d) - A,
        "normalized-laplacian": I - np.diag(_inv_sqrt0(d)) @ A @ np.diag(_inv_sqrt0(d)),
        "identity": I,
        "sage": np.diag(1 / (d + 1)) @ (A + I),
        "pagerank": (A + I) @ np.diag(1 / (d + 1)),
    }[name]
    M = _dense(build_operator(name, g))
    np.testing.assert_allclose(M, ref, rtol=0, atol=1e-15)
    assert (np.diag(M)[d == 0] == np.diag(ref)[d == 0]).all()


# ------------------------------------------------------------------------------------------ Dirichlet forms
DIRICHLET_CASES = [("gossip", {}), ("gossip", {"d_max": "2x"}), ("gcn", {}), ("gin", {}), ("gin", {"eps": 0.5}),
                   ("random-walk", {}), ("adjacency", {}), ("laplacian", {}), ("normalized-laplacian", {}),
                   ("sage", {}), ("pagerank", {})]


def _vec(v, n: int, default: float) -> np.ndarray:
    if v is None:
        return np.full(n, default)
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().to(torch.float64).numpy().reshape(-1) * np.ones(n)
    return np.full(n, float(v))


@pytest.mark.parametrize("convert", ["as-built", "to-float64", "to-cpu"])
@pytest.mark.parametrize("name, params", DIRICHLET_CASES, ids=lambda c: str(c))
def test_dirichlet_form_is_the_graph_laplacian(small, name, params, convert):
    """The documented identity L = D − A = s·diag(a)(diag(b) − S)diag(c) for the operator's Dirichlet form,
    as dense matrices, and tr(XᵀLX) = s Σ (a∘X)∘(b∘(c∘X) − S(c∘X)) = Σ_{{i,j}∈E} ‖X_i − X_j‖² (brute-force sum
    over the edges) — on the operator as built and after ``Operator.to`` (which converts the form)."""
    if params.get("d_max") == "2x":
        params = {"d_max": 2.0 * float(small.degrees().max())}
    op = build_operator(name, small, **params)
    if convert == "to-float64":
        op = op.to(dtype=torch.float64)
    elif convert == "to-cpu":
        op = op.to(device="cpu")
    form = op.dirichlet
    assert form is not None
    n = small.num_nodes
    A = small.adjacency().toarray()
    L = np.diag(A.sum(1)) - A
    S = _dense(op)
    a, b, c = _vec(form.a, n, 1.0), _vec(form.b, n, 0.0), _vec(form.c, n, 1.0)
    L_form = form.scale * np.diag(a) @ (np.diag(b) - S) @ np.diag(c)
    np.testing.assert_allclose(L_form, L, rtol=0, atol=1e-12)
    X = np.random.default_rng(0).standard_normal((n, 3))
    cX = c[:, None] * X
    energy = form.scale * float(((a[:, None] * X) * (b[:, None] * cX - S @ cX)).sum())
    src, dst = small.edge_index.numpy()
    brute = 0.5 * float(((X[src] - X[dst]) ** 2).sum())  # each undirected edge is listed twice
    assert energy == pytest.approx(brute, rel=1e-12)
    assert energy == pytest.approx(float(np.trace(X.T @ L @ X)), rel=1e-12)


# ------------------------------------------------------------------------------------------ derivatives
@pytest.mark.parametrize("name", ["random-walk", "sage", "pagerank", "gcn"])
def test_second_derivative_of_propagation_matches_dense(small, name):
    """For f(x) = Σ w∘(Sx)²: ∇f = 2Sᵀ(w∘Sx), taken with ``create_graph=True`` (the differentiable
    backward), and the Hessian-vector product ∇²f·v = 2Sᵀ(w∘Sv), against dense products."""
    op = build_operator(name, small)
    M = torch.from_numpy(_dense(op))
    gen = torch.Generator().manual_seed(1)
    n = small.num_nodes
    x = torch.randn(n, 3, dtype=torch.float64, generator=gen).requires_grad_(True)
    w, v = torch.randn(n, 3, dtype=torch.float64, generator=gen), torch.randn(n, 3, dtype=torch.float64, generator=gen)
    f = (w * (op @ x) ** 2).sum()
    (g,) = torch.autograd.grad(f, x, create_graph=True)
    torch.testing.assert_close(g.detach(), 2 * M.T @ (w * (M @ x.detach())), rtol=0, atol=1e-12)
    (hv,) = torch.autograd.grad((g * v).sum(), x)
    torch.testing.assert_close(hv, 2 * M.T @ (w * (M @ v)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["gossip", "random-walk", "pagerank"])
def test_propagating_a_vector(small, name):
    """A 1-d signal x of length n: S x as the dense matrix-vector product, shape (n,), with gradient Sᵀ w."""
    op = build_operator(name, small)
    M = torch.from_numpy(_dense(op))
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(small.num_nodes, dtype=torch.float64, generator=gen)
    w = torch.randn(small.num_nodes, dtype=torch.float64, generator=gen)
    y = op @ x
    assert y.shape == (small.num_nodes,)
    torch.testing.assert_close(y, M @ x, rtol=0, atol=1e-14)
    xg = x.clone().requires_grad_(True)
    yg = op @ xg
    assert yg.shape == (small.num_nodes,)
    (gr,) = torch.autograd.grad((yg * w).sum(), xg)
    torch.testing.assert_close(gr, M.T @ w, rtol=0, atol=1e-14)


# ------------------------------------------------------------------------------------------ Operator.to
@pytest.mark.parametrize("name", ["gossip", "random-walk", "gcn", "sage"])
def test_conversion_keeps_facts_and_spectrum(small, name):
    """``Operator.to`` keeps the facts (symmetry, stochasticity, Perron pair, symmetric form, parameters):
    a float64 copy has bitwise the same λ (dense eigenvalues of the same matrix), a float32 copy the same λ
    up to the rounding of S's entries (≤ 1e-6 here)."""
    op = build_operator(name, small)
    ref = op.spectral(method="dense")
    for dtype, tol in ((torch.float64, 0.0), (torch.float32, 1e-6)):
        c = op.to(dtype=dtype)
        assert c.dtype == dtype and c.name == op.name and c.params == op.params
        assert (c.symmetric, c.stochastic, c.is_identity) == (op.symmetric, op.stochastic, op.is_identity)
        assert c.perron is not None and c.perron[0] == op.perron[0]
        np.testing.assert_array_equal(c.perron[1], op.perron[1])
        assert (c.similarity is None) == (op.similarity is None)
        f = c.spectral(method="dense")
        assert f.top_eigenvalue == ref.top_eigenvalue and f.top_is_simple
        assert f.lambda_ == pytest.approx(ref.lambda_, rel=0, abs=tol)
        assert f.assumption_1 == ref.assumption_1


# ------------------------------------------------------------------------------------------ algebra
def test_dense_rank_tolerance_uses_the_larger_dimension():
    """NumPy's ``matrix_rank`` tolerance max(p, n̄)·eps·σ_max: a 4 × 400 matrix with singular values
    1, 0.5 and 100·eps (between min(p, n̄)·eps = 4·eps and max(p, n̄)·eps = 400·eps) has numerical rank 2,
    the value of ``numpy.linalg.matrix_rank``."""
    rng = np.random.default_rng(5)
    U, _ = np.linalg.qr(rng.standard_normal((4, 3)))
    V, _ = np.linalg.qr(rng.standard_normal((400, 3)))
    M = U @ np.diag([1.0, 0.5, 100 * EPS]) @ V.T
    s_ref = np.linalg.svd(M, compute_uv=False)
    assert 4 * EPS * s_ref[0] < s_ref[2] < 400 * EPS * s_ref[0]
    spec, Q = row_space([M], method="dense")
    assert spec.tol == pytest.approx(400 * EPS * s_ref[0], rel=1e-12, abs=0)
    assert spec.rank == np.linalg.matrix_rank(M) == 2 and Q.shape == (400, 2)
    assert spec.sigma_small == pytest.approx(0.5, rel=1e-12)


@pytest.mark.parametrize("multiscale", [False, True])
@pytest.mark.parametrize("H", [0, 1, 2])
def test_graph_condition_of_propagated_blocks(small, H, multiscale):
    """σ_min of Xu et al.'s X(S^H)_{*I} (Thm 1) and of the stacked [X; XS; …; XS^H]_{*I} (Thm 2 (i)), taken
    from blocks computed to a greater depth (3), against the SVD of the dense definition."""
    op = build_operator("random-walk", small)
    S = _dense(op)
    x = small.x.to(torch.float64)
    nodes = np.arange(0, 24, 3)  # n̄ = 8 > m_x = 5
    blocks = propagated_blocks(op, x, nodes, 3)
    dense = [x.numpy().T @ np.linalg.matrix_power(S, l)[:, nodes] for l in range(4)]
    Z = np.vstack(dense[: H + 1]) if multiscale else dense[H]
    s = np.linalg.svd(Z, compute_uv=False)
    spec = graph_condition(blocks, H, multiscale=multiscale)
    assert spec.shape == Z.shape
    assert spec.sigma_min == pytest.approx(s[min(Z.shape) - 1], rel=1e-10)
    assert spec.sigma_max == pytest.approx(s[0], rel=1e-12)
