"""Where the points run. A backend takes the tasks of :mod:`gnndyn.sweep.worker` and calls
``on_result(result)`` in the sweep's process as each point finishes, in finishing order.

* ``local`` — a :class:`concurrent.futures.ProcessPoolExecutor` of K workers started with the
  ``forkserver`` context (``spawn`` where there is none). Each worker is pinned to its share of the cores:
  ``max(1, cores // K)`` torch intra-op threads and the same ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/
  ``OPENBLAS_NUM_THREADS``, set in the environment the workers start with (BLAS libraries read them once,
  when they load; a spinning second BLAS thread on a busy core made small points 20–30× slower).
* ``ray`` — each point one Ray task (``num_cpus=1``), retried by Ray when its worker process or node is
  lost (``max_retries``); ``ray.init()`` starts a local instance with ``num_cpus=K`` and no dashboard, or
  connects to ``address`` (an existing cluster: gnndyn must be installed on its nodes and the sweep
  folder must be on a file system they share). Ray is the optional extra ``gnndyn[ray]``.

A point whose worker is lost for good (a killed process, Ray out of retries) comes back as a ``failed``
result with the message; the sweep goes on. On the local backend a lost worker breaks the whole pool (the
other workers are stopped with it): the points that had not started run on a fresh pool, those that were
running run again, and a point lost :data:`MAX_LOSSES` times (one that is killed every time it runs, e.g. for
its memory) is the one recorded as failed.

The local workers ignore Ctrl-C (the sweep's process stops them) and watch the sweep's process: when it is
gone (killed), they exit within a second, leaving the point they were running incomplete, so that no
orphan goes on writing into the sweep folder.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from gnndyn.errors import GnndynError
from gnndyn.sweep.worker import THREAD_VARS, init_worker, run_point

BACKENDS = ("local", "ray")
OnResult = Callable[[dict[str, Any]], None]


def cores() -> int:
    """Cores this process may use (its affinity set where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    return max(1, cores() // max(1, workers))


#: how many times a point's worker may be lost before the point is recorded as failed (local backend)
MAX_LOSSES = 2


def _lost(task: dict[str, Any], exc: BaseException, times: int = 1) -> dict[str, Any]:
    what = "the worker running this point was lost" + (f" {times} times (killed each time it ran: out of memory?)"
                                                       if times > 1 else "")
    return {"id": task["id"], "status": "failed", "error": f"{what}: {type(exc).__name__}: {exc}", "wall_time_s": None}


def _started_since(task: dict[str, Any], t0: float) -> bool:
    """Whether ``task``'s run began at or after ``t0`` (its folder's run.json was written since)."""
    try:
        return (Path(task["dir"]) / "run.json").stat().st_mtime >= t0
    except OSError:
        return False


def _stop_workers(ex: ProcessPoolExecutor) -> None:
    """Stop the pool's worker processes now (their points stay incomplete) and release the pool."""
    kill = getattr(ex, "terminate_workers", None)  # Python ≥ 3.14
    if kill is not None:
        kill()
    else:
        for proc in list((getattr(ex, "_processes", None) or {}).values()):
            proc.terminate()
    ex.shutdown(wait=False, cancel_futures=True)


def _pool_round(todo: list[dict[str, Any]], workers: int, ctx, threads: int, on_result: OnResult,
                losses: dict[str, int]) -> list[dict[str, Any]]:
    """Run ``todo`` on one pool; the tasks to run again on a fresh pool when this one broke (a lost worker)."""
    again: list[dict[str, Any]] = []
    t0 = time.time() - 1.0  # mtime resolution
    ex = ProcessPoolExecutor(max_workers=max(1, min(workers, len(todo))), mp_context=ctx, initializer=init_worker,
                             initargs=(threads, os.getpid()))
    try:
        futures = {ex.submit(run_point, t): t for t in todo}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                task = futures[f]
                try:
                    result = f.result()
                except BrokenProcessPool as exc:
                    if _started_since(task, t0):  # it was running when the pool broke
                        losses[task["id"]] = losses.get(task["id"], 0) + 1
                        if losses[task["id"]] >= MAX_LOSSES:
                            on_result(_lost(task, exc, losses[task["id"]]))
                            continue
                    again.append(task)
                    continue
                except Exception as exc:  # noqa: BLE001 - the point's failure
                    result = _lost(task, exc)
                on_result(result)
    except BaseException:  # Ctrl-C or an error in the sweep's own process: stop at once, not after the queue
        _stop_workers(ex)
        raise
    ex.shutdown(wait=True)
    if again and len(again) == len(todo) and not any(_started_since(t, t0) for t in todo):
        # the pool broke before any point began (a worker that cannot start): no fresh pool will do better
        for task in again:
            on_result(_lost(task, BrokenProcessPool("the worker processes could not start")))
        return []
    return again


def run_local(tasks: list[dict[str, Any]], workers: int, on_result: OnResult) -> None:
    """Run ``tasks`` on a pool of ``workers`` processes (a fresh pool for the points a lost worker took with it)."""
    if not tasks:
        return
    workers = max(1, min(int(workers), len(tasks)))
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    # no forkserver preload of torch: workers forked from a server that had imported torch ran the same
    # point 4× slower (measured); each worker imports what it needs itself
    threads = threads_per_worker(workers)
    tasks = [{**t, "threads": threads} for t in tasks]
    # BLAS libraries read their thread count once, when numpy/torch load: the workers (and the fork
    # server) inherit it from this process's environment, set here before they start
    saved = {v: os.environ.get(v) for v in THREAD_VARS}
    os.environ.update({v: str(threads) for v in THREAD_VARS})
    losses: dict[str, int] = {}
    try:
        todo = tasks
        while todo:
            todo = _pool_round(todo, workers, ctx, threads, on_result, losses)
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old


def import_ray():
    try:
        import ray
    except ImportError:
        raise GnndynError("the ray backend needs Ray, which is not installed here: pip install gnndyn[ray] "
                          "(or pip install 'ray>=2.9'); or use --backend local.") from None
    return ray


def run_ray(tasks: list[dict[str, Any]], workers: int, on_result: OnResult, *, address: str | None = None,
            max_retries: int = 3) -> None:
    """Run ``tasks`` as Ray tasks (one CPU and one torch thread each), gathering results as they finish."""
    if not tasks:
        return
    ray = import_ray()
    env = {var: "1" for var in THREAD_VARS}
    env["GNNDYN_NO_PROGRESS"] = "1"
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, int(workers)), include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": env}, configure_logging=False)
        started = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=max_retries, retry_exceptions=False)(run_point)
        refs = {remote.remote({**t, "threads": 1}): t for t in tasks}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    result = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - lost beyond Ray's retries
                    result = _lost(refs[ref], exc)
                on_result(result)
    finally:
        if started:
            ray.shutdown()


def run_backend(name: str, tasks: list[dict[str, Any]], workers: int, on_result: OnResult, *,
                address: str | None = None) -> None:
    from gnndyn.errors import resolve

    resolve("backend", name, {b: b for b in BACKENDS})
    if address and name != "ray":
        raise GnndynError(f"--address is for the ray backend (an existing Ray cluster); got backend {name!r}.")
    if name == "ray":
        run_ray(tasks, workers, on_result, address=address)
    else:
        run_local(tasks, workers, on_result)
