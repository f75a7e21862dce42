"""``gnndyn bench``: one gradient-descent step of the deep GNN against its contenders, measured honestly.

* **Same work.** Every contender (:mod:`gnndyn.bench_contenders`) starts from the same weights on the
  same CSBM graph and gossip operator; their first losses are compared (``same_loss``) before timing.
* **Interleaved rounds.** After a warm-up step each, round r times one step of every contender, in an
  order rotated every round, so that a load change on the machine hits all of them alike. Medians,
  quartiles and extremes over ``rounds`` (≥ 5) are reported, and the ratio gnndyn / contender is the
  ratio of medians, with the median and range of the per-round ratios.
* **The floor.** ``floor`` runs the kernels alone into preallocated buffers; gnndyn / floor is how far
  gnndyn is from the best a step can do with these kernels.
* **Sparse-product bandwidth.** Bytes moved by P X (nnz·(index + value) + (n + 1)·index + 2·n·d·value)
  over the median time of one product, against the device's peak where it is known (CUDA).
* **Memory.** Peak RSS (and peak CUDA memory) of one step in a fresh subprocess (:func:`memory_child`).

The results are printed and, with ``json_path``, written as JSON. Every option is checked
(:func:`check_options`, :func:`check_json_path`) before anything is built, timed or printed; the messages
name the command-line options of ``gnndyn bench``.
"""

from __future__ import annotations

import gc
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import torch

from gnndyn import bench_contenders as bc
from gnndyn.bench_options import (  # noqa: F401  (re-exported: the options' checks live there)
    CONTENDERS,
    DTYPES,
    LAM,
    MEMORY_OPTIONS,
    MIN_DEGREE,
    MIN_NODES,
    MU,
    BenchFailure,
    _check_int,
    check_device,
    check_json_path,
    check_options,
    ineffective_options,
    max_degree,
)
from gnndyn.errors import GnndynError


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _setup(nodes: int, degree: float, depth: int, width: int, device: str, dtype: torch.dtype, seed: int = 0):
    from gnndyn.data import csbm
    from gnndyn.models import DeepGNN
    from gnndyn.operators import build_operator

    t0 = time.perf_counter()
    g = csbm(nodes, 2, avg_degree=degree, lam=LAM, mu=MU, feature_dim=width, seed=seed)
    t_gen = time.perf_counter() - t0
    op = build_operator("gossip", g).to(device, dtype)
    x, y = g.x.to(device, dtype), g.y.to(device)
    model = DeepGNN(width, width, 2, depth, "tanh", seed=seed, dtype=dtype).to(device)
    info = {"nodes": nodes, "edges": g.num_edges, "nnz": op.nnz, "generate_s": t_gen}
    return info, op, x, y, model


def _csr64(op) -> torch.Tensor:
    m = op.matrix
    return torch.sparse_csr_tensor(m.crow_indices().long(), m.col_indices().long(), m.values(), size=m.shape)


def build_contenders(op, x, y, model, lr: float, names=CONTENDERS) -> dict[str, bc.Step]:
    from gnndyn.models import DeepGNN

    base = [w.detach().clone() for w in model.weights]

    def weights() -> list[torch.Tensor]:
        return [w.clone().requires_grad_(True) for w in base]

    def gnn() -> DeepGNN:
        m = DeepGNN(model.dims[0], model.dims[1:-1], model.dims[-1], model.depth, model.act, dtype=base[0].dtype)
        with torch.no_grad():
            for p, w in zip(m.weights, base):
                p.copy_(w)
        return m.to(x.device)

    P64 = _csr64(op)
    make = {
        "gnndyn": lambda: bc.gnndyn_step(gnn(), op, x, y, lr),
        "gnndyn+probes": lambda: bc.gnndyn_probed_step(gnn(), op, x, y, lr),
        "fair": lambda: bc.fair_step(weights(), P64, x, y, lr),
        "plain": lambda: bc.plain_step(weights(), P64, x, y, lr),
        "pyg": lambda: bc.pyg_step(weights(), op, x, y, lr),
        "floor": lambda: bc.floor_step(weights(), op, x, y, lr),
    }
    return {n: make[n]() for n in names}


def interleaved(steps: dict[str, bc.Step], rounds: int, device: str,
                last: dict[str, torch.Tensor] | None = None) -> dict[str, list[float]]:
    """Seconds per step of each contender, ``rounds`` interleaved rounds (order rotated every round);
    ``last`` receives each contender's last returned loss."""
    names = list(steps)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            _sync(device)
            t0 = time.perf_counter()
            value = steps[n]()
            _sync(device)
            out[n].append(time.perf_counter() - t0)
            if last is not None:
                last[n] = value
    return out


def _summary(ts: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ts, n=4) if len(ts) >= 2 else [ts[0]] * 3
    return {"median_s": statistics.median(ts), "q1_s": q[0], "q3_s": q[2], "min_s": min(ts), "max_s": max(ts)}


def _ratio(a: list[float], b: list[float]) -> dict[str, float]:
    """a / b as the ratio of medians, and the median and extremes of the per-round ratios (a round's two
    steps ran seconds apart, so a slow drift of the machine cancels in them)."""
    per = [x / y for x, y in zip(a, b)]
    return {"ratio_of_medians": statistics.median(a) / statistics.median(b), "median_per_round": statistics.median(per),
            "min": min(per), "max": max(per)}


def spmm_bandwidth(op, width: int, device: str, repeats: int = 7) -> dict[str, Any]:
    """Achieved bandwidth of one sparse product into a preallocated output."""
    from gnndyn.operators.base import spmm

    n, m = op.num_nodes, op.matrix
    x = torch.randn(n, width, dtype=op.dtype, device=device)
    out = torch.empty_like(x)
    spmm(m, x, out)
    ts = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        spmm(m, x, out)
        _sync(device)
        ts.append(time.perf_counter() - t0)
    ib, vb = m.col_indices().element_size(), m.values().element_size()
    nbytes = op.nnz * (ib + vb) + (n + 1) * ib + 2 * n * width * vb
    t = statistics.median(ts)
    res: dict[str, Any] = {"seconds": t, "bytes": nbytes, "gb_per_s": nbytes / t / 1e9, "peak_gb_per_s": None}
    if device.startswith("cuda"):
        p = torch.cuda.get_device_properties(torch.device(device))
        clock, bus = getattr(p, "memory_clock_rate", None), getattr(p, "memory_bus_width", None)
        if clock and bus:  # kHz, bits; DDR: two transfers per clock
            res["peak_gb_per_s"] = 2 * clock * 1e3 * bus / 8 / 1e9
            res["fraction_of_peak"] = res["gb_per_s"] / res["peak_gb_per_s"]
    return res


def profile_step(step: bc.Step, rows: int = 15) -> str:
    """torch.profiler's table of one step (self CPU time)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def step_benchmark(*, nodes: int, degree: float, depth: int, width: int, rounds: int, device: str, dtype: str,
                   lr: float = 0.1, contenders=CONTENDERS) -> dict[str, Any]:
    """Build every contender, check their losses agree, time interleaved rounds; a JSON-ready dict."""
    dtype, contenders = check_options(nodes=nodes, degree=degree, depth=depth, width=width, rounds=rounds,
                                      device=device, dtype=dtype, contenders=contenders)
    tdt = DTYPES[dtype]
    info, op, x, y, model = _setup(nodes, degree, depth, width, device, tdt)
    steps = build_contenders(op, x, y, model, lr, contenders)
    losses = {n: float(s()) for n, s in steps.items()}  # first step: same weights everywhere
    ref = losses[contenders[0]]
    rel = {n: abs(v - ref) / max(abs(ref), 1e-30) for n, v in losses.items()}
    tol = 1e-4 if tdt == torch.float32 else 1e-10
    last: dict[str, torch.Tensor] = {}
    times = interleaved(steps, rounds, device, last)
    # after 1 + rounds identical updates every contender should still agree
    after = {n: float(v) for n, v in last.items()}
    rel_after = {n: abs(v - after[contenders[0]]) / max(abs(after[contenders[0]]), 1e-30) for n, v in after.items()}
    summ = {n: _summary(t) for n, t in times.items()}
    ratios = {}
    if "gnndyn" in times:
        for n in times:
            if n != "gnndyn":
                ratios[f"gnndyn/{n}"] = _ratio(times["gnndyn"], times[n])
    if "gnndyn+probes" in times and "gnndyn" in times:
        ratios["probed/unprobed"] = _ratio(times["gnndyn+probes"], times["gnndyn"])
    return {**info, "depth": depth, "width": width, "dtype": dtype, "device": device, "rounds": rounds,
            "threads": torch.get_num_threads(), "torch": torch.__version__, "losses": losses,
            "loss_rel_diff": rel, "losses_after": after, "loss_after_rel_diff": rel_after, "loss_tolerance": tol,
            "same_loss": all(v <= tol for v in [*rel.values(), *rel_after.values()]),
            "times": times, "summary": summ, "ratios": ratios, "spmm": spmm_bandwidth(op, width, device)}


def stacked_vs_separate(*, nodes: int, degree: float, depth: int, width: int, replicas: int, rounds: int,
                        device: str, dtype: str) -> dict[str, Any]:
    """R seeds stacked along the feature axis (:class:`gnndyn.models.stacked.StackedDeepGNN`) against R
    separate forward-backward passes, interleaved rounds; same losses checked first."""
    from gnndyn.models import DeepGNN, get_loss
    from gnndyn.models.stacked import StackedDeepGNN

    dtype, _ = check_options(nodes=nodes, degree=degree, depth=depth, width=width, rounds=rounds, replicas=replicas,
                             device=device, dtype=dtype)
    _check_int("--replicas", replicas, 1)
    tdt = DTYPES[dtype]
    info, op, x, y, _ = _setup(nodes, degree, depth, width, device, tdt)
    ce = get_loss("cross-entropy")
    models = [DeepGNN(width, width, 2, depth, "tanh", seed=s, dtype=tdt).to(device) for s in range(replicas)]
    stack = StackedDeepGNN(models)

    def separate() -> torch.Tensor:
        out = []
        for m in models:
            value = ce(m(op, x), y)
            torch.autograd.grad(value, list(m.parameters()))
            out.append(value.detach())
        return torch.stack(out)

    def stacked() -> torch.Tensor:
        values = stack.replica_losses(stack(op, x), ce, y)
        torch.autograd.grad(values.sum(), list(stack.parameters()))
        return values.detach()

    diff = float((separate() - stacked()).abs().max())
    times = interleaved({"separate": separate, "stacked": stacked}, rounds, device)
    summ = {k: _summary(v) for k, v in times.items()}
    return {**info, "replicas": replicas, "depth": depth, "width": width, "dtype": dtype, "device": device,
            "loss_max_abs_diff": diff, "summary": summ,
            "stacked/separate": summ["stacked"]["median_s"] / summ["separate"]["median_s"]}


def _rss_now_mib() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:  # not Linux
        return float("nan")


def memory_child(nodes: int, degree: float, depth: int, width: int, device: str, dtype: str, memory: str = "low",
                 probes: bool = False) -> dict[str, Any]:
    """One gradient-descent step in this (fresh) process; peak RSS from ``getrusage``."""
    tdt = DTYPES[dtype]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    info, op, x, y, model = _setup(nodes, degree, depth, width, device, tdt)
    model.memory = memory
    gc.collect()
    after_setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_setup = _rss_now_mib()
    step = (bc.gnndyn_probed_step if probes else bc.gnndyn_step)(model, op, x, y, 0.1)
    t0 = time.perf_counter()
    loss = float(step())
    t_step = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {**info, "depth": depth, "width": width, "dtype": dtype, "memory": memory, "probes": probes, "loss": loss,
           "step_s": t_step, "rss_import_mib": before / 1024, "rss_after_setup_mib": after_setup / 1024,
           "rss_now_after_setup_mib": rss_setup, "peak_rss_mib": peak / 1024}
    if device.startswith("cuda"):
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _worker_reason(returncode: int, stderr: str) -> str:
    """One line on why a worker process failed: its error message, or the signal that killed it."""
    if returncode < 0:
        sig = -returncode
        hint = " (SIGKILL: most often the out-of-memory killer; try a smaller --memory-nodes)" if sig == 9 else ""
        return f"killed by signal {sig}{hint}"
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    last = lines[-1].removeprefix("error: ") if lines else "(no message)"
    return f"exit code {returncode}: {last}"


def memory_run(**kw: Any) -> dict[str, Any]:
    """:func:`memory_child` in a fresh interpreter (earlier allocations of this process do not count).
    A failed worker gives ``{"error": one line, "stderr": its last lines, **kw}``."""
    cmd = [sys.executable, "-m", "gnndyn.bench", "--memory", json.dumps(kw)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": _worker_reason(proc.returncode, proc.stderr), "stderr": proc.stderr.strip()[-800:], **kw}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"the worker printed no result (stdout: {proc.stdout.strip()[-200:]!r})",
                "stderr": proc.stderr.strip()[-800:], **kw}


def run_step_benchmark(*, nodes: int = 100_000, degree: float = 10.0, depth: int = 40, width: int = 64,
                       rounds: int = 7, memory_nodes: int = 0, memory_degree: float = 20.0, memory_depth: int = 40,
                       memory_probes: bool = True, device: str = "cpu", dtype: str = "float32",
                       json_path: str | Path | None = None, profile: bool = False, replicas: int = 0,
                       contenders: tuple[str, ...] = CONTENDERS, console=None, given: Collection[str] | None = None,
                       warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Print and return the interleaved step timings, ratios, spmm bandwidth and (optionally) peak memory.

    Every option and ``json_path`` are checked first (:class:`GnndynError`, nothing printed or timed); a
    failed peak-memory worker or JSON write raises :class:`BenchFailure` once the rest is printed and saved.
    Options given (``given``: the parameters set explicitly; ``None``: those not at their default) that have
    no effect (:func:`ineffective_options`) are warned about before the header, by ``warn`` (default: printed
    as ``warning: ...``).
    """
    dtype, contenders = check_options(nodes=nodes, degree=degree, depth=depth, width=width, rounds=rounds,
                                      memory_nodes=memory_nodes, memory_degree=memory_degree,
                                      memory_depth=memory_depth, replicas=replicas, device=device, dtype=dtype,
                                      contenders=tuple(contenders))
    json_path = check_json_path(json_path)
    say = console.print if console is not None else print
    unused = ineffective_options(memory_nodes=memory_nodes, memory_degree=memory_degree, memory_depth=memory_depth,
                                 memory_probes=memory_probes, given=given)
    if unused:
        (warn or (lambda m: say(f"warning: {m}")))(unused)
    if rounds < 5:
        say(f"note: {rounds} rounds (fewer than 5): spreads are rough.")
    say(f"step benchmark: CSBM n={nodes}, avg degree {degree}, depth {depth}, width {width}, {dtype}, {device}, "
        f"{torch.get_num_threads()} threads, {rounds} interleaved rounds")
    res = step_benchmark(nodes=nodes, degree=degree, depth=depth, width=width, rounds=rounds, device=device, dtype=dtype,
                         contenders=contenders)
    say(f"  graph: {res['edges']} edges, nnz(P) = {res['nnz']} (generated in {res['generate_s']:.2f} s); "
        f"losses agree (first and last step): {res['same_loss']} (max rel. diff "
        f"{max(res['loss_rel_diff'].values()):.1e}, {max(res['loss_after_rel_diff'].values()):.1e})")
    for n, s in res["summary"].items():
        say(f"  {n:<14} median {s['median_s']:8.4f} s   quartiles [{s['q1_s']:.4f}, {s['q3_s']:.4f}]   "
            f"range [{s['min_s']:.4f}, {s['max_s']:.4f}]")
    for n, r in res["ratios"].items():
        say(f"  {n:<22} {r['ratio_of_medians']:.3f}   (per round: median {r['median_per_round']:.3f}, "
            f"range {r['min']:.3f} – {r['max']:.3f})")
    b = res["spmm"]
    peak = f", {100 * b['fraction_of_peak']:.0f} % of peak {b['peak_gb_per_s']:.0f} GB/s" if b.get("peak_gb_per_s") else ""
    say(f"  sparse product P·X: {1e3 * b['seconds']:.2f} ms, {b['gb_per_s']:.1f} GB/s{peak}")
    if profile:
        info, op, x, y, model = _setup(nodes, degree, depth, width, device, DTYPES[dtype])
        step = bc.gnndyn_step(model, op, x, y, 0.1)
        step()
        res["profile"] = profile_step(step)
        say(res["profile"])
    if replicas:
        sv = stacked_vs_separate(nodes=nodes, degree=degree, depth=depth, width=width, replicas=replicas,
                                 rounds=rounds, device=device, dtype=dtype)
        res["stacked"] = sv
        say(f"  {replicas} seeds stacked (n × {replicas}·{width}) / {replicas} separate passes: "
            f"{sv['stacked/separate']:.3f} (losses agree to {sv['loss_max_abs_diff']:.1e})")
    failures: list[tuple[str, str]] = []  # (what failed, how to fix it)
    if memory_nodes:
        res["memory"] = []
        for probes in ([False, True] if memory_probes else [False]):
            say(f"peak memory: one step at n={memory_nodes}, avg degree {memory_degree}, depth {memory_depth}, "
                f"width {width}, memory='low', probes={probes} (fresh process)...")
            mem = memory_run(nodes=memory_nodes, degree=memory_degree, depth=memory_depth, width=width, device=device,
                             dtype=dtype, memory="low", probes=probes)
            res["memory"].append(mem)
            if "error" in mem:
                say(f"  memory run failed: {mem['error']}")
                fix = ("rerun with other --memory-nodes, --memory-degree or --memory-depth, or with --memory-nodes 0 "
                       "to skip the peak-memory runs")
                failures.append((f"the peak-memory run with probes={probes} failed ({mem['error']})", fix))
            else:
                say(f"  {mem['edges']} edges, generated in {mem['generate_s']:.1f} s, step {mem['step_s']:.1f} s, "
                    f"peak RSS {mem['peak_rss_mib']:.0f} MiB (peak during setup {mem['rss_after_setup_mib']:.0f} MiB, "
                    f"held after setup {mem['rss_now_after_setup_mib']:.0f} MiB)")
    written = False
    if json_path is not None:
        try:
            json_path.write_text(json.dumps(res, indent=1))
            written = True
        except OSError as exc:
            fix = "free space or fix the folder's permissions, or give another --json path"
            failures.append((f"could not write --json {json_path} ({exc.strerror or exc})", fix))
        else:
            say(f"  wrote {json_path}")
    if failures:
        kept = "The results above were printed" + (f" and written to {json_path}" if written else "")
        raise BenchFailure("; ".join(what for what, _ in failures) + f". {kept}. To fix: "
                           + "; ".join(dict.fromkeys(fix for _, fix in failures)) + ".")
    return res


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory":
        try:
            print(json.dumps(memory_child(**json.loads(sys.argv[2]))))
        except GnndynError as exc:  # one line for the parent (memory_run) to show
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
    else:
        run_step_benchmark()
