"""The contenders of ``gnndyn bench``: one gradient-descent step of a depth-L tanh GNN, six ways.

Every contender starts from the same weights W⁽⁰⁾..W⁽ᴸ⁾, computes the cross-entropy of
H⁽ᴸ⁾ = P tanh(... tanh(P X W⁽⁰⁾) ...) W⁽ᴸ⁾ for the gossip operator P, its gradient, and the update
W ← W − η ∇W; it returns the loss as a 0-d tensor (read after timing, so that no contender pays a host
round trip the others do not).

* ``gnndyn`` — :class:`gnndyn.models.DeepGNN` through :func:`gnndyn.training.loss_and_grads`.
* ``gnndyn+probes`` — the same step with every per-layer probe (ℰ of X, F, H, B, Dirichlet energy,
  gradient and spectral norms) read as numbers, as the trainer does at a probed step.
* ``fair`` — a plain loop ``P @ h @ W`` whose backward multiplies by the symmetric P itself.
* ``plain`` — the same loop with ``torch.sparse.mm`` and PyTorch's own backward (a CSC transpose).
* ``pyg`` — a stack of PyG ``GCNConv`` layers (``normalize=False``, edge weights = P's entries),
  i.e. the same operator through an edge list (it multiplies W first: the same loss up to rounding).
* ``floor`` — the kernels alone, no autograd, every buffer preallocated: the 32-bit sparse product
  into an output tensor, ``mm(out=)``, ``tanh_``, ``tanh_backward(out=)``; the sum of the kernels a
  step cannot avoid.

The plain loops use a CSR matrix with 64-bit indices, as ``Tensor.to_sparse_csr()`` builds it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as tf

from gnndyn.operators.base import Operator, spmm

Step = Callable[[], torch.Tensor]


def _ce_grad(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy (mean) and its gradient (softmax − onehot)/n, as autograd computes them."""
    out = out.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = tf.cross_entropy(out, y)
        (g,) = torch.autograd.grad(loss, out)
    return loss.detach(), g


def gnndyn_step(model, op: Operator, x, y, lr: float, stats: frozenset[str] = frozenset()) -> Step:
    from gnndyn.models import get_loss
    from gnndyn.training import GradientDescent, loss_and_grads

    opt, ce, params = GradientDescent(lr), get_loss("cross-entropy"), list(model.parameters())

    def step() -> torch.Tensor:
        loss, grads = loss_and_grads(model, op, x, y, ce, None, keep_signals=False, stats=stats)
        new, _ = opt.update([p.detach() for p in params], grads, None)
        with torch.no_grad():
            for p, w in zip(params, new):
                p.copy_(w)
        return loss

    return step


def gnndyn_probed_step(model, op: Operator, x, y, lr: float) -> Step:
    """The trainer's probed step: streamed stats, then every probe's numbers read."""
    from gnndyn.models import get_loss
    from gnndyn.probes import ProbeContext, dirichlet_probe, gradient_norm_probe, smoothing_probe, spectral_norm_probe
    from gnndyn.training import GradientDescent, loss_and_grads

    probes = [smoothing_probe(), dirichlet_probe(), gradient_norm_probe(), spectral_norm_probe()]
    want = frozenset().union(*(p.stats for p in probes))
    opt, ce, params = GradientDescent(lr), get_loss("cross-entropy"), list(model.parameters())

    def step() -> torch.Tensor:
        loss, grads = loss_and_grads(model, op, x, y, ce, None, keep_signals=False, stats=want)
        ctx = ProbeContext(step=0, model=model, loss=0.0, signals=model.signals, grads=grads, op=op)
        for p in probes:
            p(ctx)
        new, _ = opt.update([p.detach() for p in params], grads, None)
        with torch.no_grad():
            for p, w in zip(params, new):
                p.copy_(w)
        model.signals = None
        return loss

    return step


class _SymProp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, P):  # type: ignore[override]
        ctx.P = P
        return P @ h

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return ctx.P @ g, None


def _loop_step(params: list[torch.Tensor], x, y, lr: float, layer: Callable[[int, torch.Tensor], torch.Tensor]) -> Step:
    """Autograd of ``layer(k, h)`` for k = 0..L, tanh between layers, cross-entropy, a GD update of ``params``."""
    def step() -> torch.Tensor:
        h = x
        for k in range(len(params)):
            h = layer(k, h)
            if k < len(params) - 1:
                h = torch.tanh(h)
        loss = tf.cross_entropy(h, y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(lr * g)
        return loss.detach()

    return step


def fair_step(weights, P64: torch.Tensor, x, y, lr: float) -> Step:
    return _loop_step(weights, x, y, lr, lambda k, h: _SymProp.apply(h, P64) @ weights[k])


def plain_step(weights, P64: torch.Tensor, x, y, lr: float) -> Step:
    return _loop_step(weights, x, y, lr, lambda k, h: torch.sparse.mm(P64, h) @ weights[k])


def pyg_step(weights: list[torch.Tensor], op: Operator, x, y, lr: float) -> Step:
    from torch_geometric.nn import GCNConv

    coo = op.matrix.to_sparse_coo().coalesce()
    # message passing sums x_j over edges (j → i): P_ij is the weight of the edge from j to i
    ei = torch.stack([coo.indices()[1], coo.indices()[0]]).to(torch.long)
    ew = coo.values()
    layers = torch.nn.ModuleList()
    for W in weights:
        conv = GCNConv(W.shape[0], W.shape[1], bias=False, normalize=False).to(device=W.device, dtype=W.dtype)
        with torch.no_grad():
            conv.lin.weight.copy_(W.detach().T)
        layers.append(conv)
    return _loop_step([c.lin.weight for c in layers], x, y, lr, lambda k, h: layers[k](h, ei, ew))


def floor_step(weights: list[torch.Tensor], op: Operator, x, y, lr: float) -> Step:
    """The kernels of one step into preallocated buffers (see the module docstring)."""
    W = [w.detach().clone() for w in weights]
    L, n = len(W) - 1, x.shape[0]
    F = [torch.empty(n, w.shape[0], dtype=x.dtype, device=x.device) for w in W]
    Y = [None] + [torch.empty(n, w.shape[1], dtype=x.dtype, device=x.device) for w in W[:-1]]
    dX = {w.shape[0]: torch.empty(n, w.shape[0], dtype=x.dtype, device=x.device) for w in W}
    P = op.matrix

    def step() -> torch.Tensor:
        h = x
        for k in range(L + 1):
            spmm(P, h, F[k])
            if k < L:
                h = torch.mm(F[k], W[k], out=Y[k + 1]).tanh_()
        out = torch.mm(F[L], W[L])
        loss, B = _ce_grad(out, y)
        for k in range(L, -1, -1):
            dW = torch.mm(F[k].t(), B)
            if k > 0:
                G = torch.mm(B, W[k].t(), out=F[k])
                d = spmm(P, G, dX[G.shape[1]])
                B = torch.ops.aten.tanh_backward.grad_input(d, Y[k], grad_input=Y[k])
            W[k].sub_(lr * dW)
        return loss

    return step
