"""The sweep's report.html from a sweep folder written by hand (sweep.json, points.parquet,
verdicts.parquet): what each cell of the verdict matrix says, and that the page names no machine path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from gnndyn.sweep.report import render_sweep_report


def _verdict(point: str, name: str, holds: bool, margin: float, *, diverged: bool = False, applicable: bool = True):
    details = {"diverged": "gd (seed 0) at step 3"} if diverged else {}
    return {"point": point, "name": name, "paper": "Keriven, Thm 2", "holds": holds, "margin": margin, "where": "layer 1",
            "statement": "ℰ(B^(k)) ≤ Σ_{ℓ=k}^{L−1}λ^{2ℓ+1−k}", "applicable": applicable and not diverged,
            "assumptions": "{}", "details": json.dumps(details)}


def _sweep(root: Path) -> Path:
    root.mkdir(parents=True)
    state = {"experiment": "backward-oversmoothing", "axes": ["lr", "seed"], "updated": "2026-01-01T00:00:00+00:00",
             "backend": {"name": "local", "workers": 1},
             "config": {"grid": {"lr": [0.3, 1e6]}, "zip": [], "seeds": [0, 1], "base": {}}}
    (root / "sweep.json").write_text(json.dumps(state))
    pts = [("p0", 0.3, 0, "ok"), ("p1", 0.3, 1, "ok"), ("p2", 1e6, 0, "diverged"), ("p3", 1e6, 1, "ok")]
    pd.DataFrame([{"point": p, "index": i, "status": st, "error": None, "wall_time_s": 1.0, "lr": lr, "point.seed": sd}
                  for i, (p, lr, sd, st) in enumerate(pts)]).to_parquet(root / "points.parquet")
    rows = [_verdict("p0", "thm2", True, 0.5), _verdict("p1", "thm2", False, -0.1),
            _verdict("p2", "thm2", False, float("nan"), diverged=True), _verdict("p3", "thm2", True, 0.2),
            _verdict("p0", "thm4", True, 1.0), _verdict("p1", "thm4", True, 1.0),
            _verdict("p2", "thm4", False, float("nan"), diverged=True), _verdict("p3", "thm4", False, float("nan"),
                                                                               diverged=True)]
    pd.DataFrame(rows).to_parquet(root / "verdicts.parquet")
    return root


def _cells(page: str) -> list[list[str]]:
    matrix = page[page.index("Verdict matrix"):].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", matrix)[1:]
    return [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)] for r in rows]


def test_a_verdict_on_a_diverged_point_is_not_assessed_and_counts_neither_way(tmp_path):
    page = render_sweep_report(_sweep(tmp_path / "deep" / "sw"))
    assert _cells(page) == [["0.3", "1/2", "2/2"],                      # two assessed seeds
                            ["1e+06", "1/1 (1 not assessed)", "not assessed"]]  # p2 diverged; p3's thm4 too
    assert "violated" not in page.split("Verdict matrix")[1].split("</table>")[0]
    assert "<td class='na'>not assessed</td>" in page


def test_the_sweep_page_is_typeset_and_names_no_machine_path(tmp_path):
    root = _sweep(tmp_path / "deep" / "sw")
    page = render_sweep_report(root)
    assert "<html lang='en'>" in page and "name='viewport'" in page
    legend = page[page.index("<ul>"):page.index("</ul>")]
    assert "λ<sup>2ℓ+1−k</sup>" in legend and "_{" not in legend and "^(" not in legend  # the statements typeset
    assert str(tmp_path) not in page and "gnndyn sweep --resume sw</code>" in page
    assert page.count("<div class='scroll'>") == 3  # matrix, headline table, points: each scrolls in its box


def test_a_claim_checked_twice_per_point_counts_once_per_point_and_a_null_axis_value_is_a_cell(tmp_path):
    """keriven.prop1 is checked for the GNN and the MLP at every point: 2 points × 2 checks is 2/2, not 4/2;
    a point where one of its two checks fails does not hold. A null axis value (NaN in the table) is one cell."""
    root = tmp_path / "sw"
    root.mkdir()
    state = {"experiment": "gnn-vs-mlp", "axes": ["divergence_factor", "seed"], "updated": "2026-01-01T00:00:00+00:00",
             "backend": {"name": "local", "workers": 1},
             "config": {"grid": {"divergence_factor": [None, 1e6]}, "zip": [], "seeds": [0, 1], "base": {}}}
    (root / "sweep.json").write_text(json.dumps(state))
    pts = [("p0", None, 0), ("p1", None, 1), ("p2", 1e6, 0), ("p3", 1e6, 1)]
    pd.DataFrame([{"point": p, "index": i, "status": "ok" if p != "p3" else "failed", "error": None,
                   "wall_time_s": 1.0, "divergence_factor": df, "point.seed": sd,
                   "summary: loss": [0.5, 0.7, 0.25, float("nan")][i]}
                  for i, (p, df, sd) in enumerate(pts)]).to_parquet(root / "points.parquet")
    rows = [_verdict(p, "prop1", True, 1e-12) for p in ("p0", "p1", "p2") for _ in range(2)]
    rows[5] = _verdict("p2", "prop1", False, -0.5)  # p2's second check fails
    pd.DataFrame(rows).to_parquet(root / "verdicts.parquet")
    page = render_sweep_report(root)
    assert _cells(page) == [["—", "2/2"], ["1e+06", "0/2"]]  # p3 failed: counts as not holding
    headline = page[page.index("Headline quantities"):].split("</table>")[0]
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", headline)]
    assert cells == ["—", "0.6 ± 0.1414", "1e+06", "0.25 (1 of 2 points)"]
