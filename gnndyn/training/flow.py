r"""Gradient flow :math:`d\theta/dt = -\nabla L(\theta)` solved with torchdiffeq, and its discretization
(gradient descent at :math:`t = k\eta`), for any model whose loss is a closure ``loss_fn(model)``.

Both record through gnndyn's conventions (:class:`~gnndyn.store.metrics.Recorder`, probes with
schedules), so a check never cares which produced a path:

* :func:`gradient_flow` integrates the ODE over a time grid :math:`t_0 < t_1 < \dots` with an adaptive
  solver (``dopri5`` by default) in float64, one grid interval at a time; at every grid point it
  records ``loss``, the solver's cumulative ``solver_steps`` (accepted), ``solver_rejected`` and
  ``solver_nfe`` (gradient evaluations) with ``step`` = grid index and ``time`` = t, and runs the probes
  whose schedule fires on the grid index (all of them at the last point).
* :func:`normalized_flow` integrates the per-layer normalized flow of Patel et al.'s Remark 6.1 the same way.
* :func:`descend` runs gradient descent (or Adam) with ``step`` = k and ``time`` = kη.

Stiffness is expected (the Hessian's largest eigenvalue sets the explicit solver's step): a solve
that exceeds its step budget, its wall-clock budget, or whose step size underflows stops with
:class:`FlowSolverError` naming where and why; everything recorded before stays in the recorder. It
never hangs: ``max_steps`` bounds the accepted + rejected steps of the whole solve.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from gnndyn.errors import DivergenceError, GnndynError, resolve
from gnndyn.probes.base import Probe, ProbeContext
from gnndyn.progress import NULL_TASK, Task
from gnndyn.store.metrics import Recorder

LossFn = Callable[[nn.Module], torch.Tensor]
ADAPTIVE = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
FIXED = ("euler", "midpoint", "rk4")


class FlowSolverError(RuntimeError):
    """The ODE solver stopped before the end of the time grid (stiffness, budget, non-finite state).

    Attributes: ``reason``, ``t_reached`` (last grid time recorded), ``t_failed`` (the interval's end it was
    solving for), ``steps`` (accepted), ``rejected``, ``nfe`` (gradient evaluations), ``wall_s``.
    """

    def __init__(self, reason: str, *, t_reached: float, t_failed: float, steps: int, rejected: int, nfe: int,
                 wall_s: float) -> None:
        self.reason, self.t_reached, self.t_failed = reason, t_reached, t_failed
        self.steps, self.rejected, self.nfe, self.wall_s = steps, rejected, nfe, wall_s
        super().__init__(
            f"gradient flow stopped: {reason}. Reached t={t_reached:.6g} (solving towards t={t_failed:.6g}) after "
            f"{steps} accepted and {rejected} rejected solver steps ({nfe} gradient evaluations, {wall_s:.1f} s). "
            "Everything up to t_reached was recorded. The flow is stiff where the Hessian's largest eigenvalue is "
            "large: shorten the time horizon, raise max_steps, loosen rtol/atol, or lower the initialization scale."
        )


class _Budget(Exception):
    pass


@dataclass
class FlowResult:
    """Outcome of :func:`gradient_flow`: grid times reached, losses there, and the solver's counts."""

    times: np.ndarray
    losses: np.ndarray
    steps: int
    rejected: int
    nfe: int
    wall_s: float
    recorder: Recorder
    error: FlowSolverError | None = None


class _FlowField(nn.Module):
    """Right-hand side −∇L(θ) on the flat parameter vector, with torchdiffeq's step callbacks."""

    def __init__(self, model: nn.Module, loss_fn: LossFn, max_steps: int, max_wall_s: float | None) -> None:
        super().__init__()
        self.model, self.loss_fn = model, loss_fn
        self.params = [p for p in model.parameters()]
        self.shapes = [p.shape for p in self.params]
        self.sizes = [p.numel() for p in self.params]
        self.max_steps, self.max_wall_s = max_steps, max_wall_s
        self.fixed = False
        self.steps = self.rejected = self.nfe = 0
        self.t0 = _time.perf_counter()
        self.last_loss = math.nan
        self.normalized = False

    def load(self, y: torch.Tensor) -> None:
        with torch.no_grad():
            for p, chunk in zip(self.params, torch.split(y, self.sizes)):
                p.copy_(chunk.view_as(p))

    def flat(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    def loss_and_grad(self, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        self.load(y)
        with torch.enable_grad():
            L = self.loss_fn(self.model)
            grads = torch.autograd.grad(L, self.params)
        return float(L.detach()), torch.cat([g.reshape(-1) for g in grads])

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # noqa: ARG002 (autonomous)
        self.nfe += 1
        L, g = self.loss_and_grad(y)
        self.last_loss = L
        if not math.isfinite(L) or not bool(torch.isfinite(g).all()):
            raise _Budget(f"non-finite loss or gradient ({L}) inside the solver")
        if self.normalized:
            return -layer_normalized(g, self.sizes)
        return -g

    def _check(self) -> None:
        if self.steps + self.rejected >= self.max_steps:
            raise _Budget(f"step budget exceeded (max_steps={self.max_steps})")
        if self.max_wall_s is not None and _time.perf_counter() - self.t0 > self.max_wall_s:
            raise _Budget(f"wall-clock budget exceeded (max_wall_s={self.max_wall_s:g})")

    def callback_step(self, t0, y0, dt) -> None:  # noqa: ARG002
        if self.fixed:
            self.steps += 1
        self._check()


class _AdaptiveFlowField(_FlowField):
    """Adds the adaptive solvers' accept/reject callbacks (fixed-grid solvers do not call them)."""

    def callback_accept_step(self, t0, y0, dt) -> None:  # noqa: ARG002
        self.steps += 1

    def callback_reject_step(self, t0, y0, dt) -> None:  # noqa: ARG002
        self.rejected += 1


def _probe_values(probes: Sequence[Probe], ctx: ProbeContext, due_all: bool) -> dict:
    out: dict = {}
    for p in probes:
        if due_all or p.schedule(ctx.step):
            out.update(p(ctx))
    return out


def gradient_flow(model: nn.Module, loss_fn: LossFn, times: Sequence[float] | np.ndarray, *, method: str = "dopri5",
                  rtol: float = 1e-8, atol: float = 1e-10, max_steps: int = 20_000, max_wall_s: float | None = None,
                  step_size: float | None = None, recorder: Recorder | None = None, series: str = "flow", seed: int = 0,
                  probes: Sequence[Probe] = (), task: Task = NULL_TASK, raise_on_failure: bool = True,
                  direction: str = "gradient") -> FlowResult:
    r"""Solve :math:`d\theta/dt = -\nabla L(\theta)` from the model's current parameters over ``times``.

    Args:
        model: the model (float64 parameters; they are left at the state of the last time reached).
        loss_fn: ``loss_fn(model) -> scalar`` (e.g. Xu et al.'s :math:`\|f_{*I} - Y\|_F^2`).
        times: increasing grid, ``times[0]`` is the start (usually 0).
        method: a torchdiffeq method; adaptive ones (``dopri5``...) use ``rtol``/``atol``; fixed-step
            ones (``rk4``, ``euler``...) need ``step_size``.
        max_steps: budget of solver steps (accepted + rejected) for the whole solve.
        max_wall_s: optional wall-clock budget in seconds.
        probes: called at grid points whose index the schedule accepts (all at the last point), with
            ``ProbeContext(step=k, model, loss, grads=[∂L/∂θ], extras={'time': t, 'dynamics': 'flow'})``.
        raise_on_failure: if False, a solver failure is returned in ``FlowResult.error``.
        direction: ``gradient`` (the flow above) or ``layer-normalized`` (:func:`normalized_flow`: each
            parameter tensor moves along its own normalized negative gradient).
    """
    from torchdiffeq import odeint

    ts = np.asarray(times, dtype=np.float64)
    if ts.ndim != 1 or ts.size < 1 or not np.all(np.diff(ts) > 0):
        raise GnndynError(f"times must be a strictly increasing 1-d grid; got {ts[:5]}... (size {ts.size}).")
    params = list(model.parameters())
    if any(p.dtype != torch.float64 for p in params):
        raise GnndynError("gradient_flow integrates in float64: build the model with dtype=torch.float64.")
    if method not in ADAPTIVE + FIXED:
        raise GnndynError(f"unknown ODE method {method!r}; valid methods: {', '.join(ADAPTIVE + FIXED)}.")
    if method in FIXED and step_size is None:
        raise GnndynError(f"the fixed-step method {method!r} needs step_size.")
    rec = recorder if recorder is not None else Recorder()
    field_ = (_FlowField if method in FIXED else _AdaptiveFlowField)(model, loss_fn, int(max_steps), max_wall_s)
    field_.fixed = method in FIXED
    field_.normalized = resolve("direction", direction, {"gradient": False, "layer-normalized": True})
    options = {"step_size": step_size} if method in FIXED else None
    y = field_.flat()
    reached_t, reached_L = [], []

    def record(k: int, t: float, last: bool) -> None:
        L, g = field_.loss_and_grad(y)
        if not math.isfinite(L):
            raise _Budget(f"non-finite loss {L} at a grid point")
        reached_t.append(t)
        reached_L.append(L)
        vals = {"loss": L, "solver_steps": field_.steps, "solver_rejected": field_.rejected, "solver_nfe": field_.nfe}
        rec.add_values(series, seed, k, vals, time=t)
        if probes:
            grads = [c.view_as(p) for c, p in zip(torch.split(g, field_.sizes), params)]
            ctx = ProbeContext(step=k, model=model, loss=L, grads=grads, extras={"time": t, "dynamics": "flow"})
            out = _probe_values(probes, ctx, last)
            if out:
                rec.add_values(series, seed, k, out, time=t)

    error = None
    k = 0
    y_last = y.clone()
    try:
        record(0, float(ts[0]), ts.size == 1)
        for k in range(1, ts.size):
            span = torch.tensor([ts[k - 1], ts[k]], dtype=torch.float64)
            y = odeint(field_, y, span, method=method, rtol=rtol, atol=atol, options=options)[-1].detach()
            if not bool(torch.isfinite(y).all()):
                raise _Budget("the solver returned a non-finite state")
            record(k, float(ts[k]), k == ts.size - 1)
            y_last = y.clone()
            task.advance(1)
    except (_Budget, AssertionError) as exc:
        msg = str(exc)
        if isinstance(exc, AssertionError):
            msg = f"step size underflow ({msg})" if "underflow" in msg else f"solver assertion ({msg})"
        error = FlowSolverError(msg, t_reached=reached_t[-1] if reached_t else float(ts[0]),
                                t_failed=float(ts[min(k, ts.size - 1)]), steps=field_.steps, rejected=field_.rejected,
                                nfe=field_.nfe, wall_s=_time.perf_counter() - field_.t0)
    field_.load(y_last)  # the model is left at the last recorded grid point
    if error is not None and raise_on_failure:
        raise error
    return FlowResult(np.asarray(reached_t), np.asarray(reached_L), field_.steps, field_.rejected, field_.nfe,
                      _time.perf_counter() - field_.t0, rec, error)


def layer_normalized(g: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    r"""The flat gradient with each parameter's chunk divided by its Frobenius norm,
    :math:`\nabla_{W_\ell}L/\|\nabla_{W_\ell}L\|_F` (a chunk with zero gradient stays 0)."""
    out = []
    for c in torch.split(g, list(sizes)):
        n = torch.linalg.norm(c)
        out.append(c / n if float(n) > 0.0 else torch.zeros_like(c))
    return torch.cat(out)


def normalized_flow(model: nn.Module, loss_fn: LossFn, times: Sequence[float] | np.ndarray, *, series: str = "normalized-flow",
                    **options) -> FlowResult:
    r"""The per-layer normalized gradient flow of Patel, Savostianov & Schaub (arXiv 2501.14440, Remark 6.1),

    .. math:: \frac{dW_\ell}{dt} = -\frac{\nabla_{W_\ell}\mathcal L(W(t))}{\|\nabla_{W_\ell}\mathcal L(W(t))\|_F},

    one "layer" per parameter tensor (a layer whose gradient vanishes stands still), so every moving layer has
    speed :math:`\|dW_\ell/dt\|_F = 1`. Same interface and records as :func:`gradient_flow` (``options`` are its
    keywords); the probes see the true gradients. The paper gives no rate for it. Near a minimum the
    direction turns discontinuously (the speed stays 1 while the gradient vanishes), so an adaptive solver
    shrinks its steps there: bound the solve with ``max_steps`` / ``max_wall_s``.
    """
    return gradient_flow(model, loss_fn, times, series=series, direction="layer-normalized", **options)


@dataclass
class DescentResult:
    """Outcome of :func:`descend`: the losses at every step (step k ↔ time kη) and a divergence, if any."""

    times: np.ndarray
    losses: np.ndarray
    recorder: Recorder
    diverged: DivergenceError | None = None
    extras: dict = field(default_factory=dict)


def descend(model: nn.Module, loss_fn: LossFn, steps: int, optimizer, *, recorder: Recorder | None = None,
            series: str = "gd", seed: int = 0, probes: Sequence[Probe] = (), task: Task = NULL_TASK,
            raise_on_divergence: bool = False, loss_every: int = 1) -> DescentResult:
    r"""``steps`` updates of ``optimizer`` (gnndyn's explicit-state ``gd``/``adam``) on ``loss_fn(model)``.

    Records ``loss`` at step k (every ``loss_every`` steps, and the last) with ``time`` = k·η (η the
    optimizer's learning rate — the time of the gradient flow that gradient descent discretizes) and the
    probes on their schedules (all at the last step), with ``extras={'time': kη, 'dynamics': name}``.
    A non-finite loss or gradient stops the run with :class:`DivergenceError` (returned in
    ``diverged`` unless ``raise_on_divergence``); what was recorded before stays.
    """
    if steps < 0:
        raise GnndynError(f"steps must be ≥ 0; got {steps}.")
    rec = recorder if recorder is not None else Recorder()
    params = list(model.parameters())
    eta = float(optimizer.lr)
    state = optimizer.init([p.detach() for p in params])
    ts, Ls = [], []
    for k in range(steps + 1):
        with torch.enable_grad():
            L = loss_fn(model)
            grads = torch.autograd.grad(L, params)
        value = float(L.detach())
        bad = None
        if not math.isfinite(value):
            bad = ("the loss", value)
        elif not all(bool(torch.isfinite(g).all()) for g in grads):
            bad = ("a gradient", math.nan)
        if bad is not None:
            err = DivergenceError(k, *bad)
            if raise_on_divergence:
                raise err
            return DescentResult(np.asarray(ts), np.asarray(Ls), rec, err)
        t = k * eta
        last = k == steps
        if last or k % loss_every == 0:
            rec.add(series, seed, k, "loss", value, time=t)
            ts.append(t)
            Ls.append(value)
        if probes:
            ctx = ProbeContext(step=k, model=model, loss=value, grads=[g.detach() for g in grads],
                               extras={"time": t, "dynamics": getattr(optimizer, "name", "gd")})
            out = _probe_values(probes, ctx, last)
            if out:
                rec.add_values(series, seed, k, out, time=t)
        if not last:
            new, state = optimizer.update([p.detach() for p in params], [g.detach() for g in grads], state)
            with torch.no_grad():
                for p, w in zip(params, new):
                    p.copy_(w)
            task.advance(1)
    return DescentResult(np.asarray(ts), np.asarray(Ls), rec)


def hessian_top_eigenvalue(model: nn.Module, loss_fn: LossFn, *, iters: int = 200, tol: float = 1e-10,
                           seed: int = 0) -> tuple[float, int]:
    r"""Sharpness :math:`\lambda_{\max}(\nabla^2 L(\theta))` at the model's parameters by power iteration on
    Hessian-vector products (double backward; the Hessian is never formed).

    Power iteration converges to the eigenvalue of largest modulus; if that one is negative, the
    iteration is repeated on :math:`\nabla^2 L + |\mu| I` to reach the largest algebraic eigenvalue.
    Gradient descent with step η is linearly unstable along the top eigen-direction when
    :math:`\eta > 2/\lambda_{\max}`. Returns (λ_max, iterations used).
    """
    params = [p for p in model.parameters()]
    with torch.enable_grad():
        L = loss_fn(model)
        grads = torch.autograd.grad(L, params, create_graph=True)
    gflat = torch.cat([g.reshape(-1) for g in grads])

    def hvp(v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(gflat, params, grad_outputs=v, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv]).detach()

    gen = torch.Generator().manual_seed(int(seed))

    def power(shift: float) -> tuple[float, int]:
        v = torch.randn(gflat.numel(), generator=gen, dtype=gflat.dtype)
        v /= torch.linalg.norm(v)
        mu = 0.0
        for it in range(1, iters + 1):
            w = hvp(v) + shift * v
            mu_new = float(v @ w)
            nw = float(torch.linalg.norm(w))
            if nw == 0.0:
                return 0.0 - shift, it
            v = w / nw
            if it > 1 and abs(mu_new - mu) <= tol * max(abs(mu_new), 1e-300):
                return mu_new - shift, it
            mu = mu_new
        return mu - shift, iters

    mu, it = power(0.0)
    if mu < 0:
        mu2, it2 = power(abs(mu))
        return mu2, it + it2
    return mu, it


__all__ = ["hessian_top_eigenvalue", "gradient_flow", "normalized_flow", "layer_normalized", "descend", "FlowResult", "DescentResult", "FlowSolverError", "ADAPTIVE", "FIXED"]
