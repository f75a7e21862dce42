"""Graphs, generators and loaders: values against closed forms and sampling error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gnndyn.data import Graph, csbm, erdos_renyi, load_graph, load_planetoid, random_regular, sbm
from gnndyn.data.generators import triu_pairs
from gnndyn.errors import GnndynError, UnknownNameError


@pytest.mark.parametrize("n", [2, 3, 7, 50])
def test_triu_pairs_matches_enumeration(n):
    expected = [(i, j) for i in range(n) for j in range(i + 1, n)]
    i, j = triu_pairs(np.arange(len(expected)), n)
    assert list(zip(i.tolist(), j.tolist())) == expected


def test_triu_pairs_large_n_edges_of_the_range():
    n = 1_000_003
    N = n * (n - 1) // 2
    k = np.array([0, 1, n - 2, n - 1, N - 2, N - 1])
    i, j = triu_pairs(k, n)
    assert (i < j).all() and (j < n).all()
    # invert: k = i(2n − i − 1)/2 + (j − i − 1)
    assert np.array_equal(i * (2 * n - i - 1) // 2 + (j - i - 1), k)


def test_canonical_edges_symmetric_no_self_loops():
    g = Graph.from_edges(np.array([[0, 1, 1, 2, 2], [1, 0, 1, 0, 3]]), 4)
    assert g.num_edges == 3  # {0,1}, {0,2}, {2,3}; the self loop and the duplicate are gone
    A = g.adjacency().toarray()
    assert np.array_equal(A, A.T) and np.trace(A) == 0


def test_csbm_edge_probabilities_within_sampling_error():
    n, p_in, p_out = 2000, 0.02, 0.005
    g = csbm(n, 2, p_in=p_in, p_out=p_out, feature_dim=4, feature_sep=2.0, seed=3)
    y = g.y.numpy()
    row, col = g.edge_index.numpy()
    keep = row < col
    same = y[row[keep]] == y[col[keep]]
    sizes = np.bincount(y)
    n_in_pairs = sum(s * (s - 1) // 2 for s in sizes)
    n_out_pairs = sizes[0] * sizes[1]
    for count, pairs, p in ((same.sum(), n_in_pairs, p_in), ((~same).sum(), n_out_pairs, p_out)):
        sd = math.sqrt(pairs * p * (1 - p))
        assert abs(count - pairs * p) < 5 * sd


def test_csbm_class_means_within_sampling_error():
    n, sep, noise, d = 4000, 3.0, 1.0, 5
    g = csbm(n, 3, p_in=0.001, p_out=0.0005, feature_dim=d, feature_sep=sep, noise=noise, seed=1)
    x, y = g.x.numpy(), g.y.numpy()
    means = np.asarray(g.meta["class_means"])
    for c in range(3):
        xc = x[y == c]
        se = noise / math.sqrt(len(xc))
        assert np.all(np.abs(xc.mean(0) - means[c]) < 5 * se)
    # pairwise distance between class means is sep
    assert np.linalg.norm(means[0] - means[1]) == pytest.approx(sep)


def test_csbm_deshpande_parametrization_average_degree():
    n, d, lam = 20000, 8.0, 1.5
    g = csbm(n, 2, avg_degree=d, lam=lam, mu=2.0, feature_dim=8, seed=0)
    assert g.meta["p_in"] * n == pytest.approx(d + lam * math.sqrt(d))
    assert g.meta["p_out"] * n == pytest.approx(d - lam * math.sqrt(d))
    mean_deg = 2 * g.num_edges / n
    assert abs(mean_deg - d) < 5 * math.sqrt(d / n)


def test_generators_are_deterministic_under_a_seed():
    a, b = csbm(300, 2, seed=7), csbm(300, 2, seed=7)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x)
    c = csbm(300, 2, seed=8)
    assert not torch.equal(a.edge_index, c.edge_index)
    r1, r2 = random_regular(50, 4, seed=2), random_regular(50, 4, seed=2)
    assert torch.equal(r1.edge_index, r2.edge_index)


def test_random_regular_and_erdos_renyi():
    g = random_regular(100, 6, seed=0)
    assert (g.degrees() == 6).all() and g.num_edges == 300
    er = erdos_renyi(3000, avg_degree=6.0, seed=0)
    assert abs(2 * er.num_edges / 3000 - 6.0) < 0.3


def test_large_csbm_is_sparse_and_fast():
    g = csbm(200_000, 2, avg_degree=10.0, lam=2.0, mu=1.0, feature_dim=2, seed=0)
    assert g.num_nodes == 200_000 and abs(g.num_edges - 1_000_000) < 10_000


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: csbm(-5), "n must be > 0"),
        (lambda: csbm(100, 1), "classes ≥ 2"),
        (lambda: csbm(100, 2, p_in=1.5), "probability"),
        (lambda: csbm(100, 2, p_in=0.1, avg_degree=3), "not a mix"),
        (lambda: sbm([10, 10], [[0.1]]), "2×2"),
        (lambda: random_regular(5, 3), "must be even"),
        (lambda: Graph(edge_index=torch.tensor([[0], [5]]), num_nodes=3), "num_nodes=3"),
        (lambda: Graph(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=3, x=torch.zeros(4, 2)), "3 nodes"),
    ],
)
def test_bad_inputs_have_clear_errors(call, fragment):
    with pytest.raises(GnndynError, match=fragment):
        call()


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(UnknownNameError) as e:
        load_graph("coraa")
    assert "cora" in str(e.value) and "csbm" in str(e.value) and "Did you mean 'cora'" in str(e.value)
    with pytest.raises(GnndynError, match="does not take"):
        load_graph("csbm", nodes=3)


def test_cora_counts(planetoid_root):
    g = load_planetoid("cora", planetoid_root)
    s = g.summary()
    assert (s["nodes"], s["edges"], s["components"], s["lcc_nodes"], s["max_degree"]) == (2708, 5278, 78, 2485, 168)
    assert g.x.shape == (2708, 1433) and g.x.dtype == torch.float64 and g.num_classes == 7
    assert int(g.train_mask.sum()) == 140
    lcc = load_planetoid("cora", planetoid_root, lcc=True)
    assert lcc.num_nodes == 2485 and lcc.is_connected() and lcc.x.shape[0] == 2485


def test_citeseer_lcc_and_pubmed_without_allx(planetoid_root):
    c = load_planetoid("citeseer", planetoid_root, lcc=True)
    assert c.num_nodes == 2120 and int(c.degrees().max()) == 99
    p = load_planetoid("pubmed", planetoid_root)
    assert p.num_nodes == 19717 and p.num_edges == 44324 and p.is_connected()
    if p.x is None:
        assert "missing" in p.meta["features"]


def test_one_data_root_serves_planetoid_and_climate(planetoid_root, climate_root, monkeypatch):
    """A data root holding planetoid/<Name>/raw/ beside climate/ serves both loaders (option and variable)."""
    from gnndyn.data.registry import load_graph

    root = planetoid_root.parent
    if not (root / "climate").exists():
        pytest.skip(f"{root} has no climate/ beside planetoid/")
    monkeypatch.setenv("GNNDYN_DATA_ROOT", str(root))
    cora = load_graph("cora")
    assert (cora.num_nodes, cora.num_edges) == (2708, 5278)
    climate = load_graph("us-climate")
    assert (climate.num_nodes, climate.num_edges) == (3107, 9230)
    monkeypatch.delenv("GNNDYN_DATA_ROOT")
    assert load_graph("citeseer", data_root=str(root)).num_nodes == 3327
