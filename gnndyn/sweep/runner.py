"""Running a sweep: plan, run what is not complete, gather, report.

::

    DIR/
      sweep.json         the config (experiment, base, grid, zip, seeds), the backend, every point's id,
                         values and status; rewritten atomically as points finish
      points/<id>/       each point an ordinary run folder (spec.json, metrics.parquet, run.json, ...)
      metrics.parquet    every point's metrics with the varying keys as columns (:mod:`gnndyn.sweep.gather`)
      verdicts.parquet   every verdict of every point
      points.parquet     one row per point: status, error, wall time, headline quantities
      report.html        the verdict matrix over the grid and the headline quantities against the axes

Everything is checked before anything is written (:func:`prepare`, the same for ``--dry-run`` and a real
run): the backend, workers and address; every point's spec, built and validated, and whether it can run
on this machine (:func:`gnndyn.spec.preflight`: the device); and the folder, which must be new, empty or
hold this same sweep. Which points run is decided by
the points' own records (:func:`gnndyn.sweep.identity.read_record`): on a resume, the incomplete ones
(and with ``retry_failed`` the failed ones), never by what ``sweep.json`` says and never by a folder's
existence. One sweep process at a time holds ``DIR/.sweep.lock`` (an OS lock, released when the process
dies, even by ``kill -9``).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gnndyn.errors import GnndynError, resolve
from gnndyn.store.run import INTERRUPTED, RunStore
from gnndyn.sweep.backends import BACKENDS, run_backend
from gnndyn.sweep.checks import (  # noqa: F401  (re-exported)
    FORMAT,
    LOCK_FILE,
    SWEEP_FILE,
    check_backend,
    check_folder,
    check_machine,
    read_sweep,
)
from gnndyn.sweep.grid import SEED, Point, SweepConfig, expand
from gnndyn.sweep.identity import (
    COMPLETE,
    FAILED,
    INCOMPLETE,
    point_id,
    read_record,
    spec_hash,
    spec_value,
)


@dataclass
class SweepOutcome:
    root: Path
    points: list[dict[str, Any]]
    ran: list[str]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.points:
            out[p["status"]] = out.get(p["status"], 0) + 1
        return out


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _plan_points(cfg: SweepConfig) -> tuple[list[Point], list[dict[str, Any]]]:
    keys, names = cfg.axis_keys(), cfg.name_keys()
    pts = expand(cfg)
    out = []
    for pt in pts:
        values = {k: (pt.spec.seed if k == SEED else spec_value(pt.spec, k)) for k in keys}
        out.append({"id": point_id(pt.spec, names), "index": pt.index, "values": values, "hash": spec_hash(pt.spec),
                    "spec": pt.spec.model_dump(mode="json"), "status": INCOMPLETE, "error": None,
                    "wall_time_s": None, "summary": {}})
    ids = [p["id"] for p in out]
    if len(set(ids)) != len(ids):
        raise GnndynError("two sweep points got one folder name; this is a bug in gnndyn.sweep.identity.")
    return pts, out


def plan(cfg: SweepConfig) -> list[dict[str, Any]]:
    """Expand and validate every point (nothing is written); each entry holds the point's id, index,
    axis values (as the validated spec has them), spec hash and spec data. (Whether the points can run on
    this machine is :func:`check_machine`'s; :func:`prepare` does both.)"""
    return _plan_points(cfg)[1]


# ------------------------------------------------------------------------------------------ checks
@dataclass
class SweepJob:
    """A sweep checked and ready to run (:func:`prepare`): nothing has been written yet."""

    cfg: SweepConfig
    root: Path | None
    backend: str
    workers: int
    address: str | None
    retry_failed: bool
    points: list[dict[str, Any]]
    created: str | None  # the stored sweep's creation time when ``root`` holds this sweep already

    def would_run(self, p: dict[str, Any]) -> bool:
        return p["status"] == INCOMPLETE or (self.retry_failed and p["status"] == FAILED)


def prepare(cfg: SweepConfig, out: str | Path | None, *, backend: str | None = "local", workers: Any = None,
            address: str | None = None, retry_failed: bool = False, resumed: Path | None = None,
            origin: str = "") -> SweepJob:
    """Every check a sweep makes before it writes anything, the same for ``--dry-run`` and a real run:
    :func:`check_backend`; every point built and validated (:func:`plan`) and runnable here
    (:func:`check_machine`: skipped for ``address``, an existing Ray cluster whose nodes run the points and
    check them themselves); :func:`check_folder`; ``retry_failed`` only for a sweep that exists. The points'
    statuses are read from their records (``out`` ``None``: a listing with nothing run yet)."""
    name, n = check_backend(backend, workers, address, origin=origin)
    pts, points = _plan_points(cfg)
    if not (name == "ray" and address):
        check_machine(cfg, pts, resumed=resumed)
    root = Path(out) if out is not None else None
    old = check_folder(cfg, root) if root is not None else None
    if old is not None and list(old["config"].get("grid", {})) != list(cfg.grid):
        # the same sweep with its axes given in another order: its points keep the folders they have
        cfg = SweepConfig.from_dict(old["config"])
        pts, points = _plan_points(cfg)
    if retry_failed and old is None:
        where = f"--out {root} holds no sweep yet" if root is not None else "no --out names a sweep"
        raise GnndynError(f"--retry-failed reruns the failed points of an existing sweep, but {where}, so no point "
                          "has failed: drop --retry-failed (to rerun the failed points of a sweep: "
                          "gnndyn sweep --resume DIR --retry-failed).")
    if root is not None:
        _refresh(root, points)
    return SweepJob(cfg=cfg, root=root, backend=name, workers=n, address=address, retry_failed=retry_failed,
                    points=points, created=(old or {}).get("created"))


def prepare_resume(root: str | Path, *, backend: str | None = None, workers: Any = None, address: str | None = None,
                   retry_failed: bool = False) -> SweepJob:
    """:func:`prepare` for the sweep stored in ``root/sweep.json``: the same points; the backend, workers and
    (for ray) address it ran with unless given."""
    root = Path(root)
    state = read_sweep(root)
    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("config"), dict):
        fmt = state.get("format") if isinstance(state, dict) else None
        raise GnndynError(f"{root / SWEEP_FILE} was not written by this version of gnndyn sweep (format {fmt!r}).")
    try:
        cfg = SweepConfig.from_dict(state["config"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GnndynError(f"{root / SWEEP_FILE} holds no readable sweep config ({type(exc).__name__}: {exc}); "
                          "it was probably edited by hand or cut short.") from None
    old = state.get("backend") if isinstance(state.get("backend"), dict) else {}
    name = resolve("backend", backend if backend is not None else old.get("name", "local"), {b: b for b in BACKENDS})
    origin = "" if backend is not None else f" (the backend the sweep in {root} ran on)"
    if address is None and name == "ray":
        address = old.get("address")
    return prepare(cfg, root, backend=name, workers=workers if workers is not None else old.get("workers"),
                   address=address, retry_failed=retry_failed, resumed=root, origin=origin)


# ------------------------------------------------------------------------------------------ running
@contextmanager
def sweep_lock(root: Path) -> Iterator[None]:
    """Hold ``root/.sweep.lock`` exclusively (POSIX ``flock``; a no-op where there is none)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise GnndynError(f"another gnndyn sweep is running in {root}; wait for it or stop it first.") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_state(root: Path, cfg: SweepConfig, backend: dict[str, Any], points: list[dict[str, Any]], status: str,
                 created: str) -> None:
    keep = ("id", "index", "values", "hash", "status", "error", "wall_time_s")
    RunStore(root).write_json(SWEEP_FILE, {
        "format": FORMAT, "experiment": cfg.experiment, "status": status, "created": created, "updated": _now(),
        "config": cfg.as_dict(), "axes": cfg.axis_keys(), "backend": backend,
        "counts": {s: sum(p["status"] == s for p in points) for s in sorted({p["status"] for p in points})},
        "points": [{k: p[k] for k in keep} for p in points],
    })


def _refresh(root: Path, points: list[dict[str, Any]]) -> None:
    """Each point's status, error, wall time and summary from its own record."""
    for p in points:
        rec = read_record(root / "points" / p["id"], p["hash"])
        p.update(status=rec["status"], error=rec["error"], wall_time_s=rec["wall_time_s"], summary=rec["summary"])


def execute(job: SweepJob, *, progress: bool = True) -> SweepOutcome:
    """Run a prepared sweep (:func:`prepare`): the points that are not complete (and, with ``retry_failed``,
    the failed ones), then the tables and the report from the points' folders."""
    if job.root is None:
        raise GnndynError("--out DIR is required: the folder the sweep writes (e.g. --out runs/depth-sweep).")
    root, cfg, points, backend, workers, address = job.root, job.cfg, job.points, job.backend, job.workers, job.address
    created = job.created or _now()
    with sweep_lock(root):
        _refresh(root, points)
        todo = [p for p in points if job.would_run(p)]
        info = {"name": backend, "workers": workers, "address": address}
        for p in todo:
            p.update(status="pending", error=None, wall_time_s=None, summary={})
        _write_state(root, cfg, info, points, "running", created)
        by_id = {p["id"]: p for p in points}
        tasks = [{"id": p["id"], "spec": p["spec"], "dir": str((root / "points" / p["id"]).resolve()),
                  "figures": cfg.figures} for p in todo]
        from gnndyn.progress import task as progress_task

        with progress_task(f"sweep {cfg.experiment} ({len(points)} points)", len(tasks)) as bar:
            def on_result(res: dict[str, Any]) -> None:
                p = by_id[res["id"]]
                rec = read_record(root / "points" / p["id"], p["hash"])
                status = rec["status"] if rec["status"] != INCOMPLETE else res["status"]
                p.update(status=status, error=res.get("error") or rec["error"],
                         wall_time_s=res.get("wall_time_s"), summary=rec["summary"])
                _write_state(root, cfg, info, points, "running", created)
                if progress:
                    bar.advance(1)

            try:
                run_backend(backend, tasks, workers, on_result, address=address)
            except KeyboardInterrupt:  # Ctrl-C: the running points stay incomplete; the folder says so
                _refresh(root, points)
                _write_state(root, cfg, info, points, INTERRUPTED, created)
                finish(root, cfg, points)
                raise
        messages = {p["id"]: p["error"] for p in todo}
        _refresh(root, points)
        for p in points:  # a point whose worker was lost before it wrote its record stays incomplete
            if p["status"] == INCOMPLETE and messages.get(p["id"]):
                p["error"] = messages[p["id"]]
        final = "complete" if all(p["status"] in COMPLETE for p in points) else (
            "incomplete" if any(p["status"] == INCOMPLETE for p in points) else "complete with failures")
        _write_state(root, cfg, info, points, final, created)
        finish(root, cfg, points)
    return SweepOutcome(root=root, points=points, ran=[t["id"] for t in tasks])


def run_sweep(cfg: SweepConfig, out: str | Path, *, backend: str = "local", workers: int | None = None,
              address: str | None = None, retry_failed: bool = False, progress: bool = True) -> SweepOutcome:
    """Run the sweep ``cfg`` into ``out`` (or continue it: a folder holding the same sweep is resumed).

    Everything is checked first (:func:`prepare`). Points already complete are kept as they are;
    incomplete ones (and, with ``retry_failed``, failed ones) run on ``backend`` with ``workers``
    processes/Ray CPUs (default: one per core). Then the tables and the report are written from the
    points' folders.
    """
    job = prepare(cfg, out, backend=backend, workers=workers, address=address, retry_failed=retry_failed)
    return execute(job, progress=progress)


def finish(root: Path, cfg: SweepConfig, points: list[dict[str, Any]]) -> None:
    """Gather the tables and write the report from the points' folders."""
    from gnndyn.sweep.gather import write_tables
    from gnndyn.sweep.report import write_sweep_report

    write_tables(root, points, cfg.axis_keys())
    write_sweep_report(root)


def preview(cfg: SweepConfig, out: str | Path | None, *, retry_failed: bool = False, backend: str = "local",
            workers: int | None = None, address: str | None = None) -> list[dict[str, Any]]:
    """Every point with its status from its own record and ``would_run``, after the checks of a real run
    (:func:`prepare`); nothing is written."""
    job = prepare(cfg, out, backend=backend, workers=workers, address=address, retry_failed=retry_failed)
    return [{**p, "would_run": job.would_run(p)} for p in job.points]


def resume_sweep(root: str | Path, *, backend: str | None = None, workers: int | None = None,
                 address: str | None = None, retry_failed: bool = False, progress: bool = True) -> SweepOutcome:
    """Continue the sweep stored in ``root/sweep.json`` (same points; backend and workers as before unless given)."""
    job = prepare_resume(root, backend=backend, workers=workers, address=address, retry_failed=retry_failed)
    return execute(job, progress=progress)
