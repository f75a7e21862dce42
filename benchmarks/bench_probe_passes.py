"""Where a probed step's extra time goes, measured inside the step.

Timing a probed step against an unprobed one measures the probes' cost as a difference of two numbers
that each move by ±15 % with the machine's load. This script instead accumulates, inside each step, the
wall time of each probe pass of the fused deep GNN (:mod:`gnndyn.models.fused`) and of the step's own
kernel that the pass carries (ρ in the activation pass, ρ′ in the backward pass), and charges to the
probes what the pass costs beyond that kernel in the unprobed step of the same round:

* ``dirichlet+E(F) fwd`` — the forward's blocked passes over X⁽ᵏ⁾ and F⁽ᵏ⁾ (Dirichlet energy, ℰ(F⁽ᵏ⁾)),
  all of them: layer 0's, and every layer's where no backward takes them (low memory, or ``--stats``
  without ρ′ pass);
* ``E(H)+E(X)`` — the activation pass (moments of H⁽ᵏ⁾ and X⁽ᵏ⁺¹⁾ around ρ on each block) less the
  unprobed step's ρ over all of H⁽ᵏ⁾. (Not less the probed pass's own ρ: that runs on blocks the first
  moments kernel has just read from memory, so it is cheaper than the unprobed ρ, which reads them.)
* ``rho' pass extras`` — the backward's ρ′ passes (ρ′ on each block, the moments of B⁽ᵏ⁻¹⁾ as it is
  written and, for k ≥ 1, the Dirichlet energy of X⁽ᵏ⁾ and ℰ(F⁽ᵏ⁾) from the blocks ρ′ reads,
  :class:`gnndyn.models.fused_stats.Deferred`) less the unprobed step's ρ′, and any separate pass over B;
* ``other`` — the probed step less the unprobed one less the above: ℰ(X⁽⁰⁾), gradient and spectral norms,
  reading the numbers, and whatever the passes change in the rest of the step (this one is a difference
  of steps, so it carries their noise).

Milliseconds per layer, medians over ``--rounds`` interleaved pairs of steps (depth 40, width 64, a 10⁵-node
CSBM, float32, one thread by default, as ``gnndyn bench``)::

    python benchmarks/bench_probe_passes.py --nodes 100000 --depth 40 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import gnndyn.models.fused as fused
import gnndyn.models.fused_stats as fused_stats
from gnndyn.bench_contenders import gnndyn_probed_step, gnndyn_step
from gnndyn.data import csbm
from gnndyn.models import DeepGNN
from gnndyn.operators import build_operator
from gnndyn.probes import stats

ACC: dict[str, float] = {}


def _timed(module, name: str, key: str) -> None:
    inner = getattr(module, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            ACC[key] = ACC.get(key, 0.0) + time.perf_counter() - t0

    setattr(module, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--degree", type=float, default=10.0)
    ap.add_argument("--depth", type=int, default=40)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--stats", default="", help="only these streamed stats (comma-separated names of "
                    "gnndyn.models.fused.STATS) instead of the trainer's every-probe step")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dtype = getattr(torch, a.dtype)
    for name, key in [("xf_pass", "pass_F"), ("activation_pass", "pass_H"), ("act_inplace", "rho"),
                      ("backward_pass", "pass_B"), ("act_backward", "rho_prime")]:
        _timed(fused_stats, name, key)
    _timed(fused_stats.Deferred, "take", "pass_FB")
    _timed(stats, "moments", "moments")
    g = csbm(a.nodes, 2, avg_degree=a.degree, lam=2.0, mu=4.0, feature_dim=a.width, seed=0)
    op = build_operator("gossip", g).to(dtype=dtype)
    x, y = g.x.to(dtype), g.y
    plain = DeepGNN(a.width, a.width, 2, a.depth, "tanh", dtype=dtype)
    probed = DeepGNN(a.width, a.width, 2, a.depth, "tanh", dtype=dtype)
    probed.load_state_dict(plain.state_dict())
    want = [s for s in a.stats.split(",") if s]
    unknown = set(want) - set(fused.STATS)
    if unknown:
        ap.error(f"unknown stats {sorted(unknown)}; valid: {', '.join(fused.STATS)}")
    probed_step = (gnndyn_step(probed, op, x, y, 0.01, stats=frozenset(want)) if want
                   else gnndyn_probed_step(probed, op, x, y, 0.01))
    steps = {"unprobed": gnndyn_step(plain, op, x, y, 0.01), "probed": probed_step}
    rows: dict[str, list[dict[str, float]]] = {k: [] for k in steps}
    for r in range(a.rounds + 1):  # round 0 warms up
        for k in (list(steps) if r % 2 == 0 else list(reversed(steps))):
            ACC.clear()
            t0 = time.perf_counter()
            steps[k]()
            t = time.perf_counter() - t0
            if r:
                rows[k].append({"step": t, **ACC})
    layers = a.depth + 1
    per = []
    for u, p in zip(rows["unprobed"], rows["probed"]):
        fb = p.get("pass_FB", 0.0)  # the deferred passes (their xf_pass is inside, also counted in pass_F)
        f = p.get("pass_F", 0.0) - fb
        h = p.get("pass_H", 0.0) - u.get("rho", 0.0)
        b = fb + p.get("pass_B", 0.0) - u.get("pass_B", 0.0) + p.get("moments", 0.0)
        extra = p["step"] - u["step"]
        per.append({"dirichlet+E(F) fwd": f, "E(H)+E(X)": h, "rho' pass extras": b, "other": extra - f - h - b,
                    "probed - unprobed": extra, "unprobed step": u["step"]})
    print(f"CSBM n={a.nodes}, depth {a.depth}, width {a.width}, {a.dtype}, {a.threads} thread(s), {a.rounds} rounds; "
          "ms per layer (median; range)")
    for key in per[0]:
        vals = [row[key] / layers * 1e3 for row in per]
        print(f"  {key:<18} {statistics.median(vals):8.2f}   ({min(vals):.2f} – {max(vals):.2f})")
    ratio = [p["step"] / u["step"] for u, p in zip(rows["unprobed"], rows["probed"])]
    print(f"  probed / unprobed per round: median {statistics.median(ratio):.3f} ({min(ratio):.3f} – {max(ratio):.3f})")


if __name__ == "__main__":
    main()
