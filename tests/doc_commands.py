"""Extract the commands shown in README.md and docs/*.md, and rewrite them to smoke size.

Used by ``tests/test_doc_commands.py``. A command is every line of a fenced ``bash``/``sh``/``shell``
block, every line of an unlabelled fenced block that starts with a known command word, and every inline
code span that starts with ``gnndyn ``. Inline spans starting with ``--set `` are *fragments*: overrides
that must be valid for one of the experiments the page names. Spans and lines with placeholders
(``NAME``, ``<k>``, ``…``, ``a|b``) are not commands.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND_WORDS = ("gnndyn", ".venv/bin/gnndyn", "make", "python", ".venv/bin/python", "source", "bash")
_FENCE = re.compile(r"^```([A-Za-z]*)[^\n]*\n(.*?)^```", re.S | re.M)
_INLINE = re.compile(r"(?<!`)`([^`]+)`(?!`)")
_PLACEHOLDER = re.compile(r"<[a-z]+>|…|\.\.\.|\bNAME\b|\bRUN_DIR\b|\w\|\w")


@dataclass(frozen=True)
class DocCommand:
    file: str
    line: int
    text: str
    kind: str  # "command" or "fragment"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _logical_lines(block: str) -> list[tuple[int, str]]:
    """(offset of the first physical line, text) with backslash continuations joined."""
    out, buf, start = [], "", 0
    for i, line in enumerate(block.splitlines()):
        if not buf:
            start = i
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append((start, buf + line))
        buf = ""
    if buf:
        out.append((start, buf))
    return out


def _commands_of(line: str) -> list[str]:
    """The commands of a shell line: a trailing ``#`` comment dropped, split at ``&&``."""
    lex = shlex.shlex(line, posix=True)
    lex.whitespace_split, lex.commenters = True, "#"
    try:
        words = list(lex)
    except ValueError:
        return [line.strip()]
    parts, cur = [], []
    for w in words + ["&&"]:
        if w == "&&":
            if cur:
                parts.append(shlex.join(cur))
            cur = []
        else:
            cur.append(w)
    return parts


def extract(path: Path) -> list[DocCommand]:
    text = path.read_text()
    name = path.relative_to(ROOT).as_posix()
    found: list[DocCommand] = []
    spans = []
    for m in _FENCE.finditer(text):
        spans.append(m.span())
        lang, body = m.group(1).lower(), m.group(2)
        if lang not in ("", "bash", "sh", "shell", "console"):
            continue
        first_line = text.count("\n", 0, m.start(2)) + 1
        for off, line in _logical_lines(body):
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            if not line or line.startswith("#"):
                continue
            if lang == "" and line.split()[0] not in COMMAND_WORDS:
                continue  # a diagram or listing, not commands
            for part in _commands_of(line):
                found.append(DocCommand(name, first_line + off, part, "command"))
    prose = list(text)
    for a, b in spans:  # blank the fenced blocks, keeping line numbers
        prose[a:b] = [c if c == "\n" else " " for c in text[a:b]]
    prose_text = "".join(prose)
    for m in _INLINE.finditer(prose_text):
        span = " ".join(m.group(1).split())
        if _PLACEHOLDER.search(span):
            continue
        line = prose_text.count("\n", 0, m.start()) + 1
        if span.startswith("gnndyn "):
            found.append(DocCommand(name, line, span, "command"))
        elif span.startswith("--set "):
            found.append(DocCommand(name, line, span, "fragment"))
    return sorted(found, key=lambda c: (c.line, c.kind))


def experiments_named(path: Path, names) -> list[str]:
    text = path.read_text()
    return [n for n in sorted(names) if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)]


def split_run_args(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """``--set`` values (in order) and the other options of a ``gnndyn run`` argument list."""
    sets, opts, i = [], {}, 0
    while i < len(args):
        a = args[i]
        if a in ("--set", "-s"):
            sets.append(args[i + 1])
            i += 2
        elif a.startswith("--set="):
            sets.append(a.split("=", 1)[1])
            i += 1
        elif a.startswith("-"):
            if "=" in a:
                k, v = a.split("=", 1)
                opts[k] = v
                i += 1
            else:
                opts[a] = args[i + 1]
                i += 2
        else:
            raise ValueError(f"unexpected argument {a!r}")
    return sets, opts


def smoke_run_args(name: str, args: list[str], smoke: dict, out: str) -> tuple[list[str], dict]:
    """The ``gnndyn run NAME ...`` arguments at smoke size: the command's own overrides, then the
    experiment's smoke overrides (which win, except inside a section the command renamed, e.g.
    ``graph.name=cora`` keeps no smoke ``graph.*`` key), at most 2 seeds, and ``--out out``.
    Returns the argument list and the validation view ``{"sets": [...], "seed": .., "seeds": ..}``."""
    import json

    sets, opts = split_run_args(args)
    keys = [s.split("=", 1)[0].strip() for s in sets]
    renamed = {k.split(".")[0] for k in keys if k.count(".") == 1 and k.endswith(".name")}
    smoke_sets = [f"{k}={json.dumps(v)}" for k, v in smoke.items() if k.split(".")[0] not in renamed or "." not in k]
    smoke_keys = {s.split("=", 1)[0] for s in smoke_sets}
    sets = [s for s, k in zip(sets, keys) if k not in smoke_keys] + smoke_sets
    opts.pop("--out", None), opts.pop("-o", None)
    if "--seeds" in opts:
        opts["--seeds"] = str(min(int(opts["--seeds"]), 2))
    argv = ["run", name]
    for s in sets:
        argv += ["--set", s]
    for k, v in opts.items():
        argv += [k, v]
    argv += ["--out", out]
    view = {"sets": sets, "seed": opts.get("--seed"), "seeds": opts.get("--seeds")}
    return argv, view
