r"""Shared pieces of the gradient-flow experiments of Patel, Savostianov & Schaub (arXiv 2501.14440, §6):
the synthetic graphs and targets of §6.1, the problem :math:`Z = (XS^H)_{*I}`, the flows on Z (the theory
package's fast paths), and the checks of §3 run along each path.

* Graphs (§6.1): G(n, p) (``erdos-renyi``, parameter p), :math:`K_k(n)` (``knn-ring``, parameter k), the two-block
  SBM(n₁, n₂, p, q) (``sbm``, parameter q; blocks in the ratio 66 : 134 and p = ``sbm_p``), BA(n, m)
  (``barabasi-albert``, parameter m). Features :math:`X_{ij}\sim N(0,1)`, targets (§6.1)
  :math:`y_i = \sum_j x_{ij} + \varepsilon\sum_{j\sim i}\sum_k x_{jk}`, ε = 0.1, d_y = 1.
* Labelled nodes: n̄ drawn uniformly without replacement (the paper: n̄ = 0.75n).
* Flows on Z (notes §9: the linear GNN is a deep linear network on Z): :func:`solve` (from
  :mod:`gnndyn.theory.patel.fast_paths`) integrates the gradient flow (3.1) with SciPy's adaptive RK45 and
  closed-form gradients, and the per-layer normalized flow of Remark 6.1; it returns a
  :class:`gnndyn.theory.patel.Path`, so every check of :mod:`gnndyn.theory.patel` applies.
* A flow stops when the relative loss :math:`(\mathcal L - \tilde L_H)/(\mathcal L(0) - \tilde L_H)` reaches
  ``stop_level`` or at the horizon ``horizon_units / (βσ²_small/m)`` (in units of Thm 3.1's time constant: at the
  horizon the bound itself is :math:`e^{-\text{horizon\_units}}`), or at ``max_steps``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from gnndyn.data import generators
from gnndyn.data.climate import MEASURES
from gnndyn.data.generators import barabasi_albert, erdos_renyi, knn_ring, sbm
from gnndyn.data.graph import Graph
from gnndyn.errors import GnndynError, resolve
from gnndyn.experiments.base import with_torch_threads  # re-exported
from gnndyn.experiments.patel import checks
from gnndyn.models.linear_gnn import make_xu_data
from gnndyn.models.patel import propagated
from gnndyn.models.patel_init import zero_first_layer
from gnndyn.operators.builders import build_operator
from gnndyn.spec import ExperimentSpec
from gnndyn.store.metrics import Recorder
from gnndyn.theory import patel as thy
from gnndyn.theory.patel.fast_paths import FLOW_RULES, solve  # solve: re-exported
from gnndyn.theory.verdict import Verdict

PAPER = thy.PAPER
FAMILIES = ("erdos-renyi", "knn-ring", "sbm", "barabasi-albert")
#: the paper's five shift operators (§6.1.1) and their labels in its figures
OPERATORS = ("adj", "sl-adj", "nor-sl-adj", "lap", "nor-lap")
#: the training rules: gradient flow (3.1) and Remark 6.1's per-layer normalized flow
RULES = FLOW_RULES
LABELS = {"adj": "Adj", "sl-adj": "S-L Adj", "nor-sl-adj": "Nor. S-L Adj", "lap": "L", "nor-lap": "Nor. L"}
COLORS = {"adj": "#1f77b4", "sl-adj": "#ff7f0e", "nor-sl-adj": "#2ca02c", "lap": "#d62728", "nor-lap": "#9467bd"}
SBM_FRACTION = 66 / 200  # SBM(66, 134, p, q): the first block's share of the nodes

#: σ_small((XS^H)_{*I}) read from the bars of Figs. 3–7 (notes §7), per figure, parameter and operator
PAPER_SIGMA: dict[str, dict[float, dict[str, float]]] = {
    "fig3": {0.03: {"adj": 9.3, "lap": 68.13, "nor-lap": 6.99}, 0.05: {"adj": 17.98, "lap": 211.48, "nor-lap": 6.33},
             0.1: {"adj": 31.39, "lap": 831.88, "nor-lap": 6.11}, 0.2: {"adj": 63.63, "lap": 3024.54, "nor-lap": 5.56}},
    "fig4": {0.02: {"adj": 28.07, "lap": 312.61, "nor-lap": 9.62}, 0.05: {"adj": 75.9, "lap": 2044.55, "nor-lap": 9.97},
             0.1: {"adj": 140.7, "lap": 7369.45, "nor-lap": 9.06}, 0.25: {"adj": 307.44, "lap": 50958.56, "nor-lap": 9.5}},
    "fig5": {8: {"adj": 8.66, "lap": 146.24, "nor-lap": 7.32}, 12: {"adj": 8.86, "lap": 327.47, "nor-lap": 6.72},
             20: {"adj": 9.95, "lap": 924.75, "nor-lap": 6.68}, 30: {"adj": 13.24, "lap": 1823.62, "nor-lap": 6.04}},
    "fig6": {0.001: {"adj": 27.48, "lap": 495.21, "nor-lap": 6.53}, 0.01: {"adj": 26.88, "lap": 653.07, "nor-lap": 6.84},
             0.05: {"adj": 33.92, "lap": 723.98, "nor-lap": 5.77}, 0.1: {"adj": 43.56, "lap": 1311.76, "nor-lap": 5.61}},
    "fig7": {3: {"adj": 6.77, "lap": 43.8, "nor-lap": 6.63}, 5: {"adj": 10.63, "lap": 122.97, "nor-lap": 6.04},
             10: {"adj": 25.41, "lap": 519.95, "nor-lap": 6.56}, 20: {"adj": 47.29, "lap": 1935.36, "nor-lap": 6.5}},
}

Seeds = Annotated[int, Field(ge=1, description="number of seeds (graph, features, labelled set), from `seed` on")]
Threads = Annotated[int, Field(ge=1, description="torch intra-op threads")]


class PatelSpec(ExperimentSpec):
    """Fields every Patel et al. experiment has (§6.1.2 defaults: d_x = 50, H = 2, d₁ = d₂ = 32, a = 2, n̄ = 0.75n)."""

    d_x: int = Field(50, ge=1)
    depth: int = Field(2, ge=1, description="H, the number of aggregation steps")
    width: int = Field(32, ge=1, description="d_1 = … = d_H")
    a: float = Field(2.0, gt=0, description="Remark 3.3's W_{H+1}(0) = a·I")
    labelled_fraction: float = Field(0.75, gt=0, le=1, description="n̄ / n")
    epsilon: float = Field(0.1, ge=0, description="weight of the neighbours' features in the targets")
    seeds: Seeds = 2
    threads: Threads = 1

    #: names checked when the spec is built (fields a spec lacks are skipped): the §6.1 families, the paper's
    #: five operators, the two training rules, the climate measure used as label
    name_fields = {
        **{f: ("graph family", FAMILIES) for f in ("family", "families")},
        **{f: ("operator", OPERATORS) for f in ("operators", "a_operator")},
        "rule": ("rule", RULES),
        "label": ("measure", tuple(MEASURES)),
    }
    #: dict fields whose keys are names (checked by the specs that have them)
    name_keys: ClassVar[dict[str, tuple[str, ...]]] = {"horizons": OPERATORS, "family_params": FAMILIES}

    def canonical(self) -> "PatelSpec":
        """This spec with every name (of :attr:`name_fields`, and the keys of :attr:`name_keys`) in the paper's
        spelling: ``ADJ``, ``nor_lap``, ``normalized_flow`` become ``adj``, ``nor-lap``, ``normalized-flow``. The
        spec keeps the names as given (the name check reads them case-insensitively, ``-`` and ``_`` alike); the
        validators and the runs compare, label and name series by this copy."""
        return checks.canonical_copy(self, type(self).name_fields, type(self).name_keys)


# ------------------------------------------------------------------------------------------------ data
def synthetic_graph(family: str, n: int, param: float, d_x: int, seed: int, *, sbm_p: float = 0.15) -> Graph:
    """A graph of §6.1 with N(0, 1) features (d_x columns): ``param`` is p, k, q or m by family."""
    family = resolve("graph family", family, {f: f for f in FAMILIES})
    if family == "erdos-renyi":
        return erdos_renyi(int(n), float(param), feature_dim=d_x, seed=seed)
    if family == "knn-ring":
        return knn_ring(int(n), int(param), feature_dim=d_x, seed=seed)
    if family == "sbm":
        n1 = int(round(SBM_FRACTION * n))
        return sbm([n1, int(n) - n1], p_in=float(sbm_p), p_out=float(param), feature_dim=d_x, seed=seed)
    return barabasi_albert(int(n), int(param), feature_dim=d_x, seed=seed)


def check_family_params(family: str, n: int, params: Sequence[float], d_x: int, *, sbm_p: float = 0.15) -> None:
    """Each parameter value of a §6.1 family sweep passes the generator's own range checks (p, q in [0, 1],
    1 ≤ m < n for BA(n, m), an integer k < n for K_k(n)…) without sampling anything; the error names the value."""
    if not params:
        raise GnndynError(f"params is empty; give at least one value of the {family} parameter.")
    with generators.dry_run():
        for i, p in enumerate(params):
            if family in ("knn-ring", "barabasi-albert") and float(p) != int(p):
                raise GnndynError(f"params[{i}] = {p}: the {family} parameter is an integer "
                                  f"({'k' if family == 'knn-ring' else 'm'}).")
            try:
                synthetic_graph(family, n, p, d_x, 0, sbm_p=sbm_p)
            except (generators.Validated, generators.MissingParameterError):
                continue
            except GnndynError as exc:
                raise GnndynError(f"params[{i}] = {p:g}: {exc}") from None


def paper_targets(g: Graph, epsilon: float = 0.1) -> np.ndarray:
    r"""§6.1: :math:`y_i = f(x_i) + \varepsilon\sum_{j\sim i}g(x_j)` with :math:`f(x) = g(x) = \sum_k x_k`: (n,) float64."""
    if g.x is None:
        raise GnndynError(f"graph {g.name!r} has no features; build it with feature_dim > 0.")
    s = g.x.detach().cpu().numpy().astype(np.float64).sum(1)
    return s + float(epsilon) * np.asarray(g.adjacency() @ s)


def labelled_set(n: int, nbar: int, seed: int) -> np.ndarray:
    """n̄ nodes drawn uniformly without replacement (sorted), from the stream ``SeedSequence([seed, 2])``."""
    if not 1 <= nbar <= n:
        raise GnndynError(f"the labelled set needs 1 ≤ n̄ ≤ n = {n}; got n̄ = {nbar}.")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2]))
    return np.sort(rng.choice(n, int(nbar), replace=False))


def propagated_all(g: Graph, operator: str, depth: int) -> np.ndarray:
    r""":math:`XS^H` on all nodes (d_x × n), by sparse products."""
    op = build_operator(operator, g)
    return propagated(make_xu_data(g.x, op, np.arange(g.num_nodes)), depth)


def graph_problem(g: Graph, operator: str, nodes: np.ndarray, y: np.ndarray, depth: int, width: int) -> thy.Problem:
    r"""The problem :math:`Z = (XS^H)_{*I}`, :math:`Y = y_I` (d_y × n̄) with hidden widths d_1 = … = d_H = width."""
    op = build_operator(operator, g)
    Z = propagated(make_xu_data(g.x, op, nodes), depth)
    Y = np.asarray(y, dtype=np.float64)
    Y = Y[nodes][None, :] if Y.ndim == 1 else Y[nodes].T
    return thy.make_problem(Z, Y, [int(width)] * int(depth))


# ------------------------------------------------------------------------------------------------ flows on Z
def start(problem: thy.Problem, a: float) -> list[np.ndarray]:
    """Remark 3.3's start: W_1 = 0, identities, W_{H+1} = a·I."""
    return zero_first_layer(problem.widths.dims, a)


def relative_loss(problem: thy.Problem, path: thy.Path) -> np.ndarray:
    ex = path.losses - problem.L_tilde
    return ex / ex[0]


def time_to_level(times: np.ndarray, rel: np.ndarray, level: float) -> float:
    """First time the relative loss is ≤ level, interpolated in log(relative loss) (inf if never)."""
    hit = np.flatnonzero(rel <= level)
    if hit.size == 0:
        return math.inf
    i = int(hit[0])
    if i == 0:
        return float(times[0])
    a, b = math.log(max(rel[i - 1], 1e-300)), math.log(max(rel[i], 1e-300))
    return float(times[i - 1] + (times[i] - times[i - 1]) * (a - math.log(level)) / (a - b)) if a != b else float(times[i])


def record_path(rec: Recorder, series: str, seed: int, problem: thy.Problem, path: thy.Path, bound_rate: float | None) -> None:
    """``loss``, ``relative_loss`` and (gradient flow) ``bound`` = exp(−βσ²_small t/m) at every recorded point."""
    rel = relative_loss(problem, path)
    for i, (t, L, r) in enumerate(zip(path.times, path.losses, rel)):
        vals = {"loss": float(L), "relative_loss": float(r)}
        if bound_rate is not None:
            vals["bound"] = math.exp(-bound_rate * float(t))
        rec.add_values(series, seed, i, vals, time=float(t))


def run_checks(problem: thy.Problem, path: thy.Path, a: float) -> tuple[list[Verdict], dict[str, Any]]:
    """Thm 3.1 along the path, its hypothesis (3.8), Thm 3.2's PL ratio and ball, Remark 3.3's thresholds for this a;
    and one row of numbers for the run table."""
    Ws0 = path.start
    hyp = thy.hypothesis(problem, Ws0)
    v_hyp = thy.check_hypothesis(problem, Ws0)
    vs = [v_hyp]
    if path.rule == "flow":
        vs.append(thy.check_thm31(problem, path))
        vs += thy.check_chatterjee(problem, path)
    r33 = thy.check_remark33(problem, a)
    vs += r33
    thr = thy.remark33_thresholds(problem)
    rel = relative_loss(problem, path)
    k = thy.rate(problem, Ws0)
    row = {"sigma_small": problem.sigma_small, "sigma_max": float(problem.spectrum.sigma_max),
           "rank": problem.spectrum.rank, "m": problem.m,
           "L_tilde": problem.L_tilde, "L0": float(path.losses[0]), "rate_bound": k, "T_end": float(path.times[-1]),
           "final_relative_loss": float(rel[-1]), "stopped": path.solver.get("stopped"), "steps": path.solver.get("steps"),
           "hyp_lhs": hyp["lhs"], "hyp_rhs": hyp["rhs"], "hyp_ratio": hyp["ratio"], "hypothesis_holds": v_hyp.holds,
           "a2": a * a, "r33_printed": thr["printed"], "r33_rederived": thr["rederived"], "r33_exact": thr["exact"]}
    if path.rule == "flow":
        v31, pl, ball = vs[1], vs[2], vs[3]
        mr = v31.details.get("measured_rate", math.nan)
        row.update({"thm31_holds": v31.holds, "thm31_margin_nats": v31.margin, "measured_rate": mr,
                    "rate_ratio": mr / k if k > 0 else math.nan, "pl_holds": pl.holds,
                    "pl_min_over_bound": pl.details.get("min_ratio_over_bound", math.nan), "ball_holds": ball.holds,
                    "max_distance_over_r": ball.details.get("max_distance", math.nan) / ball.details.get("r", math.nan)})
    return vs, row


def sigma_table(runs: pd.DataFrame, paper: dict[float, dict[str, float]] | None, param: str = "param") -> pd.DataFrame:
    """Median measured σ_small per (parameter, operator) against the paper's bar values."""
    rows = []
    for (p, op), d in runs.groupby([param, "operator"], sort=True):
        pv = (paper or {}).get(p, {}).get(op, math.nan)
        med = float(d["sigma_small"].median())
        rows.append({param: p, "operator": op, "sigma_small_median": med, "sigma_small_min": float(d["sigma_small"].min()),
                     "sigma_small_max": float(d["sigma_small"].max()), "paper": pv,
                     "ratio_to_paper": med / pv if not math.isnan(pv) else math.nan})
    return pd.DataFrame(rows)


def claim(name: str, where: str, statement: str, holds: bool, margin: float, at: str, **details: Any) -> Verdict:
    """A qualitative claim of §6 as a verdict on the measurements."""
    return Verdict(name, f"{PAPER}, {where}", statement, bool(holds), float(margin), at, details=details)


__all__ = ["COLORS", "FAMILIES", "LABELS", "OPERATORS", "PAPER", "PAPER_SIGMA", "PatelSpec", "Seeds", "Threads",
           "claim", "graph_problem", "labelled_set", "paper_targets", "propagated_all", "record_path", "relative_loss",
           "run_checks", "sigma_table", "solve", "start", "synthetic_graph", "time_to_level", "with_torch_threads"]
