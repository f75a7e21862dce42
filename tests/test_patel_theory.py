"""Patel, Savostianov & Schaub (arXiv 2501.14440): every check against a slow or closed-form reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize as so
import torch

from gnndyn.models.patel_init import balanced, xavier, zero_first_layer
from gnndyn.theory import patel as P
from gnndyn.theory.patel import energy as E
from gnndyn.theory.patel.path import Path

pytestmark = pytest.mark.usefixtures("one_thread")


def planted(d_x: int, nbar: int, sv, seed: int) -> np.ndarray:
    """Z = U diag(sv) Vᵀ with orthonormal U (d_x × k), V (n̄ × k): rank k = len(sv), σ_small = min(sv)."""
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((d_x, len(sv))))[0]
    V = np.linalg.qr(rng.standard_normal((nbar, len(sv))))[0]
    return (U * np.asarray(sv)) @ V.T


def lstsq_value(Z: np.ndarray, Y: np.ndarray) -> float:
    W, *_ = np.linalg.lstsq(Z.T, Y.T, rcond=None)
    return float(((W.T @ Z - Y) ** 2).sum())


# ---------------------------------------------------------------------------------------------- L̃_H, σ_small
@pytest.mark.parametrize("case", ["full", "planted", "wide"])
def test_L_tilde_against_numpy_least_squares(case):
    rng = np.random.default_rng(0)
    Z = {"full": rng.standard_normal((5, 20)), "planted": planted(6, 15, [3.0, 1.0, 0.2], 1),
         "wide": rng.standard_normal((8, 5))}[case]  # wide: n̄ < d_x, L̃ = 0
    Y = rng.standard_normal((2, Z.shape[1]))
    prob = P.make_problem(Z, Y, [Z.shape[0], 3])
    assert prob.m == Z.shape[1] * 2
    assert prob.L_tilde == pytest.approx(lstsq_value(Z, Y) / prob.m, rel=1e-10, abs=1e-14)
    if case == "wide":
        assert prob.L_tilde == pytest.approx(0.0, abs=1e-14)
    # the minimum-norm solution attains it and equals numpy's pinv
    np.testing.assert_allclose(prob.min_norm_solution, Y @ np.linalg.pinv(Z), rtol=1e-8, atol=1e-10)
    assert P.loss(prob, balanced(prob.widths.dims, product=prob.min_norm_solution)) == pytest.approx(prob.L_tilde, abs=1e-12)


def test_L_tilde_with_a_bottleneck_is_eckart_young():
    rng = np.random.default_rng(2)
    Z, Y = rng.standard_normal((4, 12)), rng.standard_normal((3, 12))
    prob = P.make_problem(Z, Y, [1, 3])
    assert prob.widths.bottleneck
    Q = np.linalg.svd(Z, full_matrices=False)[2].T  # row space of Z
    s = np.linalg.svd(Y @ Q, compute_uv=False)
    ref = ((Y - Y @ Q @ Q.T) ** 2).sum() + (s[1:] ** 2).sum()
    assert prob.L_tilde * prob.m == pytest.approx(ref, rel=1e-12)
    assert not all(P.printed_assumptions(prob, xavier(prob.widths.dims)).values())


def test_sigma_small_on_a_planted_rank():
    Z = planted(8, 12, [5.0, 2.0, 0.5], seed=3)
    prob = P.make_problem(Z, np.ones((1, 12)), [8, 4])
    assert prob.spectrum.rank == 3 and prob.rank_deficient
    assert prob.sigma_small == pytest.approx(0.5, rel=1e-12)
    assert prob.spectrum.sigma_min < prob.spectrum.tol  # Xu et al.'s σ_min is 0 here
    assert prob.sigma2_small == pytest.approx(0.25, rel=1e-12)


def test_closed_form_gradients_match_autograd():
    rng = np.random.default_rng(4)
    prob = P.make_problem(rng.standard_normal((5, 9)), rng.standard_normal((2, 9)), [4, 3])
    Ws = xavier(prob.widths.dims, seed=5)
    f, _ = P.torch_loss(prob)
    th = torch.from_numpy(P.problem.flatten(Ws)).requires_grad_(True)
    g = torch.autograd.grad(f(th), th)[0].numpy()
    np.testing.assert_allclose(P.problem.flatten(P.gradients(prob, Ws)), g, rtol=1e-11, atol=1e-14)
    assert float(f(th).detach()) == pytest.approx(P.loss(prob, Ws), rel=1e-14)


# ---------------------------------------------------------------------------------------------- Thm 3.1 closed form
def _scalar_flow(z, y, a):
    """d_x = d_1 = d_y = 1, H = 1: with w = w_2w_1 and the invariant w_2² − w_1² = a², the flow is
    dw/dt = −(2/m)√(a⁴ + 4w²)(ws − c), s = Σz², c = Σzy. With w = (a²/2)sinh u and v = tanh(u/2) it separates:
    dt = (m/2) dv/(c − 2bv − cv²), b = a²s/2, whose roots are v_{1,2} = (−b ± D)/c, D = √(b² + c²); so
    (v_1 − v)/(v − v_2) = (v_1/(−v_2)) e^{−4Dt/m}, explicitly."""
    m, s, c = z.size, float(z @ z), float(z @ y)
    b = a * a * s / 2
    D = math.hypot(b, c)
    v1, v2 = (-b + D) / c, (-b - D) / c

    def w_of(t):
        q = (v1 / -v2) * math.exp(-4 * D * t / m)
        v = (v1 + q * v2) / (1 + q)
        return (a * a / 2) * math.sinh(2 * math.atanh(v))

    return m, s, c, c / s, w_of


def test_thm31_against_the_scalar_flow_in_closed_form():
    rng = np.random.default_rng(6)
    z, y = rng.standard_normal(5), rng.standard_normal(5)
    if z @ y < 0:
        y = -y
    s, c = float(z @ z), float(z @ y)
    a = 1.3 * (16 * c * c / (s * s)) ** 0.25  # above the exact threshold a⁴ ≥ 16c²/s² of (3.8)
    prob = P.make_problem(z[None, :], y[None, :], [1])
    m, s, c, wstar, w_of = _scalar_flow(z, y, a)
    Ws0 = zero_first_layer((1, 1, 1), a)
    # constants by hand: β = a² (H = 1), r = a/2, L(0) = c²/(s m), σ²_small = s
    assert P.beta(Ws0) == pytest.approx(a * a) and P.radius(Ws0) == pytest.approx(a / 2)
    assert prob.sigma2_small == pytest.approx(s, rel=1e-12)
    assert P.excess(prob, Ws0) == pytest.approx(c * c / (s * m), rel=1e-12)
    h = P.hypothesis(prob, Ws0)
    assert h["margin"] == pytest.approx(a * a * s / m - 16 * c * c / (a * a * s * m), rel=1e-10)
    assert h["margin"] > 0
    T = 2.5 * m / (4 * a * a * s)
    times = np.linspace(0, T, 9)
    path = P.run_path(prob, Ws0, times=times, rtol=1e-11, atol=1e-13)
    exact = np.array([(s / m) * (w_of(t) - wstar) ** 2 for t in times])
    np.testing.assert_allclose(path.losses - prob.L_tilde, exact, rtol=1e-6)
    # exact decay: d log L/dt = −(4s/m)√(a⁴ + 4w²) ≤ −4a²s/m, four times the bound's exponent a²s/m
    assert np.all(exact / exact[0] <= np.exp(-4 * a * a * s * times / m) * (1 + 1e-9))
    v = P.check_thm31(prob, path)
    assert v.holds and v.applicable and v.details["violations"] == 0
    assert v.details["rate_bound"] == pytest.approx(a * a * s / m, rel=1e-12)
    assert v.details["measured_rate"] >= 4 * a * a * s / m
    fr = P.fit_rate(prob, path)
    assert fr["measured_rate"] == pytest.approx(v.details["measured_rate"], rel=1e-12) and fr["ratio"] >= 4
    np.testing.assert_allclose(P.relative_losses(prob, path), exact / exact[0], rtol=1e-6)
    # margin (nats) at the tightest point, against the closed form
    floor = P.noise_floor(prob, float(path.losses[0]))
    logm = np.log(exact[0] * np.exp(-a * a * s * times[1:] / m) + floor) - np.log(exact[1:])
    assert v.margin == pytest.approx(logm.min(), rel=1e-5)
    for c_ in P.check_chatterjee(prob, path):
        assert c_.holds, c_.summary
    # a path decaying at half the bound's rate is flagged
    slow = Path("flow", times, prob.L_tilde + exact[0] * np.exp(-0.5 * a * a * s * times / m), times[:1], [Ws0])
    bad = P.check_thm31(prob, slow)
    assert not bad.holds and bad.details["violations"] == times.size - 1 and bad.margin < 0


# ---------------------------------------------------------------------------------------------- Remark 3.3
def test_remark33_thresholds_against_hand_values_and_the_switch_of_38():
    rng = np.random.default_rng(7)
    Z, Y = rng.standard_normal((4, 10)), rng.standard_normal((1, 10))
    prob = P.make_problem(Z, Y, [4, 3])
    H, m = 2, 10
    Lt = lstsq_value(Z, Y) / m
    s2 = np.linalg.svd(Z, compute_uv=False)[-1] ** 2
    Y2 = float((Y ** 2).sum())
    thr = P.remark33_thresholds(prob)
    assert thr["printed"] == pytest.approx(max(1.0, 4 ** (H + 1) * m * (Y2 - Lt) / s2), rel=1e-10)
    assert thr["rederived"] == pytest.approx(4 ** (H + 1) * (Y2 - m * Lt) / s2, rel=1e-10)
    assert thr["printed"] > thr["rederived"] > 1 and thr["exact"] == thr["rederived"]
    for key, factor, holds in (("exact", 1 + 1e-7, True), ("exact", 1 - 1e-7, False)):
        a = math.sqrt(thr[key] * factor)
        assert (P.hypothesis(prob, zero_first_layer(prob.widths.dims, a))["margin"] >= 0) is holds
    for v in P.check_remark33(prob, math.sqrt(thr["printed"]) * 1.01):
        assert v.holds and v.applicable and v.details["above"] and v.details["hypothesis_holds"] and v.margin > 0
    v_p, v_r, _ = P.check_remark33(prob, math.sqrt(0.5 * (thr["printed"] + thr["rederived"])))
    # between the two: only the re-derived promise applies (the printed premise fails), and it is kept
    assert v_p.details["a2_minus_threshold"] < 0 < v_r.details["a2_minus_threshold"]
    assert not v_p.applicable and v_r.applicable and v_r.holds and v_r.margin > 0
    below = P.check_remark33(prob, math.sqrt(thr["exact"] * (1 - 1e-3)))[2]  # below every threshold: (3.8) fails
    assert not below.applicable and not below.holds and below.margin < 0
    # small targets: T < 1, the exact threshold is a² = √T (r = a/2 < 1/2)
    small = P.make_problem(Z, 1e-3 * Y, [4, 3])
    ts = P.remark33_thresholds(small)
    assert ts["rederived"] < 1 and ts["exact"] == pytest.approx(math.sqrt(ts["rederived"]), rel=1e-12)
    for factor, holds in ((1 + 1e-7, True), (1 - 1e-7, False)):
        a = math.sqrt(ts["exact"] * factor)
        assert (P.hypothesis(small, zero_first_layer(small.widths.dims, a))["margin"] >= 0) is holds


# ---------------------------------------------------------------------------------------------- Remark 3.4
def test_remark34_rank_deficient_z_converges_to_L_tilde():
    Z = planted(6, 10, [2.0, 1.0, 0.7], seed=8)
    Y = np.random.default_rng(8).standard_normal((1, 10))
    prob = P.make_problem(Z, Y, [6, 4])
    assert prob.rank_deficient and prob.L_tilde > 0.05
    a = math.sqrt(P.remark33_thresholds(prob)["exact"] * 1.1)
    Ws0 = zero_first_layer(prob.widths.dims, a)
    T = 2.0 / P.rate(prob, Ws0)  # the measured rate is ~17 times the bound's
    path = P.run_path(prob, Ws0, times=np.linspace(0, T, 31), rtol=1e-10, atol=1e-12)
    v = P.check_remark34(prob, path, tol=1e-6)
    assert v.holds and v.applicable, v.summary
    assert v.details["xu_rate_with_sigma_min"] == 0.0 and v.details["rank"] == 3
    t31 = P.check_thm31(prob, path)
    assert t31.holds and t31.applicable and t31.details["rate_ratio"] > 1


# ---------------------------------------------------------------------------------------------- §4
@pytest.fixture(scope="module")
def small_problem():
    rng = np.random.default_rng(9)
    return P.make_problem(rng.standard_normal((5, 12)), rng.standard_normal((2, 12)), [4, 3])


def test_balancedness_conserved_by_the_flow_up_to_solver_error(small_problem):
    Ws0 = xavier(small_problem.widths.dims, seed=1)  # unbalanced: every D_ℓ is conserved, not only D = 0
    assert E.balance_residual(Ws0) > 0.1
    times = np.linspace(0, 3.0, 7)
    drift = {}
    for tol in (1e-6, 1e-10):
        path = P.run_path(small_problem, Ws0, times=times, rtol=tol, atol=tol * 1e-2)
        drift[tol] = float(E.imbalance_drift(path).max())
        assert P.loss(small_problem, path.end) < P.loss(small_problem, Ws0) / 2
    assert drift[1e-10] < drift[1e-6] / 100 and drift[1e-10] < 1e-8
    assert E.check_balance_conserved(path, tol=1e-8).holds


def test_balancedness_drifts_under_gradient_descent_linearly_in_eta(small_problem):
    Ws0 = xavier(small_problem.widths.dims, seed=1)
    T, drifts = 1.0, []
    for eta in (0.005, 0.01, 0.02):
        path = P.run_path(small_problem, Ws0, rule="gd", steps=round(T / eta), eta=eta, snapshot_every=10)
        drifts.append(float(E.imbalance_drift(path)[-1]))
    assert drifts[0] < drifts[1] < drifts[2]
    assert drifts[1] / drifts[0] == pytest.approx(2.0, rel=0.25) and drifts[2] / drifts[1] == pytest.approx(2.0, rel=0.25)


def _constrained_energy(free, K, Pt, d1):
    """Σ‖W_ℓ‖² with W_1 = A⁺P + (I − A⁺A)K, A = W_{H+1}⋯W_2 (so W_{H+1}⋯W_1 = P whenever A has full row rank)."""
    A = free[0]
    for w in free[1:]:
        A = w @ A
    Ap = torch.linalg.pinv(A)
    W1 = Ap @ Pt + (torch.eye(d1, dtype=torch.float64) - Ap @ A) @ K
    return (W1 ** 2).sum() + sum((w ** 2).sum() for w in free)


def _lbfgs_min(free, K, Pt, d1) -> float:
    opt = torch.optim.LBFGS([*free, K], max_iter=3000, tolerance_grad=1e-13, tolerance_change=1e-15,
                            history_size=50, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        e = _constrained_energy(free, K, Pt, d1)
        e.backward()
        return e

    opt.step(closure)
    return float(_constrained_energy(free, K, Pt, d1).detach())


def _brute_force_min_energy(Pm: np.ndarray, dims, starts: int = 4) -> float:
    """min Σ‖W_ℓ‖² over W_{H+1}⋯W_1 = P by L-BFGS on an exact parametrization of the constraint: W_2..W_{H+1}
    free, W_1 = A⁺P + (I − A⁺A)K; the best of a few random starts."""
    Pt = torch.from_numpy(Pm)
    best = math.inf
    for seed in range(starts):
        gen = torch.Generator().manual_seed(seed)
        free = [torch.randn(dims[l], dims[l - 1], generator=gen, dtype=torch.float64).requires_grad_(True)
                for l in range(2, len(dims))]
        K = torch.randn(dims[1], dims[0], generator=gen, dtype=torch.float64).requires_grad_(True)
        best = min(best, _lbfgs_min(free, K, Pt, dims[1]))
    return best


@pytest.mark.parametrize("widths", [[3], [3, 2]])
def test_min_energy_formula_against_brute_force(widths):
    rng = np.random.default_rng(10)
    prob = P.make_problem(rng.standard_normal((3, 6)), rng.standard_normal((2, 6)), widths)
    Emin = E.min_energy(prob)
    H = len(widths)
    s = np.linalg.svd(prob.min_norm_solution, compute_uv=False)
    assert Emin == pytest.approx((H + 1) * (s ** (2 / (H + 1))).sum(), rel=1e-14)
    assert _brute_force_min_energy(prob.min_norm_solution, prob.widths.dims) == pytest.approx(Emin, rel=1e-6)
    Wb = balanced(prob.widths.dims, product=prob.min_norm_solution, seed=3)
    assert E.energy(Wb) == pytest.approx(Emin, rel=1e-12)
    v = E.check_thm42(prob, Wb)
    assert v.holds and v.applicable and abs(v.margin) < 1e-12
    Wu = [w.copy() for w in Wb]
    Wu[0] *= 2.0
    Wu[-1] /= 2.0  # same product, unbalanced: more energy
    u = E.check_thm42(prob, Wu)
    assert u.holds and not u.applicable and u.margin > 0.1


def test_thm44_conditions_and_the_feasibility_of_44(small_problem):
    prob = small_problem
    H, Pst = prob.H, prob.min_norm_solution
    c = E.thm44_conditions(prob, balanced(prob.widths.dims, column_space=prob.Z, seed=1, scale=0.3))
    assert c["balance_residual"] < 1e-12 and c["outside_column_space"] < 1e-12 and c["k_low"] == 2
    assert E.thm44_conditions(prob, xavier(prob.widths.dims))["balance_residual"] > 0.1
    # (4.4)'s margin for the balanced start with product c·YZ^†, by hand: PZ − Y ⊥ PZ
    s = np.linalg.svd(Pst, compute_uv=False)
    PZ2 = float(((Pst @ prob.Z) ** 2).sum())
    for cc in (0.5, 1.0, 1.7):
        hand = (cc * s[1]) ** (2 * H / (H + 1)) * prob.sigma2_small / (4 ** (H + 1) * prob.m) - (1 - cc) ** 2 * PZ2 / prob.m
        assert E.margin_44(prob, cc * Pst) == pytest.approx(hand, rel=1e-9, abs=1e-14)
        assert E.margin_44(prob, cc * Pst, printed_m=True) == pytest.approx(
            hand + (cc * s[1]) ** (2 * H / (H + 1)) * prob.sigma2_small / 4 ** (H + 1) * (1 / (12 * 5) - 1 / prob.m), rel=1e-9)
    # the start at the balanced factorization of YZ^† itself satisfies (4.4): the claim of infeasibility fails
    v = E.check_44_feasibility(prob, random_starts=8)
    assert not v.holds and v.details["best_margin"] > v.details["closed_form_at_solution"] > 0
    best_c = v.details["families"]["scaled solution c·YZ^†"]["c"]
    grid = np.linspace(0.5, 2.0, 3001)
    on_grid = max(E.margin_44(prob, c_ * Pst) for c_ in grid)
    assert E.margin_44(prob, best_c * Pst) >= on_grid - 1e-12 and best_c > 1  # d margin/dc > 0 at c = 1
    assert 0 < v.details["max_feasible_relative_loss"] < v.details["zero_start_relative_loss"]
    W0 = E.feasible_44_start(prob, seed=2)
    np.testing.assert_allclose(P.end_to_end(W0), best_c * Pst, rtol=1e-6)
    conds = E.check_thm44(prob, W0)
    assert all(x.holds for x in conds[:3]), [x.summary for x in conds]
    path = P.run_path(prob, W0, times=np.linspace(0, 200.0, 5), rtol=1e-10, atol=1e-12)
    assert E.balance_series(path).max() < 1e-9  # balanced starts stay balanced along the flow
    final = E.check_thm44(prob, W0, path)[-1]
    assert final.applicable and final.holds, final.summary


def test_thm44_needs_rank_of_y_z_transpose_to_be_k_low():
    """Thm 4.4's first hypothesis, rank(Y(XS^H)ᵀ_{*I}) = k̲: a label row in the null space of Z (Y Zᵀ of
    rank 1 < k̲ = min(d_y, rank Z) = 2) makes every Thm 4.4 verdict not applicable, with the hypothesis named."""
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((4, 6))
    null_row = np.linalg.svd(Z)[2][4]
    for Y, rank_yz in ((rng.standard_normal((2, 6)), 2), (np.vstack([rng.standard_normal(6), null_row]), 1)):
        prob = P.make_problem(Z, Y, [3, 3])
        W0 = balanced(prob.widths.dims, singular_values=[0.3, 0.3], column_space=Z, seed=0)
        c = E.thm44_conditions(prob, W0)
        assert (c["k"], c["k_low"], c["rank_YZt"]) == (4, 2, rank_yz)
        assert np.linalg.matrix_rank(Y @ Z.T) == rank_yz
        for v in E.check_thm44(prob, W0):
            assert v.assumptions["rank(YZᵀ) = k̲ = min(d_y, rank Z)"] is (rank_yz == 2)
            assert v.applicable is (rank_yz == 2), v.name


# ---------------------------------------------------------------------------------------------- Thm 5.1
@pytest.fixture(scope="module")
def gd_setup():
    rng = np.random.default_rng(11)
    prob = P.make_problem(rng.standard_normal((4, 10)), rng.standard_normal((1, 10)), [3, 2])
    h16 = lambda a: P.hypothesis(prob, zero_first_layer(prob.widths.dims, a), factor=16.0)["margin"]
    a = so.brentq(h16, 0.1, 1e4) * 1.2
    return prob, zero_first_layer(prob.widths.dims, a)


def test_thm51_contraction_and_remark52(gd_setup):
    prob, W0 = gd_setup
    assert P.check_gd_hypothesis(prob, W0).holds
    lam = P.sharpness(prob, W0)
    eta = 0.2 * lam["two_over_lambda"]
    q = P.contraction(prob, W0, eta)
    assert q == pytest.approx(1 - P.beta(W0) * prob.sigma2_small * eta / (2 * prob.m), rel=1e-14)
    steps = math.ceil(12 / (1 - q))
    path = P.run_path(prob, W0, rule="gd", steps=steps, eta=eta, snapshot_every=max(1, steps // 20))
    v = P.check_thm51(prob, path)
    assert v.holds and v.applicable, v.summary
    eps = 1e-4 * P.excess(prob, W0)
    kpred = P.remark52_iterations(prob, W0, eta, eps)
    assert kpred == pytest.approx(math.log(P.excess(prob, W0) / eps) / math.log(2 * prob.m / (2 * prob.m - P.beta(W0) *
                                                                                              prob.sigma2_small * eta)), rel=1e-12)
    r52 = P.check_remark52(prob, path, eps)
    assert r52.holds and r52.details["k_measured"] <= kpred
    # beyond 2/λ_max gradient descent leaves the rate (and diverges)
    bad = P.run_path(prob, W0, rule="gd", steps=200, eta=1.5 * lam["two_over_lambda"], snapshot_every=50)
    assert not P.check_thm51(prob, bad).holds


def test_sharpness_dense_equals_power_iteration(gd_setup):
    prob, W0 = gd_setup
    Wx = xavier(prob.widths.dims, seed=2)
    for W in (W0, Wx):
        d, p = P.sharpness(prob, W), P.sharpness(prob, W, dense_limit=0, iters=2000)
        assert d["method"] == "dense" and p["method"] == "power iteration"
        assert p["lambda_max"] == pytest.approx(d["lambda_max"], rel=1e-6)


def test_M_is_estimated_from_below_and_the_step_bound_by_hand(gd_setup):
    prob, W0 = gd_setup
    M = P.estimate_M(prob, W0, samples=3, seed=0)
    f, _ = P.torch_loss(prob)
    th = torch.from_numpy(P.problem.flatten(W0))
    Hm = torch.autograd.functional.hessian(f, th).numpy()
    g = P.problem.flatten(P.gradients(prob, W0))
    assert M["M_estimate"] >= max(np.abs(Hm).max(), np.abs(g).max()) and M["lower_estimate"] and M["points"] == 7
    sampled = P.estimate_M(prob, W0, samples=3, seed=0, dense_limit=0, columns=5)
    assert sampled["hessian_max"] <= M["hessian_max"] + 1e-12  # a subset of the same points' entries
    b = P.step_bound(prob, W0, 10.0)
    p, r = P.parameter_count(prob), P.radius(W0)
    assert p == 3 * 4 + 2 * 3 + 2
    assert b["eta_max"] == pytest.approx(min(r / (10 * math.sqrt(p * 3)), 1 / (10 * p), 2 / P.rate(prob, W0)), rel=1e-14)
    v = P.check_step_condition(prob, W0, 0.5 * b["eta_max"], M={**M, "M_estimate": 10.0})
    assert v.holds and v.details["estimated"] and "ESTIMATE" in v.statement


def test_small_a_leaves_the_ball_and_the_verdicts_say_so():
    """Below the threshold of (3.8) the path leaves B(W(0), r): the ball verdict fails while Thm 3.1's bound may
    still hold — its verdict is then marked not applicable."""
    rng = np.random.default_rng(12)
    prob = P.make_problem(rng.standard_normal((4, 10)), rng.standard_normal((1, 10)), [4, 3])
    W0 = zero_first_layer(prob.widths.dims, 0.6)
    assert P.hypothesis(prob, W0)["margin"] < 0
    path = P.run_path(prob, W0, times=np.linspace(0, 20.0, 11), rtol=1e-9, atol=1e-11)
    pl, ball = P.check_chatterjee(prob, path)
    assert not ball.holds and ball.details["max_distance"] > P.radius(W0) == pytest.approx(0.3)
    assert ball.margin == pytest.approx(P.radius(W0) - max(P.distance(w, W0) for w in path.weights), rel=1e-12)
    # eq. (3.7) is local: at the points still inside the ball the W_1 block alone obeys it
    assert pl.details["min_ratio_W1"] >= pl.details["alpha_bound"] > 0
    v = P.check_thm31(prob, path)
    assert not v.applicable and not v.assumptions["(4/r²)L(W(0)) ≤ βσ²_small/m (eq. 3.8)"]


def test_a_bottleneck_is_trained_but_not_covered():
    rng = np.random.default_rng(13)
    prob = P.make_problem(rng.standard_normal((4, 12)), rng.standard_normal((2, 12)), [1, 2])
    assert prob.widths.bottleneck and prob.optimum.case == "rank-constrained"
    W0 = xavier(prob.widths.dims, seed=0)
    path = P.run_path(prob, W0, times=np.linspace(0, 5.0, 6), rtol=1e-8, atol=1e-10)
    assert path.error is None and np.all(path.losses >= prob.L_tilde - 1e-12)  # L̃_H is the rank-capped optimum
    v = P.check_thm31(prob, path)
    assert not v.applicable and not v.assumptions["no bottleneck"] and not v.assumptions["W_1(0) = 0"]
    gd = P.run_path(prob, W0, rule="gd", steps=20, eta=0.01, snapshot_every=5)
    b = E.check_balance_conserved(gd)
    assert not b.applicable and b.details["eta"] == 0.01 and b.details["max_drift"] > 0
