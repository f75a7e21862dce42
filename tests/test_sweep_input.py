"""Bad input to ``gnndyn sweep``: every check is made before anything is written, the same for
``--dry-run`` and a real run (:func:`gnndyn.sweep.runner.prepare`), exits with status 2 and leaves every
folder as it was. Nothing here runs a point: sweep folders are made with the sweep's own state writer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gnndyn.cli import app
from gnndyn.sweep import build_config, plan
from gnndyn.sweep.runner import _write_state

EXP = "oversmoothing-at-init"
BASE = ["--set", "graph.n=50", "--set", "model.width=4"]
GRID = ["--grid", "model.depth=1,2"]
runner = CliRunner()


def _invoke(args: list[str]):
    r = runner.invoke(app, [str(a) for a in args])
    r.text = " ".join(r.output.split())  # rich wraps long lines
    return r


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (or the file itself) with its bytes: what must stay as it was."""
    if root.is_file():
        return {".": root.read_bytes()}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _fake_sweep(root: Path, grid: list[str], statuses: list[str | None], *, backend: str = "local",
                sets: list[str] | None = None) -> None:
    """A sweep folder as a sweep leaves it: ``sweep.json`` and, for each status given, the point's
    finished record (spec.json and run.json)."""
    cfg = build_config(EXP, grid=grid, sets=sets if sets is not None else ["graph.n=50", "model.width=4"])
    points = plan(cfg)
    for p, status in zip(points, statuses):
        if status is not None:
            d = root / "points" / p["id"]
            d.mkdir(parents=True)
            (d / "spec.json").write_text(json.dumps(p["spec"]))
            (d / "run.json").write_text(json.dumps({"status": status, "error": "boom" if status == "failed" else None}))
            p["status"] = status
    _write_state(root, cfg, {"name": backend, "workers": 1, "address": None}, points, "complete",
                 "2024-01-01T00:00:00+00:00")


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


# ------------------------------------------------------------------------------- 1. per-point preflight
@pytest.mark.parametrize("dry", [True, False])
def test_a_device_axis_without_cuda_names_the_point_and_the_fix_in_the_sweep(tmp_path, no_cuda, dry):
    out = tmp_path / "sw"
    r = _invoke(["sweep", EXP, *BASE, "--grid", "device=cpu,cuda", "--out", out] + (["--dry-run"] if dry else []))
    assert r.exit_code == 2, r.output
    assert ("error: sweep point 1 (device=\"cuda\") cannot run on this machine (1 of 2 points): device 'cuda' "
            "was asked for but CUDA is not available here.") in r.text
    assert "change the values of its device axis" in r.text and "e.g. --grid device=cpu" in r.text
    assert "--device" not in r.text and "Nothing was written." in r.text
    assert not out.exists()


def test_a_base_device_without_cuda_names_every_point_and_says_set_device_cpu(tmp_path, no_cuda):
    out = tmp_path / "sw"
    r = _invoke(["sweep", EXP, *BASE, "--set", "device=cuda", *GRID, "--seeds", "4", "--out", out, "--dry-run"])
    assert r.exit_code == 2, r.output
    assert ('sweep points 0 (model.depth=1, seed=0), 1 (model.depth=1, seed=1), 2 (model.depth=1, seed=2), '
            '3 (model.depth=1, seed=3), 4 (model.depth=2, seed=0) and 3 more cannot run on this machine '
            '(8 of 8 points)') in r.text
    assert "set device in the sweep's base with --set device=cpu (or device: cpu under base: in the sweep file)" in r.text
    assert "--device" not in r.text and not out.exists()


def test_a_resumed_sweep_asking_for_cuda_says_how_to_continue(tmp_path, no_cuda):
    out = tmp_path / "sw"
    _fake_sweep(out, ["model.depth=1,2"], [None, None], sets=["graph.n=50", "device=cuda"])
    before = _tree(out)
    for extra in (["--dry-run"], []):
        r = _invoke(["sweep", "--resume", out, *extra])
        assert r.exit_code == 2, r.output
        assert "cannot run on this machine (2 of 2 points)" in r.text and "--resume runs it as stored" in r.text
        assert "start a new sweep with device=cpu and another --out" in r.text and "--device" not in r.text
    assert _tree(out) == before


def test_a_missing_data_root_is_said_in_the_sweeps_terms(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "sw"
    r = _invoke(["sweep", "patel-fig8", "--grid", "seed=0,1", "--set", f"data_root={empty}", "--out", out, "--dry-run"])
    assert r.exit_code == 2, r.output
    assert "sweep points 0 (seed=0) and 1 (seed=1) cannot run on this machine (2 of 2 points): cannot load us-climate" in r.text
    assert "Point data_root (or $GNNDYN_DATA_ROOT) at a folder holding climate/" in r.text
    assert "set data_root in the sweep's base with --set data_root=DIR" in r.text and "--data-root" not in r.text
    assert not out.exists() and list(empty.iterdir()) == []


# ------------------------------------------------------------------------------- 2. the --out folder
def _run_folder(d: Path) -> None:
    d.mkdir()
    (d / "spec.json").write_text('{"experiment": "oversmoothing-at-init"}')
    (d / "run.json").write_text('{"status": "ok"}')
    (d / "metrics.parquet").write_bytes(b"PAR1")


@pytest.mark.parametrize("dry", [True, False])
@pytest.mark.parametrize("kind", ["run", "busy", "file", "other-sweep"])
def test_an_out_that_is_not_this_sweeps_folder_is_refused_and_left_as_it_is(tmp_path, kind, dry):
    out = tmp_path / "out"
    if kind == "run":
        _run_folder(out)
        expect = ("error: --out ", " is a gnndyn run folder (it holds spec.json and run.json): not a sweep folder. A sweep "
                  "writes only into a new or empty folder, or one holding the same sweep; choose another --out. "
                  "Nothing was changed.")
    elif kind == "busy":
        out.mkdir()
        for name in ("a.txt", "b.txt", "c.txt", "d.txt", "e.txt"):
            (out / name).write_text(name)
        expect = ("error: --out ", " is not empty (it holds a.txt, b.txt, c.txt, d.txt and 1 more) and has no "
                  "sweep.json: not a sweep folder.")
    elif kind == "file":
        out.write_text("notes")
        expect = ("error: --out ", " is a file, not a folder; give a new or empty folder for the sweep (or the folder "
                  "of this same sweep, to continue it).")
    else:
        _fake_sweep(out, ["model.depth=3,4"], [None, None])
        expect = ("error: ", " holds a different sweep (oversmoothing-at-init, axes ['model.depth']; it differs in "
                  "grid); continue that one as it is with `gnndyn sweep --resume ")
    before = _tree(out)
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--out", out] + (["--dry-run"] if dry else []))
    assert r.exit_code == 2, r.output
    assert r.text.startswith(expect[0]) and expect[1] in r.text
    assert _tree(out) == before and not (out.is_dir() and (out / ".sweep.lock").exists())


def test_an_empty_folder_or_the_same_sweep_is_accepted_by_the_dry_run(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--out", empty, "--dry-run", "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "2 of 2 points would run into" in r.text and "on the local backend with 1 worker(s)." in r.text
    assert list(empty.iterdir()) == []
    same = tmp_path / "same"
    _fake_sweep(same, ["model.depth=1,2"], ["ok", "failed"])
    before = _tree(same)
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--out", same, "--dry-run", "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "│ ok │ no │" in r.text and "│ failed │ no │" in r.text  # a failed point reruns only with --retry-failed
    assert "0 of 2 points would run" in r.text
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--out", same, "--dry-run", "--workers", "1", "--retry-failed"])
    assert r.exit_code == 0, r.output
    assert "│ failed │ yes │" in r.text and "1 of 2 points would run" in r.text and "warning" not in r.text
    assert _tree(same) == before


# ------------------------------------------------------------------------------- 3. --retry-failed
@pytest.mark.parametrize("dry", [True, False])
def test_retry_failed_for_a_new_sweep_is_an_error_that_names_resume(tmp_path, dry):
    out = tmp_path / "sw"
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--out", out, "--retry-failed"] + (["--dry-run"] if dry else []))
    assert r.exit_code == 2, r.output
    assert ("--retry-failed reruns the failed points of an existing sweep, but --out " in r.text
            and "holds no sweep yet, so no point has failed: drop --retry-failed (to rerun the failed points of a "
            "sweep: gnndyn sweep --resume DIR --retry-failed)." in r.text)
    assert not out.exists()
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--retry-failed", "--dry-run"])
    assert r.exit_code == 2 and "but no --out names a sweep" in r.text


def test_retry_failed_with_resume_reruns_the_failed_points_and_warns_when_there_are_none(tmp_path):
    failed, clean = tmp_path / "failed", tmp_path / "clean"
    _fake_sweep(failed, ["model.depth=1,2"], ["ok", "failed"])
    _fake_sweep(clean, ["model.depth=1,2"], ["ok", "ok"])
    r = _invoke(["sweep", "--resume", failed, "--retry-failed", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "1 of 2 points would run" in r.text and "warning" not in r.text
    r = _invoke(["sweep", "--resume", clean, "--retry-failed", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "warning: --retry-failed: no point of the sweep in" in r.text and "has failed; it reruns nothing." in r.text
    assert "0 of 2 points would run" in r.text


# ------------------------------------------------------------------------------- 4. --address
@pytest.mark.parametrize("dry", [True, False])
def test_address_without_the_ray_backend_is_an_error(tmp_path, dry):
    out = tmp_path / "sw"
    extra = ["--dry-run"] if dry else []
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--out", out, "--address", "auto", *extra])
    assert r.exit_code == 2, r.output
    assert ("error: --address applies to the ray backend only (it names a Ray cluster to join); the backend here "
            "is 'local' (the default): add --backend ray, or drop --address.") in r.text
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--out", out, "--address", "auto", "--backend", "local", *extra])
    assert r.exit_code == 2 and "the backend here is 'local': add --backend ray" in r.text
    assert not out.exists()
    stored = tmp_path / "stored"
    _fake_sweep(stored, ["model.depth=1,2"], [None, None])
    before = _tree(stored)
    r = _invoke(["sweep", "--resume", stored, "--address", "auto", *extra])
    assert r.exit_code == 2, r.output
    assert "the backend here is 'local' (the backend the sweep in" in r.text and "ran on): add --backend ray" in r.text
    assert _tree(stored) == before


# ------------------------------------------------------------------------------- 5. --workers
@pytest.mark.parametrize("workers", ["0", "-2"])
@pytest.mark.parametrize("dry", [True, False])
def test_workers_below_one_is_an_error_with_the_valid_range(tmp_path, workers, dry):
    out = tmp_path / "sw"
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--out", out, "--workers", workers] + (["--dry-run"] if dry else []))
    assert r.exit_code == 2, r.output
    assert "error: --workers must be a whole number, 1 or more (worker processes, or Ray CPUs; by default one per core," in r.text
    assert r.text.endswith(f"got {workers}.") and not out.exists()


def test_workers_below_one_on_resume_is_an_error(tmp_path):
    stored = tmp_path / "stored"
    _fake_sweep(stored, ["model.depth=1,2"], [None, None])
    before = _tree(stored)
    r = _invoke(["sweep", "--resume", stored, "--workers", "0"])
    assert r.exit_code == 2 and "--workers must be a whole number, 1 or more" in r.text and r.text.endswith("got 0.")
    assert _tree(stored) == before


# ------------------------------------------------------------------------------- 6. --backend
@pytest.mark.parametrize("dry", [True, False])
def test_an_unknown_backend_fails_at_once_listing_the_valid_ones(tmp_path, dry):
    out = tmp_path / "sw"
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--out", out, "--backend", "rayy"] + (["--dry-run"] if dry else []))
    assert r.exit_code == 2, r.output
    assert r.text == "error: unknown backend 'rayy'; valid backends: local, ray. Did you mean 'ray'?"
    assert not out.exists()
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--backend", "slurm", "--dry-run"])  # without --out too
    assert r.exit_code == 2 and r.text == "error: unknown backend 'slurm'; valid backends: local, ray."
    stored = tmp_path / "stored"
    _fake_sweep(stored, ["model.depth=1,2"], [None, None])
    r = _invoke(["sweep", "--resume", stored, "--backend", "rayy"] + (["--dry-run"] if dry else []))
    assert r.exit_code == 2 and "unknown backend 'rayy'; valid backends: local, ray." in r.text


def test_the_ray_backend_without_ray_fails_in_the_dry_run(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    out = tmp_path / "sw"
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--out", out, "--backend", "ray", "--dry-run"])
    assert r.exit_code == 2, r.output
    assert "the ray backend needs Ray, which is not installed here: pip install gnndyn[ray]" in r.text
    assert not out.exists()


# ------------------------------------------------------------------------------- the dry run = the run's checks
def test_the_dry_run_refuses_what_resume_refuses(tmp_path):
    stored = tmp_path / "stored"
    _fake_sweep(stored, ["model.depth=1,2"], [None, None])
    before = _tree(stored)
    r = _invoke(["sweep", EXP, "--resume", stored, "--dry-run"])
    assert r.exit_code == 2 and "--resume continues the stored sweep as it was; drop EXPERIMENT" in r.text
    r = _invoke(["sweep", "--resume", stored, "--seeds", "2", "--dry-run"])
    assert r.exit_code == 2 and "drop --seeds" in r.text
    r = _invoke(["sweep", "--resume", stored, "--out", tmp_path / "elsewhere", "--dry-run"])
    assert r.exit_code == 2 and "name different folders; give only --resume." in r.text
    r = _invoke(["sweep", "--resume", stored, "--dry-run", "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "2 of 2 points would run into" in r.text and "on the local backend with 1 worker(s)." in r.text
    assert _tree(stored) == before and not (tmp_path / "elsewhere").exists()


def test_the_dry_run_without_out_lists_the_points_and_says_how_to_run_them():
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--dry-run", "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert r.text.endswith("2 of 2 points would run on the local backend with 1 worker(s); give --out DIR to run them.")
    assert "depth=1-" in r.text and "depth=2-" in r.text
