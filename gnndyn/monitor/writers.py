"""Live outputs of a monitor: TensorBoard scalars, a user callback, a short text summary every N steps.

Every writer gets the same ``values`` of one step: ``{quantity: float | [float per layer]}``. Scalars are
named ``quantity`` and per-layer ones ``quantity/layer_KK`` (TensorBoard tags; the callback gets the
mapping itself, e.g. for ``lightning``'s ``self.log_dict`` or any logger).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from gnndyn.errors import GnndynError

Values = Mapping[str, float | Sequence[float]]


def flatten(values: Values) -> dict[str, float]:
    """``{"loss": v, "smoothing_H/layer_00": v0, ...}``."""
    out: dict[str, float] = {}
    for q, v in values.items():
        if isinstance(v, (list, tuple)):
            out.update({f"{q}/layer_{k:02d}": float(x) for k, x in enumerate(v)})
        else:
            out[q] = float(v)
    return out


class TensorBoardWriter:
    """Scalars to ``torch.utils.tensorboard.SummaryWriter(log_dir)`` (needs the ``tensorboard`` package:
    ``pip install 'gnndyn[tensorboard]'``)."""

    def __init__(self, log_dir: str) -> None:
        try:
            import tensorboard  # noqa: F401
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise GnndynError(
                f"Monitor(tensorboard={log_dir!r}) needs the 'tensorboard' package, which is not installed "
                f"({exc}). Install it with `pip install tensorboard` (or `pip install 'gnndyn[tensorboard]'`), "
                "or leave tensorboard out and use callback= for your own logger.") from exc
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def __call__(self, step: int, values: Values) -> None:
        if self.writer is None:
            return
        for tag, v in flatten(values).items():
            if math.isfinite(v):
                self.writer.add_scalar(tag, v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None


def _span(v: Sequence[float]) -> str:
    fin = [x for x in v if math.isfinite(x)]
    return f"{fin[0]:.2e}→{fin[-1]:.2e}" if fin else "—"


def summary_line(step: int, values: Values, layer_names: Sequence[str] = ()) -> str:
    """One line: loss, ℰ(H) and ℰ(B) from the first to the last layer, the gradient norms' range."""
    parts = [f"step {step}"]
    if "loss" in values:
        parts.append(f"loss {float(values['loss']):.4g}")
    for q, label in (("smoothing_H", "ℰ(H) first→last"), ("smoothing_B", "ℰ(B) first→last")):
        if q in values:
            parts.append(f"{label} {_span(values[q])}")
    g = values.get("grad_norm")
    if g:
        fin = [x for x in g if math.isfinite(x)]
        if fin:
            k = min(range(len(g)), key=lambda i: g[i] if math.isfinite(g[i]) else math.inf)
            name = layer_names[k] if k < len(layer_names) else f"layer {k}"
            parts.append(f"‖∇θ_k‖ {min(fin):.2e}…{max(fin):.2e} (smallest: {name})")
    return " | ".join(parts)


class TextSummary:
    """Print :func:`summary_line` every ``every`` steps to ``stream`` (stdout by default)."""

    def __init__(self, every: int, stream: TextIO | None = None, layer_names: Sequence[str] = ()) -> None:
        if not isinstance(every, int) or every < 1:
            raise GnndynError(f"summary_every must be an integer ≥ 1; got {every!r}.")
        self.every, self.stream, self.layer_names = every, stream, list(layer_names)

    def __call__(self, step: int, values: Values) -> None:
        if step % self.every == 0:
            print(summary_line(step, values, self.layer_names), file=self.stream or sys.stdout)


def make_writers(tensorboard: str | None, callback: Callable[[int, dict[str, Any]], Any] | None,
                 summary_every: int | None, stream: TextIO | None, layer_names: Sequence[str]) -> list:
    """The live writers asked for (validated before anything is written)."""
    if callback is not None and not callable(callback):
        raise GnndynError(f"callback must be callable as callback(step, values); got {type(callback).__name__}.")
    out: list = []
    if summary_every is not None:
        out.append(TextSummary(summary_every, stream, layer_names))
    if callback is not None:
        out.append(callback)
    if tensorboard is not None:
        out.append(TensorBoardWriter(tensorboard))
    return out
