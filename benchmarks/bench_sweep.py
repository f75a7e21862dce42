"""A 16-point sweep on K local workers against the same points run one after another in one process.

The points are ``oversmoothing-at-init`` at depths 40, 60, 80, 100 and seeds 0–3 on a 3000-node CSBM graph
(average degree about 30, width 128, no figures; about 2–3.5 s a point on one idle core, against about 3 s
for a worker to start, i.e. to import torch and gnndyn). The sequential side calls :func:`gnndyn.experiments.run_experiment` for each
point in this process with one thread (torch and BLAS); the sweep side is :func:`gnndyn.sweep.run_sweep` with
``--workers K`` (start-up of the worker pool, gathering the tables and writing the report included).
The two are interleaved ``--repeats`` times in the same run; the load average is printed before and after
(the ratio means little on a machine that other work keeps busy). The sweep's metrics are checked to be
identical to the sequential ones.

Run: ``.venv/bin/python benchmarks/bench_sweep.py`` (``--workers 2 --repeats 2``; ``--quick`` for 8
points at a smaller size).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

# one BLAS/OpenMP thread in this process too (read once, when numpy and torch load)
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

def _load() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg() + f" on {os.cpu_count()} cores"
    except OSError:
        return "load average unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--nodes", type=int, default=3000, help="graph size of every point (default 3000)")
    args = ap.parse_args()

    import pyarrow.parquet as pq
    import torch

    from gnndyn.experiments import get_experiment, run_experiment
    from gnndyn.spec import validate_spec
    from gnndyn.sweep import build_config, plan, run_sweep

    os.environ["GNNDYN_NO_PROGRESS"] = "1"
    torch.set_num_threads(1)
    n, depths, seeds, width = (400, "8,16", 4, 32) if args.quick else (args.nodes, "40,60,80,100", 4, 128)
    p_in, p_out = 50 / n, 9.5 / n  # average degree about 30, as the default CSBM's
    cfg = build_config("oversmoothing-at-init", grid=[f"model.depth={depths}"], seeds=seeds, figures=False,
                       sets=[f"graph.n={n}", f"graph.p_in={p_in}", f"graph.p_out={p_out}", f"model.width={width}"])
    points = plan(cfg)
    print(f"{len(points)} points of {cfg.experiment} (graph.n={n}, width {width}, depths {depths}, {seeds} seeds); "
          f"{args.workers} workers; {_load()}")
    seq_times, sweep_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for r in range(args.repeats):
            t0 = time.perf_counter()
            for p in points:
                spec = validate_spec(get_experiment(cfg.experiment).spec_cls, p["spec"])
                run_experiment(spec, tmp / f"seq{r}" / p["id"], figures=False)
            seq_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            run_sweep(cfg, tmp / f"sweep{r}", workers=args.workers, progress=False)
            sweep_times.append(time.perf_counter() - t0)
            state = json.loads((tmp / f"sweep{r}" / "sweep.json").read_text())
            inside = sum(p["wall_time_s"] for p in state["points"])
            print(f"  repeat {r}: sequential {seq_times[-1]:.1f} s, sweep {sweep_times[-1]:.1f} s, "
                  f"ratio {seq_times[-1] / sweep_times[-1]:.2f}×; {_load()}")
            # where the sweep's time goes: the points themselves (slower side by side: shared caches and
            # memory bandwidth) and the rest (workers starting, gathering the tables, the report, idle tails)
            print(f"    the points took {inside:.1f} s inside the workers ({inside / seq_times[-1]:.2f}× their "
                  f"sequential time); workers busy {inside / (args.workers * sweep_times[-1]):.0%} of the sweep's "
                  f"{args.workers} × {sweep_times[-1]:.1f} s")
            for p in points:
                a = pq.read_table(tmp / f"seq{r}" / p["id"] / "metrics.parquet").to_pandas()
                b = pq.read_table(tmp / f"sweep{r}" / "points" / p["id"] / "metrics.parquet").to_pandas()
                assert a.equals(b), f"point {p['id']}: the sweep's metrics differ from the sequential run's"
    s, w = statistics.median(seq_times), statistics.median(sweep_times)
    print(f"median: sequential {s:.1f} s, sweep on {args.workers} workers {w:.1f} s → {s / w:.2f}× "
          f"(metrics identical); {_load()}")


if __name__ == "__main__":
    main()
