r"""R replicas of the deep GNN (e.g. R seeds) in one program, stacked along the feature axis.

Replica r has weights :math:`W_r^{(0)}, \dots, W_r^{(L)}` (Keriven eq. (1)); the stacked signal is
:math:`X = [X_1 | \dots | X_R] \in \mathbb R^{n \times R d}`, so that each layer's propagation is one
sparse product :math:`P X` of width R·d (P read once for all replicas) and the dense products are
one batched product :math:`F_r W_r^{(k)}`. The first layer shares :math:`F^{(0)} = P X^{(0)}` and
multiplies it by :math:`[W_1^{(0)} | \dots | W_R^{(0)}]`. The loss of the stack is the sum of the
replicas' losses, so each replica's gradient is that of its own run.

Whether this pays depends on the device: on a CPU the batched dense products and the transposes
between the (n, R, d) and (R, n, d) layouts cost about what the shared sparse products save
(measured by ``gnndyn bench --replicas R``, :func:`gnndyn.bench.stacked_vs_separate`: 1.6–2.1×
slower than R separate passes on one CPU thread); the option is off by default.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gnndyn.errors import GnndynError
from gnndyn.models.deep_gnn import DeepGNN
from gnndyn.operators.base import Operator, propagate


class StackedDeepGNN(nn.Module):
    """Replicas of one :class:`DeepGNN` architecture, run as one model (see the module docstring)."""

    def __init__(self, models: Sequence[DeepGNN]) -> None:
        super().__init__()
        if not models:
            raise GnndynError("StackedDeepGNN needs at least one DeepGNN replica.")
        first = models[0]
        for m in models[1:]:
            if m.dims != first.dims or m.act is not first.act:
                raise GnndynError(f"replicas must share dims and activation; got dims {m.dims} ({m.act.name}) "
                                  f"and {first.dims} ({first.act.name}).")
        self.replicas, self.depth, self.dims, self.act = len(models), first.depth, first.dims, first.act
        self.weights = nn.ParameterList([
            nn.Parameter(torch.stack([m.weights[k].detach() for m in models]).clone()) for k in range(first.depth + 1)
        ])

    def forward(self, op: Operator, x: torch.Tensor) -> torch.Tensor:
        """Outputs of all replicas, shape (R, n, d_out)."""
        n, R = x.shape[0], self.replicas
        F = propagate(op, x)
        W0 = self.weights[0]  # (R, d0, d1)
        H = F @ W0.permute(1, 0, 2).reshape(W0.shape[1], R * W0.shape[2])  # (n, R·d1)
        for k in range(1, self.depth + 1):
            X = self.act(H)
            F = propagate(op, X).view(n, R, -1).transpose(0, 1)  # (R, n, d_k)
            H = torch.bmm(F, self.weights[k])  # (R, n, d_{k+1})
            if k < self.depth:
                H = H.transpose(0, 1).reshape(n, -1)
        if self.depth == 0:
            H = H.view(n, R, -1).transpose(0, 1)
        return H

    def replica_losses(self, out: torch.Tensor, loss, target: torch.Tensor, mask=None) -> torch.Tensor:
        """The R losses (a vector); their sum has each replica's own gradient."""
        return torch.stack([loss(out[r], target, mask) for r in range(self.replicas)])
