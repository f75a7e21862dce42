r"""Activation functions with the constants Keriven's assumptions speak of.

Assumption 2: ρ is 1-Lipschitz and :math:`|\rho(x)| \le |x|` (implied by 1-Lipschitz and ρ(0) = 0).
Assumption 4: ρ′ is :math:`D_\rho`-Lipschitz (``d_rho``; ``inf`` when ρ is not differentiable, as ReLU).

Add one with :func:`register_activation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as tf

from gnndyn.errors import GnndynError, resolve

LOG2 = math.log(2.0)


@dataclass(frozen=True)
class Activation:
    """An elementwise activation ρ with its derivative and the constants of Keriven's assumptions.

    Attributes:
        name: registry name.
        fn: ρ, elementwise on tensors.
        derivative: ρ′, elementwise (for ReLU the a.e. derivative 1[x > 0]).
        lipschitz: Lipschitz constant of ρ.
        zero_at_zero: ρ(0) = 0.
        d_rho: Lipschitz constant of ρ′ (Assumption 4); ``math.inf`` if ρ′ is not continuous.
        note: a remark shown in verdicts.
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    derivative: Callable[[torch.Tensor], torch.Tensor]
    lipschitz: float
    zero_at_zero: bool
    d_rho: float
    note: str = ""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    @property
    def assumption_2(self) -> bool:
        """Keriven Assumption 2: 1-Lipschitz and |ρ(x)| ≤ |x|."""
        return self.lipschitz <= 1.0 and self.zero_at_zero

    @property
    def assumption_4(self) -> bool:
        """Keriven Assumption 4: ρ′ Lipschitz (finite D_ρ)."""
        return math.isfinite(self.d_rho)


def _sigmoid_prime(x: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(x)
    return s * (1 - s)


ACTIVATIONS: dict[str, Activation] = {}


def register_activation(act: Activation, *, overwrite: bool = False) -> Activation:
    """Add ``act`` to the registry so specs can name it."""
    if act.name in ACTIVATIONS and not overwrite:
        raise GnndynError(f"activation {act.name!r} is already registered; pass overwrite=True to replace it.")
    ACTIVATIONS[act.name] = act
    return act


for _a in (
    Activation("identity", lambda x: x, torch.ones_like, 1.0, True, 0.0, "linear GNN"),
    Activation("relu", torch.relu, lambda x: (x > 0).to(x.dtype), 1.0, True, math.inf,
               "ReLU′ is discontinuous: Keriven Assumption 4 fails"),
    Activation("leaky-relu", lambda x: tf.leaky_relu(x, 0.01), lambda x: torch.where(x > 0, 1.0, 0.01).to(x.dtype),
               1.0, True, math.inf, "leaky ReLU′ is discontinuous: Assumption 4 fails"),
    Activation("tanh", torch.tanh, lambda x: 1 - torch.tanh(x) ** 2, 1.0, True, 4.0 / (3.0 * math.sqrt(3.0)),
               "D_ρ = max|tanh″| = 4/(3√3)"),
    Activation("softplus", tf.softplus, torch.sigmoid, 1.0, False, 0.25,
               "softplus(0) = log 2 ≠ 0, so |ρ(x)| ≤ |x| (Assumption 2) fails; use shifted-softplus"),
    Activation("shifted-softplus", lambda x: tf.softplus(x) - LOG2, torch.sigmoid, 1.0, True, 0.25,
               "softplus(x) − log 2: 1-Lipschitz, ρ(0) = 0, D_ρ = max σ′ = 1/4"),
    Activation("sigmoid", torch.sigmoid, _sigmoid_prime, 0.25, False, 1.0 / (6.0 * math.sqrt(3.0)),
               "σ(0) = 1/2 ≠ 0: Assumption 2 fails"),
):
    register_activation(_a)


def get_activation(name: str) -> Activation:
    """The activation called ``name``; an unknown name lists the valid ones."""
    return resolve("activation", name, ACTIVATIONS)
