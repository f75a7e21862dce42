"""Keriven's layer-wise statements at depth L = 0 are *not applicable*, not violated and not "holds with margin 0
at ℰ(X⁽⁰⁾) ≤ ℰ(X⁽⁰⁾)": Thm 1 (eq. (7)) speaks of the layers k ≥ 1, Thm 2 (App. A.3) and the mean-error recursion
of Thm 4's proof (App. A.9) of the layers k < L, the middle-layer dip (§3.2, Fig. 2) of a layer 0 < k < L.

The closed-form case: the complete graph K_n with its gossip matrix P = (J − I)/(n − 1) (λ = 1/(n − 1): P
multiplies every centered signal by −1/(n − 1)), a linear GNN (ρ = id, D_ρ = 0) with square orthogonal weights
(s_k = 1, ℰ(ZW) = ℰ(Z)) and the MSE loss. There ℰ(X⁽¹⁾) = λ ℰ(X⁽⁰⁾), ℰ(B⁽⁰⁾) = λ ℰ(B⁽¹⁾) and ‖1ᵀB⁽⁰⁾‖ = ‖1ᵀB⁽¹⁾‖
exactly, so at L = 1 every bound is met with equality (margin 0, measured/bound 1), while at L = 0 there is
nothing to compare."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from gnndyn.data.graph import Graph
from gnndyn.experiments import get_experiment, make_spec, run_experiment
from gnndyn.models.activations import get_activation
from gnndyn.models.deep_gnn import DeepGNN
from gnndyn.models.losses import get_loss
from gnndyn.operators.builders import build_operator
from gnndyn.probes import measures
from gnndyn.store.files import to_json
from gnndyn.theory import keriven as thy

N, D = 6, 3


@pytest.fixture(scope="module")
def complete():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N, D, generator=gen, dtype=torch.float64)
    y = torch.randn(N, D, generator=gen, dtype=torch.float64)
    y = y / torch.linalg.norm(y, dim=1, keepdim=True)  # labels in the unit ball: Assumption 3 with (1, 1)
    g = Graph.from_edges(np.array(list(itertools.combinations(range(N), 2))).T, N, x=x)
    op = build_operator("gossip", g)
    return g, op, y


def linear_point(complete, depth: int):
    g, op, y = complete
    model = DeepGNN(D, D, D, depth, "identity", init="orthogonal", seed=1)
    loss = get_loss("mse")
    out = model(op, g.x, keep_signals=True)
    grads = torch.autograd.grad(loss(out, y), list(model.parameters()))
    sig = model.signals
    facts = op.spectral()
    a = thy.assumptions_1_4(facts, get_activation("identity"), loss, y)
    c = thy.Constants.measure(g.x, get_activation("identity"), loss, y)
    vals = {"X": [measures.smoothing(t) for t in sig.X], "B": [measures.smoothing(t) for t in sig.B],
            "eps": [measures.mean_output_error(t) for t in sig.B], "grad": [float(torch.linalg.norm(t)) for t in grads],
            "s": model.spectral_norms(), "out": out.detach(), "B_out": sig.B[-1].detach()}
    return vals, facts.lambda_, c, a


def checks(vals, lam, c, a):
    return [thy.check_thm1(vals["X"], lam, vals["s"], assumptions={k: a[k] for k in (thy.A1, thy.A2)}),
            thy.check_thm2(vals["B"], lam, vals["s"], c, assumptions=a),
            thy.check_mean_error(vals["eps"], lam, vals["s"], c, assumptions=a)]


def test_the_closed_form_case(complete):
    _, _, y = complete
    vals, lam, c, a = linear_point(complete, 1)
    assert lam == pytest.approx(1 / (N - 1), rel=1e-12)
    assert all(a.values()) and c.D_rho == 0.0
    np.testing.assert_allclose(vals["s"], [1.0, 1.0], rtol=1e-12)
    assert vals["X"][1] == pytest.approx(lam * vals["X"][0], rel=1e-12)
    assert vals["B"][0] == pytest.approx(lam * vals["B"][1], rel=1e-12)
    assert vals["eps"][0] == pytest.approx(vals["eps"][1], rel=1e-12)
    # B⁽ᴸ⁾ = ∂𝓛/∂H⁽ᴸ⁾ of 𝓛 = (1/2n)‖H − Y‖² is (H − Y)/n
    torch.testing.assert_close(vals["B_out"], (vals["out"] - y) / N, rtol=1e-12, atol=1e-15)


def test_at_depth_one_every_bound_is_met_with_equality(complete):
    vals, lam, c, a = linear_point(complete, 1)
    for v in checks(vals, lam, c, a):
        assert v.holds and v.applicable, v.summary
        assert v.assumptions[thy.DEPTH] is True
        assert abs(v.margin) <= 1e-12 * max(vals["X"][0], 1.0), v.summary
        assert "measured/bound = 1" in v.where
    v1, v2, vm = checks(vals, lam, c, a)
    assert v1.details["bound_per_layer"][1] == pytest.approx(lam * vals["X"][0], rel=1e-12)
    assert v2.details["bound_per_layer"][0] == pytest.approx(lam * vals["B"][1], rel=1e-12)
    assert vm.details["bound_per-layer"][0] == pytest.approx(vals["eps"][1], rel=1e-12)


def test_at_depth_zero_the_layer_wise_statements_are_not_applicable(complete):
    g, _, _ = complete
    vals, lam, c, a = linear_point(complete, 0)
    assert len(vals["X"]) == len(vals["B"]) == 1
    assert vals["X"][0] == pytest.approx(measures.smoothing(g.x), rel=1e-15)  # ℰ(X⁽⁰⁾): the input, nothing propagated
    need = f"the statement needs {thy.DEPTH}"
    expected = {
        "keriven.thm1": (vals["X"][0], (f"gnn: L = 0, no layer k ≥ 1 to bound (only the input, ℰ(X⁽⁰⁾) = "
                                        f"{vals['X'][0]:.3g}); {need}")),
        "keriven.thm2": (vals["B"][0], (f"gnn: L = 0, no layer k < L below the output layer to bound (only the "
                                        f"output's own ℰ(B⁽ᴸ⁾) = {vals['B'][0]:.3g}); {need}")),
        "keriven.thm4.mean_error": (vals["eps"][0], (f"gnn: L = 0, no layer k < L below the output layer to bound "
                                                     f"(only the output's own ‖1ᵀB⁽ᴸ⁾‖ = {vals['eps'][0]:.3g}); {need}")),
    }
    for v in checks(vals, lam, c, a):
        measured, where = expected[v.name]
        assert v.holds and not v.applicable
        assert v.assumptions[thy.DEPTH] is False and all(ok for k, ok in v.assumptions.items() if k != thy.DEPTH)
        assert v.status == f"holds (assumptions not met: {thy.DEPTH})"
        assert v.where == where
        assert math.isnan(v.margin) and "nan" not in v.where
        d = json.loads(to_json(v.as_dict()))
        assert d["margin"] is None and d["applicable"] is False  # checks.json: margin null, not NaN
        assert d["details"]["measured"] == pytest.approx([measured], rel=1e-15)


def test_thm2_at_depth_zero_keeps_its_bounds_in_details(complete):
    """The output's own backward signal: the per-layer form at k = L is ℰ(B⁽ᴸ⁾) itself, the max-s form is Lemma 3's
    bound (D_𝒳D_𝓛s + D′_𝓛)/n times (D_ρD_𝒳sλ/(1 − λ²s) + 1) — kept for the report, not judged."""
    vals, lam, c, a = linear_point(complete, 0)
    v = thy.check_thm2(vals["B"], lam, vals["s"], c, assumptions=a)
    s = vals["s"][0]
    assert v.details["bound_per_layer"] == pytest.approx([vals["B"][0]], rel=1e-15)
    lemma3 = (c.D_X * c.D_loss * s + c.D_loss_prime) / N * (c.D_rho * c.D_X * s * lam / (1 - lam ** 2 * s) + 1)
    assert v.details["bound_max_s"] == pytest.approx([lemma3], rel=1e-12)
    assert v.details["ratio_max_s_form"] == pytest.approx(vals["B"][0] / lemma3, rel=1e-12)


def test_gradient_chain_of_thm4_still_applies_at_depth_zero(complete):
    """eqs. (34)–(35) bound every layer's gradient, the output layer's too: at L = 0 it is a real comparison,
    ‖F⁽⁰⁾ᵀB⁽⁰⁾‖ ≤ D_𝒳‖1ᵀB⁽⁰⁾‖ + (D_𝒳D_𝓛s + D′_𝓛)λℰ(X⁽⁰⁾), with a finite margin."""
    vals, lam, c, a = linear_point(complete, 0)
    v = thy.check_gradient_bound(vals["grad"], lam, vals["s"], c, e_out=vals["B"][0], eps_out=vals["eps"][0],
                                 assumptions=a)
    s = vals["s"][0]
    bound = c.D_X * vals["eps"][0] + (s * c.D_X * c.D_loss + c.D_loss_prime) * lam * c.E_X0
    assert v.details["bound"] == pytest.approx([bound], rel=1e-12)
    assert v.holds and v.applicable and v.margin == pytest.approx(bound - vals["grad"][0], rel=1e-12)
    assert 0 < v.margin < math.inf


@pytest.mark.parametrize(("e", "holds", "applicable", "margin", "layer"), [
    ([3.0, 1.0, 2.0], True, True, 0.5, 1),    # the minimum in the middle: min(k, L − k)/L = 1/2
    ([1.0, 2.0, 3.0], False, True, 0.0, 0),   # at the input end: violated
    ([2.0, 0.5, 0.25, 1.0], True, True, 1 / 3, 2),
    ([5.0], True, False, math.nan, 0),        # L = 0: no middle layer
    ([1.0, 2.0], True, False, math.nan, 0),   # L = 1: none either
])
def test_backward_dip_needs_a_middle_layer(e, holds, applicable, margin, layer):
    v = thy.check_backward_dip(e, assumptions={thy.A1: True}, series="gnn")
    assert (v.holds, v.applicable, v.details["layer"]) == (holds, applicable, layer)
    assert v.margin == pytest.approx(margin, nan_ok=True)
    assert v.assumptions == {thy.A1: True, thy.DEPTH_MIDDLE: len(e) >= 3}
    if not applicable:
        assert v.status == f"holds (assumptions not met: {thy.DEPTH_MIDDLE})"
        assert v.where == (f"gnn: L = {len(e) - 1}, no middle layer 0 < k < L for the minimum of ℰ(B⁽ᵏ⁾) to lie at; "
                           f"the statement needs {thy.DEPTH_MIDDLE}")
    else:
        assert v.where.startswith(f"gnn: minimum at layer {layer} of {len(e) - 1}")


def test_depth_assumption():
    assert thy.depth_assumption(0) == {thy.DEPTH: False}
    assert thy.depth_assumption(1) == {thy.DEPTH: True}
    assert thy.depth_assumption(1, minimum=2) == {thy.DEPTH_MIDDLE: False}
    assert thy.depth_assumption(2, minimum=2) == {thy.DEPTH_MIDDLE: True}
    with pytest.raises(ValueError, match="need depth L ≥ 1 or L ≥ 2; got minimum=3"):
        thy.depth_assumption(4, minimum=3)


def test_oversmoothing_at_init_at_depth_zero(tmp_path):
    """``gnndyn run oversmoothing-at-init --set model.depth=0``: Thm 1, Thm 2 and the mean-error recursion are not
    applicable (margin null in checks.json), the gradient chain is checked with a finite margin, nothing VIOLATED
    among them."""
    exp = get_experiment("oversmoothing-at-init")
    spec = make_spec("oversmoothing-at-init", {**exp.smoke, "model.depth": 0})
    run_experiment(spec, tmp_path / "run")
    got = {c["name"]: c for c in json.loads((tmp_path / "run" / "checks.json").read_text())}
    for name in ("keriven.thm1", "keriven.thm2", "keriven.thm4.mean_error"):
        c = got[name]
        assert (c["holds"], c["applicable"], c["margin"]) == (True, False, None), c
        assert c["assumptions"][thy.DEPTH] is False
        assert c["status"] == f"holds (assumptions not met: {thy.DEPTH})"
        assert "L = 0" in c["where"] and "nan" not in c["where"]
    g = got["keriven.thm4.gradients"]
    assert g["holds"] and g["applicable"] and isinstance(g["margin"], float) and g["margin"] > 0


# ------------------------------------------------------------------------------------------------ overflow
def test_mul_treats_zero_times_overflow_as_zero():
    from gnndyn.theory.keriven.bounds import _mul

    assert _mul(0.0, math.inf) == 0.0 and _mul(math.inf, 3.0, 0.0) == 0.0
    assert math.isnan(_mul(math.nan, 0.0))
    assert _mul(1e200, 1e200) == math.inf and _mul(2.0, 3.0, 0.5) == 3.0


@pytest.mark.parametrize("loss_name", ["cross-entropy", "mse"])
def test_bounds_beyond_float64_are_vacuous_not_violated(loss_name):
    """Spectral norms s_k = 10²⁰⁰ (``init_scale=1e200``, tanh saturated: ℰ(B⁽ᵏ⁾) = ‖1ᵀB⁽ᵏ⁾‖ = 0 below the output).
    S_L = 10¹⁰⁰⁰ overflows float64; with cross-entropy D_𝓛 = 0, and S_L² · D_𝓛 was ∞ · 0 = NaN, so Thm 2, the
    mean-error recursion and the gradient chain reported "VIOLATION WITH EVERY ASSUMPTION MET". In exact arithmetic
    the bounds are finite and astronomically large: they hold, vacuously (+∞ in float64, margin +inf), silently."""
    L, lam = 4, 0.5
    s = [1e200] * (L + 1)
    D_loss, D_prime = (0.0, 3.0) if loss_name == "cross-entropy" else (1.0, 1.0)
    c = thy.Constants(D_X=6.0, E_X0=4.0, D_loss=D_loss, D_loss_prime=D_prime, D_rho=0.77, n_nodes=200, n_loss=200)
    e = [0.0] * L + [3.6e-3]
    eps = [0.0] * L + [0.17]
    a = {thy.A1: True, thy.A2: True, thy.A3: True, thy.A4: True}
    with np_errors_raised():
        per = thy.thm2_bound(lam, s, c, form="per-layer", e_out=e[-1])
        v2 = thy.check_thm2(e, lam, s, c, assumptions=a)
        vm = thy.check_mean_error(eps, lam, s, c, assumptions=a)
        vg = thy.check_gradient_bound([0.0] * L + [0.5], lam, s, c, e_out=e[-1], eps_out=eps[-1], assumptions=a)
        v1 = thy.check_thm1([4.0, 0.9, 0.9, 0.9, 0.9], lam, s, assumptions={thy.A1: True, thy.A2: True})
    assert np.isinf(per[:-1]).all() and per[-1] == e[-1]
    for v in (v2, vm, vg, v1):
        assert v.holds and v.applicable and v.margin > 0, v.summary
        assert "VIOLATION" not in v.where
    assert v2.margin == math.inf and vm.margin == math.inf
    assert not any(np.isnan(x) for x in v2.details["bound_per_layer"])


def test_thm1_bound_with_lambda_above_one_overflows_to_inf():
    """λ ≥ 1 (Assumption 1 fails, e.g. an unnormalized operator) at depth 2000: λᵏ is +∞ beyond float64, not an
    OverflowError of Python's float power."""
    with np_errors_raised():
        b = thy.thm1_bound(1.0, 2.0, [1.0] * 2001)
    assert b[10] == 1024.0 and b[-1] == math.inf


class np_errors_raised:
    """Every numpy floating-point warning raises inside the block (the bounds must not emit any)."""

    def __enter__(self):
        self._old = np.seterr(all="raise", under="ignore")

    def __exit__(self, *exc):
        np.seterr(**self._old)
