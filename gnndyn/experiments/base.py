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

from gnndyn.errors import DivergenceError, GnndynError, resolve
from gnndyn.progress import Task, task
from gnndyn.spec import ExperimentSpec, apply_overrides, validate_spec
from gnndyn.store.metrics import Recorder
from gnndyn.store.run import RunStore
from gnndyn.theory.verdict import Verdict


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
    if top:
        unknown = sorted(set(top) - set(exp.spec_cls.model_fields))
        if unknown:
            raise GnndynError(f"experiment {name!r} has no option {', '.join(unknown)}.")
        spec = validate_spec(exp.spec_cls, {**spec.model_dump(mode="json"), **top})
    if overrides:
        spec = apply_overrides(spec, overrides)
    return spec


def load_spec(path: str | os.PathLike) -> ExperimentSpec:
    """Read a saved ``spec.json`` (or a run folder holding one) back into its spec class."""
    p = Path(path)
    if p.is_dir():
        p = p / "spec.json"
    if not p.exists():
        raise GnndynError(f"no spec at {p}: give a run folder or a spec.json written by gnndyn.")
    import json

    data = json.loads(p.read_text())
    if "experiment" not in data:
        raise GnndynError(f"{p} has no 'experiment' field; it was not written by gnndyn.")
    exp = get_experiment(data["experiment"])
    return validate_spec(exp.spec_cls, data)


def _versions() -> dict[str, str]:
    import numpy
    import scipy
    import torch

    import gnndyn

    return {"gnndyn": gnndyn.__version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "python": platform.python_version()}


def run_experiment(spec: ExperimentSpec, out: str | os.PathLike, *, figures: bool = True) -> tuple[RunStore, ExperimentResult]:
    """Run ``spec`` and write its folder ``out`` (see :mod:`gnndyn.store.run`).

    A divergence or an error inside the run still writes what was recorded before it, with the
    status in ``run.json``; the exception is then re-raised.
    """
    exp = get_experiment(spec.experiment)
    store = RunStore(out)
    store.root.mkdir(parents=True, exist_ok=True)
    store.write_json("spec.json", spec.model_dump(mode="json"))
    ctx = RunContext(store=store)
    t0 = time.perf_counter()
    status, error, result = "ok", None, ExperimentResult()
    try:
        result = exp.run(spec, ctx)
    except DivergenceError as exc:
        status, error = "diverged", str(exc)
        result.verdicts.append(Verdict("training.finite", "gnndyn", "the loss and gradients stay finite", False,
                                       float("nan"), f"step {exc.step}", details={"message": str(exc)}))
        raise
    except BaseException as exc:
        status, error = "failed", "".join(traceback.format_exception_only(type(exc), exc)).strip()
        raise
    finally:
        store.write_metrics(ctx.recorder.table())
        store.write_json("checks.json", [v.as_dict() for v in result.verdicts])
        for name, df in result.tables.items():
            store.write_table(name, df)
        store.write_json("run.json", {
            "experiment": exp.name, "paper": exp.paper, "description": exp.description, "status": status,
            "error": error, "wall_time_s": time.perf_counter() - t0, "dtype": spec.dtype, "device": spec.device,
            "versions": _versions(), "summary": result.summary,
        })
        if figures and status != "failed":
            draw_figures(exp, store)
        from gnndyn.report import write_report

        write_report(store)
    return store, result


def draw_figures(exp: Experiment, store: RunStore) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, fig in exp.figures(store).items():
        store.save_figure(fig, name)
        plt.close(fig)


__all__ = ["Experiment", "ExperimentResult", "RunContext", "REGISTRY", "register", "get_experiment", "make_spec",
           "load_spec", "run_experiment", "Task"]
