r"""The explicit constructions of Keriven's proofs, built exactly and checked.

* Prop 1 (App. A.5): ρ = Id, every :math:`d_k = 1`, :math:`W^{(k)} = 1`, :math:`X^{(0)} = 1_n`, Y = 0,
  MSE (eq. 3). Since P1 = 1, :math:`F^{(k)} = 1_n`, :math:`B^{(k)} = \frac1n 1_n` (the appendix writes
  2/n, a slip: with eq. (3)'s ½ the output error is (H − Y)/n) and :math:`\|\partial\mathcal L/\partial W^{(k)}\| = 1`
  at every layer while ℰ(B⁽ᵏ⁾) = 0: backward oversmoothing without vanishing gradients.
* Prop 2 (App. A.8): an MLP (P = I), ρ = Id, :math:`d_k = 1`, all :math:`W^{(\ell)} = 1` but
  :math:`W^{(k)} = 0`, :math:`(x_i, y_i)` iid from :math:`\frac12(\delta_{(1,1)} + \delta_{(-1,-1)})`.
  The output is 0, so :math:`\partial\mathcal L/\partial W^{(L)} = 0`, while
  :math:`\partial\mathcal L/\partial W^{(k)} = -\frac1n\sum_i x_i y_i = -1` (eq. (32) on; the appendix's
  1/(2n) is a slip for eq. (3)'s 1/n after differentiation).
* The same construction with P a gossip matrix (the contrast the paper draws):
  :math:`\partial\mathcal L/\partial W^{(k)} = -\frac1n x^\top P^{L+1} y` for every k, and under
  Assumption 1, :math:`|\cdot| \le |\bar x\bar y| + \lambda^{L+1}\frac1n\|J^\perp x\|\|J^\perp y\|` → 0 with L.
* Cor 2 (App. A.7): :math:`W^{(L)} = 0` and centered labels: every :math:`B^{(k)}`, k < L, is exactly 0,
  the output gradient is :math:`-F^{(L)\top}Y/n`, and the loss is :math:`\mathcal L(0)`; see
  :func:`zero_output_layer` and :func:`perturb_weights` (the open set of such points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gnndyn.models.deep_gnn import DeepGNN
from gnndyn.models.losses import get_loss
from gnndyn.operators.base import Operator
from gnndyn.probes import measures
from gnndyn.theory.keriven.assumptions import explain
from gnndyn.theory.verdict import Verdict

EXACT_TOL = 1e-12  # "to machine precision" for quantities of order 1 computed by O(L) float64 operations


@dataclass
class Evaluation:
    """Loss, gradients and backward signals of one model at one point."""

    loss: float
    grads: list[float]
    smoothing_B: list[float]
    spectral_norms: list[float]


def evaluate(model: DeepGNN, op: Operator, x: torch.Tensor, y: torch.Tensor, loss_name: str = "mse") -> Evaluation:
    """One forward/backward pass with autograd; B⁽ᵏ⁾ from the model's hooks."""
    loss = get_loss(loss_name)
    out = model(op, x, keep_signals=True)
    value = loss(out, y)
    grads = torch.autograd.grad(value, list(model.parameters()))
    sig = model.signals
    return Evaluation(float(value.detach()), [float(torch.linalg.norm(g)) for g in grads],
                      [measures.smoothing(b) for b in sig.B], model.spectral_norms())


def _scalar_model(depth: int, value: float, dtype: torch.dtype) -> DeepGNN:
    m = DeepGNN(1, 1, 1, depth, "identity", init="orthogonal", dtype=dtype)
    with torch.no_grad():
        for w in m.weights:
            w.fill_(value)
    return m


# --------------------------------------------------------------------------------------------- Prop 1
def prop1(op: Operator, depth: int) -> Evaluation:
    """Evaluate the construction of Prop 1 (App. A.5) on operator ``op``."""
    n = op.num_nodes
    model = _scalar_model(depth, 1.0, op.dtype)
    x = torch.ones(n, 1, dtype=op.dtype)
    y = torch.zeros(n, 1, dtype=op.dtype)
    return evaluate(model, op, x, y)


def check_prop1(op: Operator, depth: int, *, assumptions: dict[str, bool] | None = None, series: str = "gnn") -> Verdict:
    """Prop 1, eq. (9): ‖∂𝓛/∂W⁽ᵏ⁾‖_F = 1 for every k (to machine precision), with ℰ(B⁽ᵏ⁾) = 0 and s = 1."""
    ev = prop1(op, depth)
    g = np.asarray(ev.grads)
    err = float(np.max(np.abs(g - 1.0)))
    eb = float(np.max(ev.smoothing_B))
    holds = err <= EXACT_TOL and eb <= EXACT_TOL and max(ev.spectral_norms) <= 1.0
    assumptions = dict(assumptions or {})
    return Verdict(
        name="keriven.prop1", paper="Keriven, Prop 1, eq. (9) (App. A.5)",
        statement="ρ = Id, W⁽ᵏ⁾ = 1, X⁽⁰⁾ = 1, Y = 0: ‖∂𝓛/∂W⁽ᵏ⁾‖_F = 1 for all k while ℰ(B⁽ᵏ⁾) = 0",
        holds=bool(holds), margin=EXACT_TOL - err,
        where=f"{series}, L = {depth}: max_k |‖∂𝓛/∂W⁽ᵏ⁾‖ − 1| = {err:.2e}, max_k ℰ(B⁽ᵏ⁾) = {eb:.2e}"
              + (f"; {explain(holds, assumptions)}" if not holds else ""),
        assumptions=assumptions, applicable=all(assumptions.values()),
        details={"grad_norms": ev.grads, "max_abs_error": err, "max_smoothing_B": eb, "loss": ev.loss,
                 "s": ev.spectral_norms, "n": op.num_nodes,
                 "note": "B⁽ᵏ⁾ = 1/n·1 (App. A.5 writes 2/n, a slip with eq. (3)'s ½)"},
    )


# --------------------------------------------------------------------------------------------- Prop 2
def prop2_data(n: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) iid from ½(δ_(1,1) + δ_(−1,−1)) (App. A.8): x = y = ±1 with probability ½."""
    gen = torch.Generator().manual_seed(int(seed))
    r = (torch.randint(0, 2, (n, 1), generator=gen) * 2 - 1).to(dtype)
    return r.clone(), r.clone()


def prop2(op: Operator, depth: int, k: int, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
    """Evaluate Prop 2's construction (all weights 1 but W⁽ᵏ⁾ = 0, ρ = Id, d_k = 1) on ``op``."""
    if not 0 <= k < depth:
        raise ValueError(f"Prop 2 zeroes a layer k with 0 ≤ k < L = {depth}; got k = {k}")
    model = _scalar_model(depth, 1.0, op.dtype)
    with torch.no_grad():
        model.weights[k].zero_()
    return evaluate(model, op, x, y)


def prop2_closed_form(op: Operator, depth: int, x: torch.Tensor, y: torch.Tensor) -> float:
    r"""∂𝓛/∂W⁽ᵏ⁾ = −(1/n) xᵀP^{L+1}y (the same for every k < L), by L + 1 sparse products."""
    v = y.detach()
    for _ in range(depth + 1):
        v = op @ v
    return float(-(x.detach() * v).sum() / x.shape[0])


def prop2_gnn_bound(x: torch.Tensor, y: torch.Tensor, lam: float, depth: int) -> float:
    r""":math:`|\bar x\bar y| + \lambda^{L+1}\frac1n\|J^\perp x\|\|J^\perp y\|` ≥ |xᵀP^{L+1}y|/n under Assumption 1."""
    xb, yb = float(x.mean()), float(y.mean())
    n = x.shape[0]
    return abs(xb * yb) + lam ** (depth + 1) * float(torch.linalg.norm(x - xb) * torch.linalg.norm(y - yb)) / n


def check_prop2(op: Operator, depth: int, k: int, *, seed: int = 0, assumptions: dict[str, bool] | None = None) -> Verdict:
    """Prop 2, eq. (15) on an MLP (``op`` = identity): ∂𝓛/∂W⁽ᴸ⁾ = 0 and ‖∂𝓛/∂W⁽ᵏ⁾‖ = 1."""
    x, y = prop2_data(op.num_nodes, seed, op.dtype)
    ev = prop2(op, depth, k, x, y)
    g = np.asarray(ev.grads)
    err_k, out = abs(g[k] - 1.0), g[depth]
    others = float(np.max(np.delete(g, [k, depth]))) if depth > 1 else 0.0
    holds = err_k <= EXACT_TOL and out <= EXACT_TOL and max(ev.spectral_norms) <= 1.0
    assumptions = dict(assumptions or {})
    return Verdict(
        name="keriven.prop2", paper="Keriven, Prop 2, eq. (15) (App. A.8)",
        statement="MLP, ρ = Id, W⁽ℓ⁾ = 1 but W⁽ᵏ⁾ = 0, x = y = ±1: ∂𝓛/∂W⁽ᴸ⁾ = 0 and ‖∂𝓛/∂W⁽ᵏ⁾‖ = 1",
        holds=bool(holds), margin=EXACT_TOL - max(err_k, out),
        where=f"L = {depth}, k = {k}: |‖∂𝓛/∂W⁽ᵏ⁾‖ − 1| = {err_k:.2e}, ‖∂𝓛/∂W⁽ᴸ⁾‖ = {out:.2e}",
        assumptions=assumptions, applicable=all(assumptions.values()),
        details={"grad_norms": ev.grads, "grad_k": float(g[k]), "grad_output": float(out), "other_layers_max": others,
                 "loss": ev.loss, "n": op.num_nodes, "k": k},
    )


def check_prop2_gnn(op: Operator, depth: int, k: int, lam: float, *, seed: int = 0,
                    assumptions: dict[str, bool] | None = None) -> Verdict:
    """Prop 2's construction with a graph operator: the layer-k gradient equals −(1/n)xᵀP^{L+1}y (machine
    precision, autograd vs sparse powers) and obeys the Assumption 1 bound |x̄ȳ| + λ^{L+1}‖J^⊥x‖‖J^⊥y‖/n."""
    x, y = prop2_data(op.num_nodes, seed, op.dtype)
    ev = prop2(op, depth, k, x, y)
    g_k = ev.grads[k]
    closed = prop2_closed_form(op, depth, x, y)
    bound = prop2_gnn_bound(x, y, lam, depth)
    err = abs(g_k - abs(closed))
    holds = err <= EXACT_TOL * max(1.0, abs(closed)) and g_k <= bound * (1 + 1e-9) + 1e-300
    assumptions = dict(assumptions or {})
    return Verdict(
        name="keriven.prop2.gnn", paper="Keriven, Prop 2 construction with a graph (contrast of §4)",
        statement="‖∂𝓛/∂W⁽ᵏ⁾‖ = |xᵀP^{L+1}y|/n ≤ |x̄ȳ| + λ^{L+1}‖J^⊥x‖‖J^⊥y‖/n",
        holds=bool(holds), margin=bound - g_k,
        where=f"L = {depth}, k = {k}: ‖∂𝓛/∂W⁽ᵏ⁾‖ = {g_k:.3e}, closed form {abs(closed):.3e} (error {err:.1e}), "
              f"bound {bound:.3e}" + (f"; {explain(holds, assumptions)}" if not holds else ""),
        assumptions=assumptions, applicable=all(assumptions.values()),
        details={"grad_k": g_k, "closed_form": abs(closed), "abs_error": err, "bound": bound,
                 "grad_output": ev.grads[depth], "grad_norms": ev.grads, "lambda": lam},
    )


# --------------------------------------------------------------------------------------------- Cor 2
def centered_labels(classes: torch.Tensor, scale: float = 1.0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    r"""Centered, bounded regression labels from class indices: :math:`y_i = \sigma\,(e_{c_i} - 1_C/C)/\sqrt{(C-1)/C}`,
    so ‖yᵢ‖ = σ = ``scale`` and E‖y‖² = σ²; the mean is exactly 0 when the classes are balanced (C = 2: ±σ/√2·(1, −1))."""
    C = int(classes.max()) + 1
    onehot = torch.nn.functional.one_hot(classes.long(), max(C, 2)).to(dtype)
    C = onehot.shape[1]
    return scale * (onehot - 1.0 / C) / math.sqrt((C - 1) / C)


def zero_output_layer(model: DeepGNN) -> DeepGNN:
    """Set W⁽ᴸ⁾ = 0 in place (App. A.7) and return the model."""
    with torch.no_grad():
        model.weights[-1].zero_()
    return model


def perturb_weights(model: DeepGNN, radius: float, s_cap: float, generator: torch.Generator) -> DeepGNN:
    """W⁽ᵏ⁾ ← W⁽ᵏ⁾ + radius·G/‖G‖₂ (G Gaussian, every layer), then rescaled so that ‖W⁽ᵏ⁾‖₂ ≤ ``s_cap``
    (= λ^{−α} for an admissible α): a random point of the open set of Cor 2's remark. In place."""
    with torch.no_grad():
        for w in model.weights:
            g = torch.randn(w.shape, generator=generator, dtype=torch.float64).to(w.dtype)
            w.add_(radius * g / torch.linalg.matrix_norm(g, ord=2))
            sn = float(torch.linalg.matrix_norm(w, ord=2))
            if sn > s_cap:
                w.mul_(s_cap / sn)
    return model
