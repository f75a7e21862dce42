"""One-round ReLU GNN population model (Awasthi et al. §3, App. B): dual activation, exact loss, gradient."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from scipy import integrate, stats

from gnndyn.data.generators import erdos_renyi, random_regular
from gnndyn.data.graph import Graph
from gnndyn.errors import GnndynError
from gnndyn.models import teacher_student as ts
from gnndyn.models.population_relu import (
    dual_curvature, dual_relu, dual_relu_gap, dual_step, relu_hessian_2d, relu_hessian_alpha_beta, relu_hessian_plane,
)

T = torch.tensor


def _pairwise(graph):
    """Dense d_ik = ((A+I)²)_ik and D_i = d_i + 1 (small graphs only)."""
    a = graph.adjacency().toarray() + np.eye(graph.num_nodes)
    return a @ a, a.sum(1)


# ------------------------------------------------------------------------------------------ dual activation
@pytest.mark.parametrize("rho", [-0.9, -0.5, 0.0, 0.3, 0.7, 0.95])
def test_dual_relu_against_numerical_integration(rho):
    """σ̂(ρ) = E[σ(X)σ(Y)] with σ = √2 ReLU, by 2-D quadrature of 2xy φ_ρ(x, y) over the positive quadrant."""
    c = 1.0 / (2 * math.pi * math.sqrt(1 - rho ** 2))

    def f(y, x):
        return 2 * x * y * c * math.exp(-(x * x - 2 * rho * x * y + y * y) / (2 * (1 - rho ** 2)))

    val, err = integrate.dblquad(f, 0, 14, 0, 14, epsabs=1e-13, epsrel=1e-12)
    assert float(dual_relu(T(rho))) == pytest.approx(val, rel=1e-9, abs=1e-11)


def test_dual_relu_endpoints_and_derivative():
    assert float(dual_relu(T(1.0))) == pytest.approx(1.0, abs=1e-15)  # E[2 ReLU(X)²] = 1
    assert float(dual_relu(T(-1.0))) == pytest.approx(0.0, abs=1e-15)  # ReLU(X)ReLU(−X) = 0
    assert float(dual_relu(T(0.0))) == pytest.approx(1 / math.pi, rel=1e-15)
    x = torch.linspace(-0.99, 0.99, 41)
    h = 1e-6
    fd = (dual_relu(x + h) - dual_relu(x - h)) / (2 * h)
    torch.testing.assert_close(fd, dual_step(x), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("rho", [-0.8, -0.2, 0.0, 0.4, 0.9])
def test_dual_step_is_twice_the_orthant_probability(rho):
    p = stats.multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf([0, 0])  # P(X ≤ 0, Y ≤ 0)
    assert float(dual_step(T(rho))) == pytest.approx(2 * p, rel=1e-6)


@pytest.mark.parametrize("c", [0.0, 0.3, 0.7, 0.999, 1.0])
@pytest.mark.parametrize("delta", [0.4, 1e-3, 1e-8, 1e-13])
def test_dual_relu_gap_keeps_relative_precision(c, delta):
    """σ̂(c) − σ̂(c(1−δ)) against 50-digit arithmetic: the stable form keeps ~10 digits at δ = 1e-13."""
    mpmath.mp.dps = 50
    cm, rm = mpmath.mpf(c), 1 - mpmath.mpf(delta)

    def s(x):
        return (mpmath.sqrt(1 - x * x) + (mpmath.pi - mpmath.acos(x)) * x) / mpmath.pi

    ref = float(s(cm) - s(cm * rm))
    got = float(dual_relu_gap(T(c), T(1.0 - delta), T(delta)))
    if ref == 0:
        assert got == 0
    else:
        assert got == pytest.approx(ref, rel=1e-9)


# ------------------------------------------------------------------------------------------ kernel
@pytest.mark.parametrize("make", [lambda: erdos_renyi(25, avg_degree=4, seed=3), lambda: random_regular(20, 4, seed=1)])
def test_kernel_matches_pairwise_sum(make):
    """G(ρ) from the grouped two-hop kernel equals the O(n²) sum Σ_ik s_ik σ̂(c_ik ρ)."""
    g = make()
    k = ts.DualKernel.from_graph(g)
    dik, D = _pairwise(g)
    s = np.sqrt(np.outer(D, D))
    rho = T([[-0.7, 0.1, 0.6, 0.999]])
    ref = [(s * ((np.sqrt(1 - (dik / s * r) ** 2) + (np.pi - np.arccos(dik / s * r)) * dik / s * r) / np.pi)).sum()
           for r in rho[0].tolist()]
    torch.testing.assert_close(k.G(rho)[0], T(ref), rtol=1e-12, atol=0)
    assert k.two_hop_nnz[0] == int((dik > 0).sum())
    assert k.sqrt_sum_sq[0] == pytest.approx(s.sum(), rel=1e-13)
    # G'(ρ) = Σ d_ik σ̂_step(c_ik ρ)
    ref_p = [(dik * (1 - np.arccos(dik / s * r) / np.pi)).sum() for r in rho[0].tolist()]
    torch.testing.assert_close(k.G_prime(rho)[0], T(ref_p), rtol=1e-12, atol=0)


def test_regular_graph_reduces_to_eq12():
    """On a d-regular graph the general loss is eq. (12): (d+1)[½‖w‖²Σσ̂(d_ij/(d+1)) + ½‖w*‖²Σσ̂(·)
    − ‖w‖‖w*‖Σσ̂(d_ij/(d+1)·cos θ)]; and the kernel has at most d + 2 keys."""
    d = 4
    g = random_regular(16, d, seed=2)
    k = ts.DualKernel.from_graph(g)
    assert k.regular == [True] and k.coef.shape[1] <= d + 2
    dik, _ = _pairwise(g)
    W = ts.relu_init(3, 5, 0)
    Ws = ts.relu_teacher(3, 5, 0)
    got = ts.relu_population_loss_rows(W[None], Ws[None], k)[0]
    sh = lambda x: (np.sqrt(1 - x * x) + (np.pi - np.arccos(x)) * x) / np.pi  # noqa: E731
    A = sh(dik / (d + 1)).sum()
    for j in range(3):
        w, ws = W[j].numpy(), Ws[j].numpy()
        cos = w @ ws / np.linalg.norm(w) / np.linalg.norm(ws)
        ref = (d + 1) * (0.5 * (w @ w) * A + 0.5 * (ws @ ws) * A
                         - np.linalg.norm(w) * np.linalg.norm(ws) * sh(dik / (d + 1) * cos).sum())
        assert float(got[j]) == pytest.approx(ref, rel=1e-12)


# ------------------------------------------------------------------------------------------ loss and gradient
def test_exact_loss_against_monte_carlo():
    """The closed form lies within 4 standard errors of a Monte Carlo estimate (irregular graph)."""
    g = erdos_renyi(12, avg_degree=3, seed=5)
    k = ts.DualKernel.from_graph(g)
    W = ts.relu_init(2, 3, 1)
    Ws = ts.relu_teacher(2, 3, 1)
    exact = float(ts.relu_population_loss(W[None], Ws[None], k)[0])
    mean, se = ts.relu_monte_carlo_loss(g, W, Ws, 60_000, seed=7)
    assert se < 0.02 * exact  # the test resolves the loss to ~2 % at least
    assert abs(exact - mean) <= 4 * se


def test_gradient_against_autograd_and_finite_differences():
    g = erdos_renyi(15, avg_degree=4, seed=6)
    k = ts.DualKernel.stack([ts.DualKernel.from_graph(g), ts.DualKernel.from_graph(random_regular(14, 3, seed=0))])
    W = torch.stack([ts.relu_init(3, 4, s) for s in (0, 1)])
    Ws = torch.stack([ts.relu_teacher(3, 4, s) * 1.3 for s in (0, 1)])  # ‖w*‖ ≠ 1 too
    st = ts.relu_population_grad(W, Ws, k)
    Wr = W.clone().requires_grad_(True)
    (ga,) = torch.autograd.grad(ts.relu_population_loss(Wr, Ws, k, stable=False).sum(), Wr)
    torch.testing.assert_close(st.grad, ga, rtol=1e-11, atol=1e-9)
    h = 1e-5
    fd = torch.zeros_like(W)
    for idx in np.ndindex(*W.shape):
        e = torch.zeros_like(W)
        e[idx] = h
        fd[idx] = (ts.relu_population_loss(W + e, Ws, k).sum() - ts.relu_population_loss(W - e, Ws, k).sum()) / (2 * h)
    torch.testing.assert_close(st.grad, fd, rtol=1e-7, atol=1e-5)
    torch.testing.assert_close(st.loss_rows, ts.relu_population_loss_rows(W, Ws, k, stable=False), rtol=1e-12, atol=0)


def test_stable_loss_is_quadratic_near_the_optimum():
    """L(w* + εv) / ε² tends to a constant; the textbook form of eq. (12) loses it to cancellation."""
    k = ts.DualKernel.from_graph(random_regular(30, 6, seed=0))
    Ws = ts.relu_teacher(2, 4, 3)[None]
    v = torch.randn(1, 2, 4, generator=torch.Generator().manual_seed(0))
    q = [float(ts.relu_population_loss(Ws + e * v, Ws, k)[0]) / e ** 2 for e in (1e-4, 1e-6, 1e-8)]
    assert q[1] == pytest.approx(q[0], rel=1e-3) and q[2] == pytest.approx(q[1], rel=1e-5)
    plain = float(ts.relu_population_loss(Ws + 1e-8 * v, Ws, k, stable=False)[0]) / 1e-16
    assert abs(plain - q[2]) > 1e-3 * q[2]  # the plain form is off by far more than the stable one


def test_alpha_beta_and_eqs_14_15():
    """GD keeps w_j in span(w₀, w*) and the gradient in (α, β) coordinates is eqs. (14)–(15) with (d+1)A → A′."""
    k = ts.DualKernel.from_graph(random_regular(20, 3, seed=4))
    Ws = ts.relu_teacher(3, 6, 2)[None]
    W0 = ts.relu_init(3, 6, 2)[None]
    wp = ts.orthogonal_direction(W0, Ws)
    W = W0.clone()
    eta = 1 / (10 * math.pi * float(k.G1()[0]))
    for _ in range(25):
        st = ts.relu_population_grad(W, Ws, k)
        W = W - eta * st.grad
    alpha, beta, resid = ts.alpha_beta(W, Ws, wp)
    assert float(resid.max()) < 1e-12
    st = ts.relu_population_grad(W, Ws, k)
    ell = torch.sqrt(alpha ** 2 + beta ** 2)
    A, Bp, Cp = st.G1[:, None], st.B_prime, st.C_prime
    d_alpha = alpha * A - alpha / ell * Bp - beta ** 2 / ell ** 2 * Cp
    d_beta = beta * A - beta / ell * Bp + alpha * beta / ell ** 2 * Cp
    torch.testing.assert_close((st.grad * Ws).sum(-1), d_alpha, rtol=1e-9, atol=1e-8)
    torch.testing.assert_close((st.grad * wp).sum(-1), d_beta, rtol=1e-9, atol=1e-8)


def test_bad_shapes_are_explained():
    k = ts.DualKernel.from_graph(random_regular(10, 3, seed=0))
    with pytest.raises(GnndynError, match="shape"):
        ts.relu_population_loss(torch.ones(3, 4), torch.ones(3, 4), k)
    with pytest.raises(GnndynError, match="batch"):
        ts.relu_population_loss(torch.ones(2, 3, 4), torch.ones(2, 3, 4), k)


# ------------------------------------------------------------------------------------------ Hessian (Lemma 2)
def _plane_setup():
    """A regular and an irregular graph, batched; ‖w*‖ ≠ 1; (x, β) coordinates of W in span(w*, w⊥)."""
    k = ts.DualKernel.stack([ts.DualKernel.from_graph(erdos_renyi(15, avg_degree=4, seed=6)),
                             ts.DualKernel.from_graph(random_regular(14, 3, seed=0))])
    W = torch.stack([ts.relu_init(3, 4, s) for s in (0, 1)])
    Ws = torch.stack([ts.relu_teacher(3, 4, s) * 1.3 for s in (0, 1)])
    wp = ts.orthogonal_direction(W, Ws)
    us = Ws / torch.linalg.vector_norm(Ws, dim=-1, keepdim=True)
    z = torch.stack([(W * us).sum(-1), (W * wp).sum(-1)], -1)  # (B, h, 2)

    def loss(zz, stable=True):
        Wz = zz[..., :1] * us + zz[..., 1:] * wp
        return ts.relu_population_loss_rows(Wz, Ws, k, stable=stable)

    return k, W, Ws, wp, z, loss


def test_hessian_against_autograd_and_finite_differences():
    """The closed-form (x, β) Hessian A′I − (mK(ρ)/ℓ)ttᵀ equals autograd's Hessian of the textbook loss and
    central second differences of the stable loss, on an irregular and a regular graph (one batch)."""
    k, W, Ws, wp, z, loss = _plane_setup()
    H = relu_hessian_alpha_beta(W, Ws, k, wp)
    full = torch.autograd.functional.hessian(lambda zz: loss(zz, stable=False).sum(), z)
    B, h = z.shape[:2]
    blocks = torch.stack([torch.stack([full[b, j, :, b, j, :] for j in range(h)]) for b in range(B)])
    torch.testing.assert_close(H.hess, blocks, rtol=1e-11, atol=1e-9)
    eps = 1e-4  # truncation ~ε²L⁗/12, rounding ~1e-16·L/ε² (L ~ 10²): both ≲ 1e-6 relative here
    fd = torch.zeros_like(H.hess)
    for a in range(2):
        for c in range(2):
            ea = torch.zeros(2, dtype=z.dtype)
            ec = torch.zeros(2, dtype=z.dtype)
            ea[a], ec[c] = eps, eps
            fd[..., a, c] = (loss(z + ea + ec) - loss(z + ea - ec) - loss(z - ea + ec) + loss(z - ea - ec)) / (4 * eps ** 2)
    torch.testing.assert_close(H.hess, fd, rtol=1e-6, atol=1e-4)
    # eigenvalues: the 2 × 2 formula against LAPACK, and λ_max = A′ with the radial eigenvector (x, β)
    ev = torch.linalg.eigvalsh(H.hess)
    torch.testing.assert_close(torch.stack([H.lam_min, H.lam_max], -1), ev, rtol=1e-12, atol=1e-10)
    A1 = k.G1()[:, None]
    torch.testing.assert_close(H.lam_max, A1.expand_as(H.lam_max), rtol=1e-13, atol=0)
    torch.testing.assert_close((H.hess @ z[..., None])[..., 0], A1[..., None] * z, rtol=1e-12, atol=1e-9)
    assert bool((H.lam_min < H.lam_max).all())


def test_hessian_lambda_max_is_A_prime_in_all_of_R_r():
    """Out of the plane the eigenvalues are A′ − m(G(ρ) − ρG′(ρ))/ℓ ≤ A′: the full r × r Hessian of L_j has
    λ_max = A′ too (autograd), and its in-plane λ_min is the 2 × 2 one."""
    k, W, Ws, wp, z, loss = _plane_setup()
    full = torch.autograd.functional.hessian(lambda w: ts.relu_population_loss_rows(w, Ws, k, stable=False).sum(), W)
    H = relu_hessian_alpha_beta(W, Ws, k, wp)
    st = ts.relu_population_grad(W, Ws, k)
    geo = st.geometry
    for b in range(2):
        for j in range(3):
            ev = torch.linalg.eigvalsh(full[b, j, :, b, j, :])
            assert float(ev[-1]) == pytest.approx(float(k.G1()[b]), rel=1e-12)
            assert float(ev[0]) == pytest.approx(float(H.lam_min[b, j]), rel=1e-9)
            out = float(k.G1()[b] - geo.m[b, j] * (k.G(geo.rho)[b, j] - geo.rho[b, j] * st.C_prime[b, j]) / geo.ell[b, j])
            assert float(ev[1]) == pytest.approx(out, rel=1e-9)  # r − 2 = 2 equal out-of-plane eigenvalues
            assert float(ev[2]) == pytest.approx(out, rel=1e-9)


def test_hessian_at_the_optimum_and_without_edges():
    """Closed forms. At w = w*: λ_max = A′ = G(1), λ_min = G′(1) (K(1) = A′ − G′(1)), off-diagonal 0.
    On a graph without edges (d = 0): G(ρ) = nσ̂(ρ) + (n² − n)/π, so K(ρ) = (2n√(1−ρ²) + n² − n)/π and
    λ_min = A′ − mK(ρ)/ℓ, A′ = n + (n² − n)/π."""
    k = ts.DualKernel.from_graph(random_regular(20, 4, seed=3))
    Ws = ts.relu_teacher(2, 5, 1)[None]
    H = relu_hessian_alpha_beta(Ws.clone(), Ws, k)
    A1 = float(k.G1()[0])
    Gp1 = float(k.G_prime(torch.ones(1, 1, dtype=Ws.dtype))[0, 0])
    torch.testing.assert_close(H.lam_max[0], torch.full((2,), A1, dtype=Ws.dtype), rtol=1e-14, atol=0)
    torch.testing.assert_close(H.lam_min[0], torch.full((2,), Gp1, dtype=Ws.dtype), rtol=1e-12, atol=0)
    assert float(H.hess[0, :, 0, 1].abs().max()) == 0.0
    assert float(H.hess[0, 0, 0, 0]) == pytest.approx(A1, rel=1e-14)  # radial = x direction at the optimum

    n = 7
    g0 = Graph.from_edges(np.zeros((2, 0), dtype=np.int64), n)
    k0 = ts.DualKernel.from_graph(g0)
    A0 = n + (n * n - n) / math.pi
    assert float(k0.G1()[0]) == pytest.approx(A0, rel=1e-14)
    W = ts.relu_init(3, 4, 2)[None]
    W0s = ts.relu_teacher(3, 4, 2)[None] * 0.7
    H0 = relu_hessian_alpha_beta(W, W0s, k0, ts.orthogonal_direction(W, W0s))
    ell = torch.linalg.vector_norm(W, dim=-1)
    m = torch.linalg.vector_norm(W0s, dim=-1)
    rho = (W * W0s).sum(-1) / (ell * m)
    K = (2 * n * torch.sqrt(1 - rho ** 2) + n * n - n) / math.pi
    torch.testing.assert_close(H0.lam_min, A0 - m * K / ell, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(H0.lam_max, torch.full_like(ell, A0), rtol=1e-14, atol=0)


@pytest.mark.parametrize("c", [0.0, 0.4, 0.9, 1.0])
@pytest.mark.parametrize("rho", [-0.6, 0.2, 0.8])
def test_dual_curvature_against_derivatives(c, rho):
    """σ̂(cρ) − cρσ̂′(cρ) + c²(1−ρ²)σ̂″(cρ), σ̂″ by central differences of σ̂′; and the limit 0 at c = 1, ρ → 1."""
    x = c * rho
    h = 1e-6
    s2 = (float(dual_step(T(x + h))) - float(dual_step(T(x - h)))) / (2 * h)
    ref = float(dual_relu(T(x))) - x * float(dual_step(T(x))) + c * c * (1 - rho * rho) * s2
    got = float(dual_curvature(T(c), T(rho), T(1.0 - rho)))
    assert got == pytest.approx(ref, rel=1e-7, abs=1e-9)
    assert float(dual_curvature(T(1.0), T(1.0), T(0.0))) == 0.0
    assert float(dual_curvature(T(1.0), T(1 - 1e-12), T(1e-12))) == pytest.approx(2 * math.sqrt(2e-12) / math.pi, rel=1e-6)


def test_hessian_errors():
    k = ts.DualKernel.from_graph(random_regular(10, 3, seed=0))
    Ws = ts.relu_teacher(2, 3, 0)[None]
    with pytest.raises(GnndynError, match="w_perp"):
        relu_hessian_alpha_beta(Ws.clone(), Ws, k, torch.ones(1, 2, 2, dtype=Ws.dtype))
    z = torch.zeros(1, 2, dtype=Ws.dtype)
    with pytest.raises(GnndynError, match="ℓ = 0"):
        relu_hessian_2d(k, z, z + 1, z + 1, z)


def test_hessian_from_plane_coordinates():
    """relu_hessian_plane(x, β) (what a run uses) equals relu_hessian_alpha_beta(W) for W in the plane, also
    1e-9 from the optimum where δ = 1 − ρ must not cancel."""
    k, W, Ws, wp, z, _ = _plane_setup()
    m = torch.linalg.vector_norm(Ws, dim=-1)
    H = relu_hessian_alpha_beta(W, Ws, k, wp)
    Hp = relu_hessian_plane(k, z[..., 0], z[..., 1], m)
    torch.testing.assert_close(Hp.hess, H.hess, rtol=1e-12, atol=1e-10)
    us = Ws / m[..., None]
    Wn = Ws + 1e-9 * wp + 1e-9 * us
    Hn = relu_hessian_alpha_beta(Wn, Ws, k, wp)
    Hpn = relu_hessian_plane(k, (Wn * us).sum(-1), (Wn * wp).sum(-1), m)
    torch.testing.assert_close(Hpn.hess, Hn.hess, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(Hpn.kappa, Hn.kappa, rtol=1e-7, atol=0)
