"""The Keriven experiments at smoke size: each runs, writes its report, and its verdicts carry the values
they claim; the output-layer solvers against slow references."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gnndyn.data.generators import csbm
from gnndyn.experiments import get_experiment, make_spec, run_experiment
from gnndyn.experiments.keriven.stationary import lstsq_output_layer, train_output_layer
from gnndyn.models.deep_gnn import DeepGNN
from gnndyn.models.losses import get_loss
from gnndyn.operators.builders import build_operator
from gnndyn.training import make_optimizer, train


def run_smoke(name, tmp_path, **extra):
    exp = get_experiment(name)
    spec = make_spec(name, {**exp.smoke, **extra})
    store, result = run_experiment(spec, tmp_path / name)
    for f in ("spec.json", "metrics.parquet", "checks.json", "report.html", "run.json"):
        assert (tmp_path / name / f).exists(), f
    assert list((tmp_path / name / "figures").glob("*.png"))
    checks = {c["name"]: c for c in json.loads((tmp_path / name / "checks.json").read_text())}
    return store, result, checks


# ------------------------------------------------------------------------------------------ output-layer solvers
def test_closed_form_output_layer_is_a_stationary_point():
    g = csbm(150, 2, p_in=0.3, p_out=0.05, seed=0)
    op = build_operator("gossip", g)
    loss = get_loss("mse")
    y = torch.nn.functional.one_hot(g.y, 2).double()
    model = DeepGNN(g.num_features, 8, 2, 3, "tanh", init="orthogonal", seed=0)
    with torch.no_grad():
        model(op, g.x, keep_signals=True)
        F = model.signals.F[-1]
        W, kept = lstsq_output_layer(F, y, 0.0)
        model.weights[-1].copy_(W)
    assert kept == 8
    # agrees with LAPACK's least squares (slow path)
    W_ref = torch.linalg.lstsq(F, y, driver="gelsd").solution
    torch.testing.assert_close(W, W_ref, rtol=1e-8, atol=1e-10)
    grads = torch.autograd.grad(loss(model(op, g.x), y), list(model.parameters()))
    scale = float(F.norm() * y.norm()) / 150
    assert float(grads[-1].norm()) < 1e-13 * max(scale, 1.0)  # machine precision
    assert float(grads[0].norm()) > 1e-6  # the other layers are not stationary at depth 3


def test_truncated_output_layer_keeps_only_large_singular_directions():
    gen = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(40, 3, generator=gen, dtype=torch.float64))
    F = U @ torch.diag(torch.tensor([10.0, 1.0, 1e-4], dtype=torch.float64))
    y = torch.randn(40, 1, generator=gen, dtype=torch.float64)
    W, kept = lstsq_output_layer(F, y, 1e-2)
    assert kept == 2
    assert torch.allclose(W, torch.stack([U[:, 0] @ y[:, 0] / 10, U[:, 1] @ y[:, 0] / 1, torch.tensor(0.0, dtype=torch.float64)]).unsqueeze(1))


def test_output_layer_training_matches_the_training_loop_with_trainable():
    """F fixed (fast path) vs the full model trained with trainable=[L] (slow path): same weights."""
    g = csbm(80, 2, p_in=0.3, p_out=0.05, seed=1)
    op = build_operator("gossip", g)
    loss = get_loss("cross-entropy")
    m1 = DeepGNN(g.num_features, 6, 2, 4, "tanh", init="orthogonal", seed=2)
    m2 = DeepGNN(g.num_features, 6, 2, 4, "tanh", init="orthogonal", seed=2)
    with torch.no_grad():
        m1(op, g.x, keep_signals=True)
        F = m1.signals.F[-1]
    W = train_output_layer(F, m1.weights[-1], g.y, loss, make_optimizer("gd", 0.7), 25)
    train(m2, op, g.x, g.y, loss, make_optimizer("gd", 0.7), 25, trainable=[4])
    torch.testing.assert_close(W, m2.weights[-1].detach(), rtol=1e-12, atol=1e-13)
    for a, b in zip(m1.weights[:-1], m2.weights[:-1]):
        assert torch.equal(a, b)


# ------------------------------------------------------------------------------------------ smoke runs
def test_oversmoothing_at_init_smoke(tmp_path):
    store, result, checks = run_smoke("oversmoothing-at-init", tmp_path)
    for k in ("keriven.thm1", "keriven.thm2", "keriven.thm4.mean_error", "keriven.thm4.gradients"):
        assert checks[k]["holds"] and checks[k]["applicable"], k
    thm2 = checks["keriven.thm2"]["details"]
    assert all(m <= b * (1 + 1e-9) for m, b in zip(thm2["measured"], thm2["bound_per_layer"]))
    dip = checks["keriven.backward_dip"]
    L = dip["details"]["depth"]
    assert dip["holds"] == (0 < dip["details"]["layer"] < L)
    assert dip["details"]["position"] == pytest.approx(dip["details"]["layer"] / L)
    df = store.metrics()
    eb = df[(df.quantity == "smoothing_B") & (df.series == "gnn")].sort_values("layer")["value"].to_numpy()
    assert int(np.argmin(eb)) == dip["details"]["layer"]
    assert result.summary["backward dip layer argmin_k E(B^(k)) (median)"] == dip["details"]["layer"]


def test_oversmoothing_at_init_says_when_an_override_leaves_the_assumptions(tmp_path):
    _, result, checks = run_smoke("oversmoothing-at-init", tmp_path, **{"operator.name": "gcn", "model.activation": "relu"})
    t2 = checks["keriven.thm2"]
    assert not t2["applicable"]
    failed = [k for k, v in t2["assumptions"].items() if not v]
    assert any(k.startswith("A1") for k in failed) and any(k.startswith("A4") for k in failed)
    assert "D_ρ = ∞" in t2["where"]
    assert any("leaves the theorems' assumptions" in str(v) for v in result.summary.values())


def test_backward_oversmoothing_smoke(tmp_path):
    store, result, checks = run_smoke("backward-oversmoothing", tmp_path)
    spec = store.spec()
    for opt in spec["optimizers"]:
        stuck = checks[f"keriven.fig1.deep_gnn_stuck.{opt}"]
        d = stuck["details"]
        high = d["final_loss"] >= spec["high_loss_fraction"] * d["uninformative_loss"]
        assert stuck["holds"] == (min(d["drop_factors"]) >= spec["drop_factor"] and high)
        assert d["uninformative_loss"] == pytest.approx(math.log(2))  # balanced two-class CSBM
        shallow = checks[f"keriven.fig1.shallow_gnn_trains.{opt}"]
        assert shallow["holds"] == (shallow["details"]["final_loss"] <= spec["trained_loss_fraction"] * math.log(2))
        # the drop factors are recomputed from the stored metrics
        df = store.metrics()
        g = df[(df.quantity == "grad_norm") & (df.series == f"gnn-L{spec['model']['depth']}-{opt}")]
        pv = g.pivot_table(index="step", columns="layer", values="value")
        early = pv[pv.index <= spec["early_steps"]].max()
        late = pv[pv.index >= spec["steps"] / 2].max()
        np.testing.assert_allclose((early / late).to_numpy(), d["drop_factors"], rtol=1e-12)
    # the shallow GNN trains with gradient descent at this size (measured: final loss 0.035 of 0.693)
    assert checks["keriven.fig1.shallow_gnn_trains.gd"]["holds"]
    for k in ("keriven.thm2", "keriven.thm4.mean_error", "keriven.thm4.gradients"):
        assert checks[k]["holds"], k


def test_stationary_output_layer_smoke(tmp_path):
    store, result, checks = run_smoke("stationary-output-layer", tmp_path)
    v = checks["keriven.thm3.regression-centered"]
    d = v["details"]
    assert d["alpha"] == 0.0 and d["xi_q_alpha_rate"] == pytest.approx(0.5 * math.log(1 / d["lambda"]))
    assert v["holds"] and v["applicable"] and d["fitted_rate"] >= d["predicted_rate"]
    assert d["ratio"] == pytest.approx(d["fitted_rate"] / d["predicted_rate"])
    # case 1 (one-hot labels): the output layer must expand to fit the label mean, leaving the α-condition
    assert not checks["keriven.thm3.regression"]["applicable"]
    for k, c in checks.items():
        if k.startswith("keriven.thm2") or k.startswith("keriven.thm4.gradients") or k == "keriven.thm3.eq23":
            assert c["holds"], k
    table = store.table("depth_sweep")
    exact = table[table.variant == "exact"]
    trunc = table[(table.variant != "exact") & (table.task == "regression-centered")]
    assert (exact.groupby("depth")["s_out"].max() > trunc.groupby("depth")["s_out"].max()).all()


def test_spurious_stationary_points_smoke(tmp_path):
    store, result, checks = run_smoke("spurious-stationary-points", tmp_path, delta=0.05)
    cor2, eq3 = checks["keriven.cor2"], checks["keriven.cor2.eq3_loss"]
    assert cor2["holds"] and not eq3["holds"]
    table = store.table("points")
    deep = table[table.sigma == 1.0]
    np.testing.assert_allclose(deep["loss_proof"], 1.0, rtol=1e-12)  # 𝓛(0) = (1/n)Σ‖yᵢ‖² = σ_y²
    np.testing.assert_allclose(deep["loss"], 0.5, rtol=1e-12)  # eq. (3)'s ½
    assert (deep["inner_delta"] == 0).all()  # W⁽ᴸ⁾ = 0 kills every B⁽ᵏ⁾, k < L
    spec = store.spec()
    sig = table[(table.depth == spec["model"]["depth"]) & (table.n == spec["graph"]["n"])]
    sig = sig.drop_duplicates("sigma").set_index("sigma")
    assert len(sig) == len(spec["sigmas"])
    # δ is linear in the labels: δ(σ)/σ is constant
    ratios = (sig["global_delta"] / sig.index.to_series()).to_numpy()
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-10)
    assert checks["keriven.cor2.open_set"]["holds"] and checks["keriven.cor2.open_set"]["details"]["r_star_hidden"] > 0


def test_gnn_vs_mlp_smoke(tmp_path):
    _, result, checks = run_smoke("gnn-vs-mlp", tmp_path)
    assert checks["keriven.prop1"]["holds"] and checks["keriven.prop2"]["holds"] and checks["keriven.prop2.gnn"]["holds"]
    assert result.summary["Prop 1: max over layers, depths, GNN and MLP of |grad norm - 1|"] < 1e-13
    assert result.summary["Prop 2 (MLP): max over depths of |grad_k - 1|"] < 1e-13
    assert result.summary["Prop 2 (MLP): max over depths of the output-layer gradient"] == 0.0


def test_drop_factors_in_words_say_infinity_and_no_measure_plainly():
    from gnndyn.experiments.keriven.backward import _drops_text

    assert _drops_text(np.array([3.0, 0.5, 2.0])) == "smallest drop factor 0.5 (layer 1), median 2"
    assert _drops_text(np.array([np.nan, 4.0, np.inf, np.inf])) == "smallest drop factor 4 (layer 1), median ∞"
    assert _drops_text(np.array([np.nan, np.nan])) == "no drop factor measured (the gradients were not finite)"
