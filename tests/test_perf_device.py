"""Device cleanliness of the step (no host round trip inside it), the CUDA path where a GPU exists, and
``gnndyn bench`` at a small size: the JSON's structure and that every contender computed the same loss."""

from __future__ import annotations

import json

import numpy as np

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from typer.testing import CliRunner

from gnndyn.bench import CONTENDERS, check_device, step_benchmark
from gnndyn.bench_contenders import gnndyn_probed_step, gnndyn_step
from gnndyn.cli import app
from gnndyn.data import csbm
from gnndyn.errors import GnndynError
from gnndyn.models import DeepGNN
from gnndyn.operators import build_operator

HOST = {"aten._local_scalar_dense.default", "aten.item.default"}


class _Recorder(TorchDispatchMode):
    """Every aten op run, and every op that produced a tensor on another device than the step's."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device, self.ops, self.moved = device, [], []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops.append(str(func))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and t.device != self.device:
                self.moved.append(str(func))
        return out


@pytest.fixture(scope="module")
def setup():
    g = csbm(200, 2, avg_degree=6.0, lam=2.0, mu=4.0, feature_dim=8, seed=0)
    op = build_operator("gossip", g).to(dtype=torch.float32)
    return g, op, g.x.float(), g.y


@pytest.mark.parametrize("memory", ["speed", "low"])
@pytest.mark.parametrize("probed", [False, True])
def test_step_makes_no_host_round_trip(setup, memory, probed):
    g, op, x, y = setup
    model = DeepGNN(8, 8, 2, 4, "tanh", dtype=torch.float32, memory=memory)
    make = gnndyn_probed_step if probed else gnndyn_step
    if probed:  # the probed step reads numbers at its end (that is the probe); time only the pass itself
        from gnndyn.models.fused import STATS

        step = gnndyn_step(model, op, x, y, 0.1, stats=frozenset(STATS))
    else:
        step = make(model, op, x, y, 0.1)
    step()
    with _Recorder(x.device) as rec:
        step()
    assert "aten.addmm.out" in rec.ops or "aten.addmm.default" in rec.ops
    assert not HOST & set(rec.ops), sorted(HOST & set(rec.ops))
    assert rec.moved == []


def test_cuda_step_matches_cpu(setup):
    if not torch.cuda.is_available():
        pytest.skip(f"no CUDA device visible to torch {torch.__version__}; the CUDA path is checked on a GPU machine")
    g, op, x, y = setup
    losses = []
    for dev in ("cpu", "cuda"):
        m = DeepGNN(8, 8, 2, 4, "tanh", dtype=torch.float32).to(dev)
        step = gnndyn_step(m, op.to(dev), x.to(dev), y.to(dev), 0.1)
        losses.append([float(step()) for _ in range(3)])
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


def test_device_errors_are_clear():
    with pytest.raises(GnndynError, match="unknown device"):
        check_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(GnndynError, match="no CUDA device"):
            check_device("cuda")


def _check_structure(res: dict, rounds: int) -> None:
    assert set(res["losses"]) == set(CONTENDERS) == set(res["losses_after"]) and res["same_loss"]
    for name in CONTENDERS:
        assert len(res["times"][name]) == rounds
        s = res["summary"][name]
        assert s["min_s"] <= s["q1_s"] <= s["median_s"] <= s["q3_s"] <= s["max_s"]
    assert {f"gnndyn/{n}" for n in CONTENDERS if n != "gnndyn"} | {"probed/unprobed"} == set(res["ratios"])
    for r in res["ratios"].values():
        assert r["min"] <= r["median_per_round"] <= r["max"]
    assert res["spmm"]["bytes"] > 0 and res["spmm"]["gb_per_s"] > 0


@pytest.mark.usefixtures("one_thread")
def test_small_benchmark_json_and_same_losses(tmp_path):
    res = step_benchmark(nodes=300, degree=6.0, depth=3, width=8, rounds=5, device="cpu", dtype="float64")
    _check_structure(res, 5)
    assert max(res["loss_rel_diff"].values()) <= 1e-10 and max(res["loss_after_rel_diff"].values()) <= 1e-10
    per = [a / b for a, b in zip(res["times"]["gnndyn+probes"], res["times"]["gnndyn"])]
    assert res["ratios"]["probed/unprobed"]["median_per_round"] == pytest.approx(float(np.median(per)), rel=1e-12)
    assert abs(res["losses"]["gnndyn"] - np.log(2)) > 1e-3  # not the degenerate ln 2 of a vanished output
    assert res["losses_after"]["gnndyn"] < res["losses"]["gnndyn"]  # the steps did descend
    out = tmp_path / "bench.json"
    r = CliRunner().invoke(app, ["bench", "--nodes", "300", "--depth", "2", "--width", "8", "--rounds", "5",
                                 "--dtype", "float32", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "gnndyn/fair" in r.output and "gnndyn/floor" in r.output
    _check_structure(json.loads(out.read_text()), 5)
    bad = CliRunner().invoke(app, ["bench", "--nodes", "300", "--dtype", "float16"])
    assert bad.exit_code == 2 and "valid dtypes" in bad.output
