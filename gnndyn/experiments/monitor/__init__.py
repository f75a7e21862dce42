"""Experiments of the monitor (no paper): ``monitor-zoo`` (:mod:`.zoo`); importing this package registers them."""

from gnndyn.experiments.monitor import zoo  # noqa: F401
