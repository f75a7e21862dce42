"""One folder per run, written atomically.

::

    RUN/
      spec.json          the full validated spec (``gnndyn rerun RUN`` reproduces the run)
      metrics.parquet    the metrics table (:mod:`gnndyn.store.metrics`)
      checks.json        verdicts of the theory checks (:class:`gnndyn.theory.Verdict`)
      tables/*.parquet   extra tables an experiment chooses to keep
      figures/*.png|svg  figures drawn from the stored metrics
      report.html        self-contained report (images inline)
      run.json           provenance: versions, dtype, device, wall time, status

Every file is written to a temporary name in the same folder and renamed, so a killed run never
leaves a half-written file that looks whole.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gnndyn.store.metrics import SCHEMA


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_default(o: Any) -> Any:
    if hasattr(o, "as_dict"):
        return o.as_dict()
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if isinstance(o, Path):
        return str(o)
    return str(o)


def _clean(o: Any) -> Any:
    """Make floats JSON-safe: NaN → null, ±inf → "inf"/"-inf"."""
    if isinstance(o, float):
        if math.isnan(o):
            return None
        if math.isinf(o):
            return "inf" if o > 0 else "-inf"
        return o
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def to_json(obj: Any) -> str:
    return json.dumps(_clean(json.loads(json.dumps(obj, default=_json_default))), indent=2, ensure_ascii=False)


class RunStore:
    """The folder of one run. Writing methods are atomic; reading methods never recompute anything."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    # paths
    @property
    def figures_dir(self) -> Path:
        return self.root / "figures"

    def path(self, name: str) -> Path:
        return self.root / name

    # writing
    def write_json(self, name: str, obj: Any) -> Path:
        p = self.root / name
        _atomic_write_bytes(p, to_json(obj).encode())
        return p

    def write_text(self, name: str, text: str) -> Path:
        p = self.root / name
        _atomic_write_bytes(p, text.encode())
        return p

    def write_metrics(self, table: pa.Table) -> Path:
        if table.schema != SCHEMA:
            table = table.cast(SCHEMA)
        return self._write_parquet(self.root / "metrics.parquet", table)

    def write_table(self, name: str, df: pd.DataFrame | pa.Table) -> Path:
        t = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
        return self._write_parquet(self.root / "tables" / f"{name}.parquet", t)

    def _write_parquet(self, path: Path, table: pa.Table) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    def save_figure(self, fig: Any, name: str) -> list[Path]:
        """Save a matplotlib figure as ``figures/NAME.png`` and ``.svg`` (atomically)."""
        import io

        out = []
        for ext in ("png", "svg"):
            buf = io.BytesIO()
            fig.savefig(buf, format=ext, dpi=120, bbox_inches="tight")
            p = self.figures_dir / f"{name}.{ext}"
            _atomic_write_bytes(p, buf.getvalue())
            out.append(p)
        return out

    # reading
    def read_json(self, name: str) -> Any:
        return json.loads((self.root / name).read_text())

    def spec(self) -> dict[str, Any]:
        return self.read_json("spec.json")

    def checks(self) -> list[dict[str, Any]]:
        p = self.root / "checks.json"
        return json.loads(p.read_text()) if p.exists() else []

    def metrics(self) -> pd.DataFrame:
        p = self.root / "metrics.parquet"
        if not p.exists():
            return SCHEMA.empty_table().to_pandas()
        return pq.read_table(p).to_pandas()

    def table(self, name: str) -> pd.DataFrame:
        return pq.read_table(self.root / "tables" / f"{name}.parquet").to_pandas()

    def tables(self) -> list[str]:
        d = self.root / "tables"
        return sorted(p.stem for p in d.glob("*.parquet")) if d.exists() else []

    def figures(self) -> list[Path]:
        return sorted(self.figures_dir.glob("*.png")) if self.figures_dir.exists() else []
