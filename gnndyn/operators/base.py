"""The one sparse operator type of gnndyn.

An :class:`Operator` is a sparse n × n matrix S (Keriven's P, Xu et al.'s S) stored as a torch CSR
tensor, with the facts the theorems need: is it symmetric, is it (row-)stochastic, and — when known in
closed form — its Perron eigenpair, used to compute λ (Keriven, Assumption 1). Propagation
``op @ X`` is a sparse product whose backward pass reuses S when S is symmetric, and a transpose
built once and cached otherwise (see :func:`propagate`).

Performance shape: the product is memory-bound (nnz·(index + value) + 2·n·d·dtype bytes per call).
The CSR index arrays are kept in 32 bits once (:func:`csr_from_scipy`; 64 bits only when nnz ≥ 2³¹),
and :func:`spmm` multiplies straight into an output tensor (``torch.addmm(out, S, X, beta=0, out=out)``):
no zero-filled scratch result, no copy and no index conversion per call. It runs the same sparse kernel
as ``S @ X`` and gives the same bits (tested).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from gnndyn.errors import GnndynError


INDEX_LIMIT = 2**31 - 1


def spmm(mat: torch.Tensor, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """S X for a CSR matrix S and a dense ``(n, d)`` X, written into ``out`` (allocated, not zeroed, if absent).

    ``beta = 0`` makes the kernel ignore what ``out`` held, so ``out`` may be uninitialised (``torch.empty``).
    Not differentiable: :func:`propagate` wraps it in an autograd function.
    """
    if out is None:
        out = torch.empty((mat.shape[0], x.shape[1]), dtype=x.dtype, device=x.device)
    return torch.addmm(out, mat, x, beta=0, alpha=1, out=out)


class _Propagate(torch.autograd.Function):
    """Y = S X with dY ↦ Sᵀ dY in the backward pass (S is a constant, never differentiated).

    The backward is itself linear, Sᵀ dY; when it must be differentiable (``create_graph=True``, as for
    Hessian-vector products) it runs through this function with S and Sᵀ swapped, so derivatives of any
    order exist."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, mat: torch.Tensor, mat_t: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.mat, ctx.mat_t = mat, mat_t
        return spmm(mat, x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        grad = grad.contiguous()
        if torch.is_grad_enabled() and grad.requires_grad:
            return _Propagate.apply(grad, ctx.mat_t, ctx.mat), None, None
        return spmm(ctx.mat_t, grad), None, None


@dataclass(eq=False)
class Operator:
    """A sparse propagation operator S with its structural facts.

    Attributes:
        name: registry name (``gossip``, ``gcn``...).
        matrix: ``(n, n)`` torch sparse CSR tensor.
        symmetric: S = Sᵀ (exactly, by construction; verified in tests).
        stochastic: S ≥ 0 entrywise and S 1 = 1.
        perron: ``(eigenvalue, unit eigenvector of the symmetric form)`` when known in closed form,
            e.g. (1, 1/√n) for the gossip matrix; ``None`` otherwise.
        similarity: for a non-symmetric S similar to a symmetric matrix (random walk D⁻¹A =
            D^{-1/2}(D^{-1/2}AD^{-1/2})D^{1/2}), the symmetric form as a SciPy matrix; else ``None``.
        params: construction parameters (e.g. ``d_max`` of the gossip matrix).
    """

    name: str
    matrix: torch.Tensor
    symmetric: bool
    stochastic: bool
    perron: tuple[float, np.ndarray] | None = None
    similarity: sp.csr_matrix | None = None
    params: dict[str, Any] = field(default_factory=dict)
    is_identity: bool = False
    dirichlet: "DirichletForm | None" = None
    _mat_t: torch.Tensor | None = field(default=None, repr=False)

    @property
    def num_nodes(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return (self.num_nodes, self.num_nodes)

    @property
    def dtype(self) -> torch.dtype:
        return self.matrix.dtype

    @property
    def device(self) -> torch.device:
        return self.matrix.device

    @property
    def nnz(self) -> int:
        return int(self.matrix._nnz())

    def transposed_matrix(self) -> torch.Tensor:
        """Sᵀ as CSR: S itself when symmetric, else built once and cached."""
        if self.symmetric:
            return self.matrix
        if self._mat_t is None:
            self._mat_t = _index_dtype(self.matrix.t().to_sparse_csr(), self.matrix.crow_indices().dtype)
        return self._mat_t

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "Operator":
        """A copy on ``device`` with values in ``dtype`` (facts kept)."""
        mat = self.matrix
        if dtype is not None and dtype != mat.dtype:
            mat = mat.to(dtype)
        if device is not None:
            mat = mat.to(device)
        form = None if self.dirichlet is None else self.dirichlet.to(mat.device, mat.dtype)
        return Operator(self.name, mat, self.symmetric, self.stochastic, self.perron, self.similarity,
                        dict(self.params), self.is_identity, form)

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        return propagate(self, x)

    def scipy(self) -> sp.csr_matrix:
        """S as a SciPy CSR matrix (float64, on the CPU)."""
        m = self.matrix.detach().to("cpu", torch.float64)
        return sp.csr_matrix(
            (m.values().numpy(), m.col_indices().numpy(), m.crow_indices().numpy()), shape=self.shape
        )

    def spectral(self, **kwargs: Any):
        """Spectral facts (λ, spectral gap...); see :func:`gnndyn.operators.spectral.spectral_facts`."""
        from gnndyn.operators.spectral import spectral_facts

        return spectral_facts(self, **kwargs)


def propagate(op: Operator, x: torch.Tensor) -> torch.Tensor:
    """S X for an operator S and a dense ``(n, d)`` (or ``(n,)``) tensor X, differentiable in X."""
    if x.shape[0] != op.num_nodes:
        raise GnndynError(
            f"cannot propagate: the operator is {op.num_nodes}×{op.num_nodes} but the signal has shape "
            f"{tuple(x.shape)} (nodes must be rows)."
        )
    if op.is_identity:
        return x
    if x.dtype != op.dtype:
        raise GnndynError(f"operator dtype {op.dtype} differs from signal dtype {x.dtype}; use op.to(dtype=...).")
    vec = x.dim() == 1
    xx = x.unsqueeze(1) if vec else x
    if xx.requires_grad:
        out = _Propagate.apply(xx, op.matrix, op.transposed_matrix())
    else:
        out = spmm(op.matrix, xx.contiguous())
    return out.squeeze(1) if vec else out


def csr_from_scipy(m: sp.spmatrix, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A SciPy sparse matrix as a torch sparse CSR tensor (sorted indices, duplicates summed).

    Indices are 32-bit when nnz and the shape fit (the sparse kernels work in 32 bits; keeping them so
    avoids a conversion per product), 64-bit otherwise.
    """
    m = sp.csr_matrix(m)
    m.sum_duplicates()
    m.sort_indices()
    idx = np.int32 if max(m.nnz, *m.shape) <= INDEX_LIMIT else np.int64
    with warnings.catch_warnings():  # torch's "CSR support is in beta" notice is noise for users
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(idx)),
            torch.from_numpy(m.indices.astype(idx)),
            torch.from_numpy(m.data.astype(np.float64)).to(dtype),
            size=m.shape,
        )


def _index_dtype(m: torch.Tensor, idx: torch.dtype) -> torch.Tensor:
    if m.crow_indices().dtype == idx:
        return m
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(m.crow_indices().to(idx), m.col_indices().to(idx), m.values(), size=m.shape)


@dataclass(frozen=True)
class DirichletForm:
    r"""The graph Laplacian L = D − A written through the operator S: :math:`L = s\,\mathrm{diag}(a)
    (\mathrm{diag}(b) - S)\,\mathrm{diag}(c)`, so that the Dirichlet energy is one sparse product,

    .. math:: \mathrm{tr}(X^\top L X) = s \sum (a \circ X) \circ (b \circ (c \circ X) - S (c \circ X)),

    and no product at all when c = 1 and F = S X is at hand (the deep GNN's F⁽ᵏ⁾). For the gossip
    matrix P = I − L/d_max: s = d_max, a = b = c = 1, i.e. d_max·Σ X∘(X − PX). ``None`` stands for
    a vector of ones (a, c) or zeros (b is never ``None``: give ``b`` as a scalar or a vector).
    """

    scale: float
    b: torch.Tensor | float
    a: torch.Tensor | None = None
    c: torch.Tensor | None = None

    def to(self, device: torch.device, dtype: torch.dtype) -> "DirichletForm":
        def mv(v):
            return v.to(device, dtype) if isinstance(v, torch.Tensor) else v

        return DirichletForm(self.scale, mv(self.b), mv(self.a), mv(self.c))
