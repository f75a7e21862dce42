"""Bad input to the Patel et al. experiments is refused when the spec is built, naming the field(s) and the value.

Each case here used to pass the spec and then fail inside the run (a traceback, or a run-time error after the run
folder was written) or be silently clamped or ignored. The defaults and the smoke overrides of every ``patel-*``
experiment still build, and names in any spelling reach the run in the paper's.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gnndyn.cli import app
from gnndyn.errors import GnndynError
from gnndyn.experiments import REGISTRY, get_experiment, make_spec
from gnndyn.experiments.patel import common as C
from gnndyn.experiments.patel import fig6, fig8, sweep
from gnndyn.experiments.patel.sections_common import synthetic_problem
from gnndyn.store.run import RunStore

runner = CliRunner()
PATEL = sorted(n for n in REGISTRY if n.startswith("patel-"))
SMALL_DESCENT = ["widths=[8,8]", "d_x=8"]  # p = 8·8 + 8·8 + 8·1 = 136 parameters


def _flat(text: str) -> str:
    return " ".join(text.split())


BAD = [
    # 1. empty lists
    ("patel-fig2", ["nbar=[]"], ["nbar is empty; give at least one labelled-set size n̄"]),
    ("patel-fig2", ["families=[]"], ["families is empty; give at least one graph family"]),
    ("patel-fig2", ["operators=[]"], ["operators is empty; give at least one operator"]),
    ("patel-fig3", ["params=[]"], ["params is empty"]),
    ("patel-fig8", ["a_values=[]"], ["a_values is empty; give at least one value of Remark 3.3's a (Fig. 8c"]),
    ("patel-fig8", ["operators=[]"], ["operators is empty"]),
    ("patel-energy", ["tolerances=[]"], ["tolerances: List should have at least 2 items", "(given: [])"]),
    ("patel-descent", ["factors=[]"], ["factors: List should have at least 2 items"]),
    ("patel-open", ["nf_steps=[]"], ["nf_steps: List should have at least 2 items"]),
    # 2. a flow that stops before the level it times
    ("patel-fig3", ["stop_level=0.5", "level=1e-3"],
     ["stop_level = 0.5 must be at most level = 0.001", "t_level to it could not be measured",
      "--set stop_level=1e-06"]),
    ("patel-fig4", ["stop_level=0.01"], ["stop_level = 0.01 must be at most level = 0.001"]),
    ("patel-fig8", ["stop_level=0.01"], ["stop_level = 0.01 must be below flat_level = 0.001"]),
    # 3. d_y > d_x
    ("patel-energy", ["d_y=60"], ["d_y = 60 must be at most d_x = 20", "lower d_y or raise d_x"]),
    ("patel-descent", ["d_y=21"], ["d_y = 21 must be at most d_x = 20"]),
    ("patel-open", ["d_y=30", "d_x=25"], ["d_y = 30 must be at most d_x = 25"]),
    ("patel-open", ["bottleneck_d_y=60"], ["bottleneck_d_y = 60 must be at most d_x = 20",
                                           "lower bottleneck_d_y or raise d_x"]),
    # 4. widths
    ("patel-energy", ["widths=[]"], ["widths is empty; the linear GNN needs H = len(widths) ≥ 1 hidden widths"]),
    ("patel-descent", ["widths=[0,8]"], ["widths[0] = 0: every hidden width d_ℓ must be ≥ 1 (got widths = [0, 8])"]),
    ("patel-open", ["bottleneck_widths=[]"], ["bottleneck_widths is empty"]),
    ("patel-open", ["bottleneck_widths=[8,0]"], ["bottleneck_widths[1] = 0: every hidden width d_ℓ must be ≥ 1"]),
    # 5. no labelled node
    ("patel-energy", ["labelled=0.01", "n=40"],
     ["labelled × n = 0.01 × 40 = 0.4 gives no labelled node", "raise labelled or n"]),
    ("patel-fig3", ["labelled_fraction=0.001"],
     ["labelled_fraction × n = 0.001 × 200 = 0.2 gives no labelled node", "raise labelled_fraction or n"]),
    ("patel-fig8", ["labelled_fraction=0.0001"], ["labelled_fraction × n = 0.0001 × 3107 = 0.311 gives no labelled"]),
    ("patel-fig8", ["nodes=2", "labelled_fraction=0.1"], ["labelled_fraction × nodes = 0.1 × 2 = 0.2 gives no"]),
    # 6. n̄ outside [1, n]
    ("patel-fig2", ["nbar=[2,400]"], ["nbar[1] = 400: every labelled-set size n̄ must lie between 1 and n = 200"]),
    ("patel-fig2", ["nbar=[0,10]"], ["nbar[0] = 0: every labelled-set size n̄ must lie between 1 and n = 200"]),
    ("patel-fig2", ["nbar=[10,10]"], ["nbar = [10, 10] repeats 10"]),
    # 7. more counties than there are
    ("patel-fig8", ["nodes=100000"], ["nodes = 100000 exceeds the 3107 counties of us-climate; give at most 3107"]),
    # 8. silently clamped or cut
    ("patel-descent", ["M_columns=1000", *SMALL_DESCENT],
     ["M_columns = 1000 exceeds the p = 136 parameters of the network", "give at most M_columns=136"]),
    ("patel-descent", ["nf_step=1.0", "nf_T=0.5"],
     ["nf_step = 1 must divide the recording interval nf_T/(nf_points − 1) = 0.5/100 = 0.005",
      "give nf_step=0.005"]),
    ("patel-descent", ["nf_step=0.003"], ["would be shortened to 0.0025); give nf_step=0.0025"]),
    # 9. keys that are not names of the paper
    ("patel-fig4", ['horizons={"foo": 1.0}'],
     ["horizons['foo']: unknown operator 'foo'; valid operators: adj, lap, nor-lap, nor-sl-adj, sl-adj"]),
    ("patel-fig4", ['horizons={"ADJ": 1.0, "adj": 2.0, "lap": 1.0, "nor-lap": 1.0}'],
     ["horizons names the operator 'adj' twice, as 'ADJ' and 'adj'"]),
    ("patel-fig4", ['horizons={"adj": -1.0, "lap": 1.0, "nor-lap": 1.0}'],
     ["horizons['adj'] = -1: a horizon T must be > 0"]),
    ("patel-fig2", ['family_params={"foo": 1.0}'],
     ["family_params['foo']: unknown graph family 'foo'; valid graph families: barabasi-albert, erdos-renyi"]),
    # 10. failing in the run or silently ignored
    ("patel-descent", ["factors=[-1,0.1]"],
     ["factors[0] = -1: every step-size factor (η = factor · 2/λ_max) must be > 0"]),
    ("patel-descent", ["factors=[0.1,0.1]"], ["factors = [0.1, 0.1] repeats 0.1", "give distinct values"]),
    ("patel-energy", ["tolerances=[1e-6,1e-6]"], ["tolerances = [1e-06, 1e-06] repeats 1e-06"]),
    ("patel-energy", ["tolerances=[0,1e-6]"], ["tolerances[0] = 0: every solver tolerance must be > 0"]),
    ("patel-open", ["nf_steps=[0.1,0.1]"], ["nf_steps = [0.1, 0.1] repeats 0.1"]),
    ("patel-open", ["nf_steps=[5,0.1]"], ["nf_steps[0] = 5 exceeds nf_T/2 = 2"]),
    ("patel-fig3", ["params=[0.1,0.1]"], ["params = [0.1, 0.1] repeats 0.1"]),
    ("patel-fig3", ['operators=["adj","ADJ"]'], ["operators = ['adj', 'adj'] repeats 'adj'"]),
    ("patel-fig8", ["a_values=[1.5,1.5]"], ["a_values = [1.5, 1.5] repeats 1.5"]),
    ("patel-fig8", ["a_values=[0,1]"], ["a_values[0] = 0: every value of Remark 3.3's a"]),
    ("patel-fig8", ["year=[2008,2008]"], ["year = [2008, 2008] repeats 2008"]),
    ("patel-fig3", ["step_size=0.1"], ["step_size = 0.1 is not used by rule = 'flow'", "(its default is null)"]),
    ("patel-fig3", ['horizons={"adj": 1.0}'], ["horizons = {'adj': 1.0} is not used by rule = 'flow'"]),
    ("patel-fig4", ["horizon_units=3"], ["horizon_units = 3 is not used by rule = 'normalized-flow'"]),
    ("patel-fig4", ["step_size=0.01", "rtol=1e-4"],
     ["rtol = 0.0001 is not used with a fixed RK4 step (step_size = 0.01)"]),
    ("patel-fig3", ["sbm_p=0.3"], ["sbm_p = 0.3 is not used by family = 'erdos-renyi'"]),
    ("patel-fig2", ['families=["knn-ring"]', "sbm_p=0.3"], ["sbm_p = 0.3 is not used without the sbm family"]),
    ("patel-fig2", ["labelled_fraction=0.5"], ["labelled_fraction = 0.5 is not used by patel-fig2"]),
    ("patel-fig2", ["width=8"], ["width = 8 is not used by patel-fig2: it trains nothing"]),
    ("patel-fig2", ["epsilon=0.3"], ["epsilon = 0.3 is not used by patel-fig2", "its default is 0.1"]),
    ("patel-fig8", ["epsilon=0.2"], ["epsilon = 0.2 is not used by patel-fig8"]),
    ("patel-fig8", ["d_x=24"], ["d_x = 24 is not used by patel-fig8: the climate data fix the features (24 for "
                                "year='all', 4 for one year; choose them with year)"]),
    ("patel-energy", ["graph=csbm", "p=0.5"], ["p = 0.5 is not used by graph = 'csbm'"]),
]


@pytest.mark.parametrize("name,overrides,messages", BAD, ids=[f"{n}:{' '.join(o)}" for n, o, _ in BAD])
def test_bad_input_fails_at_spec_build_naming_the_field_and_value(name, overrides, messages):
    with pytest.raises(GnndynError) as exc:
        make_spec(name, overrides)
    text = str(exc.value)
    assert text.startswith("invalid spec:")
    for m in messages:
        assert m in text, text


CLI = [("patel-fig2", ["nbar=[]"], "nbar is empty"),
       ("patel-fig3", ["stop_level=0.5", "level=1e-3"], "stop_level = 0.5 must be at most level = 0.001"),
       ("patel-energy", ["labelled=0.01", "n=40"], "labelled × n = 0.01 × 40 = 0.4 gives no labelled node"),
       ("patel-fig8", ["nodes=100000"], "nodes = 100000 exceeds the 3107 counties"),
       ("patel-descent", ["M_columns=1000", *SMALL_DESCENT], "M_columns = 1000 exceeds the p = 136 parameters")]


@pytest.mark.parametrize("name,overrides,message", CLI, ids=[n for n, _, _ in CLI])
def test_gnndyn_run_refuses_before_writing_anything(name, overrides, message, tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", name, "--out", str(out), *[a for o in overrides for a in ("--set", o)]])
    assert res.exit_code == 2, res.output
    assert message in _flat(res.output) and "Traceback" not in res.output
    assert not out.exists()
    res = runner.invoke(app, ["show", name, *[a for o in overrides for a in ("--set", o)]])
    assert res.exit_code == 2 and message in _flat(res.output)


def test_every_patel_default_and_smoke_spec_still_builds():
    assert PATEL == ["patel-descent", "patel-energy", "patel-fig2", "patel-fig3", "patel-fig4", "patel-fig5",
                     "patel-fig6", "patel-fig7", "patel-fig8", "patel-open"]
    for name in PATEL:
        exp = get_experiment(name)
        spec = make_spec(name)
        assert spec.experiment == name
        smoke = make_spec(name, dict(exp.smoke))
        for k, v in exp.smoke.items():
            assert getattr(smoke, k) == v, (name, k)
    assert make_spec("patel-fig3").stop_level == 1e-9 and make_spec("patel-fig3").level == 1e-6
    assert make_spec("patel-fig3", dict(get_experiment("patel-fig3").smoke)).stop_level == 1e-6  # = level: allowed
    assert make_spec("patel-fig2").nbar == list(range(5, 101, 5))
    assert make_spec("patel-fig8").nodes is None and fig8.COUNTIES == 3107
    assert make_spec("patel-fig8", ["nodes=3107"]).nodes == 3107
    assert make_spec("patel-descent", ["M_columns=136", *SMALL_DESCENT]).M_columns == 136
    assert make_spec("patel-descent", ["nf_step=0.0025"]).nf_step == 0.0025  # 0.01 = 4 steps
    assert make_spec("patel-open", ["nf_steps=[2.0,0.1]"]).nf_steps == [2.0, 0.1]  # nf_T/2 = 2 is allowed
    assert make_spec("patel-fig4", ["step_size=0.01"]).step_size == 0.01
    assert make_spec("patel-fig6", ["sbm_p=0.3"]).sbm_p == 0.3
    assert make_spec("patel-energy", ["labelled=0.025", "n=40"]).labelled == 0.025  # round(1.0) = 1 node


def test_names_are_kept_as_given_and_read_in_the_papers_spelling():
    spec = make_spec("patel-fig3", ["rule=Normalized_Flow", 'horizons={"ADJ": 1, "lap": 1, "nor_lap": 2}'])
    assert spec.rule == "Normalized_Flow" and spec.horizons == {"ADJ": 1.0, "lap": 1.0, "nor_lap": 2.0}
    c = spec.canonical()
    assert c.rule == "normalized-flow" and c.horizons == {"adj": 1.0, "lap": 1.0, "nor-lap": 2.0}
    assert c.operators == ["adj", "lap", "nor-lap"]
    spec = make_spec("patel-fig2", ['families=["Erdos_Renyi"]', 'operators=["ADJ","Nor_Lap"]'])
    assert spec.canonical().families == ["erdos-renyi"] and spec.canonical().operators == ["adj", "nor-lap"]
    spec = make_spec("patel-energy", ["graph=Erdos_Renyi", "operator=NOR_LAP", "n=20", "d_x=4", "widths=[4]"])
    assert spec.graph == "Erdos_Renyi" and spec.canonical().graph == "erdos-renyi"
    syn = synthetic_problem(spec, 0)  # used to fail: p was not passed to a graph not spelt "erdos-renyi"
    assert syn.graph_summary["operator"] == "nor-lap" and syn.nodes.size == 15


def test_an_operator_in_capitals_runs_and_names_its_series_in_the_papers_spelling(tmp_path):
    out = tmp_path / "run"
    sets = ["n=30", "d_x=4", "width=4", "params=[0.3]", "seeds=1", "points=20", "stop_level=1e-6", "max_steps=4000",
            'operators=["ADJ","Nor_Lap"]']
    res = runner.invoke(app, ["run", "patel-fig3", "--out", str(out), *[a for o in sets for a in ("--set", o)]])
    assert res.exit_code == 0, res.output  # was: KeyError 'ADJ' after the folder was written
    runs = RunStore(out).table("runs")
    assert sorted(runs["series"]) == ["erdos-renyi-0.3-adj", "erdos-renyi-0.3-nor-lap"]
    assert sorted(runs["operator"]) == ["adj", "nor-lap"]


# ------------------------------------------------------------------------------------------ run-time robustness
def _runs(t_adj, t_lap):
    rows = [{"seed": 0, "param": p, "operator": op, "t_level": t, "sigma_small": 1.0 + p}
            for op, ts in (("adj", t_adj), ("lap", t_lap)) for p, t in zip((0.1, 0.2), ts)]
    return pd.DataFrame(rows)


def test_claims_on_a_level_never_reached_fail_without_a_traceback():
    runs = _runs([2.0, math.inf], [1.0, math.inf])
    v = sweep.faster(runs, "lap", "adj", name="x", where="w", statement="s")
    assert v.holds is False and math.isnan(v.margin)
    assert v.where == "t_level not finite (level not reached) at seed 0, parameter 0.2"
    assert v.details["adj"] == {"0/0.1": 2.0, "0/0.2": None}
    v = sweep.monotone(runs, "adj", "t_level", decreasing=True, name="x", where="w", statement="s")
    assert v.holds is False and math.isnan(v.margin) and v.where == "seed 0: t_level not finite at parameter 0.2"
    v = sweep.faster(_runs([2.0, 1.0], [1.0, 0.5]), "lap", "adj", name="x", where="w", statement="s")
    assert v.holds is True and v.margin == pytest.approx(math.log(2.0))
    assert fig6._log_ratio(2.0, 1.0) == pytest.approx(math.log(2.0))
    assert fig6._log_ratio(1.0, math.inf) == -math.inf and fig6._log_ratio(math.inf, 1.0) == math.inf
    assert math.isnan(fig6._log_ratio(math.inf, math.inf))


def test_the_fixed_step_normalized_flow_honours_the_step_budget():
    g = C.synthetic_graph("erdos-renyi", 30, 0.2, 5, 0)
    nodes = C.labelled_set(30, 20, 0)
    prob = C.graph_problem(g, "adj", nodes, C.paper_targets(g), 2, 4)
    path = C.solve(prob, C.start(prob, 2.0), rule="normalized-flow", T=1.0, step_size=1e-3, max_steps=10, points=8)
    assert path.solver["steps"] == 10 and path.solver["stopped"] == "step budget" and path.error == "step budget"
    assert path.times[-1] == pytest.approx(0.01)
    full = C.solve(prob, C.start(prob, 2.0), rule="normalized-flow", T=0.01, step_size=1e-3, points=8)
    assert full.solver["steps"] == 10 and full.solver["stopped"] == "horizon" and full.error is None
    np.testing.assert_allclose(full.losses[-1], path.losses[-1], rtol=1e-12)
