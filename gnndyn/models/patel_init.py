r"""Starts for Patel, Savostianov & Schaub's linear GNN (arXiv 2501.14440): lists :math:`[W_1, \dots, W_{H+1}]`
of float64 arrays, :math:`W_\ell \in \mathbb R^{d_\ell\times d_{\ell-1}}`, for ``dims`` = :math:`(d_0 = d_x, d_1, \dots,
d_{H+1} = d_y)`. Set them with :func:`gnndyn.models.patel.set_layers` (or ``patel_gnn(..., weights=...)``).

* ``zero-first`` — Thm 3.1 / Remark 3.3: :math:`W_1(0) = 0`, :math:`W_\ell(0)` the rectangular identity
  (2 ≤ ℓ ≤ H), :math:`W_{H+1}(0) = a\cdot` rectangular identity; then
  :math:`\beta = a^2/4^{H-1}` (every :math:`\sigma_{\min}(W_\ell(0)) = 1` for 2 ≤ ℓ ≤ H, :math:`a` for ℓ = H+1).
* ``xavier`` — Glorot normal, :math:`N(0, 2g^2/(d_{\ell-1} + d_\ell))`.
* ``small`` — i.i.d. :math:`N(0, s^2)` with a small s (default 10⁻³).
* ``balanced`` — Def. 4.1, :math:`W_\ell W_\ell^\top = W_{\ell+1}^\top W_{\ell+1}` for 1 ≤ ℓ ≤ H, built from an SVD:
  :math:`W_\ell = U_\ell\,\Sigma\,U_{\ell-1}^\top` with orthonormal frames :math:`U_\ell \in \mathbb R^{d_\ell\times k}`
  and one common :math:`\Sigma = \mathrm{diag}(s_1..s_k)` (Remark 4.3: balanced layers share their non-zero
  singular values), so both sides equal :math:`U_\ell\Sigma^2U_\ell^\top` to rounding. With ``product`` = P the
  frames and :math:`\Sigma = \Sigma_P^{1/(H+1)}` come from the SVD :math:`P = U\Sigma_PV^\top`, so
  :math:`W_{H+1}\cdots W_1 = P` (the balanced factorization of Thm 4.2). With ``column_space`` = Z (or an
  orthonormal basis), :math:`U_0` lies in the column space of Z: Thm 4.4's condition 2,
  :math:`[W_1(0)U_Z]_{ij} = 0` for j > rank Z.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gnndyn.errors import GnndynError, resolve

INITS = ("zero-first", "xavier", "small", "balanced")


def _dims(dims: Sequence[int]) -> list[int]:
    d = [int(x) for x in dims]
    if len(d) < 3 or any(x < 1 for x in d):
        raise GnndynError(f"dims must be (d_x, d_1, ..., d_H, d_y) with H ≥ 1 and every entry ≥ 1; got {list(dims)}.")
    return d


def rect_identity(rows: int, cols: int, a: float = 1.0) -> np.ndarray:
    """``a`` times the rows × cols matrix with ones on the main diagonal (the paper's "diagonal matrix")."""
    return a * np.eye(rows, cols)


def zero_first_layer(dims: Sequence[int], a: float = 2.0) -> list[np.ndarray]:
    r"""Remark 3.3: :math:`W_1 = 0`, :math:`W_\ell = I_{d_\ell\times d_{\ell-1}}` (2 ≤ ℓ ≤ H),
    :math:`W_{H+1} = a I_{d_y\times d_H}` (the paper's experiments: a = 2 synthetic, 1.5 climate)."""
    d = _dims(dims)
    if not a > 0:
        raise GnndynError(f"Remark 3.3's a must be > 0 (W_{{H+1}}(0) full rank); got {a}.")
    H = len(d) - 2
    out = [np.zeros((d[1], d[0]))]
    out += [rect_identity(d[l], d[l - 1]) for l in range(2, H + 1)]
    out.append(rect_identity(d[H + 1], d[H], float(a)))
    return out


def xavier(dims: Sequence[int], *, gain: float = 1.0, seed: int = 0) -> list[np.ndarray]:
    """Glorot normal: entries of :math:`W_\\ell` i.i.d. :math:`N(0, 2\\,gain^2/(d_{\\ell-1} + d_\\ell))`."""
    d = _dims(dims)
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((d[l], d[l - 1])) * gain * np.sqrt(2.0 / (d[l] + d[l - 1])) for l in range(1, len(d))]


def small_random(dims: Sequence[int], *, scale: float = 1e-3, seed: int = 0) -> list[np.ndarray]:
    """Entries i.i.d. :math:`N(0, scale^2)` (a start near the saddle at 0)."""
    d = _dims(dims)
    if not scale > 0:
        raise GnndynError(f"scale must be > 0; got {scale}.")
    rng = np.random.default_rng(seed)
    return [scale * rng.standard_normal((d[l], d[l - 1])) for l in range(1, len(d))]


def _frame(rng: np.random.Generator, rows: int, k: int) -> np.ndarray:
    """A random rows × k matrix with orthonormal columns (QR of a Gaussian, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((rows, k)))
    return q * np.sign(np.diag(r))[None, :]


def column_basis(Z: np.ndarray, tol: float | None = None) -> np.ndarray:
    """An orthonormal basis of the column space of Z (left singular vectors above NumPy's rank tolerance)."""
    U, s, _ = np.linalg.svd(np.asarray(Z, dtype=np.float64), full_matrices=False)
    t = max(Z.shape) * np.finfo(np.float64).eps * (s[0] if s.size else 0.0) if tol is None else tol
    return U[:, : int((s > t).sum())]


def balanced(dims: Sequence[int], *, scale: float = 1.0, singular_values: Sequence[float] | None = None,
             rank: int | None = None, product: np.ndarray | None = None, column_space: np.ndarray | None = None,
             seed: int = 0) -> list[np.ndarray]:
    r"""A balanced start (Def. 4.1), :math:`W_\ell = U_\ell\Sigma U_{\ell-1}^\top`.

    Args:
        dims: :math:`(d_x, d_1, \dots, d_H, d_y)`.
        scale: the common singular value when neither ``singular_values`` nor ``product`` is given.
        singular_values: :math:`s_1..s_k` (k = their number).
        rank: k (default: the largest possible, min(dims), or the rank of ``column_space``).
        product: a target :math:`P \in \mathbb R^{d_y\times d_x}`: the start is the balanced factorization of P
            (frames and :math:`\Sigma_P^{1/(H+1)}` from its SVD; hidden frames random).
        column_space: Z (d_x × n̄) or an orthonormal basis (d_x × r): :math:`U_0` in its column space
            (Thm 4.4, condition 2). Ignored with ``product``, whose row space decides.
        seed: for the random frames.
    """
    d = _dims(dims)
    H = len(d) - 2
    rng = np.random.default_rng(seed)
    if product is not None:
        P = np.asarray(product, dtype=np.float64)
        if P.shape != (d[-1], d[0]):
            raise GnndynError(f"product must be d_y × d_x = {(d[-1], d[0])}; got {P.shape}.")
        U, s, Vt = np.linalg.svd(P, full_matrices=False)
        k = int((s > max(P.shape) * np.finfo(np.float64).eps * (s[0] if s.size else 0)).sum())
        if k == 0:
            raise GnndynError("product is the zero matrix; a balanced factorization of 0 is all zeros (use rank 0).")
        if k > min(d):
            raise GnndynError(f"product has rank {k} but the narrowest layer has width {min(d)}; it cannot be factored.")
        sig = s[:k] ** (1.0 / (H + 1))
        frames = [Vt[:k].T] + [_frame(rng, d[l], k) for l in range(1, H + 1)] + [U[:, :k]]
    else:
        basis = None
        if column_space is not None:
            C = np.asarray(column_space, dtype=np.float64)
            if C.ndim != 2 or C.shape[0] != d[0]:
                raise GnndynError(f"column_space must have d_x = {d[0]} rows; got shape {C.shape}.")
            orthonormal = C.shape[1] <= C.shape[0] and np.allclose(C.T @ C, np.eye(C.shape[1]), atol=1e-12)
            basis = C if orthonormal else column_basis(C)
        kmax = min(d) if basis is None else min(min(d), basis.shape[1])
        if singular_values is not None:
            sig = np.asarray(singular_values, dtype=np.float64)
            k = sig.size
        else:
            k = kmax if rank is None else int(rank)
            sig = np.full(k, float(scale))
        if not 1 <= k <= kmax:
            raise GnndynError(f"the balanced rank must be in [1, {kmax}] (min of the widths"
                              f"{'' if basis is None else ' and rank of the column space'}); got {k}.")
        if np.any(sig <= 0):
            raise GnndynError(f"singular values must be > 0; got {sig}.")
        U0 = _frame(rng, d[0], k) if basis is None else basis @ _frame(rng, basis.shape[1], k)
        frames = [U0] + [_frame(rng, d[l], k) for l in range(1, H + 2)]
    return [(frames[l] * sig[None, :]) @ frames[l - 1].T for l in range(1, H + 2)]


def make_init(name: str, dims: Sequence[int], **options) -> list[np.ndarray]:
    """One of :data:`INITS` by name (unknown names list the valid ones); ``options`` go to its builder."""
    fn = resolve("init", name, {"zero-first": zero_first_layer, "xavier": xavier, "small": small_random,
                                "balanced": balanced})
    try:
        return fn(dims, **options)
    except TypeError as exc:
        raise GnndynError(f"init {name!r} got unexpected options {sorted(options)}: {exc}") from exc


__all__ = ["INITS", "balanced", "column_basis", "make_init", "rect_identity", "small_random", "xavier", "zero_first_layer"]
