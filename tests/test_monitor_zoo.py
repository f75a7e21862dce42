"""``monitor-zoo`` at smoke size, and every script in examples/ at smoke size."""

from __future__ import annotations

import math
import runpy
import sys
from pathlib import Path

import pytest

import gnndyn as gd
from gnndyn.experiments.monitor.zoo import outcome

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
        assert r.outcome == outcome(r.final_loss, r.test_accuracy, 2)
        k = len(df[(df.series == r.series) & (df.quantity == "smoothing_H") & (df.step == 0)])
        assert k == r.depth  # one forward signal per layer (MLP: its Linear layers)
    assert [v.name for v in result.verdicts] == ["monitor_zoo.diagnoses_explain_outcomes.csbm"]
    assert (tmp_path / "zoo" / "figures" / "zoo_table.png").exists()
    assert (tmp_path / "zoo" / "report.html").exists()


@pytest.mark.parametrize(("loss", "acc", "classes", "expected"), [
    # (final loss in units of ln C, test accuracy): the bands of the module docstring, at their edges
    (0.21, 0.82, 7, "trains"),      # Cora GCN, depth 2
    (0.5, 1 / 7 + 0.1, 7, "trains"),  # both thresholds met with equality
    (0.43, 0.25, 7, "trains"),      # chance 1/7 + 0.1 = 0.243 is beaten
    (7.7e-5, 0.50, 2, "overfits"),  # the training loss fitted, the test nodes at chance
    (0.65, 0.80, 7, "slow"),        # learning, not finished in the epochs given
    (0.89, 0.80, 2, "slow"),
    (0.9, 0.80, 2, "stuck"),        # at the stuck threshold
    (0.62, 0.20, 7, "stuck"),       # loss above the trained band, accuracy not above chance + gain
    (0.98, 0.13, 7, "stuck"),
    (10.0, 0.13, 7, "stuck"),       # at the divergence threshold: still finite and not above it
    (10.01, 0.13, 7, "diverged"),
    (math.inf, 0.5, 2, "diverged"),
    (math.nan, 0.5, 2, "diverged"),
    (0.2, math.nan, 2, "overfits"),  # no accuracy measured: not counted as learning
])
def test_zoo_outcome_bands(loss, acc, classes, expected):
    assert outcome(loss * math.log(classes), acc, classes) == expected


def test_zoo_slow_band_must_not_be_empty_or_negative():
    with pytest.raises(gd.GnndynError, match="stuck_loss_fraction .* must be at least trained_loss_fraction"):
        gd.make_spec("monitor-zoo", {"trained_loss_fraction": 0.6, "stuck_loss_fraction": 0.5})


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
