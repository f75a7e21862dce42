"""Files written atomically and read safely: the byte-level half of the run store (:mod:`gnndyn.store.run`)
and of a sweep's tables (:mod:`gnndyn.sweep.gather`).

Every file is written to a temporary name in its own folder and renamed, so a killed writer never leaves a
half-written file that looks whole; files get the permissions of an ordinary file under the user's umask
(``0666 & ~umask``), not the private 0600 of a temporary file. Parquet is read without Python extension types
(they would run code); a damaged file raises :class:`~gnndyn.errors.CorruptFileError` naming it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gnndyn.errors import CorruptFileError


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def temp_beside(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path`` with ordinary file permissions (0666 & ~umask)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it, synced and renamed: a reader (or a
    killed writer) never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)
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
    """``obj`` as indented JSON that any parser reads: NaN as null, ±inf as "inf"/"-inf", objects by their
    ``as_dict`` / ``model_dump`` / ``tolist``."""
    return json.dumps(_clean(json.loads(json.dumps(obj, default=_json_default))), indent=2, ensure_ascii=False)


def read_parquet(path: Path) -> pa.Table:
    """Read a Parquet file gnndyn wrote. Python-pickled extension types are refused (they would run code:
    pyarrow's ``PyExtensionType`` unpickles its metadata); a damaged file raises CorruptFileError."""
    try:
        schema = pq.read_schema(path)
        bad = [f.name for f in schema if isinstance(f.type, pa.ExtensionType)]
        if bad:
            raise CorruptFileError(path, f"column(s) {', '.join(bad)} use a Python extension type, which gnndyn never "
                                         f"writes and will not load (loading it could run code)")
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise CorruptFileError(path, f"not a readable Parquet file ({exc})") from None
