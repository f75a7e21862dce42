"""Run folders: never lost, never mixed, never falsely whole (issue 13, "Run folders").

Each test reproduces one way a run folder could be damaged or look finished when it is not; the kill -9
cases use a real subprocess and a real SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gnndyn.cli import app
from gnndyn.errors import GnndynError
from gnndyn.experiments import make_spec, run_experiment
from gnndyn.store import Recorder, RunStore

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
AT_INIT = {"graph.n": 120, "graph.p_in": 0.2, "graph.p_out": 0.04, "model.depth": 4, "model.width": 8, "mlp": False}
GNN_VS_MLP = ["--set", "graph.n=60", "--set", "graph.p_in=0.3", "--set", "graph.p_out=0.05", "--set", "depths=[1,2]"]


def _args(over: dict) -> list[str]:
    out = []
    for k, v in over.items():
        out += ["--set", f"{k}={json.dumps(v)}"]
    return out


def _flat(text: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(text.split())


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "GNNDYN_NO_PROGRESS": "1"}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "A"
    res = runner.invoke(app, ["run", "oversmoothing-at-init", "--out", str(out), *_args(AT_INIT)])
    assert res.exit_code == 0, res.output
    return out


def test_second_run_into_the_same_folder_is_refused_and_touches_nothing(finished_run):
    before = _snapshot(finished_run)
    res = runner.invoke(app, ["run", "gnn-vs-mlp", "--out", str(finished_run), *GNN_VS_MLP])
    assert res.exit_code == 2 and "--overwrite" in _flat(res.output) and "already exists" in _flat(res.output)
    assert _snapshot(finished_run) == before


def test_run_refused_by_validation_leaves_the_folder_as_it_was(finished_run):
    before = _snapshot(finished_run)
    res = runner.invoke(app, ["run", "oversmoothing-at-init", "--out", str(finished_run), "--overwrite",
                              *_args(AT_INIT), "--set", "graph.p_in=1.7"])
    assert res.exit_code == 2 and "p_in" in _flat(res.output) and "[0, 1]" in _flat(res.output)
    assert _snapshot(finished_run) == before


def test_overwrite_replaces_the_folder_whole(tmp_path):
    out = tmp_path / "D"
    assert runner.invoke(app, ["run", "oversmoothing-at-init", "--out", str(out), *_args(AT_INIT)]).exit_code == 0
    first = {p.name for p in (out / "figures").iterdir()}
    (out / "notes.txt").write_text("a file of the old run")
    res = runner.invoke(app, ["run", "gnn-vs-mlp", "--out", str(out), "--overwrite", *GNN_VS_MLP])
    assert res.exit_code == 0, res.output
    figs = {p.name for p in (out / "figures").iterdir()}
    assert figs and not figs & first  # no figure of the first run beside the second's
    assert not (out / "notes.txt").exists()
    assert json.loads((out / "spec.json").read_text())["experiment"] == "gnn-vs-mlp"
    assert json.loads((out / "run.json").read_text())["experiment"] == "gnn-vs-mlp"


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "thesis.tex").write_text("precious")
    res = runner.invoke(app, ["run", "gnn-vs-mlp", "--out", str(d), "--overwrite", *GNN_VS_MLP])
    assert res.exit_code == 2 and "not a gnndyn run folder" in _flat(res.output)
    assert (d / "thesis.tex").read_text() == "precious"


def test_default_out_folder_gets_a_fresh_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        res = runner.invoke(app, ["run", "gnn-vs-mlp", *GNN_VS_MLP])
        assert res.exit_code == 0, res.output
    assert (tmp_path / "runs" / "gnn-vs-mlp" / "run.json").exists()
    assert (tmp_path / "runs" / "gnn-vs-mlp-2" / "run.json").exists()
    for _ in range(2):
        assert runner.invoke(app, ["rerun", "runs/gnn-vs-mlp"]).exit_code == 0
    assert (tmp_path / "runs" / "gnn-vs-mlp-rerun" / "run.json").exists()
    assert (tmp_path / "runs" / "gnn-vs-mlp-rerun-2" / "run.json").exists()


def test_out_pointing_at_a_regular_file_is_one_clear_message(tmp_path):
    f = tmp_path / "results.csv"
    f.write_text("keep me")
    res = runner.invoke(app, ["run", "gnn-vs-mlp", "--out", str(f), *GNN_VS_MLP])
    assert res.exit_code == 2 and str(f) in res.output.replace("\n", "") and "is an existing file" in _flat(res.output)
    assert "Traceback" not in _flat(res.output) and f.read_text() == "keep me"


@pytest.mark.parametrize("name, overrides, fragment", [
    ("oversmoothing-at-init", {"graph.p_in": 1.7}, "p_in is a probability"),
    ("oversmoothing-at-init", {"loss": "hinge"}, "unknown loss 'hinge'"),
    ("backward-oversmoothing", {"early_steps": 500, "steps": 20}, "early_steps=500 must be < steps/2"),
    ("backward-oversmoothing", {"optimizers.gd": float("inf")}, "optimizers.gd must be a finite number"),
    ("oversmoothing-at-init", {"graph.n": "abc"}, "parameter n must be int"),
    ("oversmoothing-at-init", {"graph.noise": float("nan")}, "noise must be a finite number"),
    ("oversmoothing-at-init", {"model.init_scale": float("inf")}, "init_scale must be a finite number"),
    ("gnn-vs-mlp", {"layer": 3, "depths": [1, 2]}, "layer=3 must be < every depth"),
])
def test_bad_specs_are_refused_at_validation(name, overrides, fragment):
    with pytest.raises(GnndynError, match="invalid spec") as e:
        make_spec(name, overrides)
    assert fragment in str(e.value)


def test_cli_refuses_json_infinity_and_nan_before_writing(tmp_path):
    out = tmp_path / "D"
    for bad in ("optimizers.gd=Infinity", "graph.noise=NaN"):
        res = runner.invoke(app, ["run", "backward-oversmoothing", "--out", str(out), "--set", bad])
        assert res.exit_code == 2 and "finite number" in _flat(res.output), res.output
    assert not out.exists()


def test_unavailable_device_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = make_spec("gnn-vs-mlp", {"graph.n": 60}, device="cuda:0")
    with pytest.raises(GnndynError, match="CUDA is not available"):
        run_experiment(spec, tmp_path / "D")
    assert not (tmp_path / "D").exists()


def test_nan_features_or_labels_are_refused_at_the_entry():
    import torch

    from gnndyn.data.graph import Graph

    ei = torch.tensor([[0, 1], [1, 0]])
    x = torch.zeros(3, 2, dtype=torch.float64)
    x[2, 1] = float("nan")
    with pytest.raises(GnndynError, match=r"x \(node features\).*node 2, column 1"):
        Graph(edge_index=ei, num_nodes=3, x=x)
    y = torch.tensor([[0.0], [float("inf")], [1.0]])
    with pytest.raises(GnndynError, match=r"y \(labels\).*node 1"):
        Graph(edge_index=ei, num_nodes=3, y=y)


def test_files_are_created_with_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        spec = make_spec("gnn-vs-mlp", {"graph.n": 60, "graph.p_in": 0.3, "graph.p_out": 0.05, "depths": [1, 2]})
        store, _ = run_experiment(spec, tmp_path / "D")
    finally:
        os.umask(old)
    files = [p for p in store.root.rglob("*") if p.is_file()]
    assert {"report.html", "spec.json", "metrics.parquet", "run.json", "checks.json"} <= {p.name for p in files}
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
    assert set(modes.values()) == {0o644}, modes


def test_run_json_says_running_first_then_final_with_completed_stages(tmp_path, monkeypatch):
    from gnndyn.experiments import base

    seen = []
    real = base.draw_figures

    def spy(exp, store):
        seen.append(store.read_json("run.json"))
        return real(exp, store)

    spec = make_spec("gnn-vs-mlp", {"graph.n": 60, "graph.p_in": 0.3, "graph.p_out": 0.05, "depths": [1, 2]})
    exp = base.get_experiment("gnn-vs-mlp")
    states = []
    orig_run = exp.run

    def run(spec, ctx):
        states.append(ctx.store.read_json("run.json")["status"])
        return orig_run(spec, ctx)

    monkeypatch.setattr(base, "draw_figures", spy)
    monkeypatch.setattr(base, "get_experiment", lambda name: base.Experiment(**{**exp.__dict__, "run": run}))
    store, _ = run_experiment(spec, tmp_path / "D")
    assert states == ["running"]
    assert seen[0]["status"] == "ok" and "figures" not in seen[0]["completed"]
    final = store.read_json("run.json")
    assert final["status"] == "ok" and final["completed"] == ["metrics", "checks", "figures", "report"]
    assert store.incomplete() is None


def test_recorder_flushes_at_series_end_and_every_few_seconds(tmp_path, monkeypatch):
    from gnndyn.store import metrics as m

    store = RunStore(tmp_path)
    written = []
    clock = [1000.0]
    monkeypatch.setattr(m._time, "monotonic", lambda: clock[0])
    rec = Recorder(sink=lambda t: written.append(t.num_rows), flush_every_s=5.0, min_interval_s=0.5)
    rec.add("a", 0, 0, "loss", 1.0)
    rec.add("a", 0, 1, "loss", 0.5)
    assert written == []
    clock[0] += 1.0
    rec.add("b", 0, 0, "loss", 2.0)  # a new series: "a" ended
    assert written == [2]
    rec.add("c", 0, 0, "loss", 2.0)  # "b" ended too, but within min_interval_s of the last write: folded
    assert written == [2]
    for k in range(1, 200):
        rec.add("b", 0, k, "loss", 1.0)
    assert written == [2]  # no time passed
    clock[0] += 6.0
    for k in range(200, 300):
        rec.add("b", 0, k, "loss", 1.0)
    assert len(written) == 2 and written[1] > 200
    clock[0] += 1.0
    rec.series_done()
    assert written[-1] == len(rec)
    store.write_metrics(rec.table())
    assert len(store.metrics()) == len(rec)


_KILLED_RUN = ["--set", "graph.n=150", "--set", "graph.p_in=0.2", "--set", "graph.p_out=0.04", "--set", "model.depth=4",
         "--set", "model.width=4", "--set", "shallow_depth=2", "--set", "steps=400", "--set", "early_steps=5",
         "--set", "probe_every=50", "--set", "mlp=false"]


def test_kill_9_keeps_what_was_measured_and_the_folder_says_incomplete(tmp_path):
    """SIGKILL in the middle of training, right after the first rows reached disk (the recorder's first
    flush kills the process: no race with the run's end). Every series end flushes here (``min_interval_s``
    0), so that first flush comes at the latest when the second series begins, before any row of it."""
    out = tmp_path / "K"
    script = (
        "import os, signal, sys\n"
        "from gnndyn.store.metrics import Recorder\n"
        "Recorder.__init__.__kwdefaults__['min_interval_s'] = 0.0\n"
        "flush = Recorder.flush\n"
        "def flush_then_die(self):\n"
        "    flush(self)\n"
        "    if self._flushed_rows:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "Recorder.flush = flush_then_die\n"
        "from gnndyn.cli import main\n"
        f"sys.argv = ['gnndyn', 'run', 'backward-oversmoothing', '--out', {str(out)!r}, *{_KILLED_RUN!r}]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True, timeout=300, check=False)
    assert proc.returncode == -signal.SIGKILL
    store = RunStore(out)
    assert store.read_json("run.json")["status"] == "running"
    df = store.metrics()
    assert len(df) > 0 and "loss" in set(df["quantity"])
    # the run's series are gnn-L4-adam, gnn-L2-adam, gnn-L4-gd, gnn-L2-gd (560/504 rows each, measured): killed
    # at the first flush, the folder holds rows of the first one only, at most all of them
    assert set(df["series"]) == {"gnn-L4-adam"} and len(df) <= 560
    assert "stopped" in store.incomplete()
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 1 and "incomplete run" in _flat(res.output)
    html = (out / "report.html").read_text()
    assert "INCOMPLETE RUN" in html


def test_kill_9_during_figure_drawing_leaves_a_folder_that_says_so(tmp_path):
    out = tmp_path / "F"
    script = (
        "import os, signal\n"
        "import gnndyn.experiments.base as b\n"
        "def die(exp, store):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "b.draw_figures = die\n"
        "spec = b.make_spec('gnn-vs-mlp', {'graph.n': 60, 'graph.p_in': 0.3, 'graph.p_out': 0.05, 'depths': [1, 2]})\n"
        f"b.run_experiment(spec, {str(out)!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True, timeout=300, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    store = RunStore(out)
    run = store.read_json("run.json")
    assert run["status"] == "ok" and "figures" not in run["completed"] and "report" not in run["completed"]
    assert "figures" in store.incomplete()
    assert not (out / "report.html").exists()
    res = runner.invoke(app, ["report", str(out)])  # draws what there is, says the run was incomplete
    assert res.exit_code == 1 and "incomplete run" in _flat(res.output)
    assert "INCOMPLETE RUN" in (out / "report.html").read_text()


def test_report_on_a_finished_run_has_no_incomplete_banner(finished_run):
    res = runner.invoke(app, ["report", str(finished_run)])
    assert res.exit_code == 0, res.output
    assert "INCOMPLETE" not in (finished_run / "report.html").read_text()
