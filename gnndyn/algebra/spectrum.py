r"""Singular values and row spaces of propagated features — the algebra of linear GNNs that Xu et al.
(ICML 2021, §2.1, Thm 1–2) and Patel, Savostianov & Schaub (arXiv 2501.14440, Thm 3.1, Lemma 2.5) share.

Both papers' linear GNNs are deep linear networks on a fixed matrix of propagated features
:math:`Z = (XS^H)_{*I}` (nodes as columns, see :mod:`gnndyn.algebra.propagation`); their theorems speak of
its singular values:

* σ_min — Xu et al.'s graph condition: the min(p, n̄)-th largest singular value (0 when Z is rank-deficient);
* σ_small — Patel et al.'s smallest *non-zero* singular value (Lemma 2.5, Thm 3.1), which needs a stated
  numerical-rank tolerance to be well defined in floating point;
* the orthonormal basis of the row space, whose projector is the :math:`\mathbf P` of the least-squares optimum.

:func:`row_space` computes all of them with the tolerance it used; :func:`graph_condition` picks the blocks
a theorem speaks of.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla
import torch

from gnndyn.errors import GnndynError

EPS = float(np.finfo(np.float64).eps)

#: above this many entries (p·n̄) the stacked matrix is not decomposed densely: its smaller Gram is.
DENSE_LIMIT = 25_000_000


@dataclass(frozen=True)
class Spectrum:
    r"""Singular values of a stacked matrix :math:`M = [G_{l_1}; \dots] \in \mathbb R^{p\times\bar n}`.

    Attributes:
        shape: (p, n̄).
        sigma_min: the paper's σ_min: the min(p, n̄)-th largest singular value (§2.1); 0 when M is
            rank-deficient (it is then at rounding level, reported as computed).
        sigma_small: the smallest singular value above ``tol`` (σ_small of 2501.14440), NaN if rank 0.
        sigma_max: the largest singular value.
        rank: number of singular values above ``tol``.
        tol: the numerical-rank tolerance: ``max(p, n̄)·eps·σ_max`` for ``dense`` (NumPy's
            ``matrix_rank``), ``sqrt(max(p, n̄)·eps)·σ_max`` for ``gram`` (eigenvalues of the Gram carry an
            absolute error ~ eps·σ_max², so singular values below ~ sqrt(eps)·σ_max are not resolved).
        method: ``dense`` (SVD of M) or ``gram`` (eigen-decomposition of the smaller Gram matrix).
        resolved: False when σ_min is below ``tol`` (then ``sigma_min`` is rounding noise: the paper's
            condition σ_min > 0 fails numerically).
    """

    shape: tuple[int, int]
    sigma_min: float
    sigma_small: float
    sigma_max: float
    rank: int
    tol: float
    method: str

    @property
    def resolved(self) -> bool:
        return self.sigma_min > self.tol

    @property
    def sigma2_min(self) -> float:
        """σ²_min as used by the theorems; exactly 0.0 when σ_min is below the tolerance."""
        return self.sigma_min ** 2 if self.resolved else 0.0

    @property
    def sigma2_small(self) -> float:
        return self.sigma_small ** 2 if self.rank > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(sigma2_min=self.sigma2_min, sigma2_small=self.sigma2_small, resolved=self.resolved,
                 sigma2_min_raw=self.sigma_min ** 2)
        return d


def as_float64(b: torch.Tensor | np.ndarray) -> np.ndarray:
    """A float64 NumPy copy (or view) of a tensor or array."""
    return b.detach().cpu().to(torch.float64).numpy() if isinstance(b, torch.Tensor) else np.asarray(b, dtype=np.float64)


def row_space(blocks: Sequence[torch.Tensor | np.ndarray], *, method: str = "auto", tol: float | None = None,
              basis: bool = True) -> tuple[Spectrum, np.ndarray | None]:
    r"""Spectrum of :math:`M = [B_1; B_2; \dots]` (blocks stacked vertically, each :math:`m\times\bar n`)
    and an orthonormal basis :math:`Q \in \mathbb R^{\bar n\times r}` of its row space (the column space of
    :math:`M^\top`), whose projector :math:`QQ^\top` is the :math:`\mathbf P` of the blog's proof.

    ``method``: ``dense`` (SVD of M), ``gram`` (eigh of the smaller of :math:`M^\top M = \sum B_i^\top B_i`
    and :math:`MM^\top`, assembled block by block — the choice for large matrices), or ``auto`` (dense
    up to :data:`DENSE_LIMIT` entries). σ_max is also checked by Lanczos (``scipy.sparse.linalg.svds``)
    in the ``gram`` path. Krylov methods for the *smallest* singular values were tried and rejected:
    ARPACK did not converge and PROPACK returned a spurious 0 on a 300 × 80 test matrix.
    """
    arrs = [as_float64(b) for b in blocks]
    if not arrs:
        raise GnndynError("row_space needs at least one block.")
    nbar = arrs[0].shape[1]
    if any(a.ndim != 2 or a.shape[1] != nbar for a in arrs):
        raise GnndynError(f"blocks must all be 2-d with the same number of columns; got {[a.shape for a in arrs]}.")
    p = sum(a.shape[0] for a in arrs)
    k = min(p, nbar)
    if method == "auto":
        method = "dense" if p * nbar <= DENSE_LIMIT else "gram"
    Q = None
    if method == "dense":
        M = np.vstack(arrs)
        if basis:
            _, s, vt = np.linalg.svd(M, full_matrices=False)
        else:
            s, vt = np.linalg.svd(M, compute_uv=False), None
        smax = float(s[0]) if s.size else 0.0
        tol_ = max(p, nbar) * EPS * smax if tol is None else float(tol)
        rank = int((s > tol_).sum())
        if basis:
            Q = vt[:rank].T.copy()
    elif method == "gram":
        if nbar <= p:
            K = np.zeros((nbar, nbar))
            for a in arrs:
                K += a.T @ a
            w, V = np.linalg.eigh(K)
        else:
            M = np.vstack(arrs)
            K = M @ M.T
            w, V = np.linalg.eigh(K)
        w = np.clip(w[::-1], 0.0, None)
        V = V[:, ::-1]
        s = np.sqrt(w)
        smax = float(s[0]) if s.size else 0.0
        if smax > 0 and min(p, nbar) > 2:  # cross-check σ_max by Lanczos on the stacked operator
            op = spla.LinearOperator((p, nbar), matvec=lambda v: np.concatenate([a @ v for a in arrs]),
                                     rmatvec=lambda u: sum(a.T @ u[o:o + a.shape[0]] for a, o in
                                                           zip(arrs, np.cumsum([0] + [a.shape[0] for a in arrs])[:-1])),
                                     dtype=np.float64)
            smax_l = float(spla.svds(op, k=1, which="LM", return_singular_vectors=False, random_state=0)[0])
            if not math.isclose(smax_l, smax, rel_tol=1e-6):
                raise GnndynError(f"row_space: σ_max from the Gram ({smax:.6g}) and from Lanczos ({smax_l:.6g}) "
                                  "disagree; the matrix is too ill-conditioned for the Gram path — use method='dense'.")
        tol_ = math.sqrt(max(p, nbar) * EPS) * smax if tol is None else float(tol)
        rank = int((s > tol_).sum())
        if basis:
            if nbar <= p:
                Q = V[:, :rank].copy()
            else:
                M = np.vstack(arrs)
                Q, _ = np.linalg.qr(M.T @ V[:, :rank] / s[:rank])
    else:
        raise GnndynError(f"method must be 'auto', 'dense' or 'gram'; got {method!r}.")
    s = s[:k]
    spec = Spectrum(shape=(p, nbar), sigma_min=float(s[k - 1]) if k else 0.0,
                    sigma_small=float(s[rank - 1]) if rank else math.nan, sigma_max=smax, rank=rank,
                    tol=float(tol_), method=method)
    return spec, Q


def graph_condition(blocks: Sequence[torch.Tensor], depth: int, *, multiscale: bool, method: str = "auto") -> Spectrum:
    r"""The graph condition of Thm 1 (:math:`\sigma_{\min}(X(S^H)_{*I})`, multiscale=False) or of
    Thm 2 (i) (:math:`\sigma_{\min}((\mathcal G_H)_{*I})`, multiscale=True)."""
    use = list(blocks[: depth + 1]) if multiscale else [blocks[depth]]
    return row_space(use, method=method, basis=False)[0]


__all__ = ["DENSE_LIMIT", "EPS", "Spectrum", "as_float64", "graph_condition", "row_space"]
