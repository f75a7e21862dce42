"""A local sweep stopped from outside, in real processes: Ctrl-C (SIGINT to its process group) stops it at
once and leaves the running points incomplete; a sweep killed outright leaves no worker behind; a worker
killed outright (as the OOM killer does) costs one point one more run, not the sweep. Points of about 3 s
each (a CSBM with 8000 nodes, depth 40), one thread per worker, 2 workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gnndyn.sweep import read_sweep

ROOT = Path(__file__).resolve().parents[1]
POINTS = 6
ARGS = ["oversmoothing-at-init", "--grid", "model.depth=" + ",".join(str(40 + i) for i in range(POINTS)),
        "--set", "graph.n=8000", "--set", "model.width=16", "--no-figures", "--workers", "2"]

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg") or not Path("/proc").is_dir(),
                                reason="process groups and /proc (Linux) are needed to find the workers")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(OMP_NUM_THREADS="1", GNNDYN_NO_PROGRESS="1")
    return env


def _as_from_a_terminal() -> None:
    """In the child before it runs: Ctrl-C's signal at its default, as a command typed in a terminal has it (a
    test suite started in the background by a shell inherits SIGINT ignored, and Python then keeps ignoring it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(out: Path, log: Path) -> subprocess.Popen:
    with open(log, "wb") as f:
        return subprocess.Popen([sys.executable, "-m", "gnndyn", "sweep", *ARGS, "--out", str(out)], env=_env(),
                                cwd=out.parent, start_new_session=True, stdout=f, stderr=subprocess.STDOUT,
                                preexec_fn=_as_from_a_terminal)


def _in_session(sid: int) -> list[int]:
    """The live processes of session ``sid`` (the sweep, its fork server and workers)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) == sid and fields[0] != "Z":  # field 6 of stat: the session; skip zombies
                pids.append(int(d.name))
    return pids


def _statuses(out: Path) -> dict[str, str]:
    found = {}
    for f in (out / "points").glob("*/run.json"):
        try:
            found[f.parent.name] = json.loads(f.read_text()).get("status")
        except ValueError:
            pass
    return found


def _wait_for(cond, timeout: float = 120.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_stops_the_sweep_at_once_and_the_running_points_are_incomplete(tmp_path):
    out, log = tmp_path / "sw", tmp_path / "log"
    proc = _start(out, log)
    try:
        assert _wait_for(lambda: list(_statuses(out).values()).count("ok") >= 1 and
                         "running" in _statuses(out).values()), log.read_text()[-2000:]
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = " ".join(log.read_text().split())
    assert proc.returncode == 130, text[-2000:]
    assert "interrupted: the points that were running are incomplete" in text and "gnndyn sweep --resume" in text
    state = read_sweep(out)
    assert state["status"] == "interrupted"
    st = {p["id"]: p["status"] for p in state["points"]}
    assert "failed" not in st.values(), st  # a point stopped by Ctrl-C is not a failure
    done = list(st.values()).count("ok")
    assert done >= 1, st  # the stop came after a point finished (the wait above)
    assert done < POINTS, st  # and did not let the queue drain
    assert list(st.values()).count("incomplete") == POINTS - done, st  # every other point is incomplete
    assert _wait_for(lambda: _in_session(proc.pid) == [], 10), "workers outlived the sweep"
    after = _statuses(out)
    assert list(after.values()).count("ok") == done  # nothing ran on after the stop
    r = subprocess.run([sys.executable, "-m", "gnndyn", "sweep", "--resume", str(out)], env=_env(), cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{POINTS} points ({POINTS - done} run now): ok {POINTS}" in r.stdout


def test_a_sweep_killed_outright_leaves_no_worker_writing_into_its_folder(tmp_path):
    out, log = tmp_path / "sw", tmp_path / "log"
    proc = _start(out, log)
    try:
        assert _wait_for(lambda: "running" in _statuses(out).values()), log.read_text()[-2000:]
        assert len(_in_session(proc.pid)) >= 3  # the sweep, its fork server, its workers
        os.kill(proc.pid, signal.SIGKILL)  # the sweep's own process only, as `kill -9 PID` does
        proc.wait(timeout=30)
        assert _wait_for(lambda: _in_session(proc.pid) == [], 15), "workers outlived the sweep"
        frozen = {f: f.stat().st_mtime for f in (out / "points").rglob("*") if f.is_file()}
        time.sleep(4)  # longer than a point takes: an orphan would have finished one
        assert {f: f.stat().st_mtime for f in (out / "points").rglob("*") if f.is_file()} == frozen
    finally:
        for pid in _in_session(proc.pid):
            os.kill(pid, signal.SIGKILL)


def test_a_worker_killed_outright_costs_its_point_one_more_run_not_the_sweep(tmp_path):
    out, log = tmp_path / "sw", tmp_path / "log"
    proc = _start(out, log)
    try:
        assert _wait_for(lambda: "running" in _statuses(out).values()), log.read_text()[-2000:]
        workers = [p for p in _in_session(proc.pid) if p != proc.pid and
                   int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) != proc.pid]
        assert workers, "no worker found"  # the fork server's children: the pool's workers
        os.kill(workers[0], signal.SIGKILL)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    assert f"{POINTS} points ({POINTS} run now): ok {POINTS}" in text
    assert read_sweep(out)["status"] == "complete"
