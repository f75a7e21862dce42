"""Figures of failed and diverged runs draw without a warning: no empty legend ("No artists with labels found"),
no log axis without a positive value ("Data has no positive values"), no All-NaN median — during the run and
when ``gnndyn report`` redraws them. The causes are fixed where the figures are drawn
(:mod:`gnndyn.report.plots`, the figure functions, the monitor's figures); no warning filter hides them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GCNConv

import gnndyn as gd
from gnndyn.experiments import get_experiment, make_spec, run_experiment
from gnndyn.experiments.base import draw_figures
from gnndyn.monitor.measures import numerical_rank
from gnndyn.report.plots import band, finish_figure, has_positive, log_scale, new_figure

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
#: torch's notices about sparse CSR tensors, filtered by the CLI and pyproject alike: not about figures
TORCH_NOTICES = ("Sparse CSR tensor support is in beta", "Sparse invariant checks are implicitly disabled")


def drawing_warnings(fn):
    """(result of ``fn()``, every warning it raised but torch's sparse notices), each warning recorded."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = fn()
    return out, [f"{w.category.__name__} {Path(w.filename).name}:{w.lineno}: {w.message}" for w in rec
                 if not any(n in str(w.message) for n in TORCH_NOTICES)]


# ------------------------------------------------------------------------------------------------ plot helpers
def test_finish_figure_gives_no_empty_legend_and_says_a_panel_is_empty():
    fig, (full, empty, hand) = new_figure(3)
    full.plot([0, 1], [1.0, 2.0], label="a curve")
    hand.plot([0, 1], [1.0, 2.0])  # unlabelled: its legend is placed by hand, or none
    out, warned = drawing_warnings(lambda: finish_figure(fig, "f", (full, empty)))
    assert warned == []
    assert list(out) == ["f"]
    assert [t.get_text() for t in full.get_legend().get_texts()] == ["a curve"]
    assert empty.get_legend() is None and [t.get_text() for t in empty.texts] == ["nothing to draw: no finite value recorded"]
    assert hand.get_legend() is None and len(hand.texts) == 0
    plt.close(fig)
    fig, (ax,) = new_figure(1)
    _, warned = drawing_warnings(lambda: finish_figure(fig, "f", (ax,), legend="labelled"))
    assert warned == [] and len(ax.texts) == 0 and ax.get_legend() is None
    plt.close(fig)


@pytest.mark.parametrize(("y", "scale"), [
    ([0.0, 0.0, 0.0], "linear"),          # a gradient exactly 0 (saturated units)
    ([-1.0, 0.0, -3.0], "linear"),
    ([np.nan, np.inf, np.nan], "linear"),  # a diverged run, before drawable() removes the points
    ([0.0, 1e-3, 2.0], "log"),             # one positive value is enough: zeros are masked as usual
    ([1e250, 1e260, 1e270], "log"),
])
def test_log_scale_only_where_a_positive_value_exists(y, scale):
    fig, (ax,) = new_figure(1)
    ax.plot([0, 1, 2], y)
    result, warned = drawing_warnings(lambda: (log_scale(ax), fig.savefig(os.devnull, format="png")))
    assert warned == []
    assert ax.get_yscale() == scale and result[0] == (scale == "log") == has_positive(ax)
    plt.close(fig)


def test_finish_figure_makes_a_log_axis_without_positive_values_linear():
    fig, (ax, ok) = new_figure(2)
    ax.set_yscale("log")          # set before the data: matplotlib would warn when drawing
    ax.plot([0, 1], [0.0, 0.0], label="zero")
    ok.plot([0, 1], [1.0, 10.0], label="positive")
    ok.set_yscale("log")
    _, warned = drawing_warnings(lambda: (finish_figure(fig, "f", (ax, ok)), fig.savefig(os.devnull, format="png")))
    assert warned == []
    assert (ax.get_yscale(), ok.get_yscale()) == ("linear", "log")
    plt.close(fig)


def test_a_shared_log_axis_counts_the_data_of_every_panel_sharing_it():
    fig, (ax,) = new_figure(1)
    ax.plot([1.0, 10.0, 100.0], [1.0, 2.0, 3.0], label="loss")
    ax.set_xscale("log")
    twin = ax.twinx()  # shares x; its own data has no x value at all
    twin.axhline(0.5, label="level")
    _, warned = drawing_warnings(lambda: finish_figure(fig, "f", (ax, twin)))
    assert warned == [] and has_positive(twin, "x")
    assert (ax.get_xscale(), twin.get_xscale()) == ("log", "log")
    plt.close(fig)


def test_band_of_a_point_no_seed_recorded_is_nan_without_warning():
    fig, (ax,) = new_figure(1)
    values = np.array([[1.0, 4.0, np.nan], [3.0, np.nan, np.nan], [2.0, 6.0, np.nan]])  # 3 seeds, step 2 never recorded
    _, warned = drawing_warnings(lambda: band(ax, [0, 1, 2], values, label="loss"))
    assert warned == []
    med = ax.get_lines()[0].get_ydata()
    np.testing.assert_array_equal(med[:2], [2.0, 5.0])
    assert np.isnan(med[2])
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ runs
def redraw(store):
    """What ``gnndyn report`` does to the figures of a stored run."""
    exp = get_experiment(store.spec()["experiment"])
    return drawing_warnings(lambda: draw_figures(exp, store))


def test_xu_fig1_diverged_at_once_draws_without_warning(tmp_path):
    """Every series diverges before its first record (init_scale 1e200): the run and the redraw are silent
    (before: "No artists with labels found to put in legend" from speed.py's loss panels)."""
    exp = get_experiment("xu-fig1")
    spec = make_spec("xu-fig1", {**exp.smoke, "init_scale": 1e200})
    (store, _), warned = drawing_warnings(lambda: run_experiment(spec, tmp_path / "run"))
    assert warned == []
    run = store.read_json("run.json")
    assert run["status"] == "diverged" and run.get("figure_errors") in (None, {})
    assert store.metrics().query("quantity == 'loss'").empty  # nothing finite was recorded
    errors, warned = redraw(store)
    assert warned == [] and errors == {}
    assert (tmp_path / "run" / "figures" / "fig1_training_curves.png").exists()
    fig = exp.figures(store)["fig1_training_curves"]
    for ax in fig.get_axes():
        assert ax.get_legend() is None
        assert [t.get_text() for t in ax.texts] == ["no loss recorded (the runs failed or diverged at once)"]
    plt.close(fig)


def test_xu_fig5_failed_run_draws_without_warning(tmp_path):
    """A run that failed (its check had no evaluated point): ``gnndyn report`` draws its figure silently
    (before: "No artists with labels found" from plots.finish_figure)."""
    exp = get_experiment("xu-fig5")
    spec = make_spec("xu-fig5", {**exp.smoke, "init_scale": 1e200})
    with pytest.raises(gd.GnndynError, match="needs at least one evaluated point"):
        run_experiment(spec, tmp_path / "run")
    store = gd.RunStore(tmp_path / "run")
    assert store.read_json("run.json")["status"] == "failed"
    errors, warned = redraw(store)
    assert warned == [] and errors == {}
    assert (tmp_path / "run" / "figures" / "fig5_thm3_terms.png").exists()


def test_keriven_stationary_saturated_run_draws_without_warning(tmp_path):
    """Keriven Thm 3's experiment at init_scale 1e200: tanh saturates, ℰ(B⁽ᵏ⁾) is exactly 0 and the run fails
    its rate fit. Its figure draws silently (before: "Data has no positive values, and therefore cannot be
    log-scaled" from stationary.py); the all-zero Cor 1 panels are linear, the others stay logarithmic."""
    exp = get_experiment("stationary-output-layer")
    spec = make_spec("stationary-output-layer", {**exp.smoke, "model.init_scale": 1e200})
    with warnings.catch_warnings():  # the bounds overflow to +inf at s ≈ 1e200: not the figures' concern here
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(gd.GnndynError, match="fitting an exponent needs"):
            run_experiment(spec, tmp_path / "run")
    store = gd.RunStore(tmp_path / "run")
    errors, warned = redraw(store)
    assert warned == [] and errors == {}
    fig, warned = drawing_warnings(lambda: exp.figures(store)["thm3_stationary_output_layer"])
    assert warned == []
    scales = {ax.get_title(): ax.get_yscale() for ax in fig.get_axes()}
    assert {t: s for t, s in scales.items() if t.endswith("Cor 1")} == {f"{task}: Cor 1": "linear" for task in spec.tasks}
    df = store.metrics()
    assert (df.query("quantity == 'smoothing_B_beta'")["value"] == 0).all()
    assert scales[f"{spec.tasks[0]}: loss and output-layer norm"] == "log"
    plt.close(fig)


def test_gnndyn_report_of_a_diverged_run_prints_no_warning(tmp_path):
    exp = get_experiment("xu-fig4")
    spec = make_spec("xu-fig4", {**exp.smoke, "init_scale": 1e200})
    store, _ = run_experiment(spec, tmp_path / "run")
    assert store.read_json("run.json")["status"] == "diverged"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    p = subprocess.run([sys.executable, "-m", "gnndyn", "report", str(tmp_path / "run")], capture_output=True,
                       text=True, env=env, timeout=300, check=False)
    assert p.returncode == 0, p.stderr
    assert "Warning" not in p.stderr and "warn" not in p.stderr.lower(), p.stderr
    assert f"report: {(tmp_path / 'run' / 'report.html').resolve()}" in p.stdout.replace("\n", "")
    assert not (tmp_path / "run" / "figures" / "errors.json").exists()


# ------------------------------------------------------------------------------------------------ the monitor
class GCN(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([GCNConv(5, 8), GCNConv(8, 8), GCNConv(8, 2)])

    def forward(self, x, edge_index):
        for k, conv in enumerate(self.convs):
            x = conv(x, edge_index)
            x = torch.tanh(x) if k < 2 else x
        return x


@pytest.mark.parametrize("how", ["huge weights", "huge step"])
def test_monitor_save_of_a_diverged_run_is_silent(how, tmp_path):
    """Weights × 1e200 (tanh saturates: hidden gradients exactly 0, signals beyond float64 when squared) or a
    step of 1e12 (the loss becomes non-finite): recording, diagnosing and saving with figures warn nothing."""
    g = gd.csbm(40, 2, p_in=0.2, p_out=0.05, feature_dim=5, feature_sep=2.0, seed=0)
    torch.manual_seed(0)
    model = GCN()
    if how == "huge weights":
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1e200)
    opt = torch.optim.SGD(model.parameters(), lr=1e12 if how == "huge step" else 0.1)

    def go():
        mon = gd.Monitor(model, edge_index=g.edge_index, schedule="all")
        for _ in range(15):
            opt.zero_grad()
            loss = F.cross_entropy(model(g.x, g.edge_index), g.y)
            loss.backward()
            mon.step(loss)
            opt.step()
        store = mon.save(str(tmp_path / "run"))
        mon.close()
        return store

    store, warned = drawing_warnings(go)
    assert warned == []
    assert sorted(p.name for p in store.figures()) == ["monitor_signals.png", "monitor_training.png"]
    trap = {c["name"]: c for c in store.checks()}["monitor.keriven_trap"]
    assert "nan" not in trap["where"]
    if how == "huge weights":  # the output layer's gradient is constant: 10 × δ_k = its early max / drop factor 10
        assert trap["where"].startswith("last step: layer 2 at 10 × δ_k") and trap["margin"] == pytest.approx(1.0)


def test_numerical_rank_does_not_overflow_on_a_huge_finite_signal():
    """Σσᵢ²/σ₁² with σ = (1e200, 1e200, 0): 2 exactly (σ₁² alone overflows float64); NaN when σ₁ is not finite."""
    assert numerical_rank(torch.tensor([1e200, 1e200, 0.0], dtype=torch.float64)) == 2.0
    assert numerical_rank(torch.tensor([3.0, 4.0], dtype=torch.float64)) == pytest.approx(25 / 16, rel=1e-15)
    assert np.isnan(numerical_rank(torch.tensor([np.inf, 1.0], dtype=torch.float64)))
    assert np.isnan(numerical_rank(torch.zeros(3, dtype=torch.float64)))
    assert json.dumps(float(numerical_rank(torch.tensor([1.0])))) == "1.0"
