"""One gradient-descent step: gnndyn's deep GNN vs a plain PyTorch loop, and peak memory.

    python benchmarks/bench_step.py [--nodes 100000] [--device cpu] [--dtype float32]

Equivalent to ``gnndyn bench``; prints timings measured in the same run and their ratio.
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
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory-nodes", type=int, default=1_000_000)
    ap.add_argument("--memory-depth", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    a = ap.parse_args()
    run_step_benchmark(nodes=a.nodes, degree=a.degree, depth=a.depth, width=a.width, repeats=a.repeats,
                       memory_nodes=a.memory_nodes, memory_depth=a.memory_depth, device=a.device, dtype=a.dtype)
