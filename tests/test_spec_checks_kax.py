"""Bad input to the Keriven, Awasthi, Xu and monitor experiments is refused when the spec is built, with a
message naming the field(s), the value given and what is expected — never in the run, never silently."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gnndyn.cli import app
from gnndyn.errors import GnndynError
from gnndyn.experiments import REGISTRY, make_spec

BFS = ["graph.n=200", "graph.p_in=0.2", "graph.p_out=0.04", "model.depth=12", "model.width=8", "shallow_depth=2",
       "steps=40", "early_steps=5"]  # backward-oversmoothing at smoke size, as --set texts

REFUSED = [
    # 1. spurious-stationary-points: radii and depths
    ("spurious-stationary-points", ["radii=[]"], "radii is empty (got [])"),
    ("spurious-stationary-points", ["radii=[-1]"], "radii[0] = -1: a perturbation radius must be > 0"),
    ("spurious-stationary-points", ["radii=[1e-3, 0]"], "radii[1] = 0: a perturbation radius must be > 0"),
    ("spurious-stationary-points", ["depths=[]"], ("depths is empty (got []); the decay rate of δ(L) is fitted over "
                                                  "the depths, which needs at least 2 different depths")),
    ("spurious-stationary-points", ["depths=[5]"], "depths holds a single depth (got [5])"),
    ("spurious-stationary-points", ["depths=[7, 7]"], "depths holds a single depth (got [7, 7])"),
    ("spurious-stationary-points", ["depths=[-1, 5]"], "every depth must be ≥ 0"),
    ("spurious-stationary-points", ["sigmas=[]"], "sigmas is empty (got [])"),
    # 2. awasthi-fig1: r ≥ 2; booleans are not integers
    ("awasthi-fig1", ["r=1"], "r=1: the ReLU analysis"),
    ("awasthi-fig1", ["r=1"], "needs an input dimension r ≥ 2"),
    ("awasthi-fig1", ["r=true"], ("r must be an integer, e.g. r=10; got the boolean true, which would silently be "
                                 "read as 1")),
    ("awasthi-fig2", ["r=false"], "r must be an integer, e.g. r=10; got the boolean false"),
    ("awasthi-fig1", ["train.steps=true"], "train.steps must be an integer, e.g. train.steps=6000; got the boolean"),
    ("awasthi-fig2", ["depths=[1, true]"], "depths[1] must be an integer"),
    ("spurious-stationary-points", ["model.depth=true"], "model.depth must be an integer, e.g. model.depth=40"),
    ("xu-fig5", ["depth=true"], "depth must be an integer, e.g. depth=2; got the boolean true"),
    ("monitor-zoo", ["hidden=true"], "hidden must be an integer, e.g. hidden=32"),
    # 3. Xu: more labelled nodes than the graph has; 'train' without a public split
    ("flow-vs-descent", ["nodes=1000"], ("nodes=1000 labelled nodes is more than the 150 nodes of graph.name='csbm'; "
                                        "give nodes ≤ 150")),
    ("flow-vs-descent", ["graph.n=100", "nodes=101"], "more than the 100 nodes of graph.name='csbm'"),
    ("xu-fig5", ["nodes=5000"], ("nodes=5000 labelled nodes is more than the 2708 nodes of dataset='cora'; "
                                "give nodes ≤ 2708")),
    ("xu-fig5", ["dataset=citeseer", "nodes=3328"], "more than the 3327 nodes of dataset='citeseer'"),
    ("xu-fig5", ["dataset=pubmed", "nodes=19718"], "more than the 19717 nodes of dataset='pubmed'"),
    ("xu-fig2", ["nodes=3000"], "more than the 2708 nodes of 'cora' in datasets"),
    ("xu-fig5", ["dataset=csbm", "nodes=1001"], "more than the 1000 nodes of dataset='csbm'"),
    ("xu-fig5", ["dataset=csbm"], "nodes='train' takes the public training split, and dataset='csbm' has none"),
    ("flow-vs-descent", ["nodes=train"], ("graph.name='csbm' has none (only cora, citeseer, pubmed do); give "
                                         "nodes='all' or a count k ≤ 150")),
    # 4. Xu: width ≥ 1 or null
    ("xu-fig2", ["width=-3"], "width must be a hidden width ≥ 1, or null for the input dimension m_x; got -3"),
    ("xu-fig2", ["width=0"], "width must be a hidden width ≥ 1, or null for the input dimension m_x; got 0"),
    ("xu-fig3", ["width=0"], "width must be a hidden width ≥ 1"),
    ("flow-vs-descent", ["width=0"], "width must be a hidden width ≥ 1, or null for the input dimension m_x; got 0"),
    # 5. backward-oversmoothing: centered labels with cross-entropy
    ("backward-oversmoothing", ["labels=centered"], "labels='centered' contradicts loss='cross-entropy'"),
    ("backward-oversmoothing", ["labels=centered"], "give labels=classes, or loss=mse with labels=centered"),
    # 6. schedules that do not fit the run
    ("xu-fig5", ["probe_every=1000"], ("probe_every=1000 does not fit the run: with steps=300 the last step is 300, "
                                      "so only steps 0 and 300 would be probed")),
    ("xu-fig5", ["steps=20", "probe_every=20"], "give probe_every ≤ 19, or raise steps"),
    ("backward-oversmoothing", [*BFS, "probe_every=100"], ("probe_every=100 does not fit the run: with steps=40 the last "
                                                           "step is 40")),
    ("backward-oversmoothing", [*BFS, "probe_every=100"], "give probe_every ≤ 39, or raise steps"),
    ("monitor-zoo", ["epochs=6", "eval_every=100"], ("eval_every=100 does not fit the run: with epochs=6 the last "
                                                    "epoch is 5, so only epochs 0 and 5 would be probed")),
    ("monitor-zoo", ["epochs=6", "eval_every=5"], "give eval_every ≤ 4, or raise epochs"),
    ("stationary-output-layer", ["fit_from=100"], ("fit_from=100 leaves 0 of depths=[5, 10, 15, 20, 25, 30, 40, 50, "
                                                  "60, 80] to fit")),
    ("stationary-output-layer", ["fit_from=100"], "give fit_from ≤ 60, or add larger depths"),
    ("stationary-output-layer", ["depths=[5, 10, 15]"], "fit_from=20 leaves 0 of depths=[5, 10, 15] to fit"),
    # 7. empty depth lists say they are empty
    ("monitor-zoo", ["depths=[]"], "depths is empty (got []); give at least one depth ≥ 1"),
    ("gnn-vs-mlp", ["depths=[]"], "depths is empty (got [])"),
    ("stationary-output-layer", ["depths=[]"], "depths is empty (got [])"),
    ("xu-fig2", ["depths=[]"], "depths is empty (got []); give at least one depth H ≥ 1"),
    ("xu-fig3", ["sweep_depths=[0]"], "every depth in sweep_depths must be ≥ 1"),
    ("xu-fig4", ["depths=[]"], "depths is empty (got [])"),
    # 8. other fields that passed and then failed in the run
    ("flow-vs-descent", ["step_factors=[]"], "step_factors is empty (got [])"),
    ("flow-vs-descent", ["step_factors=[0.1, -1]"], "step_factors[1] = -1: a step size η = c·2/λ_max needs c > 0"),
    ("flow-vs-descent", ["flow_rtol=0"], "flow_rtol: Input should be greater than 0"),
    ("xu-fig2", ["flow_max_steps=0"], "flow_max_steps: Input should be greater than or equal to 1"),
    ("xu-fig3", ["flow_max_wall_s=-1"], "flow_max_wall_s: Input should be greater than 0"),
]


@pytest.mark.parametrize("name, overrides, expected", REFUSED, ids=[f"{n}:{' '.join(o)}" for n, o, _ in REFUSED])
def test_bad_input_is_refused_when_the_spec_is_built(name, overrides, expected):
    with pytest.raises(GnndynError) as exc:
        make_spec(name, overrides)
    msg = str(exc.value)
    assert msg.startswith("invalid spec:")
    assert expected in msg, msg
    assert "Traceback" not in msg


ACCEPTED = [
    # the boundary values of the same checks build, and keep the values given
    ("spurious-stationary-points", ["radii=[1e-6]", "depths=[0, 2]"], {"radii": [1e-6], "depths": [0, 2]}),
    ("awasthi-fig1", ["r=2"], {"r": 2}),
    ("awasthi-fig2", ["r=1"], {"r": 1}),  # the linear GNN has no orthogonal direction to build
    ("flow-vs-descent", ["nodes=150"], {"nodes": "150"}),
    ("flow-vs-descent", ["graph.lcc=true", "nodes=150"], {"nodes": "150"}),  # the component's size is the run's
    ("xu-fig5", ["nodes=2708"], {"nodes": "2708"}),
    ("xu-fig5", ["dataset=csbm", "nodes=all"], {"dataset": "csbm", "nodes": "all"}),
    ("xu-fig2", ["width=null"], {"width": None}),
    ("xu-fig2", ["width=1"], {"width": 1}),
    ("backward-oversmoothing", ["labels=centered", "loss=mse"], {"labels": "centered", "loss": "mse"}),
    ("backward-oversmoothing", [*BFS, "probe_every=39"], {"probe_every": 39, "steps": 40}),
    ("backward-oversmoothing", ["steps=4000", "early_steps=5", "probe_every=50"], {"probe_every": 50}),
    ("xu-fig5", ["steps=1"], {"steps": 1, "probe_every": 10}),  # two steps: every schedule probes both
    ("xu-fig5", ["probe_every=299"], {"probe_every": 299}),
    ("monitor-zoo", ["epochs=2"], {"epochs": 2, "eval_every": 10}),
    ("monitor-zoo", ["epochs=6", "eval_every=4"], {"eval_every": 4}),
    ("stationary-output-layer", ["fit_from=60"], {"fit_from": 60}),
    ("stationary-output-layer", ["depths=[5, 10]"], {"depths": [5, 10], "fit_from": 20}),  # docs/keriven.md's pairs
]


@pytest.mark.parametrize("name, overrides, values", ACCEPTED, ids=[f"{n}:{' '.join(o)}" for n, o, _ in ACCEPTED])
def test_boundary_values_still_build(name, overrides, values):
    spec = make_spec(name, overrides)
    for k, v in values.items():
        assert getattr(spec, k) == v


@pytest.mark.parametrize("name, overrides, expected", [
    ("spurious-stationary-points", ["radii=[]"], "radii is empty"),
    ("awasthi-fig1", ["r=true"], "r must be an integer"),
    ("xu-fig5", ["nodes=5000"], "2708 nodes of dataset='cora'"),
    ("backward-oversmoothing", ["labels=centered"], "contradicts loss='cross-entropy'"),
])
def test_cli_run_exits_2_and_writes_nothing(tmp_path, name, overrides, expected):
    out = tmp_path / "run"
    args = ["run", name, "--out", str(out)]
    for o in overrides:
        args += ["--set", o]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert not out.exists()
    text = " ".join(res.output.split())  # the console wraps long lines
    assert expected in text
    assert "Traceback" not in res.output


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_experiment_defaults_and_smoke_still_build(name):
    exp = REGISTRY[name]
    default = make_spec(name)
    assert default.experiment == name
    assert default == exp.default_spec()
    smoke = make_spec(name, exp.smoke)
    assert smoke.experiment == name
    dumped = smoke.model_dump(mode="json")
    for key, value in exp.smoke.items():
        cur = dumped
        for part in key.split("."):
            cur = cur[part]
        assert cur == value, (key, cur, value)


def test_int_fields_still_take_integers_and_bools_stay_bools():
    spec = make_spec("backward-oversmoothing", ["mlp=false", "steps=300", "probe_every=2"])
    assert (spec.mlp, spec.steps, spec.probe_every) == (False, 300, 2)
    spec = make_spec("awasthi-fig1", {"r": 3, "train.steps": 10})
    assert (spec.r, spec.train.steps) == (3, 10)


def test_awasthi_lemma1_rule_does_not_read_the_step_list():
    # the paper's rule needs one step per degree; Lemma 1's rule sets every step itself, so lrs is not checked
    with pytest.raises(GnndynError, match=r"train.lrs needs one step size per degree \(1\) or a single one"):
        make_spec("awasthi-fig1", ["degrees=[5]"])
    spec = make_spec("awasthi-fig1", ["degrees=[5]", "train.lr_rule=lemma1"])
    assert spec.train.lr_rule == "lemma1" and len(spec.train.lrs) == 5
