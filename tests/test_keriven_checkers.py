"""Value tests for the bound checkers of Keriven, *Backward oversmoothing: why is it hard to train deep GNNs?*
(gnndyn.theory.keriven): tiny inputs, answers worked out by hand from the paper's equations (App. A numbering),
by unrolling the proofs' recursions, by dense matrix powers or by least squares written out.

Running example (unless a test says otherwise): Constants D_𝒳 = 2, ℰ(X⁽⁰⁾) = 1, D_𝓛 = D′_𝓛 = 1, D_ρ = ½, n = 4;
s = (1, 2, 1) (L = 2), so S_L = 2 and A_L = S_L²D_𝒳D_𝓛 + S_LD′_𝓛 = 10.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gnndyn.data.graph import Graph
from gnndyn.operators.builders import build_operator, identity
from gnndyn.theory import keriven as thy
from gnndyn.theory.keriven.constructions import EXACT_TOL

C = thy.Constants(D_X=2.0, E_X0=1.0, D_loss=1.0, D_loss_prime=1.0, D_rho=0.5, n_nodes=4, n_loss=4)
S3 = [1.0, 2.0, 1.0]
ALL_MET = {thy.A1: True, thy.A2: True, thy.A3: True, thy.A4: True}
CYCLE_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (0, 2)]
R = dict(rel=1e-12)


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=0)


def sp(s, j, k):
    """s^(j:k) = ∏_{ℓ=j}^{k−1} s_ℓ (App. A notation)."""
    return math.prod(s[j:k])


def a_l(s, c):
    S = sp(s, 0, len(s))
    return S * S * c.D_X * c.D_loss + S * c.D_loss_prime


def thm2_recursion(lam, s, c, e_out):
    """App. A.3: ℰ(B⁽ᵏ⁾) ≤ D_ρℰ(X⁽⁰⁾)A_Lλ^{k+1}/n + s_{k+1}λℰ(B⁽ᵏ⁺¹⁾), iterated down from ℰ(B⁽ᴸ⁾)."""
    out = [0.0] * (len(s) - 1) + [e_out]
    for k in range(len(s) - 2, -1, -1):
        out[k] = c.D_rho * c.E_X0 * a_l(s, c) * lam ** (k + 1) / c.n_loss + s[k + 1] * lam * out[k + 1]
    return out


def mean_recursion(lam, s, c, eps_out):
    """App. A.9 with Lemma 1 (38)–(39): ε⁽ᵏ⁾ ≤ s_{k+1}ε⁽ᵏ⁺¹⁾ + D_ρℰ(X⁽⁰⁾)A_Lλ^{k+1} (P1 = 1: no λ on ε⁽ᵏ⁺¹⁾)."""
    out = [0.0] * (len(s) - 1) + [eps_out]
    for k in range(len(s) - 2, -1, -1):
        out[k] = s[k + 1] * out[k + 1] + c.D_rho * c.E_X0 * a_l(s, c) * c.n_nodes / c.n_loss * lam ** (k + 1)
    return out


def gossip_dense():
    """P = I − (D − A)/d_max (Keriven §2) of the 5-node cycle with a chord, its λ (Assumption 1), and the op."""
    A = np.zeros((5, 5))
    A[tuple(np.array(CYCLE_EDGES).T)] = 1.0
    A, n = A + A.T, 5
    deg = A.sum(1)
    P = np.eye(n) - (np.diag(deg) - A) / deg.max()
    lam = float(np.sort(np.abs(np.linalg.eigvalsh(P)))[-2])
    op = build_operator("gossip", Graph.from_edges(np.array(CYCLE_EDGES).T, n))
    np.testing.assert_allclose(op.scipy().toarray(), P, rtol=0, atol=1e-15)
    return P, lam, op


# ------------------------------------------------------------------------------------------ shared helpers
def test_window_products_are_the_appendix_products_s_j_k():
    """App. A notation: M[j, k] = s^(j:k) = ∏_{ℓ=j}^{k−1} s_ℓ, 1 on the diagonal."""
    M = thy.window_products([2.0, 3.0, 5.0])
    np.testing.assert_array_equal(M, [[1, 2, 6, 30], [0, 1, 3, 15], [0, 0, 1, 5], [0, 0, 0, 1]])


def test_compare_bound_picks_the_tightest_point_by_ratio_not_absolute_slack():
    """The margin convention used by every exact inequality (Thm 1 eq. (7), Thm 2, App. A.9): bound − measured at
    the largest measured/bound."""
    # ratios 0.88 and 0.84: layer 0 is tightest although its absolute slack 0.6 exceeds 0.4
    assert thy.compare_bound([4.4, 2.1], [5.0, 2.5]) == pytest.approx((True, 0.6, 0, 0.88), **R)
    assert thy.compare_bound([1.0, 3.0], [2.0, 2.0]) == pytest.approx((False, -1.0, 1, 1.5), **R)
    assert thy.compare_bound([9.0, 2.0, 2.0], [1.0, 4.0, 2.0], start=1) == (True, 0.0, 2, 1.0)  # equality holds


# ------------------------------------------------------------------------------------------ Thm 1
def test_thm1_bound_per_layer_and_max_s_forms():
    """Thm 1, eq. (7) and its proof (App. A.1): ℰ(X⁽ᵏ⁾) ≤ λᵏs^(0:k)ℰ(X⁽⁰⁾) ≤ (λs)ᵏℰ(X⁽⁰⁾), s = max_k s_k over all
    k = 0..L (§2), the output layer's s_L included."""
    close(thy.thm1_bound(8.0, 0.5, [2.0, 0.5, 1.0]), [8.0, 8.0, 2.0])
    close(thy.thm1_bound(8.0, 0.5, [2.0, 0.5, 1.0], per_layer=False), [8.0, 8.0, 8.0])
    close(thy.thm1_bound(3.0, 0.5, [1.0, 1.0, 4.0]), [3.0, 1.5, 0.75])
    close(thy.thm1_bound(3.0, 0.5, [1.0, 1.0, 4.0], per_layer=False), [3.0, 6.0, 12.0])


def test_check_thm1_margin_is_taken_at_the_tightest_layer_k_ge_1():
    """Thm 1, eq. (7): bounds (10, 5, 2.5) at λ = ½, s = 1; measured (10, 4.4, 2.1) → layer 1, margin 0.6."""
    v = thy.check_thm1([10.0, 4.4, 2.1], 0.5, [1.0, 1.0, 1.0], assumptions={thy.A1: True, thy.A2: True})
    assert v.holds and v.applicable and v.margin == pytest.approx(0.6, **R)
    assert v.where == "layer 1 of gnn (measured/bound = 0.88)"
    assert v.details["bound_per_layer"] == pytest.approx([10.0, 5.0, 2.5], **R)
    assert v.details["tightest_layer_max_s_form"] == 1 and v.details["margin_max_s_form"] == pytest.approx(0.6, **R)


def test_check_thm1_equality_holds_with_margin_zero():
    """Thm 1, eq. (7) met with equality, ℰ(X⁽ᵏ⁾) = λᵏℰ(X⁽⁰⁾): holds, margin 0 (≤, not <)."""
    v = thy.check_thm1([8.0, 4.0, 2.0], 0.5, [1.0, 1.0, 1.0])
    assert v.holds and v.margin == 0.0 and "measured/bound = 1" in v.where


def test_check_thm1_violated_in_per_layer_form_while_max_s_form_holds():
    """Thm 1 / App. A.1 with s = (2, ½, 1), λ = ½: per-layer (8, 8, 2), max-s (λs_max = 1) (8, 8, 8); measured
    (8, 6, 3) breaks the per-layer form at layer 2 (margin −1) only."""
    v = thy.check_thm1([8.0, 6.0, 3.0], 0.5, [2.0, 0.5, 1.0], assumptions={thy.A1: True, thy.A2: True})
    assert not v.holds and v.margin == pytest.approx(-1.0, **R) and v.where.startswith("layer 2 of gnn")
    assert "VIOLATION WITH EVERY ASSUMPTION MET" in v.where
    d = v.details
    assert (d["holds_per_layer_form"], d["holds_max_s_form"]) == (False, True)
    assert d["margin_max_s_form"] == pytest.approx(2.0, **R) and d["tightest_layer_max_s_form"] == 1
    assert (d["s_max"], d["lambda_s_max"]) == (2.0, 1.0)


# ------------------------------------------------------------------------------------------ Thm 2
def test_thm2_bound_per_layer_is_the_unrolled_recursion_of_app_a3():
    """App. A.3: D_ρℰ(X⁽⁰⁾)A_L/n = 5/4; k = 0: 5/4·(λ + λ³s₁) + λ²s₁s₂ℰ(B⁽ᴸ⁾) = 0.9375 + 0.125; k = 1:
    5/4·λ² + λs₂ℰ(B⁽ᴸ⁾); k = L: ℰ(B⁽ᴸ⁾). Without a measured ℰ(B⁽ᴸ⁾) it is Lemma 3's (D_𝒳D_𝓛S_L + D′_𝓛)/n = 5/4."""
    per = thy.thm2_bound(0.5, S3, C, e_out=0.25)
    close(per, [1.0625, 0.4375, 0.25])
    close(per, thm2_recursion(0.5, S3, C, 0.25))
    close(thy.thm2_bound(0.5, S3, C), [1.5625, 0.9375, 1.25])
    close(thy.thm2_bound(0.3, [0.7, 1.4, 0.9, 1.1], C, e_out=0.05),
                               thm2_recursion(0.3, [0.7, 1.4, 0.9, 1.1], C, 0.05))


def test_thm2_max_s_form_with_the_proofs_D_X_and_as_printed():
    """Thm 2 and the last display of App. A.3, s = 2, λ²s = ½: (D_𝒳D_𝓛s³ + D′_𝓛)/n = 17/4 times
    (D_ρD_𝒳s³λ^{k+1}/(1 − λ²s) + (λs)^{L−k}) = (9, 5, 3); as printed (no D_𝒳): (5, 3, 2)."""
    close(thy.thm2_bound(0.5, S3, C, form="max-s"), [38.25, 21.25, 12.75])
    close(thy.thm2_bound(0.5, S3, C, form="max-s-printed"), [21.25, 12.75, 8.5])
    assert np.isinf(thy.thm2_bound(0.5, [1.0, 4.5, 1.0], C, form="max-s")).all()  # λ²s > 1: no geometric sum


def test_check_thm2_margin_is_the_per_layer_slack_below_the_output_layer():
    """Thm 2 (App. A.3), per-layer bounds (1.0625, 0.4375) at k < L: measured (0.5, 0.3) → tightest k = 1, margin
    0.1375; the layer k = L (where the per-layer form is ℰ(B⁽ᴸ⁾) itself) does not set the margin."""
    v = thy.check_thm2([0.5, 0.3, 0.25], 0.5, S3, C, assumptions=ALL_MET)
    assert v.holds and v.applicable and v.margin == pytest.approx(0.1375, **R)
    assert v.where == "layer 1 of gnn (measured/bound = 0.686)"
    assert v.details["bound_per_layer"] == pytest.approx([1.0625, 0.4375, 0.25], **R)
    assert v.details["bound_max_s"] == pytest.approx([38.25, 21.25, 12.75], **R)
    assert v.details["tightest_layer_max_s_form"] == 2 and v.details["ratio_max_s_form"] == pytest.approx(0.25 / 12.75, **R)
    edge = thy.check_thm2([1.0625, 0.3, 0.25], 0.5, S3, C)
    assert edge.holds and edge.margin == 0.0 and edge.where.startswith("layer 0 of gnn")


def test_check_thm2_violated_below_the_output_layer():
    """Thm 2 (App. A.3): ℰ(B⁽¹⁾) = 0.5 > 0.4375 → violated by 0.0625, a bug if Assumptions 1–4 hold."""
    v = thy.check_thm2([0.5, 0.5, 0.25], 0.5, S3, C, assumptions=ALL_MET)
    assert not v.holds and v.margin == pytest.approx(-0.0625, **R) and "VIOLATION WITH EVERY ASSUMPTION MET" in v.where
    v4 = thy.check_thm2([0.5, 0.5, 0.25], 0.5, S3, C, assumptions={**ALL_MET, thy.A4: False})
    assert not v4.holds and not v4.applicable and "explained by the failed assumption(s): A4" in v4.where


def test_check_thm2_output_layer_is_judged_by_the_max_s_form():
    """Thm 2's statement at k = L: 17/4·(2 + 1) = 12.75 < 13 = ℰ(B⁽ᴸ⁾) → violated although the per-layer form
    (k < L, slack 5.8125 at k = 1) holds: the two-condition verdict gets margin nan, the raw slack kept."""
    v = thy.check_thm2([1.0, 1.0, 13.0], 0.5, S3, C)
    assert not v.holds and math.isnan(v.margin) and v.details["margin_raw"] == pytest.approx(5.8125, **R)
    d = v.details
    assert (d["holds_per_layer_form"], d["holds_max_s_form"], d["tightest_layer_max_s_form"]) == (True, False, 2)
    assert d["ratio_max_s_form"] == pytest.approx(13 / 12.75, **R)


def test_check_thm2_printed_statement_exceeded_while_the_proofs_form_holds():
    """Thm 2 as printed lacks the D_𝒳 of App. A.3's last display. D_𝒳 = ℰ(X⁽⁰⁾) = 4, D_𝓛 = 0, D′_𝓛 = D_ρ = n = 1,
    s = 1, λ = ½: per-layer bound at k = 0 is 4·λ = 2, proof's form 4λ/(¾) + λ = 19/6, printed λ/(¾) + λ = 7/6."""
    c = thy.Constants(D_X=4.0, E_X0=4.0, D_loss=0.0, D_loss_prime=1.0, D_rho=1.0, n_nodes=1, n_loss=1)
    v = thy.check_thm2([1.5, 0.0], 0.5, [1.0, 1.0], c)
    assert v.holds and v.margin == pytest.approx(0.5, **R)
    assert v.details["bound_max_s"] == pytest.approx([19 / 6, 7 / 3], **R)
    assert v.details["bound_max_s_printed"] == pytest.approx([7 / 6, 4 / 3], **R)
    assert not v.details["holds_printed_form"] and v.details["ratio_printed_form"] == pytest.approx(9 / 7, **R)
    assert "the printed statement (no D_𝒳 in its first term) is exceeded at layer 0" in v.where


# ------------------------------------------------------------------------------------------ App. A.9: mean error
def test_mean_error_bound_is_the_unrolled_recursion_of_app_a9():
    """App. A.9 with Lemma 1: D_ρℰ(X⁽⁰⁾)A_L = 5, λ = ¼: k = 0: 5(λ + λ²s₁) + s₁s₂ε_n = 1.875 + 0.5, k = 1:
    5λ² + s₂ε_n. The display's λ^{2ℓ+1−k}, 1/(1 − λ²s) (a slip) and the max-s form 5λ^{k+1}/(1 − λs) + s^{L−k}ε_n."""
    lam, eps = 0.25, 0.25
    close(thy.mean_error_bound(lam, S3, C, eps), [2.375, 0.5625, 0.25])
    close(thy.mean_error_bound(lam, S3, C, eps), mean_recursion(lam, S3, C, eps))
    close(thy.mean_error_bound(lam, S3, C, eps, form="per-layer-printed"),
                               [5 * (lam + 2 * lam ** 3) + 0.5, 0.5625, 0.25])
    close(thy.mean_error_bound(lam, S3, C, eps, form="max-s"), [3.5, 1.125, 0.40625])
    k = np.arange(3)
    close(thy.mean_error_bound(lam, S3, C, eps, form="max-s-printed"),
                               5 * lam ** (k + 1) / (1 - lam ** 2 * 2) + 2.0 ** (2 - k) * eps)
    assert np.isinf(thy.mean_error_bound(0.5, S3, C, eps, form="max-s")).all()  # λs = 1
    masked = thy.Constants(**{**C.as_dict(), "n_loss": 2})  # footnote 2: A_L carries n_nodes/n_loss = 2
    close(thy.mean_error_bound(lam, S3, masked, eps), [4.25, 0.875, 0.25])


def test_check_mean_error_margin_boundary_and_violation():
    """App. A.9 recursion, bounds (2.375, 0.5625) below the output: measured (2, 0.5) → margin 0.0625 at k = 1, and
    it exceeds the printed display (1.90625 at k = 0); at equality margin 0; 2.5 > 2.375 violated by 0.125."""
    v = thy.check_mean_error([2.0, 0.5, 0.25], 0.25, S3, C, assumptions=ALL_MET)
    assert v.holds and v.margin == pytest.approx(0.0625, **R) and v.where.startswith("layer 1 of gnn")
    assert not v.details["holds_per-layer-printed"] and v.details["holds_max-s"]
    assert "the printed display of App. A.9 (λ^{2ℓ+1−k}, 1/(1−λ²s)) is exceeded here" in v.where
    edge = thy.check_mean_error([2.375, 0.5, 0.25], 0.25, S3, C)
    assert edge.holds and edge.margin == 0.0 and edge.where.startswith("layer 0 of gnn")
    bad = thy.check_mean_error([2.5, 0.5, 0.25], 0.25, S3, C, assumptions=ALL_MET)
    assert not bad.holds and bad.margin == pytest.approx(-0.125, **R)


# ------------------------------------------------------------------------------------------ App. A.9: gradients
def grad_chain_by_hand(lam, s, c, e_out, eps_out):
    """App. A.9 before the ≲ steps: last layers ‖F⁽ℓ⁾ᵀB⁽ℓ⁾‖ ≤ ‖F‖_{2,∞}ε⁽ℓ⁾ + n‖B⁽ℓ⁾‖_{2,∞}ℰ(F⁽ℓ⁾) (Lemmas 2–3,
    eq. (18)); first layers ‖F⁽ℓ⁾‖_F‖B⁽ℓ⁾‖_F ≤ D_𝒳s^(0:ℓ)s^(ℓ+1:k+1)(ε⁽ᵏ⁾ + nℰ(B⁽ᵏ⁾)) for a pivot k > ℓ."""
    L = len(s) - 1
    eps, ebk = mean_recursion(lam, s, c, eps_out), thm2_recursion(lam, s, c, e_out)
    lemma3 = (sp(s, 0, L + 1) * c.D_X * c.D_loss + c.D_loss_prime) / c.n_loss  # n‖B⁽ᴸ⁾‖_{2,∞} / n_nodes
    out = []
    for ell in range(L + 1):
        last = sp(s, 0, ell) * c.D_X * eps[ell] + c.n_nodes * lemma3 * sp(s, ell + 1, L + 1) * lam ** (ell + 1) \
            * sp(s, 0, ell) * c.E_X0
        firsts = [c.D_X * sp(s, 0, ell) * sp(s, ell + 1, k + 1) * (eps[k] + c.n_nodes * ebk[k]) for k in range(ell + 1, L + 1)]
        out.append(min([last] + firsts))
    return out


def test_gradient_bound_at_depth_one_takes_the_smaller_of_eq34_and_eq35():
    """App. A.9, L = 1, s = (1, 2), λ = ¼, ℰ(B⁽ᴸ⁾) = ⅛, ε_n = ¼: ε̂⁽⁰⁾ = 1.75, ℰ̂(B⁽⁰⁾) = 0.375. Layer 0: last-layers
    2·1.75 + 2·5·λ = 6, first-layers (pivot 1) 2·2·(¼ + 4·⅛) = 3 → 3; layer 1: 2·¼ + 5λ² = 0.8125. With ℰ(B⁽ᴸ⁾) = ½
    the pivot gives 9 and the last-layers bound 6 is the smaller."""
    close(thy.gradient_bound(0.25, [1.0, 2.0], C, e_out=0.125, eps_out=0.25), [3.0, 0.8125])
    close(thy.gradient_bound(0.25, [1.0, 2.0], C, e_out=0.5, eps_out=0.25), [6.0, 0.8125])


@pytest.mark.parametrize("s,lam,n_loss", [(S3, 0.25, 4), ([0.8, 1.3, 0.6, 1.1], 0.4, 4), ([0.8, 1.3, 0.6, 1.1], 0.4, 2)])
def test_gradient_bound_at_depth_two_and_three_is_the_chain_of_app_a9(s, lam, n_loss):
    """App. A.9, eqs. (34)–(35) un-simplified (with footnote 2's n_nodes/n_loss), against grad_chain_by_hand."""
    c = thy.Constants(**{**C.as_dict(), "n_loss": n_loss})
    close(thy.gradient_bound(lam, s, c, e_out=0.07, eps_out=0.3),
                               grad_chain_by_hand(lam, s, c, 0.07, 0.3))


def test_check_gradient_bound_margin_boundary_and_violation():
    """App. A.9 chain, bounds (3, 0.8125): measured (2, 0.8125) meets it with equality at layer 1 (margin 0); measured
    (3.5, 0.5) exceeds it at layer 0 by 0.5."""
    v = thy.check_gradient_bound([2.0, 0.8125], 0.25, [1.0, 2.0], C, e_out=0.125, eps_out=0.25, assumptions=ALL_MET)
    assert v.holds and v.margin == 0.0 and v.where == "layer 1 of gnn (measured/bound = 1)"
    assert (v.details["global_delta"], v.details["global_delta_bound"]) == (2.0, 3.0)
    bad = thy.check_gradient_bound([3.5, 0.5], 0.25, [1.0, 2.0], C, e_out=0.125, eps_out=0.25, assumptions=ALL_MET)
    assert not bad.holds and bad.margin == pytest.approx(-0.5, **R) and bad.where.startswith("layer 0 of gnn")


# ------------------------------------------------------------------------------------------ Thm 3, eq. (23)
def test_mean_error_from_output_gradient_eq23():
    """App. A.6, eqs. (21)–(23): L = 1, s = (1, 2), λ = ¼, δ̄ = 0.1, D_F = 1: ℰ(F⁽ᴸ⁾) ≤ s₀λ²ℰ(X⁽⁰⁾) = 1/16,
    (D_𝓛D_𝒳S_L + D′_𝓛) = 5: (0.1 + 5/16)/(1 − 1/16) = 0.44, at most the printed (23) with s = 2; +∞ once D_F ≤ 1/16."""
    b = thy.mean_error_from_output_gradient(0.25, [1.0, 2.0], C, delta_bar=0.1, D_F=1.0)
    assert b == pytest.approx(0.44, **R)
    b2 = thy.mean_error_from_output_gradient(0.25, [1.0, 2.0], C, delta_bar=0.1, D_F=2.0)
    s, L, lam = 2.0, 1, 0.25  # printed (23) at D_F = 2: (0.1 + 18·λ²·2)/(2 − 2sλ) = 2.35 (vacuous at D_F = 1)
    printed = (0.1 + (C.D_loss * C.D_X * s ** (2 * L + 1) + C.D_loss_prime * s ** L) * lam ** (L + 1) * C.D_X) \
        / (2.0 - C.D_X * s ** L * lam ** L)
    assert b2 == pytest.approx(0.4125 / 1.9375, **R) and printed == pytest.approx(2.35, **R) and b2 <= printed
    assert thy.mean_error_from_output_gradient(0.25, [1.0, 2.0], C, delta_bar=0.1, D_F=0.0625) == math.inf
    assert thy.mean_error_from_output_gradient(0.25, [1.0, 2.0], C, delta_bar=0.1, D_F=0.05) == math.inf


def test_check_thm3_mean_error_margin():
    """eq. (23) with bound 0.44: ‖1ᵀB⁽ᴸ⁾‖ = 0.3 holds by 0.14, 0.5 violates by 0.06; a vacuous bound holds with +∞."""
    v = thy.check_thm3_mean_error(0.3, 0.25, [1.0, 2.0], C, delta_bar=0.1, D_F=1.0, assumptions=ALL_MET)
    assert v.holds and v.margin == pytest.approx(0.14, **R) and v.details["bound"] == pytest.approx(0.44, **R)
    bad = thy.check_thm3_mean_error(0.5, 0.25, [1.0, 2.0], C, delta_bar=0.1, D_F=1.0, assumptions=ALL_MET)
    assert not bad.holds and bad.margin == pytest.approx(-0.06, **R)
    vac = thy.check_thm3_mean_error(0.5, 0.25, [1.0, 2.0], C, delta_bar=0.1, D_F=0.05)
    assert vac.holds and vac.margin == math.inf


# ------------------------------------------------------------------------------------------ Prop 1, Prop 2
def test_prop1_gradients_are_one_and_loss_is_one_half():
    """Prop 1, eq. (9) (App. A.5): F⁽ᵏ⁾ = 1ₙ, B⁽ᵏ⁾ = 1ₙ/n with eq. (3)'s ½, so every ‖∂𝓛/∂W⁽ᵏ⁾‖ = 1ᵀ1/n = 1,
    ℰ(B⁽ᵏ⁾) = 0 and 𝓛 = ½."""
    _, _, op = gossip_dense()
    ev = thy.prop1(op, 3)
    np.testing.assert_allclose(ev.grads, [1.0] * 4, rtol=0, atol=1e-14)
    assert ev.loss == pytest.approx(0.5, **R) and max(ev.smoothing_B) <= 1e-15 and ev.spectral_norms == [1.0] * 4


def test_check_prop1_margin_is_tolerance_minus_error():
    """Prop 1, eq. (9): holds with margin EXACT_TOL − 0 on the MLP (exact arithmetic); with the adjacency matrix
    (P1 ≠ 1, Assumption 1 fails) every gradient is 1ᵀA^{2L+2}1/n = 184/5 at L = 1, margin EXACT_TOL − 35.8."""
    g = Graph.from_edges(np.array(CYCLE_EDGES).T, 5)
    v = thy.check_prop1(identity(g), 3)
    assert v.holds and v.margin == EXACT_TOL
    A = build_operator("adjacency", g)
    expect = float(np.ones(5) @ np.linalg.matrix_power(A.scipy().toarray(), 4) @ np.ones(5)) / 5
    bad = thy.check_prop1(A, 1, assumptions={thy.A1: False})
    assert expect == pytest.approx(36.8, **R)
    assert not bad.holds and bad.margin == pytest.approx(EXACT_TOL - (expect - 1.0), **R)
    assert bad.details["grad_norms"] == pytest.approx([expect, expect], **R)


@pytest.mark.parametrize("depth,k", [(4, 2), (3, 2)])
def test_check_prop2_on_an_mlp(depth, k):
    """Prop 2, eq. (15) (App. A.8): W⁽ᵏ⁾ = 0 in an MLP, x = y = ±1: ∂𝓛/∂W⁽ᴸ⁾ = 0, ‖∂𝓛/∂W⁽ᵏ⁾‖ = Σxᵢyᵢ/n = 1,
    the other layers 0 (k = L − 1 included); n = 64 makes it exact: margin EXACT_TOL."""
    mlp = identity(Graph.from_edges(np.zeros((2, 0), dtype=np.int64), 64))
    v = thy.check_prop2(mlp, depth, k, seed=1)
    assert v.holds and v.margin == EXACT_TOL
    d = v.details
    assert (d["grad_k"], d["grad_output"], d["other_layers_max"]) == (1.0, 0.0, 0.0)
    assert d["loss"] == pytest.approx(0.5, **R)  # (1/2n)Σyᵢ², yᵢ² = 1


def test_check_prop2_fails_on_a_graph_and_the_closed_form_is_a_matrix_power():
    """Prop 2's construction with a gossip P: ∂𝓛/∂W⁽ᵏ⁾ = −(1/n)xᵀP^{L+1}y (App. A.8 with F⁽ᵏ⁾ = P^{k+1}x,
    B⁽ᵏ⁾ = −P^{L−k}y/n), ≠ 1, so the MLP statement is violated by |·| − 1."""
    P, _, op = gossip_dense()
    x, y = thy.prop2_data(5, 0)
    xn, yn = x.numpy().ravel(), y.numpy().ravel()
    for L in (1, 3):
        closed = -float(xn @ np.linalg.matrix_power(P, L + 1) @ yn) / 5
        assert thy.prop2_closed_form(op, L, x, y) == pytest.approx(closed, **R)
    g1 = abs(float(xn @ P @ P @ yn)) / 5
    v = thy.check_prop2(op, 1, 0, seed=0)
    assert not v.holds and v.margin == pytest.approx(EXACT_TOL - abs(g1 - 1.0), **R)
    assert v.details["grad_k"] == pytest.approx(g1, **R)


def test_prop2_gnn_bound_by_hand():
    """§4 contrast of Prop 2: |xᵀP^{L+1}y|/n ≤ |x̄ȳ| + λ^{L+1}‖J^⊥x‖‖J^⊥y‖/n. x = y = (1, −1, 1, 1): x̄ = ½,
    ‖J^⊥x‖² = 3, λ = ½: L = 1 → ¼ + ¼·¾, L = 2 → ¼ + ⅛·¾."""
    x = torch.tensor([[1.0], [-1.0], [1.0], [1.0]], dtype=torch.float64)
    assert thy.prop2_gnn_bound(x, x, 0.5, 1) == pytest.approx(0.4375, **R)
    assert thy.prop2_gnn_bound(x, x, 0.5, 2) == pytest.approx(0.34375, **R)
    assert thy.prop2_gnn_bound(x, -x, 0.0, 2) == pytest.approx(0.25, **R)


def test_check_prop2_gnn_margin_and_violation():
    """Prop 2 with a gossip P (Assumption 1, λ from eigvalsh): margin = |x̄ȳ| + λ²‖J^⊥x‖‖J^⊥y‖/n − |xᵀP²y|/n at
    L = 1; with λ = 0 the bound is |x̄ȳ| < |xᵀP²y|/n (P² ⪰ 0): violated."""
    P, lam, op = gossip_dense()
    x, y = thy.prop2_data(5, 0)
    xn, yn = x.numpy().ravel(), y.numpy().ravel()
    g = abs(float(xn @ P @ P @ yn)) / 5
    bound = abs(xn.mean() * yn.mean()) + lam ** 2 * np.linalg.norm(xn - xn.mean()) * np.linalg.norm(yn - yn.mean()) / 5
    v = thy.check_prop2_gnn(op, 1, 0, lam, seed=0)
    assert v.holds and v.margin == pytest.approx(bound - g, **R) and v.margin > 0
    assert (v.details["closed_form"], v.details["bound"]) == pytest.approx((g, bound), **R)
    bad = thy.check_prop2_gnn(op, 1, 0, 0.0, seed=0)
    assert not bad.holds and bad.margin == pytest.approx(xn.mean() * yn.mean() - g, **R) and bad.margin < 0
    # a λ′ < λ for which the bound is exactly g/1.5: violated by g/3 (no slack beyond rounding)
    lam_low = math.sqrt((g / 1.5 - xn.mean() ** 2) * 5 / np.sum((xn - xn.mean()) ** 2))
    low = thy.check_prop2_gnn(op, 1, 0, lam_low, seed=0)
    assert not low.holds and low.margin == pytest.approx(-g / 3, **R)


# ------------------------------------------------------------------------------------------ §3.2 dip
def test_backward_dip_ties_take_the_first_minimum_and_the_output_end_is_violated():
    """§3.2, Fig. 2 (right): argmin_k ℰ(B⁽ᵏ⁾) strictly inside (0, L); margin min(k, L − k)/L."""
    v = thy.check_backward_dip([4.0, 1.0, 1.0, 2.0, 8.0])
    assert v.holds and v.margin == pytest.approx(0.25, **R) and v.details["layer"] == 1
    assert v.details["endpoint_over_min"] == 4.0 and v.details["position"] == 0.25
    end = thy.check_backward_dip([3.0, 2.0, 1.0])
    assert not end.holds and end.margin == 0.0 and end.details["layer"] == 2 and end.details["position"] == 1.0
    assert thy.check_backward_dip([1.0, 0.0, 2.0]).details["endpoint_over_min"] == math.inf


# ------------------------------------------------------------------------------------------ rates
def test_fit_exponent_is_least_squares_on_log_y():
    """The ≲ statements (Cor 1, Thm 3, Thm 4) fitted as rates: log y = (0, −1, −3) at x = (0, 1, 2) has slope −3/2,
    intercept 1/6, residuals (−1/6, 1/3, −1/6), stderr √((1/6)/1/2) = 1/√12, R² = 1 − (1/6)/(14/3) = 27/28."""
    f = thy.fit_exponent([0, 1, 2], np.exp([0.0, -1.0, -3.0]))
    assert (f.slope, f.rate, f.intercept) == pytest.approx((-1.5, 1.5, 1 / 6), **R)
    assert (f.stderr, f.r2, f.points) == pytest.approx((1 / math.sqrt(12), 27 / 28, 3), **R)
    noisy = thy.fit_exponent([0, 5, 1, 7, 2], [1.0, 0.0, math.exp(-1), math.nan, math.exp(-3)])  # 0, nan dropped
    assert (noisy.slope, noisy.points) == pytest.approx((-1.5, 3), **R)
    two = thy.fit_exponent([1, 3], [math.exp(-1), math.exp(-2)])
    assert (two.slope, two.intercept, two.stderr, two.r2, two.points) == pytest.approx((-0.5, -0.5, 0.0, 1.0, 2), **R)


def test_check_rate_allows_two_standard_errors():
    """Rate check: fitted 1.5 ± 1/√12; 1.5 + 2/√12 ≈ 2.077 ≥ 2 holds (raw margin −0.5, normalized to 0 by the
    verdict), < 2.1 violated (margin −0.6); a predicted exponent ≤ 0 promises nothing (holds, margin 1.6)."""
    x, y = [0, 1, 2], np.exp([0.0, -1.0, -3.0])
    ok = thy.check_rate("r", "p", "s", x, y, predicted=2.0)
    assert ok.holds and ok.margin == 0.0 and ok.details["margin_raw"] == pytest.approx(-0.5, **R)
    assert ok.details["ratio"] == pytest.approx(0.75, **R)
    bad = thy.check_rate("r", "p", "s", x, y, predicted=2.1)
    assert not bad.holds and bad.margin == pytest.approx(-0.6, **R)
    none = thy.check_rate("r", "p", "s", x, y, predicted=-0.1)
    assert none.holds and none.margin == pytest.approx(1.6, **R) and "promises no decay" in none.where
    edge = thy.check_rate("r", "p", "s", [0, 1], [1.0, 0.5], predicted=math.log(2))  # exact fit, stderr 0
    assert edge.holds and edge.margin == 0.0


def test_thm3_exponent_per_case():
    """Thm 3: case 1 (eq. (25)) ξ_q(α); case 2 regression (eq. (28)) ξ₂(α); classification (eq. (30))
    min(ξ₁(α), (1 − 3α)/2). ξ₁(0.2) = 0.44/1.6, (1 − 0.6)/2 = 0.2; ξ₂(0.1) = 0.52/1.8; ξ₁(0.6) = −0.55 < −0.4."""
    assert thy.thm3_exponent(1, 0.2, 1) == pytest.approx(0.275, **R)
    assert thy.thm3_exponent(2, 0.1, 1) == pytest.approx(0.52 / 1.8, **R)
    assert thy.thm3_exponent(2, 0.1, 2) == pytest.approx(0.52 / 1.8, **R)
    assert thy.thm3_exponent(1, 0.2, 2) == pytest.approx(0.2, **R)
    assert thy.thm3_exponent(1, 0.6, 2) == pytest.approx(-0.55, **R)


def test_admissible_ranges_of_cor1_and_thm3():
    """Cor 1 (α < 1 − √(1 − 1/q) ≈ 0.293 for q = 2), eq. (37) (ξ_q(α) > 0: α < 0.219 for q = 2), Thm 3 2(b)
    (α < 1/3, strict)."""
    keys = list(thy.admissible(2, 0.0))
    assert [thy.admissible(2, 0.2)[k] for k in keys] == [True, True, True]  # ξ₂(0.2) = 0.08/1.6
    assert [thy.admissible(2, 0.25)[k] for k in keys] == [True, False, True]  # ξ₂(¼) = −0.125/1.5
    assert [thy.admissible(2, 0.3)[k] for k in keys] == [False, False, True]
    assert [thy.admissible(1, 1 / 3)[k] for k in keys] == [True, True, False]  # ξ₁(⅓) = 1/12


@pytest.mark.parametrize("q", [1, 2])
def test_admissible_thm3_excludes_expansion_rates_above_one_eq37(q):
    """Thm 3 / Thm 4 with eq. (37) (App. A.9): the β-window qα/(1−α) < β < 1 − qα is empty for α ≥ 1; at α = 1.5,
    ξ₁ = 1.25 and ξ₂ = 2 are positive but α exceeds 0.38 / 0.21."""
    assert thy.xi(q, 1.5) > 0
    assert thy.admissible(q, 1.5)["Thm 3/4: ξ_q(α) > 0"] is False


def test_admissible_at_alpha_one_is_false_everywhere():
    """§3.1 / Cor 1 / eq. (37): α = 1 (s = 1/λ) is outside every admissible range."""
    assert not any(thy.admissible(1, 1.0).values())
