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

Every point's spec is built and validated before anything is written. Which points run is decided by
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

from gnndyn.errors import GnndynError
from gnndyn.store.run import RunStore
from gnndyn.sweep.backends import BACKENDS, cores, run_backend
from gnndyn.sweep.grid import SEED, SweepConfig, expand
from gnndyn.sweep.identity import COMPLETE, FAILED, INCOMPLETE, point_id, read_record, spec_hash, spec_value

SWEEP_FILE = "sweep.json"
FORMAT = 1


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


def plan(cfg: SweepConfig) -> list[dict[str, Any]]:
    """Expand and validate every point (nothing is written); each entry holds the point's id, index,
    axis values (as the validated spec has them), spec hash and spec data."""
    keys, names = cfg.axis_keys(), cfg.name_keys()
    out = []
    for pt in expand(cfg):
        values = {k: (pt.spec.seed if k == SEED else spec_value(pt.spec, k)) for k in keys}
        out.append({"id": point_id(pt.spec, names), "index": pt.index, "values": values, "hash": spec_hash(pt.spec),
                    "spec": pt.spec.model_dump(mode="json"), "status": INCOMPLETE, "error": None,
                    "wall_time_s": None, "summary": {}})
    ids = [p["id"] for p in out]
    if len(set(ids)) != len(ids):
        raise GnndynError("two sweep points got one folder name; this is a bug in gnndyn.sweep.identity.")
    return out


@contextmanager
def sweep_lock(root: Path) -> Iterator[None]:
    """Hold ``root/.sweep.lock`` exclusively (POSIX ``flock``; a no-op where there is none)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".sweep.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise GnndynError(f"another gnndyn sweep is running in {root}; wait for it or stop it first.") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_sweep(root: str | Path) -> dict[str, Any]:
    p = Path(root) / SWEEP_FILE
    if not p.exists():
        raise GnndynError(f"{root} is not a sweep folder (no {SWEEP_FILE}); start one with `gnndyn sweep EXPERIMENT ... --out {root}`.")
    import json

    try:
        return json.loads(p.read_text())
    except ValueError as exc:
        raise GnndynError(f"{p} is not readable JSON ({exc}).") from None


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


def run_sweep(cfg: SweepConfig, out: str | Path, *, backend: str = "local", workers: int | None = None,
              address: str | None = None, retry_failed: bool = False, progress: bool = True) -> SweepOutcome:
    """Run the sweep ``cfg`` into ``out`` (or continue it: a folder holding the same sweep is resumed).

    Points already complete are kept as they are; incomplete ones (and, with ``retry_failed``, failed
    ones) run on ``backend`` with ``workers`` processes/Ray CPUs (default: one per core). Then the tables
    and the report are written from the points' folders.
    """
    if backend not in BACKENDS:
        from gnndyn.errors import UnknownNameError

        raise UnknownNameError("backend", backend, BACKENDS)
    workers = int(workers) if workers else cores()
    if workers < 1:
        raise GnndynError(f"--workers must be at least 1; got {workers}.")
    points = plan(cfg)  # validates every point before anything is written
    root = Path(out)
    created = _now()
    if (root / SWEEP_FILE).exists():
        old = read_sweep(root)
        if old.get("config") != cfg.as_dict():
            raise GnndynError(f"{root} holds a different sweep ({old.get('experiment')}, axes {old.get('axes')}); "
                              f"continue it with `gnndyn sweep --resume {root}` or choose another --out.")
        created = old.get("created", created)
    elif root.exists() and any(p.name != ".sweep.lock" for p in root.iterdir()):
        raise GnndynError(f"{root} exists and is not a sweep folder; choose an empty or new --out.")
    with sweep_lock(root):
        _refresh(root, points)
        todo = [p for p in points if p["status"] == INCOMPLETE or (retry_failed and p["status"] == FAILED)]
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

            run_backend(backend, tasks, workers, on_result, address=address)
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


def finish(root: Path, cfg: SweepConfig, points: list[dict[str, Any]]) -> None:
    """Gather the tables and write the report from the points' folders."""
    from gnndyn.sweep.gather import write_tables
    from gnndyn.sweep.report import write_sweep_report

    write_tables(root, points, cfg.axis_keys())
    write_sweep_report(root)


def preview(cfg: SweepConfig, out: str | Path, *, retry_failed: bool = False) -> list[dict[str, Any]]:
    """Every point with its status from its own record and ``would_run``; nothing is written."""
    points = plan(cfg)
    _refresh(Path(out), points)
    for p in points:
        p["would_run"] = p["status"] == INCOMPLETE or (retry_failed and p["status"] == FAILED)
    return points


def resume_sweep(root: str | Path, *, backend: str | None = None, workers: int | None = None,
                 address: str | None = None, retry_failed: bool = False, progress: bool = True) -> SweepOutcome:
    """Continue the sweep stored in ``root/sweep.json`` (same points; backend and workers as before unless given)."""
    state = read_sweep(root)
    if state.get("format") != FORMAT or "config" not in state:
        raise GnndynError(f"{Path(root) / SWEEP_FILE} was not written by this version of gnndyn sweep (format {state.get('format')!r}).")
    cfg = SweepConfig.from_dict(state["config"])
    old = state.get("backend") or {}
    backend = backend or old.get("name", "local")
    return run_sweep(cfg, root, backend=backend, workers=workers or old.get("workers"),
                     address=address if address is not None else (old.get("address") if backend == "ray" else None),
                     retry_failed=retry_failed, progress=progress)
