r"""§5 of Patel, Savostianov & Schaub (arXiv 2501.14440): gradient descent (5.1),
:math:`W_\ell^{(k+1)} = W_\ell^{(k)} - \eta\nabla_{W_\ell}\mathcal L(W^{(k)})`, from Thm 3.1's start.

* Thm 5.1: :math:`\mathcal L(W^{(k)}) - \tilde L_H \le (1 - \beta\sigma^2_{small}\eta/(2m))^k(\mathcal L(W^{(0)}) - \tilde L_H)`
  for a "sufficiently small" η; the proof asks
  :math:`\eta < \min\{r/(M\sqrt{p(H+1)}),\ 1/(Mp),\ 2m/(\beta\sigma^2_{small})\}` with M a bound on every entry of the
  gradient and of the Hessian over the ball :math:`B_{2r}(\mathrm{vec}\,W^{(0)})` (never computed in the paper), and
  the stronger start condition :math:`16L(W(0))/r^2 < \beta\sigma^2_{small}/m`.
* M is a supremum over a ball: :func:`estimate_M` gives a **lower** estimate from sampled points with exact
  Hessians (autograd), so the step condition evaluated with it is only an estimate — any η above the estimated
  threshold violates the true condition, an η below it may still violate it.
* Gradient descent is linearly unstable beyond :math:`2/\lambda_{\max}(\nabla^2\mathcal L)` (:func:`sharpness`).
* Remark 5.2: :math:`\mathcal L(W^{(k)}) - \tilde L_H < \varepsilon` once
  :math:`k > \log((\mathcal L(W^{(0)}) - \tilde L_H)/\varepsilon)/\log(2m/(2m - \beta\sigma^2_{small}\eta))`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from gnndyn.errors import GnndynError
from gnndyn.theory.patel.flow_bounds import (
    FLOOR_REL,
    exp_bound_verdict,
    hypothesis,
    printed_assumptions,
)
from gnndyn.theory.patel.path import Path
from gnndyn.theory.patel.problem import (
    PAPER,
    Problem,
    Weights,
    excess,
    flatten,
    parameter_count,
    radius,
    rate,
    torch_loss,
)
from gnndyn.theory.verdict import Verdict

#: dense Hessians (p × p by autograd) up to this many parameters; beyond, sampled Hessian columns.
DENSE_HESSIAN = 1200


def contraction(problem: Problem, Ws0: Weights, eta: float) -> float:
    r"""Thm 5.1's factor :math:`1 - \beta\sigma^2_{small}\eta/(2m)`."""
    return 1.0 - rate(problem, Ws0) * eta / 2.0


def _hessian_max(f, theta: torch.Tensor, dense: bool, columns: int, rng: np.random.Generator) -> tuple[float, np.ndarray | None]:
    if dense:
        Hm = torch.autograd.functional.hessian(f, theta)
        return float(Hm.abs().max()), Hm.numpy()
    th = theta.clone().requires_grad_(True)
    g = torch.autograd.grad(f(th), th, create_graph=True)[0]
    best = 0.0
    for j in rng.choice(theta.numel(), size=min(columns, theta.numel()), replace=False):
        col = torch.autograd.grad(g[int(j)], th, retain_graph=True)[0]
        best = max(best, float(col.abs().max()))
    return best, None


def estimate_M(problem: Problem, Ws0: Weights, *, samples: int = 16, seed: int = 0, columns: int = 64,
               dense_limit: int = DENSE_HESSIAN) -> dict:
    r"""A lower estimate of M = sup over :math:`B_{2r}(\mathrm{vec}\,W^{(0)})` of every |gradient entry| and |Hessian
    entry|: the maximum at W(0) and at ``samples`` points on the sphere of radius 2r (uniform directions) and as
    many uniform in the ball's volume (radius 2r·U^{1/p}: in p dimensions these lie close to the sphere too,
    so the inside of the ball is hardly sampled — the estimate stays a lower one), with exact Hessians by autograd (dense up to ``dense_limit`` parameters, else
    ``columns`` random Hessian columns — still exact entries, still a lower estimate)."""
    f, _ = torch_loss(problem)
    theta0 = torch.from_numpy(flatten(Ws0))
    p = theta0.numel()
    r = radius(Ws0)
    rng = np.random.default_rng(seed)
    dense = p <= dense_limit
    pts = [theta0]
    for i in range(2 * samples):
        u = rng.standard_normal(p)
        u /= np.linalg.norm(u)
        rad = 2 * r if i < samples else 2 * r * rng.uniform() ** (1.0 / p)
        pts.append(theta0 + torch.from_numpy(rad * u))
    g_max = h_max = 0.0
    where_g = where_h = 0
    for i, th in enumerate(pts):
        tt = th.clone().requires_grad_(True)
        g = torch.autograd.grad(f(tt), tt)[0]
        gm = float(g.abs().max())
        hm, _ = _hessian_max(f, th, dense, columns, rng)
        if gm > g_max:
            g_max, where_g = gm, i
        if hm > h_max:
            h_max, where_h = hm, i
    return {"M_estimate": max(g_max, h_max), "grad_max": g_max, "hessian_max": h_max, "points": len(pts), "p": p,
            "radius_2r": 2 * r, "dense_hessians": dense, "columns": None if dense else min(columns, p),
            "argmax_grad_point": where_g, "argmax_hessian_point": where_h, "lower_estimate": True}


def step_bound(problem: Problem, Ws0: Weights, M: float) -> dict:
    r"""The three terms of the step condition, :math:`r/(M\sqrt{p(H+1)})`, :math:`1/(Mp)`, :math:`2m/(\beta\sigma^2_{small})`,
    and their minimum."""
    p, H, r = parameter_count(problem), problem.H, radius(Ws0)
    k = rate(problem, Ws0)
    t1 = r / (M * math.sqrt(p * (H + 1))) if M > 0 else math.inf
    t2 = 1.0 / (M * p) if M > 0 else math.inf
    t3 = 2.0 / k if k > 0 else math.inf
    return {"r_over_M_sqrt_p_H1": t1, "one_over_Mp": t2, "two_m_over_beta_sigma2": t3, "eta_max": min(t1, t2, t3),
            "M": M, "p": p, "r": r}


def check_step_condition(problem: Problem, Ws0: Weights, eta: float, *, M: dict | None = None, **estimate) -> Verdict:
    """Thm 5.1's step condition for η with M estimated from below (:func:`estimate_M`): the verdict is an estimate."""
    Mi = estimate_M(problem, Ws0, **estimate) if M is None else M
    b = step_bound(problem, Ws0, Mi["M_estimate"])
    return Verdict("patel.thm5.1.step", f"{PAPER}, Thm 5.1, proof (M estimated from below)",
                   "η < min{r/(M√(p(H+1))), 1/(Mp), 2m/(βσ²_small)} — ESTIMATE: M is a supremum over B_2r(W(0)), "
                   f"here the largest of {Mi['points']} sampled points; η above the estimate violates the condition, "
                   "η below it may not satisfy it", bool(eta < b["eta_max"]), float(b["eta_max"] - eta), f"η = {eta:g}",
                   printed_assumptions(problem, Ws0), True, {**b, **Mi, "eta": eta, "estimated": True})


def check_gd_hypothesis(problem: Problem, Ws0: Weights) -> Verdict:
    """Thm 5.1's start condition 16L(W(0))/r² < βσ²_small/m (stronger than Thm 3.1's factor 4), with margin."""
    h = hypothesis(problem, Ws0, factor=16.0)
    a = printed_assumptions(problem, Ws0)
    return Verdict("patel.thm5.1.hypothesis", f"{PAPER}, Thm 5.1, proof", "16 L(W(0))/r² < βσ²_small((XS^H)_{*I})/m",
                   bool(h["margin"] > 0), h["margin"], "W(0)", a, all(a.values()), h)


def check_thm51(problem: Problem, path: Path, *, floor_rel: float = FLOOR_REL, M: dict | None = None) -> Verdict:
    """Thm 5.1's contraction at every step of a gradient-descent path. Assumptions: Thm 3.1's start, the GD start
    condition, the M-free term of the step condition, η < 2m/(βσ²_small) (the factor 1 − βσ²_small η/(2m) is positive),
    and (only if ``M`` is given) the whole step condition with M estimated from below."""
    if path.rule != "gd" or path.eta is None:
        raise GnndynError(f"check_thm51 needs a gradient-descent path (rule 'gd'); got rule {path.rule!r}.")
    Ws0, eta = path.start, path.eta
    q = contraction(problem, Ws0, eta)
    a = printed_assumptions(problem, Ws0)
    a["16L(W(0))/r² < βσ²_small/m"] = hypothesis(problem, Ws0, factor=16.0)["margin"] > 0
    det = {"eta": eta, "factor": q, "rate_bound": rate(problem, Ws0), "error": path.error}
    a["η < 2m/(βσ²_small) (factor in (0, 1))"] = q > 0
    if M is not None:
        b = step_bound(problem, Ws0, M["M_estimate"])
        a["η < step bound (M estimated from below)"] = eta < b["eta_max"]
        det["step_bound_estimate"] = b["eta_max"]
    k = np.rint(path.times / eta)
    if q <= 0:
        bound = np.where(k == 0, 1.0, 0.0)
    else:
        bound = np.exp(k * math.log(q))
    v = exp_bound_verdict("patel.thm5.1", f"{PAPER}, Thm 5.1", "𝓛(W^(k)) − L̃_H ≤ (1 − βσ²_small η/(2m))^k (𝓛(W^(0)) − L̃_H)",
                          problem, k, path.losses, bound, a, det, floor_rel, label="k")
    if path.error is not None:
        v = Verdict(v.name, v.paper, v.statement, False, -math.inf, f"diverged: {path.error}", v.assumptions, v.applicable,
                    v.details)
    return v


def sharpness(problem: Problem, Ws: Weights, *, dense_limit: int = DENSE_HESSIAN, iters: int = 300) -> dict:
    r""":math:`\lambda_{\max}(\nabla^2\mathcal L)` at W (dense eigenvalues up to ``dense_limit`` parameters, else power
    iteration on Hessian-vector products, :func:`gnndyn.training.flow.hessian_top_eigenvalue`) and 2/λ_max."""
    f, _ = torch_loss(problem)
    theta = torch.from_numpy(flatten(Ws))
    if theta.numel() <= dense_limit:
        Hm = torch.autograd.functional.hessian(f, theta).numpy()
        lam = float(np.linalg.eigvalsh((Hm + Hm.T) / 2)[-1])
        method = "dense"
    else:
        from gnndyn.models.patel import patel_gnn, patel_objective, z_data
        from gnndyn.training.flow import hessian_top_eigenvalue

        d = problem.widths.dims
        model = patel_gnn(d[0], list(d[1:-1]), d[-1], weights=Ws, allow_increasing=True)
        data, obj = z_data(problem.Z), patel_objective(problem.Y)
        lam, _ = hessian_top_eigenvalue(model, lambda m: obj(m(data)), iters=iters)
        method = "power iteration"
    return {"lambda_max": lam, "two_over_lambda": 2.0 / lam if lam > 0 else math.inf, "method": method}


def remark52_iterations(problem: Problem, Ws0: Weights, eta: float, eps: float) -> float:
    r"""Remark 5.2: :math:`\log(L(W^{(0)})/\varepsilon)/\log(2m/(2m - \beta\sigma^2_{small}\eta))` (∞ when the factor is ≤ 0
    or ≥ 1, i.e. η ≥ 2m/(βσ²_small) or β σ_small = 0)."""
    L0 = excess(problem, Ws0)
    x = rate(problem, Ws0) * eta  # βσ²η/m
    if not 0 < x < 2:
        return math.inf
    return math.log(L0 / eps) / math.log(2.0 / (2.0 - x)) if L0 > eps else 0.0


def check_remark52(problem: Problem, path: Path, eps: float) -> Verdict:
    r"""Remark 5.2: :math:`\mathcal L(W^{(k)}) - \tilde L_H < \varepsilon` for every k > k_pred =
    :math:`\log(L(W^{(0)})/\varepsilon)/\log(2m/(2m - \beta\sigma^2_{small}\eta))` (:func:`remark52_iterations`).

    The first promised step is k₁ = ⌊k_pred⌋ + 1 (k > k_pred, strictly). Measured: k_measured, the first step from which
    the excess stays below ε to the end of the path (∞ if it ends at or above ε). The remark holds when every recorded
    step k ≥ k₁ is below ε, i.e. k_measured ≤ k₁, or the path ends before k₁ (nothing promised yet); margin k₁ −
    k_measured in steps (nan when the excess never settles below ε)."""
    if path.rule != "gd" or path.eta is None:
        raise GnndynError(f"check_remark52 needs a gradient-descent path; got rule {path.rule!r}.")
    k_pred = remark52_iterations(problem, path.start, path.eta, eps)
    k_first = math.floor(k_pred) + 1 if math.isfinite(k_pred) else math.inf
    ex = path.losses - problem.L_tilde
    steps = np.rint(path.times / path.eta)
    above = np.flatnonzero(~(ex < eps))
    k_meas = (float(steps[above[-1] + 1]) if above[-1] + 1 < steps.size else math.inf) if above.size else float(steps[0])
    last = float(steps[-1])
    a = {"16L(W(0))/r² < βσ²_small/m": hypothesis(problem, path.start, factor=16.0)["margin"] > 0,
         **printed_assumptions(problem, path.start)}
    holds = k_meas <= k_first or last < k_first
    below = np.flatnonzero(ex < eps)
    return Verdict("patel.remark5.2", f"{PAPER}, Remark 5.2", "L(W^(k)) < ε once k > log(L(W^(0))/ε)/log(2m/(2m − βσ²_small η))",
                   bool(holds), float(k_first - k_meas) if math.isfinite(k_meas) else math.nan, f"ε = {eps:g}", a,
                   all(a.values()), {"k_predicted": k_pred, "k_first_promised": float(k_first), "k_measured": k_meas,
                                     "k_first_below": float(steps[below[0]]) if below.size else math.inf,
                                     "eta": path.eta, "run_steps": last, "judged": bool(last >= k_first)})


__all__ = ["DENSE_HESSIAN", "check_gd_hypothesis", "check_remark52", "check_step_condition", "check_thm51", "contraction",
           "estimate_M", "remark52_iterations", "sharpness", "step_bound"]
