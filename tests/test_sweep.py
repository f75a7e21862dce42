"""Sweeps without running them: grid parsing and expansion, the sweep file (YAML and TOML, zipped axes),
validation before anything is written, point identity, finished records, and the CLI's errors."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from gnndyn.cli import app
from gnndyn.errors import GnndynError
from gnndyn.experiments import make_spec
from gnndyn.sweep import build_config, expand, parse_axis, plan, point_id, read_record, spec_hash
from gnndyn.sweep.gather import axis_array, column_name
from gnndyn.sweep.grid import SweepConfig, enumerate_axes, split_values

EXP = "oversmoothing-at-init"
runner = CliRunner()

YAML = """\
experiment: oversmoothing-at-init
base:
  graph: {n: 200, p_in: 0.2, p_out: 0.04}
  model.width: 8
grid:
  model.depth: [2, 4, 8]
  operator.name: [gossip, gcn]
zip:
  - model.activation: [tanh, relu]
    model.init_scale: [1.0, 0.5]
seeds: [0, 3]
figures: false
"""
TOML = """\
experiment = "oversmoothing-at-init"
seeds = [0, 3]
figures = false

[base]
"graph.n" = 200
"graph.p_in" = 0.2
"graph.p_out" = 0.04
"model.width" = 8

[grid]
"model.depth" = [2, 4, 8]
"operator.name" = ["gossip", "gcn"]

[[zip]]
"model.activation" = ["tanh", "relu"]
"model.init_scale" = [1.0, 0.5]
"""


def test_axis_values_split_outside_brackets_and_parse_as_json():
    assert parse_axis("model.depth=5,10,20") == ("model.depth", [5, 10, 20])
    assert parse_axis("sweep_depths=[1],[2,3],[4]") == ("sweep_depths", [[1], [2, 3], [4]])
    assert parse_axis('operator.name=gossip,"gcn",gin') == ("operator.name", ["gossip", "gcn", "gin"])
    assert parse_axis("train.lr=1e-3,0.1,true,null") == ("train.lr", [0.001, 0.1, True, None])
    assert split_values('{"a": 1, "b": 2},x') == ['{"a": 1, "b": 2}', "x"]
    for bad in ("model.depth", "model.depth=", "model.depth=1,,2", "=1,2"):
        with pytest.raises(GnndynError, match="--grid"):
            parse_axis(bad)


def test_yaml_and_toml_files_give_one_config_and_the_product_in_order(tmp_path):
    (tmp_path / "s.yaml").write_text(YAML)
    (tmp_path / "s.toml").write_text(TOML)
    a, b = build_config(None, file=tmp_path / "s.yaml"), build_config(None, file=tmp_path / "s.toml")
    assert a == b
    assert a.base == {"graph.n": 200, "graph.p_in": 0.2, "graph.p_out": 0.04, "model.width": 8}
    assert a.axis_keys() == ["model.depth", "operator.name", "model.activation", "model.init_scale", "seed"]
    axes = enumerate_axes(a)
    assert len(axes) == 3 * 2 * 2 * 2
    # the last axis varies fastest; zipped keys vary together
    assert axes[0] == {"model.depth": 2, "operator.name": "gossip", "model.activation": "tanh", "model.init_scale": 1.0, "seed": 0}
    assert axes[1]["seed"] == 3 and axes[2]["model.activation"] == "relu" and axes[2]["model.init_scale"] == 0.5
    assert axes[4]["operator.name"] == "gcn" and axes[8]["model.depth"] == 4
    assert {(x["model.activation"], x["model.init_scale"]) for x in axes} == {("tanh", 1.0), ("relu", 0.5)}
    points = expand(a)
    for p, ax in zip(points, axes):
        s = p.spec
        assert (s.model.depth, s.operator.name, s.model.activation, s.model.init_scale, s.seed) == tuple(ax.values())
        assert s.graph.params["n"] == 200 and s.model.width == 8
    # the command line adds axes to the file's
    c = build_config(None, file=tmp_path / "s.yaml", grid=["graph.feature_dim=4,16"], sets=["loss=mse"])
    assert len(enumerate_axes(c)) == 48 and c.base["loss"] == "mse"


def test_seeds_option_and_command_line_only_config():
    c = build_config(EXP, grid=["model.depth=5,10,20,40", "operator.name=gossip,gcn"], seeds=5)
    assert c.seeds == [0, 1, 2, 3, 4] and len(enumerate_axes(c)) == 40 and c.figures is True
    assert SweepConfig.from_dict(c.as_dict()) == c


@pytest.mark.parametrize("text, match", [
    ("grid: {model.depth: [2, 4]}\nzip: [{model.width: [1, 2], model.init_scale: [1.0]}]\n", "zip group 0 needs lists of one length"),
    ("grid: {model.depth: 3}\n", "must be a non-empty list"),
    ("grid: {model.depth: []}\n", "must be a non-empty list"),
    ("grids: {model.depth: [2]}\n", "unknown key.*grids.*valid keys: experiment, base, grid, zip, seeds, figures"),
    ("seeds: -1\n", "seeds must be at least 1"),
    ("seeds: [0, x]\n", "non-negative integers"),
    ("figures: maybe\n", "figures must be true or false"),
    ("grid: {model.depth: [2]}\nzip: [{model.depth: [4]}]\n", "appears in both grid and zip group 0"),
    ("grid: {seed: [0, 1]}\nseeds: 2\n", "'seed' is both"),
    ("base: {model.depth: 3}\ngrid: {model.depth: [2]}\n", "both base overrides and sweep axes"),
    ("- 1\n- 2\n", "must hold a mapping"),
    ("grid: !!python/object/apply:os.system ['echo hi']\n", "not valid YAML"),
])
def test_bad_sweep_files_are_clear(tmp_path, text, match):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(GnndynError, match=match):
        build_config(EXP, file=f)


def test_file_suffix_experiment_and_seed_conflicts(tmp_path):
    (tmp_path / "s.json").write_text("{}")
    with pytest.raises(GnndynError, match=r"\.yaml, \.yml or \.toml"):
        build_config(EXP, file=tmp_path / "s.json")
    with pytest.raises(GnndynError, match="no sweep file"):
        build_config(EXP, file=tmp_path / "missing.yaml")
    (tmp_path / "s.toml").write_text('experiment = "xu-fig3"\nseeds = 2\n')
    with pytest.raises(GnndynError, match="names experiment 'oversmoothing-at-init' but"):
        build_config(EXP, file=tmp_path / "s.toml")
    with pytest.raises(GnndynError, match="seeds are given both"):
        build_config(None, file=tmp_path / "s.toml", seeds=3)
    with pytest.raises(GnndynError, match="not valid TOML"):
        (tmp_path / "t.toml").write_text("grid = [")
        build_config(EXP, file=tmp_path / "t.toml")
    with pytest.raises(GnndynError, match="which experiment"):
        build_config(None, grid=["model.depth=1,2"])


def test_every_point_is_validated_with_the_override_errors():
    with pytest.raises(GnndynError, match=r"(?s)sweep point 0 \(model\.deep=2\).*unknown key 'model\.deep'.*valid keys: .*model\.depth"):
        expand(build_config(EXP, grid=["model.deep=2,4"]))
    # the third value is bad: the message names that point
    with pytest.raises(GnndynError, match=r"(?s)sweep point 2 \(model.depth=-1\).*greater than or equal to 0"):
        expand(build_config(EXP, grid=["model.depth=2,4,-1"]))
    with pytest.raises(GnndynError, match=r"(?s)base overrides are invalid.*unknown key 'graph.nodes'.*csbm' accepts"):
        expand(build_config(EXP, grid=["model.depth=2"], sets=["graph.nodes=3"]))
    with pytest.raises(GnndynError, match="unknown operator 'gosip'"):
        expand(build_config(EXP, grid=["operator.name=gossip,gosip"]))
    with pytest.raises(GnndynError, match="points 0 and 1 have the same spec"):
        expand(build_config(EXP, grid=["model.depth=8,8.0"]))
    with pytest.raises(GnndynError, match="unknown experiment 'oversmoothing'"):
        expand(build_config("oversmoothing", grid=["model.depth=8"]))


def test_point_identity_is_a_function_of_the_spec():
    a = make_spec(EXP, {"model.depth": 8, "seed": 1})
    b = make_spec(EXP, ["model.depth=8.0", "seed=1"])  # validated to the same spec
    c = make_spec(EXP, {"model.depth": 9, "seed": 1})
    keys = ["model.depth", "seed"]
    assert point_id(a, keys) == point_id(b, keys) == f"depth=8_seed=1-{spec_hash(a)}"
    assert point_id(c, keys) != point_id(a, keys) and len(spec_hash(a)) == 10
    # the hash is the SHA-256 of the sorted-key JSON of the spec as spec.json stores it
    import hashlib

    text = json.dumps(a.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    assert spec_hash(a) == hashlib.sha256(text.encode()).hexdigest()[:10]
    # ambiguous last parts keep the whole key; odd characters are made folder-safe
    d = make_spec(EXP, {"graph.seed": 3, "seed": 2, "operator.name": "gcn"})
    assert point_id(d, ["graph.seed", "seed", "operator.name"]).startswith("graph.seed=3_seed=2_name=gcn-")
    assert point_id(make_spec(EXP), []) == spec_hash(make_spec(EXP))
    # planning twice gives the same ids
    cfg = build_config(EXP, grid=["model.depth=2,4"], seeds=2)
    assert [p["id"] for p in plan(cfg)] == [p["id"] for p in plan(cfg)]


def test_zipped_keys_with_the_same_values_name_a_point_once():
    from gnndyn.sweep.grid import SweepConfig

    cfg = SweepConfig(EXP, grid={"model.width": [4]},
                      zip=[{"model.depth": [2, 3], "graph.seed": [2, 3]}, {"seed": [5, 6], "graph.n": [40, 50]}])
    assert cfg.name_keys() == ["model.width", "model.depth", "seed", "graph.n"]  # graph.seed repeats model.depth
    assert cfg.axis_keys() == ["model.width", "model.depth", "graph.seed", "seed", "graph.n"]  # all still columns
    pts = plan(cfg)
    # the two zipped groups are product axes of each other
    assert [p["id"].rsplit("-", 1)[0] for p in pts] == [
        "width=4_depth=2_seed=5_n=40", "width=4_depth=2_seed=6_n=50",
        "width=4_depth=3_seed=5_n=40", "width=4_depth=3_seed=6_n=50"]
    assert [p["values"]["graph.seed"] for p in pts] == [2, 2, 3, 3]


def test_a_point_is_complete_only_by_its_finished_record(tmp_path):
    spec = make_spec(EXP, {"model.depth": 3})
    d, h = tmp_path / "p", spec_hash(spec)
    assert read_record(d, h)["status"] == "incomplete"  # no folder
    d.mkdir()
    assert read_record(d, h)["status"] == "incomplete"  # a folder is not a record
    (d / "spec.json").write_text(json.dumps(spec.model_dump(mode="json")))
    for text in ("", "{not json", json.dumps({"status": "running"}), json.dumps({"status": "weird"}), "[1]"):
        (d / "run.json").write_text(text)
        assert read_record(d, h)["status"] == "incomplete", text
    for status in ("ok", "diverged", "failed"):
        (d / "run.json").write_text(json.dumps({"status": status, "error": "e", "wall_time_s": 1.5, "summary": {"x": 2}}))
        rec = read_record(d, h)
        assert rec == {"status": status, "error": "e", "wall_time_s": 1.5, "summary": {"x": 2}}
    assert read_record(d, spec_hash(make_spec(EXP, {"model.depth": 4})))["status"] == "incomplete"  # another spec's folder


def test_axis_columns_keep_their_type():
    assert axis_array([1, 2]).type.equals(axis_array([3]).type) and str(axis_array([1, 2]).type) == "int64"
    assert axis_array([1, 0.5]).to_pylist() == [1.0, 0.5]
    assert axis_array(["a", "b"]).to_pylist() == ["a", "b"]
    assert axis_array([[1], [2, 3]]).to_pylist() == ["[1]", "[2, 3]"]
    assert axis_array([1, "x"]).to_pylist() == ["1", '"x"']
    assert column_name("seed") == "point.seed" and column_name("model.depth") == "model.depth"


def _invoke(args: list[str]):
    r = runner.invoke(app, args)
    r.text = " ".join(r.output.split())  # rich wraps long lines
    return r


def test_cli_validates_before_writing(tmp_path):
    out = tmp_path / "sw"
    r = _invoke(["sweep", EXP, "--grid", "model.deep=1,2", "--out", str(out)])
    assert r.exit_code == 2 and "valid keys" in r.text and "model.depth" in r.text
    assert not out.exists()
    r = _invoke(["sweep", EXP, "--grid", "model.depth=1,2"])
    assert r.exit_code == 2 and "--out DIR is required" in r.text
    r = _invoke(["sweep", EXP, "--grid", "model.depth=1,2", "--out", str(out), "--backend", "slurm"])
    assert r.exit_code == 2 and "unknown backend 'slurm'; valid backends: local, ray" in r.text and not out.exists()
    r = _invoke(["sweep", "--resume", str(tmp_path)])
    assert r.exit_code == 2 and "not a sweep folder" in r.text
    r = _invoke(["sweep", EXP, "--resume", str(tmp_path)])
    assert r.exit_code == 2 and "drop EXPERIMENT" in r.text
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("x")
    r = _invoke(["sweep", EXP, "--grid", "model.depth=1,2", "--out", str(tmp_path / "busy")])
    assert r.exit_code == 2 and "not a sweep folder" in r.text


def test_missing_ray_says_how_to_install_it(monkeypatch, tmp_path):
    from gnndyn.sweep.backends import run_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    with pytest.raises(GnndynError, match=r"pip install gnndyn\[ray\]"):
        run_ray([{"id": "x"}], 1, lambda r: None)
