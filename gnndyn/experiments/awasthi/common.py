"""Shared pieces of the Awasthi et al. experiments (paper 001, §5 and App. D): the graphs (one per degree
and seed, with the paper's n = 100 and degree 5 filled in where a generator needs them), the steps to
record, the series labels, the spec fields both experiments share, and the validation of degrees and
step sizes. Both experiments train on the exact population loss, with all configurations and seeds
stacked as one leading batch dimension (:mod:`gnndyn.experiments.awasthi`).
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
from pydantic import Field, ValidationError, field_validator

from gnndyn.data.registry import dataset_params
from gnndyn.errors import DivergenceError
from gnndyn.spec import ExperimentSpec, GraphSpec, Spec
from gnndyn.training.divergence import blown_up

DEGREE_KEYS = ("degree", "avg_degree")
PAPER_N, PAPER_DEGREE = 100, 5


def degree_key(graph_name: str) -> str | None:
    params = dataset_params(graph_name)
    return next((k for k in DEGREE_KEYS if k in params), None)


def record_steps(steps: int, points: int) -> set[int]:
    logs = np.unique(np.round(np.logspace(0, np.log10(steps + 1), points) - 1).astype(int))
    lin = np.linspace(0, steps, points // 2 + 1).round().astype(int)
    return {0, steps, *logs.tolist(), *lin.tolist()}


def graph_params(graph: GraphSpec) -> dict:
    """The graph's parameters, with the paper's values filled in where a generator needs one that was not
    given (after ``--set graph.name=...`` the section restarts empty): n = 100 and degree / average degree 5."""
    params = dict(graph.params)
    accepted = dataset_params(graph.name)
    if "n" in accepted and accepted["n"] is inspect.Parameter.empty and "n" not in params:
        params["n"] = PAPER_N
    key = degree_key(graph.name)
    if key is not None and not ({"degree", "avg_degree", "p"} & set(params)):
        params[key] = PAPER_DEGREE
    return params


def build_graphs(spec, values: list | None, seeds: list[int]):
    """One graph per (value, seed): the value of the graph's degree parameter (``degree`` or ``avg_degree``)."""
    key = degree_key(spec.graph.name) if values is not None else None
    out = {}
    for v in (values if values is not None else [None]):
        for s in seeds:
            params = graph_params(spec.graph)
            if key is not None:
                params.pop("p", None)
            if key is not None:
                params[key] = v
            out[(v, s)] = GraphSpec(name=spec.graph.name, lcc=spec.graph.lcc, **params).build(spec.data_root, seed=s)
    return key, out


def check_degrees(graph: GraphSpec, degrees: list | None) -> None:
    if degrees is None:
        return
    if degree_key(graph.name) is None:
        raise ValueError(f"graph {graph.name!r} has no degree parameter ({' or '.join(DEGREE_KEYS)}) to sweep; "
                         f"set degrees=null to run it as given")
    if not degrees:
        raise ValueError("degrees must be a non-empty list (or null)")
    key = degree_key(graph.name)
    for i, v in enumerate(degrees):  # each swept graph passes the generator's own checks (degree < n...)
        params = {k: p for k, p in graph_params(graph).items() if k != "p"}
        params[key] = v
        try:
            GraphSpec(name=graph.name, lcc=graph.lcc, **params)
        except ValidationError as exc:
            msg = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            raise ValueError(f"degrees[{i}] = {v:g}: {msg}") from None


def check_lrs(lrs: list[float], k: int, what: str) -> None:
    if len(lrs) not in (1, k):
        raise ValueError(f"train.lrs needs one step size per {what} ({k}) or a single one for all; got {len(lrs)}")


def series_label(key: str | None, v) -> str:
    return "d=" + (f"{v:g}" if isinstance(v, float) else str(v)) if key else "graph"


def seed_list(spec) -> list[int]:
    """The seeds of a run: ``seeds`` of them from ``seed`` on (both experiments batch them)."""
    return list(range(spec.seed, spec.seed + spec.seeds))


class PopulationGDSpec(Spec):
    """Population gradient descent, shared by both experiments: steps, one step size per configuration (or a
    single one for all), and how many steps to record. Each experiment sets its own defaults."""

    steps: int = Field(1, ge=1)
    lrs: list[float] = [1.0]
    record_points: int = Field(150, ge=4)


    @field_validator("lrs")
    @classmethod
    def _pos(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("is empty; give at least one step size, e.g. train.lrs=[1.0]")
        if any(not x > 0 for x in v):
            raise ValueError(f"every step size must be > 0; got {v}")
        return v


class AwasthiSpec(ExperimentSpec):
    """Fields both Awasthi experiments share: the graph (random 5-regular, n = 100 by default), r, and the
    number of seeds."""

    graph: GraphSpec = GraphSpec(name="random-regular", n=100, degree=5)
    r: int = Field(10, ge=1)
    seeds: int = Field(1, ge=1, description="number of seeds, from `seed` on")



def check_blowup(t: int, loss: torch.Tensor, loss0: torch.Tensor, what) -> None:
    """Stop population gradient descent when a configuration's loss exceeds the run's divergence_factor × its
    initial value (:mod:`gnndyn.training.divergence`), as every training loop of gnndyn does."""
    for b in range(loss.shape[0]):
        why = blown_up(float(loss[b]), float(loss0[b]))
        if why is not None:
            raise DivergenceError(t, what(b), float(loss[b]), f"{what(b)}: {why}")


__all__ = [
    "DEGREE_KEYS", "PAPER_N", "PAPER_DEGREE", "degree_key", "record_steps", "graph_params", "build_graphs",
    "check_blowup", "check_degrees", "check_lrs", "series_label", "seed_list", "PopulationGDSpec", "AwasthiSpec",
]
