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
losses, activations and every field of ``name_fields`` are resolved, no integer field takes a boolean, and
experiments state their cross-field constraints (``early_steps ≤ steps``...). :func:`preflight` adds what
depends on the machine (the device, the data sets the run reads). The overrides and the readable errors live
in :mod:`gnndyn.spec_overrides` (their names are importable from here).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Collection
from typing import Any, ClassVar, Literal

import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from gnndyn.data.graph import Graph
from gnndyn.data.registry import (
    DATASETS,
    check_graph_params,
    dataset_params,
    load_graph,
)
from gnndyn.errors import GnndynError, MachineError, resolve
from gnndyn.models.activations import ACTIVATIONS
from gnndyn.models.losses import LOSSES
from gnndyn.operators.base import Operator
from gnndyn.operators.builders import OPERATORS, build_operator
from gnndyn.spec_checks import bool_in_int_field
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
    """Base of every spec: frozen, unknown fields forbidden, every number finite, no boolean in an integer
    field (pydantic would read ``true`` as 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_bool_ints(cls, data: Any) -> Any:
        msg = bool_in_int_field(cls, data)
        if msg:
            raise ValueError(msg)
        return data

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
    #: what every :class:`GraphSpec` field's data set must give besides its graph (``features``, ``labels``;
    #: :func:`gnndyn.data.registry.provides`), checked when the spec is built
    graph_needs: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _graphs_provide(self) -> "ExperimentSpec":
        from gnndyn.data.registry import provides

        for field_name in type(self).model_fields:
            g = getattr(self, field_name)
            if not isinstance(g, GraphSpec) or not self.graph_needs:
                continue
            lacking = [w for w in self.graph_needs if w not in provides(g.name, g.params)]
            if lacking:
                fix = (f"set {field_name}.feature_dim to a positive number" if lacking == ["features"]
                       and "feature_dim" in dataset_params(g.name) else
                       f"choose a {field_name}.name that gives {' and '.join(self.graph_needs)} (csbm, sbm with "
                       f"feature_dim, cora, citeseer)")
                raise ValueError(f"{field_name}.name={g.name!r} gives no node {' or '.join(lacking)} "
                                 f"(with these parameters), and this experiment needs {' and '.join(self.graph_needs)}; "
                                 f"{fix}")
        return self

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
                raise MachineError(f"device {self.device!r} was asked for but CUDA is not available here.",
                                   fix={"device": "cpu"})
            try:
                dev = torch.device(self.device)
            except RuntimeError as exc:
                raise MachineError(f"device {self.device!r} is not a valid device name ({exc}).",
                                   fix={"device": "cuda"}) from None
            if dev.index is not None and dev.index >= torch.cuda.device_count():
                raise MachineError(f"device {self.device!r} does not exist: this machine has {torch.cuda.device_count()} "
                                   f"CUDA device(s) (cuda:0 … cuda:{torch.cuda.device_count() - 1}).",
                                   fix={"device": "cuda:0"})
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


# the ``--set`` overrides and the readable validation errors (their own module; the names stay here too)
from gnndyn.spec_overrides import (  # noqa: E402,F401
    apply_overrides,
    parse_value,
    valid_keys,
    validate_spec,
)
