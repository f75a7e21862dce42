"""Operators: one suite for every member of the family, plus spectral reference values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnndyn.data import Graph, csbm, load_planetoid
from gnndyn.errors import GnndynError, UnknownNameError
from gnndyn.operators import OPERATORS, build_operator

ALL = sorted(OPERATORS)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return csbm(120, 2, p_in=0.15, p_out=0.05, feature_dim=3, feature_sep=1.0, seed=0)


def _dense(op) -> np.ndarray:
    return op.scipy().toarray()


def _reference(name: str, g: Graph) -> np.ndarray:
    A = g.adjacency().toarray()
    d = A.sum(1)
    n = g.num_nodes
    I = np.eye(n)
    return {
        "gossip": I - (np.diag(d) - A) / d.max(),
        "gcn": np.diag((d + 1) ** -0.5) @ (A + I) @ np.diag((d + 1) ** -0.5),
        "gin": A + I,
        "random-walk": np.diag(1 / d) @ A,
        "adjacency": A,
        "laplacian": np.diag(d) - A,
        "normalized-laplacian": I - np.diag(d ** -0.5) @ A @ np.diag(d ** -0.5),
        "identity": I,
        # Patel et al. (§2, §6.1.1): the paper's five names and the two self-loop mean aggregations
        "adj": A,
        "sl-adj": A + I,
        "nor-sl-adj": np.diag((d + 1) ** -0.5) @ (A + I) @ np.diag((d + 1) ** -0.5),
        "lap": np.diag(d) - A,
        "nor-lap": I - np.diag(d ** -0.5) @ A @ np.diag(d ** -0.5),
        "sage": np.diag(1 / (d + 1)) @ (A + I),
        "pagerank": (A + I) @ np.diag(1 / (d + 1)),
    }[name]


@pytest.mark.parametrize("name", ALL)
def test_matches_dense_definition(name, graph):
    op = build_operator(name, graph)
    np.testing.assert_allclose(_dense(op), _reference(name, graph), atol=1e-14)


@pytest.mark.parametrize("name", ALL)
def test_declared_facts_hold(name, graph):
    op = build_operator(name, graph)
    M = _dense(op)
    assert op.symmetric == bool(np.allclose(M, M.T, atol=0))
    stoch = bool((M >= 0).all() and np.allclose(M.sum(1), 1.0, atol=1e-13))
    assert op.stochastic == stoch
    assert op.dtype == torch.float64 and op.matrix.layout == torch.sparse_csr


@pytest.mark.parametrize("name", ALL)
def test_propagation_and_its_gradient_match_dense(name, graph):
    op = build_operator(name, graph)
    M = torch.from_numpy(_dense(op))
    x = torch.randn(graph.num_nodes, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(graph.num_nodes, 4, dtype=torch.float64)
    y = op @ x
    torch.testing.assert_close(y, M @ x, atol=1e-12, rtol=0)
    (g,) = torch.autograd.grad((y * w).sum(), x)
    torch.testing.assert_close(g, M.T @ w, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["gossip", "random-walk", "gcn"])
def test_eigenvalue_one_is_simple_on_connected_graph(name, graph):
    assert graph.is_connected()
    f = build_operator(name, graph).spectral()
    ev = np.sort(np.linalg.eigvals(_dense(build_operator(name, graph))).real)
    assert ev[-1] == pytest.approx(1.0, abs=1e-12) and ev[-2] < 1 - 1e-6
    assert f.top_is_simple
    assert f.lambda_ == pytest.approx(max(abs(ev[-2]), abs(ev[0])), abs=1e-10)
    assert f.assumption_1 == (name == "gossip")  # random walk is not symmetric, GCN not stochastic


@pytest.mark.parametrize("name", ALL)
def test_dense_and_lanczos_agree_with_the_eigenvalues_of_the_matrix(name, graph):
    """λ from LAPACK on the symmetric form and from ARPACK on the deflated operator, against the
    eigenvalues of S itself (``numpy.linalg.eigvals``, no symmetric form): with a Perron pair (μ₁, v₁),
    λ = max |μ_i| over the others; without one, the spectral radius."""
    op = build_operator(name, graph)
    ev = np.linalg.eigvals(_dense(op))
    if op.perron is not None:
        mu1 = op.perron[0]
        ref = float(np.max(np.abs(np.delete(ev, np.argmin(np.abs(ev - mu1))))))
        ref_top = mu1
    else:
        ref = ref_top = float(np.max(np.abs(ev)))
    a, b = op.spectral(method="dense"), op.spectral(method="lanczos")
    assert (a.method, b.method) == ("dense", "lanczos")
    for f in (a, b):
        assert f.lambda_ == pytest.approx(ref, rel=1e-12, abs=1e-10)
        assert abs(f.top_eigenvalue) == pytest.approx(ref_top, rel=1e-12)
    assert a.lambda_ == pytest.approx(b.lambda_, rel=1e-12, abs=1e-10)
    assert a.top_is_simple == b.top_is_simple and a.assumption_1 == b.assumption_1


def test_disconnected_graph_gives_lambda_one_not_nan():
    g = Graph.from_edges(np.array([[0, 1, 3], [1, 2, 4]]), 5)
    f = build_operator("gossip", g).spectral()
    assert f.lambda_ == pytest.approx(1.0) and f.spectral_gap == pytest.approx(0.0, abs=1e-12)
    assert not f.assumption_1 and not f.top_is_simple and "not simple" in f.note
    fl = build_operator("gossip", g).spectral(method="lanczos")
    assert fl.spectral_gap == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("name", ["gossip", "random-walk", "gcn"])
@pytest.mark.parametrize("method", ["dense", "lanczos"])
def test_a_repeated_perron_eigenvalue_gives_gap_zero_never_negative(name, method):
    """Two copies of one graph: μ₁ = 1 twice. The dense definition's second eigenvalue is 1 up to rounding
    (either side of it); Perron–Frobenius bounds λ by μ₁ for a nonnegative operator, so λ = 1, gap ≥ 0."""
    rng = np.random.default_rng(3)
    e = np.array([(i, j) for i in range(40) for j in range(i + 1, 40) if rng.random() < 0.2]).T
    g = Graph.from_edges(np.concatenate([e, e + 40], axis=1), 80)
    op = build_operator(name, g)
    ev = np.sort(np.linalg.eigvals(_dense(op)).real)
    assert abs(ev[-2] - 1.0) < 1e-12 and max(abs(ev[0]), ev[-2]) <= 1 + 1e-12
    f = op.spectral(method=method)
    assert f.lambda_ <= 1.0 and f.spectral_gap >= 0.0 and f.spectral_gap == pytest.approx(0.0, abs=1e-9)
    assert not f.top_is_simple and not f.assumption_1


def test_isolated_nodes_handled_or_refused():
    g = Graph.from_edges(np.array([[0, 1], [1, 2]]), 4)  # node 3 isolated
    P = _dense(build_operator("gossip", g))
    assert P[3, 3] == 1.0 and np.allclose(P.sum(1), 1)
    assert np.isfinite(_dense(build_operator("gcn", g))).all()
    assert np.isfinite(_dense(build_operator("normalized-laplacian", g))).all()
    with pytest.raises(GnndynError, match="isolated"):
        build_operator("random-walk", g)


def test_gossip_d_max_option_and_error(graph):
    dmax = int(graph.degrees().max())
    op = build_operator("gossip", graph, d_max=2 * dmax)
    assert np.allclose(np.diag(_dense(op)), 1 - graph.degrees() / (2 * dmax))
    with pytest.raises(GnndynError, match="below the maximum degree"):
        build_operator("gossip", graph, d_max=dmax - 1)


def test_unknown_operator_lists_valid_names(graph):
    with pytest.raises(UnknownNameError, match="valid operators: adj, adjacency, gcn, gin, gossip"):
        build_operator("gosip", graph)


def test_shape_mismatch_names_both_shapes(graph):
    op = build_operator("gcn", graph)
    with pytest.raises(GnndynError, match=r"120×120.*\(7, 2\)"):
        op @ torch.zeros(7, 2, dtype=torch.float64)


def test_random_walk_transpose_is_cached(graph):
    op = build_operator("random-walk", graph)
    t1, t2 = op.transposed_matrix(), op.transposed_matrix()
    assert t1 is t2 and not op.symmetric


@pytest.mark.parametrize("name, lcc_nodes, gap", [("cora", 2485, 8.81e-5), ("citeseer", 2120, 6.588e-5)])
def test_keriven_spectral_gaps(planetoid_root, name, lcc_nodes, gap):
    g = load_planetoid(name, planetoid_root, lcc=True)
    assert g.num_nodes == lcc_nodes
    f = build_operator("gossip", g).spectral()
    assert f.spectral_gap == pytest.approx(gap, rel=5e-4)
    assert f.assumption_1


def test_large_graph_spectral_facts_use_lanczos():
    g = csbm(10_000, 2, avg_degree=12.0, lam=1.0, mu=1.0, feature_dim=2, seed=0).largest_component()
    f = build_operator("gossip", g).spectral()
    assert f.method == "lanczos" and 0 < f.spectral_gap < 1


# ------------------------------------------------------------------ Patel et al.'s shift operators

PAPER_ALIASES = {"adj": "adjacency", "sl-adj": "gin", "nor-sl-adj": "gcn", "lap": "laplacian",
                 "nor-lap": "normalized-laplacian"}


@pytest.mark.parametrize("alias, base", sorted(PAPER_ALIASES.items()))
def test_paper_names_are_the_existing_operators(alias, base, graph):
    a, b = build_operator(alias, graph), build_operator(base, graph)
    assert a.name == alias and a.params["alias_of"] == base
    assert np.array_equal(_dense(a), _dense(b))
    assert (a.symmetric, a.stochastic) == (b.symmetric, b.stochastic)
    assert a.spectral(method="dense").lambda_ == pytest.approx(b.spectral(method="dense").lambda_, abs=1e-13)


def test_sage_and_pagerank_stochasticity_and_spectrum(graph):
    s, p = build_operator("sage", graph), build_operator("pagerank", graph)
    S, P = _dense(s), _dense(p)
    np.testing.assert_allclose(S.sum(1), 1.0, atol=1e-14)  # row-stochastic
    np.testing.assert_allclose(P.sum(0), 1.0, atol=1e-14)  # column-stochastic
    assert not np.allclose(P.sum(1), 1.0) and np.array_equal(P, S.T)
    ev = np.sort(np.linalg.eigvals(S).real)
    np.testing.assert_allclose(ev, np.sort(np.linalg.eigvalsh(_dense(build_operator("gcn", graph)))), atol=1e-10)
    for op in (s, p):
        f = op.spectral(method="dense")
        assert f.top_eigenvalue == 1.0 and f.lambda_ == pytest.approx(max(abs(ev[-2]), abs(ev[0])), abs=1e-10)
        assert not f.assumption_1  # not symmetric


def test_unknown_operator_lists_the_paper_names(graph):
    with pytest.raises(UnknownNameError) as e:
        build_operator("nor-adj", graph)
    for name in ("adj", "sl-adj", "nor-sl-adj", "lap", "nor-lap", "sage", "pagerank", "gossip", "gcn"):
        assert f" {name}," in str(e.value) or f" {name}." in str(e.value)
