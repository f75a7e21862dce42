"""The sweep's tables, gathered from the points' own folders (never from what the workers said).

``metrics.parquet``
    every point's metrics table (:data:`gnndyn.store.metrics.SCHEMA`) with extra columns ``point`` (the
    point's id), ``status``, and one column per varying key (``model.depth``, ``operator.name``…). A key
    that is also a metrics column gets the prefix ``point.``: the sweep's seed axis is ``point.seed``
    (the metrics' own ``seed`` column stays the seed of each series). Rows are in the sweep's point order,
    each point's rows in its own order, so a resumed sweep gives the same table as an uninterrupted one.
``verdicts.parquet``
    every verdict of every point (``checks.json``) with the same extra columns; ``assumptions`` and
    ``details`` as JSON text.
``points.parquet``
    one row per point: id, status, error, wall time, the varying keys and the point's headline
    quantities (``run.json``'s summary; numbers only).

Axis values keep their type when one scalar type fits the whole axis (ints and floats → float); other
values (lists, mixed types) are stored as their JSON text.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gnndyn.errors import CorruptFileError
from gnndyn.store.metrics import SCHEMA
from gnndyn.store.files import atomic_write_bytes, read_parquet

METRIC_COLUMNS = tuple(SCHEMA.names)
VERDICT_COLUMNS = ("name", "paper", "statement", "holds", "margin", "where", "applicable", "assumptions", "details")


def column_name(key: str) -> str:
    return f"point.{key}" if key in METRIC_COLUMNS or key in ("point", "status") or key in VERDICT_COLUMNS else key


def axis_array(values: list[Any]) -> pa.Array:
    """One axis's values as a typed column (see the module docstring)."""
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {bool} or kinds <= {str} or kinds <= {int}:
        return pa.array(values)
    if kinds <= {int, float}:
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    return pa.array([json.dumps(v, sort_keys=True) for v in values], type=pa.string())


def write_parquet(path: Path, table: pa.Table) -> None:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write_bytes(path, buf.getvalue())


def _with_columns(table: pa.Table, extra: dict[str, pa.Array]) -> pa.Table:
    for name, arr in extra.items():
        table = table.append_column(name, arr)
    return table


def _point_columns(points: list[dict[str, Any]], keys: list[str], counts: list[int]) -> dict[str, pa.Array]:
    """Columns ``point``, ``status`` and the axis keys, each point's values repeated ``counts[i]`` times."""
    def rep(vals: list[Any]) -> list[Any]:
        return [v for v, n in zip(vals, counts) for _ in range(n)]

    cols = {"point": pa.array(rep([p["id"] for p in points]), type=pa.string()),
            "status": pa.array(rep([p["status"] for p in points]), type=pa.string())}
    for k in keys:
        typed = axis_array([p["values"].get(k) for p in points])
        cols[column_name(k)] = pa.array(rep(typed.to_pylist()), type=typed.type)
    return cols


def _damaged(root: Path, point: dict[str, Any], f: Path, problem: str) -> CorruptFileError:
    """A point's file that cannot be read, with the sweep's way out: that point run again."""
    return CorruptFileError(f, problem, f"the sweep's tables cannot be gathered with it. Delete that point's folder "
                                        f"({root / 'points' / point['id']}) and run gnndyn sweep --resume {root}: "
                                        f"it runs that point again and keeps the others")


def gather_metrics(root: Path, points: list[dict[str, Any]], keys: list[str]) -> pa.Table:
    tables, counts = [], []
    for p in points:
        f = root / "points" / p["id"] / "metrics.parquet"
        try:
            t = read_parquet(f).cast(SCHEMA) if f.exists() else SCHEMA.empty_table()
        except (CorruptFileError, pa.ArrowException, ValueError) as exc:
            raise _damaged(root, p, f, getattr(exc, "problem", None) or f"not a metrics table ({exc})") from None
        tables.append(t)
        counts.append(t.num_rows)
    base = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    return _with_columns(base, _point_columns(points, keys, counts))


def _float(v: Any) -> float:
    if v is None:
        return math.nan
    if isinstance(v, str):
        return {"inf": math.inf, "-inf": -math.inf}.get(v, math.nan)
    return float(v)


def gather_verdicts(root: Path, points: list[dict[str, Any]], keys: list[str]) -> pa.Table:
    rows: dict[str, list[Any]] = {c: [] for c in VERDICT_COLUMNS}
    counts = []
    for p in points:
        f = root / "points" / p["id"] / "checks.json"
        try:
            checks = json.loads(f.read_text()) if f.exists() else []
        except ValueError as exc:
            raise _damaged(root, p, f, f"not readable JSON ({exc})") from None
        if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
            raise _damaged(root, p, f, "not a list of verdicts")
        counts.append(len(checks))
        for c in checks:
            rows["name"].append(str(c.get("name", "")))
            rows["paper"].append(str(c.get("paper", "")))
            rows["statement"].append(str(c.get("statement", "")))
            rows["holds"].append(bool(c.get("holds")))
            rows["margin"].append(_float(c.get("margin")))
            rows["where"].append(str(c.get("where", "")))
            rows["applicable"].append(bool(c.get("applicable", True)))
            rows["assumptions"].append(json.dumps(c.get("assumptions", {}), sort_keys=True))
            rows["details"].append(json.dumps(c.get("details", {}), sort_keys=True))
    types = {"holds": pa.bool_(), "applicable": pa.bool_(), "margin": pa.float64()}
    base = pa.table({c: pa.array(v, type=types.get(c, pa.string())) for c, v in rows.items()})
    return _with_columns(base, _point_columns(points, keys, counts))


def gather_points(points: list[dict[str, Any]], keys: list[str]) -> pd.DataFrame:
    rows = []
    for p in points:
        row: dict[str, Any] = {"point": p["id"], "index": p["index"], "status": p["status"], "error": p.get("error"),
                               "wall_time_s": p.get("wall_time_s")}
        for k in keys:
            row[column_name(k)] = p["values"].get(k)
        for k, v in (p.get("summary") or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                row[f"summary: {k}"] = float(v)
        rows.append(row)
    df = pd.DataFrame(rows)
    for k in keys:  # the same typing as the long tables
        c = column_name(k)
        df[c] = axis_array([p["values"].get(k) for p in points]).to_pandas()
    return df


def write_tables(root: Path, points: list[dict[str, Any]], keys: list[str]) -> dict[str, Path]:
    """Write ``metrics.parquet``, ``verdicts.parquet`` and ``points.parquet`` into the sweep folder."""
    out = {"metrics": root / "metrics.parquet", "verdicts": root / "verdicts.parquet", "points": root / "points.parquet"}
    write_parquet(out["metrics"], gather_metrics(root, points, keys))
    write_parquet(out["verdicts"], gather_verdicts(root, points, keys))
    write_parquet(out["points"], pa.Table.from_pandas(gather_points(points, keys), preserve_index=False))
    return out
