"""The report as a person reads it: summary first, figures next, typeset statements, assumptions once,
grouped verdicts with counts, scrolling tables; and figures that keep every value on their axes."""

from __future__ import annotations

import html
import re

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gnndyn.report import render_report
from gnndyn.report.maths import maths_html
from gnndyn.report.plots import finish_log_axis, log_values, new_figure
from gnndyn.store import RunStore

matplotlib.use("Agg")


def test_maths_html_typesets_scripts_limits_and_radicals():
    thm2 = "ℰ(B⁽ᵏ⁾) ≤ (D_ρℰ(X⁽⁰⁾)A_L/n)Σ_{ℓ=k}^{L−1}λ^{2ℓ+1−k}s^(k+1:ℓ+1)"
    assert maths_html(thm2) == (
        "ℰ(B⁽ᵏ⁾) ≤ (D<sub>ρ</sub>ℰ(X⁽⁰⁾)A<sub>L</sub>/n)<span class='bigop'>Σ<span class='lim'><span>L−1</span>"
        "<span>ℓ=k</span></span></span>λ<sup>2ℓ+1−k</sup>s<sup>(k+1:ℓ+1)</sup>")
    assert maths_html("σ²_min(X(S^H)_{*I}) > 0") == "σ²<sub>min</sub>(X(S<sup>H</sup>)<sub>*I</sub>) &gt; 0"
    assert maths_html("√(2σ√r + 1)") == "√<span class='rad'>2σ√r + 1</span>"
    assert maths_html("x^{a_{b}}") == "x<sup>a<sub>b</sub></sup>"  # nested
    assert maths_html("<b> & _alone") == "&lt;b&gt; &amp; _alone"  # escaped; a script needs a base
    assert maths_html("d_max² ≤ 3n/(4(1+π))") == "d<sub>max</sub>² ≤ 3n/(4(1+π))"  # a word before a superscript
    assert maths_html("J_(i,l) ≥ 0") == "J<sub>(i,l)</sub> ≥ 0"
    assert maths_html("spectral_gap 1-lambda, grad_norm_rest") == "spectral_gap 1-lambda, grad_norm_rest"  # names
    assert maths_html("argmin_k E(B^(k))") == "argmin<sub>k</sub> E(B<sup>(k)</sup>)"  # a one-letter script stays one


def _fake_store(root) -> RunStore:
    store = RunStore(root)
    store.write_json("spec.json", {"experiment": "demo-exp", "seed": 0})
    store.write_json("run.json", {"status": "ok", "paper": "Paper, Fig. 1", "description": "σ²_min over H",
                                  "wall_time_s": 1.0, "dtype": "float64", "device": "cpu", "summary": {"λ_T": 1e-9}})
    long_assumption = "the activation ρ is Lipschitz with constant D_ρ and ρ(0) = 0 (Assumption 4 of the paper)"
    checks = [{"name": "p.thm1", "paper": "P, Thm 1", "statement": "ℰ(X^{(k)}) ≤ λ^k", "holds": True, "margin": 0.5,
               "where": f"layer {k}", "assumptions": {long_assumption: True}, "applicable": True, "details": {}}
              for k in range(12)]
    checks[3] = {**checks[3], "holds": False, "margin": -0.1}
    checks.append({"name": "p.thm2", "paper": "P, Thm 2", "statement": "a_t ≥ 0", "holds": True, "margin": 1.0,
                   "where": "step 4", "assumptions": {long_assumption: False, "λ < 1": True}, "applicable": False,
                   "details": {"held": 2, "total": 3}})
    store.write_json("checks.json", checks)
    store.write_table("wide", pd.DataFrame({f"column_{i}": [1.0, 2.0] for i in range(40)}))
    fig, axes = new_figure(1)
    axes[0].plot([0, 1], [0, 1])
    store.save_figure(fig, "curve")
    return store


def test_report_reads_summary_figures_verdicts_assumptions_in_that_order(tmp_path):
    page = render_report(_fake_store(tmp_path / "run"))
    body = page[page.index("<body>"):]
    summary = re.search(r"<p class='summary'>(.*?)</p>", body).group(1)
    text = re.sub(r"<[^>]+>", "", summary)
    assert text == "13 claims checked: 11 hold · 1 violated · 1 outside their assumptions."
    order = [body.index(s) for s in ("class='summary'", "<h2>Figures</h2>", "<h2>Verdicts</h2>", "<h2>Assumptions</h2>",
                                     "<h2>Tables</h2>")]
    assert order == sorted(order)
    # each assumption's text once (the Assumptions table), verdict rows carry its tag only
    assert body.count("Lipschitz with constant D<sub>ρ</sub>") == 1
    assert "met in 12 of 13 checks" in body
    # 12 checks of one claim: one group with its counts, the statement once, typeset
    assert "12 checks: <span class='ok'>11 hold</span> · <span class='bad'>1 violated</span>" in body
    assert body.count("ℰ(X<sup>(k)</sup>) ≤ λ<sup>k</sup>") == 1 and "_{" not in body.split("<h2>Spec</h2>")[0]
    assert "(2/3 held)" in body
    # the 40-column table sits in a box that scrolls
    assert re.search(r"<div class='scroll'><table[^>]*>\s*<thead>\s*<tr[^>]*>\s*<th>column_0</th>", body)
    assert body.count("<img ") == 1 and "http" not in body.split("<h2>Spec</h2>")[0]


def test_non_ok_run_is_bannered(tmp_path):
    store = _fake_store(tmp_path / "run")
    store.write_json("run.json", {**store.read_json("run.json"), "status": "failed"})
    assert "<div class='banner'>This run's status is <b>failed</b>" in render_report(store)
    store.write_json("run.json", {**store.read_json("run.json"), "status": "diverged", "error": "loss is nan at step 7"})
    page = render_report(store)
    assert "TRAINING DIVERGED</b> — loss is nan at step 7" in page and "This run's status" not in page


def test_a_killed_run_reads_as_stopped_not_as_a_run_without_claims(tmp_path):
    store = _fake_store(tmp_path / "killed")
    store.write_json("run.json", {**store.read_json("run.json"), "status": "running", "wall_time_s": 1.45e-05,
                                  "completed": []})
    store.path("checks.json").unlink()
    page = render_report(store)
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert "INCOMPLETE RUN" in page and "This run's status" not in page  # one banner, not two
    assert "status running when it stopped · wall time — (not finished)" in text
    assert "No claim was checked: the run stopped before its checks." in text and "checks no claim" not in text
    assert "None yet: the run stopped before its checks." in text


def test_an_interrupted_run_has_one_banner_that_says_interrupted(tmp_path):
    store = _fake_store(tmp_path / "stopped")
    store.write_json("run.json", {**store.read_json("run.json"), "status": "interrupted", "completed": []})
    page = render_report(store)
    text = html.unescape(" ".join(re.sub(r"<[^>]+>", " ", page).split()))
    assert page.count("class='banner") == 1 and "This run's status" not in page
    assert "run.json says status 'interrupted': the run was interrupted (Ctrl-C) before it finished" in text
    assert "killed or crashed" not in text and text.count("only what was measured up to then is here") == 1


def test_the_report_names_no_machine_path_and_no_python_words(tmp_path):
    store = _fake_store(tmp_path / "deep" / "runs" / "r1")
    store.write_json("spec.json", {"experiment": "demo-exp", "seed": 2, "seeds": 3})
    store.write_table("gaps", pd.DataFrame({"a": [1.0, float("nan")], "b": ["x", None]}))
    store.write_json("run.json", {**store.read_json("run.json"), "status": "diverged",
                                  "error": "training diverged at step 3: loss is nan. Lower the learning rate."})
    page = render_report(store)
    assert str(tmp_path) not in page and "gnndyn rerun r1</code>" in page
    assert "seeds 2–4" in page and "seed 2 " not in page
    assert "Lower the learning rate. Verdicts on diverged series" in page and ".." not in page
    assert "<pre class='bad'>" not in page  # the divergence is said once, in its banner
    gaps = page[page.index("<h3>gaps</h3>"):].split("</table>")[0]
    assert "NaN" not in gaps and "None" not in gaps and gaps.count("—") == 2
    assert "<span class='tag'" in page and ">A1<" not in page and ">#1<" in page  # tags are not the papers' A1…


def test_log_values_keeps_zero_and_tiny_values_as_markers():
    _, axes = new_figure(1)
    ax = axes[0]
    log_values(ax, [1, 2, 3, 4, 5], [1e-3, 1e-30, 0.0, -2e-17, np.nan], "o-", floor=1e-15, label="λ")
    finish_log_axis(ax)
    marks = [c for c in ax.collections if c.get_offsets().shape[0] == 3]
    assert len(marks) == 1
    xy = np.asarray(marks[0].get_offsets())
    assert xy[:, 0].tolist() == [2, 3, 4] and np.allclose(xy[:, 1], 1e-15)
    lo, hi = ax.get_ylim()
    assert lo < 1e-15 and hi > 1e-3  # the markers and the value are on the axis
    assert "≈ 0" in " ".join(ax.get_legend_handles_labels()[1])


def _fig23_store(root, experiment: str) -> RunStore:
    """A stored xu-fig2/3 run with the cases behind a violation: σ_min = 0 (unresolved), λ_T = 0 and λ_T
    below its resolution, and a loss gap that reaches 0."""
    store = RunStore(root)
    store.write_json("spec.json", {"experiment": experiment, "seed": 0})
    store.write_table("sigma2", pd.DataFrame({
        "dataset": ["citeseer"] * 3, "operator": ["gcn"] * 3, "H": [1, 2, 3], "sigma2_min": [1e-2, 0.0, 0.0],
        "sigma2_small": [1e-2, 3e-3, 0.0], "tol": [1e-12] * 3, "resolved": [True, False, False]}))
    store.write_table("lambda_T", pd.DataFrame({
        "dataset": ["cora"] * 3, "operator": ["gcn"] * 3, "H": [1, 2, 3], "lambda_T_last": [1e-9, 0.0, 1e-30],
        "lambda_resolution": [1e-15] * 3, "diverged_at": [np.nan] * 3}))
    rows = []
    for t, lam in enumerate([1e-8, 1e-9, 0.0]):
        rows += [("run-gd", 0, t, float(t), "lambda", 1, lam), ("run-gd", 0, t, float(t), "lambda", 0, 1.0),
                 ("run-gd", 0, t, float(t), "lambda_resolution", 0, 1e-15),
                 ("run-gd", 0, t, float(t), "gap", 0, [1.0, 0.1, 0.0][t]),
                 ("run-gd", 0, t, float(t), "bound_thm2i" if experiment == "xu-fig3" else "bound_thm1", 0, 2.0)]
    df = pd.DataFrame(rows, columns=["series", "seed", "step", "time", "quantity", "layer", "value"])
    store.write_metrics(pa.Table.from_pandas(df, preserve_index=False))
    return store


def test_xu_fig2b_marks_lambda_t_near_zero_by_its_own_layers_resolution(tmp_path):
    """λ_T of layer H = 2 falls to 1e-16 with a resolution of 1e-20: resolved, drawn as a value. Layer 1's
    coarser resolution (1e-14) is not the plotted value's. The ▼'s NaN gaps are not reported as lost points."""
    from gnndyn.experiments.xu.fig23_figures import figures_fig23
    from gnndyn.report.plots import drawable

    store = _fig23_store(tmp_path / "run", "xu-fig2")
    rows = []
    for t, (lam2, res2) in enumerate([(1e-13, 1e-20), (1e-15, 1e-20), (1e-16, 1e-20), (0.0, 1e-20)]):
        rows += [("run-gd", 0, t, float(t), "lambda", 0, 1.0), ("run-gd", 0, t, float(t), "lambda", 1, 1e-3),
                 ("run-gd", 0, t, float(t), "lambda", 2, lam2),
                 ("run-gd", 0, t, float(t), "lambda_resolution", 0, 0.0),
                 ("run-gd", 0, t, float(t), "lambda_resolution", 1, 1e-14),
                 ("run-gd", 0, t, float(t), "lambda_resolution", 2, res2)]
    df = pd.DataFrame(rows, columns=["series", "seed", "step", "time", "quantity", "layer", "value"])
    store.write_metrics(pa.Table.from_pandas(df, preserve_index=False))
    fig = figures_fig23(store)["fig2_conditions"]
    b = fig.axes[1]
    marks = np.concatenate([np.asarray(cl.get_offsets()) for cl in b.collections if len(cl.get_offsets())])
    assert marks.tolist() == [[3.0, 1e-20]]  # only the exact zero, at its own resolution
    line = [ln for ln in b.get_lines() if ln.get_label() == "run-gd"][0]
    np.testing.assert_array_equal(line.get_ydata(), [1e-13, 1e-15, 1e-16, np.nan])
    assert drawable(fig) == []


def test_drawable_reports_infinite_points_by_their_panel_in_words():
    from gnndyn.report.plots import drawable

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2, 3], [1.0, np.nan, np.inf, 2.0])
    ax.set_title(r"(2b) $\lambda_T$ over time")
    assert drawable(fig) == ["(2b) λ_T over time: 1 infinite or overflowing point(s) not drawn"]
    plt.close(fig)


@pytest.mark.parametrize("experiment", ["xu-fig2", "xu-fig3"])
def test_xu_fig23_figures_show_the_points_behind_a_violation(tmp_path, experiment):
    from gnndyn.experiments.xu.fig23_figures import figures_fig23

    figs = figures_fig23(_fig23_store(tmp_path / "run", experiment))
    tag = experiment[-1]
    a, b, c = figs[f"fig{tag}_conditions"].axes[:3]
    bound = figs[f"fig{tag}_bound"].axes[0]
    # (a): σ²_min = 0 at H = 2, 3 and σ²_small = 0 at H = 3; (b), (bound): the last step; (c): λ_T = 0 and 1e-30
    expected = {a: 3, b: 1, c: 2, bound: 1}
    for ax, n in expected.items():
        tri = [cl for cl in ax.collections if len(cl.get_offsets()) and cl.get_paths()
               and cl.get_label().startswith("_")]
        ys = np.concatenate([np.asarray(cl.get_offsets())[:, 1] for cl in tri]) if tri else np.zeros(0)
        lo, hi = ax.get_ylim()
        near_zero = [y for y in ys if y <= 1e-11]
        assert len(near_zero) == n, (ax.get_title(), ys)
        assert all(lo <= y <= hi for y in near_zero), (ax.get_title(), lo, hi)
        assert any("≈ 0" in lab for lab in ax.get_legend_handles_labels()[1]), ax.get_title()
        assert ax.get_yscale() == "log"


def _overlapping(fig) -> list[str]:
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    out = []
    for ax in fig.get_axes():
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            boxes = sorted((t.get_window_extent(r) for t in axis.get_ticklabels(which="both")
                            if t.get_visible() and t.get_text()), key=lambda b: b.x0 if name == "x" else b.y0)
            out += [f"{ax.get_title()} {name}" for a, b in zip(boxes, boxes[1:]) if a.overlaps(b)]
    return out


def test_tidy_ticks_thins_labels_that_would_overlap_and_keeps_the_others():
    from gnndyn.report.plots import tidy_ticks

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(9, 2.5))
    a.plot([2.5e-3, 1.4e-2, 2.8e-2], [1e-2, 6e-2, 0.8], "o-")
    a.set(xscale="log", yscale="log", title="log x about a decade")
    b.plot([0, 1e-4, 2e-4, 3e-4, 4e-4, 5e-4], np.arange(6.0))
    b.set_title("narrow linear x")
    c.plot([1, 10, 100, 1000], [1, 2, 3, 4])
    c.set(xscale="log", title="fine")
    for ax in (a, b, c):
        for t in ax.get_xticklabels(which="both"):
            t.set_fontsize(12)
    fig.tight_layout()
    before_c = [t.get_text() for t in c.get_xticklabels()]
    assert _overlapping(fig)  # the case: matplotlib's own labels collide
    tidy_ticks(fig)
    assert _overlapping(fig) == []
    assert [t.get_text() for t in c.get_xticklabels()] == before_c  # a readable axis is left as it was
    assert len([t for t in b.get_xticklabels() if t.get_text()]) >= 2
    plt.close(fig)


def test_tidy_ticks_keeps_numbers_on_a_log_axis_spanning_less_than_a_decade():
    """On 1.2·10⁻³ … 8·10⁻³ no power of ten is in view: matplotlib's minor labels (2, 3, 4, 6 ×10⁻³) are the
    axis's only numbers. Where they collide they are thinned (to 2 and 5 ×10⁻³), not dropped."""
    from gnndyn.report.plots import tidy_ticks

    fig, ax = plt.subplots(figsize=(3, 2.5))
    ax.plot([1.2e-3, 8e-3], [1, 1], "o-")
    ax.set_xscale("log")
    for t in ax.get_xticklabels(which="both"):
        t.set_fontsize(12)
    fig.tight_layout()

    def labelled():
        fig.canvas.draw()
        lo, hi = ax.get_xlim()
        ticks = ax.xaxis.get_major_ticks() + ax.xaxis.get_minor_ticks()
        return sorted(round(t.get_loc(), 12) for t in ticks
                      if t.label1.get_visible() and t.label1.get_text() and lo <= t.get_loc() <= hi)

    assert _overlapping(fig)
    tidy_ticks(fig)
    assert _overlapping(fig) == []
    assert labelled() == [2e-3, 5e-3]
    plt.close(fig)
