"""Spec-build checks shared by the Patel et al. experiments (arXiv 2501.14440).

Each raises ``ValueError`` (pydantic turns it into one readable error, see :func:`gnndyn.spec.validate_spec`) whose
message names the field, the value given, what is expected and how to fix it, so that bad input is refused before a
run folder is written. Used by the spec classes' validators in :mod:`.common`, :mod:`.sweep`, :mod:`.fig2`,
:mod:`.fig8` and :mod:`.sections_common`; nothing here samples a graph or reads data.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from pydantic import BaseModel

from gnndyn.errors import GnndynError, resolve


def canonical(name: Any, names: Collection[str]) -> Any:
    """``name`` spelt as in ``names`` when it resolves to one of them (case, ``-``/``_`` as
    :func:`gnndyn.errors.resolve` reads them), else unchanged (the name check then reports it)."""
    if not isinstance(name, str):
        return name
    try:
        return resolve("name", name, {n: n for n in names})
    except GnndynError:
        return name


def canonical_copy(spec: BaseModel, table: dict[str, tuple[str, Collection[str]]],
                   keyed: dict[str, Collection[str]]) -> Any:
    """A copy of ``spec`` (not validated again) with every name of ``table`` (field → (kind, names), as
    ``name_fields``) and every key of the dict fields of ``keyed`` (field → names) in its canonical spelling."""
    update: dict[str, Any] = {}
    for field, (_, names) in table.items():
        v = getattr(spec, field, None)
        if isinstance(v, str):
            update[field] = canonical(v, names)
        elif isinstance(v, (list, tuple)):
            update[field] = [canonical(x, names) for x in v]
    for field, names in keyed.items():
        v = getattr(spec, field, None)
        if isinstance(v, dict):
            update[field] = {canonical(k, names): x for k, x in v.items()}
    return spec.model_copy(update=update)


def _fmt(v: Any) -> str:
    """A value as ``--set`` takes it: 0.001 as 0.001, a string quoted, None as null."""
    return "null" if v is None else f"{v:g}" if isinstance(v, float) else repr(v) if isinstance(v, str) else str(v)


def values(field: str, vals: Sequence[Any], what: str, example: str, *, positive: bool = False,
           low: int | None = None, high: int | None = None, high_name: str = "", range_hint: str = "",
           why_distinct: str = "") -> None:
    """``vals`` is a non-empty list of distinct values; with ``positive`` each is > 0, with ``low``/``high`` each lies
    in [low, high] (``range_hint`` says why and how to fix it). ``what`` names one value (``"step-size factor"``),
    ``example`` is a value of the whole list; ``why_distinct`` says what a repeat would do."""
    if not vals:
        raise ValueError(f"{field} is empty; give at least one {what} (e.g. --set '{field}={example}')")
    for i, v in enumerate(vals):
        if positive and not v > 0:
            raise ValueError(f"{field}[{i}] = {_fmt(v)}: every {what} must be > 0 (e.g. --set '{field}={example}')")
        if (low is not None and v < low) or (high is not None and v > high):
            raise ValueError(f"{field}[{i}] = {_fmt(v)}: every {what} must lie between {low} and "
                             f"{f'{high_name} = ' if high_name else ''}{high}{range_hint}")
    seen, dup = set(), []
    for v in vals:
        if v in seen and v not in dup:
            dup.append(v)
        seen.add(v)
    if dup:
        why = why_distinct or f"each {what} is one run, so a repeat records the same series twice"
        raise ValueError(f"{field} = {list(vals)} repeats {', '.join(map(_fmt, dup))}: {why}; give distinct values")


def known_keys(field: str, mapping: dict[str, Any], kind: str, names: Collection[str], *, positive: bool = False,
               what: str = "value") -> None:
    """Every key of ``mapping`` is one of ``names`` (the error lists them); with ``positive`` every value is > 0."""
    seen: dict[str, str] = {}
    for k, v in mapping.items():
        try:
            name = resolve(kind, str(k), {n: n for n in names})
        except GnndynError as exc:
            raise ValueError(f"{field}[{k!r}]: {exc}") from None
        if name in seen:
            raise ValueError(f"{field} names the {kind} {name!r} twice, as {seen[name]!r} and {k!r}; give it once")
        seen[name] = k
        if positive and not v > 0:
            raise ValueError(f"{field}[{k!r}] = {_fmt(v)}: {what} must be > 0")


def labelled_count(field: str, fraction: float, n: int, n_name: str = "n", fix: str = "") -> int:
    """n̄ = round(fraction · n), the size of the labelled set the run draws: at least 1."""
    nbar = round(fraction * n)
    if nbar < 1:
        raise ValueError(f"{field} × {n_name} = {fraction:g} × {n} = {fraction * n:.3g} gives no labelled node "
                         f"(n̄ = round({field} · {n_name}) = {nbar}); {fix or f'raise {field} or {n_name}'}")
    return nbar


def unused(spec: BaseModel, fields: Sequence[str], why: str) -> None:
    """Each of ``fields`` is at its default: the run does not read it ``why``; a value given for it would be
    silently ignored."""
    cls = type(spec)
    for f in fields:
        default = cls.model_fields[f].get_default(call_default_factory=True)
        v = getattr(spec, f)
        if v != default:
            raise ValueError(f"{f} = {_fmt(v)} is not used {why}; leave {f} out (its default is {_fmt(default)})")


__all__ = ["canonical", "canonical_copy", "known_keys", "labelled_count", "unused", "values"]
