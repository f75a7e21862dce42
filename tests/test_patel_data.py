"""Patel et al.'s graphs: K_k(n), BA(n, m), the two-block SBM, G(n, p) by p, and the US-counties climate graph."""

from __future__ import annotations

import hashlib
import json
import math

import networkx as nx
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gnndyn.cli import app
from gnndyn.data import (
    barabasi_albert,
    erdos_renyi,
    knn_ring,
    load_graph,
    load_us_climate,
    sbm,
)
from gnndyn.data.climate import MEASURES, find_climate_dir
from gnndyn.errors import GnndynError, UnknownNameError

runner = CliRunner()


def _simple_symmetric(g) -> None:
    row, col = g.edge_index.numpy()
    assert (row != col).all()
    A = g.adjacency()
    assert (A != A.T).nnz == 0 and A.max() == 1.0


# ------------------------------------------------------------------ K_k(n)


@pytest.mark.parametrize("n, k", [(25, 2), (25, 8), (500, 30), (9, 8)])
def test_knn_ring_degrees_and_neighbours(n, k):
    g = knn_ring(n, k)
    _simple_symmetric(g)
    assert g.num_nodes == n and g.num_edges == n * k // 2 and (g.degrees() == k).all()
    # the neighbours of i are the k nodes nearest to it on the circle (angles 2πi/n)
    ang = 2 * np.pi * np.arange(n) / n
    pts = np.stack([np.cos(ang), np.sin(ang)], 1)
    A = g.adjacency().toarray()
    for i in (0, n // 2, n - 1):
        dist = np.linalg.norm(pts - pts[i], axis=1)
        nearest = set(np.argsort(dist, kind="stable")[1 : k + 1].tolist())
        assert set(np.flatnonzero(A[i]).tolist()) == nearest
    ring = nx.watts_strogatz_graph(n, k, 0.0)  # NetworkX's ring lattice, same node labels
    row, col = g.edge_index.numpy()
    assert {(int(a), int(b)) for a, b in zip(row, col) if a < b} == {(min(e), max(e)) for e in ring.edges()}


def test_knn_ring_is_deterministic_and_features_are_seeded():
    a, b = knn_ring(40, 6, feature_dim=3, seed=1), knn_ring(40, 6, feature_dim=3, seed=2)
    assert torch.equal(a.edge_index, b.edge_index) and a.x.shape == (40, 3) and not torch.equal(a.x, b.x)
    assert torch.equal(a.x, knn_ring(40, 6, feature_dim=3, seed=1).x) and knn_ring(40, 6).x is None


@pytest.mark.parametrize("k", [3, -2, 26])
def test_knn_ring_bad_k(k):
    with pytest.raises(GnndynError, match="even k"):
        knn_ring(25, k)


# ------------------------------------------------------------------ BA(n, m)


@pytest.mark.parametrize("n, m", [(30, 3), (200, 20), (2000, 1)])
def test_barabasi_albert_counts(n, m):
    g = barabasi_albert(n, m, seed=0)
    _simple_symmetric(g)
    assert g.num_nodes == n and g.num_edges == m * (n - m) and g.is_connected()
    assert g.degrees().mean() == pytest.approx(2 * m * (n - m) / n)
    # every node after the initial star joined exactly m earlier nodes
    row, col = g.edge_index.numpy()
    later = row > col
    assert (np.bincount(row[later], minlength=n)[m + 1 :] == m).all()


@pytest.mark.parametrize("m", [2, 5])
def test_barabasi_albert_degree_law_within_sampling_error(m):
    n = 20000
    deg = barabasi_albert(n, m, seed=3).degrees()
    # p_k = 2m(m+1)/(k(k+1)(k+2)) for k ≥ m (Bollobás et al. 2001); uniform attachment would give p_m = 1/(m+1)
    for k in (m, m + 1, m + 2):
        p = 2 * m * (m + 1) / (k * (k + 1) * (k + 2))
        frac = (deg == k).mean()
        assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / n) + 0.005, (k, frac, p)
    assert (deg[m + 1 :] >= m).all()
    # heavy tail: the largest degree grows like m√n, far above a G(n, p) of the same mean degree
    assert deg.max() > 10 * 2 * m


def test_barabasi_albert_seeded():
    a, b, c = barabasi_albert(300, 4, seed=5), barabasi_albert(300, 4, seed=5), barabasi_albert(300, 4, seed=6)
    assert torch.equal(a.edge_index, b.edge_index) and not torch.equal(a.edge_index, c.edge_index)
    f = barabasi_albert(300, 4, feature_dim=7, seed=5)
    assert torch.equal(f.edge_index, a.edge_index) and f.x.shape == (300, 7)
    with pytest.raises(GnndynError, match="1 ≤ m < n"):
        barabasi_albert(5, 5)


# ------------------------------------------------------------------ SBM(n1, n2, p, q) and G(n, p)


def test_two_block_sbm_unequal_sizes_within_sampling_error():
    n1, n2, p, q = 660, 1340, 0.03, 0.004
    g = sbm([n1, n2], p_in=p, p_out=q, feature_dim=5, seed=2)
    _simple_symmetric(g)
    assert g.num_nodes == n1 + n2 and np.array_equal(np.bincount(g.y.numpy()), [n1, n2]) and g.x.shape == (2000, 5)
    same = sbm([n1, n2], [[p, q], [q, p]], seed=2)
    assert torch.equal(same.edge_index, g.edge_index)  # p_in/p_out is the matrix [[p, q], [q, p]]
    y = g.y.numpy()
    row, col = g.edge_index.numpy()
    keep = row < col
    a, b = y[row[keep]], y[col[keep]]
    for count, pairs, prob in (((a == 0) & (b == 0), n1 * (n1 - 1) // 2, p), ((a == 1) & (b == 1), n2 * (n2 - 1) // 2, p),
                               (a != b, n1 * n2, q)):
        assert abs(count.sum() - pairs * prob) < 5 * math.sqrt(pairs * prob * (1 - prob))
    paper = load_graph("sbm", block_sizes=[66, 134], p_in=0.15, p_out=0.01, seed=0)
    assert paper.num_nodes == 200 and paper.meta["probs"] == [[0.15, 0.01], [0.01, 0.15]]
    with pytest.raises(GnndynError, match="not both"):
        sbm([3, 4], [[0.1, 0.1], [0.1, 0.1]], p_in=0.2)
    with pytest.raises(GnndynError, match="p_in and p_out"):
        sbm([3, 4], p_in=0.2)


def test_erdos_renyi_by_p_within_sampling_error():
    n, p = 200, 0.05
    counts = [erdos_renyi(n, p, feature_dim=2, seed=s).num_edges for s in range(20)]
    N = n * (n - 1) // 2
    assert abs(np.mean(counts) - N * p) < 5 * math.sqrt(N * p * (1 - p) / 20)
    g = load_graph("erdos-renyi", n=n, p=p, seed=0)
    assert g.meta["p"] == p and torch.equal(g.edge_index, erdos_renyi(n, p, feature_dim=2, seed=0).edge_index)


def test_new_generators_in_the_registry_and_cli():
    res = runner.invoke(app, ["graph-info", "knn-ring", "--set", "n=50", "--set", "k=6", "--operator", "adj", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert (info["nodes"], info["edges"], info["max_degree"], info["min_degree"]) == (50, 150, 6, 6)
    assert info["top_eigenvalue"] == pytest.approx(6.0)  # A 1 = k 1 on a k-regular graph
    res = runner.invoke(app, ["graph-info", "barabasi-albert", "--set", "n=200", "--set", "m=3", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["edges"] == 3 * 197
    res = runner.invoke(app, ["graph-info", "sbm", "--set", "block_sizes=[66,134]", "--set", "p_in=0.15",
                              "--set", "p_out=0.01", "--operator", "nor-lap", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["nodes"] == 200 and info["classes"] == 2 and info["operator"] == "nor-lap"
    with pytest.raises(UnknownNameError, match="barabasi-albert"):
        load_graph("barabasi")


# ------------------------------------------------------------------ the US-counties climate graph

SHA256 = {  # shared datasets README, "US counties climate graph"
    "adjacency.txt": "b6df774db9ad5b94c47036379e207dd4622e46ef22c01ca2b7603453a4901014",
    "max_air_temperature.txt": "b66303d175b865c59f22c6377b10a97ba85c0e89b170bbdab307f314a4a5d243",
    "land_surface_temperature.txt": "5bd6764711cd523814db982c22309bdba2e3d441b68b490e2ea69df50548d870",
    "percipitation.txt": "ed4078b6d0697201839d975fa2f827d7b789b4df310debd45937b191d9bb344a",
    "sunlight.txt": "f53f5bb9b0f62d016c32325f3a5a08acf129e5711bb70d6b182c2d276d44075a",
    "fine_particulate_matter.txt": "6981ae8c4352e9e346b9a1bdd6e3aea389f0dc56a337ab5a5b5848724261db08",
}


@pytest.fixture(scope="module")
def climate_raw(climate_root):
    return load_us_climate(climate_root, zscore=False)


def test_climate_files_checksums(climate_root):
    folder = find_climate_dir(climate_root)
    assert set(SHA256) == {"adjacency.txt", *MEASURES.values()}
    for name, digest in SHA256.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_climate_graph_counts_and_known_values(climate_raw):
    g = climate_raw
    _simple_symmetric(g)
    assert (g.num_nodes, g.num_edges) == (3107, 9230) and g.is_connected()
    assert g.x.shape == (3107, 4) and g.y.shape == (3107, 1) and g.y.dtype == torch.float64 and g.num_classes == 0
    assert g.meta["feature_names"] == ["land-surface-temperature@2008", "precipitation@2008", "sunlight@2008",
                                       "fine-particulate-matter@2008"]
    fips = g.meta["fips"]
    assert fips == sorted(fips) and not {"12025", "30113", "51560", "51780"} & set(fips)
    i, j = fips.index("01001"), fips.index("56045")  # Autauga County, AL; Weston County, WY
    np.testing.assert_array_equal(g.x[i].numpy(), [24.85, 4.20, 17691.65, 13.31])
    assert float(g.y[i, 0]) == 23.47 and float(g.y[j, 0]) == 13.32
    A = g.adjacency()
    nbrs = {fips[k] for k in A[i].indices}
    assert nbrs == {"01021", "01047", "01051", "01085", "01101"}


def test_climate_edges_against_pandas(climate_root, climate_raw):
    import pandas as pd

    folder = find_climate_dir(climate_root)
    df = pd.read_csv(folder / "adjacency.txt", sep="\t", header=None, encoding="latin-1", dtype=str)
    df[1] = df[1].ffill()
    a, b = df[1].astype(int).to_numpy(), df[3].astype(int).to_numpy()
    nodes = {int(f) for f in climate_raw.meta["fips"]}
    edges = {(min(u, v), max(u, v)) for u, v in zip(a, b) if u != v and u in nodes and v in nodes}
    fips = np.array([int(f) for f in climate_raw.meta["fips"]])
    row, col = climate_raw.edge_index.numpy()
    mine = {(int(fips[r]), int(fips[c])) for r, c in zip(row, col) if r < c}
    assert mine == edges and len(edges) == 9230


def test_climate_zscore_all_years_and_label_choice(climate_root, climate_raw):
    g = load_us_climate(climate_root)
    for t in (g.x, g.y):
        np.testing.assert_allclose(t.mean(0).numpy(), 0.0, atol=1e-12)
        np.testing.assert_allclose(t.numpy().std(0), 1.0, atol=1e-12)
    raw = climate_raw
    np.testing.assert_allclose(g.x.numpy() * g.meta["x_std"] + g.meta["x_mean"], raw.x.numpy(), rtol=1e-12)
    allyears = load_us_climate(climate_root, year="all", zscore=False)
    assert allyears.x.shape == (3107, 24) and allyears.y.shape == (3107, 6)
    assert allyears.meta["label_names"] == [f"max-air-temperature@{y}" for y in range(2003, 2009)]
    np.testing.assert_array_equal(allyears.y[:, 5].numpy(), raw.y[:, 0].numpy())
    np.testing.assert_array_equal(allyears.y[0].numpy(), [22.91, 23.42, 23.15, 24.34, 25.29, 23.47])
    np.testing.assert_array_equal(allyears.x[:, 5].numpy(), raw.x[:, 0].numpy())  # land surface @ 2008
    sun = load_us_climate(climate_root, year=2005, label="sunlight", zscore=False)
    assert sun.meta["label_names"] == ["sunlight@2005"] and "max-air-temperature@2005" in sun.meta["feature_names"]
    assert torch.equal(sun.x[:, 0], allyears.y[:, 2])


def test_climate_bad_options_and_missing_files(climate_root, tmp_path):
    with pytest.raises(GnndynError, match="2003..2008"):
        load_us_climate(climate_root, year=2010)
    with pytest.raises(UnknownNameError, match="max-air-temperature"):
        load_us_climate(climate_root, label="humidity")
    (tmp_path / "climate").mkdir()
    (tmp_path / "climate" / "adjacency.txt").write_text("")
    with pytest.raises(GnndynError) as e:
        load_us_climate(tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "climate") in msg and "sunlight.txt" in msg and "--data-root" in msg
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["adjacency.txt", "climate"]  # nothing written


def test_climate_root_from_environment_and_cli(climate_root, monkeypatch):
    monkeypatch.setenv("GNNDYN_DATA_ROOT", str(climate_root))
    assert load_graph("us-climate", year=2004).meta["years"] == [2004]
    for extra in ([], ["--operator", "adj"]):
        res = runner.invoke(app, ["graph-info", "us-climate", "--json", *extra])
        assert res.exit_code == 0, res.output
        info = json.loads(res.output)
        assert (info["nodes"], info["edges"], info["components"], info["features"]) == (3107, 9230, 1, 4)
    monkeypatch.delenv("GNNDYN_DATA_ROOT")
    res = runner.invoke(app, ["graph-info", "us-climate", "--data-root", str(climate_root), "--set", "year=\"all\"",
                              "--operator", "nor-lap", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["features"] == 24


def test_climate_year_as_typed_on_the_command_line(climate_root):
    """``--set year=2008`` reaches the loader as the text "2008": it is the year 2008, and a wrong text is named."""
    from gnndyn.data.climate import load_us_climate

    assert load_us_climate(climate_root, year="2008").meta["years"] == [2008]
    with pytest.raises(GnndynError, match="year must be one of 2003..2008"):
        load_us_climate(climate_root, year="1999")
