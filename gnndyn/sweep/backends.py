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
result with the message; the sweep goes on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
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


def _lost(task: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    return {"id": task["id"], "status": "failed", "error": f"the worker running this point was lost: "
            f"{type(exc).__name__}: {exc}", "wall_time_s": None}


def run_local(tasks: list[dict[str, Any]], workers: int, on_result: OnResult) -> None:
    """Run ``tasks`` on a pool of ``workers`` processes."""
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
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init_worker, initargs=(threads,)) as ex:
            futures = {ex.submit(run_point, t): t for t in tasks}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    try:
                        result = f.result()
                    except Exception as exc:  # noqa: BLE001 - a broken pool is the point's failure
                        result = _lost(futures[f], exc)
                    on_result(result)
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
