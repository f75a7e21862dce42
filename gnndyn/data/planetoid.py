"""Planetoid citation graphs (Cora, CiteSeer, PubMed; Yang, Cohen & Salakhutdinov 2016).

The root folder is ``data_root`` if given, else the environment variable ``GNNDYN_DATA_ROOT``, else
``~/.cache/gnndyn/planetoid``. The raw files are looked for in ``<root>/<Name>/raw/`` and then in
``<root>/planetoid/<Name>/raw/``, so one data root can hold Planetoid beside the other data sets
(``<root>/climate/`` for ``us-climate``). If one of them holds the raw files they are read in place
(nothing is written there, so a read-only copy works); otherwise they are downloaded (PyTorch
Geometric's ``download_url``, from Planetoid's own repository) into a temporary folder and moved into
``<root>/<Name>/raw/`` only once all of them read correctly, so a failed download leaves no empty
folder in the root or cache. When only PubMed's ``allx`` is missing, the graph, labels and splits are
still loaded and ``x`` is ``None`` (say so in ``meta["features"]``).

The raw files are Python pickles; they are read with :func:`gnndyn.data.safe_pickle.safe_load`, which
admits only the classes those files hold (NumPy arrays and dtypes, SciPy CSR matrices, lists and
defaultdicts) and never runs code named by a file. A truncated or damaged file raises
:class:`~gnndyn.errors.CorruptFileError` naming it. The tensors built from them are those of PyTorch
Geometric's ``read_planetoid_data`` (same float32 step, same index fixes for CiteSeer).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from gnndyn.data.graph import Graph, canonical_edge_index
from gnndyn.data.safe_pickle import safe_load
from gnndyn.errors import CorruptFileError, MachineError, Option, resolve

PLANETOID_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
RAW_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
ENV_VAR = "GNNDYN_DATA_ROOT"
URL = "https://github.com/kimiyoung/planetoid/raw/master/data"


def _fix(raw: Path) -> str:
    return (f"replace it with a fresh copy of the Planetoid raw files ({URL}), or delete {raw} so that "
            f"they are downloaded again")


def read_raw(raw: Path, prefix: str, suffix: str):
    """One raw Planetoid file as PyG's ``read_file`` returns it (float32 tensor, long index tensor, or the
    adjacency dict), read without running code; damaged files raise CorruptFileError naming them."""
    import numpy as np

    path = raw / f"ind.{prefix}.{suffix}"
    if suffix == "test.index":
        try:
            vals = [int(float(line)) for line in path.read_text().split()]
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptFileError(path, f"not a list of node indices, one per line ({exc})", _fix(raw)) from None
        return torch.tensor(vals, dtype=torch.long)
    try:
        out = safe_load(path)
    except CorruptFileError as exc:
        if type(exc) is CorruptFileError:
            raise CorruptFileError(path, exc.problem, _fix(raw)) from None
        raise
    if suffix == "graph":
        if not isinstance(out, dict) or not all(isinstance(v, list) for v in out.values()):
            raise CorruptFileError(path, f"holds a {type(out).__name__}, not the adjacency dict node → neighbours",
                                   _fix(raw))
        return out
    out = out.todense() if hasattr(out, "todense") else out
    if not isinstance(out, np.ndarray) or out.ndim != 2 or out.dtype.kind not in "biuf":
        raise CorruptFileError(path, f"holds {type(out).__name__} {getattr(out, 'shape', '')}, not a numeric matrix",
                               _fix(raw))
    return torch.from_numpy(np.asarray(out)).to(torch.float)


def read_planetoid_raw(raw: Path, prefix: str):
    """PyG's ``read_planetoid_data`` (Cora, CiteSeer, PubMed) on :func:`read_raw`: returns a ``Data``."""
    from torch_geometric.data import Data
    from torch_geometric.io.planetoid import edge_index_from_dict
    from torch_geometric.utils import index_to_mask

    x, tx, allx, y, ty, ally, graph, test_index = (read_raw(raw, prefix, s) for s in RAW_SUFFIXES)
    try:
        train_index = torch.arange(y.size(0), dtype=torch.long)
        val_index = torch.arange(y.size(0), y.size(0) + 500, dtype=torch.long)
        sorted_test_index = test_index.sort()[0]
        if prefix == "citeseer":  # isolated test nodes: zero rows, as PyG does
            len_test = int(test_index.max() - test_index.min()) + 1
            tx_ext = torch.zeros(len_test, tx.size(1), dtype=tx.dtype)
            tx_ext[sorted_test_index - test_index.min(), :] = tx
            ty_ext = torch.zeros(len_test, ty.size(1), dtype=ty.dtype)
            ty_ext[sorted_test_index - test_index.min(), :] = ty
            tx, ty = tx_ext, ty_ext
        x = torch.cat([allx, tx], dim=0)
        x[test_index] = x[sorted_test_index]
        y = torch.cat([ally, ty], dim=0).max(dim=1)[1]
        y[test_index] = y[sorted_test_index]
        data = Data(x=x, edge_index=edge_index_from_dict(graph_dict=graph, num_nodes=y.size(0)), y=y)
    except (RuntimeError, IndexError, ValueError) as exc:
        raise CorruptFileError(raw, f"the raw files of {prefix} do not fit together ({exc})", _fix(raw)) from None
    data.train_mask = index_to_mask(train_index, size=y.size(0))
    data.val_mask = index_to_mask(val_index, size=y.size(0))
    data.test_mask = index_to_mask(test_index, size=y.size(0))
    return data


def _download(root: Path, proper: str, prefix: str) -> Path:
    """Download the raw files into a temporary folder, check that they read, then move them into
    ``root/proper/raw`` (created only then). Returns that raw folder."""
    import shutil
    import tempfile

    from torch_geometric.data import download_url

    tmp = Path(tempfile.mkdtemp(prefix=f"gnndyn-{prefix}-"))
    try:
        for s in RAW_SUFFIXES:
            download_url(f"{URL}/ind.{prefix}.{s}", str(tmp), log=False)
        read_planetoid_raw(tmp, prefix)
        raw = root / proper / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for f in tmp.iterdir():
            shutil.move(str(f), raw / f.name)
        return raw
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the Planetoid root folder (argument, then $GNNDYN_DATA_ROOT, then the user cache)."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path.home() / ".cache" / "gnndyn" / "planetoid"


def _structure_only(raw: Path, prefix: str) -> Graph:
    """Graph, labels and splits from the raw files when ``allx`` is missing (PubMed in some copies)."""
    from torch_geometric.io.planetoid import edge_index_from_dict

    graph = read_raw(raw, prefix, "graph")
    y, ty, ally = (read_raw(raw, prefix, s) for s in ("y", "ty", "ally"))
    test_index = read_raw(raw, prefix, "test.index")
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


def locate_raw(name: str, data_root: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The raw folder of Planetoid graph ``name`` and what it holds: ``"all"`` (every raw file), ``"structure"``
    (all but PubMed's ``allx``). When neither root folder has them they are downloaded (see the module
    docstring); a failed download is a :class:`GnndynError` naming the missing files and how to fix it.
    Runs call this before they write anything, so a missing data root stops a run with nothing written."""
    proper = resolve("dataset", name, PLANETOID_NAMES)
    prefix = proper.lower()
    root = globals()["data_root"](data_root)
    raw = root / proper / "raw"
    present = {s: (raw / f"ind.{prefix}.{s}").exists() for s in RAW_SUFFIXES}
    nested = root / "planetoid" / proper / "raw"  # a data root holding planetoid/ beside climate/
    if not any(present.values()) and (nested / f"ind.{prefix}.graph").exists():
        raw = nested
        present = {s: (raw / f"ind.{prefix}.{s}").exists() for s in RAW_SUFFIXES}
    if all(present.values()):
        return raw, "all"
    if all(v for s, v in present.items() if s != "allx"):
        return raw, "structure"
    try:
        return _download(root, proper, prefix), "all"
    except CorruptFileError:
        raise
    except Exception as exc:  # network or permission problems
        missing = [f"ind.{prefix}.{s}" for s, v in present.items() if not v]
        raise MachineError(
            f"cannot load {proper}: {raw} lacks {', '.join(missing)} and the download failed ({exc}). Point ",
            Option("data_root"), f" (or ${ENV_VAR}) at a folder holding {proper}/raw/ or planetoid/{proper}/raw/."
        ) from exc


def load_planetoid(name: str, data_root: str | os.PathLike | None = None, *, lcc: bool = False) -> Graph:
    """Load a Planetoid graph as a :class:`Graph` (float64 features, class labels, public split).

    Args:
        name: ``cora``, ``citeseer`` or ``pubmed`` (any case).
        data_root: folder holding ``<Name>/raw/``; see the module docstring for the default.
        lcc: keep only the largest connected component (as Keriven does for the spectral gap).
    """
    raw, held = locate_raw(name, data_root)
    proper = resolve("dataset", name, PLANETOID_NAMES)
    prefix = proper.lower()
    meta = {"dataset": prefix, "root": proper, "features": "planetoid"}
    if held == "all":
        g = _from_pyg(read_planetoid_raw(raw, prefix))
    else:
        g = _structure_only(raw, prefix)
        meta["features"] = f"missing: ind.{prefix}.allx is not in {raw}; x is None"
    g = g.with_(name=prefix, meta=meta)
    if lcc:
        g = g.largest_component()
    return g
