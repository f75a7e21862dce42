"""Chunked Monte Carlo means, for checking a closed-form population loss against samples (Awasthi et al.,
eq. 6 for the ReLU GNN, eq. 21 for the deep linear GNN)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def monte_carlo_mean(draw: Callable[[int], torch.Tensor], samples: int, chunk: int) -> tuple[float, float]:
    """Mean and standard error of ``samples`` i.i.d. values, drawn ``chunk`` at a time: ``draw(k)`` returns the
    next k of them as a 1-D tensor (it owns the random generator, so the values do not depend on ``chunk``
    beyond the order of the draws)."""
    vals = []
    done = 0
    while done < samples:
        k = min(chunk, samples - done)
        vals.append(draw(k))
        done += k
    v = torch.cat(vals)
    return float(v.mean()), float(v.std(unbiased=True) / math.sqrt(v.numel()))


__all__ = ["monte_carlo_mean"]
