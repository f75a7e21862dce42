"""When training counts as diverged: a non-finite loss or gradient, or a loss blown up by a large factor.

Every training loop of gnndyn (:func:`gnndyn.training.train`, :func:`gnndyn.training.flow.descend`)
stops a series at the first step where

* the loss or a gradient is not finite (NaN or ±inf), or
* the loss exceeds ``factor`` × the loss at step 0 (when that loss is > 0), ``factor`` being the
  current blow-up factor (:func:`blowup_factor`; ``None`` switches this test off).

The factor is set per run from the spec's ``divergence_factor`` (default 10⁶) by
:func:`gnndyn.experiments.run_experiment`, with :func:`divergence_policy`; outside a run it is 10⁶.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Iterator
from contextlib import contextmanager

#: default blow-up factor: a loss 10⁶ × its initial value is a divergence
DEFAULT_FACTOR = 1e6
_FACTOR: contextvars.ContextVar[float | None] = contextvars.ContextVar("gnndyn_blowup_factor", default=DEFAULT_FACTOR)


def blowup_factor() -> float | None:
    """The blow-up factor in force (``None``: only non-finite values count as a divergence)."""
    return _FACTOR.get()


@contextmanager
def divergence_policy(factor: float | None) -> Iterator[None]:
    """Within the block, a loss above ``factor`` × its step-0 value stops training (``None``: never)."""
    tok = _FACTOR.set(None if factor is None else float(factor))
    try:
        yield
    finally:
        _FACTOR.reset(tok)


def blown_up(value: float, initial: float) -> str | None:
    """Why ``value`` (a finite loss) counts as a blow-up of ``initial`` (the step-0 loss), or ``None``."""
    f = _FACTOR.get()
    if f is None or not (math.isfinite(initial) and initial > 0):
        return None
    if value > f * initial:
        return f"the loss {value:.4g} exceeds {f:g} × its initial value {initial:.4g} (divergence_factor)"
    return None
