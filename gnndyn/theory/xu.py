r"""Theory of Xu, Zhang, Jegelka & Kawaguchi, *Optimization of GNNs: implicit acceleration by skip
connections and more depth* (ICML 2021), with the corrected proof step of the 2025 blog post that
restates it (paper 004), and the σ_small variant of arXiv 2501.14440 (paper 003).

Notation is the paper's, **nodes as columns** (see :mod:`gnndyn.models.linear_gnn`):
:math:`G_l = X(S^l)_{*I} \in \mathbb R^{m_x\times\bar n}`, :math:`\mathcal G_H = [G_0; \dots; G_H]
\in \mathbb R^{(H+1)m_x\times\bar n}` (Thm 2 (i)), :math:`\bar B^{(l':l)} = B^{(l)}\cdots B^{(l')}`,
:math:`Y \in \mathbb R^{m_y\times\bar n}`, squared loss :math:`L = \|\hat Y - Y\|_F^2` (no ½, no 1/n̄).

What is here
------------
* :func:`row_space` — σ_min as the paper defines it (the min(p, n̄)-th singular value), the smallest
  non-zero singular value σ_small with the numerical-rank tolerance used, σ_max, and an orthonormal
  basis of the row space of the stacked blocks.
* :func:`global_optimum` — :math:`L^*_H` (Def. 3, eq. (6)) and :math:`L^*_{1:H}` exactly.
* :func:`layer_lambdas` — :math:`\lambda_{\min}((\bar B^{(1:l)})^\top\bar B^{(1:l)})` for l = 0..H;
  :math:`\lambda^{(H)}_T` (Thm 1) and :math:`\lambda^{(1:H)}_T = \min_l \lambda^{(l)}_T` (Thm 2) are their
  running minima along a run.
* :func:`singular_margins`, :func:`deficiency_margin` — Def. 4, Props. 1–3.
* :func:`check_rate_bound` and the wrappers :func:`check_thm1`, :func:`check_thm2` — eqs. (8), (10)–(12).
* :func:`thm3_terms` (product form) and :func:`thm3_terms_kron` (explicit Kronecker products, tiny
  models only) — Thm 3, eqs. (15)–(16); :func:`check_thm3` compares with −‖∇L‖² from autograd.
* :func:`pythagoras` — the blog's corrected step :math:`\|\mathbf P\,\mathrm{vec}(\hat Y - Y)\|^2 = L - L^*`;
  :func:`original_inequality` — App. A.1.3's :math:`(a-b)^2 \ge a^2 - b^2`, true only when b ≥ a or b = 0.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse.linalg as spla
import torch

from gnndyn.algebra.optimum import Optimum, least_squares_optimum, least_squares_pieces
from gnndyn.algebra.spectrum import EPS, Spectrum, graph_condition, row_space
from gnndyn.algebra.spectrum import as_float64 as _np
from gnndyn.errors import GnndynError
from gnndyn.models.linear_gnn import XuData, XuGNN, XuObjective
from gnndyn.theory.verdict import Verdict, aggregate

PAPER = "Xu et al. 2021"
BLOG = "Linear-GNN proof restated (blog, 2025)"


# ============================================================================================ optimum
class _OutOfTime(Exception):
    """Raised inside :func:`nested_rank_search`'s objective when its wall-clock budget is spent."""


def global_optimum(blocks: Sequence[torch.Tensor], Y: torch.Tensor | np.ndarray, widths: Sequence[int], *,
                   multiscale: bool, method: str = "auto", search_restarts: int = 6, search_max_iter: int = 400,
                   search_max_wall_s: float = 60.0) -> Optimum:
    r""":math:`L^*_H` (Def. 1 model) or :math:`L^*_{1:H}` (Def. 2 model), H = len(widths).

    **Plain (Def. 1).** :math:`f_{*I} = \tilde W G_H` with :math:`\tilde W = W\bar B^{(1:H)}`, whose rank is at most
    :math:`r = \min(m_1, \dots, m_H)`; every :math:`m_y\times m_x` matrix of rank ≤ r is reachable.

    * *least-squares case* (:math:`r \ge \min(m_x, m_y)`, in particular when every hidden width is at
      least the input dimension, the setting of Thm 1): :math:`L^*_H = \|Y(I-\mathbf P)\|_F^2`, P the
      projector onto the row space of :math:`G_H`.
    * *rank-constrained case* (:math:`r < \min(m_x, m_y)`): :math:`\tilde WG_H` ranges over the matrices of rank
      ≤ r whose rows lie in the row space of :math:`G_H`, so by Eckart–Young
      :math:`L^*_H = \|Y(I-\mathbf P)\|_F^2 + \sum_{i>r}\sigma_i(Y\mathbf P)^2` (truncated SVD of the projected target).

    **Multiscale (Def. 2).** :math:`f_{*I} = \sum_l \tilde W_l G_l` with the rows of :math:`\tilde W_l` in the row
    space :math:`V_l` of :math:`\bar B^{(1:l)}`, a nested chain :math:`V_1 \supseteq \dots \supseteq V_H` with
    :math:`\dim V_k \le r_k = \min(m_1..m_k)`. If :math:`r_k \ge \min(m_x, (H-k+1)m_y)` for every k (e.g. all
    widths ≥ m_x), every :math:`\tilde W_l` is reachable and :math:`L^*_{1:H} = \|Y(I-\mathbf P)\|_F^2` with P the
    projector onto the row space of the stacked :math:`\mathcal G_H` (exact). Otherwise the optimum is a
    nested-subspace problem without a closed form (for H = 1 it is Eckart–Young again, but the read-outs
    of different depths share the row spaces :math:`V_k`, so no single truncated SVD solves it): ``lower``
    is the least-squares value (the relaxation without the rank caps) and ``upper`` the best feasible value
    found — the smaller of :math:`\min_l L^*_l` (one read-out) and the variable-projection search of
    :func:`nested_rank_search` (details in ``search``). When the two meet (to 10⁻⁹‖Y‖²) L* is exact
    (case ``nested-rank (bounds meet)``); otherwise ``value`` is the lower bound, ``exact=False`` and the
    gap ``upper − lower`` is what remains unknown.
    """
    Yn = _np(Y)
    H = len(widths)
    if len(blocks) < H + 1:
        raise GnndynError(f"global_optimum needs the blocks G_0..G_{H} ({H + 1}); got {len(blocks)}.")
    m_x, m_y = _np(blocks[0]).shape[0], Yn.shape[0]
    if not multiscale:
        return least_squares_optimum([blocks[H]], Yn, min(widths) if widths else None, method=method)
    spec, Q, proj, _ = least_squares_pieces(list(blocks[: H + 1]), Yn, method)
    caps = [min(widths[:k]) for k in range(1, H + 1)]
    free = all(caps[k - 1] >= min(m_x, (H - k + 1) * m_y) for k in range(1, H + 1))
    if free:
        return Optimum(proj, True, "least-squares", proj, proj, proj, min(widths) if widths else None, spec, Q)
    single = min(global_optimum(blocks, Yn, widths[:l], multiscale=False, method=method).value for l in range(H + 1))
    found, info = nested_rank_search(blocks, Yn, widths, restarts=search_restarts, max_iter=search_max_iter,
                                     max_wall_s=search_max_wall_s)
    upper = min(single, found)
    info["single_readout_upper"] = single
    tol = 1e-9 * max(1.0, float((Yn ** 2).sum()))
    if upper - proj <= tol:  # the feasible point reaches the relaxation: L* is known exactly
        return Optimum(upper, True, "nested-rank (bounds meet)", proj, upper, proj, min(widths), spec, Q, info)
    return Optimum(proj, False, "nested-rank (bounds)", proj, upper, proj, min(widths), spec, Q, info)


def nested_rank_search(blocks: Sequence[torch.Tensor | np.ndarray], Y: np.ndarray, widths: Sequence[int], *,
                       restarts: int = 6, max_iter: int = 400, max_wall_s: float = 60.0,
                       seed: int = 0) -> tuple[float, dict[str, Any]]:
    r"""A feasible value of the multiscale problem — an upper bound on :math:`L^*_{1:H}` — by variable projection.

    For fixed :math:`B^{(1)},\dots,B^{(H)}` the read-outs enter linearly, so
    :math:`\phi(B) = \min_{W^{(0..H)}}\|\sum_l W^{(l)}\bar B^{(1:l)}G_l - Y\|_F^2 = \|Y(I - \mathbf P_{F(B)})\|_F^2` with
    :math:`F(B) = [G_0; \bar B^{(1:1)}G_1; \dots; \bar B^{(1:H)}G_H]`, and by the envelope theorem
    :math:`\nabla\phi(B)` is the partial gradient of the loss at the optimal read-outs. φ is minimised by
    L-BFGS over the B's alone (Golub–Pereyra), from a start built from the unconstrained least-squares
    solution (the top right singular vectors of the stacked read-outs :math:`[\tilde W_k; \dots; \tilde W_H]`,
    layer by layer) and from ``restarts − 1`` random starts; every value it returns is attained by a model
    with the given widths, so the minimum is an upper bound. Two reductions keep it small: the part of Y
    explained by :math:`G_0` is removed first (its read-out is unconstrained), and :math:`B^{(1)}` acts only on
    the column space of :math:`[G_1, \dots, G_H]` (dimension q ≤ min(m_x, Hn̄)).

    The search stops ``max_wall_s`` seconds after its set-up (checked at each evaluation; the first start
    always makes at least one evaluation): the best value evaluated so far is still attained, hence still
    an upper bound. On Cora with every node labelled, H = 5 and widths 32 (n̄ = 2708, q = 1431) the set-up
    (SVDs and the least-squares start) took ~90 s on a loaded 2-core machine, and the structured start
    alone gave 2.8·10⁻⁴ against a relaxation of 2·10⁻²⁶ and a single-read-out bound of 212.8.

    Returns (best value, info) with info = {"restarts" (starts run), "values" (one per start),
    "iterations" (negative: evaluations of a start cut by the clock), "q", "stopped_by_wall_clock", "wall_s"}.
    """
    import scipy.optimize as so

    t_start = time.perf_counter()
    Yn = np.asarray(Y, dtype=np.float64)
    G = [_np(b) for b in blocks]
    H = len(widths)
    nbar = Yn.shape[1]
    # remove what G_0 explains (its read-out W^(0) is free)
    _, Q0 = row_space([G[0]], basis=True)
    deflate = (lambda M: M - (M @ Q0) @ Q0.T) if Q0 is not None and Q0.size else (lambda M: M)
    Y0 = deflate(Yn)
    C = np.hstack([deflate(G[l]) for l in range(1, H + 1)])
    U, sv, _ = np.linalg.svd(C, full_matrices=False)
    q = int((sv > max(C.shape) * EPS * (sv[0] if sv.size else 0.0)).sum())
    U = U[:, :q]
    Gt = [torch.from_numpy(U.T @ deflate(G[l])) for l in range(1, H + 1)]  # q × n̄ each
    Yt = torch.from_numpy(Y0)
    dims = [q, *[int(w) for w in widths]]
    shapes = [(dims[k + 1], dims[k]) for k in range(H)]
    sizes = [a * b for a, b in shapes]
    if q == 0:
        return float((Y0 ** 2).sum()), {"restarts": 0, "values": [], "iterations": [], "q": 0,
                                        "stopped_by_wall_clock": False, "setup_s": time.perf_counter() - t_start,
                                        "wall_s": time.perf_counter() - t_start}

    def unpack(z: np.ndarray) -> list[torch.Tensor]:
        out, o = [], 0
        for (a, b), n in zip(shapes, sizes):
            out.append(torch.tensor(z[o:o + n].reshape(a, b), dtype=torch.float64, requires_grad=True))
            o += n
        return out

    def features(Bs: list[torch.Tensor]) -> list[torch.Tensor]:
        F, acc = [], None
        for l in range(H):
            acc = Bs[0] if l == 0 else Bs[l] @ acc
            F.append(acc @ Gt[l])
        return F

    seen, evals = [math.inf], [0]

    def phi(z: np.ndarray) -> tuple[float, np.ndarray]:
        if evals[0] > 0 and time.perf_counter() > deadline:
            raise _OutOfTime
        evals[0] += 1
        Bs = unpack(z)
        F = features(Bs)
        with torch.no_grad():
            Fs = torch.cat(F, 0)
            W = torch.linalg.lstsq(Fs.T, Yt.T, driver="gelsd").solution.T  # optimal read-outs, m_y × Σm_l
        E = W @ torch.cat(F, 0) - Yt
        val = (E ** 2).sum()
        grads = torch.autograd.grad(val, Bs)
        seen[0] = min(seen[0], float(val.detach()))
        return float(val.detach()), np.concatenate([g.reshape(-1).numpy() for g in grads])

    # start 0: truncated SVD of the unconstrained least-squares read-outs, layer by layer
    Gs = torch.cat(Gt, 0).numpy()
    Wls = np.linalg.lstsq(Gs.T, Y0.T, rcond=None)[0].T  # m_y × Hq
    Wl = [Wls[:, l * q:(l + 1) * q] for l in range(H)]
    starts, acc = [], np.eye(q)
    B0 = []
    for k in range(H):
        S = np.vstack([w @ np.linalg.pinv(acc) for w in Wl[k:]])  # read-outs in the coordinates of layer k
        n_in = acc.shape[0]
        if dims[k + 1] >= n_in:
            Bk = np.eye(dims[k + 1], n_in)
        else:
            _, _, vt = np.linalg.svd(S, full_matrices=True)
            Bk = vt[: dims[k + 1]]
        B0.append(Bk)
        acc = Bk @ acc
    starts.append(np.concatenate([b.ravel() for b in B0]))
    rng = np.random.default_rng(seed)
    for _ in range(max(0, restarts - 1)):
        starts.append(np.concatenate([rng.standard_normal(n) / math.sqrt(b) for (_, b), n in zip(shapes, sizes)]))
    values, iters, stopped = [], [], False
    t_setup = time.perf_counter() - t_start
    deadline = time.perf_counter() + max_wall_s
    for z0 in starts:
        seen[0], evals[0] = math.inf, 0
        try:
            res = so.minimize(phi, z0, jac=True, method="L-BFGS-B",
                              options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-12})
            values.append(float(res.fun))
            iters.append(int(res.nit))
        except _OutOfTime:
            stopped = True
            if math.isfinite(seen[0]):  # every evaluated point is a model: its value is still an upper bound
                values.append(seen[0])
                iters.append(-evals[0])
            break
    return min(values), {"restarts": len(values), "values": values, "iterations": iters, "q": q,
                         "stopped_by_wall_clock": stopped, "setup_s": t_setup, "wall_s": time.perf_counter() - t_start}


# ============================================================================================ λ_T
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


# ============================================================================================ margins
@dataclass(frozen=True)
class SingularMargin:
    r"""Def. 4 for one layer l: the largest γ with :math:`\sigma_{\min}(\bar B^{(1:l)}) \ge \gamma` on the whole
    sublevel set :math:`\{L(W, B) \le L(W_0, B_0)\}`.

    Attributes:
        layer: l.
        value: the margin as Def. 4 states it: 0 for every l ≥ 1 (see :func:`singular_margins`).
        upper_bound: :math:`\sigma_{\min}(\bar B_0^{(1:l)})` — γ can never exceed it, the initialization
            being in its own sublevel set.
        witness_scale: ε of the witness point (:math:`B^{(1)} \to \epsilon B^{(1)}`, read-outs of layers
            ≥ 1 → ·1/ε) whose loss equals :math:`L(W_0,B_0)` and whose σ_min is ε·upper_bound.
        witness_sigma_min: σ_min of :math:`\bar B^{(1:l)}` at the witness.
        witness_loss_rel_change: |L(witness) − L0| / L0 (rounding level).
        guarantee: Prop. 1/3's conclusion :math:`\lambda_T \ge \gamma^2` with γ = ``value``.
    """

    layer: int
    value: float
    upper_bound: float
    witness_scale: float
    witness_sigma_min: float
    witness_loss_rel_change: float

    @property
    def guarantee(self) -> float:
        return self.value ** 2


def _sigma_min_bbar(model: XuGNN, l: int) -> float:
    with torch.no_grad():
        s = torch.linalg.svdvals(model.bbar(l).detach().to(torch.float64))
    k = min(model.dims[l], model.in_dim)
    return float(s[k - 1])


def singular_margins(model: XuGNN, data: XuData, objective: XuObjective, *, eps: float = 1e-6) -> list[SingularMargin]:
    r"""Def. 4 (singular margin) of the model's current weights, for every layer l = 1..H.

    The loss is invariant under :math:`B^{(1)} \to \epsilon B^{(1)}`, :math:`W \to W/\epsilon` (plain), or
    :math:`W^{(l)} \to W^{(l)}/\epsilon` for every l ≥ 1 (multiscale): each output term :math:`W^{(l)}\bar B^{(1:l)}`
    is unchanged (for ReLU too, ReLU being positively homogeneous). So the sublevel set of any
    initialization contains points with :math:`\sigma_{\min}(\bar B^{(1:l)})` as small as one likes, and the
    singular margin **as Def. 4 states it is 0 for every initialization and every l ≥ 1**; Prop. 1 and
    Prop. 3 then guarantee only :math:`\lambda_T \ge 0`. This function exhibits the witness numerically
    (loss unchanged to rounding, σ_min scaled by ``eps``) and bounds γ above by its value at initialization.
    """
    if model.depth == 0:
        return []
    import copy

    with torch.no_grad():
        L0 = float(objective(model(data)).detach())
        wit = copy.deepcopy(model)
        wit.B[0].mul_(eps)
        for l in range(len(wit.W)):
            if wit.multiscale and l == 0:
                continue
            wit.W[l].div_(eps)
        L1 = float(objective(wit(data)).detach())
    out = []
    for l in range(1, model.depth + 1):
        ub = _sigma_min_bbar(model, l)
        ws = _sigma_min_bbar(wit, l)
        out.append(SingularMargin(l, 0.0, ub, eps, ws, abs(L1 - L0) / max(abs(L0), 1e-300)))
    return out


def deficiency_margin(model: XuGNN, data: XuData, objective: XuObjective) -> dict[str, float]:
    r"""Deficiency margin of Arora et al. 2019a (Def. 2), the notion Xu et al.'s Prop. 2 relates to the
    singular margin: :math:`c = \sigma_{\min}(\Phi) - \|\tilde W_0 - \Phi\|_F` with :math:`\tilde W_0` the
    end-to-end matrix at initialization and Φ the target end-to-end matrix. In the GNN setting the
    target is taken as the minimum-norm least-squares solution :math:`\Phi = Y G^+` (:math:`G = G_H`, or the
    stacked :math:`\mathcal G_H` with :math:`\tilde W = [\tilde W_0, \dots, \tilde W_H]` for Def. 2), and
    :math:`\sigma_{\min}(\Phi)` is its :math:`\min(m_y, \cdot)`-th singular value. Prop. 2 (informal) says c > 0
    implies a positive singular margin; its formal version (App. A.3) is not in the text gnndyn has.
    """
    H = model.depth
    blocks = data.blocks(H)
    G = np.vstack([_np(b) for b in (blocks if model.multiscale else [blocks[H]])])
    Y = _np(objective.target())
    Phi = Y @ np.linalg.pinv(G)
    with torch.no_grad():
        Wt = np.hstack([_np(m) for m in model.end_to_end()])
    s = np.linalg.svd(Phi, compute_uv=False)
    k = min(Phi.shape)
    dist = float(np.linalg.norm(Wt - Phi))
    return {"deficiency_margin": float(s[k - 1]) - dist, "sigma_min_target": float(s[k - 1]), "distance_to_target": dist}


# ============================================================================================ bounds
@dataclass
class RateBound:
    """A bound of the form :math:`L_T - L^* \\le (L_0 - L^*)\\exp(-4\\sum_k\\lambda^{(k)}_T\\sigma_k^2\\,T)`."""

    name: str
    paper: str
    statement: str
    L_star: float
    sigma2: list[float]
    lam_index: list[int]


def bound_curve(times: np.ndarray, losses: np.ndarray, L_star: float, lam_times: np.ndarray, lam: np.ndarray,
                lam_index: Sequence[int], sigma2: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    r"""(bound(T), rate(T)) with rate(T) = :math:`4\sum_k \hat\lambda^{(k)}_T\sigma_k^2` and bound(T) =
    :math:`(L_0 - L^*)e^{-\mathrm{rate}(T)\,T}`; ``lam`` is (len(lam_times), H+1), column k = :math:`\lambda^{(k)}`."""
    times = np.asarray(times, float)
    rate = np.zeros_like(times)
    for k, s2 in zip(lam_index, sigma2):
        rate += 4.0 * running_min(lam_times, lam[:, k], times) * s2
    bound = (float(losses[0]) - L_star) * np.exp(-rate * times)
    return bound, rate


def check_rate_bound(name: str, paper: str, statement: str, times: np.ndarray, losses: np.ndarray, L_star: float,
                     lam_times: np.ndarray, lam: np.ndarray, lam_index: Sequence[int], sigma2: Sequence[float], *,
                     dynamics: str, label: str, loss: str = "squared", L_star_exact: bool = True,
                     lam_resolution: float | Sequence[float] = 0.0, rtol: float = 1e-9) -> tuple[Verdict, np.ndarray]:
    r"""Evaluate a linear-rate bound (eqs. (8), (10)–(12)) along one recorded run.

    At each recorded time T: gap(T) = :math:`L_T - L^*`, bound(T) from :func:`bound_curve`; the bound
    holds at T when gap ≤ bound + rtol·max(|L_0|, |L^*|) (rounding). The verdict's ``margin`` is
    bound − gap at the tightest point (smallest (bound − gap)/|L_0 − L^*|); details give the first
    violation, the number of violating points, the measured average rate
    :math:`\ln((L_0-L^*)/(L_T-L^*))/T` beside the guaranteed rate at the end, and their ratio.

    ``lam_resolution`` (a number, or one per column of ``lam``) is the numerical resolution of λ: a
    λ_T at or below it counts as 0. Assumptions named in the verdict: the dynamics is gradient flow (the theorems are about the flow;
    for gradient descent at t = kη the bound need not hold), squared loss, σ²_min > 0 and
    λ_T > 0 (otherwise the rate is 0 and the bound says only :math:`L_T \le L_0`), L* exact.
    """
    times, losses = np.asarray(times, float), np.asarray(losses, float)
    if times.size == 0:
        raise GnndynError(f"{name}: no recorded losses to check.")
    bound, rate = bound_curve(times, losses, L_star, lam_times, lam, lam_index, sigma2)
    gap = losses - L_star
    atol = rtol * max(abs(losses[0]), abs(L_star), 1e-300)
    ok = gap <= bound + atol
    scale = max(abs(losses[0] - L_star), 1e-300)
    norm_margin = (bound - gap) / scale
    later = np.flatnonzero(times > times[0])  # at T = 0 bound and gap coincide: the tightest point is later
    j = int(later[np.argmin(norm_margin[later])]) if later.size else 0
    viol = np.flatnonzero(~ok)
    T = times[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        meas = math.log((losses[0] - L_star) / gap[-1]) / T if T > 0 and gap[-1] > 0 and losses[0] > L_star else math.nan
    lam_end = [float(running_min(lam_times, lam[:, k], [T])[0]) for k in lam_index]
    res = np.broadcast_to(np.asarray(lam_resolution, float), (lam.shape[1],))
    assumptions = {
        "gradient flow (the theorem's dynamics)": dynamics == "flow",
        "squared loss": loss == "squared",
        "σ²_min > 0": all(s > 0 for s in sigma2),
        "λ_T > 0 at the end of the run": all(v > res[k] for v, k in zip(lam_end, lam_index)),
        "L* computed exactly": L_star_exact,
    }
    details = {
        "series": label, "dynamics": dynamics, "L_star": L_star, "L0": float(losses[0]), "L_T": float(losses[-1]), "T": float(T),
        "sigma2": [float(s) for s in sigma2], "lambda_T_end": lam_end, "guaranteed_rate_end": float(rate[-1]),
        "measured_rate": meas, "rate_ratio_measured_over_guaranteed": (meas / rate[-1]) if rate[-1] > 0 and math.isfinite(meas) else math.nan,
        "violations": int(viol.size), "points": int(times.size),
        "first_violation_time": float(times[viol[0]]) if viol.size else None,
        "worst_relative_excess": float(-norm_margin.min()) if viol.size else 0.0,
        "bound_end": float(bound[-1]), "gap_end": float(gap[-1]),
    }
    where = f"T={times[j]:.4g} of {label}" + (f"; first violation at T={times[viol[0]]:.4g}" if viol.size else "")
    v = Verdict(name=name, paper=paper, statement=statement, holds=bool(ok.all()), margin=float(bound[j] - gap[j]),
                where=where, assumptions=assumptions, applicable=all(assumptions.values()), details=details)
    return v, bound


def monotone_runs(values: Sequence[float], tol: float) -> list[tuple[int, int, int]]:
    r"""Maximal runs l < l' of :math:`L^*_l, ..., L^*_{l'}` that are non-increasing or non-decreasing (within
    ``tol``), each with its :math:`l''` of Thm 2 (iii): l for non-increasing, l' for non-decreasing."""
    v = list(values)
    out: list[tuple[int, int, int]] = []
    for sign in (+1, -1):  # +1: non-increasing (L*_l ≥ L*_{l+1}), -1: non-decreasing
        l = 0
        while l < len(v) - 1:
            r = l
            while r < len(v) - 1 and sign * (v[r] - v[r + 1]) >= -tol:
                r += 1
            if r > l:
                out.append((l, r, l if sign > 0 else r))
                l = r
            else:
                l += 1
    return sorted(set(out))


STATEMENT_THM1 = "L_T − L*_H ≤ (L_0 − L*_H)·exp(−4 λ_T^(H) σ²_min(X(S^H)_{*I}) T)"


def check_thm1(times, losses, opt: Optimum, lam_times, lam, *, dynamics: str, label: str, loss: str = "squared",
               lam_resolution: float | Sequence[float] = 0.0, small: bool = False) -> tuple[Verdict, np.ndarray]:
    r"""Thm 1, eq. (8), along one run of a Def. 1 model (``lam`` columns λ^(0..H), λ^(H) the last).

    ``small=True`` uses σ²_small (smallest non-zero singular value) instead of σ²_min: the proof's step
    :math:`\mathrm{vec}^\top U\Sigma^2U^\top\mathrm{vec} \ge \sigma^2\|\mathbf P\mathrm{vec}\|^2` holds with the smallest
    *non-zero* singular value (the blog's P projects onto the column space), as in 2501.14440's Remark 3.4.
    """
    H = lam.shape[1] - 1
    s2 = opt.spectrum.sigma2_small if small else opt.spectrum.sigma2_min
    name = "xu.thm1.sigma_small" if small else "xu.thm1"
    stmt = STATEMENT_THM1.replace("σ²_min", "σ²_small") if small else STATEMENT_THM1
    return check_rate_bound(name, f"{PAPER}, Thm 1, eq. (8)" + (" with σ_small (2501.14440)" if small else ""), stmt,
                            times, losses, opt.value, lam_times, lam, [H], [s2], dynamics=dynamics, label=label,
                            loss=loss, L_star_exact=opt.exact, lam_resolution=lam_resolution)


def check_thm2(times, losses, blocks, Y, widths, lam_times, lam, *, dynamics: str, label: str, loss: str = "squared",
               opt_multi: Optimum | None = None, lam_resolution: float | Sequence[float] = 0.0) -> dict[str, Any]:
    r"""Thm 2 (i), (ii), (iii) along one run of a Def. 2 model.

    * (i), eq. (10): :math:`L^* = L^*_{1:H}`, rate :math:`4\lambda^{(1:H)}_T\sigma^2_{\min}(\mathcal G_H)` with
      :math:`\lambda^{(1:H)}_T = \min_{0\le l\le H}\lambda^{(l)}_T`;
    * (ii), eq. (11), for each H' = 0..H: :math:`L^* = L^*_{H'}` (plain H'-layer optimum),
      rate :math:`4\lambda^{(H')}_T\sigma^2_{\min}(G_{H'})`;
    * (iii), eq. (12), for each maximal monotone run l < l' of :math:`L^*_0..L^*_H`: :math:`L^* = L^*_{l''}`,
      rate :math:`4\sum_{k=l}^{l'}\lambda^{(k)}_T\sigma^2_{\min}(G_k)`.

    Returns {"i": (Verdict, bound), "ii": [(H', Verdict, bound)], "iii": [((l, l', l''), Verdict, bound)],
    "L_star_plain": [L*_0..L*_H], "sigma2_plain": [...]}.
    """
    H = len(widths)
    opt_multi = opt_multi or global_optimum(blocks, Y, widths, multiscale=True)
    lam_multi = np.min(lam[:, : H + 1], axis=1, keepdims=True)
    res_all = np.broadcast_to(np.asarray(lam_resolution, float), (lam.shape[1],))
    res_multi = float(res_all[int(np.argmin(lam[:, : H + 1].min(axis=0)))])
    v_i, b_i = check_rate_bound(
        "xu.thm2.i", f"{PAPER}, Thm 2 (i), eq. (10)",
        "L_T − L*_{1:H} ≤ (L_0 − L*_{1:H})·exp(−4 λ_T^(1:H) σ²_min((G_H)_{*I}) T)",
        times, losses, opt_multi.value, lam_times, lam_multi, [0], [opt_multi.spectrum.sigma2_min],
        dynamics=dynamics, label=label, loss=loss, L_star_exact=opt_multi.exact, lam_resolution=res_multi)
    plain = [global_optimum(blocks, Y, widths[:h], multiscale=False) for h in range(H + 1)]
    ii = []
    for h in range(H + 1):
        v, b = check_rate_bound(
            "xu.thm2.ii", f"{PAPER}, Thm 2 (ii), eq. (11)",
            "L_T − L*_{H'} ≤ (L_0 − L*_{H'})·exp(−4 λ_T^(H') σ²_min(X(S^{H'})_{*I}) T), every H' ≤ H",
            times, losses, plain[h].value, lam_times, lam, [h], [plain[h].spectrum.sigma2_min],
            dynamics=dynamics, label=f"{label}, H'={h}", loss=loss, lam_resolution=lam_resolution)
        ii.append((h, v, b))
    Ls = [p.value for p in plain]
    tol = 1e-9 * max(1.0, float((_np(Y) ** 2).sum()))
    iii = []
    for (l, lp, lpp) in monotone_runs(Ls, tol):
        ks = list(range(l, lp + 1))
        v, b = check_rate_bound(
            "xu.thm2.iii", f"{PAPER}, Thm 2 (iii), eq. (12)",
            "L_T − L*_{l''} ≤ (L_0 − L*_{l''})·exp(−4 Σ_{k=l}^{l'} λ_T^(k) σ²_min(X(S^k)_{*I}) T) on monotone L*_l..L*_{l'}",
            times, losses, plain[lpp].value, lam_times, lam, ks, [plain[k].spectrum.sigma2_min for k in ks],
            dynamics=dynamics, label=f"{label}, l={l}, l'={lp}, l''={lpp}", loss=loss, lam_resolution=lam_resolution)
        iii.append(((l, lp, lpp), v, b))
    return {"i": (v_i, b_i), "ii": ii, "iii": iii, "L_star_plain": Ls,
            "sigma2_plain": [p.spectrum.sigma2_min for p in plain], "opt_multi": opt_multi}


# ============================================================================================ Thm 3
@dataclass(frozen=True)
class Thm3Terms:
    r"""The two sums of Thm 3 and the autograd reference.

    Attributes:
        F: per read-out l, :math:`\|\mathrm{vec}(V G_l^\top)\|^2_{F_{(l)}}` (plain: one entry, l = H).
        J: per layer i = 1..H, :math:`\|\sum_{l\ge i} J_{(i,l)}\mathrm{vec}(V G_l^\top)\|_2^2`.
        dLdt: −(ΣF + ΣJ), the loss reduction along the gradient flow by the formula.
        grad_sq: ‖∇L‖² from autograd (so the flow's dL/dt = −grad_sq).
    """

    F: list[float]
    J: list[float]
    dLdt: float
    grad_sq: float

    @property
    def abs_err(self) -> float:
        return abs(-self.dLdt - self.grad_sq)

    @property
    def rel_err(self) -> float:
        return self.abs_err / max(self.grad_sq, 1e-300)


def _V_and_grad_sq(model: XuGNN, data: XuData, objective: XuObjective) -> tuple[torch.Tensor, float]:
    params = list(model.parameters())
    with torch.enable_grad():
        pred = model(data)
        L = objective(pred)
        grads = torch.autograd.grad(L, [pred, *params])
    V = grads[0].detach().to(torch.float64)
    grad_sq = float(sum((g.detach().to(torch.float64) ** 2).sum() for g in grads[1:]))
    return V, grad_sq


def thm3_terms(model: XuGNN, data: XuData, objective: XuObjective) -> Thm3Terms:
    r"""Thm 3 (eqs. (15)–(16)) in product form, for any differentiable loss (``objective``).

    With :math:`V = \partial L/\partial\hat Y` and :math:`M_l = V G_l^\top` (:math:`m_y\times m_x`), the
    Kronecker identities :math:`(A\otimes B)\mathrm{vec}(M) = \mathrm{vec}(BMA^\top)` (column-major vec) give

    * F-term l: :math:`\mathrm{vec}(M_l)^\top[(\bar B^{(1:l)})^\top\bar B^{(1:l)}\otimes I]\mathrm{vec}(M_l)
      = \|M_l(\bar B^{(1:l)})^\top\|_F^2`;
    * J-term i: :math:`\|\sum_{l=i}^H J_{(i,l)}\mathrm{vec}(M_l)\|^2 = \|\sum_{l=i}^H (W^{(l)}\bar B^{(i+1:l)})^\top
      M_l(\bar B^{(1:i-1)})^\top\|_F^2`

    (the first is :math:`\|\partial L/\partial W^{(l)}\|^2`, the second :math:`\|\partial L/\partial B^{(i)}\|^2`, which is why
    their sum is :math:`\|\nabla L\|^2`). Products are chained from the :math:`m_y`-row side, so nothing of
    size :math:`m_x\times m_x` is formed.
    """
    if not model.linear:
        raise GnndynError("Thm 3 is about linear GNNs (Defs. 1–2); this model has activation "
                          f"{model.activation!r}.")
    H = model.depth
    V, grad_sq = _V_and_grad_sq(model, data, objective)
    G = [g.to(torch.float64) for g in data.blocks(H)]
    Bs = [b.detach().to(torch.float64) for b in model.B]
    ls = list(range(H + 1)) if model.multiscale else [H]
    M = {l: V @ G[l].T for l in ls}

    def right_bbar_t(mat: torch.Tensor, upto: int) -> torch.Tensor:  # mat · (B̄^(1:upto))ᵀ
        for k in range(1, upto + 1):
            mat = mat @ Bs[k - 1].T
        return mat

    def j_term(i: int, l: int) -> torch.Tensor:
        A = model.readout(l).detach().to(torch.float64)  # W^(l) B̄^(i+1:l), chained from the left
        for k in range(l, i, -1):
            A = A @ Bs[k - 1]
        return A.T @ right_bbar_t(M[l], i - 1)

    F = [float((right_bbar_t(M[l], l) ** 2).sum()) for l in ls]
    J = [float((acc ** 2).sum()) if acc is not None else 0.0 for acc in _sums_over_readouts(H, ls, j_term)]
    return Thm3Terms(F, J, -(sum(F) + sum(J)), grad_sq)


def _sums_over_readouts(H: int, ls: Sequence[int], term) -> list[torch.Tensor | None]:
    r"""For i = 1..H the sum over the read-outs l ≥ i of ``term(i, l)`` (None when there is none): the
    J-terms of Thm 3 collect every read-out that sees layer i."""
    out = []
    for i in range(1, H + 1):
        acc = None
        for l in ls:
            if l >= i:
                t = term(i, l)
                acc = t if acc is None else acc + t
        out.append(acc)
    return out


def _vec(m: torch.Tensor) -> torch.Tensor:
    """Column-major vectorisation (the vec of the paper)."""
    return m.T.reshape(-1)


def thm3_terms_kron(model: XuGNN, data: XuData, objective: XuObjective) -> Thm3Terms:
    r"""Thm 3 with the explicit matrices :math:`F_{(l)} = (\bar B^{(1:l)})^\top\bar B^{(1:l)}\otimes I_{m_y}` and
    :math:`J_{(i,l)} = \bar B^{(1:i-1)}\otimes(W^{(l)}\bar B^{(i+1:l)})^\top` (§4 notation) — the slow
    reference for :func:`thm3_terms`; tiny models only (the matrices are :math:`m_x m_y` wide)."""
    H = model.depth
    if model.in_dim * model.out_dim > 400:
        raise GnndynError("thm3_terms_kron builds Kronecker products explicitly; use it on tiny models only "
                          f"(m_x·m_y ≤ 400; got {model.in_dim * model.out_dim}).")
    V, grad_sq = _V_and_grad_sq(model, data, objective)
    G = [g.to(torch.float64) for g in data.blocks(H)]
    ls = list(range(H + 1)) if model.multiscale else [H]
    I_y = torch.eye(model.out_dim, dtype=torch.float64)
    with torch.no_grad():
        F = []
        for l in ls:
            Bb = model.bbar(l).to(torch.float64)
            Fm = torch.kron((Bb.T @ Bb).contiguous(), I_y)
            v = _vec(V @ G[l].T)
            F.append(float(v @ Fm @ v))
        def j_term(i: int, l: int) -> torch.Tensor:
            Jm = torch.kron(model.bbar(i - 1).to(torch.float64).contiguous(),
                            (model.readout(l).to(torch.float64) @ model.bbar(l, start=i + 1).to(torch.float64)).T.contiguous())
            return Jm @ _vec(V @ G[l].T)

        J = [float(acc @ acc) if acc is not None else 0.0 for acc in _sums_over_readouts(H, ls, j_term)]
    return Thm3Terms(F, J, -(sum(F) + sum(J)), grad_sq)


def check_thm3(records: Sequence[tuple[str, Thm3Terms]], *, rtol: float = 1e-10) -> Verdict:
    r"""Thm 3 (eqs. (15)/(16)): the formula's dL/dt equals −‖∇L‖² (autograd) at every checked point,
    to relative error ``rtol`` (machine precision up to the conditioning of the sums)."""
    if not records:
        raise GnndynError("check_thm3 needs at least one evaluated point.")
    errs = np.array([t.rel_err for _, t in records])
    j = int(np.argmax(errs))
    return Verdict("xu.thm3", f"{PAPER}, Thm 3, eqs. (15)–(16)",
                   "dL/dt = −Σ_l ‖vec(V (X(S^l)_{*I})ᵀ)‖²_{F(l)} − Σ_i ‖Σ_l J_(i,l) vec(V (X(S^l)_{*I})ᵀ)‖² = −‖∇L‖²",
                   bool((errs <= rtol).all()), float(rtol - errs[j]), records[j][0],
                   details={"max_rel_err": float(errs.max()), "points": len(records), "rtol": rtol})


# ============================================================================================ the blog's step
def pythagoras(pred: torch.Tensor, Y: torch.Tensor, opt: Optimum) -> tuple[float, float]:
    r"""The corrected step of the blog (Step 2): :math:`\|\mathbf P\,\mathrm{vec}(\hat Y - Y)\|_2^2 = L - L^*`,
    with :math:`\mathbf P` the projector onto the column space of :math:`\tilde G^\top\otimes I_{m_y}`.

    In matrix form :math:`\mathbf P\,\mathrm{vec}(M) = \mathrm{vec}(MQQ^\top)` (Q an orthonormal basis of the row
    space of G), so the left side is :math:`\|(\hat Y - Y)Q\|_F^2`. Since the rows of :math:`\hat Y = \tilde WG`
    lie in that row space, :math:`\hat Y - Y = (\hat Y - YQQ^\top) - Y(I - QQ^\top)` is an orthogonal split
    and the identity holds exactly with :math:`L^* = \|Y(I - QQ^\top)\|^2` (``opt.projected``, which is
    :math:`L^*_H` in the least-squares case). Returns (lhs, rhs) = (‖P vec(Ŷ−Y)‖², L − L*).
    """
    if opt.basis is None:
        raise GnndynError("pythagoras needs the row-space basis; compute the optimum with global_optimum().")
    R = _np(pred) - _np(Y)
    lhs = float(((R @ opt.basis) ** 2).sum())
    rhs = float((R ** 2).sum()) - opt.projected
    return lhs, rhs


def original_inequality(L: float | np.ndarray, L_star: float, *, rtol: float = 1e-12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""App. A.1.3's last inequality on p. 18: :math:`(a - b)^2 \ge a^2 - b^2` with
    :math:`a = \|\mathrm{vec}(\hat Y - Y)\| = \sqrt L` and :math:`b = \|(I - \mathbf P)\mathrm{vec}(Y)\| = \sqrt{L^*}`.

    :math:`(a-b)^2 - (a^2 - b^2) = 2b(b - a)`: it holds iff b = 0 or b ≥ a, i.e. iff :math:`L^* = 0` or
    :math:`L^* \ge L` — never along a run with :math:`L > L^* > 0`. Returns (lhs, rhs, holds) arrays;
    ``holds`` allows a rounding slack of ``rtol``·a².
    """
    a = np.sqrt(np.maximum(np.asarray(L, float), 0.0))
    b = math.sqrt(max(L_star, 0.0))
    lhs, rhs = (a - b) ** 2, a ** 2 - b ** 2
    return lhs, rhs, lhs >= rhs - rtol * np.maximum(a ** 2, 1e-300)


def check_pythagoras(errors: Sequence[tuple], *, rtol: float = 1e-9) -> Verdict:
    r"""The blog's identity at every checked point: ``errors`` = [(where, lhs, rhs)] or [(where, lhs, rhs, scale)].

    The identity is exact, so it holds when :math:`|\mathrm{lhs} - \mathrm{rhs}| \le 	au` everywhere, with
    :math:`	au = \max(\mathrm{rtol}\cdot\max(|\mathrm{lhs}|, |\mathrm{rhs}|),\ 64\,arepsilon\,\mathrm{scale})`:
    ``scale`` (when given) is the size of the terms whose difference rhs is, :math:`L + L^*` for
    rhs = L − L*, so that near the optimum (rhs ≪ L) the comparison allows the floating-point error of that
    difference (ε the float64 unit roundoff; 64 covers the summation of L). The margin is relative:
    :math:`(	au - |\mathrm{lhs} - \mathrm{rhs}|)/\max(|\mathrm{lhs}|, |\mathrm{rhs}|)` at the worst point, ≥ 0 iff it holds."""
    eps = float(np.finfo(np.float64).eps)
    ref = np.array([max(abs(e[1]), abs(e[2]), 1e-300) for e in errors])
    absd = np.array([abs(e[1] - e[2]) for e in errors])
    rel = absd / ref
    tol = np.array([max(rtol * r, 64.0 * eps * abs(e[3]) if len(e) > 3 else 0.0) for e, r in zip(errors, ref)])
    slack = (tol - absd) / ref
    j = int(np.argmin(slack))
    return Verdict("blog.pythagoras", f"{BLOG}, Step 2 (corrected step of {PAPER}, App. A.1.3)",
                   "‖P vec(Ŷ − Y)‖² = L − L* (P: projector onto the column space of G̃ᵀ ⊗ I)",
                   bool((absd <= tol).all()), float(slack[j]), errors[j][0],
                   details={"max_rel_err": float(rel.max()), "max_abs_err": float(absd.max()), "points": len(errors),
                            "tolerance_at_worst": float(tol[j])})


def check_original_inequality(losses: np.ndarray, L_star: float, *, label: str) -> tuple[Verdict, Verdict]:
    """Two verdicts along one run: (1) App. A.1.3's inequality (a − b)² ≥ a² − b² — holds iff false at no
    step; (2) the blog's claim that it can only hold when L* ≥ L — checked at every step where it held,
    with the case L* = 0 (b = 0, where it holds with equality) reported apart, since the blog omits it."""
    losses = np.asarray(losses, float)
    zero_star = L_star <= 1e-12 * max(float(losses.max()), 1e-300)  # rounding level: b = 0
    lhs, rhs, ok = original_inequality(losses, 0.0 if zero_star else L_star)
    n_false = int((~ok).sum())
    worst = int(np.argmin(lhs - rhs))
    v1 = Verdict("xu.appA13.inequality", f"{PAPER}, App. A.1.3 (last inequality on p. 18)",
                 "(‖vec(Ŷ−Y)‖ − ‖(I−P)vec(Y)‖)² ≥ ‖vec(Ŷ−Y)‖² − ‖(I−P)vec(Y)‖²",
                 n_false == 0, float(lhs[worst] - rhs[worst]), f"step {worst} of {label}",
                 details={"false_steps": n_false, "steps": int(losses.size), "L_star": L_star, "L_star_is_zero": zero_star})
    held = np.flatnonzero(ok)
    explained = (losses[held] <= L_star) | zero_star
    v2 = Verdict("blog.inequality_only_if", f"{BLOG}, 'A minor mistake in the original paper'",
                 "the original inequality can hold only when L* ≥ L (gnndyn adds: or L* = 0, where it is an equality)",
                 bool(explained.all()), float("nan"), label,
                 details={"held_steps": int(held.size), "held_with_L_star_ge_L": int((losses[held] <= L_star).sum()),
                          "held_only_because_L_star_is_zero": int(held.size if zero_star else 0)})
    return v1, v2


__all__ = [
    "Spectrum", "row_space", "graph_condition", "Optimum", "global_optimum", "nested_rank_search", "layer_lambdas", "running_min",
    "SingularMargin", "singular_margins", "deficiency_margin", "bound_curve", "check_rate_bound", "check_thm1",
    "check_thm2", "monotone_runs", "Thm3Terms", "thm3_terms", "thm3_terms_kron", "check_thm3", "pythagoras",
    "original_inequality", "check_pythagoras", "check_original_inequality", "aggregate",
]
