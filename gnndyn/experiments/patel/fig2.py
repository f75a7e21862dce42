r"""``patel-fig2`` — Patel, Savostianov & Schaub (arXiv 2501.14440), Fig. 2 and §6.1.1: σ_small((XS^H)_{*I}) against the
labelled-set size n̄ for G(n,p), K_k(n), SBM and BA under the five operators Adj, S-L Adj, Nor. S-L Adj, L, Nor. L,
with d_x = 30, H = 2, X_ij ~ N(0, 1).

The paper does not give Fig. 2's graph parameters; the defaults here are n = 200 and G(200, 0.05), K_8(200),
SBM(66, 134, 0.15, 0.01), BA(200, 5) (``--set family_params.erdos-renyi=0.1`` ...). For every graph seed, operator and
n̄ on the grid, ``samples`` labelled sets I are drawn uniformly; :math:`Z = (XS^H)_{*I}` is the column selection of
:math:`XS^H` (propagated once, sparse products) and σ_small its smallest singular value above the numerical-rank
tolerance (:func:`gnndyn.algebra.row_space`). Table ``sigma``: one row per (family, operator, seed, n̄, sample);
metrics: ``sigma_small_mean`` / ``_min`` / ``_max`` per (series ``<family>-<operator>``, seed, step = n̄).

Verdicts:

* the "monotonicity switch" (§6.1.1): the mean σ_small over the n̄ grid has its minimum at n̄ ≈ d_x (within one grid
  step) — per family and operator. For n̄ < d_x, Z has full column rank and σ_small = σ_n̄ falls as columns are added
  (Cauchy interlacing); for n̄ ≥ d_x, σ_small = σ_{d_x} grows with n̄ (E Π_I = (n̄/n)I);
* the ordering claims of §6.1.1, per family, at every n̄ of the grid: L gives the largest σ_small, Nor. S-L Adj the
  smallest, and Adj ≈ S-L Adj (mean curves within a factor 1.5).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from gnndyn.algebra.spectrum import row_space
from gnndyn.errors import GnndynError
from gnndyn.experiments.base import Experiment, ExperimentResult, RunContext, register
from gnndyn.experiments.patel import checks
from gnndyn.experiments.patel import common as C
from gnndyn.store.run import RunStore
from gnndyn.theory.verdict import Verdict


class PatelFig2Spec(C.PatelSpec):
    """Spec of ``patel-fig2``."""

    experiment: Literal["patel-fig2"] = "patel-fig2"
    d_x: int = Field(30, ge=1)
    n: int = Field(200, ge=2)
    families: list[str] = Field(default_factory=lambda: list(C.FAMILIES))
    family_params: dict[str, float] = Field(default_factory=lambda: {"erdos-renyi": 0.05, "knn-ring": 8, "sbm": 0.01,
                                                                     "barabasi-albert": 5})
    sbm_p: float = Field(0.15, ge=0, le=1)
    operators: list[str] = Field(default_factory=lambda: list(C.OPERATORS))
    nbar: list[int] = Field(default_factory=lambda: list(range(5, 101, 5)))
    samples: int = Field(10, ge=1, description="labelled sets per n̄ and graph")
    adj_factor: float = Field(1.5, gt=1, description="Adj ≈ S-L Adj: mean curves within this factor")

    @model_validator(mode="after")
    def _family_params(self) -> "PatelFig2Spec":
        """Every family has a parameter in ``family_params``, valid for its generator at this n, and every key there is
        a family; the n̄ grid is a non-empty set of sizes in [1, n]; families and operators are distinct; the fields
        Fig. 2 does not read (it trains nothing) are left at their defaults."""
        checks.known_keys("family_params", self.family_params, "graph family", C.FAMILIES)
        c = self.canonical()  # names in the paper's spelling (the spec keeps them as given)
        checks.values("families", c.families, "graph family", '["erdos-renyi","sbm"]')
        checks.values("operators", c.operators, "operator", '["adj","lap"]')
        for key in c.families:
            if key not in c.family_params:
                raise ValueError(f"family_params has no parameter for {key!r}; it has {sorted(self.family_params)} "
                                 f"(e.g. --set 'family_params={{\"{key}\": 0.1}}')")
            try:
                C.check_family_params(key, self.n, [c.family_params[key]], self.d_x, sbm_p=self.sbm_p)
            except GnndynError as exc:
                raise ValueError(f"family_params.{key}: {str(exc).split(': ', 1)[1]}") from None
        checks.values("nbar", self.nbar, "labelled-set size n̄", "[10,20,30,40]", low=1, high=self.n, high_name="n",
                      range_hint=" (n̄ of the n nodes are labelled); lower it or raise n",
                      why_distinct="each n̄ is one point of the grid (metrics step = n̄), so a repeat records the same "
                                   "point twice")
        if "sbm" not in c.families:
            checks.unused(self, ["sbm_p"], f"without the sbm family (families = {self.families}); it is the sbm "
                                           f"family's within-block probability")
        checks.unused(self, ["labelled_fraction"], "by patel-fig2: it sweeps the labelled-set size over nbar")
        checks.unused(self, ["width", "a"], "by patel-fig2: it trains nothing, it measures σ_small((XS^H)_{*I})")
        checks.unused(self, ["epsilon"], "by patel-fig2: it has no targets, only σ_small((XS^H)_{*I})")
        return self


def sigma_small_of(Z: np.ndarray) -> tuple[float, int]:
    s = row_space([Z], method="dense", basis=False)[0]
    return float(s.sigma_small), int(s.rank)


def grid_step(grid: list[int], d_x: int) -> int:
    """The spacing of the n̄ grid around d_x (the larger gap beside the grid point nearest d_x)."""
    if len(grid) < 2:
        return 1
    i = int(np.argmin([abs(k - d_x) for k in grid]))
    gaps = [grid[i] - grid[i - 1]] if i > 0 else []
    gaps += [grid[i + 1] - grid[i]] if i + 1 < len(grid) else []
    return int(max(gaps))


def run_fig2(spec: PatelFig2Spec, ctx: RunContext) -> ExperimentResult:
    spec = spec.canonical()  # names in the paper's spelling: labels, series and family_params read them
    rows = []  # names, family_params and the n̄ grid were checked when the spec was built
    with ctx.task("σ_small against n̄", len(spec.families) * spec.seeds * len(spec.operators)) as bar:
        for fam in spec.families:
            for seed in range(spec.seed, spec.seed + spec.seeds):
                g = C.synthetic_graph(fam, spec.n, spec.family_params[fam], spec.d_x, seed, sbm_p=spec.sbm_p)
                for op in spec.operators:
                    XS = C.propagated_all(g, op, spec.depth)
                    rng = np.random.default_rng(np.random.SeedSequence([seed, 3, C.OPERATORS.index(op)]))
                    for nb in spec.nbar:
                        for j in range(spec.samples):
                            I = np.sort(rng.choice(spec.n, int(nb), replace=False))
                            s, r = sigma_small_of(XS[:, I])
                            rows.append({"family": fam, "operator": op, "seed": seed, "nbar": int(nb), "sample": j,
                                         "sigma_small": s, "rank": r, "nodes": ",".join(map(str, I.tolist()))})
                    bar.advance(1)
    tab = pd.DataFrame(rows)
    rec = ctx.recorder
    for (fam, op, seed, nb), d in tab.groupby(["family", "operator", "seed", "nbar"]):
        rec.add_values(f"{fam}-{op}", int(seed), int(nb), {"sigma_small_mean": d.sigma_small.mean(),
                       "sigma_small_min": d.sigma_small.min(), "sigma_small_max": d.sigma_small.max()}, time=float(nb))
    mean = tab.groupby(["family", "operator", "nbar"])["sigma_small"].mean()
    verdicts, rows_sw = [], []
    grid = sorted(spec.nbar)
    step = grid_step(grid, spec.d_x)
    W = f"{C.PAPER}, §6.1.1, Fig. 2"
    for fam in spec.families:
        for op in spec.operators:
            curve = mean.loc[(fam, op)]
            at = int(curve.idxmin())
            margin = float(step - abs(at - spec.d_x))
            verdicts.append(Verdict(f"patel.fig2.switch.{fam}.{op}", W, f"{C.LABELS[op]} on {fam}: the mean σ_small over "
                                    f"the n̄ grid is smallest at n̄ ≈ d_x = {spec.d_x} (within one grid step, {step})",
                                    abs(at - spec.d_x) <= step, margin, f"minimum at n̄ = {at}",
                                    details={"argmin_nbar": at, "min_mean": float(curve.min()), "d_x": spec.d_x}))
            rows_sw.append({"family": fam, "operator": op, "argmin_nbar": at, "min_mean_sigma": float(curve.min()),
                            **{f"mean_at_{k}": float(curve.get(k, math.nan)) for k in (grid[0], spec.d_x, grid[-1])}})
        verdicts += ordering_claims(mean.loc[fam], fam, spec)
    summary = {f"{r['family']}, {C.LABELS[r['operator']]}": f"min of mean σ_small {r['min_mean_sigma']:.3g} at n̄ = "
               f"{r['argmin_nbar']}" for r in rows_sw}
    return ExperimentResult(verdicts=verdicts, tables={"sigma": tab, "switch": pd.DataFrame(rows_sw)}, summary=summary)


def ordering_claims(mean: pd.Series, fam: str, spec: PatelFig2Spec) -> list[Verdict]:
    """L largest, Nor. S-L Adj smallest, Adj ≈ S-L Adj at every n̄ (mean curves); margins in log units."""
    out = []
    M = mean.unstack("operator")  # n̄ × operator
    W = f"{C.PAPER}, §6.1.1, Fig. 2"
    ops = list(M.columns)
    for op, largest in (("lap", True), ("nor-sl-adj", False)):
        if op not in ops or len(ops) < 2:
            continue
        others = M.drop(columns=op)
        lr = np.log(M[op] / (others.max(axis=1) if largest else others.min(axis=1)))
        lr = lr if largest else -lr
        nb = int(lr.idxmin())
        out.append(Verdict(f"patel.fig2.{'largest' if largest else 'smallest'}.{fam}", W,
                           f"{fam}: {C.LABELS[op]} gives the {'largest' if largest else 'smallest'} σ_small at every n̄",
                           bool((lr > 0).all()), float(lr.min()), f"n̄ = {nb}",
                           details={"fraction_of_grid": float((lr > 0).mean()),
                                    "order_at_d_x": list(M.loc[spec.d_x].sort_values(ascending=False).index)
                                    if spec.d_x in M.index else None}))
    if {"adj", "sl-adj"} <= set(ops):
        lr = np.abs(np.log(M["adj"] / M["sl-adj"]))
        nb = int(lr.idxmax())
        out.append(Verdict(f"patel.fig2.adj_like_sl_adj.{fam}", W, f"{fam}: Adj ≈ S-L Adj (mean σ_small within a factor "
                           f"{spec.adj_factor:g} at every n̄)", bool((lr <= math.log(spec.adj_factor)).all()),
                           float(math.log(spec.adj_factor) - lr.max()), f"n̄ = {nb}",
                           details={"max_ratio": float(np.exp(lr.max())), "median_ratio": float(np.exp(lr.median()))}))
    return out


def figures_fig2(store: RunStore) -> dict:
    from gnndyn.report.plots import new_figure

    tab = store.table("sigma")
    fams = list(dict.fromkeys(tab["family"]))
    fig, axes = new_figure(len(fams), width=3.6, height=3.0)
    for ax, fam in zip(axes, fams):
        d = tab[tab.family == fam]
        for op in dict.fromkeys(d["operator"]):
            g = d[d.operator == op].groupby("nbar")["sigma_small"]
            x = g.mean().index.to_numpy()
            ax.plot(x, g.mean().to_numpy(), color=C.COLORS[op], label=C.LABELS[op], lw=1.4)
            ax.fill_between(x, g.min().to_numpy(), g.max().to_numpy(), color=C.COLORS[op], alpha=0.2, lw=0)
        dx = store.spec().get("d_x")
        if dx:
            ax.axvline(dx, color="k", ls=":", lw=0.8)
        ax.set(yscale="log", xlabel="n̄", title=fam)
        ax.set_ylabel(r"$\sigma_{\mathrm{small}}((XS^H)_{*I})$" if fam == fams[0] else "")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return {"fig2_sigma_vs_nbar": fig}


register(Experiment(
    name="patel-fig2",
    description="Patel et al. Fig. 2: σ_small((XS^H)_{*I}) against n̄ for four graph families and five operators",
    paper="Patel et al. 2025, Fig. 2, §6.1.1",
    spec_cls=PatelFig2Spec, run=C.with_torch_threads(run_fig2), figures=figures_fig2,
    smoke={"n": 60, "d_x": 10, "nbar": [2, 4, 6, 8, 10, 12, 14, 20], "samples": 4, "seeds": 1,
           "family_params": {"erdos-renyi": 0.2, "knn-ring": 6, "sbm": 0.05, "barabasi-albert": 4}, "sbm_p": 0.4},
))
