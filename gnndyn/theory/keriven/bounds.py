r"""The exact inequalities of Keriven, *Backward oversmoothing*: Thm 1 and Thm 2, and the helpers every
bound check shares (:func:`compare_bound`, :func:`window_products`). The chain of inequalities inside
the proofs of Thm 4 (App. A.9) and Thm 3 (App. A.6, eq. (23)) is in :mod:`.mean_error`.

Paper indexing: weights :math:`W^{(0)},\dots,W^{(L)}` (L + 1 matrices), :math:`s_k = \|W^{(k)}\|_2`,
:math:`s^{(j:k)} = \prod_{\ell=j}^{k-1} s_\ell`, :math:`S_L = s^{(0:L+1)}`,
:math:`A_L = S_L^2 D_\mathcal{X} D_\mathcal{L} + S_L D'_\mathcal{L}` (App. A). Every function takes the
measured λ, the measured :math:`s_0..s_L` and a :class:`~gnndyn.theory.keriven.assumptions.Constants`.

Each bound is given in the per-layer-product form that appears inside the proof (the tightest
exact form) and in the paper's closed max-s form (:math:`s = \max_k s_k`). These are exact
inequalities: a measured violation is either a failed assumption (the verdict names it) or a bug.

Depth: Thm 1 speaks of the layers k ≥ 1, Thm 2 of the layers k < L below the output layer; a GNN of depth
L = 0 has neither, so both verdicts are then *not applicable* (holds, ``applicable=False``, the assumption
:data:`~gnndyn.theory.keriven.assumptions.DEPTH` named as failed, margin ``nan``: nothing was compared), not a
comparison of ℰ(X⁽⁰⁾) or ℰ(B⁽ᴸ⁾) with itself. The middle-layer dip of §3.2 (:func:`check_backward_dip`) needs
L ≥ 2 in the same way.

Overflow: with large spectral norms the products :math:`s^{(j:k)}` leave the float64 range (s ≈ 10²⁰⁰ at
``init_scale=1e200``); a bound that overflows is +∞ (vacuous, as the margin convention says) without a
warning, and a term that is a product of such an overflow with an exact zero (D_𝓛 = 0 for cross-entropy, a
measured ℰ = 0) is 0 — finite in exact arithmetic — not NaN (:func:`_mul`), so an overflow never reads as a
violation.

A slip of the paper is made explicit (and both forms are reported):

* Thm 2 as printed lacks a factor :math:`D_\mathcal{X}` in its first term: the proof's last display
  has :math:`D_\rho\,\mathcal E(X^{(0)})\,A_L \le D_\rho D_\mathcal{X} S_L (D_\mathcal{X}D_\mathcal{L}S_L + D'_\mathcal{L})`,
  and the statement keeps only :math:`D_\rho S_L(\dots)`. Harmless when :math:`D_\mathcal{X} \le 1`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from gnndyn.theory.keriven.assumptions import DEPTH, DEPTH_MIDDLE, Constants, depth_assumption, explain
from gnndyn.theory.verdict import Verdict

RTOL = 1e-9  # relative slack allowed for rounding when comparing an exact inequality


# --------------------------------------------------------------------------------------------- helpers
def window_products(s: Sequence[float]) -> np.ndarray:
    r"""M[j, k] = :math:`s^{(j:k)} = \prod_{\ell=j}^{k-1} s_\ell` for 0 ≤ j ≤ k ≤ L + 1 (1 on the diagonal,
    0 below it, unused)."""
    s = np.asarray(s, dtype=np.float64)
    m = s.size
    M = np.zeros((m + 1, m + 1))
    with np.errstate(over="ignore"):  # beyond float64: +inf (module docstring)
        for j in range(m + 1):
            M[j, j:] = np.concatenate([[1.0], np.cumprod(s[j:])])
    return M


def _overflow_is_inf(fn):
    """Decorator: a bound computed beyond the float64 range is +∞ (vacuous) without numpy's overflow warning."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(over="ignore"):
            return fn(*args, **kwargs)

    return wrapper


def _mul(*factors: float) -> float:
    """∏ factors with 0 · ∞ = 0: a factor that overflowed float64 (a product of spectral norms, finite in exact
    arithmetic) times an exact zero (D_𝓛 = 0 for cross-entropy, a measured ℰ = 0) is 0, not NaN; an overflow
    is +∞, silently; a NaN factor gives NaN."""
    vals = [float(f) for f in factors]
    if any(math.isnan(v) for v in vals):
        return math.nan
    if any(v == 0 for v in vals):
        return 0.0
    with np.errstate(over="ignore"):
        return float(np.prod(np.asarray(vals)))


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
@_overflow_is_inf
def thm1_bound(e0: float, lam: float, s: Sequence[float], *, per_layer: bool = True) -> np.ndarray:
    r"""Keriven Thm 1, eq. (7): :math:`\mathcal E(X^{(k)}) \le (\lambda s)^k \mathcal E(X^{(0)})`, k = 0..L.

    With ``per_layer=True`` the tighter form from the proof (App. A.1),
    :math:`\lambda^k s^{(0:k)} \mathcal E(X^{(0)})`, where :math:`s^{(0:k)} = \prod_{j<k} s_j`.
    ``s`` holds :math:`s_0, \dots, s_L` (the bound at k uses :math:`s_0..s_{k-1}`).
    """
    s = np.asarray(s, dtype=np.float64)
    k = np.arange(s.size)
    lam = np.float64(lam)  # numpy powers: λᵏ beyond float64 is +inf (λ ≥ 1 when A1 fails), not OverflowError
    with np.errstate(over="ignore"):  # beyond float64: +inf (module docstring)
        if per_layer:
            prods = np.concatenate([[1.0], np.cumprod(s[:-1])])
            return np.array([_mul(e0, lam ** int(i), p) for i, p in zip(k, prods)])
        return np.array([_mul(e0, v) for v in (lam * s.max()) ** k])


def check_thm1(
    e_forward: Sequence[float],
    lam: float,
    s: Sequence[float],
    *,
    assumptions: dict[str, bool] | None = None,
    series: str = "gnn",
) -> Verdict:
    """Check Thm 1 layer by layer with the measured λ and s_k (per-layer product form; the max-s form
    is reported in ``details``). ``e_forward[k]`` = ℰ(X⁽ᵏ⁾), k = 0..L.

    Keriven Thm 1, eq. (7): ℰ(X⁽ᵏ⁾) ≤ (λs)ᵏ ℰ(X⁽⁰⁾), k = 1..L. With L = 0 (one value, ℰ(X⁽⁰⁾)) there is no
    layer k ≥ 1: the verdict is not applicable, assumption :data:`~gnndyn.theory.keriven.assumptions.DEPTH`
    failed, margin ``nan`` (``null`` in checks.json)."""
    e = np.asarray(e_forward, dtype=np.float64)
    L = e.size - 1
    bound = thm1_bound(float(e[0]), lam, s[: e.size], per_layer=True)
    bound_max = thm1_bound(float(e[0]), lam, s[: e.size], per_layer=False)
    holds, margin, k, ratio = compare_bound(e, bound, start=1 if e.size > 1 else 0)
    holds_max, margin_max, k_max, _ = compare_bound(e, bound_max, start=1 if e.size > 1 else 0)
    assumptions = {**(assumptions or {}), **depth_assumption(L)}
    if L == 0:
        holds = holds_max = True
        margin, margin_max = float("nan"), float("nan")
        where = (f"{series}: L = 0, no layer k ≥ 1 to bound (only the input, ℰ(X⁽⁰⁾) = {e[0]:.3g}); "
                 f"the statement needs {DEPTH}")
    else:
        why = explain(holds and holds_max, assumptions)
        where = f"layer {k} of {series} (measured/bound = {ratio:.3g})" + (f"; {why}" if why else "")
    return Verdict(
        name="keriven.thm1",
        paper="Keriven, Thm 1, eq. (7)",
        statement="ℰ(X⁽ᵏ⁾) ≤ λᵏ s^(0:k) ℰ(X⁽⁰⁾) ≤ (λs)ᵏ ℰ(X⁽⁰⁾) for every layer k",
        holds=holds and holds_max,
        margin=margin,
        where=where,
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


@_overflow_is_inf
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
    lam = np.float64(lam)  # numpy powers: beyond float64 is +inf, not OverflowError
    if form == "per-layer":
        M = window_products(s)
        S_L = M[0, L + 1]
        A_L = _mul(S_L, S_L, c.D_X, c.D_loss) + _mul(S_L, c.D_loss_prime)
        e_L = (_mul(c.D_X, c.D_loss, S_L) + c.D_loss_prime) / n if e_out is None else float(e_out)
        out = np.empty(L + 1)
        for k in range(L + 1):
            ssum = sum(_mul(lam ** (2 * ell + 1 - k), M[k + 1, ell + 1]) for ell in range(k, L))
            out[k] = float(_times(_mul(c.D_rho, c.E_X0, A_L) / n, np.array(ssum))) + _mul(lam ** (L - k), M[k + 1, L + 1], e_L)
        return out
    smax = np.float64(s.max())
    k = np.arange(L + 1)
    if lam ** 2 * smax >= 1:
        return np.full(L + 1, np.inf)
    with np.errstate(over="ignore"):  # beyond float64: +inf (module docstring)
        sL1 = smax ** (L + 1)
        lead = (_mul(c.D_X, c.D_loss, sL1) + c.D_loss_prime) / n
        dx = c.D_X if form == "max-s" else 1.0
        first = _times(c.D_rho, np.array([_mul(dx, sL1, lam ** (kk + 1.0)) for kk in k]) / (1 - lam ** 2 * smax))
        return np.array([_mul(lead, f + (lam * smax) ** (L - kk)) for f, kk in zip(first, k)])


def check_thm2(e_backward: Sequence[float], lam: float, s: Sequence[float], c: Constants, *,
               assumptions: dict[str, bool] | None = None, series: str = "gnn") -> Verdict:
    """Check Thm 2 layer by layer: the per-layer form (k < L; at k = L it is an equality) and the
    max-s form with the proof's D_𝒳 (all k). ``holds`` needs both; the printed form is in ``details``.

    Keriven Thm 2 (App. A.3) bounds ℰ(B⁽ᵏ⁾) below the output layer. With L = 0 (one value, ℰ(B⁽ᴸ⁾)) there is no
    layer k < L: the verdict is not applicable, assumption :data:`~gnndyn.theory.keriven.assumptions.DEPTH`
    failed, margin ``nan`` (``null`` in checks.json); the bounds are still computed into ``details``."""
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
    assumptions = {**(assumptions or {}), **depth_assumption(L)}
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
    where = f"layer {k} of {series} (measured/bound = {ratio:.3g})" + "".join(f"; {x}" for x in notes)
    if L == 0:
        holds, margin = True, float("nan")
        where = (f"{series}: L = 0, no layer k < L below the output layer to bound (only the output's own "
                 f"ℰ(B⁽ᴸ⁾) = {e[0]:.3g}); the statement needs {DEPTH}")
    smax = float(s.max())
    return Verdict(
        name="keriven.thm2",
        paper="Keriven, Thm 2 (App. A.3)",
        statement="ℰ(B⁽ᵏ⁾) ≤ (D_ρℰ(X⁽⁰⁾)A_L/n)Σ_{ℓ=k}^{L−1}λ^{2ℓ+1−k}s^(k+1:ℓ+1) + λ^{L−k}s^(k+1:L+1)ℰ(B⁽ᴸ⁾) "
                  "≤ (D_𝒳D_𝓛s^{L+1}+D′_𝓛)/n·(D_ρD_𝒳s^{L+1}λ^{k+1}/(1−λ²s) + (λs)^{L−k})",
        holds=holds,
        margin=margin,
        where=where,
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


# --------------------------------------------------------------------------------------------- §3.2
def check_backward_dip(e_backward: Sequence[float], *, assumptions: dict[str, bool] | None = None,
                       series: str = "gnn") -> Verdict:
    """Keriven §3.2 and Fig. 2 (right): backward oversmoothing happens at the middle layers — the two terms of
    Thm 2 decay in k and in L − k, so argmin_k ℰ(B⁽ᵏ⁾) lies strictly between 0 and L. ``e_backward[k]`` =
    ℰ(B⁽ᵏ⁾), k = 0..L. ``margin`` = min(k, L − k)/L at the minimum (0 when it sits at an end: violated).

    A middle layer 0 < k < L exists only for L ≥ 2: at L = 0 or 1 the verdict is not applicable, assumption
    :data:`~gnndyn.theory.keriven.assumptions.DEPTH_MIDDLE` failed, margin ``nan`` (``null`` in checks.json);
    ``details`` keeps the minimum's layer and position as for any depth."""
    e = np.asarray(e_backward, dtype=np.float64)
    L = e.size - 1
    k = int(np.argmin(e))
    interior = 0 < k < L
    with np.errstate(divide="ignore", invalid="ignore"):
        depth_ratio = float(min(e[0], e[L]) / e[k]) if e[k] > 0 else float("inf")
    assumptions = {**(assumptions or {}), **depth_assumption(L, minimum=2)}
    if L < 2:
        holds, margin = True, float("nan")
        where = (f"{series}: L = {L}, no middle layer 0 < k < L for the minimum of ℰ(B⁽ᵏ⁾) to lie at; "
                 f"the statement needs {DEPTH_MIDDLE}")
    else:
        holds, margin = bool(interior), float(min(k, L - k)) / L
        where = (f"{series}: minimum at layer {k} of {L} (k/L = {k / L:.2f}), "
                 f"min(ℰ(B⁽⁰⁾), ℰ(B⁽ᴸ⁾))/ℰ(B⁽ᵏ⁾) = {depth_ratio:.3g}")
    return Verdict(
        name="keriven.backward_dip", paper="Keriven, §3.2 and Fig. 2 (right)",
        statement="backward oversmoothing happens at the middle layers: argmin_k ℰ(B⁽ᵏ⁾) lies strictly between 0 and L",
        holds=holds, margin=margin, where=where, assumptions=assumptions, applicable=all(assumptions.values()),
        details={"layer": k, "position": k / max(L, 1), "depth": L, "min": float(e[k]), "first": float(e[0]),
                 "last": float(e[L]), "endpoint_over_min": depth_ratio},
    )
