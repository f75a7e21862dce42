"""Sweeps that run: the local backend against the same points run one by one (bitwise on the CPU), a sweep
killed with SIGKILL and resumed against an uninterrupted one, failures as data and --retry-failed, and
the ray backend against the local one. One grid for all (8 points, 2 of which fail at run time: a CSBM
graph with p_in = p_out = 0 has no edges, so the gossip operator cannot be built), built from the smoke settings of
``oversmoothing-at-init``, one thread per worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from typer.testing import CliRunner

from gnndyn.cli import app
from gnndyn.errors import GnndynError
from gnndyn.experiments import run_experiment
from gnndyn.sweep import build_config, plan, read_sweep, resume_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]
SWEEP_YAML = """\
experiment: oversmoothing-at-init
base:
  graph: {n: 500}
  model.width: 16
zip:
  - model.depth: [4, 8, 16, 8]
    graph.p_in: [0.2, 0.2, 0.2, 0.0]
    graph.p_out: [0.04, 0.04, 0.04, 0.0]
seeds: 2
figures: false
"""
N_POINTS, N_FAILED = 8, 2


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(OMP_NUM_THREADS="1", GNNDYN_NO_PROGRESS="1")
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gnndyn", "sweep", *args]


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("sweepfile") / "sweep.yaml"
    p.write_text(SWEEP_YAML)
    return p


@pytest.fixture(scope="module")
def cfg(sweep_file):
    return build_config(None, file=sweep_file)


@pytest.fixture(scope="module")
def reference(cfg, tmp_path_factory):
    """The uninterrupted sweep on the local backend, 2 workers."""
    out = tmp_path_factory.mktemp("ref") / "sweep"
    outcome = run_sweep(cfg, out, workers=2, progress=False)
    return outcome


def _table(root: Path, name: str):
    return pq.read_table(root / f"{name}.parquet")


def _same(a, b) -> bool:
    """Tables equal in schema and values (NaN equal to NaN, as the metrics' ``time`` column often is)."""
    return a.schema.equals(b.schema) and a.to_pandas().equals(b.to_pandas())


def _statuses(root: Path) -> dict[str, str]:
    return {p["id"]: p["status"] for p in read_sweep(root)["points"]}


def _run_alone(point_dir: Path, out: Path) -> None:
    """Run one point's saved spec by itself, in a fresh process with one thread per BLAS and torch — the thread
    setting every worker of a 2-worker sweep on 2 cores has (dense LAPACK's results depend on its thread count)."""
    from gnndyn.sweep.worker import THREAD_VARS

    env = {**os.environ, **{v: "1" for v in THREAD_VARS}, "GNNDYN_NO_PROGRESS": "1"}
    code = ("import sys, torch; torch.set_num_threads(1); from gnndyn.experiments import load_spec, run_experiment; "
            "run_experiment(load_spec(sys.argv[1]), sys.argv[2], figures=False)")
    subprocess.run([sys.executable, "-c", code, str(point_dir), str(out)], env=env, check=True, capture_output=True)


def test_local_backend_equals_points_run_one_by_one(reference, cfg, tmp_path):
    root = reference.root
    points = plan(cfg)
    assert len(points) == N_POINTS and sorted(reference.ran) == sorted(p["id"] for p in points)
    assert sorted(os.listdir(root / "points")) == sorted(p["id"] for p in points)
    st = _statuses(root)
    assert sum(s == "failed" for s in st.values()) == N_FAILED and sum(s == "ok" for s in st.values()) == N_POINTS - N_FAILED
    metrics = _table(root, "metrics").to_pandas()
    verdicts = _table(root, "verdicts").to_pandas()
    assert {"point", "status", "model.depth", "graph.p_in", "graph.p_out", "point.seed"} <= set(metrics.columns)
    from gnndyn.experiments import load_spec

    for p in points:
        spec = load_spec(root / "points" / p["id"])
        assert spec.model_dump(mode="json") == p["spec"]
        seq = tmp_path / p["id"]
        if p["values"]["graph.p_in"] == 0:
            with pytest.raises(GnndynError, match="no edges"):
                run_experiment(spec, seq, figures=False)
            assert st[p["id"]] == "failed" and "no edges" in read_sweep(root)["points"][p["index"]]["error"]
            assert (metrics["point"] == p["id"]).sum() == 0
            continue
        _run_alone(root / "points" / p["id"], seq)
        one = pq.read_table(seq / "metrics.parquet").to_pandas()
        mine = metrics[metrics["point"] == p["id"]].reset_index(drop=True)
        assert len(one) > 100
        # bitwise: every column of the point's rows equals the sequential run's table
        assert mine[list(one.columns)].equals(one), p["id"]
        assert (mine["model.depth"] == p["values"]["model.depth"]).all() and (mine["point.seed"] == p["values"]["seed"]).all()
        assert (mine["seed"] == p["values"]["seed"]).all()
        checks = json.loads((seq / "checks.json").read_text())
        v = verdicts[verdicts["point"] == p["id"]]
        assert list(v["name"]) == [c["name"] for c in checks] and list(v["holds"]) == [c["holds"] for c in checks]
        assert json.loads((root / "points" / p["id"] / "checks.json").read_text()) == checks
    html = (root / "report.html").read_text()
    assert "Verdict matrix" in html and "keriven" in html and "failed" in html and "no edges" in html
    assert "<script" not in html and "src='http" not in html and 'src="http' not in html


#: the sweep's CLI in a process that SIGKILLs its whole process group (itself, the pool, the workers) right
#: after it recorded its second finished point: a kill in the middle of the sweep, with no race against its end
_KILL_AFTER_TWO = (
    "import os, signal, sys\n"
    "import gnndyn.sweep.runner as r\n"
    "backend = r.run_backend\n"
    "def run_backend(name, tasks, workers, on_result, **kw):\n"
    "    ok = []\n"
    "    def record_then_die(res):\n"
    "        on_result(res)\n"
    "        ok.extend([res['id']] if res['status'] == 'ok' else [])\n"
    "        if len(ok) == 2:\n"
    "            os.killpg(0, signal.SIGKILL)\n"
    "    return backend(name, tasks, workers, record_then_die, **kw)\n"
    "r.run_backend = run_backend\n"
    "from gnndyn.cli import main\n"
    "sys.argv = ['gnndyn', 'sweep', *sys.argv[1:]]\n"
    "main()\n"
)


def test_sigkill_then_resume_runs_every_point_once(reference, cfg, sweep_file, tmp_path):
    out = tmp_path / "killed"
    log = tmp_path / "sweep.log"
    with open(log, "wb") as f:
        proc = subprocess.run([sys.executable, "-c", _KILL_AFTER_TWO, "--file", str(sweep_file), "--out", str(out),
                               "--workers", "2"], env=_env(), cwd=tmp_path, start_new_session=True, stdout=f,
                              stderr=subprocess.STDOUT, timeout=300, check=False)
    assert proc.returncode == -signal.SIGKILL, log.read_text()[-2000:]
    done = {}  # the points whose run finished before the kill (two recorded, at most one per other worker)
    for f in (out / "points").glob("*/run.json"):
        if json.loads(f.read_text()).get("status") == "ok":
            done[f.parent.name] = f.read_bytes()
    assert 2 <= len(done) <= 3 < N_POINTS
    state = read_sweep(out)
    assert state["status"] == "running"
    left = [p["id"] for p in state["points"] if p["id"] not in done]
    # a folder left by a point that never finished, even one whose record says 'running', is not complete
    (out / "points" / left[-1]).mkdir(parents=True, exist_ok=True)
    (out / "points" / left[-1] / "stale.txt").write_text("left by a killed run")
    spec = {p["id"]: p["spec"] for p in plan(cfg)}[left[-1]]
    (out / "points" / left[-1] / "spec.json").write_text(json.dumps(spec))
    (out / "points" / left[-1] / "run.json").write_text(json.dumps({"status": "running"}))
    r = CliRunner().invoke(app, ["sweep", "--resume", str(out)])
    assert r.exit_code == 1, r.output  # the grid's points without edges failed (by design): the sweep says so
    assert "points failed (errors above); to rerun them: gnndyn sweep --resume" in " ".join(r.output.split())
    assert f"{N_POINTS} points ({N_POINTS - len(done)} run now)" in r.output
    state = read_sweep(out)
    ids = [p["id"] for p in state["points"]]
    assert len(ids) == N_POINTS == len(set(ids)) and sorted(os.listdir(out / "points")) == sorted(ids)
    assert state["status"] == "complete with failures"
    assert not (out / "points" / left[-1] / "stale.txt").exists()
    for pid, before in done.items():  # the points finished before the kill were not run again
        assert (out / "points" / pid / "run.json").read_bytes() == before
    for name in ("metrics", "verdicts"):
        assert _same(_table(out, name), _table(reference.root, name)), name
    assert _statuses(out) == _statuses(reference.root)

    # failures are data: --retry-failed reruns only the failed points
    failed = sorted(p for p, s in _statuses(out).items() if s == "failed")
    ok_records = {p: (out / "points" / p / "run.json").read_bytes() for p, s in _statuses(out).items() if s == "ok"}
    for p in failed:
        (out / "points" / p / "marker").write_text("before the retry")
    again = resume_sweep(out, retry_failed=True, progress=False)
    assert sorted(again.ran) == failed and len(failed) == N_FAILED
    assert all(not (out / "points" / p / "marker").exists() for p in failed)
    assert all((out / "points" / p / "run.json").read_bytes() == b for p, b in ok_records.items())
    plain = resume_sweep(out, progress=False)
    assert plain.ran == []
    assert _same(_table(out, "metrics"), _table(reference.root, "metrics"))


def test_ray_backend_equals_local(reference, cfg, tmp_path):
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.skip("ray is not installed (pip install gnndyn[ray]); the ray backend cannot be tested")
    out = tmp_path / "ray"
    outcome = run_sweep(cfg, out, backend="ray", workers=2, progress=False)
    assert sorted(outcome.ran) == sorted(reference.ran)
    assert read_sweep(out)["backend"]["name"] == "ray"
    for name in ("metrics", "verdicts"):
        assert _same(_table(out, name), _table(reference.root, name)), name
    assert _statuses(out) == _statuses(reference.root)
