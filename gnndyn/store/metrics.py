"""The one metrics table of gnndyn (long format, one row per recorded value).

========== ======= =================================================================
column     type    meaning
========== ======= =================================================================
series     string  which model/run inside the experiment (``gnn``, ``mlp``, ``gd-lr=0.1``…)
seed       int64   the seed of that series
step       int64   optimization step (0 = initialization)
time       float64 continuous time t (gradient flow; t = kη for gradient descent), NaN if none
quantity   string  what was measured (``loss``, ``grad_norm``, ``smoothing_B``…)
layer      int64   layer index k for per-layer quantities, −1 otherwise
value      float64 the measured value
========== ======= =================================================================

Quantities recorded by the built-in probes: ``loss``; ``smoothing_X``, ``smoothing_F``, ``smoothing_H``,
``smoothing_B`` (Keriven's ℰ of the forward and backward signals, per layer); ``mean_output_error``;
``grad_norm`` (‖∂L/∂W⁽ᵏ⁾‖_F); ``spectral_norm`` (s_k); ``dirichlet_X``. Experiments add their own and
list them in their docstrings.
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

SCHEMA = pa.schema(
    [
        ("series", pa.string()),
        ("seed", pa.int64()),
        ("step", pa.int64()),
        ("time", pa.float64()),
        ("quantity", pa.string()),
        ("layer", pa.int64()),
        ("value", pa.float64()),
    ]
)


class Recorder:
    """Collects metric rows in memory; ``table()`` gives the pyarrow table in :data:`SCHEMA`.

    With a ``sink`` (``sink(table)``, e.g. :meth:`RunStore.write_metrics`) the rows recorded so far reach
    disk as the run goes: when a new series starts (the previous one ended), when a training loop calls
    :meth:`series_done`, and at least every ``flush_every_s`` seconds of a long loop. Series ends closer than
    ``min_interval_s`` to the last write are folded into the next one, so that thousands of short series do
    not rewrite the file thousands of times. A run killed with SIGKILL therefore keeps what it measured up to
    the last flush (at most ``flush_every_s`` seconds of a loop, or ``min_interval_s`` of short series).

    ``divergences`` lists the series whose training stopped at a non-finite or blown-up value
    (:meth:`mark_diverged`); the run reads it to set its status.
    """

    def __init__(self, sink: Callable[[pa.Table], Any] | None = None, *, flush_every_s: float = 5.0,
                 min_interval_s: float = 0.5) -> None:
        self._cols: dict[str, list[Any]] = {f.name: [] for f in SCHEMA}
        self.sink = sink
        self.flush_every_s = float(flush_every_s)
        self.min_interval_s = float(min_interval_s)
        self.divergences: list[dict[str, Any]] = []
        self._series_seen: set[tuple[str, int]] = set()
        self._last: tuple[str, int] | None = None
        self._flushed_at = _time.monotonic()
        self._flushed_rows = 0

    def __len__(self) -> int:
        return len(self._cols["value"])

    def flush(self) -> None:
        """Write every row recorded so far through the sink (no-op without one or when nothing is new)."""
        if self.sink is not None and len(self) != self._flushed_rows:
            self.sink(self.table())
            self._flushed_rows = len(self)
        self._flushed_at = _time.monotonic()

    def series_done(self) -> None:
        """A training loop finished a series: flush (unless the last write is under ``min_interval_s`` old)."""
        if _time.monotonic() - self._flushed_at >= self.min_interval_s:
            self.flush()

    def mark_diverged(self, series: str, seed: int, step: int, message: str) -> None:
        """Record that ``series`` (seed ``seed``) stopped at ``step`` because training diverged."""
        self.divergences.append({"series": str(series), "seed": int(seed), "step": int(step), "message": str(message)})
        self.flush()

    def _maybe_flush(self, series: str, seed: int) -> None:
        key = (series, seed)
        if key != self._last:
            if self._last is not None and key not in self._series_seen:
                self.series_done()  # a new series starts: the previous one ended
            self._series_seen.add(key)
            self._last = key
        if _time.monotonic() - self._flushed_at >= self.flush_every_s:
            self.flush()

    def add(self, series: str, seed: int, step: int, quantity: str, value: float, *, layer: int = -1,
            time: float = math.nan) -> None:
        if self.sink is not None:
            self._maybe_flush(str(series), int(seed))
        c = self._cols
        c["series"].append(str(series))
        c["seed"].append(int(seed))
        c["step"].append(int(step))
        c["time"].append(float(time))
        c["quantity"].append(str(quantity))
        c["layer"].append(int(layer))
        c["value"].append(float(value))

    def add_values(self, series: str, seed: int, step: int, values: Mapping[str, float | Sequence[float]], *,
                   time: float = math.nan) -> None:
        """Record a probe's output: floats with layer −1, sequences one row per layer."""
        for q, v in values.items():
            if isinstance(v, (list, tuple, np.ndarray)):
                for k, vk in enumerate(v):
                    self.add(series, seed, step, q, float(vk), layer=k, time=time)
            else:
                self.add(series, seed, step, q, float(v), time=time)

    def extend(self, other: "Recorder") -> None:
        for k in self._cols:
            self._cols[k].extend(other._cols[k])
        self.divergences.extend(other.divergences)
        if self.sink is not None:
            self.flush()

    def table(self) -> pa.Table:
        return pa.table({k: pa.array(v, type=SCHEMA.field(k).type) for k, v in self._cols.items()}, schema=SCHEMA)

    def frame(self) -> pd.DataFrame:
        return self.table().to_pandas()


def select(df: pd.DataFrame, quantity: str, **where: Any) -> pd.DataFrame:
    """Rows of ``df`` for one quantity, filtered by column equality (``series="gnn"``...)."""
    out = df[df["quantity"] == quantity]
    for k, v in where.items():
        if isinstance(v, Iterable) and not isinstance(v, str):
            out = out[out[k].isin(list(v))]
        else:
            out = out[out[k] == v]
    return out


def per_layer(df: pd.DataFrame, quantity: str, step: int | None = None, **where: Any) -> np.ndarray:
    """Values of a per-layer quantity ordered by layer (at ``step``, default: the first recorded)."""
    d = select(df, quantity, **where)
    if d.empty:
        return np.zeros(0)
    s = int(d["step"].min()) if step is None else step
    d = d[d["step"] == s].sort_values("layer")
    return d["value"].to_numpy()
