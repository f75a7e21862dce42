"""Planetoid citation graphs (Cora, CiteSeer, PubMed; Yang, Cohen & Salakhutdinov 2016).

The root folder is ``data_root`` if given, else the environment variable ``GNNDYN_DATA_ROOT``, else
``~/.cache/gnndyn/planetoid``. If ``<root>/<Name>/raw/`` holds the raw files they are read in place
(nothing is written there, so a read-only copy works); otherwise PyTorch Geometric's ``Planetoid``
downloads them into ``<root>`` as usual. When only PubMed's ``allx`` is missing, the graph, labels
and splits are still loaded and ``x`` is ``None`` (say so in ``meta["features"]``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from gnndyn.data.graph import Graph, canonical_edge_index
from gnndyn.errors import GnndynError, resolve

PLANETOID_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
RAW_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
ENV_VAR = "GNNDYN_DATA_ROOT"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the Planetoid root folder (argument, then $GNNDYN_DATA_ROOT, then the user cache)."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path.home() / ".cache" / "gnndyn" / "planetoid"


def _structure_only(raw: Path, prefix: str) -> Graph:
    """Graph, labels and splits from the raw files when ``allx`` is missing (PubMed in some copies)."""
    from torch_geometric.io.planetoid import edge_index_from_dict, read_file

    graph = read_file(str(raw), prefix, "graph")
    y, ty, ally = (read_file(str(raw), prefix, s) for s in ("y", "ty", "ally"))
    test_index = read_file(str(raw), prefix, "test.index")
    n = max(max(graph.keys()), max(v for vs in graph.values() for v in vs)) + 1 if graph else 0
    n = max(n, ally.shape[0] + ty.shape[0])
    labels = torch.cat([ally, ty], 0).argmax(1)
    sorted_test = test_index.sort()[0]
    labels[test_index] = labels[sorted_test]
    ei = edge_index_from_dict(graph, num_nodes=n)
    train = torch.zeros(n, dtype=torch.bool)
    train[: y.shape[0]] = True
    val = torch.zeros(n, dtype=torch.bool)
    val[y.shape[0] : y.shape[0] + 500] = True
    test = torch.zeros(n, dtype=torch.bool)
    test[test_index] = True
    return Graph(
        edge_index=canonical_edge_index(ei, n), num_nodes=n, x=None, y=labels,
        train_mask=train, val_mask=val, test_mask=test,
    )


def _from_pyg(data) -> Graph:
    """A PyG ``Data`` object (Planetoid) as a :class:`Graph` with float64 features."""
    return Graph(
        edge_index=canonical_edge_index(data.edge_index, data.num_nodes),
        num_nodes=int(data.num_nodes),
        x=data.x.to(torch.float64),
        y=data.y,
        train_mask=data.train_mask,
        val_mask=data.val_mask,
        test_mask=data.test_mask,
    )


def load_planetoid(name: str, data_root: str | os.PathLike | None = None, *, lcc: bool = False) -> Graph:
    """Load a Planetoid graph as a :class:`Graph` (float64 features, class labels, public split).

    Args:
        name: ``cora``, ``citeseer`` or ``pubmed`` (any case).
        data_root: folder holding ``<Name>/raw/``; see the module docstring for the default.
        lcc: keep only the largest connected component (as Keriven does for the spectral gap).
    """
    proper = resolve("dataset", name, PLANETOID_NAMES)
    prefix = proper.lower()
    root = globals()["data_root"](data_root)
    raw = root / proper / "raw"
    present = {s: (raw / f"ind.{prefix}.{s}").exists() for s in RAW_SUFFIXES}
    meta = {"dataset": prefix, "root": proper, "features": "planetoid"}
    if all(present.values()):
        from torch_geometric.io.planetoid import read_planetoid_data

        g = _from_pyg(read_planetoid_data(str(raw), prefix))
    elif all(v for s, v in present.items() if s != "allx"):
        g = _structure_only(raw, prefix)
        meta["features"] = f"missing: ind.{prefix}.allx is not in {raw}; x is None"
    else:
        try:
            from torch_geometric.datasets import Planetoid

            ds = Planetoid(str(root), proper)
        except Exception as exc:  # network or permission problems
            missing = [f"ind.{prefix}.{s}" for s, v in present.items() if not v]
            raise GnndynError(
                f"cannot load {proper}: {raw} lacks {', '.join(missing)} and the download failed ({exc}). "
                f"Point --data-root (or ${ENV_VAR}) at a folder holding {proper}/raw/."
            ) from exc
        g = _from_pyg(ds[0])
    g = g.with_(name=prefix, meta=meta)
    if lcc:
        g = g.largest_component()
    return g
