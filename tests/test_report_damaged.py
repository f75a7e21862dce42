"""``gnndyn report`` on a folder that was damaged after its run: it never shows verdicts the run did not
record, says what is missing (exit 1, an "incomplete" banner), and names a malformed file without writing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gnndyn.cli import app
from gnndyn.errors import CorruptFileError
from gnndyn.store import RunStore

runner = CliRunner()
AT_INIT = ["--set", "graph.n=60", "--set", "model.depth=2", "--set", "model.width=4", "--set", "mlp=false"]


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rep") / "A"
    res = runner.invoke(app, ["run", "oversmoothing-at-init", "--out", str(out), *AT_INIT])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture
def copy(finished, tmp_path) -> Path:
    d = tmp_path / "B"
    shutil.copytree(finished, d)
    return d


@pytest.mark.parametrize("gone", ["checks.json", "metrics.parquet"])
def test_a_deleted_file_makes_the_report_incomplete(copy, gone):
    assert RunStore(copy).incomplete() is None
    (copy / gone).unlink()
    why = RunStore(copy).incomplete()
    assert why.startswith(f"{gone} is missing, though run.json says the run wrote it")
    res = runner.invoke(app, ["report", str(copy)])
    assert res.exit_code == 1, res.output
    assert f"incomplete run: {gone} is missing" in _flat(res.output)
    html = (copy / "report.html").read_text()
    assert "INCOMPLETE RUN" in html
    if gone == "checks.json":  # no verdict row is shown: none was recorded
        assert "<td class='word'>" not in html
    else:
        assert "<td class='word'>" in html


@pytest.mark.parametrize("text,problem", [
    ('{"a": 1}', "it holds a dict, not a list of verdicts"),
    ("[1, 2]", "entry 0 is not a verdict (an object with a 'name' and a true/false 'holds'); got 1"),
    ('[{"name": "x", "holds": "yes"}]', "entry 0 is not a verdict"),
])
def test_a_malformed_checks_file_is_named_and_nothing_is_written(copy, text, problem):
    (copy / "checks.json").write_text(text)
    before = (copy / "report.html").read_bytes()
    with pytest.raises(CorruptFileError, match="not a"):
        RunStore(copy).checks()
    res = runner.invoke(app, ["report", str(copy)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert f"{copy / 'checks.json'}: {problem}" in _flat(res.output)
    assert (copy / "report.html").read_bytes() == before


def test_report_of_a_missing_folder_or_a_file_says_so(tmp_path):
    res = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert res.exit_code == 2 and f"{tmp_path / 'nope'} does not exist" in _flat(res.output)
    (tmp_path / "f.txt").write_text("x")
    res = runner.invoke(app, ["report", str(tmp_path / "f.txt")])
    assert res.exit_code == 2 and "is a file, not a run folder" in _flat(res.output)


def test_report_of_a_failed_run_whose_figures_need_a_missing_table_says_why(tmp_path, monkeypatch):
    from typing import Literal

    from gnndyn.errors import GnndynError
    from gnndyn.experiments import REGISTRY, make_spec, run_experiment
    from gnndyn.experiments.base import Experiment
    from gnndyn.spec import ExperimentSpec

    class _Spec(ExperimentSpec):
        experiment: Literal["tmp-table-fails"] = "tmp-table-fails"

    def run(spec, ctx):
        ctx.recorder.add("s", 0, 0, "loss", 1.0)
        raise GnndynError("stopped before the table")

    def figures(store):
        store.table("runs")  # never written: the run failed first
        return {}

    monkeypatch.setitem(REGISTRY, "tmp-table-fails", Experiment("tmp-table-fails", "d", "p", _Spec, run, figures))
    with pytest.raises(GnndynError):
        run_experiment(make_spec("tmp-table-fails"), tmp_path / "F")
    res = runner.invoke(app, ["report", str(tmp_path / "F")])
    text = _flat(res.output)
    assert res.exit_code == 1, res.output
    assert "figure tmp-table-fails could not be drawn: not drawn: the run failed before it wrote what this figure reads" in text
    assert "incomplete run:" in text and (tmp_path / "F" / "report.html").exists()


@pytest.mark.parametrize("name,text,problem", [
    ("run.json", "[]", "run.json: it holds a JSON list, not an object"),
    ("spec.json", "{}", "spec.json: it lacks 'experiment'"),
])
def test_a_run_or_spec_file_of_the_wrong_shape_is_named(copy, name, text, problem):
    (copy / name).write_text(text)
    before = (copy / "report.html").read_bytes()
    res = runner.invoke(app, ["report", str(copy)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert problem in _flat(res.output)
    assert (copy / "report.html").read_bytes() == before


def test_a_file_in_place_of_the_figures_folder_is_named(copy):
    shutil.rmtree(copy / "figures")
    (copy / "figures").write_text("x")
    res = runner.invoke(app, ["report", str(copy)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert f"{copy / 'figures'} is a file where the run keeps its figures folder; nothing was written" in _flat(res.output)


@pytest.mark.parametrize("name,fix", [
    ("spec.json", "gnndyn rerun reads this very file, so restore it, or start the run again with gnndyn run"),
    ("run.json", "re-create the run from its spec.json with gnndyn rerun"),
])
def test_a_damaged_run_file_gets_the_fix_that_works_for_it(copy, name, fix):
    (copy / name).write_text('{"cut short')
    res = runner.invoke(app, ["report", str(copy)])
    text = _flat(res.output)
    assert res.exit_code == 2 and f"{name}: not valid JSON" in text and fix in text
    if name == "spec.json":
        assert "re-create the run" not in text
