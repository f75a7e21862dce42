"""``monitor-zoo`` at smoke size, and every script in examples/ at smoke size."""

from __future__ import annotations

import math
import runpy
import sys
from pathlib import Path

import pytest

import gnndyn as gd

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = ("gcn", "gat", "gin", "sage", "gcnii", "mlp")


def test_monitor_zoo_smoke(tmp_path):
    from gnndyn.experiments.base import get_experiment

    exp = get_experiment("monitor-zoo")
    spec = gd.make_spec("monitor-zoo", exp.smoke)
    store, result = gd.run_experiment(spec, tmp_path / "zoo")
    t = store.table("zoo")
    assert len(t) == 6 * 2 and set(t["arch"]) == {"gcn", "gat", "gin", "sage", "gcnii", "mlp"}
    df = store.metrics()
    for r in t.itertuples():
        loss = df[(df.series == r.series) & (df.quantity == "loss")].sort_values("step")["value"].to_numpy()
        assert loss.size == spec.epochs and r.final_loss == pytest.approx(loss[-1], rel=1e-12)
        C = 2
        trains = r.final_loss <= spec.trained_loss_fraction * math.log(C) and r.test_accuracy >= 1 / C + spec.min_accuracy_gain
        assert r.outcome == ("trains" if trains else "stuck")
        k = len(df[(df.series == r.series) & (df.quantity == "smoothing_H") & (df.step == 0)])
        assert k == r.depth  # one forward signal per layer (MLP: its Linear layers)
    assert [v.name for v in result.verdicts] == ["monitor_zoo.diagnoses_explain_outcomes.csbm"]
    assert (tmp_path / "zoo" / "figures" / "zoo_table.png").exists()
    assert (tmp_path / "zoo" / "report.html").exists()


def test_monitor_zoo_rejects_unknown_names():
    with pytest.raises(gd.GnndynError, match="valid architectures: gat, gcn, gcnii, gin, mlp, sage"):
        gd.make_spec("monitor-zoo", {"archs": ["gcn", "transformer"]})


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs_at_smoke_size(name, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    save = name in ("gcn", "mlp")  # writing the report (figures) is the slow part: two of the six do it
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--smoke", *(["--out", str(tmp_path / name)] if save else [])])
    ns = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="example")
    mon = ns["main"]()
    out = capsys.readouterr().out
    assert "alarms:" in out and ("report:" in out) == save
    assert out.startswith("step 0 | loss ")  # the text summary
    assert mon.num_steps == 3
    df = mon.frame()
    assert sorted(df[df.quantity == "loss"]["step"].unique()) == [0, 1, 2]
    depth = {"gcnii": 32}.get(name, 8)
    assert len(mon.layers) == depth
    assert len(df[(df.quantity == "smoothing_B") & (df.step == 2)]) == depth
    if save:
        assert len(gd.RunStore(tmp_path / name).checks()) == 5
