r"""``xu-fig1`` and ``xu-fig4`` — Xu et al. 2021, Figures 1 and 4: training curves of linear and ReLU
GNNs, and the implicit-acceleration claims of Section 4 as measured comparisons at equal settings.

``xu-fig1`` (Fig. 1): linear vs ReLU GCN and GIN on Cora. Verdicts: the linear and ReLU curves
decrease at the same linear rate (fitted slopes of ln L within a factor ``rate_tolerance``), both
reach nearly zero training loss, and GIN trains faster than GCN (§3.1: "GIN converges faster than
GCN on Cora"). The paper's Fig. 1 settings are in App. C, which the available text does not hold;
gnndyn's defaults (squared loss, Adam, lr 1e-3, H = 2, width 64) are stated in the spec.

``xu-fig4`` (Fig. 4, §4.1–4.3): cross-entropy, hidden width 32, learning rate 5e-5 (1e-4 for the
label comparison), ReLU and linear GCNs, Cora and CiteSeer:

* (a) multiscale (Def. 2) vs plain (Def. 1) at each depth — "multiscale GNNs train faster";
* (b) depth 2, 4, 6 — "deeper GNNs train faster";
* (c) original vs random labels (a class drawn uniformly per node) — "training is much slower for
  random labels".

"Faster" is measured as the number of steps to reach ``level`` × the configuration group's initial
loss (median over seeds; ties broken by the final loss). The optimizer is not stated in the main
text; with plain gradient descent at 5e-5 the mean cross-entropy barely moves in a few hundred
steps, so the default is Adam (``--set optimizer=gd`` gives gradient descent). Defaults run Cora only
with 400 steps and 2 seeds; ``--set datasets='["cora","citeseer"]'`` adds CiteSeer.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from gnndyn.experiments.base import Experiment, ExperimentResult, RunContext, register
from gnndyn.experiments.xu.common import XuSpec, fmt_series, make_problem, steps_to_level, with_torch_threads
from gnndyn.models.linear_gnn import XuGNN
from gnndyn.store.run import RunStore
from gnndyn.theory.verdict import Verdict
from gnndyn.training.flow import descend
from gnndyn.training.optimizers import make_optimizer

PAPER = "Xu et al. 2021"


def _train(prob, loss: str, depth: int, width: int, multiscale: bool, activation: str, optimizer: str, lr: float,
           steps: int, seed: int, init: str, init_scale: float, rec, series: str, dtype) -> np.ndarray:
    obj = prob.objective(loss)
    model = XuGNN(prob.data.in_dim, [width] * depth, prob.num_classes, multiscale=multiscale, activation=activation,
                  init=init, init_scale=init_scale, seed=seed, dtype=dtype)
    res = descend(model, lambda m: obj(m(prob.data)), steps, make_optimizer(optimizer, lr), recorder=rec,
                  series=series, seed=seed)
    losses = res.losses
    if res.diverged is not None:  # pad with inf so that a diverged run never "reaches" a level
        losses = np.concatenate([losses, np.full(steps + 1 - losses.size, np.inf)])
    return losses


def log_rate(losses: np.ndarray, hi: float = 0.9, lo: float = 1e-3) -> float:
    r"""Average linear rate: minus the least-squares slope of ln L against the step over the steps where
    L ∈ [lo·L0, hi·L0] (the linear phase, before the floor); NaN with fewer than 3 such steps."""
    L = np.asarray(losses, float)
    L0 = L[0]
    idx = np.flatnonzero((L <= hi * L0) & (L >= lo * L0) & np.isfinite(L))
    if idx.size < 3:
        return math.nan
    return float(-np.polyfit(idx, np.log(L[idx]), 1)[0])


# ============================================================================================ xu-fig1
class XuFig1Spec(XuSpec):
    """Spec of ``xu-fig1``."""

    experiment: Literal["xu-fig1"] = "xu-fig1"
    dataset: str = "cora"
    operators: list[str] = ["gcn", "gin"]
    nodes: str = "train"
    normalize_features: bool = False
    depth: int = Field(2, ge=1)
    width: int = Field(64, ge=1)
    multiscale: bool = False
    loss: Literal["squared", "cross-entropy"] = "squared"
    optimizer: str = "adam"
    lr: float = Field(1e-3, gt=0)
    steps: int = Field(300, ge=2)
    init: str = "uniform"
    init_scale: float = Field(1.0, gt=0)
    rate_tolerance: float = Field(2.0, gt=1, description="'same rate' = fitted rates within this factor")
    near_zero: float = Field(1e-2, gt=0, description="'nearly zero' = final loss below this fraction of L0")
    level: float = Field(0.1, gt=0, lt=1, description="GIN vs GCN: steps to reach level × L0")


@with_torch_threads
def run_fig1(spec: XuFig1Spec, ctx: RunContext) -> ExperimentResult:
    rec = ctx.recorder
    rows = []
    n = len(spec.operators) * 2 * spec.seeds
    with ctx.task("linear vs ReLU", n) as bar:
        for seed in range(spec.seed, spec.seed + spec.seeds):
            for opn in spec.operators:
                prob = make_problem(spec.dataset, opn, spec.nodes, spec.data_root, seed=spec.seed,
                                    normalize_features=spec.normalize_features)
                for act in ("linear", "relu"):
                    series = fmt_series(spec.dataset, opn, spec.depth, spec.optimizer, act)
                    L = _train(prob, spec.loss, spec.depth, spec.width, spec.multiscale, act, spec.optimizer, spec.lr,
                               spec.steps, seed, spec.init, spec.init_scale, rec, series, spec.torch_dtype)
                    rows.append({"operator": opn, "activation": act, "seed": seed, "L0": L[0], "L_end": L[-1],
                                 "rate": log_rate(L), "steps_to_level": steps_to_level(L, spec.level * L[0])})
                    bar.advance(1)
    tab = pd.DataFrame(rows)
    med = tab.groupby(["operator", "activation"]).median(numeric_only=True).reset_index()
    verdicts = []
    ratios = {}
    for opn in spec.operators:
        r = med[med.operator == opn].set_index("activation")["rate"]
        ratios[opn] = float(max(r) / min(r)) if (r > 0).all() else math.inf
    worst = max(ratios, key=ratios.get)
    verdicts.append(Verdict(
        "xu.fig1.same_rate", f"{PAPER}, Fig. 1 and §1",
        f"linear and ReLU GNNs converge at the same linear rate (fitted rates of ln L within a factor {spec.rate_tolerance:g})",
        all(v <= spec.rate_tolerance for v in ratios.values()), float(math.log(spec.rate_tolerance) - math.log(ratios[worst])),
        f"{spec.dataset}/{worst}", details={"rate_ratio": ratios,
                                           "rates": med[["operator", "activation", "rate"]].to_dict("records")}))
    frac = (med["L_end"] / med["L0"]).to_numpy()
    jj = int(np.argmax(frac))
    verdicts.append(Verdict(
        "xu.fig1.near_zero", f"{PAPER}, §1 (Fig. 1)",
        f"both linear and ReLU GNNs reach nearly zero training loss (L_T ≤ {spec.near_zero:g}·L_0 in {spec.steps} steps)",
        bool((frac <= spec.near_zero).all()), float(spec.near_zero - frac[jj]),
        f"{med.loc[jj, 'operator']}/{med.loc[jj, 'activation']}", details={"L_end_over_L0": frac.tolist()}))
    if {"gcn", "gin"} <= set(spec.operators):
        comp = []
        for act in ("linear", "relu"):
            a = med[(med.operator == "gin") & (med.activation == act)]
            b = med[(med.operator == "gcn") & (med.activation == act)]
            comp.append((act, float(a["steps_to_level"].iloc[0]), float(b["steps_to_level"].iloc[0]),
                         float(a["L_end"].iloc[0]), float(b["L_end"].iloc[0])))
        ok = [(g < c) or (g == c and le <= lc) for _, g, c, le, lc in comp]
        verdicts.append(Verdict(
            "xu.fig1.gin_faster", f"{PAPER}, §3.1 (\"GIN converges faster than GCN on Cora\")",
            f"GIN reaches {spec.level:g}·L_0 in fewer steps than GCN (linear and ReLU)", all(ok), float("nan"),
            ", ".join(f"{a}: GIN {_steps(g)} vs GCN {_steps(c)}" for a, g, c, _, _ in comp),
            details={"comparisons": [dict(zip(["activation", "gin_steps", "gcn_steps", "gin_L_end", "gcn_L_end"], x)) for x in comp]}))
    summary = {f"rate {r.operator}/{r.activation}": r.rate for r in med.itertuples()}
    summary.update({f"L_T/L_0 {r.operator}/{r.activation}": r.L_end / r.L0 for r in med.itertuples()})
    return ExperimentResult(verdicts=verdicts, tables={"runs": tab}, summary=summary)


def _loss_panel(ax, df: pd.DataFrame, series: list[str], title: str, labels: dict | None = None) -> None:
    """The training loss of ``series`` against the step, log scale. A series with no recorded loss (its run
    diverged or failed before the first record) draws nothing; a panel left empty says so instead of a legend."""
    from gnndyn.report.plots import band, by_seed, log_scale, note_empty

    for s in series:
        d = df[(df.series == s) & (df.quantity == "loss")]
        x, v = by_seed(d, index="step")
        if x.size:
            band(ax, x, v, label=(labels or {}).get(s, s))
    log_scale(ax)
    ax.set(xlabel="step", ylabel="training loss", title=title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)
    else:
        note_empty(ax, "no loss recorded (the runs failed or diverged at once)")


def figures_fig1(store: RunStore) -> dict:
    from gnndyn.report.plots import new_figure

    df = store.metrics()
    spec = store.spec()
    fig, axes = new_figure(len(spec["operators"]), width=5.0)
    for ax, opn in zip(axes, spec["operators"]):
        ss = sorted(s for s in df.series.unique() if f"-{opn}-" in s)
        _loss_panel(ax, df, ss, f"{spec['dataset']} / {opn.upper()}: linear vs ReLU")
    fig.tight_layout()
    return {"fig1_training_curves": fig}


# ============================================================================================ xu-fig4
class XuFig4Spec(XuSpec):
    """Spec of ``xu-fig4``."""

    experiment: Literal["xu-fig4"] = "xu-fig4"
    datasets: list[str] = ["cora"]
    operator: str = "gcn"
    nodes: str = "train"
    normalize_features: bool = False
    activations: list[str] = ["relu", "linear"]
    depths: list[int] = [2, 4, 6]
    label_depth: int = Field(2, ge=1, description="depth of the signal-vs-random-labels comparison")
    width: int = Field(32, ge=1)
    loss: Literal["squared", "cross-entropy"] = "cross-entropy"
    optimizer: str = "adam"
    lr: float = Field(5e-5, gt=0, description="Fig. 4a–b")
    lr_labels: float = Field(1e-4, gt=0, description="Fig. 4c")
    steps: int = Field(400, ge=2)
    level: float = Field(0.75, gt=0, lt=1, description="'faster' = fewer steps to reach level × the group's initial loss")
    init: str = "uniform"
    init_scale: float = Field(1.0, gt=0)


@with_torch_threads
def run_fig4(spec: XuFig4Spec, ctx: RunContext) -> ExperimentResult:
    rec = ctx.recorder
    rows = []
    jobs = []
    for ds in spec.datasets:
        for act in spec.activations:
            for ms in (False, True):
                for H in spec.depths:
                    jobs.append((ds, act, ms, H, "signal", spec.lr))
                for lab in ("signal", "random"):
                    jobs.append((ds, act, ms, spec.label_depth, lab, spec.lr_labels))
    jobs = list(dict.fromkeys(jobs))  # the label comparison may coincide with a depth run
    with ctx.task("Fig. 4 runs", len(jobs) * spec.seeds) as bar:
        for seed in range(spec.seed, spec.seed + spec.seeds):
            for ds, act, ms, H, lab, lr in jobs:
                prob = make_problem(ds, spec.operator, spec.nodes, spec.data_root, seed=spec.seed, labels=lab,
                                    normalize_features=spec.normalize_features)
                extra = f"{act}-{'ms' if ms else 'plain'}-{lab}-lr{lr:g}"
                series = fmt_series(ds, spec.operator, H, spec.optimizer, extra)
                L = _train(prob, spec.loss, H, spec.width, ms, act, spec.optimizer, lr, spec.steps, seed, spec.init,
                           spec.init_scale, rec, series, spec.torch_dtype)
                rows.append({"dataset": ds, "activation": act, "multiscale": ms, "depth": H, "labels": lab, "lr": lr,
                             "seed": seed, "series": series, "L0": float(L[0]), "L_end": float(L[-1]), "curve": L})
                bar.advance(1)
    tab = pd.DataFrame(rows)

    def compare(group_cols: list[str], vary: str, order: list, fixed: dict, name: str, paper: str, statement: str) -> Verdict:
        d = tab
        for k, v in fixed.items():
            d = d[d[k] == v]
        results, ok_all = [], True
        for key, grp in d.groupby(group_cols):
            level = spec.level * float(np.median(grp["L0"]))
            stats = []
            for val in order:
                g = grp[grp[vary] == val]
                if g.empty:
                    continue
                st = float(np.median([steps_to_level(c, level) for c in g["curve"]]))
                le = float(np.median(g["L_end"]))
                stats.append((val, st, le))
            ok = all((a[1] < b[1]) or (a[1] == b[1] and a[2] <= b[2]) for a, b in zip(stats, stats[1:]))
            ok_all &= ok
            results.append({"group": dict(zip(group_cols, key if isinstance(key, tuple) else (key,))), "ok": ok,
                            "level": level, "order": [{"value": str(v), "steps_to_level": s, "L_end": le} for v, s, le in stats]})
        n_ok = sum(r["ok"] for r in results)
        return Verdict(name, paper, statement, ok_all and bool(results), float("nan"),
                       f"{n_ok}/{len(results)} comparison groups agree",
                       details={"groups": results, "level_fraction": spec.level})

    verdicts = [
        compare(["dataset", "activation", "depth"], "multiscale", [True, False], {"labels": "signal", "lr": spec.lr},
                "xu.sec4.1.skip_faster", f"{PAPER}, §4.1, Fig. 4a",
                "multiscale (skip-connected) GNNs train faster than plain ones at equal depth"),
        compare(["dataset", "activation", "multiscale"], "depth", sorted(spec.depths, reverse=True),
                {"labels": "signal", "lr": spec.lr}, "xu.sec4.2.deeper_faster", f"{PAPER}, §4.2, Fig. 4b",
                "deeper GNNs train faster (steps to the level decrease with depth)"),
        compare(["dataset", "activation", "multiscale"], "labels", ["signal", "random"],
                {"depth": spec.label_depth, "lr": spec.lr_labels}, "xu.sec4.3.signal_faster", f"{PAPER}, §4.3, Fig. 4c",
                "GNNs train faster with the original labels than with random labels"),
    ]
    out = tab.drop(columns=["curve"])
    out["steps_to_level"] = [steps_to_level(c, spec.level * l0) for c, l0 in zip(tab["curve"], tab["L0"])]
    summary = {v.name: f"{'holds' if v.holds else 'violated'} ({v.where})" for v in verdicts}
    return ExperimentResult(verdicts=verdicts, tables={"runs": out}, summary=summary)


def figures_fig4(store: RunStore) -> dict:
    from gnndyn.report.plots import new_figure

    df = store.metrics()
    spec = store.spec()
    runs = store.table("runs")
    figs = {}
    for ds in spec["datasets"]:
        for act in spec["activations"]:
            r = runs[(runs.dataset == ds) & (runs.activation == act)]
            fig, axes = new_figure(3, width=4.8)
            H0 = spec["depths"][len(spec["depths"]) // 2]
            a = r[(r.labels == "signal") & (r.lr == spec["lr"]) & (r.depth == H0)]
            _loss_panel(axes[0], df, sorted(a.series.unique()), f"(a) skip vs plain, H={H0}",
                        {s: ("multiscale" if "-ms-" in s else "plain") for s in a.series})
            b = r[(r.labels == "signal") & (r.lr == spec["lr"]) & (~r.multiscale)]
            _loss_panel(axes[1], df, sorted(b.series.unique()), "(b) depth (plain)",
                        {s: s.split("-")[2] for s in b.series})
            c = r[(r.depth == spec["label_depth"]) & (r.lr == spec["lr_labels"]) & (~r.multiscale)]
            _loss_panel(axes[2], df, sorted(c.series.unique()), "(c) signal vs random labels",
                        {s: ("random" if "-random-" in s else "signal") for s in c.series})
            fig.suptitle(f"{ds}, {act} GCN, {spec['loss']}, {spec['optimizer']}")
            fig.tight_layout()
            figs[f"fig4_{ds}_{act}"] = fig
    return figs


register(Experiment(
    name="xu-fig1",
    description="Xu et al. Fig. 1: training curves of linear vs ReLU GCN and GIN on Cora",
    paper="Xu et al. 2021, Fig. 1",
    spec_cls=XuFig1Spec, run=run_fig1, figures=figures_fig1,
    smoke={"steps": 40, "seeds": 1, "width": 16, "lr": 5e-3},
))

register(Experiment(
    name="xu-fig4",
    description="Xu et al. Fig. 4: skip connections, depth and label signal vs training speed (time to a loss level)",
    paper="Xu et al. 2021, Fig. 4, §4",
    spec_cls=XuFig4Spec, run=run_fig4, figures=figures_fig4,
    smoke={"depths": [2, 4], "steps": 30, "seeds": 1, "lr": 1e-3, "lr_labels": 1e-3, "activations": ["linear", "relu"]},
))


def _steps(n: float) -> str:
    """Steps to the level in words: "25 steps", or "never" (within the run) for a run that did not reach it."""
    return f"{n:g} steps" if math.isfinite(n) else "never (within the run)"
