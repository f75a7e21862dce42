"""What the command line prints: names never cut (piped, narrow or wide terminal), ``--json`` for
scripts, a warning for a repeated ``--set`` key, no torch beta notices, progress on a terminal."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import gnndyn.cli as cli
from gnndyn.experiments import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_list_piped_is_one_full_line_per_experiment():
    res = runner.invoke(cli.app, ["list"])
    assert res.exit_code == 0
    lines = res.output.splitlines()
    assert len(lines) == len(REGISTRY)
    for line, name in zip(lines, sorted(REGISTRY)):
        assert line.split()[0] == name
        assert REGISTRY[name].description in line and REGISTRY[name].paper in line


def test_list_json():
    res = runner.invoke(cli.app, ["list", "--json"])
    entries = json.loads(res.output)
    assert [e["name"] for e in entries] == sorted(REGISTRY)
    assert entries[0] == {"name": sorted(REGISTRY)[0], "paper": REGISTRY[sorted(REGISTRY)[0]].paper,
                          "description": REGISTRY[sorted(REGISTRY)[0]].description}


@pytest.mark.parametrize("width", [30, 60, 200])
def test_tables_on_a_terminal_never_cut_names(monkeypatch, width):
    """On a terminal of any width every experiment name is printed whole on one line (a table when it
    fits, plain lines when it does not)."""
    buf = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buf, force_terminal=True, width=width, color_system=None))
    cli.list_experiments(as_json=False)
    out = buf.getvalue()
    assert "…" not in out
    for name in REGISTRY:
        assert any(name in line for line in out.splitlines()), name


def test_verdicts_piped_are_one_line_each(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buf, force_terminal=False, width=80))
    checks = [{"paper": "Linear-GNN proof restated (blog, 2025), Step 2 (corrected step of Xu et al. 2021, App. A.1.3)",
               "holds": True, "margin": 1e-9, "where": "step 2 of cora-gcn-H1-gd [seed 0]", "applicable": True},
              {"paper": "Keriven, Thm 2", "holds": False, "margin": -0.5, "where": "layer 3", "applicable": True},
              {"paper": "Keriven, Thm 3", "holds": True, "margin": 0.3, "where": "L = 4", "applicable": False},
              {"paper": "Keriven, Thm 1", "holds": True, "margin": float("nan"), "where": "L = 0", "applicable": False}]
    cli._print_verdicts(checks)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "verdicts" and lines[1].split() == ["paper", "verdict", "margin", "where"]
    assert lines[2].startswith(checks[0]["paper"] + "  holds ")
    assert lines[2].split()[-6:] == ["1e-09", "step", "2", "of", "cora-gcn-H1-gd", "[seed", "0]"][-6:]
    assert lines[2].endswith(" step 2 of cora-gcn-H1-gd [seed 0]") and " 1e-09 " in lines[2]
    assert " VIOLATED " in lines[3] and "-0.5" in lines[3]
    assert "violated (assumptions not met)" not in lines[4] and "holds (assumptions not met)" in lines[4]
    assert "not applicable (assumptions not met)" in lines[5] and " — " in lines[5]  # nothing was compared
    assert len(lines) == 6


def test_repeated_set_key_warns_and_uses_the_last():
    res = runner.invoke(cli.app, ["show", "oversmoothing-at-init", "--set", "model.depth=3", "--set", "graph.n=50",
                                  "--set", "model.depth=4"])
    assert res.exit_code == 0
    assert "warning: --set model.depth given 2 times (3, 4); using the last, 4." in res.output
    assert "graph.n given" not in res.output
    assert '"depth": 4' in res.output


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "GNNDYN_NO_PROGRESS"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_graph_info_output_has_no_torch_beta_warnings_and_no_progress_when_piped():
    proc = subprocess.run([sys.executable, "-m", "gnndyn", "graph-info", "csbm", "--set", "n=300", "--operator", "gcn"],
                          capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "beta" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    assert "spectral facts" not in proc.stderr + proc.stdout  # no progress off a terminal
    lines = dict(line.split(None, 1) for line in proc.stdout.splitlines() if len(line.split(None, 1)) == 2)
    assert lines["nodes"] == "300" and lines["operator"] == "gcn"


def test_graph_info_shows_progress_on_a_terminal():
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gnndyn", "graph-info", "csbm", "--set", "n=300"],
                            stdin=follower, stdout=follower, stderr=follower, env=_env(), cwd=ROOT)
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 300)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=60)
    os.close(leader)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-2000:]
    assert "csbm: loading or generating the graph" in text
    assert "csbm (300 nodes): gossip operator and its spectral facts" in text
    assert "spectral_gap" in text


def test_the_report_says_nothing_was_compared_where_a_verdict_has_no_margin():
    from gnndyn.report.html import _verdict_word

    base = {"paper": "Keriven, Thm 1", "holds": True, "where": "L = 0", "applicable": False}
    assert "outside its assumptions</span> (nothing compared)" in _verdict_word({**base, "margin": float("nan")})
    assert "outside its assumptions</span> (bound holds)" in _verdict_word({**base, "margin": 0.2})
