"""``Monitor.save`` never writes into an existing folder unless asked: a non-empty folder (a gnndyn run folder
or not) and a file are refused before anything is computed or written, the folder left byte for byte as it
was; ``overwrite=True`` replaces a gnndyn run folder whole and never deletes another folder. The examples'
``--out`` refuses the same way before training, ``--overwrite`` passes through, and the error is printed
without a traceback."""

from __future__ import annotations

import hashlib
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GCNConv

import gnndyn as gd
from gnndyn.errors import GnndynError
from gnndyn.monitor import save as save_mod
from gnndyn.monitor.save import check_destination
from gnndyn.store import RunStore

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


class GCN(nn.Module):
    def __init__(self, depth=3):
        super().__init__()
        dims = [5] + [8] * (depth - 1) + [2]
        self.convs = nn.ModuleList([GCNConv(dims[k], dims[k + 1]) for k in range(depth)])

    def forward(self, x, edge_index):
        for k, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            x = torch.tanh(x) if k < len(self.convs) - 1 else x
        return x


def monitored(steps: int):
    g = gd.csbm(40, 2, p_in=0.2, p_out=0.05, feature_dim=5, feature_sep=2.0, seed=0)
    torch.manual_seed(0)
    model = GCN()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    mon = gd.Monitor(model, edge_index=g.edge_index)
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(g.x, g.edge_index), g.y)
        loss.backward()
        mon.step(loss)
        opt.step()
    return model, mon


@pytest.fixture
def mon():
    model, m = monitored(4)
    yield m
    m.close()
    del model


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root`` (relative path → sha256 and mtime in ns): any write or removal changes it."""
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def run_folder(tmp_path):
    """A gnndyn run folder written by an earlier save (2 steps), plus a file of the user's inside it."""
    model, first = monitored(2)
    root = tmp_path / "run"
    first.save(str(root), figures=False)
    first.close()
    del model
    (root / "my-notes.txt").write_text("keep me")
    return root


def test_save_refuses_an_existing_run_folder_and_changes_nothing(mon, run_folder):
    before = snapshot(run_folder)
    assert {"spec.json", "run.json", "metrics.parquet", "my-notes.txt"} <= set(before)
    with pytest.raises(GnndynError) as info:
        mon.save(str(run_folder), figures=False)
    msg = str(info.value)
    assert msg == (f"run folder {run_folder} already exists and is not empty (it holds a gnndyn run (spec.json / "
                   f"run.json)); nothing was written. Give Monitor.save another path, or pass overwrite=True to "
                   f"replace that folder whole.")
    assert snapshot(run_folder) == before
    assert json.loads((run_folder / "run.json").read_text())["summary"]["steps recorded"] == 2
    # the monitor keeps its record: saving elsewhere still works
    store = mon.save(str(run_folder.parent / "elsewhere"), figures=False)
    assert store.read_json("run.json")["summary"]["steps recorded"] == 4


def test_refusal_comes_before_anything_is_computed_or_written(mon, run_folder, monkeypatch):
    calls = []

    def spy(name):
        def f(*a, **k):
            calls.append(name)
            raise AssertionError(f"{name} called although the folder is refused")
        return f

    monkeypatch.setattr(type(mon), "diagnose", spy("diagnose"))
    for meth in ("claim", "write_json", "write_metrics", "write_table", "save_figure"):
        monkeypatch.setattr(save_mod.RunStore, meth, spy(meth))
    with pytest.raises(GnndynError, match="already exists and is not empty"):
        mon.save(str(run_folder))
    assert calls == []


def test_save_refuses_a_folder_that_is_not_a_run_even_with_overwrite(mon, tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"\xff\xd8")
    (root / "b.jpg").write_bytes(b"\xff\xd8")
    before = snapshot(root)
    with pytest.raises(GnndynError) as info:
        mon.save(str(root), figures=False)
    assert str(info.value) == (f"run folder {root} already exists and is not empty (it holds 2 entries that are "
                               f"not a gnndyn run); nothing was written. Give Monitor.save another path, or pass "
                               f"overwrite=True to replace that folder whole.")
    with pytest.raises(GnndynError) as info:
        mon.save(str(root), figures=False, overwrite=True)
    assert str(info.value) == (f"overwrite=True refuses to delete {root}: it is not a gnndyn run folder (no "
                               f"spec.json or run.json); nothing was written. Give Monitor.save another path.")
    assert snapshot(root) == before


def test_save_refuses_a_file(mon, tmp_path):
    f = tmp_path / "report"
    f.write_text("a file")
    for overwrite in (False, True):
        with pytest.raises(GnndynError) as info:
            mon.save(str(f), figures=False, overwrite=overwrite)
        assert str(info.value) == (f"Monitor.save's path {f} is an existing file, not a folder; nothing was "
                                   f"written. Give a folder path for the run (e.g. mon.save({str(f) + '-run'!r})).")
    assert f.read_text() == "a file"


def test_save_takes_a_new_path_or_an_empty_folder(mon, tmp_path):
    (tmp_path / "empty").mkdir()
    for p in (tmp_path / "empty", tmp_path / "new" / "nested"):
        store = mon.save(str(p), figures=False)
        assert store.read_json("run.json")["summary"]["steps recorded"] == 4
        assert (p / "metrics.parquet").exists() and (p / "checks.json").exists()


def test_overwrite_replaces_the_run_folder_whole(mon, run_folder):
    store = mon.save(str(run_folder), figures=False, overwrite=True)
    assert not (run_folder / "my-notes.txt").exists()  # nothing of the old folder is left: no mixed folder
    assert store.read_json("run.json")["summary"]["steps recorded"] == 4
    steps = sorted(store.metrics().query("quantity == 'loss'")["step"])
    assert steps == [0, 1, 2, 3]
    assert sorted(p.name for p in run_folder.iterdir()) == sorted(
        ["spec.json", "metrics.parquet", "checks.json", "tables", "run.json", "report.html"])
    assert [p.name for p in run_folder.parent.iterdir() if p.name.startswith(".")] == []  # nothing kept aside


def test_an_overwrite_that_fails_while_writing_puts_the_earlier_run_back(mon, run_folder, monkeypatch):
    before = {str(p.relative_to(run_folder)): p.read_bytes() for p in run_folder.rglob("*") if p.is_file()}

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(RunStore, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        mon.save(str(run_folder), figures=False, overwrite=True)
    after = {str(p.relative_to(run_folder)): p.read_bytes() for p in run_folder.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in run_folder.parent.iterdir() if p.name.startswith(".")] == []


def test_check_destination_words_a_command_line_as_gnndyn_run_does(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    (root / "run.json").write_text("{}")
    with pytest.raises(GnndynError) as info:
        check_destination(root, cli=True)
    assert str(info.value) == (f"run folder {root} already exists and is not empty (it holds a gnndyn run "
                               f"(spec.json / run.json)); nothing was written. Give another --out, or --overwrite "
                               f"to replace that folder whole.")
    assert check_destination(root, overwrite=True, cli=True) == root
    assert (root / "run.json").read_text() == "{}"  # checking removes nothing


def test_gnndyn_run_and_check_destination_refuse_in_the_same_words(tmp_path):
    """One rule (RunStore.check_claim), one wording per reader: the command line's is the same for
    ``gnndyn run`` and for a script's ``check_destination(cli=True)``."""
    from typer.testing import CliRunner

    from gnndyn.cli import app

    root = tmp_path / "taken"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    res = CliRunner().invoke(app, ["run", "oversmoothing-at-init", "--set", "graph.n=30", "--out", str(root)])
    with pytest.raises(GnndynError) as info:
        check_destination(root, cli=True)
    assert res.exit_code == 2
    assert str(info.value) == (f"run folder {root} already exists and is not empty (it holds 1 entry that is not a "
                               f"gnndyn run); nothing was written. Give another --out, or --overwrite to replace "
                               f"that folder whole.")
    assert " ".join(res.output.split()) == " ".join(f"error: {info.value}".split())
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt"]


def test_save_under_a_file_is_refused_in_a_callers_words(mon, tmp_path):
    f = tmp_path / "afile"
    f.write_text("a file")
    with pytest.raises(GnndynError) as info:
        mon.save(str(f / "sub" / "run"), figures=False)
    assert str(info.value) == (f"Monitor.save's path {f / 'sub' / 'run'} cannot be created: {f} is a file, not a "
                               f"folder; nothing was written. Give Monitor.save another path whose parent folders "
                               f"are folders.")
    assert f.read_text() == "a file" and sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


# ------------------------------------------------------------------------------------------------ examples
def run_example(name, argv, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *argv])
    ns = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="example")
    return ns["main"]()


def test_example_refuses_a_taken_out_before_training(run_folder, monkeypatch, capsys):
    before = snapshot(run_folder)
    with pytest.raises(SystemExit) as info:
        run_example("gcn", ["--smoke", "--out", str(run_folder)], monkeypatch)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert "alarms:" not in out  # refused before training
    assert err == (f"error: run folder {run_folder} already exists and is not empty (it holds a gnndyn run "
                   f"(spec.json / run.json)); nothing was written. Give another --out, or --overwrite to replace "
                   f"that folder whole.\n")
    assert snapshot(run_folder) == before


def test_example_overwrite_replaces_the_folder(run_folder, monkeypatch, capsys):
    mon = run_example("gcn", ["--smoke", "--out", str(run_folder), "--overwrite"], monkeypatch)
    out = capsys.readouterr().out
    assert f"report: {run_folder / 'report.html'}" in out
    assert not (run_folder / "my-notes.txt").exists()
    assert gd.RunStore(run_folder).read_json("run.json")["summary"]["steps recorded"] == mon.num_steps == 3


def test_example_prints_a_late_refusal_without_traceback(tmp_path, monkeypatch, capsys):
    """--out taken while training ran (here: save refuses): one error line, exit 2, no traceback."""
    def taken(self, path, **kw):
        raise GnndynError(f"run folder {path} already exists and is not empty")

    monkeypatch.setattr(gd.Monitor, "save", taken)
    with pytest.raises(SystemExit) as info:
        run_example("mlp", ["--smoke", "--out", str(tmp_path / "late")], monkeypatch)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert "alarms:" in out and err == f"error: run folder {tmp_path / 'late'} already exists and is not empty\n"


def test_example_error_reaches_the_terminal_without_traceback(run_folder):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, str(EXAMPLES / "sage.py"), "--smoke", "--out", str(run_folder)],
                       capture_output=True, text=True, env=env, timeout=300, check=False)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert p.stderr.startswith(f"error: run folder {run_folder} already exists and is not empty")
    assert p.stdout == ""
