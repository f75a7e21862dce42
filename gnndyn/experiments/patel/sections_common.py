r"""Shared pieces of the §4–§5 and open-question experiments of Patel, Savostianov & Schaub (arXiv 2501.14440):
the synthetic problem of §6.1.2 and the recording of measured paths into the metrics table.

Data (§6.1.2): a graph G(n, p) (or any registered generator), features :math:`X_{ij}\sim N(0,1)`, targets
:math:`y_i = \sum_k x_{ik} + 0.1\sum_{j\sim i}\sum_k x_{jk}` (d_y = 1); for d_y > 1 the features are split into d_y
consecutive groups :math:`G_c` and :math:`y_{ci} = \sum_{k\in G_c}x_{ik} + 0.1\sum_{j\sim i}\sum_{k\in G_c}x_{jk}` (the
paper's rule per group; d_y = 1 is the paper's). The labelled set I is n̄ = round(0.75 n) nodes drawn at random
(seeded), :math:`Z = (XS^H)_{*I}` (nodes as columns) by sparse products.

Metrics of a path (series name, seed, step = index along the path, time = t or kη):
``loss`` (𝓛), ``relative_loss`` ((𝓛 − L̃_H)/(𝓛(0) − L̃_H)), and at the weight snapshots ``balance`` (relative
balancedness residual), ``imbalance_drift`` (max_ℓ‖D_ℓ(t) − D_ℓ(0)‖_F/max_ℓ‖W_ℓ(0)‖²_F) and ``energy``
(Σ‖W_ℓ‖²_F).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator

from gnndyn.data.registry import load_graph
from gnndyn.errors import GnndynError
from gnndyn.experiments.base import with_torch_threads
from gnndyn.experiments.patel import checks
from gnndyn.models.linear_gnn import make_xu_data
from gnndyn.models.patel import propagated
from gnndyn.operators.builders import OPERATORS, build_operator
from gnndyn.spec import ExperimentSpec
from gnndyn.store.metrics import Recorder
from gnndyn.theory import patel as thy
from gnndyn.theory.patel.energy import imbalance_drift

Seeds = Annotated[int, Field(ge=1, description="number of seeds, from `seed` on")]
Threads = Annotated[int, Field(ge=1, description="torch intra-op threads (1 is fastest on a shared 2-core machine)")]


#: the graphs of the §4–§5 problem: built from n (and p for G(n, p)) with d_x feature columns
THEORY_GRAPHS = ("erdos-renyi", "csbm")


class PatelTheorySpec(ExperimentSpec):
    """Fields shared by the §4–§5 experiments: the synthetic problem of §6.1.2 (defaults smaller than the paper's
    G(200, p), d_x = 50, d_1 = d_2 = 32 where it matters; ``--set`` reaches them)."""

    n: int = Field(60, ge=4)
    p: float = Field(0.1, gt=0, le=1)
    graph: str = "erdos-renyi"
    operator: str = "adj"
    d_x: int = Field(50, ge=1)
    d_y: int = Field(1, ge=1)
    widths: list[int] = Field(default_factory=lambda: [32, 32])
    labelled: float = Field(0.75, gt=0, le=1, description="n̄/n")
    seeds: Seeds = 1
    threads: Threads = 1

    #: names checked when the spec is built: the graphs that take (n, feature_dim) and every gnndyn operator
    name_fields = {"graph": ("graph", THEORY_GRAPHS), "operator": ("operator", tuple(OPERATORS))}

    def canonical(self) -> "PatelTheorySpec":
        """This spec with ``graph`` and ``operator`` in their registered spelling (``Erdos_Renyi`` → ``erdos-renyi``);
        the spec keeps them as given, the run compares by this copy."""
        return checks.canonical_copy(self, type(self).name_fields, {})

    @model_validator(mode="after")
    def _problem(self) -> "PatelTheorySpec":
        """The §6.1.2 problem can be built: H ≥ 1 hidden widths, each ≥ 1; 1 ≤ d_y ≤ d_x (one feature group per
        target); a non-empty labelled set; p only where the graph takes it."""
        hidden_widths(self, "widths")
        target_dim(self, "d_y", self.d_y)
        checks.labelled_count("labelled", self.labelled, self.n)
        if self.canonical().graph != "erdos-renyi":
            checks.unused(self, ["p"], f"by graph = {self.graph!r} (p is the edge probability of erdos-renyi); set "
                                       f"graph=erdos-renyi to use it")
        return self


def hidden_widths(spec: ExperimentSpec, field: str) -> None:
    """``spec.<field>`` is a non-empty list of hidden widths d_1..d_H, each ≥ 1 (the linear GNN has H ≥ 1 layers)."""
    w = getattr(spec, field)
    if not w:
        raise ValueError(f"{field} is empty; the linear GNN needs H = len({field}) ≥ 1 hidden widths d_1..d_H "
                         f"(e.g. --set '{field}=[32,32]')")
    for i, d in enumerate(w):
        if d < 1:
            raise ValueError(f"{field}[{i}] = {d}: every hidden width d_ℓ must be ≥ 1 (got {field} = {list(w)})")


def target_dim(spec: "PatelTheorySpec", field: str, d_y: int) -> None:
    """1 ≤ d_y ≤ d_x: the targets are d_y groups of the d_x feature columns (:func:`grouped_targets`)."""
    if d_y > spec.d_x:
        raise ValueError(f"{field} = {d_y} must be at most d_x = {spec.d_x}: the §6.1.2 targets are built from d_y "
                         f"groups of the d_x feature columns, one group per target; lower {field} or raise d_x")


def grouped_targets(x: np.ndarray, adjacency, d_y: int) -> np.ndarray:
    r""":math:`Y \in \mathbb R^{d_y\times n}` (nodes as columns): per feature group :math:`G_c`,
    :math:`y_{ci} = \sum_{k\in G_c}x_{ik} + 0.1\sum_{j\sim i}\sum_{k\in G_c}x_{jk}` (§6.1.2 for d_y = 1)."""
    d_x = x.shape[1]
    if not 1 <= d_y <= d_x:
        raise GnndynError(f"d_y must be between 1 and d_x = {d_x} (one feature group per target); got {d_y}.")
    groups = np.array_split(np.arange(d_x), d_y)
    f = np.stack([x[:, g].sum(1) for g in groups], axis=1)  # n × d_y
    return (f + 0.1 * (adjacency @ f)).T


@dataclass
class Synthetic:
    """The problem and what built it."""

    problem: thy.Problem
    nodes: np.ndarray
    graph_summary: dict


def synthetic_problem(spec: PatelTheorySpec, seed: int, *, widths: list[int] | None = None, d_y: int | None = None,
                      depth: int | None = None) -> Synthetic:
    """The §6.1.2 problem of ``spec`` for one seed (graph, features, labelled set and targets all seeded)."""
    spec = spec.canonical()  # ``graph == "erdos-renyi"`` decides whether p is passed
    widths = list(spec.widths if widths is None else widths)
    d_y = spec.d_y if d_y is None else int(d_y)
    H = len(widths) if depth is None else depth
    params = {"n": spec.n, "p": spec.p} if spec.graph == "erdos-renyi" else {"n": spec.n}
    g = load_graph(spec.graph, feature_dim=spec.d_x, seed=seed, **params)
    if g.x is None:
        raise GnndynError(f"graph {spec.graph!r} gave no features; it must accept feature_dim.")
    op = build_operator(spec.operator, g)
    nbar = round(spec.labelled * spec.n)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    nodes = np.sort(rng.choice(spec.n, size=nbar, replace=False))
    x = g.x.detach().cpu().numpy().astype(np.float64)
    Y = grouped_targets(x, g.adjacency(), d_y)[:, nodes]
    data = make_xu_data(torch.from_numpy(x), op, nodes)
    Z = propagated(data, H)
    return Synthetic(thy.make_problem(Z, Y, widths), nodes, {**g.summary(), "operator": spec.operator, "nbar": nbar})


def record_path(rec: Recorder, series: str, seed: int, problem: thy.Problem, path: thy.Path, *,
                weights: bool = True) -> None:
    """``loss`` and ``relative_loss`` at every point; ``balance``, ``imbalance_drift``, ``energy`` at the snapshots."""
    rel = thy.relative_losses(problem, path)
    for k, (t, L, r) in enumerate(zip(path.times, path.losses, rel)):
        rec.add(series, seed, k, "loss", float(L), time=float(t))
        rec.add(series, seed, k, "relative_loss", float(r), time=float(t))
    if weights:
        bal = thy.balance_series(path)
        drift = imbalance_drift(path)
        idx = np.searchsorted(path.times, path.weight_times)
        for j, (t, b, d, w) in enumerate(zip(path.weight_times, bal, drift, path.weights)):
            step = int(idx[j]) if path.rule != "gd" else round(t / path.eta)
            rec.add(series, seed, step, "balance", float(b), time=float(t))
            rec.add(series, seed, step, "imbalance_drift", float(d), time=float(t))
            rec.add(series, seed, step, "energy", thy.weight_energy(w), time=float(t))


def curve(df: pd.DataFrame, series: str, quantity: str, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(time, value) of one recorded quantity (first seed unless given), ordered by step."""
    d = df[(df["series"] == series) & (df["quantity"] == quantity)]
    if seed is None and not d.empty:
        seed = int(d["seed"].min())
    d = d[d["seed"] == seed].sort_values("step")
    return d["time"].to_numpy(), d["value"].to_numpy()


def positive(v: np.ndarray, floor: float = 1e-300) -> np.ndarray:
    """Values for a log axis (non-positive ones at ``floor``)."""
    v = np.asarray(v, dtype=float)
    return np.where(v > floor, v, floor)


def finite(x: float) -> float | None:
    """A float for JSON summaries (None for inf/nan)."""
    return float(x) if x is not None and math.isfinite(float(x)) else None


__all__ = ["PatelTheorySpec", "Seeds", "Synthetic", "Threads", "curve", "finite", "grouped_targets", "hidden_widths",
           "positive", "record_path", "synthetic_problem", "target_dim", "with_torch_threads"]
