"""Progress bars (rich) for long work; silent when output is not a terminal."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

_console = Console(stderr=True)


class Task:
    """A handle to one progress bar: ``advance(n)`` and ``update(description=...)``."""

    def __init__(self, progress: Progress | None, task_id: int | None) -> None:
        self._p, self._id = progress, task_id

    def advance(self, n: float = 1) -> None:
        if self._p is not None:
            self._p.advance(self._id, n)

    def update(self, **kwargs: object) -> None:
        if self._p is not None:
            self._p.update(self._id, **kwargs)


def enabled() -> bool:
    return _console.is_terminal and not os.environ.get("GNNDYN_NO_PROGRESS")


@contextmanager
def task(description: str, total: float | None) -> Iterator[Task]:
    """A progress bar for ``total`` units of work (nothing is drawn off a terminal)."""
    if not enabled():
        yield Task(None, None)
        return
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), console=_console, transient=False,
    ) as p:
        yield Task(p, p.add_task(description, total=total))


NULL_TASK = Task(None, None)
