"""Bad input stops a run before it writes anything, and ``--overwrite`` never costs the earlier run.

Every name a spec field holds is checked when the spec is built (``ExperimentSpec.name_fields``), every
swept graph parameter passes its generator's checks, the data sets a run reads are found before the folder
is claimed, and an overwrite keeps the earlier folder until the new run has finished (put back when it fails).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest
from typer.testing import CliRunner

from gnndyn.cli import app
from gnndyn.errors import GnndynError
from gnndyn.experiments import REGISTRY, make_spec, run_experiment
from gnndyn.experiments.base import Experiment, ExperimentResult
from gnndyn.spec import ExperimentSpec, preflight

runner = CliRunner()
AT_INIT = ["--set", "graph.n=60", "--set", "model.depth=2", "--set", "model.width=4", "--set", "mlp=false"]


def _flat(text: str) -> str:
    return " ".join(text.split())


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------- names at spec build
BAD_NAMES = [
    ("xu-fig1", "optimizer=sgdd", "optimizer: unknown optimizer 'sgdd'; valid optimizers: adam, gd"),
    ("xu-fig1", "init=foo", "init: unknown init 'foo'; valid inits: normal, orthogonal, uniform"),
    ("xu-fig1", 'operators=["gcn","gim"]', "operators[1]: unknown operator 'gim'"),
    ("xu-fig1", "dataset=corra", "dataset: unknown dataset 'corra'; valid datasets: citeseer, cora, csbm, pubmed"),
    ("xu-fig1", "nodes=abc", "nodes must be 'train' (the public split), 'all' or a positive count k; got 'abc'"),
    ("xu-fig1", "nodes=0", "positive count k; got '0'"),
    ("xu-fig1", "operators=[]", "operators is empty; give at least one operator"),
    ("xu-fig2", 'sweep_datasets=["x"]', "sweep_datasets[0]: unknown dataset 'x'"),
    ("xu-fig4", 'activations=["tanh"]', "activations[0]: unknown activation 'tanh'; valid activations: linear, relu"),
    ("patel-fig3", "family=erdos", "family: unknown graph family 'erdos'; valid graph families: barabasi-albert"),
    ("patel-fig2", 'families=["x"]', "families[0]: unknown graph family 'x'"),
    ("patel-fig4", "rule=flw", "rule: unknown rule 'flw'; valid rules: flow, normalized-flow"),
    ("patel-fig8", "label=rain", "label: unknown measure 'rain'; valid measures: fine-particulate-matter"),
    ("patel-fig8", "year=1999", "year must be one of 2003..2008, a list of them, or 'all'; got 1999"),
    ("patel-fig8", "a_operator=gcn", "a_operator: unknown operator 'gcn'; valid operators: adj, lap, nor-lap, "
                                     "nor-sl-adj, sl-adj"),
    ("patel-descent", "operator=lapp", "operator: unknown operator 'lapp'"),
    ("patel-descent", "graph=knn-ring", "graph: unknown graph 'knn-ring'; valid graphs: csbm, erdos-renyi"),
    ("patel-fig3", "params=[0.1,1.7]", "params[1] = 1.7: p is a probability and must lie in [0, 1]; got 1.7"),
    ("patel-fig5", "params=[8,250]", "params[1] = 250: knn_ring needs an even k with 0 ≤ k ≤ n − 1 = 199"),
    ("patel-fig5", "params=[8.5]", "params[0] = 8.5: the knn-ring parameter is an integer (k)"),
    ("patel-fig7", "params=[0]", "params[0] = 0: barabasi_albert needs 1 ≤ m < n=200"),
    ("patel-fig3", "params=[]", "params is empty"),
    ("patel-fig2", "family_params.knn-ring=7", "family_params.knn-ring: knn_ring needs an even k"),
    ("patel-fig4", 'operators=["adj","sl-adj"]', "the normalized flow needs a horizon T per operator; horizons has "
                                                 "['adj', 'lap', 'nor-lap'], not sl-adj"),
    ("awasthi-fig1", "degrees=[3,200]", "degrees[1] = 200: degree must satisfy 0 ≤ degree < n=20; got 200"),
    ("spurious-stationary-points", "ns=[0]", "ns[0] = 0: a graph size must be at least 2"),
    ("spurious-stationary-points", "ns=[]", "ns is empty"),
    ("oversmoothing-at-init", "graph.name=random-regular", "graph.name='random-regular' gives no node features or "
                                                           "labels (with these parameters), and this experiment "
                                                           "needs features and labels"),
    ("gnn-vs-mlp", "graph.name=erdos-renyi", "graph.name='erdos-renyi' gives no node features or labels"),
    ("flow-vs-descent", "graph.name=knn-ring", "graph.name='knn-ring' gives no node features or labels"),
    ("monitor-zoo", "csbm.name=sbm", "csbm.name='sbm' gives no node features (with these parameters), and this "
                                     "experiment needs features and labels; set csbm.feature_dim to a positive number"),
    ("backward-oversmoothing", "model.depth=0", "model.depth=0 must exceed shallow_depth=5: Fig. 1 compares a deep "
                                                "GNN (and MLP) with a shallow one"),
]


@pytest.mark.parametrize("name,override,message", BAD_NAMES, ids=[f"{n}:{o}" for n, o, _ in BAD_NAMES])
def test_a_bad_value_fails_at_spec_build_naming_field_value_and_valid_names(name, override, message, tmp_path):
    extra = ["graph.n=20", "train.lrs=[1e-5]"] if name == "awasthi-fig1" else []
    with pytest.raises(GnndynError) as exc:
        make_spec(name, [override, *extra])
    assert message in str(exc.value)
    out = tmp_path / "run"
    sets = [a for o in [override, *extra] for a in ("--set", o)]
    res = runner.invoke(app, ["run", name, "--out", str(out), *sets])
    assert res.exit_code == 2, res.output
    assert message in _flat(res.output) and "Traceback" not in res.output
    assert not out.exists()  # nothing was written


def test_graphs_that_give_features_and_labels_pass():
    from gnndyn.data.registry import provides

    assert provides("sbm", {"feature_dim": 3}) == {"features", "labels"} and provides("sbm") == {"labels"}
    assert provides("erdos-renyi", {"feature_dim": 2}) == {"features"} and provides("random-regular") == set()
    assert provides("cora") == {"features", "labels"} and provides("csbm", {"feature_dim": 0}) == {"labels"}
    spec = make_spec("oversmoothing-at-init", ["graph.name=sbm", "graph.block_sizes=[20,30]", "graph.p_in=0.3",
                                               "graph.p_out=0.05", "graph.feature_dim=4"])
    assert spec.graph.name == "sbm" and spec.graph.params["feature_dim"] == 4
    assert make_spec("awasthi-fig1").graph.name == "random-regular"  # Awasthi's graphs need neither


def test_good_names_pass_in_any_case_and_with_underscores():
    spec = make_spec("xu-fig1", ["optimizer=GD", 'operators=["GCN","gin"]', "nodes=12", "init=Uniform"])
    assert spec.optimizer == "GD" and spec.nodes == "12"
    assert make_spec("patel-fig4", ["rule=normalized_flow"]).rule == "normalized_flow"
    spec = make_spec("patel-fig4", ["horizons.sl-adj=1.0", 'operators=["adj","sl-adj"]'])
    assert spec.horizons == {"adj": 2.5, "lap": 0.25, "nor-lap": 5.0, "sl-adj": 1.0}
    spec = make_spec("patel-fig4", ['horizons={"adj": 1.0, "sl-adj": 2.0}', 'operators=["adj","sl-adj"]'])
    assert spec.horizons == {"adj": 1.0, "sl-adj": 2.0}  # a mapping given whole replaces the field
    assert make_spec("backward-oversmoothing", ['optimizers={"adam": 0.01}']).optimizers == {"adam": 0.01}
    with pytest.raises(GnndynError, match="unknown key 'model.dpeth'"):
        make_spec("spurious-stationary-points", ["model.dpeth=3"])  # a section is not a mapping


def test_a_value_shown_in_brackets_is_printed_not_taken_for_markup(tmp_path):
    """Rich would read ``[nan]`` as a style tag and print nothing; the message shows the value."""
    res = runner.invoke(app, ["run", "awasthi-fig1", "--out", str(tmp_path / "r"), "--set", "train.lrs=[NaN]"])
    assert res.exit_code == 2 and "got [nan]" in _flat(res.output)
    res = runner.invoke(app, ["show", "awasthi-fig1", "--set", "train.lrs=[]"])
    assert res.exit_code == 2 and "train.lrs: is empty; give at least one step size" in _flat(res.output)


def test_a_spec_file_with_a_typo_key_suggests_the_key(tmp_path):
    spec = make_spec("oversmoothing-at-init").model_dump(mode="json")
    spec["model"]["dpeth"] = spec["model"].pop("depth")
    spec["sed"] = spec.pop("seed")
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    res = runner.invoke(app, ["rerun", str(tmp_path / "spec.json"), "--out", str(tmp_path / "r")])
    text = _flat(res.output)
    assert res.exit_code == 2
    assert "model.dpeth: unknown key; did you mean 'depth'? Valid keys here: activation, depth, init, init_scale, width" in text
    assert "sed: unknown key; did you mean 'seed'?" in text
    assert not (tmp_path / "r").exists()


def test_rerun_takes_a_device_and_validates_it(tmp_path):
    spec = make_spec("oversmoothing-at-init", ["graph.n=60", "model.depth=2", "model.width=4", "mlp=false"])
    (tmp_path / "spec.json").write_text(json.dumps(spec.model_dump(mode="json")))
    res = runner.invoke(app, ["rerun", str(tmp_path / "spec.json"), "--device", "tpu", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "device must be 'cpu' or 'cuda[:i]'; got 'tpu'" in _flat(res.output)
    res = runner.invoke(app, ["rerun", str(tmp_path / "spec.json"), "--device", "cpu", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "r" / "spec.json").read_text())["device"] == "cpu"


# ---------------------------------------------------------------------------------------- data before write
@pytest.fixture
def no_download(monkeypatch):
    import gnndyn.data.planetoid as pl

    def refuse(*a, **k):
        raise OSError("no network in this test")

    monkeypatch.setattr(pl, "_download", refuse)


def test_a_missing_data_root_stops_the_run_before_the_folder_is_written(tmp_path, no_download):
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", "oversmoothing-at-init", "--set", "graph.name=cora", "--data-root",
                              str(tmp_path / "nodata"), "--out", str(out)])
    text = _flat(res.output)
    assert res.exit_code == 2 and "cannot load Cora" in text and "Point --data-root" in text
    assert "running" not in text and not out.exists()
    spec = make_spec("xu-fig1", data_root=str(tmp_path / "nodata"))
    assert spec.datasets_used() == ["cora"]
    with pytest.raises(GnndynError, match="cannot load Cora"):
        preflight(spec)
    fig8 = make_spec("patel-fig8", data_root=str(tmp_path / "nodata"))
    with pytest.raises(GnndynError, match="cannot load us-climate"):
        preflight(fig8)


def test_datasets_used_lists_graph_sections_and_dataset_fields():
    assert make_spec("xu-fig2").datasets_used() == ["cora", "citeseer"]
    assert make_spec("oversmoothing-at-init").datasets_used() == ["csbm"]
    assert make_spec("patel-fig8").datasets_used() == ["us-climate"]
    assert make_spec("patel-fig3").datasets_used() == []


# ---------------------------------------------------------------------------------------- overwrite is safe
@pytest.fixture
def good_run(tmp_path) -> Path:
    out = tmp_path / "A"
    res = runner.invoke(app, ["run", "oversmoothing-at-init", "--out", str(out), *AT_INIT])
    assert res.exit_code == 0, res.output
    return out


def test_overwrite_with_bad_input_keeps_the_earlier_run(good_run, tmp_path, no_download):
    before = _snapshot(good_run)
    for args in (["--set", "model.activation=tanhh"],
                 ["--set", "graph.name=cora", "--data-root", str(tmp_path / "nodata")]):
        res = runner.invoke(app, ["run", "oversmoothing-at-init", "--out", str(good_run), "--overwrite", *args])
        assert res.exit_code == 2, res.output
        assert _snapshot(good_run) == before
    assert [p.name for p in good_run.parent.iterdir()] == ["A"]  # nothing left beside it


class _FailSpec(ExperimentSpec):
    experiment: Literal["tmp-fails"] = "tmp-fails"
    how: Literal["ok", "fail", "crash"] = "fail"


def _run_fails(spec, ctx):
    ctx.recorder.add("s", 0, 0, "loss", 1.0)
    if spec.how == "fail":
        raise GnndynError("the run met a problem in its data")
    if spec.how == "crash":
        raise RuntimeError("boom")
    return ExperimentResult(summary={"done": 1})


@pytest.fixture
def failing_experiment(monkeypatch):
    exp = Experiment("tmp-fails", "fails on demand", "none", _FailSpec, _run_fails, lambda store: {})
    monkeypatch.setitem(REGISTRY, "tmp-fails", exp)
    return exp


@pytest.mark.parametrize("how", ["fail", "crash"])
def test_an_overwrite_whose_run_fails_puts_the_earlier_run_back(good_run, failing_experiment, how):
    before = _snapshot(good_run)
    spec = make_spec("tmp-fails", [f"how={how}"])
    with pytest.raises(GnndynError if how == "fail" else RuntimeError) as exc:
        run_experiment(spec, good_run, overwrite=True)
    if how == "fail":
        assert f"The earlier run in {good_run} was kept as it was." in str(exc.value)
    assert _snapshot(good_run) == before
    assert [p.name for p in good_run.parent.iterdir()] == ["A"]


def test_an_overwrite_that_finishes_replaces_the_folder_whole(good_run, failing_experiment):
    store, _ = run_experiment(make_spec("tmp-fails", ["how=ok"]), good_run, overwrite=True)
    run = store.read_json("run.json")
    assert run["experiment"] == "tmp-fails" and run["status"] == "ok" and "replaces" not in run
    assert not list(good_run.rglob("*.png"))  # nothing of the earlier run (its figures) is mixed in
    assert json.loads((good_run / "spec.json").read_text())["experiment"] == "tmp-fails"
    assert [p.name for p in good_run.parent.iterdir()] == ["A"]


def test_refusals_come_before_the_running_line(good_run):
    res = runner.invoke(app, ["run", "oversmoothing-at-init", "--out", str(good_run), *AT_INIT])
    assert res.exit_code == 2 and "already exists" in _flat(res.output) and "running" not in res.output


# ------------------------------------------------------------------------------------------- --set semantics
def test_a_section_given_whole_keeps_the_experiments_other_values():
    spec = make_spec("spurious-stationary-points", ['model={"depth": 3}'])
    assert spec.model.model_dump() == {"depth": 3, "width": 32, "activation": "tanh", "init": "orthogonal",
                                       "init_scale": 1.0}  # the experiment's width and init, not the class's
    assert spec.model == make_spec("spurious-stationary-points", ["model.depth=3"]).model
    g = make_spec("oversmoothing-at-init", ['graph={"name": "sbm", "block_sizes": [20, 30], "p_in": 0.3, '
                                            '"p_out": 0.05, "feature_dim": 4}']).graph
    assert g.model_dump() == {"name": "sbm", "lcc": False, "block_sizes": [20, 30], "p_in": 0.3, "p_out": 0.05,
                              "feature_dim": 4}  # a new name starts afresh


def test_an_option_given_twice_is_an_error_not_a_silent_choice(tmp_path):
    res = runner.invoke(app, ["run", "xu-fig1", "--set", "seeds=2", "--seeds", "3", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "seeds is given twice, as --seeds 3 and as --set seeds=2; give it once." in _flat(res.output)
    assert not (tmp_path / "r").exists()
    with pytest.raises(GnndynError, match="data_root is given twice, as --data-root /a and as --set data_root=/b"):
        make_spec("xu-fig1", ["data_root=/b"], data_root="/a")


# ---------------------------------------------------------------------------------- errors during the run
def test_an_unexpected_error_is_one_message_and_the_traceback_is_kept(failing_experiment, tmp_path):
    out = tmp_path / "crash"
    res = runner.invoke(app, ["run", "tmp-fails", "--set", "how=crash", "--out", str(out)])
    text = _flat(res.output)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "the run stopped on an unexpected error: RuntimeError: boom." in text
    assert f"What was recorded is in {out}; its run.json says 'failed' and holds the traceback." in text
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "failed" and run["error"] == "RuntimeError: boom"
    assert run["traceback"].startswith("Traceback (most recent call last)") and "_run_fails" in run["traceback"]


def test_an_unexpected_error_under_overwrite_says_the_earlier_run_was_kept(failing_experiment, good_run):
    before = _snapshot(good_run)
    res = runner.invoke(app, ["run", "tmp-fails", "--set", "how=crash", "--out", str(good_run), "--overwrite"])
    assert res.exit_code == 1
    assert f"The earlier run in {good_run} was kept as it was." in _flat(res.output)
    assert _snapshot(good_run) == before


def test_an_out_that_cannot_be_created_is_refused_before_the_run(tmp_path):
    (tmp_path / "afile").write_text("x")
    res = runner.invoke(app, ["run", "oversmoothing-at-init", "--out", str(tmp_path / "afile" / "sub"), *AT_INIT])
    text = _flat(res.output)
    assert res.exit_code == 2 and "running" not in text and "Traceback" not in res.output
    assert f"--out {tmp_path / 'afile' / 'sub'} cannot be created: {tmp_path / 'afile'} is a file, not a folder" in text
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        import os

        if os.access(ro, os.W_OK):  # running as root: permissions do not bind
            pytest.skip("permissions are not enforced for this user")
        res = runner.invoke(app, ["run", "oversmoothing-at-init", "--out", str(ro / "x"), *AT_INIT])
        assert res.exit_code == 2 and f"the folder {ro} is not writable" in _flat(res.output)
    finally:
        ro.chmod(0o700)


def test_data_root_without_a_stored_data_set_warns(tmp_path):
    res = runner.invoke(app, ["run", "oversmoothing-at-init", "--data-root", str(tmp_path / "nowhere"), "--out",
                              str(tmp_path / "r"), *AT_INIT])
    assert res.exit_code == 0, res.output
    assert ("warning: --data-root has no effect here: this run reads no stored data set (it uses: csbm; stored "
            "ones are cora, citeseer, pubmed, us-climate).") in _flat(res.output)


def test_a_planetoid_copy_without_features_is_refused_where_features_are_trained_on(tmp_path, planetoid_root):
    import shutil

    raw = tmp_path / "root" / "Cora" / "raw"
    shutil.copytree(planetoid_root / "Cora" / "raw", raw)
    (raw / "ind.cora.allx").unlink()
    spec = make_spec("xu-fig5", data_root=str(tmp_path / "root"))
    with pytest.raises(GnndynError, match=r"Cora in .* has no node features \(ind.cora.allx is missing"):
        preflight(spec)
    with pytest.raises(GnndynError, match="has no node features"):  # Keriven's GNN reads X⁽⁰⁾ too
        preflight(make_spec("oversmoothing-at-init", ["graph.name=cora"], data_root=str(tmp_path / "root")))
    shutil.copy(planetoid_root / "Cora" / "raw" / "ind.cora.allx", raw)
    preflight(spec)  # the complete copy passes



def test_unknown_key_after_a_name_change_lists_the_new_sections_keys():
    with pytest.raises(GnndynError) as exc:
        make_spec("backward-oversmoothing", ["operator.name=gcn", "operator.d_max=3"])
    msg = str(exc.value)
    assert "unknown key 'operator.d_max' (operator 'gcn' takes no parameters)" in msg
    assert "operator.d_max" not in msg.split("valid keys:", 1)[1]


def test_a_killed_overwrite_says_where_the_earlier_run_is_kept(good_run):
    """A run killed outright while replacing a folder leaves the earlier one aside; the new folder says where."""
    from gnndyn.store import RunStore

    before = _snapshot(good_run)
    store = RunStore(good_run)
    store.claim(overwrite=True)  # what run_experiment does first; a kill -9 comes before settle()
    store.write_json("run.json", {"status": "running", "replaces": store.previous.name})
    why = RunStore(good_run).incomplete()
    assert why.startswith("run.json says status 'running': the run was stopped")
    assert f"It was replacing an earlier run, which is kept whole in {store.previous}" in why
    assert _snapshot(store.previous) == before
