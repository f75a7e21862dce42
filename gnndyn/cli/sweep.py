"""``gnndyn sweep``: many runs of one experiment as one job (:mod:`gnndyn.sweep`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from gnndyn.cli import SetOpt, _fail, app, console, err
from gnndyn.errors import GnndynError


@app.command()
def sweep(
    experiment: Annotated[Optional[str], typer.Argument(help="Experiment name (see `gnndyn list`); or `experiment:` in --file.")] = None,
    grid: Annotated[Optional[list[str]], typer.Option("--grid", "-g", help="A product axis KEY=V1,V2,... (dotted keys as for --set; values read as JSON, else text). Repeatable.")] = None,
    seeds: Annotated[Optional[int], typer.Option(help="The seed axis: seeds 0..N-1.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="The sweep folder (points/<id>/, sweep.json, metrics.parquet, verdicts.parquet, report.html).")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="A sweep file (.yaml/.yml or .toml): experiment, base, grid, zip, seeds, figures.")] = None,
    set_: SetOpt = None,
    workers: Annotated[Optional[int], typer.Option(help="Worker processes (local) or Ray CPUs (default: one per core).")] = None,
    backend: Annotated[Optional[str], typer.Option(help="local (a process pool, default) or ray.")] = None,
    address: Annotated[Optional[str], typer.Option(help="Address of an existing Ray cluster (--backend ray).")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue the sweep in this folder: run only the points that are not complete.")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Also rerun the points that failed.")] = False,
    figures: Annotated[Optional[bool], typer.Option("--figures/--no-figures", help="Draw each point's figures (default: yes; `gnndyn report` draws them later).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate every point and list them with their status; run and write nothing.")] = False,
) -> None:
    """Run a grid of points of one experiment, each an ordinary run in OUT/points/<id>/, resumable; one table and one report."""
    from gnndyn.sweep import (
        SweepConfig,
        build_config,
        read_sweep,
        resume_sweep,
        run_sweep,
    )
    from gnndyn.sweep.runner import preview

    if dry_run:
        try:
            if resume is not None:
                cfg, where = SweepConfig.from_dict(read_sweep(resume)["config"]), resume
            else:
                cfg = build_config(experiment, file=file, grid=grid, sets=set_, seeds=seeds, figures=figures)
                where = out or Path(".nonexistent-sweep-folder")
            points = preview(cfg, where, retry_failed=retry_failed)
        except GnndynError as exc:
            _fail(str(exc))
        t = Table(title=f"{cfg.experiment}: {len(points)} points", show_lines=False)
        for col in ("point", "status", "would run"):
            t.add_column(col, overflow="fold")
        for p in points:
            t.add_row(p["id"], p["status"], "yes" if p["would_run"] else "no")
        console.print(t)
        console.print(f"{sum(p['would_run'] for p in points)} of {len(points)} points would run.", highlight=False)
        return

    try:
        if resume is not None:
            given = [n for n, v in (("EXPERIMENT", experiment), ("--grid", grid), ("--seeds", seeds), ("--file", file),
                                    ("--set", set_), ("--figures/--no-figures", figures)) if v]
            if given:
                raise GnndynError(f"--resume continues the stored sweep as it was; drop {', '.join(given)} "
                                  "(start a new sweep with another --out to change it).")
            if out is not None and out != resume:
                raise GnndynError(f"--resume {resume} and --out {out} name different folders; give only --resume.")
            console.print(f"resuming the sweep in {resume}")
            outcome = resume_sweep(resume, backend=backend, workers=workers, address=address, retry_failed=retry_failed)
        else:
            if out is None:
                raise GnndynError("--out DIR is required: the folder the sweep writes (e.g. --out runs/depth-sweep).")
            cfg = build_config(experiment, file=file, grid=grid, sets=set_, seeds=seeds, figures=figures)
            outcome = run_sweep(cfg, out, backend=backend or "local", workers=workers, address=address,
                                retry_failed=retry_failed)
    except GnndynError as exc:
        _fail(str(exc))
    counts = outcome.counts()
    console.print(f"{len(outcome.points)} points ({len(outcome.ran)} run now): "
                  + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), highlight=False)
    for p in outcome.points:
        if p["status"] not in ("ok", "diverged") and p.get("error"):
            err.print(f"  {p['id']}: {p['status']}: {str(p['error']).strip().splitlines()[-1]}", highlight=False)
    console.print(f"report: {(outcome.root / 'report.html').resolve()}")
    if any(p["status"] == "incomplete" for p in outcome.points):
        raise typer.Exit(1)
