r"""A measured training path — times, losses and weight snapshots — under the three rules of the paper:
gradient flow (3.1), the per-layer normalized flow (Remark 6.1) and gradient descent (5.1) at t = kη.

The model is Xu et al.'s linear GNN with Patel et al.'s loss (:mod:`gnndyn.models.patel`) trained on Z
(``data`` from a graph, or :func:`gnndyn.models.patel.z_data` for a bare Z); the weights are snapshotted by a
probe at every recorded point, so every check of this package can re-evaluate gradients, balancedness,
distances and energies along the path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from gnndyn.errors import GnndynError, resolve
from gnndyn.models.linear_gnn import XuData
from gnndyn.models.patel import layer_arrays, patel_gnn, patel_objective, z_data
from gnndyn.probes.base import Probe
from gnndyn.probes.schedules import every
from gnndyn.theory.patel.problem import Problem, Weights
from gnndyn.training.flow import descend, gradient_flow, normalized_flow
from gnndyn.training.optimizers import GradientDescent

RULES = ("flow", "normalized-flow", "gd")


@dataclass
class Path:
    r"""One run: ``losses[i]`` = :math:`\mathcal L` at ``times[i]``; ``weights[j]`` = :math:`[W_1..W_{H+1}]` at
    ``weight_times[j]`` (every point for the flows, every ``snapshot_every``-th step for gradient descent).

    Attributes:
        rule: ``flow``, ``normalized-flow`` or ``gd``.
        eta: the step of gradient descent (None for the flows); ``times`` = kη then.
        solver: the solver's counts and tolerances for the flows; ``error`` a solver failure or divergence (str).
    """

    rule: str
    times: np.ndarray
    losses: np.ndarray
    weight_times: np.ndarray
    weights: list[list[np.ndarray]]
    eta: float | None = None
    solver: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def start(self) -> list[np.ndarray]:
        return self.weights[0]

    @property
    def end(self) -> list[np.ndarray]:
        return self.weights[-1]


def run_path(problem: Problem, Ws0: Weights, *, rule: str = "flow", times: Sequence[float] | np.ndarray | None = None,
             steps: int | None = None, eta: float | None = None, snapshot_every: int = 1, data: XuData | None = None,
             allow_increasing: bool = False, **solver) -> Path:
    r"""Train from ``Ws0`` and record the path.

    Args:
        problem: Z, Y and widths (:func:`~gnndyn.theory.patel.problem.make_problem`).
        Ws0: the start :math:`W(0)` (:mod:`gnndyn.models.patel_init`).
        rule: ``flow`` (eq. (3.1)), ``normalized-flow`` (Remark 6.1) or ``gd`` (eq. (5.1)).
        times: the time grid of the flows (times[0] the start).
        steps, eta: the number of steps and the step of gradient descent.
        snapshot_every: weights every this many steps of gradient descent (and the last).
        data: train on a graph's data (the same Z) instead of :func:`z_data` of ``problem.Z``.
        solver: keywords of :func:`gnndyn.training.flow.gradient_flow` (``rtol``, ``atol``, ``method``, ``max_steps``...).
            The normalized flow defaults to ``rk4`` with a tenth of the smallest grid interval: its field keeps unit
            speed while the gradient vanishes, so it chatters near the minimum (at a level set by the step) and an
            adaptive solver stalls there.
    """
    rule = resolve("rule", rule, {r: r for r in RULES})
    d = problem.widths.dims
    model = patel_gnn(d[0], list(d[1:-1]), d[-1], weights=Ws0,
                      allow_increasing=allow_increasing or problem.widths.bottleneck or not problem.widths.non_increasing)
    data = z_data(problem.Z) if data is None else data
    obj = patel_objective(problem.Y)
    snaps: list[tuple[float, list[np.ndarray]]] = []

    def snap(ctx):
        snaps.append((float(ctx.extras["time"]), layer_arrays(ctx.model)))
        return {}

    def loss_fn(mdl):
        return obj(mdl(data))

    if rule in ("flow", "normalized-flow"):
        if times is None:
            raise GnndynError(f"rule {rule!r} needs a time grid (times=...).")
        fn = gradient_flow if rule == "flow" else normalized_flow
        if rule == "normalized-flow" and "method" not in solver:
            # the normalized field has unit speed while the gradient vanishes: it chatters at the minimum, where an
            # adaptive solver stalls (measured: dopri5 spends its budget there); a fixed step bounds the cost
            solver["method"] = "rk4"
            solver.setdefault("step_size", float(np.min(np.diff(np.asarray(times, dtype=np.float64)))) / 10.0)
        solver.setdefault("raise_on_failure", False)
        res = fn(model, loss_fn, times, probes=[Probe("patel-path", snap, every())], **solver)
        info = {"steps": res.steps, "rejected": res.rejected, "nfe": res.nfe, "wall_s": res.wall_s,
                **{k: solver[k] for k in ("rtol", "atol", "method") if k in solver}}
        return Path(rule, np.asarray(res.times), np.asarray(res.losses), np.array([t for t, _ in snaps]),
                    [w for _, w in snaps], None, info, None if res.error is None else str(res.error))
    if steps is None or eta is None:
        raise GnndynError("rule 'gd' needs steps=... and eta=....")
    if snapshot_every < 1:
        raise GnndynError(f"snapshot_every must be ≥ 1; got {snapshot_every}.")
    res = descend(model, loss_fn, int(steps), GradientDescent(float(eta)),
                  probes=[Probe("patel-path", snap, every(int(snapshot_every)))])
    return Path("gd", np.asarray(res.times), np.asarray(res.losses), np.array([t for t, _ in snaps]),
                [w for _, w in snaps], float(eta), {}, None if res.diverged is None else str(res.diverged))


__all__ = ["Path", "RULES", "run_path"]
