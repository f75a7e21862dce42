"""Theory checks: one module per paper; each theorem a bound function and a check returning a Verdict."""

from gnndyn.theory import keriven, patel
from gnndyn.theory.verdict import Verdict, aggregate

__all__ = ["Verdict", "aggregate", "keriven", "patel"]
