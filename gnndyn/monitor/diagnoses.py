r"""What is wrong with a monitored run, as :class:`~gnndyn.theory.verdict.Verdict`\ s.

Each verdict states a *healthy* property; ``holds = False`` is an alarm (``details["alarm"]``), shown in red
in the report. Each carries its evidence (the measured numbers) and its thresholds (:class:`Thresholds`).
"The loss is high" means: the loss at the last recorded step is at least ``high_loss_fraction`` × the
reference loss — the ``baseline_loss`` given to the monitor (e.g. ln C, the loss of the uninformative
output, for C balanced classes), else the first recorded loss.

* **forward oversmoothing** (Keriven Thm 1, eq. (7): ℰ(X⁽ᵏ⁾) ≤ (λs)ᵏ ℰ(X⁽⁰⁾)): at the last step with
  ℰ(H⁽ᵏ⁾) for every layer, the least-squares fit log ℰ(H⁽ᵏ⁾) ≈ a + k log r over the layers gives the rate
  r; alarm when there are ≥ ``min_layers`` layers, r ≤ ``forward_rate`` and ℰ(H⁽ᴸ⁾)/ℰ(H⁽⁰⁾) ≤ ``forward_decay``.
* **backward oversmoothing** (Keriven Thm 2, Fig. 2): min over k < L of ℰ(B⁽ᵏ⁾)/ℰ(B⁽ᴸ⁾) at the last step
  ≤ ``backward_ratio`` while the loss is high; reported with the layer of the minimum and the first step
  from which it held.
* **the Keriven trap** (Def. 1, eq. (10); Thm 3: a stationary output layer makes the GNN globally
  stationary): the GNN is globally δ-stationary — every layer's gradient ‖∂𝓛/∂θ_k‖ (and that of the other
  parameters) ≤ δ, with δ = ``delta`` when given, else per layer its largest value over the first
  ``early_steps`` recorded steps divided by ``drop_factor`` — while the loss is high, from some step on to
  the last; reported with the step where it set in and, per layer, the drop factor max over the first
  steps / max from that step on (from the second half of the run when there is no alarm; Keriven Fig. 1).
* **vanishing / exploding gradients** by layer: the median over recorded steps of ‖∂𝓛/∂θ_k‖/‖∂𝓛/∂θ_L‖
  (L the last layer) ≤ ``vanish_ratio`` (resp. ≥ ``explode_ratio``) for some layer k; exploding also when a
  gradient is not finite or the loss ends above ``explode_loss`` × the reference (training diverged).

Layers without a measurement are left out rather than read as alarms: a layer without parameters (APPNP's
propagation, LightGCN's ``LGConv``) or frozen has no gradient norm (NaN in the table; a non-finite gradient is
recorded as +inf), a layer whose output needs no gradient has no B⁽ᵏ⁾, and a step without ``backward`` (or with
``torch.autograd.grad``) has neither. Each diagnosis uses the layers measured at some step and the steps at which
all of them were; it is "not applicable" when too few are left. A run without a recorded loss is never "diverged".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from gnndyn.errors import GnndynError
from gnndyn.theory.verdict import Verdict


@dataclass(frozen=True)
class Thresholds:
    """The options of the diagnoses (module docstring)."""

    forward_rate: float = 0.8
    forward_decay: float = 1e-2
    backward_ratio: float = 1e-2
    high_loss_fraction: float = 0.8
    drop_factor: float = 10.0
    early_steps: int = 10
    delta: float | None = None
    vanish_ratio: float = 1e-3
    explode_ratio: float = 1e3
    explode_loss: float = 10.0
    min_layers: int = 3

    @classmethod
    def make(cls, value: Thresholds | dict[str, Any] | None) -> Thresholds:
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise GnndynError(f"thresholds must be a Thresholds or a dict; got {type(value).__name__}.")
        valid = {f.name for f in fields(cls)}
        bad = sorted(set(value) - valid)
        if bad:
            raise GnndynError(f"unknown threshold(s) {', '.join(bad)}; valid: {', '.join(sorted(valid))}.")
        return cls(**value)


def _pivot(df: pd.DataFrame, quantity: str) -> pd.DataFrame:
    d = df[df["quantity"] == quantity]
    if d.empty:
        return pd.DataFrame()
    return d.pivot_table(index="step", columns="layer", values="value", aggfunc="last", dropna=False).sort_index()


def _measured(pv: pd.DataFrame) -> pd.DataFrame:
    """The layers measured at some step, at the steps where all of them were (module docstring)."""
    return pv.dropna(axis=1, how="all").dropna() if not pv.empty else pv


def _loss_state(df: pd.DataFrame, th: Thresholds, baseline: float | None) -> dict[str, Any]:
    d = df[df["quantity"] == "loss"].sort_values("step")
    if d.empty:
        return {"ref": math.nan, "final": math.nan, "high": False, "steps": np.zeros(0), "loss": np.zeros(0)}
    loss = d["value"].to_numpy()
    ref = float(baseline) if baseline is not None else float(loss[0])
    final = float(loss[-1])
    return {"ref": ref, "final": final, "high": bool(final >= th.high_loss_fraction * ref),
            "steps": d["step"].to_numpy(), "loss": loss, "baseline_given": baseline is not None}


def _loss_text(ls: dict[str, Any], th: Thresholds) -> str:
    if not len(ls["loss"]):
        return "no loss recorded (give mon.step(loss))"
    ref = "baseline" if ls.get("baseline_given") else "initial"
    return f"loss {ls['final']:.4g} vs {th.high_loss_fraction:g} × {ref} {ls['ref']:.4g}"


def _verdict(name: str, paper: str, statement: str, alarm: bool, margin: float, where: str, th: Thresholds,
             evidence: dict[str, Any], applicable: bool = True, assumptions: dict[str, bool] | None = None) -> Verdict:
    return Verdict(name=f"monitor.{name}", paper=paper, statement=statement, holds=not alarm, margin=float(margin),
                   where=where, assumptions=assumptions or {}, applicable=applicable,
                   details={"alarm": bool(alarm), "evidence": evidence, "thresholds": asdict(th)})


def forward_oversmoothing(df: pd.DataFrame, th: Thresholds) -> Verdict:
    pv = _measured(_pivot(df, "smoothing_H"))
    stmt = (f"no forward oversmoothing: ℰ(H⁽ᵏ⁾) does not decay geometrically with depth (alarm: fitted rate ≤ "
            f"{th.forward_rate:g} per layer and ℰ(H⁽ᴸ⁾)/ℰ(H⁽⁰⁾) ≤ {th.forward_decay:g})")
    paper = "Keriven, Thm 1, eq. (7)"
    if pv.empty or pv.shape[1] < th.min_layers:
        k = 0 if pv.empty else pv.shape[1]
        return _verdict("forward_oversmoothing", paper, stmt, False, math.nan, f"{k} layers recorded", th,
                        {"layers": k}, applicable=False, assumptions={f"at least {th.min_layers} layers": False})
    step = int(pv.index[-1])
    e = pv.iloc[-1].to_numpy(dtype=float)
    ok = e > 0
    k = np.arange(e.size)[ok]
    if k.size < 2:
        slope, r2 = -math.inf, math.nan
    else:
        A = np.vstack([np.ones(k.size), k]).T
        y = np.log(e[ok])
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        slope = float(coef[1])
        resid = y - A @ coef
        r2 = float(1 - resid @ resid / max(((y - y.mean()) ** 2).sum(), 1e-300))
    rate = math.exp(slope)
    decay = float(e[-1] / e[0]) if e[0] > 0 else math.nan
    alarm = bool(rate <= th.forward_rate and decay <= th.forward_decay)
    first = pv.iloc[0].to_numpy(dtype=float)
    ev = {"step": step, "fitted_rate": rate, "fit_r2": r2, "decay": decay, "smoothing_H": e.tolist(),
          "decay_at_first_step": float(first[-1] / first[0]) if first[0] > 0 else math.nan}
    return _verdict("forward_oversmoothing", paper, stmt, alarm, th.forward_rate - rate if alarm else rate - th.forward_rate,
                    f"step {step}: fitted rate {rate:.3g} per layer (R² {r2:.3g}), ℰ(H⁽ᴸ⁾)/ℰ(H⁽⁰⁾) = {decay:.3g}",
                    th, ev)


def _persistent_from(steps: np.ndarray, cond: np.ndarray) -> int | None:
    """The first step from which ``cond`` holds to the last step (None if it fails at the last)."""
    bad = np.flatnonzero(~cond)
    if bad.size == 0:
        return int(steps[0]) if steps.size else None
    return int(steps[bad[-1] + 1]) if bad[-1] + 1 < steps.size else None


def _high_at(ls: dict[str, Any], steps: np.ndarray, th: Thresholds) -> np.ndarray:
    lookup = dict(zip(ls["steps"].tolist(), ls["loss"].tolist()))
    return np.array([lookup.get(int(s), math.nan) >= th.high_loss_fraction * ls["ref"] for s in steps])


def backward_oversmoothing(df: pd.DataFrame, th: Thresholds, baseline: float | None) -> Verdict:
    pv = _measured(_pivot(df, "smoothing_B"))
    ls = _loss_state(df, th, baseline)
    stmt = (f"no backward oversmoothing: ℰ(B⁽ᵏ⁾) does not collapse below the output layer's while the loss is high "
            f"(alarm: min_(k<L) ℰ(B⁽ᵏ⁾)/ℰ(B⁽ᴸ⁾) ≤ {th.backward_ratio:g} and loss ≥ {th.high_loss_fraction:g} × reference)")
    paper = "Keriven, Thm 2 and Fig. 2"
    if pv.empty or pv.shape[1] < 2:
        return _verdict("backward_oversmoothing", paper, stmt, False, math.nan, "fewer than 2 layers with B⁽ᵏ⁾", th,
                        {}, applicable=False, assumptions={"at least 2 layers with backward signals": False})
    B = pv.to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = B[:, :-1].min(1) / B[:, -1]
    steps = pv.index.to_numpy()
    cond = (ratios <= th.backward_ratio) & _high_at(ls, steps, th)
    r, kmin = float(ratios[-1]), int(pv.columns[int(np.argmin(B[-1, :-1]))])
    alarm = bool(r <= th.backward_ratio and ls["high"])
    since = _persistent_from(steps, cond) if alarm else None
    ev = {"step": int(steps[-1]), "ratio": r, "layer_of_min": kmin, "since_step": since,
          "smoothing_B": B[-1].tolist(), "final_loss": ls["final"], "reference_loss": ls["ref"]}
    where = (f"step {int(steps[-1])}: ℰ(B⁽{kmin}⁾)/ℰ(B⁽ᴸ⁾) = {r:.3g}; {_loss_text(ls, th)}"
             + (f"; since step {since}" if since is not None else ""))
    return _verdict("backward_oversmoothing", paper, stmt, alarm,
                    (math.log10(r / th.backward_ratio) if r > 0 else -math.inf), where, th, ev)


def _grad_matrix(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    pv = _pivot(df, "grad_norm")
    if pv.empty:
        return np.zeros(0), np.zeros((0, 0)), []
    cols = [c for c in pv.columns if c >= 0]
    G = pv[cols].to_numpy(dtype=float)
    names = [f"layer {c}" for c in cols]
    rest = _pivot(df, "grad_norm_rest")
    if not rest.empty:
        r = rest.reindex(pv.index)[-1].to_numpy(dtype=float)
        if np.isfinite(r).any():
            G = np.column_stack([G, r])
            names.append("other parameters")
    return pv.index.to_numpy(), G, names


def keriven_trap(df: pd.DataFrame, th: Thresholds, baseline: float | None) -> Verdict:
    steps, G, names = _grad_matrix(df)
    ls = _loss_state(df, th, baseline)
    rule = f"δ = {th.delta:g}" if th.delta is not None else \
        f"δ_k = max over the first {th.early_steps} steps of ‖∂𝓛/∂θ_k‖ / {th.drop_factor:g}"
    stmt = (f"not caught in the Keriven trap: the model is not globally δ-stationary at a high loss ({rule}; "
            f"loss ≥ {th.high_loss_fraction:g} × reference)")
    paper = "Keriven, Def. 1, eq. (10) and Thm 3"
    early = steps <= steps[0] + th.early_steps if steps.size else steps
    if steps.size == 0 or (th.delta is None and early.sum() >= steps.size):
        return _verdict("keriven_trap", paper, stmt, False, math.nan, f"{steps.size} steps with gradients recorded", th,
                        {}, applicable=False, assumptions={f"more than {th.early_steps} recorded steps": False})
    keep = np.isfinite(G).all(0)
    G, names = G[:, keep], [n for n, k in zip(names, keep) if k]
    if G.shape[1] == 0:
        return _verdict("keriven_trap", paper, stmt, False, math.nan, "no layer has a finite gradient at every recorded "
                        "step", th, {}, applicable=False,
                        assumptions={"a layer with a gradient at every recorded step": False})
    delta = np.full(G.shape[1], th.delta) if th.delta is not None else G[early].max(0) / th.drop_factor
    stat = (G <= delta).all(1)
    cond = stat & _high_at(ls, steps, th)
    since = _persistent_from(steps, cond)
    alarm = since is not None and bool(cond[-1])
    late = steps >= (since if alarm else steps[0] + (steps[-1] - steps[0]) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        drop = G[early].max(0) / G[late].max(0)
        # ‖∂𝓛/∂θ_k‖/δ_k at the last step; a layer whose gradient was exactly 0 from the start (δ_k = 0: saturated
        # units) is at 0 × δ_k while it stays 0, and beyond any multiple once it is not
        rel = np.where(delta > 0, G[-1] / np.where(delta > 0, delta, 1.0), np.where(G[-1] > 0, np.inf, 0.0))
    worst = int(np.argmax(rel)) if G.shape[1] else 0
    ev = {"since_step": since, "final_global_delta": float(G[-1].max()), "delta_per_layer": delta.tolist(),
          "drop_factors": drop.tolist(), "drop_factors_from_step": int(steps[late][0]), "final_loss": ls["final"], "reference_loss": ls["ref"]}
    where = (f"stuck since step {since}: every gradient ≤ δ_k; {_loss_text(ls, th)}" if alarm else
             f"last step: {names[worst] if names else '—'} at {float(rel[worst]) if G.shape[1] else math.nan:.3g} × δ_k; "
             f"{_loss_text(ls, th)}")
    with np.errstate(divide="ignore"):
        margin = float(np.log10(np.max(rel))) if G.shape[1] else math.nan
    return _verdict("keriven_trap", paper, stmt, alarm, margin if not alarm else -abs(margin), where, th, ev)


def gradient_scale(df: pd.DataFrame, th: Thresholds, baseline: float | None = None) -> list[Verdict]:
    pv = _pivot(df, "grad_norm")
    ls = _loss_state(df, th, baseline)
    paper = "gnndyn monitor (layer-wise gradient ratios)"
    s_v = f"no vanishing gradients: median over steps of ‖∂𝓛/∂θ_k‖/‖∂𝓛/∂θ_L‖ > {th.vanish_ratio:g} for every layer"
    s_e = (f"no exploding gradients: median over steps of ‖∂𝓛/∂θ_k‖/‖∂𝓛/∂θ_L‖ < {th.explode_ratio:g}, all finite, "
           f"and the loss ends below {th.explode_loss:g} × reference")
    if not pv.empty:
        pv = pv[[c for c in pv.columns if c >= 0]].dropna(axis=1, how="all")
    G = pv.to_numpy(dtype=float) if not pv.empty else np.zeros((0, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        R = G / G[:, -1:] if G.size else G
        med = np.nanmedian(np.where(np.isfinite(R), R, np.nan), axis=0) if G.size else G
    if G.shape[1] < 2 or not np.isfinite(med).any():
        why = "fewer than 2 layers with a gradient" if G.shape[1] < 2 else "no finite ratio of gradients"
        return [_verdict(n, paper, s, False, math.nan, why, th, {}, applicable=False,
                         assumptions={"at least 2 layers with a gradient": False}) for n, s in (("vanishing_gradients", s_v),
                                                                                                ("exploding_gradients", s_e))]
    layers = [int(c) for c in pv.columns]
    nonfinite = bool(np.isinf(G).any())  # NaN = no gradient recorded (quantities.grad_norm); inf = not finite
    fin = np.where(np.isfinite(med), med, np.nan)
    iv, ie = int(np.nanargmin(fin)), int(np.nanargmax(fin))
    kv, ke = layers[iv], layers[ie]
    ev = {"median_ratio_per_layer": dict(zip(layers, med.tolist())), "nonfinite": nonfinite, "steps": int(G.shape[0]),
          "reference_layer": layers[-1]}
    vanish = bool(med[iv] <= th.vanish_ratio)
    diverged = bool(len(ls["loss"]) and (not math.isfinite(ls["final"]) or ls["final"] > th.explode_loss * ls["ref"]))
    ev["diverged"] = diverged
    ev["final_loss"], ev["reference_loss"] = ls["final"], ls["ref"]
    explode = bool(med[ie] >= th.explode_ratio or nonfinite or diverged)
    return [
        _verdict("vanishing_gradients", paper, s_v, vanish, math.log10(med[iv] / th.vanish_ratio) if med[iv] > 0 else -math.inf,
                 f"layer {kv}: median ratio {med[iv]:.3g}", th, ev),
        _verdict("exploding_gradients", paper, s_e, explode, math.log10(th.explode_ratio / med[ie]) if med[ie] > 0 else math.inf,
                 f"layer {ke}: median ratio {med[ie]:.3g}" + ("; a gradient was not finite" if nonfinite else "")
                 + (f"; the loss diverged ({_loss_text(ls, th)})" if diverged else ""), th, ev),
    ]


def diagnose(df: pd.DataFrame, th: Thresholds, baseline: float | None = None) -> list[Verdict]:
    """All diagnoses of one monitored run (its metrics table)."""
    return [forward_oversmoothing(df, th), backward_oversmoothing(df, th, baseline), keriven_trap(df, th, baseline),
            *gradient_scale(df, th, baseline)]


def alarms(verdicts: list[Verdict]) -> list[str]:
    """Names of the verdicts that raise an alarm."""
    return [v.name for v in verdicts if v.details.get("alarm")]
