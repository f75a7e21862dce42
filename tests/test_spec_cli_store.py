"""Specs and --set overrides, the CLI, the run store and report, and the Thm 1 checker's closed form."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gnndyn.cli import app
from gnndyn.errors import GnndynError
from gnndyn.experiments import REGISTRY, get_experiment, load_spec, make_spec, run_experiment
from gnndyn.spec import apply_overrides, valid_keys
from gnndyn.store import Recorder, RunStore
from gnndyn.theory import Verdict, aggregate
from gnndyn.theory.keriven import check_thm1, thm1_bound

runner = CliRunner()
SMOKE = get_experiment("oversmoothing-at-init").smoke


def _set_args(overrides: dict) -> list[str]:
    out = []
    for k, v in overrides.items():
        out += ["--set", f"{k}={json.dumps(v)}"]
    return out


def test_overrides_apply_and_validate():
    s = make_spec("oversmoothing-at-init", ["model.depth=7", "graph.n=300", "operator.d_max=100", "loss=mse"])
    assert s.model.depth == 7 and s.graph.params["n"] == 300 and s.operator.model_extra["d_max"] == 100 and s.loss == "mse"
    s2 = apply_overrides(s, ["graph.name=sbm", "graph.block_sizes=[20,30]", "graph.p_in=0.3", "graph.p_out=0.05",
                             "graph.feature_dim=3"])
    assert s2.graph.name == "sbm" and s2.graph.params == {"block_sizes": [20, 30], "p_in": 0.3, "p_out": 0.05,
                                                          "feature_dim": 3}


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (["model.deep=3"], "unknown key 'model.deep'.*model.depth"),
        (["graph.nodes=3"], "csbm' accepts: .*n, "),
        (["model.depth=-2"], "model.depth: Input should be greater than or equal to 0"),
        (["model.activation=tahn"], "unknown activation 'tahn'"),
        (["operator.name=gosip"], "unknown operator 'gosip'"),
        (["depth"], "expects key=value"),
    ],
)
def test_bad_overrides_are_clear(overrides, fragment):
    with pytest.raises(GnndynError, match=fragment):
        make_spec("oversmoothing-at-init", overrides)


def test_valid_keys_include_generator_parameters():
    keys = valid_keys(make_spec("oversmoothing-at-init"))
    assert {"graph.n", "graph.p_in", "graph.avg_degree", "operator.d_max", "model.depth"} <= set(keys)


def test_cli_list_names_every_experiment():
    res = runner.invoke(app, ["list"], env={"COLUMNS": "250"})
    assert res.exit_code == 0
    for name in REGISTRY:
        assert name in res.output


def test_cli_unknown_experiment_lists_valid():
    res = runner.invoke(app, ["run", "nope"])
    assert res.exit_code == 2 and "oversmoothing-at-init" in res.output


def test_cli_graph_info_json(planetoid_root):
    res = runner.invoke(app, ["graph-info", "cora", "--lcc", "--data-root", str(planetoid_root), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    for key in ("nodes", "edges", "components", "lcc_nodes", "max_degree", "operator", "symmetric", "stochastic",
                "lambda", "spectral_gap"):
        assert key in info
    assert info["nodes"] == 2485 and info["max_degree"] == 168 and info["spectral_gap"] == pytest.approx(8.81e-5, rel=5e-4)
    res = runner.invoke(app, ["graph-info", "csbm", "--set", "n=400", "--set", "avg_degree=8", "--json"])
    info = json.loads(res.output)
    assert info["nodes"] == 400 and info["operator"] == "gossip"


def test_cli_run_then_rerun_gives_identical_numbers(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", "oversmoothing-at-init", "--out", str(out), "--seed", "3", *_set_args(SMOKE)])
    assert res.exit_code == 0, res.output
    for f in ("spec.json", "metrics.parquet", "checks.json", "report.html", "run.json",
              "figures/fig2_smoothing_at_init.png", "figures/fig2_smoothing_at_init.svg"):
        assert (out / f).exists(), f
    spec = json.loads((out / "spec.json").read_text())
    assert spec["seed"] == 3 and spec["model"]["depth"] == SMOKE["model.depth"] and spec["dtype"] == "float64"
    res2 = runner.invoke(app, ["rerun", str(out), "--out", str(tmp_path / "again")])
    assert res2.exit_code == 0, res2.output
    a = pd.read_parquet(out / "metrics.parquet")
    b = pd.read_parquet(tmp_path / "again" / "metrics.parquet")
    pd.testing.assert_frame_equal(a, b)
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and not re.search(r"(src|href)=['\"]https?://", html)
    assert json.loads((out / "run.json").read_text())["dtype"] == "float64"


def test_load_spec_roundtrip(tmp_path):
    spec = make_spec("oversmoothing-at-init", SMOKE, seed=2)
    store, _ = run_experiment(spec, tmp_path / "r")
    assert load_spec(tmp_path / "r") == spec
    with pytest.raises(GnndynError, match="no spec"):
        load_spec(tmp_path / "missing")


def test_store_writes_atomically_and_roundtrips(tmp_path):
    store = RunStore(tmp_path / "s")
    rec = Recorder()
    rec.add_values("gnn", 0, 0, {"loss": 1.5, "grad_norm": [1.0, 2.0]})
    store.write_metrics(rec.table())
    store.write_json("checks.json", [{"x": float("nan"), "y": float("inf")}])
    df = store.metrics()
    assert list(df.columns) == ["series", "seed", "step", "time", "quantity", "layer", "value"]
    assert df[df.quantity == "grad_norm"]["layer"].tolist() == [0, 1]
    assert store.read_json("checks.json") == [{"x": None, "y": "inf"}]  # (checks() also wants verdicts)
    assert not list((tmp_path / "s").glob(".*.tmp"))


def test_thm1_checker_tight_on_a_closed_form():
    # ρ = identity, d = 1, W = 1, X⁽⁰⁾ an eigenvector of P with eigenvalue λ: ℰ(X⁽ᵏ⁾) = λᵏ ℰ(X⁽⁰⁾) exactly.
    lam, L = 0.6, 6
    e0 = 2.0
    measured = e0 * lam ** np.arange(L + 1)
    v = check_thm1(measured, lam, [1.0] * (L + 1))
    assert v.holds and abs(v.margin) < 1e-12 and v.details["holds_max_s_form"]
    assert v.details["bound_per_layer"] == pytest.approx(measured.tolist())
    # per-layer products: s = (2, 0.5, ...) gives λᵏ s^(0:k)
    b = thm1_bound(1.0, 0.5, [2.0, 0.5, 3.0, 1.0])
    assert b.tolist() == pytest.approx([1.0, 1.0, 0.25, 0.375])
    # a measurement above the bound is reported as violated, with a negative margin and its layer
    bad = measured.copy()
    bad[3] *= 1.5
    v2 = check_thm1(bad, lam, [1.0] * (L + 1))
    assert not v2.holds and v2.margin < 0 and "layer 3" in v2.where


def test_thm1_on_a_real_gnn_with_contracting_weights():
    from gnndyn.data import csbm
    from gnndyn.models import DeepGNN, get_activation
    from gnndyn.operators import build_operator
    from gnndyn.probes import smoothing
    from gnndyn.theory.keriven import assumptions_1_2

    g = csbm(150, 2, p_in=0.2, p_out=0.05, feature_dim=4, feature_sep=2.0, seed=1)
    op = build_operator("gossip", g)
    facts = op.spectral()
    m = DeepGNN(4, 6, 2, 10, "tanh", init="orthogonal", init_scale=0.9, seed=0)
    m(op, g.x, keep_signals=True)
    v = check_thm1([smoothing(x) for x in m.signals.X], facts.lambda_, m.spectral_norms(),
                   assumptions=assumptions_1_2(facts, get_activation("tanh")))
    assert v.holds and v.applicable and v.margin >= 0


def test_aggregate_counts_seeds():
    a = Verdict("t", "p", "s", True, 1.0, "here")
    b = Verdict("t", "p", "s", False, -2.0, "there")
    agg = aggregate([a, b])
    assert not agg.holds and agg.margin == -2.0 and agg.details["held"] == 1 and agg.details["total"] == 2
