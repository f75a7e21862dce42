r""":math:`\lambda_T` of Xu et al. (ICML 2021): :math:`\lambda^{(H)}_T` of Thm 1 (eq. (8)) and
:math:`\lambda^{(1:H)}_T = \min_l \lambda^{(l)}_T` of Thm 2 (eqs. (10)–(12)), with
:math:`\lambda^{(l)}_T = \inf_{t\in[0,T]}\lambda_{\min}((\bar B^{(1:l)}_t)^\top\bar B^{(1:l)}_t)`.

* :func:`layer_lambdas` — :math:`\lambda^{(l)}` for l = 0..H at the current weights, with its numerical
  resolution;
* :func:`running_min` — the infimum over [0, T], sampled on a schedule.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla
import scipy.sparse.linalg as spla
import torch

from gnndyn.algebra.spectrum import EPS
from gnndyn.errors import GnndynError
from gnndyn.models.linear_gnn import XuGNN


def layer_lambdas(model: XuGNN, *, method: str = "auto") -> tuple[list[float], list[float]]:
    r""":math:`\lambda^{(l)} = \lambda_{\min}((\bar B^{(1:l)})^\top\bar B^{(1:l)})` for l = 0..H (Thm 1, Thm 2), and
    the numerical resolution of each (values below it are rounding noise).

    :math:`\lambda^{(0)} = 1` (:math:`\bar B^{(1:0)} = I`, §3.2). When :math:`\min(m_1..m_l) < m_x` the
    :math:`m_x\times m_x` matrix has rank < m_x and :math:`\lambda^{(l)} = 0` exactly. Otherwise
    :math:`\lambda^{(l)} = \sigma_{m_x}(\bar B^{(1:l)})^2`, computed without forming the Gram (more accurate for
    tiny values than its eigen-decomposition):

    * ``svd``: singular values of the product :math:`\bar B^{(1:l)}` (an :math:`m_l\times m_x` matrix);
    * ``lu`` (square layers, :math:`m_l = m_x` for all l — the paper's setting): :math:`\sigma_{\min}(\bar B) =
      1/\|\bar B^{-1}\|_2` with :math:`\bar B^{-1} = B^{(1)-1}\cdots B^{(l)-1}` applied factor by factor through LU
      solves and :math:`\|\cdot\|_2` by Lanczos (``scipy.sparse.linalg.svds``) — O(l m²) per iteration after
      O(m³) factorizations, instead of an O(m³) SVD per layer;
    * ``auto``: ``lu`` when every layer is square, else ``svd``.

    The resolution reported is absolute for ``svd``, :math:`(m\,\epsilon\,\|\bar B^{(1:l)}\|_2)^2` (singular values
    of an explicit product carry an error ~ eps·σ_max), and relative for ``lu``,
    :math:`\lambda^{(l)}\min(1, 4m\epsilon\sum_{k\le l}\kappa(B^{(k)}))` with κ over-estimated by
    :math:`\|B\|_F\cdot 2\|B^{-1}\|_2` (power iterations): backward-stable solves perturb each factor by
    ~ eps‖B^{(k)}‖, so tiny λ of deep products stay resolved.
    """
    lams, res = [1.0], [0.0]
    m_x, H = model.in_dim, model.depth
    if H == 0:
        return lams, res
    Bs = [b.detach().to(torch.float64).cpu().numpy() for b in model.B]
    square = all(d == m_x for d in model.dims[1:])
    if method == "auto":
        method = "lu" if square else "svd"
    if method == "lu" and not square:
        raise GnndynError(f"layer_lambdas: method='lu' needs square layers (all widths = m_x = {m_x}); got {model.widths}.")
    if method == "lu":
        import warnings

        lus = []
        for b in Bs:
            with warnings.catch_warnings():
                warnings.simplefilter("error", sla.LinAlgWarning)
                try:
                    lus.append(sla.lu_factor(b))
                except (sla.LinAlgWarning, np.linalg.LinAlgError, ValueError):
                    return layer_lambdas(model, method="svd")
        # condition numbers for the resolution, cheaply: ‖B‖₂ ≤ ‖B‖_F, and ‖B⁻¹‖₂ by 30 power iterations
        # through the LU factors (×2 for the power method's under-estimate)
        kappa = []
        rng = np.random.default_rng(0)
        for b, lu in zip(Bs, lus):
            v = rng.standard_normal(m_x)
            nrm = 0.0
            for _ in range(30):
                w = sla.lu_solve(lu, sla.lu_solve(lu, v, trans=1))  # (BᵀB)⁻¹ v
                nrm = float(np.linalg.norm(w))
                v = w / nrm
            kappa.append(float(np.linalg.norm(b)) * 2.0 * math.sqrt(nrm))
        for l in range(1, H + 1):
            def mv(v, l=l):
                for k in range(l, 0, -1):  # B̄⁻¹ v = B1⁻¹ (B2⁻¹ (... Bl⁻¹ v))
                    v = sla.lu_solve(lus[k - 1], v)
                return v

            def rmv(v, l=l):
                for k in range(1, l + 1):  # B̄⁻ᵀ v = Bl⁻ᵀ (... B1⁻ᵀ v)
                    v = sla.lu_solve(lus[k - 1], v, trans=1)
                return v

            op = spla.LinearOperator((m_x, m_x), matvec=mv, rmatvec=rmv, dtype=np.float64)
            if m_x <= 64:
                inv = np.column_stack([mv(e) for e in np.eye(m_x)])
                top = float(np.linalg.norm(inv, 2))
            else:
                top = float(spla.svds(op, k=1, which="LM", tol=1e-12, return_singular_vectors=False, random_state=0)[0])
            lam_l = 1.0 / top ** 2 if math.isfinite(top) and top > 0 else 0.0
            lams.append(lam_l)
            # backward-stable solves perturb each factor by ~eps·‖B_k‖: relative error ≲ 2 m eps Σ κ(B_k)
            res.append(lam_l * min(1.0, 4.0 * m_x * EPS * sum(kappa[:l])))
        return lams, res
    if method != "svd":
        raise GnndynError(f"layer_lambdas: method must be 'auto', 'svd' or 'lu'; got {method!r}.")
    prod = None
    for l in range(1, H + 1):
        prod = Bs[0] if prod is None else Bs[l - 1] @ prod
        if min(model.dims[1:l + 1]) < m_x:
            lams.append(0.0)
            res.append(0.0)
            continue
        s = sla.svdvals(prod)
        lams.append(float(s[m_x - 1]) ** 2)
        res.append((max(prod.shape) * EPS * float(s[0])) ** 2)
    return lams, res


def running_min(times: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    r""":math:`\hat\lambda_T = \min\{\lambda(t_j): t_j \le T\}` at each T of ``at`` (λ sampled at ``times``).

    The paper's :math:`\lambda_T = \inf_{t\in[0,T]}` is over continuous time; sampled on a schedule, the
    running minimum can only over-estimate it (so a bound evaluated with it is, if anything, tighter
    than the theorem's). Schedules that sample every step make the two agree for gradient descent.
    """
    times, values = np.asarray(times, float), np.asarray(values, float)
    order = np.argsort(times, kind="stable")
    t, v = times[order], np.minimum.accumulate(values[order])
    pos = np.searchsorted(t, np.asarray(at, float), side="right") - 1
    out = np.where(pos >= 0, v[np.clip(pos, 0, None)], np.nan)
    return out


__all__ = ["layer_lambdas", "running_min"]
