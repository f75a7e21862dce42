"""Shared pieces of the Keriven experiments: default data, setup per seed, one-pass measurements,
the theory inputs of a measured point, and the checks every experiment runs on such a point."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from gnndyn.data.graph import Graph
from gnndyn.errors import GnndynError
from gnndyn.models.activations import get_activation
from gnndyn.models.deep_gnn import DeepGNN
from gnndyn.models.losses import Loss
from gnndyn.operators.base import Operator
from gnndyn.operators.builders import identity
from gnndyn.probes import measures
from gnndyn.spec import ExperimentSpec, GraphSpec, ModelSpec, OperatorSpec
from gnndyn.theory import keriven as thy

#: CSBM defaults: two balanced classes, n = 1000, average degree ≈ 30, gossip spectral gap ≈ 0.18
#: (the paper reports 1 − λ ≈ 0.16 for its CSBM data).
CSBM_DEFAULT = GraphSpec(name="csbm", n=1000, classes=2, p_in=0.05, p_out=0.0095, feature_dim=16, feature_sep=2.0)

#: label kinds: class indices (cross-entropy) or one-hot rows (MSE, not centered: Thm 3 case 1),
#: or centered unit-norm rows (MSE, Thm 3 case 2(a) and Cor 2)
LABELS = ("classes", "centered")


class KerivenSpec(ExperimentSpec):
    """Base of the Keriven specs: the deep GNN of eq. (1) reads node features X⁽⁰⁾ and fits labels, so every graph
    section must give both (checked when the spec is built), and a stored data set must hold its features."""

    graph_needs = ("features", "labels")
    needs_features = True


@dataclass
class Setup:
    """One seed's data: graph, operator (and its spectral facts), features and classes, on device."""

    graph: Graph
    op: Operator
    facts: object
    x: torch.Tensor
    classes: torch.Tensor
    mlp_op: Operator

    @property
    def lam(self) -> float:
        return float(self.facts.lambda_)

    @property
    def num_classes(self) -> int:
        return int(self.graph.num_classes)


def build_setup(spec: ExperimentSpec, graph: GraphSpec, operator: OperatorSpec, seed: int) -> Setup:
    g = graph.build(spec.data_root, seed=seed)
    if g.x is None or g.y is None:
        raise GnndynError(f"graph {graph.name!r} has no node features or labels; the Keriven experiments need both.")
    if g.y.dim() != 1:
        raise GnndynError(f"graph {graph.name!r} has regression targets of shape {tuple(g.y.shape)}; "
                          "these experiments build their targets from class labels (shape (n,)).")
    op = operator.build(g)
    facts = op.spectral()
    dtype, device = spec.torch_dtype, spec.torch_device
    return Setup(g, op.to(device, dtype), facts, g.x.to(device, dtype), g.y.to(device),
                 identity(g).to(device, dtype))


def targets(setup: Setup, loss: Loss, labels: str = "classes", scale: float = 1.0) -> tuple[torch.Tensor, int]:
    """(target, d_out) for a loss and a label kind (see :data:`LABELS`)."""
    C = setup.num_classes
    if loss.name == "cross-entropy":
        if labels != "classes":
            raise GnndynError(f"cross-entropy takes class labels; got labels={labels!r}. Use labels=classes or loss=mse.")
        return setup.classes, C
    if labels == "classes":
        return torch.nn.functional.one_hot(setup.classes, C).to(setup.x.dtype) * scale, C
    if labels == "centered":
        y = thy.centered_labels(setup.classes, scale, setup.x.dtype)
        return y, y.shape[1]
    raise GnndynError(f"unknown labels {labels!r}; valid: {', '.join(LABELS)}.")


def make_model(setup: Setup, model: ModelSpec, out_dim: int, seed: int, depth: int | None = None,
               dtype: torch.dtype = torch.float64) -> DeepGNN:
    return DeepGNN(setup.graph.num_features, model.width, out_dim, model.depth if depth is None else depth,
                   get_activation(model.activation), init=model.init, init_scale=model.init_scale, seed=seed,
                   dtype=dtype).to(setup.x.device)


def measure(model: DeepGNN, op: Operator, x: torch.Tensor, target: torch.Tensor, loss: Loss) -> dict:
    """One forward and backward pass; every per-layer quantity the theorems speak of.

    Keys: ``loss``; per layer k = 0..L: ``grad_norm`` ‖∂𝓛/∂W⁽ᵏ⁾‖_F, ``smoothing_X|F|H|B`` (ℰ, eq. 6),
    ``mean_error_B`` ‖1ᵀB⁽ᵏ⁾‖, ``spectral_norm`` s_k; and ``mean_output_error`` ‖1ᵀB⁽ᴸ⁾‖ (Thm 4),
    ``D_F`` = n^{−1/2}‖F⁽ᴸ⁾‖_F (Thm 3 case 1), ``global_delta``, ``inner_delta``.
    """
    out = model(op, x, keep_signals=True)
    value = loss(out, target)
    grads = torch.autograd.grad(value, list(model.parameters()))
    sig = model.signals
    gn = [float(torch.linalg.norm(g)) for g in grads]
    n = x.shape[0]
    res = {
        "loss": float(value.detach()),
        "grad_norm": gn,
        "smoothing_X": [measures.smoothing(t) for t in sig.X],
        "smoothing_F": [measures.smoothing(t) for t in sig.F],
        "smoothing_H": [measures.smoothing(t) for t in sig.H],
        "smoothing_B": [measures.smoothing(t) for t in sig.B],
        "mean_error_B": [measures.mean_output_error(t) for t in sig.B],
        "spectral_norm": model.spectral_norms(),
        "mean_output_error": measures.mean_output_error(sig.B[-1]),
        "D_F": float(torch.linalg.norm(sig.F[-1].detach()) / n ** 0.5),
        "global_delta": max(gn),
        "inner_delta": max(gn[:-1]) if len(gn) > 1 else float("nan"),
    }
    model.signals = None
    return res


def theory_context(setup: Setup, model_spec: ModelSpec, loss: Loss, target: torch.Tensor):
    """(assumptions dict A1–A4, notes, Constants) for one setup, activation, loss and labels."""
    act = get_activation(model_spec.activation)
    C = setup.num_classes
    assumptions = thy.assumptions_1_4(setup.facts, act, loss, target, C)
    notes = thy.assumption_notes(setup.facts, act, loss, target, C)
    const = thy.Constants.measure(setup.x, act, loss, target, C)
    return assumptions, notes, const


def exact_checks(vals: dict, lam: float, const, assumptions: dict, series: str) -> list:
    """Thm 2, the mean-error recursion and the gradient chain of Thm 4 (App. A.9) at one measured point."""
    s = vals["spectral_norm"]
    return [
        thy.check_thm2(vals["smoothing_B"], lam, s, const, assumptions=assumptions, series=series),
        thy.check_mean_error(vals["mean_error_B"], lam, s, const, assumptions=assumptions, series=series),
        thy.check_gradient_bound(vals["grad_norm"], lam, s, const, e_out=vals["smoothing_B"][-1],
                                 eps_out=vals["mean_output_error"], assumptions=assumptions, series=series),
    ]


def override_note(assumptions: dict[str, bool], notes: dict[str, str]) -> str:
    """One line naming the assumptions a configuration leaves (empty when all hold)."""
    bad = [f"{k} ({notes.get(k, '')})" for k, v in assumptions.items() if not v]
    return "" if not bad else "this configuration leaves the theorems' assumptions: " + "; ".join(bad)


def note_assumptions(assumptions: dict[str, bool], notes: dict[str, str], seen: set[str],
                     merged: dict[str, bool] | None = None) -> None:
    """Record one configuration's assumptions: its :func:`override_note` into ``seen`` when some fail and, with
    ``merged``, each assumption AND-ed into ``merged`` (a key not there yet counts as held so far)."""
    note = override_note(assumptions, notes)
    if note:
        seen.add(note)
    if merged is not None:
        for k, v in assumptions.items():
            merged[k] = merged.get(k, True) and v


@contextmanager
def intra_op_threads(n: int = 1) -> Iterator[None]:
    """Run with ``n`` intra-op torch threads, then restore the previous setting.

    These experiments multiply small dense matrices (n × 32) layer after layer; intra-op threading buys
    nothing there and, on a loaded 2-core machine, OpenMP synchronization made a depth-40 training step
    about 16× slower with 2 threads than with 1 (measured: 1.29 s vs 0.079 s).
    """
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def single_threaded(run):
    """Decorator: an experiment's ``run(spec, ctx)`` under :func:`intra_op_threads` (1 thread)."""
    import functools

    @functools.wraps(run)
    def wrapper(spec, ctx):
        with intra_op_threads(1):
            return run(spec, ctx)

    return wrapper


def median_band(values: list[float]) -> tuple[float, float, float]:
    a = np.asarray(values, dtype=float)
    return float(np.nanmedian(a)), float(np.nanpercentile(a, 10)), float(np.nanpercentile(a, 90))
