"""Specs: frozen, validated descriptions of a run (pydantic), and ``--set key=value`` overrides.

Every run is fully described by its spec; ``spec.json`` in the run folder re-creates it. Nested keys
are dotted: ``--set model.depth=20 --set graph.n=500 --set train.lr=0.05``. Values are read as JSON
when they parse (numbers, ``true``, ``null``, lists) and as strings otherwise; a field that holds a string
keeps the text as given (``--set nodes=100`` sets the string ``"100"``). An unknown key is an
error that lists the valid ones. ``graph`` and ``operator`` take the parameters of the chosen dataset
or operator (``graph.n``, ``graph.p_in``, ``operator.d_max``...); changing ``graph.name`` starts
that section again from the new dataset's defaults. A section given whole as a JSON object
(``--set 'model={"depth": 3, "width": 8}'``) sets the keys it names and keeps the experiment's values of
the others, as the dotted keys would; a field that is a plain mapping (``--set 'optimizers={"adam": 0.01}'``)
is replaced whole, and a dotted key below it changes one entry (``--set horizons.sl-adj=1.0``).

Validation happens before anything is written: every number in a spec must be finite (NaN or ±inf in
any field, generator parameter or learning rate is refused with the field named), generator
parameters are checked against the generator's signature types and its own range checks without
sampling anything (``graph.n=abc`` or ``graph.p_in=1.7`` fail here, not in the run), names of
losses and activations are resolved, and experiments state their cross-field constraints
(``early_steps ≤ steps``...). :func:`preflight` adds what depends on the machine (the device).
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Collection
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gnndyn.data.graph import Graph
from gnndyn.data.registry import DATASETS, check_graph_params, dataset_params, load_graph
from gnndyn.errors import GnndynError, resolve
from gnndyn.models.activations import ACTIVATIONS
from gnndyn.models.losses import LOSSES
from gnndyn.operators.base import Operator
from gnndyn.operators.builders import OPERATORS, build_operator
from gnndyn.training.optimizers import OPTIMIZERS


def non_finite(value: Any, path: str = "") -> str | None:
    """The dotted path of the first NaN or infinite number inside ``value`` (dicts, lists), or ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "(value)"
    if isinstance(value, BaseModel):
        value = {**{k: getattr(value, k) for k in type(value).model_fields}, **(value.model_extra or {})}
    if isinstance(value, dict):
        for k, v in value.items():
            hit = non_finite(v, f"{path}.{k}" if path else str(k))
            if hit:
                return hit
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            hit = non_finite(v, f"{path}[{i}]")
            if hit:
                return hit
    return None


class Spec(BaseModel):
    """Base of every spec: frozen, unknown fields forbidden, every number finite."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="after")
    def _finite(self) -> "Spec":
        values = {**{k: getattr(self, k) for k in type(self).model_fields}, **(self.model_extra or {})}
        for k, v in values.items():
            if isinstance(v, Spec):
                continue  # validated on its own
            hit = non_finite(v, k)
            if hit:
                raise ValueError(f"{hit} must be a finite number; got {_value_at(values, hit)!r}. NaN and infinity "
                                 f"are not accepted anywhere in a spec")
        return self


def _value_at(values: dict[str, Any], path: str) -> Any:
    cur: Any = values
    for part in path.replace("]", "").replace("[", ".").split("."):
        cur = cur[int(part)] if isinstance(cur, (list, tuple)) else cur[part]
    return cur


def _extra_params(model: BaseModel) -> dict[str, Any]:
    return dict(model.model_extra or {})


class GraphSpec(Spec):
    """Which graph: a dataset or generator name, ``lcc``, and the generator's own parameters as extra
    fields (e.g. ``n``, ``p_in``, ``avg_degree``, ``seed``); loaders take ``data_root`` from the run."""

    model_config = ConfigDict(frozen=True, extra="allow")
    name: str = "csbm"
    lcc: bool = False

    @model_validator(mode="after")
    def _check(self) -> "GraphSpec":
        resolve("dataset", self.name, DATASETS)
        accepted = set(dataset_params(self.name)) - {"data_root"}
        unknown = sorted(set(_extra_params(self)) - accepted)
        if unknown:
            raise ValueError(f"dataset {self.name!r} does not take {', '.join(unknown)}; it accepts: "
                             f"{', '.join(sorted(accepted)) or '(none: it is read from the data root)'}")
        try:
            check_graph_params(self.name, self.params)
        except GnndynError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def params(self) -> dict[str, Any]:
        return _extra_params(self)

    def build(self, data_root: str | None = None, seed: int | None = None) -> Graph:
        """Load or generate the graph. A generator without an explicit ``seed`` gets the run's seed."""
        params = dict(self.params)
        accepted = dataset_params(self.name)
        if "data_root" in accepted:
            params["data_root"] = data_root
        if "seed" in accepted and "seed" not in params and seed is not None:
            params["seed"] = seed
        return load_graph(self.name, lcc=self.lcc, **params)


class OperatorSpec(Spec):
    """Which propagation operator, with its parameters as extra fields (``d_max`` of ``gossip``...)."""

    model_config = ConfigDict(frozen=True, extra="allow")
    name: str = "gossip"

    @model_validator(mode="after")
    def _check(self) -> "OperatorSpec":
        fn = resolve("operator", self.name, OPERATORS)
        accepted = set(list(inspect.signature(fn).parameters)[1:])
        unknown = sorted(set(_extra_params(self)) - accepted)
        if unknown:
            raise ValueError(f"operator {self.name!r} does not take {', '.join(unknown)}; it accepts: {', '.join(sorted(accepted)) or '(none)'}")
        return self

    def build(self, graph: Graph) -> Operator:
        return build_operator(self.name, graph, **_extra_params(self))


class ModelSpec(Spec):
    """Keriven's deep GNN (eq. 1): depth L, hidden width, activation, initialization."""

    depth: int = Field(40, ge=0)
    width: int = Field(64, gt=0)
    activation: str = "tanh"
    init: Literal["glorot", "normal", "orthogonal"] = "glorot"
    init_scale: float = Field(1.0, gt=0)

    @field_validator("activation")
    @classmethod
    def _act(cls, v: str) -> str:
        resolve("activation", v, ACTIVATIONS)
        return v


class TrainSpec(Spec):
    """Training rule: optimizer, learning rate, number of steps, loss."""

    optimizer: str = "gd"
    lr: float = Field(0.1, gt=0)
    steps: int = Field(100, ge=0)
    loss: str = "cross-entropy"

    @field_validator("optimizer", "loss")
    @classmethod
    def _registered(cls, v: str, info) -> str:
        resolve(info.field_name, v, OPTIMIZERS if info.field_name == "optimizer" else LOSSES)
        return v


class ExperimentSpec(Spec):
    """Fields every experiment has."""

    experiment: str
    seed: int = Field(0, ge=0)
    device: str = "cpu"
    dtype: Literal["float64", "float32"] = "float64"
    data_root: str | None = None
    divergence_factor: float | None = Field(
        1e6, gt=1, description="a loss above this factor × its initial value stops training as diverged (null: only "
                               "non-finite values do)")

    #: Fields that hold names, checked when the spec is built: field → (kind, the valid names). A string field
    #: must be one of them, a list field holds only them (case and ``-``/``_`` as :func:`gnndyn.errors.resolve`
    #: reads them). A field of kind ``dataset`` is also a data set the run reads: :func:`preflight` makes sure it
    #: is there before anything is written. Subclasses extend the table (``{**Parent.name_fields, ...}``).
    name_fields: ClassVar[dict[str, tuple[str, Collection[str]]]] = {}
    #: whether the run trains on node features: :func:`preflight` then refuses a stored data set without them
    needs_features: ClassVar[bool] = False

    @model_validator(mode="after")
    def _names(self) -> "ExperimentSpec":
        """Top-level ``loss`` / ``activation`` given as free strings must name a registered one, and so must
        every field of :attr:`name_fields`; the error names the field, the value and the valid names."""
        table = dict(self.name_fields)
        for field_name, names in (("loss", LOSSES), ("activation", ACTIVATIONS)):
            f = type(self).model_fields.get(field_name)
            if f is not None and f.annotation is str and field_name not in table:
                table[field_name] = (field_name, names)
        for field_name, (kind, names) in table.items():
            value = getattr(self, field_name, None)
            if value is None:
                continue
            items = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else []
            if isinstance(value, (list, tuple)) and not items:
                raise ValueError(f"{field_name} is empty; give at least one {kind} (valid: {', '.join(sorted(names))})")
            for i, v in enumerate(items):
                where = field_name if isinstance(value, str) else f"{field_name}[{i}]"
                try:
                    resolve(kind, str(v), {n: n for n in names})
                except GnndynError as exc:
                    raise ValueError(f"{where}: {exc}") from None
        return self

    def datasets_used(self) -> list[str]:
        """The data sets the run reads: ``name_fields`` of kind ``dataset`` and the ``name`` of every
        :class:`GraphSpec` field."""
        out: list[str] = []
        for field_name, (kind, _) in self.name_fields.items():
            v = getattr(self, field_name, None)
            if kind == "dataset" and v is not None:
                out.extend([v] if isinstance(v, str) else list(v))
        for field_name in type(self).model_fields:
            v = getattr(self, field_name)
            if isinstance(v, GraphSpec):
                out.append(v.name)
        return list(dict.fromkeys(str(n) for n in out))

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v != "cpu" and not v.startswith("cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda[:i]'; got {v!r}")
        return v

    @property
    def torch_dtype(self) -> torch.dtype:
        return torch.float64 if self.dtype == "float64" else torch.float32

    @property
    def torch_device(self) -> torch.device:
        if self.device.startswith("cuda"):
            if not torch.cuda.is_available():
                raise GnndynError(f"device {self.device!r} was asked for but CUDA is not available here; use --device cpu.")
            try:
                dev = torch.device(self.device)
            except RuntimeError as exc:
                raise GnndynError(f"device {self.device!r} is not a valid device name ({exc}); use cuda or cuda:0.") from None
            if dev.index is not None and dev.index >= torch.cuda.device_count():
                raise GnndynError(f"device {self.device!r} does not exist: this machine has {torch.cuda.device_count()} "
                                  f"CUDA device(s) (cuda:0 … cuda:{torch.cuda.device_count() - 1}).")
            return dev
        return torch.device(self.device)


def preflight(spec: ExperimentSpec, *, data: bool = True) -> None:
    """What can only be checked on this machine, before a run writes anything: the device exists and every
    stored data set the run reads is there (Planetoid's raw files found or downloaded, the climate folder
    complete; ``data=False`` skips this). Everything else was validated when the spec was built."""
    spec.torch_device  # noqa: B018  (raises GnndynError when unavailable)
    if data:
        from gnndyn.data.registry import ensure_dataset

        for name in spec.datasets_used():
            ensure_dataset(name, spec.data_root, features=spec.needs_features)


# ---------------------------------------------------------------------------------------------- overrides
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
            lines.append(f"{loc}: {msg}{given_s}" if loc else f"{msg}{given_s}")
        raise GnndynError("invalid spec:\n  " + "\n  ".join(lines)) from None


def _key_hint(cls: type[BaseModel], loc: list[str]) -> str:
    """``; did you mean 'x'? valid keys here: ...`` for an unknown key at ``loc`` of a spec of class ``cls``."""
    import difflib

    section = _sub_spec_class(cls, loc[:-1]) if len(loc) > 1 else cls
    if section is None:
        return ""
    keys = sorted(section.model_fields)
    close = difflib.get_close_matches(loc[-1], keys, n=1)
    return (f"; did you mean {close[0]!r}?" if close else "") + f" Valid keys here: {', '.join(keys)}"
