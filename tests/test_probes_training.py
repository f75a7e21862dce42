"""Probes against slow references; optimizers against torch.optim; the training loop's record and divergence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnndyn.data import csbm
from gnndyn.errors import DivergenceError, GnndynError
from gnndyn.models import DeepGNN, get_loss
from gnndyn.operators import build_operator
from gnndyn.probes import (
    at, default_probes, dirichlet_energy, dirichlet_probe, every, log_spaced, mean_output_error, row_norm_max,
    smoothing, smoothing_pairwise,
)
from gnndyn.store import Recorder, select
from gnndyn.training import Adam, GradientDescent, make_optimizer, train


@pytest.mark.parametrize("shape", [(1, 3), (7, 1), (50, 4), (33,)])
def test_smoothing_matches_pairwise_definition(shape):
    X = torch.randn(*shape, dtype=torch.float64)
    assert smoothing(X) == pytest.approx(smoothing_pairwise(X), rel=1e-12, abs=1e-15)


def test_smoothing_of_constant_rows_is_zero_and_bounded_by_row_norm():
    X = torch.ones(10, 3, dtype=torch.float64) * torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    assert smoothing(X) == pytest.approx(0.0, abs=1e-15)
    Y = torch.randn(40, 3, dtype=torch.float64)
    assert smoothing(Y) <= row_norm_max(Y)  # Keriven App. A: ℰ(X) ≤ ‖X‖_{2,∞}


def test_dirichlet_energy_is_trace_of_laplacian_quadratic_form():
    g = csbm(80, 2, p_in=0.2, p_out=0.05, feature_dim=3, feature_sep=1.0, seed=0)
    L = build_operator("laplacian", g).scipy().toarray()
    X = torch.randn(80, 3, dtype=torch.float64)
    assert dirichlet_energy(X, g.edge_index) == pytest.approx(float(np.trace(X.numpy().T @ L @ X.numpy())), rel=1e-12)


def test_mean_output_error():
    B = torch.tensor([[1.0, 2.0], [3.0, -4.0]], dtype=torch.float64)
    assert mean_output_error(B) == pytest.approx(np.hypot(4.0, -2.0))


def test_schedules():
    assert [s for s in range(10) if every(3)(s)] == [0, 3, 6, 9]
    assert [s for s in range(10) if at([2, 5])(s)] == [2, 5]
    ls = log_spaced(1000, 20)
    steps = sorted(ls.steps)
    assert steps[0] == 0 and steps[-1] == 1000 and 10 <= len(steps) <= 21
    with pytest.raises(GnndynError):
        every(0)


def test_adam_matches_torch_optim():
    torch.manual_seed(0)
    params = [torch.randn(4, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)]
    ref = [p.clone().requires_grad_(True) for p in params]
    topt = torch.optim.Adam(ref, lr=0.05, betas=(0.8, 0.99), eps=1e-7)
    ours = Adam(lr=0.05, beta1=0.8, beta2=0.99, eps=1e-7)
    state = ours.init(params)
    cur = params
    for t in range(25):
        grads = [torch.sin(p * (t + 1)) + p**2 for p in cur]
        for r, g in zip(ref, grads):
            r.grad = g.clone()
        topt.step()
        cur, state = ours.update(cur, grads, state)
        for a, b in zip(cur, ref):
            torch.testing.assert_close(a, b.detach(), atol=1e-13, rtol=1e-12)


def test_gradient_descent_update_and_errors():
    gd = GradientDescent(0.5)
    (p,), _ = gd.update([torch.ones(2)], [torch.full((2,), 4.0)], gd.init([torch.ones(2)]))
    assert torch.equal(p, torch.full((2,), -1.0))
    with pytest.raises(GnndynError, match="learning rate"):
        make_optimizer("gd", -1.0)
    with pytest.raises(GnndynError, match="valid optimizers"):
        make_optimizer("sgdd", 0.1)


@pytest.fixture(scope="module")
def small():
    g = csbm(100, 2, p_in=0.15, p_out=0.03, feature_dim=6, feature_sep=2.0, seed=0)
    return g, build_operator("gossip", g)


def test_training_records_probes_on_schedule_and_decreases_loss(small):
    g, op = small
    model = DeepGNN(6, 8, 2, 3, "tanh", seed=0)
    probes = default_probes(expensive_every=5) + [dirichlet_probe(every(10))]
    res = train(model, op, g.x, g.y, get_loss("cross-entropy"), make_optimizer("gd", 0.5), 20, probes=probes,
                edge_index=g.edge_index, series="gnn")
    df = res.recorder.frame()
    loss = select(df, "loss")["value"].to_numpy()
    assert len(loss) == 21 and loss[-1] < loss[0]
    assert sorted(select(df, "spectral_norm")["step"].unique()) == [0, 5, 10, 15, 20]
    assert sorted(select(df, "dirichlet_X")["step"].unique()) == [0, 10, 20]
    assert set(select(df, "grad_norm")["layer"]) == {0, 1, 2, 3}


def test_trainable_subset_leaves_other_layers_fixed(small):
    g, op = small
    model = DeepGNN(6, 8, 2, 3, "tanh", seed=0)
    before = [w.detach().clone() for w in model.weights]
    train(model, op, g.x, g.y, get_loss("mse"), make_optimizer("gd", 0.5), 5, trainable=[3])
    assert all(torch.equal(before[k], model.weights[k].detach()) for k in range(3))
    assert not torch.equal(before[3], model.weights[3].detach())


def test_divergence_stops_at_the_step_and_keeps_the_record(small):
    g, op = small
    model = DeepGNN(6, 8, 2, 2, "identity", init_scale=3.0, seed=0)
    rec = Recorder()
    with pytest.raises(DivergenceError) as e:
        train(model, op, g.x, g.y, get_loss("mse"), make_optimizer("gd", 1e6), 50, recorder=rec)
    step = e.value.step
    assert 0 < step < 50 and f"step {step}" in str(e.value)
    losses = select(rec.frame(), "loss")
    assert losses["step"].max() == step - 1 and np.isfinite(losses["value"]).all()
