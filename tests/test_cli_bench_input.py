"""Bad input to ``gnndyn bench`` and ``gnndyn graph-info``: one clear error naming the option as typed, the
value given and the valid range or names; exit code 2; nothing built, timed, printed or written before it.
A peak-memory worker that fails anyway is a clear error with a non-zero exit, after the rest was saved."""

from __future__ import annotations

import json
import subprocess

import pytest
from typer.testing import CliRunner

from gnndyn import bench
from gnndyn.cli import app

runner = CliRunner()
SMALL = ["--nodes", "300", "--depth", "2", "--width", "4", "--rounds", "1"]
TINY = ["--nodes", "8", "--degree", "4", "--depth", "0", "--width", "1", "--rounds", "1", "--contenders", "gnndyn"]
INTERNAL = ("feature_dim", "avg_degree", "lam=", "StackedDeepGNN", "Traceback", "note:")


def _text(res) -> str:
    """stdout and stderr as one line (rich may wrap a long message at spaces)."""
    return " ".join(res.output.split())


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the benchmark builds a graph or spawns a worker."""
    calls: list[str] = []

    def setup(*a, **k):
        calls.append("setup")
        raise AssertionError("the benchmark was built despite bad input")

    monkeypatch.setattr(bench, "_setup", setup)
    monkeypatch.setattr(bench, "memory_run", lambda **k: calls.append("memory") or {"error": "should not run"})
    return calls


def _bad_bench(args: list[str], no_work: list[str]) -> str:
    res = runner.invoke(app, ["bench", *args])
    text = _text(res)
    assert res.exit_code == 2, text
    assert no_work == [], "work was done before the input was checked"
    assert "step benchmark" not in text and "median" not in text, "a header or timing came before the error"
    assert text.count("error:") == 1, text
    for word in INTERNAL:
        assert word not in text, (word, text)
    return text


# --- --json --------------------------------------------------------------------------------------------------


def test_json_in_a_missing_folder_is_refused_before_any_timing(tmp_path, no_work):
    target = tmp_path / "missing" / "out.json"
    text = _bad_bench([*SMALL, "--json", str(target)], no_work)
    assert f"--json {target}: the folder {target.parent} does not exist" in text
    assert f"mkdir -p {target.parent}" in text
    assert not target.parent.exists()


def test_json_naming_a_folder_is_refused(tmp_path, no_work):
    text = _bad_bench([*SMALL, "--json", str(tmp_path)], no_work)
    assert f"--json '{tmp_path}' is a folder, not a file" in text and f"--json {tmp_path / 'bench.json'}" in text
    assert list(tmp_path.iterdir()) == []


def test_json_under_a_file_is_refused(tmp_path, no_work):
    f = tmp_path / "plain.txt"
    f.write_text("x")
    text = _bad_bench([*SMALL, "--json", str(f / "out.json")], no_work)
    assert f"{f} is a file, not a folder" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt"] and f.read_text() == "x"


# --- numeric options -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "expected"), [
    (["--nodes", "-5"], ("--nodes must be an integer ≥ 8 (the smallest graph on which the benchmark's two-class CSBM "
                         "exists, at average degree 4); got -5.")),
    (["--nodes", "7"], "--nodes must be an integer ≥ 8"),
    (["--degree", "-1"], "--degree must be ≥ 4 (the benchmark's graph is a two-class CSBM with graph signal λ = 2"),
    (["--degree", "nan"], "--degree must be a finite number ≥ 4; got nan."),
    (["--degree", "1000"], ("--degree 1000.0 is too large for --nodes 300: on 300 nodes the benchmark's CSBM admits "
                            "an average degree from 4 to 267.3")),
    (["--depth", "-1"], "--depth must be an integer ≥ 0 (the number of hidden layers); got -1."),
    (["--width", "0"], "--width must be an integer ≥ 1; got 0."),
    (["--width", "-3"], "--width must be an integer ≥ 1; got -3."),
    (["--rounds", "-2"], "--rounds must be an integer ≥ 1 (≥ 5 advised for the spreads); got -2."),
    (["--memory-nodes", "-5"], "--memory-nodes must be 0 (skip the peak-memory runs) or an integer ≥ 8; got -5."),
    (["--memory-nodes", "3"], "--memory-nodes must be 0 (skip the peak-memory runs) or an integer ≥ 8; got 3."),
    (["--memory-nodes", "20"], "--memory-degree 20.0 is too large for --memory-nodes 20"),
    (["--memory-degree", "2"], "--memory-degree must be ≥ 4"),
    (["--memory-depth", "-1"], "--memory-depth must be an integer ≥ 0 (the number of hidden layers); got -1."),
    (["--replicas", "-1"], "--replicas must be 0 (skip the stacked-seeds timing) or an integer ≥ 1; got -1."),
])
def test_bad_sizes_name_the_option_value_and_range(args, expected, no_work, tmp_path):
    out = tmp_path / "b.json"
    text = _bad_bench([*SMALL, *args, "--json", str(out)], no_work)
    assert f"error: {expected}" in text
    assert not out.exists()


def test_rounds_zero_is_one_error_without_the_few_rounds_note(no_work):
    text = _bad_bench([*SMALL, "--rounds", "0"], no_work)
    assert text == "error: --rounds must be an integer ≥ 1 (≥ 5 advised for the spreads); got 0."


def test_the_most_valid_degree_is_accepted_by_the_check():
    top = bench.max_degree(300)
    assert top + 2 * top**0.5 == pytest.approx(300)
    assert bench.check_options(nodes=300, degree=top) == ("float32", bench.CONTENDERS)
    assert bench.check_options(nodes=8, degree=4.0, depth=0, width=1, rounds=1) == ("float32", bench.CONTENDERS)


# --- names -----------------------------------------------------------------------------------------------------


def test_unknown_contender_lists_the_valid_ones(no_work):
    text = _bad_bench([*SMALL, "--contenders", "gnndyn,foo"], no_work)
    assert ("error: --contenders: unknown contender 'foo'; valid contenders: gnndyn, gnndyn+probes, fair, plain, pyg, "
            "floor (comma-separated), or all.") in text


def test_no_contender_is_an_error(no_work):
    text = _bad_bench([*SMALL, "--contenders", ","], no_work)
    assert "--contenders names no contender; give a comma-separated list of gnndyn, gnndyn+probes" in text


def test_bad_dtype_and_device_list_the_valid_values(no_work):
    text = _bad_bench([*SMALL, "--dtype", "float16"], no_work)
    assert "--dtype: unknown dtype 'float16'; valid dtypes: float32, float64." in text
    text = _bad_bench([*SMALL, "--device", "tpu"], no_work)
    assert "--device: unknown device 'tpu'; valid devices: cpu, cuda, cuda:N." in text
    text = _bad_bench([*SMALL, "--device", "meta"], no_work)
    assert "--device 'meta': the benchmark runs on cpu, cuda or cuda:N." in text


def test_names_are_taken_in_any_case_and_once():
    dtype, names = bench.check_options(nodes=300, dtype="FLOAT64", contenders=("GNNDYN", "floor", "gnndyn"))
    assert dtype == "float64" and names == ("gnndyn", "floor")


# --- a worker that fails anyway ----------------------------------------------------------------------------------


def test_a_failed_memory_worker_is_an_error_with_nonzero_exit_and_the_rest_kept(tmp_path, monkeypatch):
    spawned: list[list[str]] = []

    def fake_run(cmd, **kw):
        spawned.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="Traceback (most recent call last):\n  File x\n"
                                           "RuntimeError: out of something\n")

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    out = tmp_path / "b.json"
    res = runner.invoke(app, ["bench", *TINY, "--memory-nodes", "50", "--memory-degree", "4", "--memory-depth", "0",
                              "--no-memory-probes", "--json", str(out)])
    text = _text(res)
    assert res.exit_code == 1, text
    assert len(spawned) == 1 and "--memory" in spawned[0]
    assert "memory run failed: exit code 1: RuntimeError: out of something" in text
    assert (f"error: the peak-memory run with probes=False failed (exit code 1: RuntimeError: out of something). "
            f"The results above were printed and written to {out}. To fix: rerun with other --memory-nodes, "
            "--memory-degree or --memory-depth, or with --memory-nodes 0 to skip the peak-memory runs.") in text
    assert "Traceback" not in text
    saved = json.loads(out.read_text())
    assert saved["nodes"] == 8 and list(saved["losses"]) == ["gnndyn"]
    assert saved["memory"][0]["error"] == "exit code 1: RuntimeError: out of something"
    assert saved["memory"][0]["nodes"] == 50


def test_worker_reasons_are_one_line():
    assert bench._worker_reason(2, "error: n must be > 0; got -5.\n") == "exit code 2: n must be > 0; got -5."
    assert bench._worker_reason(-9, "").startswith("killed by signal 9 (SIGKILL: most often the out-of-memory killer")
    assert bench._worker_reason(1, "") == "exit code 1: (no message)"


# --- graph-info --------------------------------------------------------------------------------------------------


def _bad_info(args: list[str]) -> str:
    res = runner.invoke(app, ["graph-info", *args])
    text = _text(res)
    assert res.exit_code == 2, text
    assert text.count("error:") == 1 and "Traceback" not in text and "lambda" not in text, text
    return text


def test_graph_info_operator_parameter_is_not_offered_as_settable():
    text = _bad_info(["cora", "--set", "d_max=3"])
    assert text == ("error: --set d_max: 'cora' has no parameter 'd_max'; graph-info's --set takes the dataset's "
                    "parameters, and it takes none (its data folder is given with --data-root). d_max is a parameter "
                    "of the gossip operator, which graph-info builds with its defaults; it cannot be set here.")
    assert "accepts: data_root" not in text


def test_graph_info_unknown_key_lists_the_dataset_parameters_only():
    text = _bad_info(["csbm", "--set", "foo=1"])
    assert ("error: --set foo: 'csbm' has no parameter 'foo'; graph-info's --set takes the dataset's parameters, and it "
            "takes: n, classes, p_in, p_out, avg_degree, lam, feature_dim, mu, feature_sep, noise, seed.") == text
    assert "d_max" not in text
    assert "Did you mean 'avg_degree'?" in _bad_info(["csbm", "--set", "avg_degre=5"])
    assert "--data-root DIR, not --set" in _bad_info(["cora", "--set", "data_root=/x"])


def test_graph_info_bad_values_are_clear_errors():
    text = _bad_info(["csbm", "--operator", "gossip", "--set", "n=abc"])
    assert "dataset 'csbm': parameter n must be int; got 'abc'" in text
    assert _bad_info(["csbm", "--set", "n=-3"]) == "error: --set for dataset 'csbm': n must be > 0; got -3."
    assert _bad_info(["csbm", "--method", "foo"]) == "error: --method must be one of auto, dense, lanczos; got 'foo'."
    assert "unknown operator 'foo'; valid operators:" in _bad_info(["csbm", "--operator", "foo"])
    assert _bad_info(["csbm", "--set", "n"]) == "error: --set expects KEY=VALUE, KEY a parameter of the dataset; got 'n'."


def test_graph_info_gossip_on_an_edgeless_graph_does_not_ask_for_d_max():
    text = _bad_info(["erdos-renyi", "--set", "n=10", "--set", "p=0"])
    assert text.startswith("error: the erdos-renyi graph has no edges, so the gossip operator")
    assert "another --operator such as gcn" in text and "give d_max" not in text


def test_unknown_graph_family_is_spelled_families():
    from gnndyn.errors import GnndynError
    from gnndyn.experiments.patel.common import synthetic_graph

    with pytest.raises(GnndynError, match="valid graph families: ") as info:
        synthetic_graph("foo", 10, 0.1, 2, 0)
    assert "familys" not in str(info.value)


# --- options that have no effect ---------------------------------------------------------------------------------


def test_memory_options_without_memory_nodes_warn_once_before_the_header(monkeypatch):
    monkeypatch.setattr(bench, "memory_run", lambda **k: pytest.fail("a memory run started with --memory-nodes 0"))
    res = runner.invoke(app, ["bench", *TINY, "--memory-depth", "3", "--memory-degree", "30", "--no-memory-probes"])
    text = _text(res)
    assert res.exit_code == 0, text
    warning = ("warning: --memory-degree 30, --memory-depth 3 and --no-memory-probes have no effect without "
               "--memory-nodes N: the peak-memory runs are skipped while --memory-nodes is 0 (its default).")
    assert text.startswith(warning), text
    assert text.count("warning:") == 1 and text.index(warning) < text.index("step benchmark:")
    lines = res.output.splitlines()
    assert lines[0] == warning  # one line, not wrapped
    assert "peak memory" not in text

    res = runner.invoke(app, ["bench", *TINY, "--memory-nodes", "0", "--memory-depth", "40"])  # the default value, typed
    text = _text(res)
    assert res.exit_code == 0, text
    assert text.startswith("warning: --memory-depth 40 has no effect without --memory-nodes N: the peak-memory runs "
                           "are skipped while --memory-nodes is 0 (its default).")
    res = runner.invoke(app, ["bench", *TINY, "--memory-probes"])
    assert res.exit_code == 0 and _text(res).startswith("warning: --memory-probes has no effect without --memory-nodes N")


def test_no_warning_without_memory_options_or_with_memory_nodes(monkeypatch):
    res = runner.invoke(app, ["bench", *TINY])
    assert res.exit_code == 0 and "warning" not in _text(res), _text(res)
    runs: list[dict] = []

    def memory_run(**k):
        runs.append(k)
        return {"nodes": k["nodes"], "edges": 100, "generate_s": 0.1, "step_s": 0.2, "peak_rss_mib": 300.0,
                "rss_after_setup_mib": 250.0, "rss_now_after_setup_mib": 200.0}

    monkeypatch.setattr(bench, "memory_run", memory_run)
    res = runner.invoke(app, ["bench", *TINY, "--memory-nodes", "50", "--memory-degree", "4", "--memory-depth", "0",
                              "--no-memory-probes"])
    text = _text(res)
    assert res.exit_code == 0, text
    assert "warning" not in text and "peak RSS 300 MiB" in text
    assert [(r["nodes"], r["degree"], r["depth"], r["probes"]) for r in runs] == [(50, 4.0, 0, False)]


def test_bad_memory_values_are_errors_even_without_memory_nodes(no_work):
    text = _bad_bench([*SMALL, "--memory-depth", "-1"], no_work)
    assert text == "error: --memory-depth must be an integer ≥ 0 (the number of hidden layers); got -1."


def test_ineffective_options_by_value_for_the_python_api(monkeypatch):
    assert bench.ineffective_options() is None
    assert bench.ineffective_options(memory_depth=3) == (
        "--memory-depth 3 has no effect without --memory-nodes N: the peak-memory runs are skipped while "
        "--memory-nodes is 0 (its default).")
    assert bench.ineffective_options(memory_nodes=50, memory_depth=3, memory_probes=False) is None
    assert bench.ineffective_options(memory_degree=20.0, given=["memory_degree", "memory_probes"]).startswith(
        "--memory-degree 20 and --memory-probes have no effect")

    def stop(**k):
        raise RuntimeError("stop after the header")

    class Console:
        def print(self, m):
            said.append(m)

    said: list[str] = []
    monkeypatch.setattr(bench, "step_benchmark", stop)
    with pytest.raises(RuntimeError, match="stop after the header"):
        bench.run_step_benchmark(nodes=8, degree=4.0, depth=0, width=1, rounds=5, memory_probes=False,
                                 warn=said.append, console=Console())
    assert said[0] == ("--no-memory-probes has no effect without --memory-nodes N: the peak-memory runs are skipped "
                       "while --memory-nodes is 0 (its default).")
    assert said[1].startswith("step benchmark: CSBM n=8") and len(said) == 2
