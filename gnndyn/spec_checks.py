"""Value checks the specs of several papers share (:class:`gnndyn.spec.Spec` and the experiments' validators):
a boolean given to an integer field (``--set r=true`` would silently be read as r = 1), and a probe schedule
that does not fit its run."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel


def _int_kind(annotation: Any) -> str | None:
    """``'int'`` for ``int`` (or ``int | None``), ``'list'`` for ``list[int]`` (or ``| None``), else ``None``."""
    if annotation is int:
        return "int"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list and args and args[0] is int:
        return "list"
    if origin in (typing.Union, types.UnionType):
        kinds = {_int_kind(a) for a in args if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else None
    return None


def _sub_model(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def bool_in_int_field(cls: type[BaseModel], data: Any, prefix: str = "") -> str | None:
    """The message for the first boolean given to an integer field of ``cls`` (nested sections included)."""
    if not isinstance(data, dict):
        return None
    for name, field in cls.model_fields.items():
        if name not in data:
            continue
        v, key = data[name], prefix + name
        kind = _int_kind(field.annotation)
        sub = _sub_model(field.annotation)
        if sub is not None:
            msg = bool_in_int_field(sub, v, key + ".")
            if msg:
                return msg
        elif kind == "int" and isinstance(v, bool):
            example = field.get_default(call_default_factory=True)
            return (f"{key} must be an integer, e.g. {key}={json.dumps(example)}; got the boolean "
                    f"{json.dumps(v)}, which would silently be read as {int(v)}. Give the number itself")
        elif kind == "list" and isinstance(v, (list, tuple)) and any(isinstance(x, bool) for x in v):
            i = next(i for i, x in enumerate(v) if isinstance(x, bool))
            example = field.get_default(call_default_factory=True)
            return (f"{key}[{i}] must be an integer, as every entry of {key} (e.g. {key}={json.dumps(example)}); got "
                    f"the boolean {json.dumps(v[i])} in {json.dumps(v)}. Give numbers only")
    return None


def check_schedule(every_name: str, every: int, steps_name: str, last: int, need: str, unit: str = "step") -> None:
    """Refuse a schedule (probe when t % every == 0, and always at the last step ``last``) that probes no step
    strictly between 0 and ``last``: any ``every ≥ last`` probes steps 0 and ``last`` only, whatever its value.
    A run of ≤ 2 steps (``last ≤ 1``) is probed whole by any schedule. ``need`` says what the probes inside are for."""
    if last >= 2 and every >= last:
        raise ValueError(f"{every_name}={every} does not fit the run: with {steps_name} the last {unit} is {last}, so "
                         f"only {unit}s 0 and {last} would be probed, whatever {every_name} says ({need}); give "
                         f"{every_name} ≤ {last - 1}, or raise {steps_name.split('=')[0]}")


def fit_depths(v: list[int], *, minimum: int, what: str) -> list[int]:
    """``v`` as the depths a rate is fitted over (``what`` says which): non-empty, every depth ≥ ``minimum``, at
    least two different ones; a ValueError naming ``depths`` otherwise."""
    if not v:
        raise ValueError(f"depths is empty (got []); {what} is fitted over the depths, which needs at least 2 "
                         f"different depths ≥ {minimum}, e.g. depths=[5, 10, 20]")
    bad = [L for L in v if L < minimum]
    if bad:
        raise ValueError(f"every depth must be ≥ {minimum}; got {bad[0]} in depths={v}")
    if len(set(v)) < 2:
        raise ValueError(f"depths holds a single depth (got {v}); {what} is fitted over the depths, which needs at "
                         f"least 2 different depths, e.g. depths=[5, 10, 20]")
    return v
