r"""Optimizers as explicit-state pairs ``init(params) -> state`` and
``update(params, grads, state) -> (new_params, state)`` (pure: no tensor is modified in place).

* :class:`GradientDescent`: :math:`\theta_{t+1} = \theta_t - \eta\,\nabla L(\theta_t)`.
* :class:`Adam` (Kingma & Ba 2015): :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t`,
  :math:`v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2`,
  :math:`\theta_t = \theta_{t-1} - \eta\,\hat m_t/(\sqrt{\hat v_t} + \epsilon)` with
  :math:`\hat m_t = m_t/(1-\beta_1^t)`, :math:`\hat v_t = v_t/(1-\beta_2^t)` — the same update as
  ``torch.optim.Adam`` (tested against it).

Gradient flow (an ODE in continuous time) shares the trainer's probes through
:mod:`gnndyn.training.flow` when it is available.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gnndyn.errors import GnndynError, resolve

Params = list[torch.Tensor]


@dataclass(frozen=True)
class GradientDescent:
    """Full-batch gradient descent with step size ``lr``."""

    lr: float = 0.1
    name: str = "gd"

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise GnndynError(f"the learning rate must be > 0; got {self.lr}.")

    def init(self, params: Sequence[torch.Tensor]) -> Any:
        return None

    def update(self, params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor], state: Any) -> tuple[Params, Any]:
        return [p - self.lr * g for p, g in zip(params, grads)], state


@dataclass(frozen=True)
class AdamState:
    step: int
    m: Params
    v: Params


@dataclass(frozen=True)
class Adam:
    """Adam with bias correction (no weight decay)."""

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    name: str = "adam"

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise GnndynError(f"the learning rate must be > 0; got {self.lr}.")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise GnndynError(f"Adam needs 0 ≤ beta1, beta2 < 1; got {self.beta1}, {self.beta2}.")

    def init(self, params: Sequence[torch.Tensor]) -> AdamState:
        return AdamState(0, [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params])

    def update(self, params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor], state: AdamState) -> tuple[Params, AdamState]:
        t = state.step + 1
        m = [self.beta1 * mi + (1 - self.beta1) * g for mi, g in zip(state.m, grads)]
        v = [self.beta2 * vi + (1 - self.beta2) * g * g for vi, g in zip(state.v, grads)]
        c1, c2 = 1 - self.beta1 ** t, 1 - self.beta2 ** t
        new = [p - self.lr * (mi / c1) / ((vi / c2).sqrt() + self.eps) for p, mi, vi in zip(params, m, v)]
        return new, AdamState(t, m, v)


OPTIMIZERS = {"gd": GradientDescent, "adam": Adam}


def make_optimizer(name: str, lr: float, **kwargs: Any) -> GradientDescent | Adam:
    """``gd`` or ``adam`` with learning rate ``lr``; an unknown name lists the valid ones."""
    return resolve("optimizer", name, OPTIMIZERS)(lr=lr, **kwargs)
