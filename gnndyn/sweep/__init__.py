"""Sweeps: many runs of one experiment as one job — a grid of points, each an ordinary run folder,
run in parallel on this machine (``local``) or as Ray tasks (``ray``), resumable after a crash, gathered
into one metrics table, one verdict table and one report.

Data flow: :mod:`~gnndyn.sweep.grid` (description → validated points) → :mod:`~gnndyn.sweep.identity`
(point → folder, finished record) → :mod:`~gnndyn.sweep.backends` / :mod:`~gnndyn.sweep.worker` (points
→ run folders) → :mod:`~gnndyn.sweep.gather` (folders → tables) → :mod:`~gnndyn.sweep.report`.
:mod:`~gnndyn.sweep.runner` ties them together (:func:`prepare` checks everything before anything is written,
the same for ``--dry-run`` and a real run; :func:`execute` runs it); ``gnndyn sweep`` is its command line.
"""

from gnndyn.sweep.grid import (
    Point,
    SweepConfig,
    build_config,
    expand,
    parse_axis,
    read_sweep_file,
)
from gnndyn.sweep.identity import canonical, point_id, read_record, spec_hash
from gnndyn.sweep.runner import (
    SweepJob,
    SweepOutcome,
    execute,
    plan,
    prepare,
    prepare_resume,
    preview,
    read_sweep,
    resume_sweep,
    run_sweep,
)

__all__ = ["Point", "SweepConfig", "SweepJob", "SweepOutcome", "build_config", "canonical", "execute", "expand",
           "parse_axis", "plan", "point_id", "prepare", "prepare_resume", "preview", "read_record", "read_sweep",
           "read_sweep_file", "resume_sweep", "run_sweep", "spec_hash"]
