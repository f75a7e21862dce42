"""Smoke runs of awasthi-fig1 and awasthi-fig2, other graphs, and batched seeds equal to single-seed runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gnndyn.errors import GnndynError
from gnndyn.experiments import get_experiment, make_spec, run_experiment
from gnndyn.store.metrics import select


def _run(name, tmp_path, overrides=None, sub="run", **fields):
    exp = get_experiment(name)
    smoke = dict(exp.smoke)
    if overrides and "graph.name" in overrides:  # a new graph starts its section afresh
        smoke = {k: v for k, v in smoke.items() if not k.startswith("graph.")}
    spec = make_spec(name, {**smoke, **(overrides or {})}, **fields)
    return run_experiment(spec, tmp_path / sub)


def test_fig1_smoke(tmp_path):
    store, result = _run("awasthi-fig1", tmp_path)
    for f in ("spec.json", "metrics.parquet", "checks.json", "report.html", "run.json", "tables/rates.parquet",
              "figures/fig1_relu_loss.png"):
        assert (tmp_path / "run" / f).exists(), f
    checks = json.loads((tmp_path / "run" / "checks.json").read_text())
    names = {c["name"] for c in checks}
    assert {"awasthi.lemma1", "awasthi.lemma3", "awasthi.lemma4", "awasthi.lemma5", "awasthi.thm1_rate",
            "awasthi.fig1_larger_d_faster"} <= names
    # every §3 verdict states the d = o(√n) reading; n = 20 with d = 3 and 19 does not meet it
    for c in checks:
        if c["name"] in ("awasthi.lemma1", "awasthi.lemma5"):
            key = next(k for k in c["assumptions"] if k.startswith("d = o(√n)"))
            assert c["assumptions"][key] is False and c["applicable"] is False
    df = store.metrics()
    loss = select(df, "loss", series="d=19").sort_values("step")["value"].to_numpy()
    assert loss[-1] < 1e-3 * loss[0]
    rates = store.table("rates")
    assert set(rates["degree"]) == {3, 19} and (rates["rate_per_iteration"] > 0).all()
    # Lemma 2: one verdict per degree, finite and consistent; λ_max = A′ at every point (closed form)
    l2 = [c for c in checks if c["name"] == "awasthi.lemma2"]
    assert len(l2) == 2
    steps = get_experiment("awasthi-fig1").smoke["train.steps"]
    for c in l2:
        d = c["details"]
        assert d["points_evaluated"] == 2 * steps - 1  # γ = 0 and ½ for t = 1..T−1, γ = 1 at T − 1
        for key in ("bound", "max_lambda_max", "max_lambda_over_bound", "max_eta_lambda_max", "min_lambda_min"):
            assert np.isfinite(d[key]), key
        assert c["holds"] and d["max_lambda_max"] <= d["bound"] and c["margin"] == pytest.approx(1 - d["max_lambda_over_bound"])
        assert d["max_lambda_over_A_prime"] == pytest.approx(1.0, rel=1e-12)
        assert d["max_eta_lambda_max"] == pytest.approx(1 / (np.sqrt(96) * np.pi), rel=1e-12)  # lr_rule=lemma1
        assert d["descent_condition_eta_lambda_le_1"] is True
        assert c["applicable"] is False
    assert rates["lemma2_max_lambda_over_bound"].between(0, 1).all()
    lam = select(df, "lambda_max", series="d=3")
    a_prime = select(df, "A_prime", series="d=3")["value"].iloc[0]
    np.testing.assert_allclose(lam["value"].to_numpy(), a_prime, rtol=1e-12)
    assert "d=3: Lemma 2 max λ_max/bound" in result.summary


def test_fig2_smoke(tmp_path):
    store, result = _run("awasthi-fig2", tmp_path)
    names = {v.name for v in result.verdicts}
    assert {"awasthi.linear_rate", "awasthi.lemma12", "awasthi.lemma13", "awasthi.thm2", "awasthi.eq46"} <= names
    assert (tmp_path / "run" / "figures" / "fig2_linear_loss.png").exists()
    df = store.metrics()
    # the recorded M_t singular values approach the teacher's at L = 1
    gap = select(df, "sv_gap", series="L=1").sort_values("step")["value"].to_numpy()
    assert gap[-1] < 1e-3 * gap[0]
    eq46 = [v for v in result.verdicts if v.name == "awasthi.eq46"]
    assert all(v.holds for v in eq46)  # regular graph: eq. (46) is exact


def test_both_accept_other_graphs(tmp_path):
    _, r1 = _run("awasthi-fig1", tmp_path, {"graph.name": "erdos-renyi", "graph.n": 20, "degrees": [4]}, sub="a")
    assert any(v.name == "awasthi.lemma5" for v in r1.verdicts)
    _, r2 = _run("awasthi-fig2", tmp_path, {"graph.name": "erdos-renyi", "graph.n": 16, "graph.avg_degree": 3,
                                            "depths": [1, 2], "train.lrs": [0.1, 0.0075]}, sub="b")
    eq46 = {v.where.split(" (")[0].split(",")[0]: v for v in r2.verdicts if v.name == "awasthi.eq46"}
    assert eq46["L=1"].holds and not eq46["L=2"].holds  # App. C eq. (46) is wrong for L ≥ 2 on irregular graphs
    assert not any(v.name == "awasthi.thm2" for v in r2.verdicts)


def test_batched_seeds_equal_single_runs(tmp_path):
    s_batch, _ = _run("awasthi-fig1", tmp_path, {"train.steps": 50}, sub="batch", seeds=2)
    s_one, _ = _run("awasthi-fig1", tmp_path, {"train.steps": 50}, sub="one", seed=1)
    a = select(s_batch.metrics(), "loss", seed=1).sort_values(["series", "step"])["value"].to_numpy()
    b = select(s_one.metrics(), "loss", seed=1).sort_values(["series", "step"])["value"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-12)
    s2b, _ = _run("awasthi-fig2", tmp_path, {"train.steps": 30, "depths": [2], "train.lrs": [0.0075]}, sub="b2", seeds=2)
    s2o, _ = _run("awasthi-fig2", tmp_path, {"train.steps": 30, "depths": [2], "train.lrs": [0.0075]}, sub="o2", seed=1)
    a = select(s2b.metrics(), "loss_raw", seed=1).sort_values("step")["value"].to_numpy()
    b = select(s2o.metrics(), "loss_raw", seed=1).sort_values("step")["value"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_bad_specs_are_explained():
    with pytest.raises(GnndynError, match="degree"):
        make_spec("awasthi-fig1", {"graph.name": "cora"})
    with pytest.raises(GnndynError, match="lrs"):
        make_spec("awasthi-fig1", {"train.lrs": [1e-6, 1e-6]})
    with pytest.raises(GnndynError, match="depths"):
        make_spec("awasthi-fig2", {"depths": [0]})
    for name in ("awasthi-fig1", "awasthi-fig2"):  # the shared train spec validates both
        with pytest.raises(GnndynError, match="step size"):
            make_spec(name, {"train.lrs": [-1.0]})
    assert make_spec("awasthi-fig1", {}).train.steps == 6000 and make_spec("awasthi-fig2", {}).train.steps == 20000
