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


class Option(str):
    """A run option named inside a :class:`MachineError`'s message: the spec's key (``data_root``), spelled
    by each reader in its own terms."""


def flag(key: str) -> str:
    """A spec key as the command line spells its option: ``data_root`` → ``--data-root``."""
    return "--" + key.replace("_", "-")


class MachineError(GnndynError):
    """What this machine lacks for a run (a CUDA device, a stored data set's files), found before anything is
    written (:func:`gnndyn.spec.preflight`).

    The message is built from ``parts``, text and an :class:`Option` for each run option it names, so that
    every reader gets the options in its own terms: ``str()`` spells them as command-line flags
    (``--data-root``), :meth:`worded` in any other way (a sweep names the spec key ``data_root``, which it
    sets with ``--set`` or a grid axis). ``fix`` maps an option to the value to use instead
    (``{"device": "cpu"}``); it is said at the end ("; use --device cpu.")."""

    def __init__(self, *parts: str, fix: dict[str, str] | None = None):
        self.parts, self.fix = tuple(parts), dict(fix or {})
        super().__init__(self.worded(flag))

    @property
    def options(self) -> list[str]:
        """The spec keys the message names, in order, then those of ``fix``."""
        return list(dict.fromkeys([str(p) for p in self.parts if isinstance(p, Option)] + list(self.fix)))

    def worded(self, name, *, fix: bool = True) -> str:
        """The message with every option spelled ``name(key)``; ``fix=False`` leaves out the suggested values."""
        text = "".join(name(str(p)) if isinstance(p, Option) else p for p in self.parts)
        if fix and self.fix:
            text = text.rstrip(" .;") + "; use " + ", ".join(f"{name(k)} {v}" for k, v in self.fix.items()) + "."
        return text

    def __reduce__(self):  # an error sent back from a worker process keeps its parts and fix
        return _machine_error, (self.parts, self.fix)


def _machine_error(parts, fix) -> MachineError:
    return MachineError(*parts, fix=fix)


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
