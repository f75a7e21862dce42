r"""Linear and multiscale linear GNNs of Xu, Zhang, Jegelka & Kawaguchi (ICML 2021), their ReLU
versions, and the paper's losses.

**Convention: nodes are columns here**, as in the paper (everywhere else in gnndyn nodes are rows).
The data matrix is :math:`X \in \mathbb R^{m_x\times n}`, the aggregation matrix
:math:`S \in \mathbb R^{n\times n}`, the labelled nodes :math:`I \subseteq [n]` with
:math:`\bar n = |I|`, the targets :math:`Y \in \mathbb R^{m_y\times\bar n}`.

* Linear GNN (Def. 1, eq. (2)): :math:`X^{(l)} = B^{(l)} X^{(l-1)} S`, :math:`f = W X^{(H)}
  = W B^{(H)}\cdots B^{(1)} X S^H` with :math:`B^{(l)} \in \mathbb R^{m_l\times m_{l-1}}`
  (:math:`m_0 = m_x`) and :math:`W \in \mathbb R^{m_y\times m_H}`.
* Multiscale linear GNN (Def. 2, eqs. (3)–(4), Jumping Knowledge): :math:`f = \sum_{l=0}^H
  W^{(l)} X^{(l)}` with :math:`W^{(l)} \in \mathbb R^{m_y\times m_l}`.
* ReLU versions (eq. (1)): :math:`X^{(l)} = \mathrm{ReLU}(B^{(l)} X^{(l-1)} S)`, same read-outs
  (the nonlinear GNNs of Figures 1 and 4).
* Losses (eq. (5)): the squared loss of Thms 1–2, :math:`L = \|f(X,W,B)_{*I} - Y\|_F^2` — **no ½ and
  no 1/n̄** — and the cross-entropy of Section 4's experiments, averaged over the labelled nodes
  (PyTorch's convention; the paper does not state the reduction).

Because the linear models are linear in the propagated features, only the blocks
:math:`G_l = X (S^l)_{*I} \in \mathbb R^{m_x\times\bar n}` (:math:`l = 0..H`) enter the training loss:
:func:`propagated_blocks` computes them once with sparse products (never forming :math:`S^H`), and
the linear models train on them exactly. The ReLU models propagate through the whole graph each step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as tf
from torch import nn

from gnndyn.algebra.propagation import propagated_blocks
from gnndyn.errors import GnndynError, resolve
from gnndyn.operators.base import Operator

ACTIVATIONS = ("linear", "relu")
INITS = ("uniform", "normal", "orthogonal")


class _SparseRows(torch.autograd.Function):
    """Y = X Wᵀ for a constant sparse CSR X (n × m_x) with a cached CSR transpose for the backward
    (∂/∂W = (Xᵀ dY)ᵀ), so no sparse transpose is built per step."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, x_t: torch.Tensor, w: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.x_t = x_t
        return x @ w.T

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return None, None, (ctx.x_t @ grad).T


@dataclass
class XuData:
    r"""What a Xu et al. model is trained on: features, operator, labelled nodes, and the blocks
    :math:`G_l = X(S^l)_{*I}` (paper convention, computed lazily up to the deepest depth asked for).

    Attributes:
        x_rows: ``(n, m_x)`` features, nodes as rows (gnndyn's convention); :math:`X = x_{rows}^\top`.
        op: the aggregation matrix S.
        nodes: sorted long tensor I of labelled nodes.
        dtype: dtype of the blocks handed to models (float64 for every theorem check).
    """

    x_rows: torch.Tensor
    op: Operator
    nodes: torch.Tensor
    dtype: torch.dtype = torch.float64
    _blocks: list[torch.Tensor] = field(default_factory=list, repr=False)
    _op_t: Operator | None = field(default=None, repr=False)
    _x_sparse: dict = field(default_factory=dict, repr=False)

    @property
    def in_dim(self) -> int:
        return int(self.x_rows.shape[1])

    @property
    def num_labelled(self) -> int:
        return int(self.nodes.numel())

    def blocks(self, depth: int) -> list[torch.Tensor]:
        """:math:`[G_0, ..., G_H]` for H = ``depth`` (cached; extended on demand)."""
        if len(self._blocks) < depth + 1:
            self._blocks = [b.to(self.dtype) for b in propagated_blocks(self.op, self.x_rows, self.nodes, depth)]
        return self._blocks[: depth + 1]

    def first_layer(self, w: torch.Tensor) -> torch.Tensor:
        """:math:`(B^{(1)}X)^\top = X^\top B^{(1)\top}` in rows convention; with sparse features (Planetoid
        bag-of-words) a CSR product costing nnz(X)·m_1 instead of n·m_x·m_1, transposes cached."""
        dtype = w.dtype
        if dtype not in self._x_sparse:
            x = self.x_rows.to(dtype)
            if float((x != 0).float().mean()) < 0.2:
                from gnndyn.operators.base import csr_from_scipy

                xs = sp.csr_matrix(self.x_rows.numpy())
                self._x_sparse[dtype] = (csr_from_scipy(xs, dtype), csr_from_scipy(xs.T, dtype))
            else:
                self._x_sparse[dtype] = (x, None)
        x, x_t = self._x_sparse[dtype]
        return x @ w.T if x_t is None else _SparseRows.apply(x, x_t, w)

    def transposed_operator(self) -> Operator:
        r""":math:`S^\top` as an operator (S itself when symmetric): rows-convention propagation of
        :math:`X S` is :math:`S^\top X^\top`."""
        if self.op.symmetric:
            return self.op
        if self._op_t is None:
            self._op_t = Operator(f"{self.op.name}ᵀ", self.op.transposed_matrix(), False, False)
        return self._op_t


def make_xu_data(x_rows: torch.Tensor, op: Operator, nodes: torch.Tensor | np.ndarray,
                 dtype: torch.dtype = torch.float64) -> XuData:
    """Validate and bundle features, operator and labelled nodes (sorted, unique)."""
    if x_rows is None:
        raise GnndynError("the graph has no node features; Xu et al.'s models need X (load a dataset with features).")
    idx = torch.as_tensor(np.unique(np.asarray(torch.as_tensor(nodes).cpu().numpy(), dtype=np.int64)))
    op = op.to(dtype=torch.float64)
    return XuData(x_rows.to(torch.float64), op, idx, dtype)


# --------------------------------------------------------------------------------------------- the model
def _init_matrix(rows: int, cols: int, init: str, scale: float, gen: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """A ``rows × cols`` weight (a map from ``cols`` to ``rows`` units; fan-in = ``cols``).

    * ``uniform``: U(−s/√fan_in, s/√fan_in) — torch.nn.Linear's default initialization for s = 1;
    * ``normal``: N(0, s²/fan_in);
    * ``orthogonal``: s × a matrix with orthonormal rows or columns (QR of a Gaussian matrix).
    """
    if init == "uniform":
        bound = scale / math.sqrt(cols)
        return (torch.rand(rows, cols, generator=gen, dtype=torch.float64) * 2 - 1).mul_(bound).to(dtype)
    if init == "normal":
        return (torch.randn(rows, cols, generator=gen, dtype=torch.float64) * (scale / math.sqrt(cols))).to(dtype)
    if init == "orthogonal":
        a = torch.randn(max(rows, cols), min(rows, cols), generator=gen, dtype=torch.float64)
        q, r = torch.linalg.qr(a)
        q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
        q = q if rows >= cols else q.T
        return (scale * q).to(dtype)
    raise GnndynError(f"unknown init {init!r}; valid inits: {', '.join(INITS)}.")


class XuGNN(nn.Module):
    r"""Linear GNN (Def. 1) or multiscale linear GNN (Def. 2) of Xu et al. 2021, or their ReLU versions.

    Parameters are stored in the paper's shapes: ``B[l-1]`` is :math:`B^{(l)} \in
    \mathbb R^{m_l\times m_{l-1}}` for l = 1..H and ``W[0]`` is :math:`W \in \mathbb R^{m_y\times m_H}`
    (plain) or ``W[l]`` is :math:`W^{(l)} \in \mathbb R^{m_y\times m_l}` for l = 0..H (multiscale).
    ``parameters()`` yields W's first, then B's.

    Args:
        in_dim: :math:`m_x`.
        widths: :math:`(m_1, ..., m_H)`; ``[]`` gives H = 0 (f = W X).
        out_dim: :math:`m_y`.
        multiscale: Def. 2 (Jumping Knowledge read-out of every layer) instead of Def. 1.
        activation: ``linear`` (Defs. 1–2) or ``relu`` (eq. (1)).
        init: ``uniform`` (torch.nn.Linear's default: U(±1/√fan_in)), ``normal`` or ``orthogonal``.
        init_scale: multiplies the initialization.
        seed: seeds the initialization.

    ``forward(data)`` returns :math:`f(X, W, B)_{*I} \in \mathbb R^{m_y\times\bar n}`.
    """

    def __init__(self, in_dim: int, widths: Sequence[int], out_dim: int, *, multiscale: bool = False,
                 activation: str = "linear", init: str = "uniform", init_scale: float = 1.0, seed: int = 0,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if in_dim < 1 or out_dim < 1 or any(w < 1 for w in widths):
            raise GnndynError(f"dimensions must be ≥ 1; got in_dim={in_dim}, widths={widths}, out_dim={out_dim}.")
        self.activation = resolve("activation", activation, {a: a for a in ACTIVATIONS})
        if init not in INITS:
            raise GnndynError(f"unknown init {init!r}; valid inits: {', '.join(INITS)}.")
        self.in_dim, self.out_dim, self.widths, self.multiscale = int(in_dim), int(out_dim), widths, bool(multiscale)
        gen = torch.Generator().manual_seed(int(seed))
        dims = [self.in_dim, *widths]
        self.dims = dims
        readouts = range(len(dims)) if multiscale else [len(dims) - 1]
        self.W = nn.ParameterList([nn.Parameter(_init_matrix(out_dim, dims[l], init, init_scale, gen, dtype)) for l in readouts])
        self.B = nn.ParameterList([nn.Parameter(_init_matrix(dims[l], dims[l - 1], init, init_scale, gen, dtype))
                                   for l in range(1, len(dims))])

    @property
    def depth(self) -> int:
        return len(self.widths)

    @property
    def linear(self) -> bool:
        return self.activation == "linear"

    def readout(self, l: int) -> torch.Tensor:
        """:math:`W^{(l)}` (multiscale) or W (plain, l = H)."""
        if self.multiscale:
            return self.W[l]
        if l != self.depth:
            raise GnndynError(f"a plain linear GNN reads out layer H={self.depth} only; asked for layer {l}.")
        return self.W[0]

    def bbar(self, upto: int, start: int = 1) -> torch.Tensor:
        r""":math:`\bar B^{(start:upto)} = B^{(upto)}\cdots B^{(start)}`; the identity of size
        :math:`m_{start-1}` when start > upto (Xu et al. §4 notation)."""
        if start > upto:
            m = self.dims[start - 1]
            return torch.eye(m, dtype=self.B[0].dtype if len(self.B) else self.W[0].dtype)
        out = self.B[start - 1]
        for l in range(start + 1, upto + 1):
            out = self.B[l - 1] @ out
        return out

    def end_to_end(self) -> list[torch.Tensor]:
        r"""The linear maps :math:`\tilde W_l = W^{(l)}\bar B^{(1:l)}` (:math:`m_y\times m_x`) of each
        read-out: one for Def. 1 (l = H), H + 1 for Def. 2 (linear models only)."""
        if not self.linear:
            raise GnndynError("end_to_end() exists for linear models only (activation='linear').")
        ls = range(self.depth + 1) if self.multiscale else [self.depth]
        out = []
        for l in ls:
            m = self.readout(l)
            for k in range(l, 0, -1):
                m = m @ self.B[k - 1]
            out.append(m)
        return out

    # ------------------------------------------------------------------ forward
    def forward(self, data: XuData, *, full_graph: bool | None = None) -> torch.Tensor:
        """:math:`f_{*I}` (:math:`m_y\\times\\bar n`). Linear models use the precomputed blocks unless
        ``full_graph=True`` (layer-wise propagation over all n nodes, the definition itself)."""
        if data.in_dim != self.in_dim:
            raise GnndynError(f"the model expects {self.in_dim} input features but the data has {data.in_dim}.")
        if full_graph is None:
            full_graph = not self.linear
        if not full_graph:
            if not self.linear:
                raise GnndynError("a ReLU model cannot use the precomputed blocks; use full_graph=True.")
            return self._forward_blocks(data.blocks(self.depth))
        return self._forward_graph(data)

    def _forward_blocks(self, G: list[torch.Tensor]) -> torch.Tensor:
        H, nbar = self.depth, G[0].shape[1]
        G = [g.to(self.W[0].dtype) for g in G]
        if not self.multiscale:
            z = G[H]
            for l in range(1, H + 1):
                z = self.B[l - 1] @ z
            return self.W[0] @ z
        out = self.W[0] @ G[0]
        if H == 0:
            return out
        z = torch.cat(G[1:], dim=1)  # m_x × H n̄: B^(l) is applied to every deeper scale at once
        for l in range(1, H + 1):
            z = self.B[l - 1] @ z
            out = out + self.W[l] @ z[:, :nbar]
            z = z[:, nbar:]
        return out

    def _forward_graph(self, data: XuData) -> torch.Tensor:
        St = data.transposed_operator()
        if St.dtype != self.W[0].dtype:
            St = St.to(dtype=self.W[0].dtype)
        idx = data.nodes
        h = data.x_rows.to(self.W[0].dtype)  # rows convention: (X^(l))ᵀ = σ(Sᵀ (X^(l-1))ᵀ B^(l)ᵀ)
        outs = []
        if self.multiscale:
            outs.append(self.W[0] @ h[idx].T)
        for l in range(1, self.depth + 1):
            z = data.first_layer(self.B[0]) if l == 1 else h @ self.B[l - 1].T
            h = St @ z
            if self.activation == "relu":
                h = torch.relu(h)
            if self.multiscale:
                outs.append(self.W[l] @ h[idx].T)
        if not self.multiscale:
            return self.W[0] @ h[idx].T
        return torch.stack(outs).sum(0)


# ------------------------------------------------------------------------------------------------- losses
def one_hot_columns(labels: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Class indices → the paper's :math:`Y \\in \\mathbb R^{m_y\\times\\bar n}` (one-hot columns)."""
    if labels.dim() != 1 or labels.is_floating_point():
        raise GnndynError(f"labels must be a 1-d integer tensor; got {labels.dtype} {tuple(labels.shape)}.")
    if int(labels.max()) >= num_classes or int(labels.min()) < 0:
        raise GnndynError(f"labels range over [{int(labels.min())}, {int(labels.max())}] but num_classes={num_classes}.")
    return tf.one_hot(labels, num_classes).to(dtype).T.contiguous()


@dataclass(frozen=True)
class XuObjective:
    r"""A training loss on the labelled nodes, as a function of :math:`\hat Y = f_{*I}` (columns = nodes).

    * ``squared`` (Thms 1–2, eq. (5)): :math:`L = \|\hat Y - Y\|_F^2`, Y one-hot; no ½, no 1/n̄;
      :math:`V = \partial L/\partial\hat Y = 2(\hat Y - Y)` (Section 4.3).
    * ``cross-entropy``: :math:`L = -\frac1{\bar n}\sum_{i\in I}\log\mathrm{softmax}(\hat Y_{*i})_{y_i}`.

    Two options serve Patel, Savostianov & Schaub (arXiv 2501.14440, eq. (2.2)), whose loss is
    :math:`\mathcal L = \frac1m\|\hat Y - Y\|_F^2` with :math:`m = \bar n d_y` and real-valued targets:
    ``loss_scale`` multiplies the squared loss (1/m there; the default 1.0 leaves Xu et al.'s loss
    untouched, bit for bit), and ``targets`` gives a real Y (:math:`m_y\times\bar n`) in place of the one-hot
    labels (``labels`` is then ignored and may be None). See :mod:`gnndyn.models.patel`.

    Attributes:
        name: ``squared`` or ``cross-entropy``.
        labels: class index of each labelled node, in the order of ``XuData.nodes``.
        num_classes: :math:`m_y`.
        loss_scale: factor on the squared loss (default 1: Xu et al.'s eq. (5)).
        targets: a real-valued Y (``num_classes × n̄``), squared loss only; None for one-hot labels.
    """

    name: str
    labels: torch.Tensor | None
    num_classes: int
    loss_scale: float = 1.0
    targets: torch.Tensor | None = None

    def __post_init__(self) -> None:
        resolve("loss", self.name, {"squared": 1, "cross-entropy": 1})
        if not (math.isfinite(self.loss_scale) and self.loss_scale > 0):
            raise GnndynError(f"loss_scale must be a finite number > 0; got {self.loss_scale}.")
        if self.targets is not None:
            if self.name != "squared":
                raise GnndynError(f"real-valued targets need the squared loss; got loss {self.name!r}.")
            if self.targets.dim() != 2 or self.targets.shape[0] != self.num_classes:
                raise GnndynError(f"targets must be m_y × n̄ with m_y = num_classes = {self.num_classes}; "
                                  f"got shape {tuple(self.targets.shape)}.")
        elif self.labels is None:
            raise GnndynError("XuObjective needs either labels (class indices) or real-valued targets.")

    @property
    def num_labelled(self) -> int:
        return int(self.targets.shape[1]) if self.targets is not None else int(self.labels.numel())

    def target(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Y (:math:`m_y\\times\\bar n`): one-hot columns, or the real-valued ``targets``."""
        if self.targets is not None:
            return self.targets.to(dtype)
        return one_hot_columns(self.labels, self.num_classes, dtype)

    def __call__(self, pred: torch.Tensor) -> torch.Tensor:
        if pred.shape != (self.num_classes, self.num_labelled):
            raise GnndynError(f"predictions must be m_y × n̄ = {self.num_classes} × {self.num_labelled}; "
                              f"got {tuple(pred.shape)}.")
        if self.name == "squared":
            loss = ((pred - self.target(pred.dtype)) ** 2).sum()
            return loss if self.loss_scale == 1.0 else self.loss_scale * loss
        return tf.cross_entropy(pred.T, self.labels, reduction="mean")


def random_labels(num_nodes: int, num_classes: int, seed: int) -> torch.Tensor:
    """Labels drawn uniformly at random among the classes (Xu et al. §4.3, "random labels")."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randint(0, num_classes, (num_nodes,), generator=gen)


__all__ = ["XuGNN", "XuData", "XuObjective", "make_xu_data", "propagated_blocks", "one_hot_columns", "random_labels",
           "ACTIVATIONS", "INITS"]
