"""Benchmarks (not tests): one gradient-descent step of gnndyn's deep GNN against a plain PyTorch loop.

Both sides do the same work on the same CSBM graph and weights: L + 1 sparse products P·X, L + 1 dense
products, tanh, cross-entropy, backward and a gradient-descent update. The plain loop uses
``torch.sparse.mm`` with PyTorch's own autograd; gnndyn uses :func:`gnndyn.operators.propagate`, whose
backward reuses the symmetric operator. Timings are medians over repeats measured in the same run, and
the ratio gnndyn / plain is printed. Peak memory (max RSS) of one step on a larger graph is measured in
a fresh subprocess so that earlier allocations do not count.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import torch


def _setup(nodes: int, degree: float, depth: int, width: int, device: str, dtype: torch.dtype, seed: int = 0):
    from gnndyn.data import csbm
    from gnndyn.models import DeepGNN
    from gnndyn.operators import build_operator

    t0 = time.perf_counter()
    g = csbm(nodes, 2, avg_degree=degree, lam=2.0, mu=4.0, feature_dim=width, seed=seed)
    t_gen = time.perf_counter() - t0
    op = build_operator("gossip", g).to(device, dtype)
    x, y = g.x.to(device, dtype), g.y.to(device)
    model = DeepGNN(width, width, 2, depth, "tanh", seed=seed, dtype=dtype).to(device)
    return g, op, x, y, model, t_gen


def gnndyn_step(model, op, x, y, lr: float = 0.1) -> float:
    from gnndyn.models import get_loss
    from gnndyn.training import GradientDescent, loss_and_grads

    opt = GradientDescent(lr)
    params = list(model.parameters())
    loss, grads = loss_and_grads(model, op, x, y, get_loss("cross-entropy"), None, keep_signals=False)
    new, _ = opt.update([p.detach() for p in params], grads, None)
    with torch.no_grad():
        for p, w in zip(params, new):
            p.copy_(w)
    return float(loss)


def plain_step(weights: list[torch.Tensor], P: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lr: float = 0.1) -> float:
    """The reference: a plain loop of ``torch.sparse.mm(P, h) @ W`` with PyTorch's autograd."""
    h = x
    for k, W in enumerate(weights):
        h = torch.sparse.mm(P, h) @ W
        if k < len(weights) - 1:
            h = torch.tanh(h)
    loss = torch.nn.functional.cross_entropy(h, y)
    grads = torch.autograd.grad(loss, weights)
    with torch.no_grad():
        for W, g in zip(weights, grads):
            W -= lr * g
    return float(loss.detach())


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn, repeats: int, device: str) -> list[float]:
    fn()  # warm-up
    _sync(device)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t0)
    return out


def step_timings(nodes: int, degree: float, depth: int, width: int, repeats: int, device: str, dtype: str) -> dict[str, Any]:
    tdt = torch.float32 if dtype == "float32" else torch.float64
    g, op, x, y, model, t_gen = _setup(nodes, degree, depth, width, device, tdt)
    weights = [w.detach().clone().requires_grad_(True) for w in model.weights]
    P = op.matrix
    # same numbers on both sides before timing (one step each from the same weights)
    l_g = gnndyn_step(model, op, x, y)
    l_p = plain_step(weights, P, x, y)
    t_g = _time(lambda: gnndyn_step(model, op, x, y), repeats, device)
    t_p = _time(lambda: plain_step(weights, P, x, y), repeats, device)
    return {
        "nodes": nodes, "edges": g.num_edges, "depth": depth, "width": width, "dtype": dtype, "device": device,
        "threads": torch.get_num_threads(), "generate_s": t_gen, "loss_gnndyn": l_g, "loss_plain": l_p,
        "gnndyn_s": statistics.median(t_g), "plain_s": statistics.median(t_p),
        "ratio": statistics.median(t_g) / statistics.median(t_p),
    }


def peak_memory_child(nodes: int, degree: float, depth: int, width: int, device: str, dtype: str) -> dict[str, Any]:
    tdt = torch.float32 if dtype == "float32" else torch.float64
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    g, op, x, y, model, t_gen = _setup(nodes, degree, depth, width, device, tdt)
    after_setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    gnndyn_step(model, op, x, y)
    t_step = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"nodes": nodes, "edges": g.num_edges, "depth": depth, "width": width, "dtype": dtype, "generate_s": t_gen,
           "step_s": t_step, "rss_import_mib": before / 1024, "rss_after_setup_mib": after_setup / 1024,
           "peak_rss_mib": peak / 1024}
    if device.startswith("cuda"):
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def run_step_benchmark(*, nodes: int = 100_000, degree: float = 10.0, depth: int = 40, width: int = 64, repeats: int = 3,
                       memory_nodes: int = 1_000_000, memory_depth: int = 10, device: str = "cpu",
                       dtype: str = "float32", console=None) -> dict[str, Any]:
    """Print and return the step timings (gnndyn vs plain loop, same run) and the peak-memory run."""
    say = console.print if console is not None else print
    say(f"step benchmark: CSBM n={nodes}, avg degree {degree}, depth {depth}, width {width}, {dtype}, {device}, "
        f"{torch.get_num_threads()} threads")
    res = step_timings(nodes, degree, depth, width, repeats, device, dtype)
    say(f"  gnndyn step {res['gnndyn_s']:.3f} s | plain PyTorch loop {res['plain_s']:.3f} s | "
        f"ratio gnndyn/plain = {res['ratio']:.3f}  (graph generated in {res['generate_s']:.2f} s, {res['edges']} edges)")
    if memory_nodes:
        cmd = [sys.executable, "-m", "gnndyn.bench", "--memory", json.dumps(
            {"nodes": memory_nodes, "degree": degree, "depth": memory_depth, "width": width, "device": device, "dtype": dtype})]
        say(f"peak memory: one step at n={memory_nodes}, depth {memory_depth}, width {width} (fresh process)...")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            say(f"  memory run failed: {proc.stderr.strip()[-500:]}")
        else:
            mem = json.loads(proc.stdout.strip().splitlines()[-1])
            res["memory"] = mem
            say(f"  generate {mem['generate_s']:.2f} s ({mem['edges']} edges), step {mem['step_s']:.2f} s, "
                f"peak RSS {mem['peak_rss_mib']:.0f} MiB (after setup {mem['rss_after_setup_mib']:.0f} MiB)")
    return res


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory":
        kw = json.loads(sys.argv[2])
        print(json.dumps(peak_memory_child(**kw)))
    else:
        run_step_benchmark()
