"""Named experiments, one module per paper; importing this package registers them all."""

from gnndyn.experiments import keriven  # noqa: F401
from gnndyn.experiments import awasthi  # noqa: F401
from gnndyn.experiments import xu  # noqa: F401
from gnndyn.experiments import patel  # noqa: F401
from gnndyn.experiments import monitor  # noqa: F401
from gnndyn.experiments.base import (
    REGISTRY, Experiment, ExperimentResult, RunContext, get_experiment, load_spec, make_spec, register, run_experiment,
)

__all__ = ["REGISTRY", "Experiment", "ExperimentResult", "RunContext", "get_experiment", "load_spec", "make_spec",
           "register", "run_experiment"]
