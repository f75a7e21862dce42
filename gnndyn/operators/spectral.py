r"""Spectral facts of an operator: λ and the spectral gap 1 − λ (Keriven, Assumption 1).

For an operator with a known Perron eigenpair :math:`(\mu_1, v_1)` (gossip, random walk, GCN,
identity), :math:`\lambda = \max_{i \ge 2} |\mu_i|`, the largest modulus of the other eigenvalues —
exactly Assumption 1's λ when S is symmetric and stochastic. It is computed on the symmetric form
(S itself, or the similar symmetric matrix of the random walk):

* ``dense``: all eigenvalues with LAPACK (``numpy.linalg.eigvalsh``), then the one closest to
  :math:`\mu_1` is removed; used up to ``dense_limit`` nodes;
* ``lanczos``: ARPACK (``scipy.sparse.linalg.eigsh``) on the deflated operator
  :math:`x \mapsto Sx - \mu_1 v_1 v_1^\top x`, never forming an n × n matrix.

ARPACK starts from a fixed vector (:func:`start_vector`, seeded), never a random one, so the same
operator gives bitwise the same λ in every process and every call (``gnndyn rerun`` relies on it).

On a disconnected graph the eigenvalue 1 of the gossip matrix is not simple, so λ = 1 and the gap is
0: Assumption 1 fails, which the facts report (``assumption_1``) rather than hide. For a nonnegative
operator with a Perron pair, λ ≤ μ₁ (Perron–Frobenius), so a repeated μ₁ computed a rounding error above
itself is reported as λ = μ₁, never as a negative gap.
For an operator with no known Perron pair (adjacency, Laplacians, GIN), λ is the spectral radius.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from gnndyn.errors import GnndynError
from gnndyn.operators.base import Operator


@dataclass(frozen=True)
class SpectralFacts:
    """What Keriven's Assumption 1 asks of an operator, measured."""

    operator: str
    nodes: int
    symmetric: bool
    stochastic: bool
    nonnegative: bool
    top_eigenvalue: float
    lambda_: float
    spectral_gap: float
    top_is_simple: bool
    assumption_1: bool
    method: str
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lambda"] = d.pop("lambda_")
        return d


def start_vector(n: int, seed: int = 0) -> np.ndarray:
    """The fixed ARPACK start vector of length ``n``: standard normal entries from ``numpy.random.default_rng(seed)``
    (deterministic, and with probability one not orthogonal to any eigenvector)."""
    return np.random.default_rng(seed).standard_normal(n)


def _symmetric_form(op: Operator) -> sp.csr_matrix:
    if op.symmetric:
        return op.scipy()
    if op.similarity is not None:
        return op.similarity
    raise GnndynError(f"operator {op.name!r} is not symmetric and has no symmetric similar form; its λ is not defined here.")


def spectral_facts(
    op: Operator, *, method: str = "auto", dense_limit: int = 1000, tol: float = 0.0, simple_tol: float = 1e-9
) -> SpectralFacts:
    """Compute λ, the spectral gap 1 − λ and the structural facts of Assumption 1 for ``op``.

    Args:
        method: ``"auto"`` (dense up to ``dense_limit`` nodes, Lanczos above), ``"dense"`` or ``"lanczos"``.
        tol: ARPACK tolerance (0 = machine precision).
        simple_tol: the top eigenvalue counts as simple when the next one is below it by more than this.
    """
    if method not in ("auto", "dense", "lanczos"):
        raise GnndynError(f"method must be 'auto', 'dense' or 'lanczos'; got {method!r}.")
    M = _symmetric_form(op)
    n = M.shape[0]
    S = op.scipy()
    nonneg = bool((S.data >= 0).all())
    use_dense = method == "dense" or (method == "auto" and n <= dense_limit)
    note = ""
    if op.perron is not None:
        mu1, v1 = op.perron
        if use_dense:
            ev = np.linalg.eigvalsh(M.toarray())
            k = int(np.argmin(np.abs(ev - mu1)))
            rest = np.delete(ev, k)
            lam = float(np.max(np.abs(rest))) if rest.size else 0.0
            second = float(np.max(rest)) if rest.size else -np.inf
        else:
            lam, second = _deflated_extremes(M, mu1, v1, tol)
        top = float(mu1)
        simple = bool(top - second > simple_tol)
    else:
        if use_dense:
            ev = np.linalg.eigvalsh(M.toarray())
            top = float(ev[np.argmax(np.abs(ev))])
        else:
            top = float(spla.eigsh(M, k=1, which="LM", tol=tol, v0=start_vector(n), return_eigenvectors=False)[0])
        lam = abs(top)
        simple = True
        note = "no Perron eigenpair known: lambda is the spectral radius"
    if op.perron is not None and nonneg:  # Perron–Frobenius: no eigenvalue of a nonnegative S exceeds μ₁ in modulus
        lam = min(lam, abs(top))             # (a repeated μ₁ computed a rounding above it gives λ = μ₁, gap 0)
    elif op.stochastic and op.symmetric:
        lam = min(lam, 1.0)
    assumption_1 = bool(op.symmetric and op.stochastic and nonneg and simple and lam < 1.0)
    if not simple:
        note = "the top eigenvalue is not simple (is the graph disconnected?)"
    return SpectralFacts(
        operator=op.name, nodes=n, symmetric=op.symmetric, stochastic=op.stochastic, nonnegative=nonneg,
        top_eigenvalue=top, lambda_=float(lam), spectral_gap=float(1.0 - lam), top_is_simple=simple,
        assumption_1=assumption_1, method="dense" if use_dense else "lanczos", note=note,
    )


def _deflated_extremes(
    M: sp.csr_matrix, mu1: float, v1: np.ndarray, tol: float, maxiter: int = 100
) -> tuple[float, float]:
    """(max |μ_i|, max μ_i) over the eigenvalues of M other than the Perron one.

    ARPACK on the deflated operator first, with a bounded number of restarts; when the top of the
    spectrum is too clustered for that (tiny spectral gaps, as on citation graphs), shift-invert
    around μ₁ (one sparse LU factorization) finds the two eigenvalues nearest μ₁.
    """
    n = M.shape[0]
    v = np.asarray(v1, dtype=np.float64)

    def mv(x: np.ndarray) -> np.ndarray:
        x2 = np.asarray(x).reshape(n, -1)
        y = M @ x2 - mu1 * np.outer(v, v @ x2)
        return y if np.ndim(x) == 2 else y.reshape(n)

    Lop = spla.LinearOperator((n, n), matvec=mv, matmat=mv, dtype=np.float64)
    ncv = min(n - 1, 48)
    v0 = start_vector(n)
    try:
        sa = float(spla.eigsh(Lop, k=1, which="SA", tol=tol, ncv=ncv, maxiter=max(maxiter, 1000), v0=v0,
                              return_eigenvectors=False)[0])
    except spla.ArpackError as exc:
        if isinstance(exc, spla.ArpackNoConvergence):
            raise
        return _numerically_zero_extremes(mv, n, mu1, exc)
    try:
        la = float(spla.eigsh(Lop, k=1, which="LA", tol=tol, ncv=ncv, maxiter=maxiter, v0=v0,
                              return_eigenvectors=False)[0])
    except spla.ArpackNoConvergence:
        sigma = mu1 + 1e-3 * max(1.0, abs(mu1))
        ev = np.sort(spla.eigsh(M.tocsc(), k=2, sigma=sigma, which="LM", tol=tol, v0=v0, return_eigenvectors=False))
        la = float(ev[0])  # the larger one is the Perron eigenvalue μ₁
    # the deflated direction has eigenvalue 0 in Lop; it is never the extreme unless all others are ~0
    return float(max(abs(la), abs(sa))), la


def _numerically_zero_extremes(mv, n: int, mu1: float, exc: Exception) -> tuple[float, float]:
    r"""The deflated operator's extremes when ARPACK found no Krylov direction to start from (its error −9).

    That happens when :math:`S - \mu_1 v_1 v_1^\top` is zero up to rounding — every other eigenvalue is 0, as
    for the GCN or gossip operator of a complete graph (S = J/n). Rayleigh–Ritz on a fixed random block Q of
    ``min(n − 1, 8)`` orthonormal vectors then gives the eigenvalues of QᵀMQ, of the order of the rounding
    (what the dense path reports too). If the operator is not numerically zero on that block, ARPACK's error
    is raised again, naming the operator's size.
    """
    k = max(1, min(n - 1, 8))
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((n, k)))
    y = mv(q)
    if np.linalg.norm(y, 2) > 1e-10 * max(1.0, abs(mu1)):
        raise GnndynError(f"the Lanczos solver (ARPACK) failed on the deflated {n}-node operator ({exc}) although "
                          "it is not numerically zero; use method='dense' (n up to a few thousand).") from exc
    ev = np.linalg.eigvalsh((q.T @ y + (q.T @ y).T) / 2)
    return float(np.max(np.abs(ev))), float(np.max(ev))
