r"""The chain of inequalities inside the proofs of Keriven, *Backward oversmoothing*, Thm 4 (App. A.9:
the mean error ε⁽ᵏ⁾ = ‖1ₙᵀB⁽ᵏ⁾‖ and the per-layer gradients) and Thm 3 (App. A.6, eq. (23)).

Notation and conventions as in :mod:`.bounds` (per-layer-product and max-s forms, exact inequalities:
a measured violation is a failed assumption or a bug).

A slip of the paper is made explicit (and both forms are reported):

* In App. A.9 the recursion for :math:`\varepsilon^{(k)} = \|1_n^\top B^{(k)}\|` has no λ on its
  propagated term (P preserves means), so it unrolls to :math:`\sum_\ell \lambda^{\ell+1} s^{(k+1:\ell+1)}`
  and :math:`\lambda^{k+1}/(1-\lambda s)`, not :math:`\lambda^{2\ell+1-k}` and :math:`1/(1-\lambda^2 s)` as printed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gnndyn.theory.keriven.assumptions import DEPTH, Constants, depth_assumption, explain
from gnndyn.theory.keriven.bounds import _mul, _overflow_is_inf, _times, compare_bound, thm2_bound, window_products
from gnndyn.theory.verdict import Verdict


# --------------------------------------------------------------------------------------------- Thm 4 (App. A.9)
MEAN_FORMS = ("per-layer", "max-s", "per-layer-printed", "max-s-printed")


@_overflow_is_inf
def mean_error_bound(lam: float, s: Sequence[float], c: Constants, eps_out: float, *,
                     form: str = "per-layer") -> np.ndarray:
    r"""The bound on :math:`\varepsilon^{(k)} = \|1_n^\top B^{(k)}\|_2` in the proof of Thm 4 (App. A.9,
    "last layers", eq. (33) on), k = 0..L, from :math:`\varepsilon_n = \|1_n^\top B^{(L)}\|_2` = ``eps_out``.

    The recursion :math:`\varepsilon^{(k)} \le s_{k+1}\varepsilon^{(k+1)} + D_\rho\mathcal E(X^{(0)})A_L\lambda^{k+1}`
    (Lemma 1, eqs. (38)–(39); P1 = 1 so the mean is not shrunk) unrolls to

    .. math::

        \varepsilon^{(k)} \le D_\rho\mathcal E(X^{(0)})A_L\sum_{\ell=k}^{L-1}\lambda^{\ell+1}s^{(k+1:\ell+1)}
        + s^{(k+1:L+1)}\varepsilon_n \le \frac{D_\rho\mathcal E(X^{(0)})A_L\lambda^{k+1}}{1-\lambda s} + s^{L-k}\varepsilon_n

    (``"per-layer"``, ``"max-s"``). ``"per-layer-printed"`` and ``"max-s-printed"`` are the paper's
    display, :math:`\lambda^{2\ell+1-k}` and :math:`1/(1-\lambda^2 s)` — smaller, and not implied by
    the recursion. With a mask, :math:`A_L` carries the factor n_nodes/n_loss.
    """
    if form not in MEAN_FORMS:
        raise ValueError(f"form must be one of {MEAN_FORMS}; got {form!r}")
    s = np.asarray(s, dtype=np.float64)
    L = s.size - 1
    lam = np.float64(lam)  # numpy powers: beyond float64 is +inf, not OverflowError
    M = window_products(s)
    S_L = M[0, L + 1]
    A_L = (_mul(S_L, S_L, c.D_X, c.D_loss) + _mul(S_L, c.D_loss_prime)) * c.n_nodes / c.n_loss
    coef = _mul(c.D_rho, c.E_X0, A_L)
    out = np.empty(L + 1)
    if form.startswith("per-layer"):
        for k in range(L + 1):
            pw = [(ell + 1) if form == "per-layer" else (2 * ell + 1 - k) for ell in range(k, L)]
            ssum = sum(_mul(lam ** p, M[k + 1, ell + 1]) for p, ell in zip(pw, range(k, L)))
            out[k] = float(_times(coef, np.array(ssum))) + _mul(M[k + 1, L + 1], eps_out)
        return out
    smax = np.float64(s.max())
    k = np.arange(L + 1)
    denom = 1 - lam * smax if form == "max-s" else 1 - lam ** 2 * smax
    if denom <= 0:
        return np.full(L + 1, np.inf)
    with np.errstate(over="ignore"):  # beyond float64: +inf (see gnndyn.theory.keriven.bounds)
        return _times(coef, lam ** (k + 1.0) / denom) + np.array([_mul(smax ** (L - kk), eps_out) for kk in k])


def check_mean_error(eps: Sequence[float], lam: float, s: Sequence[float], c: Constants, *,
                     assumptions: dict[str, bool] | None = None, series: str = "gnn") -> Verdict:
    """Check the mean-error recursion of App. A.9 layer by layer (``eps[k]`` = ‖1ᵀB⁽ᵏ⁾‖, k = 0..L).

    The recursion (Keriven, Thm 4 proof, App. A.9, eqs. (38)–(39)) bounds the layers k < L from the output
    layer's ε_n = ‖1ᵀB⁽ᴸ⁾‖. With L = 0 there is no such layer: the verdict is not applicable, assumption
    :data:`~gnndyn.theory.keriven.assumptions.DEPTH` failed, margin ``nan`` (``null`` in checks.json)."""
    e = np.asarray(eps, dtype=np.float64)
    L = e.size - 1
    bounds = {f: mean_error_bound(lam, s, c, float(e[L]), form=f) for f in MEAN_FORMS}
    res = {f: compare_bound(e, b, stop=max(L, 1)) for f, b in bounds.items()}
    h, margin, k, ratio = res["per-layer"]
    h_max = res["max-s"][0]
    assumptions = {**(assumptions or {}), **depth_assumption(L)}
    why = explain(h and h_max, assumptions)
    notes = [why] if why else []
    if not np.isfinite(c.D_rho) and L > 0:
        notes.append("vacuous below the output layer: D_ρ = ∞ (Assumption 4 fails), the bound is +∞")
    if not res["per-layer-printed"][0] or not res["max-s-printed"][0]:
        notes.append("the printed display of App. A.9 (λ^{2ℓ+1−k}, 1/(1−λ²s)) is exceeded here")
    where = f"layer {k} of {series} (measured/bound = {ratio:.3g})" + "".join(f"; {x}" for x in notes)
    if L == 0:
        h = h_max = True
        margin = float("nan")
        where = (f"{series}: L = 0, no layer k < L below the output layer to bound (only the output's own "
                 f"‖1ᵀB⁽ᴸ⁾‖ = {e[0]:.3g}); the statement needs {DEPTH}")
    return Verdict(
        name="keriven.thm4.mean_error",
        paper="Keriven, Thm 4 proof (App. A.9, last layers)",
        statement="‖1ᵀB⁽ᵏ⁾‖ ≤ D_ρℰ(X⁽⁰⁾)A_L Σ_{ℓ=k}^{L−1} λ^{ℓ+1}s^(k+1:ℓ+1) + s^(k+1:L+1)‖1ᵀB⁽ᴸ⁾‖",
        holds=h and h_max,
        margin=margin,
        where=where,
        assumptions=assumptions,
        applicable=all(assumptions.values()),
        details={"measured": e.tolist(), **{f"bound_{f}": b.tolist() for f, b in bounds.items()},
                 **{f"holds_{f}": r[0] for f, r in res.items()},
                 "lambda_s": lam * float(np.max(s))},
    )


@_overflow_is_inf
def gradient_bound(lam: float, s: Sequence[float], c: Constants, *, e_out: float, eps_out: float) -> np.ndarray:
    r"""An exact bound on every :math:`\|\partial\mathcal L/\partial W^{(\ell)}\|_F`, ℓ = 0..L: the chain of
    the proof of Thm 4 (App. A.9, eqs. (34)–(35) before the ≲ simplification), evaluated with the
    measured λ, s_k, ℰ(X⁽⁰⁾), ℰ(B⁽ᴸ⁾) = ``e_out`` and ε_n = ‖1ᵀB⁽ᴸ⁾‖ = ``eps_out``.

    * last layers (any ℓ): :math:`\|F^{(\ell)\top}B^{(\ell)}\|_F \le \|F^{(\ell)}\|_{2,\infty}\varepsilon^{(\ell)}
      + n\|B^{(\ell)}\|_{2,\infty}\mathcal E(F^{(\ell)}) \le s^{(0:\ell)}D_\mathcal{X}\hat\varepsilon^{(\ell)}
      + s^{(0:\ell)}s^{(\ell+1:L+1)}(S_LD_\mathcal{X}D_\mathcal{L}+D'_\mathcal{L})\lambda^{\ell+1}\mathcal E(X^{(0)})`;
    * first layers (pivot k > ℓ): :math:`\|F^{(\ell)\top}B^{(\ell)}\|_F \le D_\mathcal{X}s^{(0:\ell)}s^{(\ell+1:k+1)}
      (\hat\varepsilon^{(k)} + n\,\hat{\mathcal E}(B^{(k)}))`,

    with :math:`\hat\varepsilon` from :func:`mean_error_bound` and :math:`\hat{\mathcal E}(B^{(k)})` from
    :func:`thm2_bound` (per-layer forms); the bound at ℓ is the smallest of these. It needs only
    |ρ′| ≤ 1 (Assumption 2) and ‖P‖₂ ≤ 1, P ≥ 0, P1 = 1 (Assumption 1) at the layers where D_ρ does
    not enter, so it stays finite for ReLU at the output layer.
    """
    s = np.asarray(s, dtype=np.float64)
    L = s.size - 1
    lam = np.float64(lam)  # numpy powers: beyond float64 is +inf, not OverflowError
    M = window_products(s)
    S_L = M[0, L + 1]
    ratio_n = c.n_nodes / c.n_loss
    eps_hat = mean_error_bound(lam, s, c, eps_out)
    e_hat = thm2_bound(lam, s, c, form="per-layer", e_out=e_out)
    K = (_mul(S_L, c.D_X, c.D_loss) + c.D_loss_prime) * ratio_n
    out = np.empty(L + 1)
    for ell in range(L + 1):
        last = _mul(M[0, ell], c.D_X, eps_hat[ell]) + _mul(M[0, ell], M[ell + 1, L + 1], K, lam ** (ell + 1), c.E_X0)
        firsts = [_mul(c.D_X, M[0, ell], M[ell + 1, k + 1], eps_hat[k] + c.n_nodes * e_hat[k]) for k in range(ell + 1, L + 1)]
        out[ell] = min([last, *firsts])
    return out


def check_gradient_bound(grad_norms: Sequence[float], lam: float, s: Sequence[float], c: Constants, *, e_out: float,
                         eps_out: float, assumptions: dict[str, bool] | None = None, series: str = "gnn") -> Verdict:
    """Check :func:`gradient_bound` against the measured ‖∂𝓛/∂W⁽ℓ⁾‖_F of every layer."""
    g = np.asarray(grad_norms, dtype=np.float64)
    b = gradient_bound(lam, s, c, e_out=e_out, eps_out=eps_out)
    h, margin, k, ratio = compare_bound(g, b)
    assumptions = dict(assumptions or {})
    why = explain(h, assumptions)
    return Verdict(
        name="keriven.thm4.gradients",
        paper="Keriven, Thm 4 (App. A.9, eqs. (34)–(35))",
        statement="‖∂𝓛/∂W⁽ℓ⁾‖_F ≤ min(last-layers bound (34), first-layers bound (35) over pivots k > ℓ), "
                  "with measured λ, s_k, ℰ(X⁽⁰⁾), ℰ(B⁽ᴸ⁾), ‖1ᵀB⁽ᴸ⁾‖",
        holds=h,
        margin=margin,
        where=f"layer {k} of {series} (measured/bound = {ratio:.3g})" + (f"; {why}" if why else ""),
        assumptions=assumptions,
        applicable=all(assumptions.values()),
        details={"measured": g.tolist(), "bound": b.tolist(), "global_delta": float(g.max()),
                 "global_delta_bound": float(b.max()), "eps_out": eps_out, "e_out": e_out},
    )


# --------------------------------------------------------------------------------------------- Thm 3 (App. A.6)
@_overflow_is_inf
def mean_error_from_output_gradient(lam: float, s: Sequence[float], c: Constants, *, delta_bar: float,
                                    D_F: float) -> float:
    r"""Keriven App. A.6, eqs. (21)–(23) (first case): a δ̄-stationary output layer forces a small mean
    output error,

    .. math::

        \|1_n^\top B^{(L)}\|_2 \le \frac{\bar\delta + (D_\mathcal{L}D_\mathcal{X}S_L + D'_\mathcal{L})\,
        s^{(0:L)}\lambda^{L+1}\mathcal E(X^{(0)})}{D_F - s^{(0:L)}\lambda^{L+1}\mathcal E(X^{(0)})},

    where :math:`D_F = n^{-1/2}\|F^{(L)}\|_F` and δ̄ = ‖∂𝓛/∂W⁽ᴸ⁾‖_F (per-layer products; the paper
    writes :math:`s^{2L+1}` and :math:`s^L\lambda^L`). +∞ when the denominator is not positive.
    """
    s = np.asarray(s, dtype=np.float64)
    L = s.size - 1
    lam = np.float64(lam)  # numpy powers: beyond float64 is +inf, not OverflowError
    M = window_products(s)
    smooth_F = _mul(M[0, L], lam ** (L + 1), c.E_X0)  # ℰ(F⁽ᴸ⁾) ≤ λ^{L+1} s^(0:L) ℰ(X⁽⁰⁾)
    denom = D_F - smooth_F
    if denom <= 0:
        return float("inf")
    K = (_mul(c.D_loss, c.D_X, M[0, L + 1]) + c.D_loss_prime) * c.n_nodes / c.n_loss
    with np.errstate(over="ignore"):
        return float((delta_bar + _mul(K, smooth_F)) / denom)


def check_thm3_mean_error(eps_out: float, lam: float, s: Sequence[float], c: Constants, *, delta_bar: float, D_F: float,
                          assumptions: dict[str, bool] | None = None, series: str = "gnn") -> Verdict:
    """Check eq. (23): ‖1ᵀB⁽ᴸ⁾‖ against its bound from the output layer's gradient δ̄ and D_F."""
    b = mean_error_from_output_gradient(lam, s, c, delta_bar=delta_bar, D_F=D_F)
    h, margin, _, ratio = compare_bound([eps_out], [b])
    assumptions = dict(assumptions or {})
    why = explain(h, assumptions)
    return Verdict(
        name="keriven.thm3.eq23",
        paper="Keriven, Thm 3 proof, eq. (23) (App. A.6)",
        statement="‖1ᵀB⁽ᴸ⁾‖ ≤ (δ̄ + (D_𝓛D_𝒳S_L+D′_𝓛)s^(0:L)λ^{L+1}ℰ(X⁽⁰⁾)) / (D_F − s^(0:L)λ^{L+1}ℰ(X⁽⁰⁾))",
        holds=h,
        margin=margin,
        where=f"{series} (measured/bound = {ratio:.3g})" + (f"; {why}" if why else ""),
        assumptions=assumptions,
        applicable=all(assumptions.values()),
        details={"eps_out": eps_out, "bound": b, "delta_bar": delta_bar, "D_F": D_F},
    )
