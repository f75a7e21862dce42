"""Divergence and non-finite data (issue 13): training stops at the first non-finite or blown-up loss, the run
exits with code 3 and still writes figures and a report; verdicts on diverged series say so; margins follow
one sign convention; exact identities are compared within floating-point error."""

from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import gnndyn as gd
from gnndyn.cli import app
from gnndyn.models import teacher_student as ts
from gnndyn.models.losses import get_loss
from gnndyn.store import Recorder, RunStore
from gnndyn.theory import awasthi as athy
from gnndyn.theory.verdict import Verdict, aggregate, mark_diverged
from gnndyn.training import make_optimizer, train
from gnndyn.training.divergence import divergence_policy
from gnndyn.training.flow import descend

runner = CliRunner()
BACKWARD = ["--set", "graph.n=150", "--set", "graph.p_in=0.2", "--set", "graph.p_out=0.04", "--set", "model.depth=4",
            "--set", "model.width=4", "--set", "shallow_depth=2", "--set", "steps=12", "--set", "early_steps=2"]


def _flat(text: str) -> str:
    return " ".join(text.split())


def _setup():
    g = gd.csbm(60, 2, p_in=0.3, p_out=0.05, feature_dim=4, feature_sep=2.0, seed=0)
    P = gd.build_operator("gossip", g)
    y = torch.nn.functional.one_hot(g.y, 2).to(torch.float64)
    return g, P, y


def _train(factor, steps=40):
    g, P, y = _setup()
    model = gd.DeepGNN(4, 4, 2, depth=2, activation="identity", seed=0)
    rec = Recorder()
    with divergence_policy(factor):
        res = train(model, P, g.x, y, get_loss("mse"), make_optimizer("gd", 10.0), steps, recorder=rec,
                    series="gnn", raise_on_divergence=False)
    return res, rec


def test_training_stops_at_the_first_non_finite_loss_and_keeps_the_record():
    res, rec = _train(None)
    losses = rec.frame().query("quantity == 'loss'")["value"].to_numpy()
    # lr 10 on this problem: 0.496, 107, 3.3e17, 1.0e95, then inf at step 4 (computed by hand below)
    assert res.steps == 4 and not math.isfinite(res.final_loss)
    assert len(losses) == 4 and np.isfinite(losses).all() and losses[-1] > 1e90
    assert rec.divergences == [{"series": "gnn", "seed": 0, "step": 4, "message": str(res.diverged)}]


def test_training_stops_at_a_blow_up_of_the_loss_by_the_configured_factor():
    res, rec = _train(1e6)
    losses = rec.frame().query("quantity == 'loss'")["value"].to_numpy()
    assert res.steps == 2 and losses.size == 2  # 3.3e17 > 1e6 × 0.496 at step 2; step 1 (107) is below
    assert "exceeds 1e+06 × its initial value" in str(res.diverged)
    assert losses[1] < 1e6 * losses[0] < res.final_loss
    res2, _ = _train(1e3)
    assert res2.steps == 2
    res3, _ = _train(100.0)
    assert res3.steps == 1  # 107 > 100 × 0.496


def test_descend_uses_the_same_rule():
    w = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    model = torch.nn.Module()
    model.w = w

    def loss_fn(m):
        return (m.w ** 2).sum()

    # gradient descent with lr 5 on w²: w ← −9w, the loss grows by 81 per step; 81³ < 1e6 < 81⁴
    res = descend(model, loss_fn, 10, make_optimizer("gd", 5.0))
    assert res.diverged is not None and res.diverged.step == 4 and res.recorder.divergences[0]["step"] == 4
    w.data.fill_(1.0)
    with divergence_policy(None):
        res = descend(model, loss_fn, 10, make_optimizer("gd", 5.0))
    assert res.diverged is None and res.losses[-1] == pytest.approx(81.0 ** 10)


def test_divergence_factor_is_a_spec_field_and_validated():
    spec = gd.make_spec("backward-oversmoothing", {"divergence_factor": None})
    assert spec.divergence_factor is None
    with pytest.raises(gd.GnndynError, match="divergence_factor"):
        gd.make_spec("backward-oversmoothing", {"divergence_factor": 0.5})


def _sign_ok(c: dict) -> bool:
    m = c["margin"]
    return m is None or isinstance(m, str) or (m >= 0 if c["holds"] else m <= 0)


def test_backward_with_a_huge_step_exits_3_writes_everything_and_says_not_assessed(tmp_path):
    out = tmp_path / "D"
    res = runner.invoke(app, ["run", "backward-oversmoothing", "--out", str(out), *BACKWARD, "--set", "optimizers.gd=1e6"])
    assert res.exit_code == 3, res.output
    assert "diverged" in _flat(res.output)
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "diverged" and run["completed"] == ["metrics", "checks", "figures", "report"]
    assert run["divergences"] and all(d["series"].endswith("-gd") for d in run["divergences"])
    assert list((out / "figures").glob("*.png")) and not run.get("figure_errors")
    checks = json.loads((out / "checks.json").read_text())
    diverged = {d["series"] for d in run["divergences"]}
    for c in checks:
        if c["name"] != "training.finite" and any(s in json.dumps(c) for s in diverged):
            assert not c["holds"] and c["status"].startswith("not assessed"), c["name"]
        assert _sign_ok(c), c
    assert [c for c in checks if c["name"] == "training.finite" and not c["holds"]]
    thm2 = [c for c in checks if c["name"] == "keriven.thm2"]
    assert thm2 and not thm2[0]["holds"] and "diverged" in thm2[0]["status"]
    adam = [c for c in checks if c["name"].endswith(".adam")]
    assert adam and all("diverged" not in c["status"] for c in adam)  # the series that stayed finite keep their verdicts
    html = (out / "report.html").read_text()
    assert "TRAINING DIVERGED" in html and "not assessed" in html and "INCOMPLETE" not in html
    df = RunStore(out).metrics()
    for d in run["divergences"]:
        loss = df[(df["series"] == d["series"]) & (df["quantity"] == "loss")]
        assert len(loss) == d["step"] and loss["step"].max() == d["step"] - 1  # kept up to the divergence


def test_backward_identity_mse_huge_step_does_not_crash(tmp_path):
    res = runner.invoke(app, ["run", "backward-oversmoothing", "--out", str(tmp_path / "D"), *BACKWARD,
                              "--set", "optimizers.gd=1e6", "--set", "model.activation=identity", "--set", "loss=mse"])
    assert res.exit_code == 3, res.output
    run = json.loads((tmp_path / "D" / "run.json").read_text())
    assert run["status"] == "diverged" and "report" in run["completed"]


def test_awasthi_fig2_with_a_huge_step_still_draws_its_figure(tmp_path):
    out = tmp_path / "A"
    res = runner.invoke(app, ["run", "awasthi-fig2", "--out", str(out), "--set", "graph.n=16", "--set", "graph.degree=3",
                              "--set", "r=3", "--set", "train.steps=80", "--set", "train.record_points=10",
                              "--set", "train.lrs=[1000,1000,1000]"])
    assert res.exit_code == 3, res.output
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "diverged" and not run.get("figure_errors")
    assert (out / "figures" / "fig2_linear_loss.png").exists() and (out / "report.html").exists()


def test_figures_survive_infinite_and_overflowing_values(tmp_path):
    from gnndyn.report.plots import drawable

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2, 3], [1.0, 1e250, np.inf, np.nan])
    ax.scatter([0, 1], [1.0, np.inf])
    ax.set_yscale("log")
    notes = drawable(fig)
    assert notes and "not drawn" in notes[0]
    RunStore(tmp_path).save_figure(fig, "f")
    plt.close(fig)
    assert (tmp_path / "figures" / "f.png").stat().st_size > 0


def test_a_figure_function_that_fails_does_not_sink_the_run(tmp_path, monkeypatch):
    from gnndyn.experiments import base

    exp = base.get_experiment("gnn-vs-mlp")

    def broken(store):
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(base, "get_experiment", lambda name: base.Experiment(**{**exp.__dict__, "figures": broken}))
    spec = gd.make_spec("gnn-vs-mlp", {"graph.n": 60, "graph.p_in": 0.3, "graph.p_out": 0.05, "depths": [1, 2]})
    store, _ = base.run_experiment(spec, tmp_path / "D")
    run = store.read_json("run.json")
    assert "OverflowError" in run["figure_errors"]["gnn-vs-mlp"] and "report" in run["completed"]
    assert "could not be drawn" in (tmp_path / "D" / "report.html").read_text()


# ------------------------------------------------------------------------------------------ margins
def test_verdict_margin_sign_always_agrees_with_holds():
    v = Verdict("x", "p", "s", True, -2.05e-16, "w")
    assert v.margin == 0.0 and v.details["margin_raw"] == -2.05e-16
    v = Verdict("x", "p", "s", False, 4.18e-33, "w")
    assert math.isnan(v.margin) and v.details["margin_raw"] == 4.18e-33
    for holds, m in ((True, 0.5), (False, -0.5), (True, math.inf), (False, -math.inf), (True, math.nan)):
        v = Verdict("x", "p", "s", holds, m, "w")
        assert (v.margin == m or (math.isnan(m) and math.isnan(v.margin))) and "margin_raw" not in v.details
    agg = aggregate([Verdict("x", "p", "s", True, 0.2, "a"), Verdict("x", "p", "s", False, -0.1, "b")])
    assert not agg.holds and agg.margin == -0.1 and agg.details["places"] == ["a", "b"]


@pytest.mark.parametrize("margins,holds,expected", [
    ((0.3, math.inf), (True, True), 0.3),          # a vacuous bound is never the tightest of the held
    ((math.inf, 0.3), (True, True), 0.3),
    ((math.nan, 0.3), (True, True), 0.3),          # nothing compared: only when nothing else was
    ((0.3, math.nan, 0.1), (True, True, True), 0.1),
    ((math.nan, math.inf), (True, True), math.inf),
    ((-0.5, -math.inf), (False, False), -math.inf),  # a non-finite violation is the worst
    ((-math.inf, -0.5), (False, False), -math.inf),
    ((math.nan, -0.5), (False, False), -0.5),
    ((math.nan, 2.0), (False, True), math.nan),    # a violation before any holding verdict
])
def test_aggregate_takes_the_worst_margin_in_the_margin_order(margins, holds, expected):
    vs = [Verdict("x", "p", "s", h, m, f"w{i}") for i, (m, h) in enumerate(zip(margins, holds))]
    agg = aggregate(vs)
    assert agg.margin == expected or (math.isnan(expected) and math.isnan(agg.margin))
    i = next(i for i, v in enumerate(vs) if v.margin == agg.margin or (math.isnan(v.margin) and math.isnan(agg.margin)))
    assert agg.where == f"w{i}; worst of {len(vs)} seeds (seed {i})"
    assert agg.holds == all(holds) and agg.details["held"] == sum(holds)


def test_margin_convention_is_defined_in_the_verdict_docstring():
    doc = Verdict.__doc__
    for phrase in ("signed slack", "absolute", "relative", "≥ 0", "``nan``", "``+inf``", "not assessed"):
        assert phrase in doc, phrase


def test_mark_diverged_says_not_assessed_and_keeps_the_recorded_outcome():
    v = mark_diverged(Verdict("keriven.thm2", "p", "s", True, 1.98e19, "gnn-L40-gd"), "gnn-L40-gd at step 3")
    assert not v.holds and not v.applicable and math.isnan(v.margin)
    assert v.status.startswith("not assessed") and "holds" not in v.summary.split(":")[1].split("(")[0]
    assert v.details["holds_on_recorded_values"] is True and v.details["margin_recorded"] == 1.98e19


def test_smoke_runs_follow_the_margin_convention(tmp_path):
    res = runner.invoke(app, ["run", "oversmoothing-at-init", "--out", str(tmp_path / "D"), "--set", "graph.n=120",
                              "--set", "graph.p_in=0.2", "--set", "graph.p_out=0.04", "--set", "model.depth=4",
                              "--set", "model.width=8"])
    assert res.exit_code == 0, res.output
    checks = json.loads((tmp_path / "D" / "checks.json").read_text())
    assert checks and all(_sign_ok(c) for c in checks)


def test_eq46_on_a_regular_graph_holds_within_floating_point_error():
    # a 3-regular graph on 16 nodes, r = 3, the student near the teacher; L = 3
    deg = torch.full((16,), 3.0, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    W1s = torch.eye(3, dtype=torch.float64) + 0.1 * torch.randn(3, 3, generator=gen, dtype=torch.float64)
    W2s = 0.2 * torch.randn(3, 3, generator=gen, dtype=torch.float64)
    W1, W2 = W1s + 1e-6, W2s.clone()
    S = ts.appendix_c_scale(deg, W1, W2, W1s, W2s, 3)
    assert S == pytest.approx(math.sqrt(16) * float(torch.linalg.matrix_norm(torch.linalg.matrix_power(W1 + 3 * W2, 3))
                                                   + torch.linalg.matrix_norm(torch.linalg.matrix_power(W1s + 3 * W2s, 3))))
    # the numbers of docs/awasthi.md's long run: relative difference 1.2e-9, an absolute one of 3e-19
    exact, eq46 = 2.4893356549e-10, 2.4893356579e-10
    v = athy.check_eq46(exact, eq46, where="x", depth=3, regular=True, scale=S, r=3)
    assert v.holds and v.margin > 0 and v.details["floating_point_tolerance"] > abs(eq46 - exact)
    # a difference far above floating-point error is still a violation (with a negative margin)
    v = athy.check_eq46(exact, exact * (1 + 1e-3), where="x", depth=3, regular=True, scale=S, r=3)
    assert not v.holds and v.margin < 0
    # without a scale the old relative test is unchanged
    assert not athy.check_eq46(exact, eq46, where="x", depth=3, regular=True).holds
    assert athy.check_eq46(1.0, 1.0 + 1e-12, where="x", depth=1, regular=False).margin > 0


def test_pythagoras_near_the_optimum_allows_the_rounding_of_l_minus_l_star():
    from gnndyn.theory import xu

    L_star, L = 3.0, 3.0 + 1e-9  # rhs = L − L* = 1e-9 carries an absolute rounding error ~ ε·L ≈ 7e-16
    rhs = L - L_star
    lhs = rhs + 4e-16  # relative difference 4e-7 ≫ rtol, absolute one at the rounding level of L
    assert not xu.check_pythagoras([("x", lhs, rhs)]).holds  # the relative test alone calls it violated
    v = xu.check_pythagoras([("x", lhs, rhs, L + L_star)])
    assert v.holds and v.margin >= 0
    v = xu.check_pythagoras([("x", rhs * 1.01, rhs, L + L_star)])  # a real discrepancy is still caught
    assert not v.holds and v.margin < 0
    v = xu.check_pythagoras([("a", 1.0, 1.0 + 1e-12), ("b", 2.0, 2.0)])
    assert v.holds and v.margin == pytest.approx(1e-9 - 1e-12, rel=1e-3)  # unchanged without a scale


def test_backward_identity_mse_non_finite_without_blow_up_rule_does_not_crash(tmp_path):
    """divergence_factor=null: only the non-finite loss stops a series; the checks at that point see NaN."""
    res = runner.invoke(app, ["run", "backward-oversmoothing", "--out", str(tmp_path / "D"), *BACKWARD,
                              "--set", "steps=40", "--set", "optimizers.gd=3", "--set", "model.activation=identity",
                              "--set", "loss=mse", "--set", "divergence_factor=null"])
    assert res.exit_code == 3, res.output
    run = json.loads((tmp_path / "D" / "run.json").read_text())
    assert run["status"] == "diverged" and "report" in run["completed"] and not run.get("figure_errors")
    assert all("is nan" in d["message"] or "is inf" in d["message"] for d in run["divergences"])


def test_compare_bound_on_all_nan_values_is_not_a_hold():
    from gnndyn.theory.keriven.bounds import compare_bound

    holds, margin, i, ratio = compare_bound([math.nan, math.nan], [1.0, 1.0])
    assert not holds and math.isnan(margin) and math.isnan(ratio)
    assert compare_bound([0.5, 2.0], [1.0, 1.0])[:3] == (False, -1.0, 1)  # finite values unchanged


def test_ctrl_c_in_a_run_leaves_a_folder_that_says_it_was_interrupted(tmp_path, monkeypatch):
    """KeyboardInterrupt inside the experiment: what was recorded is kept, run.json says 'interrupted' (not a
    final status: the folder is incomplete, a sweep runs the point again), the CLI exits 130 saying so."""
    from gnndyn.experiments import base

    exp = base.get_experiment("gnn-vs-mlp")

    def stopped(spec, ctx):
        ctx.recorder.add_values("gnn", 0, 0, {"loss": 1.0})
        raise KeyboardInterrupt

    monkeypatch.setattr(base, "get_experiment", lambda name: base.Experiment(**{**exp.__dict__, "run": stopped}))
    out = tmp_path / "R"
    res = runner.invoke(app, ["run", "gnn-vs-mlp", "--set", "graph.n=60", "--out", str(out)])
    assert res.exit_code == 130, res.output
    assert "interrupted: what was recorded is in" in " ".join(res.output.split())
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted" and "KeyboardInterrupt" in run["error"] and "traceback" not in run
    assert "figures" not in run["completed"] and "metrics" in run["completed"]
    assert "interrupted" in RunStore(out).incomplete()
    from gnndyn.sweep.identity import read_record
    assert read_record(out)["status"] == "incomplete"
