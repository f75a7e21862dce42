"""Sparse propagation operators and their spectral facts (second stage of the data flow)."""

from gnndyn.operators.base import Operator, csr_from_scipy, propagate
from gnndyn.operators.builders import OPERATORS, build_operator
from gnndyn.operators.spectral import SpectralFacts, spectral_facts

__all__ = ["Operator", "propagate", "csr_from_scipy", "OPERATORS", "build_operator", "SpectralFacts", "spectral_facts"]
