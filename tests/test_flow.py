"""Gradient flow (torchdiffeq) and its discretization against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gnndyn.data import csbm
from gnndyn.errors import DivergenceError, GnndynError
from gnndyn.models.linear_gnn import XuGNN, XuObjective, make_xu_data
from gnndyn.operators import build_operator
from gnndyn.probes.base import Probe
from gnndyn.probes.schedules import every
from gnndyn.store.metrics import Recorder
from gnndyn.training.flow import FlowSolverError, descend, gradient_flow, hessian_top_eigenvalue
from gnndyn.training.optimizers import make_optimizer


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny products: one thread avoids spin-waiting


@pytest.fixture(scope="module")
def setup():
    g = csbm(40, 3, p_in=0.3, p_out=0.05, feature_dim=4, feature_sep=2.0, seed=1)
    data = make_xu_data(g.x, build_operator("gcn", g), torch.arange(0, 40, 3))
    obj = XuObjective("squared", g.y[data.nodes], 3)
    return data, obj


def _closed_form_one_layer(data, obj, W0: torch.Tensor, t: float) -> torch.Tensor:
    r"""H = 0 (f = W X_{*I}): dW/dt = −2(WG − Y)Gᵀ = WA + C is linear; [W, I] evolves by expm(t N)."""
    G, Y = data.blocks(0)[0], obj.target()
    m_y, m_x = W0.shape
    N = torch.zeros(m_x + m_y, m_x + m_y, dtype=torch.float64)
    N[:m_x, :m_x] = -2 * G @ G.T
    N[m_x:, :m_x] = 2 * Y @ G.T
    Z0 = torch.cat([W0, torch.eye(m_y, dtype=torch.float64)], 1)
    return (Z0 @ torch.linalg.matrix_exp(t * N))[:, :m_x]


def test_flow_matches_matrix_exponential_and_error_tightens_with_tolerance(setup):
    data, obj = setup
    model = XuGNN(4, [], 3, seed=0)
    W0 = model.W[0].detach().clone()
    times = np.linspace(0.0, 1.5, 7)
    exact = _closed_form_one_layer(data, obj, W0, float(times[-1]))
    scale = float(exact.abs().max())
    errs = []
    for tol in (1e-5, 1e-8, 1e-11):
        with torch.no_grad():
            model.W[0].copy_(W0)
        r = gradient_flow(model, lambda m: obj(m(data)), times, rtol=tol, atol=tol)
        err = float((model.W[0].detach() - exact).abs().max()) / scale
        errs.append(err)
        assert err < 50 * tol, (tol, err)
        assert r.error is None and r.steps > 0 and r.nfe >= 6 * r.steps
    assert errs[2] < errs[1] < errs[0]


def test_flow_records_time_and_solver_counts(setup):
    data, obj = setup
    model = XuGNN(4, [4], 3, seed=1)
    rec = Recorder()
    seen = []
    probe = Probe("t", lambda ctx: seen.append(ctx.extras["time"]) or {"gnorm": float(sum((g ** 2).sum() for g in ctx.grads))},
                  every(2))
    r = gradient_flow(model, lambda m: obj(m(data)), [0.0, 0.01, 0.02, 0.05], recorder=rec, series="f", probes=[probe])
    df = rec.frame()
    loss = df[df.quantity == "loss"].sort_values("step")
    np.testing.assert_allclose(loss["time"], [0.0, 0.01, 0.02, 0.05])
    assert (np.diff(loss["value"]) < 0).all()  # the flow decreases the loss
    assert seen == [0.0, 0.02, 0.05]  # schedule on the grid index, plus the last point
    steps = df[df.quantity == "solver_steps"].sort_values("step")["value"].to_numpy()
    assert steps[0] == 0 and steps[-1] == r.steps and (np.diff(steps) >= 0).all()


def test_stalled_solver_is_a_clear_error_and_keeps_the_record(setup):
    data, obj = setup
    model = XuGNN(4, [4, 4], 3, init_scale=3.0, seed=2)
    rec = Recorder()
    with pytest.raises(FlowSolverError, match="step budget exceeded") as info:
        gradient_flow(model, lambda m: obj(m(data)), [0.0, 0.001, 100.0], rtol=1e-10, atol=1e-12, max_steps=40,
                      recorder=rec)
    e = info.value
    assert e.t_reached == pytest.approx(0.001) and e.steps + e.rejected >= 40
    assert sorted(rec.frame().query("quantity == 'loss'")["time"]) == [0.0, 0.001]
    # the model is left at the last recorded state, and the failure can be returned instead of raised
    r = gradient_flow(model, lambda m: obj(m(data)), [0.0, 100.0], max_steps=20, raise_on_failure=False)
    assert r.error is not None and r.times.tolist() == [0.0]


def test_flow_rejects_bad_input(setup):
    data, obj = setup
    with pytest.raises(GnndynError, match="strictly increasing"):
        gradient_flow(XuGNN(4, [], 3), lambda m: obj(m(data)), [0.0, 0.0])
    with pytest.raises(GnndynError, match="float64"):
        gradient_flow(XuGNN(4, [], 3, dtype=torch.float32), lambda m: m.W[0].sum(), [0.0, 1.0])
    with pytest.raises(GnndynError, match="valid methods"):
        gradient_flow(XuGNN(4, [], 3), lambda m: obj(m(data)), [0.0, 1.0], method="rk45")


def test_euler_flow_equals_gradient_descent_at_t_equal_k_eta(setup):
    """Gradient descent is Euler's method on the flow: same states at t = kη."""
    data, obj = setup
    eta = 1e-3
    a, b = XuGNN(4, [4], 3, seed=3), XuGNN(4, [4], 3, seed=3)
    ra = descend(a, lambda m: obj(m(data)), 10, make_optimizer("gd", eta))
    rb = gradient_flow(b, lambda m: obj(m(data)), np.arange(11) * eta, method="euler", step_size=eta)
    np.testing.assert_allclose(ra.times, np.arange(11) * eta)
    np.testing.assert_allclose(ra.losses, rb.losses, rtol=1e-12)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)


def test_descend_stops_on_divergence_and_keeps_record(setup):
    data, obj = setup
    model = XuGNN(4, [4], 3, init_scale=2.0, seed=0)
    r = descend(model, lambda m: obj(m(data)), 2000, make_optimizer("gd", 5.0))
    assert isinstance(r.diverged, DivergenceError) and 0 < r.diverged.step < 2000
    assert r.losses.size == r.diverged.step and math.isfinite(r.losses[-1])


def test_sharpness_by_power_iteration_against_dense_hessian(setup):
    data, obj = setup
    model = XuGNN(4, [3, 4], 3, seed=4)
    lam, _ = hessian_top_eigenvalue(model, lambda m: obj(m(data)))
    params = list(model.parameters())
    names = [n for n, _ in model.named_parameters()]
    sizes = [p.numel() for p in params]

    def f(flat):
        chunks = torch.split(flat, sizes)
        return obj(torch.func.functional_call(model, {n: c.view_as(p) for n, p, c in zip(names, params, chunks)}, (data,)))

    H = torch.autograd.functional.hessian(f, torch.cat([p.detach().reshape(-1) for p in params]))
    assert lam == pytest.approx(float(torch.linalg.eigvalsh(H)[-1]), rel=1e-7)
