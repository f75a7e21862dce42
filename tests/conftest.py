"""Test configuration: float64, the shared Planetoid and climate copies, no progress bars."""

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
SHARED_DATASETS = SHARED_PLANETOID.parent


@pytest.fixture(scope="session")
def planetoid_root() -> Path:
    """The shared read-only Planetoid copy (../shared/datasets/planetoid beside the project)."""
    root = Path(os.environ.get("GNNDYN_TEST_DATA_ROOT", SHARED_PLANETOID))
    if not (root / "Cora" / "raw").exists():
        pytest.skip(f"no Planetoid copy at {root}; set GNNDYN_TEST_DATA_ROOT")
    return root


@pytest.fixture(scope="session")
def data_root(planetoid_root: Path) -> Path:
    """One root for every loader: the folder holding planetoid/ beside climate/ when it has both (the shared
    layout), else the Planetoid copy itself."""
    parent = planetoid_root.parent
    return parent if planetoid_root.name == "planetoid" and (parent / "climate").exists() else planetoid_root


@pytest.fixture(scope="session")
def climate_root() -> Path:
    """A root holding the US-counties climate files in climate/ (../shared/datasets beside the project,
    or $GNNDYN_TEST_CLIMATE_ROOT)."""
    root = Path(os.environ.get("GNNDYN_TEST_CLIMATE_ROOT", SHARED_DATASETS))
    if not ((root / "climate" / "adjacency.txt").exists() or (root / "adjacency.txt").exists()):
        pytest.skip(f"no climate copy at {root}; set GNNDYN_TEST_CLIMATE_ROOT")
    return root


@pytest.fixture(autouse=True)
def _data_root_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """One data root for every loader: ../shared/datasets holds planetoid/<Name>/raw/ and climate/."""
    if (SHARED_PLANETOID / "Cora" / "raw").exists():
        monkeypatch.setenv("GNNDYN_DATA_ROOT", str(SHARED_DATASETS))


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
