"""One entry point for every graph source: ``load_graph(name, **params)``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from gnndyn.data.climate import load_us_climate
from gnndyn.data.generators import barabasi_albert, csbm, erdos_renyi, knn_ring, random_regular, sbm
from gnndyn.data.graph import Graph
from gnndyn.data.planetoid import load_planetoid
from gnndyn.errors import GnndynError, resolve


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


def load_graph(name: str, *, lcc: bool = False, **params: Any) -> Graph:
    """Build or load the graph ``name`` with ``params``; ``lcc=True`` keeps the largest component.

    Unknown parameters are an error that lists the accepted ones.
    """
    fn = resolve("dataset", name, DATASETS)
    accepted = dataset_params(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise GnndynError(
            f"dataset {name!r} does not take parameter(s) {', '.join(unknown)}; it accepts: "
            f"{', '.join(accepted) or '(none)'}."
        )
    try:
        g = fn(**params)
    except TypeError as exc:
        raise GnndynError(f"dataset {name!r}: {exc}. Accepted parameters: {', '.join(accepted)}.") from exc
    return g.largest_component() if lcc else g
