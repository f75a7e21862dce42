"""A point's identity and its finished record.

**Identity.** A point's folder name is a readable slug of its varying values followed by a hash of its
canonical spec: ``depth=8_seed=0-3f9a0c12d4``. The canonical spec is the validated spec as JSON with sorted
keys (so ``model.depth=8`` and ``model.depth=8.0`` are one point); the hash alone identifies the point,
the slug is for people. The same point therefore always lands in the same folder, whichever sweep or
order produced it.

**Completion.** A point is complete only by its own finished record: ``run.json`` in its folder, readable,
with status ``ok`` or ``diverged``, written by :func:`gnndyn.experiments.run_experiment` after the metrics
and checks, and with ``spec.json`` of the same canonical spec. A missing or unreadable ``run.json``, a
status ``running`` (a run that was started but never finished) or any other status is *incomplete* and the
point is run again into a clean folder; ``failed`` is a finished record of a failure, rerun only with
``--retry-failed``. The existence of a folder never counts.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from gnndyn.spec import ExperimentSpec
from gnndyn.store.files import to_json

COMPLETE = ("ok", "diverged")
FAILED = "failed"
INCOMPLETE = "incomplete"
HASH_LEN = 10
SLUG_MAX = 80
#: the class name that :func:`traceback.format_exception_only` puts before the message of gnndyn's own
#: errors (``gnndyn.errors.GnndynError: ``); other errors keep theirs (``KeyError: 'x'`` says what happened)
_OWN_ERROR = re.compile(r"^gnndyn(?:\.[A-Za-z_]\w*)+: ")


def canonical(spec: ExperimentSpec | dict[str, Any]) -> str:
    """The canonical JSON text of a spec: validated values as ``spec.json`` stores them (NaN → null,
    ±inf → "inf"), sorted keys, no whitespace."""
    d = spec.model_dump(mode="json") if isinstance(spec, ExperimentSpec) else spec
    d = json.loads(to_json(d))
    return json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def spec_hash(spec: ExperimentSpec | dict[str, Any]) -> str:
    """First :data:`HASH_LEN` hex digits of the SHA-256 of :func:`canonical`."""
    return hashlib.sha256(canonical(spec).encode()).hexdigest()[:HASH_LEN]


def spec_value(spec: ExperimentSpec, key: str) -> Any:
    """The value of dotted ``key`` in the validated spec (extra parameters of graph/operator included)."""
    cur: Any = spec.model_dump(mode="json")
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "+".join(_text(x) for x in v) or "none"
    if isinstance(v, dict):
        return "+".join(f"{k}{_text(x)}" for k, x in sorted(v.items()))
    return str(v)


def slug(spec: ExperimentSpec, keys: list[str]) -> str:
    """``key=value`` pairs of the varying keys, with the last part of each dotted key when that is
    unambiguous, made safe for a folder name and cut to :data:`SLUG_MAX` characters."""
    last = [k.split(".")[-1] for k in keys]
    names = [k.split(".")[-1] if last.count(k.split(".")[-1]) == 1 else k for k in keys]
    parts = [f"{n}={_text(spec_value(spec, k))}" for n, k in zip(names, keys)]
    s = re.sub(r"[^A-Za-z0-9._=+-]+", "-", "_".join(parts)).strip("-_")
    return s[:SLUG_MAX].rstrip("-_")


def point_id(spec: ExperimentSpec, keys: list[str]) -> str:
    """The folder name of a point: ``<slug>-<hash>`` (just ``<hash>`` when nothing varies)."""
    s = slug(spec, keys)
    return f"{s}-{spec_hash(spec)}" if s else spec_hash(spec)


def error_line(error: Any) -> str:
    """A point's recorded error as one line for people: the message of gnndyn's own errors without their
    class name (``gnndyn.errors.GnndynError: d_y must be ...`` → ``d_y must be ...``), other errors with
    their type (``KeyError: 'x'``); the lines of a message joined by spaces; ``""`` for none."""
    if not isinstance(error, str) or not error.strip():
        return ""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    return _OWN_ERROR.sub("", " ".join(lines), count=1)


def read_record(run_dir: str | Path, expected_hash: str | None = None) -> dict[str, Any]:
    """The finished record of a point's folder: ``{"status", "error", "wall_time_s", "summary"}`` with
    status ``ok``/``diverged``/``failed`` from ``run.json``, else ``incomplete`` (see the module docstring)."""
    d = Path(run_dir)
    none = {"status": INCOMPLETE, "error": None, "wall_time_s": None, "summary": {}}
    try:
        run = json.loads((d / "run.json").read_text())
        spec = json.loads((d / "spec.json").read_text())
    except (OSError, ValueError):
        return none
    if not isinstance(run, dict) or run.get("status") not in (*COMPLETE, FAILED):
        return none
    if expected_hash is not None and spec_hash(spec) != expected_hash:
        return none
    return {"status": run["status"], "error": run.get("error"), "wall_time_s": run.get("wall_time_s"),
            "summary": run.get("summary") or {}}
