r"""The blog's corrected proof step (paper 004, Step 2) and the inequality of Xu et al.'s App. A.1.3 it
replaces.

* :func:`pythagoras`, :func:`check_pythagoras` — :math:`\|\mathbf P\,\mathrm{vec}(\hat Y - Y)\|^2 = L - L^*`;
* :func:`original_inequality`, :func:`check_original_inequality` — App. A.1.3's last inequality on p. 18,
  :math:`(a-b)^2 \ge a^2 - b^2`, true only when b ≥ a or b = 0, and the blog's claim ('A minor mistake in
  the original paper') that it can hold only when :math:`L^* \ge L`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from gnndyn.algebra.optimum import Optimum
from gnndyn.algebra.spectrum import as_float64 as _np
from gnndyn.errors import GnndynError
from gnndyn.theory.verdict import Verdict
from gnndyn.theory.xu.sources import BLOG, PAPER


def pythagoras(pred: torch.Tensor, Y: torch.Tensor, opt: Optimum) -> tuple[float, float]:
    r"""The corrected step of the blog (Step 2): :math:`\|\mathbf P\,\mathrm{vec}(\hat Y - Y)\|_2^2 = L - L^*`,
    with :math:`\mathbf P` the projector onto the column space of :math:`\tilde G^\top\otimes I_{m_y}`.

    In matrix form :math:`\mathbf P\,\mathrm{vec}(M) = \mathrm{vec}(MQQ^\top)` (Q an orthonormal basis of the row
    space of G), so the left side is :math:`\|(\hat Y - Y)Q\|_F^2`. Since the rows of :math:`\hat Y = \tilde WG`
    lie in that row space, :math:`\hat Y - Y = (\hat Y - YQQ^\top) - Y(I - QQ^\top)` is an orthogonal split
    and the identity holds exactly with :math:`L^* = \|Y(I - QQ^\top)\|^2` (``opt.projected``, which is
    :math:`L^*_H` in the least-squares case). Returns (lhs, rhs) = (‖P vec(Ŷ−Y)‖², L − L*).
    """
    if opt.basis is None:
        raise GnndynError("pythagoras needs the row-space basis; compute the optimum with global_optimum().")
    R = _np(pred) - _np(Y)
    lhs = float(((R @ opt.basis) ** 2).sum())
    rhs = float((R ** 2).sum()) - opt.projected
    return lhs, rhs


def original_inequality(L: float | np.ndarray, L_star: float, *, rtol: float = 1e-12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""App. A.1.3's last inequality on p. 18: :math:`(a - b)^2 \ge a^2 - b^2` with
    :math:`a = \|\mathrm{vec}(\hat Y - Y)\| = \sqrt L` and :math:`b = \|(I - \mathbf P)\mathrm{vec}(Y)\| = \sqrt{L^*}`.

    :math:`(a-b)^2 - (a^2 - b^2) = 2b(b - a)`: it holds iff b = 0 or b ≥ a, i.e. iff :math:`L^* = 0` or
    :math:`L^* \ge L` — never along a run with :math:`L > L^* > 0`. Returns (lhs, rhs, holds) arrays;
    ``holds`` allows a rounding slack of ``rtol``·a².
    """
    a = np.sqrt(np.maximum(np.asarray(L, float), 0.0))
    b = math.sqrt(max(L_star, 0.0))
    lhs, rhs = (a - b) ** 2, a ** 2 - b ** 2
    return lhs, rhs, lhs >= rhs - rtol * np.maximum(a ** 2, 1e-300)


def check_pythagoras(errors: Sequence[tuple], *, rtol: float = 1e-9) -> Verdict:
    r"""The blog's identity at every checked point: ``errors`` = [(where, lhs, rhs)] or [(where, lhs, rhs, scale)].

    The identity is exact, so it holds when :math:`|\mathrm{lhs} - \mathrm{rhs}| \le \tau` everywhere, with
    :math:`\tau = \max(\mathrm{rtol}\cdot\max(|\mathrm{lhs}|, |\mathrm{rhs}|),\ 64\,\varepsilon\,\mathrm{scale})`:
    ``scale`` (when given) is the size of the terms whose difference rhs is, :math:`L + L^*` for
    rhs = L − L*, so that near the optimum (rhs ≪ L) the comparison allows the floating-point error of that
    difference (ε the float64 unit roundoff; 64 covers the summation of L). The margin is relative:
    :math:`(\tau - |\mathrm{lhs} - \mathrm{rhs}|)/\max(|\mathrm{lhs}|, |\mathrm{rhs}|)` at the worst point, ≥ 0 iff it holds."""
    eps = float(np.finfo(np.float64).eps)
    ref = np.array([max(abs(e[1]), abs(e[2]), 1e-300) for e in errors])
    absd = np.array([abs(e[1] - e[2]) for e in errors])
    rel = absd / ref
    tol = np.array([max(rtol * r, 64.0 * eps * abs(e[3]) if len(e) > 3 else 0.0) for e, r in zip(errors, ref)])
    slack = (tol - absd) / ref
    j = int(np.argmin(slack))
    return Verdict("blog.pythagoras", f"{BLOG}, Step 2 (corrected step of {PAPER}, App. A.1.3)",
                   "‖P vec(Ŷ − Y)‖² = L − L* (P: projector onto the column space of G̃ᵀ ⊗ I)",
                   bool((absd <= tol).all()), float(slack[j]), errors[j][0],
                   details={"max_rel_err": float(rel.max()), "max_abs_err": float(absd.max()), "points": len(errors),
                            "tolerance_at_worst": float(tol[j])})


def check_original_inequality(losses: np.ndarray, L_star: float, *, label: str,
                              rtol: float = 1e-12) -> tuple[Verdict, Verdict]:
    """Two verdicts along one run: (1) App. A.1.3's inequality (a − b)² ≥ a² − b² — holds iff false at no
    step; (2) the blog's claim that it can only hold when L* ≥ L — checked at every step where it held,
    with the case L* = 0 (b = 0, where it holds with equality) reported apart, since the blog omits it.

    Both read the measured losses with the same rounding slack ``rtol``: (1) allows rtol·a²
    (:func:`original_inequality`), which admits a/b up to 1 + rtol/2 + O(rtol²), i.e. L up to
    L*(1 + rtol + O(rtol²)); so (2) counts a held step with L ≤ L*(1 + 2 rtol) as L* ≥ L."""
    losses = np.asarray(losses, float)
    zero_star = L_star <= 1e-12 * max(float(losses.max()), 1e-300)  # rounding level: b = 0
    lhs, rhs, ok = original_inequality(losses, 0.0 if zero_star else L_star, rtol=rtol)
    n_false = int((~ok).sum())
    worst = int(np.argmin(lhs - rhs))
    v1 = Verdict("xu.appA13.inequality", f"{PAPER}, App. A.1.3 (last inequality on p. 18)",
                 "(‖vec(Ŷ−Y)‖ − ‖(I−P)vec(Y)‖)² ≥ ‖vec(Ŷ−Y)‖² − ‖(I−P)vec(Y)‖²",
                 n_false == 0, float(lhs[worst] - rhs[worst]), f"step {worst} of {label}",
                 details={"false_steps": n_false, "steps": int(losses.size), "L_star": L_star, "L_star_is_zero": zero_star})
    held = np.flatnonzero(ok)
    star_ge_L = losses[held] <= L_star * (1 + 2 * rtol)
    explained = star_ge_L | zero_star
    v2 = Verdict("blog.inequality_only_if", f"{BLOG}, 'A minor mistake in the original paper'",
                 "the original inequality can hold only when L* ≥ L (gnndyn adds: or L* = 0, where it is an equality)",
                 bool(explained.all()), float("nan"), label,
                 details={"held_steps": int(held.size), "held_with_L_star_ge_L": int(star_ge_L.sum()),
                          "held_only_because_L_star_is_zero": int(held.size if zero_star else 0)})
    return v1, v2


__all__ = ["check_original_inequality", "check_pythagoras", "original_inequality", "pythagoras"]
