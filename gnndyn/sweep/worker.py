"""What runs one point, in whichever process a backend chose: an ordinary run into the point's folder.

A task is a plain mapping (it crosses process and machine boundaries):
``{"id", "spec" (the spec as JSON data), "dir" (the point's folder), "figures", "threads"}``.
:func:`run_point` never raises for a failure of the run itself: a divergence or an error is the point's
result (status and message), recorded in its ``run.json`` as by any run.
"""

from __future__ import annotations

import os
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def pin_threads(threads: int) -> None:
    """Give this process ``threads`` compute threads: the OpenMP/MKL/OpenBLAS variables (for libraries
    that start later) and torch's intra-op pool; no progress bars inside workers."""
    threads = max(1, int(threads))
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    os.environ["GNNDYN_NO_PROGRESS"] = "1"
    import torch

    torch.set_num_threads(threads)


def _failed(task: dict[str, Any], message: str, t0: float) -> dict[str, Any]:
    return {"id": task["id"], "status": "failed", "error": message, "wall_time_s": time.perf_counter() - t0}


def run_point(task: dict[str, Any]) -> dict[str, Any]:
    """Run one point into a clean folder and return ``{"id", "status", "error", "wall_time_s"}``."""
    t0 = time.perf_counter()
    pin_threads(task.get("threads", 1))
    from gnndyn.errors import DivergenceError
    from gnndyn.experiments.base import get_experiment, run_experiment
    from gnndyn.spec import validate_spec
    from gnndyn.store.run import RunStore

    out = Path(task["dir"])
    try:
        if out.exists():
            shutil.rmtree(out)
        spec = validate_spec(get_experiment(task["spec"]["experiment"]).spec_cls, task["spec"])
    except Exception as exc:  # noqa: BLE001 - recorded as the point's failure
        message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        RunStore(out).write_json("spec.json", task["spec"])
        RunStore(out).write_json("run.json", {"status": "failed", "error": message, "summary": {}})
        return _failed(task, message, t0)
    try:
        run_experiment(spec, out, figures=bool(task.get("figures", True)))
        status, error = "ok", None
    except DivergenceError as exc:
        status, error = "diverged", str(exc)
    except Exception as exc:  # noqa: BLE001 - failures are data
        status, error = "failed", "".join(traceback.format_exception_only(type(exc), exc)).strip()
        store = RunStore(out)
        try:
            recorded = store.read_json("run.json").get("status")
        except (OSError, ValueError):
            recorded = None
        if recorded != "failed":  # the run stopped before writing its own record
            store.write_json("spec.json", spec.model_dump(mode="json"))
            store.write_json("run.json", {"experiment": spec.experiment, "status": "failed", "error": error, "summary": {}})
    return {"id": task["id"], "status": status, "error": error, "wall_time_s": time.perf_counter() - t0}


def init_worker(threads: int, sweep_pid: int | None = None) -> None:
    """Process-pool initializer: pin the worker's threads once; ignore Ctrl-C (the sweep's process stops its
    workers) and, given ``sweep_pid``, exit when that process is gone (:func:`watch_sweep`)."""
    import signal
    import threading

    pin_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sweep_pid is not None:
        threading.Thread(target=watch_sweep, args=(sweep_pid,), name="gnndyn-watch-sweep", daemon=True).start()


def watch_sweep(pid: int, every: float = 1.0) -> None:
    """Exit this worker (at once, leaving its point's folder incomplete) once the process ``pid`` is gone:
    a sweep killed outright leaves no orphan writing into its folder."""
    while True:
        time.sleep(every)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # the number now belongs to another user's process: ours is gone
            os._exit(1)
