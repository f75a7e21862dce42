"""Schedules: when a probe runs. A schedule maps a step (0-based) to a bool.

Cheap probes run every step; expensive ones (eigen-decompositions, SVDs) on a sparser schedule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from gnndyn.errors import GnndynError


class Schedule:
    """Base class: ``schedule(step) -> bool``. The last step of a run is always probed by the trainer."""

    def __call__(self, step: int) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Every(Schedule):
    """Every ``k``-th step (step % k == 0)."""

    k: int = 1

    def __post_init__(self) -> None:
        if self.k < 1:
            raise GnndynError(f"Every(k) needs k ≥ 1; got {self.k}.")

    def __call__(self, step: int) -> bool:
        return step % self.k == 0


@dataclass(frozen=True)
class At(Schedule):
    """At the given steps only."""

    steps: frozenset[int]

    def __call__(self, step: int) -> bool:
        return step in self.steps


def at(steps: Iterable[int]) -> At:
    return At(frozenset(int(s) for s in steps))


def log_spaced(total: int, num: int = 50) -> At:
    """About ``num`` steps spaced logarithmically in [0, total] (0 and total included)."""
    if total < 0 or num < 1:
        raise GnndynError(f"log_spaced needs total ≥ 0 and num ≥ 1; got total={total}, num={num}.")
    pts = np.unique(np.round(np.logspace(0, np.log10(max(total, 1) + 1), num) - 1).astype(int))
    return at([0, total, *pts.tolist()])


def every(k: int = 1) -> Every:
    return Every(k)


NEVER = At(frozenset())
