r"""Keriven's Assumptions 1–4 and the constants they name, measured on the actual run.

* Assumption 1 (§2): P ≥ 0 symmetric, :math:`P1_n = 1_n`, 1 a simple eigenvalue, every other
  eigenvalue :math:`|\lambda_i| \le \lambda < 1`. Measured on the operator's
  :class:`~gnndyn.operators.spectral.SpectralFacts` (GCN's operator is not stochastic, the random walk
  is not symmetric, the identity (MLP) has 1 with multiplicity n: all three fail it).
* Assumption 2: ρ 1-Lipschitz and :math:`|\rho(x)| \le |x|`.
* Assumption 3: :math:`\|\partial\ell_i/\partial h\|_2 \le D_\mathcal{L}\|h\|_2 + D'_\mathcal{L}` — MSE
  (eq. 3) with labels in the unit ball: :math:`D_\mathcal{L} = D'_\mathcal{L} = 1`; cross-entropy (eq. 4):
  :math:`D_\mathcal{L} = 0,\ D'_\mathcal{L} = C + 1` (App. A.2, eqs. (19)–(20)). MSE labels outside the
  unit ball keep Assumption 3 with :math:`D'_\mathcal{L} = \max_i\|y_i\|` (used instead of 1, and said).
* Assumption 4: ρ′ is :math:`D_\rho`-Lipschitz (ReLU and leaky ReLU fail it: :math:`D_\rho = \infty`).
* :math:`D_\mathcal{X} = \max_i \|X^{(0)}_{i,:}\|_2` (§2), and :math:`\mathcal E(X^{(0)}) \le D_\mathcal{X}` (App. A).
* Depth (§2, eq. (1): "output after L layers"): Thm 1 bounds ℰ(X⁽ᵏ⁾) for the layers k = 1..L, Thm 2 and the
  mean-error recursion of Thm 4's proof (App. A.9) bound the layers k < L below the output layer, so each
  needs L ≥ 1 (:data:`DEPTH`); at L = 0 (``model.depth=0``: out = H⁽⁰⁾ = P X⁽⁰⁾ W⁽⁰⁾) they compare nothing and
  their verdicts are *not applicable*, not violated. The middle-layer dip of §3.2 needs a layer strictly
  between 0 and L: L ≥ 2 (:data:`DEPTH_MIDDLE`).

Two normalizations are kept apart: ``n_nodes`` (the graph size inside ℰ, eq. (6)) and ``n_loss``
(the number of labelled nodes averaging the loss, eq. (2) and its footnote 2); they coincide in the
paper, which labels every node.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from gnndyn.errors import GnndynError
from gnndyn.models.activations import Activation
from gnndyn.models.losses import Loss
from gnndyn.probes import measures

A1 = "A1: P symmetric, stochastic, 1 simple, λ < 1"
A2 = "A2: ρ 1-Lipschitz and |ρ(x)| ≤ |x|"
A3 = "A3: ‖∂ℓᵢ/∂h‖ ≤ D_𝓛‖h‖ + D′_𝓛"
A4 = "A4: ρ′ is D_ρ-Lipschitz"
DEPTH = "L ≥ 1: a layer below the output layer (model depth ≥ 1)"
DEPTH_MIDDLE = "L ≥ 2: a middle layer 0 < k < L (model depth ≥ 2)"


def depth_assumption(L: int, minimum: int = 1) -> dict[str, bool]:
    """The depth assumption of a layer-wise statement (module docstring) and whether depth L meets it:
    ``{DEPTH: L ≥ 1}``, or ``{DEPTH_MIDDLE: L ≥ 2}`` with ``minimum=2``."""
    if minimum not in (1, 2):
        raise GnndynError(f"the Keriven statements need depth L ≥ 1 or L ≥ 2; got minimum={minimum!r}.")
    return {(DEPTH if minimum == 1 else DEPTH_MIDDLE): bool(L >= minimum)}


@dataclass(frozen=True)
class LossConstants:
    """(D_𝓛, D′_𝓛) of Assumption 3 for one loss and one set of labels (App. A.2)."""

    D: float
    D_prime: float
    holds: bool
    note: str


def loss_constants(loss: Loss, target: torch.Tensor | None = None, num_classes: int | None = None) -> LossConstants:
    """Keriven Assumption 3 constants (App. A.2, eqs. (19)–(20)).

    MSE: ∂ℓᵢ/∂h = h − yᵢ, so ‖∂ℓᵢ/∂h‖ ≤ ‖h‖ + ‖yᵢ‖: (1, 1) when every ‖yᵢ‖ ≤ 1, else (1, max‖yᵢ‖).
    Cross-entropy with C classes: (0, C + 1) (eq. 20).
    """
    if loss.name == "cross-entropy":
        if num_classes is None:
            if target is None:
                raise GnndynError("cross-entropy constants need num_classes (C) or the labels.")
            num_classes = int(target.max()) + 1
        return LossConstants(0.0, float(num_classes + 1), True, f"cross-entropy, C = {num_classes}: (0, C+1) (App. A.2)")
    if loss.name == "mse":
        if target is None:
            return LossConstants(1.0, 1.0, True, "MSE, labels assumed in the unit ball (Example 1)")
        if target.dim() == 1 and not target.is_floating_point():
            ymax = 1.0  # class labels are one-hot encoded (‖yᵢ‖ = 1)
        else:
            t = target.detach().to(torch.float64)
            t = t.unsqueeze(1) if t.dim() == 1 else t
            ymax = float(torch.linalg.norm(t, dim=1).max())
        if ymax <= 1.0 + 1e-12:
            return LossConstants(1.0, 1.0, True, f"MSE, labels in the unit ball (max‖yᵢ‖ = {ymax:.3g}): (1, 1)")
        return LossConstants(1.0, ymax, True,
                             f"MSE, labels outside the unit ball (max‖yᵢ‖ = {ymax:.3g}): D′_𝓛 = {ymax:.3g} used instead of 1")
    raise GnndynError(f"Keriven's Assumption 3 constants are known for 'mse' and 'cross-entropy'; got loss {loss.name!r}.")


@dataclass(frozen=True)
class Constants:
    """Everything the bounds of Keriven §3–4 need besides λ and the spectral norms s_k.

    Attributes:
        D_X: D_𝒳 = max row norm of X⁽⁰⁾.
        E_X0: ℰ(X⁽⁰⁾) measured (≤ D_𝒳).
        D_loss, D_loss_prime: D_𝓛, D′_𝓛 of Assumption 3.
        D_rho: D_ρ of Assumption 4 (``inf`` for ReLU).
        n_nodes: n, the graph size (ℰ's normalization).
        n_loss: the number of labelled nodes averaging the loss (= n in the paper).
    """

    D_X: float
    E_X0: float
    D_loss: float
    D_loss_prime: float
    D_rho: float
    n_nodes: int
    n_loss: int

    @classmethod
    def measure(cls, x: torch.Tensor, activation: Activation, loss: Loss, target: torch.Tensor | None = None,
                num_classes: int | None = None, n_loss: int | None = None) -> "Constants":
        lc = loss_constants(loss, target, num_classes)
        n = int(x.shape[0])
        return cls(D_X=measures.row_norm_max(x), E_X0=measures.smoothing(x), D_loss=lc.D, D_loss_prime=lc.D_prime,
                   D_rho=float(activation.d_rho), n_nodes=n, n_loss=int(n_loss or n))

    def as_dict(self) -> dict:
        return asdict(self)


def why_not_a1(facts) -> str:
    """What fails in Assumption 1 for these spectral facts ('' when it holds)."""
    bad = []
    if not facts.symmetric:
        bad.append("P is not symmetric")
    if not facts.stochastic:
        bad.append("P1 ≠ 1 (not stochastic)")
    if not facts.nonnegative:
        bad.append("P has negative entries")
    if not facts.top_is_simple:
        bad.append("the eigenvalue 1 is not simple")
    if not facts.lambda_ < 1:
        bad.append(f"λ = {facts.lambda_:.4g} ≥ 1")
    return "; ".join(bad)


def assumptions_1_2(facts, activation: Activation) -> dict[str, bool]:
    """Keriven Assumptions 1 and 2, measured on the operator's spectral facts and the activation (Thm 1)."""
    return {A1: bool(facts.assumption_1), A2: bool(activation.assumption_2)}


def assumptions_1_4(facts, activation: Activation, loss: Loss | None = None, target: torch.Tensor | None = None,
                    num_classes: int | None = None) -> dict[str, bool]:
    """Keriven Assumptions 1–4 (Thm 2–4, Cor 1–2)."""
    a3 = True if loss is None else loss_constants(loss, target, num_classes).holds
    return {**assumptions_1_2(facts, activation), A3: bool(a3), A4: bool(activation.assumption_4)}


def assumption_notes(facts, activation: Activation, loss: Loss | None = None, target: torch.Tensor | None = None,
                     num_classes: int | None = None) -> dict[str, str]:
    """A line per assumption saying why it holds or fails (goes into verdict details)."""
    a1 = why_not_a1(facts)
    notes = {
        A1: a1 or f"{facts.operator}: symmetric, stochastic, λ = {facts.lambda_:.6g}",
        A2: (f"{activation.name}: 1-Lipschitz, ρ(0) = 0" if activation.assumption_2
             else f"{activation.name}: {activation.note or 'not 1-Lipschitz or ρ(0) ≠ 0'}"),
        A4: (f"{activation.name}: D_ρ = {activation.d_rho:.4g}" if activation.assumption_4
             else f"{activation.name}: ρ′ is not Lipschitz (D_ρ = ∞); {activation.note}"),
    }
    if loss is not None:
        notes[A3] = loss_constants(loss, target, num_classes).note
    return notes


def failed(assumptions: dict[str, bool]) -> list[str]:
    return [k for k, v in assumptions.items() if not v]


def explain(holds: bool, assumptions: dict[str, bool]) -> str:
    """The sentence a verdict adds about a violation of an exact inequality: a violated assumption
    explains it; with every assumption met it is a bug (or rounding) and is flagged as such."""
    if holds:
        return ""
    bad = failed(assumptions)
    if bad:
        return "violation explained by the failed assumption(s): " + "; ".join(bad)
    return "VIOLATION WITH EVERY ASSUMPTION MET: a bug in gnndyn or in the bound — please report it"


def finite(x: float) -> bool:
    return math.isfinite(x)
