r"""The vanilla deep GNN of Keriven, eq. (1), with its forward and backward signals.

.. math::

    F^{(k)} = P X^{(k)}, \qquad H^{(k)} = F^{(k)} W^{(k)}, \qquad X^{(k+1)} = \rho(H^{(k)}),
    \qquad \mathrm{out} = H^{(L)},

for :math:`k = 0, \dots, L`: ``depth`` L counts the message-passing layers before the output layer, so
there are L + 1 weight matrices :math:`W^{(0)}, \dots, W^{(L)}` with shapes
:math:`d_0 \times d_1, \dots, d_L \times d_\mathrm{out}`. The MLP is the same model with P = I (pass the
``identity`` operator). After ``loss.backward()`` the backward signals
:math:`B^{(k)} = \partial\mathcal L/\partial H^{(k)}` (Keriven eq. (5)) are in ``signals.B`` and
satisfy :math:`\partial\mathcal L/\partial W^{(k)} = F^{(k)\top} B^{(k)}` and the recursion
:math:`B^{(k)} = \rho'(H^{(k)}) \odot (P^\top B^{(k+1)} W^{(k+1)\top})`.

Without ``keep_signals`` the pass runs as one autograd function over buffers reused across steps
(:mod:`gnndyn.models.fused`: the same kernels, the same bits); ``memory="low"`` keeps F⁽ᵏ⁾ only and
recomputes the activations in the backward; ``stats=`` asks for per-layer numbers (ℰ, Dirichlet
energy, gradient norms) computed as the passes produce the signals, without keeping the signals.
"""

from __future__ import annotations

import math
from typing import Any
import weakref
from dataclasses import dataclass, field

import torch
from torch import nn

from gnndyn.errors import GnndynError, resolve
from gnndyn.models.activations import Activation, get_activation
from gnndyn.models.fused import MEMORY_MODES, Pool, fused_forward, layers
from gnndyn.operators.base import Operator, propagate

INITS = ("glorot", "normal", "orthogonal")


@dataclass
class Signals:
    """Per-layer signals of one forward (and backward) pass; lists indexed by layer k = 0..L.

    ``stats``: the streamed per-layer numbers (:mod:`gnndyn.models.fused`), or ``None``. Some forward
    numbers are taken by the backward pass (:class:`gnndyn.models.fused_stats.Deferred`); reading ``stats``
    before it has run computes them then, so the record read is always whole.
    """

    X: list[torch.Tensor] = field(default_factory=list)
    F: list[torch.Tensor] = field(default_factory=list)
    H: list[torch.Tensor] = field(default_factory=list)
    B: list[torch.Tensor | None] = field(default_factory=list)
    record: dict[str, list[torch.Tensor]] | None = None
    deferred: Any = None

    @property
    def stats(self) -> dict[str, list[torch.Tensor]] | None:
        if self.deferred is not None:
            self.deferred.complete()
            self.deferred = None
        return self.record

    @property
    def out(self) -> torch.Tensor:
        return self.H[-1]


class DeepGNN(nn.Module):
    """Keriven's vanilla deep GNN (eq. 1), no biases.

    Args:
        in_dim: input feature dimension d_0.
        width: hidden width d_1 = ... = d_L (or a list of L widths).
        out_dim: output dimension d_out.
        depth: L ≥ 0, the number of hidden layers; the model has L + 1 weight matrices.
        activation: a registered activation name (see :mod:`gnndyn.models.activations`) or an
            :class:`Activation`.
        init: ``glorot`` (uniform, Glorot & Bengio; PyG's ``GCNConv`` default), ``normal``
            (N(0, 1/d_in)) or ``orthogonal``; all multiplied by ``init_scale``.
        seed: seed of the initialization (a private generator: the global RNG is untouched).
        dtype: parameter dtype (float64 by default: the theorems are checked in float64).
        memory: ``speed`` (save F⁽ᵏ⁾ and ρ(H⁽ᵏ⁾), as autograd does) or ``low`` (save F⁽ᵏ⁾ only and
            recompute H⁽ᵏ⁾ and ρ in the backward: half the memory, one more dense product per layer).
        fused: run passes without ``keep_signals`` through :mod:`gnndyn.models.fused` (default);
            ``False`` uses autograd of the layer-by-layer definition (the slow reference).
    """

    def __init__(
        self,
        in_dim: int,
        width: int | list[int],
        out_dim: int,
        depth: int,
        activation: str | Activation = "tanh",
        *,
        init: str = "glorot",
        init_scale: float = 1.0,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
        memory: str = "speed",
        fused: bool = True,
    ) -> None:
        super().__init__()
        resolve("memory mode", memory, {m: m for m in MEMORY_MODES})
        if depth < 0:
            raise GnndynError(f"depth must be ≥ 0; got {depth}.")
        widths = [width] * depth if isinstance(width, int) else list(width)
        if len(widths) != depth:
            raise GnndynError(f"got {len(widths)} hidden widths for depth {depth}; give one width or a list of {depth}.")
        dims = [in_dim, *widths, out_dim]
        if any(d <= 0 for d in dims):
            raise GnndynError(f"all dimensions must be positive; got in_dim={in_dim}, widths={widths}, out_dim={out_dim}.")
        self.act = activation if isinstance(activation, Activation) else get_activation(activation)
        resolve("init", init, {k: k for k in INITS})
        self.depth, self.dims, self.init, self.init_scale = depth, dims, init, init_scale
        gen = torch.Generator().manual_seed(int(seed))
        self.weights = nn.ParameterList(
            [nn.Parameter(self._init_weight(dims[k], dims[k + 1], gen).to(dtype)) for k in range(depth + 1)]
        )
        self.signals: Signals | None = None
        self.memory, self.fused = memory, fused
        self._pool = Pool()

    def _init_weight(self, fan_in: int, fan_out: int, gen: torch.Generator) -> torch.Tensor:
        w = torch.empty(fan_in, fan_out, dtype=torch.float64)
        if self.init == "glorot":
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            w.uniform_(-bound, bound, generator=gen)
        elif self.init == "normal":
            w.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=gen)
        else:
            a = torch.randn(max(fan_in, fan_out), min(fan_in, fan_out), dtype=torch.float64, generator=gen)
            q, r = torch.linalg.qr(a)
            q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
            w = q if fan_in >= fan_out else q.T
        return self.init_scale * w

    @property
    def num_layers(self) -> int:
        """L + 1, the number of weight matrices."""
        return self.depth + 1

    def forward(self, op: Operator, x: torch.Tensor, *, keep_signals: bool = False,
                stats: tuple[str, ...] | frozenset[str] = ()) -> torch.Tensor:
        """out = H⁽ᴸ⁾. With ``keep_signals`` the signals go to ``self.signals`` and B⁽ᵏ⁾ is filled by backward.

        ``stats`` (names in :data:`gnndyn.models.fused.STATS`) puts per-layer 0-d tensors in
        ``self.signals.stats`` instead; the backward ones appear once the backward pass has run.
        """
        if x.dim() != 2 or x.shape[1] != self.dims[0]:
            raise GnndynError(f"input features must have shape (n, {self.dims[0]}); got {tuple(x.shape)}.")
        if not keep_signals and (self.fused or stats) and not op.is_identity:
            if x.shape[0] != op.num_nodes:
                propagate(op, x)  # raises the shape error
            if x.dtype != op.dtype or any(W.dtype != x.dtype for W in self.weights):
                raise GnndynError(f"operator dtype {op.dtype}, signal dtype {x.dtype} and weight dtype "
                                  f"{self.weights[0].dtype} must agree; use op.to(dtype=...) and model.to(dtype).")
            if self.signals is not None and self.signals.deferred is not None:
                self.signals.stats  # the last pass's numbers, while its buffers are still its own
            out, record, deferred = fused_forward(op, self.act, self.memory, self._pool, x.contiguous(),
                                                  list(self.weights), stats)
            self.signals = None if record is None else Signals(record=record, deferred=deferred)
            return out
        if stats:
            raise GnndynError("stats= needs the fused pass, which does not run with keep_signals=True or the identity "
                              "operator; read the kept signals with the probes in gnndyn.probes.measures instead.")
        sig = Signals() if keep_signals else None
        H = x
        for k, (X, F, H) in enumerate(layers(op, self.act, x, list(self.weights))):
            if sig is not None:
                sig.X.append(X)
                sig.F.append(F)
                sig.H.append(H)
                sig.B.append(None)
                if H.requires_grad:
                    H.register_hook(_store_grad(sig, k))
        self.signals = sig
        return H

    def release_workspace(self) -> None:
        """Free the buffers kept between steps (they are rebuilt by the next pass)."""
        self._pool.clear()

    def spectral_norms(self) -> list[float]:
        """s_k = ‖W⁽ᵏ⁾‖₂ for k = 0..L."""
        return [float(torch.linalg.matrix_norm(W.detach(), ord=2)) for W in self.weights]


def _store_grad(sig: Signals, k: int):
    # a weak reference: a strong one would make the cycle H -> hook -> sig -> H, which only the cyclic
    # garbage collector frees, so every probed step would keep its whole autograd graph alive for a while
    ref = weakref.ref(sig)

    def hook(grad: torch.Tensor) -> None:
        s = ref()
        if s is not None:
            s.B[k] = grad.detach()

    return hook


def backward_recursion(model: DeepGNN, op: Operator, sig: Signals, b_out: torch.Tensor) -> list[torch.Tensor]:
    """B⁽ᵏ⁾ by Keriven eq. (5), from B⁽ᴸ⁾ = ``b_out`` down to k = 0 (a slow reference for tests)."""
    L = model.depth
    B: list[torch.Tensor] = [torch.empty(0)] * (L + 1)
    B[L] = b_out
    PT = op.transposed_matrix()
    for k in range(L - 1, -1, -1):
        W_next = model.weights[k + 1].detach()
        back = B[k + 1] @ W_next.T
        back = back if op.is_identity else PT @ back
        B[k] = model.act.derivative(sig.H[k].detach()) * back
    return B
