"""Value tests for the checkers of Xu et al. (ICML 2021) and of the blog that restates its proof:
``check_thm3`` (Thm 3, eqs. (15)–(16)), ``check_thm1`` (Thm 1, eq. (8)), ``check_thm2`` (Thm 2, eqs. (10)–(12))
and ``check_original_inequality`` (App. A.1.3; blog, 'A minor mistake in the original paper').

Every expected margin is worked out by hand in the test from the paper's inequality on inputs of a few
numbers (1 × n̄ blocks with orthogonal rows, constant or stepwise λ's, exact binary fractions), never by
calling the checker's own helpers. Paper convention: nodes as columns, L = ‖Ŷ − Y‖²_F (no ½, no 1/n̄).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gnndyn.algebra.optimum import Optimum
from gnndyn.algebra.spectrum import Spectrum
from gnndyn.errors import GnndynError
from gnndyn.models.linear_gnn import XuGNN, XuObjective
from gnndyn.theory.xu.blog import check_original_inequality
from gnndyn.theory.xu.rates import check_rate_bound, check_thm1, check_thm2
from gnndyn.theory.xu.thm3 import Thm3Terms, check_thm3, thm3_terms

E = math.exp


# ============================================================================ Thm 3 (eqs. (15)–(16))
def _terms(grad_sq: float, err: float) -> Thm3Terms:
    """Formula dL/dt = −(grad_sq + err): relative error exactly err/grad_sq (binary fractions)."""
    return Thm3Terms(F=[grad_sq + err], J=[0.0], dLdt=-(grad_sq + err), grad_sq=grad_sq)


def test_thm3_violated_margin_is_rtol_minus_worst_relative_error_at_its_point():
    """Xu et al. Thm 3, eq. (15): dL/dt = −‖∇L‖²; the worst of three points (rel. err 2⁻³²) exceeds rtol 1e-10."""
    recs = [("t=0", _terms(1.0, 2.0 ** -40)), ("t=1", _terms(4.0, 2.0 ** -30)), ("t=2", _terms(1.0, 2.0 ** -36))]
    v = check_thm3(recs, rtol=1e-10)
    assert not v.holds
    assert v.margin == pytest.approx(1e-10 - 2.0 ** -32, rel=1e-12)  # relative error 2⁻³⁰/4, not absolute 2⁻³⁰
    assert v.where == "t=1"
    assert v.details["max_rel_err"] == 2.0 ** -32 and v.details["points"] == 3


def test_thm3_holds_with_margin_and_equality_at_rtol_counts_as_holding():
    """Xu et al. Thm 3, eq. (16): the identity up to rtol, non-strict (rel. err = rtol holds with margin 0)."""
    recs = [("a", _terms(1.0, 2.0 ** -40)), ("b", _terms(4.0, 2.0 ** -30))]
    v = check_thm3(recs, rtol=1e-9)
    assert v.holds and v.margin == pytest.approx(1e-9 - 2.0 ** -32, rel=1e-12) and v.where == "b"
    eq = check_thm3(recs, rtol=2.0 ** -32)
    assert eq.holds and eq.margin == 0.0 and "margin_raw" not in eq.details and eq.where == "b"
    with pytest.raises(GnndynError):
        check_thm3([])


class _Blocks:
    """The least a XuGNN needs of its data: in_dim and the blocks G_l = X(S^l)_{*I} (1 × n̄ here)."""

    def __init__(self, *rows):
        self.G = [torch.tensor([r], dtype=torch.float64) for r in rows]
        self.in_dim = 1

    def blocks(self, depth):
        return self.G[: depth + 1]


def _scalar_model(multiscale: bool, W, b):
    m = XuGNN(1, [1], 1, multiscale=multiscale, seed=0)
    with torch.no_grad():
        for p, val in zip(m.W, W):
            p.fill_(val)
        m.B[0].fill_(b)
    return m


def test_thm3_scalar_plain_gnn_closed_form():
    """Xu et al. Thm 3 (i), eq. (15), m_x = m_1 = m_y = 1: F = (b·s)², J_1 = (w·s)², s = Σ_j V_j g_j, V = 2(Ŷ − Y)."""
    data = _Blocks([0.0, 0.0], [1.0, 2.0])
    obj = XuObjective("squared", None, 1, targets=torch.tensor([[1.0, 0.0]]))
    t = thm3_terms(_scalar_model(False, [2.0], 3.0), data, obj)  # Ŷ = 6·[1, 2], V = [10, 24], s = 58
    assert t.F == [174.0 ** 2] and t.J == [116.0 ** 2]
    assert t.grad_sq == pytest.approx(174.0 ** 2 + 116.0 ** 2, rel=1e-14)
    v = check_thm3([("T=0", t)])
    assert v.holds and v.margin == pytest.approx(1e-10, rel=1e-12) and v.where == "T=0"


def test_thm3_scalar_multiscale_gnn_closed_form():
    """Xu et al. Thm 3 (ii), eq. (16): F_0 = s_0², F_1 = (b s_1)², J_1 = (w_1 s_1)² (one read-out sees layer 1)."""
    data = _Blocks([1.0, 0.0], [1.0, 2.0])
    obj = XuObjective("squared", None, 1, targets=torch.tensor([[1.0, 0.0]]))
    t = thm3_terms(_scalar_model(True, [1.0, 2.0], 3.0), data, obj)  # Ŷ = [7, 12], V = [12, 24], s0 = 12, s1 = 60
    assert t.F == [144.0, 180.0 ** 2] and t.J == [120.0 ** 2]
    assert -t.dLdt == pytest.approx(144.0 + 180.0 ** 2 + 120.0 ** 2, rel=1e-14)
    assert check_thm3([("x", t)]).holds


# ============================================================================ Thm 1 (eq. (8))
def _opt(value: float, sigma_min: float, *, exact: bool = True, sigma_small: float | None = None) -> Optimum:
    """An Optimum of L* = ``value`` over G with the given σ_min (exactly resolved unless σ_min = 0)."""
    s_small = sigma_min if sigma_small is None else sigma_small
    spec = Spectrum((2, 3), sigma_min, s_small, max(sigma_min, s_small), 2 if sigma_min > 0 else 1, 1e-15, "dense")
    return Optimum(value, exact, "least-squares", value, value, value, None, spec)


T3 = np.array([0.0, 1.0, 2.0])
#: λ^(0) (always 1) and λ^(H) sampled at T3 (H = 1): running minimum 0.5, 0.25, 0.25
LAM_T1 = np.array([[1.0, 0.5], [1.0, 0.25], [1.0, 0.5]])


def test_thm1_holds_margin_at_tightest_point_with_running_min_lambda():
    """Xu et al. Thm 1, eq. (8): gap ≤ (L0 − L*)e^{−4 λ_T σ² T}, λ_T = inf_{[0,T]} λ^(H) (column H, not 0)."""
    # L* = 1, L0 = 3, σ² = 1: bound(1) = 2e^{−1}, bound(2) = 2e^{−2} (λ_2 = 0.25 by the running min, not 0.5)
    v, bound = check_thm1(T3, np.array([3.0, 1.5, 1.2]), _opt(1.0, 1.0), T3, LAM_T1, dynamics="flow", label="run")
    assert v.holds and v.applicable and all(v.assumptions.values())
    assert v.margin == pytest.approx(2 * E(-2) - 0.2, rel=1e-12)  # T=1 slack 2e^{-1} − 0.5 is larger
    assert v.where == "T=2 of run"
    np.testing.assert_allclose(bound, [2.0, 2 * E(-1), 2 * E(-2)], rtol=1e-13)
    assert v.details["guaranteed_rate_end"] == pytest.approx(1.0, rel=1e-13)


def test_thm1_violated_tightest_point_differs_from_first_violation():
    """Xu et al. Thm 1, eq. (8): both T=1 (−0.0142) and T=2 (−0.229) violate; the margin is the worst."""
    v, _ = check_thm1(T3, np.array([3.0, 1.75, 1.5]), _opt(1.0, 1.0), T3, LAM_T1, dynamics="flow", label="run")
    assert not v.holds and v.applicable
    assert v.margin == pytest.approx(2 * E(-2) - 0.5, rel=1e-12)
    assert v.where == "T=2 of run; first violation at T=1"
    assert v.details["violations"] == 2 and v.details["first_violation_time"] == 1.0


def test_thm1_rounding_tolerance_and_its_edge():
    """Xu et al. Thm 1, eq. (8), compared up to 1e-9·max(|L0|, |L*|) = 3e-9: inside it holds (margin 0), beyond not."""
    L_in = np.array([3.0, 1.5, 1 + 2 * E(-2) + 1.5e-9])
    v, _ = check_thm1(T3, L_in, _opt(1.0, 1.0), T3, LAM_T1, dynamics="flow", label="run")
    assert v.holds and v.margin == 0.0 and v.details["margin_raw"] == pytest.approx(-1.5e-9, rel=1e-5)
    L_out = np.array([3.0, 1.5, 1 + 2 * E(-2) + 6e-9])
    w, _ = check_thm1(T3, L_out, _opt(1.0, 1.0), T3, LAM_T1, dynamics="flow", label="run")
    assert not w.holds and w.margin == pytest.approx(-6e-9, rel=1e-5) and w.where == "T=2 of run; first violation at T=2"


def test_rate_bound_equality_is_non_strict():
    """Xu et al. eq. (8) is '≤': gap = bound exactly (rate 0, rtol 0) holds with margin 0."""
    t = np.array([0.0, 1.0])
    v, _ = check_rate_bound("n", "p", "s", t, np.array([3.0, 3.0]), 1.0, t, np.zeros((2, 1)), [0], [1.0],
                            dynamics="flow", label="eq", rtol=0.0)
    assert v.holds and v.margin == 0.0 and "margin_raw" not in v.details
    assert not v.assumptions["λ_T > 0 at the end of the run"] and not v.applicable


def test_rate_bound_refuses_a_run_not_recorded_from_its_start():
    """Xu et al. eq. (8) compares L_T with L_0 at T = 0: a record starting at T = 1 would misread L_1 as L_0."""
    t = np.array([1.0, 2.0])
    with pytest.raises(GnndynError, match=r"first recorded time is T = 1; record the run from its start"):
        check_rate_bound("n", "p", "s", t, np.array([3.0, 2.0]), 1.0, t, np.ones((2, 1)), [0], [1.0],
                         dynamics="flow", label="late")


def test_thm1_sigma_small_variant_and_failed_assumptions():
    """Xu et al. Thm 1, eq. (8) with σ_min = 0 (rank-deficient G): rate 0; with σ_small (2501.14440 Rem. 3.4) rate 4λσ²_small."""
    opt = _opt(1.0, 0.0, sigma_small=1.0)
    L = np.array([3.0, 1.5, 1.2])
    v, bound = check_thm1(T3, L, opt, T3, LAM_T1, dynamics="flow", label="run")
    assert v.holds and not v.applicable and not v.assumptions["σ²_min > 0"]
    np.testing.assert_array_equal(bound, [2.0, 2.0, 2.0])
    assert v.margin == pytest.approx(2.0 - 0.5, rel=1e-12) and v.where == "T=1 of run"
    s, _ = check_thm1(T3, L, opt, T3, LAM_T1, dynamics="flow", label="run", small=True)
    assert s.name == "xu.thm1.sigma_small" and s.applicable and s.holds
    assert s.margin == pytest.approx(2 * E(-2) - 0.2, rel=1e-12)
    g, _ = check_thm1(T3, L, _opt(1.0, 1.0, exact=False), T3, LAM_T1, dynamics="gd", label="run", loss="cross-entropy",
                      lam_resolution=[0.0, 0.25])
    assert g.holds and not g.applicable
    assert {k for k, ok in g.assumptions.items() if not ok} == {
        "gradient flow (the theorem's dynamics)", "squared loss", "L* computed exactly", "λ_T > 0 at the end of the run"}


# ============================================================================ Thm 2 (eqs. (10)–(12))
# m_x = m_y = 1, n̄ = 4, Y = [1, 2, 3, 1] (‖Y‖² = 15); blocks are orthogonal 1 × 4 rows, so
# L*_l = 15 − (Y·g_l)²/‖g_l‖², σ²_min(G_l) = ‖g_l‖², and the stacked 𝒢_2 has σ²_min = 1, L*_{1:2} = 1² = 1.
Y4 = np.array([[1.0, 2.0, 3.0, 1.0]])
#: L*_0 = 14, L*_1 = 6, L*_2 = 11 (down then up); σ² = 1, 1, 4
BLOCKS_A = [np.array([[1.0, 0, 0, 0]]), np.array([[0, 0, 1.0, 0]]), np.array([[0, 2.0, 0, 0]])]
#: λ^(0..2) at T3: running minima λ1 = .5, .5, .125; λ2 = .25, .25, .25; min_l = .25, .25, .125
LAM_T2 = np.array([[1.0, 0.5, 0.25], [1.0, 0.5, 0.25], [1.0, 0.125, 0.5]])


def _thm2(losses, blocks=BLOCKS_A, lam=LAM_T2, times=T3, **kw):
    return check_thm2(times, np.asarray(losses, float), blocks, Y4, [1, 1], times, lam, dynamics="flow",
                      label="run", **kw)


def test_thm2_optima_and_monotone_runs_of_the_example():
    """Xu et al. Thm 2 (iii): L*_0..2 = 14, 6, 11 gives the runs (0,1) non-increasing (l''=0) and (1,2) non-decreasing (l''=2)."""
    r = _thm2([20.0, 7.0, 6.5])
    np.testing.assert_allclose(r["L_star_plain"], [14.0, 6.0, 11.0], rtol=1e-13)
    np.testing.assert_allclose(r["sigma2_plain"], [1.0, 1.0, 4.0], rtol=1e-13)
    assert r["opt_multi"].value == pytest.approx(1.0, rel=1e-12) and r["opt_multi"].exact
    assert [key for key, _, _ in r["iii"]] == [(0, 1, 0), (1, 2, 2)]


def test_thm2_i_holds_with_min_over_layers_and_running_min():
    """Xu et al. Thm 2 (i), eq. (10): rate 4·min_l λ^(l)_T·σ²_min(𝒢_H) = 1 at T=1 and 0.5 at T=2; L* = L*_{1:H} = 1."""
    v, bound = _thm2([20.0, 7.0, 6.5])["i"]
    np.testing.assert_allclose(bound, [19.0, 19 * E(-1), 19 * E(-1)], rtol=1e-12)
    assert v.holds and v.applicable
    assert v.margin == pytest.approx(19 * E(-1) - 6.0, rel=1e-12) and v.where == "T=1 of run"


def test_thm2_i_min_includes_layer_zero():
    """Xu et al. Thm 2 (i): λ^(1:H)_T = min_{0≤l≤H} λ^(l)_T includes λ^(0) = 1 (here below λ^(1) = 2, λ^(2) = 3)."""
    v, bound = _thm2([20.0, 7.0, 6.5], lam=np.array([[1.0, 2.0, 3.0]] * 3))["i"]
    np.testing.assert_allclose(bound, [19.0, 19 * E(-4), 19 * E(-8)], rtol=1e-12)  # rate 4·1·1, not 4·2·1
    assert not v.holds and v.margin == pytest.approx(19 * E(-4) - 6.0, rel=1e-12)


def test_thm2_i_violated():
    """Xu et al. Thm 2 (i), eq. (10): gaps 13.001 and 10.5 against 19e^{−1}; the worst is T=1."""
    v, _ = _thm2([20.0, 14.001, 11.5])["i"]
    assert not v.holds and v.margin == pytest.approx(19 * E(-1) - 13.001, rel=1e-12)
    assert v.where == "T=1 of run; first violation at T=1" and v.details["violations"] == 2


def test_thm2_ii_each_depth_uses_its_own_optimum_lambda_and_sigma():
    """Xu et al. Thm 2 (ii), eq. (11): for H' = 0, 1, 2, L*_{H'} and rate 4 λ^(H')_T σ²_min(G_{H'})."""
    ii = _thm2([20.0, 7.0, 6.5])["ii"]
    assert [h for h, _, _ in ii] == [0, 1, 2]
    v0, v1, v2 = (v for _, v, _ in ii)
    # H'=0: L* = 14, rate 4: gaps −7, −7.5
    assert v0.holds and v0.margin == pytest.approx(6 * E(-4) + 7.0, rel=1e-12) and v0.where == "T=1 of run, H'=0"
    # H'=1: L* = 6, rate 4λ1 = 2 then 0.5: bounds 14e^{−2}, 14e^{−1}; gaps 1, 0.5
    assert v1.holds and v1.margin == pytest.approx(14 * E(-2) - 1.0, rel=1e-12) and v1.where == "T=1 of run, H'=1"
    # H'=2: L* = 11, σ² = 4, rate 4·0.25·4 = 4: bounds 9e^{−4}, 9e^{−8}; gaps −4, −4.5
    assert v2.holds and v2.margin == pytest.approx(9 * E(-4) + 4.0, rel=1e-12)
    w1 = _thm2([20.0, 7.0, 6.0 + 14 * E(-1) + 1e-3])["ii"][1][1]
    assert not w1.holds and w1.margin == pytest.approx(-1e-3, rel=1e-6) and w1.where.startswith("T=2 of run, H'=1")


def test_thm2_iii_rate_sums_over_the_run_and_l_double_prime():
    """Xu et al. Thm 2 (iii), eq. (12): run (0,1): L*_0 = 14, rate 4(λ0σ0² + λ1σ1²); run (1,2): L*_2 = 11, rate 4(λ1σ1² + λ2σ2²)."""
    iii = _thm2([20.0, 14.001, 11.5])["iii"]
    (k_a, a, b_a), (k_b, b, b_b) = iii
    # run (0,1): rate 4(1 + .5) = 6 at T=1, 4(1 + .125) = 4.5 at T=2 → bounds 6e^{−6}, 6e^{−9}; gaps .001, −2.5
    np.testing.assert_allclose(b_a, [6.0, 6 * E(-6), 6 * E(-9)], rtol=1e-12)
    assert a.holds and a.margin == pytest.approx(6 * E(-6) - 0.001, rel=1e-12)
    assert a.where == "T=1 of run, l=0, l'=1, l''=0"
    # run (1,2): rate 4(.5 + 4·.25) = 6 at T=1, 4(.125 + 1) = 4.5 at T=2 → bounds 9e^{−6}, 9e^{−9}; gaps 3.001, .5
    np.testing.assert_allclose(b_b, [9.0, 9 * E(-6), 9 * E(-9)], rtol=1e-12)
    assert not b.holds and b.applicable and b.margin == pytest.approx(9 * E(-6) - 3.001, rel=1e-12)
    assert b.where == "T=1 of run, l=1, l'=2, l''=2; first violation at T=1" and b.details["violations"] == 2


#: L*_0..2 = 14, 11, 6 (one non-increasing run 0..2); σ² = 1, 4, 1; λ = 1, 0.1, 0.1 constant
BLOCKS_B = [np.array([[1.0, 0, 0, 0]]), np.array([[0, 2.0, 0, 0]]), np.array([[0, 0, 1.0, 0]])]
LAM_B = np.array([[1.0, 0.1, 0.1], [1.0, 0.1, 0.1]])


def test_thm2_iii_claim_on_a_monotone_sub_run():
    """Xu et al. Thm 2 (iii), eq. (12), for l=1, l'=2 inside the run 0..2: L_T − 11 ≤ 9e^{−4(4·0.1 + 0.1)T}, violated at T=1."""
    t = np.array([0.0, 1.0])
    L = [20.0, 12.5]
    assert L[1] - 11.0 > 9 * E(-2.0)  # the claim of (12) for (l, l') = (1, 2) is violated: 1.5 > 1.218
    r = check_thm2(t, np.asarray(L), BLOCKS_B, Y4, [1, 1], t, LAM_B, dynamics="flow", label="run")
    np.testing.assert_allclose(r["L_star_plain"], [14.0, 11.0, 6.0], rtol=1e-13)
    assert r["i"][0].holds and all(v.holds for _, v, _ in r["ii"])  # (i) and every (ii) do hold here
    assert any(not v.holds for _, v, _ in r["iii"])


def test_thm2_i_lambda_resolution_of_every_layer():
    """Xu et al. Thm 2 (i), eq. (10): λ^(1:H)_T = min_l λ^(l)_T is 0 when some λ^(l)_T is at/below its resolution."""
    r = _thm2([20.0, 7.0, 6.5], lam=np.array([[1.0, 0.3, 0.25]] * 3), lam_resolution=[0.0, 0.5, 0.0])
    assert not r["ii"][1][1].assumptions["λ_T > 0 at the end of the run"]  # (ii) H'=1: λ^(1) = 0.3 ≤ 0.5 is 0
    assert not r["i"][0].assumptions["λ_T > 0 at the end of the run"]


# ============================================================================ App. A.1.3 / blog
def test_original_inequality_margin_is_2b_b_minus_a_at_the_largest_loss():
    """Xu et al. App. A.1.3 (p. 18) (a−b)² ≥ a²−b², slack 2b(b−a); L = 16, 4, 1, L* = 4: −8, 0 (equality holds), +4."""
    v1, v2 = check_original_inequality(np.array([16.0, 4.0, 1.0]), 4.0, label="run")
    assert not v1.holds and v1.margin == pytest.approx(-8.0, rel=1e-12) and v1.where == "step 0 of run"
    assert v1.details["false_steps"] == 1 and not v1.details["L_star_is_zero"]
    assert v2.holds and math.isnan(v2.margin) and v2.where == "run"  # held at L = L* = 4 and L = 1 < L*
    assert v2.details["held_steps"] == 2 and v2.details["held_with_L_star_ge_L"] == 2
    assert v2.details["held_only_because_L_star_is_zero"] == 0


def test_original_inequality_holds_when_L_star_above_L():
    """Blog, 'A minor mistake': the inequality holds when L* ≥ L; L = 1, 4, L* = 9: slacks 12, 6 (tightest step 1)."""
    v1, v2 = check_original_inequality(np.array([1.0, 4.0]), 9.0, label="r")
    assert v1.holds and v1.margin == pytest.approx(6.0, rel=1e-12) and v1.where == "step 1 of r"
    assert v2.holds and v2.details["held_steps"] == 2 and v2.details["held_with_L_star_ge_L"] == 2


def test_original_inequality_zero_L_star_is_an_equality():
    """Xu et al. App. A.1.3 with b = 0: (a−0)² = a², margin 0; L* at rounding level (≤ 1e-12·max L) counts as 0."""
    for Ls in (0.0, 1e-13):
        v1, v2 = check_original_inequality(np.array([1.0, 0.5]), Ls, label="z")
        assert v1.holds and v1.margin == 0.0 and v1.details["L_star_is_zero"]
        assert v2.holds and v2.details["held_only_because_L_star_is_zero"] == 2
        assert v2.details["held_with_L_star_ge_L"] == 0
    v1, _ = check_original_inequality(np.array([1.0, 0.5]), 1e-10, label="z")  # b = 1e-5 > 0: false at a = 1
    b = 1e-5
    assert not v1.holds and not v1.details["L_star_is_zero"] and v1.details["false_steps"] == 2
    assert v1.margin == pytest.approx(2 * b * (b - 1.0), rel=1e-9) and v1.where == "step 0 of z"


def test_blog_claim_is_not_refuted_by_rounding():
    """Blog, 'A minor mistake in the original paper': the inequality holds only when L* ≥ L — a fact, never violated."""
    v1, v2 = check_original_inequality(np.array([9.0, 4.0 * (1 + 1e-13)]), 4.0, label="r")
    assert not v1.holds and v1.details["false_steps"] == 1  # step 0 (a = 3 > b = 2) is false; step 1 within rounding
    assert v2.holds
