r"""The objects every check of Patel, Savostianov & Schaub (arXiv 2501.14440) speaks of.

Notation of the paper (nodes as columns): :math:`Z = (XS^H)_{*I} \in \mathbb R^{d_x\times\bar n}`,
:math:`Y \in \mathbb R^{d_y\times\bar n}`, weights :math:`W = (W_1, \dots, W_{H+1})`,
:math:`W_\ell \in \mathbb R^{d_\ell\times d_{\ell-1}}`, and

* the loss (2.2) :math:`\mathcal L(W) = \frac1m\|W_{H+1}\cdots W_1 Z - Y\|_F^2`, :math:`m = \bar n d_y`;
* :math:`\tilde L_H = \inf_W \mathcal L(W)`: the least-squares value over :math:`\tilde W \in \mathbb R^{d_y\times d_x}`
  divided by m (Example 2.2; equal to the infimum when no hidden width is below :math:`\min(d_x, d_y)`, §4),
  and the rank-capped (Eckart–Young) value with a bottleneck — both from :mod:`gnndyn.algebra`;
* the relative loss (3.3) :math:`L(W) = \mathcal L(W) - \tilde L_H`;
* the gradients (3.4) and the proof of Thm 4.4,
  :math:`\nabla_{W_\ell}\mathcal L = \frac2m(W_{H+1}\cdots W_{\ell+1})^\top(\hat Y - Y)Z^\top(W_{\ell-1}\cdots W_1)^\top`;
* σ_small(Z), the smallest non-zero singular value (Lemma 2.5), with its numerical-rank tolerance;
* Thm 3.1's constants :math:`\beta = 4^{-(H-1)}\prod_{\ell=2}^{H+1}\sigma^2_{\min}(W_\ell(0))`,
  :math:`r = \min_{\ell\ge2}\sigma_{\min}(W_\ell(0))/2` and the rate :math:`\beta\sigma^2_{small}/m`.

Everything is float64 NumPy; :func:`torch_loss` gives the same loss on a flat parameter vector for exact
Hessians by autograd.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from gnndyn.algebra.optimum import Optimum, least_squares_optimum
from gnndyn.algebra.spectrum import EPS, Spectrum, as_float64, row_space
from gnndyn.errors import GnndynError
from gnndyn.models.linear_gnn import XuData
from gnndyn.models.patel import Widths, propagated, widths_report

PAPER = "Patel et al. 2025"
Weights = Sequence[np.ndarray]


@dataclass(frozen=True)
class Problem:
    r"""A training problem of the paper: Z, Y, the widths, the spectrum of Z and :math:`\tilde L_H`.

    Attributes:
        Z: :math:`(XS^H)_{*I}`, d_x × n̄.
        Y: targets, d_y × n̄.
        widths: the dimensions and the paper's assumptions on them.
        spectrum: σ_min, σ_small, rank and tolerance of Z (:func:`gnndyn.algebra.row_space`).
        optimum: the least-squares (or rank-capped) sum of squares; :attr:`L_tilde` is it divided by m.
    """

    Z: np.ndarray
    Y: np.ndarray
    widths: Widths
    spectrum: Spectrum
    optimum: Optimum

    @property
    def H(self) -> int:
        return self.widths.depth

    @property
    def nbar(self) -> int:
        return int(self.Z.shape[1])

    @property
    def m(self) -> int:
        r""":math:`m = \bar n d_y` (eq. (2.2))."""
        return self.nbar * int(self.Y.shape[0])

    @property
    def L_tilde(self) -> float:
        r""":math:`\tilde L_H` (eq. (2.2)): the optimum value of the loss."""
        return self.optimum.value / self.m

    @property
    def sigma_small(self) -> float:
        return self.spectrum.sigma_small

    @property
    def sigma2_small(self) -> float:
        return self.spectrum.sigma2_small

    @property
    def rank_deficient(self) -> bool:
        """rank Z < min(d_x, n̄): Xu et al.'s σ_min is 0 (Remark 3.4's case)."""
        return self.spectrum.rank < min(self.Z.shape)

    @cached_property
    def min_norm_solution(self) -> np.ndarray:
        r""":math:`\tilde W = YZ^\dagger` (§4), with the pseudo-inverse cut at the spectrum's rank tolerance."""
        U, s, Vt = np.linalg.svd(self.Z, full_matrices=False)
        k = self.spectrum.rank
        return (self.Y @ Vt[:k].T) @ (U[:, :k] / s[:k]).T

    @cached_property
    def left_basis(self) -> np.ndarray:
        """The first rank-Z left singular vectors of Z (the U of Thm 4.4, condition 2), d_x × k."""
        U, _, _ = np.linalg.svd(self.Z, full_matrices=False)
        return U[:, : self.spectrum.rank]

    def summary(self) -> dict:
        return {"d_x": int(self.Z.shape[0]), "nbar": self.nbar, "d_y": int(self.Y.shape[0]), "H": self.H, "m": self.m,
                "L_tilde": self.L_tilde, "sigma_small": self.sigma_small, "sigma_min": self.spectrum.sigma_min,
                "rank": self.spectrum.rank, "rank_tol": self.spectrum.tol, "Y_norm2": float((self.Y ** 2).sum()),
                **self.widths.as_dict()}


def make_problem(Z: np.ndarray | torch.Tensor, Y: np.ndarray | torch.Tensor, widths: Sequence[int]) -> Problem:
    """The problem for Z (d_x × n̄), Y (d_y × n̄) and hidden widths (d_1..d_H)."""
    Zn, Yn = as_float64(Z), as_float64(Y)
    if Zn.ndim != 2 or Yn.ndim != 2 or Zn.shape[1] != Yn.shape[1]:
        raise GnndynError(f"Z must be d_x × n̄ and Y d_y × n̄ with the same n̄; got Z {Zn.shape} and Y {Yn.shape}.")
    w = widths_report(Zn.shape[0], widths, Yn.shape[0])
    spec = row_space([Zn], method="dense", basis=False)[0]
    cap = w.rank_cap if w.bottleneck else None
    opt = least_squares_optimum([Zn], Yn, cap, method="dense")
    return Problem(Zn, Yn, w, spec, opt)


def problem_from_data(data: XuData, Y: np.ndarray | torch.Tensor, widths: Sequence[int]) -> Problem:
    r"""The problem of a graph: :math:`Z = (XS^H)_{*I}` by sparse products (H = len(widths))."""
    return make_problem(propagated(data, len(widths)), Y, widths)


# ------------------------------------------------------------------------------------------ loss and gradients
def _check(problem: Problem, Ws: Weights) -> list[np.ndarray]:
    W = [as_float64(w) for w in Ws]
    dims = problem.widths.dims
    if len(W) != len(dims) - 1 or any(w.shape != (dims[l + 1], dims[l]) for l, w in enumerate(W)):
        raise GnndynError(f"weights must have shapes {[(dims[l + 1], dims[l]) for l in range(len(dims) - 1)]}; "
                          f"got {[w.shape for w in W]}.")
    return W


def chain(Ws: Weights, upto: int, start: int = 1) -> np.ndarray | None:
    """:math:`W_{upto}\\cdots W_{start}` (1-based, inclusive); None (the identity) when start > upto."""
    if start > upto:
        return None
    out = Ws[start - 1]
    for l in range(start + 1, upto + 1):
        out = Ws[l - 1] @ out
    return out


def end_to_end(Ws: Weights) -> np.ndarray:
    """:math:`W_{H+1}\\cdots W_1` (d_y × d_x)."""
    return chain(Ws, len(Ws))


def loss(problem: Problem, Ws: Weights) -> float:
    """:math:`\\mathcal L(W)` of eq. (2.2)."""
    W = _check(problem, Ws)
    return float(((end_to_end(W) @ problem.Z - problem.Y) ** 2).sum()) / problem.m


def excess(problem: Problem, Ws: Weights) -> float:
    """The relative loss (3.3), :math:`L(W) = \\mathcal L(W) - \\tilde L_H`."""
    return loss(problem, Ws) - problem.L_tilde


def gradients(problem: Problem, Ws: Weights) -> list[np.ndarray]:
    r""":math:`\nabla_{W_\ell}\mathcal L = \frac2m(W_{H+1}\cdots W_{\ell+1})^\top(\hat Y - Y)Z^\top(W_{\ell-1}\cdots W_1)^\top`
    (eq. (3.4) for ℓ = 1, proof of Thm 4.4 in general)."""
    W = _check(problem, Ws)
    n = len(W)
    core = (2.0 / problem.m) * ((end_to_end(W) @ problem.Z - problem.Y) @ problem.Z.T)  # d_y × d_x
    out = []
    for l in range(1, n + 1):
        left, right = chain(W, n, l + 1), chain(W, l - 1, 1)
        g = core if left is None else left.T @ core
        out.append(g if right is None else g @ right.T)
    return out


def grad_norm2(problem: Problem, Ws: Weights) -> tuple[float, float]:
    r""":math:`|\nabla\mathcal L|^2 = \sum_\ell\|\nabla_{W_\ell}\mathcal L\|_F^2` and its :math:`W_1` block (the one (3.7) bounds)."""
    g = gradients(problem, Ws)
    sq = [float((x ** 2).sum()) for x in g]
    return float(sum(sq)), sq[0]


def distance(Ws: Weights, Ws0: Weights) -> float:
    r""":math:`\|\mathrm{vec}\,W - \mathrm{vec}\,W(0)\|_2 = (\sum_\ell\|W_\ell - W_\ell(0)\|_F^2)^{1/2}`."""
    return math.sqrt(sum(float(((as_float64(a) - as_float64(b)) ** 2).sum()) for a, b in zip(Ws, Ws0)))


# ------------------------------------------------------------------------------------------ Thm 3.1's constants
def sigma_min(W: np.ndarray) -> float:
    """The min(shape)-th singular value (0 when W is rank-deficient)."""
    s = np.linalg.svd(as_float64(W), compute_uv=False)
    return float(s[-1]) if s.size else 0.0


def full_rank(W: np.ndarray) -> bool:
    """σ_min above NumPy's rank tolerance."""
    s = np.linalg.svd(as_float64(W), compute_uv=False)
    return bool(s.size and s[-1] > max(W.shape) * EPS * s[0])


def beta(Ws0: Weights) -> float:
    r""":math:`\beta = 4^{-(H-1)}\prod_{\ell=2}^{H+1}\sigma^2_{\min}(W_\ell(0))` (Thm 3.1)."""
    H = len(Ws0) - 1
    return float(np.prod([sigma_min(w) ** 2 for w in Ws0[1:]])) / 4.0 ** (H - 1)


def radius(Ws0: Weights) -> float:
    r""":math:`r = \min_{2\le\ell\le H+1}\sigma_{\min}(W_\ell(0))/2` (proof of Thm 3.1)."""
    return min(sigma_min(w) for w in Ws0[1:]) / 2.0


def rate(problem: Problem, Ws0: Weights) -> float:
    r"""The exponent of Thm 3.1, :math:`\beta\sigma^2_{small}(Z)/m`."""
    return beta(Ws0) * problem.sigma2_small / problem.m


def parameter_count(problem: Problem) -> int:
    """p = Σ d_ℓ d_{ℓ−1}."""
    d = problem.widths.dims
    return int(sum(d[l] * d[l - 1] for l in range(1, len(d))))


def torch_loss(problem: Problem):
    r"""``(f, shapes)``: :math:`f(\theta) = \mathcal L` on the flat float64 vector θ = (vec W_1, …, vec W_{H+1})
    (row-major), for exact gradients and Hessians by autograd."""
    d = problem.widths.dims
    shapes = [(d[l], d[l - 1]) for l in range(1, len(d))]
    sizes = [a * b for a, b in shapes]
    Z, Y, m = torch.from_numpy(problem.Z), torch.from_numpy(problem.Y), problem.m

    def f(theta: torch.Tensor) -> torch.Tensor:
        Ws = [c.reshape(s) for c, s in zip(torch.split(theta, sizes), shapes)]
        P = Ws[0]
        for w in Ws[1:]:
            P = w @ P
        return ((P @ Z - Y) ** 2).sum() / m

    return f, shapes


def flatten(Ws: Weights) -> np.ndarray:
    return np.concatenate([as_float64(w).reshape(-1) for w in Ws])


def unflatten(theta: np.ndarray, shapes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    out, o = [], 0
    for a, b in shapes:
        out.append(np.asarray(theta[o:o + a * b]).reshape(a, b))
        o += a * b
    return out


__all__ = ["PAPER", "Problem", "beta", "chain", "distance", "end_to_end", "excess", "flatten", "full_rank", "grad_norm2",
           "gradients", "loss", "make_problem", "parameter_count", "problem_from_data", "radius", "rate", "sigma_min",
           "torch_loss", "unflatten"]
