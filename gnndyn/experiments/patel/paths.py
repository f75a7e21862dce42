r"""Measured paths on the Z form in plain NumPy, for the long runs of the §4–§5 experiments.

The three rules of :func:`gnndyn.theory.patel.path.run_path` — gradient flow (3.1), the per-layer normalized flow
(Remark 6.1) and gradient descent (5.1) — with the closed-form gradients of eq. (3.4)
(:func:`gnndyn.theory.patel.problem.gradients`) instead of autograd through the model: the matrices are
d_ℓ × d_{ℓ−1}, so a gradient costs microseconds and the solver's own overhead decides the cost. They return the
same :class:`~gnndyn.theory.patel.path.Path` and are checked against ``run_path`` in the tests (same losses and
weights to solver tolerance; gradient descent and the fixed-step rk4 to rounding).

* :func:`flow_path` — scipy's ``solve_ivp`` (DOP853 by default; ``rtol``/``atol`` are the solver's tolerances);
* :func:`normalized_flow_path` — classical rk4 with a fixed step h on
  :math:`dW_\ell/dt = -\nabla_{W_\ell}\mathcal L/\|\nabla_{W_\ell}\mathcal L\|_F` (a layer with zero gradient stands still);
* :func:`descent_path` — :math:`W^{(k+1)} = W^{(k)} - \eta\nabla\mathcal L(W^{(k)})`; stops at a non-finite or
  exploding loss (``error`` says where).
"""

from __future__ import annotations

import math
import time
from itertools import pairwise

import numpy as np

from gnndyn.errors import GnndynError
from gnndyn.theory.patel.path import Path
from gnndyn.theory.patel.problem import (
    Problem,
    Weights,
    flatten,
    gradients,
    loss,
    unflatten,
)


def _shapes(problem: Problem) -> list[tuple[int, int]]:
    d = problem.widths.dims
    return [(d[l], d[l - 1]) for l in range(1, len(d))]


def flow_path(problem: Problem, Ws0: Weights, times: np.ndarray, *, rtol: float = 1e-10, atol: float = 1e-12,
              method: str = "DOP853", max_wall_s: float | None = None) -> Path:
    r"""Gradient flow :math:`dW_\ell/dt = -\nabla_{W_\ell}\mathcal L` on ``times`` (weights at every grid point)."""
    from scipy.integrate import solve_ivp

    ts = np.asarray(times, dtype=np.float64)
    if ts.ndim != 1 or ts.size < 2 or not np.all(np.diff(ts) > 0):
        raise GnndynError(f"times must be a strictly increasing grid of ≥ 2 points; got {ts[:5]}...")
    shapes = _shapes(problem)
    t0 = time.perf_counter()
    nfe = [0]

    class _Budget(Exception):
        pass

    def f(_t, th):
        nfe[0] += 1
        if max_wall_s is not None and nfe[0] % 256 == 0 and time.perf_counter() - t0 > max_wall_s:
            raise _Budget
        return -flatten(gradients(problem, unflatten(th, shapes)))

    err = None
    try:
        sol = solve_ivp(f, (ts[0], ts[-1]), flatten(Ws0), method=method, t_eval=ts, rtol=rtol, atol=atol)
        Ys, Tt = sol.y.T, sol.t
        if sol.status != 0:
            err = f"solve_ivp: {sol.message}"
    except _Budget:
        err = f"wall budget of {max_wall_s} s spent"
        Ys, Tt = flatten(Ws0)[None, :], ts[:1]
    Ws = [unflatten(y, shapes) for y in Ys]
    info = {"method": method, "rtol": rtol, "atol": atol, "nfe": nfe[0], "wall_s": time.perf_counter() - t0}
    return Path("flow", np.asarray(Tt), np.array([loss(problem, w) for w in Ws]), np.asarray(Tt), Ws, None, info, err)


def _normalized_field(problem: Problem, Ws: list[np.ndarray]) -> list[np.ndarray]:
    out = []
    for g in gradients(problem, Ws):
        n = float(np.linalg.norm(g))
        out.append(-g / n if n > 0 else np.zeros_like(g))
    return out


def normalized_flow_path(problem: Problem, Ws0: Weights, times: np.ndarray, *, step: float) -> Path:
    """Remark 6.1's per-layer normalized flow by classical rk4 with the fixed step ``step`` (weights at ``times``;
    every grid interval is split into ceil(Δt/step) equal rk4 steps — so a step above a grid interval is cut to
    it: give a grid whose intervals are multiples of ``step``)."""
    ts = np.asarray(times, dtype=np.float64)
    if not step > 0:
        raise GnndynError(f"the rk4 step must be > 0; got {step}.")
    W = [np.array(w, dtype=np.float64) for w in Ws0]
    t0 = time.perf_counter()
    snaps, steps = [[w.copy() for w in W]], 0
    for a, b in pairwise(ts):
        k = max(1, math.ceil((b - a) / step - 1e-12))
        h = (b - a) / k
        for _ in range(k):
            k1 = _normalized_field(problem, W)
            k2 = _normalized_field(problem, [w + 0.5 * h * d for w, d in zip(W, k1)])
            k3 = _normalized_field(problem, [w + 0.5 * h * d for w, d in zip(W, k2)])
            k4 = _normalized_field(problem, [w + h * d for w, d in zip(W, k3)])
            W = [w + (h / 6.0) * (d1 + 2 * d2 + 2 * d3 + d4) for w, d1, d2, d3, d4 in zip(W, k1, k2, k3, k4)]
            steps += 1
        snaps.append([w.copy() for w in W])
    info = {"method": "rk4", "step_size": float(step), "steps": steps, "wall_s": time.perf_counter() - t0}
    return Path("normalized-flow", ts, np.array([loss(problem, w) for w in snaps]), ts, snaps, None, info, None)


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


__all__ = ["descent_path", "flow_path", "normalized_flow_path"]
