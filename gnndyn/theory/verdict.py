"""The verdict object every theory check returns."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing a theorem's bound with what was measured.

    **The margin** (one convention for every check):

    * it is the signed slack of the claim at its tightest (or first violating) point: for a claim
      "measured ≤ bound" it is bound − measured, for "measured ≥ bound" measured − bound;
    * it is **absolute** (in the units of the compared quantities) unless the check's docstring says
      **relative** (then divided by the magnitude of the reference value, as ``awasthi.eq46`` does);
    * its sign agrees with ``holds``: a verdict that holds has margin ≥ 0 and a violated one margin ≤ 0.
      Where a check compares within a tolerance τ (an exact identity, compared up to the floating-point
      error of the quantities), the slack is measured from the tolerance's edge, so that "holds"
      means margin ≥ 0 here too. Any verdict whose computed slack disagrees in sign with its outcome
      (a claim that combines several conditions, a tolerance the check applied but did not add) is
      normalized on construction: a holding one gets margin 0.0, a violated one ``nan``, the raw value
      kept in ``details["margin_raw"]``;
    * ``nan`` means no finite slack measures the outcome (the quantity is undefined or was not
      evaluated, or the claim failed on a condition the slack does not measure); ``+inf`` means the
      bound is vacuous (nothing can violate it); ``−inf`` means a violation by a non-finite measured value.

    A verdict computed on a series whose training diverged is **not assessed**: ``holds`` is False,
    ``applicable`` is False (the assumption "training stayed finite" failed), ``details["diverged"]``
    names the divergence and ``status`` says so (see :func:`mark_diverged`).

    Attributes:
        name: short identifier, e.g. ``"keriven.thm1"``.
        paper: citation with the equation, e.g. ``"Keriven, Thm 1, eq. (7)"``.
        statement: the inequality or claim in words/maths.
        holds: True if the measured values satisfy the bound everywhere it was evaluated.
        margin: the signed slack at the tightest point (see above): ≥ 0 when it holds, ≤ 0 when violated.
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

    def __post_init__(self) -> None:
        m = float(self.margin)
        contradicts = (self.holds and m < 0) or (not self.holds and m > 0)
        if contradicts:
            object.__setattr__(self, "details", {**self.details, "margin_raw": m})
            m = 0.0 if self.holds else math.nan
        object.__setattr__(self, "margin", m)

    @property
    def status(self) -> str:
        """``holds``, ``VIOLATED``, either with "(assumptions not met: …)", or "not assessed (training diverged …)"."""
        if self.details.get("diverged"):
            return f"not assessed (training diverged: {self.details['diverged']})"
        status = "holds" if self.holds else "VIOLATED"
        if not self.applicable:
            failed = [k for k, v in self.assumptions.items() if not v]
            status += f" (assumptions not met: {', '.join(failed)})"
        return status

    @property
    def summary(self) -> str:
        m = "" if not math.isfinite(self.margin) else f", margin {self.margin:.3g}"
        return f"{self.paper}: {self.status}{m} at {self.where}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["holds"] = bool(d["holds"])
        d["status"] = self.status
        return d


#: the margin convention in one sentence (shown under every verdict table of the report)
MARGIN_NOTE = ("margin: the signed slack of the claim at its tightest point (bound − measured, or measured − bound), "
               "absolute unless the check says relative; ≥ 0 when the claim holds, ≤ 0 when it is violated; "
               "nan: no finite slack measures the outcome; +inf: the bound is vacuous; −inf: violated by a "
               "non-finite value.")

def compared(margin: Any) -> bool:
    """Whether a (stored) margin measures an outcome: False for None and nan, "nothing was compared"
    (:data:`MARGIN_NOTE`)."""
    return not (margin is None or (isinstance(margin, float) and math.isnan(margin)))


#: the assumption a verdict on a diverged series fails
FINITE_TRAINING = "training stayed finite"


def mark_diverged(v: Verdict, why: str) -> Verdict:
    """``v`` recomputed on a diverged series: not assessed (see :class:`Verdict`); what the check had found
    on the recorded values stays in ``details["holds_on_recorded_values"]`` and ``details["margin_recorded"]``."""
    if v.details.get("diverged"):
        return v
    return Verdict(
        name=v.name, paper=v.paper, statement=v.statement, holds=False, margin=math.nan, where=v.where,
        assumptions={**v.assumptions, FINITE_TRAINING: False}, applicable=False,
        details={**v.details, "diverged": why, "holds_on_recorded_values": bool(v.holds), "margin_recorded": v.margin},
    )


def aggregate(verdicts: list[Verdict], *, label: str = "seed") -> Verdict:
    """One verdict for the same check over several seeds/configurations: holds if all hold; the
    margin and place are those of the worst case; ``details`` counts how many held.

    The worst case is a violated verdict before any that holds, and within each the smallest margin in
    the order of :class:`Verdict`'s convention: −inf (violated by a non-finite value) < any finite
    margin < +inf (a vacuous bound). A ``nan`` margin (nothing compared) is the worst case only when
    no verdict of the same outcome has a margin that was compared."""
    if not verdicts:
        raise ValueError("aggregate needs at least one verdict")
    if len(verdicts) == 1:
        return verdicts[0]

    def badness(i: int) -> tuple[bool, bool, float]:
        m = verdicts[i].margin
        return (bool(verdicts[i].holds), math.isnan(m), 0.0 if math.isnan(m) else m)

    worst = min(range(len(verdicts)), key=badness)
    v = verdicts[worst]
    n_hold = sum(x.holds for x in verdicts)
    assumptions = {k: all(x.assumptions.get(k, True) for x in verdicts) for x in verdicts for k in x.assumptions}
    return Verdict(
        name=v.name, paper=v.paper, statement=v.statement, holds=n_hold == len(verdicts), margin=v.margin,
        where=f"{v.where}; worst of {len(verdicts)} {label}s ({label} {worst})",
        assumptions=assumptions, applicable=all(x.applicable for x in verdicts),
        details={"held": n_hold, "total": len(verdicts), "worst": v.details,
                 "margins": [x.margin for x in verdicts], "places": [x.where for x in verdicts],
                 **({"series": [x.details["series"] for x in verdicts if "series" in x.details]}
                    if any("series" in x.details for x in verdicts) else {})},
    )
