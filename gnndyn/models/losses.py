r"""Node losses averaged over the labelled nodes (Keriven eqs. (2)–(4)).

:math:`\mathcal L(H) = \frac{1}{|I|}\sum_{i \in I} \ell_i(h_i)` with

* ``mse``: :math:`\ell_i(h) = \tfrac12\|h - y_i\|^2` (eq. 3); class labels are one-hot encoded, so
  :math:`\|y_i\| = 1`. Assumption 3 holds with :math:`D_\mathcal{L} = D'_\mathcal{L} = 1` when
  :math:`\|y_i\| \le 1` (App. A.2);
* ``cross-entropy``: :math:`\ell_i(h) = -\log(e^{h_{y_i}}/\sum_c e^{h_c})` (eq. 4), with
  :math:`D_\mathcal{L} = 0`, :math:`D'_\mathcal{L} = C + 1` (App. A.2).

Xu et al.'s squared loss :math:`\|f_{*I} - Y\|_F^2` (no ½, no 1/n) lives with the linear models.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as tf

from gnndyn.errors import GnndynError, resolve


_SEEN: dict[tuple[int, str], tuple[weakref.ref, int, int]] = {}


def _once(t: torch.Tensor, what: str, fn: Callable[[torch.Tensor], int]) -> int:
    """``fn(t)`` (a host read) computed once per tensor and in-place version: labels and masks are fixed
    across the steps of a run, so later steps make no host round trip for these checks."""
    key = (id(t), what)
    hit = _SEEN.get(key)
    if hit is not None and hit[0]() is t and hit[1] == t._version:
        return hit[2]
    value = int(fn(t))
    if len(_SEEN) > 256:
        _SEEN.clear()
    _SEEN[key] = (weakref.ref(t), t._version, value)
    return value


def _max_label(t: torch.Tensor) -> int:
    return _once(t, "max", lambda u: u.max())


def _select(out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    if out.shape[0] != target.shape[0]:
        raise GnndynError(f"output has {out.shape[0]} rows (shape {tuple(out.shape)}) but the target has "
                          f"{target.shape[0]} (shape {tuple(target.shape)}).")
    if mask is not None:
        if mask.shape != (out.shape[0],) or mask.dtype != torch.bool:
            raise GnndynError(f"mask must be boolean of shape ({out.shape[0]},); got {mask.dtype} {tuple(mask.shape)}.")
        if not _once(mask, "any", lambda m: m.any()):
            raise GnndynError("the mask selects no labelled node.")
        return out[mask], target[mask]
    return out, target


def regression_targets(target: torch.Tensor, out_dim: int, dtype: torch.dtype) -> torch.Tensor:
    """Class indices → one-hot rows (‖y_i‖ = 1); regression targets pass through (shape checked)."""
    if target.dim() == 1 and not target.is_floating_point():
        if _max_label(target) >= out_dim:
            raise GnndynError(f"labels go up to {_max_label(target)} but the output has {out_dim} columns.")
        return tf.one_hot(target, out_dim).to(dtype)
    t = target.to(dtype)
    if t.dim() == 1:
        t = t.unsqueeze(1)
    if t.shape[1] != out_dim:
        raise GnndynError(f"regression targets have shape {tuple(t.shape)} but the output has {out_dim} columns.")
    return t


def mse(out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(1/|I|) Σ_{i∈I} ½‖h_i − y_i‖² (Keriven eq. 3)."""
    t = regression_targets(target, out.shape[1], out.dtype)
    o, t = _select(out, t, mask)
    return 0.5 * ((o - t) ** 2).sum() / o.shape[0]


def cross_entropy(out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(1/|I|) Σ_{i∈I} −log softmax(h_i)_{y_i} (Keriven eq. 4)."""
    if target.is_floating_point() or target.dim() != 1:
        raise GnndynError(f"cross-entropy needs integer class labels of shape (n,); got {target.dtype} {tuple(target.shape)}.")
    o, t = _select(out, target, mask)
    # when all labels fit, so do the masked ones: no host read per step
    if _max_label(target) >= out.shape[1] and int(t.max()) >= out.shape[1]:
        raise GnndynError(f"labels go up to {int(t.max())} but the output has {out.shape[1]} classes.")
    return tf.cross_entropy(o, t, reduction="mean")


@dataclass(frozen=True)
class Loss:
    """A node loss with the constants of Keriven Assumption 3: ‖∂ℓ_i/∂h‖ ≤ D_L‖h‖ + D′_L."""

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
    q: int  # 2 for regression, 1 for classification (Keriven Cor. 1, Thm 3)

    def __call__(self, out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.fn(out, target, mask)

    def constants(self, num_classes: int) -> tuple[float, float]:
        """(D_L, D′_L) of Assumption 3 (App. A.2): MSE (1, 1), cross-entropy (0, C + 1)."""
        return (1.0, 1.0) if self.name == "mse" else (0.0, float(num_classes + 1))


LOSSES: dict[str, Loss] = {
    "mse": Loss("mse", mse, q=2),
    "cross-entropy": Loss("cross-entropy", cross_entropy, q=1),
}


def get_loss(name: str) -> Loss:
    """The loss called ``name``; an unknown name lists the valid ones."""
    return resolve("loss", name, LOSSES)
