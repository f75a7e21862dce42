"""Keriven's bounds and constructions against hand computations, autograd and planted values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gnndyn.data.graph import Graph
from gnndyn.errors import GnndynError
from gnndyn.models.activations import get_activation
from gnndyn.models.deep_gnn import DeepGNN
from gnndyn.models.losses import get_loss
from gnndyn.operators.builders import build_operator, identity
from gnndyn.probes import measures
from gnndyn.theory import keriven as thy

CYCLE_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (0, 2)]


def tiny_graph(seed: int = 0) -> Graph:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    return Graph.from_edges(np.array(CYCLE_EDGES).T, 5, x=x, y=torch.tensor([0, 1, 0, 1, 1]))


def measured_point(op, g: Graph, depth: int, act: str = "tanh", loss_name: str = "mse", init: str = "glorot",
                   scale: float = 1.0, seed: int = 0):
    model = DeepGNN(3, 4, 2, depth, act, init=init, init_scale=scale, seed=seed)
    loss = get_loss(loss_name)
    out = model(op, g.x, keep_signals=True)
    value = loss(out, g.y)
    grads = torch.autograd.grad(value, list(model.parameters()))
    sig = model.signals
    return {
        "smoothing_B": [measures.smoothing(b) for b in sig.B],
        "mean_error_B": [measures.mean_output_error(b) for b in sig.B],
        "grad_norm": [float(torch.linalg.norm(t)) for t in grads],
        "s": model.spectral_norms(),
        "smoothing_X": [measures.smoothing(t) for t in sig.X],
    }, thy.Constants.measure(g.x, get_activation(act), loss, g.y, 2)


# ------------------------------------------------------------------------------------------ Thm 2 by hand
def thm2_by_hand(lam, s, D_X, E0, DL, DLp, Drho, n, e_out):
    """App. A.3 written out with explicit loops and math.prod (independent of the library code)."""
    L = len(s) - 1
    S_L = math.prod(s)
    A_L = S_L ** 2 * D_X * DL + S_L * DLp
    out = []
    for k in range(L + 1):
        total = 0.0
        for ell in range(k, L):
            total += lam ** (2 * ell + 1 - k) * math.prod(s[k + 1: ell + 1])
        out.append(Drho * E0 * A_L / n * total + lam ** (L - k) * math.prod(s[k + 1: L + 1]) * e_out)
    return out


def test_thm2_bound_equals_hand_computation_on_a_tiny_graph():
    g = tiny_graph()
    op = build_operator("gossip", g)
    lam = op.spectral().lambda_
    vals, c = measured_point(op, g, depth=4)
    per = thy.thm2_bound(lam, vals["s"], c, form="per-layer", e_out=vals["smoothing_B"][-1])
    hand = thm2_by_hand(lam, vals["s"], c.D_X, c.E_X0, c.D_loss, c.D_loss_prime, c.D_rho, 5, vals["smoothing_B"][-1])
    np.testing.assert_allclose(per, hand, rtol=1e-13)
    # the checker reports the same numbers and the measured ℰ(B⁽ᵏ⁾) lies below them (Assumptions 1–4 hold)
    v = thy.check_thm2(vals["smoothing_B"], lam, vals["s"], c,
                       assumptions=thy.assumptions_1_4(op.spectral(), get_activation("tanh"), get_loss("mse")))
    np.testing.assert_allclose(v.details["bound_per_layer"], hand, rtol=1e-13)
    assert v.holds and v.applicable
    # max-s form: the statement's closed form, with the proof's D_𝒳
    s = max(vals["s"])
    L = 4
    assert lam ** 2 * s < 1  # the closed form is finite on this point
    k = np.arange(L + 1)
    lead = (c.D_X * c.D_loss * s ** (L + 1) + c.D_loss_prime) / 5
    hand_max = lead * (c.D_rho * c.D_X * s ** (L + 1) * lam ** (k + 1) / (1 - lam ** 2 * s) + (lam * s) ** (L - k))
    np.testing.assert_allclose(v.details["bound_max_s"], hand_max, rtol=1e-13)
    # the printed statement has the same first term without D_𝒳
    printed = lead * (c.D_rho * s ** (L + 1) * lam ** (k + 1) / (1 - lam ** 2 * s) + (lam * s) ** (L - k))
    np.testing.assert_allclose(v.details["bound_max_s_printed"], printed, rtol=1e-13)


def test_thm2_closed_form_is_infinite_when_lambda2_s_reaches_1():
    c = thy.Constants(D_X=1.0, E_X0=0.5, D_loss=1.0, D_loss_prime=1.0, D_rho=0.5, n_nodes=10, n_loss=10)
    assert np.isinf(thy.thm2_bound(0.9, [1.3, 1.3, 1.3], c, form="max-s")).all()  # 0.81·1.3 > 1
    assert np.isfinite(thy.thm2_bound(0.9, [1.3, 1.3, 1.3], c, form="per-layer")).all()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("loss_name", ["mse", "cross-entropy"])
def test_exact_bounds_hold_on_random_small_networks(seed, loss_name):
    """Thm 1, Thm 2, the mean-error recursion and gradient chain of App. A.9 are exact inequalities."""
    g = tiny_graph(seed)
    op = build_operator("gossip", g)
    facts = op.spectral()
    vals, c = measured_point(op, g, depth=6, loss_name=loss_name, seed=seed, scale=1.3)
    a = thy.assumptions_1_4(facts, get_activation("tanh"), get_loss(loss_name), g.y, 2)
    lam = facts.lambda_
    assert thy.check_thm1(vals["smoothing_X"], lam, vals["s"], assumptions=a).holds
    assert thy.check_thm2(vals["smoothing_B"], lam, vals["s"], c, assumptions=a).holds
    assert thy.check_mean_error(vals["mean_error_B"], lam, vals["s"], c, assumptions=a).holds
    v = thy.check_gradient_bound(vals["grad_norm"], lam, vals["s"], c, e_out=vals["smoothing_B"][-1],
                                 eps_out=vals["mean_error_B"][-1], assumptions=a)
    assert v.holds and v.applicable


def test_mean_error_recursion_by_hand_and_the_printed_slip():
    lam, s = 0.6, [0.9, 1.1, 0.8, 1.2]
    c = thy.Constants(D_X=2.0, E_X0=1.5, D_loss=1.0, D_loss_prime=1.0, D_rho=0.25, n_nodes=7, n_loss=7)
    eps = 0.3
    L = 3
    S = math.prod(s)
    coef = c.D_rho * c.E_X0 * (S * S * c.D_X + S)
    hand = [coef * sum(lam ** (l + 1) * math.prod(s[k + 1: l + 1]) for l in range(k, L))
            + math.prod(s[k + 1: L + 1]) * eps for k in range(L + 1)]
    np.testing.assert_allclose(thy.mean_error_bound(lam, s, c, eps), hand, rtol=1e-14)
    printed = thy.mean_error_bound(lam, s, c, eps, form="per-layer-printed")
    # λ^{2ℓ+1−k} ≤ λ^{ℓ+1}, equal only for ℓ = k: the printed display is smaller wherever the sum has two terms
    assert (printed[:-2] < np.asarray(hand)[:-2]).all() and np.allclose(printed[-2:], hand[-2:], rtol=1e-14)
    smax = max(s)
    k = np.arange(L + 1)
    np.testing.assert_allclose(thy.mean_error_bound(lam, s, c, eps, form="max-s"),
                               coef * lam ** (k + 1) / (1 - lam * smax) + smax ** (L - k) * eps, rtol=1e-14)


def test_violations_are_attributed_to_assumptions_or_flagged_as_bugs():
    a_ok = {thy.A1: True, thy.A2: True}
    a_bad = {thy.A1: False, thy.A2: True}
    e = [1.0, 2.0, 3.0]  # grows: violates ℰ(X⁽ᵏ⁾) ≤ λᵏ s^(0:k) ℰ(X⁽⁰⁾) with s = 1
    v_bad = thy.check_thm1(e, 0.5, [1.0, 1.0, 1.0], assumptions=a_bad)
    assert not v_bad.holds and not v_bad.applicable and "failed assumption" in v_bad.where and "A1" in v_bad.where
    v_bug = thy.check_thm1(e, 0.5, [1.0, 1.0, 1.0], assumptions=a_ok)
    assert not v_bug.holds and v_bug.applicable and "VIOLATION WITH EVERY ASSUMPTION MET" in v_bug.where


# ------------------------------------------------------------------------------------------ assumptions
def test_assumptions_on_operators_activations_and_losses():
    g = tiny_graph()
    tanh, relu, softplus = (get_activation(a) for a in ("tanh", "relu", "softplus"))
    gossip = build_operator("gossip", g).spectral()
    assert thy.assumptions_1_4(gossip, tanh, get_loss("mse")) == {thy.A1: True, thy.A2: True, thy.A3: True, thy.A4: True}
    assert not thy.assumptions_1_4(build_operator("gcn", g).spectral(), tanh)[thy.A1]  # not stochastic
    assert not thy.assumptions_1_4(build_operator("random-walk", g).spectral(), tanh)[thy.A1]  # not symmetric
    assert not thy.assumptions_1_4(identity(g).spectral(), tanh)[thy.A1]  # 1 has multiplicity n
    assert not thy.assumptions_1_4(gossip, relu)[thy.A4]
    assert not thy.assumptions_1_4(gossip, softplus)[thy.A2]
    assert "not stochastic" in thy.why_not_a1(build_operator("gcn", g).spectral())
    notes = thy.assumption_notes(gossip, relu, get_loss("mse"))
    assert "not Lipschitz" in notes[thy.A4]


def test_loss_constants_of_assumption_3():
    mse, ce = get_loss("mse"), get_loss("cross-entropy")
    ce4 = thy.loss_constants(ce, num_classes=4)
    assert (ce4.D, ce4.D_prime) == (0.0, 5.0)  # (0, C + 1), eq. (20)
    oh = thy.loss_constants(mse, torch.tensor([0, 1, 2]))
    assert (oh.D, oh.D_prime) == (1.0, 1.0)  # one-hot labels
    big = thy.loss_constants(mse, torch.tensor([[3.0, 4.0], [0.0, 1.0]]))
    assert big.D == 1.0 and big.D_prime == pytest.approx(5.0) and "outside the unit ball" in big.note
    # Assumption 3 itself, measured on random outputs: ‖∂ℓᵢ/∂h‖ ≤ D‖h‖ + D′
    gen = torch.Generator().manual_seed(0)
    h = 3 * torch.randn(50, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (50,), generator=gen)
    grad_ce = torch.softmax(h, 1) - torch.nn.functional.one_hot(y, 4)
    assert (grad_ce.norm(dim=1) <= 5.0).all()
    lc = thy.loss_constants(mse, y, 4)
    D, Dp = lc.D, lc.D_prime
    grad_mse = h - torch.nn.functional.one_hot(y, 4)
    assert (grad_mse.norm(dim=1) <= D * h.norm(dim=1) + Dp + 1e-12).all()


def test_constants_measure_D_X_and_E_X0():
    g = tiny_graph()
    c = thy.Constants.measure(g.x, get_activation("tanh"), get_loss("mse"), g.y, 2)
    assert c.D_X == pytest.approx(float(g.x.norm(dim=1).max()))
    assert c.E_X0 == pytest.approx(measures.smoothing_pairwise(g.x)) and c.E_X0 <= c.D_X
    assert c.D_rho == pytest.approx(4 / (3 * math.sqrt(3)))


# ------------------------------------------------------------------------------------------ rates
def test_xi_alpha_ranges_match_the_paper():
    assert thy.xi(1, 0.0) == 0.5 and thy.xi(2, 0.0) == 0.5
    assert thy.alpha_max_thm3(1) == pytest.approx(0.38, abs=0.005)  # "roughly 0.38 for q = 1"
    assert thy.alpha_max_thm3(2) == pytest.approx(0.21, abs=0.01)  # "and 0.21 for q = 2"
    for q in (1, 2):
        a = thy.alpha_max_thm3(q)
        assert abs(thy.xi(q, a)) < 1e-12 and thy.xi(q, a - 1e-3) > 0 > thy.xi(q, a + 1e-3)
    assert thy.alpha_max_cor1(2) == pytest.approx(1 - math.sqrt(0.5))
    lo, hi = thy.beta_range_cor1(2, 0.1)
    assert (lo, hi) == pytest.approx((0.2, 0.8 / 0.9))
    assert thy.cor1_exponent(2, 0.1, lo) == pytest.approx(0.0) and thy.cor1_exponent(2, 0.1, hi) == pytest.approx(0.0)
    # the two terms of (36) decay at rates (1−α)β − qα and 1 − β − qα: at the proof's midpoint β they are
    # (1−α)ξ_q(α) and ξ_q(α); the best β = 1/(2−α) equalizes them at 2(1−α)ξ_q(α)/(2−α)
    # hand-computed: (q, α) → (midpoint β, ξ_q(α)); e.g. q = 1, α = 0.2: β ∈ (0.25, 0.8), ξ = 0.44/1.6
    by_hand = {(1, 0.2): (0.525, 0.275), (2, 0.1): (23 / 45, 0.52 / 1.8), (1, 0.0): (0.5, 0.5)}
    for (q, a), (mid_ref, xi_ref) in by_hand.items():
        lo, hi, mid = thy.beta_range_thm4(q, a)
        assert (mid, thy.xi(q, a)) == pytest.approx((mid_ref, xi_ref), rel=1e-14)
        assert (1 - a) * mid - q * a == pytest.approx((1 - a) * thy.xi(q, a))
        b = 1 / (2 - a)
        assert (1 - a) * b - q * a == pytest.approx(1 - b - q * a) == pytest.approx(thy.thm4_exponent_from_proof(q, a))
        assert thy.thm4_exponent_from_proof(q, a) <= thy.xi(q, a) + 1e-15
    assert thy.expansion_rate([1.0, 0.5], 0.8) == 0.0
    assert thy.expansion_rate([0.8 ** -0.3], 0.8) == pytest.approx(0.3)


def test_fitted_exponent_recovers_a_planted_exponent():
    rng = np.random.default_rng(0)
    L = np.arange(5, 80, 5, dtype=float)
    planted = 0.173
    y = 3.0 * np.exp(-planted * L) * np.exp(0.05 * rng.standard_normal(L.size))
    fit = thy.fit_exponent(L, y)
    assert fit.rate == pytest.approx(planted, abs=3 * fit.stderr + 1e-3) and fit.r2 > 0.99
    exact = thy.fit_exponent(L, 2.0 * np.exp(-planted * L))
    assert exact.rate == pytest.approx(planted, rel=1e-12) and exact.intercept == pytest.approx(math.log(2.0))
    ok = thy.check_rate("r", "p", "s", L, y, predicted=0.1)
    bad = thy.check_rate("r", "p", "s", L, y, predicted=0.5)
    assert ok.holds and ok.details["ratio"] == pytest.approx(fit.rate / 0.1)
    assert not bad.holds and bad.margin < 0
    with pytest.raises(GnndynError):
        thy.fit_exponent([1, 1, 1], [1.0, 2.0, 3.0])


def test_stationarity_of_definition_1():
    st = thy.stationarity([0.5, 1e-4, 2e-4, 3e-3], delta=1e-3)
    assert st.per_layer == [False, True, True, False]
    assert (st.delta_global, st.delta_def1, st.delta_inner, st.delta_output) == (0.5, 3e-3, 0.5, 3e-3)
    assert not st.is_global
    assert thy.first_stationary_step([0, 1, 2, 3, 4], [1.0, 1e-4, 1.0, 1e-4, 1e-5], 1e-3) == 3
    assert thy.first_stationary_step([0, 1], [1.0, 1.0], 1e-3) is None


# ------------------------------------------------------------------------------------------ Prop 1, Prop 2
@pytest.mark.parametrize("depth", [1, 3, 12])
def test_prop1_gradients_are_exactly_one(depth):
    g = tiny_graph()
    for op in (build_operator("gossip", g), identity(g)):
        ev = thy.prop1(op, depth)
        np.testing.assert_allclose(ev.grads, 1.0, rtol=0, atol=1e-14)
        assert max(ev.smoothing_B) < 1e-15 and max(ev.spectral_norms) == 1.0
    assert thy.check_prop1(build_operator("gossip", g), depth).holds


@pytest.mark.parametrize("depth,k", [(1, 0), (4, 0), (4, 2), (9, 8)])
def test_prop2_mlp_output_stationary_and_layer_k_gradient_one(depth, k):
    n = 64
    mlp = identity(Graph.from_edges(np.zeros((2, 0), dtype=np.int64), n))
    x, y = thy.prop2_data(n, seed=depth)
    ev = thy.prop2(mlp, depth, k, x, y)
    assert ev.grads[depth] == 0.0
    assert ev.grads[k] == pytest.approx(1.0, abs=1e-14)
    assert all(gr == 0.0 for i, gr in enumerate(ev.grads) if i not in (k, depth))
    assert thy.check_prop2(mlp, depth, k, seed=depth).holds


@pytest.mark.parametrize("depth", [1, 5, 20])
def test_prop2_with_gossip_matches_closed_form_and_bound(depth):
    from gnndyn.data.generators import csbm

    g = csbm(80, 2, p_in=0.3, p_out=0.05, seed=1)
    op = build_operator("gossip", g)
    lam = op.spectral().lambda_
    x, y = thy.prop2_data(80, seed=3)
    ev = thy.prop2(op, depth, 0, x, y)
    # closed form by a dense matrix power (slow path) and by sparse products (fast path)
    P = torch.from_numpy(op.scipy().toarray())
    dense = float(-(x.T @ torch.linalg.matrix_power(P, depth + 1) @ y) / 80)
    assert thy.prop2_closed_form(op, depth, x, y) == pytest.approx(dense, rel=1e-12)
    assert ev.grads[0] == pytest.approx(abs(dense), rel=1e-10)
    assert ev.grads[0] <= thy.prop2_gnn_bound(x, y, lam, depth)
    assert thy.check_prop2_gnn(op, depth, 0, lam, seed=3).holds


def test_cor2_point_has_zero_inner_gradients_and_loss_sigma2():
    from gnndyn.data.generators import csbm

    g = csbm(60, 2, p_in=0.3, p_out=0.05, seed=2)
    op = build_operator("gossip", g)
    y = thy.centered_labels(g.y, 0.7)
    assert float(y.sum(0).abs().max()) < 1e-12 and torch.allclose(y.norm(dim=1), torch.full((60,), 0.7))
    model = thy.zero_output_layer(DeepGNN(g.num_features, 6, 2, 5, "tanh", init="orthogonal"))
    ev = thy.evaluate(model, op, g.x, y)
    assert all(gr == 0.0 for gr in ev.grads[:-1])
    assert ev.loss == pytest.approx(0.5 * 0.49, rel=1e-12)  # eq. (3)'s ½: σ_y²/2
    gen = torch.Generator().manual_seed(0)
    thy.perturb_weights(model, 0.5, 1.05, gen)
    assert max(model.spectral_norms()) <= 1.05 + 1e-12


def test_eq23_mean_error_bound_holds_after_training_the_output_layer():
    from gnndyn.data.generators import csbm
    from gnndyn.experiments.keriven.stationary import lstsq_output_layer

    g = csbm(120, 2, p_in=0.6, p_out=0.3, seed=0)  # λ ≈ 0.52: D_F > s^(0:L)λ^{L+1}ℰ(X⁽⁰⁾) at L = 8
    op = build_operator("gossip", g)
    lam = op.spectral().lambda_
    loss = get_loss("mse")
    y = torch.nn.functional.one_hot(g.y, 2).double()
    model = DeepGNN(g.num_features, 6, 2, 8, "tanh", init="orthogonal", seed=1)
    with torch.no_grad():
        model(op, g.x, keep_signals=True)
        W, _ = lstsq_output_layer(model.signals.F[-1], y, 0.1)
        model.weights[-1].copy_(W)
    out = model(op, g.x, keep_signals=True)
    grads = torch.autograd.grad(loss(out, y), list(model.parameters()))
    F = model.signals.F[-1].detach()
    c = thy.Constants.measure(g.x, get_activation("tanh"), loss, y)
    eps = measures.mean_output_error(model.signals.B[-1])
    v = thy.check_thm3_mean_error(eps, lam, model.spectral_norms(), c, delta_bar=float(grads[-1].norm()),
                                  D_F=float(F.norm() / 120 ** 0.5))
    assert v.holds and math.isfinite(v.details["bound"])
