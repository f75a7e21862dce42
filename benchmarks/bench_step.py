"""One gradient-descent step: gnndyn's deep GNN against its contenders, and peak memory.

    python benchmarks/bench_step.py [--nodes 100000] [--depth 40] [--rounds 7] [--device cpu]
                                    [--dtype float32] [--memory-nodes 1000000] [--json out.json]

The same benchmark as ``gnndyn bench`` (see :mod:`gnndyn.bench`) with its default contenders: interleaved round
by round, medians and spreads, ratios, the sparse product's bandwidth, and JSON with ``--json``. The command has
more options (``--contenders``, ``--replicas``, ``--memory-probes``).
"""

from __future__ import annotations

import argparse

from gnndyn.bench import run_step_benchmark

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--degree", type=float, default=10.0)
    ap.add_argument("--depth", type=int, default=40)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--memory-nodes", type=int, default=0)
    ap.add_argument("--memory-degree", type=float, default=20.0)
    ap.add_argument("--memory-depth", type=int, default=40)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    run_step_benchmark(nodes=a.nodes, degree=a.degree, depth=a.depth, width=a.width, rounds=a.rounds,
                       memory_nodes=a.memory_nodes, memory_degree=a.memory_degree, memory_depth=a.memory_depth,
                       device=a.device, dtype=a.dtype, json_path=a.json, profile=a.profile)
