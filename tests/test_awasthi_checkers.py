"""Value tests for the bound checkers of Awasthi et al., *Convergence of gradient descent for GNNs*
(paper 001, gnndyn.theory.awasthi): every expected number below is worked out by hand from the paper's
statement (Lemmas 1, 3, 4, 5, 12, 13, Thms 1, 2, eqs. (24), (25), (42), (46), §5) on inputs of a few numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gnndyn.theory import awasthi as thy

PI = math.pi
F64 = torch.float64
_DEFAULTS = {"alpha": 1.0, "beta": 0.0, "ell": 1.0, "B": None, "C": None, "loss": 1.0, "grad_sq": 1.0}


def approx(x, rel=1e-12, atol=0.0):
    """pytest.approx without its silent absolute tolerance of 1e-12 (many values here are ~1e-9 or smaller)."""
    return pytest.approx(x, rel=rel, abs=atol)


def _relu_stats(A, n, h, d, steps):
    """ReluRunStats of one graph (B = 1) fed one dict per step; a field is a list over the h rows or a scalar.
    Defaults: α = 1, β = 0, ℓ = 1 (escaped, ε_state = 0 so no PL ratio), B′ = C′ = A′, L_j = ‖∇L_j‖² = 1."""
    st = thy.ReluRunStats(torch.tensor([A], dtype=F64), [n], h, [d])
    for t, s in enumerate(steps):
        v = {k: s.get(k, A if dv is None else dv) for k, dv in _DEFAULTS.items()}
        row = {k: torch.tensor(x if isinstance(x, list) else [x] * h, dtype=F64)[None] for k, x in v.items()}
        st.update(t, row["alpha"], row["beta"], row["ell"], row["B"], row["C"], row["loss"], row["grad_sq"])
    return st


def _lin_stats(consts, sigmas):
    st = thy.LinearRunStats([consts])
    for t, s in enumerate(sigmas):
        st.update(t, np.array([s], dtype=np.float64))
    return st


# σ*_i = (1, 2), σ_{i,0} = (3, 1.5), n = 3, d = 1, L = 2: by hand from Lemma 12, Lemma 13 and eq. (25)
LIN = {"sigma_star": [1.0, 2.0], "sigma0": [3.0, 1.5], "n": 3, "d": 1, "L": 2}


# ---------------------------------------------------------------------------------------------- helpers
def test_relu_helpers_closed_forms():
    """Lemma 1: ℓ_t ≤ 2σ√r + 4π + 1, ℓ_t ≥ 1/(36π²), η ∈ [1/(16π(d+1)A), 1/(6π(d+1)A)] (A′ = (d+1)A);
    Lemma 2: 4(d+1)A(1 + √(2σ√r + 4π + 1)); Lemma 4: µ* = ε²/(380(d+1)h²πn²)."""
    up, lo = thy.lemma1_bounds(1.5, 4)
    assert up == approx(7 + 4 * PI, rel=1e-15) and lo == approx(1 / (36 * PI ** 2), rel=1e-15)
    assert thy.lemma1_eta_range(2.0) == approx((1 / (32 * PI), 1 / (12 * PI)), rel=1e-15)
    # σ = 1/2, r = 9: 2σ√r + 4π + 1 = 4(1 + π); A′ = 3
    assert thy.lemma2_bound(3.0, 0.5, 9) == approx(12 * (1 + 2 * math.sqrt(1 + PI)), rel=1e-14)
    assert thy.lemma4_mu(0.5, n=3, h=2, d=4) == approx(0.25 / (380 * 5 * 4 * PI * 9), rel=1e-15)


def test_thm2_constants_by_hand():
    """Lemma 12 (u_i, ℓ_i, η_i), Lemma 13 (δ_i), eq. (25) (η₀) for σ* = (1, 2), σ₀ = (3, 1.5), n = 3, d = 1, L = 2:
    u = (3, 4), ℓ = (1/2, 1), δ = (3, 2), η_i = (2/1728, 1/15360), η₀ = min(1/41472, 1/15360)."""
    c = thy.thm2_constants(**LIN)
    np.testing.assert_allclose(c.u, [3.0, 4.0], rtol=1e-15)
    np.testing.assert_allclose(c.ell, [0.5, 1.0], rtol=1e-15)
    np.testing.assert_allclose(c.delta, [3.0, 2.0], rtol=1e-15)
    np.testing.assert_allclose(c.eta_i, [1 / 864, 1 / 15360], rtol=1e-13)
    assert c.eta0_max == approx(1 / 41472, rel=1e-13)
    assert thy.thm2_constants([2.0], 1.0, n=1, d=0, L=1).ell[0] == approx(1.0)  # ℓ = σ*(1 − max(½, ½))


def test_thm2_g_is_eq42():
    """eq. (42): g_t = L(d²+1)σ^{L−1}(σ^L − σ*^L); d = 1, L = 2: 4σ(σ² − σ*²)."""
    np.testing.assert_allclose(thy.thm2_g(np.array([2.0, 1.0]), np.array([1.0, 2.0]), 1, 2), [24.0, -12.0], rtol=1e-15)


# ---------------------------------------------------------------------------------------------- Lemma 1
def test_lemma1_margin_is_relative_slack_of_upper_bound():
    """Lemma 1 (σ = 1, r = 4): max ℓ_t = 5 gives (5 + 4π − 5)/(5 + 4π); min_{t≥1} ℓ_t = 1/2 gives 18π² − 1;
    ℓ_0 = 0.001 lies below 1/(36π²) but the lower bound starts at t = 1."""
    st = _relu_stats(2.0, 100, 2, 4, [{"ell": [0.001, 2.0]}, {"ell": [0.5, 5.0]}, {"ell": [1.0, 3.0]}])
    eta = 1 / (10 * PI * 2.0)
    v = thy.check_lemma1(st, 0, sigma=1.0, r=4, eta=eta, where="hand")
    assert v.holds and v.applicable
    assert v.margin == approx(4 * PI / (5 + 4 * PI), rel=1e-12)
    assert v.details["relative_margin_lower"] == approx(18 * PI ** 2 - 1, rel=1e-12)
    assert v.details["max_ell"] == 5.0 and v.details["min_ell_t_ge_1"] == 0.5
    assert v.details["proof_form_upper_l0_plus_4pi_plus_1"] == approx(0.001 + 4 * PI + 1, rel=1e-12)
    assert v.details["proof_form_holds"] is True
    assert "upper bound, row 1, step 1" in v.where


def test_lemma1_violations_of_each_bound():
    """Lemma 1 violated: ℓ = 1.5·(2√r + 4π + 1) gives margin −1/2; ℓ_1 = 1/(4·36π²) gives −3/4."""
    upper, lower = 5 + 4 * PI, 1 / (36 * PI ** 2)
    st = _relu_stats(2.0, 100, 1, 4, [{"ell": 1.0}, {"ell": 1.0}, {"ell": 1.5 * upper}])
    v = thy.check_lemma1(st, 0, sigma=1.0, r=4, eta=1 / (20 * PI), where="hand")
    assert not v.holds and v.margin == approx(-0.5, rel=1e-12)
    st = _relu_stats(2.0, 100, 1, 4, [{"ell": 1.0}, {"ell": lower / 4}])
    v = thy.check_lemma1(st, 0, sigma=1.0, r=4, eta=1 / (20 * PI), where="hand")
    assert not v.holds and v.margin == approx(-0.75, rel=1e-12) and "lower bound, row 0, step 1" in v.where


def test_lemma1_at_the_bound_holds_with_zero_margin_and_proof_form_is_sharper():
    """ℓ_t = 2σ√r + 4π + 1 exactly: holds, margin 0. With r = 100, ℓ_0 = 1, ℓ_1 = 16 the printed bound
    (21 + 4π) holds but the proof's ℓ_t ≤ ℓ_0 + 4π + 1 does not."""
    upper = 5 + 4 * PI
    st = _relu_stats(2.0, 100, 1, 4, [{"ell": 1.0}, {"ell": upper}])
    v = thy.check_lemma1(st, 0, sigma=1.0, r=4, eta=1 / (20 * PI), where="hand")
    assert v.holds and v.margin == 0.0
    st = _relu_stats(2.0, 100, 1, 4, [{"ell": 1.0}, {"ell": 16.0}])
    v = thy.check_lemma1(st, 0, sigma=1.0, r=100, eta=1 / (20 * PI), where="hand")
    assert v.holds and v.details["proof_form_holds"] is False


@pytest.mark.parametrize("eta_A, ok", [(1 / (16 * PI), True), (1 / (6 * PI), True), (0.99 / (16 * PI), False),
                                       (1.01 / (6 * PI), False)])
def test_lemma1_step_size_interval_endpoints(eta_A, ok):
    """Lemma 1's η ∈ [1/(16π(d+1)A), 1/(6π(d+1)A)], closed at both ends (ηA′ with A′ = 2)."""
    st = _relu_stats(2.0, 100, 1, 4, [{}, {}])
    v = thy.check_lemma1(st, 0, sigma=1.0, r=4, eta=eta_A / 2.0, where="hand")
    assert v.assumptions[thy.A_ETA_L1] is ok and v.applicable is ok
    assert v.details["eta_times_A_prime"] == approx(eta_A, rel=1e-15)


# ---------------------------------------------------------------------------------------------- Lemma 5
N5, D5 = 100, 4
S2 = (D5 + 1) * N5 ** 2  # (Σ√(d_i+1))² on a d-regular graph


def test_lemma5_margin_is_smallest_relative_lower_slack():
    """Lemma 5 (primed, d-regular n = 100, d = 4): A′ = 1.2S²/π (slack 0.2), min B′ = 1.5S²/(4π) (0.5),
    C′ = 1.1A′/(2n) at an escaped step (0.1); C′ = 0 at a step with α < −1/100 does not count."""
    A = 1.2 * S2 / PI
    st = _relu_stats(A, N5, 2, D5, [{"B": [1.5 * S2 / (4 * PI), A], "C": [1.1 * A / (2 * N5), 0.3 * A]},
                                    {"alpha": [-0.5, 1.0], "B": [0.9 * A, A], "C": [0.0, A]}])
    v = thy.check_lemma5(st, 0, S2=S2, where="hand")
    assert v.holds and v.applicable
    assert v.margin == approx(0.1, rel=1e-12) and "C′_t ≥ A′/(2n)" in v.where
    sl = v.details["slack"]
    assert sl["A′ ≥ S²/π"] == approx(0.2, rel=1e-12) and sl["B′_t ≥ S²/(4π)"] == approx(0.5, rel=1e-12)
    assert sl["B′_t ≤ A′ (equality at the optimum)"] == 0.0
    assert v.details["max_abs_C_over_A"] == approx(1.0, rel=1e-15)
    assert v.details["B_min_row"] == 0 and v.details["B_min_step"] == 0


def test_lemma5_violations():
    """B′_t = S²/(8π) < S²/(4π): margin −1/2; B′_t = 1.01A′ > A′: violated (its slack −0.01 is not the margin,
    so the positive lower-bound slack becomes nan)."""
    A = 1.2 * S2 / PI
    v = thy.check_lemma5(_relu_stats(A, N5, 1, D5, [{"B": S2 / (8 * PI)}]), 0, S2=S2, where="hand")
    assert not v.holds and v.margin == approx(-0.5, rel=1e-12) and "B′_t ≥ S²/(4π)" in v.where
    v = thy.check_lemma5(_relu_stats(A, N5, 1, D5, [{"B": 1.01 * A}]), 0, S2=S2, where="hand")
    assert not v.holds and math.isnan(v.margin)
    assert v.details["slack"]["B′_t ≤ A′ (equality at the optimum)"] == approx(-0.01, rel=1e-12)


def test_lemma5_at_the_bound_A_equals_S2_over_pi():
    """A′ = S²/π exactly (A = n²/π): holds with margin 0."""
    A = S2 / PI
    v = thy.check_lemma5(_relu_stats(A, N5, 1, D5, [{"B": A, "C": A}]), 0, S2=S2, where="hand")
    assert v.holds and v.margin == 0.0 and "A′ ≥ S²/π" in v.where


# ---------------------------------------------------------------------------------------------- Lemma 3
def test_lemma3_margin_is_fraction_of_run_after_last_escape():
    """Lemma 3 (σ = 2, h = 3, T = 10): rows escape (α ≥ −1/100, ℓ ≥ 0.9, for good) at t = 2, 6 (after a relapse
    at t = 4, 5), 0 (α = −1/100, ℓ = 0.9 exactly: escaped); margin (10 − 6)/10, implied c = 6/log(2 log 3)."""
    steps = [{"alpha": [-0.5 if t < 2 else 1.0, 1.0, -0.01], "ell": [1.0, 0.5 if t in (4, 5) else 1.0, 0.9]}
             for t in range(11)]
    v = thy.check_lemma3(_relu_stats(1.0, N5, 3, D5, steps), 0, sigma=2.0, h=3, eta=1 / (10 * PI), where="hand")
    assert v.holds and v.margin == approx(0.4, rel=1e-12)
    assert v.details["t_escape_per_row"] == [2, 6, 0] and v.details["rows_never_escaped"] == 0
    assert v.details["implied_c"] == approx(6 / math.log(2 * math.log(3)), rel=1e-12)
    assert v.details["alpha0_min"] == -0.5 and "row 1 escapes last, at step 6 of 10" in v.where


def test_lemma3_violated_when_a_row_fails_at_the_last_step():
    """A row with ℓ_T < 0.9 at the last step never escaped for good: violated, margin (T − (T + 1))/T."""
    steps = [{"ell": 0.5 if t == 10 else 1.0} for t in range(11)]
    v = thy.check_lemma3(_relu_stats(1.0, N5, 1, D5, steps), 0, sigma=2.0, h=3, eta=1 / (10 * PI), where="hand")
    assert not v.holds and v.margin == approx(-0.1, rel=1e-12) and v.details["rows_never_escaped"] == 1


# ---------------------------------------------------------------------------------------------- Lemma 4
# n = 2, h = 1, d = 1: µ*(ε) = ε²/(380·2·1·π·4) = ε²/(3040π); ε_state = min(1, 4hn·max(|β|, |ℓ − 1|))
def _mu(eps):
    return eps ** 2 / (3040 * PI)


def test_lemma4_margin_is_log10_of_smallest_pl_over_mu():
    """Lemma 4: t = 0 not escaped (its ratio 1e-9 ignored); t = 1 β = 0.05 → ε = 0.4, ‖∇L‖²/L = 3µ*(0.4);
    t = 2 ℓ = 1.2 → ε = 1, ratio 2µ*(1); t = 3 below 1e-20·L_0 (skipped). Margin log10 2."""
    steps = [{"alpha": -0.5, "beta": 0.05, "grad_sq": 1e-9},
             {"beta": 0.05, "loss": 2.0, "grad_sq": 2.0 * 3 * _mu(0.4)},
             {"ell": 1.2, "grad_sq": 2 * _mu(1.0)},
             {"beta": 0.05, "loss": 1e-21, "grad_sq": 0.0}]
    v = thy.check_lemma4(_relu_stats(1.0, 2, 1, 1, steps), 0, eta=1 / (10 * PI), where="hand")
    assert v.holds and v.assumptions[thy.A_ESCAPED]
    assert v.margin == approx(math.log10(2), rel=1e-12) and "step 2" in v.where
    assert v.details["mu_star_at_eps_1"] == approx(_mu(1.0), rel=1e-15)


def test_lemma4_violation_and_boundary():
    """‖∇L‖²/L = µ*/2: violated, margin log10(1/2); = µ* exactly: holds, margin 0."""
    bad = thy.check_lemma4(_relu_stats(1.0, 2, 1, 1, [{"ell": 1.2, "grad_sq": 0.5 * _mu(1.0)}]), 0, eta=0.01, where="x")
    assert not bad.holds and bad.margin == approx(math.log10(0.5), rel=1e-12)
    edge = thy.check_lemma4(_relu_stats(1.0, 2, 1, 1, [{"ell": 1.2, "grad_sq": _mu(1.0)}]), 0, eta=0.01, where="x")
    assert edge.holds and edge.margin == approx(0.0, atol=1e-15)


def test_lemma4_only_the_final_escaped_stretch_counts():
    """Lemma 4 holds 'for all t ≥ c log(σ log h)': a ratio µ*/2 on an escaped stretch followed by a relapse
    (α < −1/100) is forgotten; the last stretch (escaped at the last step, t = 2 = T) has ratio 2µ*. A run ending
    unescaped fails A_ESCAPED."""
    steps = [{"ell": 1.2, "grad_sq": 0.5 * _mu(1.0)}, {"alpha": -0.5}, {"ell": 1.2, "grad_sq": 2 * _mu(1.0)}]
    v = thy.check_lemma4(_relu_stats(1.0, 2, 1, 1, steps), 0, eta=0.01, where="x")
    assert v.holds and v.margin == approx(math.log10(2), rel=1e-12) and v.assumptions[thy.A_ESCAPED]
    w = thy.check_lemma4(_relu_stats(1.0, 2, 1, 1, steps + [{"alpha": -0.5}]), 0, eta=0.01, where="x")
    assert w.assumptions[thy.A_ESCAPED] is False and not w.applicable and math.isnan(w.margin)


# ---------------------------------------------------------------------------------------------- Lemma 12
def test_lemma12_margin_is_smallest_relative_slack():
    """Lemma 12, σ₀ = (1.5, 1.5), σ* = (1, 2): u = (2, 4), ℓ = (1/2, 1); path (1.5, 1.5), (1.2, 1.8), (1, 2):
    slacks (σ − ℓ)/ℓ = (1, 1/2), (u − σ)/u = (1/4, 1/2) → margin 1/4 at mode 0's upper end, step 0.
    η_i = (1/576, 1/15360): η = 1/15360 meets η ≤ η_i, 2/15360 does not."""
    c = thy.thm2_constants([1.0, 2.0], 1.5, n=3, d=1, L=2)
    np.testing.assert_allclose(c.eta_i, [1 / 576, 1 / 15360], rtol=1e-13)
    st = _lin_stats(c, [[1.5, 1.5], [1.2, 1.8], [1.0, 2.0]])
    v = thy.check_lemma12(st, 0, eta_paper=1 / 15360, where="hand", assumptions={})
    assert v.holds and v.margin == approx(0.25, rel=1e-12) and v.assumptions[thy.A_ETA_L12]
    assert "mode 0" in v.where and "upper end u_i at step 0" in v.where
    assert v.details["eta_paper_over_min_eta_i"] == approx(1.0, rel=1e-12)
    w = thy.check_lemma12(st, 0, eta_paper=2 / 15360, where="hand", assumptions={})
    assert w.assumptions[thy.A_ETA_L12] is False and not w.applicable


def test_lemma12_violation_and_boundary():
    """σ = 1/4 < ℓ₀ = 1/2 at step 3: margin −1/2 at mode 0's lower end. σ₀ = 3 ≥ 2σ* puts σ_{0,0} = u₀:
    holds with margin 0."""
    c = thy.thm2_constants([1.0, 2.0], 1.5, n=3, d=1, L=2)
    v = thy.check_lemma12(_lin_stats(c, [[1.5, 1.5], [1.2, 1.8], [1.0, 2.0], [0.25, 2.0]]), 0, eta_paper=1e-6,
                          where="hand", assumptions={})
    assert not v.holds and v.margin == approx(-0.5, rel=1e-12) and "lower end ℓ_i at step 3" in v.where
    c = thy.thm2_constants(**LIN)
    v = thy.check_lemma12(_lin_stats(c, [[3.0, 1.5], [2.0, 1.8]]), 0, eta_paper=1e-6, where="hand", assumptions={})
    assert v.holds and v.margin == 0.0


# ---------------------------------------------------------------------------------------------- Lemma 13
def test_lemma13_margins_are_ratios_to_each_bound():
    """Lemma 13 at L = 2 (constants of LIN): upper ratio g²/bound = σ²(σ+σ*)²/(4uδ²), lower ratio
    g(σ−σ*)/bound = σ(σ+σ*)/(2ℓ²). Path (2, 1.5), (0.5, 2), (1, 1.5) (σ = σ* skipped): upper maxima (1/3, 27.5625/64),
    lower minima (1.5, 2.625) → margin min(1 − 27.5625/64, 1.5 − 1) = 1/2 at the lower bound, mode 0, step 1."""
    st = _lin_stats(thy.thm2_constants(**LIN), [[2.0, 1.5], [0.5, 2.0], [1.0, 1.5]])
    v = thy.check_lemma13(st, 0, where="hand", assumptions={"x": True})
    assert v.holds and v.applicable and v.margin == approx(0.5, rel=1e-12)
    np.testing.assert_allclose(v.details["max_upper_ratio_per_mode"], [1 / 3, 27.5625 / 64], rtol=1e-12)
    np.testing.assert_allclose(v.details["min_lower_ratio_per_mode"], [1.5, 2.625], rtol=1e-12)
    assert "lower bound, mode 0" in v.where and "step 1" in v.where


def test_lemma13_upper_bound_fails_inside_lemma12_range():
    """σ = 3 ∈ [ℓ, u] = [1, 4] for σ* = 2: g² = 4k²·9·1·25 > bound 16k²·4·4: ratio 225/64, margin 1 − 225/64
    (the paper's Lemma 13 upper bound is itself false here; the check reports it)."""
    st = _lin_stats(thy.thm2_constants(**LIN), [[2.0, 1.5], [0.5, 3.0]])
    v = thy.check_lemma13(st, 0, where="hand", assumptions={})
    assert not v.holds and v.margin == approx(1 - 225 / 64, rel=1e-12) and "upper bound, mode 1" in v.where


def test_lemma13_lower_bound_is_tight_at_L1_and_vacuous_at_optimum():
    """L = 1: g(σ−σ*) = (d²+1)(σ−σ*)² = the lower bound, ratio 1 → margin 0 (σ* = 1, σ₀ = 1: u = 2, δ = 2,
    upper ratio u/δ² = 1/2). σ_t = σ* throughout: nothing to compare, margin +inf."""
    c = thy.thm2_constants([1.0], 1.0, n=2, d=2, L=1)
    v = thy.check_lemma13(_lin_stats(c, [[1.0], [1.7], [0.6]]), 0, where="hand", assumptions={})
    assert v.holds and v.margin == approx(0.0, atol=1e-14)
    assert v.details["max_upper_ratio_per_mode"] == approx([0.5], rel=1e-12)
    v = thy.check_lemma13(_lin_stats(c, [[1.0], [1.0]]), 0, where="hand", assumptions={})
    assert v.holds and v.margin == math.inf


# ---------------------------------------------------------------------------------------------- Thm 2
# r = 1, σ* = 3, σ₀ = 4, n = 1, d = 1, L = 2: u = 6, ℓ = 3/2, δ = 2, k = d² + 1 = 2;
# eq. (24): T_lit(ε) = log(rLu(1 − σ*)²/ε)/(ηL²kℓ²) = log(48/ε)/(18η)
THM2 = {"sigma_star": [3.0], "sigma0": 4.0, "n": 1, "d": 1, "L": 2}
LOSS2 = np.array([100.0, 10.0, 1.0, 0.1, 0.01])  # ε² grid (3 points): 10, √0.1, 0.01 → T = 1, 3, 4


def test_thm2_margin_is_relative_slack_of_eq24():
    """Thm 2, eq. (24) with η = 1/36: T_lit = 2 log(48/ε); margin min_ε (T_lit − T)/T_lit, tightest at ε² = √0.1.
    Repaired proof form: q = 1 − ηnL²kℓ² = 1/2, T = log(max(r(n/2)L²u²(σ₀ − σ*)²/ε², 1))/log 2 = log₂(72/ε²).
    eq. (25): η₀ ≤ ℓ³·3⁻²/(2nL²δ²k·u(1 + u)) = 1/7168; Lemma 12: η_i = 1/(2nL²u²k(σ*)²(1 + u)) = 1/36288
    (eq. (25) does not imply Lemma 12's η ≤ η_i)."""
    c = thy.thm2_constants(**THM2)
    v = thy.check_thm2(LOSS2, c, eta_paper=1 / 36, r=1, where="hand", assumptions={}, eps_points=3)
    eps = np.sqrt([10.0, math.sqrt(0.1), 0.01])
    Tl = 2 * np.log(48 / eps)
    T = np.array([1.0, 3.0, 4.0])
    assert v.holds and v.details["T_measured"] == [1.0, 3.0, 4.0]
    np.testing.assert_allclose(v.details["T_literal"], Tl, rtol=1e-12)
    assert v.margin == approx(((Tl - T) / Tl)[1], rel=1e-12)
    np.testing.assert_allclose(v.details["T_proof_repaired"], np.log2(72 / eps ** 2), rtol=1e-12)
    assert c.eta0_max == approx(1 / 7168, rel=1e-13) and c.eta_i[0] == approx(1 / 36288, rel=1e-13)
    assert v.details["eta_over_eta0"] == approx(7168 / 36, rel=1e-13)
    assert v.details["eta0_eq25_meets_lemma12"] is False


def test_thm2_violated_when_measured_slower_than_eq24():
    """η = 1: T_lit = log(48/ε)/18 < T at every ε; the worst is ε² = 0.01: margin (log(480)/18 − 4)/1."""
    c = thy.thm2_constants(**THM2)
    v = thy.check_thm2(LOSS2, c, eta_paper=1.0, r=1, where="hand", assumptions={}, eps_points=3)
    assert not v.holds and v.margin == approx(math.log(480) / 18 - 4, rel=1e-12)


def test_thm2_unreached_eps_counts_only_when_the_bound_is_shorter_than_the_run():
    """The loss never reaches L₀/10 in 4 steps: with η = 1, T_lit = log(48/√0.1)/18 < 4: violated (margin −inf);
    with η = 0.001, T_lit ≈ 279 > 4: nothing is decided (holds, margin nan)."""
    c = thy.thm2_constants(**THM2)
    flat = np.array([1.0, 0.5, 0.5, 0.5, 0.5])
    v = thy.check_thm2(flat, c, eta_paper=1.0, r=1, where="hand", assumptions={}, eps_points=3)
    assert not v.holds and v.margin == -math.inf
    w = thy.check_thm2(flat, c, eta_paper=0.001, r=1, where="hand", assumptions={}, eps_points=3)
    assert w.holds and math.isnan(w.margin)


# ---------------------------------------------------------------------------------------------- Thm 1 (rate)
def _thm1_expected(T, n=2, h=1, d=0, lo=1e-3):
    hi = 1 - 1e-9
    eps = np.sqrt(hi * (lo / hi) ** (np.arange(4) / 3))
    c = np.asarray(T, dtype=np.float64) / (n ** 4 * h ** 2 * (d + 1) / eps ** 2 * np.log(n * h / eps))
    return c, math.log10(c[:2].max() / c[2:].max())


def test_thm1_rate_margin_is_log10_ratio_of_implied_constants():
    """Thm 1: T ≥ c·n⁴h²(d+1)/ε²·log(nh/ε). ε² grid (4 points) from 1 − 1e-9 to 1e-3, T = 1, 2, 3, 4; implied
    c = T/f(ε); margin log10(max of the large-ε half / max of the small-ε half)."""
    c, m = _thm1_expected([1, 2, 3, 4])
    v = thy.check_thm1_rate(np.array([10, 0.5, 0.05, 0.005, 0.001]), n=2, h=1, d=0, sigma=1.0, where="x", eps_points=4)
    assert v.holds and v.applicable and v.details["T"] == [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_allclose(v.details["implied_c"], c, rtol=1e-12)
    assert v.margin == approx(m, rel=1e-12) and m > 0
    assert not thy.check_thm1_rate(np.array([10, 0.5, 0.05, 0.005, 0.001]), n=2, h=1, d=0, sigma=2.0, where="x",
                                   eps_points=4).assumptions[thy.A_SIGMA1]


def test_thm1_rate_violated_when_T_grows_faster_than_the_shape():
    """The loss stalls at 0.05 until t = 500: T = 1, 2, 500, 501, implied c at ε² = 0.01 exceeds the one at ε² ≈ 1."""
    loss = np.array([10, 0.5] + [0.05] * 498 + [0.005, 0.001])
    _, m = _thm1_expected([1, 2, 500, 501])
    v = thy.check_thm1_rate(loss, n=2, h=1, d=0, sigma=1.0, where="x", eps_points=4)
    assert not v.holds and v.margin == approx(m, rel=1e-12) and m < 0


# ---------------------------------------------------------------------------------------------- §5, Fig. 2, eq. (46)
def test_larger_d_faster_margin_is_log10_smallest_consecutive_ratio():
    """§5 (Fig. 1): rates sorted by d, (5: 0.1, 10: 0.3, 30: 0.4): ratios 3, 4/3 → margin log10(4/3) between
    d = 10 and d = 30; lrs follow the sort; d = o(√n) at n = 100 only for d ≤ 4."""
    v = thy.check_larger_d_faster([30, 5, 10], [0.4, 0.1, 0.3], lrs=[1.0, 20.0, 1.0], normalized=[3.0, 1.0, 2.0], n=100)
    assert v.holds and v.margin == approx(math.log10(4 / 3), rel=1e-12) and "d = 10 and d = 30" in v.where
    assert v.details["lrs"] == [20.0, 1.0, 1.0] and v.details["normalized_increasing"] is True
    assert v.details["d = o(√n) plausibly met"] == {"5": False, "10": False, "30": False}
    assert thy.check_larger_d_faster([4, 5], [0.1, 0.2], lrs=[1, 1], n=100).details["d = o(√n) plausibly met"]["4"]


def test_larger_d_faster_equal_rates_are_not_increasing():
    """Strictly increasing: equal rates give margin log10(1) = 0 and do not hold; a halving gives log10(1/2)."""
    v = thy.check_larger_d_faster([5, 10], [0.2, 0.2], lrs=[1, 1])
    assert not v.holds and v.margin == 0.0
    w = thy.check_larger_d_faster([5, 10, 30], [0.2, 0.4, 0.2], lrs=[1, 1, 1])
    assert not w.holds and w.margin == approx(math.log10(0.5), rel=1e-12) and "d = 10 and d = 30" in w.where


def _kinked(b):
    """log10 L_t = −0.3t up to t = 17, then slope −b (t ≤ 27): fit window 7–27, halves split at t = 17."""
    t = np.arange(28.0)
    return 10 ** np.where(t <= 17, -0.3 * t, -0.3 * 17 - b * (t - 17))


@pytest.mark.parametrize("b, holds", [(0.3, True), (0.6, True), (0.075, False)])
def test_linear_convergence_margin_is_rate_ratio_minus_half(b, holds):
    """Thm 2 / Fig. 2 (linear convergence): rate_second/rate_first − 1/2 = b/0.3 − 1/2 (0.5, 1.5, −0.25)."""
    v = thy.check_linear_convergence(_kinked(b), where="hand", depth=2, assumptions={"a": True})
    assert v.holds is holds and v.margin == approx(b / 0.3 - 0.5, rel=1e-9)
    assert (v.details["start"], v.details["end"]) == (7, 27)
    assert v.details["rate_first"] == approx(0.3 * math.log(10), rel=1e-12) and v.applicable


def test_linear_convergence_fails_on_rate_decay_alone():
    """A flat start up to t = 10⁴ (then log t ≈ linear in t, so the power law fits no better than the line, R²
    within 2e-4): the rate falls from 0.3 to 0.12 decades/step at the window's midpoint t = 10⁴ + 13 — decay
    by more than half fails linear convergence by itself, margin 0.12/0.3 − 1/2 = −0.1."""
    u = np.arange(10_027.0) - 10_000
    loss = 10 ** np.where(u < 0, 0.0, np.where(u <= 13, -2.5 - 0.3 * u, -2.5 - 3.9 - 0.12 * (u - 13)))
    v = thy.check_linear_convergence(loss, where="hand", depth=2)
    assert abs(v.details["r2_linear"] - v.details["r2_power"]) < 1e-3
    assert (v.details["start"], v.details["end"]) == (10_000, 10_026)
    assert not v.holds and v.margin == approx(-0.1, rel=1e-9)


def test_eq46_relative_tolerance_without_scale():
    """App. C eq. (46) vs the exact loss, τ = 1e-9|L|: diff 2^-30 holds (margin 1e-9 − 2^-30), 2^-29 does not;
    L = 1e9, diff 1 = τ exactly holds with margin 0."""
    v = thy.check_eq46(1.0, 1.0 + 2.0 ** -30, where="x", depth=2, regular=False)
    assert v.holds and v.margin == approx(1e-9 - 2.0 ** -30, rel=1e-12)
    w = thy.check_eq46(1.0, 1.0 + 2.0 ** -29, where="x", depth=2, regular=False)
    assert not w.holds and w.margin == approx(1e-9 - 2.0 ** -29, rel=1e-12)
    e = thy.check_eq46(1e9, 1e9 + 1, where="x", depth=2, regular=True)
    assert e.holds and e.margin == 0.0 and e.details["tolerance"] == 1.0


def test_eq46_floating_point_tolerance_with_scale():
    """τ = 4(√(2 max L)·cS + ½(cS)²), c = L·r·2^-52: S = 2^20, L = 2, r = 3, loss 1/2 → cS = 6·2^-32,
    τ = 24·2^-32 + 72·2^-64; diff 2^-28 holds, 2^-27 exceeds √(2(1/2 + 2^-27))·4cS + … and fails."""
    cS = 6 * 2.0 ** -32
    tau = 4 * (cS + 0.5 * cS ** 2)
    v = thy.check_eq46(0.5, 0.5 + 2.0 ** -28, where="x", depth=2, regular=False, scale=2.0 ** 20, r=3)
    tau_v = 4 * (math.sqrt(2 * (0.5 + 2.0 ** -28)) * cS + 0.5 * cS ** 2)
    assert v.holds and v.details["floating_point_tolerance"] == approx(tau_v, rel=1e-12)
    assert v.margin == approx((tau_v - 2.0 ** -28) / 0.5, rel=1e-12) and tau_v == approx(tau, rel=1e-8)
    w = thy.check_eq46(0.5, 0.5 + 2.0 ** -27, where="x", depth=2, regular=False, scale=2.0 ** 20, r=3)
    tau_w = 4 * (math.sqrt(2 * (0.5 + 2.0 ** -27)) * cS + 0.5 * cS ** 2)
    assert not w.holds and w.margin == approx((tau_w - 2.0 ** -27) / 0.5, rel=1e-12)
