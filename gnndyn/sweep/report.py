"""``report.html`` of a sweep, built from the sweep folder only (``sweep.json``, ``points.parquet``,
``verdicts.parquet``): self-contained (inline CSS, images as base64 PNG), no network.

* **Verdict matrix** — one row per grid cell (the values of the varying keys other than the seed), one
  column per claim (verdict name): *holds* / *violated*, or ``k/n`` seeds where it holds; † marks a
  verdict whose assumptions were not met; a point that failed or is incomplete shows its status; a verdict
  computed on a diverged series is *not assessed* and counts neither way.
* **Headline quantities** — each experiment's ``run.json`` summary (numbers) per cell, the mean over
  seeds (± the standard deviation when there are several), and each one plotted against the first
  numeric axis, one line per value of the other axes (the bars span the seeds' minimum to maximum).
* **Points** — every point with its values, status, wall time and error message, linked to its own run
  report.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd

from gnndyn.report.html import _CSS
from gnndyn.report.maths import maths_html
from gnndyn.store.files import atomic_write_bytes
from gnndyn.sweep.gather import column_name
from gnndyn.sweep.grid import SEED
from gnndyn.sweep.identity import error_line

MAX_PLOTS = 12
_EXTRA_CSS = ".mixed{color:#a15c07;font-weight:600} .fail{background:#fde8e6} td.num{text-align:right}"


def _e(v: Any) -> str:
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.4g}"
    return "—" if v is None else html.escape(str(v))


def _cell_keys(state: dict[str, Any]) -> list[str]:
    return [k for k in state.get("axes", []) if not (k == SEED and state["config"].get("seeds") is not None)]


def _cell_label(row: pd.Series, keys: list[str]) -> tuple:
    """The cell's values, with a missing value (null, NaN) as None: equal to itself, so its points are found."""
    return tuple(None if _missing(row[column_name(k)]) else row[column_name(k)] for k in keys)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _verdict_matrix(points: pd.DataFrame, verdicts: pd.DataFrame, keys: list[str]) -> str:
    if points.empty:
        return "<p>No points.</p>"
    names = list(dict.fromkeys(verdicts["name"])) if not verdicts.empty else []
    papers = {r["name"]: (r["paper"], r["statement"]) for _, r in verdicts.drop_duplicates("name").iterrows()} if names else {}
    cells = list(dict.fromkeys(_cell_label(r, keys) for _, r in points.iterrows()))
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    head += "".join(f"<th title='{html.escape(papers[n][0] + ': ' + papers[n][1])}'>{html.escape(n)}</th>" for n in names)
    rows = []
    for cell in cells:
        sel = points[[_cell_label(r, keys) == cell for _, r in points.iterrows()]]
        tds = "".join(f"<td>{_e(v)}</td>" for v in cell)
        bad = sel[~sel["status"].isin(["ok", "diverged"])]
        for n in names:
            v = verdicts[(verdicts["name"] == n) & verdicts["point"].isin(sel["point"])]
            if v.empty:
                word = ", ".join(sorted(set(bad["status"]))) if not bad.empty else "—"
                tds += f"<td class='{'bad' if not bad.empty else ''}'>{html.escape(word)}</td>"
                continue
            # one outcome per point: a claim checked several times at a point (for two models, at several
            # layers) holds there when every check holds; it is not assessed there when any check was made on a
            # diverged series
            diverged = v["details"].map(_on_diverged_series) if "details" in v else pd.Series(False, index=v.index)
            per_point = pd.DataFrame({"point": v["point"], "holds": v["holds"], "applicable": v["applicable"],
                                      "diverged": diverged}).groupby("point", sort=False).agg(
                holds=("holds", "all"), applicable=("applicable", "all"), diverged=("diverged", "any"))
            assessed, nd = per_point[~per_point["diverged"]], int(per_point["diverged"].sum())
            if assessed.empty:  # every point's verdict was computed on a diverged series
                tds += "<td class='na'>not assessed</td>"
                continue
            k, total = int(assessed["holds"].sum()), len(sel) - nd
            dagger = "†" if not assessed["applicable"].all() else ""
            margins = v.loc[~diverged.to_numpy(), "margin"]
            if total == 1 and not nd:
                cls, word = ("ok", "holds") if k == 1 else ("bad", "violated")
            else:
                cls = "ok" if k == total else "bad" if k == 0 else "mixed"
                word = f"{k}/{total}" + (f" ({nd} not assessed)" if nd else "")
            tds += f"<td class='{cls}' title='margin {_e(float(margins.min()))}'>{word}{dagger}</td>"
        rows.append(f"<tr>{tds}</tr>")
    legend = "".join(f"<li><b>{html.escape(n)}</b> — {maths_html(papers[n][0])}: <span class='stmt'>"
                     f"{maths_html(papers[n][1])}</span></li>" for n in names)
    note = ("<p class='sub'>k/n: the claim holds at k of the cell's n points (seeds); a claim checked several times at "
            "a point holds there when every check does. † assumptions not met at some point. A point that failed or is incomplete counts as not holding. <i>Not assessed</i>: the verdict was "
            "computed on a series whose training diverged (it counts neither way).</p>")
    return f"<div class='scroll'><table><tr>{head}</tr>{''.join(rows)}</table></div>{note}<ul>{legend}</ul>" if names else \
        "<p>No verdicts were recorded.</p>"


def _on_diverged_series(details: Any) -> bool:
    """Whether a stored verdict (its ``details`` JSON) was computed on a diverged series: not assessed
    (:func:`gnndyn.theory.verdict.mark_diverged`)."""
    try:
        d = json.loads(details) if isinstance(details, str) else details
    except ValueError:
        return False
    return bool(isinstance(d, dict) and d.get("diverged"))


def _summary_columns(points: pd.DataFrame) -> list[str]:
    return [c for c in points.columns if c.startswith("summary: ")]


def _headline_table(points: pd.DataFrame, keys: list[str]) -> str:
    cols = _summary_columns(points)
    if not cols:
        return "<p>The experiment reports no numeric headline quantities.</p>"
    groups = points.groupby([column_name(k) for k in keys], sort=False, dropna=False) if keys else [((), points)]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys) + "".join(f"<th>{html.escape(c[9:])}</th>" for c in cols)
    rows = []
    for cell, g in groups:
        cell = cell if isinstance(cell, tuple) else (cell,)
        tds = "".join(f"<td>{_e(v)}</td>" for v in cell)
        for c in cols:
            x = g[c].dropna()
            if x.empty:
                tds += "<td>—</td>"
            elif len(x) > 1:
                tds += f"<td class='num'>{_e(float(x.mean()))} ± {_e(float(x.std(ddof=1)))}</td>"
            elif len(g) > 1:  # the other points of the cell have no value (failed, incomplete)
                tds += f"<td class='num'>{_e(float(x.iloc[0]))} (1 of {len(g)} points)</td>"
            else:
                tds += f"<td class='num'>{_e(float(x.iloc[0]))}</td>"
        rows.append(f"<tr>{tds}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _plots(points: pd.DataFrame, keys: list[str]) -> list[str]:
    cols = _summary_columns(points)[:MAX_PLOTS]
    numeric = [k for k in keys if pd.api.types.is_numeric_dtype(points[column_name(k)])
               and not pd.api.types.is_bool_dtype(points[column_name(k)])]
    if not cols or not numeric:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, others = numeric[0], [k for k in keys if k != numeric[0]]
    xc, oc = column_name(x), [column_name(k) for k in others]
    out = []
    for c in cols:
        fig, ax = plt.subplots(figsize=(5.2, 3.4))
        groups = points.groupby(oc, sort=False, dropna=False) if oc else [((), points)]
        for label, g in groups:
            label = label if isinstance(label, tuple) else (label,)
            s = g.groupby(xc)[c].agg(["mean", "min", "max"]).dropna()
            if s.empty:
                continue
            name = ", ".join(f"{k}={v}" for k, v in zip(others, label)) or c[9:]
            ax.errorbar(s.index, s["mean"], yerr=[s["mean"] - s["min"], s["max"] - s["mean"]], marker="o", capsize=3, label=name)
        ax.set_xlabel(x)
        ax.set_title("\n".join(textwrap.wrap(c[9:], 48)[:3]), fontsize=9)
        if oc:
            ax.legend(fontsize=7)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        data = base64.b64encode(buf.getvalue()).decode()
        out.append(f"<figure><img alt='{html.escape(c)}' src='data:image/png;base64,{data}'></figure>")
    return out


def _points_table(points: pd.DataFrame, keys: list[str]) -> str:
    head = "<tr><th>point</th>" + "".join(f"<th>{html.escape(k)}</th>" for k in keys) + \
           "<th>status</th><th>wall time (s)</th><th>message</th></tr>"
    rows = []
    for _, r in points.iterrows():
        cls = "ok" if r["status"] == "ok" else "bad"
        err = r.get("error")
        msg = html.escape(error_line(err)[:300])
        link = f"<a href='points/{html.escape(r['point'])}/report.html'>{html.escape(r['point'])}</a>"
        rows.append(f"<tr class='{'' if cls == 'ok' else 'fail'}'><td>{link}</td>"
                    + "".join(f"<td>{_e(r[column_name(k)])}</td>" for k in keys)
                    + f"<td class='{cls}'>{html.escape(r['status'])}</td><td class='num'>{_e(r['wall_time_s'])}</td><td>{msg}</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def render_sweep_report(root: str | Path) -> str:
    root = Path(root)
    state = json.loads((root / "sweep.json").read_text())
    points = pd.read_parquet(root / "points.parquet")
    verdicts = pd.read_parquet(root / "verdicts.parquet")
    cfg, keys = state["config"], list(state.get("axes", []))
    cells = _cell_keys(state)
    title = f"gnndyn sweep — {state['experiment']}"
    counts = points["status"].value_counts().to_dict() if not points.empty else {}
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<style>{_CSS}{_EXTRA_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    b = state.get("backend") or {}
    parts.append(f"<p class='sub'>{len(points)} points — " + ", ".join(f"{html.escape(str(k))}: {v}" for k, v in counts.items())
                 + f"; backend {html.escape(str(b.get('name')))} with {b.get('workers')} workers; updated {html.escape(str(state.get('updated')))}</p>")
    axes = [f"<tr><th>{html.escape(k)}</th><td>{html.escape(json.dumps(v))}</td></tr>" for k, v in cfg.get("grid", {}).items()]
    axes += [f"<tr><th>zip: {html.escape(', '.join(g))}</th><td>{html.escape(json.dumps(list(zip(*g.values()))))}</td></tr>"
             for g in cfg.get("zip", [])]
    if cfg.get("seeds") is not None:
        axes.append(f"<tr><th>seed</th><td>{html.escape(json.dumps(cfg['seeds']))}</td></tr>")
    axes += [f"<tr><th>{html.escape(k)} (every point)</th><td>{html.escape(json.dumps(v))}</td></tr>" for k, v in cfg.get("base", {}).items()]
    parts.append("<h2>Grid</h2><table>" + "".join(axes) + "</table>")
    parts.append("<h2>Verdict matrix: which claim holds where</h2>")
    parts.append(_verdict_matrix(points, verdicts, cells))
    parts.append("<h2>Headline quantities against the grid</h2>")
    parts.append(f"<div class='scroll'>{_headline_table(points, cells)}</div>")
    parts.extend(_plots(points, cells))
    parts.append("<h2>Points</h2>")
    parts.append(f"<div class='scroll'>{_points_table(points, keys)}</div>")
    parts.append(f"<p class='sub'>Tables: metrics.parquet, verdicts.parquet, points.parquet. Continue or repair with "
                 f"<code>gnndyn sweep --resume {html.escape(root.name)}</code> from the folder that holds this sweep "
                 f"(add <code>--retry-failed</code> to rerun failures).</p>")
    parts.append("</body></html>")
    return "".join(parts)


def write_sweep_report(root: str | Path) -> Path:
    """Write ``report.html`` in the sweep folder (atomically)."""
    p = Path(root) / "report.html"
    atomic_write_bytes(p, render_sweep_report(root).encode())
    return p
