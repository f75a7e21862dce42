"""The ``gnndyn`` command line: list, run, rerun, show, graph-info, report, bench, sweep."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from gnndyn.errors import DivergenceError, GnndynError

app = typer.Typer(
    name="gnndyn",
    help="A laboratory for the optimization theory of graph neural networks: train, measure, check the theorems, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override a spec value, KEY=VALUE (dotted keys, e.g. model.depth=20). Repeatable."),
]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _print_verdicts(checks: list[dict]) -> None:
    if not checks:
        return
    t = Table(title="verdicts", show_lines=False)
    for col in ("paper", "verdict", "margin", "where"):
        t.add_column(col, overflow="fold")
    for c in checks:
        if not c.get("applicable", True):
            word = ("[yellow]holds[/]" if c["holds"] else "[yellow]violated[/]") + " (assumptions not met)"
        else:
            word = "[green]holds[/]" if c["holds"] else "[bold red]VIOLATED[/]"
        m = c.get("margin")
        t.add_row(c["paper"], word, "—" if m is None else f"{m:.3g}" if isinstance(m, float) else str(m), str(c.get("where", "")))
    console.print(t)


@app.command("list")
def list_experiments() -> None:
    """Name every registered experiment with a one-line description."""
    from gnndyn.experiments import REGISTRY

    t = Table(show_header=True, header_style="bold")
    t.add_column("experiment")
    t.add_column("reproduces")
    t.add_column("description", overflow="fold")
    for name in sorted(REGISTRY):
        e = REGISTRY[name]
        t.add_row(name, e.paper, e.description)
    console.print(t)


def _execute(spec, out: Optional[Path]) -> None:
    from gnndyn.experiments import run_experiment

    out = out or Path("runs") / spec.experiment
    console.print(f"running [bold]{spec.experiment}[/] (seed {spec.seed}, {spec.dtype}, {spec.device}) → {out}")
    try:
        store, result = run_experiment(spec, out)
    except DivergenceError as exc:
        err.print(f"[bold red]diverged:[/] {exc}")
        err.print(f"what was recorded is in {out} (report: {out / 'report.html'})")
        raise typer.Exit(3)
    except GnndynError as exc:
        _fail(str(exc))
    _print_verdicts([v.as_dict() for v in result.verdicts])
    for k, v in result.summary.items():
        console.print(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}", highlight=False)
    console.print(f"report: {(store.root / 'report.html').resolve()}")


@app.command()
def run(
    name: Annotated[str, typer.Argument(help="Experiment name (see `gnndyn list`).")],
    set_: SetOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder (default runs/NAME).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (default 0).")] = None,
    seeds: Annotated[Optional[int], typer.Option(help="Number of seeds, from --seed on (experiments that support it).")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu (default) or cuda[:i].")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="float64 (default) or float32.")] = None,
    data_root: Annotated[Optional[str], typer.Option("--data-root", help="Data root: Planetoid's <Name>/raw/, us-climate's climate/ (else $GNNDYN_DATA_ROOT).")] = None,
) -> None:
    """Run experiment NAME and write its folder: spec.json, metrics.parquet, checks.json, figures/, report.html."""
    from gnndyn.experiments import make_spec

    try:
        spec = make_spec(name, set_ or [], seed=seed, seeds=seeds, device=device, dtype=dtype, data_root=data_root)
    except GnndynError as exc:
        _fail(str(exc))
    _execute(spec, out)


@app.command()
def rerun(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (or its spec.json).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to write the new run (default RUN_DIR-rerun).")] = None,
) -> None:
    """Re-run a saved spec; on the CPU the numbers are identical."""
    from gnndyn.experiments import load_spec

    try:
        spec = load_spec(run_dir)
    except GnndynError as exc:
        _fail(str(exc))
    base = run_dir if run_dir.is_dir() else run_dir.parent
    _execute(spec, out or base.with_name(base.name + "-rerun"))


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    set_: SetOpt = None,
) -> None:
    """Print an experiment's full default spec (after overrides) and every key --set accepts."""
    from gnndyn.experiments import get_experiment, make_spec
    from gnndyn.spec import valid_keys

    try:
        exp = get_experiment(name)
        spec = make_spec(name, set_ or [])
    except GnndynError as exc:
        _fail(str(exc))
    console.print(f"[bold]{exp.name}[/] — {exp.paper}\n{exp.description}\n")
    console.print_json(json.dumps(spec.model_dump(mode="json")))
    console.print("\nkeys for --set: " + ", ".join(valid_keys(spec)), highlight=False)


@app.command("graph-info")
def graph_info(
    dataset: Annotated[str, typer.Argument(help="cora, citeseer, pubmed, us-climate, or a generator: csbm, sbm, erdos-renyi, random-regular, knn-ring, barabasi-albert.")],
    operator: Annotated[str, typer.Option(help="Operator whose spectral facts to report.")] = "gossip",
    lcc: Annotated[bool, typer.Option("--lcc", help="Keep the largest connected component.")] = False,
    data_root: Annotated[Optional[str], typer.Option("--data-root", help="Data root: Planetoid's <Name>/raw/, us-climate's climate/ (else $GNNDYN_DATA_ROOT).")] = None,
    set_: SetOpt = None,
    method: Annotated[str, typer.Option(help="Eigen-solver: auto, dense or lanczos.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Size, degrees, components and the operator's spectral facts (λ, spectral gap 1 − λ) of a graph."""
    from gnndyn.data.registry import DATASETS, dataset_params, load_graph
    from gnndyn.errors import resolve
    from gnndyn.operators import OPERATORS, build_operator
    from gnndyn.spec import parse_value

    try:
        resolve("dataset", dataset, DATASETS)
        resolve("operator", operator, OPERATORS)
        params = {}
        for o in set_ or []:
            if "=" not in o:
                raise GnndynError(f"--set expects key=value; got {o!r}.")
            k, v = o.split("=", 1)
            params[k.strip()] = parse_value(v.strip())
        if "data_root" in dataset_params(dataset):
            params["data_root"] = data_root
        g = load_graph(dataset, lcc=lcc, **params)
        op = build_operator(operator, g)
        facts = op.spectral(method=method)
    except GnndynError as exc:
        _fail(str(exc))
    info = {**g.summary(), **facts.as_dict(), "lcc": lcc}
    info["operator"] = operator
    info.pop("name", None)
    info = {"dataset": dataset, **info}
    if as_json:
        print(json.dumps(info))
        return
    t = Table(show_header=False)
    for k, v in info.items():
        t.add_row(k, f"{v:.6g}" if isinstance(v, float) else str(v))
    console.print(t)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run folder.")]) -> None:
    """Rebuild figures and report.html of a run from its stored files only."""
    from gnndyn.experiments.base import draw_figures, get_experiment
    from gnndyn.report import write_report
    from gnndyn.store import RunStore

    store = RunStore(run_dir)
    if not store.path("spec.json").exists():
        _fail(f"{run_dir} is not a run folder (no spec.json).")
    try:
        draw_figures(get_experiment(store.spec()["experiment"]), store)
    except GnndynError as exc:
        _fail(str(exc))
    write_report(store)
    console.print(f"report: {(store.root / 'report.html').resolve()}")


@app.command()
def bench(
    nodes: Annotated[int, typer.Option(help="Graph size for the step benchmark.")] = 100_000,
    degree: Annotated[float, typer.Option(help="Average degree.")] = 10.0,
    depth: Annotated[int, typer.Option(help="GNN depth L.")] = 40,
    width: Annotated[int, typer.Option(help="Hidden width.")] = 64,
    repeats: Annotated[int, typer.Option(help="Timed repetitions (median reported).")] = 3,
    memory_nodes: Annotated[int, typer.Option(help="Graph size for the peak-memory run (0 to skip).")] = 1_000_000,
    memory_depth: Annotated[int, typer.Option(help="Depth for the peak-memory run.")] = 10,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    dtype: Annotated[str, typer.Option(help="float32 or float64.")] = "float32",
) -> None:
    """Time one gradient-descent step of gnndyn's deep GNN against a plain PyTorch loop (same run), and peak memory."""
    from gnndyn.bench import run_step_benchmark

    run_step_benchmark(nodes=nodes, degree=degree, depth=depth, width=width, repeats=repeats,
                       memory_nodes=memory_nodes, memory_depth=memory_depth, device=device, dtype=dtype, console=console)


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
    from gnndyn.sweep import SweepConfig, build_config, read_sweep, resume_sweep, run_sweep
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


def main() -> None:
    try:
        app()
    except GnndynError as exc:  # errors raised outside a command's own handling
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
