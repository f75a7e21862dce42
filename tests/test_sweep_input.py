"""Bad input to ``gnndyn sweep``: every check is made before anything is written, the same for
``--dry-run`` and a real run (:func:`gnndyn.sweep.runner.prepare`), exits with status 2 and leaves every
folder as it was. Sweep folders are made with the sweep's own state writer; only section 7 runs points (in
this process, tiny ones): a sweep with failed or incomplete points exits with status 1, naming how many and the
command that continues it."""

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


def test_a_device_index_beyond_the_machine_is_fixed_with_cuda_0_in_both_terms(tmp_path, monkeypatch):
    """The device checks raise a MachineError whose fix is a value, not words: ``gnndyn run`` says it as
    a flag, the sweep as its axis."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    out = tmp_path / "sw"
    r = _invoke(["sweep", EXP, *BASE, "--grid", "device=cpu,cuda:3", "--out", out, "--dry-run"])
    assert r.exit_code == 2, r.output
    assert ("sweep point 1 (device=\"cuda:3\") cannot run on this machine (1 of 2 points): device 'cuda:3' does "
            "not exist: this machine has 1 CUDA device(s) (cuda:0 … cuda:0).") in r.text
    assert "e.g. --grid device=cuda:0" in r.text and "--device" not in r.text and not out.exists()
    run = _invoke(["run", EXP, *BASE, "--device", "cuda:3", "--out", out])
    assert run.exit_code == 2 and not out.exists()
    assert ("error: device 'cuda:3' does not exist: this machine has 1 CUDA device(s) (cuda:0 … cuda:0); use "
            "--device cuda:0.") in run.text


def test_a_machine_error_keeps_its_parts_across_processes():
    import pickle

    from gnndyn.errors import MachineError, Option

    exc = MachineError("cannot load cora. Point ", Option("data_root"), " at a copy.", fix={"device": "cpu"})
    assert str(exc) == "cannot load cora. Point --data-root at a copy; use --device cpu."
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is MachineError and str(back) == str(exc) and back.fix == {"device": "cpu"}
    assert back.options == ["data_root", "device"]
    assert back.worded(str.upper, fix=False) == "cannot load cora. Point DATA_ROOT at a copy."


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


# ------------------------------------------------------------------------------- 7. points that fail
# These run points, in this process: the backend is replaced by one that calls the worker's run_point for each
# task (as a pool's worker would), and the run of chosen depths raises or its worker is lost.
@pytest.fixture
def in_process(monkeypatch):
    """``{"raise": {depth: exception}, "lost": {depth, ...}}``: what the points of those depths do."""
    from gnndyn.experiments import base as experiments_base
    from gnndyn.sweep import backends, runner, worker

    plan_ = {"raise": {}, "lost": set()}
    real = experiments_base.run_experiment

    def run_experiment(spec, out, **kw):
        exc = plan_["raise"].get(spec.model.depth)
        if exc is not None:
            raise exc
        return real(spec, out, **kw)

    def run_backend(name, tasks, workers, on_result, *, address=None):
        for t in tasks:
            if t["spec"]["model"]["depth"] in plan_["lost"]:
                on_result(backends._lost(t, RuntimeError("the pool broke")))
            else:
                on_result(worker.run_point(t))

    monkeypatch.setattr(experiments_base, "run_experiment", run_experiment)
    monkeypatch.setattr(worker, "pin_threads", lambda threads: None)
    monkeypatch.setattr(runner, "run_backend", run_backend)
    return plan_


def test_failed_points_exit_1_with_their_messages_and_the_retry_command(tmp_path, in_process):
    from gnndyn.errors import GnndynError

    out = tmp_path / "sw"
    in_process["raise"].update({1: GnndynError("d_y must be at most d_x = 8; got 20."), 2: KeyError("x")})
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--out", out, "--no-figures"])
    assert r.exit_code == 1, r.output
    assert "2 points (2 run now): failed 2" in r.text
    # gnndyn's own errors without their class name; other errors with their type
    assert ": failed: d_y must be at most d_x = 8; got 20." in r.text and ": failed: KeyError: 'x'" in r.text
    assert "GnndynError" not in r.text and "gnndyn.errors" not in r.text
    assert r.text.endswith(f"error: 2 of 2 points failed (errors above); to rerun them: gnndyn sweep --resume {out} "
                           "--retry-failed.")
    state = json.loads((out / "sweep.json").read_text())
    assert state["status"] == "complete with failures" and state["counts"] == {"failed": 2}
    report = (out / "report.html").read_text()
    assert "d_y must be at most d_x = 8; got 20." in report and "KeyError: &#x27;x&#x27;" in report
    assert "gnndyn.errors" not in report

    # a resume that runs nothing still says the sweep failed in part
    r = _invoke(["sweep", "--resume", out])
    assert r.exit_code == 1, r.output
    assert "2 points (0 run now): failed 2" in r.text and r.text.endswith(
        f"error: 2 of 2 points failed (errors above); to rerun them: gnndyn sweep --resume {out} --retry-failed.")

    # the command it names reruns them; one fails again (singular), then both succeed: exit 0, no error
    in_process["raise"].pop(2)
    r = _invoke(["sweep", "--resume", out, "--retry-failed"])
    assert r.exit_code == 1, r.output
    assert "2 points (2 run now): failed 1, ok 1" in r.text
    assert r.text.endswith(f"error: 1 of 2 points failed (errors above); to rerun it: gnndyn sweep --resume {out} "
                           "--retry-failed.")
    in_process["raise"].clear()
    r = _invoke(["sweep", "--resume", out, "--retry-failed"])
    assert r.exit_code == 0, r.output
    assert "2 points (1 run now): ok 2" in r.text and "error" not in r.text
    assert json.loads((out / "sweep.json").read_text())["status"] == "complete"


def test_failed_and_incomplete_points_are_both_counted_with_the_commands(tmp_path, in_process):
    out = tmp_path / "sw"
    in_process["raise"][1] = ValueError("no edges")
    in_process["lost"].add(2)
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--out", out, "--no-figures"])
    assert r.exit_code == 1, r.output
    assert "2 points (2 run now): failed 1, incomplete 1" in r.text
    assert ": failed: ValueError: no edges" in r.text
    assert ": incomplete: the worker running this point was lost: RuntimeError: the pool broke" in r.text
    assert r.text.endswith(f"error: 1 of 2 points failed (errors above) and 1 of 2 points is incomplete (its run did "
                           f"not finish); gnndyn sweep --resume {out} runs the incomplete ones, gnndyn sweep "
                           f"--resume {out} --retry-failed the failed ones too.")
    in_process["lost"].clear()
    r = _invoke(["sweep", "--resume", out])  # runs the incomplete point only; the failed one stays failed
    assert r.exit_code == 1, r.output
    assert "2 points (1 run now): failed 1, ok 1" in r.text and "is incomplete" not in r.text
    assert r.text.endswith(f"error: 1 of 2 points failed (errors above); to rerun it: gnndyn sweep --resume {out} "
                           "--retry-failed.")


def test_only_incomplete_points_say_how_to_resume(tmp_path, in_process):
    out = tmp_path / "sw"
    in_process["lost"].update({1, 2})
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--out", out, "--no-figures"])
    assert r.exit_code == 1, r.output
    assert r.text.endswith(f"error: 2 of 2 points are incomplete (their runs did not finish); to run them: "
                           f"gnndyn sweep --resume {out}.")


def test_error_line_drops_the_class_name_of_gnndyns_own_errors_only():
    from gnndyn.sweep.identity import error_line

    assert error_line("gnndyn.errors.GnndynError: d_y must be at most 8; got 20.") == "d_y must be at most 8; got 20."
    assert error_line("gnndyn.errors.CorruptFileError: x.json: not valid JSON.") == "x.json: not valid JSON."
    assert error_line("KeyError: 'x'") == "KeyError: 'x'"
    assert error_line("torch.OutOfMemoryError: CUDA out of memory") == "torch.OutOfMemoryError: CUDA out of memory"
    assert error_line("gnndyn.errors.GnndynError: first line\n  second line\n") == "first line second line"
    assert error_line("training diverged at step 3: loss is nan.") == "training diverged at step 3: loss is nan."
    assert error_line(None) == "" and error_line("  ") == "" and error_line(float("nan")) == ""


# ------------------------------------------------------------------------------- 8. --set seed and --seeds
def test_set_seed_is_the_first_seed_of_the_seed_axis(tmp_path):
    cfg = build_config(EXP, sets=["graph.n=50", "model.width=4", "seed=3"], seeds=2)
    assert cfg.seeds == [3, 4] and "seed" not in cfg.base
    assert [p["values"]["seed"] for p in plan(cfg)] == [3, 4]
    assert [p["spec"]["seed"] for p in plan(cfg)] == [3, 4]
    r = _invoke(["sweep", EXP, *BASE, "--set", "seed=3", "--seeds", "2", "--dry-run", "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert "seed=3-" in r.text and "seed=4-" in r.text and "seed=0-" not in r.text and "seed=1-" not in r.text
    # a sweep file: its base's seed and its seed count, the same
    f = tmp_path / "s.yaml"
    f.write_text(f"experiment: {EXP}\nbase: {{graph.n: 50, seed: 5}}\nseeds: 3\n")
    assert build_config(None, file=f).seeds == [5, 6, 7]
    assert build_config(None, file=f, sets=["seed=1"]).seeds == [1, 2, 3]  # --set replaces the file's base seed
    # without a base seed, from 0 as before
    assert build_config(EXP, seeds=2).seeds == [0, 1]


def test_a_base_seed_with_a_list_of_seeds_or_a_bad_first_seed_is_an_error(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(f"experiment: {EXP}\nbase: {{graph.n: 50, seed: 4}}\nseeds: [1, 2]\n")
    r = _invoke(["sweep", "--file", f, "--dry-run"])
    assert r.exit_code == 2, r.output
    assert r.text == (f"error: the seed is given twice: by `seed: 4` in the base of {f} and by the list of seeds [1, 2] "
                      f"in {f}; give it once (a list names every seed; `seeds: N` runs N seeds from the base's seed on).")
    f.write_text(f"experiment: {EXP}\nbase: {{graph.n: 50}}\nseeds: [1, 2]\n")
    r = _invoke(["sweep", "--file", f, "--set", "seed=4", "--dry-run"])
    assert r.exit_code == 2 and r.text.startswith("error: the seed is given twice: by --set seed=4 and by the list")
    for bad in ("-1", "1.5", "abc"):
        r = _invoke(["sweep", EXP, *BASE, "--set", f"seed={bad}", "--seeds", "2", "--dry-run"])
        assert r.exit_code == 2, r.output
        shown = {"-1": "-1", "1.5": "1.5", "abc": "'abc'"}[bad]
        assert r.text == (f"error: --set seed={bad}: the seed must be a non-negative integer (the first seed of the "
                          f"seed axis); got {shown}.")
    from gnndyn.errors import GnndynError
    from gnndyn.sweep.grid import SweepConfig, check_config

    with pytest.raises(GnndynError, match=r"'seed' is both a base override \(seed=3\) and the seed axis \(seeds "
                                          r"\[0, 1\]\), which would replace it at every point; give it once\."):
        check_config(SweepConfig(experiment=EXP, base={"seed": 3}, seeds=[0, 1]))


def test_a_set_key_given_twice_warns_as_run_does(tmp_path):
    r = _invoke(["sweep", EXP, "--set", "graph.n=40", "--set", "model.width=4", "--set", "graph.n=50", *GRID,
                 "--dry-run", "--workers", "1"])
    assert r.exit_code == 0, r.output
    assert r.text.startswith("warning: --set graph.n given 2 times (40, 50); using the last, 50.")
    assert r.text.count("warning") == 1
    assert build_config(EXP, sets=["graph.n=40", "graph.n=50"]).base == {"graph.n": 50}
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--dry-run", "--workers", "1"])
    assert r.exit_code == 0 and "warning" not in r.text


def test_a_dry_run_of_a_new_sweep_lists_its_points_as_pending(tmp_path):
    out = tmp_path / "sw"
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--out", out, "--dry-run"])
    assert r.exit_code == 0, r.output
    assert r.text.count("pending") == 2 and "incomplete" not in r.text
    assert "2 of 2 points would run" in r.text and not out.exists()


@pytest.mark.parametrize("name, content, problem", [
    ("metrics.parquet", b"PAR1 cut short", "not a readable Parquet file"),
    ("checks.json", b'[{"name": ', "not readable JSON"),
    ("checks.json", b'{"name": "x"}', "not a list of verdicts"),
])
def test_a_damaged_file_of_a_finished_point_is_named_with_the_way_out(tmp_path, name, content, problem):
    out = tmp_path / "sw"
    _fake_sweep(out, ["model.depth=1,2"], ["ok", "ok"])
    point = sorted((out / "points").iterdir())[0]
    (point / name).write_bytes(content)
    r = _invoke(["sweep", "--resume", out])
    assert r.exit_code == 2, r.output
    flat = "".join(r.output.split())  # rich folds long paths anywhere
    assert "".join(f"error: {point / name}: {problem}".split()) in flat and "Traceback" not in r.output
    assert "".join((f"Delete that point's folder ({point}) and run gnndyn sweep --resume {out}: it runs that point "
                    f"again and keeps the others.").split()) in flat
    assert (point / name).read_bytes() == content


def test_the_same_sweep_with_its_axes_in_another_order_continues_in_its_own_folders(tmp_path):
    out = tmp_path / "sw"
    _fake_sweep(out, ["model.depth=1,2", "operator.name=gossip,gcn"], ["ok"] * 4)
    before = sorted(p.name for p in (out / "points").iterdir())
    r = _invoke(["sweep", EXP, *BASE, "--grid", "operator.name=gossip,gcn", "--grid", "model.depth=1,2",
                 "--out", out, "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "0 of 4 points would run" in r.text
    assert sorted(p.name for p in (out / "points").iterdir()) == before


@pytest.mark.parametrize("edit, field", [
    (lambda c: c.update(seeds=2), "config.seeds"),
    (lambda c: c["grid"].update({"model.depth": 5}), "config.grid"),
    (lambda c: c.update(figures="no"), "config.figures"),
])
def test_a_hand_edited_sweep_json_is_refused_with_the_field_named(tmp_path, edit, field):
    out = tmp_path / "sw"
    _fake_sweep(out, ["model.depth=1,2"], ["ok", "ok"])
    state = json.loads((out / "sweep.json").read_text())
    edit(state["config"])
    (out / "sweep.json").write_text(json.dumps(state))
    before = _tree(out)
    r = _invoke(["sweep", "--resume", out, "--dry-run"])
    assert r.exit_code == 2, r.output
    assert "holds no readable sweep config (TypeError: " + field in r.text and "Traceback" not in r.output
    assert _tree(out) == before


def test_a_ray_address_where_nothing_answers_is_refused_before_anything_is_written(tmp_path):
    import socket

    pytest.importorskip("ray")
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "sw"
    r = _invoke(["sweep", EXP, *BASE, *GRID, "--backend", "ray", "--address", f"127.0.0.1:{port}", "--out", out])
    assert r.exit_code == 2, r.output
    assert f"--address 127.0.0.1:{port}: no Ray cluster answers there" in r.text and "Nothing was written." in r.text
    assert not out.exists()
