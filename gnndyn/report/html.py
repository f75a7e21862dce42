"""Self-contained HTML report of a run, built from the run folder only (never recomputes training).

Reading order: a one-line summary of the verdicts (how many claims hold, are violated, are outside their
assumptions), the figures, the verdicts grouped by claim with counts and typeset statements
(:mod:`gnndyn.report.maths`), every assumption once, the headline numbers, the tables (each scrolls inside
its box), and the spec. Images are inlined as base64 PNG, the style is inline CSS and there is no
script: the file opens from disk with no network.
"""

from __future__ import annotations

import base64
import html
import json
import math
from typing import Any

from gnndyn.report.maths import maths_html
from gnndyn.store.run import FINAL_STATUSES, RunStore
from gnndyn.theory import verdict as _verdict

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1180px;margin:1.5em auto;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.1em} h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.15em}
h3{font-size:1em;margin:1.1em 0 .3em}
.sub{color:#555;margin:.2em 0} .meta{color:#777;font-size:.9em;margin:.2em 0 1em}
.summary{font-size:1.15em;padding:.6em .9em;border:1px solid #ddd;border-radius:6px;background:#fafafa}
.banner{padding:.6em .9em;border-radius:6px;margin:.6em 0;background:#fdecea;border:1px solid #f5c2bd;color:#8a1c12}
.ok{color:#17803d;font-weight:600} .bad{color:#b42318;font-weight:600} .na{color:#a15c07;font-weight:600}
.figs{display:flex;flex-wrap:wrap;gap:1em} figure{margin:0;flex:1 1 100%;min-width:0}
figure img{max-width:100%;height:auto;border:1px solid #eee} figcaption{color:#666;font-size:.85em}
.scroll{width:fit-content;max-width:100%;overflow:auto;max-height:32em;border:1px solid #eee;margin:.4em 0}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ddd;padding:3px 7px;vertical-align:top}
th{background:#f5f5f5;text-align:left;position:sticky;top:0} .word{white-space:nowrap} .num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.claim{border:1px solid #e3e3e3;border-radius:6px;margin:.7em 0;padding:.45em .8em}
.claim>summary{cursor:pointer} .claim .paper{font-weight:600} .counts{color:#555;font-size:.9em;margin-left:.5em}
.stmt{font-family:'STIX Two Math','Cambria Math','Latin Modern Math','DejaVu Serif',Georgia,serif;font-size:1.05em;margin:.35em 0 .5em}
.stmt sub,.stmt sup{font-size:.72em;line-height:0}
.bigop{display:inline-flex;align-items:center;font-size:1.2em}.lim{display:inline-flex;flex-direction:column;font-size:.55em;line-height:1.05;margin:0 .1em}
.rad{border-top:1px solid currentColor;padding-top:.05em}
.tag{display:inline-block;border:1px solid #d0d0d0;border-radius:3px;padding:0 4px;font-size:.85em;background:#f6f6f6;cursor:help}
.note{color:#666;font-size:.88em}
pre{background:#f7f7f7;padding:.8em;overflow:auto;max-height:30em;font-size:.85em;white-space:pre-wrap;overflow-wrap:anywhere}
code{background:#f3f3f3;padding:0 3px}
@media print{.scroll,pre{max-height:none;overflow:visible} details.claim{break-inside:avoid} th{position:static}}
"""

# the margin's definition lives with the Verdict (gnndyn.theory.verdict.Verdict); this page writes nan as —
MARGIN_NOTE = _verdict.MARGIN_NOTE.replace("nan:", "— (nan):")


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.4g}"
    if v is None:
        return "—"
    return html.escape(str(v))


def _category(c: dict[str, Any]) -> str:
    """``holds``, ``violated``, ``outside`` (an assumption failed: the statement promises nothing here) or
    ``diverged`` (computed on a series whose training diverged: not assessed)."""
    if (c.get("details") or {}).get("diverged"):
        return "diverged"
    if not c.get("applicable", True):
        return "outside"
    return "holds" if c.get("holds") else "violated"


_WORDS = {"holds": ("ok", "holds"), "violated": ("bad", "VIOLATED"), "diverged": ("na", "not assessed — training diverged")}


def _verdict_word(c: dict[str, Any]) -> str:
    cat = _category(c)
    if cat == "outside":
        what = f"bound {'holds' if c.get('holds') else 'fails'}" if _verdict.compared(c.get("margin")) else "nothing compared"
        word = f"<span class='na'>outside its assumptions</span> ({what})"
    else:
        cls, w = _WORDS[cat]
        word = f"<span class='{cls}'>{w}</span>"
    d = c.get("details") or {}
    if isinstance(d, dict) and isinstance(d.get("held"), int) and isinstance(d.get("total"), int):
        word += f" <span class='note'>({d['held']}/{d['total']} held)</span>"
    return word


def _counts(checks: list[dict[str, Any]]) -> dict[str, int]:
    out = {"holds": 0, "violated": 0, "outside": 0, "diverged": 0}
    for c in checks:
        out[_category(c)] += 1
    if not out["diverged"]:
        del out["diverged"]
    return out


def _counts_html(counts: dict[str, int]) -> str:
    words = {"holds": ("ok", "hold"), "violated": ("bad", "violated"), "outside": ("na", "outside their assumptions"),
             "diverged": ("na", "not assessed (training diverged)")}
    return " · ".join(f"<span class='{words[k][0]}'>{v} {words[k][1]}</span>" for k, v in counts.items())


def _summary(checks: list[dict[str, Any]], *, finished: bool = True) -> str:
    if not checks:
        return ("<p class='summary'>This run checks no claim.</p>" if finished else
                "<p class='summary'>No claim was checked: the run stopped before its checks.</p>")
    n = len(checks)
    return (f"<p class='summary'><b>{n} claim{'s' if n != 1 else ''} checked:</b> {_counts_html(_counts(checks))}."
            "</p>")


def _assumption_labels(checks: list[dict[str, Any]]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for c in checks:
        for k in c.get("assumptions") or {}:
            labels.setdefault(k, f"#{len(labels) + 1}")  # not A1…: papers number their own assumptions so
    return labels


def _assumptions_cell(c: dict[str, Any], labels: dict[str, str]) -> str:
    a = c.get("assumptions") or {}
    if not a:
        return "—"
    failed = [k for k, v in a.items() if not v]
    if not failed:
        return "<span class='note'>all met</span> " + " ".join(
            f"<span class='tag' title='{html.escape(k)}'>{labels[k]}</span>" for k in a)
    return "not met: " + " ".join(f"<span class='tag bad' title='{html.escape(k)}'>{labels[k]}</span>" for k in failed)


def _groups(checks: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Checks of the same claim (same citation, ``paper``), in order of first appearance."""
    order: dict[str, list[dict[str, Any]]] = {}
    for c in checks:
        order.setdefault(c.get("paper") or c.get("name", ""), []).append(c)
    return list(order.values())


def _claims(checks: list[dict[str, Any]], labels: dict[str, str], *, finished: bool = True) -> str:
    if not checks:
        return "<p>No checks for this run.</p>" if finished else "<p>None yet: the run stopped before its checks.</p>"
    parts = [f"<p class='note'>{html.escape(MARGIN_NOTE)} Assumptions are listed once, below; hover a tag for its text.</p>"]
    for group in _groups(checks):
        counts = _counts(group)
        first = group[0]
        statements = list(dict.fromkeys(c.get("statement", "") for c in group))
        papers = list(dict.fromkeys(c.get("paper", "") for c in group))
        n = len(group)
        shown = {k: v for k, v in counts.items() if v} if n > 1 else {}
        head = (f"<span class='paper'>{maths_html(papers[0])}</span>"
                + (f"<span class='counts'>{n} checks: {_counts_html(shown)}</span>" if shown else
                   f"<span class='counts'>{_verdict_word(first)}</span>"))
        is_open = " open" if n <= 8 or counts.get("violated") else ""
        parts.append(f"<details class='claim'{is_open}><summary>{head}</summary>")
        if len(statements) == 1:
            parts.append(f"<div class='stmt'>{maths_html(statements[0])}</div>")
        rows = []
        for c in group:
            extra = ""
            if len(statements) > 1:
                extra += f"<div class='stmt'>{maths_html(c.get('statement', ''))}</div>"
            if len(papers) > 1:
                extra = f"<div>{maths_html(c.get('paper', ''))}</div>" + extra
            rows.append(f"<tr><td class='word'>{_verdict_word(c)}</td><td class='num'>{_fmt(c.get('margin'))}</td>"
                        f"<td>{extra}{maths_html(str(c.get('where', '')))}</td><td>{_assumptions_cell(c, labels)}</td></tr>")
        parts.append("<div class='scroll'><table><tr><th>verdict</th><th>margin</th><th>where</th><th>assumptions</th></tr>"
                     + "".join(rows) + "</table></div></details>")
    return "".join(parts)


def _assumptions(checks: list[dict[str, Any]], labels: dict[str, str]) -> str:
    if not labels:
        return ""
    rows = []
    for k, lab in labels.items():
        uses = [c for c in checks if k in (c.get("assumptions") or {})]
        met = sum(bool(c["assumptions"][k]) for c in uses)
        cls = "ok" if met == len(uses) else "bad" if met == 0 else "na"
        rows.append(f"<tr><td><span class='tag'>{lab}</span></td><td class='stmt'>{maths_html(k)}</td>"
                    f"<td class='{cls}'>met in {met} of {len(uses)} check{'s' if len(uses) != 1 else ''}</td></tr>")
    return ("<h2>Assumptions</h2><div class='scroll'><table><tr><th></th><th>assumption</th><th>on this run</th></tr>"
            + "".join(rows) + "</table></div>")


def _figures(store: RunStore) -> str:
    figs = store.figures()
    if not figs:
        return ""
    parts = ["<h2>Figures</h2><div class='figs'>"]
    for p in figs:
        data = base64.b64encode(p.read_bytes()).decode()
        parts.append(f"<figure><img alt='figure {html.escape(p.stem.replace('_', ' '))}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(p.stem)} (SVG beside it in figures/)</figcaption></figure>")
    parts.append("</div>")
    return "".join(parts)


def _tables(store: RunStore) -> str:
    tables = store.tables()
    if not tables:
        return ""
    parts = ["<h2>Tables</h2>"]
    for name in tables:
        df = store.table(name)
        more = f" <span class='note'>(first 200 of {len(df)} rows)</span>" if len(df) > 200 else ""
        parts.append(f"<h3>{html.escape(name)}{more}</h3><div class='scroll'>")
        parts.append(df.head(200).to_html(index=False, float_format=lambda x: f"{x:.4g}", border=0, na_rep="—"))
        parts.append("</div>")
    return "".join(parts)


def _seeds_text(spec: dict[str, Any]) -> str:
    """"seed 3", or "seeds 0–4" for a run of several seeds (``seeds`` consecutive ones from ``seed``)."""
    seed, k = spec.get("seed", "—"), spec.get("seeds")
    if isinstance(k, int) and not isinstance(k, bool) and k > 1 and isinstance(seed, int):
        return f"seeds {seed}–{seed + k - 1}"
    return f"seed {seed}"


def render_report(store: RunStore) -> str:
    spec = store.spec()
    run = store.read_json("run.json") if store.path("run.json").exists() else {}
    checks = store.checks()
    title = f"gnndyn — {spec.get('experiment', 'run')}"
    parts = [(f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
              f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style></head><body>")]
    parts.append(f"<h1>{html.escape(title)}</h1>")
    why = store.incomplete(include_report=False)
    if why:
        parts.append(f"<div class='banner incomplete' role='alert'><b>INCOMPLETE RUN</b> — this folder is not a finished "
                     f"run: {html.escape(why)}.</div>")  # (each reason says what the folder holds)
    if run:
        parts.append(f"<p class='sub'>{maths_html(run.get('paper', ''))} — {maths_html(run.get('description', ''))}</p>")
        wall = run.get("wall_time_s")
        wall_s = (f"{wall:.1f} s" if isinstance(wall, (int, float)) and math.isfinite(wall) and not why
                  else "— (not finished)" if why else "—")
        status = str(run.get("status", "?"))
        status_s = f"{status} when it stopped" if why and status == "running" else status
        parts.append(f"<p class='meta'>status <b>{html.escape(status_s)}</b> · wall time {wall_s} · "
                     f"{html.escape(str(run.get('dtype')))} on {html.escape(str(run.get('device')))} · "
                     f"{html.escape(_seeds_text(spec))}</p>")
        if run.get("status") == "diverged":
            parts.append(f"<div class='banner' role='alert'><b>TRAINING DIVERGED</b> — "
                         f"{html.escape(str(run.get('error') or '').rstrip('. '))}. Verdicts on diverged series are marked "
                         "“not assessed”; figures show the values up to the divergence.</div>")
        elif run.get("status") not in (None, "ok") and (not why or run.get("status") in FINAL_STATUSES):
            # (a status that is not final is what the incomplete banner says already)
            parts.append(f"<div class='banner'>This run's status is <b>{html.escape(str(run.get('status')))}</b>: "
                         "what is shown is what was recorded.</div>")
        fig_errors = run.get("figure_errors") or {}
        if fig_errors:
            parts.append("<div class='banner'><b>Some figures could not be drawn:</b><ul>"
                         + "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>" for k, v in fig_errors.items())
                         + "</ul></div>")
        if run.get("error") and run.get("status") != "diverged":  # a divergence's message is its banner
            parts.append(f"<pre class='bad'>{html.escape(run['error'])}</pre>")
    parts.append(_summary(checks, finished=not why))
    parts.append(_figures(store))
    labels = _assumption_labels(checks)
    parts.append("<h2>Verdicts</h2>")
    parts.append(_claims(checks, labels, finished=not why))
    parts.append(_assumptions(checks, labels))
    summary = run.get("summary") or {}
    if summary:
        parts.append("<h2>Headline numbers</h2><div class='scroll'><table>")
        parts.extend(f"<tr><th>{maths_html(str(k))}</th><td>{_fmt(v)}</td></tr>" for k, v in summary.items())
        parts.append("</table></div>")
    parts.append(_tables(store))
    parts.append("<h2>Spec</h2>")
    if spec.get("experiment") == "monitor":
        parts.append("<p>Recorded by <code>gnndyn.Monitor</code> in the user's own training loop (no rerun).</p>")
    else:
        parts.append(f"<p>Re-run from the folder that holds this run with <code>gnndyn rerun "
                     f"{html.escape(store.root.name)}</code> (or give this run folder's path).</p>")
    parts.append(f"<pre>{html.escape(json.dumps(spec, indent=2))}</pre>")
    if run.get("versions"):
        parts.append("<p class='meta'>" + ", ".join(f"{html.escape(k)} {html.escape(str(v))}" for k, v in run["versions"].items()) + "</p>")
    parts.append("</body></html>")
    return "".join(parts)


def write_report(store: RunStore) -> None:
    """Write ``report.html`` in the run folder (atomically)."""
    store.write_text("report.html", render_report(store))
