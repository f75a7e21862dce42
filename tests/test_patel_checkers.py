"""Value tests of the bound checkers of gnndyn.theory.patel against Patel, Savostianov & Schaub, "Convergence of
gradient based training for linear Graph Neural Networks" (arXiv 2501.14440v1).

Every expected number is worked out by hand from the paper's equations on tiny dyadic inputs (all exact in binary),
so the checkers' margins are compared at rel=1e-12. The main problem, DYADIC: Z = (XS^H)_{*I} = [[2,0,0,0],[0,1,0,0]],
Y = [[1,0,1,1]], widths [2, 2] (H = 2). Then m = n̄d_y = 4, σ_small = 1, L̃_H = 2/4 = 1/2 (the last two labels lie
outside the row space of Z), and at Remark 3.3's start (W_1 = 0, W_2 = I, W_3 = a·[1, 0]) 𝓛(W(0)) = ‖Y‖²/m = 3/4,
L(W(0)) = 1/4, β = a²/4, r = min(1, a)/2 and the rate βσ²_small/m = a²/16.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize as so

from gnndyn.models.patel_init import zero_first_layer
from gnndyn.theory import patel as P
from gnndyn.theory.patel import energy as E
from gnndyn.theory.patel.path import Path

pytestmark = pytest.mark.usefixtures("one_thread")

EPS = 2.0 ** -52
Z2 = np.array([[2.0, 0, 0, 0], [0, 1.0, 0, 0]])
Y2 = np.array([[1.0, 0, 1, 1]])
EX0, LT = 0.25, 0.5  # L(W(0)) at Remark 3.3's start and L̃_H of DYADIC


def dyadic(widths=(2, 2), scale: float = 1.0):
    return P.make_problem(Z2, scale * Y2, list(widths))


def start(prob, a):
    return zero_first_layer(prob.widths.dims, a)


def floor(L0: float, Lt: float, rel: float = 1e-10) -> float:
    """The documented noise floor: rel·(𝓛(0) − L̃_H) + 10³·eps·max(|𝓛(0)|, |L̃_H|)."""
    return rel * (L0 - Lt) + 1e3 * EPS * max(abs(L0), abs(Lt))


def raw(v) -> float:
    """The verdict's slack before the sign normalization of Verdict (kept in details["margin_raw"] when it moved)."""
    return v.details.get("margin_raw", v.margin)


def flow(times, ex, W0, Lt=LT):
    times = np.asarray(times, dtype=float)
    return Path("flow", times, Lt + np.asarray(ex, dtype=float), times[:1], [W0])


def gd(eta, ex, W0, Lt=LT, error=None):
    ex = np.asarray(ex, dtype=float)
    return Path("gd", eta * np.arange(ex.size), Lt + ex, np.zeros(1), [W0], eta, {}, error)


def thm44_problem(y1: float):
    """Z = [[2,0,0,0],[0,1,0,0],[0,0,0,0]] (rank k = 2 < d_x = 3, σ_small = 1), Y = [[y1,0,1,1]], widths [2, 2]:
    m = 4, L̃_H = 1/2, k̲ = min(d_y, k) = 1, rank YZᵀ = rank [2y1, 0, 0] = 1, YZ^† = [y1/2, 0, 0]."""
    Z = np.array([[2.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 0]])
    return P.make_problem(Z, np.array([[y1, 0, 1.0, 1.0]]), [2, 2])


def balanced_e1(s: float, v=(1.0, 0.0, 0.0)):
    """W_1 = s·e_1vᵀ, W_2 = s·e_1e_1ᵀ, W_3 = s·e_1ᵀ: balanced (every W_ℓW_ℓᵀ = W_{ℓ+1}ᵀW_{ℓ+1} = s²e_1e_1ᵀ), product s³vᵀ."""
    W1 = np.zeros((2, 3))
    W1[0] = s * np.asarray(v)
    return [W1, s * np.diag([1.0, 0.0]), s * np.array([[1.0, 0.0]])]


# ---------------------------------------------------------------------------------------------- Thm 3.1 / 5.1 starts
@pytest.mark.parametrize("a,rhs,holds", [(16.0, 16.0, True), (8.0, 4.0, True), (4.0, 1.0, False)])
def test_thm31_hypothesis_margin_is_rhs_minus_lhs_and_non_strict(a, rhs, holds):
    """Thm 3.1, proof, the condition before eq. (3.8): (4/r²)L(W(0)) ≤ βσ²_small/m. Here lhs = 4·(1/4)/(1/4) = 4 for
    a ≥ 1 (r = 1/2), rhs = a²/16; a = 8 is the boundary (printed "≤": holds with margin 0); a = 4 gives 1 − 4 = −3."""
    prob, W0 = dyadic(), start(dyadic(), a)
    h = P.hypothesis(prob, W0)
    assert (h["lhs"], h["rhs"], h["r"], h["beta"]) == (4.0, rhs, 0.5, a * a / 4)
    assert h["margin"] == pytest.approx(rhs - 4.0, rel=1e-12, abs=0) and h["ratio"] == pytest.approx(rhs / 4, rel=1e-12)
    v = P.check_hypothesis(prob, W0)
    assert v.holds is holds and v.applicable and v.margin == pytest.approx(rhs - 4.0, rel=1e-12, abs=0)
    # 2Z: σ_small = 2 enters squared (rhs ×4), L̃_H and L(W(0)) are unchanged
    assert P.hypothesis(P.make_problem(2 * Z2, Y2, [2, 2]), W0)["rhs"] == pytest.approx(4 * rhs, rel=1e-12)


@pytest.mark.parametrize("a,rhs,holds", [(32.0, 64.0, True), (16.0, 16.0, False), (8.0, 4.0, False)])
def test_thm51_start_condition_has_factor_16_and_is_strict(a, rhs, holds):
    """Thm 5.1, proof: 16L(W(0))/r² < βσ²_small/m. lhs = 16·(1/4)·4 = 16, rhs = a²/16; a = 16 is the boundary, where
    the strict "<" fails (margin 0)."""
    prob, W0 = dyadic(), start(dyadic(), a)
    v = P.check_gd_hypothesis(prob, W0)
    assert v.details["lhs"] == 16.0 and v.details["rhs"] == rhs
    assert v.holds is holds and v.applicable and v.margin == pytest.approx(rhs - 16.0, rel=1e-12, abs=0)


# ---------------------------------------------------------------------------------------------- Remark 3.3
def test_remark33_thresholds_by_hand():
    """Remark 3.3: printed a² ≥ max{1, 4^{H+1}m(‖Y‖² − L̃_H)/σ²_small}; re-derived from (3.8) with r = 1/2:
    T = 4^{H+1}(‖Y‖² − mL̃_H)/σ²; exact: a²min(1, a)² ≥ T for H ≥ 2, a⁴ ≥ T for H = 1 (r = a/2, β = a²)."""
    t = P.remark33_thresholds(dyadic())
    assert (t["printed"], t["rederived"], t["exact"]) == (64 * 4 * 2.5, 64.0, 64.0)  # ‖Y‖² = 3, L̃ = 1/2
    small = P.remark33_thresholds(dyadic(scale=1 / 16))  # ‖Y‖² = 3/256, L̃ = 1/512: T = 1/4 < 1, so a² = √T
    assert small["printed"] == pytest.approx(2.5, rel=1e-12) and small["rederived"] == pytest.approx(0.25, rel=1e-12)
    assert small["exact"] == pytest.approx(0.5, rel=1e-12)
    one = P.remark33_thresholds(dyadic(widths=(2,)))  # H = 1: T = 16·(3 − 2) = 16, a² = √16
    assert (one["printed"], one["rederived"], one["exact"]) == (160.0, 16.0, 4.0)
    # the exact threshold is the switch of (3.8) at H = 1: a² = 4, a = 2 gives 4L(0)/r² = 1 = a²σ²/m
    assert P.hypothesis(dyadic(widths=(2,)), start(dyadic(widths=(2,)), 2.0))["margin"] == 0.0


@pytest.mark.parametrize("a,margin,above", [(10.0, 0.36, (False, True, True)), (8.0, 0.0, (False, True, True)),
                                            (7.5, (56.25 / 16 - 4) / (56.25 / 16), (False, False, False))])
def test_remark33_verdicts_margin_is_relative_38_margin(a, margin, above):
    """Remark 3.3's promise per threshold (printed 640, re-derived 64, exact 64): margin (rhs − lhs)/rhs of (3.8),
    rhs = a²/16, lhs = 4. a = 10: 0.36; a = 8 (boundary): 0; a = 7.5: below every threshold, (3.8) fails."""
    out = P.check_remark33(dyadic(), a)
    assert [v.name for v in out] == ["patel.remark3.3.printed", "patel.remark3.3.rederived", "patel.remark3.3.exact"]
    for v, ab, thr in zip(out, above, (640.0, 64.0, 64.0)):
        assert v.applicable is ab and v.details["above"] is ab and v.holds is (margin >= 0)
        assert v.details["a2_minus_threshold"] == a * a - thr
        assert v.details["hypothesis_margin"] == pytest.approx(a * a / 16 - 4, rel=1e-12, abs=0)
        assert raw(v) == pytest.approx(margin, rel=1e-12)


def test_remark33_rederived_threshold_is_not_sufficient_below_one():
    """With T = 1/4 < 1, a² = T gives r = a/2 = 1/4: β = 1/16, rhs = 1/64, lhs = 4·(1/1024)/(1/16) = 1/16, so (3.8)
    fails (relative margin −3) although a² ≥ T; the exact threshold a² = √T = 1/2 is met with margin 0."""
    prob = dyadic(scale=1 / 16)
    v = P.check_remark33(prob, 0.5)[1]
    assert v.applicable and not v.holds and v.details["hypothesis_margin"] == pytest.approx(1 / 64 - 1 / 16, rel=1e-12)
    assert raw(v) == pytest.approx(-3.0, rel=1e-12)
    ex = P.check_remark33(prob, math.sqrt(0.5))[2]
    assert ex.applicable and ex.holds and ex.details["hypothesis_margin"] == pytest.approx(0.0, abs=1e-16)


# ---------------------------------------------------------------------------------------------- Thm 3.1 along a path
def test_thm31_bound_and_margin_in_nats_on_hand_made_flow_paths():
    """Thm 3.1: 𝓛(W(T)) − L̃_H ≤ e^{−βσ²T/m}(𝓛(W(0)) − L̃_H); a = 16: rate 16. Margin = min over t > 0 of
    log(bound + floor) − log(measured). Decay at 32: tightest at the first t; at 16 (= the bound): log(1 + floor/bound),
    least at the first t (largest bound); at 8: violated at every t > 0, tightest at the last."""
    prob, W0 = dyadic(), start(dyadic(), 16.0)
    t = np.array([0.0, 0.05, 0.1, 0.2])
    f = floor(0.75, LT)
    bound = EX0 * np.exp(-16 * t)
    for rho, holds, i in ((32.0, True, 1), (16.0, True, 1), (8.0, False, 3)):
        ex = EX0 * np.exp(-rho * t)
        v = P.check_thm31(prob, flow(t, ex, W0))
        assert v.holds is holds and v.applicable and v.details["violations"] == (0 if holds else 3)
        assert raw(v) == pytest.approx(
            math.log(bound[i] + f) - math.log(ex[i]), rel=1e-9)
        assert v.details["rate_bound"] == 16.0 and v.details["beta"] == 64.0 and v.details["r"] == 0.5
        assert v.details["measured_rate"] == pytest.approx(rho, rel=1e-12)
        assert v.details["rate_ratio"] == pytest.approx(rho / 16, rel=1e-12)
    assert not P.check_thm31(prob, flow(t, EX0 * np.exp(-32 * t), start(prob, 4.0))).applicable  # (3.8) fails


def test_fit_rate_is_the_least_squares_slope_above_the_floor():
    """fit_rate (Thm 3.1's measured rate): −slope of log(𝓛 − L̃_H) on t. log-excess 0, −1, −3 at t = 0, 1, 2 has
    slope −3/2 (Σ(t − 1)(y + 4/3)/Σ(t − 1)² = −3/2); the point at L̃_H itself (below the floor) is left out."""
    prob, W0 = dyadic(), start(dyadic(), 16.0)
    path = flow([0.0, 1.0, 2.0, 3.0], [EX0, EX0 * math.e ** -1, EX0 * math.e ** -3, 0.0], W0)
    fr = P.fit_rate(prob, path)
    assert fr["measured_rate"] == pytest.approx(1.5, rel=1e-12) and fr["points"] == 3
    assert fr["rate_bound"] == 16.0 and fr["ratio"] == pytest.approx(1.5 / 16, rel=1e-12)
    assert fr["plateau"] == 0.0 and fr["final"] == 0.0
    fr = P.fit_rate(prob, flow([0.0, 1.0, 2.0], EX0 * np.exp(-np.array([0.0, 1.0, 2.0])), W0))
    assert fr["plateau"] == pytest.approx(math.exp(-2), rel=1e-12) and fr["measured_rate"] == pytest.approx(1.0, rel=1e-12)


# ---------------------------------------------------------------------------------------------- Thm 3.2 / (3.7)
def scalar_path(points, a=2.0):
    """d_x = d_1 = d_y = 1, z = (3, 4), y = (1, 2): s = Σz² = 25, c = Σzy = 11, m = 2, L̃_H = (5 − 121/25)/2. At
    (w_1, w_2): |∇𝓛|²/L = 4s(w_1² + w_2²)/m = 50(w_1² + w_2²), its W_1 block 50w_2², the bound βσ²/m = 12.5a²."""
    prob = P.make_problem(np.array([[3.0, 4.0]]), np.array([[1.0, 2.0]]), [1])
    Ws = [[np.array([[w1]]), np.array([[w2]])] for w1, w2 in [(0.0, a), *points]]
    t = np.arange(len(Ws), dtype=float)
    return prob, Path("flow", t, np.array([P.loss(prob, w) for w in Ws]), t, Ws)


def test_chatterjee_pl_ratio_and_ball_by_hand():
    """Thm 3.2 (condition (3.2), the ball B(W(0), r) closed) and eq. (3.7): with a = 2, r = 1, bound 50.
    Inside: ratios 200 (W(0)), 50·3.49 at (0.5, 1.8): margin 174.5 − 50; ball margin 1 − √0.29. (0, 1) lies on the
    sphere (distance = r: holds, margin 0) with W_1 block ratio 50 = the bound. (0.3, 0.4) is outside: ratio 12.5."""
    prob, path = scalar_path([(0.5, 1.8), (0.0, 1.0)])
    pl, ball = P.check_chatterjee(prob, path)
    assert pl.holds and pl.details["alpha_bound"] == pytest.approx(50.0, rel=1e-12)
    assert pl.details["min_ratio"] == pytest.approx(50.0, rel=1e-12) and pl.details["min_ratio_W1"] == pytest.approx(50.0, rel=1e-12)
    assert ball.holds and ball.margin == 0.0 and ball.details["max_distance"] == 1.0 and ball.details["r"] == 1.0
    prob, path = scalar_path([(0.5, 1.8)])
    pl, ball = P.check_chatterjee(prob, path)
    assert pl.holds and pl.margin == pytest.approx(174.5 - 50.0, rel=1e-12)
    assert pl.details["min_ratio_W1"] == pytest.approx(50 * 1.8 ** 2, rel=1e-12)
    assert ball.holds and ball.margin == pytest.approx(1 - math.sqrt(0.29), rel=1e-12)
    prob, path = scalar_path([(0.3, 0.4)])
    pl, ball = P.check_chatterjee(prob, path)
    assert not pl.holds and pl.details["min_ratio"] == pytest.approx(12.5, rel=1e-12)
    assert raw(pl) == pytest.approx(12.5 - 50.0, rel=1e-12)
    assert pl.details["min_ratio_W1"] == pytest.approx(200.0, rel=1e-12)  # (3.7) is judged inside the ball only
    assert not ball.holds and ball.details["max_distance"] == pytest.approx(math.sqrt(2.65), rel=1e-12)


def test_weights_bound_against_the_distance_to_the_last_point():
    """Thm 3.1, proof (after (3.8)): Σ_ℓ‖W_ℓ(T) − W̃_ℓ‖²_F ≤ r²e^{−βσ²T/m}, W̃ = the last snapshot. a = 16: r² = 1/4,
    rate 16. Snapshots W(0), W(0) + D/2 at t = 0.01, W(0) + D at the end, ‖D‖² = 0.2: the tightest gap is
    1/4 − 0.2 at t = 0. A snapshot at distance² 0.05 at t = 0.2 violates it: 0.25e^{−3.2} − 0.05."""
    prob, W0 = dyadic(), start(dyadic(), 16.0)
    D = [np.array([[0.4, 0.0], [0.0, 0.2]]), np.zeros((2, 2)), np.zeros((1, 2))]
    at = lambda c: [w + c * d for w, d in zip(W0, D)]
    path = Path("flow", np.array([0.0, 0.01, 0.1]), np.zeros(3), np.array([0.0, 0.01, 0.1]), [W0, at(0.5), at(1.0)])
    v = P.check_weights_bound(prob, path)
    assert v.holds and v.margin == pytest.approx(0.25 - 0.2, rel=1e-12) and v.where == "t = 0"
    bad = Path("flow", np.array([0.0, 0.2, 1.0]), np.zeros(3), np.array([0.0, 0.2, 1.0]), [W0, at(0.5), at(1.0)])
    v = P.check_weights_bound(prob, bad)
    assert not v.holds and raw(v) == pytest.approx(0.25 * math.exp(-3.2) - 0.05, rel=1e-12)


# ---------------------------------------------------------------------------------------------- Remark 3.4
@pytest.mark.parametrize("rel,margin,holds", [(1e-8, 2.0, True), (1e-6, 0.0, True), (1e-4, -2.0, False)])
def test_remark34_margin_is_log10_tol_over_final_relative_loss(rel, margin, holds):
    """Remark 3.4: 𝓛 → L̃_H for rank-deficient Z = [[2,0,0],[0,0,0]] (rank 1 < 2, σ_min = 0, σ_small = 2, L̃_H = 0
    for Y = [[1,0,0]]). Holds iff final/initial ≤ tol = 1e-6; margin log10 tol − log10(final/initial)."""
    prob = P.make_problem(np.array([[2.0, 0, 0], [0, 0, 0]]), np.array([[1.0, 0, 0]]), [2, 2])
    v = P.check_remark34(prob, flow([0.0, 1.0], [1 / 3, rel / 3], start(prob, 2.0), Lt=0.0), tol=1e-6)
    assert v.holds is holds and v.applicable and v.details["sigma_small"] == 2.0 and v.details["sigma_min"] == 0.0
    assert v.details["final_relative_excess"] == pytest.approx(rel, rel=1e-12)
    assert v.details["rate_bound"] == pytest.approx(4 / 3, rel=1e-12)  # β = a²/4 = 1, σ²_small = 4, m = 3
    assert raw(v) == pytest.approx(margin, abs=1e-12)
    full = P.check_remark34(dyadic(), flow([0.0, 1.0], [EX0, rel * EX0], start(dyadic(), 2.0)), tol=1e-6)
    assert not full.applicable and not full.assumptions["Z rank-deficient (σ_min = 0)"]


# ---------------------------------------------------------------------------------------------- Thm 5.1, Remark 5.2
def test_thm51_contraction_bound_on_hand_made_gd_paths():
    """Thm 5.1: 𝓛(W^(k)) − L̃_H ≤ (1 − βσ²η/(2m))^k (𝓛(W^(0)) − L̃_H). a = 32 (rate 64), η = 2⁻⁷: factor 3/4.
    At the bound itself (margin log(1 + floor/bound), least at k = 1), faster (3/8)^k (tightest at k = 1), slower
    (7/8)^k (violated at every k ≥ 1, tightest at k = 5)."""
    prob, W0 = dyadic(), start(dyadic(), 32.0)
    k = np.arange(6)
    f = floor(0.75, LT)
    for base, holds in ((0.75, True), (0.375, True), (0.875, False)):
        v = P.check_thm51(prob, gd(2.0 ** -7, EX0 * base ** k, W0))
        assert v.details["factor"] == 0.75 and v.details["rate_bound"] == 64.0
        assert v.holds is holds and v.applicable and v.details["violations"] == (0 if holds else 5)
        i = 5 if base > 0.75 else 1
        assert raw(v) == pytest.approx(
            math.log(EX0 * 0.75 ** i + f) - math.log(EX0 * base ** i), rel=1e-9)
    diverged = P.check_thm51(prob, gd(2.0 ** -7, EX0 * 0.5 ** k, W0, error="diverged at step 6"))
    assert not diverged.holds and diverged.margin == -math.inf
    for M, below in ((10.0, True), (100.0, False)):  # step bound 0.5/(M√30): 0.0091 > η = 0.0078 > 0.00091
        withM = P.check_thm51(prob, gd(2.0 ** -7, EX0 * 0.5 ** k, W0), M={"M_estimate": M, "points": 1})
        assert withM.details["step_bound_estimate"] == pytest.approx(0.5 / (M * math.sqrt(30)), rel=1e-12)
        assert withM.assumptions["η < step bound (M estimated from below)"] is below and withM.applicable is below
    assert not P.check_thm51(prob, gd(2.0 ** -7, EX0 * 0.5 ** k, start(prob, 16.0))).applicable  # 16L/r² < rhs fails


def test_thm51_is_not_applicable_when_eta_exceeds_2m_over_beta_sigma2():
    """Thm 5.1 (proof): η < min{r/(M√(p(H+1))), 1/(Mp), 2m/(βσ²_small)}. a = 32: 2m/(βσ²) = 1/32; η = 1/16 gives the
    factor 1 − 64/32 = −1, where the theorem promises nothing."""
    prob, W0 = dyadic(), start(dyadic(), 32.0)
    v = P.check_thm51(prob, gd(1 / 16, EX0 * 0.5 ** np.arange(4), W0))
    assert v.details["factor"] == -1.0
    assert not v.applicable and not v.assumptions["η < 2m/(βσ²_small) (factor in (0, 1))"]
    assert P.check_thm51(prob, gd(2.0 ** -7, EX0 * 0.5 ** np.arange(4), W0)).assumptions[
        "η < 2m/(βσ²_small) (factor in (0, 1))"]  # factor 3/4


def test_step_bound_terms_and_the_strict_step_condition():
    """Thm 5.1, proof: η < min{r/(M√(p(H+1))), 1/(Mp), 2m/(βσ²_small)}; p = 2·2 + 2·2 + 2 = 10, H + 1 = 3, r = 1/2,
    a = 32: 2m/(βσ²) = 1/32. M = 10: the first term 0.5/(10√30) is the least; M = 1/100: the third, 1/32. Strict: η
    equal to the bound fails with margin 0."""
    prob, W0 = dyadic(), start(dyadic(), 32.0)
    b = P.step_bound(prob, W0, 10.0)
    assert (b["p"], b["r"], b["two_m_over_beta_sigma2"]) == (10, 0.5, 1 / 32)
    assert b["r_over_M_sqrt_p_H1"] == pytest.approx(0.05 / math.sqrt(30), rel=1e-12) and b["one_over_Mp"] == 0.01
    assert b["eta_max"] == b["r_over_M_sqrt_p_H1"]
    b = P.step_bound(prob, W0, 0.01)
    assert b["eta_max"] == 1 / 32 and b["one_over_Mp"] == pytest.approx(10.0, rel=1e-12)
    assert P.step_bound(prob, W0, 0.0)["eta_max"] == 1 / 32
    M = {"M_estimate": 0.01, "points": 1}
    assert not P.check_step_condition(prob, W0, 1 / 32, M=M).holds
    v = P.check_step_condition(prob, W0, 1 / 64, M=M)
    assert v.holds and v.margin == 1 / 64 and v.details["estimated"]


def test_remark52_iterations_closed_form():
    """Remark 5.2: k > log(L(W^(0))/ε)/log(2m/(2m − βσ²η)). a = 32 (βσ²/m = 64), η = 2⁻⁶: 2m/(2m − βσ²η) = 2, so
    ε = L(0)/10 gives log 10/log 2; η = 2⁻⁷ gives log 10/log(4/3); η ≥ 1/32 (factor ≤ 0) gives ∞; ε ≥ L(0) gives 0."""
    prob, W0 = dyadic(), start(dyadic(), 32.0)
    assert P.remark52_iterations(prob, W0, 2.0 ** -6, EX0 / 10) == pytest.approx(math.log(10) / math.log(2), rel=1e-12)
    assert P.remark52_iterations(prob, W0, 2.0 ** -7, EX0 / 10) == pytest.approx(math.log(10) / math.log(4 / 3), rel=1e-12)
    assert P.remark52_iterations(prob, W0, 1 / 32, EX0 / 10) == math.inf
    assert P.remark52_iterations(prob, W0, 2.0 ** -6, EX0) == 0.0


def test_check_remark52_first_k_below_eps_against_the_prediction():
    """Remark 5.2 with k_pred = log 10/log 2 ≈ 3.32 (ε = L(0)/10), first promised step k₁ = 4: excess L(0)2^{−k} is
    first below ε at k = 4 (holds, margin 4 − 4 = 0); L(0)4^{−k} at k = 2 (margin 4 − 2); (7/8)^k never within 10 steps
    (violated, margin nan); within 3 steps the remark promises nothing yet (holds)."""
    prob, W0 = dyadic(), start(dyadic(), 32.0)
    kp = math.log(10) / math.log(2)
    v = P.check_remark52(prob, gd(2.0 ** -6, EX0 * 0.5 ** np.arange(8), W0), EX0 / 10)
    assert v.holds and v.details["k_measured"] == 4.0 and v.details["k_predicted"] == pytest.approx(kp, rel=1e-12)
    assert v.details["k_first_promised"] == 4.0 and v.margin == 0.0 and v.applicable
    v = P.check_remark52(prob, gd(2.0 ** -6, EX0 * 0.25 ** np.arange(8), W0), EX0 / 10)
    assert v.holds and v.details["k_measured"] == 2.0 and v.margin == 2.0
    v = P.check_remark52(prob, gd(2.0 ** -6, EX0 * 0.875 ** np.arange(11), W0), EX0 / 10)
    assert not v.holds and v.details["k_measured"] == math.inf and math.isnan(v.margin) and v.details["run_steps"] == 10
    assert P.check_remark52(prob, gd(2.0 ** -6, EX0 * 0.875 ** np.arange(4), W0), EX0 / 10).holds


def test_remark52_at_an_integer_prediction():
    """Remark 5.2: k_pred = log 8/log 2 = 3 (ε = L(0)/8, factor 1/2). A path on Thm 5.1's bound (excess L(0)2^{−k})
    has excess = ε at k = 3 and < ε first at k = 4 = the first k > 3: the remark holds."""
    prob, W0 = dyadic(), start(dyadic(), 32.0)
    path = gd(2.0 ** -6, EX0 * 0.5 ** np.arange(8), W0)
    assert P.check_thm51(prob, path).holds
    v = P.check_remark52(prob, path, EX0 / 8)
    assert v.details["k_predicted"] == 3.0 and v.details["k_measured"] == 4.0
    assert v.holds and v.details["k_first_promised"] == 4.0 and v.margin == 0.0


def test_remark52_every_promised_step_must_stay_below_eps():
    """Remark 5.2 speaks of every k > k_pred, not of the first k below ε: an excess that dips below ε = L(0)/8 at k = 1
    and is back at L(0)/4 at k = 5 > k_pred = 3 violates it (k_measured 6, the step from which it stays below: margin
    4 − 6); if the path ends at k = 3, before the first promised step, nothing is promised yet."""
    prob, W0 = dyadic(), start(dyadic(), 32.0)
    ex = EX0 * np.array([1.0, 1 / 16, 1 / 16, 1 / 16, 1 / 16, 1 / 4, 1 / 16])
    v = P.check_remark52(prob, gd(2.0 ** -6, ex, W0), EX0 / 8)
    assert not v.holds and v.details["k_first_below"] == 1.0 and v.details["k_measured"] == 6.0 and v.margin == -2.0
    w = P.check_remark52(prob, gd(2.0 ** -6, ex[:4], W0), EX0 / 8)
    assert w.holds and not w.details["judged"]


# ---------------------------------------------------------------------------------------------- §4 balancedness
def test_imbalances_and_balance_residual_by_hand():
    """Def. 4.1 / §4: D_1 = W_1W_1ᵀ − W_2ᵀW_2. W_1 = diag(1, 2), W_2 = [[3, 4]]: D_1 = [[−8, −12], [−12, −12]],
    ‖D_1‖_F = √496, relative to max(‖W_1W_1ᵀ‖_F, ‖W_2ᵀW_2‖_F) = max(√17, 25). The balanced example has residual 0."""
    W = [np.diag([1.0, 2.0]), np.array([[3.0, 4.0]])]
    (D,) = E.imbalances(W)
    np.testing.assert_array_equal(D, [[-8.0, -12.0], [-12.0, -12.0]])
    assert E.balance_residual(W, relative=False) == pytest.approx(math.sqrt(496), rel=1e-12)
    assert E.balance_residual(W) == pytest.approx(math.sqrt(496) / 25, rel=1e-12)
    assert [x.shape for x in E.imbalances(balanced_e1(2.0))] == [(2, 2), (2, 2)]
    assert E.balance_residual(balanced_e1(2.0)) == 0.0
    W3 = balanced_e1(2.0)
    W3[2] = np.array([[4.0, 0.0]])  # D_2 = 4e_1e_1ᵀ − 16e_1e_1ᵀ: relative 12/16
    assert E.balance_residual(W3) == 0.75 and E.balance_residual(W3, relative=False) == 12.0


def test_imbalance_drift_and_balance_conserved_by_hand():
    """§4 (proof of Thm 4.4): D_ℓ(t) = D_ℓ(0) along gradient flow. From W(0) = [diag(1, 2), [[3, 4]]]
    (scale max‖W_ℓ(0)‖²_F = 25), W_1 → diag(2, 2) changes D_1 by diag(3, 0): drift 3/25; holds iff drift ≤ tol
    (boundary tol = 0.12: margin 0). Rotations W_1R, OW_2 keep every D_ℓ: drift 0."""
    W0 = [np.diag([1.0, 2.0]), np.array([[3.0, 4.0]])]
    W1 = [np.diag([2.0, 2.0]), W0[1]]
    R = np.array([[0.6, -0.8], [0.8, 0.6]])
    Wr = [W0[0] @ R, -W0[1]]
    path = Path("flow", np.arange(3.0), np.zeros(3), np.arange(3.0), [W0, Wr, W1])
    d = E.imbalance_drift(path)
    assert d[0] == 0.0 and d[1] == pytest.approx(0.0, abs=1e-15) and d[2] == 0.12
    for tol, holds in ((0.13, True), (0.12, True), (0.11, False)):
        v = E.check_balance_conserved(path, tol=tol)
        assert v.holds is holds and v.applicable and v.details["max_drift"] == 0.12 and v.where == "t = 2"
        assert raw(v) == pytest.approx(tol - 0.12, abs=1e-16)
    gdp = Path("gd", np.arange(3.0), np.zeros(3), np.arange(3.0), [W0, Wr, W1], 0.1)
    assert not E.check_balance_conserved(gdp, tol=1.0).applicable


# ---------------------------------------------------------------------------------------------- Thm 4.2, Thm 4.4
def test_thm42_energy_gap_by_hand():
    """Thm 4.2: a balanced W with W_3W_2W_1 = YZ^† = [8, 0, 0] (y1 = 16) has the least energy
    (H + 1)Σσ_i^{2/(H+1)} = 3·8^{2/3} = 12 = 3s², s = 2. Rescaling W_1 ×2, W_2 ×1/2 keeps the product: 16 + 1 + 4 = 21,
    gap 9/12; W = 0 misses (4.1) with energy 0 < 12."""
    prob = thm44_problem(16.0)
    W = balanced_e1(2.0)
    v = E.check_thm42(prob, W)
    assert E.min_energy(prob) == pytest.approx(12.0, rel=1e-12) and v.holds and v.applicable and v.margin == pytest.approx(0.0, abs=1e-14)
    u = E.check_thm42(prob, [2 * W[0], W[1] / 2, W[2]])
    assert u.holds and not u.applicable and u.margin == pytest.approx(0.75, rel=1e-12)
    z = E.check_thm42(prob, [0 * w for w in W])
    assert not z.holds and not z.applicable and raw(z) == -1.0


@pytest.mark.parametrize("y1,margin,printed", [(16.0, 1 / 16, 1 / 48), (15.5, 0.0, 1 / 48 - 1 / 16),
                                               (15.0, 1 / 16 - 1 / 4, 1 / 48 - 1 / 4)])
def test_thm44_condition3_margin_of_44_by_hand(y1, margin, printed):
    """Thm 4.4 (3), eq. (4.4): L(W(0)) ≤ σ_k̲^{2H}(W_1(0))σ²_small/(4^{H+1}m). Balanced start s = 2 (product [8, 0, 0]):
    σ_1^{4}(W_1) = 16, 4³ = 64; m = n̄d_y = 4 gives 1/16, the printed m = n̄d_x = 12 gives 1/48; L(W(0)) = (16 − y1)²/4."""
    prob = thm44_problem(y1)
    c = E.thm44_conditions(prob, balanced_e1(2.0))
    assert (c["k"], c["k_low"], c["rank_W1"], c["rank_YZt"], c["sigma_k_W1"]) == (2, 1, 1, 1, 2.0)
    assert c["relative_loss0"] == (16 - y1) ** 2 / 4
    assert c["margin_44"] == margin and c["margin_44_printed_m"] == pytest.approx(printed, rel=1e-12)
    assert c["necessary_bound"] == pytest.approx(2 * (y1 / 2) ** (1 / 3), rel=1e-12) and c["necessary_holds"]
    c1, c2, c3, c3p = E.check_thm44(prob, balanced_e1(2.0))
    assert c1.holds and c1.margin == 1e-10 and c2.holds and c2.margin == 1e-10
    assert c3.holds is (margin >= 0) and c3p.holds is (printed >= 0) and all(x.applicable for x in (c1, c2, c3, c3p))
    assert raw(c3) == margin
    assert E.margin_44(prob, np.array([[8.0, 0.0, 0.0]])) == pytest.approx(margin, abs=1e-15)


def test_thm44_condition2_outside_column_space_by_hand():
    """Thm 4.4 (2): [W_1(0)U]_ij = 0 for j > k = 2 (U the left singular vectors of Z: the third is ±e_3).
    W_1 = s·e_1(0.6, 0, 0.8): |[W_1U]_13| = 0.8s, relative to ‖W_1‖_F = s: 0.8; margin 1e-10 − 0.8.
    The start is still balanced (c1 holds) and rank W_1 = 1."""
    prob = thm44_problem(16.0)
    W = balanced_e1(2.0, v=(0.6, 0.0, 0.8))
    c = E.thm44_conditions(prob, W)
    assert c["outside_column_space"] == pytest.approx(0.8, rel=1e-12) and c["balance_residual"] < 1e-15
    c1, c2, _, _ = E.check_thm44(prob, W)
    assert c1.holds and not c2.holds and raw(c2) == pytest.approx(1e-10 - 0.8, rel=1e-12)
    un = E.check_thm44(prob, [W[0] * 2, W[1], W[2]])[0]  # D_1 = 16e_1e_1ᵀ − 4e_1e_1ᵀ: relative residual 12/16
    assert not un.holds and un.details["balance_residual"] == pytest.approx(0.75, rel=1e-12)


def test_44_feasibility_best_margin_against_the_closed_form_supremum():
    """§4 after Thm 4.4: "(4.4) is infeasible under balancedness". For y1 = 16, a balanced start with condition (2)
    has product P = [p1, p2, 0] and margin (p1² + p2²)^{2/3}/256 − ((2p1 − 16)² + p2²)/4 (σ_1(W_1) = σ_1(P)^{1/3}).
    Its supremum (at p2 = 0, p1 slightly above 8) is > 1/16 > 0: the claim fails, margin = −supremum."""
    f = lambda q: (q[0] ** 2 + q[1] ** 2) ** (2 / 3) / 256 - ((2 * q[0] - 16) ** 2 + q[1] ** 2) / 4
    res = so.minimize(lambda q: -f(q), [8.0, 0.1], method="Nelder-Mead", options={"xatol": 1e-12, "fatol": 1e-16})
    sup = -res.fun
    assert sup > 1 / 16 and abs(res.x[1]) < 1e-5
    v = E.check_44_feasibility(thm44_problem(16.0), random_starts=4)
    assert not v.holds and v.applicable
    assert v.details["best_margin"] == pytest.approx(sup, rel=1e-9)
    assert raw(v) == pytest.approx(-sup, rel=1e-9)
    assert v.details["closed_form_at_solution"] == pytest.approx(1 / 16, rel=1e-12)
    assert v.details["zero_start_relative_loss"] == pytest.approx(64.0, rel=1e-12)  # (256 + 2)/4 − 1/2
