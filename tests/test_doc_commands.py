"""Every command shown in README.md and docs/*.md runs (at smoke size), so the documentation cannot rot.

Each page's commands run in order in one fresh working folder (so ``gnndyn rerun runs/deep`` finds the
run an earlier line wrote), through typer's CliRunner in this process. ``gnndyn run`` lines are first
validated exactly as typed, then run with the experiment's smoke overrides and a folder of their own;
``graph-info`` on a generator is capped at 2000 nodes; ``bench`` runs at its smallest size; ``make``
lines must name a Makefile target (``make demo`` runs the demo experiment at smoke size); benchmark
scripts must compile and declare the options the line gives them (they are not run). Inline ``--set ...`` fragments must be valid overrides of one of
the experiments the page names. A line of a kind this file does not know fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from doc_commands import ROOT, DocCommand, doc_files, experiments_named, extract, smoke_run_args
from gnndyn.cli import app
from gnndyn.errors import GnndynError
from gnndyn.experiments import REGISTRY, get_experiment, make_spec

GRAPH_INFO_MAX_NODES = 2000
BENCH_SMALLEST = ["--nodes", "300", "--depth", "2", "--width", "4", "--rounds", "1"]


def _makefile_targets() -> tuple[set[str], dict[str, str]]:
    text = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", text, re.M))
    variables = dict(re.findall(r"^(\w+)\s*\?=\s*(\S+)", text, re.M))
    return targets, variables


class Session:
    """Runs one page's commands in order in ``cwd``; smoke runs already made are copied, not redone."""

    def __init__(self, cwd, smoke_runs: dict) -> None:
        self.cwd, self.smoke_runs, self.runner, self.count = cwd, smoke_runs, CliRunner(), 0
        self.sweep_outs: set[str] = set()

    def cli(self, argv: list[str]) -> str:
        res = self.runner.invoke(app, argv, catch_exceptions=True)
        if res.exit_code != 0:
            detail = res.output[-1500:] if res.exception is None or isinstance(res.exception, SystemExit) else repr(res.exception)
            raise AssertionError(f"`gnndyn {shlex.join(argv)}` exited {res.exit_code}: {detail}")
        return res.output

    def run(self, name: str, args: list[str]) -> None:
        get_experiment(name)
        _, opts = _validated_as_typed(name, args)
        out = opts.get("--out") or opts.get("-o") or f"runs/doc-{self.count}"
        self.count += 1
        argv, view = smoke_run_args(name, args, get_experiment(name).smoke, out)
        key = json.dumps([name, view])
        if key in self.smoke_runs:  # the same smoke run was made by an earlier line: reuse its folder
            shutil.copytree(self.smoke_runs[key], self.cwd / out, dirs_exist_ok=True)
            return
        self.cli(argv)
        assert (self.cwd / out / "report.html").exists(), f"no report in {out}"
        self.smoke_runs[key] = self.cwd / out

    def sweep(self, args: list[str]) -> None:
        """A sweep line: its sweep file is the project's (``docs/examples/...``), and every point's spec is built
        and validated (``--dry-run``: nothing runs); a ``--resume`` line must name a folder that an earlier line
        of the page sweeps into (the sweeps themselves, resume and a killed run are tested in tests/test_sweep_run.py)."""
        args = list(args)
        if "--file" in args:
            i = args.index("--file") + 1
            if not Path(args[i]).exists() and (ROOT / args[i]).exists():
                args[i] = str(ROOT / args[i])
        if "--resume" in args:
            folder = args[args.index("--resume") + 1]
            assert folder in self.sweep_outs, f"--resume {folder}: no earlier line of the page sweeps into {folder}"
            return
        self.cli(["sweep", *args, "--dry-run"] if "--dry-run" not in args else ["sweep", *args])
        if "--out" in args:
            self.sweep_outs.add(args[args.index("--out") + 1])

    def gnndyn(self, args: list[str]) -> None:
        sub = args[0] if args else ""
        if sub == "run" and len(args) == 1:  # the command named in prose
            self.cli(["run", "--help"])
        elif sub == "sweep":
            self.sweep(args[1:])
        elif sub == "run":
            self.run(args[1], args[2:])
        elif sub == "graph-info":
            capped = []
            for a in args:
                m = re.fullmatch(r"n=(\d+)", a)
                capped.append(f"n={min(int(m.group(1)), GRAPH_INFO_MAX_NODES)}" if m else a)
            out = self.cli(capped)
            if "--json" in args:
                assert json.loads(out)["nodes"] > 0
        elif sub == "bench":
            self.cli(["bench", *BENCH_SMALLEST])
        else:
            self.cli(args)

    def execute(self, cmd: DocCommand) -> None:
        words = shlex.split(cmd.text)
        head, rest = words[0], words[1:]
        if head in ("gnndyn", ".venv/bin/gnndyn"):
            self.gnndyn(rest)
        elif head in ("python", ".venv/bin/python") and rest[:2] == ["-m", "gnndyn"]:
            self.gnndyn(rest[2:])
        elif head in ("python", ".venv/bin/python") and rest and rest[0].endswith(".py"):
            script = ROOT / rest[0]
            assert script.exists(), f"{rest[0]} does not exist"
            source = script.read_text()
            compile(source, str(script), "exec")  # a benchmark is not run here: it parses, and takes the options
            for opt in (a.split("=", 1)[0] for a in rest[1:] if a.startswith("--")):
                assert re.search(rf"add_argument\(\s*['\"]{re.escape(opt)}['\"]", source), f"{rest[0]} has no option {opt}"
        elif head == "make":
            targets, variables = _makefile_targets()
            for t in rest or ["all"]:
                assert t in targets, f"make {t}: no such target (Makefile has {', '.join(sorted(targets))})"
            if "demo" in rest:
                self.run(variables["DEMO"], ["--out", variables["OUT"]])
        elif head in ("source", ".") and rest == [".venv/bin/activate"]:
            targets, _ = _makefile_targets()
            assert "setup" in targets and "venv" in (ROOT / "scripts" / "setup_env.sh").read_text()
        else:
            raise AssertionError(f"tests/test_doc_commands.py does not know how to run {cmd.text!r}; teach it")


def _validated_as_typed(name: str, args: list[str]) -> tuple[list[str], dict[str, str]]:
    """The ``--set`` values and options, after checking that the spec they make as typed is valid."""
    from doc_commands import split_run_args

    sets, opts = split_run_args(args)
    seed = opts.get("--seed")
    seeds = opts.get("--seeds")
    make_spec(name, sets, seed=None if seed is None else int(seed), seeds=None if seeds is None else int(seeds))
    return sets, opts


def _doc_id(p) -> str:
    return p.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("page", doc_files(), ids=_doc_id)
def test_doc_commands_run(page, tmp_path, monkeypatch, request, one_thread, smoke_run_registry):
    """Every command of the page, in order, exits 0 (``gnndyn run``: valid as typed, then at smoke size).
    Without a Planetoid copy the commands that need one are skipped (with that reason), the others run."""
    try:
        monkeypatch.setenv("GNNDYN_DATA_ROOT", str(request.getfixturevalue("data_root")))
        no_data = None
    except pytest.skip.Exception as exc:
        no_data = str(exc)
    monkeypatch.chdir(tmp_path)
    session = Session(tmp_path, smoke_run_registry)
    failures, skipped = [], []
    for cmd in (c for c in extract(page) if c.kind == "command"):
        t0 = time.perf_counter()
        try:
            session.execute(cmd)
        except (AssertionError, GnndynError, ValueError) as exc:
            if no_data and "cannot load" in str(exc):
                skipped.append(cmd.where)
            else:
                failures.append(f"{cmd.where}: {cmd.text}\n    {exc}")
        if os.environ.get("GNNDYN_DOC_TIMES"):
            print(f"{time.perf_counter() - t0:6.1f} s  {cmd.where}  {cmd.text}")
    assert not failures, "documented commands that fail:\n" + "\n".join(failures)
    if skipped:
        pytest.skip(f"{len(skipped)} commands need Planetoid data ({', '.join(skipped)}): {no_data}")


@pytest.mark.parametrize("page", doc_files(), ids=_doc_id)
def test_doc_set_fragments_are_valid(page):
    """Each inline ``--set ...`` of the page is a valid override of one of the experiments it names."""
    names = experiments_named(page, REGISTRY)
    failures = []
    for frag in (c for c in extract(page) if c.kind == "fragment"):
        sets = [w.split("=", 1)[0] + "=" + w.split("=", 1)[1] for w in shlex.split(frag.text) if w not in ("--set", "-s")]
        errors = []
        for name in names:
            try:
                make_spec(name, sets)
                break
            except GnndynError as exc:
                errors.append(f"{name}: {str(exc).splitlines()[0][:200]}")
        else:
            failures.append(f"{frag.where}: {frag.text}\n    " + "\n    ".join(errors or ["the page names no experiment"]))
    assert not failures, "documented --set fragments that no experiment of the page accepts:\n" + "\n".join(failures)


def test_extraction_finds_the_readme_block_and_inline_commands():
    """The extractor sees every line of the README's command block, joins continued lines and keeps inline
    commands; placeholders and diagrams are not commands."""
    readme = [c.text for c in extract(ROOT / "README.md") if c.kind == "command"]
    assert "gnndyn list" in readme and "gnndyn rerun runs/deep" in readme
    assert "gnndyn graph-info csbm --set n=100000 --set avg_degree=10 --operator gcn" in readme
    assert not any(t.startswith("spec ") or "NAME" in t for t in readme)
    awasthi = [c.text for c in extract(ROOT / "docs" / "awasthi.md")]
    long_run = [t for t in awasthi if "runs/awasthi-fig2-long" in t]
    assert long_run and "--set train.record_points=300" in long_run[0]  # the continued line is joined
    assert "--set graph.name=cora --set degrees=null --set train.lr_rule=lemma1" in awasthi
    assert "--set 'train.lrs=[1e-8]'" in awasthi  # a fragment on its own
    xu = [c.text for c in extract(ROOT / "docs" / "xu.md") if c.kind == "command"]
    assert any(t.startswith("gnndyn run xu-fig3 --set sweep_datasets=") and "sweep_depths" in t for t in xu)


def test_smoke_rewrite_keeps_the_commands_meaning():
    """A renamed graph section drops the smoke graph keys; smoke sizes win over the command's; seeds ≤ 2."""
    argv, view = smoke_run_args("awasthi-fig1", ["--seeds", "5", "--set", "graph.name=cora", "--set", "degrees=null",
                                                 "--set", "train.steps=10000"], get_experiment("awasthi-fig1").smoke, "o")
    sets = view["sets"]
    assert "graph.name=cora" in sets and not any(s.startswith("graph.n=") for s in sets)
    assert "train.steps=400" in sets and "train.steps=10000" not in sets
    assert view["seeds"] == "2" and argv[-2:] == ["--out", "o"]


def test_numbers_for_string_fields_and_null_as_documented():
    """docs/xu.md's ``--set nodes=100`` sets the string "100"; docs/awasthi.md's ``degrees=null`` is None."""
    assert make_spec("xu-fig2", ["nodes=100"]).nodes == "100"
    spec = make_spec("awasthi-fig1", ["graph.name=cora", "degrees=null", "train.lrs=[1e-6]"])
    assert spec.degrees is None and spec.graph.name == "cora"
    assert make_spec("backward-oversmoothing", ['optimizers={"adam":0.003,"gd":0.3}']).optimizers == {"adam": 0.003, "gd": 0.3}
