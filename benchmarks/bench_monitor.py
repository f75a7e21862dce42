"""Overhead of ``gd.Monitor``: a training step of a depth-16 PyG GCN on a CSBM graph with 10⁵ nodes, unmonitored,
monitored with every per-layer quantity every step (``schedule="all"``), and with the default schedule.

    python benchmarks/bench_monitor.py [--nodes 100000] [--depth 16] [--width 64] [--rounds 10] [--steps 10]

The three contenders are separate copies of the same model (same weights), run round by round in a rotating
order so that a change in the machine's load hits all of them alike; in each round each runs ``--steps``
steps (``schedule="all"``: ``--all-steps``) and its mean step time is kept. Printed: per contender the median
step time over rounds with its 10–90 % spread, the median of the per-round ratios to the unmonitored step, and
the ratio of total times. The warm-up step is step 0 of each monitor (where the default schedule runs every
quantity), so the default contender's timed steps are steps 1, 2, … of its schedule: the cheap quantities (ℰ
of every forward and backward signal, gradient norms) and, at steps 10, 20, …, Dirichlet energy and MAD.
Its amortized cost over a full period is printed as an upper bound: the cheap-step ratio plus one tenth of
the extra cost of a step with every quantity (Dirichlet and MAD run every 10th step, ranks and spectral norms
every 100th). Goals (issue 12): ≤ 1.3× with every quantity, ≤ 1.05× with the default schedule. One torch
thread.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class GCN(nn.Module):
    def __init__(self, width: int, out: int, depth: int):
        super().__init__()
        from torch_geometric.nn import GCNConv

        self.convs = nn.ModuleList([GCNConv(width, width if k < depth - 1 else out, cached=True) for k in range(depth)])

    def forward(self, x, edge_index):
        for k, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            if k < len(self.convs) - 1:
                x = torch.relu(x)
        return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--degree", type=float, default=10.0)
    ap.add_argument("--depth", type=int, default=16)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--steps", type=int, default=10, help="steps per round (unmonitored and default schedule)")
    ap.add_argument("--all-steps", type=int, default=3, help="steps per round with every quantity every step")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dtype = getattr(torch, a.dtype)

    import gnndyn as gd

    g = gd.csbm(a.nodes, 2, avg_degree=a.degree, lam=2.0, mu=4.0, feature_dim=a.width, seed=0)
    x, y, ei = g.x.to(dtype), g.y, g.edge_index
    torch.manual_seed(0)
    base = GCN(a.width, 2, a.depth).to(dtype)
    models = {}
    for name in ("unmonitored", "all quantities every step", "default schedule"):
        m = GCN(a.width, 2, a.depth).to(dtype)
        m.load_state_dict(base.state_dict())
        models[name] = m
    mons = {"all quantities every step": gd.Monitor(models["all quantities every step"], edge_index=ei, schedule="all"),
            "default schedule": gd.Monitor(models["default schedule"], edge_index=ei)}
    opts = {n: torch.optim.SGD(m.parameters(), lr=0.01) for n, m in models.items()}
    steps = {"unmonitored": a.steps, "all quantities every step": a.all_steps, "default schedule": a.steps}

    def step(name: str) -> None:
        m, opt = models[name], opts[name]
        opt.zero_grad()
        loss = F.cross_entropy(m(x, ei), y)
        loss.backward()
        if name in mons:
            mons[name].step(loss)
        opt.step()

    for name in models:  # warm-up: caches of GCNConv and of the monitor's adjacency
        step(name)
    print(f"CSBM n={a.nodes}, {ei.shape[1]} directed edges; GCN depth {a.depth}, width {a.width}, {a.dtype}, "
          f"{a.threads} thread(s); {a.rounds} rounds", flush=True)
    per_round: dict[str, list[float]] = {n: [] for n in models}
    total: dict[str, float] = {n: 0.0 for n in models}
    names = list(models)
    for r in range(a.rounds):
        order = names[r % 3:] + names[: r % 3]
        for name in order:
            t0 = time.perf_counter()
            for _ in range(steps[name]):
                step(name)
            dt = time.perf_counter() - t0
            per_round[name].append(dt / steps[name])
            total[name] += dt
        print(f"round {r}: " + ", ".join(f"{n} {per_round[n][-1]:.3f} s" for n in names), flush=True)
    ref = per_round["unmonitored"]
    print("\ncontender                    median step   10–90 %          median ratio   total-time ratio")
    for name in names:
        t = np.array(per_round[name])
        ratios = t / np.array(ref)
        tot = (total[name] / (steps[name] * a.rounds)) / (total["unmonitored"] / (steps["unmonitored"] * a.rounds))
        print(f"{name:28s} {statistics.median(t):9.3f} s   {np.percentile(t, 10):.3f}–{np.percentile(t, 90):.3f} s"
              f"   {statistics.median(ratios):8.3f}×      {tot:8.3f}×")
    med = {n: statistics.median(np.array(per_round[n]) / np.array(ref)) for n in names}
    covered = 1 + a.rounds * a.steps
    if covered <= 10:
        bound = med["default schedule"] + (med["all quantities every step"] - med["default schedule"]) / 10
        print(f"\ndefault schedule timed at its steps 1..{covered - 1} (cheap quantities only); amortized over a "
              f"period, ≤ {bound:.3f}× (cheap-step ratio + 1/10 of the extra cost of an all-quantities step)")
    for m in mons.values():
        m.close()


if __name__ == "__main__":
    main()
