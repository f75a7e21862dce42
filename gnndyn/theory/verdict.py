"""The verdict object every theory check returns."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing a theorem's bound with what was measured.

    Attributes:
        name: short identifier, e.g. ``"keriven.thm1"``.
        paper: citation with the equation, e.g. ``"Keriven, Thm 1, eq. (7)"``.
        statement: the inequality or claim in words/maths.
        holds: True if the measured values satisfy the bound everywhere it was evaluated.
        margin: bound − measured at the tightest point (negative when violated).
        where: the tightest (or first violating) point, e.g. ``"layer 12 of gnn"``.
        assumptions: each assumption of the statement and whether it held on this run.
        applicable: False when an assumption failed, so the statement promises nothing here.
        details: any further numbers (per-layer bounds, fitted exponents, counts...).
    """

    name: str
    paper: str
    statement: str
    holds: bool
    margin: float
    where: str
    assumptions: dict[str, bool] = field(default_factory=dict)
    applicable: bool = True
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        status = "holds" if self.holds else "VIOLATED"
        if not self.applicable:
            failed = [k for k, v in self.assumptions.items() if not v]
            status += f" (assumptions not met: {', '.join(failed)})"
        m = "" if not math.isfinite(self.margin) else f", margin {self.margin:.3g}"
        return f"{self.paper}: {status}{m} at {self.where}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["holds"] = bool(d["holds"])
        return d


def aggregate(verdicts: list[Verdict], *, label: str = "seed") -> Verdict:
    """One verdict for the same check over several seeds/configurations: holds if all hold; the
    margin and place are those of the worst case; ``details`` counts how many held."""
    if not verdicts:
        raise ValueError("aggregate needs at least one verdict")
    if len(verdicts) == 1:
        return verdicts[0]
    worst = min(range(len(verdicts)), key=lambda i: (verdicts[i].holds, verdicts[i].margin if math.isfinite(verdicts[i].margin) else 0.0))
    v = verdicts[worst]
    n_hold = sum(x.holds for x in verdicts)
    assumptions = {k: all(x.assumptions.get(k, True) for x in verdicts) for x in verdicts for k in x.assumptions}
    return Verdict(
        name=v.name, paper=v.paper, statement=v.statement, holds=n_hold == len(verdicts), margin=v.margin,
        where=f"{v.where}; worst of {len(verdicts)} {label}s ({label} {worst})",
        assumptions=assumptions, applicable=all(x.applicable for x in verdicts),
        details={"held": n_hold, "total": len(verdicts), "worst": v.details,
                 "margins": [x.margin for x in verdicts]},
    )
