r"""The fast paths: the three rules of :func:`gnndyn.theory.patel.path.run_path` — gradient flow (3.1), the per-layer
normalized flow (Remark 6.1) and gradient descent (5.1) — integrated on the Z form in plain NumPy.

The linear GNN is a deep linear network on :math:`Z = (XS^H)_{*I}` (notes §9), so a path needs only the closed-form
gradients of eq. (3.4) and the proof of Thm 4.4 (:func:`gnndyn.theory.patel.problem.gradients`),

.. math:: \nabla_{W_\ell}\mathcal L = \tfrac2m (W_{H+1}\cdots W_{\ell+1})^\top(\hat Y - Y)Z^\top(W_{\ell-1}\cdots W_1)^\top,

on d_ℓ × d_{ℓ−1} matrices: a gradient costs microseconds, about 100× less than autograd through the model, and the
solver's own overhead decides the cost. Every function returns the same :class:`~gnndyn.theory.patel.path.Path` as
``run_path`` and is tested against it (same losses and weights to solver tolerance; gradient descent and the
fixed-step rk4 to rounding), so every check of :mod:`gnndyn.theory.patel` applies. They keep going where the torch
solver stops: on the stiff problems of Figs. 3–7 (the Hessian's top eigenvalue 10²–10⁴ × the rate) ``run_path``'s
dopri5 hits a non-finite trial stage (measured on G(200, 0.1) with Adj and L at rtol 10⁻⁷).

* :func:`solve` — until a level: adaptive RK45 (or fixed-step rk4 for the normalized flow) from ``Ws0`` until the
  relative loss reaches ``stop_level`` or the horizon T, recording a thinned path (Figs. 3–8);
* :func:`flow_path` — gradient flow on a given time grid by scipy's ``solve_ivp`` (DOP853 by default) (§4);
* :func:`normalized_flow_path` — Remark 6.1's flow by classical rk4 with a fixed step on a given time grid (§5, open
  questions);
* :func:`descent_path` — :math:`W^{(k+1)} = W^{(k)} - \eta\nabla\mathcal L(W^{(k)})`; stops at a non-finite or
  exploding loss (``error`` says where).

Weights travel as one flat vector (vec W_1, …, vec W_{H+1}), each block row-major (:func:`flatten`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from itertools import pairwise

import numpy as np

from gnndyn.errors import GnndynError, resolve
from gnndyn.theory.patel.path import Path
from gnndyn.theory.patel.problem import Problem, Weights, flatten, gradients, loss, unflatten

#: the two flows :func:`solve` integrates
FLOW_RULES = ("flow", "normalized-flow")


def shapes(problem: Problem) -> list[tuple[int, int]]:
    """The weight shapes (d_ℓ, d_{ℓ−1}) for ℓ = 1 … H+1."""
    d = problem.widths.dims
    return [(d[l], d[l - 1]) for l in range(1, len(d))]


class Field:
    r"""The field on the flat weight vector: minus the gradients of eq. (3.4), each layer's divided by its Frobenius
    norm for the normalized flow of Remark 6.1 (:math:`dW_\ell/dt = -\nabla_{W_\ell}\mathcal L/\|\nabla_{W_\ell}
    \mathcal L\|_F`; a layer with zero gradient stands still). Counts its evaluations in ``nfe``."""

    def __init__(self, problem: Problem, normalized: bool) -> None:
        self.problem = problem
        self.shapes = shapes(problem)
        self.normalized = normalized
        self.nfe = 0

    def unflat(self, theta: np.ndarray) -> list[np.ndarray]:
        return unflatten(theta, self.shapes)

    def loss(self, theta: np.ndarray) -> float:
        return loss(self.problem, self.unflat(theta))

    def __call__(self, t: float, theta: np.ndarray) -> np.ndarray:  # autonomous: t unused
        self.nfe += 1
        out = []
        for g in gradients(self.problem, self.unflat(theta)):
            if self.normalized:
                nrm = float(np.linalg.norm(g))
                g = g / nrm if nrm > 0 else g * 0.0
            out.append(g.reshape(-1))
        return -np.concatenate(out)


def rk4_step(f: Callable[[float, np.ndarray], np.ndarray], t: float, y: np.ndarray, h: float) -> np.ndarray:
    """One classical Runge–Kutta step of size h from (t, y)."""
    k1 = f(t, y)
    k2 = f(t, y + 0.5 * h * k1)
    k3 = f(t, y + 0.5 * h * k2)
    k4 = f(t, y + h * k3)
    return y + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


def solve(problem: Problem, Ws0: Weights, *, rule: str = "flow", T: float, stop_level: float = 0.0,
          points: int = 120, rtol: float = 1e-8, atol: float = 1e-12, max_steps: int = 200_000,
          step_size: float | None = None, max_wall_s: float = 600.0) -> Path:
    r"""Integrate the gradient flow (3.1) (``rule='flow'``) or the per-layer normalized flow of Remark 6.1
    (``rule='normalized-flow'``) from ``Ws0`` over [0, T]: adaptive RK45, or fixed-step RK4 when ``step_size`` is given
    (normalized flow only). The normalized field turns on a length scale ~ ‖∇𝓛‖/‖∇²𝓛∇𝓛‖, tiny for large σ_max(Z):
    a fixed step there stalls at a level set by the step (measured on G(500, 0.25), Adj: RK4 at T/2000 never got below
    a relative loss of 0.083, at T/8000 it reached 0.008), so the adaptive solver is the default; near the minimum the
    field chatters and the adaptive solver stops on ``max_steps``.

    Stops early when :math:`(\mathcal L - \tilde L_H)/(\mathcal L(0) - \tilde L_H) \le` ``stop_level``. Records between
    ``points`` and 2·``points`` points (every k-th accepted step, k doubling as the path grows, and the last one):
    times, losses and weights. ``solver`` holds steps, gradient evaluations, wall time and why it stopped. Both
    integrators stop at ``max_steps`` steps or ``max_wall_s`` seconds; ``rtol``/``atol`` are RK45's only.
    """
    from scipy.integrate import RK45

    rule = resolve("rule", rule, {r: r for r in FLOW_RULES})
    if not (T > 0 and math.isfinite(T)):
        raise GnndynError(f"the horizon T must be a positive finite time; got {T}.")
    f = Field(problem, rule == "normalized-flow")
    theta = flatten(Ws0)
    L0 = f.loss(theta)
    ex0 = L0 - problem.L_tilde
    snaps: list[tuple[float, float, np.ndarray]] = [(0.0, L0, theta.copy())]
    stride, k, reason, t0w = 1, 0, "horizon", time.perf_counter()

    def keep(t: float, y: np.ndarray) -> float:
        nonlocal stride
        L = f.loss(y)
        if k % stride == 0:
            snaps.append((t, L, y.copy()))
            if len(snaps) > 2 * points:
                del snaps[1::2]
                stride *= 2
        return L

    adaptive = rule == "flow" or not step_size
    if adaptive:
        solver = RK45(f, 0.0, theta, T, rtol=rtol, atol=atol)
        while solver.status == "running":
            msg = solver.step()
            if solver.status == "failed":
                reason = f"solver failed: {msg}"
                break
            k += 1
            if not np.all(np.isfinite(solver.y)):
                reason = "non-finite state"
                break
            L = keep(float(solver.t), solver.y)
            if ex0 > 0 and (L - problem.L_tilde) <= stop_level * ex0:
                reason = "stop level"
                break
            if k >= max_steps or time.perf_counter() - t0w > max_wall_s:
                reason = "step budget" if k >= max_steps else "wall-clock budget"
                break
        t_end, y_end = float(solver.t), solver.y
    else:
        h = float(step_size)
        y, t = theta.copy(), 0.0
        while t < T - 1e-12 * T:
            dt = min(h, T - t)
            y = rk4_step(f, t, y, dt)
            t += dt
            k += 1
            if not np.all(np.isfinite(y)):
                reason = "non-finite state"
                break
            L = keep(t, y)
            if ex0 > 0 and (L - problem.L_tilde) <= stop_level * ex0:
                reason = "stop level"
                break
            if t < T - 1e-12 * T and (k >= max_steps or time.perf_counter() - t0w > max_wall_s):
                reason = "step budget" if k >= max_steps else "wall-clock budget"
                break
        t_end, y_end = t, y
    if snaps[-1][0] != t_end:
        snaps.append((t_end, f.loss(y_end), np.array(y_end, copy=True)))
    times = np.array([s[0] for s in snaps])
    info = {"steps": k, "nfe": f.nfe, "wall_s": time.perf_counter() - t0w, "stopped": reason, "T": float(T),
            "method": "RK45" if adaptive else "rk4", "rtol": rtol, "atol": atol}
    err = None if reason in ("horizon", "stop level") else reason
    return Path(rule, times, np.array([s[1] for s in snaps]), times.copy(), [f.unflat(s[2]) for s in snaps],
                None, info, err)


def _grid(times: np.ndarray | Sequence[float]) -> np.ndarray:
    ts = np.asarray(times, dtype=np.float64)
    if ts.ndim != 1 or ts.size < 2 or not np.all(np.diff(ts) > 0):
        raise GnndynError(f"times must be a strictly increasing grid of ≥ 2 points; got {ts[:5]}...")
    return ts


def flow_path(problem: Problem, Ws0: Weights, times: np.ndarray, *, rtol: float = 1e-10, atol: float = 1e-12,
              method: str = "DOP853", max_wall_s: float | None = None) -> Path:
    r"""Gradient flow :math:`dW_\ell/dt = -\nabla_{W_\ell}\mathcal L` on ``times`` (weights at every grid point), by
    scipy's ``solve_ivp``; ``rtol``/``atol`` are the solver's tolerances. Past ``max_wall_s`` seconds the path is
    the start alone and ``error`` says so."""
    from scipy.integrate import solve_ivp

    ts = _grid(times)
    f = Field(problem, normalized=False)
    t0 = time.perf_counter()

    class _Budget(Exception):
        pass

    def rhs(t: float, th: np.ndarray) -> np.ndarray:
        if max_wall_s is not None and (f.nfe + 1) % 256 == 0 and time.perf_counter() - t0 > max_wall_s:
            raise _Budget
        return f(t, th)

    err = None
    try:
        sol = solve_ivp(rhs, (ts[0], ts[-1]), flatten(Ws0), method=method, t_eval=ts, rtol=rtol, atol=atol)
        Ys, Tt = sol.y.T, sol.t
        if sol.status != 0:
            err = f"solve_ivp: {sol.message}"
    except _Budget:
        err = f"wall budget of {max_wall_s} s spent"
        Ys, Tt = flatten(Ws0)[None, :], ts[:1]
    Ws = [f.unflat(y) for y in Ys]
    info = {"method": method, "rtol": rtol, "atol": atol, "nfe": f.nfe, "wall_s": time.perf_counter() - t0}
    return Path("flow", np.asarray(Tt), np.array([loss(problem, w) for w in Ws]), np.asarray(Tt), Ws, None, info, err)


def normalized_flow_path(problem: Problem, Ws0: Weights, times: np.ndarray, *, step: float) -> Path:
    """Remark 6.1's per-layer normalized flow by classical rk4 with the fixed step ``step`` (weights at ``times``;
    every grid interval is split into ceil(Δt/step) equal rk4 steps — so a step above a grid interval is cut to
    it: give a grid whose intervals are multiples of ``step``)."""
    ts = np.asarray(times, dtype=np.float64)
    if not step > 0:
        raise GnndynError(f"the rk4 step must be > 0; got {step}.")
    f = Field(problem, normalized=True)
    y = flatten(Ws0)
    t0 = time.perf_counter()
    snaps, steps = [y.copy()], 0
    for a, b in pairwise(ts):
        k = max(1, math.ceil((b - a) / step - 1e-12))
        h = (b - a) / k
        for i in range(k):
            y = rk4_step(f, a + i * h, y, h)
            steps += 1
        snaps.append(y.copy())
    Ws = [f.unflat(s) for s in snaps]
    info = {"method": "rk4", "step_size": float(step), "steps": steps, "nfe": f.nfe, "wall_s": time.perf_counter() - t0}
    return Path("normalized-flow", ts, np.array([loss(problem, w) for w in Ws]), ts, Ws, None, info, None)


def descent_path(problem: Problem, Ws0: Weights, *, eta: float, steps: int, snapshot_every: int = 1,
                 blowup: float = 1e12) -> Path:
    r"""Gradient descent (5.1); losses at every step k (time kη), weights every ``snapshot_every`` steps and the last.
    Stops when the loss is non-finite or above ``blowup`` × 𝓛(W(0)) (divergence, recorded in ``error``)."""
    if not eta > 0 or steps < 0 or snapshot_every < 1:
        raise GnndynError(f"need eta > 0, steps ≥ 0, snapshot_every ≥ 1; got {eta}, {steps}, {snapshot_every}.")
    W = [np.array(w, dtype=np.float64) for w in Ws0]
    L0 = loss(problem, W)
    losses, wt, ws, err = [L0], [0.0], [[w.copy() for w in W]], None
    for k in range(1, steps + 1):
        g = gradients(problem, W)
        W = [w - eta * gw for w, gw in zip(W, g)]
        L = loss(problem, W)
        if not math.isfinite(L) or L > blowup * max(L0, 1e-300):
            err = f"diverged at step {k} (loss {L:.3g})"
            break
        losses.append(L)
        if k % snapshot_every == 0 or k == steps:
            wt.append(k * eta)
            ws.append([w.copy() for w in W])
    times = eta * np.arange(len(losses), dtype=np.float64)
    return Path("gd", times, np.array(losses), np.array(wt), ws, float(eta), {"steps": len(losses) - 1}, err)


__all__ = ["FLOW_RULES", "Field", "descent_path", "flow_path", "normalized_flow_path", "rk4_step", "shapes", "solve"]
