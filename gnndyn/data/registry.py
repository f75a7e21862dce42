"""One entry point for every graph source: ``load_graph(name, **params)``."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from gnndyn.data import generators
from gnndyn.data.climate import load_us_climate
from gnndyn.data.generators import (
    barabasi_albert,
    csbm,
    erdos_renyi,
    knn_ring,
    random_regular,
    sbm,
)
from gnndyn.data.graph import Graph
from gnndyn.data.planetoid import PLANETOID_NAMES, load_planetoid
from gnndyn.errors import GnndynError, MachineError, Option, resolve


def _planetoid(name: str) -> Callable[..., Graph]:
    def load(data_root: str | None = None) -> Graph:
        return load_planetoid(name, data_root)

    load.__doc__ = f"Planetoid {name} (public split), read from data_root or downloaded by PyG."
    return load


#: name -> function(**params) -> Graph. Generators take ``seed``; loaders take ``data_root``.
DATASETS: dict[str, Callable[..., Graph]] = {
    "cora": _planetoid("cora"),
    "citeseer": _planetoid("citeseer"),
    "pubmed": _planetoid("pubmed"),
    "csbm": csbm,
    "sbm": sbm,
    "erdos-renyi": erdos_renyi,
    "random-regular": random_regular,
    "knn-ring": knn_ring,
    "barabasi-albert": barabasi_albert,
    "us-climate": load_us_climate,
}


def dataset_params(name: str) -> dict[str, Any]:
    """The parameters a dataset accepts, with their defaults (``inspect.Parameter.empty`` if required)."""
    fn = resolve("dataset", name, DATASETS)
    return {k: p.default for k, p in inspect.signature(fn).parameters.items()}


def _typed_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` checked against (and converted to) the types of the dataset function's signature:
    ``n="abc"`` is an error naming ``n`` and its type, ``n="100"`` becomes 100."""
    fn = resolve("dataset", name, DATASETS)
    accepted = dataset_params(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise GnndynError(
            f"dataset {name!r} does not take parameter(s) {', '.join(unknown)}; it accepts: "
            f"{', '.join(accepted) or '(none)'}."
        )
    hints = typing.get_type_hints(fn)  # resolved in the function's own module
    out = {}
    for k, v in params.items():
        hint = hints.get(k)
        if hint is None or v is None:
            out[k] = v
            continue
        try:
            out[k] = TypeAdapter(hint, config=ConfigDict(arbitrary_types_allowed=True)).validate_python(v)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            raise GnndynError(f"dataset {name!r}: parameter {k} must be {_type_name(hint)}; got {v!r} ({msg}).") from None
        if isinstance(v, (list, tuple)) and not isinstance(out[k], (list, tuple)):
            out[k] = v  # keep the caller's list where the hint also admits arrays
    return out


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def check_graph_params(name: str, params: dict[str, Any]) -> None:
    """Validate a dataset's parameters without building anything: types, then the generator's own range
    checks (``p_in`` in [0, 1]...), which run up to the point where sampling would start. Loaders of
    stored data sets are only type-checked here, and so are parameter sets that lack a required value
    (an experiment may complete them; the build then checks them)."""
    typed = _typed_params(name, params)
    fn = resolve("dataset", name, DATASETS)
    accepted = dataset_params(name)
    if "seed" not in accepted:
        return
    if any(default is inspect.Parameter.empty and k not in typed for k, default in accepted.items()):
        return  # incomplete: the experiment fills in the rest, and the build checks it
    with generators.dry_run():
        try:
            fn(**typed)
        except (generators.Validated, generators.MissingParameterError):
            pass
        except TypeError as exc:
            raise GnndynError(f"dataset {name!r}: {exc}.") from None


#: node counts of the Planetoid graphs (as stored and as PyG gives them; tests/test_data.py checks cora and
#: citeseer); only these have a public training split (``nodes='train'``)
PLANETOID_NODES = {"cora": 2708, "citeseer": 3327, "pubmed": 19717}


def known_num_nodes(name: str, params: dict[str, Any] | None = None, lcc: bool = False) -> int | None:
    """The number of nodes of dataset ``name`` with ``params`` when it is known without loading or sampling
    anything: Planetoid's fixed sizes, a generator's ``n`` (given or its default) or the sum of its
    ``block_sizes``; ``None`` otherwise (``lcc=True``: the largest component depends on the sample)."""
    if lcc:
        return None
    key = str(name).lower().replace("_", "-")
    if key in PLANETOID_NODES:
        return PLANETOID_NODES[key]
    try:
        accepted = dataset_params(name)
    except GnndynError:
        return None
    params = params or {}
    if "n" in accepted:
        n = params.get("n", accepted["n"])
        return n if isinstance(n, int) and not isinstance(n, bool) else None
    sizes = params.get("block_sizes")
    if isinstance(sizes, (list, tuple)) and all(isinstance(b, int) and not isinstance(b, bool) for b in sizes):
        return int(sum(sizes))
    return None


def has_public_split(name: str) -> bool:
    """Whether dataset ``name`` comes with a public training split (the Planetoid graphs only)."""
    return str(name).lower().replace("_", "-") in PLANETOID_NODES


#: what each data set gives besides its graph: node features and labels (``"features"`` only with a
#: positive ``feature_dim`` where the generator takes one and its default is 0)
PROVIDES = {"cora": ("features", "labels"), "citeseer": ("features", "labels"), "pubmed": ("features", "labels"),
            "us-climate": ("features", "labels"), "csbm": ("features", "labels"), "sbm": ("features", "labels"),
            "erdos-renyi": ("features",), "knn-ring": ("features",), "barabasi-albert": ("features",),
            "random-regular": ()}


def provides(name: str, params: dict[str, Any] | None = None) -> set[str]:
    """What dataset ``name`` with ``params`` gives besides the graph (:data:`PROVIDES`): ``features`` when it
    has them (a generator's ``feature_dim``, given or by default, must be > 0), ``labels`` when it has labels."""
    key = str(name).lower().replace("_", "-")
    out = set(PROVIDES.get(key, ()))
    accepted = dataset_params(name) if key in DATASETS else {}
    if "features" in out and "feature_dim" in accepted:
        dim = (params or {}).get("feature_dim", accepted["feature_dim"])
        if not (isinstance(dim, int) and dim > 0):
            out.discard("features")
    return out


#: the data sets read from a data root (the others are generated)
STORED_DATASETS = (*PLANETOID_NAMES, "us-climate")


def ensure_dataset(name: str, data_root: str | None = None, *, features: bool = False) -> None:
    """Make sure a stored data set can be read before a run writes anything: Planetoid's raw files are found
    (or downloaded), the climate folder holds its six files; a generator needs nothing. With ``features``, a
    Planetoid copy without its feature file (``allx``: the graph and labels only) is refused too. Raises a
    :class:`GnndynError` that says where it looked and how to point ``--data-root`` at the data."""
    from gnndyn.data.climate import find_climate_dir
    from gnndyn.data.planetoid import locate_raw

    resolve("dataset", name, DATASETS)
    key = str(name).lower().replace("_", "-")
    if key in PLANETOID_NAMES:
        raw, held = locate_raw(key, data_root)
        if features and held != "all":
            raise MachineError(
                f"{PLANETOID_NAMES[key]} in {raw} has no node features (ind.{key}.allx is missing: the graph and "
                f"labels only), and this experiment trains on features. Add ind.{key}.allx to that folder, point ",
                Option("data_root"), " at a complete copy, or choose another dataset.")
    elif key == "us-climate":
        find_climate_dir(data_root)


def load_graph(name: str, *, lcc: bool = False, **params: Any) -> Graph:
    """Build or load the graph ``name`` with ``params``; ``lcc=True`` keeps the largest component.

    Unknown parameters are an error that lists the accepted ones; values of the wrong type are an error
    naming the parameter and its type.
    """
    fn = resolve("dataset", name, DATASETS)
    accepted = dataset_params(name)
    params = _typed_params(name, params)
    try:
        g = fn(**params)
    except TypeError as exc:
        raise GnndynError(f"dataset {name!r}: {exc}. Accepted parameters: {', '.join(accepted)}.") from exc
    return g.largest_component() if lcc else g
