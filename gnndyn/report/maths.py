"""Statements' plain-text mathematics as HTML: sub- and superscripts, stacked limits, radicals.

The verdicts state their bounds in Unicode with TeX-like scripts (``Σ_{ℓ=k}^{L−1} λ^{2ℓ+1−k}``,
``s^(k+1:ℓ+1)``, ``σ²_min(X(S^H)_{*I})``, ``λ_T``). :func:`maths_html` turns them into escaped HTML that
any browser renders offline: ``_{…}``/``^{…}`` become ``<sub>``/``<sup>`` (nested), ``^(…)``/``_(…)`` a
script with its parentheses, an underscore between two lowercase words a name's (``spectral_gap``), ``_x``/``^x`` a script of one character, number or lowercase word (``_min``), ``Σ``/``∏`` followed by scripts
a big operator with stacked limits, ``√(…)`` a radical with a bar over its argument.
"""

from __future__ import annotations

import html
import re

_BIG = "Σ∑∏Π"
# a script without braces: a lowercase word (min, max, small), a number, or one character (T, ρ, 𝓛, *, ′)
# (a word is not taken when a letter or digit follows it — ``_maxX`` is not ``_max`` — but a superscript or a
# subscript character may: ``d_max²``)
_WORD = re.compile(r"[−-]?(?:[a-z]{2,}(?![^\W_\u00b2\u00b3\u00b9\u2070-\u209f])|[0-9]+|[^\s(){}\[\],;:.=+<>≤≥/·|‖])")
#: an underscore joining two lowercase words of two letters or more is part of a name (``spectral_gap``,
#: ``grad_norm``), not a script
_NAME_JOIN = re.compile(r"[a-z]{2,}_(?=[a-z]{2,})")
_CLOSE = {"{": "}", "(": ")"}


def _group(text: str, i: int) -> tuple[str, int] | None:
    """The balanced group opened at ``text[i]`` (``{`` or ``(``): (its inside, index after it)."""
    open_, close, depth = text[i], _CLOSE[text[i]], 0
    for j in range(i, len(text)):
        if text[j] == open_:
            depth += 1
        elif text[j] == close:
            depth -= 1
            if depth == 0:
                return text[i + 1:j], j + 1
    return None


def _script(text: str, i: int) -> tuple[str, int] | None:
    """The script after the ``_``/``^`` at ``text[i]``: (HTML of its content, index after it)."""
    j = i + 1
    if j >= len(text):
        return None
    if text[j] == "{":
        g = _group(text, j)
        return (maths_html(g[0]), g[1]) if g else None
    if text[j] == "(":  # ^(k), _(i,l): a script with its parentheses
        g = _group(text, j)
        return (f"({maths_html(g[0])})", g[1]) if g else None
    m = _WORD.match(text, j)
    return (html.escape(m.group()), m.end()) if m else None


def _joins_name(text: str, i: int) -> bool:
    """Whether the ``_`` at ``text[i]`` joins two words of a name (:data:`_NAME_JOIN`)."""
    j = i
    while j > 0 and "a" <= text[j - 1] <= "z":
        j -= 1
    m = _NAME_JOIN.match(text, j)
    return bool(m and m.end() == i + 1 and (j == 0 or not text[j - 1].isalnum()))


def maths_html(text: str) -> str:
    """Escaped HTML of ``text`` with its scripts, big operators and radicals typeset (see module doc)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c in _BIG and i + 1 < len(text) and text[i + 1] in "_^":
            lims = {"_": "", "^": ""}
            j = i + 1
            while j < len(text) and text[j] in "_^" and not lims[text[j]]:
                s = _script(text, j)
                if s is None:
                    break
                lims[text[j]], j = s[0], s[1]
            if j > i + 1:
                out.append(f"<span class='bigop'>{html.escape(c)}<span class='lim'><span>{lims['^'] or '&nbsp;'}</span>"
                           f"<span>{lims['_'] or '&nbsp;'}</span></span></span>")
                i = j
                continue
        if c == "_" and _joins_name(text, i):
            out.append("_")
            i += 1
            continue
        if c in "_^" and i > 0 and not text[i - 1].isspace():
            s = _script(text, i)
            if s is not None:
                tag = "sub" if c == "_" else "sup"
                out.append(f"<{tag}>{s[0]}</{tag}>")
                i = s[1]
                continue
        if c == "√" and i + 1 < len(text) and text[i + 1] == "(":
            g = _group(text, i + 1)
            if g is not None:
                out.append(f"√<span class='rad'>{maths_html(g[0])}</span>")
                i = g[1]
                continue
        out.append(html.escape(c))
        i += 1
    return "".join(out)
