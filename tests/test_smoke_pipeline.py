"""End-to-end: the first experiment runs at smoke size and writes a complete run folder."""

from __future__ import annotations

import json

from gnndyn.experiments import get_experiment, make_spec, run_experiment


def test_oversmoothing_at_init_smoke(tmp_path):
    exp = get_experiment("oversmoothing-at-init")
    spec = make_spec(exp.name, exp.smoke)
    store, result = run_experiment(spec, tmp_path / "run")
    for name in ("spec.json", "metrics.parquet", "checks.json", "report.html", "run.json"):
        assert (tmp_path / "run" / name).exists(), name
    checks = json.loads((tmp_path / "run" / "checks.json").read_text())
    assert checks[0]["name"] == "keriven.thm1" and checks[0]["holds"] is True
    assert (tmp_path / "run" / "figures" / "fig2_smoothing_at_init.png").exists()
