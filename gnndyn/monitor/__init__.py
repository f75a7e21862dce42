"""The monitor: gnndyn's measurements on any PyTorch / PyTorch Geometric model (:class:`Monitor`).

Data flow: :mod:`.layers` (which modules are layers) → :mod:`.hooks` (signals become numbers as they pass,
through :mod:`.quantities` and :mod:`.measures`) → :class:`Monitor.step` (the metrics table of
:mod:`gnndyn.store.metrics`) → :mod:`.writers` (live) and :mod:`.diagnoses` (verdicts) → :mod:`.save` (the
run folder and report).
"""

from gnndyn.monitor.diagnoses import Thresholds, alarms, diagnose
from gnndyn.monitor.layers import Layer, find_layers
from gnndyn.monitor.monitor import Monitor
from gnndyn.monitor.quantities import GROUPS

__all__ = ["GROUPS", "Layer", "Monitor", "Thresholds", "alarms", "diagnose", "find_layers"]
