"""``gd.Monitor``: point gnndyn at your own PyTorch / PyTorch Geometric model.

::

    mon = gd.Monitor(model, edge_index=data.edge_index, every=1)   # layers found automatically
    for epoch in range(200):
        opt.zero_grad(); loss = F.cross_entropy(model(data.x, data.edge_index)[mask], y[mask]); loss.backward()
        mon.step(loss)          # this step's forward and backward signals, gradients, loss
        opt.step()
    mon.save("runs/my-gcn")     # the usual run folder: metrics.parquet, checks.json, figures/, report.html
                                # (refused if that folder exists and is not empty; overwrite=True replaces it)
    mon.close()                 # removes every hook; the model is exactly as before

The quantities and their schedules are in :mod:`gnndyn.monitor.quantities`, the diagnoses in
:mod:`gnndyn.monitor.diagnoses`, the hooks in :mod:`gnndyn.monitor.hooks`.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

import pandas as pd
import torch
from torch import nn

from gnndyn.errors import GnndynError
from gnndyn.models.deep_gnn import Signals
from gnndyn.monitor import hooks, quantities
from gnndyn.monitor.diagnoses import Thresholds, alarms, diagnose
from gnndyn.monitor.layers import Layer, call_edge_index, display_name, find_layers
from gnndyn.monitor.writers import make_writers
from gnndyn.probes.schedules import Schedule
from gnndyn.store.metrics import Recorder
from gnndyn.theory.verdict import Verdict


def _graph(edge_index: torch.Tensor | None) -> torch.Tensor | None:
    if edge_index is None:
        return None
    if not isinstance(edge_index, torch.Tensor):
        raise GnndynError(f"edge_index must be a (2, m) long tensor or a torch sparse adjacency; "
                          f"got {type(edge_index).__name__}.")
    ei = call_edge_index((edge_index,), {})
    if ei is None:
        raise GnndynError(f"edge_index must be a (2, m) long tensor or a torch sparse adjacency; got a tensor of "
                          f"shape {tuple(edge_index.shape)}, dtype {edge_index.dtype}, layout {edge_index.layout}.")
    return ei


def _cleanup(handles: list, writers: list) -> None:
    hooks.remove_handles(handles)
    for w in writers:
        w.close()
    writers.clear()


class Monitor:
    """Measure forward and backward oversmoothing, gradients and weights of any model, live.

    Args:
        model: the model (held by weak reference; the monitor never changes it: its hooks go with ``close``,
            and a copy or pickle made meanwhile holds inert placeholders, see :mod:`gnndyn.monitor.hooks`).
        edge_index: the graph, ``(2, m)`` or a torch sparse adjacency, for the Dirichlet energy of signals
            whose layer call carries no graph itself (a layer called with an edge index uses its own: the
            batch's graph for mini-batches).
        layers: ``None`` (every outermost PyG ``MessagePassing`` module), a list of modules or of names, or a
            module class (``torch.nn.Linear`` for an MLP). See :mod:`gnndyn.monitor.layers`.
        every: steps between records of the cheap quantities; the others default to 10× and 100× that.
        schedule: ``"all"`` (every quantity every ``every`` steps) or ``{group: period or Schedule}``;
            groups: ``smoothing``, ``grad_norm``, ``dirichlet``, ``mad``, ``rank``, ``spectral``.
        baseline_loss: the loss that counts as "not trained" (ln C for C balanced classes); default: the
            first recorded loss.
        thresholds: :class:`~gnndyn.monitor.diagnoses.Thresholds` or a dict of its fields.
        tensorboard: a log folder for ``torch.utils.tensorboard`` (the optional ``tensorboard`` package).
        callback: ``callback(step, values)`` after every step with ``{quantity: float | [per layer]}``.
        summary_every: print a one-line summary every that many steps (to ``stream``, default stdout).
        keep_signals: keep the last recorded step's signals (``.signals``: X inputs, H outputs, B = ∂𝓛/∂H).
        name: the series name in the metrics table (default: the model's class name).
    """

    def __init__(self, model: nn.Module, *, edge_index: torch.Tensor | None = None,
                 layers: Sequence[nn.Module | str] | type | None = None, every: int = 1,
                 schedule: str | Mapping[str, int | Schedule] | None = None, baseline_loss: float | None = None,
                 thresholds: Thresholds | dict[str, Any] | None = None, tensorboard: str | None = None,
                 callback: Callable[[int, dict[str, Any]], Any] | None = None, summary_every: int | None = None,
                 stream: TextIO | None = None, keep_signals: bool = False, name: str | None = None) -> None:
        found = find_layers(model, layers)
        self._schedules = quantities.make_schedules(every, schedule)
        self.thresholds = Thresholds.make(thresholds)
        if baseline_loss is not None and not (isinstance(baseline_loss, (int, float)) and math.isfinite(baseline_loss)):
            raise GnndynError(f"baseline_loss must be a finite number; got {baseline_loss!r}.")
        self.baseline_loss = None if baseline_loss is None else float(baseline_loss)
        graph = _graph(edge_index)
        self.every, self.schedule_arg = every, schedule
        self.name = name or type(model).__name__
        self._layer_names = [display_name(n, m) for n, m in found]
        self._layer_kinds = [type(m).__name__ for _, m in found]
        self._writers = make_writers(tensorboard, callback, summary_every, stream, self._layer_names)
        self._model = weakref.ref(model)
        self._layers = [weakref.ref(m) for _, m in found]
        layer_param_ids = {id(p) for _, m in found for p in m.parameters()}
        self._rest = [weakref.ref(p) for p in model.parameters() if id(p) not in layer_param_ids]
        self._state = hooks.HookState(num_layers=len(found), base_edge_index=graph, keep_signals=keep_signals)
        self._state.groups = self._signal_groups(0)
        self._order: list[int] | None = None
        self._t = 0
        self._t0 = time.perf_counter()
        self.recorder = Recorder()
        self._closed = False
        hooks.install(model, [m for _, m in found], self._state, self._layer_names)
        tb = [w for w in self._writers if hasattr(w, "writer")]
        self._finalizer = weakref.finalize(self, _cleanup, self._state.handles, tb)

    # ------------------------------------------------------------------ introspection
    @property
    def layers(self) -> list[Layer]:
        """The monitored layers in forward order (registration order before the first recorded pass)."""
        order = self._order if self._order is not None else self._current_order()
        return [Layer(self._layer_names[i], self._layer_kinds[i]) for i in order]

    @property
    def num_steps(self) -> int:
        return self._t

    @property
    def signals(self) -> Signals | None:
        """The last recorded pass's signals in forward order (only with ``keep_signals=True``)."""
        s = self._state.signals
        if s is None:
            return None
        order = self._order if self._order is not None else self._current_order()
        return Signals(X=[s.X[i] for i in order], H=[s.H[i] for i in order], B=[s.B[i] for i in order])

    def _current_order(self) -> list[int]:
        seen = list(self._state.order)
        return seen + [i for i in range(len(self._layers)) if i not in seen]

    def _signal_groups(self, t: int) -> frozenset[str]:
        return frozenset(g for g in quantities.SIGNAL_GROUPS if self._schedules[g](t))

    def _live_model(self) -> nn.Module:
        m = self._model()
        if m is None:
            raise GnndynError("the monitored model no longer exists (the monitor holds it by weak reference); "
                              "keep a reference to the model while you monitor it.")
        return m

    # ------------------------------------------------------------------ recording
    def step(self, loss: torch.Tensor | float | None = None, **scalars: float) -> dict[str, float | list[float]]:
        """Record this step (call it after ``loss.backward()``, before ``opt.step()``) and return its values:
        ``loss``, your ``scalars``, and every scheduled per-layer quantity as a list in forward order."""
        if self._closed:
            raise GnndynError("this Monitor is closed; create a new one to record more steps.")
        self._live_model()
        t, st = self._t, self._state
        if self._order is None and st.order:
            self._order = self._current_order()
        order = self._order if self._order is not None else self._current_order()
        if st.backward_since_step and st.forward_values and not st.backward_values:
            st.warn_once("eval pass", "the last forward pass before step() ran with gradients enabled and had no "
                                      "backward pass (an evaluation pass?), so this step records that pass's H and no "
                                      "B; run evaluation under torch.no_grad(), or call step() right after backward().")
        reserved = sorted(set(scalars) & quantities.RECORDED)
        if reserved:
            raise GnndynError(f"step({reserved[0]}=...): {reserved[0]!r} is a quantity the monitor records itself; give "
                              f"your scalar another name (reserved: {', '.join(sorted(quantities.RECORDED))}).")
        values: dict[str, float | list[float]] = {}
        if loss is not None:
            if isinstance(loss, torch.Tensor):
                if loss.numel() != 1:
                    raise GnndynError(f"step(loss) takes a scalar loss; got a tensor of shape {tuple(loss.shape)}.")
                loss = float(loss.detach())
            values["loss"] = float(loss)
        for k, v in scalars.items():
            try:
                values[k] = float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
            except (TypeError, ValueError) as exc:
                raise GnndynError(f"step({k}=...) must be a number; got {type(v).__name__}.") from exc
        names: list[str] = []
        for src in (st.forward_values, st.backward_values):
            for d in src.values():
                names.extend(q for q in d if q not in names)
        for q in names:
            src = st.forward_values if q.endswith("_H") else st.backward_values
            values[q] = [src.get(i, {}).get(q, math.nan) for i in order]
        if self._schedules["grad_norm"](t):
            mods = [self._layers[i]() for i in order]
            g = [quantities.grad_norm(list(m.parameters())) if m is not None else math.nan for m in mods]
            values["grad_norm"] = g
            rest = [p for p in (r() for r in self._rest) if p is not None]
            if rest:
                values["grad_norm_rest"] = quantities.grad_norm(rest)
            fin = [x for x in g + [values.get("grad_norm_rest", math.nan)] if not math.isnan(x)]
            values["global_delta"] = max(fin) if fin else math.nan
        if self._schedules["spectral"](t):
            mods = [self._layers[i]() for i in order]
            values["spectral_norm"] = [quantities.layer_spectral_norm(list(m.parameters())) if m is not None
                                       else math.nan for m in mods]
        self.recorder.add_values(self.name, 0, t, values)
        for w in self._writers:
            w(t, values)
        st.end_step()
        self._t = t + 1
        st.groups = self._signal_groups(self._t)
        return values

    # ------------------------------------------------------------------ results
    def frame(self) -> pd.DataFrame:
        """The metrics recorded so far, in the metrics-table schema (:mod:`gnndyn.store.metrics`)."""
        return self.recorder.frame()

    def diagnose(self) -> list[Verdict]:
        """The diagnoses of what was recorded (:mod:`gnndyn.monitor.diagnoses`)."""
        return diagnose(self.frame(), self.thresholds, self.baseline_loss)

    def alarms(self) -> list[str]:
        """Names of the diagnoses that fire."""
        return alarms(self.diagnose())

    def save(self, path: str, *, figures: bool = True, overwrite: bool = False):
        """Write the run folder (spec.json, metrics.parquet, checks.json, tables/, figures/, report.html,
        run.json) and return its :class:`~gnndyn.store.run.RunStore`.

        ``path`` must be new or an empty folder: an existing non-empty folder (or a file) is refused with a
        :class:`~gnndyn.errors.GnndynError` before anything is written, and the monitor keeps its record, so
        ``save`` can be called again with another path. ``overwrite=True`` replaces an existing gnndyn run
        folder whole (a folder without spec.json or run.json is never deleted); see
        :func:`gnndyn.monitor.save.check_destination`."""
        from gnndyn.monitor.save import save_run

        return save_run(self, path, figures=figures, overwrite=overwrite)

    def config(self) -> dict[str, Any]:
        """What was monitored and how (``spec.json`` of the run folder)."""
        m = self._model()
        p = next(m.parameters(), None) if m is not None else None
        return {"experiment": "monitor", "model": self.name, "series": self.name,
                "layers": [{"name": x.name, "kind": x.kind} for x in self.layers], "every": self.every,
                "schedule": {g: repr(s) for g, s in self._schedules.items()}, "baseline_loss": self.baseline_loss,
                "thresholds": self.thresholds.__dict__, "dtype": str(p.dtype).replace("torch.", "") if p is not None else None,
                "device": str(p.device) if p is not None else None}

    # ------------------------------------------------------------------ teardown
    def close(self) -> None:
        """Remove every hook and close the writers (idempotent). The model is exactly as before."""
        self._closed = True
        self._finalizer()
        self._state.signals = None

    def __enter__(self) -> Monitor:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Monitor({self.name}, {len(self._layers)} layers: "
                f"{', '.join(f'{x.name} ({x.kind})' for x in self.layers)}; {self._t} steps)")
