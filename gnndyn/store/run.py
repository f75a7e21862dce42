"""One folder per run, written atomically.

::

    RUN/
      spec.json          the full validated spec (``gnndyn rerun RUN`` reproduces the run)
      metrics.parquet    the metrics table (:mod:`gnndyn.store.metrics`)
      checks.json        verdicts of the theory checks (:class:`gnndyn.theory.Verdict`)
      tables/*.parquet   extra tables an experiment chooses to keep
      figures/*.png|svg  figures drawn from the stored metrics
      report.html        self-contained report (images inline)
      run.json           provenance: versions, dtype, device, wall time, status, completion

Every file is written to a temporary name in the same folder and renamed (:mod:`gnndyn.store.files`), so a
killed run never leaves a half-written file that looks whole. Files get the permissions of an ordinary file
under the user's umask (``0666 & ~umask``), not the private 0600 of a temporary file.

``run.json`` records the run's state from its start: ``status`` is ``running`` while it runs and
``ok``, ``failed`` or ``diverged`` at the end (``interrupted`` when Ctrl-C or a signal stopped it: incomplete); ``completed`` names the stages that finished
(``metrics``, ``checks``, ``figures``, ``report``). :meth:`RunStore.incomplete` says, in words, why
a folder is not a finished run (``None`` when it is). A run folder is never written into unless it
is new, empty, or the caller asked to replace it (:meth:`RunStore.claim`).

Every reader here uses parsers that cannot execute code (JSON, Parquet without Python extension
types); a damaged file raises :class:`~gnndyn.errors.CorruptFileError` naming the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gnndyn.errors import CorruptFileError, GnndynError
from gnndyn.store.files import atomic_write_bytes, read_parquet, temp_beside, to_json
from gnndyn.store.metrics import SCHEMA

#: the stages of a finished run, in the order they complete (recorded in run.json's ``completed``)
STAGES = ("metrics", "checks", "figures", "report")
FINAL_STATUSES = ("ok", "failed", "diverged")
#: the status of a run stopped from outside (Ctrl-C, a signal) while it ran: not final, so the folder says it is
#: incomplete (a sweep runs such a point again)
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class ClaimTerms:
    """How a refusal to claim a run folder (:meth:`RunStore.check_claim`) names things for its reader: the
    folder (``where``: ``--out``), another choice of it (``other``: ``another --out``), how to allow the
    replacement (``allow``: ``--overwrite``), the switch itself (``switch``) and an example of a folder path
    next to ``r`` (``example``). One rule, worded for whoever asked: :data:`CLI_TERMS` for a command line,
    ``gnndyn.monitor.save.PYTHON_TERMS`` for a caller of ``Monitor.save``."""

    where: str
    other: str
    allow: str
    switch: str
    example: Callable[[Path], str]


#: the command line's words (``gnndyn run``, ``rerun`` and the examples' ``--out`` / ``--overwrite``)
CLI_TERMS = ClaimTerms("--out", "another --out", "--overwrite", "--overwrite", lambda r: f"--out {r}-run")


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
        atomic_write_bytes(p, to_json(obj).encode())
        return p

    def write_text(self, name: str, text: str) -> Path:
        p = self.root / name
        atomic_write_bytes(p, text.encode())
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
        fd, tmp = temp_beside(path)
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
            atomic_write_bytes(p, buf.getvalue())
            out.append(p)
        return out

    # a run folder's life
    def claim(self, *, overwrite: bool = False, terms: ClaimTerms | None = None) -> None:
        """Make ``root`` this run's own folder: create it if new, refuse an existing non-empty one unless
        ``overwrite``, and refuse a path that is a regular file (refusals worded in ``terms``, by default the
        command line's: :data:`CLI_TERMS`).

        ``overwrite`` replaces a gnndyn run folder whole, but only once the new run has finished: the earlier
        folder is moved aside (a hidden sibling, :attr:`previous`) and :meth:`settle` then deletes it, or,
        when the new run failed, puts it back. A run killed outright leaves both: the new folder says it is
        incomplete, and the earlier one is in the hidden sibling named in ``run.json`` (``replaces``)."""
        t = terms or CLI_TERMS
        self.check_claim(overwrite=overwrite, terms=t)
        r = self.root
        if r.is_dir() and any(r.iterdir()):
            import os
            import time

            aside = r.with_name(f".{r.name}.replaced-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
            r.rename(aside)
            self.previous = aside
        try:
            r.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if self.previous is not None:
                self.previous.rename(r)
                self.previous = None
            raise GnndynError(f"{t.where} {r} cannot be created ({exc.strerror or exc}); nothing was written. Give "
                              f"{t.other}.") from None

    def check_claim(self, *, overwrite: bool = False, terms: ClaimTerms | None = None) -> None:
        """Raise the error :meth:`claim` would raise, changing nothing: a path that is a file, a folder that
        could not be created (a file on its parent path, a parent that is not writable), an existing
        non-empty folder without ``overwrite``, and, with ``overwrite``, a folder that is not a gnndyn run
        (no ``spec.json`` or ``run.json``: never deleted). Every refusal says what is at the path, that
        nothing was written, and how to go on, in ``terms`` (default :data:`CLI_TERMS`)."""
        t = terms or CLI_TERMS
        r = self.root
        if r.exists() and not r.is_dir():
            raise GnndynError(f"{t.where} {r} is an existing file, not a folder; nothing was written. Give a folder "
                              f"path for the run (e.g. {t.example(r)}).")
        up = r if r.exists() else r.parent
        while not up.exists() and up != up.parent:
            up = up.parent
        if not up.is_dir():
            raise GnndynError(f"{t.where} {r} cannot be created: {up} is a file, not a folder; nothing was written. "
                              f"Give {t.other} whose parent folders are folders.")
        if not os.access(up, os.W_OK | os.X_OK):
            raise GnndynError(f"{t.where} {r} cannot be created: the folder {up} is not writable; nothing was "
                              f"written. Give {t.other} in a folder you can write to.")
        if r.is_dir() and any(r.iterdir()):
            if not overwrite:
                k = sum(1 for _ in r.iterdir())
                what = ("it holds a gnndyn run (spec.json / run.json)" if is_run_folder(r)
                        else f"it holds {k} {'entry that is' if k == 1 else 'entries that are'} not a gnndyn run")
                raise GnndynError(f"run folder {r} already exists and is not empty ({what}); nothing was written. "
                                  f"Give {t.other}, or {t.allow} to replace that folder whole.")
            if not is_run_folder(r):
                raise GnndynError(f"{t.switch} refuses to delete {r}: it is not a gnndyn run folder (no spec.json "
                                  f"or run.json); nothing was written. Give {t.other}.")

    #: the earlier run folder moved aside by ``claim(overwrite=True)``, until :meth:`settle`
    previous: Path | None = None

    def settle(self, *, keep_new: bool) -> None:
        """End an overwrite: delete the earlier folder (``keep_new``) or delete the new one and put the earlier
        back. Nothing happens when no folder was replaced."""
        import shutil

        prev, self.previous = self.previous, None
        if prev is None or not prev.exists():
            return
        if keep_new:
            shutil.rmtree(prev)
            if self.path("run.json").exists():
                run = self.read_json("run.json")
                if run.pop("replaces", None) is not None:
                    self.write_json("run.json", run)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
            prev.rename(self.root)

    def incomplete(self, *, include_report: bool = True) -> str | None:
        """Why this folder is not a finished run, in words (``None`` when it is one). With
        ``include_report=False`` a missing report does not count (what a report being written asks)."""
        if not self.path("run.json").exists():
            return "it has no run.json: the run was stopped before it started recording, or the folder was not written by gnndyn"
        run = self.run_record()
        status = run.get("status")
        if status not in FINAL_STATUSES:
            how = "interrupted (Ctrl-C)" if status == INTERRUPTED else "stopped (killed or crashed)"
            why = (f"run.json says status {status!r}: the run was {how} before it finished; "
                   f"only what was measured up to then is here")
            aside = self.root.with_name(str(run.get("replaces"))) if run.get("replaces") else None
            if aside is not None and aside.is_dir():
                why += (f". It was replacing an earlier run, which is kept whole in {aside} (to have it back: "
                        f"remove {self.root} and rename {aside.name} to {self.root.name})")
            return why
        done = set(run.get("completed", STAGES))
        missing = [s for s in (STAGES if include_report else STAGES[:3]) if s not in done]
        if missing:
            return (f"the run ended ({status}) but did not complete: {', '.join(missing)} missing; what is here is "
                    f"what it wrote before it stopped")
        gone = [f for stage, f in (("metrics", "metrics.parquet"), ("checks", "checks.json"))
                if stage in done and not self.path(f).exists()]
        if gone:
            return (f"{' and '.join(gone)} {'is' if len(gone) == 1 else 'are'} missing, though run.json says the run "
                    f"wrote {'it' if len(gone) == 1 else 'them'} (deleted or moved since); what is shown lacks "
                    f"{'its numbers' if len(gone) == 1 else 'their numbers'}")
        return None

    # reading
    def damage_fix(self, name: str) -> str:
        """What to do about a damaged run file ``name``: ``gnndyn rerun`` re-creates a run from its spec.json, so for
        every file but spec.json itself."""
        if name == "spec.json":
            return ("it was cut short or edited; gnndyn rerun reads this very file, so restore it, or start the run "
                    "again with gnndyn run (a new --out)")
        return (f"it was cut short or edited; restore it, or re-create the run from its spec.json with gnndyn rerun "
                f"{self.root} --out NEW")

    def _read_text(self, name: str) -> str:
        p = self.root / name
        try:
            return p.read_text()
        except UnicodeDecodeError as exc:
            raise CorruptFileError(p, f"not text ({exc})", self.damage_fix(name)) from None

    def read_json(self, name: str) -> Any:
        p = self.root / name
        try:
            return json.loads(self._read_text(name))
        except json.JSONDecodeError as exc:
            raise CorruptFileError(p, f"not valid JSON ({exc})", self.damage_fix(name)) from None

    def _read_object(self, name: str, *, needs: tuple[str, ...] = ()) -> dict[str, Any]:
        """``read_json(name)`` that must be a JSON object holding the keys ``needs``; a CorruptFileError naming the
        file otherwise."""
        data = self.read_json(name)
        if not isinstance(data, dict):
            raise CorruptFileError(self.path(name), f"it holds a JSON {type(data).__name__}, not an object",
                                   self.damage_fix(name))
        missing = [k for k in needs if k not in data]
        if missing:
            raise CorruptFileError(self.path(name), f"it lacks {', '.join(repr(k) for k in missing)}",
                                   self.damage_fix(name))
        return data

    def spec(self) -> dict[str, Any]:
        """``spec.json``: an object naming its experiment (CorruptFileError otherwise)."""
        return self._read_object("spec.json", needs=("experiment",))

    def run_record(self) -> dict[str, Any]:
        """``run.json``: an object (CorruptFileError otherwise)."""
        return self._read_object("run.json")

    def checks(self) -> list[dict[str, Any]]:
        """The verdicts of ``checks.json`` (``[]`` when absent). A file that is not a list of verdicts (objects
        with a ``name`` and a true/false ``holds``) raises CorruptFileError naming it, so that no report shows
        verdicts the run never reached."""
        if not self.path("checks.json").exists():
            return []
        data = self.read_json("checks.json")
        bad = (None if isinstance(data, list) else f"it holds a {type(data).__name__}, not a list of verdicts")
        if bad is None:
            for i, c in enumerate(data):
                if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not isinstance(c.get("holds"), bool):
                    bad = (f"entry {i} is not a verdict (an object with a 'name' and a true/false 'holds'); "
                           f"got {json.dumps(c)[:80]}")
                    break
        if bad:
            raise CorruptFileError(self.path("checks.json"), bad, self.damage_fix("checks.json"))
        return data

    def metrics(self) -> pd.DataFrame:
        p = self.root / "metrics.parquet"
        if not p.exists():
            return SCHEMA.empty_table().to_pandas()
        return read_parquet(p).to_pandas()

    def table(self, name: str) -> pd.DataFrame:
        return read_parquet(self.root / "tables" / f"{name}.parquet").to_pandas()

    def tables(self) -> list[str]:
        d = self.root / "tables"
        return sorted(p.stem for p in d.glob("*.parquet")) if d.exists() else []

    def figures(self) -> list[Path]:
        return sorted(self.figures_dir.glob("*.png")) if self.figures_dir.exists() else []


def is_run_folder(root: str | os.PathLike) -> bool:
    """Whether ``root`` holds a gnndyn run (its ``spec.json`` or ``run.json``): the only folders ``--overwrite``
    may replace."""
    return (Path(root) / "spec.json").exists() or (Path(root) / "run.json").exists()
