"""Errors that teach: each says what was expected, what was given, and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GnndynError(ValueError):
    """Bad input to gnndyn. The message names what was expected and what was given."""


class UnknownNameError(GnndynError, KeyError):
    """An unknown name (experiment, operator, activation, dataset...): the message lists the valid ones."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        valid = sorted(valid)
        close = difflib.get_close_matches(str(name), valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        self.kind, self.name, self.valid = kind, name, valid
        plural = (kind[:-1] + "ies" if kind.endswith("y") and kind[-2:-1] not in "aeiou"
                  else kind + ("es" if kind.endswith(("s", "x", "ch", "sh")) else "s"))
        super().__init__(f"unknown {kind} {name!r}; valid {plural}: {', '.join(valid)}.{hint}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class AssumptionError(GnndynError):
    """A theorem's assumption does not hold and the computation cannot go on without it."""


class CorruptFileError(GnndynError):
    """A file gnndyn reads is damaged, truncated or not what it should be. The message names the file,
    what is wrong with it and what to do."""

    def __init__(self, path, problem: str, fix: str | None = None):
        self.path, self.problem = path, problem
        fix = fix or ("it was probably cut short (a killed run, a full disk, an interrupted copy); delete or "
                      "replace it, or re-create it (gnndyn rerun, or a fresh copy of the data)")
        super().__init__(f"{path}: {problem}. {fix[0].upper() + fix[1:]}.")


class UnsafeFileError(CorruptFileError):
    """A data file asks to run code (a pickle naming a class or function gnndyn does not admit)."""


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss or gradient. ``step`` is where; the record up to it is kept."""

    def __init__(self, step: int, what: str, value: float, reason: str | None = None):
        self.step, self.what, self.value = step, what, value
        cause = reason if reason is not None else f"{what} is {value}"
        super().__init__(
            f"training diverged at step {step}: {cause}. Everything recorded before step "
            f"{step} was kept. Lower the learning rate or the initialization scale."
        )


def resolve(kind: str, name: str, table: dict):
    """Look ``name`` up in ``table`` (case-insensitive, '-' and '_' alike) or raise UnknownNameError."""
    key = str(name).lower().replace("_", "-")
    for k, v in table.items():
        if k.lower().replace("_", "-") == key:
            return v
    raise UnknownNameError(kind, name, table.keys())
