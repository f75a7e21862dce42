"""Run store: one folder per run (spec, metrics, checks, figures, report), written atomically."""

from gnndyn.store.metrics import SCHEMA, Recorder, per_layer, select
from gnndyn.store.files import to_json
from gnndyn.store.run import RunStore

__all__ = ["RunStore", "Recorder", "SCHEMA", "select", "per_layer", "to_json"]
