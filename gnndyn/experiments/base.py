"""Named experiments: a spec class with defaults, a run function, and figures drawn from the store.

An experiment's ``run(spec, ctx)`` trains/measures, records metrics into ``ctx.recorder`` and returns
an :class:`ExperimentResult` (verdicts, extra tables, headline numbers). ``figures(store)`` draws
from the stored run only. :func:`run_experiment` ties them together and writes the run folder.
"""

from __future__ import annotations

import functools
import os
import platform
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from gnndyn.errors import CorruptFileError, DivergenceError, GnndynError, resolve
from gnndyn.progress import Task, task
from gnndyn.spec import ExperimentSpec, apply_overrides, preflight, validate_spec
from gnndyn.store.metrics import Recorder
from gnndyn.store.run import INTERRUPTED, RunStore
from gnndyn.theory.verdict import Verdict, mark_diverged
from gnndyn.training.divergence import divergence_policy


@dataclass
class RunContext:
    """What an experiment's run function gets besides its spec."""

    store: RunStore
    recorder: Recorder = field(default_factory=Recorder)

    def task(self, description: str, total: float | None):
        """A progress bar (context manager yielding a :class:`~gnndyn.progress.Task`)."""
        return task(description, total)


@dataclass
class ExperimentResult:
    verdicts: list[Verdict] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """A named, reproducible experiment.

    Attributes:
        name: CLI name (``gnndyn run NAME``).
        description: one line for ``gnndyn list``.
        paper: the paper and figure it reproduces.
        spec_cls: the spec class; its defaults are the experiment's defaults.
        run: ``run(spec, ctx) -> ExperimentResult``.
        figures: ``figures(store) -> {name: matplotlib Figure}``, reading only the store.
        smoke: overrides that make a small, fast run for the test suite.
    """

    name: str
    description: str
    paper: str
    spec_cls: type[ExperimentSpec]
    run: Callable[[Any, RunContext], ExperimentResult]
    figures: Callable[[RunStore], dict[str, Any]]
    smoke: dict[str, Any] = field(default_factory=dict)

    def default_spec(self) -> ExperimentSpec:
        return self.spec_cls(experiment=self.name)


REGISTRY: dict[str, Experiment] = {}


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads, restoring the previous setting. The small dense products of
    the population and linear-GNN experiments are fastest on one thread: on a shared 2-core machine a
    second thread waiting for a busy core made them 20–100× slower (measured)."""
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def with_torch_threads(run: Callable[[Any, RunContext], ExperimentResult]) -> Callable[[Any, RunContext], ExperimentResult]:
    """Decorator: an experiment's ``run(spec, ctx)`` executed under ``torch_threads(spec.threads)`` (one
    thread when the spec has no ``threads`` field)."""

    @functools.wraps(run)
    def wrapper(spec, ctx: RunContext) -> ExperimentResult:
        with torch_threads(getattr(spec, "threads", 1)):
            return run(spec, ctx)

    return wrapper


def register(exp: Experiment) -> Experiment:
    if exp.name in REGISTRY:
        raise GnndynError(f"experiment {exp.name!r} is registered twice.")
    REGISTRY[exp.name] = exp
    return exp


def get_experiment(name: str) -> Experiment:
    import gnndyn.experiments  # noqa: F401  (fills the registry)

    return resolve("experiment", name, REGISTRY)


def make_spec(name: str, overrides: list[str] | dict[str, Any] | None = None, **fields: Any) -> ExperimentSpec:
    """The default spec of experiment ``name`` with overrides and top-level fields (seed, device...)."""
    exp = get_experiment(name)
    spec = exp.default_spec()
    top = {k: v for k, v in fields.items() if v is not None}
    given = {o.split("=", 1)[0].strip(): o.split("=", 1)[1].strip() for o in overrides or [] if "=" in o} \
        if isinstance(overrides, list) else dict(overrides or {})
    both = sorted(set(top) & set(given))
    if both:
        k = both[0]
        raise GnndynError(f"{k} is given twice, as --{k.replace('_', '-')} {top[k]} and as --set {k}={given[k]}; "
                          f"give it once.")
    if top:
        unknown = sorted(set(top) - set(exp.spec_cls.model_fields))
        if unknown:
            raise GnndynError(f"experiment {name!r} has no option {', '.join(unknown)}.")
        spec = validate_spec(exp.spec_cls, {**spec.model_dump(mode="json"), **top})
    if overrides:
        spec = apply_overrides(spec, overrides)
    return spec


def load_spec(path: str | os.PathLike) -> ExperimentSpec:
    """Read a saved ``spec.json`` (or a run folder holding one) back into its spec class (JSON only: a
    spec file cannot run code). A damaged file raises CorruptFileError naming it."""
    p = Path(path)
    if p.is_dir():
        p = p / "spec.json"
    if not p.exists():
        raise GnndynError(f"no spec at {p}: give a run folder or a spec.json written by gnndyn.")
    import json

    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(p, f"not valid JSON ({exc})",
                               "it was probably cut short or edited by hand; restore it, or start again with "
                               "`gnndyn run` and the experiment's name") from None
    if not isinstance(data, dict) or "experiment" not in data:
        raise GnndynError(f"{p} has no 'experiment' field; it was not written by gnndyn.")
    exp = get_experiment(data["experiment"])
    try:
        return validate_spec(exp.spec_cls, data)
    except GnndynError as exc:
        raise GnndynError(f"{p}: {exc}") from None


def _versions() -> dict[str, str]:
    import numpy
    import scipy
    import torch

    import gnndyn

    return {"gnndyn": gnndyn.__version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "python": platform.python_version()}


def _touches(v: Verdict, series: str) -> bool:
    import json

    text = " ".join([v.name, v.where, v.statement, json.dumps(v.details, default=str)])
    return series in text


def mark_diverged_verdicts(verdicts: list[Verdict], divergences: list[dict], all_series: set[str]) -> list[Verdict]:
    """Verdicts computed on a diverged series become "not assessed" (:func:`gnndyn.theory.verdict.mark_diverged`).

    A verdict is taken to concern a diverged series when it names it (in its name, place, statement or
    details), or when it names no series of the run at all (then nothing shows it is unaffected). gnndyn's own
    checks of the run (names ``training.*``, ``gnndyn.*``: did training stay finite?) are left as they are."""
    if not divergences:
        return verdicts
    bad = {d["series"] for d in divergences}
    why = "; ".join(f"{d['series']} (seed {d['seed']}) at step {d['step']}" for d in divergences[:5])
    if len(divergences) > 5:
        why += f"; … {len(divergences) - 5} more"
    out = []
    for v in verdicts:
        if v.name.startswith(("training.", "gnndyn.")):  # checks of the run itself (did it stay finite?)
            out.append(v)
            continue
        named = [s for s in all_series if _touches(v, s)]
        out.append(mark_diverged(v, why) if (not named or any(s in bad for s in named)) else v)
    return out


def run_experiment(spec: ExperimentSpec, out: str | os.PathLike, *, figures: bool = True,
                   overwrite: bool = False) -> tuple[RunStore, ExperimentResult]:
    """Run ``spec`` and write its folder ``out`` (see :mod:`gnndyn.store.run`).

    Nothing is written before the spec passed :func:`~gnndyn.spec.preflight` and the folder was claimed:
    an existing non-empty folder is refused unless ``overwrite`` (which replaces it whole). ``run.json``
    says ``running`` from the start; metrics reach ``metrics.parquet`` as they are recorded (see
    :class:`~gnndyn.store.metrics.Recorder`), so a killed run keeps them and says it did not finish.

    A divergence (a series stopped at a non-finite or blown-up loss, see
    :mod:`gnndyn.training.divergence`) gives status ``diverged``: what was recorded, the checks (those on
    diverged series marked "not assessed"), figures and report are still written. A
    :class:`DivergenceError` raised by the experiment, or any other error, is re-raised after that;
    a divergence the experiment recorded and survived returns normally with ``run.json`` saying
    ``diverged``.
    """

    exp = get_experiment(spec.experiment)
    preflight(spec)
    store = RunStore(out)
    store.claim(overwrite=overwrite)
    try:
        result = _run_claimed(exp, spec, store, figures=figures)
    except BaseException as exc:
        failed = not isinstance(exc, DivergenceError)
        kept = store.previous is not None and failed
        store.settle(keep_new=not failed)
        if kept and isinstance(exc, GnndynError):
            raise GnndynError(f"{exc} The earlier run in {store.root} was kept as it was.") from exc
        raise
    store.settle(keep_new=True)
    return store, result


def _run_claimed(exp: Experiment, spec: ExperimentSpec, store: RunStore, *, figures: bool) -> ExperimentResult:
    """The body of :func:`run_experiment`, in a claimed folder."""
    from datetime import datetime, timezone

    store.write_json("spec.json", spec.model_dump(mode="json"))
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    completed: list[str] = []

    def record(status: str, error: str | None, result: ExperimentResult, **extra: Any) -> None:
        store.write_json("run.json", {
            "experiment": exp.name, "paper": exp.paper, "description": exp.description, "status": status,
            "error": error, "started": started, "wall_time_s": time.perf_counter() - t0, "dtype": spec.dtype,
            "device": spec.device, "versions": _versions(), "completed": list(completed), "summary": result.summary,
            **({"replaces": store.previous.name} if store.previous is not None else {}), **extra,
        })

    record("running", None, ExperimentResult())
    ctx = RunContext(store=store, recorder=Recorder(sink=store.write_metrics))
    status, error, result, tb = "ok", None, ExperimentResult(), None
    try:
        with divergence_policy(spec.divergence_factor):
            result = exp.run(spec, ctx)
    except DivergenceError as exc:
        status, error = "diverged", str(exc)
        result.verdicts.append(Verdict("training.finite", "gnndyn", "the loss and gradients stay finite", False,
                                       float("nan"), f"step {exc.step}", details={"message": str(exc)}))
        raise
    except (KeyboardInterrupt, SystemExit) as exc:  # stopped from outside (Ctrl-C, a signal): not finished
        status, error = INTERRUPTED, f"stopped from outside ({type(exc).__name__}) before it finished"
        raise
    except BaseException as exc:
        status, error = "failed", "".join(traceback.format_exception_only(type(exc), exc)).strip()
        tb = None if isinstance(exc, GnndynError) else "".join(traceback.format_exception(exc))
        raise
    finally:
        divs = ctx.recorder.divergences
        extra: dict[str, Any] = {"divergences": divs}
        if status == "failed" and tb:
            extra["traceback"] = tb  # an unexpected error: where it happened, for a bug report
        if divs and status == "ok":
            status = "diverged"
            names = ", ".join(f"{d['series']} (step {d['step']})" for d in divs[:5]) + (", …" if len(divs) > 5 else "")
            error = f"training diverged in {len(divs)} series: {names}. First: {divs[0]['message']}"
            result.verdicts.append(Verdict(
                "training.finite", "gnndyn", "the loss and gradients stay finite (and the loss below divergence_factor "
                "× its initial value)", False, float("nan"),
                ", ".join(f"{d['series']} step {d['step']}" for d in divs[:5]), details={"divergences": divs}))
        if status == "diverged":
            series = set(ctx.recorder.frame()["series"].unique()) if len(ctx.recorder) else set()
            result.verdicts = mark_diverged_verdicts(result.verdicts, divs, series)
        store.write_metrics(ctx.recorder.table())
        completed.append("metrics")
        store.write_json("checks.json", [v.as_dict() for v in result.verdicts])
        for name, df in result.tables.items():
            store.write_table(name, df)
        completed.append("checks")
        record(status, error, result, **extra)
        if figures and status not in ("failed", INTERRUPTED):
            extra["figure_errors"] = draw_figures(exp, store)
        if not figures or status not in ("failed", INTERRUPTED):
            completed.append("figures")
        record(status, error, result, **extra)
        from gnndyn.report import write_report

        write_report(store)
        completed.append("report")
        record(status, error, result, **extra)
    return result


class _DrawingStore(RunStore):
    """The store as figure functions see it: metric and table values that cannot be drawn (±inf, NaN, beyond
    ±1e200 or non-zero below 1e-200 in magnitude, as a diverged run leaves them) read as NaN, so that no axis or tick computation overflows."""

    def metrics(self):
        from gnndyn.report.plots import DRAWABLE, TINY

        df = super().metrics()
        v = df["value"].to_numpy(dtype=float, copy=True)
        bad = ~(abs(v) < DRAWABLE) | ((v != 0) & (abs(v) < TINY))
        if bad.any():
            v[bad] = float("nan")
            df = df.assign(value=v)
        return df

    def table(self, name: str):
        import numpy as np

        from gnndyn.report.plots import DRAWABLE

        df = super().table(name)
        for c in df.columns:
            if df[c].dtype.kind == "f":
                col = df[c].to_numpy(dtype=float, copy=True)
                col[~(np.abs(col) < DRAWABLE)] = np.nan
                df[c] = col
        return df


def draw_figures(exp: Experiment, store: RunStore) -> dict[str, str]:
    """Draw and save the experiment's figures from the store. A figure function that fails (on NaN/inf
    values of a diverged run, say) does not stop the run: its error is returned (name → message), saved
    in ``figures/errors.json`` and shown by the report, and the other figures are kept."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    errors: dict[str, str] = {}
    try:
        with np.errstate(all="ignore"):
            figs = exp.figures(_DrawingStore(store.root))
    except GnndynError as exc:
        # a run that failed or was stopped may lack the tables its figures read: say so; a finished run's
        # damaged file stops the caller (it is named, and nothing is written)
        run = store.read_json("run.json") if store.path("run.json").exists() else {}
        if run.get("status") in ("ok", "diverged") and not store.incomplete(include_report=False):
            raise
        figs = {}
        errors[exp.name] = (f"not drawn: the run {'failed' if run.get('status') == 'failed' else 'did not finish'} "
                            f"before it wrote what this figure reads ({exc})")
    except Exception as exc:  # noqa: BLE001  (a figure must not sink a run)
        figs = {}
        errors[exp.name] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    from gnndyn.report.plots import drawable, tidy_ticks

    for name, fig in figs.items():
        try:
            for note in drawable(fig):
                errors[f"{name} (partial)"] = note
            tidy_ticks(fig)
            store.save_figure(fig, name)
        except Exception as exc:  # noqa: BLE001
            errors[name] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        finally:
            plt.close(fig)
    p = store.figures_dir / "errors.json"
    if errors:
        store.write_json("figures/errors.json", errors)
    elif p.exists():
        p.unlink()
    return errors


__all__ = ["Experiment", "ExperimentResult", "RunContext", "REGISTRY", "register", "get_experiment", "make_spec",
           "load_spec", "run_experiment", "draw_figures", "mark_diverged_verdicts", "Task"]
