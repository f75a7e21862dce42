"""Exact population loss against Monte Carlo, timed in the same run (Awasthi et al. §3–4 models).

For the one-round ReLU GNN (dual-activation closed form, :mod:`gnndyn.models.population_relu`) and the
deep linear GNN (sparse backward recursion, :mod:`gnndyn.models.population_linear`), this prints

* the time of one exact population-loss evaluation (median of repeats; the ReLU kernel is built once
  beforehand and its build time is printed separately),
* the accuracy of that evaluation, against the same closed form in higher precision (mpmath, 40 digits, for
  ReLU; 80-bit long double for the linear recursion),
* the time of a Monte Carlo estimate at 1 % relative standard error (measured: the sample count comes from a
  pilot run's variance),
* the Monte Carlo time that the exact evaluation's accuracy would need, extrapolated from the measured time
  per sample (standard error ∝ 1/√N), and both ratios.

Run: ``.venv/bin/python benchmarks/bench_population.py`` (paper sizes: n = 100, r = h = 10, d = 10 for
ReLU; d = 5, L = 3 for linear) or ``--quick`` (n = 30, fewer repeats). One intra-op thread throughout.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import mpmath
import numpy as np
import torch

from gnndyn.data.generators import random_regular
from gnndyn.models import teacher_student as ts


def _median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _mc_timing(mc, exact: float, pilot: int, target: float) -> dict:
    """Pilot run for the variance, then a timed run sized for relative standard error ``target``."""
    _, se0 = mc(pilot, 1)
    std = se0 * math.sqrt(pilot)
    n_needed = max(int(math.ceil((std / (target * exact)) ** 2)), 100)
    t0 = time.perf_counter()
    mean, se = mc(n_needed, 2)
    t = time.perf_counter() - t0
    return {"samples": n_needed, "time": t, "mean": mean, "se": se, "per_sample": t / n_needed, "std": std}


def bench_relu(n: int, d: int, r: int, h: int, repeats: int, pilot: int) -> None:
    g = random_regular(n, d, seed=0)
    t0 = time.perf_counter()
    kernel = ts.DualKernel.from_graph(g)
    t_build = time.perf_counter() - t0
    W = ts.relu_init(h, r, 0)
    Ws = ts.relu_teacher(h, r, 0)
    exact = float(ts.relu_population_loss(W[None], Ws[None], kernel)[0])
    t_exact = _median_time(lambda: ts.relu_population_loss(W[None], Ws[None], kernel), repeats)
    # the same closed form in 40-digit arithmetic
    mpmath.mp.dps = 40
    c = [mpmath.mpf(x) for x in kernel.coef[0].tolist()]
    w = [mpmath.mpf(x) for x in kernel.weight[0].tolist()]
    sh = lambda x: (mpmath.sqrt(1 - x * x) + (mpmath.pi - mpmath.acos(x)) * x) / mpmath.pi  # noqa: E731
    g1 = sum(wi * sh(ci) for ci, wi in zip(c, w))
    ref = mpmath.mpf(0)
    for j in range(h):
        a = [mpmath.mpf(x) for x in W[j].tolist()]
        b = [mpmath.mpf(x) for x in Ws[j].tolist()]
        la, lb = mpmath.sqrt(sum(x * x for x in a)), mpmath.sqrt(sum(x * x for x in b))
        rho = sum(x * y for x, y in zip(a, b)) / (la * lb)
        ref += (la ** 2 + lb ** 2) / 2 * g1 - la * lb * sum(wi * sh(ci * rho) for ci, wi in zip(c, w))
    acc = max(abs(exact - float(ref)) / float(ref), 2.0 ** -52)
    mc = _mc_timing(lambda k, s: ts.relu_monte_carlo_loss(g, W, Ws, k, seed=s), exact, pilot, 0.01)
    _report(f"one-round ReLU GNN (random {d}-regular, n = {n}, r = {r}, h = {h})", t_build, t_exact, exact, acc, mc)


def bench_linear(n: int, d: int, r: int, depth: int, repeats: int, pilot: int) -> None:
    g = random_regular(n, d, seed=0)
    lgb = ts.LinearGraphBatch.from_graphs([g])
    W1s, W2s = ts.linear_teacher(r, 0, scale=0.5)
    gen = torch.Generator().manual_seed(1)
    W1 = torch.eye(r) + 0.1 * torch.randn(r, r, generator=gen)
    W2 = torch.eye(r) + 0.1 * torch.randn(r, r, generator=gen)
    t0 = time.perf_counter()
    T_star = ts.transfer_matrices(lgb, W1s[None], W2s[None], depth)
    t_build = time.perf_counter() - t0
    exact = float(ts.linear_population_loss(lgb, W1[None], W2[None], T_star, depth)[0])
    t_exact = _median_time(lambda: ts.linear_population_loss(lgb, W1[None], W2[None], T_star, depth), repeats)
    # the same recursion in 80-bit long double (dense adjacency: n is small here)
    A = g.adjacency().toarray().astype(np.longdouble)

    def tm(a, b):
        a, b = a.numpy().astype(np.longdouble), b.numpy().astype(np.longdouble)
        u = np.broadcast_to(np.eye(r, dtype=np.longdouble), (n, r, r)).copy()
        for _ in range(depth):
            u = u @ a + np.einsum("ij,jab->iab", A, u) @ b
        return u

    ref = 0.5 * np.sum((tm(W1, W2) - tm(W1s, W2s)) ** 2)
    acc = max(float(abs(np.longdouble(exact) - ref) / ref), 2.0 ** -52)
    mc = _mc_timing(lambda k, s: ts.linear_monte_carlo_loss(g, W1, W2, W1s, W2s, depth, k, seed=s), exact, pilot, 0.01)
    _report(f"deep linear GNN (random {d}-regular, n = {n}, r = {r}, L = {depth})", t_build, t_exact, exact, acc, mc)


def _report(title: str, t_build: float, t_exact: float, exact: float, acc: float, mc: dict) -> None:
    extrap = mc["per_sample"] * (mc["std"] / (acc * exact)) ** 2
    print(f"\n{title}")
    print(f"  set-up once (kernel / teacher transfer matrices) {t_build * 1e3:10.3f} ms")
    acc_s = f"{acc:.1e}" if acc > 2.0 ** -52 else f"≤ {acc:.1e} (below one ulp; taken as one ulp)"
    print(f"  exact population loss, one evaluation           {t_exact * 1e3:10.3f} ms   value {exact:.10g}, "
          f"relative accuracy {acc_s}")
    print(f"  Monte Carlo at 1 % relative s.e. (measured)     {mc['time'] * 1e3:10.1f} ms   {mc['samples']} samples, "
          f"estimate {mc['mean']:.6g} ± {mc['se']:.2g} ({(mc['mean'] - exact) / mc['se']:+.2f} s.e. from exact)")
    print(f"  ratio Monte Carlo (1 %) / exact                 {mc['time'] / t_exact:10.3g}")
    print(f"  Monte Carlo at the exact evaluation's accuracy  {extrap:10.3g} s    (extrapolated: "
          f"{(mc['std'] / (acc * exact)) ** 2:.2g} samples × {mc['per_sample'] * 1e6:.3g} µs)")
    print(f"  ratio Monte Carlo (same accuracy) / exact       {extrap / t_exact:10.3g}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats (seconds)")
    args = p.parse_args()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    if args.quick:
        bench_relu(n=30, d=4, r=5, h=4, repeats=20, pilot=2000)
        bench_linear(n=30, d=4, r=5, depth=2, repeats=20, pilot=2000)
    else:
        bench_relu(n=100, d=10, r=10, h=10, repeats=50, pilot=4000)
        bench_linear(n=100, d=5, r=10, depth=3, repeats=50, pilot=4000)


if __name__ == "__main__":
    main()
