"""``--set key=value`` overrides of a spec (see :mod:`gnndyn.spec` for the rules) and pydantic's errors as one
readable :class:`~gnndyn.errors.GnndynError`: the key, the value given, what is valid, a suggestion."""

from __future__ import annotations

import inspect
import json
from typing import Any

from pydantic import BaseModel, ValidationError

from gnndyn.data.registry import dataset_params
from gnndyn.errors import GnndynError, resolve
from gnndyn.operators.builders import OPERATORS
from gnndyn.spec import GraphSpec, OperatorSpec, Spec


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _leaf_keys(d: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.extend(_leaf_keys(v, key + "."))
        else:
            out.append(key)
    return out


def _sub_spec_class(cls: type[BaseModel], path: list[str]) -> type[BaseModel] | None:
    cur: Any = cls
    for part in path:
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)) or part not in cur.model_fields:
            return None
        cur = cur.model_fields[part].annotation
    return cur if isinstance(cur, type) and issubclass(cur, BaseModel) else None


def _is_mapping_field(cls: type[BaseModel], path: list[str]) -> bool:
    """Whether ``path`` names a field that is a plain mapping (``horizons: dict[str, float]``): a dotted key
    below it (``horizons.sl-adj=1.0``) adds or changes one entry."""
    import typing

    if not path:
        return False
    parent = _sub_spec_class(cls, path[:-1]) if len(path) > 1 else cls
    field = parent.model_fields.get(path[-1]) if parent is not None else None
    return field is not None and typing.get_origin(field.annotation) is dict


def _accepted_extras(section_cls: type[BaseModel], section: dict[str, Any]) -> list[str]:
    if section_cls is GraphSpec:
        return sorted(set(dataset_params(section.get("name", "csbm"))) - {"data_root"})
    if section_cls is OperatorSpec:
        fn = resolve("operator", section.get("name", "gossip"), OPERATORS)
        return list(inspect.signature(fn).parameters)[1:]
    return []


def valid_keys(spec: BaseModel, d: dict[str, Any] | None = None) -> list[str]:
    """Every dotted key that ``--set`` accepts for this spec (extra parameters included); with ``d``, for the
    spec's values ``d`` (a dump being changed: after ``graph.name=cora`` the keys of cora's section)."""
    d = spec.model_dump(mode="json") if d is None else d
    keys = set(_leaf_keys(d))
    for name, field in type(spec).model_fields.items():
        sub = _sub_spec_class(type(spec), [name])
        if sub is not None and sub.model_config.get("extra") == "allow":
            keys.update(f"{name}.{k}" for k in _accepted_extras(sub, d.get(name, {})))
    return sorted(keys)


def apply_overrides(spec: Spec, overrides: list[str] | dict[str, Any]) -> Spec:
    """A new spec with ``key=value`` overrides applied and validated (see the module docstring)."""
    texts: dict[str, str] = {}  # the command-line text of each value, for fields that hold strings
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        items = []
        for o in overrides:
            if "=" not in o:
                raise GnndynError(f"--set expects key=value (e.g. model.depth=20); got {o!r}.")
            k, v = o.split("=", 1)
            items.append((k.strip(), parse_value(v.strip())))
            texts[k.strip()] = v.strip()
    d = spec.model_dump(mode="json")
    cls = type(spec)
    # a new graph/operator name restarts that section from the new defaults
    for k, v in items:
        parts = k.split(".")
        if len(parts) == 2 and parts[1] == "name":
            sub = _sub_spec_class(cls, parts[:1])
            if sub is not None and sub.model_config.get("extra") == "allow" and d.get(parts[0], {}).get("name") != v:
                keep = {"lcc": d[parts[0]]["lcc"]} if "lcc" in d.get(parts[0], {}) else {}
                d[parts[0]] = {"name": v, **keep}
    for k, v in items:
        parts = k.split(".")
        cur = d
        for i, part in enumerate(parts[:-1]):
            if not isinstance(cur.get(part), dict):
                raise GnndynError(f"unknown key {k!r}; valid keys: {', '.join(valid_keys(spec, d))}.")
            cur = cur[part]
        leaf = parts[-1]
        if leaf not in cur and not _is_mapping_field(cls, parts[:-1]):
            sub = _sub_spec_class(cls, parts[:-1]) if len(parts) > 1 else None
            extras = _accepted_extras(sub, cur) if sub is not None and sub.model_config.get("extra") == "allow" else []
            if leaf not in extras:
                allows = sub is not None and sub.model_config.get("extra") == "allow"
                hint = (f" ({parts[0]} {cur.get('name')!r} accepts: {', '.join(extras)})" if extras else
                        f" ({parts[0]} {cur.get('name')!r} takes no parameters)" if allows else "")
                raise GnndynError(f"unknown key {k!r}{hint}; valid keys: {', '.join(valid_keys(spec, d))}.")
        if isinstance(cur.get(leaf), str) and isinstance(v, (bool, int, float)) and k in texts:
            v = texts[k]  # a string field given a number on the command line (nodes=100) keeps the text
        sub = _sub_spec_class(cls, parts)
        if isinstance(v, dict) and isinstance(cur.get(leaf), dict) and sub is not None:
            # a section given whole (model={"depth": 3}) changes the keys it names and keeps the experiment's
            # others; a graph/operator section with another name starts from that name's defaults (a field
            # that is a plain mapping, such as optimizers={"adam": 0.01}, is replaced whole)
            restart = (sub is not None and sub.model_config.get("extra") == "allow" and "name" in v
                       and v["name"] != cur[leaf].get("name"))
            keep = {"lcc": cur[leaf]["lcc"]} if restart and "lcc" in cur[leaf] else {}
            v = {**keep, **v} if restart else {**cur[leaf], **v}
        cur[leaf] = v
    return validate_spec(cls, d)


def validate_spec(cls: type[Spec], data: dict[str, Any]) -> Spec:
    """``cls.model_validate(data)`` with pydantic's errors turned into one readable GnndynError."""
    try:
        return cls.model_validate(data)
    except GnndynError as exc:  # raised inside a validator (an unknown name)
        raise GnndynError(f"invalid spec: {exc}") from None
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"])
            given = e.get("input")
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                lines.append(f"{loc}: unknown key{_key_hint(cls, [str(p) for p in e['loc']])}")
                continue
            given_s = "" if isinstance(given, dict) or "got " in msg else f" (given: {given!r})"
            if loc and _names_itself(msg, loc):  # "radii is empty…" under loc radii: say it once
                parent = loc.rsplit(".", 1)[0] + "." if "." in loc else ""
                lines.append(f"{parent}{msg}{given_s}")
            else:
                lines.append(f"{loc}: {msg}{given_s}" if loc else f"{msg}{given_s}")
        raise GnndynError("invalid spec:\n  " + "\n  ".join(lines)) from None


def _names_itself(msg: str, loc: str) -> bool:
    """Whether a validator's message begins with its own field's name (``radii is empty``, ``r=1: …``)."""
    import re

    m = re.match(r"[A-Za-z_][\w.-]*", msg)
    return bool(m) and m.group(0) == loc.rsplit(".", 1)[-1]


def _key_hint(cls: type[BaseModel], loc: list[str]) -> str:
    """``; did you mean 'x'? valid keys here: ...`` for an unknown key at ``loc`` of a spec of class ``cls``."""
    import difflib

    section = _sub_spec_class(cls, loc[:-1]) if len(loc) > 1 else cls
    if section is None:
        return ""
    keys = sorted(section.model_fields)
    close = difflib.get_close_matches(loc[-1], keys, n=1)
    return (f"; did you mean {close[0]!r}?" if close else "") + f" Valid keys here: {', '.join(keys)}"
