r"""The exact inequalities of Keriven, *Backward oversmoothing*: Thm 1, Thm 2, and the chain of
inequalities inside the proofs of Thm 4 (App. A.9) and Thm 3 (App. A.6, eq. (23)).

Paper indexing: weights :math:`W^{(0)},\dots,W^{(L)}` (L + 1 matrices), :math:`s_k = \|W^{(k)}\|_2`,
:math:`s^{(j:k)} = \prod_{\ell=j}^{k-1} s_\ell`, :math:`S_L = s^{(0:L+1)}`,
:math:`A_L = S_L^2 D_\mathcal{X} D_\mathcal{L} + S_L D'_\mathcal{L}` (App. A). Every function takes the
measured λ, the measured :math:`s_0..s_L` and a :class:`~gnndyn.theory.keriven.assumptions.Constants`.

Each bound is given in the per-layer-product form that appears inside the proof (the tightest
exact form) and in the paper's closed max-s form (:math:`s = \max_k s_k`). These are exact
inequalities: a measured violation is either a failed assumption (the verdict names it) or a bug.

Two slips of the paper are made explicit (and both forms are reported):

* Thm 2 as printed lacks a factor :math:`D_\mathcal{X}` in its first term: the proof's last display
  has :math:`D_\rho\,\mathcal E(X^{(0)})\,A_L \le D_\rho D_\mathcal{X} S_L (D_\mathcal{X}D_\mathcal{L}S_L + D'_\mathcal{L})`,
  and the statement keeps only :math:`D_\rho S_L(\dots)`. Harmless when :math:`D_\mathcal{X} \le 1`.
* In App. A.9 the recursion for :math:`\varepsilon^{(k)} = \|1_n^\top B^{(k)}\|` has no λ on its
  propagated term (P preserves means), so it unrolls to :math:`\sum_\ell \lambda^{\ell+1} s^{(k+1:\ell+1)}`
  and :math:`\lambda^{k+1}/(1-\lambda s)`, not :math:`\lambda^{2\ell+1-k}` and :math:`1/(1-\lambda^2 s)` as printed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gnndyn.theory.keriven.assumptions import Constants, explain
from gnndyn.theory.verdict import Verdict

RTOL = 1e-9  # relative slack allowed for rounding when comparing an exact inequality


# --------------------------------------------------------------------------------------------- helpers
def window_products(s: Sequence[float]) -> np.ndarray:
    r"""M[j, k] = :math:`s^{(j:k)} = \prod_{\ell=j}^{k-1} s_\ell` for 0 ≤ j ≤ k ≤ L + 1 (1 on the diagonal,
    0 below it, unused)."""
    s = np.asarray(s, dtype=np.float64)
    m = s.size
    M = np.zeros((m + 1, m + 1))
    for j in range(m + 1):
        M[j, j:] = np.concatenate([[1.0], np.cumprod(s[j:])])
    return M


def _times(c: float, x: np.ndarray) -> np.ndarray:
    """c · x with ∞ · 0 = 0 (an empty sum stays 0 when a constant such as D_ρ is infinite)."""
    x = np.asarray(x, dtype=np.float64)
    if np.isfinite(c):
        return c * x
    with np.errstate(invalid="ignore"):
        return np.where(x == 0, 0.0, c * x)


def compare_bound(measured: Sequence[float], bound: Sequence[float], *, start: int = 0,
                  stop: int | None = None) -> tuple[bool, float, int, float]:
    """(holds, margin, index, ratio) of measured ≤ bound on indices [start, stop), the tightest point
    chosen by relative slack.

    ``margin`` is bound − measured at that point (negative at the worst violation when violated);
    ``ratio`` = measured/bound there. When no index has a comparable pair (every value NaN, as at a
    diverged point) the claim is not shown to hold: (False, nan, start, nan).
    """
    m_all = np.asarray(measured, dtype=np.float64)
    stop = m_all.size if stop is None else stop
    m = m_all[start:stop]
    b = np.asarray(bound, dtype=np.float64)[start:stop]
    if m.size == 0:
        return True, float("inf"), start, 0.0
    ok = m <= b * (1 + RTOL) + 1e-300
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(b > 0, m / b, np.where(m > 0, np.inf, 0.0))
    if np.isnan(ratio).all():  # nothing finite to compare (a diverged, non-finite point): violated, margin nan
        return False, float("nan"), start, float("nan")
    i = int(np.nanargmax(ratio))
    return bool(ok.all()), float(b[i] - m[i]), i + start, float(ratio[i])


# --------------------------------------------------------------------------------------------- Thm 1
def thm1_bound(e0: float, lam: float, s: Sequence[float], *, per_layer: bool = True) -> np.ndarray:
    r"""Keriven Thm 1, eq. (7): :math:`\mathcal E(X^{(k)}) \le (\lambda s)^k \mathcal E(X^{(0)})`, k = 0..L.

    With ``per_layer=True`` the tighter form from the proof (App. A.1),
    :math:`\lambda^k s^{(0:k)} \mathcal E(X^{(0)})`, where :math:`s^{(0:k)} = \prod_{j<k} s_j`.
    ``s`` holds :math:`s_0, \dots, s_L` (the bound at k uses :math:`s_0..s_{k-1}`).
    """
    s = np.asarray(s, dtype=np.float64)
    k = np.arange(s.size)
    if per_layer:
        prods = np.concatenate([[1.0], np.cumprod(s[:-1])])
        return e0 * lam ** k * prods
    return e0 * (lam * s.max()) ** k


def check_thm1(
    e_forward: Sequence[float],
    lam: float,
    s: Sequence[float],
    *,
    assumptions: dict[str, bool] | None = None,
    series: str = "gnn",
) -> Verdict:
    """Check Thm 1 layer by layer with the measured λ and s_k (per-layer product form; the max-s form
    is reported in ``details``). ``e_forward[k]`` = ℰ(X⁽ᵏ⁾), k = 0..L."""
    e = np.asarray(e_forward, dtype=np.float64)
    bound = thm1_bound(float(e[0]), lam, s[: e.size], per_layer=True)
    bound_max = thm1_bound(float(e[0]), lam, s[: e.size], per_layer=False)
    holds, margin, k, ratio = compare_bound(e, bound, start=1 if e.size > 1 else 0)
    holds_max, margin_max, k_max, _ = compare_bound(e, bound_max, start=1 if e.size > 1 else 0)
    assumptions = dict(assumptions or {})
    why = explain(holds and holds_max, assumptions)
    return Verdict(
        name="keriven.thm1",
        paper="Keriven, Thm 1, eq. (7)",
        statement="ℰ(X⁽ᵏ⁾) ≤ λᵏ s^(0:k) ℰ(X⁽⁰⁾) ≤ (λs)ᵏ ℰ(X⁽⁰⁾) for every layer k",
        holds=holds and holds_max,
        margin=margin,
        where=f"layer {k} of {series} (measured/bound = {ratio:.3g})" + (f"; {why}" if why else ""),
        assumptions=assumptions,
        applicable=all(assumptions.values()),
        details={
            "lambda": lam,
            "s": [float(x) for x in s],
            "s_max": float(np.max(s)),
            "lambda_s_max": float(lam * np.max(s)),
            "bound_per_layer": bound.tolist(),
            "bound_max_s": bound_max.tolist(),
            "measured": e.tolist(),
            "holds_per_layer_form": holds,
            "holds_max_s_form": holds_max,
            "margin_max_s_form": margin_max,
            "tightest_layer_max_s_form": k_max,
        },
    )


# --------------------------------------------------------------------------------------------- Thm 2
THM2_FORMS = ("per-layer", "max-s", "max-s-printed")


def thm2_bound(lam: float, s: Sequence[float], c: Constants, *, form: str = "per-layer",
               e_out: float | None = None) -> np.ndarray:
    r"""Keriven Thm 2: a bound on :math:`\mathcal E(B^{(k)})` for k = 0..L.

    ``form="per-layer"`` — the proof's unrolled recursion (App. A.3):

    .. math::

        \mathcal E(B^{(k)}) \le \frac{D_\rho\,\mathcal E(X^{(0)})\,A_L}{n}\sum_{\ell=k}^{L-1}
        \lambda^{2\ell+1-k} s^{(k+1:\ell+1)} + \lambda^{L-k} s^{(k+1:L+1)}\,\mathcal E(B^{(L)}),

    with the measured ℰ(X⁽⁰⁾) and ℰ(B⁽ᴸ⁾) = ``e_out`` (if ``None``, its Lemma 3 bound
    :math:`(D_\mathcal{X}D_\mathcal{L}S_L + D'_\mathcal{L})/n`, eq. (43)); at k = L it is ℰ(B⁽ᴸ⁾) itself.

    ``form="max-s"`` — the statement with :math:`s = \max_k s_k`, :math:`\mathcal E(X^{(0)}) \le D_\mathcal{X}`,
    :math:`S_L \le s^{L+1}`, with the factor :math:`D_\mathcal{X}` that the proof carries:

    .. math::

        \frac{D_\mathcal{X}D_\mathcal{L}s^{L+1} + D'_\mathcal{L}}{n}\Big(\frac{D_\rho D_\mathcal{X} s^{L+1}}{1-\lambda^2 s}
        \lambda^{k+1} + (\lambda s)^{L-k}\Big);

    ``form="max-s-printed"`` — the same as printed in the paper (no :math:`D_\mathcal{X}` in the first
    term). Both closed forms need :math:`\lambda^2 s < 1` (geometric sum); otherwise they are +∞.
    Here n is ``c.n_loss``, the loss's normalization.
    """
    if form not in THM2_FORMS:
        raise ValueError(f"form must be one of {THM2_FORMS}; got {form!r}")
    s = np.asarray(s, dtype=np.float64)
    L = s.size - 1
    n = float(c.n_loss)
    if form == "per-layer":
        M = window_products(s)
        S_L = M[0, L + 1]
        A_L = S_L ** 2 * c.D_X * c.D_loss + S_L * c.D_loss_prime
        e_L = (c.D_X * c.D_loss * S_L + c.D_loss_prime) / n if e_out is None else float(e_out)
        out = np.empty(L + 1)
        for k in range(L + 1):
            ell = np.arange(k, L)
            ssum = float(np.sum(lam ** (2 * ell + 1 - k) * M[k + 1, ell + 1])) if ell.size else 0.0
            out[k] = float(_times(c.D_rho * c.E_X0 * A_L / n, np.array(ssum))) + lam ** (L - k) * M[k + 1, L + 1] * e_L
        return out
    smax = float(s.max())
    k = np.arange(L + 1)
    if lam ** 2 * smax >= 1:
        return np.full(L + 1, np.inf)
    lead = (c.D_X * c.D_loss * smax ** (L + 1) + c.D_loss_prime) / n
    dx = c.D_X if form == "max-s" else 1.0
    first = _times(c.D_rho, dx * smax ** (L + 1) * lam ** (k + 1.0) / (1 - lam ** 2 * smax))
    return lead * (first + (lam * smax) ** (L - k))


def check_thm2(e_backward: Sequence[float], lam: float, s: Sequence[float], c: Constants, *,
               assumptions: dict[str, bool] | None = None, series: str = "gnn") -> Verdict:
    """Check Thm 2 layer by layer: the per-layer form (k < L; at k = L it is an equality) and the
    max-s form with the proof's D_𝒳 (all k). ``holds`` needs both; the printed form is in ``details``."""
    e = np.asarray(e_backward, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    if e.size != s.size:
        raise ValueError(f"need one ℰ(B⁽ᵏ⁾) per weight matrix: got {e.size} values and {s.size} spectral norms")
    L = e.size - 1
    per = thm2_bound(lam, s, c, form="per-layer", e_out=float(e[L]))
    mx = thm2_bound(lam, s, c, form="max-s")
    pr = thm2_bound(lam, s, c, form="max-s-printed")
    h_per, margin, k, ratio = compare_bound(e, per, stop=max(L, 1))
    h_max, m_max, k_max, r_max = compare_bound(e, mx)
    h_pr, m_pr, k_pr, r_pr = compare_bound(e, pr)
    assumptions = dict(assumptions or {})
    holds = h_per and h_max
    notes = []
    why = explain(holds, assumptions)
    if why:
        notes.append(why)
    if holds and not h_pr:
        notes.append(f"the printed statement (no D_𝒳 in its first term) is exceeded at layer {k_pr} "
                     f"(measured/bound {r_pr:.3g}) while the proof's form holds: D_𝒳 = {c.D_X:.3g} > 1")
    if not np.isfinite(c.D_rho) and L > 0:
        notes.append("vacuous below the output layer: D_ρ = ∞ (Assumption 4 fails), the bound is +∞")
    smax = float(s.max())
    return Verdict(
        name="keriven.thm2",
        paper="Keriven, Thm 2 (App. A.3)",
        statement="ℰ(B⁽ᵏ⁾) ≤ (D_ρℰ(X⁽⁰⁾)A_L/n)Σ_{ℓ=k}^{L−1}λ^{2ℓ+1−k}s^(k+1:ℓ+1) + λ^{L−k}s^(k+1:L+1)ℰ(B⁽ᴸ⁾) "
                  "≤ (D_𝒳D_𝓛s^{L+1}+D′_𝓛)/n·(D_ρD_𝒳s^{L+1}λ^{k+1}/(1−λ²s) + (λs)^{L−k})",
        holds=holds,
        margin=margin,
        where=f"layer {k} of {series} (measured/bound = {ratio:.3g})" + "".join(f"; {x}" for x in notes),
        assumptions=assumptions,
        applicable=all(assumptions.values()),
        details={
            "lambda": lam, "s_max": smax, "lambda2_s": lam ** 2 * smax,
            "closed_form_defined (λ²s < 1)": bool(lam ** 2 * smax < 1),
            "constants": c.as_dict(),
            "measured": e.tolist(),
            "bound_per_layer": per.tolist(),
            "bound_max_s": mx.tolist(),
            "bound_max_s_printed": pr.tolist(),
            "holds_per_layer_form": h_per, "holds_max_s_form": h_max, "holds_printed_form": h_pr,
            "ratio_max_s_form": r_max, "tightest_layer_max_s_form": k_max,
            "ratio_printed_form": r_pr,
        },
    )


# --------------------------------------------------------------------------------------------- Thm 4 (App. A.9)
MEAN_FORMS = ("per-layer", "max-s", "per-layer-printed", "max-s-printed")


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
    M = window_products(s)
    S_L = M[0, L + 1]
    A_L = (S_L ** 2 * c.D_X * c.D_loss + S_L * c.D_loss_prime) * c.n_nodes / c.n_loss
    coef = c.D_rho * c.E_X0 * A_L
    out = np.empty(L + 1)
    if form.startswith("per-layer"):
        for k in range(L + 1):
            ell = np.arange(k, L)
            pw = (ell + 1) if form == "per-layer" else (2 * ell + 1 - k)
            ssum = float(np.sum(lam ** pw * M[k + 1, ell + 1])) if ell.size else 0.0
            out[k] = float(_times(coef, np.array(ssum))) + M[k + 1, L + 1] * eps_out
        return out
    smax = float(s.max())
    k = np.arange(L + 1)
    denom = 1 - lam * smax if form == "max-s" else 1 - lam ** 2 * smax
    if denom <= 0:
        return np.full(L + 1, np.inf)
    return _times(coef, lam ** (k + 1.0) / denom) + smax ** (L - k) * eps_out


def check_mean_error(eps: Sequence[float], lam: float, s: Sequence[float], c: Constants, *,
                     assumptions: dict[str, bool] | None = None, series: str = "gnn") -> Verdict:
    """Check the mean-error recursion of App. A.9 layer by layer (``eps[k]`` = ‖1ᵀB⁽ᵏ⁾‖)."""
    e = np.asarray(eps, dtype=np.float64)
    L = e.size - 1
    bounds = {f: mean_error_bound(lam, s, c, float(e[L]), form=f) for f in MEAN_FORMS}
    res = {f: compare_bound(e, b, stop=max(L, 1)) for f, b in bounds.items()}
    h, margin, k, ratio = res["per-layer"]
    h_max = res["max-s"][0]
    assumptions = dict(assumptions or {})
    why = explain(h and h_max, assumptions)
    notes = [why] if why else []
    if not np.isfinite(c.D_rho) and L > 0:
        notes.append("vacuous below the output layer: D_ρ = ∞ (Assumption 4 fails), the bound is +∞")
    if not res["per-layer-printed"][0] or not res["max-s-printed"][0]:
        notes.append("the printed display of App. A.9 (λ^{2ℓ+1−k}, 1/(1−λ²s)) is exceeded here")
    return Verdict(
        name="keriven.thm4.mean_error",
        paper="Keriven, Thm 4 proof (App. A.9, last layers)",
        statement="‖1ᵀB⁽ᵏ⁾‖ ≤ D_ρℰ(X⁽⁰⁾)A_L Σ_{ℓ=k}^{L−1} λ^{ℓ+1}s^(k+1:ℓ+1) + s^(k+1:L+1)‖1ᵀB⁽ᴸ⁾‖",
        holds=h and h_max,
        margin=margin,
        where=f"layer {k} of {series} (measured/bound = {ratio:.3g})" + "".join(f"; {x}" for x in notes),
        assumptions=assumptions,
        applicable=all(assumptions.values()),
        details={"measured": e.tolist(), **{f"bound_{f}": b.tolist() for f, b in bounds.items()},
                 **{f"holds_{f}": r[0] for f, r in res.items()},
                 "lambda_s": lam * float(np.max(s))},
    )


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
    M = window_products(s)
    S_L = M[0, L + 1]
    ratio_n = c.n_nodes / c.n_loss
    eps_hat = mean_error_bound(lam, s, c, eps_out)
    e_hat = thm2_bound(lam, s, c, form="per-layer", e_out=e_out)
    K = (S_L * c.D_X * c.D_loss + c.D_loss_prime) * ratio_n
    out = np.empty(L + 1)
    for ell in range(L + 1):
        last = M[0, ell] * c.D_X * eps_hat[ell] + M[0, ell] * M[ell + 1, L + 1] * K * lam ** (ell + 1) * c.E_X0
        firsts = [c.D_X * M[0, ell] * M[ell + 1, k + 1] * (eps_hat[k] + c.n_nodes * e_hat[k]) for k in range(ell + 1, L + 1)]
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
    M = window_products(s)
    smooth_F = M[0, L] * lam ** (L + 1) * c.E_X0  # ℰ(F⁽ᴸ⁾) ≤ λ^{L+1} s^(0:L) ℰ(X⁽⁰⁾)
    denom = D_F - smooth_F
    if denom <= 0:
        return float("inf")
    K = (c.D_loss * c.D_X * M[0, L + 1] + c.D_loss_prime) * c.n_nodes / c.n_loss
    return float((delta_bar + K * smooth_F) / denom)


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
