"""Self-contained HTML report of a run, built from the run folder only (never recomputes training).

Images are inlined as base64 PNG, the style is inline CSS: the file opens from disk with no network.
"""

from __future__ import annotations

import base64
import html
import json
import math
from typing import Any

from gnndyn.store.run import RunStore

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
.sub{color:#666} table{border-collapse:collapse;margin:.5em 0;font-size:.92em} td,th{border:1px solid #ddd;padding:4px 8px;vertical-align:top}
th{background:#f5f5f5;text-align:left} .ok{color:#17803d;font-weight:600} .bad{color:#b42318;font-weight:600} .na{color:#a15c07;font-weight:600}
img{max-width:100%;border:1px solid #eee;margin:.5em 0} pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}
code{background:#f3f3f3;padding:0 3px}
"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        return f"{v:.4g}"
    if v is None:
        return "—"
    return html.escape(str(v))


def _verdict_rows(checks: list[dict[str, Any]]) -> str:
    rows = []
    for c in checks:
        if not c.get("applicable", True):
            cls, word = "na", ("holds" if c["holds"] else "violated") + " — assumptions not met"
        elif c["holds"]:
            cls, word = "ok", "holds"
        else:
            cls, word = "bad", "violated"
        assumptions = ", ".join(f"{html.escape(k)}: {'✓' if v else '✗'}" for k, v in c.get("assumptions", {}).items())
        rows.append(
            f"<tr><td>{html.escape(c['paper'])}</td><td>{html.escape(c['statement'])}</td>"
            f"<td class='{cls}'>{word}</td><td>{_fmt(c.get('margin'))}</td><td>{html.escape(str(c.get('where', '')))}</td>"
            f"<td>{assumptions or '—'}</td></tr>"
        )
    head = "<tr><th>paper</th><th>statement</th><th>verdict</th><th>margin</th><th>where</th><th>assumptions</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>" if rows else "<p>No checks for this run.</p>"


def render_report(store: RunStore) -> str:
    spec = store.spec()
    run = store.read_json("run.json") if store.path("run.json").exists() else {}
    checks = store.checks()
    title = f"gnndyn — {spec.get('experiment', 'run')}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"]
    parts.append(f"<h1>{html.escape(title)}</h1>")
    if run:
        parts.append(f"<p class='sub'>{html.escape(run.get('paper', ''))} — {html.escape(run.get('description', ''))}<br>"
                     f"status: <b>{html.escape(run.get('status', '?'))}</b>, wall time {run.get('wall_time_s', float('nan')):.1f} s, "
                     f"dtype {html.escape(str(run.get('dtype')))}, device {html.escape(str(run.get('device')))}</p>")
        if run.get("error"):
            parts.append(f"<pre class='bad'>{html.escape(run['error'])}</pre>")
    parts.append("<h2>Verdicts</h2>")
    parts.append(_verdict_rows(checks))
    summary = run.get("summary") or {}
    if summary:
        parts.append("<h2>Headline numbers</h2><table>")
        parts.extend(f"<tr><th>{html.escape(str(k))}</th><td>{_fmt(v)}</td></tr>" for k, v in summary.items())
        parts.append("</table>")
    figs = store.figures()
    if figs:
        parts.append("<h2>Figures</h2>")
        for p in figs:
            data = base64.b64encode(p.read_bytes()).decode()
            parts.append(f"<figure><img alt='{html.escape(p.stem)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(p.stem)} (SVG beside it in figures/)</figcaption></figure>")
    tables = store.tables()
    if tables:
        parts.append("<h2>Tables</h2>")
        for name in tables:
            df = store.table(name)
            parts.append(f"<h3>{html.escape(name)}</h3>")
            parts.append(df.head(200).to_html(index=False, float_format=lambda x: f"{x:.4g}", border=0))
    parts.append("<h2>Spec</h2>")
    if spec.get("experiment") == "monitor":
        parts.append("<p>Recorded by <code>gnndyn.Monitor</code> in the user's own training loop (no rerun).</p>")
    else:
        parts.append(f"<p>Re-run with <code>gnndyn rerun {html.escape(str(store.root))}</code>.</p>")
    parts.append(f"<pre>{html.escape(json.dumps(spec, indent=2))}</pre>")
    if run.get("versions"):
        parts.append("<p class='sub'>" + ", ".join(f"{html.escape(k)} {html.escape(v)}" for k, v in run["versions"].items()) + "</p>")
    parts.append("</body></html>")
    return "".join(parts)


def write_report(store: RunStore) -> None:
    """Write ``report.html`` in the run folder (atomically)."""
    store.write_text("report.html", render_report(store))
