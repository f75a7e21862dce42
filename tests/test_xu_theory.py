"""Xu et al.'s theory in gnndyn against slow references: least squares, brute-force low-rank fits,
dense SVDs, explicit Kronecker products, autograd, and bounds with a closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize as so
import torch

from gnndyn.data import csbm
from gnndyn.models.linear_gnn import XuGNN, XuObjective, make_xu_data
from gnndyn.operators import build_operator
from gnndyn.theory import xu


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def problem():
    g = csbm(60, 3, p_in=0.25, p_out=0.05, feature_dim=5, feature_sep=2.0, seed=5)
    op = build_operator("gcn", g)
    data = make_xu_data(g.x, op, torch.arange(0, 60, 2))  # n̄ = 30 > m_x = 5: L* > 0
    obj = XuObjective("squared", g.y[data.nodes], 3)
    return g, data, obj


def _np(t):
    return t.detach().numpy()


# ------------------------------------------------------------------------------------------ spectra
@pytest.mark.parametrize("method", ["dense", "gram"])
def test_sigma_min_against_dense_svd(problem, method):
    _, data, _ = problem
    blocks = data.blocks(3)
    for stacked in ([blocks[2]], blocks):
        M = np.vstack([_np(b) for b in stacked])
        s = np.linalg.svd(M, compute_uv=False)
        spec, Q = xu.row_space(stacked, method=method)
        assert spec.sigma_min == pytest.approx(s[min(M.shape) - 1], rel=1e-9)
        assert spec.sigma_max == pytest.approx(s[0], rel=1e-12)
        assert spec.rank == min(M.shape) and spec.resolved
        np.testing.assert_allclose(Q @ Q.T, np.linalg.pinv(M) @ M, atol=1e-10)  # projector onto the row space


@pytest.mark.parametrize("method", ["dense", "gram"])
def test_rank_deficient_sigma_min_is_zero_and_sigma_small_is_reported(method):
    """Two identical columns (two labelled nodes with the same propagated features, as a 2-node
    component gives on CiteSeer): σ_min = 0 numerically, σ_small is the smallest non-zero value."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((40, 12))
    A[:, 7] = A[:, 3]
    s = np.linalg.svd(A, compute_uv=False)
    spec, Q = xu.row_space([A[:20], A[20:]], method=method)
    assert not spec.resolved and spec.sigma2_min == 0.0 and spec.rank == 11
    assert spec.sigma_small == pytest.approx(s[10], rel=1e-8)
    assert Q.shape == (12, 11)


# ------------------------------------------------------------------------------------------ optimum
def test_L_star_least_squares_against_lstsq(problem):
    _, data, obj = problem
    Y = _np(obj.target())
    blocks = data.blocks(3)
    for H in range(4):
        G = _np(blocks[H])
        W, *_ = np.linalg.lstsq(G.T, Y.T, rcond=None)
        ref = float(((W.T @ G - Y) ** 2).sum())
        opt = xu.global_optimum(blocks, Y, [5] * H, multiscale=False)
        assert opt.case == "least-squares" and opt.exact
        assert opt.value == pytest.approx(ref, rel=1e-10)
    Gs = np.vstack([_np(b) for b in blocks])
    W, *_ = np.linalg.lstsq(Gs.T, Y.T, rcond=None)
    opt = xu.global_optimum(blocks, Y, [5, 5, 5], multiscale=True)
    assert opt.exact and opt.value == pytest.approx(float(((W.T @ Gs - Y) ** 2).sum()), rel=1e-10)


def _brute_low_rank(G: np.ndarray, Y: np.ndarray, r: int, restarts: int = 8) -> float:
    """min over A (m_y×r), B (r×m_x) of ‖ABG − Y‖² by BFGS from several random starts."""
    m_y, m_x = Y.shape[0], G.shape[0]
    rng = np.random.default_rng(1)

    def f(z):
        A, B = z[: m_y * r].reshape(m_y, r), z[m_y * r:].reshape(r, m_x)
        R = A @ B @ G - Y
        gA = 2 * R @ (B @ G).T
        gB = 2 * A.T @ R @ G.T
        return float((R ** 2).sum()), np.concatenate([gA.ravel(), gB.ravel()])

    best = math.inf
    for _ in range(restarts):
        z0 = rng.standard_normal(m_y * r + r * m_x)
        best = min(best, so.minimize(f, z0, jac=True, method="BFGS", options={"gtol": 1e-12, "maxiter": 5000}).fun)
    return best


def test_rank_constrained_L_star_against_brute_force(problem, fit_lbfgs):
    """Width 1 < m_y = 3: the optimum is the truncated SVD of the projected target (Eckart–Young)."""
    _, data, obj = problem
    Y = _np(obj.target())
    blocks = data.blocks(1)
    opt = xu.global_optimum(blocks, Y, [1], multiscale=False)
    assert opt.case == "rank-constrained" and opt.value > opt.projected
    brute = _brute_low_rank(_np(blocks[1]), Y, 1)
    assert brute == pytest.approx(opt.value, rel=1e-7)
    # and a trained width-1 linear GNN never goes below it
    trained = fit_lbfgs(XuGNN(5, [1], 3, seed=0), data, obj, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15)
    assert trained >= opt.value * (1 - 1e-9)


def test_multiscale_small_width_gives_bounds(problem):
    _, data, obj = problem
    opt = xu.global_optimum(data.blocks(2), obj.target(), [2, 2], multiscale=True)
    assert not opt.exact and opt.case == "nested-rank (bounds)"
    assert opt.lower <= opt.upper
    single = min(xu.global_optimum(data.blocks(2), obj.target(), [2, 2][:h], multiscale=False).value for h in range(3))
    assert opt.search["single_readout_upper"] == pytest.approx(single)
    assert opt.upper <= single  # the variable-projection search only tightens it (tests/test_xu_optimum.py)


# ------------------------------------------------------------------------------------------ λ
@pytest.mark.parametrize("widths", [[5, 5, 5], [7, 6, 9]])
def test_layer_lambdas_against_explicit_products(widths):
    model = XuGNN(5, widths, 3, seed=4)
    lam, res = xu.layer_lambdas(model)
    assert lam[0] == 1.0
    for l in range(1, 4):
        P = _np(model.bbar(l))
        ref = np.linalg.eigvalsh(P.T @ P)[0]
        assert lam[l] == pytest.approx(ref, rel=1e-8)
        assert res[l] < lam[l]
    if widths[0] == 5:
        lam_svd, _ = xu.layer_lambdas(model, method="svd")
        np.testing.assert_allclose(lam, lam_svd, rtol=1e-10)
    narrow = XuGNN(5, [3, 6], 3, seed=4)
    assert xu.layer_lambdas(narrow)[0][1:] == [0.0, 0.0]  # rank < m_x: λ = 0 exactly


def test_running_min():
    out = xu.running_min([0, 1, 2, 3], [5.0, 3.0, 4.0, 1.0], [0, 0.5, 1, 2.5, 3, 9])
    np.testing.assert_array_equal(out, [5.0, 5.0, 3.0, 3.0, 1.0, 1.0])


def test_monotone_runs():
    runs = xu.monotone_runs([3.0, 2.0, 2.0, 5.0, 1.0], tol=1e-12)
    assert (0, 2, 0) in runs  # non-increasing 3 ≥ 2 ≥ 2, l'' = l
    assert (1, 3, 3) in runs  # non-decreasing 2 ≤ 2 ≤ 5, l'' = l'
    assert (3, 4, 3) in runs
    # every monotone sub-run too (Thm 2 (iii): "if there exist l, l'"), and nothing that is not monotone
    assert runs == sorted({(0, 1, 0), (0, 2, 0), (1, 2, 1), (1, 2, 2), (2, 3, 3), (1, 3, 3), (3, 4, 3)})


# ------------------------------------------------------------------------------------------ Thm 3
@pytest.mark.parametrize("multiscale", [False, True])
@pytest.mark.parametrize("loss", ["squared", "cross-entropy"])
def test_thm3_product_form_kronecker_and_autograd(problem, multiscale, loss):
    g, data, _ = problem
    obj = XuObjective(loss, g.y[data.nodes], 3)
    model = XuGNN(5, [4, 6, 5], 3, multiscale=multiscale, seed=2)
    fast = xu.thm3_terms(model, data, obj)
    slow = xu.thm3_terms_kron(model, data, obj)
    np.testing.assert_allclose(fast.F, slow.F, rtol=1e-11)
    np.testing.assert_allclose(fast.J, slow.J, rtol=1e-11)
    assert len(fast.F) == (4 if multiscale else 1) and len(fast.J) == 3
    assert fast.rel_err < 1e-12  # dL/dt of the formula = −‖∇L‖² (autograd)
    # each term is a gradient norm: F_l = ‖∂L/∂W^(l)‖², J_i = ‖∂L/∂B^(i)‖²
    grads = torch.autograd.grad(obj(model(data)), list(model.parameters()))
    nW = len(model.W)
    np.testing.assert_allclose(fast.F, [float((gw ** 2).sum()) for gw in grads[:nW]], rtol=1e-11)
    np.testing.assert_allclose(fast.J, [float((gb ** 2).sum()) for gb in grads[nW:]], rtol=1e-11)
    v = xu.check_thm3([("here", fast)])
    assert v.holds


# ------------------------------------------------------------------------------------------ the blog's step
@pytest.mark.parametrize("multiscale", [False, True])
def test_pythagoras_identity(problem, multiscale):
    _, data, obj = problem
    model = XuGNN(5, [5, 5], 3, multiscale=multiscale, seed=7)
    opt = xu.global_optimum(data.blocks(2), obj.target(), model.widths, multiscale=multiscale)
    with torch.no_grad():
        pred = model(data)
    lhs, rhs = xu.pythagoras(pred, obj.target(), opt)
    L = float(obj(pred))
    assert rhs == pytest.approx(L - opt.value, rel=1e-13)
    assert lhs == pytest.approx(rhs, rel=1e-10)
    # the identity needs Ŷ in the row space: a generic matrix violates it
    other = pred + torch.randn_like(pred)
    l2, r2 = xu.pythagoras(other, obj.target(), opt)
    assert abs(l2 - r2) > 1e-3


def test_original_inequality_closed_form():
    lhs, rhs, ok = xu.original_inequality(np.array([4.0, 9.0, 1.0]), 4.0)  # a = 2, 3, 1; b = 2
    np.testing.assert_allclose(lhs - rhs, [0.0, 2 * 2 * (2 - 3), 2 * 2 * (2 - 1)])
    np.testing.assert_array_equal(ok, [True, False, True])
    _, _, ok0 = xu.original_inequality(np.array([5.0, 0.5]), 0.0)  # b = 0: equality
    assert ok0.all()
    v1, v2 = xu.check_original_inequality(np.array([9.0, 6.0, 4.5]), 4.0, label="run")
    assert not v1.holds and v1.details["false_steps"] == 3 and v2.holds


# ------------------------------------------------------------------------------------------ bounds with a closed form
def test_rate_bound_checker_on_an_exact_exponential():
    """H = 0, G with orthogonal rows of norm s: the flow's L − L* is exactly (L0 − L*) e^{−4 s² t}, which is
    Thm 1's bound with λ = 1 and σ²_min = s². The checker sees equality, and flags a 1e-6 excess."""
    s2, L0, Ls = 0.7, 10.0, 2.0
    t = np.linspace(0, 3, 50)
    L = Ls + (L0 - Ls) * np.exp(-4 * s2 * t)
    lam = np.ones((t.size, 1))
    v, bound = xu.check_rate_bound("t", "p", "s", t, L, Ls, t, lam, [0], [s2], dynamics="flow", label="exact")
    assert v.holds and v.applicable and abs(v.margin) < 1e-12
    np.testing.assert_allclose(bound, L - Ls, rtol=1e-12)
    assert v.details["measured_rate"] == pytest.approx(4 * s2, rel=1e-9)
    bad = L.copy()
    bad[30] += 1e-6
    v2, _ = xu.check_rate_bound("t", "p", "s", t, bad, Ls, t, lam, [0], [s2], dynamics="gd", label="bumped")
    assert not v2.holds and v2.details["first_violation_time"] == pytest.approx(t[30])
    assert not v2.applicable and not v2.assumptions["gradient flow (the theorem's dynamics)"]


def test_one_layer_flow_matches_thm1_with_equality(problem):
    """The same statement on a real H = 0 model: closed-form flow from the matrix exponential."""
    _, data, obj = problem
    # orthogonal-rows features: replace G by Q·s with QQᵀ = I (5 × 30)
    q, _ = torch.linalg.qr(torch.randn(30, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    Gq = 1.3 * q.T
    Y = obj.target()
    W0 = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = np.linspace(0, 0.5, 20)
    A = -2 * Gq @ Gq.T
    N = torch.zeros(8, 8, dtype=torch.float64)
    N[:5, :5], N[5:, :5] = A, 2 * Y @ Gq.T
    Z0 = torch.cat([W0, torch.eye(3, dtype=torch.float64)], 1)
    Ls = [float(((((Z0 @ torch.linalg.matrix_exp(float(tt) * N))[:, :5]) @ Gq - Y) ** 2).sum()) for tt in t]
    opt = xu.global_optimum([Gq], Y, [], multiscale=False)
    v, _ = xu.check_thm1(t, np.array(Ls), opt, t, np.ones((t.size, 1)), dynamics="flow", label="H=0")
    assert opt.spectrum.sigma2_min == pytest.approx(1.69)
    assert v.holds and abs(v.margin) < 1e-9


# ------------------------------------------------------------------------------------------ margins
def test_singular_margin_is_zero_by_rescaling(problem):
    g, data, obj = problem
    for multiscale, act in ((False, "linear"), (True, "linear"), (False, "relu")):
        model = XuGNN(5, [5, 5], 3, multiscale=multiscale, activation=act, seed=3)
        ms = xu.singular_margins(model, data, obj, eps=1e-5)
        for m in ms:
            assert m.value == 0.0 and m.guarantee == 0.0
            assert m.witness_loss_rel_change < 1e-10
            assert m.witness_sigma_min == pytest.approx(1e-5 * m.upper_bound, rel=1e-8)


def test_deficiency_margin_positive_yet_singular_margin_zero(problem):
    """Prop. 2 (informal) against Def. 4 as stated: start at the least-squares end-to-end matrix Φ
    (deficiency margin c = σ_min(Φ) > 0); the rescaling witness still gives γ = 0."""
    _, data, obj = problem
    model = XuGNN(5, [5], 3, seed=0)
    G = _np(data.blocks(1)[1])
    Phi = _np(obj.target()) @ np.linalg.pinv(G)
    with torch.no_grad():
        model.B[0].copy_(torch.eye(5, dtype=torch.float64))
        model.W[0].copy_(torch.from_numpy(Phi))
    d = xu.deficiency_margin(model, data, obj)
    assert d["distance_to_target"] < 1e-12 and d["sigma_min_target"] > 0
    assert d["deficiency_margin"] == pytest.approx(d["sigma_min_target"])
    assert all(m.value == 0.0 for m in xu.singular_margins(model, data, obj))


# ------------------------------------------------------------------------------------------ Thm 2 (ii): a counterexample
def test_thm2_ii_fails_for_an_accurately_solved_flow():
    """Thm 2 (ii) with H' = 0 (λ^(0) = 1, no λ sampling involved): L_T − L*_0 ≤ (L_0 − L*_0)e^{−4σ²_min(X_{*I})T}.
    On a small CSBM with I = all nodes and a large initialization of the deeper read-outs the gradient
    flow — solved by gnndyn (dopri5) and, independently, by SciPy's DOP853 at rtol 1e-12 — exceeds it:
    the deeper scales put part of Ŷ outside the row space of X_{*I}, so ‖P vec(Ŷ − Y)‖² = L − L*_0 (the
    blog's corrected step) no longer holds for a multiscale model."""
    from scipy.integrate import solve_ivp

    from gnndyn.training.flow import gradient_flow

    g = csbm(80, 3, p_in=0.15, p_out=0.05, feature_dim=3, feature_sep=1.0, seed=0)
    data = make_xu_data(g.x, build_operator("gcn", g), torch.arange(80))
    obj = XuObjective("squared", g.y[data.nodes], 3)
    model = XuGNN(3, [3, 3], 3, multiscale=True, init_scale=3.0, seed=0)
    params = list(model.parameters())
    y0 = torch.cat([p.detach().reshape(-1) for p in params]).clone()
    t = np.linspace(0.0, 0.02, 21)
    r = gradient_flow(model, lambda m: obj(m(data)), t, rtol=1e-10, atol=1e-12)
    res = xu.check_thm2(t, r.losses, data.blocks(2), obj.target(), model.widths, t, np.ones((t.size, 3)),
                        dynamics="flow", label="csbm")
    h0 = res["ii"][0][1]
    assert h0.applicable and not h0.holds and h0.details["worst_relative_excess"] > 1e-3

    sizes = [p.numel() for p in params]

    def f(_, y):
        with torch.no_grad():
            for p, c in zip(params, torch.split(torch.from_numpy(y), sizes)):
                p.copy_(c.view_as(p))
        gr = torch.autograd.grad(obj(model(data)), params)
        return -torch.cat([x.reshape(-1) for x in gr]).numpy()

    sol = solve_ivp(f, (0.0, 0.02), y0.numpy(), method="DOP853", t_eval=t, rtol=1e-12, atol=1e-14)
    L_ref = []
    for y in sol.y.T:
        f(0.0, y)  # loads y
        L_ref.append(float(obj(model(data)).detach()))
    np.testing.assert_allclose(r.losses, L_ref, rtol=1e-7)
    L0s = res["L_star_plain"][0]
    bound = (L_ref[0] - L0s) * np.exp(-4 * res["sigma2_plain"][0] * t)
    assert (np.asarray(L_ref) - L0s - bound).max() > 1.0  # the exact flow exceeds the bound by > 1 unit of loss
