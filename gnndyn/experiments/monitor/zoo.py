r"""``monitor-zoo`` — which of PyG's standard GNNs train when made deep, and what the monitor says about those
that do not. No paper has this experiment; it applies the measurements of Keriven (forward and backward
oversmoothing, Thm 1–2; global δ-stationarity, Def. 1) and the rank measures of arXiv 2502.04591 to GCN,
GAT, GIN, GraphSAGE, GCNII and a plain MLP (:mod:`.models`) at ``depths`` (2, 8, 32) on Cora (public split)
and on a CSBM graph (half the nodes for training), each trained full-batch with Adam as PyG's examples train
it (learning rate, weight decay, dropout of :data:`~.archs.OPTIM`), under a :class:`gnndyn.Monitor` with its
default schedule and ``baseline_loss`` = ln C.

Each run gets one **outcome** from its final training loss ℓ (in units of ln C, the loss of the uniform
prediction) and its test accuracy a, with chance 1/C and the thresholds of the spec (:func:`outcome`):

* **diverged** — ℓ is not finite or above ``diverged_loss_fraction`` (10) × ln C;
* **trains** — ℓ ≤ ``trained_loss_fraction`` (0.5) × ln C and a ≥ 1/C + ``min_accuracy_gain`` (0.1);
* **overfits** — ℓ ≤ ``trained_loss_fraction`` × ln C but a below that: the training loss is fitted, the
  test nodes are not (a generalization failure, not an optimization one);
* **slow** — ℓ between ``trained_loss_fraction`` and ``stuck_loss_fraction`` (0.9) × ln C and a above
  chance by the gain: it learns, and has not finished in ``epochs``;
* **stuck** — every other run: ℓ near the uninformative loss, or no better than chance on the test nodes.

The table ``zoo`` lists, per dataset × architecture × depth: the outcome, final loss, test accuracy, the
monitor's alarms, the epoch where the Keriven trap set in, min_(k<L) ℰ(B⁽ᵏ⁾)/ℰ(B⁽ᴸ⁾), the fitted forward
rate, and the final effective rank of the last hidden layer. The verdict per dataset checks that the
diagnoses explain the optimization failures: every stuck or diverged run raises at least one alarm, and
no run that trains is reported caught in the Keriven trap (slow and overfitting runs are shown, not judged).

Series are named ``{dataset}-{arch}-L{depth}``; the quantities are the monitor's
(:mod:`gnndyn.monitor.quantities`) plus ``train_accuracy`` and ``test_accuracy`` (every ``eval_every`` epochs).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator

from gnndyn.errors import GnndynError, resolve
from gnndyn.experiments.base import (
    Experiment,
    ExperimentResult,
    RunContext,
    register,
    with_torch_threads,
)
from gnndyn.spec_checks import check_schedule
from gnndyn.experiments.monitor.archs import ARCHS, OPTIM
from gnndyn.monitor import Monitor
from gnndyn.spec import ExperimentSpec, GraphSpec
from gnndyn.store.run import RunStore
from gnndyn.theory.verdict import Verdict

DATASETS = ("cora", "csbm")


class MonitorZooSpec(ExperimentSpec):
    """Spec of ``monitor-zoo``."""

    experiment: Literal["monitor-zoo"] = "monitor-zoo"
    dtype: Literal["float64", "float32"] = "float32"
    #: the data sets the models train on (Cora read from the data root before anything is written) and their features
    name_fields = {"datasets": ("dataset", DATASETS)}
    needs_features = True
    graph_needs = ("features", "labels")
    datasets: list[str] = Field(default_factory=lambda: list(DATASETS))
    csbm: GraphSpec = GraphSpec(name="csbm", n=1000, classes=2, p_in=0.05, p_out=0.0095, feature_dim=16,
                                feature_sep=2.0)
    archs: list[str] = Field(default_factory=lambda: list(ARCHS))
    depths: list[int] = Field(default_factory=lambda: [2, 8, 32])
    hidden: int = Field(32, gt=0, description="hidden width (GAT: 8 heads × hidden/8)")
    epochs: int = Field(100, ge=2)
    eval_every: int = Field(10, ge=1)
    trained_loss_fraction: float = Field(0.5, gt=0, le=1, description="trains: final loss ≤ this × ln C")
    stuck_loss_fraction: float = Field(0.9, gt=0, le=1, description="slow, not stuck: final loss < this × ln C")
    diverged_loss_fraction: float = Field(10.0, gt=1, description="diverged: final loss > this × ln C")
    min_accuracy_gain: float = Field(0.1, ge=0, le=1, description="test accuracy must exceed 1/C by this much")
    threads: int = Field(1, ge=1)

    @field_validator("datasets")
    @classmethod
    def _datasets(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError(f"give at least one dataset of {', '.join(DATASETS)}")
        return [resolve("dataset", d, {k: k for k in DATASETS}) for d in v]

    @field_validator("archs")
    @classmethod
    def _archs(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError(f"give at least one architecture of {', '.join(ARCHS)}")
        return [resolve("architecture", a, {k: k for k in ARCHS}) for a in v]

    @field_validator("depths")
    @classmethod
    def _depths(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("depths is empty (got []); give at least one depth ≥ 1, e.g. depths=[2, 8]")
        if min(v) < 1:
            raise ValueError(f"depths must be ≥ 1; got {v}")
        return sorted(set(v))


    @model_validator(mode="after")
    def _fractions(self) -> "MonitorZooSpec":
        check_schedule("eval_every", self.eval_every, f"epochs={self.epochs}", self.epochs - 1,
                       "train_accuracy and test_accuracy are recorded at the evaluated epochs", unit="epoch")
        if self.stuck_loss_fraction < self.trained_loss_fraction:
            raise ValueError(f"stuck_loss_fraction ({self.stuck_loss_fraction}) must be at least "
                             f"trained_loss_fraction ({self.trained_loss_fraction}): the slow band lies between them")
        return self


OUTCOMES = ("trains", "slow", "overfits", "stuck", "diverged")
_BANDS = {k: MonitorZooSpec.model_fields[k].default for k in
          ("trained_loss_fraction", "stuck_loss_fraction", "diverged_loss_fraction", "min_accuracy_gain")}


def outcome(loss: float, accuracy: float, classes: int, *, trained: float = _BANDS["trained_loss_fraction"],
            stuck: float = _BANDS["stuck_loss_fraction"], diverged: float = _BANDS["diverged_loss_fraction"],
            gain: float = _BANDS["min_accuracy_gain"]) -> str:
    """The run's outcome (module docstring) from its final training loss and test accuracy; the thresholds
    default to the spec's."""
    ln_c = math.log(classes)
    if not math.isfinite(loss) or loss > diverged * ln_c:
        return "diverged"
    learns = math.isfinite(accuracy) and accuracy >= 1.0 / classes + gain
    if loss <= trained * ln_c:
        return "trains" if learns else "overfits"
    if loss < stuck * ln_c and learns:
        return "slow"
    return "stuck"


def _data(spec: MonitorZooSpec, name: str, seed: int) -> dict:
    if name == "cora":
        g = GraphSpec(name="cora").build(spec.data_root, seed=seed)
        x = g.x / g.x.sum(1, keepdim=True).clamp_min(1)  # NormalizeFeatures, as in PyG's examples
        train, test = g.train_mask, g.test_mask
    else:
        g = spec.csbm.build(spec.data_root, seed=seed)
        perm = torch.randperm(g.num_nodes, generator=torch.Generator().manual_seed(seed))
        train = torch.zeros(g.num_nodes, dtype=torch.bool)
        train[perm[: g.num_nodes // 2]] = True
        test = ~train
        x = g.x
    if g.x is None or g.y is None or g.y.dim() != 1:
        raise GnndynError(f"dataset {name!r} needs node features and class labels.")
    dev, dt = spec.torch_device, spec.torch_dtype
    return {"x": x.to(dev, dt), "y": g.y.to(dev), "edge_index": g.edge_index.to(dev), "train": train.to(dev),
            "test": test.to(dev), "classes": int(g.y.max()) + 1}


def train_one(spec: MonitorZooSpec, data: dict, arch: str, depth: int, seed: int, series: str) -> tuple[dict, Monitor]:
    """Train one model as PyG's examples do, monitored; returns its row of the table and the monitor."""
    from gnndyn.experiments.monitor.models import ZooModel, layers_of  # loads PyG

    torch.manual_seed(seed)
    C = data["classes"]
    model = ZooModel(arch, data["x"].shape[1], spec.hidden, C, depth).to(spec.torch_device, spec.torch_dtype)
    lr, wd = OPTIM[arch]
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    kw = {"layers": layers_of(model)} if arch == "mlp" else {}
    mon = Monitor(model, edge_index=data["edge_index"], baseline_loss=math.log(C), name=series, **kw)
    x, y, ei, tr, te = data["x"], data["y"], data["edge_index"], data["train"], data["test"]
    acc = {"train_accuracy": math.nan, "test_accuracy": math.nan}
    loss_v = math.nan
    for epoch in range(spec.epochs):
        model.train()
        opt.zero_grad()
        loss = F.cross_entropy(model(x, ei)[tr], y[tr])
        loss.backward()
        loss_v = float(loss.detach())
        extra = {}
        if epoch % spec.eval_every == 0 or epoch == spec.epochs - 1:
            model.eval()
            with torch.no_grad():
                pred = model(x, ei).argmax(1)
            acc = {"train_accuracy": float((pred[tr] == y[tr]).double().mean()),
                   "test_accuracy": float((pred[te] == y[te]).double().mean())}
            extra = acc
        mon.step(loss, **extra)
        if not math.isfinite(loss_v):
            break
        opt.step()
    verdicts = {v.name.removeprefix("monitor."): v for v in mon.diagnose()}
    fired = [n for n, v in verdicts.items() if v.details.get("alarm")]
    result = outcome(loss_v, acc["test_accuracy"], C, trained=spec.trained_loss_fraction,
                     stuck=spec.stuck_loss_fraction, diverged=spec.diverged_loss_fraction, gain=spec.min_accuracy_gain)
    ev = {n: v.details.get("evidence", {}) for n, v in verdicts.items()}
    df = mon.frame()
    er = df[(df.quantity == "effrank_H")]
    er_last = er[er.step == er.step.max()].sort_values("layer")["value"].to_numpy() if not er.empty else np.zeros(0)
    row = {
        "series": series, "arch": arch, "depth": depth, "outcome": result,
        "final_loss": loss_v, "loss_over_lnC": loss_v / math.log(C), "test_accuracy": acc["test_accuracy"],
        "alarms": ", ".join(fired) if fired else "none",
        "trap_since_epoch": ev["keriven_trap"].get("since_step") if "keriven_trap" in fired else None,
        "backward_ratio": ev["backward_oversmoothing"].get("ratio", math.nan),
        "forward_rate": ev["forward_oversmoothing"].get("fitted_rate", math.nan),
        "effrank_last_hidden": float(er_last[-2]) if er_last.size >= 2 else math.nan,
    }
    mon.close()
    return row, mon


@with_torch_threads
def run_zoo(spec: MonitorZooSpec, ctx: RunContext) -> ExperimentResult:
    datas = {name: _data(spec, name, spec.seed) for name in spec.datasets}  # validate before training
    rows: list[dict] = []
    total = len(datas) * len(spec.archs) * len(spec.depths)
    with ctx.task("monitor-zoo", total) as bar:
        for name, data in datas.items():
            for arch in spec.archs:
                for depth in spec.depths:
                    series = f"{name}-{arch}-L{depth}"
                    row, mon = train_one(spec, data, arch, depth, spec.seed, series)
                    rows.append({"dataset": name, **row})
                    ctx.recorder.extend(mon.recorder)
                    bar.advance(1)
    table = pd.DataFrame(rows)
    verdicts, summary = [], {}
    for name in spec.datasets:
        t = table[table.dataset == name]
        failed = t[t.outcome.isin(("stuck", "diverged"))]
        silent = failed[failed.alarms == "none"]
        trap_trained = t[(t.outcome == "trains") & t.alarms.str.contains("keriven_trap")]
        bad = [*silent.series, *trap_trained.series]
        counts = ", ".join(f"{int((t.outcome == o).sum())} {o}" for o in OUTCOMES if (t.outcome == o).any())
        verdicts.append(Verdict(
            name=f"monitor_zoo.diagnoses_explain_outcomes.{name}", paper="gnndyn monitor (Keriven, Def. 1, Thm 1–3)",
            statement=f"{name}: every stuck or diverged run raises an alarm and no run that trains is caught in "
                      "the Keriven trap",
            holds=not bad, margin=float(-len(bad)),
            where=(f"{len(t)} runs: {counts}" + (f"; unexplained: {', '.join(bad)}" if bad else "")),
            details={"silent_failures": list(silent.series), "trap_but_trained": list(trap_trained.series),
                     "thresholds": {"trained": spec.trained_loss_fraction, "stuck": spec.stuck_loss_fraction,
                                    "diverged": spec.diverged_loss_fraction, "accuracy_gain": spec.min_accuracy_gain}}))
        for arch in spec.archs:
            a = t[t.arch == arch].sort_values("depth")
            summary[f"{name} {arch}"] = ", ".join(f"L={r.depth}: {r.outcome}" for r in a.itertuples())
    return ExperimentResult(verdicts=verdicts, tables={"zoo": table}, summary=summary)


def figures_zoo(store: RunStore) -> dict:
    import matplotlib.pyplot as plt

    t = store.table("zoo")
    datasets = list(dict.fromkeys(t["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.2 * len(datasets), 4.2), squeeze=False)
    for ax, name in zip(axes[0], datasets):
        d = t[t.dataset == name]
        archs = list(dict.fromkeys(d["arch"]))
        depths = sorted(d["depth"].unique())
        M = np.full((len(archs), len(depths)), np.nan)
        for r in d.itertuples():
            M[archs.index(r.arch), depths.index(r.depth)] = r.loss_over_lnC
        im = ax.imshow(M, cmap="RdYlGn_r", vmin=0, vmax=1.2, aspect="auto")
        for r in d.itertuples():
            i, j = archs.index(r.arch), depths.index(r.depth)
            short = {"forward_oversmoothing": "FO", "backward_oversmoothing": "BO", "keriven_trap": "trap",
                     "vanishing_gradients": "vanish", "exploding_gradients": "explode"}
            al = "none" if r.alarms == "none" else "+".join(short.get(a.strip(), a) for a in r.alarms.split(","))
            ax.text(j, i, f"{r.outcome}\nacc {r.test_accuracy:.2f}\n{al}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(depths)), [f"L = {x}" for x in depths])
        ax.set_yticks(range(len(archs)), archs)
        ax.set_title(f"{name}: final loss / ln C, outcome, alarms")
        fig.colorbar(im, ax=ax, pad=0.01)
    fig.tight_layout()
    out = {"zoo_table": fig}
    df = store.metrics()
    deep = int(t["depth"].max())
    fig2, axes2 = plt.subplots(1, len(datasets), figsize=(6.2 * len(datasets), 3.8), squeeze=False)
    for ax, name in zip(axes2[0], datasets):
        for arch in dict.fromkeys(t["arch"]):
            d = df[(df.series == f"{name}-{arch}-L{deep}") & (df.quantity == "smoothing_B")]
            if d.empty:
                continue
            last = d[d.step == d.step.max()].sort_values("layer")
            ax.plot(last["layer"], last["value"], marker="o", ms=2, label=arch)
        ax.set(yscale="log", xlabel="layer k", ylabel="ℰ(B⁽ᵏ⁾) at the last epoch", title=f"{name}, depth {deep}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig2.tight_layout()
    out["zoo_backward_smoothing"] = fig2
    return out


register(Experiment(
    name="monitor-zoo",
    description="GCN, GAT, GIN, GraphSAGE, GCNII and an MLP at depths 2, 8, 32 on Cora and CSBM, trained as PyG's "
                "examples train them, under gd.Monitor: which train, which get stuck, and the monitor's evidence",
    paper="gnndyn monitor (Keriven's backward oversmoothing and Def. 1; rank measures of arXiv 2502.04591)",
    spec_cls=MonitorZooSpec,
    run=run_zoo,
    figures=figures_zoo,
    smoke={"datasets": ["csbm"], "csbm.n": 120, "csbm.p_in": 0.2, "csbm.p_out": 0.04, "depths": [2, 4],
           "hidden": 8, "epochs": 6, "eval_every": 3},
))
