"""Corrupt files, determinism and data files that must not run code (issue 13)."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from gnndyn.cli import app
from gnndyn.data.planetoid import load_planetoid
from gnndyn.errors import CorruptFileError, GnndynError, UnsafeFileError
from gnndyn.store.files import read_parquet

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
GNN_VS_MLP = ["--set", "graph.n=60", "--set", "graph.p_in=0.3", "--set", "graph.p_out=0.05", "--set", "depths=[1,2]"]


def _flat(text: str) -> str:
    return " ".join(text.split())


def _nows(text: str) -> str:
    """CLI output without any whitespace (rich may wrap a long path in the middle of a name)."""
    return "".join(text.split())


@pytest.fixture
def cora_copy(planetoid_root, tmp_path) -> Path:
    root = tmp_path / "planetoid"
    shutil.copytree(planetoid_root / "Cora" / "raw", root / "Cora" / "raw")
    return root


class _Payload:
    """Unpickling this would create the file ``marker`` (what a crafted Planetoid file can do)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ----------------------------------------------------------------------------------------- Planetoid
@pytest.mark.parametrize("damage", ["truncate", "random"])
def test_damaged_planetoid_file_is_one_clear_message(cora_copy, damage):
    f = cora_copy / "Cora" / "raw" / "ind.cora.graph"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 3] if damage == "truncate" else os.urandom(4096))
    with pytest.raises(CorruptFileError) as e:
        load_planetoid("cora", cora_copy)
    assert str(f) in str(e.value) and "fresh copy" in str(e.value)
    res = runner.invoke(app, ["graph-info", "cora", "--data-root", str(cora_copy)])
    out = _flat(res.output)
    assert res.exit_code == 2 and "ind.cora.graph" in _nows(out) and "Traceback" not in out and "Aborted" not in out


def test_crafted_pickle_runs_nothing_and_names_the_file_and_class(cora_copy, tmp_path):
    marker = tmp_path / "pwned"
    f = cora_copy / "Cora" / "raw" / "ind.cora.graph"
    f.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    assert b"open" in f.read_bytes()
    with pytest.raises(UnsafeFileError) as e:
        load_planetoid("cora", cora_copy)
    assert not marker.exists()
    msg = str(e.value)
    assert str(f) in msg and "io.open" in msg and "nothing in the file was run" in msg
    res = runner.invoke(app, ["graph-info", "cora", "--data-root", str(cora_copy)])
    assert res.exit_code == 2 and "io.open" in _nows(res.output) and not marker.exists()


def test_os_system_payload_is_refused_too(cora_copy, tmp_path):
    marker = tmp_path / "ran"
    f = cora_copy / "Cora" / "raw" / "ind.cora.x"
    f.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")  # protocol-0 os.system call
    with pytest.raises(UnsafeFileError, match=r"os\.system"):
        load_planetoid("cora", cora_copy)
    assert not marker.exists()


def test_restricted_loader_reads_the_real_files_exactly(planetoid_root):
    from torch_geometric.io.planetoid import read_planetoid_data

    from gnndyn.data.planetoid import read_planetoid_raw

    for name in ("Cora", "CiteSeer"):
        a = read_planetoid_data(str(planetoid_root / name / "raw"), name.lower())
        b = read_planetoid_raw(planetoid_root / name / "raw", name.lower())
        for k in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
            assert pd.Series(getattr(a, k).flatten().tolist()).equals(pd.Series(getattr(b, k).flatten().tolist())), (name, k)


def _no_network(monkeypatch):
    import torch_geometric.data as tgd

    def fail(*a, **k):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tgd, "download_url", fail)
    try:
        import torch_geometric.datasets.planetoid as tgp

        monkeypatch.setattr(tgp, "download_url", fail)
    except (ImportError, AttributeError):
        pass


def test_failed_planetoid_load_creates_no_folders(tmp_path, monkeypatch):
    _no_network(monkeypatch)
    root = tmp_path / "data"
    with pytest.raises(GnndynError, match="download failed"):
        load_planetoid("cora", root)
    assert not root.exists()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GNNDYN_DATA_ROOT", raising=False)
    with pytest.raises(GnndynError, match="download failed"):
        load_planetoid("citeseer")
    assert list(home.iterdir()) == []  # no ~/.cache/gnndyn/planetoid/CiteSeer/raw left behind


# --------------------------------------------------------------------------------------- run files
@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("r") / "run"
    res = runner.invoke(app, ["run", "gnn-vs-mlp", "--out", str(out), *GNN_VS_MLP])
    assert res.exit_code == 0, res.output
    return out


def test_truncated_spec_json_on_rerun(small_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(small_run, run)
    spec = run / "spec.json"
    spec.write_text(spec.read_text()[:40])
    res = runner.invoke(app, ["rerun", str(run)])
    out = _flat(res.output)
    assert res.exit_code == 2 and "spec.json" in _nows(out) and "not valid JSON" in out and "Traceback" not in out
    assert not (tmp_path / "copy-rerun").exists()


def test_truncated_metrics_on_report_names_the_file_and_writes_no_report(small_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(small_run, run)
    (run / "report.html").unlink()
    m = run / "metrics.parquet"
    m.write_bytes(m.read_bytes()[:200])
    res = runner.invoke(app, ["report", str(run)])
    out = _flat(res.output)
    assert res.exit_code == 2 and "metrics.parquet" in _nows(out) and "not a readable Parquet file" in out
    assert "Traceback" not in out and not (run / "report.html").exists()


def test_truncated_run_json_on_report(small_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(small_run, run)
    (run / "run.json").write_text('{"status": "o')
    res = runner.invoke(app, ["report", str(run)])
    assert res.exit_code == 2 and "run.json" in _nows(res.output) and "Traceback" not in res.output


class _Ext(pa.ExtensionType):
    def __init__(self):
        super().__init__(pa.float64(), "gnndyn.test.ext")

    def __arrow_ext_serialize__(self):
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type, serialized):
        return cls()


def test_parquet_reader_refuses_python_extension_types(tmp_path):
    t = _Ext()
    pa.register_extension_type(t)
    try:
        storage = pa.array([1.0, 2.0])
        table = pa.table({"value": pa.ExtensionArray.from_storage(t, storage)})
        pq.write_table(table, tmp_path / "x.parquet")
        with pytest.raises(CorruptFileError, match="extension type"):
            read_parquet(tmp_path / "x.parquet")
    finally:
        pa.unregister_extension_type("gnndyn.test.ext")
    assert read_parquet.__doc__ and "PyExtensionType" in read_parquet.__doc__


UNSAFE = [r"\bpickle\.loads?\(", r"\btorch\.load\(", r"allow_pickle\s*=\s*True", r"\byaml\.(unsafe_)?load\(",
          r"(?<![\w.])eval\(", r"(?<![\w.])exec\(", r"read_pickle\(", r"\bmarshal\.loads?\(", r"\bshelve\.",
          r"\bdill\.", r"\bjoblib\.load\("]


def test_no_reader_in_gnndyn_can_execute_code():
    """Every file gnndyn reads (spec, run and check JSON, sweep files, metrics and tables in Parquet,
    Planetoid pickles) goes through a parser that cannot run code: no unrestricted unpickler, no eval."""
    hits = []
    for p in sorted((ROOT / "gnndyn").rglob("*.py")):
        if p.name == "safe_pickle.py":
            continue
        for i, line in enumerate(p.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if any(re.search(pat, code) for pat in UNSAFE):
                hits.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()}")
    assert hits == []
    safe = (ROOT / "gnndyn" / "data" / "safe_pickle.py").read_text()
    assert "def find_class" in safe and "pickle.load(" not in safe
    planetoid = (ROOT / "gnndyn" / "data" / "planetoid.py").read_text()
    # PyG's unrestricted readers (read_file, read_planetoid_data, the Planetoid dataset class) are not used
    assert not re.search(r"from torch_geometric\S* import [^\n]*\b(read_file|read_planetoid_data|Planetoid)\b", planetoid)


# ------------------------------------------------------------------------------------- determinism
def test_lanczos_spectral_facts_are_bitwise_repeatable():
    import gnndyn as gd

    g = gd.csbm(1500, 2, p_in=0.01, p_out=0.002, feature_dim=4, feature_sep=2.0, seed=0)
    op = gd.build_operator("gossip", g)
    a = [op.spectral(method="lanczos").lambda_ for _ in range(3)]
    assert a[0] == a[1] == a[2]
    b = gd.build_operator("adjacency", g).spectral(method="lanczos").lambda_
    assert b == gd.build_operator("adjacency", g).spectral(method="lanczos").lambda_


def test_rerun_is_bitwise_identical_above_the_dense_sparse_switch(tmp_path):
    from gnndyn.operators.spectral import spectral_facts

    assert spectral_facts.__kwdefaults__["dense_limit"] < 1500
    out = tmp_path / "big"
    args = ["--set", "graph.n=1500", "--set", "graph.p_in=0.01", "--set", "graph.p_out=0.002", "--set", "model.depth=3",
            "--set", "model.width=4", "--set", "mlp=false"]
    res = runner.invoke(app, ["run", "oversmoothing-at-init", "--out", str(out), *args])
    assert res.exit_code == 0, res.output
    assert runner.invoke(app, ["rerun", str(out), "--out", str(tmp_path / "again")]).exit_code == 0
    assert runner.invoke(app, ["rerun", str(out), "--out", str(tmp_path / "third")]).exit_code == 0
    a = pd.read_parquet(out / "metrics.parquet")
    for other in ("again", "third"):
        b = pd.read_parquet(tmp_path / other / "metrics.parquet")
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        ca = json.loads((out / "checks.json").read_text())
        cb = json.loads((tmp_path / other / "checks.json").read_text())
        assert ca == cb
        sa = json.loads((out / "run.json").read_text())["summary"]
        sb = json.loads((tmp_path / other / "run.json").read_text())["summary"]
        assert sa == sb
