"""Probes: measurements taken during training, with schedules."""

from gnndyn.probes.base import (
    Probe, ProbeContext, default_probes, dirichlet_probe, gradient_norm_probe, smoothing_probe, spectral_norm_probe,
)
from gnndyn.probes.measures import (
    dirichlet_energy, mean_output_error, row_norm_max, smoothing, smoothing_pairwise,
)
from gnndyn.probes.schedules import NEVER, At, Every, Schedule, at, every, log_spaced

__all__ = [
    "Probe", "ProbeContext", "default_probes", "smoothing_probe", "gradient_norm_probe", "spectral_norm_probe",
    "dirichlet_probe", "smoothing", "smoothing_pairwise", "dirichlet_energy", "mean_output_error",
    "row_norm_max", "Schedule", "Every", "At", "every", "at", "log_spaced", "NEVER",
]
