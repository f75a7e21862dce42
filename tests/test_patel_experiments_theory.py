"""Smoke runs of Patel et al.'s §4–§5 and open-question experiments, asserting verdicts and key values, and the
NumPy Z-form paths against the theory package's autograd paths."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gnndyn.experiments import get_experiment, make_spec, run_experiment
from gnndyn.theory.patel.fast_paths import (
    descent_path,
    flow_path,
    normalized_flow_path,
)
from gnndyn.models.patel_init import xavier, zero_first_layer
from gnndyn.theory import patel as P

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(name, tmp_path, **extra):
    exp = get_experiment(name)
    spec = make_spec(name, {**exp.smoke, **extra})
    store, result = run_experiment(spec, tmp_path / name)
    assert json.loads((tmp_path / name / "run.json").read_text())["status"] == "ok"
    assert (tmp_path / name / "report.html").exists()
    by = {}
    for v in result.verdicts:
        by.setdefault(v.name, {})[v.details.get("start", v.details.get("case", ""))] = v
    return store, result, by


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(3)
    return P.make_problem(rng.standard_normal((4, 9)), rng.standard_normal((2, 9)), [3, 3])


def test_numpy_paths_equal_the_autograd_paths(tiny):
    W0 = xavier(tiny.widths.dims, seed=1)
    times = np.linspace(0.0, 2.0, 5)
    fast = flow_path(tiny, W0, times, rtol=1e-11, atol=1e-13)
    slow = P.run_path(tiny, W0, times=times, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(fast.losses, slow.losses, rtol=1e-8)
    for a, b in zip(fast.end, slow.end):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)
    gd_fast = descent_path(tiny, W0, eta=0.05, steps=30, snapshot_every=10)
    gd_slow = P.run_path(tiny, W0, rule="gd", eta=0.05, steps=30, snapshot_every=10)
    np.testing.assert_allclose(gd_fast.losses, gd_slow.losses, rtol=1e-12)
    np.testing.assert_allclose(gd_fast.weight_times, gd_slow.weight_times)
    for a, b in zip(gd_fast.end, gd_slow.end):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)
    nt = np.linspace(0.0, 0.5, 3)
    nf_fast = normalized_flow_path(tiny, W0, nt, step=0.025)
    nf_slow = P.run_path(tiny, W0, rule="normalized-flow", times=nt, step_size=0.025)
    # torchdiffeq's "rk4" is Kutta's 3/8 rule, ours the classical one: both fourth order, equal to O(h⁴)
    np.testing.assert_allclose(nf_fast.losses, nf_slow.losses, rtol=1e-5)
    fine = normalized_flow_path(tiny, W0, nt, step=0.0025)
    assert abs(fine.losses[-1] - nf_fast.losses[-1]) < 1e-5 * nf_fast.losses[-1]


def test_descent_path_stops_at_divergence(tiny):
    W0 = zero_first_layer(tiny.widths.dims, 2.0)
    lam = P.sharpness(tiny, W0)["two_over_lambda"]
    bad = descent_path(tiny, W0, eta=20 * lam, steps=500)
    assert bad.error is not None and "diverged" in bad.error and bad.times.size < 501


def test_patel_energy_smoke(tmp_path):
    store, _result, v = _run("patel-energy", tmp_path)
    tab = store.table("starts").set_index("start")
    Emin = float(tab["min_energy"].iloc[0])
    # Thm 4.2: from balanced starts the flow ends at the minimum energy (H+1)Σσ_i^{2/(H+1)}(YZ^†)
    for s in ("balanced", "balanced-44"):
        assert tab.loc[s, "energy_end"] == pytest.approx(Emin, rel=1e-7)
        assert v["patel.thm4.2"][s].holds and v["patel.thm4.2"][s].applicable
    # unbalanced starts reach the same product YZ^† (Z has full row rank) with more energy
    for s in ("zero-first", "xavier"):
        assert tab.loc[s, "product_error"] < 1e-6 and tab.loc[s, "excess_energy"] > 0.5
        assert v["patel.thm4.2"][s].holds and not v["patel.thm4.2"][s].applicable
    assert 0 < tab.loc["small", "excess_energy"] < 0.05
    # D_ℓ conserved up to solver error, which tightens with the tolerance
    assert all(x.holds for x in v["patel.sec4.balance"].values())
    assert all(x.holds for x in v["patel.sec4.balance.tightens"].values())
    assert (tab["drift_rtol1e-10"] < tab["drift_rtol1e-06"] / 10).all()
    # Thm 4.4: only the (4.4) start meets all three conditions, and its flow reaches the solution of (4.2)
    assert not v["patel.thm4.4.c1"]["zero-first"].holds and v["patel.thm4.4.c1"]["balanced"].holds
    assert not v["patel.thm4.4.c3"]["balanced"].holds and v["patel.thm4.4.c3"]["balanced-44"].holds
    final = v["patel.thm4.4"]["balanced-44"]
    assert final.applicable and final.holds
    # the authors' infeasibility claim fails under both readings of m
    for key in ("patel.thm4.4.infeasible", "patel.thm4.4.infeasible.printed"):
        claim = v[key][""]
        assert not claim.holds and claim.details["best_margin"] > 0
    s44 = store.table("search44")
    assert (s44["best_margin"] >= s44["margin_at_solution"]).all() and (s44["margin_at_solution"] > 0).all()
    assert {"energy_paths", "energy_bars"} <= {p.stem for p in store.figures()}


def test_patel_descent_smoke(tmp_path):
    store, _result, v = _run("patel-descent", tmp_path)
    assert v["patel.thm5.1.hypothesis"][""].holds  # a = 5 at smoke size: 16L(0)/r² < βσ²_small/m
    c = store.table("constants").iloc[0]
    sweep = store.table("sweep").set_index("factor")
    # the contraction bound holds for a small η (inside the estimated step bound: applicable) ...
    small = v["patel.thm5.1"]["x0.001"]
    assert small.holds and small.applicable and sweep.loc[0.001, "below_step_bound_estimate"]
    assert v["patel.thm5.1"]["x0.3"].holds and not v["patel.thm5.1"]["x0.3"].applicable  # above the estimated bound
    # ... and is broken above 2/λ_max (1.5·2/λ converges only after a spike; 3·2/λ diverges)
    assert not v["patel.thm5.1"]["x1.5"].holds and not v["patel.thm5.1"]["x3"].holds and sweep.loc[3.0, "diverged"]
    assert sweep.loc[1.5, "max_relative_loss"] > 1
    assert v["patel.sec5.step_threshold"][""].holds and c["largest_factor_keeping_rate"] == 0.9
    # the proof's step bound (M from below) is far below the measured largest step; the condition is only an estimate
    cons = v["patel.thm5.1.step_conservative"][""]
    assert cons.holds and c["step_bound_estimate"] < 0.01 * c["two_over_lambda"]
    step = v["patel.thm5.1.step"]["largest η keeping the rate"]
    assert not step.holds and step.details["estimated"] and "ESTIMATE" in step.statement
    assert c["M_estimate"] > 0 and c["term_two_m_over_beta_sigma2"] > c["two_over_lambda"]
    # Remark 5.2's count is an upper bound on the measured one; D_ℓ drifts more with larger η
    r52 = v["patel.remark5.2"][""]
    assert r52.holds and r52.details["k_measured"] <= r52.details["k_predicted"]
    assert v["patel.sec4.gd_drift"][""].holds and v["patel.sec4.gd_drift"][""].margin > 0.5
    nf = store.metrics()
    rel = nf[(nf.series == "normalized-flow") & (nf.quantity == "relative_loss")]["value"]
    assert rel.iloc[0] == pytest.approx(1.0) and rel.min() < 0.1
    assert {"descent_sweep", "descent_drift"} <= {p.stem for p in store.figures()}


def test_patel_open_smoke(tmp_path):
    store, _result, v = _run("patel-open", tmp_path)
    bt = store.table("bottleneck").set_index("start")
    # the bottleneck flow approaches the rank-limited optimum L̃_H (Eckart–Young), above the unconstrained one ...
    assert (bt["L_tilde_rank_capped"] > bt["L_tilde_unconstrained"] + 0.1).all()
    assert (bt["final_loss"] >= bt["L_tilde_rank_capped"] - 1e-10).all() and not bt["below_unconstrained"].any()
    assert (bt["end_rank"] == bt["rank_cap"]).all()
    for s in ("zero-first", "xavier"):
        b = v["patel.open.bottleneck"][s]
        assert b.holds and bt.loc[s, "final_relative_loss"] < 1e-8
        # ... and the verdicts say no theorem covers it
        assert not b.applicable and not b.assumptions["no bottleneck (d_ℓ ≥ min(d_x, d_y))"]
        assert not v["patel.thm3.1"][s].applicable and not v["patel.thm3.1"][s].assumptions["no bottleneck"]
    # the normalized flow stalls at a floor that shrinks with the rk4 step (roughly ∝ h^1.5 here)
    nf = store.table("normalized").sort_values("h")
    assert (np.diff(nf["floor"]) > 0).all() and nf["floor"].max() < 1e-2
    fl = v["patel.open.normalized_floor"][""]
    assert fl.holds and 1.0 < fl.margin < 2.5
    rate = v["patel.open.normalized_rate"][""]
    assert rate.holds == all(f["sqrt_rms"] < f["exp_rms"] for f in rate.details["fits"])
    assert "open_bottleneck_normalized" in {p.stem for p in store.figures()}
