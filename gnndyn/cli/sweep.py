"""``gnndyn sweep``: many runs of one experiment as one job (:mod:`gnndyn.sweep`)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from gnndyn.cli import SetOpt, _fail, _warn_repeated, app, console, err
from gnndyn.errors import GnndynError


@app.command()
def sweep(
    experiment: Annotated[Optional[str], typer.Argument(help="Experiment name (see `gnndyn list`); or `experiment:` in --file.")] = None,
    grid: Annotated[Optional[list[str]], typer.Option("--grid", "-g", help="A product axis KEY=V1,V2,... (dotted keys as for --set; values read as JSON, else text). Repeatable.")] = None,
    seeds: Annotated[Optional[int], typer.Option(help="The seed axis: N seeds from the base's seed on (--set seed=S; default 0): S..S+N-1.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="The sweep folder (points/<id>/, sweep.json, metrics.parquet, verdicts.parquet, report.html).")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="A sweep file (.yaml/.yml or .toml): experiment, base, grid, zip, seeds, figures.")] = None,
    set_: SetOpt = None,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes (local) or Ray CPUs, 1 or more (default: one per core).")] = None,
    backend: Annotated[Optional[str], typer.Option(help="local (a process pool, default) or ray (pip install 'gnndyn\\[ray]').")] = None,
    address: Annotated[Optional[str], typer.Option(help="Address of an existing Ray cluster to join (--backend ray only; e.g. auto, ray://HOST:10001).")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue the sweep in this folder: run only the points that are not complete.")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Also rerun the points that failed (of an existing sweep: with --resume DIR).")] = False,
    figures: Annotated[Optional[bool], typer.Option("--figures/--no-figures", help="Draw each point's figures (default: yes; `gnndyn report` draws them later).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Make every check of a real run (options, each point's spec and device, the --out folder) and list the points with their status; run and write nothing.")] = False,
) -> None:
    """Run a grid of points of one experiment, each an ordinary run in OUT/points/<id>/, resumable; one table and one report."""
    from gnndyn.sweep import build_config
    from gnndyn.sweep.identity import error_line
    from gnndyn.sweep.runner import FAILED, INCOMPLETE, execute, prepare, prepare_resume

    # every check is made before anything is written, the same for --dry-run and a real run
    try:
        if resume is not None:
            given = [n for n, v in (("EXPERIMENT", experiment), ("--grid", grid), ("--seeds", seeds), ("--file", file),
                                    ("--set", set_), ("--figures/--no-figures", figures)) if v is not None and v != []]
            if given:
                raise GnndynError(f"--resume continues the stored sweep as it was; drop {', '.join(given)} "
                                  "(start a new sweep with another --out to change it).")
            if out is not None and out.resolve() != resume.resolve():
                raise GnndynError(f"--resume {resume} and --out {out} name different folders; give only --resume.")
            job = prepare_resume(resume, backend=backend, workers=workers, address=address, retry_failed=retry_failed)
        else:
            _warn_repeated(set_)
            if out is None and not dry_run:
                raise GnndynError("--out DIR is required: the folder the sweep writes (e.g. --out runs/depth-sweep).")
            cfg = build_config(experiment, file=file, grid=grid, sets=set_, seeds=seeds, figures=figures)
            job = prepare(cfg, out, backend=backend, workers=workers, address=address, retry_failed=retry_failed)
    except GnndynError as exc:
        _fail(str(exc))
    if retry_failed and not any(p["status"] == FAILED for p in job.points):
        err.print(f"[yellow]warning:[/] --retry-failed: no point of the sweep in {job.root} has failed; "
                  "it reruns nothing.", highlight=False)

    if dry_run:
        t = Table(title=f"{job.cfg.experiment}: {len(job.points)} points", show_lines=False)
        for col in ("point", "status", "would run"):
            t.add_column(col, overflow="fold")
        for p in job.points:  # a new sweep's points have not started: "pending", as sweep.json will say
            status = "pending" if job.created is None and p["status"] == INCOMPLETE else p["status"]
            t.add_row(p["id"], status, "yes" if job.would_run(p) else "no")
        console.print(t)
        how = f"on the {job.backend} backend with {job.workers} worker(s)"
        where = f"into {job.root} {how}." if job.root is not None else f"{how}; give --out DIR to run them."
        console.print(f"{sum(job.would_run(p) for p in job.points)} of {len(job.points)} points would run {where}",
                      highlight=False)
        return

    if resume is not None:
        console.print(f"resuming the sweep in {resume}")
    try:
        outcome = execute(job)
    except GnndynError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        err.print(f"interrupted: the points that were running are incomplete, the finished ones are kept; to go on: "
                  f"gnndyn sweep --resume {shlex.quote(str(job.root))}", highlight=False, markup=False)
        raise typer.Exit(130)
    counts = outcome.counts()
    console.print(f"{len(outcome.points)} points ({len(outcome.ran)} run now): "
                  + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), highlight=False)
    for p in outcome.points:
        if p["status"] not in ("ok", "diverged") and error_line(p.get("error")):
            err.print(f"  {p['id']}: {p['status']}: {error_line(p['error'])}", highlight=False, markup=False)
    console.print(f"report: {(outcome.root / 'report.html').resolve()}")
    unfinished = _unfinished(outcome.root, len(outcome.points), counts.get(FAILED, 0), counts.get(INCOMPLETE, 0))
    if unfinished:
        _fail(unfinished, code=1)


def _unfinished(root: Path, total: int, failed: int, incomplete: int) -> str | None:
    """What a sweep left undone and the command that does it, or ``None`` when every point is complete."""
    resume = f"gnndyn sweep --resume {shlex.quote(str(root))}"
    of = f"of {total} point{'s' if total != 1 else ''}"
    fail = f"{failed} {of} failed"
    inc = (f"1 {of} is incomplete (its run did not finish)" if incomplete == 1
           else f"{incomplete} {of} are incomplete (their runs did not finish)")
    if failed and incomplete:
        return (f"{fail} (errors above) and {inc}; {resume} runs the incomplete ones, {resume} --retry-failed the "
                "failed ones too.")
    if failed:
        return f"{fail} (errors above); to rerun {'it' if failed == 1 else 'them'}: {resume} --retry-failed."
    if incomplete:
        return f"{inc}; to run {'it' if incomplete == 1 else 'them'}: {resume}."
    return None
