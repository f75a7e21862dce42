"""Shared pieces of the Xu et al. (ICML 2021) experiments: graphs, labelled nodes, probes, and the
post-processing that turns a recorded run into the theorems' verdicts.

Every series of these experiments is named ``<dataset>-<operator>-H<depth>[-<extra>]-<dynamics>`` and
records, besides ``loss`` (squared loss of Thm 1–2, or cross-entropy), on the λ schedule:
``lambda`` (per layer l = 0..H: λ_min((B̄^(1:l))ᵀB̄^(1:l)); λ^(0) = 1) and ``lambda_resolution``.
Checks add ``bound_thm1`` (the right-hand side of eq. (8)) and ``gap`` (L − L*), and, when asked,
``pythagoras_lhs`` / ``pythagoras_rhs`` (the blog's identity) and ``thm3_F`` / ``thm3_J``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from gnndyn.data.graph import Graph
from gnndyn.data.registry import DATASETS, dataset_params, load_graph
from gnndyn.errors import GnndynError, resolve
from gnndyn.experiments.base import torch_threads, with_torch_threads  # noqa: F401  (re-exported)
from gnndyn.experiments.xu.spec import (  # noqa: E402,F401  (the specs' base, re-exported)
    PLANETOID_NODES,
    XU_DATASETS,
    Seeds,
    Threads,
    XuSpec,
    has_public_split,
    known_num_nodes,
)
from gnndyn.models.linear_gnn import (
    XuData,
    XuGNN,
    XuObjective,
    make_xu_data,
    random_labels,
)
from gnndyn.operators.builders import OPERATORS, build_operator
from gnndyn.probes.base import Probe, ProbeContext
from gnndyn.probes.schedules import Schedule, every
from gnndyn.store.metrics import Recorder
from gnndyn.theory import xu as thy

# ------------------------------------------------------------------------------------------------ data


def load_xu_graph(name: str, data_root: str | None, *, normalize_features: bool = False, seed: int = 0) -> Graph:
    """A registered dataset with its default parameters (Cora and CiteSeer from the Planetoid root).

    ``normalize_features`` divides each feature row by its sum (rows of zeros are kept), the usual
    Planetoid preprocessing; Xu et al. do not say whether they normalize (off by default).
    """
    resolve("dataset", name, DATASETS)
    params: dict[str, Any] = {}

    accepted = dataset_params(name)
    if "data_root" in accepted:
        params["data_root"] = data_root
    if "seed" in accepted:
        params["seed"] = seed
    g = load_graph(name, **params)
    if g.x is None or g.y is None or g.y.dim() != 1:
        raise GnndynError(f"dataset {name!r} needs node features and class labels for Xu et al.'s experiments.")
    if normalize_features:
        s = g.x.sum(1, keepdim=True)
        g = g.with_(x=torch.where(s != 0, g.x / torch.where(s == 0, torch.ones_like(s), s), g.x))
    return g


def labelled_nodes(g: Graph, nodes: str, seed: int) -> torch.Tensor:
    """The training node set I: ``train`` (the dataset's public training split), ``all``, or an integer
    k (as a string) for k nodes drawn at random (seeded)."""
    if nodes == "train":
        if g.train_mask is None:
            raise GnndynError(f"graph {g.name!r} has no training split; use nodes='all' or nodes='<k>'.")
        return torch.nonzero(g.train_mask).squeeze(1)
    if nodes == "all":
        return torch.arange(g.num_nodes)
    try:
        k = int(nodes)
    except ValueError:
        raise GnndynError(f"nodes must be 'train', 'all' or an integer count; got {nodes!r}.") from None
    if not 1 <= k <= g.num_nodes:
        raise GnndynError(f"nodes={k} must be between 1 and the number of nodes ({g.num_nodes}).")
    gen = torch.Generator().manual_seed(int(seed))
    return torch.sort(torch.randperm(g.num_nodes, generator=gen)[:k]).values


@dataclass
class Problem:
    """A graph, operator, labelled nodes and labels ready for Xu et al.'s models."""

    graph: Graph
    data: XuData
    labels: torch.Tensor
    num_classes: int
    dataset: str
    operator: str

    def objective(self, loss: str) -> XuObjective:
        return XuObjective(loss, self.labels, self.num_classes)


_CACHE: dict[tuple, Problem] = {}


def make_problem(dataset: str, operator: str, nodes: str, data_root: str | None, *, seed: int = 0,
                 labels: str = "signal", normalize_features: bool = False) -> Problem:
    """Build (and cache within the process) the problem; ``labels='random'`` draws a class uniformly at
    random for each labelled node (Xu et al. §4.3)."""
    resolve("operator", operator, OPERATORS)
    key = (dataset, operator, nodes, data_root, seed, labels, normalize_features)
    if key in _CACHE:
        return _CACHE[key]
    g = load_xu_graph(dataset, data_root, normalize_features=normalize_features, seed=seed)
    op = build_operator(operator, g)
    I = labelled_nodes(g, nodes, seed)
    data = make_xu_data(g.x, op, I)
    C = g.num_classes
    y = g.y[data.nodes]
    if labels == "random":
        y = random_labels(y.numel(), C, seed + 7919)
    elif labels != "signal":
        raise GnndynError(f"labels must be 'signal' or 'random'; got {labels!r}.")
    p = Problem(g, data, y, C, dataset, operator)
    if len(_CACHE) > 16:
        _CACHE.clear()
    _CACHE[key] = p
    return p


def problem_from_graph(g: Graph, op, nodes: str, *, seed: int = 0, labels: str = "signal") -> Problem:
    """A :class:`Problem` from an already built graph and operator (any gnndyn dataset or generator)."""
    if g.x is None or g.y is None or g.y.dim() != 1:
        raise GnndynError(f"graph {g.name!r} needs node features and class labels for Xu et al.'s models.")
    data = make_xu_data(g.x, op, labelled_nodes(g, nodes, seed))
    y = g.y[data.nodes]
    if labels == "random":
        y = random_labels(y.numel(), g.num_classes, seed + 7919)
    elif labels != "signal":
        raise GnndynError(f"labels must be 'signal' or 'random'; got {labels!r}.")
    return Problem(g, data, y, g.num_classes, g.name, op.name)


# ------------------------------------------------------------------------------------------------ probes
def lambda_probe(schedule: Schedule | None = None) -> Probe:
    """``lambda`` (per layer l = 0..H) and ``lambda_resolution`` (see :func:`gnndyn.theory.xu.layer_lambdas`)."""

    def fn(ctx: ProbeContext) -> dict:
        lam, res = thy.layer_lambdas(ctx.model)
        return {"lambda": lam, "lambda_resolution": res}

    return Probe("lambda", fn, schedule or every())


def blog_probe(problem: Problem, objective: XuObjective, opt: thy.Optimum, schedule: Schedule | None = None) -> Probe:
    """``pythagoras_lhs`` = ‖P vec(Ŷ − Y)‖² and ``pythagoras_rhs`` = L − L* (blog, Step 2)."""
    Y = objective.target()

    def fn(ctx: ProbeContext) -> dict:
        with torch.no_grad():
            pred = ctx.model(problem.data)
        lhs, rhs = thy.pythagoras(pred, Y, opt)
        return {"pythagoras_lhs": lhs, "pythagoras_rhs": rhs}

    return Probe("blog", fn, schedule or every())


def thm3_probe(problem: Problem, objective: XuObjective, schedule: Schedule | None = None) -> Probe:
    """Thm 3's terms: ``thm3_F`` (per read-out), ``thm3_J`` (per layer i = 1..H), their sums
    ``thm3_F_sum`` / ``thm3_J_sum``, ``grad_sq`` (‖∇L‖², autograd) and ``thm3_rel_err``."""

    def fn(ctx: ProbeContext) -> dict:
        t = thy.thm3_terms(ctx.model, problem.data, objective)
        return {"thm3_F": t.F, "thm3_J": t.J or [0.0], "thm3_F_sum": sum(t.F), "thm3_J_sum": sum(t.J),
                "grad_sq": t.grad_sq, "thm3_rel_err": t.rel_err}

    return Probe("thm3", fn, schedule or every())


# ------------------------------------------------------------------------------------------------ reading runs
def series_values(df: pd.DataFrame, series: str, quantity: str, seed: int | None = None, layer: int = -1) -> pd.DataFrame:
    d = df[(df["series"] == series) & (df["quantity"] == quantity) & (df["layer"] == layer)]
    if seed is not None:
        d = d[d["seed"] == seed]
    return d.sort_values("step")


def lambda_matrix(df: pd.DataFrame, series: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, λ matrix (points × (H+1)), resolution per layer) of one recorded series.

    The resolution of layer l is the one recorded at the time of that layer's smallest λ (the value
    λ_T is decided by), so a λ_T counts as positive when it is above its own resolution."""
    d = df[(df["series"] == series) & (df["quantity"] == "lambda") & (df["seed"] == seed)]
    if d.empty:
        raise GnndynError(f"series {series!r} recorded no 'lambda'; add lambda_probe() to its probes.")
    pv = d.pivot_table(index="time", columns="layer", values="value", aggfunc="first").sort_index()
    r = df[(df["series"] == series) & (df["quantity"] == "lambda_resolution") & (df["seed"] == seed)]
    lam = pv.to_numpy()
    if r.empty:
        return pv.index.to_numpy(), lam, np.zeros(lam.shape[1])
    rv = r.pivot_table(index="time", columns="layer", values="value", aggfunc="first").reindex(
        index=pv.index, columns=pv.columns).fillna(0.0).to_numpy()
    at = np.argmin(lam, axis=0)
    return pv.index.to_numpy(), lam, rv[at, np.arange(lam.shape[1])]


def loss_curve(df: pd.DataFrame, series: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = series_values(df, series, "loss", seed)
    return d["step"].to_numpy(), d["time"].to_numpy(), d["value"].to_numpy()


def steps_to_level(losses: Sequence[float], level: float) -> float:
    """First step index at which the loss is ≤ ``level`` (inf if never)."""
    arr = np.asarray(losses, float)
    hit = np.flatnonzero(arr <= level)
    return float(hit[0]) if hit.size else math.inf


# ------------------------------------------------------------------------------------------------ checks of a run
@dataclass
class LinearRunChecks:
    """Verdicts and curves of one recorded run of a linear model trained with the squared loss."""

    verdicts: list = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)


def check_linear_run(rec: Recorder, df: pd.DataFrame, series: str, seed: int, problem: Problem, model: XuGNN,
                     opt: thy.Optimum, dynamics: str, *, lam_resolution: float | None = None,
                     blog: bool = True) -> LinearRunChecks:
    """Thm 1 (Def. 1 model) or Thm 2 (i)–(iii) (Def. 2 model) along one recorded run, the σ_small
    variant, and the blog's identity / App. A.1.3's inequality; records ``bound_*`` and ``gap``."""
    out = LinearRunChecks()
    steps, times, losses = loss_curve(df, series, seed)
    lam_t, lam, res = lambda_matrix(df, series, seed)
    res = res if lam_resolution is None else lam_resolution
    H = model.depth
    if not model.multiscale:
        v, b = thy.check_thm1(times, losses, opt, lam_t, lam, dynamics=dynamics, label=series, lam_resolution=res)
        vs, _ = thy.check_thm1(times, losses, opt, lam_t, lam, dynamics=dynamics, label=series, lam_resolution=res, small=True)
        out.verdicts += [v, vs]
        for k, t, bb, L in zip(steps, times, b, losses):
            rec.add(series, seed, int(k), "bound_thm1", float(bb), time=float(t))
            rec.add(series, seed, int(k), "gap", float(L - opt.value), time=float(t))
        main = v
    else:
        res2 = thy.check_thm2(times, losses, problem.data.blocks(H), problem.objective("squared").target(), model.widths,
                              lam_t, lam, dynamics=dynamics, label=series, opt_multi=opt, lam_resolution=res)
        v, b = res2["i"]
        out.verdicts.append(v)
        out.verdicts.append(thy.aggregate([x[1] for x in res2["ii"]], label="H'"))
        if res2["iii"]:
            out.verdicts.append(thy.aggregate([x[1] for x in res2["iii"]], label="monotone run"))
        for k, t, bb, L in zip(steps, times, b, losses):
            rec.add(series, seed, int(k), "bound_thm2i", float(bb), time=float(t))
            rec.add(series, seed, int(k), "gap", float(L - opt.value), time=float(t))
        main = v
    if blog:
        d = df[(df["series"] == series) & (df["seed"] == seed)]
        lhs = d[d["quantity"] == "pythagoras_lhs"].sort_values("step")
        rhs = d[d["quantity"] == "pythagoras_rhs"].sort_values("step")
        if not lhs.empty:
            pts = [(f"step {int(s)} of {series}", float(a), float(b_), float(b_) + 2.0 * opt.projected) for s, a, b_ in
                   zip(lhs["step"], lhs["value"], rhs["value"])]  # scale L + L* (rhs = L − L*)
            out.verdicts.append(thy.check_pythagoras(pts))
        v1, v2 = thy.check_original_inequality(losses, opt.projected, label=series)
        out.verdicts += [v1, v2]
    d = main.details
    out.rows.append({
        "series": series, "seed": seed, "dynamics": dynamics, "depth": H, "multiscale": model.multiscale,
        "L0": d["L0"], "L_T": d["L_T"], "L_star": d["L_star"], "T": d["T"], "holds": main.holds,
        "applicable": main.applicable, "margin": main.margin, "violations": d["violations"], "points": d["points"],
        "first_violation_time": d["first_violation_time"], "lambda_T_end": d["lambda_T_end"][0],
        "sigma2": d["sigma2"][0], "guaranteed_rate": d["guaranteed_rate_end"], "measured_rate": d["measured_rate"],
        "rate_ratio": d["rate_ratio_measured_over_guaranteed"],
    })
    return out


def copy_rows(src: pd.DataFrame, rec: Recorder, keep_steps: set[int] | None = None) -> None:
    """Copy recorded rows (optionally only some steps) into another recorder."""
    d = src if keep_steps is None else src[src["step"].isin(keep_steps)]
    for r in d.itertuples(index=False):
        rec.add(r.series, r.seed, r.step, r.quantity, r.value, layer=r.layer, time=r.time)


def fmt_series(dataset: str, operator: str, depth: int, dynamics: str, extra: str = "") -> str:
    return f"{dataset}-{operator}-H{depth}{('-' + extra) if extra else ''}-{dynamics}"


__all__ = ["Seeds", "Threads", "XuSpec", "with_torch_threads", "torch_threads", "load_xu_graph", "labelled_nodes", "Problem", "make_problem", "problem_from_graph", "lambda_probe", "blog_probe", "thm3_probe",
           "series_values", "lambda_matrix", "loss_curve", "steps_to_level", "check_linear_run", "LinearRunChecks",
           "copy_rows", "fmt_series"]
