"""Test configuration: float64, the shared Planetoid copy, no progress bars."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
torch.set_default_dtype(torch.float64)
os.environ.setdefault("GNNDYN_NO_PROGRESS", "1")

SHARED_PLANETOID = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "planetoid"


@pytest.fixture(scope="session")
def planetoid_root() -> Path:
    """The shared read-only Planetoid copy (../shared/datasets/planetoid beside the project)."""
    root = Path(os.environ.get("GNNDYN_TEST_DATA_ROOT", SHARED_PLANETOID))
    if not (root / "Cora" / "raw").exists():
        pytest.skip(f"no Planetoid copy at {root}; set GNNDYN_TEST_DATA_ROOT")
    return root


@pytest.fixture(autouse=True)
def _data_root_env(monkeypatch: pytest.MonkeyPatch) -> None:
    if (SHARED_PLANETOID / "Cora" / "raw").exists():
        monkeypatch.setenv("GNNDYN_DATA_ROOT", str(SHARED_PLANETOID))


@pytest.fixture(scope="session")
def smoke_run_registry() -> dict:
    """Smoke-size run folders made during the session, keyed by ``json.dumps([experiment, how])``: the
    documentation-command test fills it, the browser test of the reports reuses its folders."""
    return {}


@pytest.fixture
def one_thread():
    """One torch intra-op thread during the test (the previous setting is restored): small dense
    products avoid spin-waiting threads on a shared machine. Use with ``pytest.mark.usefixtures``."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def fit_lbfgs():
    """``fit(model, data, objective, **lbfgs_options) -> final loss``: minimise a Xu et al. model's
    training loss over all its weights with one call of ``torch.optim.LBFGS`` (a brute-force reference)."""

    def fit(model, data, objective, **options) -> float:
        opt = torch.optim.LBFGS(model.parameters(), **options)

        def closure():
            opt.zero_grad()
            loss = objective(model(data))
            loss.backward()
            return loss

        opt.step(closure)
        return float(objective(model(data)).detach())

    return fit
