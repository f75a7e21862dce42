"""Smoke runs of the Xu et al. experiments (Cora from the shared Planetoid copy), asserting verdicts."""

from __future__ import annotations

import json

import pytest

from gnndyn.experiments import get_experiment, make_spec, run_experiment


pytestmark = pytest.mark.usefixtures("one_thread")


def _run(name, tmp_path, planetoid_root, **extra):
    exp = get_experiment(name)
    spec = make_spec(name, {**exp.smoke, **extra}, data_root=str(planetoid_root) if planetoid_root else None)
    store, result = run_experiment(spec, tmp_path / name)
    assert json.loads((tmp_path / name / "run.json").read_text())["status"] == "ok"
    assert (tmp_path / name / "report.html").exists()
    by = {}
    for v in result.verdicts:
        by.setdefault(v.name, []).append(v)
    return store, result, by


def test_xu_fig2_smoke(tmp_path, planetoid_root):
    store, result, v = _run("xu-fig2", tmp_path, planetoid_root)
    sig = store.table("sigma2")
    assert list(sig["H"]) == [1, 2] and sig["resolved"].all()
    assert sig.loc[0, "sigma2_min"] == pytest.approx(0.0956, rel=1e-2)  # Cora, GCN, H = 1, public train split
    assert v["xu.fig2a.graph_condition"][0].holds
    p1 = v["xu.prop1"][0]
    assert not p1.applicable and p1.details["gamma_def4"] == 0.0 and p1.details["witness_loss_rel_change"] < 1e-10
    flow = [x for x in v["xu.thm1"] if x.details.get("dynamics") == "flow"]
    assert flow and flow[0].holds and flow[0].applicable
    gd = [x for x in v["xu.thm1"] if x.details.get("dynamics") != "flow"]
    assert gd and not gd[0].applicable
    assert all(x.holds for x in v["blog.pythagoras"])
    ineq = v["xu.appA13.inequality"]
    assert all(x.holds and x.details["L_star_is_zero"] for x in ineq), [x.details for x in ineq]  # |I| < m_x: L* = 0
    assert v["xu.fig2c.lambda_T"][0].holds
    assert {"fig2_conditions", "fig2_bound"} <= {p.stem for p in store.figures()}


def test_xu_fig3_smoke(tmp_path, planetoid_root):
    store, result, v = _run("xu-fig3", tmp_path, planetoid_root)
    assert v["xu.fig3a.graph_condition"][0].holds
    i = [x for x in v["xu.thm2.i"] if "flow" in x.where]
    assert i and i[0].holds and i[0].applicable
    assert not v["xu.prop3"][0].applicable
    assert all(x.holds for x in v["blog.pythagoras"])


def test_flow_vs_descent_smoke(tmp_path, planetoid_root):
    store, result, v = _run("flow-vs-descent", tmp_path, planetoid_root)
    assert v["gnndyn.flow_solved"][0].holds
    flow = [x for x in v["xu.thm1"] if x.details.get("dynamics") == "flow"][0]
    assert flow.holds and flow.applicable
    gd = [x for x in v["xu.thm1"] if "step size" in x.where or x.details.get("dynamics") == "gd"][0]
    assert not gd.holds and not gd.applicable  # the largest step (2.5 · 2/λ_max) breaks the bound
    tab = store.table("step_sizes")
    assert tab.sort_values("factor")["thm1_holds"].iloc[0]  # the smallest step keeps it
    assert v["gd.first_order"][0].holds  # gradient descent is a first-order discretization of the flow
    assert all(x.holds for x in v["blog.pythagoras"])
    assert not any(x.holds for x in v["xu.appA13.inequality"])  # I = all nodes: L* > 0, false at every step
    assert all(x.holds for x in v["blog.inequality_only_if"])
    assert result.summary["gradient descent stopped as diverged (seed 0)"] == "none"  # 2 steps at 2.5: no blow-up yet


def test_flow_vs_descent_names_the_runs_that_diverged(tmp_path, planetoid_root):
    """Over a 3× longer horizon η = 2.5·2/λ_max blows up (loss > 10⁶ L₀) at step 3 of 5: the run still ends
    "ok" (where descent diverges is what it measures), the table and the summary name that run and its step,
    and the figure is drawn."""
    store, result, v = _run("flow-vs-descent", tmp_path, planetoid_root, horizon=12.0)
    tab = store.table("step_sizes").sort_values("factor")
    stopped = tab[tab["diverged_at"].notna()]
    assert list(stopped["factor"]) == [2.5] and int(stopped["diverged_at"].iloc[0]) == 3
    assert result.summary["gradient descent stopped as diverged (seed 0)"] == "η·λ_max/2 = 2.5 at step 3"
    loss = store.metrics().query("series == 'gd-c=2.5' and quantity == 'loss'")
    assert sorted(loss["step"]) == [0, 1, 2]  # what came before the divergent step is kept, that step is not
    assert {"flow_vs_descent"} <= {p.stem for p in store.figures()}


def test_xu_fig1_smoke(tmp_path, planetoid_root):
    store, result, v = _run("xu-fig1", tmp_path, planetoid_root)
    runs = store.table("runs")
    assert len(runs) == 4 and (runs["L_end"] < runs["L0"]).all()
    r = v["xu.fig1.same_rate"][0]
    assert r.holds == all(x <= 2.0 for x in r.details["rate_ratio"].values())
    assert {"xu.fig1.near_zero", "xu.fig1.gin_faster"} <= set(v)


def test_xu_fig4_smoke(tmp_path, planetoid_root):
    store, result, v = _run("xu-fig4", tmp_path, planetoid_root)
    for name in ("xu.sec4.1.skip_faster", "xu.sec4.2.deeper_faster", "xu.sec4.3.signal_faster"):
        x = v[name][0]
        groups = x.details["groups"]
        assert groups and x.holds == all(g["ok"] for g in groups)
    runs = store.table("runs")
    assert set(runs["labels"]) == {"signal", "random"} and set(runs["multiscale"]) == {True, False}


def test_xu_fig5_smoke(tmp_path, planetoid_root):
    store, result, v = _run("xu-fig5", tmp_path, planetoid_root)
    assert v["xu.thm3"][0].holds  # the decomposition = −‖∇L‖² to machine precision
    d = v["xu.fig5.first_term_dominates"][0]
    assert d.holds == (d.margin >= 0)
    terms = store.table("terms")
    assert (terms["F_init"] > 0).all() and (terms["J_init"] > 0).all()


def test_list_overrides_reach_paper_size_settings():
    spec = make_spec("xu-fig2", ["sweep_depths=[1,2,3,4,5,6]", 'sweep_datasets=["cora","citeseer"]', "sweep_steps=2000"])
    assert spec.sweep_depths == [1, 2, 3, 4, 5, 6] and spec.sweep_datasets == ["cora", "citeseer"]
    assert spec.width is None and spec.lr == 1e-4
