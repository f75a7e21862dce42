"""The ``gnndyn`` command line: list, run, rerun, show, report (here), graph-info and bench
(:mod:`gnndyn.cli.tools`), sweep (:mod:`gnndyn.cli.sweep`)."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
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


# Torch's notices about its beta sparse-CSR support and implicit invariant checks say nothing about a run.
_QUIET_WARNINGS = (r".*Sparse CSR tensor support is in beta.*", r".*Sparse invariant checks are implicitly disabled.*")


@app.callback()
def _setup() -> None:
    for pattern in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=UserWarning)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _warn_repeated(overrides: list[str] | None) -> None:
    """Warn when a ``--set`` key is given more than once (the last value is the one used)."""
    seen: dict[str, list[str]] = {}
    for o in overrides or []:
        if "=" in o:
            k, v = o.split("=", 1)
            seen.setdefault(k.strip(), []).append(v.strip())
    for k, values in seen.items():
        if len(values) > 1:
            err.print(f"[yellow]warning:[/] --set {k} given {len(values)} times ({', '.join(values)}); "
                      f"using the last, {values[-1]}.", highlight=False, markup=True)


def _print_rows(columns: list[str], rows: list[list[str]], *, title: str | None = None, header: bool = True,
                whole: int = 1) -> None:
    """Print a table without ever cutting a cell (cells may hold rich markup, data escaped).

    The first ``whole`` columns hold names and are never wrapped; the others fold at spaces. On a terminal
    wide enough for the whole columns plus some room for the others: a rich table; otherwise (piped,
    redirected, too narrow) one plain line per row, columns separated by two spaces, all but the last padded.
    """
    from rich.text import Text

    shown = ([columns] if header else []) + [[Text.from_markup(str(c)).plain for c in r] for r in rows]
    widths = [max(len(r[i]) for r in shown) for i in range(len(columns))]
    need = sum(widths[:whole]) + 12 * (len(columns) - whole) + 3 * len(columns) + 1
    if console.is_terminal and console.width >= need:
        t = Table(title=title, show_header=header, header_style="bold")
        for i, col in enumerate(columns):
            if i < whole:
                t.add_column(col, no_wrap=True, min_width=widths[i])
            else:
                t.add_column(col, overflow="fold")
        for r in rows:
            t.add_row(*r)
        console.print(t)
        return
    if title:
        print(title, file=console.file)
    for r in shown:
        print("  ".join(c.ljust(w) if i < len(columns) - 1 else c for i, (c, w) in enumerate(zip(r, widths))).rstrip(),
              file=console.file)


def _print_verdicts(checks: list[dict]) -> None:
    if not checks:
        return
    from gnndyn.theory.verdict import compared

    rows = []
    for c in checks:
        m = c.get("margin")
        if c.get("details", {}).get("diverged"):
            word = "[yellow]not assessed[/] (training diverged)"
        elif not c.get("applicable", True):
            word = ("[yellow]holds[/]" if c["holds"] else "[yellow]violated[/]") if compared(m) else "[yellow]not applicable[/]"
            word += " (assumptions not met)"
        else:
            word = "[green]holds[/]" if c["holds"] else "[bold red]VIOLATED[/]"
        shown = "—" if not compared(m) else f"{m:.3g}" if isinstance(m, float) else str(m)
        rows.append([escape(c["paper"]), word, shown,
                     escape(str(c.get("where", "")))])
    _print_rows(["paper", "verdict", "margin", "where"], rows, title="verdicts", whole=0)


@app.command("list")
def list_experiments(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of {name, paper, description}.")] = False,
) -> None:
    """Name every registered experiment with a one-line description (one plain line each when piped)."""
    from gnndyn.experiments import REGISTRY

    entries = [{"name": name, "paper": REGISTRY[name].paper, "description": REGISTRY[name].description}
               for name in sorted(REGISTRY)]
    if as_json:
        print(json.dumps(entries, ensure_ascii=False, indent=1))
        return
    if not console.is_terminal:  # one line per experiment: name, then what it reproduces and how
        width = max(len(e["name"]) for e in entries)
        for e in entries:
            print(f"{e['name'].ljust(width)}  {e['description']} [{e['paper']}]", file=console.file)
        return
    _print_rows(["experiment", "reproduces", "description"],
                [[escape(e["name"]), escape(e["paper"]), escape(e["description"])] for e in entries])


def _fresh_folder(base: Path) -> Path:
    """``base`` if it is free (absent or an empty folder), else the first free ``base-2``, ``base-3``…"""
    def free(p: Path) -> bool:
        return not p.exists() or (p.is_dir() and not any(p.iterdir()))

    if free(base):
        return base
    i = 2
    while not free(base.with_name(f"{base.name}-{i}")):
        i += 1
    return base.with_name(f"{base.name}-{i}")


def _execute(spec, out: Optional[Path], *, default_out: Path, overwrite: bool = False) -> None:
    from gnndyn.experiments import run_experiment

    from gnndyn.spec import preflight
    from gnndyn.store import RunStore

    if out is None:
        out = default_out if overwrite else _fresh_folder(default_out)
    try:  # refusals come before the "running" line: nothing has started
        preflight(spec)
        RunStore(out).check_claim(overwrite=overwrite)
    except GnndynError as exc:
        _fail(str(exc))
    console.print(f"running [bold]{spec.experiment}[/] (seed {spec.seed}, {spec.dtype}, {spec.device}) → {out}")
    try:
        store, result = run_experiment(spec, out, overwrite=overwrite)
    except DivergenceError as exc:
        err.print(f"[bold red]diverged:[/] {escape(str(exc))}")
        err.print(f"what was recorded is in {out} (report: {out / 'report.html'})")
        raise typer.Exit(3)
    except GnndynError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        kept = (f"the earlier run in {out} was put back as it was" if overwrite else
                f"what was recorded is in {out}, whose run.json says 'interrupted' (incomplete)")
        err.print(f"interrupted: {kept}.", highlight=False, markup=False)
        raise typer.Exit(130)
    except Exception as exc:  # noqa: BLE001  (an unexpected error: one message, not a traceback)
        import traceback

        what = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        try:
            failed_here = RunStore(out).run_record().get("status") == "failed"
        except (OSError, GnndynError):
            failed_here = False
        kept = (f"What was recorded is in {out}; its run.json says 'failed' and holds the traceback." if failed_here
                else f"The earlier run in {out} was kept as it was." if overwrite else "")
        _fail(f"the run stopped on an unexpected error: {what}. {kept} This is a gnndyn bug or an input it does "
              f"not yet check: please report it with the spec.", code=1)
    _print_verdicts([v.as_dict() for v in result.verdicts])
    for k, v in result.summary.items():
        console.print(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}", highlight=False)
    console.print(f"report: {(store.root / 'report.html').resolve()}")
    status = store.read_json("run.json").get("status")
    if status == "diverged":
        err.print(f"[bold red]diverged:[/] {escape(str(store.read_json('run.json').get('error')))}")
        err.print(f"what was recorded is in {out}; verdicts on diverged series are marked 'not assessed'")
        raise typer.Exit(3)


OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing run folder whole (default: refuse).")]


@app.command()
def run(
    name: Annotated[str, typer.Argument(help="Experiment name (see `gnndyn list`).")],
    set_: SetOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder (default runs/NAME).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (default 0).")] = None,
    seeds: Annotated[Optional[int], typer.Option(help="Number of seeds, from --seed on (experiments that support it).")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu (default) or cuda[:i].")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="float64 (default) or float32.")] = None,
    data_root: Annotated[Optional[str], typer.Option("--data-root", help="Data root: Planetoid's <Name>/raw/ (or planetoid/<Name>/raw/), us-climate's climate/ (else $GNNDYN_DATA_ROOT).")] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Run experiment NAME and write its folder: spec.json, metrics.parquet, checks.json, figures/, report.html.

    An existing run folder is never written into: --out must be new (or empty) unless --overwrite; without
    --out the run goes to runs/NAME, or runs/NAME-2, -3… when that is taken. Exit code 3: training diverged."""
    from gnndyn.experiments import make_spec

    _warn_repeated(set_)
    try:
        spec = make_spec(name, set_ or [], seed=seed, seeds=seeds, device=device, dtype=dtype, data_root=data_root)
    except GnndynError as exc:
        _fail(str(exc))
    from gnndyn.data.registry import STORED_DATASETS

    if data_root is not None and not any(d.lower() in STORED_DATASETS for d in spec.datasets_used()):
        used = ", ".join(spec.datasets_used()) or "none"
        err.print(f"[yellow]warning:[/] --data-root has no effect here: this run reads no stored data set (it uses: "
                  f"{escape(used)}; stored ones are {', '.join(STORED_DATASETS)}).", highlight=False)
    _execute(spec, out, default_out=Path("runs") / spec.experiment, overwrite=overwrite)


@app.command()
def rerun(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (or its spec.json).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to write the new run (default RUN_DIR-rerun).")] = None,
    device: Annotated[Optional[str], typer.Option(help="Run on this device instead of the saved one: cpu or cuda[:i].")] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Re-run a saved spec; on the CPU the numbers are identical."""
    from gnndyn.experiments import load_spec
    from gnndyn.spec import validate_spec

    try:
        spec = load_spec(run_dir)
        if device is not None:
            spec = validate_spec(type(spec), {**spec.model_dump(mode="json"), "device": device})
    except GnndynError as exc:
        _fail(str(exc))
    base = run_dir if run_dir.is_dir() else run_dir.parent
    _execute(spec, out, default_out=base.with_name(base.name + "-rerun"), overwrite=overwrite)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    set_: SetOpt = None,
) -> None:
    """Print an experiment's full default spec (after overrides) and every key --set accepts."""
    from gnndyn.experiments import get_experiment, make_spec
    from gnndyn.spec import valid_keys

    _warn_repeated(set_)
    try:
        exp = get_experiment(name)
        spec = make_spec(name, set_ or [])
    except GnndynError as exc:
        _fail(str(exc))
    console.print(f"[bold]{exp.name}[/] — {exp.paper}\n{exp.description}\n")
    console.print_json(json.dumps(spec.model_dump(mode="json")))
    console.print("\nkeys for --set: " + ", ".join(valid_keys(spec)), highlight=False)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run folder.")]) -> None:
    """Rebuild figures and report.html of a run from its stored files only.

    A folder of a run that did not finish (killed, crashed) gets a report under a visible "incomplete"
    banner, and this command says so (exit code 1); a damaged file is named and nothing is written."""
    from gnndyn.experiments.base import draw_figures, get_experiment
    from gnndyn.report import write_report
    from gnndyn.store import RunStore

    store = RunStore(run_dir)
    if not run_dir.exists():
        _fail(f"{run_dir} does not exist; give a run folder (one that `gnndyn run` wrote).")
    if not run_dir.is_dir():
        _fail(f"{run_dir} is a file, not a run folder; give the folder that holds spec.json.")
    if not store.path("spec.json").exists():
        _fail(f"{run_dir} is not a run folder (no spec.json).")
    for sub in ("figures", "tables"):
        if store.path(sub).exists() and not store.path(sub).is_dir():
            _fail(f"{store.path(sub)} is a file where the run keeps its {sub} folder; nothing was written. Move it "
                  f"away (or re-create the run with gnndyn rerun), then run report again.")
    try:
        why = store.incomplete(include_report=False)
        store.metrics()  # a damaged metrics file stops here, before anything is written
        store.checks()
        errors = draw_figures(get_experiment(store.spec()["experiment"]), store)
        if store.path("run.json").exists():
            run = store.run_record()
            if run.get("figure_errors") != errors and (errors or run.get("figure_errors")):
                store.write_json("run.json", {**run, "figure_errors": errors})
        write_report(store)
    except GnndynError as exc:
        _fail(str(exc))
    for k, v in errors.items():
        err.print(f"[yellow]figure {k} could not be drawn:[/] {v}", highlight=False)
    console.print(f"report: {(store.root / 'report.html').resolve()}")
    if why:
        err.print(f"[bold yellow]incomplete run:[/] {why}. The report shows what was recorded, under an "
                  f"'incomplete' banner.", highlight=False)
        raise typer.Exit(1)


# the commands of the other modules register themselves on ``app`` when imported
from gnndyn.cli import tools as _tools  # noqa: E402,F401  (graph-info, bench)
from gnndyn.cli import sweep as _sweep  # noqa: E402,F401,I001  (sweep)


def main() -> None:
    try:
        app()
    except GnndynError as exc:  # errors raised outside a command's own handling
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
